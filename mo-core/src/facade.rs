//! The facade: one small API over a console, the same whether it runs in this process or in a
//! daemon reached over the network. Python and Node bindings and programs wrap this.
//!
//! An [`Attachment`] is one viewer's connection to one console: it yields [`Output`] items and
//! takes keystrokes, breaks, window sizes and `who` questions. [`LocalAttachment`] is a viewer of a
//! [`Console`] in this process; `mo-client` provides a remote one over the daemon's WebSocket API.
//! A [`ConsoleHandle`] wraps any attachment and adds `send_line` and `expect` (the same matcher as
//! [`crate::automation::Expecter`], through [`ExpectBuffer`]), `send_command` (a command's output
//! between its echo and the next prompt, pagers answered: see [`CommandOptions`]) and a
//! [`Transcript`] of every byte read and sent (pexpect's `logfile`).
//!
//! [`open_local`] is the embedded mode (no daemon): it starts a console actor on a link from the
//! given connector (callers get one from `mo_drivers::connector_for(url, &DriverOptions)`) and
//! attaches to it.
//!
//! Every method of [`ConsoleHandle`] takes `&self`, so it can be shared (`Arc`) between a task that
//! reads and one that writes. Reading is not buffered beyond a small queue: a handle that is not
//! read falls behind and its next item is [`Output::Missed`]; the console never waits for it.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use mo_core::automation::ExpectPattern;
//! use mo_core::facade::{LocalOptions, open_local};
//! use mo_core::link::EchoConnector;
//!
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! let console = open_local("web01", Arc::new(EchoConnector), LocalOptions::default()).await?;
//! console.send_line("hello").await?;
//! // The echo device sends the line back.
//! let m = console.expect(&[ExpectPattern::literal("hello")?], Duration::from_secs(5)).await?;
//! assert_eq!(m.matched, "hello");
//! console.close().await?;
//! # Ok::<(), mo_core::Error>(())
//! # }).unwrap();
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::automation::{ExpectBuffer, ExpectMatch, ExpectPattern};
use crate::console::{
    Console, ConsoleConfig, LinkState, Mode, Session, SessionControl, ViewerEvent, ViewerInfo, view,
};
use crate::error::{Error, Result};
use crate::link::Connector;
use crate::log::{LogOptions, LogWriter};
use crate::record::RecordSink;

mod command;
mod transcript;

pub use command::CommandOptions;
pub use transcript::{FileTranscript, Transcript};

/// Items queued between a viewer's pump and its reader before the viewer falls behind.
const QUEUE: usize = 64;

pub use crate::console::Output;

/// One entry of `who`: a viewer of a console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The user.
    pub user: String,
    /// Its role ([`ViewerRole`](crate::console::ViewerRole)'s name): `attach` (holds the write
    /// lock), `join` (writes alongside) or `spy` (read-only).
    pub role: String,
    /// When it connected.
    pub since: SystemTime,
}

impl From<&ViewerInfo> for Viewer {
    fn from(v: &ViewerInfo) -> Self {
        Viewer {
            user: v.user.to_string(),
            role: v.role.to_string(),
            since: v.since,
        }
    }
}

/// What an attachment got when it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachInfo {
    /// The device name.
    pub device: String,
    /// Who is attached.
    pub user: String,
    /// The role granted at connect time (`attach`, `join` or `spy`: a
    /// [`ViewerRole`](crate::console::ViewerRole)'s name); later changes arrive as notices.
    pub role: String,
    /// The message for this viewer alone (e.g. "spying: web01 is in use by bob").
    pub message: String,
}

/// One viewer's connection to one console, local or remote. Implementations are cheap to call
/// from several tasks: reading ([`Attachment::next`]) does not block writing.
#[async_trait]
pub trait Attachment: Send + Sync {
    /// What the viewer got when it connected.
    fn info(&self) -> &AttachInfo;
    /// The next output item. After the end, [`Output::Closed`] again on every call.
    /// Cancel-safe: dropping the future loses nothing.
    async fn next(&self) -> Output;
    /// Type bytes into the console. Fails when this viewer is spying or the link is down.
    async fn write(&self, bytes: &[u8]) -> Result<()>;
    /// Send break sequence `number` (1–9; 0 is the console's first, plain BREAK by default).
    /// Returns a description of what was sent.
    async fn send_break(&self, number: u8) -> Result<String>;
    /// Raise (`Some(true)`), drop (`Some(false)`) or toggle (`None`) DTR or RTS; needs write
    /// access and a link with modem lines. Returns a description of what was done. The default
    /// answers [`Error::Unsupported`].
    async fn set_signal(&self, line: crate::link::Signal, to: Option<bool>) -> Result<String> {
        let _ = to;
        Err(crate::error::Error::Unsupported {
            operation: line.op(true).name(),
            what: self.info().device.clone(),
        })
    }
    /// Tell the console this viewer's terminal size.
    async fn resize(&self, cols: u16, rows: u16) -> Result<()>;
    /// Change role (attach, spy, force, join). Returns a message for this viewer.
    async fn set_mode(&self, mode: Mode) -> Result<String>;
    /// Write a note into the console's record log, signed by this viewer's user.
    async fn note(&self, text: &str) -> Result<()>;
    /// Everyone on the console, the write-lock holder first.
    async fn who(&self) -> Result<Vec<Viewer>>;
    /// Leave the console. Later reads give [`Output::Closed`].
    async fn close(&self) -> Result<()>;
}

/// A console as programs and bindings use it: an [`Attachment`] plus `send_line` and `expect`.
pub struct ConsoleHandle {
    inner: Box<dyn Attachment>,
    expect: Mutex<ExpectState>,
    line_end: Vec<u8>,
    /// The prompt `send_command` learnt, for the next commands.
    prompt: std::sync::Mutex<Option<String>>,
    transcript: std::sync::Mutex<Option<Arc<dyn Transcript>>>,
}

#[derive(Debug, Default)]
struct ExpectState {
    text: ExpectBuffer,
    missed: u64,
}

impl std::fmt::Debug for ConsoleHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleHandle")
            .field("info", self.inner.info())
            .finish_non_exhaustive()
    }
}

impl ConsoleHandle {
    /// Wrap an attachment. `send_line` ends lines with `\r` (what a terminal's Enter sends).
    pub fn new(inner: Box<dyn Attachment>) -> ConsoleHandle {
        ConsoleHandle {
            inner,
            expect: Mutex::new(ExpectState::default()),
            line_end: b"\r".to_vec(),
            prompt: std::sync::Mutex::new(None),
            transcript: std::sync::Mutex::new(None),
        }
    }

    /// Give every byte read from the console from now on (and, as the transcript wants, every
    /// byte sent) to `transcript` as well; `None` stops that.
    pub fn set_transcript(&self, transcript: Option<Arc<dyn Transcript>>) {
        if let Ok(mut t) = self.transcript.lock() {
            *t = transcript;
        }
    }

    fn transcript(&self) -> Option<Arc<dyn Transcript>> {
        self.transcript.lock().ok().and_then(|t| t.clone())
    }

    /// Use `line_end` after each [`ConsoleHandle::send_line`] instead of `\r`.
    pub fn with_line_end(mut self, line_end: &[u8]) -> ConsoleHandle {
        self.line_end = line_end.to_vec();
        self
    }

    /// What the viewer got when it connected (device, user, role, message).
    pub fn info(&self) -> &AttachInfo {
        self.inner.info()
    }

    /// The device name.
    pub fn device(&self) -> &str {
        &self.inner.info().device
    }

    /// The next output item. Output that an [`ConsoleHandle::expect`] already read is not given
    /// again (it stays in the expect buffer); do not read and expect from two tasks at once.
    pub async fn read(&self) -> Output {
        let item = self.inner.next().await;
        if let Output::Data(bytes) = &item
            && let Some(t) = self.transcript()
        {
            t.received(bytes);
        }
        item
    }

    /// Type bytes into the console.
    pub async fn write(&self, bytes: &[u8]) -> Result<()> {
        self.inner.write(bytes).await?;
        if let Some(t) = self.transcript() {
            t.sent(bytes);
        }
        Ok(())
    }

    /// Type `text` and the line end.
    pub async fn send_line(&self, text: &str) -> Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + self.line_end.len());
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(&self.line_end);
        self.write(&bytes).await
    }

    /// Wait up to `timeout` for any of `patterns` in the ANSI-stripped output, as
    /// [`crate::automation::Expecter::expect`] does: the earliest match wins, a match consumes the
    /// text up to its end, [`ExpectMatch::before`] is the unconsumed text before it. Fails with
    /// [`Error::Timeout`] (naming the device, the patterns and the last output) or
    /// [`Error::ConsoleGone`] when the attachment ends. Bytes missed while waiting are counted in
    /// [`ExpectMatch::missed`].
    pub async fn expect(
        &self,
        patterns: &[ExpectPattern],
        timeout: Duration,
    ) -> Result<ExpectMatch> {
        let mut state = self.expect.lock().await;
        let deadline = tokio::time::Instant::now() + timeout;
        self.expect_locked(&mut state, patterns, deadline, timeout)
            .await
    }

    /// [`ConsoleHandle::expect`] with the expect state locked, until `deadline` (`timeout` is
    /// what the error says was waited).
    async fn expect_locked(
        &self,
        state: &mut ExpectState,
        patterns: &[ExpectPattern],
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<ExpectMatch> {
        if let Some(m) = state.text.try_match(patterns, 0) {
            return Ok(m);
        }
        let mut missed = 0u64;
        loop {
            let Ok(item) = tokio::time::timeout_at(deadline, self.read()).await else {
                return Err(state
                    .text
                    .timeout_error(self.device(), patterns, timeout, missed));
            };
            match item {
                Output::Data(bytes) => {
                    state.text.feed(&bytes);
                    if let Some(m) = state.text.try_match(patterns, missed) {
                        return Ok(m);
                    }
                }
                Output::Missed(bytes) => {
                    missed += bytes;
                    state.missed += bytes;
                }
                Output::Notice(_) => {}
                Output::Closed(reason) => {
                    tracing::debug!(device = self.device(), %reason, "expect: attachment closed");
                    return Err(Error::ConsoleGone {
                        device: self.device().to_string(),
                    });
                }
            }
        }
    }

    /// The output read by `expect` and not yet consumed by a match.
    pub async fn buffer(&self) -> String {
        self.expect.lock().await.text.buffer().to_string()
    }

    /// Output bytes lost during `expect` calls since the handle was made.
    pub async fn missed_total(&self) -> u64 {
        self.expect.lock().await.missed
    }

    /// Send break sequence `number` (0: plain BREAK).
    pub async fn send_break(&self, number: u8) -> Result<String> {
        self.inner.send_break(number).await
    }

    /// Raise (`Some(true)`), drop (`Some(false)`) or toggle (`None`) DTR or RTS.
    pub async fn set_signal(&self, line: crate::link::Signal, to: Option<bool>) -> Result<String> {
        self.inner.set_signal(line, to).await
    }

    /// Tell the console this viewer's terminal size.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        self.inner.resize(cols, rows).await
    }

    /// Change role (attach, spy, force, join).
    pub async fn set_mode(&self, mode: Mode) -> Result<String> {
        self.inner.set_mode(mode).await
    }

    /// Write a note into the console's record log.
    pub async fn note(&self, text: &str) -> Result<()> {
        self.inner.note(text).await
    }

    /// Everyone on the console.
    pub async fn who(&self) -> Result<Vec<Viewer>> {
        self.inner.who().await
    }

    /// Leave the console.
    pub async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    /// The attachment underneath.
    pub fn attachment(&self) -> &dyn Attachment {
        self.inner.as_ref()
    }
}

/// Options of [`open_local`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalOptions {
    /// Who types (default: the OS user name from `$USER`/`$LOGNAME`, else `local`).
    pub user: Option<String>,
    /// How to attach (default [`Mode::Attach`]).
    pub mode: Mode,
    /// Keep a record log in this directory (the device's own directory; default: no log).
    pub log_dir: Option<PathBuf>,
    /// Lines of recent output to replay first (default: the console's setting).
    pub replay: Option<usize>,
    /// Wait at most this long for the link to come up before returning (default 30 s;
    /// `None`: return at once, typing fails with [`Error::ConsoleDown`] until it is up).
    pub wait_up: Option<Duration>,
    /// Console settings; its `name` is replaced by the name given to [`open_local`].
    pub config: Option<ConsoleConfig>,
    /// Scan the console's output and raise events with this service, as the daemon does
    /// (default: no scanning; see [`crate::event::EventService`]).
    pub events: Option<crate::event::EventService>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            user: None,
            mode: Mode::Attach,
            log_dir: None,
            replay: None,
            wait_up: Some(Duration::from_secs(30)),
            config: None,
            events: None,
        }
    }
}

impl LocalOptions {
    /// Set the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Set the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Keep a record log in `dir`.
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// Replay `lines` lines of recent output first.
    pub fn replay(mut self, lines: usize) -> Self {
        self.replay = Some(lines);
        self
    }

    /// Wait at most `timeout` for the link (`None`: do not wait).
    pub fn wait_up(mut self, timeout: Option<Duration>) -> Self {
        self.wait_up = timeout;
        self
    }

    /// Use these console settings.
    pub fn config(mut self, config: ConsoleConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Scan the console with `events` (its patterns for this device name) and raise events.
    pub fn events(mut self, events: crate::event::EventService) -> Self {
        self.events = Some(events);
        self
    }
}

/// The OS user name (`$USER`, `$LOGNAME`), or `local`.
pub fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "local".to_string())
}

/// Embedded mode: start a console for device `name` on `connector` in this process and attach to
/// it. The console stops when the handle is closed or dropped. Fails with [`Error::ConsoleDown`]
/// if the link cannot be opened, or [`Error::Timeout`] if it is not up within
/// [`LocalOptions::wait_up`].
pub async fn open_local(
    name: &str,
    connector: Arc<dyn Connector>,
    options: LocalOptions,
) -> Result<ConsoleHandle> {
    let mut config = options
        .config
        .clone()
        .unwrap_or_else(|| ConsoleConfig::new(name));
    config.name = name.to_string();
    let log: Option<Box<dyn RecordSink>> = match &options.log_dir {
        Some(dir) => {
            let (writer, _recovery) = LogWriter::open(dir, LogOptions::default())?;
            Some(Box::new(writer))
        }
        None => None,
    };
    let console = match &options.events {
        Some(events) => events.spawn_console(config, connector, log),
        None => Console::spawn(config, connector, log),
    };
    if let Some(limit) = options.wait_up {
        wait_up(&console, limit).await?;
    }
    let user = options.user.clone().unwrap_or_else(os_user);
    let session = console
        .attach_from(&user, "embedded", options.mode, options.replay)
        .await?;
    Ok(ConsoleHandle::new(Box::new(LocalAttachment::owning(
        session,
    ))))
}

/// `open_local` can be spawned on a multi-threaded runtime (bindings need that).
#[allow(dead_code)]
fn open_local_is_send(connector: Arc<dyn Connector>) -> impl Send {
    open_local("x", connector, LocalOptions::default())
}

/// Wait until the console's link is up; fail on the first `Down` or after `limit`.
async fn wait_up(console: &Console, limit: Duration) -> Result<()> {
    let mut state = console.watch_state();
    let waited = tokio::time::timeout(
        limit,
        state.wait_for(|s| !matches!(s, LinkState::Connecting { .. } | LinkState::Idle)),
    )
    .await
    // Own the state at once: a `watch::Ref` held across the awaits below would make this
    // future `!Send` (bindings spawn it on a multi-threaded runtime).
    .map(|r| r.map(|s| s.clone()));
    let state = match waited {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => LinkState::Stopped,
        Err(_) => {
            console.shutdown().await;
            return Err(Error::Timeout {
                what: format!("{}: connecting the link", console.name()),
                after: limit,
            });
        }
    };
    match state {
        LinkState::Up { .. } => Ok(()),
        LinkState::Down { reason, .. } => {
            console.shutdown().await;
            Err(Error::ConsoleDown {
                device: console.name().to_string(),
                reason,
            })
        }
        _ => Err(Error::ConsoleGone {
            device: console.name().to_string(),
        }),
    }
}

/// A viewer of a [`Console`] in this process. Commands go straight to the console through the
/// session's [`SessionControl`]; a pump task owns the [`Session`] and moves what the viewer sees
/// ([`crate::console::view`]) into a small queue only when the queue has room (a reader that
/// stops falls behind and gets [`Output::Missed`], the console never waits).
pub struct LocalAttachment {
    info: AttachInfo,
    control: SessionControl,
    out: Mutex<mpsc::Receiver<Output>>,
    /// Asks the pump to stop; answered once the viewer has left.
    close: std::sync::Mutex<Option<oneshot::Sender<oneshot::Sender<()>>>>,
    /// Set once the attachment has ended (closed here, or the console stopped).
    ended: Arc<AtomicBool>,
    /// Why the attachment ended, once it has.
    closed: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for LocalAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAttachment")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl LocalAttachment {
    /// Wrap a session of a console someone else owns: closing leaves the console running.
    pub fn new(session: Session) -> LocalAttachment {
        LocalAttachment::start(session, false)
    }

    /// Wrap a session of a console this attachment owns: closing it also stops the console.
    pub fn owning(session: Session) -> LocalAttachment {
        LocalAttachment::start(session, true)
    }

    fn start(mut session: Session, owns: bool) -> LocalAttachment {
        let info = AttachInfo {
            device: session.console().name().to_string(),
            user: session.user().to_string(),
            role: session.role().to_string(),
            message: session.message().to_string(),
        };
        let (out_tx, out_rx) = mpsc::channel(QUEUE);
        let (close_tx, close_rx) = oneshot::channel();
        let ended = Arc::new(AtomicBool::new(false));
        let control = session.control();
        let replay = session.take_replay();
        tokio::spawn(pump(session, replay, owns, out_tx, close_rx, ended.clone()));
        LocalAttachment {
            info,
            control,
            out: Mutex::new(out_rx),
            close: std::sync::Mutex::new(Some(close_tx)),
            ended,
            closed: std::sync::Mutex::new(None),
        }
    }

    /// The session's commands, or [`Error::ConsoleGone`] once the attachment has ended.
    fn control(&self) -> Result<&SessionControl> {
        if self.ended.load(Ordering::Acquire) {
            return Err(Error::ConsoleGone {
                device: self.info.device.clone(),
            });
        }
        Ok(&self.control)
    }
}

async fn pump(
    mut session: Session,
    replay: Bytes,
    owns: bool,
    out: mpsc::Sender<Output>,
    mut close: oneshot::Receiver<oneshot::Sender<()>>,
    ended: Arc<AtomicBool>,
) {
    let me = session.user().to_string();
    let device = session.console().name().to_string();
    if !replay.is_empty() && out.send(Output::Data(replay)).await.is_err() {
        return;
    }
    let closed = loop {
        tokio::select! {
            done = &mut close => break done.ok(),
            (permit, event) = async {
                // Take from the hub only when the reader has room.
                let permit = out.reserve().await;
                (permit, session.recv().await)
            } => {
                let Ok(permit) = permit else { break None };
                let end = matches!(event, ViewerEvent::Closed);
                if let Some(item) = view(event, &me, &device) {
                    permit.send(item);
                }
                if end {
                    ended.store(true, Ordering::Release);
                    return;
                }
            }
        }
    };
    ended.store(true, Ordering::Release);
    let console = session.console().clone();
    drop(session);
    if owns {
        // Closed means the record log is final: wait (up to 5 s) until the console's actor has
        // written its last records and closed the log, so a program that exits right after
        // `close()` loses nothing.
        let mut state = console.watch_state();
        console.shutdown().await;
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            state.wait_for(|s| *s == crate::console::LinkState::Stopped),
        )
        .await;
    }
    let _ = out.try_send(Output::Closed("closed".into()));
    if let Some(done) = closed {
        let _ = done.send(());
    }
}

#[async_trait]
impl Attachment for LocalAttachment {
    fn info(&self) -> &AttachInfo {
        &self.info
    }

    async fn next(&self) -> Output {
        let mut out = self.out.lock().await;
        let item = match out.recv().await {
            Some(item) => item,
            None => {
                let why = self.closed.lock().ok().and_then(|c| c.clone());
                Output::Closed(why.unwrap_or_else(|| "closed".into()))
            }
        };
        if let Output::Closed(why) = &item
            && let Ok(mut closed) = self.closed.lock()
        {
            closed.get_or_insert_with(|| why.clone());
        }
        item
    }

    async fn write(&self, bytes: &[u8]) -> Result<()> {
        self.control()?.write(bytes).await
    }

    async fn send_break(&self, number: u8) -> Result<String> {
        self.control()?.send_break(number).await
    }

    async fn set_signal(&self, line: crate::link::Signal, to: Option<bool>) -> Result<String> {
        self.control()?.set_signal(line, to).await
    }

    async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        self.control()?.window_size(cols, rows).await
    }

    async fn set_mode(&self, mode: Mode) -> Result<String> {
        self.control()?.set_mode(mode).await
    }

    async fn note(&self, text: &str) -> Result<()> {
        self.control()?.note(text).await.map(|_| ())
    }

    async fn who(&self) -> Result<Vec<Viewer>> {
        let who = self.control()?.who().await?;
        Ok(who.iter().map(Viewer::from).collect())
    }

    async fn close(&self) -> Result<()> {
        let close = self.close.lock().ok().and_then(|mut c| c.take());
        if let Some(close) = close {
            let (done, rx) = oneshot::channel();
            if close.send(done).is_ok() {
                let _ = rx.await;
            }
        }
        self.ended.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
