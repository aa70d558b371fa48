//! The daemon's wiring of the event subsystem ([`mo_core::event::EventService`], which scans the
//! consoles and runs the event manager): events are kept in the store and acted on with
//! `mo_drivers::action` (power actions through the registry), file watches feed it.
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
//! [actions.pager]             # exec, webhook, syslog, snmp_trap (v2c or v3), macro, power
//! kind = "webhook"
//! url = "http://127.0.0.1:9000/hook"
//!
//! [[journal]]                 # the systemd journal (journalctl -f -o json), like [[logfile]]
//! unit = "nginx.service"
//!
//! [[watch]]                   # file-change monitor (see crate::watch): events with source `file`
//! profile = "cert"
//! paths = ["/srv/app/app.conf"]
//! interval = "30s"
//! ```

use mo_core::event::JournalStream;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use mo_core::console::{Console, ConsumerFeed};
use mo_core::event::{
    ActionRef, Candidate, Event, EventService, EventSink, EventsFile, Journal, Logfile,
    LogfileTask, PendingEscalation, Rules,
};
use mo_core::scan::{PatternBook, PatternSet};
use mo_drivers::action::{ActionConfig, EventAction, run_action_for};
use mo_store::Store;

use crate::event_macro::MacroActions;
use crate::registry::Registry;
use crate::watch::{Watch, WatchConfig, WatchTask};

/// The loaded configuration: patterns (with their device filters), rules, actions and watches.
pub struct EventConfig {
    patterns: PatternBook,
    rules: Rules,
    actions: BTreeMap<String, Arc<EventAction>>,
    watches: Vec<Watch>,
    /// The patterns as written (built-in ones when none), for macro actions' arguments.
    pattern_configs: Vec<mo_core::scan::PatternConfig>,
    /// Rule name to the identity its macro actions play as.
    rule_users: BTreeMap<String, String>,
    /// The maintenance windows of the file, for listing.
    maintenance: Vec<mo_core::event::MaintenanceConfig>,
    /// `[[logfile]]`: system log files to scan.
    logfiles: Vec<Logfile>,
    /// `[[journal]]`: the systemd journal to scan.
    journals: Vec<Journal>,
}

impl EventConfig {
    /// Load `path`, or the built-in patterns without rules when `None`. Every error names the
    /// file and what is wrong; a bad regex is refused here, never at match time.
    pub fn load(path: Option<&Path>) -> anyhow::Result<EventConfig> {
        let (file, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                let file: EventsFile<ActionConfig, WatchConfig> = toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                (file, path.display().to_string())
            }
            None => (EventsFile::default(), "built-in event configuration".into()),
        };
        let (patterns, rules) = file
            .compile()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let mut actions = BTreeMap::new();
        for (name, cfg) in &file.actions {
            let action = EventAction::from_config(name, cfg)
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            actions.insert(name.clone(), Arc::new(action));
        }
        let watches = file
            .watches
            .iter()
            .enumerate()
            .map(|(i, w)| Watch::from_config(i, w, &origin))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let logfiles = file
            .logfiles
            .iter()
            .map(|c| {
                Logfile::from_config(c).map_err(|e| anyhow::anyhow!("{origin}: [[logfile]]: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let journals = file
            .journals
            .iter()
            .map(|c| Journal::from_config(c).map_err(|e| anyhow::anyhow!("{origin}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rule_users = macro_rule_users(&file.rules.rules, &actions)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let pattern_configs = if file.patterns.is_empty() {
            mo_core::scan::builtin_patterns()
        } else {
            file.patterns.clone()
        };
        Ok(EventConfig {
            patterns,
            rules,
            actions,
            watches,
            pattern_configs,
            rule_users,
            maintenance: file.rules.maintenance.clone(),
            logfiles,
            journals,
        })
    }
}

/// Where the `[[logfile]]` offsets are kept: `DATA/logfiles/` (created; none if it cannot be).
fn logfile_state_dir(store: &Store) -> Option<PathBuf> {
    let dir = store.path().parent()?.join("logfiles");
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::warn!(
                "cannot create {}: {e}; log file offsets are not saved",
                dir.display()
            );
            None
        }
    }
}

/// What the events file started besides patterns and rules, each with the entry it runs.
#[derive(Default)]
struct Sources {
    watches: Vec<(Watch, WatchTask)>,
    logfiles: Vec<(Logfile, LogfileTask)>,
    journals: Vec<(Journal, JournalTask)>,
}

/// A running `[[journal]]` entry: its patterns, and the task (stopped, with its `journalctl`,
/// when dropped).
struct JournalTask {
    patterns: tokio::sync::watch::Sender<Option<PatternSet>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JournalTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Running entries of one kind sorted out against the entries a reloaded file lists.
struct Sorted<C, T> {
    /// Listed unchanged: they run on.
    kept: Vec<(C, T)>,
    /// Not listed any more (or changed): to stop.
    stop: Vec<(C, T)>,
    /// Listed and not running: to start.
    start: Vec<C>,
}

impl<C: PartialEq, T> Sorted<C, T> {
    /// Sort `running` out against `wanted`.
    fn new(running: Vec<(C, T)>, mut wanted: Vec<C>) -> Sorted<C, T> {
        let (mut kept, mut stop) = (Vec::new(), Vec::new());
        for (entry, task) in running {
            match wanted.iter().position(|w| *w == entry) {
                Some(i) => {
                    wanted.remove(i);
                    kept.push((entry, task));
                }
                None => stop.push((entry, task)),
            }
        }
        Sorted {
            kept,
            stop,
            start: wanted,
        }
    }

    /// What the reload does to them, for the log.
    fn tally(&self, what: &str) -> String {
        format!(
            "{what}: {} kept, {} stopped, {} started",
            self.kept.len(),
            self.stop.len(),
            self.start.len()
        )
    }
}

/// Device name to the patterns that apply to it, for the devices `logfiles` and `journals`
/// raise events under.
fn sets_for(
    patterns: &PatternBook,
    logfiles: &[Logfile],
    journals: &[Journal],
) -> BTreeMap<String, Option<PatternSet>> {
    logfiles
        .iter()
        .map(|l| &l.device)
        .chain(journals.iter().map(|j| &j.device))
        .map(|d| (d.clone(), patterns.set_for(d)))
        .collect()
}

impl Sources {
    /// Start `watches`, `logfiles` and `journals` (scanned with `sets`, by device), feeding
    /// `service`.
    fn start(
        &mut self,
        watches: Vec<Watch>,
        logfiles: Vec<Logfile>,
        journals: Vec<Journal>,
        sets: &BTreeMap<String, Option<PatternSet>>,
        store: &Store,
        service: &EventService,
    ) {
        let set_for = |device: &str| sets.get(device).cloned().flatten();
        for watch in watches {
            let task = crate::watch::spawn(watch.clone(), service.candidates());
            self.watches.push((watch, task));
        }
        let state_dir = if logfiles.is_empty() {
            None
        } else {
            logfile_state_dir(store)
        };
        for logfile in logfiles {
            let set = set_for(&logfile.device);
            let path = logfile.path.clone();
            match mo_core::event::spawn_logfile(
                logfile.clone(),
                set,
                state_dir.as_deref(),
                service.candidates(),
            ) {
                Ok(task) => {
                    tracing::info!(path = %path, "following log file");
                    self.logfiles.push((logfile, task));
                }
                Err(e) => tracing::error!(path = %path, "cannot follow log file: {e}"),
            }
        }
        for journal in journals {
            let (tx, rx) = tokio::sync::watch::channel(set_for(&journal.device));
            let task = mo_core::event::spawn_journal(
                journal.clone(),
                rx,
                service.candidates(),
                run_journalctl,
            );
            self.journals
                .push((journal, JournalTask { patterns: tx, task }));
        }
    }
}

/// Start `journalctl` for a `[[journal]]` entry (mo-core runs no programs): its JSON output,
/// the child killed when the follower drops it.
fn run_journalctl(journal: &mo_core::event::Journal) -> std::io::Result<JournalStream> {
    use std::process::Stdio;
    let mut child = tokio::process::Command::new(mo_core::event::JOURNALCTL)
        .args(journal.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("journalctl gave no standard output"))?;
    Ok(JournalStream {
        reader: Box::new(stdout),
        guard: Box::new(child),
    })
}

/// Check that every rule naming a macro action (now, after acknowledgement or as an
/// escalation) gives the `user` it plays as; answer rule name to user.
fn macro_rule_users(
    rules: &[mo_core::event::RuleConfig],
    actions: &BTreeMap<String, Arc<EventAction>>,
) -> Result<BTreeMap<String, String>, String> {
    let mut users = BTreeMap::new();
    for rule in rules {
        let names = rule
            .actions
            .iter()
            .chain(&rule.after_ack)
            .chain(rule.escalate.iter().flat_map(|s| &s.actions));
        for name in names {
            if !matches!(actions.get(name).map(|a| &**a), Some(EventAction::Macro(_))) {
                continue;
            }
            match rule.user.as_deref().map(str::trim) {
                Some(user) if !user.is_empty() => {
                    users.insert(rule.name.clone(), user.to_owned());
                }
                _ => {
                    return Err(format!(
                        "event rule `{}` names the macro action `{name}`: give the rule a \
                         `user`, the identity the macro plays as (its macro.run right on the \
                         device is checked)",
                        rule.name
                    ));
                }
            }
        }
    }
    Ok(users)
}

/// The running event subsystem.
pub struct Events {
    service: EventService,
    store: Store,
    macros: Arc<MacroActions>,
    /// The actions of the events file in force (shared with the sink that runs them).
    actions: Arc<RwLock<Actions>>,
    maintenance: RwLock<Vec<mo_core::event::MaintenanceConfig>>,
    /// The watches, log files and journals running.
    sources: Mutex<Sources>,
    /// Where changed events are named for the site, once shared ([`Events::share_with_site`]).
    site: Site,
}

/// The queue of events to publish to the site (`mod --cluster --share-directory`), once there
/// is one: local event ids, sent on every insert, count update and acknowledgement.
#[derive(Clone, Default)]
struct Site(Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<u64>>>);

impl Site {
    fn changed(&self, id: u64) {
        if let Some(tx) = self.0.get() {
            let _ = tx.send(id);
        }
    }
}

/// Action name to action.
type Actions = BTreeMap<String, Arc<EventAction>>;

impl Events {
    /// Start the manager task; consoles are added with [`Events::watch`].
    pub fn start(
        config: EventConfig,
        store: Store,
        registry: Arc<Registry>,
        power: Arc<mo_core::power::PowerService>,
    ) -> anyhow::Result<Arc<Events>> {
        let next_id = store.next_event_id()?;
        let EventConfig {
            patterns,
            rules,
            actions,
            watches,
            pattern_configs,
            rule_users,
            maintenance,
            logfiles,
            journals,
        } = config;
        let macros = Arc::new(MacroActions::new(
            rule_users,
            &pattern_configs,
            store.clone(),
        ));
        let actions = Arc::new(RwLock::new(actions));
        let site = Site::default();
        let sink = StoreSink {
            site: site.clone(),
            store: store.clone(),
            escalations: store.path().parent().map(|d| d.join(ESCALATIONS_FILE)),
            actions: actions.clone(),
            registry,
            power,
            macros: macros.clone(),
        };
        let sets = sets_for(&patterns, &logfiles, &journals);
        let service = EventService::start(rules, patterns, Arc::new(sink), next_id);
        let mut sources = Sources::default();
        sources.start(watches, logfiles, journals, &sets, &store, &service);
        Ok(Arc::new(Events {
            service,
            store,
            macros,
            actions,
            maintenance: RwLock::new(maintenance),
            sources: Mutex::new(sources),
            site,
        }))
    }

    /// The maintenance windows of the events file in force.
    pub fn configured_maintenance(&self) -> Vec<mo_core::event::MaintenanceConfig> {
        self.maintenance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Start a maintenance window now (see [`crate::maintenance`]).
    pub fn add_maintenance(&self, window: mo_core::event::MaintenanceWindow) {
        self.service.add_maintenance(window);
    }

    /// End maintenance window `name`.
    pub fn remove_maintenance(&self, name: &str) {
        self.service.remove_maintenance(name);
    }

    /// Put a reloaded configuration in force: its patterns and rules (see
    /// [`EventService::reload`]), actions and maintenance windows; the `[[watch]]`, `[[logfile]]`
    /// and `[[journal]]` entries it no longer lists (or lists changed) are stopped and the new
    /// ones started, while unchanged ones run on (a log file from where it got to) with the new
    /// patterns. Answers what was kept, stopped and started.
    pub async fn reload(&self, config: EventConfig) -> String {
        let patterns = config.patterns;
        *self.actions.write().unwrap_or_else(PoisonError::into_inner) = config.actions;
        self.macros
            .reload(config.rule_users, &config.pattern_configs);
        *self
            .maintenance
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config.maintenance;
        let running =
            std::mem::take(&mut *self.sources.lock().unwrap_or_else(PoisonError::into_inner));
        let watches = Sorted::new(running.watches, config.watches);
        let logfiles = Sorted::new(running.logfiles, config.logfiles);
        let journals = Sorted::new(running.journals, config.journals);
        let report = [
            watches.tally("watches"),
            logfiles.tally("log files"),
            journals.tally("journals"),
        ]
        .join("; ");
        drop((watches.stop, journals.stop));
        // A changed entry may follow the same files: the old follower ends (its offsets saved)
        // before the new one reads them.
        let stop_logfiles = logfiles.stop;
        let stopping = tokio::task::spawn_blocking(move || {
            for (_, task) in stop_logfiles {
                task.stop();
            }
        });
        if let Err(e) = stopping.await {
            tracing::error!("stopping log file followers: {e}");
        }
        for (logfile, task) in &logfiles.kept {
            task.set_patterns(patterns.set_for(&logfile.device));
        }
        for (journal, task) in &journals.kept {
            task.patterns
                .send_replace(patterns.set_for(&journal.device));
        }
        let mut sources = Sources {
            watches: watches.kept,
            logfiles: logfiles.kept,
            journals: journals.kept,
        };
        let sets = sets_for(&patterns, &logfiles.start, &journals.start);
        sources.start(
            watches.start,
            logfiles.start,
            journals.start,
            &sets,
            &self.store,
            &self.service,
        );
        *self.sources.lock().unwrap_or_else(PoisonError::into_inner) = sources;
        self.service.reload(config.rules, patterns);
        report
    }

    /// Hand macro actions the daemon's context once it exists.
    pub fn set_ctx(&self, ctx: &Arc<crate::Ctx>) {
        self.macros.set_ctx(ctx);
    }

    /// Acknowledge event `id` as `user`: stored, and actions held for acknowledgement run.
    /// `Ok(false)` when it was acknowledged before.
    pub fn ack(&self, id: u64, user: &str) -> mo_store::Result<bool> {
        let now = i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX);
        self.ack_at(id, user, now)
    }

    /// [`Events::ack`], acknowledged at `at_ns` (an acknowledgement made on another node of the
    /// site). The change goes to the site too, when this node shares its events.
    pub fn ack_at(&self, id: u64, user: &str, at_ns: i64) -> mo_store::Result<bool> {
        let done = self.store.ack_event(id, user, at_ns)?;
        if done {
            self.service.acknowledged(id);
            self.site.changed(id);
        }
        Ok(done)
    }

    /// The store the events are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Keep a copy of event `origin_id` of site node `node` (see
    /// [`Store::keep_site_event`]), numbered beside this node's own; it never reaches the event
    /// manager, so no action runs for it here.
    pub fn keep_site_event(
        &self,
        node: &str,
        origin_id: u64,
        event: &mo_core::event::Event,
    ) -> mo_store::Result<u64> {
        self.store
            .keep_site_event(node, origin_id, event, || self.service.take_id())
    }

    /// From now on, name every event raised, counted up or acknowledged here on the channel
    /// answered (for the site, `mod --cluster --share-directory`); `None` after the first call.
    pub fn share_with_site(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<u64>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.site.0.set(tx).ok().map(|()| rx)
    }

    /// Offer a candidate event (power changes, file changes, …).
    pub fn offer(&self, candidate: Candidate) {
        self.service.offer(candidate);
    }

    /// Raise an event from outside (`POST /api/v1/events`, `mo events raise`): `false` when the
    /// manager is behind and did not take it.
    pub fn raise(&self, candidate: Candidate) -> bool {
        self.service.candidates().try_send(candidate).is_ok()
    }

    /// Candidate events dropped so far because the manager was behind.
    pub fn dropped(&self) -> u64 {
        self.service.dropped()
    }

    /// Scan `console`'s output (every chunk, from its scanner feed) and follow its link state
    /// until it stops.
    pub fn watch(&self, console: &Console, feed: ConsumerFeed) {
        self.service.watch(console, feed);
    }
}

/// Events kept in the store; actions run with `mo_drivers::action`, power ones on the device
/// through the registry.
struct StoreSink {
    /// The site's queue, when events are shared.
    site: Site,
    store: Store,
    /// `DATA/escalations.json`: the pending escalation steps, kept over a restart.
    escalations: Option<std::path::PathBuf>,
    actions: Arc<RwLock<Actions>>,
    registry: Arc<Registry>,
    power: Arc<mo_core::power::PowerService>,
    macros: Arc<MacroActions>,
}

impl EventSink for StoreSink {
    fn insert(&self, event: &Event) {
        match self.store.insert_event(event) {
            Ok(id) => self.site.changed(id),
            Err(e) => tracing::error!("cannot store event: {e}"),
        }
    }

    fn update_count(&self, id: u64, count: u64, last_ns: i64) {
        match self.store.update_event_count(id, count, last_ns) {
            Ok(_) => self.site.changed(id),
            Err(e) => tracing::error!("cannot update event {id}: {e}"),
        }
    }

    fn get(&self, id: u64) -> Option<Event> {
        self.store.event(id).ok().flatten()
    }

    fn load_escalations(&self) -> Vec<PendingEscalation> {
        let Some(path) = &self.escalations else {
            return Vec::new();
        };
        match load_escalations(path) {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(
                        "{} escalation steps kept from before the restart ({})",
                        pending.len(),
                        path.display()
                    );
                }
                pending
            }
            Err(e) => {
                tracing::error!("{e}; pending escalations of before the restart are lost");
                Vec::new()
            }
        }
    }

    fn save_escalations(&self, pending: &[PendingEscalation]) {
        if let Some(path) = &self.escalations
            && let Err(e) = save_escalations(path, pending)
        {
            tracing::error!("{e}; pending escalations would not survive a restart");
        }
    }

    fn run_action(&self, action: &ActionRef, event: &Event) {
        let run = self
            .actions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&action.action)
            .cloned();
        if let Some(run) = run {
            if let EventAction::Macro(m) = &*run {
                self.macros
                    .spawn(m.clone(), action.rule.clone(), event.clone());
                return;
            }
            spawn_action(
                run.clone(),
                event.clone(),
                action.rule.clone(),
                self.registry.clone(),
                self.power.clone(),
                self.macros.pattern_name(event),
            );
        }
    }
}

/// Where the pending escalation steps are kept, in the data directory.
const ESCALATIONS_FILE: &str = "escalations.json";

/// The steps kept in `path` (none when it does not exist).
fn load_escalations(path: &Path) -> Result<Vec<PendingEscalation>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a list of escalation steps: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replace the steps kept in `path` (written beside it, then renamed over it).
fn save_escalations(path: &Path, pending: &[PendingEscalation]) -> Result<(), String> {
    let text = serde_json::to_vec(pending).map_err(|e| format!("escalations: {e}"))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn spawn_action(
    action: Arc<EventAction>,
    event: Event,
    rule: String,
    registry: Arc<Registry>,
    power: Arc<mo_core::power::PowerService>,
    pattern: Option<String>,
) {
    tokio::spawn(async move {
        // Power actions are handed back by the action runner: mo switches the event's device
        // itself (rules only allow them after an operator acknowledged the event).
        if let EventAction::Power(switch) = &*action {
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
            for r in crate::power::perform(&power, &[entry], *switch, &who, |_| {}).await {
                if r.ok {
                    tracing::info!(event = event.id, rule, "power action: {}", r.line);
                } else {
                    tracing::error!(event = event.id, rule, "power action: {}", r.line);
                }
            }
            return;
        }
        match run_action_for(&action, &event, pattern.as_deref()).await {
            Ok(outcome) => tracing::info!(event = event.id, rule, "action done: {outcome:?}"),
            Err(e) => tracing::error!(event = event.id, rule, "action failed: {e}"),
        }
    });
}
