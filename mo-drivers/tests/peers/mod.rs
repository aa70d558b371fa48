//! The driver tests' side of the real peers: the [`Fixture`] each conformance run drives, async
//! read helpers, and fixtures for a socat pty pair, a Unix socket listener, programs on a pty and
//! the sim. The peer processes themselves (socat, ser2net, telnetd, sshd, ipmi_sim, snmpd,
//! sushy-emulator) are started by mo_testsupport, the one place for them; each test starts its own
//! in its own temporary directory, and they are stopped by pid.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use mo_core::link::{Connector, Link, LinkReader};
use mo_drivers::{DriverOptions, connector_for};
use mo_testsupport::{PeerEnd, SocatPty};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::process::Child;
use tokio::time::{Instant, timeout};

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A byte stream the test holds: the other end of what the link is connected to.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

/// How a test reaches the other side of a link, once connected.
pub enum Peer {
    /// The test holds the other end of the byte stream.
    End(Box<dyn PeerStream>),
    /// The device copies back what it is sent, byte for byte.
    Echo,
    /// The device answers `send` with output containing `expect` (a shell).
    Dialogue {
        /// What to type.
        send: &'static [u8],
        /// What must come back.
        expect: &'static str,
    },
    /// A terminal running `cat` with echo on (the sim's): a line of printable ASCII typed with
    /// `\r` comes back as its echo, `\r\n`, the line again and `\r\n`.
    LineEcho,
}

/// A device of one driver kind with a real peer behind it.
#[async_trait]
pub trait Fixture: Send {
    /// The driver's name, for messages.
    fn name(&self) -> &'static str;
    /// The connector under test.
    fn connector(&self) -> Arc<dyn Connector>;
    /// After connecting: wait for the device's greeting (this reads bytes the device sent) and
    /// return how to reach the other side.
    async fn accept(&mut self, link: &mut Link) -> Result<Peer>;
    /// Make the device go away while its link is open; `peer` is what [`Fixture::accept`] gave.
    /// Returns false for a device that cannot go away (the sim): the link then stays up.
    async fn stop(&mut self, peer: Peer) -> Result<bool>;
    /// Bring the device back after [`Fixture::stop`].
    async fn restart(&mut self) -> Result<()>;
    /// Whether connecting while the device is stopped must fail (a socket or device is gone).
    fn connect_fails_when_stopped(&self) -> bool;
    /// How many bytes the bulk check moves each way (1 MiB unless the device is slow by nature).
    fn bulk_bytes(&self) -> usize {
        1 << 20
    }
    /// Before the bulk check: switch the device into a mode that carries bulk data (a shell
    /// runs `cat`) and return how to reach it then; `peer` is what [`Fixture::accept`] gave.
    async fn bulk_peer(&mut self, _link: &mut Link, peer: Peer) -> Result<Peer> {
        Ok(peer)
    }
    /// Whether the device serves one connection at a time and needs a moment after a link
    /// closes before it takes the next (ser2net): a refused connect is then retried a few
    /// times, as the console actor does with its backoff.
    fn serves_one_at_a_time(&self) -> bool {
        false
    }
}

/// Read from `reader` until the bytes read contain `needle`; returns everything read.
pub async fn read_until(reader: &mut LinkReader, needle: &[u8]) -> Result<Vec<u8>> {
    read_until_from(reader, needle).await
}

/// [`read_until`] on any reader.
pub async fn read_until_from<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    needle: &[u8],
) -> Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + STEP;
    loop {
        if seen.windows(needle.len().max(1)).any(|w| w == needle) {
            return Ok(seen);
        }
        let n = tokio::time::timeout_at(deadline, reader.read(&mut buf))
            .await
            .with_context(|| {
                format!(
                    "timed out waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&seen)
                )
            })??;
        if n == 0 {
            bail!(
                "end of stream before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&seen)
            );
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Wait until `reader` reports the link is down: end of file or an error (data before that is
/// skipped).
pub async fn read_until_down(reader: &mut LinkReader) -> Result<()> {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + STEP;
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => bail!("the link did not report the device going away"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Send SIGTERM to a child we started and wait for it.
pub async fn terminate(child: &mut Child) -> Result<()> {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok())
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if timeout(STEP, child.wait()).await.is_err() {
        child.kill().await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// serial: a socat pty pair
// ---------------------------------------------------------------------------------------------

/// A socat pty pair (mo_testsupport's) with the links `DIR/ttyDEV` (what `serial://` opens) and
/// `DIR/ttyPEER` (what the test opens with [`open_peer`]).
pub fn socat_pair(dir: &Path) -> Result<SocatPty> {
    Ok(SocatPty::start_with(
        dir,
        "ttyDEV",
        "ttyPEER",
        PeerEnd::Caller,
    )?)
}

/// Open the peer side of `pty`, raw, as a serial port, without exclusivity.
///
/// tokio-serial opens exclusively by default: TIOCEXCL plus a non-blocking exclusive
/// `flock`. A flock belongs to the open file description, and a child forked by any thread of
/// this test process (the suite starts socat, ipmi_sim, sshd, programs on ptys, ... from
/// tests running in parallel) holds a copy of every descriptor until its `exec` closes the
/// close-on-exec ones. A peer side dropped inside that window keeps its lock, and opening it
/// again then fails with "Unable to acquire exclusive lock on serial port" (EWOULDBLOCK from
/// flock; seen once in `ipmi::reconnects_after_peer_goes_away`, which opens the same pty three
/// times). The test is the only opener of this side, so exclusivity protects nothing here;
/// opened shared, a lingering copy holds a shared lock, which never blocks another.
pub fn open_peer(pty: &SocatPty) -> Result<tokio_serial::SerialStream> {
    let path = pty.peer_path().to_str().context("peer path")?;
    tokio_serial::SerialStream::open(&tokio_serial::new(path, 115_200).exclusive(false))
        .with_context(|| format!("open the pty peer side {}", pty.peer_path().display()))
}

/// The `serial` driver on a socat pty pair.
pub struct SerialFixture {
    /// The pty pair.
    pub pair: SocatPty,
    connector: Arc<dyn Connector>,
    _dir: tempfile::TempDir,
}

impl SerialFixture {
    /// Start socat and make a connector for its device side.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let pair = socat_pair(dir.path())?;
        let opts = DriverOptions::new().with_base_dir(dir.path());
        let connector = connector_for("serial:ttyDEV?baud=115200", &opts)?;
        Ok(Self {
            pair,
            connector,
            _dir: dir,
        })
    }
}

#[async_trait]
impl Fixture for SerialFixture {
    fn name(&self) -> &'static str {
        "serial"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, _link: &mut Link) -> Result<Peer> {
        Ok(Peer::End(Box::new(open_peer(&self.pair)?)))
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.pair.stop()?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(self.pair.restart()?)
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// unix: a listener in the test
// ---------------------------------------------------------------------------------------------

/// The `unix` driver against a listener held by the test.
pub struct UnixFixture {
    path: PathBuf,
    listener: Option<UnixListener>,
    connector: Arc<dyn Connector>,
    _dir: tempfile::TempDir,
}

impl UnixFixture {
    /// Bind a listener and make a connector for it.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("device.sock");
        let connector = connector_for(
            &format!("unix://{}", path.display()),
            &DriverOptions::default(),
        )?;
        let mut fixture = Self {
            path,
            listener: None,
            connector,
            _dir: dir,
        };
        fixture.restart().await?;
        Ok(fixture)
    }
}

#[async_trait]
impl Fixture for UnixFixture {
    fn name(&self) -> &'static str {
        "unix"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, _link: &mut Link) -> Result<Peer> {
        let listener = self.listener.as_ref().context("listener is stopped")?;
        let (stream, _) = timeout(STEP, listener.accept()).await??;
        Ok(Peer::End(Box::new(stream)))
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.listener = None;
        std::fs::remove_file(&self.path)?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        self.listener = Some(UnixListener::bind(&self.path)?);
        Ok(())
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// exec: cat on a raw pty
// ---------------------------------------------------------------------------------------------

/// `cat` on a pty switched to raw mode, announcing itself with `READY <pid>`.
pub const RAW_CAT: &str =
    "exec:///bin/sh?arg=-c&arg=stty+raw+-echo+-iexten%3B+echo+READY+%24%24%3B+exec+cat";

/// The `exec` driver running `cat` on a raw pty.
pub struct ExecFixture {
    connector: Arc<dyn Connector>,
    pid: Option<i32>,
}

impl ExecFixture {
    /// A connector for [`RAW_CAT`].
    pub fn start() -> Result<Self> {
        Ok(Self {
            connector: connector_for(RAW_CAT, &DriverOptions::default())?,
            pid: None,
        })
    }
}

/// Read until a whole line starting with `tag` has arrived and return the rest of that line
/// (without the line end). Bytes after the line are dropped.
pub async fn read_line_after(reader: &mut LinkReader, tag: &str) -> Result<String> {
    let mut seen = read_until(reader, tag.as_bytes()).await?;
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        let rest = text.rsplit(tag).next().unwrap_or_default();
        if let Some(end) = rest.find('\n') {
            return Ok(rest[..end].trim_end_matches('\r').to_owned());
        }
        let mut buf = [0u8; 256];
        let n = timeout(STEP, reader.read(&mut buf)).await??;
        if n == 0 {
            bail!("end of stream in the {tag:?} line");
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Read the `READY <pid>` line a test program prints and return the pid.
pub async fn read_ready_pid(reader: &mut LinkReader) -> Result<i32> {
    Ok(read_line_after(reader, "READY ").await?.trim().parse()?)
}

#[async_trait]
impl Fixture for ExecFixture {
    fn name(&self) -> &'static str {
        "exec"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, link: &mut Link) -> Result<Peer> {
        self.pid = Some(read_ready_pid(&mut link.reader).await?);
        Ok(Peer::Echo)
    }
    async fn stop(&mut self, _peer: Peer) -> Result<bool> {
        let pid = self.pid.take().context("no program is running")?;
        let pid = rustix::process::Pid::from_raw(pid).context("pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(())
    }
    fn connect_fails_when_stopped(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// sim: the built-in simulated machine
// ---------------------------------------------------------------------------------------------

/// The `sim` driver: boots fast, logs in, answers `echo hi`.
pub struct SimFixture {
    connector: Arc<dyn Connector>,
}

impl SimFixture {
    /// A connector for `sim://conf-sim?boot=fast`.
    pub fn start() -> Result<Self> {
        Ok(Self {
            connector: connector_for("sim://conf-sim?boot=fast", &DriverOptions::default())?,
        })
    }
}

#[async_trait]
impl Fixture for SimFixture {
    fn name(&self) -> &'static str {
        "sim"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, link: &mut Link) -> Result<Peer> {
        read_until(&mut link.reader, b"conf-sim login: ").await?;
        link.writer.write_all(b"root\r").await?;
        read_until(&mut link.reader, b"Password: ").await?;
        link.writer.write_all(b"anything\r").await?;
        read_until(&mut link.reader, b"conf-sim:~$ ").await?;
        Ok(Peer::Dialogue {
            send: b"echo hi\r",
            expect: "\nhi\r\n",
        })
    }
    async fn stop(&mut self, _peer: Peer) -> Result<bool> {
        Ok(false)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(())
    }
    fn connect_fails_when_stopped(&self) -> bool {
        false
    }
    /// The sim's `cat`: every line comes back (after its echo), through the sim's line
    /// discipline, so the bulk check types printable lines.
    async fn bulk_peer(&mut self, link: &mut Link, _peer: Peer) -> Result<Peer> {
        link.writer.write_all(b"cat\r").await?;
        read_until(&mut link.reader, b"cat\r\n").await?;
        Ok(Peer::LineEcho)
    }
}
