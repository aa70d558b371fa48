//! A fake serial line: a socat pty pair (PEERS.md recipe). The device end is what mo opens as
//! `serial://...`; the test plays the machine on the peer end.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use crate::error::{Error, Result};
use crate::process::{Collector, Peer};

/// Where Debian installs socat.
pub const SOCAT: &str = "/usr/bin/socat";

/// Who opens the peer end of a pty pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEnd {
    /// The pair holds it open: [`SocatPty::write_peer`] writes as the machine, and a collector
    /// gathers what arrives ([`SocatPty::received`]).
    Held,
    /// The caller opens [`SocatPty::peer_path`] itself (e.g. as an async serial port); the pair
    /// neither reads nor writes it.
    Caller,
}

/// A running `socat -d -d pty,raw,echo=0,link=DIR/ttyDEV pty,raw,echo=0,link=DIR/ttyPEER`. With
/// [`PeerEnd::Held`] the peer end is held open: everything mo writes to the device end is
/// collected, and the test can write to the peer end as if it were the machine. socat is killed
/// (by PID) on drop; [`SocatPty::stop`] and [`SocatPty::restart`] take both ptys away and bring
/// them back (a serial device unplugged and plugged in again).
#[derive(Debug)]
pub struct SocatPty {
    proc: Option<Peer>,
    device: PathBuf,
    peer_path: PathBuf,
    log: PathBuf,
    end: PeerEnd,
    writer: Option<File>,
    received: Collector,
}

impl SocatPty {
    /// Start the pair with links `DIR/ttyDEV` (give this to mo) and `DIR/ttyPEER`.
    pub fn start(dir: &Path) -> Result<SocatPty> {
        Self::start_named(dir, "ttyDEV", "ttyPEER")
    }

    /// Start the pair with the links `DIR/device` and `DIR/peer` (for several pairs in one dir).
    pub fn start_named(dir: &Path, device: &str, peer: &str) -> Result<SocatPty> {
        Self::start_with(dir, device, peer, PeerEnd::Held)
    }

    /// Start the pair with the links `DIR/device` and `DIR/peer`; `end` says who opens the peer
    /// end.
    pub fn start_with(dir: &Path, device: &str, peer: &str, end: PeerEnd) -> Result<SocatPty> {
        let device = dir.join(device);
        let peer_path = dir.join(peer);
        let log = dir.join(format!(
            "socat-{}.log",
            peer_path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut pty = SocatPty {
            proc: None,
            device,
            peer_path,
            log,
            end,
            writer: None,
            received: Collector::start(None::<File>),
        };
        pty.restart()?;
        Ok(pty)
    }

    /// Start socat (again, after [`SocatPty::stop`]) with the same links, and wait for them.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let _ = std::fs::remove_file(&self.device);
        let _ = std::fs::remove_file(&self.peer_path);
        if !Path::new(SOCAT).exists() {
            return Err(Error::MissingBinary {
                name: "socat".into(),
                path: SOCAT.into(),
                hint: "install it with apt-get install socat".into(),
            });
        }
        let mut cmd = Command::new(SOCAT);
        cmd.arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", self.device.display()))
            .arg(format!("pty,raw,echo=0,link={}", self.peer_path.display()))
            .stdin(Stdio::null());
        let mut proc = Peer::spawn("socat", cmd, Some(&self.log))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(self.device.exists() && self.peer_path.exists()) {
            if let Some(status) = proc.exit_status()? {
                return Err(Error::PeerStart {
                    name: "socat".into(),
                    reason: format!("exited with {status} before creating its pty links"),
                    log: proc.log_text(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "socat".into(),
                    reason: format!(
                        "no links {} and {} after 10 s",
                        self.device.display(),
                        self.peer_path.display()
                    ),
                    log: proc.log_text(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(proc);
        if self.end == PeerEnd::Held {
            let writer = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(OFlag::O_NOCTTY.bits())
                .open(&self.peer_path)
                .map_err(|e| {
                    Error::io(
                        format!("open the pty peer end {}", self.peer_path.display()),
                        e,
                    )
                })?;
            let reader = writer
                .try_clone()
                .map_err(|e| Error::io("clone the pty peer handle", e))?;
            self.writer = Some(writer);
            self.received = Collector::start(Some(reader));
        }
        Ok(())
    }

    /// Stop socat (SIGTERM by PID, then SIGKILL): both ptys go away. Nothing if stopped.
    pub fn stop(&mut self) -> Result<()> {
        self.writer = None;
        if let Some(mut proc) = self.proc.take() {
            proc.terminate(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// The device end (a symlink to a pty), for `serial://PATH`.
    pub fn device_path(&self) -> &Path {
        &self.device
    }

    /// The peer end (a symlink to a pty): held open by this value with [`PeerEnd::Held`], for
    /// the caller to open with [`PeerEnd::Caller`].
    pub fn peer_path(&self) -> &Path {
        &self.peer_path
    }

    /// socat's PID (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map(Peer::pid).unwrap_or(0)
    }

    /// Write bytes on the peer end: the "machine" prints them; mo reads them from the device end.
    /// Only with [`PeerEnd::Held`] while socat runs.
    pub fn write_peer(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Check(format!(
                "the pty peer end {} is not held by this pair (stopped, or opened by the caller)",
                self.peer_path.display()
            )));
        };
        writer
            .write_all(bytes)
            .and_then(|()| writer.flush())
            .map_err(|e| Error::io(format!("write to {}", self.peer_path.display()), e))
    }

    /// Everything that arrived at the peer end so far (what mo wrote to the device), lossy UTF-8.
    /// Always empty with [`PeerEnd::Caller`].
    pub fn peer_text(&self) -> String {
        self.received.text()
    }

    /// The collector of bytes arriving at the (held) peer end.
    pub fn received(&self) -> &Collector {
        &self.received
    }

    /// Wait until `needle` has arrived at the (held) peer end.
    pub fn wait_peer_text(&self, needle: &str, limit: Duration) -> Result<()> {
        self.received
            .wait_for("the serial peer end", needle, limit)
            .map(|_| ())
    }

    /// socat's log (`-d -d` messages).
    pub fn log_text(&self) -> String {
        crate::process::read_lossy(&self.log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bytes_cross_the_pair_both_ways() -> Result<()> {
        let dir = crate::ports::temp_dir("socat-test")?;
        let mut pty = SocatPty::start(dir.path())?;
        let mut dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(pty.device_path())
            .map_err(|e| Error::io("open device end", e))?;
        dev.write_all(b"to the peer\n")
            .map_err(|e| Error::io("write dev", e))?;
        pty.wait_peer_text("to the peer", Duration::from_secs(5))?;
        pty.write_peer(b"to the device\n")?;
        let mut buf = [0u8; 64];
        let n = dev.read(&mut buf).map_err(|e| Error::io("read dev", e))?;
        assert_eq!(&buf[..n], b"to the device\n");
        Ok(())
    }

    #[test]
    fn a_stopped_pair_comes_back_and_a_caller_end_is_left_alone() -> Result<()> {
        let dir = crate::ports::temp_dir("socat-restart")?;
        let mut pty = SocatPty::start_with(dir.path(), "dev", "peer", PeerEnd::Caller)?;
        assert!(
            pty.write_peer(b"x").is_err(),
            "the caller's end is not written"
        );
        let first = pty.pid();
        pty.stop()?;
        assert_eq!(pty.pid(), 0);
        pty.restart()?;
        assert_ne!(pty.pid(), first);
        let mut peer = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(pty.peer_path())
            .map_err(|e| Error::io("open peer end", e))?;
        let mut dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(pty.device_path())
            .map_err(|e| Error::io("open device end", e))?;
        peer.write_all(b"after restart\n")
            .map_err(|e| Error::io("write peer", e))?;
        let mut buf = [0u8; 64];
        let n = dev.read(&mut buf).map_err(|e| Error::io("read dev", e))?;
        assert_eq!(&buf[..n], b"after restart\n");
        Ok(())
    }
}
