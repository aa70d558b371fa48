//! A viewer's session as the doors hold it, wherever the console runs: on this daemon (a
//! [`Session`] on the console's hub) or, in a site, on another node ([`RemoteSession`], the
//! owner deciding and answering everything). The doors call [`open`] and then the same methods
//! either way.

use std::sync::Arc;

use bytes::Bytes;
use mo_core::console::{LinkState, Mode, Session, ViewerEvent, ViewerId, ViewerInfo, ViewerRole};
use mo_core::link::Signal;

use crate::Ctx;
use crate::cluster::RemoteSession;
use crate::registry::Entry;

/// One viewer of one console, local or remote.
#[allow(clippy::large_enum_variant)]
pub enum AnySession {
    /// The console runs here.
    Local(Session),
    /// Another node of the site holds the console.
    Remote(RemoteSession),
}

/// Attach `user` (coming from `origin`) to `entry`'s console: here when it runs here, else
/// through the node holding it. The error is the line to show the viewer.
pub async fn open(
    ctx: &Arc<Ctx>,
    entry: &Entry,
    user: &str,
    origin: &str,
    mode: Mode,
    replay: Option<usize>,
) -> Result<AnySession, String> {
    let device = &entry.device.name;
    if let Some(console) = &entry.console {
        return console
            .attach_from(user, &local_origin(ctx, origin), mode, replay)
            .await
            .map(AnySession::Local)
            .map_err(|e| format!("cannot attach to {device}: {e}"));
    }
    let not_running = || {
        let why = entry.error.clone().unwrap_or_default();
        format!("{device} is not running: {why}")
    };
    let Some(remote) = ctx.cluster.as_ref().and_then(|c| c.remote()) else {
        return Err(not_running());
    };
    let Some(owner) = remote.holder_elsewhere(device) else {
        return Err(not_running());
    };
    remote
        .attach(&owner, device, user, origin, mode, replay)
        .await
        .map(AnySession::Remote)
        .map_err(|e| format!("cannot attach to {device} on node {owner}: {e}"))
}

/// How long a door waits for a console that stopped under its viewer to run again in the site
/// (its owner died: the lease TTL, a second or two more, and the new owner's connect).
pub const REATTACH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether a door reattaches a viewer whose console stopped: in a site sharing devices.
pub fn may_reattach(ctx: &Ctx) -> bool {
    ctx.cluster.as_ref().and_then(|c| c.remote()).is_some()
}

/// Wait (up to [`REATTACH_WAIT`]) until `device` runs again, here or on another live node, and
/// attach there (no replay: the viewer saw it). `None` when the device is gone or did not
/// come back in time.
pub async fn reattach(
    ctx: &Arc<Ctx>,
    device: &str,
    user: &str,
    origin: &str,
    mode: Mode,
) -> Option<(Entry, AnySession)> {
    let deadline = tokio::time::Instant::now() + REATTACH_WAIT;
    loop {
        // The old owner's claim may look live for a while: try again until the new one runs.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let entry = ctx.registry.get(device)?;
        if let Ok(session) = open(ctx, &entry, user, origin, mode, Some(0)).await {
            return Some((entry, session));
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// Most bytes a door holds of what its client sends while [`reattach_reading`] waits.
pub const HELD_MAX: usize = 64 * 1024;

/// How [`reattach_reading`] ended.
pub enum Reattach {
    /// Attached again, in the same mode.
    Attached(Box<AnySession>),
    /// The console did not come back in time, or the device is gone.
    NotBack,
    /// The client closed its connection while waiting.
    ClientLeft,
}

/// [`reattach`] for a door with a byte stream from its client: what the client sends while
/// waiting is handed to `keep` with `held` (until `held` has [`HELD_MAX`] bytes: then the
/// client is not read until the wait ends), for the door to type into the new session.
pub async fn reattach_reading<R: tokio::io::AsyncRead + Unpin>(
    ctx: &Arc<Ctx>,
    (device, user, origin, mode): (&str, &str, &str, Mode),
    rd: &mut R,
    held: &mut Vec<u8>,
    mut keep: impl FnMut(&mut Vec<u8>, &[u8]),
) -> std::io::Result<Reattach> {
    use tokio::io::AsyncReadExt as _;
    let wait = reattach(ctx, device, user, origin, mode);
    tokio::pin!(wait);
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            found = &mut wait => {
                return Ok(match found {
                    Some((_entry, session)) => Reattach::Attached(Box::new(session)),
                    None => Reattach::NotBack,
                });
            }
            read = rd.read(&mut buf), if held.len() < HELD_MAX => {
                let n = read?;
                if n == 0 {
                    return Ok(Reattach::ClientLeft);
                }
                keep(held, buf.get(..n).unwrap_or_default());
            }
        }
    }
}

/// Where a viewer of a console running here comes from, for `who`: in a site, the node too.
pub fn local_origin(ctx: &Ctx, origin: &str) -> String {
    match ctx.cluster.as_ref() {
        Some(c) => format!("node {}: {origin}", c.node()),
        None => origin.to_owned(),
    }
}

/// `who` of `entry`'s console, wherever it runs (`None` when it runs nowhere reachable).
pub async fn who(ctx: &Ctx, entry: &Entry) -> Option<Result<Vec<ViewerInfo>, String>> {
    if let Some(console) = &entry.console {
        return Some(console.who().await.map_err(|e| e.to_string()));
    }
    let remote = ctx.cluster.as_ref()?.remote()?;
    let owner = remote.holder_elsewhere(&entry.device.name)?;
    Some(remote.who(&owner, &entry.device.name).await)
}

/// The link state word of `entry`'s console wherever it runs: its own state here, else the
/// state its owner last announced in its heartbeat (`down` when no node runs it).
pub fn state_word(ctx: &Ctx, entry: &Entry) -> String {
    if let Some(console) = &entry.console {
        return console.state().word().to_owned();
    }
    let device = &entry.device.name;
    ctx.cluster
        .as_ref()
        .and_then(|c| {
            let owner = c.remote()?.holder_elsewhere(device)?;
            c.console_state(&owner, device)
        })
        .unwrap_or_else(|| "down".to_owned())
}

/// Why a viewer's command failed: the console's own error (local), or the owner's answer or
/// silence (remote), as text.
#[derive(Debug)]
pub enum ViewError {
    /// The console here refused or failed.
    Console(mo_core::error::Error),
    /// The owner refused, or could not be reached.
    Remote(String),
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::Console(e) => e.fmt(f),
            ViewError::Remote(text) => f.write_str(text),
        }
    }
}

fn err(e: mo_core::error::Error) -> ViewError {
    ViewError::Console(e)
}

impl AnySession {
    /// This viewer's id where the console runs (as `who` lists it).
    pub fn id(&self) -> ViewerId {
        match self {
            AnySession::Local(s) => s.id(),
            AnySession::Remote(s) => s.id(),
        }
    }

    /// The user.
    pub fn user(&self) -> &str {
        match self {
            AnySession::Local(s) => s.user(),
            AnySession::Remote(s) => s.user(),
        }
    }

    /// The role granted at attach or at the last mode change.
    pub fn role(&self) -> ViewerRole {
        match self {
            AnySession::Local(s) => s.role(),
            AnySession::Remote(s) => s.role(),
        }
    }

    /// The message for this viewer from connecting.
    pub fn message(&self) -> &str {
        match self {
            AnySession::Local(s) => s.message(),
            AnySession::Remote(s) => s.message(),
        }
    }

    /// Take the replayed recent output (given once).
    pub fn take_replay(&mut self) -> Bytes {
        match self {
            AnySession::Local(s) => s.take_replay(),
            AnySession::Remote(s) => s.take_replay(),
        }
    }

    /// The next event of the console's timeline.
    pub async fn recv(&mut self) -> ViewerEvent {
        match self {
            AnySession::Local(s) => s.recv().await,
            AnySession::Remote(s) => s.recv().await,
        }
    }

    /// Type bytes into the console (recorded as this user's input where the console runs).
    pub async fn write(&self, bytes: &[u8]) -> Result<(), ViewError> {
        match self {
            AnySession::Local(s) => s.write(bytes).await.map_err(err),
            AnySession::Remote(s) => s.write(bytes).await.map_err(ViewError::Remote),
        }
    }

    /// Change role (attach, spy, force, join); returns the message for this viewer.
    pub async fn set_mode(&self, mode: Mode) -> Result<String, ViewError> {
        match self {
            AnySession::Local(s) => s.set_mode(mode).await.map_err(err),
            AnySession::Remote(s) => s.set_mode(mode).await.map_err(ViewError::Remote),
        }
    }

    /// Send break sequence `number`.
    pub async fn send_break(&self, number: u8) -> Result<String, ViewError> {
        match self {
            AnySession::Local(s) => s.send_break(number).await.map_err(err),
            AnySession::Remote(s) => s.send_break(number).await.map_err(ViewError::Remote),
        }
    }

    /// Raise, drop or toggle a modem control line.
    pub async fn set_signal(&self, line: Signal, to: Option<bool>) -> Result<String, ViewError> {
        match self {
            AnySession::Local(s) => s.set_signal(line, to).await.map_err(err),
            AnySession::Remote(s) => s.set_signal(line, to).await.map_err(ViewError::Remote),
        }
    }

    /// Tell the link this viewer's terminal size.
    pub async fn window_size(&self, cols: u16, rows: u16) -> Result<(), ViewError> {
        match self {
            AnySession::Local(s) => s.window_size(cols, rows).await.map_err(err),
            AnySession::Remote(s) => s.window_size(cols, rows).await.map_err(ViewError::Remote),
        }
    }

    /// Write a note into the console's log; returns its sequence number.
    pub async fn note(&self, text: &str) -> Result<u64, ViewError> {
        match self {
            AnySession::Local(s) => s.note(text).await.map_err(err),
            AnySession::Remote(s) => s.note(text).await.map_err(ViewError::Remote),
        }
    }

    /// Everyone connected, through whichever node.
    pub async fn who(&self) -> Result<Vec<ViewerInfo>, ViewError> {
        match self {
            AnySession::Local(s) => s.who().await.map_err(err),
            AnySession::Remote(s) => s.who().await.map_err(ViewError::Remote),
        }
    }

    /// The last `lines` lines of output.
    pub async fn replay(&self, lines: usize) -> Result<Bytes, ViewError> {
        match self {
            AnySession::Local(s) => s.replay(lines).await.map_err(err),
            AnySession::Remote(s) => s.replay(lines).await.map_err(ViewError::Remote),
        }
    }

    /// Reconnect the console's link now.
    pub async fn reconnect(&self) -> Result<(), ViewError> {
        match self {
            AnySession::Local(s) => s.reconnect().await.map_err(err),
            AnySession::Remote(s) => s.reconnect().await.map_err(ViewError::Remote),
        }
    }

    /// Like [`AnySession::recv`] but `None` at once when nothing is waiting.
    pub fn try_recv(&mut self) -> Option<ViewerEvent> {
        match self {
            AnySession::Local(s) => s.try_recv(),
            AnySession::Remote(s) => s.try_recv(),
        }
    }

    /// The console's link state as it changes, for a console running here (a remote
    /// viewer learns of link changes from the notices of the timeline).
    pub fn watch_state(&self) -> Option<tokio::sync::watch::Receiver<LinkState>> {
        match self {
            AnySession::Local(s) => Some(s.console().watch_state()),
            AnySession::Remote(_) => None,
        }
    }

    /// The console's link state, in a word.
    pub async fn link_state(&self) -> String {
        match self {
            AnySession::Local(s) => s.console().state().word().to_owned(),
            AnySession::Remote(s) => s.link_state().await,
        }
    }
}
