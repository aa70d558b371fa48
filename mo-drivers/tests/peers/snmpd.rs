//! A real net-snmp snmpd acting as an 8-outlet APC PDU (PEERS.md), on a free loopback UDP port.
//! The test owns the process and stops exactly it (by its pid, on drop).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The peer configs kept in the repository (`tests/peers/`, copies of PEERS.md's samples).
pub fn shared_peers() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers")
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

/// A running snmpd with the APC pass script.
pub struct Snmpd {
    child: Child,
    /// Its UDP port.
    pub port: u16,
    /// Its directory (outlet state in `outlets.json`, commands in `outlets.json.log`).
    pub dir: tempfile::TempDir,
}

impl Snmpd {
    /// Start it and wait until it answers.
    pub fn start() -> Result<Snmpd> {
        let dir = tempfile::tempdir()?;
        let port = free_udp_port()?;
        let d = dir.path().display().to_string();
        let conf = std::fs::read_to_string(shared_peers().join("snmpd-apc.conf"))
            .context("reading tests/peers/snmpd-apc.conf")?
            .replace("@DIR@", &d)
            .replace("udp:127.0.0.1:16161", &format!("udp:127.0.0.1:{port}"));
        std::fs::write(dir.path().join("snmpd.conf"), conf)?;
        std::fs::copy(
            shared_peers().join("apc_pass.py"),
            dir.path().join("apc_pass.py"),
        )?;
        std::fs::create_dir_all(dir.path().join("persist"))?;
        let child = Command::new("/usr/sbin/snmpd")
            .args(["-f", "-C", "-c"])
            .arg(dir.path().join("snmpd.conf"))
            .arg("-Lf")
            .arg(dir.path().join("snmpd.log"))
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", dir.path().join("persist"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting snmpd")?;
        let mut me = Snmpd { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = Command::new("snmpget")
                .args(["-v2c", "-c", "public", "-t", "0.5", "-r", "0"])
                .arg(format!("127.0.0.1:{port}"))
                .arg(".1.3.6.1.2.1.1.5.0")
                .env("MIBS", "")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(me);
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("snmpd exited with {status}: {}", me.log());
            }
            if Instant::now() > deadline {
                bail!("snmpd did not answer on port {port}: {}", me.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// snmpd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpd.log")).unwrap_or_default()
    }

    /// The commands the pass script received (`outlet N cmd V` lines).
    pub fn commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("outlets.json.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The simulated outlet states: 1 on, 2 off (all on before the first set).
    pub fn outlet(&self, n: u32) -> u32 {
        let path: &Path = &self.dir.path().join("outlets.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let key = format!("\"{n}\": ");
        text.find(&key)
            .and_then(|at| text[at + key.len()..].chars().next())
            .and_then(|c| c.to_digit(10))
            .unwrap_or(1)
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
