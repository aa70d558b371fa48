//! The console actor: one per device, owning the device's link for its whole life.
//!
//! A [`Console`] is a cheap handle; the actor task behind it connects the link (at start, or on the
//! first viewer in on-demand mode), reconnects with exponential backoff and jitter, and turns every
//! byte into a [`Chunk`] that goes first into the record log ([`RecordSink`]) and then into the hub,
//! a ring that every viewer ([`Session`]) reads at its own pace. The actor never waits on a viewer:
//! a viewer that falls behind is told how many bytes it missed ([`ViewerEvent::Missed`]) and
//! continues from the oldest output still held.
//!
//! Sharing follows conserver: [`Mode::Attach`] takes the write lock if it is free and otherwise
//! spies with a notice, [`Mode::Spy`] is read-only, [`Mode::Force`] takes the lock and demotes the
//! holder, [`Mode::Join`] shares writing with the holder where the console allows it.
//!
//! ```
//! use std::sync::Arc;
//! use mo_core::console::{Console, ConsoleConfig, LinkState, Mode, ViewerEvent};
//! use mo_core::link::EchoConnector;
//!
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! let console = Console::spawn(ConsoleConfig::new("web01"), Arc::new(EchoConnector), None);
//! let mut alice = console.attach("alice", Mode::Attach, None).await?;
//! // Typing while the link is still connecting is refused with `Error::ConsoleDown`: wait for it.
//! let mut state = console.watch_state();
//! state.wait_for(|s| matches!(s, LinkState::Up { .. })).await.ok();
//! alice.write(b"hello\n").await?;
//! // The echo device sends the bytes back; the session sees notices and output in order.
//! loop {
//!     if let ViewerEvent::Chunk(c) = alice.recv().await {
//!         if c.is_output() {
//!             assert_eq!(&c.bytes[..], b"hello\n");
//!             break;
//!         }
//!     }
//! }
//! # Ok::<(), mo_core::Error>(())
//! # }).unwrap();
//! ```

mod actor;
mod arena;
mod connection;
mod consumer;
mod hub;
mod lines;
mod login;
mod loopguard;
mod mode;
mod quiet;
mod recorder;
mod secret;
mod session;
mod sharing;
mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::breakseq::BreakSequences;
use crate::error::{Error, Result};
use crate::link::{Connector, ControlOp, ModemState};
use crate::record::{Chunk, RecordKind, RecordSink};

pub use consumer::{
    BoundedConsumer, CHUNK_OVERHEAD, ConsumerFeed, Consumers, DEFAULT_CONSUMER_CAPACITY, Delivery,
    Follow, bounded_consumer, bounded_consumer_bytes,
};
pub use lines::Lines;
pub use login::{DEFAULT_EXPECT_TIMEOUT, LoginScript, LoginStep};
pub use loopguard::LOOP_NOTICE_PREFIX;
pub use mode::{Admitted, Mode, ViewerRole, admit};
pub use secret::{SecretGuard, redacted};
pub use session::{Session, SessionControl, TimelineReader, ViewerEvent};
pub use view::{Output, missed_text, render, stopped_text, terminal_notice, view};

/// Settings of one console.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsoleConfig {
    /// The device name.
    pub name: String,
    /// Connect only while someone is attached (disconnect `idle_timeout` after the last leaves).
    pub on_demand: bool,
    /// In on-demand mode: how long the link stays up after the last viewer left.
    pub idle_timeout: Duration,
    /// Lines replayed to a viewer on connect unless it asks for another number.
    pub replay_lines: usize,
    /// Whether [`Mode::Join`] (several writers) is allowed.
    pub allow_join: bool,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A link that stayed up this long resets the backoff.
    pub stable_after: Duration,
    /// Give up a connection attempt after this long.
    pub connect_timeout: Duration,
    /// Chunks the hub keeps for slow viewers.
    pub hub_capacity: usize,
    /// Bytes of recent output kept for replay.
    pub tail_bytes: usize,
    /// Named break sequences (`Ctrl-E c l N`).
    pub break_sequences: BreakSequences,
    /// Auto-login script run on every (re)connect.
    pub login: Option<Arc<LoginScript>>,
    /// What happens to viewer input while the record log cannot write.
    pub log_policy: LogPolicy,
    /// Record input typed at password prompts as typed; `false` (the default) records it as
    /// `<redacted N bytes>` (see [`SecretGuard`]).
    pub log_secrets: bool,
}

/// What a console does with viewer input while its record log cannot write (a full disk, an I/O
/// error). Output is always shown to viewers either way, and the loss is recorded as a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogPolicy {
    /// Keep the console usable: input goes to the device; the log says what it lost (default).
    #[default]
    Degrade,
    /// Nobody types unrecorded: input is refused with a notice until the log records again.
    Strict,
}

impl LogPolicy {
    /// `degrade` or `strict`.
    pub fn name(self) -> &'static str {
        match self {
            LogPolicy::Degrade => "degrade",
            LogPolicy::Strict => "strict",
        }
    }
}

impl std::fmt::Display for LogPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LogPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "degrade" => Ok(LogPolicy::Degrade),
            "strict" => Ok(LogPolicy::Strict),
            other => Err(Error::BadSpec {
                what: "log policy",
                input: other.to_string(),
                reason: "expected `degrade` or `strict`".into(),
            }),
        }
    }
}

/// Whether a console's record log is recording ([`Console::watch_log`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LogHealth {
    /// `Some` while the log cannot write: why, since when (ns since the Unix epoch), and what has
    /// been lost so far.
    pub degraded: Option<LogDegraded>,
    /// Append failures since the console started (each failed record counts once).
    pub write_errors: u64,
    /// Gaps the log has recorded since the console started (one per degraded period it recovered
    /// from).
    pub gaps: u64,
}

/// The state of a degraded record log ([`LogHealth::degraded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogDegraded {
    /// The error of the first failed write.
    pub error: String,
    /// When the first write failed (ns since the Unix epoch).
    pub since_ns: u64,
    /// Records not written so far.
    pub lost_records: u64,
    /// Payload bytes of those records.
    pub lost_bytes: u64,
}

impl ConsoleConfig {
    /// Defaults for a device called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ConsoleConfig {
            name: name.into(),
            on_demand: false,
            idle_timeout: Duration::from_secs(30),
            replay_lines: 20,
            allow_join: true,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            hub_capacity: 256,
            tail_bytes: 32 * 1024,
            break_sequences: BreakSequences::default(),
            login: None,
            log_policy: LogPolicy::Degrade,
            log_secrets: false,
        }
    }
}

/// Identifies one viewer of one console.
pub type ViewerId = u64;

/// One entry of [`Console::who`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerInfo {
    /// The viewer.
    pub id: ViewerId,
    /// Who it is.
    pub user: Arc<str>,
    /// Its role.
    pub role: ViewerRole,
    /// When it connected.
    pub since: SystemTime,
    /// Where it came from (front door and address), for `who`.
    pub origin: Arc<str>,
}

/// The connection state of a console's link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Not connected and not trying (on-demand console without viewers).
    Idle,
    /// A connection attempt is under way.
    Connecting {
        /// 1 for the first attempt after a failure or start.
        attempt: u32,
    },
    /// Connected.
    Up {
        /// Since when.
        since: SystemTime,
    },
    /// Not connected; retrying after a delay.
    Down {
        /// Why the link went down or could not be opened.
        reason: String,
        /// When the next attempt starts.
        retry_at: SystemTime,
    },
    /// The actor has stopped.
    Stopped,
}

impl LinkState {
    /// A short word: `idle`, `connecting`, `up`, `down`, `stopped`.
    pub fn word(&self) -> &'static str {
        match self {
            LinkState::Idle => "idle",
            LinkState::Connecting { .. } => "connecting",
            LinkState::Up { .. } => "up",
            LinkState::Down { .. } => "down",
            LinkState::Stopped => "stopped",
        }
    }
}

/// What a viewer gets when it connects: its role, a message for it alone, and the replayed lines.
#[derive(Debug)]
struct Attached {
    id: ViewerId,
    role: ViewerRole,
    message: String,
    replay: Bytes,
    rx: broadcast::Receiver<Arc<Chunk>>,
    offset: u64,
}

enum Request {
    Attach {
        user: Arc<str>,
        origin: Arc<str>,
        mode: Mode,
        replay: Option<usize>,
        reply: oneshot::Sender<Result<Attached>>,
    },
    Detach {
        id: ViewerId,
    },
    SetMode {
        id: ViewerId,
        mode: Mode,
        reply: oneshot::Sender<Result<(ViewerRole, String)>>,
    },
    Write {
        id: ViewerId,
        bytes: Bytes,
        reply: oneshot::Sender<Result<()>>,
    },
    Inject {
        user: Arc<str>,
        bytes: Bytes,
    },
    /// Input typed outside the console (on an agent's local terminal) that reached the device
    /// without it: logged only.
    TypedElsewhere {
        user: Arc<str>,
        bytes: Bytes,
    },
    Break {
        id: ViewerId,
        number: u8,
        reply: oneshot::Sender<Result<String>>,
    },
    /// Set (`Some`) or toggle (`None`) a modem control line for a user without a viewer.
    SignalAs {
        user: Arc<str>,
        line: crate::link::Signal,
        to: Option<bool>,
        reply: oneshot::Sender<Result<String>>,
    },
    /// Set (`Some`) or toggle (`None`) a modem control line.
    Signal {
        id: ViewerId,
        line: crate::link::Signal,
        to: Option<bool>,
        reply: oneshot::Sender<Result<String>>,
    },
    Control {
        id: ViewerId,
        op: ControlOp,
        reply: oneshot::Sender<Result<()>>,
    },
    Record {
        kind: RecordKind,
        user: Arc<str>,
        bytes: Bytes,
        reply: oneshot::Sender<Result<u64>>,
    },
    Recovered {
        notice: String,
        records: Vec<crate::log::Record>,
        reply: oneshot::Sender<Result<(u64, u64)>>,
    },
    Who {
        reply: oneshot::Sender<Vec<ViewerInfo>>,
    },
    Replay {
        lines: usize,
        reply: oneshot::Sender<Bytes>,
    },
    Reconnect {
        user: Arc<str>,
    },
    Subscribe {
        reply: oneshot::Sender<broadcast::Receiver<Arc<Chunk>>>,
    },
    ApplyRetention {
        reply: oneshot::Sender<Result<crate::log::Pruned>>,
    },
    Shutdown,
}

struct Shared {
    name: Arc<str>,
    /// Requests travel boxed: a channel's first block holds 32 of them whether or not any is
    /// sent, and a console that nobody uses should not pay 2 KiB for that.
    tx: mpsc::Sender<Box<Request>>,
    state: watch::Receiver<LinkState>,
    modem: watch::Receiver<Option<ModemState>>,
    lines: watch::Receiver<Lines>,
    log: watch::Receiver<LogHealth>,
    /// Output bytes so far, stored by the actor after each output chunk.
    output: Arc<AtomicU64>,
    /// Shared with the actor (one copy per console, break sequences and all).
    config: Arc<ConsoleConfig>,
}

/// A handle on a console actor. Cheap to clone; the actor stops when the last handle (and the last
/// [`Session`]) is dropped, or on [`Console::shutdown`].
#[derive(Clone)]
pub struct Console {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// A handle on a console that does not keep it running ([`Console::downgrade`]).
#[derive(Clone)]
pub struct WeakConsole {
    shared: std::sync::Weak<Shared>,
}

impl std::fmt::Debug for WeakConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakConsole").finish_non_exhaustive()
    }
}

impl WeakConsole {
    /// The console, unless every [`Console`] handle on it is gone.
    pub fn upgrade(&self) -> Option<Console> {
        self.shared.upgrade().map(|shared| Console { shared })
    }
}

impl Console {
    /// A handle that does not keep the console running.
    pub fn downgrade(&self) -> WeakConsole {
        WeakConsole {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Start the actor for one device on the current tokio runtime. `log` receives every chunk
    /// before anyone else (pass `None` to keep no record log).
    pub fn spawn(
        config: ConsoleConfig,
        connector: Arc<dyn Connector>,
        log: Option<Box<dyn RecordSink>>,
    ) -> Console {
        Self::spawn_with(config, connector, Consumers::new().maybe_log(log))
    }

    /// [`Console::spawn`] with its consumers: the record log (every chunk first, never skipped)
    /// and bounded consumers such as the scanner's feed (every output chunk, whether or not the
    /// log could write it, without ever slowing the console). See [`Consumers`].
    pub fn spawn_with(
        config: ConsoleConfig,
        connector: Arc<dyn Connector>,
        consumers: Consumers,
    ) -> Console {
        let (tx, rx) = mpsc::channel(64);
        let initial = if config.on_demand {
            LinkState::Idle
        } else {
            LinkState::Connecting { attempt: 1 }
        };
        let (state_tx, state_rx) = watch::channel(initial);
        let (modem_tx, modem_rx) = watch::channel(None);
        let (lines_tx, lines_rx) = watch::channel(Lines::default());
        let (log_tx, log_rx) = watch::channel(LogHealth::default());
        let name: Arc<str> = Arc::from(config.name.as_str());
        let config = Arc::new(config);
        let output = Arc::new(AtomicU64::new(0));
        let actor = actor::Actor::new(
            config.clone(),
            connector,
            consumers,
            rx,
            tx.downgrade(),
            actor::Outlets {
                state: state_tx,
                modem: modem_tx,
                lines: lines_tx,
                log_health: log_tx,
                output: output.clone(),
            },
        );
        tokio::spawn(actor.run());
        Console {
            shared: Arc::new(Shared {
                name,
                tx,
                state: state_rx,
                modem: modem_rx,
                lines: lines_rx,
                log: log_rx,
                output,
                config,
            }),
        }
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The settings the console was started with.
    pub fn config(&self) -> &ConsoleConfig {
        &self.shared.config
    }

    /// The link's current state.
    pub fn state(&self) -> LinkState {
        self.shared.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn watch_state(&self) -> watch::Receiver<LinkState> {
        self.shared.state.clone()
    }

    /// The device's modem lines as the link last reported them: `None` while the link is not up
    /// or does not report modem lines (only some drivers do, such as `rfc2217`). Every change is
    /// also announced to the viewers and the record log as a notice such as
    /// `modem: DCD down (carrier lost); DSR up, CTS up, RI off`.
    pub fn modem(&self) -> Option<ModemState> {
        *self.shared.modem.borrow()
    }

    /// DTR and RTS as mo last set them, and when they and the status lines last changed.
    pub fn lines(&self) -> Lines {
        *self.shared.lines.borrow()
    }

    /// Raise (`Some(true)`), drop (`Some(false)`) or toggle (`None`) DTR or RTS on behalf of
    /// `user` without attaching (the REST API, the SSH shell): allowed while the write lock is
    /// free or held (or joined) by one of `user`'s own viewers, otherwise [`Error::Conflict`]
    /// naming the holder; [`Error::Unsupported`] when the link has no modem lines. The change
    /// is recorded in the log (`DTR dropped by alice`); returns that text. The policy check is
    /// the caller's (action `break`).
    pub async fn set_signal_as(
        &self,
        user: &str,
        line: crate::link::Signal,
        to: Option<bool>,
    ) -> Result<String> {
        let user: Arc<str> = Arc::from(user);
        self.request(|reply| Request::SignalAs {
            user,
            line,
            to,
            reply,
        })
        .await?
    }

    /// A receiver that sees every change of [`Console::modem`].
    pub fn watch_modem(&self) -> watch::Receiver<Option<ModemState>> {
        self.shared.modem.clone()
    }

    /// Whether the record log is recording, and what it lost while it could not.
    pub fn log_health(&self) -> LogHealth {
        self.shared.log.borrow().clone()
    }

    /// A receiver that sees every change of [`Console::log_health`].
    pub fn watch_log(&self) -> watch::Receiver<LogHealth> {
        self.shared.log.clone()
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .tx
            .send(Box::new(make(reply)))
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())
    }

    fn gone(&self) -> Error {
        Error::ConsoleGone {
            device: self.shared.name.to_string(),
        }
    }

    /// Connect a viewer. `replay` is the number of recent lines to replay (default from the
    /// config). The returned session's [`Session::role`] says what it got.
    pub async fn attach(&self, user: &str, mode: Mode, replay: Option<usize>) -> Result<Session> {
        self.attach_from(user, "", mode, replay).await
    }

    /// [`Console::attach`] naming where the viewer comes from (shown by `who`).
    pub async fn attach_from(
        &self,
        user: &str,
        origin: &str,
        mode: Mode,
        replay: Option<usize>,
    ) -> Result<Session> {
        let user: Arc<str> = Arc::from(user);
        let origin: Arc<str> = Arc::from(origin);
        let attached = self
            .request(|reply| Request::Attach {
                user: user.clone(),
                origin,
                mode,
                replay,
                reply,
            })
            .await??;
        Ok(Session::new(self.clone(), user, attached))
    }

    /// Everyone connected, the write-lock holder first.
    pub async fn who(&self) -> Result<Vec<ViewerInfo>> {
        self.request(|reply| Request::Who { reply }).await
    }

    /// Output bytes the device has sent since the console started: the offset the next output
    /// chunk will carry ([`Chunk::offset`]). Read without asking the actor, so it costs nothing
    /// to poll; it counts a chunk once the record log has been given it.
    pub fn output_offset(&self) -> u64 {
        self.shared.output.load(Ordering::Relaxed)
    }

    /// The last `lines` lines of output.
    pub async fn replay(&self, lines: usize) -> Result<Bytes> {
        self.request(|reply| Request::Replay { lines, reply }).await
    }

    /// Write a record of `kind` (note, mark, power, event, …) into the console's timeline on behalf
    /// of `user`; viewers see it too. Returns its sequence number (the last one's, for a payload
    /// larger than one record holds, which is split). Notes longer than
    /// [`crate::log::MAX_NOTE_LEN`] are refused ([`Error::BadSpec`]); while the record log cannot
    /// write, this fails with [`Error::LogUnavailable`] (viewers still see the record).
    pub async fn record(
        &self,
        kind: RecordKind,
        user: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<u64> {
        let user: Arc<str> = Arc::from(user);
        let bytes = bytes.into();
        if kind == RecordKind::Note {
            crate::log::check_note_len(&bytes)?;
        }
        self.request(|reply| Request::Record {
            kind,
            user,
            bytes,
            reply,
        })
        .await?
    }

    /// Append records written elsewhere that the log lacks (in a site: what a node wrote while
    /// it was cut off, recovered when it returns): first `notice` as a notice (viewers see it),
    /// then each of `records` with its own time, kind, user and bytes but the log's next
    /// sequence numbers — into the log only (viewers and the scanner do not see them). Returns
    /// the sequence numbers of the notice and of the last record.
    pub async fn append_recovered(
        &self,
        notice: String,
        records: Vec<crate::log::Record>,
    ) -> Result<(u64, u64)> {
        self.request(|reply| Request::Recovered {
            notice,
            records,
            reply,
        })
        .await?
    }

    /// Log `bytes` as input typed by `user` somewhere the console does not see — on the local
    /// terminal of the console server holding the port (`mo-agent tty`) — which reached the
    /// device without passing through this console. It is recorded like a viewer's input (a
    /// secret typed at a password prompt is redacted the same way) and not sent to the link.
    pub async fn log_input(&self, user: &str, bytes: impl Into<Bytes>) -> Result<()> {
        self.shared
            .tx
            .send(Box::new(Request::TypedElsewhere {
                user: Arc::from(user),
                bytes: bytes.into(),
            }))
            .await
            .map_err(|_| self.gone())
    }

    /// Drop the link and connect again now (backoff reset).
    pub async fn reconnect(&self, user: &str) -> Result<()> {
        self.shared
            .tx
            .send(Box::new(Request::Reconnect {
                user: Arc::from(user),
            }))
            .await
            .map_err(|_| self.gone())
    }

    /// A cursor on the viewers' ring from now on, without taking part in sharing (for metrics
    /// and other lossy observers; a consumer that must see every output byte, or count what it
    /// skipped, is a [`BoundedConsumer`]). Lagging subscribers get `RecvError::Lagged` like any
    /// broadcast receiver.
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Arc<Chunk>>> {
        self.request(|reply| Request::Subscribe { reply }).await
    }

    /// Apply the record log's retention limits now (see
    /// [`crate::record::RecordSink::apply_retention`]) and say what was removed. Rotation prunes
    /// too, but a quiet console never rotates: its owner calls this periodically.
    pub async fn apply_retention(&self) -> Result<crate::log::Pruned> {
        self.request(|reply| Request::ApplyRetention { reply })
            .await?
    }

    /// Stop the actor: viewers get a notice and then [`ViewerEvent::Closed`].
    pub async fn shutdown(&self) {
        let _ = self.shared.tx.send(Box::new(Request::Shutdown)).await;
    }

    fn send_detach(&self, id: ViewerId) {
        let req = Box::new(Request::Detach { id });
        match self.shared.tx.try_send(req) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(req)) => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let tx = self.shared.tx.clone();
                    handle.spawn(async move {
                        let _ = tx.send(req).await;
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod log_fault_tests;
