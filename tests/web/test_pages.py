"""Login, devices, events (kernel panic -> critical event -> ack), log (search, playback, download),
gang/listen, keyboard-only use, phone-sized pages."""

from conftest import login, marker, open_console, screenshot, shell, type_line, wait_term


def test_login_wrong_password_then_devices(browser, daemon):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=daemon.base)
    page = ctx.new_page()
    page.goto("/")
    # Not logged in: every route leads to the login page.
    page.wait_for_selector("body[data-page=login] #user")
    screenshot(page, "login")
    page.fill("#user", "demo")
    page.fill("#password", "wrong")
    page.click("form.login button[type=submit]")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.includes('Wrong')")
    page.fill("#password", "demo")
    page.click("form.login button[type=submit]")
    page.wait_for_selector("body[data-page=devices] table.devices tbody tr")
    names = page.eval_on_selector_all("table.devices tbody tr", "els => els.map(e => e.dataset.device)")
    for n in ("sim-01", "sim-02", "sim-03", "sim-04", "sim-05", "pdu-srv"):
        assert n in names
    row = page.query_selector("tr[data-device=pdu-srv]")
    assert "real snmpd PDU" in row.inner_text()
    # Filter as you type.
    page.fill("#filter", "sim-03")
    page.wait_for_function("() => document.querySelectorAll('table.devices tbody tr').length === 1")
    page.fill("#filter", "")
    page.wait_for_function("() => document.querySelectorAll('table.devices tbody tr').length >= 6")
    page.wait_for_function("() => document.querySelector('tr[data-device=\"sim-02\"]').dataset.state === 'up'", timeout=30000)
    screenshot(page, "devices")
    # One click opens the console.
    page.click("tr[data-device=sim-02] a.name")
    page.wait_for_selector(".term[data-device='sim-02'] .xterm")
    # Logout ends the session: the API answers 401 with the old cookie, the page shows login.
    page.click("#logout")
    page.wait_for_selector("body[data-page=login] #user")
    r = ctx.request.get(f"{daemon.base}/api/v1/me")
    assert r.status == 401
    ctx.close()


def test_keyboard_only(browser, daemon):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=daemon.base)
    page = ctx.new_page()
    page.goto("/#/login")
    page.wait_for_selector("#user:focus")
    page.keyboard.type("demo")
    page.keyboard.press("Tab")
    page.keyboard.type("demo")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-page=devices] #filter:focus")
    page.keyboard.type("sim-04")
    page.wait_for_function("() => document.querySelectorAll('table.devices tbody tr').length === 1")
    # Tab from the filter reaches the device's console link; Enter opens it.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.getAttribute('href')") == "#/console/sim-04":
            break
    else:
        raise AssertionError("Tab never reached the console link of sim-04")
    # The focused element has a visible focus outline.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), f"focus is not visible (outline {outline})"
    page.keyboard.press("Enter")
    page.wait_for_selector(".term[data-device='sim-04'] .xterm")
    # The terminal has the focus: typing reaches the device.
    page.wait_for_function("() => document.activeElement && document.activeElement.classList.contains('xterm-helper-textarea')")
    ctx.close()


def test_panic_makes_critical_event_live_and_ack(browser, daemon):
    dev = "sim-04"
    ctx, events = login(browser, daemon, "demo")
    events.goto("/#/events")
    events.wait_for_selector("body[data-page=events] table.events")
    events.wait_for_function("() => document.body.dataset.events === 'open'")
    before = events.eval_on_selector_all("tr[data-severity=critical]", "els => els.length")
    con = ctx.new_page()
    con.set_default_timeout(20000)
    con.goto("/")
    open_console(con, dev)
    shell(con, dev)
    type_line(con, dev, "panic")
    wait_term(con, dev, "Kernel panic")
    # Without a reload the events page shows the critical event.
    events.wait_for_function(
        "([d, n]) => [...document.querySelectorAll('tr[data-severity=critical]')].filter(r => r.textContent.includes(d)).length > n",
        arg=[dev, before],
        timeout=30000,
    )
    row = events.query_selector(f"tr[data-severity=critical]:has-text('{dev}')")
    assert "panic" in row.inner_text().lower()
    # Both open pages got the toast.
    events.wait_for_selector(".toast.critical")
    con.wait_for_selector(".toast.critical")
    # The severity filter: "critical and above" shows only critical rows.
    events.select_option("#sev", "critical")
    events.wait_for_function("() => [...document.querySelectorAll('table.events tbody tr')].every(r => r.dataset.severity === 'critical')")
    assert events.query_selector(f"tr[data-id='{row.get_attribute('data-id')}']") is not None
    events.select_option("#sev", "info")
    screenshot(events, "events")
    eid = row.get_attribute("data-id")
    events.click(f"tr[data-id='{eid}'] button[data-ack]")
    events.wait_for_selector(f"tr[data-id='{eid}'].acked")
    assert "by demo" in events.inner_text(f"tr[data-id='{eid}']")
    # The daemon has it acknowledged.
    listed = ctx.request.get(f"{daemon.base}/api/v1/events?device={dev}&limit=100").json()
    assert any(str(e["id"]) == eid and e.get("acked_by") == "demo" for e in listed)
    # Unacknowledged-only hides it.
    events.check("#unacked")
    events.wait_for_selector(f"tr[data-id='{eid}']", state="detached")
    ctx.close()


def test_log_search_context_and_playback(browser, daemon):
    dev = "sim-02"
    ctx, page = login(browser, daemon, "alice")
    open_console(page, dev)
    shell(page, dev)
    m = marker("logged-cmd")
    type_line(page, dev, f"echo {m}")
    wait_term(page, dev, rf"\n{m}\n")
    page.fill(f"#panel-{dev} form.note input", f"note-{m}")
    page.click(f"#panel-{dev} form.note button")
    page.goto(f"/#/log/{dev}")
    page.wait_for_function("() => Number(document.querySelector('#log').dataset.loaded || 0) > 0")
    page.wait_for_selector(f"#log li.input:has-text('{m}')")
    typed = page.query_selector(f"#log li.input:has-text('{m}')")
    assert typed.query_selector(".user").inner_text() == "alice", "input is shown with who typed it"
    # Search with context: the typed command with lines around it.
    page.fill("#q", m)
    page.fill("#ctx", "2")
    page.press("#q", "Enter")
    page.wait_for_selector("#results ol.ctx li.match")
    lines = page.eval_on_selector_all("#results ol.ctx li", "els => els.map(e => e.textContent)")
    assert any(f"echo {m}" in t for t in lines), lines
    assert len(lines) >= 3, f"no context around the match: {lines}"
    # Jump to the note.
    page.wait_for_selector(f"#notes option:has-text('note-{m}')", state="attached")
    value = page.eval_on_selector(f"#notes option:has-text('note-{m}')", "o => o.value")
    page.select_option("#notes", value)
    page.wait_for_selector(f"#log li.hit:has-text('note-{m}')")
    # Jump to a time: the first line at or after it is highlighted.
    t = typed.query_selector("time").inner_text()
    page.fill("#jump", t)
    page.click("button:has-text('Jump')")
    page.wait_for_function("(t) => { const h = document.querySelector('#log li.hit time'); return h && h.textContent >= t; }", arg=t)
    # Downloads: the text and the asciicast of the range hold the command.
    text_href = page.get_attribute("a[download$='.log']", "href")
    cast_href = page.get_attribute("a[download$='.cast']", "href")
    assert m in ctx.request.get(daemon.base + text_href).text()
    cast = ctx.request.get(daemon.base + cast_href)
    assert cast.ok, cast.text()
    assert cast.text().startswith("{") and m in cast.text()
    # Playback of the range plays: the player's screen shows the command.
    page.click("#play")
    page.wait_for_function(
        "(m) => document.querySelector('#player') && document.querySelector('#player').textContent.includes(m)",
        arg=m,
        timeout=60000,
    )
    screenshot(page, "log")
    ctx.close()


def test_gang_listen_grid(browser, daemon):
    ctx, page = login(browser, daemon, "demo")
    page.goto("/#/gang/sim-03,sim-05,sim-02")
    page.wait_for_selector("#grid figure.tile[data-device=sim-03] .xterm")
    page.wait_for_function("() => document.querySelectorAll('#grid figure.tile').length === 3")
    # Listen is read-only: the tiles are spies.
    for d in ("sim-03", "sim-05", "sim-02"):
        page.wait_for_function("(d) => window.__mo.termRole(d) === 'spy'", arg=d)
    # Broadcast a command; devices answer differently (their host names): divergent highlighted.
    page.fill("#gangcmd", "hostname")
    page.click("#gangsend")
    page.wait_for_function("() => document.querySelector('#gangsummary').textContent.startsWith('sent to 3')", timeout=60000)
    summary = page.inner_text("#gangsummary")
    marked = page.eval_on_selector_all("#grid figure.tile", "els => els.map(e => e.className)")
    assert any(("divergent" in c) or ("agree" in c) or ("refused" in c) for c in marked), (summary, marked)
    screenshot(page, "gang")
    ctx.close()


def test_phone_layout(browser, daemon):
    ctx, page = login(browser, daemon, "demo", viewport=(390, 844))
    for route, ready in (
        ("#/devices", "table.devices tbody tr"),
        ("#/events", "table.events"),
        ("#/console/sim-03", ".term[data-device='sim-03'] .xterm"),
    ):
        page.goto("/" + route)
        page.wait_for_selector(ready)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"{route} scrolls sideways on a phone ({width} px wide)"
    ctx.close()


def test_devices_link_state_live(browser, daemon):
    """A device whose link goes up and then down changes on the open devices page, no reload."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(30)
    port = srv.getsockname()[1]
    ctx, page = login(browser, daemon, "demo")
    page.evaluate("() => { window.__loaded = performance.timeOrigin; }")
    # Added on the data directory (the daemon picks it up within a second). Not through the API:
    # its address pattern takes ports of at most 4 digits, and free ports have 5.
    daemon.mo("device", "add", "live-01", f"tcp://127.0.0.1:{port}", "--description", "link goes away")
    conn, _ = srv.accept()
    page.wait_for_function("() => { const r = document.querySelector('tr[data-device=\"live-01\"]'); return r && r.dataset.state === 'up'; }", timeout=30000)
    conn.close()
    srv.close()
    page.wait_for_function("() => { const r = document.querySelector('tr[data-device=\"live-01\"]'); return r && r.dataset.state !== 'up'; }", timeout=30000)
    # The same page all along (the events drove it, not a reload).
    assert page.evaluate("() => window.__loaded === performance.timeOrigin")
    daemon.mo("device", "rm", "live-01")
    ctx.close()
