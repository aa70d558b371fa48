//! The driver conformance suite: one set of checks, run against every driver with a real peer.
//!
//! | driver | peer |
//! |--------|------|
//! | exec   | `cat` on a raw pty (the program itself is the device) |
//! | serial | a socat pty pair; the test holds the other end |
//! | unix   | a `UnixListener` in the test |
//! | sim    | the built-in simulated machine (login, then `echo hi`) |
//! | tcp    | a `TcpListener` in the test |
//! | telnet | inetutils telnetd behind socat, running a fake console (prompt, `got: LINE`) |
//! | rfc2217 | ser2net in front of a socat pty pair; the test holds the pty's other end |
//! | ssh    | OpenSSH sshd on loopback running `cat` on a raw pty (key login) |
//! | ipmi   | ipmi_sim (SOL, cipher suite 3) on a socat pty pair; the test holds the host side |
//!
//! Checks: bytes go both ways; what `capabilities()` announces is exactly what `control()` does
//! (`Ok` versus `Unsupported`) and the link still works afterwards; 1 MiB arrives intact and in
//! order (both directions at once where the test holds the other end); when the device goes away
//! the reader reports it, connecting fails while it is away (where it can be away), and
//! connecting again succeeds once it is back.
//!
//! BREAK on serial: a pty cannot carry a break condition (PEERS.md), so the suite checks that
//! BREAK is accepted on the pty and that the link keeps working; the line state itself is only
//! observable on real hardware.
//!
//! DTR and RTS: a pty has no modem lines, so `serial` on a socat pair does not announce them and
//! must answer `Unsupported`. `rfc2217` announces them and the commands must be accepted with
//! the link still working; ser2net on a pty never answers them (PEERS.md), so the line state is
//! not checked. `ipmi` runs without bulk transfer (SOL at 115200 baud) and without the
//! refused-connect check (a stopped BMC times out; tests/ipmi.rs checks that).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/ipmi_sim.rs"]
mod ipmi_sim;
#[path = "peers/net.rs"]
mod net;
mod peers;
#[path = "peers/ser2net.rs"]
mod ser2net;
#[path = "peers/sshd.rs"]
mod sshd;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use mo_core::Error;
use mo_core::link::{ControlOp, Link};
use peers::{Fixture, Peer, STEP, read_until, read_until_down};
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Size of the bulk transfer.
const BULK: usize = 1 << 20;

/// Connect, with a clear message on failure. A device that serves one connection at a time
/// (ser2net) may hang up on, or ignore, a new one: [`ser2net::connect_retrying`] retries it,
/// as the console actor retries with its backoff.
async fn connect(fixture: &dyn Fixture) -> Result<Link> {
    let connector = fixture.connector();
    if fixture.serves_one_at_a_time() {
        return ser2net::connect_retrying(connector.as_ref())
            .await
            .with_context(|| format!("{}: connect", fixture.name()));
    }
    let link = timeout(STEP, connector.connect())
        .await
        .context("connect timed out")?
        .with_context(|| format!("{}: connect", fixture.name()))?;
    Ok(link)
}

/// Bytes written to the link reach the device, and bytes from the device are read.
async fn exchange(link: &mut Link, peer: &mut Peer, tag: &str) -> Result<()> {
    match peer {
        Peer::End(end) => {
            let to_device = format!("to the device {tag}\n");
            link.writer.write_all(to_device.as_bytes()).await?;
            link.writer.flush().await?;
            let mut got = vec![0u8; to_device.len()];
            timeout(STEP, end.read_exact(&mut got))
                .await
                .context("the peer did not receive what the link wrote")??;
            ensure!(got == to_device.as_bytes(), "peer got {got:?}");
            let from_device = format!("from the device {tag}\n");
            end.write_all(from_device.as_bytes()).await?;
            end.flush().await?;
            let seen = read_until(&mut link.reader, from_device.as_bytes()).await?;
            ensure!(
                seen == from_device.as_bytes(),
                "link read extra bytes: {seen:?}"
            );
        }
        Peer::Echo => {
            let line = format!("echo me {tag}\n");
            link.writer.write_all(line.as_bytes()).await?;
            let seen = read_until(&mut link.reader, line.as_bytes()).await?;
            ensure!(seen == line.as_bytes(), "echo came back as {seen:?}");
        }
        Peer::Dialogue { send, expect } => {
            link.writer.write_all(send).await?;
            read_until(&mut link.reader, expect.as_bytes()).await?;
        }
    }
    Ok(())
}

/// Connect and wait for the device's greeting (its first bytes, for exec and sim).
async fn open(fixture: &mut dyn Fixture) -> Result<(Link, Peer)> {
    let mut link = connect(fixture).await?;
    let peer = timeout(STEP, fixture.accept(&mut link))
        .await
        .context("the device did not greet")??;
    Ok((link, peer))
}

/// Check: connect; bytes written arrive; bytes sent by the peer are read.
async fn carries_bytes_both_ways(mut fixture: impl Fixture) -> Result<()> {
    let (mut link, mut peer) = open(&mut fixture).await?;
    for round in 0..3 {
        exchange(&mut link, &mut peer, &format!("round {round}")).await?;
    }
    Ok(())
}

/// Check: every control operation answers `Ok` exactly when the capability is announced, and
/// `Unsupported` otherwise; the link keeps working afterwards.
async fn capabilities_match_control(mut fixture: impl Fixture) -> Result<()> {
    let announced = fixture.connector().capabilities();
    let (mut link, mut peer) = open(&mut fixture).await?;
    let ops = [
        (
            ControlOp::WindowSize {
                cols: 132,
                rows: 43,
            },
            announced.window_size,
        ),
        (
            ControlOp::Break {
                duration: Duration::from_millis(50),
            },
            announced.send_break,
        ),
        (ControlOp::SetDtr(true), announced.modem_lines),
        (ControlOp::SetRts(true), announced.modem_lines),
        (ControlOp::SetRts(false), announced.modem_lines),
        (ControlOp::SetDtr(false), announced.modem_lines),
        (ControlOp::SetDtr(true), announced.modem_lines),
        (ControlOp::SetRts(true), announced.modem_lines),
    ];
    for (op, supported) in ops {
        let result = timeout(STEP, link.control.control(op))
            .await
            .with_context(|| format!("{} timed out", op.name()))?;
        match (supported, result) {
            (true, Ok(())) => {}
            (false, Err(Error::Unsupported { operation, what })) => {
                ensure!(operation == op.name(), "wrong operation named: {operation}");
                ensure!(!what.is_empty(), "Unsupported names nothing");
            }
            (true, Err(e)) => bail!(
                "{}: {} announced but failed: {e}",
                fixture.name(),
                op.name()
            ),
            (false, Ok(())) => bail!("{}: {} not announced but Ok", fixture.name(), op.name()),
            (false, Err(e)) => bail!(
                "{}: {} gave {e}, not Unsupported",
                fixture.name(),
                op.name()
            ),
        }
    }
    // The link still carries bytes. After a BREAK the sim sits in its boot monitor, so for a
    // dialogue only check that the device still answers at all.
    match &mut peer {
        Peer::Dialogue { .. } => {
            link.writer.write_all(b"\r").await?;
            let mut buf = [0u8; 64];
            let n = timeout(STEP, link.reader.read(&mut buf)).await??;
            ensure!(n > 0, "no answer after the control operations");
        }
        _ => exchange(&mut link, &mut peer, "after control").await?,
    }
    let again = fixture.connector().capabilities();
    ensure!(
        (again.send_break, again.window_size, again.modem_lines)
            == (
                announced.send_break,
                announced.window_size,
                announced.modem_lines
            ),
        "capabilities changed after connect: {announced:?} -> {again:?}"
    );
    Ok(())
}

fn pattern(seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; BULK];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Check: 1 MiB arrives intact and in order (both directions at once with a peer end).
async fn bulk_transfer_is_intact(mut fixture: impl Fixture) -> Result<()> {
    if !fixture.carries_bulk() {
        return Ok(());
    }
    let (mut link, mut peer) = open(&mut fixture).await?;
    let out = pattern(1);
    let back = pattern(2);
    let Link { reader, writer, .. } = &mut link;
    let limit = Duration::from_secs(60);
    match &mut peer {
        Peer::End(end) => {
            let (mut end_reader, mut end_writer) = tokio::io::split(end);
            let link_writes = async {
                writer.write_all(&out).await?;
                writer.flush().await
            };
            let peer_reads = async {
                let mut got = vec![0u8; BULK];
                end_reader.read_exact(&mut got).await.map(|_| got)
            };
            let peer_writes = async {
                end_writer.write_all(&back).await?;
                end_writer.flush().await
            };
            let link_reads = async {
                let mut got = vec![0u8; BULK];
                reader.read_exact(&mut got).await.map(|_| got)
            };
            let (a, b, c, d) = timeout(limit, async {
                tokio::join!(link_writes, peer_reads, peer_writes, link_reads)
            })
            .await
            .context("1 MiB each way did not finish in time")?;
            a?;
            c?;
            ensure!(b? == out, "the peer received different bytes");
            ensure!(d? == back, "the link read different bytes");
        }
        Peer::Echo => {
            let writes = async { writer.write_all(&out).await };
            let reads = async {
                let mut got = vec![0u8; BULK];
                reader.read_exact(&mut got).await.map(|_| got)
            };
            let (w, r) = timeout(limit, async { tokio::join!(writes, reads) })
                .await
                .context("1 MiB echo did not finish in time")?;
            w?;
            ensure!(r? == out, "the echo differs from what was sent");
        }
        Peer::Dialogue { .. } => bail!("a dialogue device cannot carry bulk data"),
    }
    exchange(&mut link, &mut peer, "after bulk").await
}

/// Check: when the device goes away the reader says so; while it is away connecting fails
/// (where it can be away) with an error naming the address; once back, connecting succeeds.
async fn reconnects_after_peer_goes_away(mut fixture: impl Fixture) -> Result<()> {
    let (mut link, mut peer) = open(&mut fixture).await?;
    exchange(&mut link, &mut peer, "first").await?;
    let went_away = fixture.stop(peer).await?;
    if went_away {
        read_until_down(&mut link.reader)
            .await
            .with_context(|| format!("{}: reader after the device went away", fixture.name()))?;
    }
    drop(link);
    if fixture.connect_fails_when_stopped() {
        let connector = fixture.connector();
        match timeout(STEP, connector.connect()).await? {
            Ok(_) => bail!(
                "{}: connect succeeded while the device is gone",
                fixture.name()
            ),
            Err(e) => {
                let text = e.to_string();
                ensure!(
                    matches!(e, Error::Connect { .. }),
                    "not a Connect error: {text}"
                );
                ensure!(
                    text.contains(&connector.address()),
                    "error does not name the address: {text}"
                );
            }
        }
    }
    fixture.restart().await?;
    for round in 0..2 {
        let (mut link, mut peer) = open(&mut fixture).await?;
        exchange(&mut link, &mut peer, &format!("again {round}")).await?;
    }
    Ok(())
}

/// One test per check for a driver.
macro_rules! conformance {
    ($driver:ident, $fixture:expr) => {
        mod $driver {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn carries_bytes_both_ways() -> Result<()> {
                super::carries_bytes_both_ways($fixture).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn capabilities_match_control() -> Result<()> {
                super::capabilities_match_control($fixture).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bulk_transfer_is_intact() -> Result<()> {
                super::bulk_transfer_is_intact($fixture).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reconnects_after_peer_goes_away() -> Result<()> {
                super::reconnects_after_peer_goes_away($fixture).await
            }
        }
    };
}

conformance!(exec, peers::ExecFixture::start()?);
conformance!(serial, peers::SerialFixture::start().await?);
conformance!(unix, peers::UnixFixture::start().await?);
conformance!(sim, peers::SimFixture::start()?);
conformance!(tcp, net::TcpFixture::start().await?);
conformance!(telnet, net::TelnetFixture::start().await?);
conformance!(rfc2217, ser2net::Rfc2217Fixture::start().await?);
conformance!(ssh, sshd::SshFixture::start().await?);
conformance!(ipmi, ipmi_sim::IpmiFixture::start().await?);
