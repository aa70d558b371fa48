//! The agent side of the SSH front door: `mo-agent` connections and the `agent://` links they
//! carry (docs/agent.md).
//!
//! An agent logs in under its own name with the key it enrolled ([`Agents::check_key`]), or — to
//! enroll — with its one-time token as the password ([`Agents::check_enrollment`]). Its session
//! channels each run one command:
//!
//! * `mo-agent enroll KEY` registers the agent's public key (consuming the token);
//! * `mo-agent control` is the control channel: hello, the list of ports (recorded in the store
//!   for `mo agent ports`), host-info queries ([`Agents::host_info`]);
//! * `mo-agent port NAME` carries one port: output records with the agent's sequence numbers,
//!   input, control operations, modem lines.
//!
//! Consoles reach ports through [`AgentPorts::open`] (the driver's `agent://AGENT/PORT`): a link
//! is a pipe between the console actor and the port's channel task. When the agent goes away the
//! link ends and the console reconnects, waiting for the agent to come back. A sequence handshake
//! (`PortHello` → `Resume`) on each port channel lets the agent replay what it spooled while the
//! link was down, with no gap, duplicate or reorder; the daemon acknowledges what it passed on.
//! A removed (revoked) agent is disconnected within a second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{ControlOp, Link, LinkControl, LinkStatus, ModemState};
use mo_core::{Error, Result};
use mo_drivers::agent::codec::{
    ABILITY_FLOW, ABILITY_HOST_INFO, Decoder, Frame, MAX_PAYLOAD, PortOp,
};
use mo_drivers::agent::{AgentPorts, ENROLL_PREFIX, EnrollToken, WaterMarks};
use mo_drivers::host::{HostTable, HostWhat};
use mo_store::{AgentPort, SshPublicKey, Store};
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::Ctx;

mod local;
mod resume;
mod signals;
use resume::{OriginTimes, PERSIST_EVERY};
use signals::{Marks, modem_events, notice};

/// How long opening an `agent://` link waits for its agent to (re)connect.
const OPEN_WAIT: Duration = Duration::from_secs(5);
/// Frames queued towards one port's channel.
const QUEUE: usize = 256;
/// The pipe between a console actor and a port's channel task.
const PIPE_BYTES: usize = 64 * 1024;
/// How long a host-info query waits for the agent's answer.
const HOST_WAIT: Duration = Duration::from_secs(10);
/// A port's output read from its channel but not yet passed on: above this much the agent is
/// told to hold the port back ([`Frame::Flow`]; an agent without that ability is no longer
/// read, which stalls its whole connection: russh queues only so many messages per channel).
const BACKLOG_HIGH: usize = 256 * 1024;
/// … and below this much it is told to go on.
const BACKLOG_LOW: usize = 64 * 1024;

/// An agent port: (agent, port).
type PortKey = (String, String);

/// A console's end of a port: its pipe, and the times of the bytes in it.
type Sink = (WriteHalf<DuplexStream>, Arc<OriginTimes>);

/// Who logged in as an agent.
#[derive(Clone)]
pub enum AgentLogin {
    /// An enrolled agent, with its key.
    Agent {
        /// The agent's name.
        name: String,
        /// This connection's number (a reconnect gets a new one).
        id: u64,
    },
    /// An agent enrolling with its one-time token.
    Enrolling {
        /// The agent's name.
        name: String,
        /// The token's secret, consumed by `mo-agent enroll`.
        secret: String,
    },
}

impl std::fmt::Debug for AgentLogin {
    /// Never shows the enrollment secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentLogin::Agent { name, id } => write!(f, "agent {name} (connection {id})"),
            AgentLogin::Enrolling { name, .. } => write!(f, "agent {name} (enrolling)"),
        }
    }
}

/// What a public-key login as `user` is.
#[derive(Debug)]
pub enum KeyCheck {
    /// The enrolled key of agent `user`.
    Agent(AgentLogin),
    /// An agent's key presented under another name: refused.
    Refused,
    /// Not an agent key (a user's login, maybe).
    NotAnAgent,
}

/// A port of a connected agent.
struct PortLine {
    /// Frames to the agent on this port's channel.
    to_agent: mpsc::Sender<Frame>,
    /// New pipes from console actors (each `open` sends one).
    sinks: mpsc::Sender<Sink>,
    /// The modem lines the agent reports.
    status: watch::Receiver<LinkStatus>,
    /// Closed (its sender dropped) when the port's channel ends.
    gone: watch::Receiver<()>,
}

/// A connected agent.
struct Live {
    id: u64,
    ports: HashMap<String, Arc<PortLine>>,
    offered: Vec<String>,
    /// Frames to the agent on its control channel.
    control: mpsc::Sender<Frame>,
    /// What the agent's hello announced (`ABILITY_*`).
    abilities: u32,
}

/// Why [`Agents::host_info`] has no table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The agent is not connected now.
    #[error("agent `{0}` is not connected")]
    NotConnected(String),
    /// The agent is older than host info.
    #[error("agent `{0}` does not answer host info (an older mo-agent: upgrade it)")]
    Unsupported(String),
    /// The agent did not answer in time, or went away while asked.
    #[error("agent `{0}` did not answer the host-info query")]
    NoAnswer(String),
    /// The agent answered with an error.
    #[error("agent `{0}`: {1}")]
    Failed(String, String),
}

/// Host-info queries waiting for their agents' answers, by query id: the agent asked, its
/// connection, and where the answer goes.
type HostQueries = HashMap<u32, (String, u64, oneshot::Sender<Result<HostTable, String>>)>;

/// The agents connected to this daemon and their ports.
pub struct Agents {
    store: Store,
    live: Mutex<HashMap<String, Live>>,
    /// Per (agent, port): the spool epoch and the last sequence number passed on.
    resume: Mutex<HashMap<PortKey, (u64, u64)>>,
    /// Resume points passed on but not yet written to the store.
    pending: Mutex<HashMap<PortKey, (u64, u64)>>,
    /// Resume points written to the store: what port channels acknowledge to the agent.
    persisted: Mutex<HashMap<PortKey, (u64, u64)>>,
    /// Whether the task writing resume points runs.
    persisting: AtomicBool,
    /// Per agent: woken when its connection, port list or port channels change. Per agent, not
    /// one for all: thousands of consoles wait for their ports while agents connect, and each
    /// port channel that comes up must wake only the consoles of its own agent.
    changed: Mutex<HashMap<String, Arc<Notify>>>,
    ids: AtomicU64,
    queries: Mutex<HostQueries>,
    query_ids: AtomicU32,
    /// The water marks agents set for their ports (`mo-agent --high-mark`, …), as last sent.
    marks: Mutex<HashMap<PortKey, WaterMarks>>,
}

impl Agents {
    /// No agents connected yet.
    pub fn new(store: Store) -> Self {
        Agents {
            store,
            live: Mutex::new(HashMap::new()),
            resume: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            persisted: Mutex::new(HashMap::new()),
            persisting: AtomicBool::new(false),
            changed: Mutex::new(HashMap::new()),
            ids: AtomicU64::new(1),
            queries: Mutex::new(HashMap::new()),
            query_ids: AtomicU32::new(1),
            marks: Mutex::new(HashMap::new()),
        }
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, HashMap<PortKey, WaterMarks>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The water marks `agent` sets for `port`, or the built-in ones; a device's address may
    /// override each ([`mo_drivers::agent::water_marks_over`]).
    pub fn port_marks(&self, agent: &str, port: &str) -> WaterMarks {
        self.marks()
            .get(&(agent.to_owned(), port.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    fn queries(&self) -> std::sync::MutexGuard<'_, HostQueries> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask the connected agent `agent` for its host's `what` (`mo host show AGENT what`); waits
    /// up to 10 s for the answer.
    pub async fn host_info(
        &self,
        agent: &str,
        what: HostWhat,
    ) -> std::result::Result<HostTable, HostError> {
        let (control, connection) = {
            let live = self.live();
            let Some(l) = live.get(agent) else {
                return Err(HostError::NotConnected(agent.to_owned()));
            };
            if l.abilities & ABILITY_HOST_INFO == 0 {
                return Err(HostError::Unsupported(agent.to_owned()));
            }
            (l.control.clone(), l.id)
        };
        let id = self.query_ids.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.queries()
            .insert(id, (agent.to_owned(), connection, tx));
        let asked = control
            .send(Frame::HostQuery {
                id,
                what: what.name().to_owned(),
            })
            .await;
        let answer = match asked {
            Ok(()) => tokio::time::timeout(HOST_WAIT, rx)
                .await
                .ok()
                .and_then(|r| r.ok()),
            Err(_) => None,
        };
        self.queries().remove(&id);
        match answer {
            Some(Ok(table)) => Ok(table),
            Some(Err(text)) => Err(HostError::Failed(agent.to_owned(), text)),
            None => Err(HostError::NoAnswer(agent.to_owned())),
        }
    }

    /// What wakes the waiters for `agent`'s connection and ports.
    fn changed(&self, agent: &str) -> Arc<Notify> {
        let mut all = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(agent.to_owned()).or_default().clone()
    }

    /// Wake everyone waiting for `agent`'s connection or ports.
    fn notify(&self, agent: &str) {
        self.changed(agent).notify_waiters();
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Check a public-key login as `user` with `kind`/`blob` (OpenSSH base64).
    pub async fn check_key(&self, user: &str, kind: &str, blob: &str) -> KeyCheck {
        let store = self.store.clone();
        let (kind, blob) = (kind.to_owned(), blob.to_owned());
        let owner = tokio::task::spawn_blocking(move || store.agent_by_key(&kind, &blob)).await;
        match owner {
            Ok(Ok(Some(name))) if name == user => KeyCheck::Agent(AgentLogin::Agent {
                name,
                id: self.ids.fetch_add(1, Ordering::SeqCst),
            }),
            Ok(Ok(Some(name))) => {
                tracing::warn!(
                    agent = %name,
                    claimed = %user,
                    "agent key presented under another name: refused"
                );
                KeyCheck::Refused
            }
            Ok(Ok(None)) => KeyCheck::NotAnAgent,
            Ok(Err(e)) => {
                tracing::error!("cannot look up agent keys: {e}");
                KeyCheck::Refused
            }
            Err(e) => {
                tracing::error!("agent key lookup failed: {e}");
                KeyCheck::Refused
            }
        }
    }

    /// Whether `password` is an enrollment token (then the login is an agent's, whatever the
    /// outcome): `Some(Some(login))` if it is `user`'s unused token, `Some(None)` if refused.
    pub async fn check_enrollment(&self, user: &str, password: &str) -> Option<Option<AgentLogin>> {
        if !password.trim().starts_with(ENROLL_PREFIX) {
            return None;
        }
        let Ok(token) = EnrollToken::parse(password) else {
            tracing::warn!(agent = %user, "malformed enrollment token: refused");
            return Some(None);
        };
        let store = self.store.clone();
        let (name, secret) = (user.to_owned(), token.secret.clone());
        let ok =
            tokio::task::spawn_blocking(move || store.check_agent_enrollment(&name, &secret)).await;
        match ok {
            Ok(Ok(true)) => Some(Some(AgentLogin::Enrolling {
                name: user.to_owned(),
                secret: token.secret,
            })),
            Ok(Ok(false)) => {
                tracing::warn!(agent = %user, "enrollment token unknown, used or expired: refused");
                Some(None)
            }
            Ok(Err(e)) => {
                tracing::error!("cannot check an enrollment token: {e}");
                Some(None)
            }
            Err(e) => {
                tracing::error!("enrollment check failed: {e}");
                Some(None)
            }
        }
    }

    /// Forget connection `id` of `agent` (its ports' links end) and record the disconnect.
    async fn gone(&self, agent: &str, id: u64) {
        let removed = {
            let mut live = self.live();
            if live.get(agent).is_some_and(|l| l.id == id) {
                live.remove(agent);
                true
            } else {
                false
            }
        };
        if removed {
            self.notify(agent);
            let store = self.store.clone();
            let name = agent.to_owned();
            let _ =
                tokio::task::spawn_blocking(move || store.set_agent_connected(&name, None, None))
                    .await;
            tracing::info!(agent, "agent disconnected");
        }
    }

    /// The channel of `agent`'s `port`, if it is open now.
    fn port_line(&self, agent: &str, port: &str) -> Option<Arc<PortLine>> {
        self.live().get(agent)?.ports.get(port).cloned()
    }

    /// Why `agent`'s `port` has no channel (after [`Agents::port_line`] found none).
    fn why_no_port(&self, agent: &str, port: &str) -> String {
        let live = self.live();
        let Some(conn) = live.get(agent) else {
            return format!("agent `{agent}` is not connected");
        };
        if conn.ports.contains_key(port) {
            format!("agent `{agent}` opened port `{port}` just now")
        } else if conn.offered.is_empty() {
            format!("agent `{agent}` has not offered port `{port}` (yet)")
        } else if conn.offered.iter().any(|p| p == port) {
            format!("agent `{agent}` offers port `{port}` but has not opened its channel (yet)")
        } else {
            format!(
                "agent `{agent}` offers no port `{port}` (it offers: {})",
                conn.offered.join(", ")
            )
        }
    }

    /// Whether connection `id` of `agent` announced that it holds a port back on request.
    fn can_hold(&self, agent: &str, id: u64) -> bool {
        self.live()
            .get(agent)
            .is_some_and(|l| l.id == id && l.abilities & ABILITY_FLOW != 0)
    }

    /// The ports of connected `agent` that have a channel now.
    pub fn connected_ports(&self, agent: &str) -> Vec<String> {
        let live = self.live();
        let mut ports: Vec<String> = live
            .get(agent)
            .map(|l| l.ports.keys().cloned().collect())
            .unwrap_or_default();
        ports.sort();
        ports
    }
}

#[async_trait]
impl AgentPorts for Agents {
    async fn open(&self, agent: &str, port: &str, settings: &str) -> Result<Link> {
        let address = format!("agent://{agent}/{port}");
        let deadline = tokio::time::Instant::now() + OPEN_WAIT;
        let changed = self.changed(agent);
        let line = loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(line) = self.port_line(agent, port) {
                break line;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let reason = self.why_no_port(agent, port);
                return Err(Error::Connect { address, reason });
            }
        };
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        let (mut from_console, to_console) = tokio::io::split(theirs);
        let times = Arc::new(OriginTimes::default());
        if line.sinks.send((to_console, times.clone())).await.is_err() {
            return Err(Error::Connect {
                address,
                reason: format!("agent `{agent}` closed port `{port}`"),
            });
        }
        if !settings.is_empty() {
            let _ = line
                .to_agent
                .send(Frame::Settings(settings.to_owned()))
                .await;
        }
        // Console input → the agent.
        let to_agent = line.to_agent.clone();
        let mut gone = line.gone.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                tokio::select! {
                    read = from_console.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if to_agent.send(Frame::Input(buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    },
                    _ = gone.changed() => break,
                }
            }
        });
        let (reader, writer) = tokio::io::split(ours);
        Ok(Link {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            control: Arc::new(PortControl {
                to_agent: line.to_agent.clone(),
                status: line.status.clone(),
                address,
                times,
            }),
        })
    }
}

/// BREAK, DTR and RTS travel to the agent as control frames; the modem lines come back.
struct PortControl {
    to_agent: mpsc::Sender<Frame>,
    status: watch::Receiver<LinkStatus>,
    address: String,
    /// When the agent read the bytes in this link's pipe.
    times: Arc<OriginTimes>,
}

#[async_trait]
impl LinkControl for PortControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        let frame = match op {
            ControlOp::Break { duration } => Frame::Control(PortOp::Break(
                u32::try_from(duration.as_millis()).unwrap_or(u32::MAX),
            )),
            ControlOp::SetDtr(on) => Frame::Control(PortOp::Dtr(on)),
            ControlOp::SetRts(on) => Frame::Control(PortOp::Rts(on)),
            other => {
                return Err(Error::Unsupported {
                    operation: other.name(),
                    what: self.address.clone(),
                });
            }
        };
        self.to_agent
            .send(frame)
            .await
            .map_err(|_| Error::ConsoleDown {
                device: self.address.clone(),
                reason: "the agent's port channel is closed".into(),
            })
    }

    fn status(&self) -> Option<watch::Receiver<LinkStatus>> {
        Some(self.status.clone())
    }

    fn origin_times(&self, n: usize) -> Option<Vec<(usize, u64)>> {
        Some(self.times.take(n))
    }
}

/// Serve one session channel of an agent connection.
pub async fn run_channel(
    ctx: Arc<Ctx>,
    login: AgentLogin,
    peer: Option<SocketAddr>,
    channel: Channel<Msg>,
    handle: Handle,
) {
    let (mut rd, wr) = channel.split();
    let command = loop {
        match rd.wait().await {
            Some(ChannelMsg::Exec { command, .. }) => {
                break String::from_utf8_lossy(&command).into_owned();
            }
            Some(ChannelMsg::RequestShell { .. })
            | Some(ChannelMsg::Eof)
            | Some(ChannelMsg::Close)
            | None => {
                let _ = wr
                    .data_bytes(bytes::Bytes::from_static(
                        b"mo: this login is an agent's; it runs mo-agent commands only\r\n",
                    ))
                    .await;
                let _ = wr.exit_status(2).await;
                let _ = wr.close().await;
                return;
            }
            Some(_) => {}
        }
    };
    let agents = ctx.registry.agents().clone();
    let mut words = command.split_whitespace();
    let (first, verb) = (words.next(), words.next());
    let rest: Vec<&str> = words.collect();
    match (&login, first, verb) {
        (AgentLogin::Enrolling { name, secret }, Some("mo-agent"), Some("enroll")) => {
            let status = enroll(&agents, name, secret, &rest.join(" "), &wr).await;
            let _ = wr.exit_status(status).await;
            let _ = wr.close().await;
        }
        (AgentLogin::Agent { name, id }, Some("mo-agent"), Some("control")) => {
            control_channel(&ctx, &agents, name, *id, peer, rd, wr, handle).await;
        }
        (AgentLogin::Agent { name, id }, Some("mo-agent"), Some("port")) if rest.len() == 1 => {
            port_channel(&ctx, &agents, name, *id, rest[0], rd, wr).await;
        }
        _ => {
            let _ = wr
                .data_bytes(bytes::Bytes::from(format!(
                    "mo: unknown agent command `{command}`\r\n"
                )))
                .await;
            let _ = wr.exit_status(2).await;
            let _ = wr.close().await;
        }
    }
}

async fn enroll(
    agents: &Agents,
    name: &str,
    secret: &str,
    key: &str,
    wr: &ChannelWriteHalf<Msg>,
) -> u32 {
    let result = match SshPublicKey::parse(key) {
        Ok(key) => {
            let store = agents.store.clone();
            let (name, secret) = (name.to_owned(), secret.to_owned());
            tokio::task::spawn_blocking(move || store.enroll_agent(&name, &secret, &key))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        }
        Err(e) => Err(e.to_string()),
    };
    let (text, status) = match result {
        Ok(()) => {
            tracing::info!(agent = name, "agent enrolled");
            (format!("enrolled agent {name}\n"), 0)
        }
        Err(e) => {
            tracing::warn!(agent = name, "enrollment refused: {e}");
            (format!("enrollment refused: {e}\n"), 1)
        }
    };
    let _ = wr.data_bytes(bytes::Bytes::from(text)).await;
    status
}

/// How much of a port's output the daemon has read from its channel but not passed on, and
/// whether the agent is holding the port back because of it.
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    /// Woken when the backlog falls to [`BACKLOG_LOW`].
    drained: Notify,
}

impl Backlog {
    /// `n` bytes were taken from the backlog (decoded and passed on).
    fn taken(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::SeqCst);
        if before > BACKLOG_LOW && before - n <= BACKLOG_LOW {
            self.drained.notify_one();
        }
    }
}

/// Read a port channel at once, always: what it carries goes to the returned queue. russh
/// hands each channel's messages over through a short queue and, while one is full, reads
/// nothing more from the whole connection — a port waiting for a console would hold up the
/// control channel and every other port. The backlog is bounded instead by telling the agent
/// to hold the port back ([`Frame::Flow`]) above [`BACKLOG_HIGH`] and to go on at
/// [`BACKLOG_LOW`]. Both frames come from this task, so they reach the agent in order.
fn spawn_drain(
    agents: Arc<Agents>,
    name: String,
    id: u64,
    mut rd: russh::ChannelReadHalf,
    backlog: Arc<Backlog>,
    to_agent: mpsc::Sender<Frame>,
) -> mpsc::UnboundedReceiver<ChannelMsg> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = false;
        loop {
            let over = backlog.bytes.load(Ordering::SeqCst) >= BACKLOG_HIGH;
            if over && !held {
                if agents.can_hold(&name, id) {
                    held = true;
                    tracing::debug!(agent = %name, "holding a port back: its backlog is full");
                    if to_agent.send(Frame::Flow { hold: true }).await.is_err() {
                        break;
                    }
                } else {
                    // An agent that cannot hold a port back is no longer read for a while.
                    backlog.drained.notified().await;
                    continue;
                }
            }
            let msg = tokio::select! {
                msg = rd.wait() => msg,
                () = backlog.drained.notified(), if held => {
                    held = false;
                    if to_agent.send(Frame::Flow { hold: false }).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            let end = matches!(msg, None | Some(ChannelMsg::Eof) | Some(ChannelMsg::Close));
            if let Some(ChannelMsg::Data { data }) = &msg {
                backlog.bytes.fetch_add(data.len(), Ordering::SeqCst);
            }
            if tx.send(msg.unwrap_or(ChannelMsg::Close)).is_err() || end {
                break;
            }
        }
    });
    rx
}

/// Frames to a channel, from a queue, in order.
fn spawn_writer(wr: ChannelWriteHalf<Msg>) -> mpsc::Sender<Frame> {
    let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE);
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let mut wire = frame.encode();
            // Batch what is queued already into one SSH data message.
            while wire.len() < MAX_PAYLOAD {
                match rx.try_recv() {
                    Ok(more) => wire.extend_from_slice(&more.encode()),
                    Err(_) => break,
                }
            }
            if wr.data_bytes(bytes::Bytes::from(wire)).await.is_err() {
                break;
            }
        }
        let _ = wr.close().await;
    });
    tx
}

#[allow(clippy::too_many_arguments)]
async fn control_channel(
    ctx: &Arc<Ctx>,
    agents: &Arc<Agents>,
    name: &str,
    id: u64,
    peer: Option<SocketAddr>,
    mut rd: russh::ChannelReadHalf,
    wr: ChannelWriteHalf<Msg>,
    handle: Handle,
) {
    let to_agent = spawn_writer(wr);
    {
        let mut live = agents.live();
        live.insert(
            name.to_owned(),
            Live {
                id,
                ports: HashMap::new(),
                offered: Vec::new(),
                control: to_agent.clone(),
                abilities: 0,
            },
        );
    }
    agents.notify(name);
    tracing::info!(agent = name, ?peer, "agent connected");
    let mut decoder = Decoder::new();
    let mut revoke_check = tokio::time::interval(Duration::from_secs(1));
    let why = loop {
        tokio::select! {
            msg = rd.wait() => {
                let data = match msg {
                    Some(ChannelMsg::Data { data }) => data,
                    Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => break "control channel closed".to_string(),
                    Some(_) => continue,
                };
                decoder.push(&data);
                let mut failed = None;
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) => {
                            control_frame(agents, name, peer, frame).await;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(e.to_string());
                            break;
                        }
                    }
                }
                if let Some(e) = failed {
                    tracing::warn!(agent = name, "garbage on the agent's control channel: {e}");
                    let _ = to_agent.send(Frame::Error(format!("bad frame: {e}"))).await;
                    break format!("bad frame: {e}");
                }
            }
            _ = revoke_check.tick() => {
                let store = ctx.store.clone();
                let n = name.to_owned();
                let still = tokio::task::spawn_blocking(move || store.agent(&n)).await;
                if let Ok(Err(mo_store::Error::UnknownName { .. })) = still {
                    tracing::warn!(agent = name, "agent removed: disconnecting it");
                    let _ = to_agent.send(Frame::Error("this agent was removed (revoked)".into())).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "agent revoked".into(), String::new())
                        .await;
                    break "revoked".to_string();
                }
            }
        }
    };
    tracing::info!(agent = name, "agent control channel ended: {why}");
    // Queries this connection will never answer end now (their callers get no answer).
    agents
        .queries()
        .retain(|_, (agent, connection, _)| !(agent == name && *connection == id));
    agents.gone(name, id).await;
    if why != "control channel closed" {
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, why, String::new())
            .await;
    }
}

async fn control_frame(agents: &Agents, name: &str, peer: Option<SocketAddr>, frame: Frame) {
    match frame {
        Frame::Hello {
            agent,
            software,
            abilities,
        } => {
            if agent != name {
                tracing::warn!(agent = name, said = %agent, "agent hello names another agent");
            }
            if let Some(l) = agents.live().get_mut(name) {
                l.abilities = abilities;
            }
            // A new connection: marks come again (if the agent sets any) after its ports.
            agents.marks().retain(|(a, _), _| a != name);
            let store = agents.store.clone();
            let name = name.to_owned();
            let peer = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
            let _ = tokio::task::spawn_blocking(move || {
                store.set_agent_connected(&name, Some(&peer), Some(&software))
            })
            .await;
        }
        Frame::Ports(ports) => {
            {
                let mut live = agents.live();
                if let Some(l) = live.get_mut(name) {
                    l.offered = ports.iter().map(|p| p.name.clone()).collect();
                }
            }
            let rows: Vec<AgentPort> = ports
                .into_iter()
                .map(|p| AgentPort {
                    name: p.name,
                    url: p.url,
                    caps: p.caps,
                })
                .collect();
            let store = agents.store.clone();
            let agent = name.to_owned();
            let _ = tokio::task::spawn_blocking(move || store.set_agent_ports(&agent, &rows)).await;
            agents.notify(name);
        }
        Frame::Marks(ports) => {
            let mut marks = agents.marks();
            marks.retain(|(a, _), _| a != name);
            for p in ports {
                marks.insert((name.to_owned(), p.name), p.marks);
            }
        }
        Frame::HostReply { id, reply } => {
            let waiting = {
                let mut queries = agents.queries();
                match queries.get(&id) {
                    // Only the agent asked may answer.
                    Some((asked, _, _)) if asked == name => queries.remove(&id),
                    _ => None,
                }
            };
            match waiting {
                Some((_, _, tx)) => {
                    let _ = tx.send(reply);
                }
                None => tracing::debug!(agent = name, id, "host-info reply nobody waits for"),
            }
        }
        Frame::Notice(text) => tracing::info!(agent = name, "agent: {text}"),
        Frame::Error(text) => tracing::warn!(agent = name, "agent error: {text}"),
        other => tracing::debug!(
            agent = name,
            "ignored {} frame on the control channel",
            other.name()
        ),
    }
}

async fn port_channel(
    ctx: &Arc<Ctx>,
    agents: &Arc<Agents>,
    name: &str,
    id: u64,
    port: &str,
    rd: russh::ChannelReadHalf,
    wr: ChannelWriteHalf<Msg>,
) {
    let to_agent = spawn_writer(wr);
    let backlog = Arc::new(Backlog::default());
    let mut rd = spawn_drain(
        agents.clone(),
        name.to_owned(),
        id,
        rd,
        backlog.clone(),
        to_agent.clone(),
    );
    let (sink_tx, mut sink_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = watch::channel(LinkStatus::default());
    let (gone_tx, gone_rx) = watch::channel(());
    let line = Arc::new(PortLine {
        to_agent: to_agent.clone(),
        sinks: sink_tx,
        status: status_rx,
        gone: gone_rx,
    });
    // The agent opens its control channel first, but the two channels' tasks may start in
    // either order: wait a little for the control channel to register the connection.
    let deadline = tokio::time::Instant::now() + OPEN_WAIT;
    let changed = agents.changed(name);
    let registered = loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut live = agents.live();
            if let Some(l) = live.get_mut(name)
                && l.id == id
            {
                l.ports.insert(port.to_owned(), line.clone());
                break true;
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break false;
        }
    };
    if !registered {
        let _ = to_agent
            .send(Frame::Error(
                "open the control channel before port channels".into(),
            ))
            .await;
        return;
    }
    agents.notify(name);
    let key = (name.to_owned(), port.to_owned());
    let mut decoder = Decoder::new();
    let mut sink: Option<Sink> = None;
    let mut expected: Option<u64> = None;
    let mut epoch = 0u64;
    let mut marks = Marks::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Acknowledged to the agent: what is written in the store as passed on.
    let mut ack_tick = tokio::time::interval(PERSIST_EVERY);
    let mut acked = 0u64;
    let mut locals = local::Locals::default();
    let why: String = 'run: loop {
        let msg = tokio::select! {
            msg = rd.recv() => msg,
            _ = tick.tick() => {
                marks.check(ctx, name, port);
                continue;
            }
            _ = ack_tick.tick() => {
                if let Some(seq) = agents.persisted(&key, epoch)
                    && seq > acked
                {
                    acked = seq;
                    let _ = to_agent.send(Frame::Ack { seq }).await;
                }
                continue;
            }
        };
        let data = match msg {
            Some(ChannelMsg::Data { data }) => data,
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                break "port channel closed".into();
            }
            Some(_) => continue,
        };
        decoder.push(&data);
        let mut passed = None;
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let _ = to_agent.send(Frame::Error(format!("bad frame: {e}"))).await;
                    break 'run format!("bad frame: {e}");
                }
            };
            match frame {
                Frame::PortHello {
                    epoch: e,
                    first_seq,
                } => {
                    epoch = e;
                    acked = 0;
                    let next = match agents.resume_point(&key, e).await {
                        Some(last) => last.saturating_add(1),
                        None => first_seq,
                    };
                    expected = Some(next);
                    let _ = to_agent.send(Frame::Resume { next_seq: next }).await;
                }
                Frame::Output {
                    seq,
                    time_ns,
                    bytes,
                } => {
                    marks.output(ctx, bytes.len());
                    let Some(want) = expected else {
                        let _ = to_agent
                            .send(Frame::Error("output before the port hello".into()))
                            .await;
                        break 'run "output before the port hello".into();
                    };
                    if seq < want {
                        continue; // already passed on (a replay overlapping what we have)
                    }
                    if seq > want {
                        let text = format!(
                            "agent: {} record(s) of port {port} missing (sequence {want}..{})",
                            seq - want,
                            seq - 1
                        );
                        notice(ctx, name, port, &text).await;
                    }
                    // Pass the bytes on; wait for a console if none is attached (the backlog
                    // grows meanwhile, until the agent is told to hold the port back).
                    loop {
                        if sink.is_none() {
                            match sink_rx.recv().await {
                                Some(s) => sink = Some(s),
                                None => break 'run "port closed".into(),
                            }
                        }
                        if let Some((s, times)) = sink.as_mut() {
                            times.push(bytes.len(), time_ns);
                            if s.write_all(&bytes).await.is_ok() {
                                break;
                            }
                            sink = None;
                        }
                    }
                    expected = Some(seq.saturating_add(1));
                    passed = Some(seq);
                }
                Frame::Modem(msr) => {
                    let state = ModemState::from_msr(msr);
                    let before = status_tx.borrow().modem;
                    let mut status = LinkStatus::default();
                    status.modem = Some(state);
                    status_tx.send_replace(status);
                    modem_events(ctx, name, port, before, state);
                }
                Frame::Dropped { records, bytes } => {
                    let text = format!(
                        "agent: spool of port {port} full: {records} record(s), {bytes} byte(s) dropped"
                    );
                    tracing::warn!(agent = name, port, "{text}");
                    notice(ctx, name, port, &text).await;
                }
                Frame::Notice(text) => {
                    notice(ctx, name, port, &format!("agent: {text}")).await;
                }
                Frame::Error(text) => {
                    tracing::warn!(agent = name, port, "agent error: {text}");
                }
                Frame::LocalInput { user, bytes, .. } => {
                    local::input(ctx, name, port, &user, bytes).await;
                }
                Frame::LocalViewers(users) => locals.set(ctx, name, port, users),
                Frame::WhoQuery { id } => {
                    let text = local::who(ctx, name, port).await;
                    let _ = to_agent.send(Frame::WhoReply { id, text }).await;
                }
                other => {
                    tracing::debug!(agent = name, port, "ignored {} frame", other.name());
                }
            }
        }
        if let Some(seq) = passed {
            agents.passed_on(&key, epoch, seq);
        }
        backlog.taken(data.len());
    };
    tracing::info!(agent = name, port, "port channel ended: {why}");
    // The consoles on this port see their link end (and reconnect, waiting for the agent).
    drop(gone_tx);
    if let Some((mut s, _)) = sink {
        let _ = s.shutdown().await;
    }
    sink_rx.close();
    while let Ok((mut s, _)) = sink_rx.try_recv() {
        let _ = s.shutdown().await;
    }
    {
        let mut live = agents.live();
        if let Some(l) = live.get_mut(name)
            && l.id == id
        {
            l.ports.remove(port);
        }
    }
    agents.notify(name);
}
