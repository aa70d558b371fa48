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
use crate::process::Peer;
use crate::socat::SocatPty;

/// Where Debian installs ser2net.
pub const SER2NET: &str = "/usr/sbin/ser2net";

/// PEERS.md's configuration with `@DEV@` and the three ports to fill in.
const CONFIG: &str = "%YAML 1.1
---
connection: &con_rfc2217
  accepter: telnet(rfc2217),tcp,127.0.0.1,@RFC2217@
  connector: serialdev,@DEV@,115200n81,local
  options:
    kickolduser: true
connection: &con_telnet
  accepter: telnet,tcp,127.0.0.1,@TELNET@
  connector: serialdev,@DEV@,115200n81,local
connection: &con_raw
  accepter: tcp,127.0.0.1,@RAW@
  connector: serialdev,@DEV@,115200n81,local
";

/// A running ser2net (`-n -u`: foreground, no UUCP locks) and its socat pty pair. Both are
/// killed by PID when dropped.
#[derive(Debug)]
pub struct Ser2net {
    pty: SocatPty,
    peer: Peer,
    rfc2217_port: u16,
    telnet_port: u16,
    raw_port: u16,
    config: PathBuf,
}

impl Ser2net {
    /// Start a pty pair with the links `DIR/tty-NAME` and `DIR/tty-NAME-peer` (unique per
    /// `name`, so several can share a directory) and ser2net serving it on three free ports.
    pub fn start(dir: &Path, name: &str) -> Result<Ser2net> {
        if !Path::new(SER2NET).exists() {
            return Err(Error::MissingBinary {
                name: "ser2net".into(),
                path: SER2NET.into(),
                hint: "install it with apt-get install ser2net".into(),
            });
        }
        let pty = SocatPty::start_named(dir, &format!("tty-{name}"), &format!("tty-{name}-peer"))?;
        let (rfc2217_port, telnet_port, raw_port) = (free_port()?, free_port()?, free_port()?);
        let config = dir.join(format!("ser2net-{name}.yaml"));
        let text = CONFIG
            .replace("@DEV@", &pty.device_path().display().to_string())
            .replace("@RFC2217@", &rfc2217_port.to_string())
            .replace("@TELNET@", &telnet_port.to_string())
            .replace("@RAW@", &raw_port.to_string());
        std::fs::write(&config, text)
            .map_err(|e| Error::io(format!("write {}", config.display()), e))?;
        let mut cmd = Command::new(SER2NET);
        cmd.arg("-n")
            .arg("-u")
            .arg("-c")
            .arg(&config)
            .arg("-P")
            .arg(config.with_extension("pid"))
            .stdin(Stdio::null());
        let log = config.with_extension("log");
        let mut peer = Peer::spawn("ser2net", cmd, Some(&log))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while ![rfc2217_port, telnet_port, raw_port]
            .iter()
            .all(|&p| tcp_listening(p))
        {
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
                    reason: format!(
                        "not listening on ports {rfc2217_port}, {telnet_port} and {raw_port} \
                         after 20 s"
                    ),
                    log: peer.log_text(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Ser2net {
            pty,
            peer,
            rfc2217_port,
            telnet_port,
            raw_port,
            config,
        })
    }

    /// The pty pair: write the machine's output with [`SocatPty::write_peer`], read what reached
    /// the device with [`SocatPty::received`].
    pub fn pty(&mut self) -> &mut SocatPty {
        &mut self.pty
    }

    /// The RFC 2217 port (`rfc2217://127.0.0.1:PORT`).
    pub fn rfc2217_port(&self) -> u16 {
        self.rfc2217_port
    }

    /// The plain telnet port (`telnet://127.0.0.1:PORT`).
    pub fn telnet_port(&self) -> u16 {
        self.telnet_port
    }

    /// The raw TCP port (`tcp://127.0.0.1:PORT`).
    pub fn raw_port(&self) -> u16 {
        self.raw_port
    }

    /// ser2net's PID.
    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    /// Whether ser2net still runs.
    pub fn is_running(&mut self) -> bool {
        self.peer.is_running()
    }

    /// ser2net's own output, and its configuration file's path, for failure messages.
    pub fn log_text(&self) -> String {
        format!(
            "(config {})\n{}",
            self.config.display(),
            self.peer.log_text()
        )
    }
}
