"""Access and forgery: a user without access sees neither the device nor its log and the API refuses
the direct URL; state-changing requests need the CSRF token; WebSocket upgrades from another origin
are refused."""

import base64
import os
import socket

from conftest import login


def session_cookie(ctx) -> str:
    cookies = {c["name"]: c["value"] for c in ctx.cookies()}
    assert "mo_session" in cookies, f"no session cookie after login: {list(cookies)}"
    return cookies["mo_session"]


def ws_upgrade_status(daemon, path: str, cookie: str, origin: str | None) -> int:
    """Send a WebSocket upgrade by hand (browsers cannot forge Origin) and return the status."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{daemon.http_port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Cookie: mo_session={cookie}",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", daemon.http_port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_no_access_sees_nothing(browser, daemon):
    ctx, page = login(browser, daemon, "carol")
    names = page.eval_on_selector_all("table.devices tbody tr", "els => els.map(e => e.dataset.device)")
    assert names == ["sim-02"], f"carol may see only sim-02, the page lists {names}"
    # The log page of a device she may not see shows no log.
    page.goto("/#/log/sim-01")
    page.wait_for_selector("body[data-page=log] .error")
    assert page.query_selector("#log li") is None
    # The API refuses the direct URLs (as if the device did not exist).
    for path in ("/api/v1/devices/sim-01", "/api/v1/devices/sim-01/log", "/api/v1/devices/sim-01/log/search?q=.", "/api/v1/devices/sim-01/log/asciicast"):
        r = ctx.request.get(daemon.base + path)
        assert r.status in (403, 404), f"{path} answered {r.status} to carol"
    assert ws_upgrade_status(daemon, "/api/v1/devices/sim-01/attach?mode=spy", session_cookie(ctx), daemon.base) in (403, 404)
    # Her own device works (positive control).
    assert ctx.request.get(daemon.base + "/api/v1/devices/sim-02/log").ok
    ctx.close()


def test_csrf_token_required(browser, daemon):
    ctx, page = login(browser, daemon, "demo")
    me = ctx.request.get(daemon.base + "/api/v1/me").json()
    assert me["user"] == "demo" and me["csrf"]
    # A state-changing request with the cookie but without the token is refused.
    r = ctx.request.post(daemon.base + "/api/v1/devices/sim-03/power", data={"action": "status"})
    assert r.status == 403, r.text()
    assert r.json()["error"]["code"] == "csrf"
    r = ctx.request.post(daemon.base + "/api/v1/logout")
    assert r.status == 403 and r.json()["error"]["code"] == "csrf"
    r = ctx.request.post(daemon.base + "/api/v1/logout", headers={"X-CSRF-Token": "wrong"})
    assert r.status == 403 and r.json()["error"]["code"] == "csrf"
    # The session is still alive; with the token the request passes.
    assert ctx.request.get(daemon.base + "/api/v1/me").ok
    r = ctx.request.post(daemon.base + "/api/v1/logout", headers={"X-CSRF-Token": me["csrf"]})
    assert r.status == 204
    assert ctx.request.get(daemon.base + "/api/v1/me").status == 401
    ctx.close()


def test_websocket_from_other_origin_refused(browser, daemon):
    ctx, page = login(browser, daemon, "demo")
    cookie = session_cookie(ctx)
    assert ws_upgrade_status(daemon, "/api/v1/devices/sim-03/attach?mode=spy", cookie, "http://evil.example") == 403
    assert ws_upgrade_status(daemon, "/api/v1/events/stream", cookie, "http://evil.example") == 403
    # The same upgrade from the daemon's own origin is accepted (positive control).
    assert ws_upgrade_status(daemon, "/api/v1/devices/sim-03/attach?mode=spy", cookie, daemon.base) == 101
    ctx.close()


def test_session_lifetime_expiry_returns_to_login(browser, work, snmpd):
    """A session past `mod --web-session-lifetime` ends: the open page goes back to the login form."""
    from conftest import Daemon

    short = work / "short-session"
    short.mkdir()
    d = Daemon(short, snmpd, ("--web-session-lifetime", "6s"))
    try:
        ctx, page = login(browser, d, "demo")
        page.goto("/#/console/sim-01")
        page.wait_for_selector(".term[data-device='sim-01'] .xterm")
        page.wait_for_selector("body[data-page=login] #user", timeout=60000)
        assert "session ended" in page.inner_text("#login-error").lower()
        assert ctx.request.get(d.base + "/api/v1/me").status == 401
        ctx.close()
    finally:
        d.stop()
