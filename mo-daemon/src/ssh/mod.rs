//! The SSH front door (russh server).
//!
//! * `ssh -p P alice@host` opens the command shell ([`shell`]).
//! * `ssh -t -p P alice@host console web01` runs one shell command.
//! * `ssh -p P alice:web01@host` attaches to `web01` directly; `alice:web01:spy@host` spies
//!   (`:force` and `:join` work too) — the console-server convention.
//!
//! Password and public-key logins are checked against the store. The connection's TCP socket has
//! TCP_NODELAY set (keystrokes are tiny).
//!
//! Limits (docs/security.md): connections per door and per source address ([`Options::conns`]),
//! a deadline for logging in ([`Options::login_grace`]), channels per connection
//! ([`Options::max_channels`]), and password failures throttled per source address
//! ([`crate::throttle`]). Open channels end when their user is removed (and viewers are
//! re-checked: [`crate::live`]).

mod attach;
mod gang_cmd;
mod history;
mod listen;
mod log_cmd;
mod macro_cmd;
mod maint_cmd;
mod shell;
mod term;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{
    Channel, ChannelId, ChannelMsg, ChannelOpenFailure, Disconnect, MethodKind, MethodSet,
};
use tokio::net::TcpListener;

use crate::Ctx;
use crate::connlimit::{ConnLimits, Kill, Limited};
use crate::throttle::{Admission, CheckError};
use term::Term;

/// Who logged in and what they asked for in the user name (`user:DEVICE:spy`).
pub use mo_core::door::login::Login;
pub(crate) use shell::format_who;

/// The SSH door's limits.
pub struct Options {
    /// Connection caps (total and per source address).
    pub conns: Arc<ConnLimits>,
    /// Channels one connection may have open at once.
    pub max_channels: usize,
    /// Time from connecting to being logged in.
    pub login_grace: Duration,
}

/// Start listening; returns the bound address and the server task.
pub async fn serve(
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    host_key: PrivateKey,
    options: Options,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::Password);
    methods.push(MethodKind::PublicKey);
    let config = Arc::new(russh::server::Config {
        methods,
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        nodelay: true,
        max_auth_attempts: 6,
        ..Default::default()
    });
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for SSH on {addr}"))?;
    let bound = listener.local_addr()?;
    let options = Arc::new(options);
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: pass, and try again shortly.
                    tracing::warn!("SSH accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let permit = match options.conns.admit(peer.ip()) {
                Ok(permit) => permit,
                Err(why) => {
                    tracing::warn!("{why}");
                    continue;
                }
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY on an SSH connection: {e}");
            }
            let kill = Kill::new();
            let stream = Limited::new(tcp, permit, kill.clone());
            let authed = Arc::new(AtomicBool::new(false));
            let conn = Conn {
                ctx: ctx.clone(),
                peer: Some(peer),
                login: None,
                agent: None,
                authed: authed.clone(),
                channels: Arc::new(AtomicUsize::new(0)),
                max_channels: options.max_channels,
            };
            tokio::spawn(connection(
                config.clone(),
                stream,
                conn,
                kill,
                authed,
                options.login_grace,
            ));
        }
    });
    Ok((bound, task))
}

/// Run one connection; cut it if it is not logged in within `grace`.
async fn connection(
    config: Arc<russh::server::Config>,
    stream: Limited<tokio::net::TcpStream>,
    conn: Conn,
    kill: Arc<Kill>,
    authed: Arc<AtomicBool>,
    grace: Duration,
) {
    let peer = conn.peer;
    let deadline = tokio::time::Instant::now() + grace;
    let session =
        match tokio::time::timeout_at(deadline, russh::server::run_stream(config, stream, conn))
            .await
        {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => {
                tracing::debug!(?peer, "SSH connection setup failed: {e:#}");
                return;
            }
            Err(_) => {
                tracing::info!(
                    ?peer,
                    "SSH client sent no greeting within {grace:?}: closed"
                );
                return;
            }
        };
    let handle = session.handle();
    tokio::pin!(session);
    let unauthed = async {
        tokio::time::sleep_until(deadline).await;
        if authed.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = &mut session => {
            if let Err(e) = result {
                tracing::debug!(?peer, "SSH session ended with an error: {e:#}");
            }
        }
        () = unauthed => {
            tracing::info!(?peer, "SSH client did not log in within {grace:?}: disconnected");
            let bye = handle.disconnect(
                Disconnect::ByApplication,
                format!("not logged in within {}s", grace.as_secs()),
                String::new(),
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
            kill.kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), session).await;
        }
    }
}

/// One SSH connection.
pub struct Conn {
    ctx: Arc<Ctx>,
    peer: Option<SocketAddr>,
    login: Option<Login>,
    /// Set when an agent (`mo-agent`) logged in instead of a user (crate::agents).
    agent: Option<crate::agents::AgentLogin>,
    /// Set once a login succeeded (the login deadline no longer applies).
    authed: Arc<AtomicBool>,
    /// Channels open now.
    channels: Arc<AtomicUsize>,
    max_channels: usize,
}

impl Conn {
    /// Accept an agent's login (`Some`) or refuse it.
    fn agent_login(&mut self, agent: Option<crate::agents::AgentLogin>) -> Auth {
        match agent {
            Some(agent) => {
                tracing::info!(?agent, peer = ?self.peer, "agent login");
                self.authed.store(true, Ordering::SeqCst);
                self.agent = Some(agent);
                Auth::Accept
            }
            None => Auth::reject(),
        }
    }

    fn origin(&self) -> String {
        self.peer
            .map_or_else(|| "ssh".to_string(), |p| format!("ssh {p}"))
    }
}

impl russh::server::Handler for Conn {
    type Error = anyhow::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if let Some(enrolling) = self
            .ctx
            .registry
            .agents()
            .check_enrollment(user, password)
            .await
        {
            return Ok(self.agent_login(enrolling));
        }
        let Ok(login) = Login::parse(user) else {
            return Ok(Auth::reject());
        };
        let origin = self.origin();
        let throttle = self.ctx.throttle.clone();
        let addr = self.peer.map(|p| p.ip());
        if let Some(addr) = addr
            && let Admission::LockedOut(left) = throttle.admit(addr)
        {
            tracing::debug!(user = %login.user, %addr, "password login refused: locked out for {left:?}");
            throttle.refused_locked();
            return Ok(Auth::reject());
        }
        let ok = match throttle.verify_password(&login.user, password).await {
            Ok(ok) => ok,
            Err(CheckError::Busy) => {
                tracing::warn!(user = %login.user, peer = ?self.peer, "password login refused: too many checks under way");
                return Ok(Auth::reject());
            }
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        };
        if ok {
            if let Some(addr) = addr {
                throttle.succeeded(addr);
            }
            self.ctx.access.record(
                &login.user,
                &origin,
                "login",
                login.device.as_deref(),
                mo_store::Outcome::Ok,
                "password",
            );
            tracing::info!(user = %login.user, peer = ?self.peer, "password login");
            self.authed.store(true, Ordering::SeqCst);
            self.login = Some(login);
            Ok(Auth::Accept)
        } else {
            tracing::warn!(user = %login.user, peer = ?self.peer, "password login failed");
            match addr {
                Some(addr) => {
                    throttle.failed(addr, &login.user, &origin, "wrong password or unknown user");
                }
                None => self.ctx.access.record(
                    &login.user,
                    &origin,
                    "login",
                    login.device.as_deref(),
                    mo_store::Outcome::Denied,
                    "wrong password or unknown user",
                ),
            }
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Ok(login) = Login::parse(user) else {
            return Ok(Auth::reject());
        };
        let line = key.public_key.to_openssh().unwrap_or_default();
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            return Ok(Auth::reject());
        };
        let (kind, blob) = (kind.to_string(), blob.to_string());
        match self
            .ctx
            .registry
            .agents()
            .check_key(user, &kind, &blob)
            .await
        {
            crate::agents::KeyCheck::Agent(agent) => return Ok(self.agent_login(Some(agent))),
            crate::agents::KeyCheck::Refused => return Ok(Auth::reject()),
            crate::agents::KeyCheck::NotAnAgent => {}
        }
        let store = self.ctx.store.clone();
        let owner = tokio::task::spawn_blocking(move || store.find_user_by_key(&kind, &blob))
            .await?
            .unwrap_or(None);
        if owner.as_deref() == Some(login.user.as_str()) {
            self.ctx.access.record(
                &login.user,
                &self.origin(),
                "login",
                login.device.as_deref(),
                mo_store::Outcome::Ok,
                "public key",
            );
            tracing::info!(user = %login.user, peer = ?self.peer, "public-key login");
            self.authed.store(true, Ordering::SeqCst);
            self.login = Some(login);
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(agent) = self.agent.clone() {
            reply.accept().await;
            let (ctx, peer, handle) = (self.ctx.clone(), self.peer, session.handle());
            tokio::spawn(crate::agents::run_channel(
                ctx, agent, peer, channel, handle,
            ));
            return Ok(());
        }
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        if self.channels.load(Ordering::SeqCst) >= self.max_channels {
            tracing::warn!(user = %login.user, peer = ?self.peer, "channel refused: {} open (mod --max-ssh-channels)", self.max_channels);
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let open = ChannelCount::new(self.channels.clone());
        reply.accept().await;
        let ctx = self.ctx.clone();
        let origin = self.origin();
        tokio::spawn(async move {
            run_channel(ctx, login, origin, channel).await;
            drop(open);
        });
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One open channel, counted while it lives.
struct ChannelCount(Arc<AtomicUsize>);

impl ChannelCount {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        ChannelCount(count)
    }
}

impl Drop for ChannelCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wait for the client's pty/shell/exec requests, then run the shell, one command, or a direct
/// attach. The channel ends, with a notice, when its user is removed.
async fn run_channel(ctx: Arc<Ctx>, login: Login, origin: String, channel: Channel<Msg>) {
    let (mut rd, wr) = channel.split();
    let mut pty = None;
    let command = loop {
        match rd.wait().await {
            Some(ChannelMsg::RequestPty {
                col_width,
                row_height,
                ..
            }) => pty = Some((col_width, row_height)),
            Some(ChannelMsg::RequestShell { .. }) => break None,
            Some(ChannelMsg::Exec { command, .. }) => {
                break Some(String::from_utf8_lossy(&command).into_owned());
            }
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    };
    let mut term = Term::new(rd, wr, pty);
    let mut live = ctx.live.watch(crate::live::Holder::user(&login.user));
    let work = async {
        match (&login.device, command) {
            (Some(device), None) => {
                attach::run(
                    &ctx,
                    &login.user,
                    &origin,
                    device,
                    login.mode,
                    None,
                    &mut term,
                )
                .await
            }
            (Some(_), Some(_)) => {
                term.line("mo: give either user:device in the login name or a command, not both")
                    .await;
                2
            }
            (None, Some(cmd)) => {
                shell::run_command(&ctx, &login.user, &origin, &cmd, &mut term).await
            }
            (None, None) => shell::run_shell(&ctx, &login.user, &origin, &mut term).await,
        }
    };
    let ended = tokio::select! {
        status = work => Ok(status),
        why = live.revoked() => Err(why),
    };
    let status = match ended {
        Ok(status) => status,
        Err(why) => {
            ctx.access.record(
                &login.user,
                &origin,
                "session.revoked",
                login.device.as_deref(),
                mo_store::Outcome::Denied,
                format!("SSH session ended: {why}"),
            );
            term.write(attach::notice(&format!("session ended: {why}")))
                .await;
            1
        }
    };
    term.finish(status).await;
}

/// Load the daemon's host key from `path`, creating an Ed25519 key (mode 0600) if there is none.
pub fn host_key(path: &std::path::Path) -> anyhow::Result<PrivateKey> {
    if path.exists() {
        return russh::keys::load_secret_key(path, None)
            .with_context(|| format!("cannot read SSH host key {}", path.display()));
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::from(pair);
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .context("cannot encode the SSH host key")?;
    write_private(path, text.as_bytes())
        .with_context(|| format!("cannot write SSH host key {}", path.display()))?;
    tracing::info!("created SSH host key {}", path.display());
    Ok(key)
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
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
