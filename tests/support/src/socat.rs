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

/// A running `socat -d -d pty,raw,echo=0,link=DIR/ttyDEV pty,raw,echo=0,link=DIR/ttyPEER`, with
/// the peer end held open: everything mo writes to the device end is collected, and the test can
/// write to the peer end as if it were the machine. socat is killed (by PID) on drop.
#[derive(Debug)]
pub struct SocatPty {
    peer: Peer,
    device: PathBuf,
    peer_path: PathBuf,
    writer: File,
    received: Collector,
}

impl SocatPty {
    /// Start the pair with links `DIR/ttyDEV` (give this to mo) and `DIR/ttyPEER`.
    pub fn start(dir: &Path) -> Result<SocatPty> {
        Self::start_named(dir, "ttyDEV", "ttyPEER")
    }

    /// Start the pair with the links `DIR/device` and `DIR/peer` (for several pairs in one dir).
    pub fn start_named(dir: &Path, device: &str, peer: &str) -> Result<SocatPty> {
        let device = dir.join(device);
        let peer_path = dir.join(peer);
        let log = dir.join(format!(
            "socat-{}.log",
            peer_path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut cmd = Command::new("socat");
        cmd.arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", device.display()))
            .arg(format!("pty,raw,echo=0,link={}", peer_path.display()))
            .stdin(Stdio::null());
        let mut proc = Peer::spawn("socat", cmd, Some(&log))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(device.exists() && peer_path.exists()) {
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
                        device.display(),
                        peer_path.display()
                    ),
                    log: proc.log_text(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        let writer = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(&peer_path)
            .map_err(|e| Error::io(format!("open the pty peer end {}", peer_path.display()), e))?;
        let reader = writer
            .try_clone()
            .map_err(|e| Error::io("clone the pty peer handle", e))?;
        Ok(SocatPty {
            peer: proc,
            device,
            peer_path,
            writer,
            received: Collector::start(Some(reader)),
        })
    }

    /// The device end (a symlink to a pty), for `serial://PATH`.
    pub fn device_path(&self) -> &Path {
        &self.device
    }

    /// The peer end (a symlink to a pty), held open by this value.
    pub fn peer_path(&self) -> &Path {
        &self.peer_path
    }

    /// socat's PID.
    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    /// Write bytes on the peer end: the "machine" prints them; mo reads them from the device end.
    pub fn write_peer(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .and_then(|()| self.writer.flush())
            .map_err(|e| Error::io(format!("write to {}", self.peer_path.display()), e))
    }

    /// Everything that arrived at the peer end so far (what mo wrote to the device), lossy UTF-8.
    pub fn peer_text(&self) -> String {
        self.received.text()
    }

    /// The collector of bytes arriving at the peer end.
    pub fn received(&self) -> &Collector {
        &self.received
    }

    /// Wait until `needle` has arrived at the peer end.
    pub fn wait_peer_text(&self, needle: &str, limit: Duration) -> Result<()> {
        self.received
            .wait_for("the serial peer end", needle, limit)
            .map(|_| ())
    }

    /// socat's log (`-d -d` messages).
    pub fn log_text(&self) -> String {
        self.peer.log_text()
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
}
