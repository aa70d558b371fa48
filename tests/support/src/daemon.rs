//! The daemon `mod`, started on a data directory and an SSH port, its output captured to a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries::bin_path;
use crate::error::{Error, Result};
use crate::process::{Peer, append_file, read_lossy};

/// A running `mod`. Killed (exactly its PID) when dropped. Its stdout and stderr are appended to
/// `<data_dir>.mod.log`; restarts on the same data dir append to the same file.
#[derive(Debug)]
pub struct Daemon {
    peer: Peer,
    data_dir: PathBuf,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    /// How long the daemon may take to print `listening on`.
    pub const START_TIMEOUT: Duration = Duration::from_secs(60);

    /// Run `mod --data-dir DATA_DIR --ssh 127.0.0.1:PORT EXTRA_ARGS...` and wait until it prints
    /// `listening on 127.0.0.1:PORT`. If it exits or stays silent, the error carries its log.
    pub fn start(data_dir: &Path, port: u16, extra_args: &[&str]) -> Result<Daemon> {
        let log = PathBuf::from(format!("{}.mod.log", data_dir.display()));
        let mut header = append_file(&log)?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin_path("mod")?);
        cmd.arg("--data-dir")
            .arg(data_dir)
            .arg("--ssh")
            .arg(&addr)
            .args(extra_args)
            .stdin(Stdio::null())
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1");
        let _ = writeln!(
            header,
            "=== test harness: {}",
            crate::process::describe(&cmd)
        );
        drop(header);
        // Only what this run prints counts (restarts append to the same file).
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut peer = Peer::spawn("mod", cmd, Some(&log))?;
        let needle = format!("listening on {addr}");
        let deadline = Instant::now() + Self::START_TIMEOUT;
        loop {
            let text = read_lossy(&log);
            if text
                .get(usize::try_from(offset).unwrap_or(0)..)
                .is_some_and(|t| t.contains(&needle))
            {
                break;
            }
            if let Some(status) = peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: "mod".into(),
                    reason: format!("exited with {status} before printing {needle:?}"),
                    log: text,
                });
            }
            if Instant::now() >= deadline {
                let _ = peer.kill();
                return Err(Error::PeerStart {
                    name: "mod".into(),
                    reason: format!("no {needle:?} within {:?}", Self::START_TIMEOUT),
                    log: read_lossy(&log),
                });
            }
            thread::sleep(Duration::from_millis(25));
        }
        Ok(Daemon {
            peer,
            data_dir: data_dir.to_path_buf(),
            port,
            log,
        })
    }

    /// The SSH port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    /// The file its stdout and stderr go to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything it printed so far (all runs on this data dir).
    pub fn log_text(&self) -> String {
        read_lossy(&self.log)
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.peer.is_running()
    }

    /// `kill -9` the daemon and wait for it (a crash, as far as its files can tell).
    pub fn kill9(&mut self) -> Result<()> {
        self.peer.kill().map(|_| ())
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) -> Result<()> {
        self.peer.terminate(Duration::from_secs(10)).map(|_| ())
    }

    /// Send `signal` to the daemon (e.g. SIGHUP to reload its TLS pair).
    pub fn signal(&mut self, signal: crate::Signal) -> Result<()> {
        self.peer.signal(signal)
    }

    /// Wait until the daemon's log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.log_text();
            if text.contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{needle:?} in the mod log"),
                    waited: limit,
                    context_name: "mod log".into(),
                    context: text,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}
