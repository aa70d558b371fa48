//! Watching the consoles: every running console's output goes through a scanner, every match and
//! every link change becomes a candidate for the event manager, whose decisions are stored,
//! written into the device's record log and acted on (DESIGN.md §4).
//!
//! Configuration (`mod --events FILE`, TOML; without it the built-in patterns apply and no
//! actions run):
//!
//! ```toml
//! [[pattern]]                 # replaces the built-in patterns when any is given
//! name = "kernel-panic"
//! regex = 'Kernel panic - not syncing'
//! severity = "critical"       # info, notice, warning, error, critical
//! message = ""                # template; empty = the matched line
//! devices = ["web*"]          # optional device-name globs (default: every device)
//!
//! [rules]                     # the event manager: dedup, rate limits, maintenance, schedules
//! dedup_window = "60s"
//! [[rules.rule]]
//! name = "page-on-panic"
//! min_severity = "critical"
//! actions = ["pager"]
//!
//! [actions.pager]             # exec, webhook, syslog, snmp_trap
//! kind = "webhook"
//! url = "http://127.0.0.1:9000/hook"
//!
//! [[watch]]                   # file-change monitor (see crate::watch): events with source `file`
//! profile = "cert"
//! paths = ["/srv/app/app.conf"]
//! interval = "30s"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mo_core::console::{Console, LinkState};
use mo_core::event::{Candidate, Event, EventManager, EventSource, Rules, RulesConfig, StoreOp};
use mo_core::record::{RecordKind, now_ns};
use mo_core::scan::{Pattern, PatternSet, ScanConfig, Scanner, Severity};
use mo_drivers::action::{Action, ActionConfig, run_action};
use mo_store::Store;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::registry::Registry;

/// Candidate events waiting for the manager. Scanners wait when it is full (their taps then skip
/// output, counted); other sources drop the candidate with a warning.
const CANDIDATE_CAPACITY: usize = 4096;

/// How often coalesced duplicate counts are written to the store.
const COUNT_FLUSH: Duration = Duration::from_millis(500);

/// A pattern as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternConfig {
    name: String,
    regex: String,
    #[serde(default = "default_severity")]
    severity: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    devices: Vec<String>,
}

fn default_severity() -> String {
    "warning".into()
}

/// The whole `--events` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default, rename = "pattern")]
    patterns: Vec<PatternConfig>,
    #[serde(default)]
    rules: RulesConfig,
    #[serde(default)]
    actions: BTreeMap<String, ActionConfig>,
    #[serde(default, rename = "watch")]
    watches: Vec<crate::watch::WatchConfig>,
}

/// The patterns every daemon watches for unless its configuration names its own.
fn builtin_patterns() -> Vec<PatternConfig> {
    let p = |name: &str, regex: &str, severity: &str| PatternConfig {
        name: name.into(),
        regex: regex.into(),
        severity: severity.into(),
        message: String::new(),
        devices: Vec::new(),
    };
    vec![
        p("kernel-panic", r"Kernel panic - not syncing", "critical"),
        p("kernel-oops", r"\b(Oops|BUG): ", "error"),
        p("soft-lockup", r"watchdog: BUG: soft lockup", "error"),
        p("oom-kill", r"Out of memory: Killed process", "error"),
        p("io-error", r"\bI/O error\b", "warning"),
        p("segfault", r"\bsegfault at\b", "warning"),
    ]
}

/// The loaded configuration: patterns (with their device filters), rules and actions.
pub struct EventConfig {
    patterns: Vec<(Pattern, Vec<String>)>,
    rules: Rules,
    actions: BTreeMap<String, Arc<Action>>,
    watches: Vec<crate::watch::Watch>,
}

impl EventConfig {
    /// Load `path`, or the built-in patterns without rules when `None`. Every error names the
    /// file and what is wrong; a bad regex is refused here, never at match time.
    pub fn load(path: Option<&Path>) -> anyhow::Result<EventConfig> {
        let (file, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                let file: FileConfig = toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                (file, path.display().to_string())
            }
            None => (FileConfig::default(), "built-in event configuration".into()),
        };
        let pattern_configs = if file.patterns.is_empty() {
            builtin_patterns()
        } else {
            file.patterns
        };
        let mut patterns = Vec::new();
        for p in pattern_configs {
            let severity: Severity = p
                .severity
                .parse()
                .map_err(|e| anyhow::anyhow!("{origin}: pattern `{}`: {e}", p.name))?;
            patterns.push((
                Pattern::new(p.name, p.regex, severity, p.message),
                p.devices,
            ));
        }
        // Compile once now so a bad pattern stops the daemon at start.
        let all: Vec<Pattern> = patterns.iter().map(|(p, _)| p.clone()).collect();
        PatternSet::new(&all).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let rules =
            Rules::from_config(&file.rules).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let mut actions = BTreeMap::new();
        for (name, cfg) in &file.actions {
            let action =
                Action::from_config(name, cfg).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            actions.insert(name.clone(), Arc::new(action));
        }
        for name in rules.action_names() {
            if !actions.contains_key(name) {
                anyhow::bail!(
                    "{origin}: a rule names the action `{name}`, which is not defined under [actions]"
                );
            }
        }
        let watches = file
            .watches
            .iter()
            .enumerate()
            .map(|(i, w)| crate::watch::Watch::from_config(i, w, &origin))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(EventConfig {
            patterns,
            rules,
            actions,
            watches,
        })
    }

    /// The compiled pattern set for `device` (patterns whose device globs match it).
    fn set_for(
        &self,
        device: &str,
        cache: &mut HashMap<Vec<usize>, PatternSet>,
    ) -> Option<PatternSet> {
        let chosen: Vec<usize> = self
            .patterns
            .iter()
            .enumerate()
            .filter(|(_, (_, globs))| {
                globs.is_empty() || globs.iter().any(|g| mo_core::event::glob_match(g, device))
            })
            .map(|(i, _)| i)
            .collect();
        if chosen.is_empty() {
            return None;
        }
        if let Some(set) = cache.get(&chosen) {
            return Some(set.clone());
        }
        let patterns: Vec<Pattern> = chosen.iter().map(|&i| self.patterns[i].0.clone()).collect();
        let set = PatternSet::new(&patterns).ok()?;
        cache.insert(chosen, set.clone());
        Some(set)
    }
}

/// The running event subsystem.
pub struct Events {
    tx: mpsc::Sender<Candidate>,
    /// Candidates dropped because the manager was behind.
    dropped: std::sync::atomic::AtomicU64,
    acks: mpsc::UnboundedSender<u64>,
    store: Store,
    config: Arc<EventConfig>,
    sets: Mutex<HashMap<Vec<usize>, PatternSet>>,
}

impl Events {
    /// Start the manager task; consoles are added with [`Events::watch`].
    pub fn start(
        config: EventConfig,
        store: Store,
        registry: Arc<Registry>,
    ) -> anyhow::Result<Arc<Events>> {
        let next_id = store.next_event_id()?;
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel(CANDIDATE_CAPACITY);
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let manager = EventManager::new(config.rules.clone()).with_next_id(next_id);
        for watch in &config.watches {
            crate::watch::spawn(watch.clone(), tx.clone());
        }
        tokio::spawn(run_manager(
            manager,
            rx,
            ack_rx,
            store.clone(),
            registry,
            config.clone(),
        ));
        Ok(Arc::new(Events {
            tx,
            dropped: std::sync::atomic::AtomicU64::new(0),
            acks,
            store,
            config,
            sets: Mutex::new(HashMap::new()),
        }))
    }

    /// Acknowledge event `id` as `user`: stored, and actions held for acknowledgement run.
    /// `Ok(false)` when it was acknowledged before.
    pub fn ack(&self, id: u64, user: &str) -> mo_store::Result<bool> {
        let done = self.store.ack_event(id, user, now_i64())?;
        if done {
            let _ = self.acks.send(id);
        }
        Ok(done)
    }

    /// Offer a candidate event (power changes, file changes, …).
    pub fn offer(&self, candidate: Candidate) {
        if let Err(mpsc::error::TrySendError::Full(c)) = self.tx.try_send(candidate) {
            let n = self
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(device = %c.device, dropped = n + 1, "event manager behind: candidate event dropped: {}", c.message);
        }
    }

    /// Candidate events dropped so far because the manager was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Scan `console`'s output (every chunk, from its tap) and follow its link state until it
    /// stops.
    pub fn watch(self: &Arc<Self>, device: String, console: Console, tap: crate::registry::Tap) {
        let set = self
            .sets
            .lock()
            .ok()
            .and_then(|mut cache| self.config.set_for(&device, &mut cache));
        let tx = self.tx.clone();
        tokio::spawn(watch_console(device, console, tap, set, tx));
    }
}

async fn watch_console(
    device: String,
    console: Console,
    mut output: crate::registry::Tap,
    set: Option<PatternSet>,
    tx: mpsc::Sender<Candidate>,
) {
    let mut state = console.watch_state();
    let mut log = console.watch_log();
    let mut log_degraded = log.borrow_and_update().degraded.is_some();
    let mut log_open = true;
    let mut scanner = set.map(|s| Scanner::with_set(device.clone(), s, ScanConfig::default()));
    let mut was_up = matches!(*state.borrow(), LinkState::Up { .. });
    if was_up {
        let _ = tx
            .send(Candidate::new(
                device.clone(),
                EventSource::Connection,
                Severity::Info,
                "link up",
            ))
            .await;
    }
    loop {
        let deadline = scanner.as_ref().and_then(Scanner::next_deadline);
        let idle = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = output.recv() => match item {
                Some(item) => {
                    let mut found = Vec::new();
                    if item.skipped_before > 0 {
                        if let Some(s) = scanner.as_mut() {
                            // What was before the skip is not the start of what follows.
                            found.extend(s.flush());
                        }
                        let _ = tx.send(Candidate::new(
                            device.clone(),
                            EventSource::Log,
                            Severity::Warning,
                            format!(
                                "scanner fell behind: {} bytes of output were not scanned \
                                 (the record log has them; {} skipped in all)",
                                item.skipped_before,
                                output.skipped_total()
                            ),
                        )).await;
                    }
                    if let Some(s) = scanner.as_mut() {
                        found.extend(s.feed(&item.chunk.bytes, Instant::now()));
                    }
                    for m in found {
                        if tx.send(Candidate::from_match(device.clone(), &m, now_i64())).await.is_err() {
                            return;
                        }
                    }
                }
                None => return,
            },
            () = idle => {
                if let Some(s) = scanner.as_mut() {
                    for found in s.poll_idle(Instant::now()) {
                        let _ = tx.send(Candidate::from_match(device.clone(), &found, now_i64())).await;
                    }
                }
            }
            changed = log.changed(), if log_open => {
                if changed.is_err() {
                    // The console stopped; the tap still drains and the state watch ends this.
                    log_open = false;
                    continue;
                }
                let health = log.borrow_and_update().clone();
                match (&health.degraded, log_degraded) {
                    (Some(d), false) => {
                        log_degraded = true;
                        let _ = tx.send(Candidate::new(
                            device.clone(),
                            EventSource::Log,
                            Severity::Error,
                            format!("record log cannot write: {}", d.error),
                        )).await;
                    }
                    (None, true) => {
                        log_degraded = false;
                        let _ = tx.send(Candidate::new(
                            device.clone(),
                            EventSource::Log,
                            Severity::Notice,
                            "record log writes again (the loss is recorded as a gap)",
                        )).await;
                    }
                    _ => {}
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = state.borrow().clone();
                match now {
                    LinkState::Up { .. } if !was_up => {
                        was_up = true;
                        let _ = tx.send(Candidate::new(device.clone(), EventSource::Connection, Severity::Info, "link up")).await;
                    }
                    LinkState::Down { reason, .. } => {
                        if was_up {
                            let _ = tx.send(Candidate::new(
                                device.clone(),
                                EventSource::Connection,
                                Severity::Warning,
                                format!("link down: {reason}"),
                            )).await;
                        }
                        was_up = false;
                    }
                    LinkState::Stopped => return,
                    _ => {}
                }
            }
        }
    }
}

fn now_i64() -> i64 {
    i64::try_from(now_ns()).unwrap_or(i64::MAX)
}

/// Now, in UTC: the daemon cannot learn the local offset safely once threads run, so
/// schedules are evaluated in UTC (docs/events.md says so).
fn now_offset() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

async fn run_manager(
    mut manager: EventManager,
    mut rx: mpsc::Receiver<Candidate>,
    mut acks: mpsc::UnboundedReceiver<u64>,
    store: Store,
    registry: Arc<Registry>,
    config: Arc<EventConfig>,
) {
    let mut counts: BTreeMap<u64, (u64, i64)> = BTreeMap::new();
    let mut flush = tokio::time::interval(COUNT_FLUSH);
    loop {
        tokio::select! {
            candidate = rx.recv() => {
                let Some(mut candidate) = candidate else { break };
                if candidate.groups.is_empty() {
                    candidate.groups = Vec::new();
                }
                let decision = manager.offer(candidate, now_offset());
                match decision.store {
                    StoreOp::Insert(event) => {
                        if let Err(e) = store.insert_event(&event) {
                            tracing::error!("cannot store event: {e}");
                        }
                        record_event(&registry, &event, decision.suppressed).await;
                        for action in &decision.actions {
                            if let Some(run) = config.actions.get(&action.action) {
                                spawn_action(run.clone(), event.clone(), action.rule.clone(), registry.clone());
                            }
                        }
                    }
                    StoreOp::UpdateCount { id, count, last_ns } => {
                        counts.insert(id, (count, last_ns));
                    }
                }
            }
            Some(id) = acks.recv() => {
                let held = manager.ack(id);
                if held.is_empty() {
                    continue;
                }
                if let Ok(Some(event)) = store.event(id) {
                    for action in held {
                        if let Some(run) = config.actions.get(&action.action) {
                            spawn_action(run.clone(), event.clone(), action.rule.clone(), registry.clone());
                        }
                    }
                }
            }
            _ = flush.tick() => {
                for (id, (count, last_ns)) in std::mem::take(&mut counts) {
                    if let Err(e) = store.update_event_count(id, count, last_ns) {
                        tracing::error!("cannot update event {id}: {e}");
                    }
                }
            }
        }
    }
    for (id, (count, last_ns)) in counts {
        let _ = store.update_event_count(id, count, last_ns);
    }
}

/// Write the event into its device's record log, where the console timeline shows it.
async fn record_event(registry: &Registry, event: &Event, suppressed: bool) {
    if let Some(console) = registry.get(&event.device).and_then(|e| e.console) {
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

fn spawn_action(action: Arc<Action>, event: Event, rule: String, registry: Arc<Registry>) {
    tokio::spawn(async move {
        // Power actions are handed back by the action runner: mo switches the event's device
        // itself (rules only allow them after an operator acknowledged the event).
        if let Action::Power(power) = &*action {
            let Some(entry) = registry.get(&event.device) else {
                tracing::error!(
                    event = event.id,
                    rule,
                    "power action: unknown device {}",
                    event.device
                );
                return;
            };
            let who = format!("event #{}", event.id);
            for r in crate::power::perform(&[entry], *power, &who, |_| {}).await {
                if r.ok {
                    tracing::info!(event = event.id, rule, "power action: {}", r.line);
                } else {
                    tracing::error!(event = event.id, rule, "power action: {}", r.line);
                }
            }
            return;
        }
        match run_action(&action, &event).await {
            Ok(outcome) => tracing::info!(event = event.id, rule, "action done: {outcome:?}"),
            Err(e) => tracing::error!(event = event.id, rule, "action failed: {e}"),
        }
    });
}
