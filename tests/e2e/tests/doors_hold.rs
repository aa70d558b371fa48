//! The front doors hold (issue 13, items 3, 6, 7, 8): brute force is throttled per source
//! address, slow and idle clients are cut off, connections and channels are capped, WebSocket
//! upgrades check their Origin, `?token=` works only on WebSocket upgrades, demo passwords never
//! reach a public address, and revoking access reaches sessions that are already open.
//!
//! Loopback aliases (127.0.0.2) bind like separate hosts: the daemon sees another address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{Daemon, Error, Login, Result, WAIT, ensure, free_port, run_test};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

fn check<T, E: std::fmt::Display>(r: std::result::Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| Error::Check(format!("{what}: {e}")))
}

fn client_from(ip: [u8; 4]) -> Result<reqwest::blocking::Client> {
    check(
        reqwest::blocking::Client::builder()
            .local_address(IpAddr::from(ip))
            .timeout(Duration::from_secs(20))
            .build(),
        "build an HTTP client",
    )
}

/// The daemon's resident set size in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = check(
        std::fs::read_to_string(format!("/proc/{pid}/status")),
        "read the daemon's /proc status",
    )?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Error::Check(format!("no VmRSS in /proc/{pid}/status")))
}

/// Basic-auth GET: status and headers.
fn basic_get(
    c: &reqwest::blocking::Client,
    api: &HttpApi,
    user: &str,
    password: &str,
) -> Result<reqwest::blocking::Response> {
    check(
        c.get(api.url("/api/v1/devices"))
            .basic_auth(user, Some(password))
            .send(),
        "GET /api/v1/devices",
    )
}

#[test]
fn a_thousand_wrong_passwords_are_throttled_and_other_addresses_still_log_in() {
    run_test("doors-brute", |w| {
        let alice = w.add_user("alice", "right-pw")?;
        let api = start_daemon_with_http(w, &[])?;
        let pid = w.daemon()?.pid();
        let attacker = client_from([127, 0, 0, 1])?;
        let other = client_from([127, 0, 0, 2])?;
        // Warm up (allocator arenas, the store's caches) before the baseline.
        ensure!(
            basic_get(&other, &api, "alice", "right-pw")?.status() == 200,
            "alice cannot log in at all"
        );
        let rss_before = rss_kib(pid)?;

        let start = Instant::now();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for i in 0..1000 {
            let r = basic_get(&attacker, &api, "alice", &format!("wrong-{i}"))?;
            *statuses.entry(r.status().as_u16()).or_default() += 1;
        }
        let took = start.elapsed();
        let throttled = statuses.get(&429).copied().unwrap_or(0);
        ensure!(
            throttled >= 950,
            "1000 wrong passwords from one address: only {throttled} were throttled (429) \
             ({statuses:?}, {took:?})"
        );
        ensure!(
            took < Duration::from_secs(30),
            "1000 throttled attempts took {took:?}: lockouts should be answered without a check"
        );

        // Another address logs in at once, at both doors.
        let t = Instant::now();
        let ok = basic_get(&other, &api, "alice", "right-pw")?;
        let http_took = t.elapsed();
        ensure!(
            ok.status() == 200 && http_took < Duration::from_secs(1),
            "alice from 127.0.0.2 over HTTP: {} after {http_took:?}",
            ok.status()
        );
        let t = Instant::now();
        let list = alice
            .clone()
            .from_address("127.0.0.2")
            .run(Login::Shell, &["list"], None)?;
        let ssh_took = t.elapsed();
        ensure!(
            list.success() && ssh_took < Duration::from_secs(1),
            "alice from 127.0.0.2 over SSH took {ssh_took:?}:\n{}",
            list.combined()
        );

        // The attacker's address is locked at both doors, even with the right password. Wait
        // for a checked failure first: it starts a fresh (longer) lockout.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = basic_get(&attacker, &api, "alice", "still-wrong")?;
            if r.status() == 401 {
                break;
            }
            ensure!(Instant::now() < deadline, "the lockout never ended");
            std::thread::sleep(Duration::from_millis(50));
        }
        let locked = basic_get(&attacker, &api, "alice", "right-pw")?;
        ensure!(
            locked.status() == 429 && locked.headers().contains_key("retry-after"),
            "the right password from the locked-out address: {} {:?}",
            locked.status(),
            locked.headers()
        );
        let refused = alice.run(Login::Shell, &["list"], None)?;
        ensure!(
            !refused.success(),
            "SSH from the locked-out address was let in:\n{}",
            refused.combined()
        );

        // Audited: lockouts, and failed logins only up to the rate limit.
        let lockouts = w.mo_ok(
            &["audit", "--action", "login.lockout", "--limit", "100"],
            None,
        )?;
        ensure!(
            lockouts.stdout.contains("locked out"),
            "no lockout in `mo audit`:\n{}",
            lockouts.stdout
        );
        let denied = w.mo_ok(
            &[
                "audit", "--action", "login", "--denied", "--limit", "5000", "--json",
            ],
            None,
        )?;
        let rows: Value = check(serde_json::from_str(&denied.stdout), "mo audit --json")?;
        let n = rows.as_array().map_or(0, Vec::len);
        ensure!(
            (1..=150).contains(&n),
            "{n} failed-login rows for 1000+ failures: the audit rows should be rate-limited"
        );

        let rss_after = rss_kib(pid)?;
        ensure!(
            rss_after < rss_before + 32 * 1024,
            "the daemon grew from {rss_before} KiB to {rss_after} KiB during the flood"
        );
        Ok(())
    });
}

/// Whether the server closes `s` within `limit` (EOF, reset, or a response then EOF),
/// trickling `drip` bytes every 200 ms meanwhile.
fn closed_within(s: &mut TcpStream, limit: Duration, drip: Option<&[u8]>) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Some(d) = drip
            && s.write_all(d).is_err()
        {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A TCP connection to 127.0.0.1:`port` from source address `ip`.
fn connect_from(ip: [u8; 4], port: u16) -> Result<TcpStream> {
    let rt = check(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "runtime",
    )?;
    let stream = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.bind(SocketAddr::new(IpAddr::from(ip), 0))?;
        s.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
    });
    let stream = check(check(stream, "connect")?.into_std(), "into std")?;
    check(stream.set_nonblocking(false), "blocking")?;
    Ok(stream)
}

#[test]
fn slow_and_idle_clients_are_cut_off_and_connections_are_capped() {
    run_test("doors-slow", |w| {
        let alice = w.add_user("alice", "pw")?;
        let api = start_daemon_with_http(
            w,
            &[
                "--http-header-timeout",
                "1s",
                "--login-grace",
                "2s",
                "--max-connections-per-address",
                "4",
            ],
        )?;
        let ssh_port = w.port();

        // Slowloris: a header trickled byte by byte is cut off after the header timeout.
        let mut slow = connect_from([127, 0, 0, 1], api.port)?;
        check(
            slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"),
            "write",
        )?;
        ensure!(
            closed_within(&mut slow, Duration::from_secs(5), Some(b"X")),
            "a client trickling its header was still connected after 5 s (--http-header-timeout 1s)"
        );
        // An idle connection (nothing sent) is closed too.
        let mut idle = connect_from([127, 0, 0, 1], api.port)?;
        ensure!(
            closed_within(&mut idle, Duration::from_secs(5), None),
            "an idle HTTP connection stayed open past the header timeout"
        );
        // An SSH client that never logs in is disconnected after the login grace.
        let mut lazy = connect_from([127, 0, 0, 1], ssh_port)?;
        ensure!(
            closed_within(&mut lazy, Duration::from_secs(6), None),
            "an SSH client that never logged in was still connected after 6 s (--login-grace 2s)"
        );

        // Connection caps per source address: the fifth SSH connection from 127.0.0.1 is
        // closed at once, without a greeting; another address still gets in.
        let held: Vec<TcpStream> = (0..4)
            .map(|_| connect_from([127, 0, 0, 1], ssh_port))
            .collect::<Result<_>>()?;
        let mut fifth = connect_from([127, 0, 0, 1], ssh_port)?;
        fifth
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut greeting = Vec::new();
        let _ = fifth.read_to_end(&mut greeting);
        ensure!(
            !String::from_utf8_lossy(&greeting).starts_with("SSH-"),
            "the fifth SSH connection from one address was served (--max-connections-per-address 4)"
        );
        let list = alice
            .clone()
            .from_address("127.0.0.2")
            .run(Login::Shell, &["list"], None)?;
        ensure!(
            list.success(),
            "another address was refused while 127.0.0.1 was at its cap:\n{}",
            list.combined()
        );
        drop(held);

        // The same at the HTTP door: the fifth gets 503.
        let held: Vec<TcpStream> = (0..4)
            .map(|_| connect_from([127, 0, 0, 1], api.port))
            .collect::<Result<_>>()?;
        let mut fifth = connect_from([127, 0, 0, 1], api.port)?;
        check(
            fifth.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"),
            "write",
        )?;
        fifth
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = fifth.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        ensure!(
            answer.starts_with("HTTP/1.1 503"),
            "the fifth HTTP connection from one address got: {answer:?}"
        );
        drop(held);
        Ok(())
    });
}

#[test]
fn ssh_channels_per_connection_are_capped() {
    run_test("doors-channels", |w| {
        let alice = w.add_user("alice", "pw")?;
        w.start_daemon(&["--max-ssh-channels", "2"])?;
        // One connection (an OpenSSH master), several sessions over it.
        let sock = w.dir().join("master.sock");
        let sock_opt = format!("ControlPath={}", sock.display());
        let mut argv = alice.argv(Login::Shell, mo_testsupport::Tty::No, &[]);
        let dest = argv.len() - 1;
        argv.splice(
            dest..dest,
            ["-M".into(), "-N".into(), "-o".into(), sock_opt.clone()],
        );
        let mut master = std::process::Command::new(&argv[0]);
        master.args(&argv[1..]).envs(alice.env());
        let master = mo_testsupport::Peer::spawn("ssh master", master, None)?;
        let deadline = Instant::now() + WAIT;
        while !sock.exists() {
            ensure!(Instant::now() < deadline, "the ssh master did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let session = |remote: &[&str]| {
            let mut argv = alice.argv(Login::Shell, mo_testsupport::Tty::No, remote);
            let at = argv.iter().position(|a| a.contains('@')).unwrap();
            argv.splice(at..at, ["-o".to_string(), sock_opt.clone()]);
            let mut c = std::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        };
        // Two sessions stay open (shells waiting on stdin), the third is refused.
        let mut open = Vec::new();
        for i in 0..2 {
            let mut c = session(&[]);
            c.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null());
            open.push(mo_testsupport::Peer::spawn(
                &format!("session {i}"),
                c,
                None,
            )?);
        }
        std::thread::sleep(Duration::from_millis(500));
        let third = mo_testsupport::run_with_timeout(session(&["list"]), None, WAIT)?;
        ensure!(
            !third.success(),
            "a third channel on one connection was opened (--max-ssh-channels 2):\n{}",
            third.combined()
        );
        drop(open);
        drop(master);
        Ok(())
    });
}

async fn ws_connect(
    api: &HttpApi,
    path: &str,
    origin: Option<&str>,
) -> std::result::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let mut req = api.ws_url(path).into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => format!("HTTP {}", r.status()),
            e => e.to_string(),
        })
}

#[test]
fn query_tokens_origins_and_basic_challenges() {
    run_test("doors-origin", |w| {
        w.add_user("alice", "pw")?;
        let api = start_daemon_with_http(w, &["--allowed-origin", "https://consoles.example"])?;
        let token = add_token(w, "alice", "all")?;
        let c = client_from([127, 0, 0, 1])?;

        // ?token= is not a credential on plain requests (it would land in logs).
        let r = check(
            c.get(api.url(&format!("/api/v1/devices?token={token}")))
                .send(),
            "GET ?token=",
        )?;
        ensure!(
            r.status() == 401,
            "?token= on a plain request: {}",
            r.status()
        );
        // No Basic challenge for a caller that did not send Basic; one for a caller that did.
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        ensure!(
            challenge.contains("Bearer") && !challenge.contains("Basic"),
            "401 without credentials challenges with: {challenge:?}"
        );
        let r = basic_get(&c, &api, "alice", "wrong")?;
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        ensure!(
            r.status() == 401 && challenge.contains("Basic"),
            "401 after Basic: {} {challenge:?}",
            r.status()
        );

        let rt = check(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            "runtime",
        )?;
        let path = format!("/api/v1/events/stream?token={token}");
        let own = format!("http://127.0.0.1:{}", api.port);
        rt.block_on(async {
            let evil = ws_connect(&api, &path, Some("https://evil.example")).await;
            ensure!(
                matches!(&evil, Err(e) if e.contains("403")),
                "a WebSocket from another site's page was accepted: {:?}",
                evil.map(|_| ())
            );
            for origin in [None, Some(own.as_str()), Some("https://consoles.example")] {
                let ws = ws_connect(&api, &path, origin).await;
                ensure!(
                    ws.is_ok(),
                    "WebSocket with origin {origin:?} refused: {:?}",
                    ws.map(|_| ())
                );
            }
            Ok(())
        })
    });
}

#[test]
fn demo_passwords_never_listen_publicly_and_demo_tokens_expire() {
    run_test("doors-demo", |w| {
        w.mo_ok(&["user", "add", "demo", "--password-stdin"], Some("demo\n"))?;
        let public = format!("0.0.0.0:{}", free_port()?);
        let refused = Daemon::start(
            w.data_dir(),
            w.port(),
            &["--http", &public, "--insecure-http"],
        );
        let text = match refused {
            Ok(_) => {
                return Err(Error::Check(
                    "mod listened publicly with a demo password".into(),
                ));
            }
            Err(e) => e.to_string(),
        };
        ensure!(
            text.contains("demo") && text.contains("mo user rm demo"),
            "the refusal should name the user and the fix:\n{text}"
        );
        // Once the password is changed, the same command starts.
        w.mo_ok(
            &["user", "passwd", "demo", "--password-stdin"],
            Some("something-else\n"),
        )?;
        let mut d = Daemon::start(
            w.data_dir(),
            w.port(),
            &["--http", &public, "--insecure-http"],
        )?;
        d.stop()?;

        // The token --demo prints expires within a day.
        let http = format!("127.0.0.1:{}", free_port()?);
        w.start_daemon(&["--demo", "--http", &http])?;
        w.daemon()?.wait_log("export MO_TOKEN=", WAIT)?;
        // ID USER SCOPE EXPIRES LAST-USED STATE
        let list = w.mo_ok(&["token", "list"], None)?;
        let demo: Vec<Vec<&str>> = list
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|cols| cols.get(1) == Some(&"demo"))
            .collect();
        ensure!(
            !demo.is_empty() && demo.iter().all(|cols| cols.get(3) != Some(&"never")),
            "demo tokens without expiry:\n{}",
            list.stdout
        );
        Ok(())
    });
}

#[test]
fn revoked_access_reaches_open_sessions() {
    run_test("doors-live", |w| {
        w.add_echo_device("ex1", &[])?;
        let bob = w.add_user_with_role("bob", "bob-pw", Some(("operator", "all")))?;
        let carol = w.add_user_with_role("carol", "carol-pw", Some(("viewer", "all")))?;
        w.add_user_with_role("dave", "dave-pw", Some(("viewer", "all")))?;
        let api = start_daemon_with_http(w, &[])?;

        // A writer who loses `attach` but keeps `spy` is demoted; losing everything ends it.
        let pane = w.terminal("bob", &bob, Login::Attach("ex1"), &[])?;
        pane.wait_for("attached read-write", WAIT)?;
        w.mo_ok(&["grant", "add", "bob", "viewer", "all"], None)?;
        w.mo_ok(&["grant", "rm", "bob", "operator", "all"], None)?;
        pane.wait_for("may no longer write to ex1", Duration::from_secs(10))?;
        w.mo_ok(&["grant", "rm", "bob", "viewer", "all"], None)?;
        pane.wait_for(
            "disconnected: bob may no longer view ex1",
            Duration::from_secs(10),
        )?;

        // A removed user's shell ends with a notice.
        let shell = w.terminal("carol", &carol, Login::Shell, &[])?;
        shell.wait_for("mo>", WAIT)?;
        w.mo_ok(&["user", "rm", "carol"], None)?;
        shell.wait_for("user carol was removed", Duration::from_secs(10))?;

        // A revoked token's WebSocket viewer is closed, naming why.
        let token = add_token(w, "dave", "all")?;
        let id = token
            .strip_prefix("mo_")
            .and_then(|t| t.split('_').next())
            .unwrap_or_default()
            .to_string();
        let rt = check(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            "runtime",
        )?;
        let mut ws = rt
            .block_on(ws_connect(
                &api,
                &format!("/api/v1/devices/ex1/attach?mode=spy&token={token}"),
                None,
            ))
            .map_err(|e| Error::Check(format!("dave's viewer: {e}")))?;
        w.mo_ok(&["token", "revoke", &id], None)?;
        let closed = rt.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
                match msg {
                    Ok(Message::Text(t)) if t.contains("\"closed\"") => return Some(t.to_string()),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    _ => {}
                }
            }
            None
        });
        ensure!(
            closed.as_deref().is_some_and(|t| t.contains("revoked")),
            "dave's viewer was not closed with a reason after the token was revoked: {closed:?}"
        );

        let audit = w.mo_ok(&["audit", "--limit", "500"], None)?;
        for action in ["session.demoted", "session.revoked"] {
            ensure!(
                audit.stdout.contains(action),
                "no {action} in the audit log:\n{}",
                audit.stdout
            );
        }
        Ok(())
    });
}
