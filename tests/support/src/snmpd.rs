//! net-snmp snmpd as an 8-outlet APC PDU (PEERS.md, `tests/peers/snmpd-apc.conf` with the pass
//! script `tests/peers/apc_pass.py`) on a free loopback UDP port: v2c `public` read-only (a set
//! returns noAccess), `private` read-write, v3 user `admin` SHA/AES authPriv. The outlet states
//! live in `DIR/outlets.json`, the commands the script received in `DIR/outlets.json.log`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::workspace_root;
use crate::error::{Error, Result};
use crate::ports::{free_udp_port, temp_dir};
use crate::process::{Peer, read_lossy};

/// Where Debian installs snmpd.
pub const SNMPD: &str = "/usr/sbin/snmpd";

/// The peer configurations kept in the repository (`tests/peers/`, copies of PEERS.md's samples).
pub fn peer_configs() -> PathBuf {
    workspace_root().join("tests/peers")
}

/// A running snmpd with the APC pass script; killed by PID when dropped.
#[derive(Debug)]
pub struct Snmpd {
    peer: Peer,
    port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Snmpd {
    /// Write the configuration into `dir` (created), start snmpd and wait until it answers a v2c
    /// GET (`snmpget`).
    pub fn start(dir: &Path) -> Result<Snmpd> {
        Self::start_on(dir, std::net::Ipv4Addr::LOCALHOST)
    }

    /// [`Snmpd::start`] listening on the loopback address `host` (127.0.0.2, …: one address per
    /// simulated host) instead of 127.0.0.1.
    pub fn start_on(dir: &Path, host: std::net::Ipv4Addr) -> Result<Snmpd> {
        for (path, hint) in [
            (SNMPD, "install it with apt-get install snmpd"),
            ("/usr/bin/snmpget", "install it with apt-get install snmp"),
        ] {
            if !Path::new(path).exists() {
                return Err(Error::MissingBinary {
                    name: path.rsplit('/').next().unwrap_or(path).into(),
                    path: path.into(),
                    hint: hint.into(),
                });
            }
        }
        let io = |what: String| move |e| Error::io(what, e);
        std::fs::create_dir_all(dir.join("persist"))
            .map_err(io(format!("create {}", dir.display())))?;
        let port = free_udp_port()?;
        let conf = peer_configs().join("snmpd-apc.conf");
        let text = std::fs::read_to_string(&conf)
            .map_err(io(format!("read {}", conf.display())))?
            .replace("@DIR@", &dir.display().to_string())
            .replace("udp:127.0.0.1:16161", &format!("udp:{host}:{port}"));
        std::fs::write(dir.join("snmpd.conf"), text).map_err(io("write snmpd.conf".into()))?;
        std::fs::copy(peer_configs().join("apc_pass.py"), dir.join("apc_pass.py"))
            .map_err(io("copy apc_pass.py".into()))?;
        let mut cmd = Command::new(SNMPD);
        cmd.args(["-f", "-C", "-c"])
            .arg(dir.join("snmpd.conf"))
            .arg("-Lf")
            .arg(dir.join("snmpd.log"))
            .arg("-p")
            .arg(dir.join("snmpd.pid"))
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let peer = Peer::spawn("snmpd", cmd, None)?;
        let mut me = Snmpd {
            peer,
            port,
            dir: dir.to_owned(),
            _tmp: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = Command::new("snmpget")
                .args(["-v2c", "-c", "public", "-t", "0.5", "-r", "0"])
                .arg(format!("{host}:{port}"))
                .arg(".1.3.6.1.2.1.1.5.0")
                .env("MIBS", "")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return Ok(me);
            }
            if let Some(status) = me.peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: "snmpd".into(),
                    reason: format!("exited with {status}"),
                    log: me.log(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "snmpd".into(),
                    reason: format!("no answer on UDP {port} after 20 s"),
                    log: me.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`Snmpd::start`] in a fresh temporary directory of its own (removed on drop).
    pub fn start_temp() -> Result<Snmpd> {
        let tmp = temp_dir("snmpd")?;
        let mut me = Self::start(tmp.path())?;
        me._tmp = Some(tmp);
        Ok(me)
    }

    /// The UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory (configuration, outlet state, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `snmp://127.0.0.1:PORT/apc/OUTLETS` (the community or v3 user is the device's secret).
    pub fn address(&self, outlets: &str) -> String {
        format!("snmp://127.0.0.1:{}/apc/{outlets}", self.port)
    }

    /// snmpd's log.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("snmpd.log"))
    }

    /// The commands the pass script received (`outlet N cmd V` lines).
    pub fn commands(&self) -> Vec<String> {
        read_lossy(&self.dir.join("outlets.json.log"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// An outlet's state: 1 on, 2 off (all on before the first set).
    pub fn outlet(&self, n: u32) -> u32 {
        let text = read_lossy(&self.dir.join("outlets.json"));
        let key = format!("\"{n}\": ");
        text.find(&key)
            .and_then(|at| text[at + key.len()..].chars().next())
            .and_then(|c| c.to_digit(10))
            .unwrap_or(1)
    }
}
