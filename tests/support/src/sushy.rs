//! sushy-emulator (Redfish, fake driver, plain HTTP unless configured otherwise; PEERS.md,
//! `tests/peers/sushy-emulator.conf`) from the peers venv `scripts/setup.sh` builds, on a free
//! loopback port with basic auth `admin` / `password`. Two systems: [`NODE1`] starts off, [`NODE2`]
//! on; power changes land after a random 1–11 s delay (poll). Accepted resets are logged, and
//! [`Sushy::reset_types`] reads them back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::workspace_root;
use crate::error::{Error, Result};
use crate::ports::{free_port, tcp_listening, temp_dir};
use crate::process::{Peer, run_with_timeout};
use crate::snmpd::peer_configs;

/// node1's UUID (starts powered off).
pub const NODE1: &str = "11111111-1111-1111-1111-111111111111";
/// node2's UUID (starts powered on).
pub const NODE2: &str = "22222222-2222-2222-2222-222222222222";

/// A program of the peers venv (`target/peers-venv/bin/NAME`, built by `scripts/setup.sh`).
pub fn venv_bin(name: &str) -> PathBuf {
    workspace_root().join("target/peers-venv/bin").join(name)
}

/// A running sushy-emulator; killed by PID when dropped.
#[derive(Debug)]
pub struct Sushy {
    peer: Peer,
    port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Sushy {
    /// [`Sushy::start_with`] no extra configuration.
    pub fn start(dir: &Path) -> Result<Sushy> {
        Self::start_with(dir, |_| String::new())
    }

    /// Write the configuration into `dir` (created) plus the lines `extra` makes from `dir`
    /// (e.g. TLS settings), start sushy-emulator and wait until it listens.
    pub fn start_with(dir: &Path, extra: impl FnOnce(&Path) -> String) -> Result<Sushy> {
        let program = venv_bin("sushy-emulator");
        if !program.exists() {
            return Err(Error::MissingBinary {
                name: "sushy-emulator".into(),
                path: program,
                hint: "run scripts/setup.sh (pip install sushy-tools into target/peers-venv)"
                    .into(),
            });
        }
        let io = |what: String| move |e| Error::io(what, e);
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let port = free_port()?;
        let conf = peer_configs().join("sushy-emulator.conf");
        let text = std::fs::read_to_string(&conf)
            .map_err(io(format!("read {}", conf.display())))?
            .replace("@DIR@", &dir.display().to_string())
            .replace("= 8123", &format!("= {port}"))
            + &extra(dir);
        std::fs::write(dir.join("sushy.conf"), text).map_err(io("write sushy.conf".into()))?;
        let mut hash = Command::new(venv_bin("python"));
        hash.args([
            "-c",
            "import bcrypt;print('admin:'+bcrypt.hashpw(b'password',bcrypt.gensalt(4)).decode())",
        ]);
        let hash = run_with_timeout(hash, None, Duration::from_secs(30))?.ok()?;
        std::fs::write(dir.join("htpasswd"), hash.stdout).map_err(io("write htpasswd".into()))?;
        let mut cmd = Command::new(&program);
        cmd.arg("--config")
            .arg(dir.join("sushy.conf"))
            .stdin(Stdio::null());
        let peer = Peer::spawn("sushy-emulator", cmd, Some(&dir.join("sushy.log")))?;
        let mut me = Sushy {
            peer,
            port,
            dir: dir.to_owned(),
            _tmp: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !tcp_listening(port) {
            if let Some(status) = me.peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: "sushy-emulator".into(),
                    reason: format!("exited with {status}"),
                    log: me.log(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "sushy-emulator".into(),
                    reason: format!("not listening on 127.0.0.1:{port} after 30 s"),
                    log: me.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(me)
    }

    /// [`Sushy::start_with`] in a fresh temporary directory of its own (removed on drop).
    pub fn start_temp_with(extra: impl FnOnce(&Path) -> String) -> Result<Sushy> {
        let tmp = temp_dir("sushy")?;
        let mut me = Self::start_with(tmp.path(), extra)?;
        me._tmp = Some(tmp);
        Ok(me)
    }

    /// [`Sushy::start`] in a fresh temporary directory of its own (removed on drop).
    pub fn start_temp() -> Result<Sushy> {
        Self::start_temp_with(|_| String::new())
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory (configuration, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plain-HTTP address of a system by its UUID, polling every 500 ms for up to 40 s
    /// after a power action.
    pub fn address(&self, uuid: &str) -> String {
        format!(
            "redfish://admin@127.0.0.1:{}/Systems/{uuid}?tls=0&poll=500ms&wait=40s",
            self.port
        )
    }

    /// sushy-emulator's log.
    pub fn log(&self) -> String {
        self.peer.log_text()
    }

    /// The ResetTypes POSTed to a system's `ComputerSystem.Reset` and accepted, in order, from
    /// sushy's log (tests/peers/sushy-emulator.conf turns that log line on).
    pub fn reset_types(&self, uuid: &str) -> Vec<String> {
        let prefix = format!("System \"{uuid}\" power state set to \"");
        self.log()
            .lines()
            .filter_map(|line| line.split_once(&prefix))
            .filter_map(|(_, rest)| rest.split_once('"'))
            .map(|(kind, _)| kind.to_owned())
            .collect()
    }
}
