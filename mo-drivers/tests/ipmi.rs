//! The `ipmi` driver and IPMI chassis power against ipmi_sim (PEERS.md), cipher suite 3, and
//! against small misbehaving UDP peers held by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/ipmi_sim.rs"]
mod ipmi_sim;
mod peers;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use ipmi_sim::{address, open_host, options};
use mo_core::Error;
use mo_core::link::{ControlOp, Link};
use mo_core::power::{PowerAction, PowerController, PowerState};
use mo_drivers::connector_for;
use mo_drivers::ipmi::IpmiPower;
use mo_drivers::ipmi::rmcp::{self, PayloadType};
use mo_testsupport::{IPMI_PASSWORD as PASSWORD, IpmiSim};
use peers::{STEP, read_until, read_until_down, read_until_from};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::timeout;

async fn connect(sim: &IpmiSim, extra: &str) -> mo_core::Result<Link> {
    let connector = connector_for(&address(sim, extra), &options(PASSWORD))?;
    timeout(STEP, connector.connect())
        .await
        .unwrap_or_else(|_| panic!("connect to {} hung", address(sim, extra)))
}

/// Text written on the host side of the pty shows on the link; text written to the link
/// arrives on the host side; BREAK is acknowledged; dropping the link frees the payload.
#[tokio::test]
async fn sol_carries_bytes_both_ways_and_break() -> Result<()> {
    let mut sim = ipmi_sim::start()?;
    // Keepalives every 0.3 s must not disturb a healthy link.
    let mut link = connect(&sim, "&keepalive=0.3").await?;
    let mut host = open_host(&mut sim)?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    host.write_all(b"hello from the host\r\n").await?;
    read_until(&mut link.reader, b"hello from the host\r\n").await?;

    link.writer.write_all(b"typed in mo\r").await?;
    link.writer.flush().await?;
    read_until_from(&mut host, b"typed in mo\r").await?;

    // More than one SOL packet each way, in order.
    let bulk: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
    link.writer.write_all(&bulk).await?;
    link.writer.write_all(b"<end>").await?;
    let got = read_until_from(&mut host, b"<end>").await?;
    ensure!(
        got.ends_with(&[&bulk[..], b"<end>"].concat()),
        "bulk to host damaged"
    );
    host.write_all(&bulk).await?;
    host.write_all(b"<back>").await?;
    let got = read_until(&mut link.reader, b"<back>").await?;
    ensure!(
        got.ends_with(&[&bulk[..], b"<back>"].concat()),
        "bulk from host damaged"
    );

    timeout(
        STEP,
        link.control.control(ControlOp::Break {
            duration: Duration::from_millis(250),
        }),
    )
    .await??;
    // Data still flows after the BREAK.
    link.writer.write_all(b"after break\r").await?;
    read_until_from(&mut host, b"after break\r").await?;
    let unsupported = link
        .control
        .control(ControlOp::WindowSize { cols: 80, rows: 24 })
        .await
        .unwrap_err();
    ensure!(
        matches!(unsupported, Error::Unsupported { .. }),
        "{unsupported}"
    );

    drop(link);
    // The payload was deactivated: a plain connect (no steal) works again.
    let deadline = tokio::time::Instant::now() + STEP;
    let mut again = loop {
        match connect(&sim, "").await {
            Ok(link) => break link,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("retrying after {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("reconnecting after dropping the link"),
        }
    };
    host.write_all(b"second session\r\n").await?;
    read_until(&mut again.reader, b"second session").await?;
    sim.check_alive()?;
    drop(again);
    Ok(sim.stop()?)
}

/// A second SOL session while one is active: a clear error naming the cause; with `steal=1`
/// the new session takes over and the old link goes down.
#[tokio::test]
async fn already_active_is_explained_and_steal_takes_over() -> Result<()> {
    let mut sim = ipmi_sim::start()?;
    let mut first = connect(&sim, "&keepalive=0.5").await?;
    let err = connect(&sim, "").await.unwrap_err();
    let text = err.to_string();
    ensure!(matches!(err, Error::Connect { .. }), "{text}");
    ensure!(text.contains("already active for another client"), "{text}");
    ensure!(text.contains("steal=1"), "{text}");
    ensure!(
        text.contains(&format!("127.0.0.1:{}", sim.port())),
        "{text}"
    );

    let mut second = connect(&sim, "&steal=1").await?;
    let mut host = open_host(&mut sim)?;
    host.write_all(b"to the thief\r\n").await?;
    read_until(&mut second.reader, b"to the thief").await?;
    second.writer.write_all(b"from the thief\r").await?;
    read_until_from(&mut host, b"from the thief").await?;
    // The first link learns it lost SOL (the BMC says so, or the keepalive gives up).
    let mut buf = [0u8; 256];
    let first_down = timeout(STEP, async {
        loop {
            match first.reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    ensure!(first_down.is_ok(), "the robbed link stayed up");
    sim.check_alive()?;
    drop(second);
    Ok(sim.stop()?)
}

/// A wrong password (or user) is an authentication error naming the BMC, for SOL and for
/// power; an unoffered cipher suite is a protocol error.
#[tokio::test]
async fn wrong_password_is_an_auth_error() -> Result<()> {
    let mut sim = ipmi_sim::start()?;
    let connector = connector_for(&sim.address(), &options("wrong"))?;
    let err = connector.connect().await.unwrap_err();
    let text = err.to_string();
    ensure!(matches!(err, Error::Auth { .. }), "{text}");
    ensure!(
        text.contains(&format!("127.0.0.1:{}", sim.port())),
        "{text}"
    );
    ensure!(!text.contains("wrong"), "the password leaked: {text}");
    let power = IpmiPower::from_address(&sim.address(), &options("wrong"))?;
    let err = power.status().await.unwrap_err();
    ensure!(matches!(err, Error::Auth { .. }), "{err}");
    sim.check_alive()?;
    // An unknown user is refused too.
    let unknown = format!("ipmi://nobody@127.0.0.1:{}?cipher=3", sim.port());
    let err = connector_for(&unknown, &options(PASSWORD))?
        .connect()
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Auth { .. }), "{err}");
    sim.check_alive()?;
    // ipmi_sim does not offer cipher suite 17 (PEERS.md): a protocol error that says so.
    let suite17 = format!("ipmi://admin@127.0.0.1:{}?cipher=17", sim.port());
    let err = connector_for(&suite17, &options(PASSWORD))?
        .connect()
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Protocol { .. }), "{err}");
    ensure!(
        err.to_string().contains("cipher suite 17, try ?cipher=3"),
        "{err}"
    );
    sim.check_alive()?;
    Ok(sim.stop()?)
}

/// ipmi_sim killed under an open link: the link goes down; once it is back a new connect works.
#[tokio::test]
async fn recovers_after_the_bmc_restarts() -> Result<()> {
    let mut sim = ipmi_sim::start()?;
    let mut link = connect(&sim, "&keepalive=0.3&timeout=0.3").await?;
    sim.kill()?;
    read_until_down(&mut link.reader).await?;
    let err = connect(&sim, "&timeout=0.2").await.unwrap_err();
    ensure!(matches!(err, Error::Timeout { .. }), "{err}");
    sim.restart()?;
    let mut link = connect(&sim, "").await?;
    let mut host = open_host(&mut sim)?;
    host.write_all(b"back again\r\n").await?;
    read_until(&mut link.reader, b"back again").await?;
    drop(link);
    Ok(sim.stop()?)
}

/// Chassis status, on, off and cycle, observed in the simulator's power state, and
/// cross-checked with ipmitool.
#[tokio::test]
async fn chassis_power_follows_the_controller() -> Result<()> {
    let mut sim = ipmi_sim::start()?;
    let power = IpmiPower::from_address(&sim.address(), &options(PASSWORD))?;
    ensure!(power.capabilities().supports(PowerAction::Cycle));
    assert_eq!(power.status().await?, PowerState::Off);

    power.perform(PowerAction::On).await?;
    assert_eq!(sim.power(), "1");
    assert_eq!(power.status().await?, PowerState::On);
    let tool = sim.ipmitool(&["chassis", "power", "status"])?;
    ensure!(tool.contains("Chassis Power is on"), "ipmitool says {tool}");

    power.perform(PowerAction::Off).await?;
    assert_eq!(sim.power(), "0");
    assert_eq!(power.status().await?, PowerState::Off);

    sim.set_power(true)?;
    let before = sim.power_log().lines().count();
    power.perform(PowerAction::Cycle).await?;
    let log = sim.power_log();
    let changes: Vec<&str> = log.lines().skip(before).collect();
    ensure!(
        changes.iter().any(|l| l.ends_with("power=0")),
        "cycle did not switch off: {changes:?}"
    );
    // The simulator turns the power back on after its cycle delay.
    let deadline = tokio::time::Instant::now() + STEP;
    while power.status().await? != PowerState::On {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "cycle never came back on: {}",
            sim.power_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sim.check_alive()?;
    Ok(sim.stop()?)
}

/// Nobody answering is a timeout naming the BMC; a BMC refusing the cipher suite is a protocol
/// error that says what to do.
#[tokio::test]
async fn silence_times_out_and_refusals_are_protocol_errors() -> Result<()> {
    let silent = UdpSocket::bind("127.0.0.1:0").await?;
    let port = silent.local_addr()?.port();
    let address = format!("ipmi://admin@127.0.0.1:{port}?timeout=0.1");
    let started = std::time::Instant::now();
    let err = connector_for(&address, &options("pw"))?
        .connect()
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Timeout { .. }), "{err}");
    ensure!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    ensure!(started.elapsed() < Duration::from_secs(3));

    // A peer that answers every Open Session Request with "no cipher suite match".
    let peer = UdpSocket::bind("127.0.0.1:0").await?;
    let port = peer.local_addr()?.port();
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = peer.recv_from(&mut buf).await {
            let Ok(rmcp::Packet::Session(p)) = rmcp::decode_packet(&buf[..n], None) else {
                continue;
            };
            let reply = [p.payload.first().copied().unwrap_or(0), 0x11];
            let wire = rmcp::encode_packet(
                None,
                PayloadType::OpenSessionResponse,
                0,
                0,
                &reply,
                [0; 16],
            );
            let _ = peer.send_to(&wire, from).await;
            // And some garbage, which must be ignored.
            let _ = peer.send_to(&[6, 0, 0xff, 7, 6, 0x80, 1], from).await;
        }
    });
    let address = format!("ipmi://admin@127.0.0.1:{port}?cipher=17&timeout=0.5");
    let err = IpmiPower::from_address(&address, &options("pw"))?
        .status()
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Protocol { .. }), "{err}");
    ensure!(err.to_string().contains("cipher suite 17"), "{err}");
    server.abort();
    Ok(())
}

/// The connector reads its address without I/O and announces BREAK.
#[test]
fn connector_reads_the_address() -> Result<()> {
    let c = connector_for("ipmi://admin@bmc1?cipher=17", &options("x"))?;
    ensure!(c.capabilities().send_break && !c.capabilities().window_size);
    assert_eq!(c.address(), "ipmi://admin@bmc1?cipher=17");
    let err = connector_for("ipmi://bmc1", &options("x")).unwrap_err();
    ensure!(err.to_string().contains("no user name"), "{err}");
    Ok(())
}
