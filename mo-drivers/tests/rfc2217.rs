//! The `rfc2217` driver against ser2net 4.3 in front of a socat pty pair (PEERS.md), against
//! pyserial's RFC 2217 server on a loop port (modem-line changes, which a pty cannot make), and
//! against small misbehaving servers held by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/net.rs"]
mod net;
mod peers;
#[path = "peers/pyserial_rfc2217.rs"]
mod pyserial_rfc2217;
#[path = "peers/ser2net.rs"]
mod ser2net;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use mo_core::Error;
use mo_core::console::{Console, ConsoleConfig, LinkState, Mode, Session, ViewerEvent};
use mo_core::link::{Connector, ControlOp, Link, LinkStatus, ModemState};
use mo_core::log::{LogOptions, LogWriter, ReadOptions, read};
use mo_core::record::RecordKind;
use mo_drivers::rfc2217::Rfc2217Connector;
use mo_drivers::telnet::codec::{DO, IAC, SB, SE};
use mo_drivers::{DriverOptions, connector_for};
use peers::{STEP, open_peer, read_until};
use pyserial_rfc2217::PyserialRfc2217;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// The speed of a tty as `stty` reports it.
async fn tty_speed(path: &Path) -> Result<u32> {
    let out = tokio::process::Command::new("stty")
        .arg("-F")
        .arg(path)
        .arg("speed")
        .output()
        .await?;
    ensure!(out.status.success(), "stty: {:?}", out);
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

fn connector(address: &str) -> Result<Rfc2217Connector> {
    let url = mo_drivers::address::parse(address)?;
    Ok(Rfc2217Connector::from_url(
        &url,
        address,
        &DriverOptions::default(),
    )?)
}

/// Bytes both ways between the link and the pty's peer end.
async fn exchange(link: &mut Link, end: &mut tokio_serial::SerialStream, tag: &str) -> Result<()> {
    let out = format!("to the port {tag}\r\n\u{ff}");
    link.writer.write_all(out.as_bytes()).await?;
    let mut got = vec![0u8; out.len()];
    timeout(STEP, end.read_exact(&mut got))
        .await
        .context("the pty did not receive what the link wrote")??;
    ensure!(got == out.as_bytes(), "pty got {got:?}");
    let back = format!("from the port {tag}\r\n");
    end.write_all(back.as_bytes()).await?;
    let seen = read_until(&mut link.reader, back.as_bytes()).await?;
    ensure!(seen == back.as_bytes(), "link read {seen:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baud_changes_reach_the_pty_and_bytes_flow_both_ways() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peer = ser2net::start(dir.path())?;
    let mut end = open_peer(peer.pty())?;
    for baud in [19_200u32, 57_600] {
        let device = connector(
            &peer.rfc2217_address(&format!("?baud={baud}&data=8&parity=none&stop=1&flow=none")),
        )?;
        let state = device.port_state();
        let mut link = ser2net::connect_retrying(&device).await?;
        // connect returns once ser2net has answered every setting.
        ensure!(
            tty_speed(peer.pty().device_path()).await? == baud,
            "the pty's termios did not get {baud} baud"
        );
        {
            let s = state.borrow();
            ensure!(s.agreed && s.baud == Some(baud), "{s:?}");
            ensure!(s.data_size == Some(8) && s.parity == Some(1), "{s:?}");
            ensure!(s.stop_size == Some(1) && s.control == Some(1), "{s:?}");
        }
        exchange(&mut link, &mut end, &format!("at {baud}")).await?;
        drop(link);
    }
    Ok(peer.stop_all()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_is_accepted_and_the_link_keeps_working() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peer = ser2net::start(dir.path())?;
    let mut end = open_peer(peer.pty())?;
    let device = connector_for(
        &peer.rfc2217_address("?baud=38400"),
        &DriverOptions::default(),
    )?;
    ensure!(device.capabilities().send_break && !device.capabilities().window_size);
    let mut link = ser2net::connect_retrying(device.as_ref()).await?;
    for round in 0..2 {
        let started = tokio::time::Instant::now();
        timeout(
            STEP,
            link.control.control(ControlOp::Break {
                duration: Duration::from_millis(200),
            }),
        )
        .await??;
        ensure!(
            started.elapsed() >= Duration::from_millis(200),
            "break too short"
        );
        exchange(&mut link, &mut end, &format!("after break {round}")).await?;
    }
    let err = link
        .control
        .control(ControlOp::WindowSize { cols: 80, rows: 24 })
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Unsupported { .. }), "{err}");
    ensure!(
        tty_speed(peer.pty().device_path()).await? == 38_400,
        "the baud rate changed"
    );
    drop(link);
    Ok(peer.stop_all()?)
}

/// A plain telnet port refuses COM-PORT-OPTION; nothing listening; a server answering another
/// baud rate than asked: each connect fails with an error naming the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_name_the_address() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peer = ser2net::start(dir.path())?;
    let plain = format!("rfc2217://127.0.0.1:{}?baud=9600", peer.telnet_port());
    let err = connector(&plain)?.connect().await.unwrap_err();
    let text = err.to_string();
    ensure!(matches!(err, Error::Connect { .. }), "{text}");
    ensure!(
        text.contains(&plain) && text.contains("COM-PORT-OPTION"),
        "{text}"
    );
    peer.stop_all()?;

    let closed = format!("rfc2217://127.0.0.1:{}", mo_testsupport::free_port()?);
    let text = connector(&closed)?.connect().await.unwrap_err().to_string();
    ensure!(text.contains(&closed), "{text}");

    // A server that agrees, then reports 9600 when asked for 19200.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        stream.write_all(&[IAC, DO, 44]).await?;
        let mut buf = [0u8; 64];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == [44, 1, 0, 0]) {
            let n = stream.read(&mut buf).await?;
            anyhow::ensure!(n > 0, "client closed early: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(&[IAC, SB, 44, 101, 0, 0, 0x25, 0x80, IAC, SE])
            .await?;
        // Wait for the client to give up.
        while stream.read(&mut buf).await? > 0 {}
        anyhow::Ok(())
    });
    let wrong = format!("rfc2217://127.0.0.1:{port}?baud=19200");
    let text = connector(&wrong)?.connect().await.unwrap_err().to_string();
    ensure!(
        text.contains(&wrong) && text.contains("asked for baud 19200; the server set 9600"),
        "{text}"
    );
    timeout(STEP, server).await???;
    Ok(())
}

/// The modem lines from an RFC 2217 mask (bit 7 DCD, 6 RI, 5 DSR, 4 CTS).
fn lines(mask: u8) -> Option<ModemState> {
    Some(ModemState::from_msr(mask))
}

/// Wait until the link's status satisfies `done`.
async fn status_until(
    link: &Link,
    what: &str,
    done: impl FnMut(&LinkStatus) -> bool,
) -> Result<LinkStatus> {
    let mut status = link.control.status().context("no link status")?;
    let seen = timeout(STEP, status.wait_for(done))
        .await
        .map(|r| r.map(|s| s.clone()));
    match seen {
        Ok(seen) => Ok(seen?),
        Err(_) => anyhow::bail!("{what}: not reported; last {:?}", *status.borrow()),
    }
}

/// Read the session until a notice containing `needle` arrives; returns its text.
async fn notice(session: &mut Session, needle: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let event = tokio::time::timeout_at(deadline, session.recv())
            .await
            .with_context(|| format!("no notice containing `{needle}`"))?;
        match event {
            ViewerEvent::Chunk(c) if c.kind == RecordKind::Notice => {
                let text = String::from_utf8_lossy(&c.bytes).into_owned();
                if text.contains(needle) {
                    return Ok(text);
                }
            }
            ViewerEvent::Closed => anyhow::bail!("console closed before `{needle}`"),
            _ => {}
        }
    }
}

/// The modem notices in the record log on disk.
fn logged_modem_notices(logs: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for record in read(logs, &ReadOptions::default())? {
        let record = record?;
        if record.kind == RecordKind::Notice && record.bytes.starts_with(b"modem:") {
            out.push(String::from_utf8_lossy(&record.bytes).into_owned());
        }
    }
    Ok(out)
}

fn console_for(connector: Arc<dyn Connector>, logs: &Path) -> Result<Console> {
    let mut cfg = ConsoleConfig::new("port");
    cfg.backoff_initial = Duration::from_millis(100);
    let (writer, _) = LogWriter::open(logs, LogOptions::default())?;
    Ok(Console::spawn(cfg, connector, Some(Box::new(writer))))
}

/// ser2net on a pty (which has no modem lines) answers the settings with one NOTIFY-MODEMSTATE
/// of all lines down and never changes it: the console announces it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ser2net_modem_state_is_announced_once_after_connect() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let mut peer = ser2net::start(dir.path())?;
    let mut end = open_peer(peer.pty())?;
    let console = console_for(
        connector_for(
            &peer.rfc2217_address("?baud=19200"),
            &DriverOptions::default(),
        )?,
        &logs,
    )?;
    let mut viewer = console.attach("tester", Mode::Attach, Some(0)).await?;
    let mut state = console.watch_state();
    timeout(
        STEP * 3,
        state.wait_for(|s| matches!(s, LinkState::Up { .. })),
    )
    .await??;
    let mut modem = console.watch_modem();
    timeout(STEP, modem.wait_for(Option::is_some)).await??;
    ensure!(console.modem() == lines(0), "{:?}", console.modem());
    // Bytes still flow both ways through the console.
    viewer.write(b"ping\r").await?;
    let mut got = [0u8; 5];
    timeout(STEP, end.read_exact(&mut got)).await??;
    ensure!(&got == b"ping\r", "{got:?}");
    end.write_all(b"pong\r\n").await?;
    let deadline = tokio::time::Instant::now() + STEP;
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"pong") {
        if let ViewerEvent::Chunk(c) = tokio::time::timeout_at(deadline, viewer.recv()).await?
            && c.is_output()
        {
            seen.extend_from_slice(&c.bytes);
        }
    }
    console.shutdown().await;
    notice(&mut viewer, "console stopped").await?;
    ensure!(
        logged_modem_notices(&logs)? == ["modem: DCD down, DSR down, CTS down, RI off"],
        "{:?}",
        logged_modem_notices(&logs)?
    );
    Ok(peer.stop_all()?)
}

/// pyserial's loop port wires DTR to DSR and RTS to CTS: the link's status follows the client's
/// own SET-CONTROL commands as the server reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_status_follows_modem_state_notifications() -> Result<()> {
    let mut server = PyserialRfc2217::start().await?;
    let device = connector(&server.address("?baud=9600"))?;
    let link = device.connect().await?;
    status_until(&link, "the first modem state", |s| s.modem.is_some()).await?;
    // DCD, DSR and CTS up (the loop port's initial DTR and RTS), no ring.
    ensure!(
        status_until(&link, "lines up", |_| true).await?.modem == lines(0xb0),
        "first state"
    );
    link.control.control(ControlOp::SetDtr(false)).await?;
    status_until(&link, "DSR down", |s| s.modem == lines(0x90)).await?;
    link.control.control(ControlOp::SetRts(false)).await?;
    status_until(&link, "CTS down", |s| s.modem == lines(0x80)).await?;
    link.control.control(ControlOp::SetDtr(true)).await?;
    status_until(&link, "DSR up", |s| s.modem == lines(0xa0)).await?;
    ensure!(device.port_state().borrow().modem_state.is_some());
    drop(link);
    server.stop().await
}

/// What an admin sees: the first modem state after connect, then each change — carrier lost
/// and back — as a notice to every viewer and in the record log, and the current lines as
/// console state. A notification repeating the same lines adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_changes_reach_viewers_and_the_record_log() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let mut server = PyserialRfc2217::start().await?;
    let device = Arc::new(connector(&server.address(""))?);
    let mut port_state = device.port_state();
    let console = console_for(device.clone(), &logs)?;
    let mut spy = console.attach("spy", Mode::Spy, Some(0)).await?;
    let writer = console.attach("admin", Mode::Attach, Some(0)).await?;
    let first = notice(&mut spy, "modem:").await?;
    ensure!(first == "modem: DCD up, DSR up, CTS up, RI off", "{first}");
    ensure!(console.modem() == lines(0xb0), "{:?}", console.modem());

    // The server repeats the same lines: the driver sees the message, nobody gets a notice.
    let before = port_state.borrow_and_update().messages;
    writer.write(b"repeat\r").await?;
    timeout(STEP, port_state.wait_for(|s| s.messages > before)).await??;

    writer.write(b"carrier off\r").await?;
    let lost = notice(&mut spy, "modem:").await?;
    ensure!(
        lost == "modem: DCD down (carrier lost); DSR up, CTS up, RI off",
        "{lost}"
    );
    let mut modem = console.watch_modem();
    timeout(STEP, modem.wait_for(|m| *m == lines(0x30))).await??;

    writer.write(b"carrier on\r").await?;
    let back = notice(&mut spy, "modem:").await?;
    ensure!(
        back == "modem: DCD up (carrier back); DSR up, CTS up, RI off",
        "{back}"
    );
    console.shutdown().await;
    notice(&mut spy, "console stopped").await?;
    ensure!(console.modem().is_none(), "no link, no modem state");
    let logged = logged_modem_notices(&logs)?;
    ensure!(logged == [first, lost, back], "{logged:?}");
    server.stop().await
}
