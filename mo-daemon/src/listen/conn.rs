//! One connection to a per-console port: the allow check, the telnet login of `/telnet+login`,
//! and the bridge between the client and a console session (raw bytes, or telnet with RFC 2217
//! through [`mo_core::door::telnet`]).

use std::net::SocketAddr;
use std::sync::Arc;

use mo_core::console::{Mode, Output, ViewerEvent, view};
use mo_core::door::listen::ListenMode;
use mo_core::door::telnet::{ComAction, ComPort, Event, LineSettings, Server, escape};
use mo_core::policy::Permission;
use mo_store::Outcome;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{Options, Port};
use crate::Ctx;
use crate::throttle::{Admission, CheckError};
use crate::viewer::{AnySession, Reattach};

/// Who is on the other side.
struct Client {
    ctx: Arc<Ctx>,
    port: Arc<Port>,
    /// `tcp:ADDR:PORT` of the client.
    tag: String,
    /// The mo user a `/telnet+login` client logged in as.
    login: Option<String>,
}

impl Client {
    /// The name the console knows the viewer by: the mo user, else `tcp:ADDR:PORT`.
    fn user(&self) -> &str {
        self.login.as_deref().unwrap_or(&self.tag)
    }

    /// Where the viewer comes from, for `who` and the audit log.
    fn origin(&self) -> String {
        format!("{} on {}", self.tag, self.port.spec)
    }

    fn audit(&self, action: &str, outcome: Outcome, detail: impl Into<String>) {
        self.ctx.access.record(
            self.user(),
            &self.origin(),
            action,
            Some(&self.port.device),
            outcome,
            detail,
        );
    }
}

pub(super) async fn serve(
    ctx: Arc<Ctx>,
    port: Arc<Port>,
    options: Arc<Options>,
    stream: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut client = Client {
        ctx,
        tag: format!("tcp:{peer}"),
        port,
        login: None,
    };
    let allowed =
        client.port.allow.is_empty() || client.port.allow.iter().any(|net| net.contains(peer.ip()));
    if !allowed {
        tracing::warn!(%peer, device = %client.port.device, "console port connection refused: not in --listen-allow");
        client.audit(
            "listen.refused",
            Outcome::Denied,
            format!("{} is not in the device's --listen-allow", peer.ip()),
        );
        wr.write_all(format!("mo: {} may not connect to this port\r\n", peer.ip()).as_bytes())
            .await?;
        return Ok(());
    }
    let mode = client.port.spec.mode;
    let mut telnet = mode
        .is_telnet()
        .then(|| Server::new(mode == ListenMode::Rfc2217));
    if let Some(server) = telnet.as_mut() {
        wr.write_all(&server.greeting()).await?;
    }
    let mut pending = Vec::new();
    if mode.has_login() {
        let Some(server) = telnet.as_mut() else {
            return Ok(());
        };
        match tokio::time::timeout(
            options.login_grace,
            login(&mut client, server, &mut rd, &mut wr, peer),
        )
        .await
        {
            Ok(Ok(Some(rest))) => pending = rest,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                wr.write_all(b"\r\nlogin timed out\r\n").await?;
                return Ok(());
            }
        }
    }
    let Some(entry) = client.ctx.registry.get(&client.port.device) else {
        wr.write_all(b"mo: the device is gone\r\n").await?;
        return Ok(());
    };
    // The entry holds the record log's lock: kept only until attached, so a restart of
    // the console (a changed device) is not kept from opening its log.
    let line = line_of(&entry.device.url);
    let wants = if client.port.spec.spy {
        Mode::Spy
    } else {
        Mode::Attach
    };
    let mode_now = match &client.login {
        Some(user) => {
            let device = client.port.device.clone();
            if let Err(why) = client
                .ctx
                .check(user, &client.origin(), Permission::Spy, &device)
                .await
            {
                wr.write_all(format!("\r\nmo: {why}\r\n").as_bytes())
                    .await?;
                return Ok(());
            }
            if wants == Mode::Attach && client.ctx.access.allows(user, Permission::Attach, &device)
            {
                Mode::Attach
            } else {
                Mode::Spy
            }
        }
        None => wants,
    };
    // Programs on raw and RFC 2217 ports read the device's bytes only: no replay, no notices.
    let replay = if mode == ListenMode::Raw || mode == ListenMode::Rfc2217 {
        Some(0)
    } else {
        None
    };
    let user = client.user().to_string();
    // In a site the console may run on another node: the viewer is attached through it.
    let opened = crate::viewer::open(
        &client.ctx,
        &entry,
        &user,
        &client.origin(),
        mode_now,
        replay,
    )
    .await;
    drop(entry);
    let mut session = match opened {
        Ok(session) => session,
        Err(why) => {
            wr.write_all(format!("mo: {why}\r\n").as_bytes()).await?;
            return Ok(());
        }
    };
    client.audit(
        "attach",
        Outcome::Ok,
        format!(
            "as {} through console port {}",
            session.role().name(),
            client.port.spec
        ),
    );
    let human = matches!(mode, ListenMode::Telnet | ListenMode::TelnetLogin);
    if human {
        let text = format!("{}: {}", client.port.device, session.message());
        wr.write_all(&mo_core::console::terminal_notice(&text))
            .await?;
        let replay = session.take_replay();
        wr.write_all(&escape(&replay)).await?;
    }
    let mut bridge = Bridge {
        client: &client,
        session: &mut session,
        mode: mode_now,
        wr,
        telnet,
        com: ComPort::new(line.0, line.1),
        human,
        told_read_only: false,
    };
    let result = bridge.run(&mut rd, pending).await;
    client.audit("detach", Outcome::Ok, "");
    result
}

/// The line settings a device's URL names and whether its link has a real line (serial,
/// rfc2217 and agent ports: mo does not retune a line others share, so changes are refused).
fn line_of(url: &str) -> (LineSettings, bool) {
    let fixed = ["serial:", "rfc2217:", "agent:"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let pairs = query.split('&').filter_map(|kv| {
        kv.split_once('=')
            .map(|(k, v)| (k.to_string(), v.to_string()))
    });
    (LineSettings::from_query(pairs), fixed)
}

struct Bridge<'a> {
    client: &'a Client,
    session: &'a mut AnySession,
    /// What the viewer was granted (a reattached session asks for the same).
    mode: Mode,
    wr: OwnedWriteHalf,
    telnet: Option<Server>,
    com: ComPort,
    human: bool,
    told_read_only: bool,
}

impl Bridge<'_> {
    async fn run(&mut self, rd: &mut OwnedReadHalf, pending: Vec<u8>) -> std::io::Result<()> {
        let me = self.client.user().to_string();
        let device = self.client.port.device.clone();
        let mut buf = vec![0u8; 8192];
        let mut held = pending;
        loop {
            if !held.is_empty() {
                let bytes = std::mem::take(&mut held);
                if let Some(end) = self.client_bytes(&bytes, rd).await? {
                    return end;
                }
            }
            tokio::select! {
                read = rd.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    let bytes = buf.get(..n).unwrap_or_default();
                    if let Some(end) = self.client_bytes(bytes, rd).await? {
                        return end;
                    }
                }
                event = self.session.recv() => {
                    let end = matches!(event, ViewerEvent::Closed);
                    match view(event, &me, &device) {
                        Some(Output::Data(bytes)) => self.output(&bytes).await?,
                        Some(other) if self.human => {
                            self.output(&other.terminal()).await?;
                        }
                        _ => {}
                    }
                    if end {
                        // In a site, a console that stopped under the viewer (its owner died
                        // or gave it up) is reattached wherever it runs next.
                        if !crate::viewer::may_reattach(&self.client.ctx) {
                            return Ok(());
                        }
                        match self.reattach(rd, &mut held).await? {
                            true => continue,
                            false => return Ok(()),
                        }
                    }
                }
            }
        }
    }

    /// Wait (up to [`crate::viewer::REATTACH_WAIT`]) for the console to run again in the site
    /// and attach there; what the client sends meanwhile is kept in `held` (up to
    /// [`crate::viewer::HELD_MAX`] bytes; then it is not read until the wait ends). False
    /// when the client left or the console did not come back.
    async fn reattach(
        &mut self,
        rd: &mut OwnedReadHalf,
        held: &mut Vec<u8>,
    ) -> std::io::Result<bool> {
        let c = self.client;
        let device = c.port.device.clone();
        if self.human {
            let text = format!(
                "waiting up to {}s for {device} to run again in the site",
                crate::viewer::REATTACH_WAIT.as_secs()
            );
            self.output(&mo_core::console::terminal_notice(&text))
                .await?;
        }
        let (user, origin) = (c.user().to_string(), c.origin());
        let who = (device.as_str(), user.as_str(), origin.as_str(), self.mode);
        let keep = |held: &mut Vec<u8>, bytes: &[u8]| held.extend_from_slice(bytes);
        let session = match crate::viewer::reattach_reading(&c.ctx, who, rd, held, keep).await? {
            Reattach::Attached(session) => *session,
            Reattach::ClientLeft => return Ok(false),
            Reattach::NotBack => {
                if self.human {
                    let text = format!("{device} did not come back: disconnected");
                    self.output(&mo_core::console::terminal_notice(&text))
                        .await?;
                }
                return Ok(false);
            }
        };
        *self.session = session;
        // The old session's detach, and the new one's attach (a viewer who leaves or is not
        // reattached is detached once, when the connection ends).
        c.audit("detach", Outcome::Ok, "the console stopped");
        c.audit(
            "attach",
            Outcome::Ok,
            format!(
                "as {} through console port {} (reattached)",
                self.session.role().name(),
                c.port.spec
            ),
        );
        if self.human {
            let text = format!("reattached to {device}");
            self.output(&mo_core::console::terminal_notice(&text))
                .await?;
        }
        Ok(true)
    }

    /// Bytes from the client: through the telnet server (if any) to the console. `Some` ends
    /// the connection with that result (a telnet protocol error).
    async fn client_bytes(
        &mut self,
        bytes: &[u8],
        rd: &mut OwnedReadHalf,
    ) -> std::io::Result<Option<std::io::Result<()>>> {
        let events = match self.telnet.as_mut() {
            None => vec![Event::Data(bytes.to_vec())],
            Some(server) => match server.feed(bytes) {
                Ok(events) => events,
                Err(e) => {
                    tracing::info!(client = %self.client.tag, "console port: {e}; dropped");
                    self.client
                        .audit("listen.dropped", Outcome::Failed, e.to_string());
                    self.wr
                        .write_all(format!("\r\nmo: {e}; closing\r\n").as_bytes())
                        .await?;
                    return Ok(Some(drain(&mut self.wr, rd).await));
                }
            },
        };
        for event in events {
            self.input(event).await?;
        }
        Ok(None)
    }

    async fn output(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.telnet.is_some() {
            self.wr.write_all(&escape(bytes)).await
        } else {
            self.wr.write_all(bytes).await
        }
    }

    async fn input(&mut self, event: Event) -> std::io::Result<()> {
        match event {
            Event::Data(bytes) => {
                if let Err(e) = self.session.write(&bytes).await
                    && self.human
                    && !self.told_read_only
                {
                    self.told_read_only = true;
                    let text = mo_core::console::terminal_notice(&e.to_string());
                    self.wr.write_all(&text).await?;
                }
            }
            Event::Reply(bytes) => self.wr.write_all(&bytes).await?,
            Event::Break => self.send_break().await?,
            Event::Com(request) => {
                let (reply, action) = self.com.answer(&request);
                // Answer first: the client waits for it, the BREAK takes its time.
                self.wr.write_all(&reply).await?;
                if action == Some(ComAction::Break) {
                    self.send_break().await?;
                }
            }
        }
        Ok(())
    }

    /// A BREAK from the client: sent (the device's break sequence 1) when the viewer may write
    /// and, for a logged-in user, the policy allows `break`; else refused in the record log.
    async fn send_break(&mut self) -> std::io::Result<()> {
        let c = self.client;
        let allowed = match &c.login {
            Some(user) => c
                .ctx
                .check(user, &c.origin(), Permission::Break, &c.port.device)
                .await
                .is_ok(),
            None => true,
        };
        let result = if allowed {
            self.session.send_break(1).await.map_err(|e| e.to_string())
        } else {
            Err("not allowed to send a BREAK".to_string())
        };
        match result {
            Ok(_) => c.audit("break", Outcome::Ok, "through console port"),
            Err(why) => {
                tracing::info!(client = %c.tag, "BREAK refused: {why}");
                let _ = self
                    .session
                    .note(&format!("BREAK from {} refused: {why}", c.user()))
                    .await;
                if self.human {
                    let text = mo_core::console::terminal_notice(&why);
                    self.wr.write_all(&text).await?;
                }
            }
        }
        Ok(())
    }
}

/// End a connection politely: close our side, then read (and drop) what the client still
/// sends until it closes too (for at most 10 s), so the kernel does not reset the connection
/// and take the last message with it.
async fn drain(wr: &mut OwnedWriteHalf, rd: &mut OwnedReadHalf) -> std::io::Result<()> {
    wr.shutdown().await?;
    let mut buf = vec![0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}

/// The longest user name or password a `/telnet+login` client may type.
const MAX_FIELD: usize = 256;

/// Ask for a mo user and password; `Some(bytes typed after the password)` once logged in,
/// `None` when refused (the client was told).
async fn login(
    client: &mut Client,
    server: &mut Server,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    peer: SocketAddr,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut typed: Vec<u8> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 1024];
    wr.write_all(format!("{} login: ", client.port.device).as_bytes())
        .await?;
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        let events = match server.feed(buf.get(..n).unwrap_or_default()) {
            Ok(events) => events,
            Err(e) => {
                wr.write_all(format!("\r\nmo: {e}; closing\r\n").as_bytes())
                    .await?;
                return Ok(None);
            }
        };
        let mut rest = Vec::new();
        for event in events {
            let bytes = match event {
                Event::Reply(bytes) => {
                    wr.write_all(&bytes).await?;
                    continue;
                }
                Event::Data(bytes) => bytes,
                _ => continue,
            };
            for b in bytes {
                if fields.len() == 2 {
                    rest.push(b);
                    continue;
                }
                let secret = fields.len() == 1;
                match b {
                    b'\r' | b'\n' => {
                        if b == b'\n' && typed.is_empty() && fields.is_empty() {
                            continue;
                        }
                        fields.push(String::from_utf8_lossy(&typed).into_owned());
                        typed.clear();
                        wr.write_all(if fields.len() == 1 {
                            b"\r\nPassword: ".as_slice()
                        } else {
                            b"\r\n".as_slice()
                        })
                        .await?;
                    }
                    0x7f | 0x08 if typed.pop().is_some() && !secret => {
                        wr.write_all(b"\x08 \x08").await?;
                    }
                    0x7f | 0x08 => {}
                    0 => {}
                    b if typed.len() < MAX_FIELD => {
                        typed.push(b);
                        if !secret {
                            wr.write_all(&[b]).await?;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let [user, password] = fields.as_slice() {
            let user = user.trim().to_string();
            // A LF after the password's CR is the same key press.
            if rest.first() == Some(&b'\n') {
                rest.remove(0);
            }
            return if check_password(client, &user, password, peer, wr).await? {
                client.login = Some(user);
                Ok(Some(rest))
            } else {
                Ok(None)
            };
        }
    }
}

/// Check `user`'s password like the SSH door: argon2, throttled per address, audited.
async fn check_password(
    client: &Client,
    user: &str,
    password: &str,
    peer: SocketAddr,
    wr: &mut OwnedWriteHalf,
) -> std::io::Result<bool> {
    let ctx = &client.ctx;
    let throttle = &ctx.throttle;
    let addr = peer.ip();
    let origin = client.origin();
    if let Admission::LockedOut(left) = throttle.admit(addr) {
        tracing::debug!(%user, %addr, "console port login refused: locked out for {left:?}");
        throttle.refused_locked();
        wr.write_all(b"Login incorrect\r\n").await?;
        return Ok(false);
    }
    let ok = match throttle.verify_password(user, password).await {
        Ok(ok) => ok,
        Err(CheckError::Busy) => {
            wr.write_all(b"too many logins are being checked; try again shortly\r\n")
                .await?;
            return Ok(false);
        }
        Err(e) => {
            tracing::error!("{e}");
            false
        }
    };
    if !ok {
        tracing::warn!(%user, %peer, "console port password login failed");
        throttle.failed(addr, user, &origin, "wrong password or unknown user");
        wr.write_all(b"Login incorrect\r\n").await?;
        return Ok(false);
    }
    throttle.succeeded(addr);
    ctx.access.record(
        user,
        &origin,
        "login",
        Some(&client.port.device),
        Outcome::Ok,
        "console port password",
    );
    Ok(true)
}
