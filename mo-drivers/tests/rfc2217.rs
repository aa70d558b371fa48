//! The `rfc2217` driver against ser2net 4.3 in front of a socat pty pair (PEERS.md), and against
//! small misbehaving servers held by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/net.rs"]
mod net;
mod peers;
#[path = "peers/ser2net.rs"]
mod ser2net;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use mo_core::Error;
use mo_core::link::{Connector, ControlOp, Link};
use mo_drivers::rfc2217::Rfc2217Connector;
use mo_drivers::telnet::codec::{DO, IAC, SB, SE};
use mo_drivers::{DriverOptions, connector_for};
use peers::{STEP, read_until};
use ser2net::Ser2net;
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
    let mut peer = Ser2net::start(dir.path()).await?;
    let mut end = peer.pair.open_peer()?;
    for baud in [19_200u32, 57_600] {
        let device = connector(
            &peer.rfc2217_address(&format!("?baud={baud}&data=8&parity=none&stop=1&flow=none")),
        )?;
        let state = device.port_state();
        let mut link = ser2net::connect_retrying(&device).await?;
        // connect returns once ser2net has answered every setting.
        ensure!(
            tty_speed(&peer.pair.dev).await? == baud,
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
    peer.stop_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_is_accepted_and_the_link_keeps_working() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peer = Ser2net::start(dir.path()).await?;
    let mut end = peer.pair.open_peer()?;
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
        tty_speed(&peer.pair.dev).await? == 38_400,
        "the baud rate changed"
    );
    drop(link);
    peer.stop_all().await
}

/// A plain telnet port refuses COM-PORT-OPTION; nothing listening; a server answering another
/// baud rate than asked: each connect fails with an error naming the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_name_the_address() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peer = Ser2net::start(dir.path()).await?;
    let plain = format!("rfc2217://127.0.0.1:{}?baud=9600", peer.telnet_port);
    let err = connector(&plain)?.connect().await.unwrap_err();
    let text = err.to_string();
    ensure!(matches!(err, Error::Connect { .. }), "{text}");
    ensure!(
        text.contains(&plain) && text.contains("COM-PORT-OPTION"),
        "{text}"
    );
    peer.stop_all().await?;

    let closed = format!("rfc2217://127.0.0.1:{}", net::free_port()?);
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
