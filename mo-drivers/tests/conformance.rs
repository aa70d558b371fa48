//! The driver conformance suite: one set of checks, run against every driver with a real peer.
//!
//! | driver | peer |
//! |--------|------|
//! | exec   | `cat` on a raw pty (the program itself is the device) |
//! | serial | a socat pty pair; the test holds the other end |
//! | unix   | a `UnixListener` in the test |
//! | sim    | the built-in simulated machine (login, then `echo hi`; `cat` for bulk data) |
//! | tcp    | a `TcpListener` in the test |
//! | telnet | inetutils telnetd behind socat, running a fake console (prompt, `got: LINE`; `cat` on a raw pty for bulk data) |
//! | rfc2217 | ser2net in front of a socat pty pair; the test holds the pty's other end |
//! | ssh    | OpenSSH sshd on loopback running `cat` on a raw pty (key login) |
//! | ipmi   | ipmi_sim (SOL, cipher suite 3) on a socat pty pair; the test holds the host side |
//!
//! Checks: bytes go both ways; what `capabilities()` announces is exactly what `control()` does
//! (`Ok` versus `Unsupported`) and the link still works afterwards; bulk data arrives intact and
//! in order, for every driver (1 MiB each way, both directions at once where the test holds the
//! other end or the device echoes; random bytes except through the sim's line discipline, which
//! gets numbered printable lines; `ipmi` moves 256 KiB, SOL carrying one small payload at a
//! time); when the device goes away the reader reports it, connecting fails while it is away
//! (where it can be away), and
//! connecting again succeeds once it is back.
//!
//! BREAK on serial: a pty cannot carry a break condition (PEERS.md), so the suite checks that
//! BREAK is accepted on the pty and that the link keeps working; the line state itself is only
//! observable on real hardware.
//!
//! DTR and RTS: a pty has no modem lines, so `serial` on a socat pair does not announce them,
//! must answer `Unsupported` and reports no modem state. `rfc2217` announces them and the commands must be accepted with
//! the link still working; ser2net on a pty never answers them (PEERS.md), so the line state is
//! not checked. `ipmi` runs without the refused-connect check (a stopped BMC times out;
//! tests/ipmi.rs checks that).

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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use mo_core::Error;
use mo_core::link::{ControlOp, Link};
use peers::{Fixture, Peer, STEP, read_until, read_until_down};
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

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
        Peer::LineEcho => {
            let line = format!("echo me {tag}");
            link.writer
                .write_all(format!("{line}\r").as_bytes())
                .await?;
            let want = format!("{line}\r\n{line}\r\n");
            let seen = read_until(&mut link.reader, want.as_bytes()).await?;
            ensure!(seen == want.as_bytes(), "cat answered {seen:?}");
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
    // A link without modem lines (serial on a pty: TIOCMGET answers ENOTTY) reports no modem
    // state rather than failing.
    if !fixture.connector().capabilities().modem_lines {
        let modem = link.control.status().and_then(|s| s.borrow().modem);
        ensure!(
            modem.is_none(),
            "{}: no modem lines announced, yet modem state {modem:?}",
            fixture.name()
        );
    }
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

fn pattern(seed: u64, size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// About `size` bytes of lines for a terminal's line discipline: each is a line number and
/// random printable ASCII (no control character, no DEL), 100 bytes with its `\r`.
fn printable_lines(seed: u64, size: usize) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..size.div_ceil(100))
        .map(|n| {
            let text: String = (0..90)
                .map(|_| char::from(b' ' + (rng.next_u32() % 95) as u8))
                .collect();
            format!("{n:08} {text}")
        })
        .collect()
}

/// Read exactly `size` bytes, counting them in `count` as they come (for a timeout's message).
async fn read_counted<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    size: usize,
    count: &AtomicUsize,
) -> std::io::Result<Vec<u8>> {
    let mut got = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        let n = reader.read(&mut got[filled..]).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("end of stream after {filled} of {size} bytes"),
            ));
        }
        filled += n;
        count.store(filled, Ordering::Relaxed);
    }
    Ok(got)
}

/// Where `got` first differs from `want`, for a failure message.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.min(b.len())..(at + 40).min(b.len())]).into_owned()
    };
    format!(
        "{} bytes, expected {}; first difference at byte {at}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    )
}

/// Check: bulk data ([`Fixture::bulk_bytes`], 1 MiB for most) arrives intact and in order, both
/// directions at once with a peer end or an echoing device.
async fn bulk_transfer_is_intact(mut fixture: impl Fixture) -> Result<()> {
    let size = fixture.bulk_bytes();
    let (mut link, peer) = open(&mut fixture).await?;
    let mut peer = fixture
        .bulk_peer(&mut link, peer)
        .await
        .with_context(|| format!("{}: switching the device to bulk mode", fixture.name()))?;
    let out = pattern(1, size);
    let back = pattern(2, size);
    let Link { reader, writer, .. } = &mut link;
    let limit = Duration::from_secs(60);
    match &mut peer {
        Peer::End(end) => {
            let (mut end_reader, mut end_writer) = tokio::io::split(end);
            let link_writes = async {
                writer.write_all(&out).await?;
                writer.flush().await
            };
            let (at_peer, at_link) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let peer_reads = read_counted(&mut end_reader, size, &at_peer);
            let peer_writes = async {
                end_writer.write_all(&back).await?;
                end_writer.flush().await
            };
            let link_reads = read_counted(reader, size, &at_link);
            let (a, b, c, d) = timeout(limit, async {
                tokio::join!(link_writes, peer_reads, peer_writes, link_reads)
            })
            .await
            .with_context(|| {
                format!(
                    "{size} bytes each way did not finish in time: {} reached the peer, {} the link",
                    at_peer.load(Ordering::Relaxed),
                    at_link.load(Ordering::Relaxed)
                )
            })?;
            a?;
            c?;
            let b = b?;
            ensure!(
                b == out,
                "the peer received different bytes: {}",
                first_difference(&b, &out)
            );
            let d = d?;
            ensure!(
                d == back,
                "the link read different bytes: {}",
                first_difference(&d, &back)
            );
        }
        Peer::Echo => {
            let writes = async {
                writer.write_all(&out).await?;
                writer.flush().await
            };
            let back = AtomicUsize::new(0);
            let reads = read_counted(reader, size, &back);
            let (w, r) = timeout(limit, async { tokio::join!(writes, reads) })
                .await
                .with_context(|| {
                    format!(
                        "a {size}-byte echo did not finish in time: {} bytes came back",
                        back.load(Ordering::Relaxed)
                    )
                })?;
            w?;
            let r = r?;
            ensure!(
                r == out,
                "the echo differs from what was sent: {}",
                first_difference(&r, &out)
            );
        }
        Peer::LineEcho => {
            let lines = printable_lines(3, size);
            let typed: String = lines.iter().map(|l| format!("{l}\r")).collect();
            let want: String = lines.iter().map(|l| format!("{l}\r\n{l}\r\n")).collect();
            let writes = async {
                writer.write_all(typed.as_bytes()).await?;
                writer.flush().await
            };
            let back = AtomicUsize::new(0);
            let reads = read_counted(reader, want.len(), &back);
            let (w, r) = timeout(limit, async { tokio::join!(writes, reads) })
                .await
                .with_context(|| {
                    format!(
                        "{} lines through cat did not finish in time: {} of {} bytes came back",
                        lines.len(),
                        back.load(Ordering::Relaxed),
                        want.len()
                    )
                })?;
            w?;
            let r = r?;
            ensure!(
                r == want.as_bytes(),
                "cat answered differently: {}",
                first_difference(&r, want.as_bytes())
            );
        }
        Peer::Dialogue { .. } => bail!(
            "{}: a dialogue cannot carry bulk data; the fixture's bulk_peer must switch the \
             device into a mode that can",
            fixture.name()
        ),
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
