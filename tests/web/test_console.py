"""The console page: attach, type, spy, force, who; power menu on a real snmpd outlet; flood."""

from conftest import DEAD_DEVICE, POWER_DEVICE, POWER_OUTLET, login, marker, open_console, screenshot, shell, term_text, type_line, wait_term


def who_users(page, device: str) -> dict[str, str]:
    rows = page.eval_on_selector_all(
        f"#panel-{device} ul.who li",
        "els => els.map(e => [e.dataset.user, e.dataset.role])",
    )
    return {u: r for u, r in rows}


def wait_who(page, device: str, want: dict[str, str]) -> None:
    page.wait_for_function(
        "([d, want]) => { const m = {}; for (const e of document.querySelectorAll(`#panel-${d} ul.who li`)) m[e.dataset.user] = e.dataset.role;"
        " return Object.entries(want).every(([u, r]) => m[u] === r); }",
        arg=[device, want],
    )


def test_type_spy_force_who(browser, daemon):
    dev = "sim-01"
    ctx_a, a = login(browser, daemon, "demo")
    open_console(a, dev)
    assert a.evaluate("(d) => window.__mo.termRole(d)", dev) == "attach"
    shell(a, dev)
    m = marker("hello-web")
    type_line(a, dev, f"echo {m}")
    # The answer is read from the terminal's buffer: the echoed command and the printed line.
    text = wait_term(a, dev, rf"\n{m}\n")
    assert f"echo {m}" in text
    screenshot(a, "console")

    # A second browser context, another user: attach is taken, so it is let in as a spy.
    ctx_b, b = login(browser, daemon, "alice")
    open_console(b, dev)
    b.wait_for_function("(d) => window.__mo.termRole(d) === 'spy'", arg=dev)
    assert m in wait_term(b, dev, m), "the spy sees the same text (replay)"
    # Typing as a spy is refused with a notice.
    type_line(b, dev, "echo spy-typed")
    b.wait_for_selector(f"#panel-{dev} ol.notices li.error")
    assert "refused" in b.inner_text(f"#panel-{dev} ol.notices li.error")
    # who shows both, in both pages.
    wait_who(a, dev, {"demo": "attach", "alice": "spy"})
    wait_who(b, dev, {"demo": "attach", "alice": "spy"})

    # Force takes over: alice writes, demo is demoted.
    b.click(f"#panel-{dev} button[data-mode=force]")
    b.wait_for_function("(d) => window.__mo.termRole(d) === 'attach'", arg=dev)
    a.wait_for_function("(d) => window.__mo.termRole(d) === 'spy'", arg=dev)
    m2 = marker("forced")
    type_line(b, dev, f"echo {m2}")
    wait_term(b, dev, rf"\n{m2}\n")
    wait_term(a, dev, rf"\n{m2}\n")
    wait_who(a, dev, {"demo": "spy", "alice": "attach"})
    wait_who(b, dev, {"demo": "spy", "alice": "attach"})
    # The spy's keystrokes never reached the device (the last line is still alice's output).
    assert "spy-typed" not in term_text(a, dev).replace("echo spy-typed", "")
    ctx_b.close()
    ctx_a.close()


def test_viewer_sees_no_attach_button(browser, daemon):
    ctx, page = login(browser, daemon, "bob")
    open_console(page, "sim-03")
    assert page.evaluate("(d) => window.__mo.termRole(d)", "sim-03") == "spy"
    buttons = page.eval_on_selector_all("#panel-sim-03 button[data-mode]", "els => els.map(e => e.dataset.mode)")
    assert buttons == ["spy"], f"a viewer may only spy, the page offers {buttons}"
    assert page.query_selector("#panel-sim-03 [data-power]") is None
    ctx.close()


def test_power_menu_switches_snmp_outlet(browser, daemon, snmpd):
    ctx, page = login(browser, daemon, "demo")
    open_console(page, POWER_DEVICE)
    panel = f"#panel-{POWER_DEVICE}"
    assert snmpd.outlet(POWER_OUTLET) == 1
    # Cancel: nothing is switched. The status request afterwards is the barrier.
    page.click(f"{panel} button[data-power=off]")
    page.wait_for_selector("dialog.confirm[open]")
    screenshot(page, "power-confirm")
    page.click("dialog.confirm button:not([data-confirm])")
    page.click(f"{panel} button[data-power=status]")
    page.wait_for_function(f"() => document.querySelector('{panel} .power-state').textContent.startsWith('status: ')")
    assert "on" in page.inner_text(f"{panel} .power-state")
    assert snmpd.outlet(POWER_OUTLET) == 1, "a cancelled power off switched the outlet"
    # Confirm: the outlet goes off.
    page.click(f"{panel} button[data-power=off]")
    page.click("dialog.confirm button[data-confirm=yes]")
    page.wait_for_function(f"() => document.querySelector('{panel} .power-state').textContent.startsWith('off: ')")
    assert snmpd.outlet(POWER_OUTLET) == 2, page.inner_text(f"{panel} .power-state")
    # On needs no confirmation.
    page.click(f"{panel} button[data-power=on]")
    page.wait_for_function(f"() => document.querySelector('{panel} .power-state').textContent.startsWith('on: ')")
    assert snmpd.outlet(POWER_OUTLET) == 1
    ctx.close()


def test_flood_keeps_page_responsive(browser, daemon):
    dev = "sim-05"
    ctx, page = login(browser, daemon, "demo")
    open_console(page, dev)
    shell(page, dev)
    limit = page.evaluate("() => window.__mo.maxPending")
    # In the page: the longest gap between 20 ms timer ticks (a frozen page has long ones) and
    # the largest backlog, sampled on every tick.
    page.evaluate(
        """(d) => { window.__lag = 0; window.__peak = 0; let last = performance.now();
        const tick = () => { const n = performance.now(); window.__lag = Math.max(window.__lag, n - last); last = n;
          window.__peak = Math.max(window.__peak, window.__mo.termPending(d)); if (!window.__stop) setTimeout(tick, 20); };
        setTimeout(tick, 20); }""",
        dev,
    )
    type_line(page, dev, "flood 5M 3")
    page.wait_for_function("(d) => window.__mo.termStats(d).bytes > 1000000", arg=dev, timeout=60000)
    # Stop the flood (Ctrl-C) and type a marker once the page has drawn what it holds. Bytes that
    # arrive while the backlog is full are skipped (that is the point), so a marker that came in
    # then is typed again: its echo drawn is the barrier.
    m = marker("after-flood")
    for attempt in range(5):
        page.wait_for_function("(d) => window.__mo.termPending(d) === 0", arg=dev, timeout=60000)
        page.keyboard.press("Control+C")
        type_line(page, dev, f"echo {m}-{attempt}")
        try:
            wait_term(page, dev, rf"\n{m}-{attempt}", timeout=15000)
            break
        except Exception:
            continue
    else:
        raise AssertionError(f"the console never answered after the flood: {page.evaluate('(d) => window.__mo.termStats(d)', dev)}")
    page.evaluate("() => { window.__stop = true; }")
    lag, peak = page.evaluate("() => [window.__lag, window.__peak]")
    stats = page.evaluate("(d) => window.__mo.termStats(d)", dev)
    assert peak <= limit, f"backlog {peak} over the bound {limit}"
    assert lag < 1500, f"the page froze for {lag:.0f} ms during the flood ({stats})"
    ctx.close()


def test_tabs_paste_break_and_link_down_banner(browser, daemon):
    ctx, page = login(browser, daemon, "demo")
    # Two consoles in tabs; the arrow keys move between them.
    open_console(page, POWER_DEVICE)
    shell(page, POWER_DEVICE)
    open_console(page, DEAD_DEVICE)
    tabs = page.eval_on_selector_all(".tabs button[role=tab]", "els => els.map(e => e.textContent)")
    assert tabs == [POWER_DEVICE, DEAD_DEVICE], tabs
    # A link that cannot come up: the banner says so.
    page.wait_for_selector(f"#panel-{DEAD_DEVICE} .banner:not([hidden])")
    assert DEAD_DEVICE in page.inner_text(f"#panel-{DEAD_DEVICE} .banner:not([hidden])")
    page.focus(f".tabs button[aria-controls=panel-{DEAD_DEVICE}]")
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"#panel-{POWER_DEVICE}:not([hidden])")
    assert page.is_hidden(f"#panel-{DEAD_DEVICE}")
    # Paste types the clipboard into the console.
    m = marker("pasted")
    page.evaluate("(t) => navigator.clipboard.writeText(t)", f"echo {m}\n")
    page.click(f"#panel-{POWER_DEVICE} button:has-text('Paste')")
    wait_term(page, POWER_DEVICE, rf"\n{m}\n")
    # Copy puts the terminal's selection on the clipboard.
    page.evaluate("(d) => window.__mo.selectAll(d)", POWER_DEVICE)
    page.click(f"#panel-{POWER_DEVICE} button:has-text('Copy')")
    page.wait_for_function("(m) => navigator.clipboard.readText().then(t => t.includes(m))", arg=m)
    # BREAK drops the sim into its boot monitor; `go` resumes.
    page.select_option(f"#panel-{POWER_DEVICE} select[aria-label='Break sequence']", "0")
    page.click(f"#panel-{POWER_DEVICE} button:has-text('Send break')")
    wait_term(page, POWER_DEVICE, r"\nok ?$")
    type_line(page, POWER_DEVICE, "go")
    # Closing a tab detaches that console.
    page.click(f".tabs button[aria-label='Close {DEAD_DEVICE}']")
    page.wait_for_selector(f"#panel-{DEAD_DEVICE}", state="detached")
    ctx.close()


def test_line_signal_control_reaches_the_daemon(browser, daemon):
    # DTR/RTS from the toolbar: a `signal` message on the attach socket. The sim console has no
    # modem lines, so the daemon refuses it by name (the RFC 2217 path, where the line moves, is
    # tests/e2e/tests/line_signals_api.rs).
    ctx, page = login(browser, daemon, "demo")
    open_console(page, POWER_DEVICE)
    page.wait_for_function("(d) => window.__mo.termRole(d) === 'attach'", arg=POWER_DEVICE)
    page.select_option(f"#panel-{POWER_DEVICE} select[aria-label='Modem line']", "dtr")
    page.select_option(f"#panel-{POWER_DEVICE} select[aria-label='Line setting']", "off")
    page.click(f"#panel-{POWER_DEVICE} button:has-text('Set line')")
    page.wait_for_selector(f"#panel-{POWER_DEVICE} ol.notices li.error:has-text('dtr is not supported')")
    ctx.close()


def test_session_end_returns_to_login(browser, daemon):
    ctx, page = login(browser, daemon, "bob")
    open_console(page, "sim-03")
    other = ctx.new_page()
    other.goto(daemon.base + "/")
    other.wait_for_selector("body[data-page=devices]")
    # The session ends elsewhere (another tab logs out): this page goes back to the login form.
    other.click("#logout")
    other.wait_for_selector("body[data-page=login]")
    page.wait_for_selector("body[data-page=login] #user", timeout=30000)
    assert "session ended" in page.inner_text("#login-error").lower()
    ctx.close()
