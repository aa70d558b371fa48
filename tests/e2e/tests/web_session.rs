//! The web console's server side (issue 16, docs/web.md) against a real `mod --http`: cookie
//! sessions (login, the cookie's attributes, `/me` with the policy's actions, CSRF on writes,
//! logout ending open WebSockets, idle timeout and lifetime, wrong passwords throttled), the
//! embedded bundle at `/` and `/assets/*` with its CSP, and the API routes the console needs:
//! power on a device bound to a real snmpd outlet, notes, and the asciicast download.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mo_testsupport::http::{HttpApi, start_daemon_with_http};
use mo_testsupport::{Error, Result, Snmpd, ensure, run_test};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

fn check<T, E: std::fmt::Display>(r: std::result::Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| Error::Check(format!("{what}: {e}")))
}

/// One answer: status, headers, body text.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// A browser's view: the session cookie and CSRF token it holds.
#[derive(Clone, Default)]
struct Browser {
    cookie: Option<String>,
    csrf: Option<String>,
}

struct Web {
    api: HttpApi,
    client: reqwest::blocking::Client,
}

impl Web {
    fn new(api: HttpApi) -> Result<Web> {
        let client = check(
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build(),
            "build an HTTP client",
        )?;
        Ok(Web { api, client })
    }

    /// A request with the browser's cookie; `csrf` adds its X-CSRF-Token.
    fn call(
        &self,
        method: &str,
        path: &str,
        b: &Browser,
        csrf: bool,
        body: Option<Value>,
    ) -> Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method.clone(), self.api.url(path));
        if let Some(c) = &b.cookie {
            req = req.header("cookie", format!("mo_session={c}"));
        }
        if csrf && let Some(t) = &b.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let r = check(req.send(), &format!("{method} {path}"))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = check(r.text(), &format!("read the answer of {method} {path}"))?;
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    /// `POST /api/v1/login`; the raw reply.
    fn login_reply(&self, user: &str, password: &str) -> Result<Reply> {
        self.call(
            "POST",
            "/api/v1/login",
            &Browser::default(),
            false,
            Some(json!({"user": user, "password": password})),
        )
    }

    /// Log in; the browser with its cookie and CSRF token.
    fn login(&self, user: &str, password: &str) -> Result<Browser> {
        let r = self.login_reply(user, password)?;
        ensure!(r.status == 200, "login of {user}: {} {}", r.status, r.text);
        let set = r.header("set-cookie");
        let cookie = set
            .split(';')
            .next()
            .and_then(|kv| kv.trim().strip_prefix("mo_session="))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Check(format!("login set no mo_session cookie: {set:?}")))?;
        let csrf = r.json()["csrf"].as_str().unwrap_or("").to_string();
        ensure!(!csrf.is_empty(), "login answered no csrf token: {}", r.text);
        Ok(Browser {
            cookie: Some(cookie.to_string()),
            csrf: Some(csrf),
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    check(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "runtime",
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open a WebSocket with the browser's cookie and an Origin header.
async fn ws_connect(
    api: &HttpApi,
    path: &str,
    b: &Browser,
    origin: &str,
) -> std::result::Result<Ws, String> {
    let mut req = api.ws_url(path).into_client_request().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    if let Some(c) = &b.cookie {
        req.headers_mut()
            .insert("cookie", format!("mo_session={c}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => format!("HTTP {}", r.status()),
            e => e.to_string(),
        })
}

/// The text of the `closed` frame the socket gets within `limit`, if any.
async fn closed_frame(ws: &mut Ws, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Ok(Message::Text(t)) if t.contains("\"closed\"") => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return Some("(closed without a frame)".into()),
            _ => {}
        }
    }
    None
}

#[test]
fn login_sets_a_marked_cookie_and_me_lists_what_the_policy_allows() {
    run_test("web-login", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user_with_role("sam", "sam-pw", Some(("viewer", "all")))?;
        let web = Web::new(start_daemon_with_http(w, &[])?)?;

        let r = web.login_reply("alice", "alice-pw")?;
        ensure!(r.status == 200, "login: {} {}", r.status, r.text);
        let set = r.header("set-cookie");
        for attribute in ["mo_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
            ensure!(
                set.contains(attribute),
                "the cookie lacks {attribute}: {set}"
            );
        }
        ensure!(
            !set.contains("Secure"),
            "a plain-HTTP cookie is marked Secure (the browser would drop it): {set}"
        );
        let body = r.json();
        ensure!(
            body["user"] == "alice"
                && body["csrf"].as_str().is_some_and(|t| t.len() >= 32)
                && body["expires_at"].as_str().is_some_and(|t| t.contains('T'))
                && body["idle_timeout_s"] == 1800,
            "login answer: {body}"
        );

        let alice = web.login("alice", "alice-pw")?;
        let me = web.call("GET", "/api/v1/me", &alice, false, None)?;
        ensure!(me.status == 200, "/me: {} {}", me.status, me.text);
        let me = me.json();
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        ensure!(
            me["user"] == "alice"
                && me["csrf"] == alice.csrf.clone().unwrap().as_str()
                && names(&me["global"]).contains(&"admin".to_string()),
            "alice's /me: {me}"
        );
        let ex1 = names(&me["devices"]["ex1"]);
        for action in ["attach", "spy", "force", "power.control", "log.note"] {
            ensure!(
                ex1.iter().any(|a| a == action),
                "alice may {action} ex1 but /me says {ex1:?}"
            );
        }

        // A spy-only user: the UI must not offer attach.
        let sam = web.login("sam", "sam-pw")?;
        let me = web.call("GET", "/api/v1/me", &sam, false, None)?.json();
        let ex1 = names(&me["devices"]["ex1"]);
        ensure!(
            ex1.contains(&"spy".to_string()) && !ex1.contains(&"attach".to_string()),
            "sam (viewer) on ex1: {ex1:?}"
        );
        ensure!(
            !names(&me["global"]).contains(&"admin".to_string()),
            "sam is no admin: {me}"
        );
        // And the API refuses what the UI hides.
        let denied = web.call(
            "POST",
            "/api/v1/devices/ex1/notes",
            &sam,
            true,
            Some(json!({"text": "sam was here"})),
        )?;
        ensure!(
            denied.status == 403 && denied.code() == "forbidden",
            "a viewer wrote a note: {} {}",
            denied.status,
            denied.text
        );

        // No cookie, or a made-up one: 401.
        let none = web.call("GET", "/api/v1/me", &Browser::default(), false, None)?;
        ensure!(none.status == 401, "/me without a session: {}", none.status);
        let forged = Browser {
            cookie: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
            csrf: None,
        };
        let r = web.call("GET", "/api/v1/devices", &forged, false, None)?;
        ensure!(
            r.status == 401 && r.code() == "unauthorized",
            "a made-up cookie: {} {}",
            r.status,
            r.text
        );

        // A removed user's session ends with it.
        w.mo_ok(&["user", "rm", "sam"], None)?;
        let gone = web.call("GET", "/api/v1/me", &sam, false, None)?;
        ensure!(
            gone.status == 401 && gone.text.contains("removed"),
            "a removed user's session: {} {}",
            gone.status,
            gone.text
        );

        // The login is audited like every other.
        let audit = w.mo_ok(&["audit", "--limit", "200"], None)?;
        ensure!(
            audit
                .stdout
                .lines()
                .any(|l| l.contains("login") && l.contains("alice") && l.contains("web")),
            "no web login of alice in the audit log:\n{}",
            audit.stdout
        );
        Ok(())
    });
}

#[test]
fn csrf_guards_writes_and_logout_ends_the_session_and_its_websockets() {
    run_test("web-csrf", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_user("alice", "alice-pw")?;
        let api = start_daemon_with_http(w, &[])?;
        let web = Web::new(api.clone())?;
        let alice = web.login("alice", "alice-pw")?;

        // Reads need no token; a write without it, or with a wrong one, is refused.
        let r = web.call("GET", "/api/v1/devices", &alice, false, None)?;
        ensure!(
            r.status == 200,
            "GET with the cookie: {} {}",
            r.status,
            r.text
        );
        let note = json!({"text": "checked the fans"});
        let r = web.call(
            "POST",
            "/api/v1/devices/ex1/notes",
            &alice,
            false,
            Some(note.clone()),
        )?;
        ensure!(
            r.status == 403 && r.code() == "csrf",
            "a write without X-CSRF-Token: {} {}",
            r.status,
            r.text
        );
        let wrong = Browser {
            csrf: Some("x".repeat(43)),
            ..alice.clone()
        };
        let r = web.call(
            "POST",
            "/api/v1/devices/ex1/notes",
            &wrong,
            true,
            Some(note.clone()),
        )?;
        ensure!(
            r.status == 403 && r.code() == "csrf",
            "a write with a wrong X-CSRF-Token: {} {}",
            r.status,
            r.text
        );
        let r = web.call(
            "POST",
            "/api/v1/devices/ex1/notes",
            &alice,
            true,
            Some(note),
        )?;
        ensure!(
            r.status == 201 && r.json()["seq"].is_u64() && r.json()["time"].is_string(),
            "a write with the token: {} {}",
            r.status,
            r.text
        );
        // The refused writes left nothing: exactly one note in the log.
        let log = web.call("GET", "/api/v1/devices/ex1/log", &alice, false, None)?;
        ensure!(
            log.text.matches("checked the fans").count() == 1,
            "the log should hold the note once:\n{}",
            log.text
        );

        let rt = runtime()?;
        let own = format!("http://127.0.0.1:{}", api.port);
        let attach = "/api/v1/devices/ex1/attach?mode=spy";
        let mut ws = rt.block_on(async {
            // Another site's page cannot use the visitor's cookie for a console.
            let evil = ws_connect(&api, attach, &alice, "https://evil.example").await;
            ensure!(
                matches!(&evil, Err(e) if e.contains("403")),
                "a WebSocket with the cookie from another origin was accepted: {:?}",
                evil.map(|_| ())
            );
            ws_connect(&api, attach, &alice, &own)
                .await
                .map_err(|e| Error::Check(format!("the console's own page: {e}")))
        })?;

        let r = web.call("POST", "/api/v1/logout", &alice, true, None)?;
        ensure!(r.status == 204, "logout: {} {}", r.status, r.text);
        let cleared = r.header("set-cookie");
        ensure!(
            cleared.contains("mo_session=;") && cleared.contains("Max-Age=0"),
            "logout does not clear the cookie: {cleared}"
        );
        let closed = rt.block_on(closed_frame(&mut ws, Duration::from_secs(10)));
        ensure!(
            closed.as_deref().is_some_and(|t| t.contains("logged out")),
            "the open console was not closed by the logout: {closed:?}"
        );
        let r = web.call("GET", "/api/v1/me", &alice, false, None)?;
        ensure!(
            r.status == 401,
            "the cookie still works after logout: {}",
            r.status
        );
        let again = rt.block_on(ws_connect(&api, attach, &alice, &own));
        ensure!(
            matches!(&again, Err(e) if e.contains("401")),
            "a WebSocket with the ended session: {:?}",
            again.map(|_| ())
        );
        let audit = w.mo_ok(&["audit", "--limit", "200"], None)?;
        ensure!(
            audit.stdout.contains("logout"),
            "no logout in the audit log:\n{}",
            audit.stdout
        );
        Ok(())
    });
}

#[test]
fn idle_and_old_sessions_expire() {
    run_test("web-expiry", |w| {
        w.add_user("alice", "alice-pw")?;
        let web = Web::new(start_daemon_with_http(
            w,
            &["--web-idle-timeout", "1s", "--web-session-lifetime", "4s"],
        )?)?;
        let idle = web.login("alice", "alice-pw")?;
        let r = web.call("GET", "/api/v1/me", &idle, false, None)?;
        ensure!(r.status == 200, "a fresh session: {}", r.status);
        ensure!(r.json()["idle_timeout_s"] == 1, "{}", r.text);
        std::thread::sleep(Duration::from_millis(1600));
        let r = web.call("GET", "/api/v1/me", &idle, false, None)?;
        ensure!(
            r.status == 401 && r.text.contains("idle"),
            "a session idle for 1.6 s with --web-idle-timeout 1s: {} {}",
            r.status,
            r.text
        );

        // A session in use every 300 ms still ends at its lifetime.
        let busy = web.login("alice", "alice-pw")?;
        let start = Instant::now();
        let ended = loop {
            let r = web.call("GET", "/api/v1/me", &busy, false, None)?;
            if r.status != 200 {
                break r;
            }
            ensure!(
                start.elapsed() < Duration::from_secs(10),
                "a session in use outlived --web-session-lifetime 4s by far"
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        let lived = start.elapsed();
        ensure!(
            ended.status == 401
                && ended.text.contains("lifetime")
                && lived >= Duration::from_millis(3500),
            "the busy session ended after {lived:?}: {} {}",
            ended.status,
            ended.text
        );
        Ok(())
    });
}

#[test]
fn wrong_passwords_are_refused_audited_and_throttled() {
    run_test("web-throttle", |w| {
        w.add_user("alice", "alice-pw")?;
        let web = Web::new(start_daemon_with_http(w, &[])?)?;
        let r = web.login_reply("alice", "wrong")?;
        ensure!(
            r.status == 401 && r.code() == "unauthorized",
            "a wrong password: {} {}",
            r.status,
            r.text
        );
        ensure!(
            r.header("set-cookie").is_empty() && !r.header("www-authenticate").contains("Basic"),
            "a refused login set a cookie or challenged for Basic: {:?}",
            r.headers
        );
        let r = web.login_reply("nobody", "whatever")?;
        ensure!(r.status == 401, "an unknown user: {} {}", r.status, r.text);

        // The doors' throttle: a few more failures and the address is locked out.
        let mut locked = None;
        for attempt in 0..20 {
            let r = web.login_reply("alice", &format!("guess-{attempt}"))?;
            if r.status == 429 {
                locked = Some(r);
                break;
            }
            ensure!(
                r.status == 401,
                "attempt {attempt}: {} {}",
                r.status,
                r.text
            );
        }
        let locked = locked.ok_or_else(|| {
            Error::Check("22 wrong passwords in a row were never throttled".into())
        })?;
        ensure!(
            locked.code() == "too_many_requests"
                && locked
                    .header("retry-after")
                    .parse::<u64>()
                    .is_ok_and(|s| s >= 1),
            "the lockout: {} {:?}",
            locked.text,
            locked.headers
        );
        // Locked out means refused even with the right password, without a check.
        let r = web.login_reply("alice", "alice-pw")?;
        ensure!(
            r.status == 429,
            "the right password during a lockout: {} {}",
            r.status,
            r.text
        );
        let audit = w.mo_ok(&["audit", "--limit", "500"], None)?;
        ensure!(
            audit.stdout.contains("login.lockout")
                && audit
                    .stdout
                    .lines()
                    .any(|l| l.contains("web console login of `alice` refused")),
            "the failed web logins are not audited:\n{}",
            audit.stdout
        );
        Ok(())
    });
}

#[test]
fn the_bundle_is_served_with_its_policy() {
    run_test("web-assets", |w| {
        let api = start_daemon_with_http(w, &["--demo"])?;
        let web = Web::new(api)?;
        let anyone = Browser::default();
        let r = web.call("GET", "/", &anyone, false, None)?;
        ensure!(
            r.status == 200 && r.header("content-type").starts_with("text/html"),
            "GET /: {} {:?}",
            r.status,
            r.headers
        );
        ensure!(
            r.text.contains("<html") && r.text.contains("assets/app.js"),
            "GET / is not the console's page:\n{}",
            r.text
        );
        ensure!(
            r.header("content-security-policy")
                == "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                    connect-src 'self' ws: wss:; img-src 'self' data:; \
                    style-src 'self' 'unsafe-inline'",
            "CSP: {:?}",
            r.header("content-security-policy")
        );
        ensure!(
            r.header("cache-control") == "no-cache",
            "index.html cache: {:?}",
            r.header("cache-control")
        );
        let js = web.call("GET", "/assets/app.js", &anyone, false, None)?;
        ensure!(
            js.status == 200 && js.header("content-type").contains("javascript"),
            "app.js: {} {:?}",
            js.status,
            js.header("content-type")
        );
        let css = web.call("GET", "/assets/app.css", &anyone, false, None)?;
        ensure!(
            css.status == 200 && css.header("content-type").starts_with("text/css"),
            "app.css: {} {:?}",
            css.status,
            css.header("content-type")
        );
        let missing = web.call("GET", "/assets/nothing.js", &anyone, false, None)?;
        ensure!(missing.status == 404, "a missing asset: {}", missing.status);
        // The demo's user logs in to the console served by the demo.
        let demo = web.login("demo", "demo")?;
        let me = web.call("GET", "/api/v1/me", &demo, false, None)?.json();
        ensure!(
            me["devices"]["sim-01"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "attach")),
            "the demo user's /me: {me}"
        );
        Ok(())
    });
}

#[test]
fn power_notes_and_asciicast_through_a_browser_session() {
    run_test("web-api", |w| {
        let pdu = Snmpd::start(&w.dir().join("snmpd"))?;
        w.add_echo_device("db1", &["--power", &pdu.address("3")])?;
        w.mo_ok(
            &["secret", "set", "db1", "snmp_auth", "--stdin"],
            Some("private\n"),
        )?;
        w.add_user("alice", "alice-pw")?;
        let web = Web::new(start_daemon_with_http(w, &[])?)?;
        let alice = web.login("alice", "alice-pw")?;

        ensure!(pdu.outlet(3) == 1, "outlet 3 starts on");
        let off = web.call(
            "POST",
            "/api/v1/devices/db1/power",
            &alice,
            true,
            Some(json!({"action": "off"})),
        )?;
        let body = off.json();
        ensure!(
            off.status == 200
                && body["device"] == "db1"
                && body["action"] == "off"
                && body["state"] == "off"
                && body["message"].is_string(),
            "power off: {} {}",
            off.status,
            off.text
        );
        ensure!(
            pdu.outlet(3) == 2,
            "outlet 3 is {} after off",
            pdu.outlet(3)
        );
        let status = web.call(
            "POST",
            "/api/v1/devices/db1/power",
            &alice,
            true,
            Some(json!({"action": "status"})),
        )?;
        ensure!(
            status.status == 200 && status.json()["state"] == "off",
            "power status: {} {}",
            status.status,
            status.text
        );
        let on = web.call(
            "POST",
            "/api/v1/devices/db1/power",
            &alice,
            true,
            Some(json!({"action": "on"})),
        )?;
        ensure!(
            on.status == 200 && on.json()["state"] == "on" && pdu.outlet(3) == 1,
            "power on: {} {} (outlet {})",
            on.status,
            on.text,
            pdu.outlet(3)
        );

        let r = web.call(
            "POST",
            "/api/v1/devices/db1/notes",
            &alice,
            true,
            Some(json!({"text": "replaced PSU 2"})),
        )?;
        ensure!(r.status == 201, "note: {} {}", r.status, r.text);
        let seq = r.json()["seq"].as_u64().unwrap_or(0);
        let log = web.call("GET", "/api/v1/devices/db1/log", &alice, false, None)?;
        ensure!(
            log.text.contains("replaced PSU 2") && log.text.contains("power off"),
            "the log lacks the note or the power action:\n{}",
            log.text
        );
        let notes = w.mo_ok(&["log", "notes", "db1"], None)?;
        ensure!(
            notes.stdout.contains("replaced PSU 2") && notes.stdout.contains(&seq.to_string()),
            "mo log notes does not list note {seq}:\n{}",
            notes.combined()
        );

        let cast = web.call(
            "GET",
            "/api/v1/devices/db1/log/asciicast?since=1h",
            &alice,
            false,
            None,
        )?;
        ensure!(
            cast.status == 200 && cast.header("content-type") == "application/x-asciicast",
            "asciicast: {} {:?}",
            cast.status,
            cast.headers
        );
        let mut lines = cast.text.lines();
        let header: Value = check(
            serde_json::from_str(lines.next().unwrap_or("")),
            "the asciicast header line",
        )?;
        ensure!(
            header["version"] == 2 && header["width"].is_u64() && header["title"] == "db1",
            "asciicast header: {header}"
        );
        let mut events = 0;
        let mut note_marker = false;
        let mut last = 0.0f64;
        for line in lines {
            let e: Value = check(serde_json::from_str(line), "an asciicast event line")?;
            let a = e.as_array().filter(|a| a.len() == 3).ok_or_else(|| {
                Error::Check(format!("an event is not [time, code, data]: {line}"))
            })?;
            let t = a[0].as_f64().unwrap_or(-1.0);
            ensure!(
                t >= last && a[1].is_string() && a[2].is_string(),
                "bad event {line}"
            );
            last = t;
            events += 1;
            note_marker |= a[1] == "m" && a[2].as_str().unwrap_or("").contains("replaced PSU 2");
        }
        ensure!(
            events >= 3 && note_marker,
            "{events} events, note marker {note_marker}:\n{}",
            cast.text
        );
        Ok(())
    });
}

#[test]
fn under_https_the_cookie_is_secure() {
    run_test("web-https", |w| {
        let port = mo_testsupport::free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let daemon = w.start_daemon(&["--http", &addr, "--tls-self-signed"])?;
        daemon.wait_log(
            &format!("listening on {addr} (HTTP API, https://{addr}/api/v1/)"),
            mo_testsupport::WAIT,
        )?;
        w.add_user("alice", "alice-pw")?;
        let pem = check(
            std::fs::read(w.data_dir().join("tls/self-signed.crt")),
            "read the self-signed certificate",
        )?;
        let client = check(
            reqwest::blocking::Client::builder()
                .add_root_certificate(check(
                    reqwest::Certificate::from_pem(&pem),
                    "parse the self-signed certificate",
                )?)
                .timeout(Duration::from_secs(30))
                .build(),
            "build an HTTPS client",
        )?;
        let base = format!("https://{addr}");
        let r = check(
            client
                .post(format!("{base}/api/v1/login"))
                .header("content-type", "application/json")
                .body(json!({"user": "alice", "password": "alice-pw"}).to_string())
                .send(),
            "POST /api/v1/login over HTTPS",
        )?;
        let set = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        ensure!(
            r.status() == 200
                && set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.contains("Secure"),
            "login over HTTPS: {} {set:?}",
            r.status()
        );
        let cookie = set.split(';').next().unwrap_or("").to_string();
        let me = check(
            client
                .get(format!("{base}/api/v1/me"))
                .header("cookie", cookie)
                .send(),
            "GET /api/v1/me over HTTPS",
        )?;
        ensure!(me.status() == 200, "/me over HTTPS: {}", me.status());
        let page = check(client.get(format!("{base}/")).send(), "GET / over HTTPS")?;
        ensure!(
            page.status() == 200
                && page
                    .headers()
                    .get("content-security-policy")
                    .is_some_and(|v| v.to_str().unwrap_or("").contains("wss:")),
            "the page over HTTPS: {} {:?}",
            page.status(),
            page.headers()
        );
        Ok(())
    });
}
