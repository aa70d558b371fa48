//! The `serial` driver beyond the conformance suite, on a socat pty pair: line settings reach the
//! port, the port is exclusive, BREAK as far as a pty allows, modem lines reported unsupported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod peers;

use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use mo_core::Error;
use mo_core::link::{ControlOp, Link};
use mo_drivers::{DriverOptions, connector_for};
use mo_testsupport::SocatPty;
use peers::{STEP, open_peer, read_until, socat_pair};
use rustix::termios::{ControlModes, InputModes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

async fn start() -> Result<(tempfile::TempDir, SocatPty, DriverOptions)> {
    let dir = tempfile::tempdir()?;
    let pair = socat_pair(dir.path())?;
    let opts = DriverOptions::new().with_base_dir(dir.path());
    Ok((dir, pair, opts))
}

/// Link → peer and peer → link once each.
async fn round_trip(link: &mut Link, peer: &mut tokio_serial::SerialStream) -> Result<()> {
    link.writer.write_all(b"ping\n").await?;
    let mut got = [0u8; 5];
    timeout(STEP, peer.read_exact(&mut got)).await??;
    ensure!(&got == b"ping\n", "{got:?}");
    peer.write_all(b"pong\n").await?;
    read_until(&mut link.reader, b"pong\n").await?;
    Ok(())
}

#[tokio::test]
async fn line_settings_reach_the_port() -> Result<()> {
    let (_dir, pair, opts) = start().await?;
    let serial = connector_for(
        "serial:ttyDEV?baud=19200&data=7&parity=even&stop=2&flow=software",
        &opts,
    )?;
    let _link = timeout(STEP, serial.connect()).await??;
    let termios = termios_of(pair.device_path())?;
    ensure!(
        termios.output_speed() == 19200,
        "speed {}",
        termios.output_speed()
    );
    let c = termios.control_modes;
    // Linux ptys force 8 data bits without parity whatever is asked (pty_set_termios), so data
    // bits and parity can only be checked on real hardware; the address tests check they are read.
    ensure!(c.contains(ControlModes::CSTOPB), "one stop bit: {c:?}");
    ensure!(!c.contains(ControlModes::CRTSCTS), "hardware flow on");
    ensure!(
        termios.input_modes.contains(InputModes::IXON),
        "software flow off"
    );
    Ok(())
}

/// The termios of the device side, through a second descriptor (root may open an exclusive
/// tty). `O_NOCTTY | O_NONBLOCK`: inspecting neither adopts the tty nor waits.
fn termios_of(dev: &std::path::Path) -> Result<rustix::termios::Termios> {
    let flags = (rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::NONBLOCK).bits();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(i32::try_from(flags)?)
        .open(dev)
        .with_context(|| format!("opening {} to inspect it", dev.display()))?;
    Ok(rustix::termios::tcgetattr(&file)?)
}

#[tokio::test]
async fn defaults_are_9600_8n1() -> Result<()> {
    let (_dir, pair, opts) = start().await?;
    let serial = connector_for("serial:ttyDEV", &opts)?;
    let _link = timeout(STEP, serial.connect()).await??;
    let termios = termios_of(pair.device_path())?;
    ensure!(termios.output_speed() == 9600);
    let c = termios.control_modes;
    ensure!(c & ControlModes::CSIZE == ControlModes::CS8);
    ensure!(!c.contains(ControlModes::PARENB) && !c.contains(ControlModes::CSTOPB));
    ensure!(!termios.input_modes.contains(InputModes::IXON));
    Ok(())
}

#[tokio::test]
async fn the_port_is_exclusive() -> Result<()> {
    let (_dir, _pair, opts) = start().await?;
    let serial = connector_for("serial:ttyDEV", &opts)?;
    let first = timeout(STEP, serial.connect()).await??;
    match timeout(STEP, serial.connect()).await? {
        Err(Error::Connect { address, reason }) => {
            ensure!(address == "serial:ttyDEV", "{address}");
            ensure!(reason.contains("ttyDEV"), "{reason}");
        }
        Err(other) => bail!("expected a Connect error, got {other}"),
        Ok(_) => bail!("a second link opened the same port"),
    }
    drop(first);
    let _again = timeout(STEP, serial.connect())
        .await?
        .context("the port stays locked after the link was dropped")?;
    Ok(())
}

/// A child forked by any thread of the process holds a copy of every descriptor, a link's
/// included, until its `exec` closes the close-on-exec ones, and the port's exclusive lock
/// (flock) lives as long as any copy. Connecting again right after dropping a link, while such a
/// child has not reached `exec` yet, waits for the lock instead of failing with "Unable to
/// acquire exclusive lock on serial port"; the test's own peer side, opened shared, opens again
/// at once.
#[tokio::test]
async fn reconnects_while_a_forked_child_still_holds_the_old_descriptor() -> Result<()> {
    let (_dir, pair, opts) = start().await?;
    let serial = connector_for("serial:ttyDEV", &opts)?;
    let mut link = timeout(STEP, serial.connect()).await??;
    let mut peer = open_peer(&pair)?;
    round_trip(&mut link, &mut peer).await?;
    let (mut forked, forked_tell) = std::io::pipe()?;
    let spawner = std::thread::spawn(move || {
        spawn_pausing_before_exec(forked_tell, Duration::from_millis(500))
    });
    // The child has forked (with its copy of the link's descriptor) once its byte arrives.
    let told = tokio::task::spawn_blocking(move || {
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut forked, &mut byte)
    });
    timeout(STEP, told)
        .await?
        .context("the child never said it had forked")??;
    drop(link);
    drop(peer);
    let dev = pair.device_path().to_str().context("dev path")?;
    match tokio_serial::SerialStream::open(&tokio_serial::new(dev, 9600)) {
        Err(e) if e.kind == tokio_serial::ErrorKind::NoDevice => {}
        Err(e) => bail!("an exclusive open failed otherwise than as held: {e}"),
        Ok(_) => bail!("the dropped link's lock did not linger: the check proves nothing"),
    }
    let mut peer = open_peer(&pair)
        .context("opening the peer side again while a forked child held the old descriptor")?;
    let mut link = timeout(STEP, serial.connect())
        .await?
        .context("connecting again while a forked child held the old descriptor")?;
    let mut child = spawner
        .join()
        .map_err(|_| anyhow::anyhow!("the spawning thread panicked"))??;
    ensure!(child.wait()?.success(), "/bin/true failed");
    round_trip(&mut link, &mut peer).await
}

/// Start `/bin/true` from a child that writes a byte to `tell` once forked and then pauses for
/// `pause` before its `exec`.
#[allow(unsafe_code)]
fn spawn_pausing_before_exec(
    tell: std::io::PipeWriter,
    pause: Duration,
) -> std::io::Result<std::process::Child> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs in the forked child before `exec`; it makes two system calls,
    // write(2) on a pipe and nanosleep(2), both async-signal-safe, and neither allocates nor
    // takes a lock.
    unsafe {
        command.pre_exec(move || {
            (&tell).write_all(&[1])?;
            std::thread::sleep(pause);
            Ok(())
        });
    }
    command.spawn()
}

#[tokio::test]
async fn break_is_accepted_and_the_link_keeps_working() -> Result<()> {
    let (_dir, pair, opts) = start().await?;
    let serial = connector_for("serial:ttyDEV", &opts)?;
    assert!(serial.capabilities().send_break);
    let mut link = timeout(STEP, serial.connect()).await??;
    let mut peer = open_peer(&pair)?;
    round_trip(&mut link, &mut peer).await?;
    // A pty accepts BREAK but cannot carry it (PEERS.md): check the timing and the link.
    let started = Instant::now();
    link.control
        .control(ControlOp::Break {
            duration: Duration::from_millis(300),
        })
        .await?;
    ensure!(
        started.elapsed() >= Duration::from_millis(300),
        "BREAK was not held"
    );
    round_trip(&mut link, &mut peer).await?;
    // A BREAK cancelled halfway releases the line (the guard clears it) and does not wedge the
    // control: the next BREAK works.
    let cancelled = timeout(
        Duration::from_millis(20),
        link.control.control(ControlOp::Break {
            duration: Duration::from_secs(5),
        }),
    )
    .await;
    ensure!(cancelled.is_err(), "the long BREAK was not cancelled");
    link.control
        .control(ControlOp::Break {
            duration: Duration::from_millis(10),
        })
        .await?;
    round_trip(&mut link, &mut peer).await?;
    // Window size is not a serial line's business.
    let err = link
        .control
        .control(ControlOp::WindowSize { cols: 80, rows: 24 })
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Unsupported { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn modem_lines_are_unsupported_on_a_pty() -> Result<()> {
    let (_dir, _pair, opts) = start().await?;
    let serial = connector_for("serial:ttyDEV", &opts)?;
    let _link = timeout(STEP, serial.connect()).await??;
    let caps = serial.capabilities();
    ensure!(!caps.modem_lines, "a pty has no modem lines");
    ensure!(caps.send_break && caps.line_settings && !caps.window_size);
    Ok(())
}
