//! A viewer's connection to a console.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::{Attached, Console, Mode, Request, ViewerId, ViewerInfo, ViewerRole};
use crate::error::Result;
use crate::link::ControlOp;
use crate::record::{Chunk, RecordKind};

/// What a viewer receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewerEvent {
    /// The next chunk of the console's timeline (output, input, notices, notes, …).
    Chunk(Arc<Chunk>),
    /// The viewer fell behind and was resynced: it missed this many output bytes (and chunks).
    Missed {
        /// Output bytes the viewer did not see.
        bytes: u64,
        /// Chunks of any kind the viewer did not see.
        chunks: u64,
    },
    /// The console has stopped.
    Closed,
}

/// The commanding side of one viewer: typing, breaks, window size, mode changes, notes, `who`.
/// A cheap clone, usable from another task while the [`Session`] it came from reads (what the
/// facade's local attachment does); every call goes straight to the console actor. Commands made
/// after the session was dropped fail (the viewer is gone).
#[derive(Clone)]
pub struct SessionControl {
    console: Console,
    id: ViewerId,
    user: Arc<str>,
    /// The viewer's role (a [`ViewerRole`] as a number), shared by every clone.
    role: Arc<AtomicU8>,
}

impl std::fmt::Debug for SessionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionControl")
            .field("console", &self.console.name())
            .field("id", &self.id)
            .field("user", &self.user)
            .field("role", &self.role())
            .finish()
    }
}

impl SessionControl {
    /// The console this viewer views.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// This viewer's id (as listed by `who`).
    pub fn id(&self) -> ViewerId {
        self.id
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The role granted when the session started or last changed mode. A later `force` by someone
    /// else arrives as a notice chunk; writes then fail with a clear error.
    pub fn role(&self) -> ViewerRole {
        ViewerRole::from_u8(self.role.load(Ordering::Relaxed))
    }

    /// Type bytes into the console (recorded as input by this user). Fails with a clear message if
    /// this viewer is spying or the link is down.
    pub async fn write(&self, bytes: &[u8]) -> Result<()> {
        let bytes = Bytes::copy_from_slice(bytes);
        let id = self.id;
        self.console
            .request(|reply| Request::Write { id, bytes, reply })
            .await?
    }

    /// Change role (attach, spy, force, join); returns a message for this viewer, and
    /// [`SessionControl::role`] says the new role.
    pub async fn set_mode(&self, mode: Mode) -> Result<String> {
        let id = self.id;
        let (role, message) = self
            .console
            .request(|reply| Request::SetMode { id, mode, reply })
            .await??;
        self.role.store(role.to_u8(), Ordering::Relaxed);
        Ok(message)
    }

    /// Send break sequence `number` (1–9; 0 is taken as 1, the plain BREAK unless the device
    /// redefined it); returns a description of what was sent.
    pub async fn send_break(&self, number: u8) -> Result<String> {
        let id = self.id;
        let number = number.max(1);
        self.console
            .request(|reply| Request::Break { id, number, reply })
            .await?
    }

    /// Raise (`Some(true)`), drop (`Some(false)`) or toggle (`None`) a modem control line;
    /// needs the write lock and a link with modem lines. Returns what was done.
    pub async fn set_signal(&self, line: crate::link::Signal, to: Option<bool>) -> Result<String> {
        let id = self.id;
        self.console
            .request(|reply| Request::Signal {
                id,
                line,
                to,
                reply,
            })
            .await?
    }

    /// Tell the link this viewer's terminal size (only writers' sizes reach the device).
    pub async fn window_size(&self, cols: u16, rows: u16) -> Result<()> {
        let id = self.id;
        let op = ControlOp::WindowSize { cols, rows };
        self.console
            .request(|reply| Request::Control { id, op, reply })
            .await?
    }

    /// Write a note into the console's log, signed by this user; returns its sequence number.
    /// This viewer sees it as `note written (record SEQ)`, the others as `note by USER: TEXT`
    /// ([`super::render`]).
    pub async fn note(&self, text: &str) -> Result<u64> {
        self.console
            .record(RecordKind::Note, &self.user, text.as_bytes().to_vec())
            .await
    }

    /// Everyone connected.
    pub async fn who(&self) -> Result<Vec<ViewerInfo>> {
        self.console.who().await
    }

    /// The last `lines` lines of output.
    pub async fn replay(&self, lines: usize) -> Result<Bytes> {
        self.console.replay(lines).await
    }

    /// Reconnect the console's link now.
    pub async fn reconnect(&self) -> Result<()> {
        self.console.reconnect(&self.user).await
    }
}

/// A reader of a console's timeline (a broadcast of its chunks) as a viewer sees it: chunks in
/// order and, after falling behind, [`ViewerEvent::Missed`] with the output bytes skipped. A
/// [`Session`] reads through one; so does a door relaying a timeline from elsewhere (another
/// node of a site).
#[derive(Debug)]
pub struct TimelineReader {
    rx: broadcast::Receiver<Arc<Chunk>>,
    /// Output offset the viewer has seen up to.
    seen_offset: u64,
    held: Option<Arc<Chunk>>,
}

impl TimelineReader {
    /// Read `rx`, the viewer having seen the output up to `offset`.
    pub fn new(rx: broadcast::Receiver<Arc<Chunk>>, offset: u64) -> Self {
        TimelineReader {
            rx,
            seen_offset: offset,
            held: None,
        }
    }

    /// The next event. Never blocks the console: if this viewer fell behind, the first call after
    /// returns [`ViewerEvent::Missed`] and the stream continues from the oldest chunk still held.
    pub async fn recv(&mut self) -> ViewerEvent {
        if let Some(c) = self.held.take() {
            return self.deliver(c);
        }
        match self.rx.recv().await {
            Ok(c) => self.deliver(c),
            Err(RecvError::Closed) => ViewerEvent::Closed,
            Err(RecvError::Lagged(chunks)) => self.missed(chunks),
        }
    }

    /// Like [`TimelineReader::recv`] but returns `None` at once if nothing is waiting.
    pub fn try_recv(&mut self) -> Option<ViewerEvent> {
        if let Some(c) = self.held.take() {
            return Some(self.deliver(c));
        }
        match self.rx.try_recv() {
            Ok(c) => Some(self.deliver(c)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Closed) => Some(ViewerEvent::Closed),
            Err(TryRecvError::Lagged(chunks)) => Some(self.missed(chunks)),
        }
    }

    fn missed(&mut self, chunks: u64) -> ViewerEvent {
        // After a lag the receiver stands at the oldest chunk still held: its offset tells how many
        // output bytes went by unseen.
        let bytes = match self.rx.try_recv() {
            Ok(c) => {
                let bytes = c.offset.saturating_sub(self.seen_offset);
                self.held = Some(c);
                bytes
            }
            Err(_) => 0,
        };
        ViewerEvent::Missed { bytes, chunks }
    }

    fn deliver(&mut self, c: Arc<Chunk>) -> ViewerEvent {
        let end = if c.kind == RecordKind::Output {
            c.offset + c.bytes.len() as u64
        } else {
            c.offset
        };
        self.seen_offset = self.seen_offset.max(end);
        ViewerEvent::Chunk(c)
    }
}

/// One viewer of one console. Dropping it detaches the viewer.
///
/// It reads the timeline ([`Session::recv`]); its commands are those of its
/// [`SessionControl`] (a clone of which, [`Session::control`], commands from another task).
pub struct Session {
    control: SessionControl,
    message: String,
    replay: Bytes,
    reader: TimelineReader,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("console", &self.control.console.name())
            .field("id", &self.control.id)
            .field("user", &self.control.user)
            .field("role", &self.role())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(super) fn new(console: Console, user: Arc<str>, a: Attached) -> Self {
        Session {
            control: SessionControl {
                console,
                id: a.id,
                user,
                role: Arc::new(AtomicU8::new(a.role.to_u8())),
            },
            message: a.message,
            replay: a.replay,
            reader: TimelineReader::new(a.rx, a.offset),
        }
    }

    /// A handle that commands this viewer from another task.
    pub fn control(&self) -> SessionControl {
        self.control.clone()
    }

    /// The console this session views.
    pub fn console(&self) -> &Console {
        self.control.console()
    }

    /// This viewer's id (as listed by `who`).
    pub fn id(&self) -> ViewerId {
        self.control.id()
    }

    /// The user.
    pub fn user(&self) -> &str {
        self.control.user()
    }

    /// The role granted when the session started or last changed mode (see
    /// [`SessionControl::role`]).
    pub fn role(&self) -> ViewerRole {
        self.control.role()
    }

    /// The message for this viewer alone from connecting (e.g. "spying: web01 is in use by bob").
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The console's output offset this viewer has seen up to (at attach: where its timeline
    /// starts).
    pub fn offset(&self) -> u64 {
        self.reader.seen_offset
    }

    /// Take the replayed recent output (given once).
    pub fn take_replay(&mut self) -> Bytes {
        std::mem::take(&mut self.replay)
    }

    /// The next event. Never blocks the console: if this viewer fell behind, the first call after
    /// returns [`ViewerEvent::Missed`] and the stream continues from the oldest chunk still held.
    pub async fn recv(&mut self) -> ViewerEvent {
        self.reader.recv().await
    }

    /// Like [`Session::recv`] but returns `None` at once if nothing is waiting.
    pub fn try_recv(&mut self) -> Option<ViewerEvent> {
        self.reader.try_recv()
    }

    /// Type bytes into the console ([`SessionControl::write`]).
    pub async fn write(&self, bytes: &[u8]) -> Result<()> {
        self.control.write(bytes).await
    }

    /// Change role ([`SessionControl::set_mode`]).
    pub async fn set_mode(&self, mode: Mode) -> Result<String> {
        self.control.set_mode(mode).await
    }

    /// Send a break sequence ([`SessionControl::send_break`]).
    pub async fn send_break(&self, number: u8) -> Result<String> {
        self.control.send_break(number).await
    }

    /// Set or toggle DTR or RTS ([`SessionControl::set_signal`]).
    pub async fn set_signal(&self, line: crate::link::Signal, to: Option<bool>) -> Result<String> {
        self.control.set_signal(line, to).await
    }

    /// Tell the link this viewer's terminal size ([`SessionControl::window_size`]).
    pub async fn window_size(&self, cols: u16, rows: u16) -> Result<()> {
        self.control.window_size(cols, rows).await
    }

    /// Write a note into the console's log ([`SessionControl::note`]).
    pub async fn note(&self, text: &str) -> Result<u64> {
        self.control.note(text).await
    }

    /// Everyone connected.
    pub async fn who(&self) -> Result<Vec<ViewerInfo>> {
        self.control.who().await
    }

    /// The last `lines` lines of output.
    pub async fn replay(&self, lines: usize) -> Result<Bytes> {
        self.control.replay(lines).await
    }

    /// Reconnect the console's link now.
    pub async fn reconnect(&self) -> Result<()> {
        self.control.reconnect().await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.control.console.send_detach(self.control.id);
    }
}
