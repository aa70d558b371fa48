"""The Discover page (#/discover, issue 20): an admin probes the real snmpd PDU from the daemon's
host, sees what answered and the plan, applies it after a confirmation, and the store has the
outlet bound; a user who is not an admin gets neither the link nor a probe."""

from conftest import login, marker, screenshot


def test_discover_probe_plan_apply(browser, daemon, snmpd):
    # An outlet of the PDU is named `outlet-5`: a device of that name gets it as its power binding.
    device = "outlet-5"
    daemon.mo("device", "add", device, f"sim://{device}?boot=none", "--description", marker("discover"))
    ctx, page = login(browser, daemon, "demo")
    page.wait_for_selector("#nav-discover:not([hidden])")
    page.click("#nav-discover")
    page.wait_for_selector("body[data-page=discover] #targets")
    # Nothing to probe: the page says so without asking the daemon.
    page.click("#probe")
    # (the browser's own `required` check stops an empty form; type blanks to get past it)
    page.fill("#targets", " , ")
    page.click("#probe")
    page.wait_for_function("() => document.querySelector('#discover-error').textContent.includes('at least one target')")
    # More than 4096 addresses: the daemon's 400, shown with its message.
    page.fill("#targets", "10.0.0.0/19")
    page.fill("#ports", "ipmi")
    page.click("#probe")
    page.wait_for_function("() => document.body.dataset.discover === 'error'", timeout=30000)
    err = page.inner_text("#discover-error")
    assert "400" in err and "4096" in err, err
    # The PDU and one silent address (nothing answers SNMP on 127.0.0.2 at that port).
    page.fill("#targets", "127.0.0.1 127.0.0.2")
    page.fill("#ports", f"snmp:{snmpd.port}")
    page.fill("#timeout", "5s")
    page.click("#probe")
    page.wait_for_function("() => document.body.dataset.discover === 'done'", timeout=60000)
    summary = page.inner_text("#discover-summary")
    assert summary.startswith("probed: 1 answered, 1 silent (127.0.0.2)"), summary
    row = page.query_selector("tr[data-address='127.0.0.1'][data-kind=snmp]")
    assert row is not None, page.inner_text("#discover-result")
    text = row.inner_text()
    assert "PDU (apc)" in text and "8 outlets" in text and f"udp/{snmpd.port}" in text, text
    assert page.query_selector("tr[data-address='127.0.0.2'][data-kind=silent]") is not None
    plan = page.inner_text("#discover-plan")
    binding = f"snmp://127.0.0.1:{snmpd.port}/apc/5"
    assert f"~ device {device}" in plan and binding in plan, plan
    # The other outlets are not bound to anything: listed under "not added".
    assert "outlet-1" in page.inner_text("#discover-result ul.notes")
    screenshot(page, "discover")
    # Nothing is in the store yet.
    r = ctx.request.get(f"{daemon.base}/api/v1/devices/{device}")
    assert r.status == 200 and binding not in r.text(), r.text()
    # Apply: a confirmation first; Cancel leaves the store alone.
    page.click("#apply")
    page.wait_for_selector("dialog.confirm[open]")
    page.click("dialog.confirm button:not([data-confirm])")
    page.wait_for_selector("dialog.confirm", state="detached")
    assert binding not in ctx.request.get(f"{daemon.base}/api/v1/devices/{device}").text()
    page.click("#apply")
    page.click("dialog.confirm [data-confirm=yes]")
    page.wait_for_function("() => document.body.dataset.discover === 'applied'", timeout=60000)
    assert "Applied" in page.inner_text("#discover-applied")
    r = ctx.request.get(f"{daemon.base}/api/v1/devices/{device}")
    assert r.status == 200 and binding in r.text(), r.text()
    # The same probe again: nothing left to do.
    page.click("#probe")
    page.wait_for_function("() => document.body.dataset.discover === 'done'", timeout=60000)
    assert "No changes" in page.inner_text("#discover-plan")
    assert page.query_selector("#apply") is None
    ctx.close()
    daemon.mo("device", "rm", device)


def test_discover_refused_to_non_admin(browser, daemon):
    # bob may only watch: no Discover link, the page explains, the API answers 403.
    ctx, page = login(browser, daemon, "bob")
    assert page.query_selector("#nav-discover").is_hidden()
    page.goto("/#/discover")
    page.wait_for_selector("#discover-refused")
    assert "admin" in page.inner_text("#discover-refused")
    assert page.query_selector("#targets") is None
    # With the session's CSRF token, so the 403 is the permission's, not the CSRF check's.
    csrf = ctx.request.get(f"{daemon.base}/api/v1/me").json()["csrf"]
    assert csrf
    r = ctx.request.post(
        f"{daemon.base}/api/v1/discover",
        data={"targets": ["127.0.0.1"], "ports": "ssh"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status == 403, (r.status, r.text())
    ctx.close()
