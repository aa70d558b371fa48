//! ser2net 4 in front of a socat pty pair (PEERS.md, `peers/ser2net.yaml`): an RFC 2217 port, a
//! telnet port and a raw TCP port on loopback, all serving the pty's device end; the test plays the
//! machine on the peer end ([`SocatPty::write_peer`], [`SocatPty::received`]).
//!
//! ser2net serves one connection per port at a time and now and then hangs up on a fresh one; a
//! console actor retries by itself. Readiness is therefore checked without connecting (the listen
//! sockets in `/proc/net/tcp`): a probe connection would open the device and could make ser2net
//! refuse the next one while it closes the probe.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ports::{free_port, tcp_listening};
use crate::process::{Peer, read_lossy};
use crate::socat::{PeerEnd, SocatPty};

/// Where Debian installs ser2net.
pub const SER2NET: &str = "/usr/sbin/ser2net";

/// PEERS.md's configuration with `@DEV@` and the three ports to fill in.
const CONFIG: &str = "%YAML 1.1
---
connection: &con_rfc2217
  accepter: telnet(rfc2217),tcp,@HOST@,@RFC2217@
  connector: serialdev,@DEV@,115200n81,local
  options:
    kickolduser: true
connection: &con_telnet
  accepter: telnet,tcp,@HOST@,@TELNET@
  connector: serialdev,@DEV@,115200n81,local
connection: &con_raw
  accepter: tcp,@HOST@,@RAW@
  connector: serialdev,@DEV@,115200n81,local
";

/// A running ser2net (`-n -u`: foreground, no UUCP locks) and its socat pty pair. Both are
/// killed by PID when dropped.
#[derive(Debug)]
pub struct Ser2net {
    pty: SocatPty,
    peer: Option<Peer>,
    rfc2217_port: u16,
    telnet_port: u16,
    raw_port: u16,
    config: PathBuf,
}

impl Ser2net {
    /// Start a pty pair with the links `DIR/tty-NAME` and `DIR/tty-NAME-peer` (unique per
    /// `name`, so several can share a directory; the peer end held, [`PeerEnd::Held`]) and
    /// ser2net serving it on three free ports.
    pub fn start(dir: &Path, name: &str) -> Result<Ser2net> {
        Self::start_with(dir, name, PeerEnd::Held)
    }

    /// [`Ser2net::start`] with `end` saying who opens the pty's peer end.
    pub fn start_with(dir: &Path, name: &str, end: PeerEnd) -> Result<Ser2net> {
        Self::start_on(dir, name, end, std::net::Ipv4Addr::LOCALHOST)
    }

    /// [`Ser2net::start_with`] listening on the loopback address `host` (127.0.0.2, …: one
    /// address per simulated host) instead of 127.0.0.1.
    pub fn start_on(
        dir: &Path,
        name: &str,
        end: PeerEnd,
        host: std::net::Ipv4Addr,
    ) -> Result<Ser2net> {
        if !Path::new(SER2NET).exists() {
            return Err(Error::MissingBinary {
                name: "ser2net".into(),
                path: SER2NET.into(),
                hint: "install it with apt-get install ser2net".into(),
            });
        }
        let pty = SocatPty::start_with(
            dir,
            &format!("tty-{name}"),
            &format!("tty-{name}-peer"),
            end,
        )?;
        let (rfc2217_port, telnet_port, raw_port) = (free_port()?, free_port()?, free_port()?);
        let config = dir.join(format!("ser2net-{name}.yaml"));
        let text = CONFIG
            .replace("@DEV@", &pty.device_path().display().to_string())
            .replace("@RFC2217@", &rfc2217_port.to_string())
            .replace("@TELNET@", &telnet_port.to_string())
            .replace("@RAW@", &raw_port.to_string())
            .replace("@HOST@", &host.to_string());
        std::fs::write(&config, text)
            .map_err(|e| Error::io(format!("write {}", config.display()), e))?;
        let mut ser2net = Ser2net {
            pty,
            peer: None,
            rfc2217_port,
            telnet_port,
            raw_port,
            config,
        };
        ser2net.restart()?;
        Ok(ser2net)
    }

    /// Start ser2net (again, after [`Ser2net::stop`]) on the same ports, and wait until it
    /// listens on all three.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let mut cmd = Command::new(SER2NET);
        cmd.arg("-n")
            .arg("-u")
            .arg("-c")
            .arg(&self.config)
            .arg("-P")
            .arg(self.config.with_extension("pid"))
            .stdin(Stdio::null());
        let log = self.config.with_extension("log");
        let mut peer = Peer::spawn("ser2net", cmd, Some(&log))?;
        let ports = [self.rfc2217_port, self.telnet_port, self.raw_port];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ports.iter().all(|&p| tcp_listening(p)) {
            if let Some(status) = peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: "ser2net".into(),
                    reason: format!("exited with {status} before listening"),
                    log: peer.log_text(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "ser2net".into(),
                    reason: format!("not listening on ports {ports:?} after 20 s"),
                    log: peer.log_text(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.peer = Some(peer);
        Ok(())
    }

    /// Stop ser2net (SIGTERM by PID, then SIGKILL); the pty pair stays.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut peer) = self.peer.take() {
            peer.terminate(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Stop ser2net and the pty pair.
    pub fn stop_all(&mut self) -> Result<()> {
        self.stop()?;
        self.pty.stop()
    }

    /// The pty pair: write the machine's output with [`SocatPty::write_peer`], read what reached
    /// the device with [`SocatPty::received`] (with [`PeerEnd::Held`]).
    pub fn pty(&mut self) -> &mut SocatPty {
        &mut self.pty
    }

    /// The RFC 2217 port (`rfc2217://127.0.0.1:PORT`).
    pub fn rfc2217_port(&self) -> u16 {
        self.rfc2217_port
    }

    /// `rfc2217://127.0.0.1:PORT` followed by `query` (`""` or `?baud=…`).
    pub fn rfc2217_address(&self, query: &str) -> String {
        format!("rfc2217://127.0.0.1:{}{query}", self.rfc2217_port)
    }

    /// The plain telnet port (`telnet://127.0.0.1:PORT`).
    pub fn telnet_port(&self) -> u16 {
        self.telnet_port
    }

    /// The raw TCP port (`tcp://127.0.0.1:PORT`).
    pub fn raw_port(&self) -> u16 {
        self.raw_port
    }

    /// ser2net's PID (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.peer.as_ref().map(Peer::pid).unwrap_or(0)
    }

    /// Whether ser2net runs.
    pub fn is_running(&mut self) -> bool {
        self.peer.as_mut().is_some_and(Peer::is_running)
    }

    /// ser2net's own output, and its configuration file's path, for failure messages.
    pub fn log_text(&self) -> String {
        format!(
            "(config {})\n{}",
            self.config.display(),
            read_lossy(&self.config.with_extension("log"))
        )
    }
}
