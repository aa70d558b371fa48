//! Event actions against real local receivers: a program, an HTTP listener, UDP and TCP syslog
//! listeners, and net-snmp's `snmptrapd`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mo_core::event::{Event, EventSource};
use mo_core::scan::Severity;
use mo_drivers::action::{ActionConfig, ActionOutcome, EventAction, run_action, run_action_for};
use mo_testsupport::{Snmptrapd, TrapUser, free_port, temp_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn event() -> Event {
    Event {
        id: 4242,
        time_ns: 1_795_000_000_000_000_000,
        last_ns: 1_795_000_000_000_000_000,
        device: "web1".into(),
        source: EventSource::Pattern,
        severity: Severity::Critical,
        message: "Kernel panic - it's \"bad\"; rm -rf / $HOME".into(),
        context: vec!["line before".into(), "Kernel panic".into()],
        count: 3,
        suppressed: false,
        acked_by: None,
        acked_ns: None,
        node: None,
    }
}

fn action(json: serde_json::Value) -> EventAction {
    let config: ActionConfig = serde_json::from_value(json).unwrap();
    EventAction::from_config("test", &config).unwrap()
}

fn config_error(json: serde_json::Value) -> String {
    let config: ActionConfig = serde_json::from_value(json).unwrap();
    EventAction::from_config("bad-one", &config)
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn exec_runs_the_program_with_the_right_argv_and_no_shell() -> Result<()> {
    let dir = temp_dir("exec-action")?;
    let out = dir.path().join("argv");
    let script = format!(
        "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}",
        out.display()
    );
    let a = action(serde_json::json!({
        "kind": "exec",
        "argv": ["/bin/sh", "-c", script, "sh", "{device}", "{severity}", "{message}",
                 "{source}", "{time}", "id={id}", "{{literal}}"],
        "timeout": "5s",
    }));
    let outcome = run_action(&a, &event()).await?;
    assert!(
        matches!(outcome, ActionOutcome::Exited { code: 0, .. }),
        "{outcome:?}"
    );
    let got = std::fs::read_to_string(&out)?;
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            "web1",
            "critical",
            "Kernel panic - it's \"bad\"; rm -rf / $HOME",
            "pattern",
            "2026-11-18T11:06:40.000000Z",
            "id=4242",
            "{literal}",
        ]
    );

    // Output is captured; a non-zero status is an error carrying stderr.
    let echo = action(serde_json::json!({"kind": "exec", "argv": ["/bin/echo", "{device}"]}));
    let outcome = run_action(&echo, &event()).await?;
    assert_eq!(
        outcome,
        ActionOutcome::Exited {
            code: 0,
            stdout: b"web1\n".to_vec()
        }
    );
    let failing = action(serde_json::json!({
        "kind": "exec", "argv": ["/bin/sh", "-c", "echo nope >&2; exit 3"]}));
    let err = run_action(&failing, &event())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("status 3") && err.contains("nope"), "{err}");
    let missing = action(serde_json::json!({"kind": "exec", "argv": ["/nonexistent/prog"]}));
    let err = run_action(&missing, &event())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/prog"), "{err}");
    Ok(())
}

#[tokio::test]
async fn exec_is_killed_at_its_timeout() -> Result<()> {
    let slow = action(serde_json::json!({
        "kind": "exec", "argv": ["/bin/sleep", "30"], "timeout": "200ms"}));
    let started = Instant::now();
    let err = run_action(&slow, &event()).await.unwrap_err();
    assert!(matches!(err, mo_core::Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    Ok(())
}

/// Read one HTTP/1.1 request (headers and a Content-Length body) from a connection.
async fn read_request(stream: &mut TcpStream) -> Result<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed mid-request");
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .context("no content-length")?;
        while data.len() < end + 4 + length {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                bail!("connection closed mid-body");
            }
            data.extend_from_slice(&buf[..n]);
        }
        return Ok((head, data[end + 4..end + 4 + length].to_vec()));
    }
}

/// A tiny HTTP server answering each request with the next status of `statuses`, and sending
/// back what it received.
async fn http_listener(
    statuses: Vec<u16>,
) -> Result<(u16, tokio::task::JoinHandle<Result<Vec<(String, Vec<u8>)>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for status in statuses {
            let (mut stream, _) = listener.accept().await?;
            let request = read_request(&mut stream).await?;
            seen.push(request);
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Ok(seen)
    });
    Ok((port, task))
}

#[tokio::test]
async fn webhook_posts_json_and_retries_with_backoff() -> Result<()> {
    let (port, server) = http_listener(vec![503, 500, 200]).await?;
    let hook = action(serde_json::json!({
        "kind": "webhook", "url": format!("http://127.0.0.1:{port}/hook?token=s3cret"),
        "retries": 3, "backoff": "100ms", "timeout": "5s"}));
    let started = Instant::now();
    let outcome = run_action(&hook, &event()).await?;
    assert_eq!(outcome, ActionOutcome::Delivered { attempts: 3 });
    // Backoff 100 ms then 200 ms.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let seen = server.await??;
    assert_eq!(seen.len(), 3);
    let (head, body) = &seen[2];
    assert!(
        head.starts_with("POST /hook?token=s3cret HTTP/1.1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let json: serde_json::Value = serde_json::from_slice(body)?;
    assert_eq!(json["id"], 4242);
    assert_eq!(json["device"], "web1");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["source"], "pattern");
    assert_eq!(json["message"], event().message);
    assert_eq!(json["context"][1], "Kernel panic");
    assert_eq!(json["count"], 3);
    assert_eq!(json["time"], "2026-11-18T11:06:40.000000Z");
    assert_eq!(seen[0].1, *body, "every attempt sends the same body");
    Ok(())
}

#[tokio::test]
async fn webhook_gives_up_on_client_errors_and_after_its_retries() -> Result<()> {
    let (port, server) = http_listener(vec![404]).await?;
    let hook = action(serde_json::json!({
        "kind": "webhook", "url": format!("http://127.0.0.1:{port}/?token=s3cret"),
        "backoff": "10ms"}));
    let err = run_action(&hook, &event()).await.unwrap_err().to_string();
    assert!(
        err.contains("404") && err.contains("attempt 1 of 4"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "the query is not shown: {err}");
    assert_eq!(server.await??.len(), 1);

    // Nobody listening: connection refused, retried, then an error.
    let port = free_port()?;
    let hook = action(serde_json::json!({
        "kind": "webhook", "url": format!("http://127.0.0.1:{port}/"),
        "retries": 2, "backoff": "10ms"}));
    let err = run_action(&hook, &event()).await.unwrap_err().to_string();
    assert!(err.contains("attempt 3 of 3"), "{err}");
    Ok(())
}

fn check_syslog(message: &[u8]) {
    let text = String::from_utf8(message.to_vec()).unwrap();
    // local0 (16) * 8 + critical (2) = 130.
    assert!(
        text.starts_with("<130>1 2026-11-18T11:06:40.000000Z "),
        "{text}"
    );
    let fields: Vec<&str> = text.splitn(7, ' ').collect();
    assert_eq!(fields[2], "testhost");
    assert_eq!(fields[3], "mo-test");
    assert_eq!(fields[4], std::process::id().to_string());
    assert_eq!(fields[5], "pattern");
    assert!(
        fields[6].starts_with("[mo@32473 id=\"4242\" device=\"web1\" count=\"3\"] \u{feff}"),
        "{text}"
    );
    assert!(text.ends_with(&event().message), "{text}");
}

#[tokio::test]
async fn syslog_reaches_a_udp_listener() -> Result<()> {
    let listener = UdpSocket::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let a = action(serde_json::json!({
        "kind": "syslog", "address": format!("127.0.0.1:{port}"), "transport": "udp",
        "hostname": "testhost", "app_name": "mo-test"}));
    assert_eq!(
        run_action(&a, &event()).await?,
        ActionOutcome::Delivered { attempts: 1 }
    );
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv(&mut buf)).await??;
    check_syslog(&buf[..n]);
    Ok(())
}

#[tokio::test]
async fn syslog_reaches_a_tcp_listener_with_octet_counting() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let reader = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await?;
        anyhow::Ok(all)
    });
    let a = action(serde_json::json!({
        "kind": "syslog", "address": format!("127.0.0.1:{port}"), "transport": "tcp",
        "hostname": "testhost", "app_name": "mo-test"}));
    run_action(&a, &event()).await?;
    let all = tokio::time::timeout(Duration::from_secs(5), reader).await???;
    let space = all.iter().position(|&b| b == b' ').context("no length")?;
    let length: usize = std::str::from_utf8(&all[..space])?.parse()?;
    assert_eq!(length, all.len() - space - 1, "one frame, exactly");
    check_syslog(&all[space + 1..]);
    Ok(())
}

/// The decoded varbinds every trap of [`event`] must show, by the names of docs/MO-EVENTS-MIB.txt.
const TRAP_LINES: &[&str] = &[
    "MO-EVENTS-MIB::moEventTrap",
    "MO-EVENTS-MIB::moEventDevice = STRING: web1",
    "MO-EVENTS-MIB::moEventSeverity = INTEGER: critical(5)",
    "MO-EVENTS-MIB::moEventMessage = STRING: Kernel panic - it's \"bad\"; rm -rf / $HOME",
    "MO-EVENTS-MIB::moEventSource = STRING: pattern",
    "MO-EVENTS-MIB::moEventId = STRING: 4242",
    "MO-EVENTS-MIB::moEventCount = Gauge32: 3",
    "MO-EVENTS-MIB::moEventPattern = STRING: panic",
];

async fn trap_arrives(trapd: &Snmptrapd, a: &EventAction, user: &str) -> Result<()> {
    assert_eq!(
        run_action_for(a, &event(), Some("panic")).await?,
        ActionOutcome::Delivered { attempts: 1 }
    );
    let trapd_wait = |needle: &str| trapd.wait_for(needle, Duration::from_secs(30));
    assert!(
        trapd_wait("moEventPattern"),
        "no trap arrived: {}",
        trapd.log_text()
    );
    let text = trapd.log_text();
    for needle in TRAP_LINES.iter().chain([&user]) {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    Ok(())
}

#[tokio::test]
async fn snmp_v2c_trap_reaches_snmptrapd_and_decodes_with_the_mib() -> Result<()> {
    let dir = temp_dir("snmptrapd")?;
    let trapd = Snmptrapd::start(dir.path(), &[])?;
    let a = action(serde_json::json!({
        "kind": "snmp_trap", "address": trapd.address(), "community": "public"}));
    trap_arrives(&trapd, &a, "SNMP v2c, community public").await
}

#[tokio::test]
async fn snmp_v3_trap_reaches_snmptrapd_with_sha_and_aes() -> Result<()> {
    let dir = temp_dir("snmptrapd-v3")?;
    let user = TrapUser {
        name: "mo-trapper".into(),
        engine_id: "80007ed9046d6f2d74657374".into(),
        auth_password: "auth-pass-123".into(),
        priv_password: "priv-pass-456".into(),
    };
    let trapd = Snmptrapd::start(dir.path(), std::slice::from_ref(&user))?;
    let a = action(serde_json::json!({
        "kind": "snmp_trap", "address": trapd.address(), "version": "3",
        "user": user.name, "auth": "sha", "auth_password": user.auth_password,
        "privacy": "aes", "priv_password": user.priv_password, "engine_id": user.engine_id}));
    assert!(
        !format!("{a:?}").contains("pass-"),
        "a password shows in the action's Debug output: {a:?}"
    );
    trap_arrives(&trapd, &a, "SNMP v3, user mo-trapper").await?;
    // A wrong password is dropped by snmptrapd: only one trap decoded.
    let wrong = action(serde_json::json!({
        "kind": "snmp_trap", "address": trapd.address(), "version": "3",
        "user": user.name, "auth_password": "not-the-password", "priv_password": user.priv_password,
        "engine_id": user.engine_id}));
    run_action_for(&wrong, &event(), Some("panic")).await?;
    assert!(
        trapd.wait_for("Authentication failed", Duration::from_secs(30))
            || trapd.wait_for("authentication failure", Duration::from_secs(1)),
        "snmptrapd did not refuse the wrong password: {}",
        trapd.log_text()
    );
    assert_eq!(trapd.log_text().matches("moEventPattern").count(), 1);
    Ok(())
}

#[tokio::test]
async fn power_and_macro_actions_are_handed_back() -> Result<()> {
    let power = action(serde_json::json!({"kind": "power", "operation": "cycle"}));
    let macro_ = action(serde_json::json!({"kind": "macro", "name": "collect-logs"}));
    for a in [&power, &macro_] {
        assert!(a.requires_ack());
        assert_eq!(run_action(a, &event()).await?, ActionOutcome::HandedBack);
    }
    assert!(!action(serde_json::json!({"kind": "exec", "argv": ["/bin/true"]})).requires_ack());
    Ok(())
}

#[test]
fn bad_action_configuration_is_refused_naming_the_field() {
    let cases = [
        (serde_json::json!({"kind": "exec", "argv": []}), "argv"),
        (
            serde_json::json!({"kind": "exec", "argv": ["/bin/x", "{devcie}"]}),
            "argv",
        ),
        (
            serde_json::json!({"kind": "exec", "argv": ["/bin/x"], "timeout": "soon"}),
            "timeout",
        ),
        (
            serde_json::json!({"kind": "webhook", "url": "ftp://x/"}),
            "url",
        ),
        (
            serde_json::json!({"kind": "webhook", "url": "not a url"}),
            "url",
        ),
        (
            serde_json::json!({"kind": "syslog", "address": "h:1", "transport": "sctp"}),
            "transport",
        ),
        (
            serde_json::json!({"kind": "syslog", "address": "h:1", "facility": "local9"}),
            "facility",
        ),
        (
            serde_json::json!({"kind": "power", "operation": "explode"}),
            "operation",
        ),
        (serde_json::json!({"kind": "macro", "name": " "}), "name"),
        (
            serde_json::json!({"kind": "macro", "name": "m", "targets": ["@"]}),
            "targets",
        ),
        (
            serde_json::json!({"kind": "snmp_trap", "address": "h:162", "version": "4"}),
            "version",
        ),
        (
            serde_json::json!({"kind": "snmp_trap", "address": "h:162", "user": "u"}),
            "user",
        ),
        (
            serde_json::json!({"kind": "snmp_trap", "address": "h:162", "version": "3"}),
            "user",
        ),
        (
            serde_json::json!({"kind": "snmp_trap", "address": "h:162", "version": "3",
                               "user": "u", "community": "c"}),
            "community",
        ),
        (
            serde_json::json!({"kind": "snmp_trap", "address": "h:162", "version": "3",
                               "user": "u", "auth_password": "secret-pw1", "engine_id": "xyz"}),
            "engine_id",
        ),
    ];
    for (json, field) in cases {
        let err = config_error(json);
        assert!(!err.contains("secret-pw1"), "a password in an error: {err}");
        assert!(err.contains("`bad-one`"), "{err}");
        assert!(err.contains(&format!("field `{field}`")), "{err}");
    }
    assert!(serde_json::from_value::<ActionConfig>(serde_json::json!({"kind": "pager"})).is_err());
}
