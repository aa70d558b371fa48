//! The one link out: an SSH connection to the daemon's front door carrying a control channel and
//! one channel per port (docs/agent.md). It redials with backoff and jitter for as long as the
//! agent runs; the ports keep spooling meanwhile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use mo_drivers::agent::EnrollToken;
use mo_drivers::agent::codec::{
    ABILITY_FLOW, ABILITY_HOST_INFO, Decoder, Frame, MAX_PAYLOAD, PortMarks,
};
use mo_drivers::host::{self, HostWhat};
use russh::client::{AuthResult, ChannelOpenHandle, Handle, Msg, Session};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};

use crate::backoff::Backoff;
use crate::port::{Port, PortCmd};

/// Where the agent connects and as whom: `ssh://AGENT@HOST:PORT`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The agent's name (the SSH user name).
    pub agent: String,
    /// The daemon's host.
    pub host: String,
    /// The SSH door's port.
    pub port: u16,
}

impl Target {
    /// Read `ssh://AGENT@HOST[:PORT]` (port 2222 by default, as `mod --ssh`).
    pub fn parse(text: &str) -> anyhow::Result<Target> {
        let url = url::Url::parse(text).with_context(|| format!("--connect `{text}`"))?;
        if url.scheme() != "ssh" {
            bail!("--connect `{text}`: write ssh://AGENT@HOST:PORT");
        }
        if url.username().is_empty() {
            bail!("--connect `{text}`: no agent name; write ssh://AGENT@HOST:PORT");
        }
        if url.password().is_some() {
            bail!(
                "--connect `{text}`: no password in the address (the agent logs in with its key)"
            );
        }
        let host = url
            .host_str()
            .ok_or_else(|| anyhow!("--connect `{text}`: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Target {
            agent: url.username().to_owned(),
            host,
            port: url.port().unwrap_or(2222),
        })
    }
}

/// How the daemon's host key is checked.
#[derive(Debug, Clone)]
enum HostCheck {
    /// Enrollment: the key must have this fingerprint; it is kept for pinning.
    Fingerprint(String),
    /// Normal runs: the key must equal the one pinned at enrollment.
    Pinned(PublicKey, PathBuf),
}

type Seen = Arc<std::sync::Mutex<Option<PublicKey>>>;

struct Client {
    check: HostCheck,
    /// The host key the daemon presented, once accepted.
    seen: Seen,
}

#[derive(Debug)]
enum ClientError {
    HostKey(String),
    Ssh(russh::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::HostKey(why) => write!(f, "daemon host key refused: {why}"),
            ClientError::Ssh(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

async fn refuse(reply: ChannelOpenHandle, kind: &str) {
    tracing::warn!(kind, "refused a channel the daemon tried to open");
    reply
        .reject(ChannelOpenFailure::AdministrativelyProhibited)
        .await;
}

impl russh::client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, ClientError> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Err(ClientError::HostKey(
                "the daemon presented a certificate; agents pin plain host keys".into(),
            ));
        };
        let seen = key.fingerprint(HashAlg::Sha256).to_string();
        match &self.check {
            HostCheck::Fingerprint(want) if *want == seen => {}
            HostCheck::Fingerprint(want) => {
                return Err(ClientError::HostKey(format!(
                    "it is {seen}, the enrollment token names {want}"
                )));
            }
            HostCheck::Pinned(pinned, _) if pinned.key_data() == key.key_data() => {}
            HostCheck::Pinned(pinned, file) => {
                return Err(ClientError::HostKey(format!(
                    "it is {seen}, not the key pinned at enrollment ({}, in {})",
                    pinned.fingerprint(HashAlg::Sha256),
                    file.display()
                )));
            }
        }
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(key.clone());
        }
        Ok(true)
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), ClientError> {
        refuse(reply, "session").await;
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), ClientError> {
        refuse(reply, "forwarded-tcpip").await;
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), ClientError> {
        refuse(reply, "agent").await;
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), ClientError> {
        refuse(reply, "x11").await;
        Ok(())
    }
}

fn ssh_config() -> Arc<russh::client::Config> {
    Arc::new(russh::client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    })
}

async fn dial(target: &Target, check: HostCheck) -> anyhow::Result<(Handle<Client>, Seen)> {
    let addr = format!("{}:{}", target.host, target.port);
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| anyhow!("connecting to {addr}: no answer within 10s"))?
    .with_context(|| format!("connecting to {addr}"))?;
    let _ = tcp.set_nodelay(true);
    let seen = Seen::default();
    let client = Client {
        check,
        seen: seen.clone(),
    };
    let handle = russh::client::connect_stream(ssh_config(), tcp, client)
        .await
        .map_err(|e| anyhow!("SSH handshake with {addr}: {e}"))?;
    Ok((handle, seen))
}

/// Load the agent's key, creating an Ed25519 key (mode 0600, with `FILE.pub`) if `create`.
pub fn load_key(path: &Path, create: bool) -> anyhow::Result<PrivateKey> {
    if path.exists() {
        return russh::keys::load_secret_key(path, None)
            .with_context(|| format!("cannot read the agent key {}", path.display()));
    }
    if !create {
        bail!(
            "no agent key {} (enroll first: mo-agent --enroll TOKEN --connect … --key {})",
            path.display(),
            path.display()
        );
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::from(pair);
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .context("cannot encode the agent key")?;
    write_private(path, text.as_bytes())
        .with_context(|| format!("cannot write the agent key {}", path.display()))?;
    let public = key
        .public_key()
        .to_openssh()
        .context("cannot encode the agent's public key")?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", PathBuf::from(&pub_path).display()))?;
    tracing::info!("created agent key {}", path.display());
    Ok(key)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Enroll: check the daemon's host key against the token, present the token, register `key`,
/// and pin the host key in `pin_file`.
pub async fn enroll(
    target: &Target,
    token: &str,
    key: &PrivateKey,
    pin_file: &Path,
) -> anyhow::Result<String> {
    let parsed = EnrollToken::parse(token)?;
    let (mut handle, seen) = dial(target, HostCheck::Fingerprint(parsed.host_key.clone())).await?;
    let auth = handle
        .authenticate_password(&target.agent, token.trim())
        .await
        .context("enrolling")?;
    if !matches!(auth, AuthResult::Success) {
        bail!(
            "the daemon refused the enrollment of agent {} (token unknown, already used, expired, \
             or made for another agent)",
            target.agent
        );
    }
    let public = key
        .public_key()
        .to_openssh()
        .context("cannot encode the agent's public key")?;
    let mut channel = handle.channel_open_session().await?;
    channel
        .exec(true, format!("mo-agent enroll {public}").into_bytes())
        .await?;
    let mut text = Vec::new();
    let mut status = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => text.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close | ChannelMsg::Eof if status.is_some() => break,
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    match status {
        Some(0) => {}
        None => bail!(
            "the daemon closed the enrollment channel without an answer{} (`mo agent show` \
             tells whether the agent is enrolled)",
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        ),
        Some(code) if text.is_empty() => {
            bail!("the daemon refused the enrollment (exit status {code}, no reason given)")
        }
        Some(_) => bail!("the daemon refused the enrollment: {text}"),
    }
    let pinned = seen
        .lock()
        .ok()
        .and_then(|k| k.clone())
        .ok_or_else(|| anyhow!("the daemon's host key was not seen"))?;
    let line = pinned.to_openssh().context("cannot encode the host key")?;
    std::fs::write(pin_file, format!("{line}\n"))
        .with_context(|| format!("cannot write the pinned host key {}", pin_file.display()))?;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(format!(
        "{text}; daemon host key {} pinned in {}",
        parsed.host_key,
        pin_file.display()
    ))
}

/// Read the pinned host key.
pub fn load_pin(path: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the daemon's pinned host key {} (enroll first)",
            path.display()
        )
    })?;
    PublicKey::from_openssh(text.trim())
        .with_context(|| format!("{}: not an OpenSSH public key", path.display()))
}

/// What a session of the link ended with.
struct Ended {
    /// The link was up (logged in, channels open) before it ended.
    was_up: bool,
    why: String,
}

/// Keep the link to the daemon up for as long as the agent runs.
pub async fn run(
    target: Target,
    key: PrivateKey,
    pin: (PublicKey, PathBuf),
    ports: Arc<Vec<Port>>,
) -> anyhow::Result<()> {
    let key = Arc::new(key);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut down_since: Option<Instant> = None;
    loop {
        let ended = session(&target, &key, &pin, &ports, down_since).await;
        if ended.was_up {
            backoff.reset();
            down_since = Some(Instant::now());
        } else if down_since.is_none() {
            down_since = Some(Instant::now());
        }
        if ended.why.contains("revoked") || ended.why.contains("refused the key") {
            tracing::error!(
                "link to {}:{} ended: {}",
                target.host,
                target.port,
                ended.why
            );
        } else {
            tracing::warn!(
                "link to {}:{} ended: {}",
                target.host,
                target.port,
                ended.why
            );
        }
        let wait = backoff.next_delay();
        tracing::info!("redialing in {wait:?}");
        tokio::time::sleep(wait).await;
    }
}

async fn session(
    target: &Target,
    key: &Arc<PrivateKey>,
    pin: &(PublicKey, PathBuf),
    ports: &Arc<Vec<Port>>,
    down_since: Option<Instant>,
) -> Ended {
    let fail = |why: String| Ended { was_up: false, why };
    let mut handle = match dial(target, HostCheck::Pinned(pin.0.clone(), pin.1.clone())).await {
        Ok((h, _)) => h,
        Err(e) => return fail(format!("{e:#}")),
    };
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let auth = handle
        .authenticate_publickey(&target.agent, PrivateKeyWithHashAlg::new(key.clone(), hash))
        .await;
    match auth {
        Ok(AuthResult::Success) => {}
        Ok(AuthResult::Failure { .. }) => {
            return fail(format!(
                "the daemon refused the key of agent {} (not enrolled, or removed: revoked)",
                target.agent
            ));
        }
        Err(e) => return fail(format!("logging in: {e}")),
    }
    let control = match open(&handle, "mo-agent control".into()).await {
        Ok(c) => c,
        Err(e) => return fail(format!("opening the control channel: {e}")),
    };
    let (mut control_rd, control_wr) = control.split();
    let mut hello = vec![
        Frame::Hello {
            agent: target.agent.clone(),
            software: env!("CARGO_PKG_VERSION").into(),
            abilities: ABILITY_HOST_INFO | ABILITY_FLOW,
        },
        Frame::Ports(ports.iter().map(Port::info).collect()),
    ];
    let marks: Vec<PortMarks> = ports
        .iter()
        .filter_map(|p| {
            p.marks.map(|marks| PortMarks {
                name: p.name.clone(),
                marks,
            })
        })
        .collect();
    // Only an agent that sets marks sends them (a daemon older than them refuses the frame).
    if !marks.is_empty() {
        hello.push(Frame::Marks(marks));
    }
    let wire: Vec<u8> = hello.iter().flat_map(Frame::encode).collect();
    if let Err(e) = control_wr.data_bytes(bytes::Bytes::from(wire)).await {
        return fail(format!("sending hello: {e}"));
    }
    let down_for = down_since.map(|t| t.elapsed());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, port) in ports.iter().enumerate() {
        let channel = match open(&handle, format!("mo-agent port {}", port.name)).await {
            Ok(c) => c,
            Err(e) => return fail(format!("opening the channel of port {}: {e}", port.name)),
        };
        let ports = ports.clone();
        tasks.spawn(async move {
            let port = &ports[i];
            if let Err(e) = port_link(port, channel, down_for).await {
                tracing::warn!(port = %port.name, "port channel ended: {e:#}");
            }
        });
    }
    for port in ports.iter() {
        let stats = port.spool.stats();
        if stats.records > 0 || stats.dropped_records > 0 {
            tracing::info!(
                port = %port.name,
                "spool: {} record(s), {} byte(s) to replay; {} record(s), {} byte(s) dropped so far",
                stats.records,
                stats.bytes,
                stats.dropped_records,
                stats.dropped_bytes
            );
        }
    }
    match down_since {
        Some(t) => tracing::info!(
            "link to {}:{} up again after {:.1}s down",
            target.host,
            target.port,
            t.elapsed().as_secs_f64()
        ),
        None => tracing::info!("link to {}:{} up", target.host, target.port),
    }
    // The control channel lives as long as the link.
    let mut decoder = Decoder::new();
    // Host-info queries being answered (each reads the host in a blocking task).
    let mut host_jobs: tokio::task::JoinSet<Frame> = tokio::task::JoinSet::new();
    let why = loop {
        let msg = tokio::select! {
            msg = control_rd.wait() => msg,
            Some(Ok(reply)) = host_jobs.join_next() => {
                if let Err(e) = control_wr.data_bytes(bytes::Bytes::from(reply.encode())).await {
                    break format!("sending a host-info reply: {e}");
                }
                continue;
            }
            // A port channel that ends (refused, garbage, closed) takes the link down with it:
            // the next connection opens every port again.
            Some(_) = tasks.join_next() => break "a port channel ended".to_string(),
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                decoder.push(&data);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(Frame::Error(text))) => {
                            tracing::error!("daemon: {text}");
                        }
                        Ok(Some(Frame::Notice(text))) => tracing::info!("daemon: {text}"),
                        Ok(Some(Frame::HostQuery { id, what })) => {
                            host_jobs.spawn(host_reply(id, what, host_jobs.len()));
                        }
                        Ok(Some(other)) => {
                            tracing::debug!(
                                "ignored {} frame on the control channel",
                                other.name()
                            );
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!("garbage from the daemon on the control channel: {e}");
                            let _ = handle
                                .disconnect(russh::Disconnect::ProtocolError, "bad frame", "en")
                                .await;
                            tasks.abort_all();
                            return Ended {
                                was_up: true,
                                why: format!("bad frame from the daemon: {e}"),
                            };
                        }
                    }
                }
            }
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                break "the daemon closed the connection".to_string();
            }
            Some(_) => {}
        }
    };
    tasks.abort_all();
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ended { was_up: true, why }
}

/// The most host-info queries answered at once; more are refused.
const HOST_JOBS: usize = 4;

/// Answer the host-info query `id` for `what` (`busy` queries are being answered already).
async fn host_reply(id: u32, what: String, busy: usize) -> Frame {
    let reply = match what.parse::<HostWhat>() {
        Err(e) => Err(e.to_string()),
        Ok(_) if busy >= HOST_JOBS => Err(format!(
            "the agent is answering {busy} host-info queries already; try again"
        )),
        Ok(what) => tokio::task::spawn_blocking(move || host::collect(what))
            .await
            .map_err(|e| format!("reading the host's {what}: {e}")),
    };
    Frame::HostReply { id, reply }
}

async fn open(handle: &Handle<Client>, command: String) -> anyhow::Result<Channel<Msg>> {
    let mut channel = handle.channel_open_session().await?;
    channel.exec(true, command.into_bytes()).await?;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return Ok(channel),
            Some(ChannelMsg::Failure) => bail!("the daemon refused it"),
            Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => bail!("closed at once"),
            Some(_) => {}
        }
    }
}

/// Carry one port: handshake, then replay the spool from where the daemon is and follow it.
async fn port_link(
    port: &Port,
    channel: Channel<Msg>,
    down_for: Option<Duration>,
) -> anyhow::Result<()> {
    let (mut rd, wr) = channel.split();
    let hello = Frame::PortHello {
        epoch: port.spool.epoch(),
        first_seq: port.spool.first_seq(),
    };
    wr.data_bytes(bytes::Bytes::from(hello.encode())).await?;
    let mut decoder = Decoder::new();
    let next = loop {
        match rd.wait().await {
            Some(ChannelMsg::Data { data }) => {
                decoder.push(&data);
                match decoder.next_frame()? {
                    Some(Frame::Resume { next_seq }) => break next_seq,
                    Some(Frame::Error(text)) => bail!("daemon: {text}"),
                    Some(other) => bail!("expected resume, got {}", other.name()),
                    None => {}
                }
            }
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => bail!("closed"),
            Some(_) => {}
        }
    };
    // The daemon has what comes before `next` (from an earlier connection, or an earlier run
    // of the agent whose spool was still on disk).
    port.spool.ack(next.saturating_sub(1));
    let stats = port.spool.stats();
    let text = match down_for {
        Some(down) => Some(format!(
            "link to the daemon was down for {:.1}s; replaying {} spooled record(s), {} byte(s)",
            down.as_secs_f64(),
            stats.records,
            stats.bytes
        )),
        None if stats.records > 0 => Some(format!(
            "agent started; replaying {} spooled record(s), {} byte(s) kept on disk",
            stats.records, stats.bytes
        )),
        None => None,
    };
    if let Some(text) = text {
        wr.data_bytes(bytes::Bytes::from(Frame::Notice(text).encode()))
            .await?;
    }
    let (done_tx, mut done_rx) = mpsc::channel::<String>(1);
    let asking = WhoAsked::default();
    // The daemon's pushback: while it holds the port back, its output stays in the spool.
    let (hold_tx, hold_rx) = watch::channel(false);
    let reader = tokio::spawn(read_port_channel(
        rd,
        decoder,
        port.spool.clone(),
        port.cmds.clone(),
        asking.clone(),
        hold_tx,
        done_tx,
    ));
    let result = tokio::select! {
        r = send_port(port, &wr, next, &asking, hold_rx) => r,
        why = done_rx.recv() => Err(anyhow!(why.unwrap_or_else(|| "closed".into()))),
    };
    reader.abort();
    result
}

/// Local terminals' `who` questions sent to the daemon, by query id.
type WhoAsked = Arc<std::sync::Mutex<HashMap<u32, oneshot::Sender<String>>>>;

/// What local users typed, from the port's `typed` spool, as frames for the daemon (at most
/// about `max` bytes); the last record's sequence number.
fn typed_frames(port: &Port, max: usize) -> (Vec<u8>, Option<u64>) {
    let mut wire = Vec::new();
    let mut last = None;
    for r in port.typed.records_from(port.typed.first_seq(), max) {
        last = Some(r.seq);
        if let Some((user, bytes)) = crate::tty::decode_input(&r.bytes) {
            wire.extend(
                Frame::LocalInput {
                    user,
                    time_ns: r.time_ns,
                    bytes,
                }
                .encode(),
            );
        }
    }
    (wire, last)
}

async fn send_port(
    port: &Port,
    wr: &ChannelWriteHalf<Msg>,
    next: u64,
    asking: &WhoAsked,
    mut hold: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut cursor = next.max(port.spool.first_seq());
    let mut modem = port.modem.clone();
    let mut notices = port.notices.lock().await;
    let mut who_asked = port.who_asked.lock().await;
    let mut locals = port.locals.subscribe();
    let mut query_id = 0u32;
    // The current modem state first (if any), then every change.
    let initial = *modem.borrow_and_update();
    if let Some(msr) = initial {
        wr.data_bytes(bytes::Bytes::from(Frame::Modem(msr).encode()))
            .await?;
    }
    // The local users now (only when there are: a daemon older than local access refuses the
    // frame), then every change.
    let users = locals.borrow_and_update().clone();
    if !users.is_empty() {
        wr.data_bytes(bytes::Bytes::from(Frame::LocalViewers(users).encode()))
            .await?;
    }
    loop {
        let added = port.spool.added.notified();
        tokio::pin!(added);
        added.as_mut().enable();
        let typed = port.typed.added.notified();
        tokio::pin!(typed);
        typed.as_mut().enable();
        // Local input first: it is small, and spooled while the link was down.
        let (wire, last) = typed_frames(port, MAX_PAYLOAD / 2);
        if let Some(seq) = last {
            if !wire.is_empty() {
                wr.data_bytes(bytes::Bytes::from(wire)).await?;
            }
            port.typed.ack(seq);
            continue;
        }
        let mut wire = Vec::new();
        if let Some((records, bytes)) = port.spool.take_unreported() {
            wire.extend(Frame::Dropped { records, bytes }.encode());
        }
        let held = *hold.borrow_and_update();
        let batch = if held {
            Vec::new()
        } else {
            port.spool.records_from(cursor, MAX_PAYLOAD / 2)
        };
        for r in batch {
            cursor = r.seq + 1;
            wire.extend(
                Frame::Output {
                    seq: r.seq,
                    time_ns: r.time_ns,
                    bytes: r.bytes,
                }
                .encode(),
            );
        }
        if !wire.is_empty() {
            wr.data_bytes(bytes::Bytes::from(wire)).await?;
            continue;
        }
        tokio::select! {
            () = &mut added, if !held => {}
            () = &mut typed => {}
            changed = hold.changed() => changed?,
            changed = locals.changed() => {
                changed?;
                let users = locals.borrow_and_update().clone();
                wr.data_bytes(bytes::Bytes::from(Frame::LocalViewers(users).encode())).await?;
            }
            Some(reply) = who_asked.recv() => {
                query_id = query_id.wrapping_add(1);
                if let Ok(mut asked) = asking.lock() {
                    asked.insert(query_id, reply);
                }
                wr.data_bytes(bytes::Bytes::from(Frame::WhoQuery { id: query_id }.encode())).await?;
            }
            changed = modem.changed() => {
                changed?;
                let msr = *modem.borrow_and_update();
                if let Some(msr) = msr {
                    wr.data_bytes(bytes::Bytes::from(Frame::Modem(msr).encode())).await?;
                }
            }
            text = notices.recv() => {
                let Some(text) = text else {
                    bail!("the port is gone");
                };
                wr.data_bytes(bytes::Bytes::from(Frame::Notice(text).encode())).await?;
            }
        }
    }
}

async fn read_port_channel(
    mut rd: ChannelReadHalf,
    mut decoder: Decoder,
    spool: Arc<crate::spool::Spool>,
    cmds: mpsc::Sender<PortCmd>,
    asking: WhoAsked,
    hold: watch::Sender<bool>,
    done: mpsc::Sender<String>,
) {
    let why = 'run: loop {
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Ack { seq })) => spool.ack(seq),
                Ok(Some(Frame::Flow { hold: held })) => {
                    hold.send_replace(held);
                }
                Ok(Some(Frame::Input(bytes))) => {
                    let _ = cmds.send(PortCmd::Input(bytes)).await;
                }
                Ok(Some(Frame::Control(op))) => {
                    let _ = cmds.send(PortCmd::Control(op)).await;
                }
                Ok(Some(Frame::Settings(text))) => {
                    let _ = cmds.send(PortCmd::Settings(text)).await;
                }
                Ok(Some(Frame::WhoReply { id, text })) => {
                    let asked = asking.lock().ok().and_then(|mut a| a.remove(&id));
                    if let Some(reply) = asked {
                        let _ = reply.send(text);
                    }
                }
                Ok(Some(Frame::Error(text))) => break 'run format!("daemon: {text}"),
                Ok(Some(other)) => tracing::debug!("ignored {} frame", other.name()),
                Ok(None) => break,
                Err(e) => break 'run format!("garbage from the daemon: {e}"),
            }
        }
        match rd.wait().await {
            Some(ChannelMsg::Data { data }) => decoder.push(&data),
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => break "closed".into(),
            Some(_) => {}
        }
    };
    let _ = done.send(why).await;
}
