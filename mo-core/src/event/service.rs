//! The running event subsystem, as the daemon and embedding programs use it: scanners on the
//! consoles, a bounded channel of candidate events, and the [`EventManager`] task that decides
//! what becomes an event, writes each new event into its device's record log and hands it to an
//! [`EventSink`] to keep and act on.
//!
//! What mo-core cannot do itself — keeping events in a store, running actions (webhooks, exec,
//! power) — is the sink's job, so this module depends on no other mo crate.
//!
//! ```
//! use std::sync::Arc;
//! use mo_core::console::ConsoleConfig;
//! use mo_core::event::{EventService, EventSource, NoSink, Rules};
//! use mo_core::link::EchoConnector;
//! use mo_core::scan::{Pattern, PatternBook, Severity};
//!
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! let patterns = PatternBook::for_every_device(vec![Pattern::new(
//!     "panic", "Kernel panic", Severity::Critical, "",
//! )])?;
//! let events = EventService::start(Rules::default(), patterns, Arc::new(NoSink), 1);
//! let mut raised = events.subscribe();
//! let console = events.spawn_console(ConsoleConfig::new("web01"), Arc::new(EchoConnector), None);
//! # let mut state = console.watch_state();
//! # state.wait_for(|s| s.word() == "up").await.ok();
//! let me = console.attach("alice", mo_core::console::Mode::Attach, None).await?;
//! me.write(b"Kernel panic - not syncing\n").await?; // the echo device prints it back
//! // The link coming up is an event too; the pattern's match follows.
//! let event = loop {
//!     let event = raised.recv().await.unwrap();
//!     if event.source == EventSource::Pattern {
//!         break event;
//!     }
//! };
//! assert_eq!(event.message, "Kernel panic - not syncing");
//! assert_eq!(event.device, "web01");
//! # Ok::<(), mo_core::Error>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::watch::watch_console;
use super::{
    ActionRef, Candidate, Event, EventManager, MaintenanceWindow, PendingEscalation, Rules, StoreOp,
};
use crate::console::{
    Console, ConsoleConfig, ConsumerFeed, Consumers, Follow, WeakConsole, bounded_consumer_bytes,
};
use crate::link::Connector;
use crate::record::{RecordKind, RecordSink};
use crate::scan::PatternBook;

/// Candidate events waiting for the manager. Scanners wait when it is full (their feeds then skip
/// output, counted); other sources drop the candidate with a warning.
pub const CANDIDATE_CAPACITY: usize = 4096;

/// Output a console's scanner holds before it skips, in bytes (payload plus
/// [`crate::console::CHUNK_OVERHEAD`] per chunk): a burst of a few hundred kilobytes is scanned
/// whole however busy the machine is, and a stalled scanner holds at most this much per console.
pub const SCANNER_CAPACITY: usize = 1 << 20;

/// How often coalesced duplicate counts are handed to the sink.
const COUNT_FLUSH: Duration = Duration::from_millis(500);

/// New events a subscriber may fall behind by before it misses some.
const SUBSCRIBER_CAPACITY: usize = 256;

/// Where events go once the manager decided on them: kept (a store) and acted on. Every method
/// runs on the manager task, in order; none should wait long (spawn slow work). A sink reports
/// its own failures (the manager goes on either way).
pub trait EventSink: Send + Sync + 'static {
    /// Keep a new event (the manager numbered it).
    fn insert(&self, event: &Event);
    /// Event `id` happened again: its absolute count and last time (coalesced, last wins).
    fn update_count(&self, id: u64, count: u64, last_ns: i64);
    /// Event `id` as kept, for the actions held until it was acknowledged.
    fn get(&self, id: u64) -> Option<Event>;
    /// Run the action a rule named for `event` (spawn it; do not wait for it).
    fn run_action(&self, action: &ActionRef, event: &Event);
    /// The escalation steps kept before a restart, taken once when the manager starts
    /// (default: none).
    fn load_escalations(&self) -> Vec<PendingEscalation> {
        Vec::new()
    }
    /// The pending escalation steps changed: keep `pending` (all of them) over a restart
    /// (default: not kept).
    fn save_escalations(&self, pending: &[PendingEscalation]) {
        let _ = pending;
    }
}

/// A sink that keeps nothing and runs no action: events only reach
/// [`EventService::subscribe`] and the consoles' record logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

impl EventSink for NoSink {
    fn insert(&self, _event: &Event) {}
    fn update_count(&self, _id: u64, _count: u64, _last_ns: i64) {}
    fn get(&self, _id: u64) -> Option<Event> {
        None
    }
    fn run_action(&self, _action: &ActionRef, _event: &Event) {}
}

/// The consoles being watched, by device name, each with the number of its watch (a restarted
/// console replaces its entry; the old watch ending does not remove the new one).
type Watched = Mutex<HashMap<String, (u64, WeakConsole)>>;

struct Inner {
    tx: mpsc::Sender<Candidate>,
    /// Candidates dropped because the manager was behind.
    dropped: AtomicU64,
    acks: mpsc::UnboundedSender<Control>,
    /// The patterns in force; each console's watch follows a change ([`EventService::reload`]).
    patterns: watch::Sender<Arc<PatternBook>>,
    /// New rules for the manager task.
    rules: mpsc::UnboundedSender<Rules>,
    consoles: Arc<Watched>,
    next_watch: AtomicU64,
    raised: broadcast::Sender<Event>,
    /// The manager's id counter ([`EventManager::ids`]).
    ids: Arc<AtomicU64>,
}

/// The running event subsystem. Cheap to clone; the manager task ends once every clone and every
/// watched console is gone.
#[derive(Clone)]
pub struct EventService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventService")
            .field("patterns", &self.inner.patterns.borrow().len())
            .finish_non_exhaustive()
    }
}

impl EventService {
    /// Start the manager task on the current tokio runtime, numbering events from `next_id`
    /// (one past the last kept). Consoles are added with [`EventService::spawn_console`] or
    /// [`EventService::watch`].
    pub fn start(
        rules: Rules,
        patterns: PatternBook,
        sink: Arc<dyn EventSink>,
        next_id: u64,
    ) -> EventService {
        let (tx, rx) = mpsc::channel(CANDIDATE_CAPACITY);
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let (new_rules, rules_rx) = mpsc::unbounded_channel();
        let (raised, _) = broadcast::channel(SUBSCRIBER_CAPACITY);
        let consoles: Arc<Watched> = Arc::default();
        let manager = EventManager::new(rules).with_next_id(next_id);
        let ids = manager.ids();
        let manager = Manager {
            manager,
            sink,
            consoles: consoles.clone(),
            raised: raised.clone(),
            saved_escalations: 0,
        };
        tokio::spawn(manager.run(rx, ack_rx, rules_rx));
        EventService {
            inner: Arc::new(Inner {
                tx,
                dropped: AtomicU64::new(0),
                acks,
                patterns: watch::Sender::new(Arc::new(patterns)),
                rules: new_rules,
                consoles,
                next_watch: AtomicU64::new(1),
                raised,
                ids,
            }),
        }
    }

    /// A bounded consumer for a console's scanner: give the first half to
    /// [`Consumers::bounded`] and the second to [`EventService::watch`]. It follows the whole
    /// timeline: output is scanned, a console-loop notice becomes an event.
    pub fn scanner_consumer() -> (crate::console::BoundedConsumer, ConsumerFeed) {
        bounded_consumer_bytes(SCANNER_CAPACITY, Follow::Timeline)
    }

    /// Start a console with a scanner on its output and watch it, as the daemon does: `log`
    /// (if any) is its record log.
    pub fn spawn_console(
        &self,
        config: ConsoleConfig,
        connector: Arc<dyn Connector>,
        log: Option<Box<dyn RecordSink>>,
    ) -> Console {
        let (scanner, feed) = Self::scanner_consumer();
        let consumers = Consumers::new().maybe_log(log).bounded(scanner);
        let console = Console::spawn_with(config, connector, consumers);
        self.watch(&console, feed);
        console
    }

    /// Watch `console` until it stops: scan its output from `feed` (see
    /// [`EventService::scanner_consumer`]) with the patterns that apply to its name, and report
    /// its link and record-log changes. Its events are written into its record log.
    pub fn watch(&self, console: &Console, feed: ConsumerFeed) {
        let device = console.name().to_owned();
        let books = self.inner.patterns.subscribe();
        let number = self.inner.next_watch.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.inner.consoles.lock() {
            map.insert(device.clone(), (number, console.downgrade()));
        }
        let consoles = self.inner.consoles.clone();
        let watching = watch_console(console.clone(), feed, books, self.inner.tx.clone());
        tokio::spawn(async move {
            watching.await;
            if let Ok(mut map) = consoles.lock()
                && map.get(&device).is_some_and(|(n, _)| *n == number)
            {
                map.remove(&device);
            }
        });
    }

    /// Offer a candidate event (power changes, file changes, …); never waits. Dropped, with a
    /// warning and counted, when the manager is behind.
    pub fn offer(&self, candidate: Candidate) {
        if let Err(mpsc::error::TrySendError::Full(c)) = self.inner.tx.try_send(candidate) {
            let n = self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(device = %c.device, dropped = n + 1, "event manager behind: candidate event dropped: {}", c.message);
        }
    }

    /// The candidate channel itself, for producers that may wait (file watchers).
    pub fn candidates(&self) -> mpsc::Sender<Candidate> {
        self.inner.tx.clone()
    }

    /// Take an event id the manager will never give (for an event stored beside the manager's
    /// that never reaches it, e.g. a copy of another site node's event).
    pub fn take_id(&self) -> u64 {
        self.inner.ids.fetch_add(1, Ordering::SeqCst)
    }

    /// Candidate events dropped so far because the manager was behind.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Put new patterns and rules in force (a configuration reload) without stopping anything:
    /// every watched console scans with the new patterns from its next output on (a line it
    /// was in the middle of is scanned with the old ones first), and the manager keeps its open
    /// events, held actions and rate-limit history (see [`EventManager::set_rules`]).
    pub fn reload(&self, rules: Rules, patterns: PatternBook) {
        let _ = self.inner.rules.send(rules);
        self.inner.patterns.send_replace(Arc::new(patterns));
    }

    /// Event `id` was acknowledged (the caller recorded who and when): the actions its rules
    /// held until then run now.
    pub fn acknowledged(&self, id: u64) {
        let _ = self.inner.acks.send(Control::Ack(id));
    }

    /// Start maintenance window `window` now (replacing one of the same name, from the
    /// configuration or from an earlier call): the events of the devices it covers are stored,
    /// marked suppressed, and run no action while it lasts.
    pub fn add_maintenance(&self, window: MaintenanceWindow) {
        let _ = self.inner.acks.send(Control::AddMaintenance(window));
    }

    /// End maintenance window `name` now (nothing if there is none).
    pub fn remove_maintenance(&self, name: &str) {
        let _ = self
            .inner
            .acks
            .send(Control::RemoveMaintenance(name.to_owned()));
    }

    /// Every new event from now on, as the sink got it (a subscriber that falls more than 256
    /// events behind gets `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.raised.subscribe()
    }
}

/// What the service's handles ask of the manager task, in order.
enum Control {
    /// Event `id` was acknowledged.
    Ack(u64),
    /// Start a maintenance window.
    AddMaintenance(MaintenanceWindow),
    /// End a maintenance window, by name.
    RemoveMaintenance(String),
}

/// The manager task's state.
struct Manager {
    manager: EventManager,
    sink: Arc<dyn EventSink>,
    consoles: Arc<Watched>,
    raised: broadcast::Sender<Event>,
    /// The escalation version last handed to [`EventSink::save_escalations`].
    saved_escalations: u64,
}

impl Manager {
    /// Hand the sink the pending escalation steps if they changed since it last got them.
    fn keep_escalations(&mut self) {
        let version = self.manager.escalations_version();
        if version != self.saved_escalations {
            self.saved_escalations = version;
            self.sink.save_escalations(&self.manager.pending());
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Candidate>,
        mut acks: mpsc::UnboundedReceiver<Control>,
        mut rules: mpsc::UnboundedReceiver<Rules>,
    ) {
        let mut counts: BTreeMap<u64, (u64, i64)> = BTreeMap::new();
        let mut flush = tokio::time::interval(COUNT_FLUSH);
        let kept = self.sink.load_escalations();
        if !kept.is_empty() {
            self.manager.restore(kept);
        }
        self.saved_escalations = self.manager.escalations_version();
        loop {
            self.keep_escalations();
            tokio::select! {
                candidate = rx.recv() => {
                    let Some(candidate) = candidate else { break };
                    let decision = self.manager.offer(candidate, now_offset());
                    match decision.store {
                        StoreOp::Insert(event) => {
                            // Its escalation steps are kept before the event can be seen.
                            self.keep_escalations();
                            self.sink.insert(&event);
                            self.record(&event, decision.suppressed).await;
                            for action in &decision.actions {
                                self.sink.run_action(action, &event);
                            }
                            let _ = self.raised.send(event);
                        }
                        StoreOp::UpdateCount { id, count, last_ns } => {
                            counts.insert(id, (count, last_ns));
                        }
                    }
                }
                Some(new) = rules.recv() => self.manager.set_rules(new),
                Some(control) = acks.recv() => {
                    let id = match control {
                        Control::Ack(id) => id,
                        Control::AddMaintenance(window) => {
                            self.manager.add_maintenance(window);
                            continue;
                        }
                        Control::RemoveMaintenance(name) => {
                            self.manager.remove_maintenance(&name);
                            continue;
                        }
                    };
                    let held = self.manager.ack(id);
                    if held.is_empty() {
                        continue;
                    }
                    if let Some(event) = self.sink.get(id) {
                        for action in &held {
                            self.sink.run_action(action, &event);
                        }
                    }
                }
                _ = flush.tick() => {
                    for (id, (count, last_ns)) in std::mem::take(&mut counts) {
                        self.sink.update_count(id, count, last_ns);
                    }
                }
                () = until_ns(self.manager.next_escalation()) => self.escalate().await,
            }
        }
        for (id, (count, last_ns)) in counts {
            self.sink.update_count(id, count, last_ns);
        }
    }

    /// Run the escalation steps now due (their events were not acknowledged), each noted in its
    /// device's record log.
    async fn escalate(&mut self) {
        for (id, actions) in self.manager.due_escalations(now_offset()) {
            let Some(event) = self.sink.get(id) else {
                continue;
            };
            if event.acked_by.is_some() {
                continue;
            }
            if let Some(console) = self.console(&event.device) {
                let names: Vec<&str> = actions.iter().map(|a| a.action.as_str()).collect();
                let text = format!(
                    "event #{id} escalated (not acknowledged): {}",
                    names.join(", ")
                );
                let _ = console.record(RecordKind::Event, "", text).await;
            }
            for action in &actions {
                self.sink.run_action(action, &event);
            }
        }
    }

    fn console(&self, device: &str) -> Option<Console> {
        self.consoles
            .lock()
            .ok()
            .and_then(|m| m.get(device).and_then(|(_, c)| c.upgrade()))
    }

    /// Write the event into its device's record log, where the console timeline shows it.
    async fn record(&self, event: &Event, suppressed: bool) {
        let console = self
            .consoles
            .lock()
            .ok()
            .and_then(|m| m.get(&event.device).and_then(|(_, c)| c.upgrade()));
        let Some(console) = console else { return };
        let text = format!(
            "event #{} [{}] {}{}",
            event.id,
            event.severity,
            event.message,
            if suppressed {
                " (maintenance: actions suppressed)"
            } else {
                ""
            }
        );
        let _ = console.record(RecordKind::Event, "", text).await;
    }
}

/// Wait until `at` (ns since the Unix epoch, wall clock); forever for `None`.
async fn until_ns(at: Option<i64>) {
    let Some(at) = at else {
        return std::future::pending().await;
    };
    let now = i64::try_from(crate::record::now_ns()).unwrap_or(i64::MAX);
    let wait = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
    tokio::time::sleep(Duration::from_nanos(wait)).await;
}

/// Now, in UTC: a daemon cannot learn the local offset safely once threads run, so schedules are
/// evaluated in UTC (docs/events.md says so).
fn now_offset() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
