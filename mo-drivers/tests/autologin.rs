//! Auto-login (issue 3 item 6): the console actor runs a login script on every (re)connect, and
//! the record log never holds the secret — a notice marks where it was sent.
//!
//! Peers: the built-in `sim` device (password not echoed) and inetutils telnetd running the fake
//! console, which answers each line with `got: LINE` so the test sees what the device received.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/net.rs"]
mod net;
mod peers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use mo_core::console::{Console, ConsoleConfig, LoginScript, Mode, Session, ViewerEvent};
use mo_core::log::{LogOptions, LogWriter, ReadOptions, read};
use mo_core::record::RecordKind;
use mo_core::secret::Secret;
use mo_drivers::{DriverOptions, connector_for};

const WAIT: Duration = Duration::from_secs(15);

/// Read the session until `needle` shows up in its output; returns everything seen.
async fn until(session: &mut Session, needle: &str) -> Result<String> {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, session.recv())
            .await
            .with_context(|| format!("no `{needle}` within {WAIT:?}; saw {seen:?}"))?;
        match event {
            ViewerEvent::Chunk(c) => seen.push_str(&String::from_utf8_lossy(&c.bytes)),
            ViewerEvent::Closed => bail!("console closed; saw {seen:?}"),
            _ => {}
        }
        if seen.contains(needle) {
            return Ok(seen);
        }
    }
}

fn start(url: &str, script: LoginScript, logs: &std::path::Path) -> Result<Console> {
    let connector = connector_for(url, &DriverOptions::default())?;
    let mut cfg = ConsoleConfig::new("dev");
    cfg.login = Some(Arc::new(script));
    cfg.backoff_initial = Duration::from_millis(100);
    let (writer, _) = LogWriter::open(logs, LogOptions::default())?;
    Ok(Console::spawn(cfg, connector, Some(Box::new(writer))))
}

/// Every input record and the notices, from the log on disk.
fn records(logs: &std::path::Path) -> Result<Vec<(RecordKind, String, String)>> {
    let mut out = Vec::new();
    for record in read(logs, &ReadOptions::default())? {
        let record = record?;
        out.push((
            record.kind,
            record.user,
            String::from_utf8_lossy(&record.bytes).into_owned(),
        ));
    }
    Ok(out)
}

#[tokio::test]
async fn sim_login_profile_reaches_the_shell_and_the_password_is_never_logged() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let logs = tmp.path().join("logs");
    let script = LoginScript::profile("linux", "admin", Some(Secret::new("hunter2")))?;
    let console = start(
        "sim://dev?boot=fast&login=admin&password=hunter2",
        script,
        &logs,
    )?;
    let mut session = console.attach("tester", Mode::Spy, Some(0)).await?;
    until(&mut session, "auto-login: done").await?;
    // Logged in: the shell answers.
    let writer = console.attach("tester", Mode::Attach, Some(0)).await?;
    writer.write(b"uptime\r").await?;
    until(&mut session, "up ").await?;

    // Reconnect: the script runs again (the sim logs out on a new connection).
    console.reconnect("tester").await?;
    let seen = until(&mut session, "auto-login: done").await?;
    ensure!(
        seen.contains("auto-login: started"),
        "no second run: {seen:?}"
    );
    console.shutdown().await;

    let recs = records(&logs)?;
    let inputs: Vec<_> = recs
        .iter()
        .filter(|(k, u, _)| *k == RecordKind::Input && u == "auto-login")
        .collect();
    ensure!(
        inputs.iter().filter(|(_, _, t)| t == "admin\r").count() >= 2,
        "user name not recorded as auto-login input: {inputs:?}"
    );
    ensure!(
        recs.iter()
            .filter(|(k, _, t)| *k == RecordKind::Notice && t.contains("redacted"))
            .count()
            >= 2,
        "no redaction notices"
    );
    ensure!(
        !recs.iter().any(|(_, _, t)| t.contains("hunter2")),
        "the password reached the record log"
    );
    Ok(())
}

#[tokio::test]
async fn telnet_device_receives_the_script_and_a_missing_prompt_gives_up_cleanly() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let telnetd = net::Telnetd::start(tmp.path())?;
    let logs = tmp.path().join("logs");
    let script = LoginScript::parse(
        "expect /login: $/\nsend {user}\\r\nexpect /got: operator/\nexpect /login: $/\n\
         secret {password}\\r\nexpect /got: s3cret/ 5s\nexpect /never-shown/ 300ms\n",
        "operator",
        Some(Secret::new("s3cret")),
    )?;
    let url = format!("telnet://127.0.0.1:{}", telnetd.port());
    let console = start(&url, script, &logs)?;
    let mut session = console.attach("tester", Mode::Spy, Some(0)).await?;
    let seen = until(&mut session, "auto-login failed").await?;
    ensure!(
        seen.contains("got: operator"),
        "user name did not arrive: {seen:?}"
    );
    ensure!(
        seen.contains("got: s3cret"),
        "secret did not arrive: {seen:?}"
    );
    ensure!(
        seen.contains("/never-shown/"),
        "failure does not name the step: {seen:?}"
    );
    console.shutdown().await;
    drop(telnetd);

    let recs = records(&logs)?;
    // The device echoed the secret back as output (its own doing); mo's input records never hold it.
    ensure!(
        !recs
            .iter()
            .any(|(k, _, t)| *k != RecordKind::Output && t.contains("s3cret")),
        "the secret reached a non-output record"
    );
    // The wake-up Enter before giving up is recorded.
    ensure!(
        recs.iter()
            .any(|(k, u, t)| *k == RecordKind::Input && u == "auto-login" && t == "\r"),
        "no wake-up input recorded"
    );
    Ok(())
}
