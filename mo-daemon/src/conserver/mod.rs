//! The conserver door (`mod --conserver ADDR`, docs/conserver.md): conserver 8.2's stock
//! `console` client reaches mo's consoles with mo's users, passwords and policy.
//!
//! conserver splits its service in two: a master port (`console -M HOST -p PORT`) that answers
//! where a console lives, and group ports that carry the consoles. The door does the same: the
//! master listens on ADDR, one group listener on the same address with a port of its own holds
//! every console. Both start in line mode (`ok`, `login USER`, `passwd?`, the password, then
//! commands; [`mo_core::door::conserver`] parses them); a `call NAME` on the group port turns
//! the connection into the console ([`attach`]). There is no TLS and no Kerberos: the client
//! needs `-U` (or `-E`, or `sslrequired no` in console.cf).

mod attach;
mod listing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mo_core::door::conserver::{LineReader, Request, Unquote};
use mo_core::policy::Permission;
use mo_store::Outcome;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

use crate::Ctx;
use crate::connlimit::ConnLimits;
use crate::registry::Entry;
use crate::throttle::{Admission, CheckError};

/// How the door runs.
pub struct Options {
    /// Caps on open connections (both ports together).
    pub conns: Arc<ConnLimits>,
    /// Time a client has from connecting to being logged in.
    pub login_grace: Duration,
}

/// The two listeners' addresses.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The master port (`console -p`).
    pub master: SocketAddr,
    /// The group port every console is on.
    pub group: SocketAddr,
}

struct Shared {
    ctx: Arc<Ctx>,
    options: Options,
    group_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Master,
    Group,
}

/// Bind the master port at `addr` and a group port beside it; serve both until the task ends.
pub async fn serve(
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    options: Options,
) -> anyhow::Result<(Bound, tokio::task::JoinHandle<()>)> {
    let master = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--conserver)"))?;
    let group_addr = SocketAddr::new(addr.ip(), 0);
    let group = TcpListener::bind(group_addr)
        .await
        .with_context(|| format!("cannot listen on {group_addr} (--conserver group port)"))?;
    let bound = Bound {
        master: master.local_addr()?,
        group: group.local_addr()?,
    };
    let shared = Arc::new(Shared {
        ctx,
        options,
        group_port: bound.group.port(),
    });
    let task = tokio::spawn(async move {
        tokio::join!(
            accept(master, shared.clone(), Port::Master),
            accept(group, shared, Port::Group)
        );
    });
    Ok((bound, task))
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, port: Port) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("conserver door: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match shared.options.conns.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                tracing::warn!("{why}");
                let _ = stream.try_write(format!("{why}\r\n").as_bytes());
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve_conn(shared, port, stream, peer).await {
                tracing::debug!(%peer, "conserver connection ended: {e}");
            }
        });
    }
}

/// One connection in line mode.
struct Conn {
    shared: Arc<Shared>,
    port: Port,
    peer: SocketAddr,
    local: SocketAddr,
    origin: String,
    /// Logged in as.
    user: Option<String>,
    /// Sent `login USER`, the password comes next.
    wants_password: Option<String>,
}

enum Next {
    Continue,
    Close,
    Attach(Box<Entry>),
}

async fn serve_conn(
    shared: Arc<Shared>,
    port: Port,
    stream: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let local = stream.local_addr()?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = Conn {
        origin: format!("conserver {peer}"),
        shared,
        port,
        peer,
        local,
        user: None,
        wants_password: None,
    };
    wr.write_all(b"ok\r\n").await?;
    let deadline = tokio::time::Instant::now() + conn.shared.options.login_grace;
    let mut unquote = Unquote::default();
    let mut lines = LineReader::default();
    let mut buf = vec![0u8; 4096];
    loop {
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(peer = %conn.peer, "conserver door: {e}; dropped");
                    wr.write_all(format!("{e}\r\n").as_bytes()).await?;
                    return Ok(());
                }
            };
            match conn.line(&line, &mut wr).await? {
                Next::Continue => {}
                Next::Close => return Ok(()),
                Next::Attach(entry) => {
                    let user = conn.user.clone().unwrap_or_default();
                    let first = lines.take_rest();
                    let door = attach::Door {
                        ctx: &conn.shared.ctx,
                        user: &user,
                        origin: &conn.origin,
                        group_port: conn.shared.group_port,
                    };
                    return attach::run(&door, &entry, rd, wr, unquote, first).await;
                }
            }
        }
        let n = if conn.user.is_none() {
            match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
                Ok(read) => read?,
                Err(_) => {
                    wr.write_all(b"login timed out\r\n").await?;
                    return Ok(());
                }
            }
        } else {
            rd.read(&mut buf).await?
        };
        if n == 0 {
            return Ok(());
        }
        lines.push(&unquote.feed(buf.get(..n).unwrap_or_default()));
    }
}

impl Conn {
    async fn line(&mut self, line: &str, wr: &mut OwnedWriteHalf) -> std::io::Result<Next> {
        if let Some(user) = self.wants_password.take() {
            return self.password(&user, line, wr).await;
        }
        let request = Request::parse(line);
        let Some(user) = self.user.clone() else {
            let reply = match request {
                Request::Ssl => "encryption not available (use console -U or -E)\r\n".to_string(),
                Request::Gssapi => "gssapi not available\r\n".to_string(),
                Request::Login(None) => "login requires argument\r\n".to_string(),
                Request::Login(Some(user)) => {
                    self.wants_password = Some(user);
                    format!("passwd? {}\r\n", self.local.ip())
                }
                Request::Exit => {
                    wr.write_all(b"goodbye\r\n").await?;
                    return Ok(Next::Close);
                }
                Request::Help => HELP_LOGIN.to_string(),
                _ => "unknown command\r\n".to_string(),
            };
            wr.write_all(reply.as_bytes()).await?;
            return Ok(Next::Continue);
        };
        let ctx = &self.shared.ctx;
        let reply = match (self.port, request) {
            (_, Request::Exit) => {
                wr.write_all(b"goodbye\r\n").await?;
                return Ok(Next::Close);
            }
            (Port::Master, Request::Help) => HELP_MASTER.to_string(),
            (Port::Group, Request::Help) => HELP_GROUP.to_string(),
            (_, Request::Admin(_)) => "unauthorized command\r\n".to_string(),
            (Port::Master, Request::Groups) => format!("{}\r\n", self.shared.group_port),
            (Port::Master, Request::Master) => format!("@{}\r\n", self.local.ip()),
            (Port::Master, Request::Pid) => format!("{}\r\n", std::process::id()),
            (Port::Master, Request::Version) => format!("version `{}'\r\n", version()),
            (Port::Master, Request::Call(name)) => match find(ctx, &user, &name) {
                Ok(_) => format!("{}\r\n", self.shared.group_port),
                Err(why) => why,
            },
            (Port::Group, Request::Call(name)) => match find(ctx, &user, &name) {
                Ok(entry) => return Ok(Next::Attach(Box::new(entry))),
                Err(_) => {
                    wr.write_all(format!("{name}: no such console\r\n").as_bytes())
                        .await?;
                    return Ok(Next::Close);
                }
            },
            (Port::Group, Request::Info(name)) => {
                listing::info(ctx, &user, name.as_deref(), self.shared.group_port).await
            }
            (Port::Group, Request::Examine(name)) => listing::examine(ctx, &user, name.as_deref()),
            (Port::Group, Request::Group(name)) => {
                listing::group(ctx, &user, None, name.as_deref()).await
            }
            (Port::Group, Request::Hosts(name)) => {
                listing::hosts(ctx, &user, None, name.as_deref()).await
            }
            _ => "unknown command\r\n".to_string(),
        };
        wr.write_all(reply.as_bytes()).await?;
        Ok(Next::Continue)
    }

    /// Check the password of `user` (throttled per address like the SSH door); a wrong one
    /// ends the connection, as conserver does.
    async fn password(
        &mut self,
        user: &str,
        password: &str,
        wr: &mut OwnedWriteHalf,
    ) -> std::io::Result<Next> {
        let ctx = &self.shared.ctx;
        let throttle = &ctx.throttle;
        let addr = self.peer.ip();
        if let Admission::LockedOut(left) = throttle.admit(addr) {
            tracing::debug!(%user, %addr, "conserver login refused: locked out for {left:?}");
            throttle.refused_locked();
            wr.write_all(b"invalid password\r\n").await?;
            return Ok(Next::Close);
        }
        let ok = match throttle.verify_password(user, password).await {
            Ok(ok) => ok,
            Err(CheckError::Busy) => {
                wr.write_all(b"too many logins are being checked; try again shortly\r\n")
                    .await?;
                return Ok(Next::Close);
            }
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        };
        if !ok {
            tracing::warn!(%user, peer = %self.peer, "conserver password login failed");
            throttle.failed(addr, user, &self.origin, "wrong password or unknown user");
            wr.write_all(b"invalid password\r\n").await?;
            return Ok(Next::Close);
        }
        throttle.succeeded(addr);
        // The master connection is only a directory look-up; audit the login once, on the
        // group port, where the console is reached.
        if self.port == Port::Group {
            ctx.access.record(
                user,
                &self.origin,
                "login",
                None,
                Outcome::Ok,
                "conserver password",
            );
        }
        tracing::info!(%user, peer = %self.peer, "conserver password login");
        self.user = Some(user.to_string());
        wr.write_all(b"ok\r\n").await?;
        Ok(Next::Continue)
    }
}

/// The console `name` as `user` may see it: the exact name, else the one visible console whose
/// name starts with it (conserver accepts unique abbreviations). The error is the reply line.
pub(crate) fn find(ctx: &Ctx, user: &str, name: &str) -> Result<Entry, String> {
    if let Some(entry) = ctx
        .registry
        .get(name)
        .filter(|_| ctx.access.allows(user, Permission::List, name))
    {
        return Ok(entry);
    }
    let mut matches: Vec<Entry> = ctx
        .visible(user)
        .into_iter()
        .filter(|e| e.device.name.starts_with(name))
        .collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(format!("console `{name}' not found\r\n")),
        _ => Err(format!(
            "ambiguous console abbreviation, `{name}'\r\n\tchoices are {}\r\n",
            matches
                .iter()
                .map(|e| e.device.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What `version` and `Ctrl-E c v` report.
pub(crate) fn version() -> String {
    format!(
        "mo {} (conserver 8.2 client protocol)",
        env!("CARGO_PKG_VERSION")
    )
}

const HELP_LOGIN: &str = "exit   disconnect\r\nhelp   this help message\r\nlogin  log in\r\n";

const HELP_MASTER: &str = "call       provide port for given console\r\n\
exit       disconnect\r\n\
groups     provide ports for group leaders\r\n\
help       this help message\r\n\
master     provide a list of master servers\r\n\
pid        provide pid of master process\r\n\
version    provide version info for server\r\n";

const HELP_GROUP: &str = "call       connect to given console\r\n\
examine    examine port and baud rates\r\n\
exit       disconnect\r\n\
group      show users in this group\r\n\
help       this help message\r\n\
hosts      show host/user table\r\n\
info       show console information\r\n";
