//! A telnet device with a login prompt (PEERS.md): socat listening on a loopback port and running
//! inetutils telnetd with a fake console script for each connection (`-E` replaces login).
//! telnetd negotiates many options, echoes input and sends `\r\0`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::ports::{free_port, tcp_listening};
use crate::process::Peer;
use crate::socat::SOCAT;

/// Where inetutils telnetd is installed.
pub const TELNETD: &str = "/usr/sbin/telnetd";

/// The prompt the fake console prints.
pub const TELNET_PROMPT: &str = "fake-console login: ";

/// A device behind telnetd: prints a login prompt, answers each line with `got: LINE`, the line
/// `size` with `size: ROWS COLS` of its terminal, and a BREAK (telnetd turns `IAC BRK` into
/// the terminal's quit character, so SIGQUIT) with `[break]` — it keeps running after one. The
/// line `rawcat` switches its terminal to raw mode, prints `RAW READY` and becomes `cat`: every
/// byte comes back as it was sent (for bulk data through telnetd and its pty).
pub const FAKE_CONSOLE: &str = r#"#!/bin/sh
broke=0
trap 'broke=1; printf "[break]\n"' INT QUIT
printf 'fake-console login: '
while :; do
  if IFS= read -r line; then
    case "$line" in
      size) printf 'size: %s\n' "$(stty size)" ;;
      rawcat) stty raw -echo -iexten; printf 'RAW READY\n'; exec cat ;;
      *) printf 'got: %s\n' "$line" ;;
    esac
    printf 'fake-console login: '
  elif [ $broke -eq 1 ]; then
    broke=0
  else
    exit 0
  fi
done
"#;

/// socat on a loopback port running telnetd with [`FAKE_CONSOLE`] for each connection. socat runs
/// in its own process group, so stopping it (SIGTERM to that group) ends the sessions too.
#[derive(Debug)]
pub struct Telnetd {
    port: u16,
    host: std::net::Ipv4Addr,
    script: PathBuf,
    log: PathBuf,
    peer: Option<Peer>,
}

impl Telnetd {
    /// Write the script into `dir` (created) and start listening on a free port.
    pub fn start(dir: &Path) -> Result<Telnetd> {
        Self::start_on(dir, std::net::Ipv4Addr::LOCALHOST)
    }

    /// [`Telnetd::start`] listening on the loopback address `host` (127.0.0.2, …: one address
    /// per simulated host) instead of 127.0.0.1.
    pub fn start_on(dir: &Path, host: std::net::Ipv4Addr) -> Result<Telnetd> {
        if !Path::new(TELNETD).exists() {
            return Err(Error::MissingBinary {
                name: "telnetd".into(),
                path: TELNETD.into(),
                hint: "install it with apt-get install inetutils-telnetd".into(),
            });
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let script = dir.join("fake-console.sh");
        std::fs::write(&script, FAKE_CONSOLE)
            .and_then(|()| {
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            })
            .map_err(|e| Error::io(format!("write {}", script.display()), e))?;
        let mut telnetd = Telnetd {
            port: free_port()?,
            host,
            script,
            log: dir.join("telnetd-socat.log"),
            peer: None,
        };
        telnetd.restart()?;
        Ok(telnetd)
    }

    /// Start socat (again, after [`Telnetd::stop`]) on the same port and wait until it listens.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let mut cmd = Command::new(SOCAT);
        cmd.arg(format!(
            "TCP-LISTEN:{},bind={},reuseaddr,fork",
            self.port, self.host
        ))
        .arg(format!(
            "EXEC:{TELNETD} -h -E {},nofork",
            self.script.display()
        ))
        .stdin(Stdio::null())
        .process_group(0);
        let mut peer = Peer::spawn("socat (telnetd)", cmd, Some(&self.log))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !tcp_listening(self.port) {
            if let Some(status) = peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: "socat (telnetd)".into(),
                    reason: format!("exited with {status} before listening on {}", self.port),
                    log: peer.log_text(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "socat (telnetd)".into(),
                    reason: format!("not listening on 127.0.0.1:{} after 20 s", self.port),
                    log: peer.log_text(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.peer = Some(peer);
        Ok(())
    }

    /// Stop socat and every session it forked (SIGTERM to its process group, then SIGKILL to
    /// socat). Nothing if stopped.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut peer) = self.peer.take() {
            signal_group(&mut peer);
            peer.terminate(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `telnet://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("telnet://127.0.0.1:{}", self.port)
    }
}

/// SIGTERM the process group socat leads (its forked sessions), while socat still runs.
fn signal_group(peer: &mut Peer) {
    if peer.is_running()
        && let Ok(pid) = i32::try_from(peer.pid())
    {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

impl Drop for Telnetd {
    fn drop(&mut self) {
        if let Some(mut peer) = self.peer.take() {
            signal_group(&mut peer);
        }
    }
}
