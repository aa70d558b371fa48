//! net-snmp's `snmptrapd` as a trap receiver on a free loopback UDP port, with its own
//! configuration in a directory of the test's, logging decoded traps to its standard output
//! (`-f -Lo`, each trap as `trap from ADDRESS: TRAP2, SNMP v3, user NAME…` and one line per
//! varbind) with mo's MIB (`-M +docs -m MO-EVENTS-MIB`: only that module, no noise about the IETF modules Debian does not ship) so varbinds come out by name.
//! It accepts v2c community `public` and, for each [`TrapUser`], an SNMPv3 user created with
//! the engine ID mo sends as.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::workspace_root;
use crate::error::{Error, Result};
use crate::ports::free_udp_port;
use crate::process::Peer;

/// Where Debian installs snmptrapd.
pub const SNMPTRAPD: &str = "/usr/sbin/snmptrapd";

/// An SNMPv3 user snmptrapd accepts traps from (SHA authentication, AES privacy).
#[derive(Debug, Clone)]
pub struct TrapUser {
    /// The USM user name.
    pub name: String,
    /// The sender's engine ID in hex (`80007ed9…`).
    pub engine_id: String,
    /// The SHA authentication password (8 characters at least).
    pub auth_password: String,
    /// The AES privacy password (8 characters at least).
    pub priv_password: String,
}

/// A running snmptrapd; killed by PID when dropped.
#[derive(Debug)]
pub struct Snmptrapd {
    peer: Peer,
    port: u16,
}

impl Snmptrapd {
    /// Write the configuration into `dir` (created), start snmptrapd on a free UDP port of
    /// 127.0.0.1 and wait until it says it is running.
    pub fn start(dir: &Path, users: &[TrapUser]) -> Result<Snmptrapd> {
        if !Path::new(SNMPTRAPD).exists() {
            return Err(Error::MissingBinary {
                name: "snmptrapd".into(),
                path: SNMPTRAPD.into(),
                hint: "install it with apt-get install snmptrapd".into(),
            });
        }
        let io = |what: String| move |e| Error::io(what, e);
        let persist = dir.join("persist");
        std::fs::create_dir_all(&persist).map_err(io(format!("create {}", persist.display())))?;
        let mut conf = String::from("authCommunity log public\n");
        for u in users {
            conf.push_str(&format!(
                "createUser -e 0x{} {} SHA {} AES {}\nauthUser log {} priv\n",
                u.engine_id, u.name, u.auth_password, u.priv_password, u.name
            ));
        }
        let conf_path = dir.join("snmptrapd.conf");
        std::fs::write(&conf_path, conf).map_err(io(format!("write {}", conf_path.display())))?;
        let port = free_udp_port()?;
        let docs: PathBuf = workspace_root().join("docs");
        let mut cmd = Command::new(SNMPTRAPD);
        cmd.env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", &persist)
            .args(["-f", "-Lo", "-C", "-M"])
            .arg(format!("+{}", docs.display()))
            .args([
                "-m",
                "MO-EVENTS-MIB",
                "-F",
                "trap from %b: %P\n%V\n\t%v\n",
                "-c",
            ])
            .arg(&conf_path)
            .arg(format!("udp:127.0.0.1:{port}"))
            .stdin(Stdio::null());
        let log = dir.join("snmptrapd.log");
        let peer = Peer::spawn("snmptrapd", cmd, Some(&log))?;
        let me = Snmptrapd { peer, port };
        if !me.wait_for("NET-SNMP version", Duration::from_secs(30)) {
            return Err(Error::PeerStart {
                name: "snmptrapd".into(),
                reason: "no `NET-SNMP version` line within 30 s".into(),
                log: me.log_text(),
            });
        }
        Ok(me)
    }

    /// `127.0.0.1:PORT`, where it listens.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything it logged so far (decoded traps, errors).
    pub fn log_text(&self) -> String {
        self.peer.log_text()
    }

    /// Poll the log until it contains `needle`; `false` after `within`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
