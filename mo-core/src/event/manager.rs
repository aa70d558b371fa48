//! The event manager: dedup, rules, rate limits, maintenance and acknowledgement, with the time
//! passed in.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use time::OffsetDateTime;

use super::rules::{MaintenanceWindow, Rules, unix_ns};
use super::{Candidate, Event, EventSource};
use crate::scan::Severity;

/// Offers between two automatic prunings of expired state.
const PRUNE_EVERY: u32 = 4096;

/// An action to run, by name, and the rule that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ActionRef {
    /// The rule's name.
    pub rule: String,
    /// The action's name (resolved by the caller, e.g. to a `mo_drivers::action::EventAction`).
    pub action: String,
}

/// An escalation step waiting for its time, as kept over a restart
/// ([`EventManager::pending`], [`EventManager::restore`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingEscalation {
    /// When it is due, in ns since the Unix epoch.
    pub due_ns: i64,
    /// The event it escalates.
    pub event: u64,
    /// The step's number in its rule's `escalate` list.
    pub step: usize,
    /// The actions it runs.
    pub actions: Vec<ActionRef>,
}

/// What to write to the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// A new event, with its id already assigned.
    Insert(Event),
    /// A duplicate of event `id`: its count is now `count` (absolute, so updates may be
    /// coalesced: only the latest per id matters) and it last happened at `last_ns`.
    UpdateCount {
        /// The event's id.
        id: u64,
        /// The new total count.
        count: u64,
        /// The time of this occurrence, in ns since the epoch.
        last_ns: i64,
    },
}

/// What the manager decided about a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What to write to the store (always something: suppressed events are stored too).
    pub store: StoreOp,
    /// Actions to run now, in rule order.
    pub actions: Vec<ActionRef>,
    /// Whether a maintenance window suppressed the actions.
    pub suppressed: bool,
    /// The maintenance window that did, if any.
    pub maintenance: Option<String>,
    /// The rules that matched, in order (empty for a duplicate: rules are not re-evaluated).
    pub rules: Vec<String>,
    /// Matching rules whose actions the rate limit dropped.
    pub rate_limited: Vec<String>,
    /// How many `after_ack` actions are held until the event is acknowledged.
    pub held_for_ack: usize,
}

/// What makes two alerts identical.
type Key = (String, EventSource, Severity, String);

/// An event that duplicates still fold into.
#[derive(Debug)]
struct Open {
    id: u64,
    count: u64,
    last_ns: i64,
}

/// Actions waiting for an acknowledgement.
#[derive(Debug)]
struct Held {
    since_ns: i64,
    actions: Vec<ActionRef>,
}

/// The event manager. One per store (it numbers the events); not shared between threads —
/// the daemon owns it in one task and feeds it every candidate.
#[derive(Debug)]
pub struct EventManager {
    rules: Rules,
    /// The next id, shared with [`EventManager::ids`] holders (who number events kept beside
    /// the manager's, e.g. copies from other nodes of a site).
    next_id: std::sync::Arc<std::sync::atomic::AtomicU64>,
    open: HashMap<Key, Open>,
    /// Id to key of open events, to close one when it is acknowledged.
    open_ids: HashMap<u64, Key>,
    held: HashMap<u64, Held>,
    /// EventAction-run times per (rule, device), oldest first.
    runs: HashMap<(String, String), VecDeque<i64>>,
    /// Escalation steps waiting for their time, by `(due ns, event id, step number)`.
    escalations: BTreeMap<(i64, u64, usize), Vec<ActionRef>>,
    /// Bumped whenever `escalations` changes (the caller then saves [`EventManager::pending`]).
    escalations_version: u64,
    /// The names of the maintenance windows added at run time (kept over a reload).
    added: BTreeSet<String>,
    offers: u32,
}

impl EventManager {
    /// A manager with these rules, numbering events from 1.
    pub fn new(rules: Rules) -> Self {
        EventManager {
            rules,
            next_id: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1)),
            open: HashMap::new(),
            open_ids: HashMap::new(),
            held: HashMap::new(),
            runs: HashMap::new(),
            escalations: BTreeMap::new(),
            escalations_version: 0,
            added: BTreeSet::new(),
            offers: 0,
        }
    }

    /// Number new events from `next_id` on (the store's next free id; at least 1).
    pub fn with_next_id(self, next_id: u64) -> Self {
        self.next_id
            .store(next_id.max(1), std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// The id the next new event gets.
    pub fn next_id(&self) -> u64 {
        self.next_id.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The manager's id counter: `fetch_add(1)` on it takes an id no event of this manager
    /// will get (for events stored beside the manager's, which never reach it).
    pub fn ids(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.next_id.clone()
    }

    /// Replace the rules (a configuration reload). Open events, held actions, pending
    /// escalations, rate-limit history and the maintenance windows added at run time are kept;
    /// rate limits are tracked by rule name.
    pub fn set_rules(&mut self, rules: Rules) {
        let old = std::mem::replace(&mut self.rules, rules);
        for window in old.maintenance {
            if self.added.contains(window.name()) {
                self.rules.maintenance.retain(|w| w.name() != window.name());
                self.rules.maintenance.push(window);
            }
        }
    }

    /// Add a maintenance window at run time (replacing one of the same name).
    pub fn add_maintenance(&mut self, window: MaintenanceWindow) {
        self.remove_maintenance(window.name());
        self.added.insert(window.name().to_owned());
        self.rules.maintenance.push(window);
    }

    /// Remove a maintenance window by name; whether there was one.
    pub fn remove_maintenance(&mut self, name: &str) -> bool {
        self.added.remove(name);
        let before = self.rules.maintenance.len();
        self.rules.maintenance.retain(|w| w.name() != name);
        self.rules.maintenance.len() != before
    }

    /// Decide what a candidate becomes, at time `now` (wall time; its UTC offset is the one
    /// schedules without `utc = true` are evaluated in).
    pub fn offer(&mut self, candidate: Candidate, now: OffsetDateTime) -> Verdict {
        let now_ns = unix_ns(now);
        self.offers += 1;
        if self.offers >= PRUNE_EVERY {
            self.prune(now);
        }
        let key: Key = (
            candidate.device.clone(),
            candidate.source,
            candidate.severity,
            candidate.message.clone(),
        );
        let window = self.rules.dedup_window_ns;
        if window > 0
            && let Some(open) = self.open.get_mut(&key)
            && now_ns.saturating_sub(open.last_ns) <= window
        {
            open.count += 1;
            open.last_ns = open.last_ns.max(now_ns);
            return Verdict {
                store: StoreOp::UpdateCount {
                    id: open.id,
                    count: open.count,
                    last_ns: now_ns,
                },
                actions: Vec::new(),
                suppressed: false,
                maintenance: None,
                rules: Vec::new(),
                rate_limited: Vec::new(),
                held_for_ack: 0,
            };
        }

        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let maintenance = self
            .rules
            .maintenance
            .iter()
            .find(|w| w.covers(&candidate, &self.rules.groups, now))
            .map(|w| w.name().to_owned());
        let suppressed = maintenance.is_some();

        let mut matched = Vec::new();
        let mut actions = Vec::new();
        let mut after_ack = Vec::new();
        let mut rate_limited = Vec::new();
        let mut escalate = Vec::new();
        for rule in &self.rules.rules {
            if !rule.matches(&candidate, &self.rules.groups, now) {
                continue;
            }
            matched.push(rule.name.clone());
            let has_actions =
                !rule.actions.is_empty() || !rule.after_ack.is_empty() || !rule.escalate.is_empty();
            if !suppressed && has_actions {
                let allowed = match rule.rate_limit {
                    None => true,
                    Some((count, per)) => {
                        let runs = self
                            .runs
                            .entry((rule.name.clone(), candidate.device.clone()))
                            .or_default();
                        while runs
                            .front()
                            .is_some_and(|&t| t <= now_ns.saturating_sub(per))
                        {
                            runs.pop_front();
                        }
                        let ok = runs.len() < count as usize;
                        if ok {
                            runs.push_back(now_ns);
                        }
                        ok
                    }
                };
                if allowed {
                    let refs = |names: &[String]| {
                        names
                            .iter()
                            .map(|a| ActionRef {
                                rule: rule.name.clone(),
                                action: a.clone(),
                            })
                            .collect::<Vec<_>>()
                    };
                    actions.extend(refs(&rule.actions));
                    after_ack.extend(refs(&rule.after_ack));
                    for (after, names) in &rule.escalate {
                        escalate.push((now_ns.saturating_add(*after), refs(names)));
                    }
                } else {
                    rate_limited.push(rule.name.clone());
                }
            }
            if rule.stop {
                break;
            }
        }

        for (step, (due, refs)) in escalate.into_iter().enumerate() {
            self.escalations.insert((due, id, step), refs);
            self.escalations_version += 1;
        }
        let held_for_ack = after_ack.len();
        if !after_ack.is_empty() {
            self.held.insert(
                id,
                Held {
                    since_ns: now_ns,
                    actions: after_ack,
                },
            );
        }
        if window > 0 {
            if let Some(old) = self.open.insert(
                key.clone(),
                Open {
                    id,
                    count: 1,
                    last_ns: now_ns,
                },
            ) {
                self.open_ids.remove(&old.id);
            }
            self.open_ids.insert(id, key);
        }
        let time_ns = if candidate.time_ns != 0 {
            candidate.time_ns
        } else {
            now_ns
        };
        Verdict {
            store: StoreOp::Insert(Event {
                id,
                time_ns,
                last_ns: time_ns,
                device: candidate.device,
                source: candidate.source,
                severity: candidate.severity,
                message: candidate.message,
                context: candidate.context,
                count: 1,
                suppressed,
                acked_by: None,
                acked_ns: None,
                node: None,
            }),
            actions,
            suppressed,
            maintenance,
            rules: matched,
            rate_limited,
            held_for_ack,
        }
    }

    /// Record that an operator acknowledged event `id` and hand back the actions held for it
    /// (empty if none, or if the event is unknown to this manager — the caller still records
    /// the acknowledgement in the store). The next occurrence of the same alert starts a new
    /// event.
    pub fn ack(&mut self, id: u64) -> Vec<ActionRef> {
        if let Some(key) = self.open_ids.remove(&id) {
            self.open.remove(&key);
        }
        let before = self.escalations.len();
        self.escalations.retain(|&(_, event, _), _| event != id);
        if self.escalations.len() != before {
            self.escalations_version += 1;
        }
        self.held.remove(&id).map(|h| h.actions).unwrap_or_default()
    }

    /// When the next escalation step is due, in ns since the Unix epoch (`None`: none waits).
    pub fn next_escalation(&self) -> Option<i64> {
        self.escalations.keys().next().map(|&(due, _, _)| due)
    }

    /// Take the escalation steps due at `now`: for each, the event's id and the actions to run
    /// (the event was not acknowledged: an acknowledgement cancels its steps). Each step is
    /// handed out once.
    pub fn due_escalations(&mut self, now: OffsetDateTime) -> Vec<(u64, Vec<ActionRef>)> {
        let now_ns = unix_ns(now);
        let later = self
            .escalations
            .split_off(&(now_ns.saturating_add(1), 0, 0));
        let due = std::mem::replace(&mut self.escalations, later);
        if !due.is_empty() {
            self.escalations_version += 1;
        }
        due.into_iter()
            .map(|((_, id, _), actions)| (id, actions))
            .collect()
    }

    /// A number that changes whenever the pending escalation steps change.
    pub fn escalations_version(&self) -> u64 {
        self.escalations_version
    }

    /// The escalation steps waiting for their time, soonest first (to keep over a restart).
    pub fn pending(&self) -> Vec<PendingEscalation> {
        self.escalations
            .iter()
            .map(|(&(due_ns, event, step), actions)| PendingEscalation {
                due_ns,
                event,
                step,
                actions: actions.clone(),
            })
            .collect()
    }

    /// Take back steps kept before a restart (those already due run at the next
    /// [`EventManager::due_escalations`]; an acknowledged event's are dropped by the caller).
    pub fn restore(&mut self, pending: Vec<PendingEscalation>) {
        for p in pending {
            self.escalations
                .insert((p.due_ns, p.event, p.step), p.actions);
        }
        self.escalations_version += 1;
    }

    /// How many escalation steps wait (for metrics and tests).
    pub fn pending_escalations(&self) -> usize {
        self.escalations.len()
    }

    /// Actions held for event `id`, waiting for an acknowledgement.
    pub fn held_actions(&self, id: u64) -> &[ActionRef] {
        self.held.get(&id).map_or(&[], |h| h.actions.as_slice())
    }

    /// Forget expired state: events past their dedup window, rate-limit history older than its
    /// period, held actions older than the acknowledgement expiry. [`EventManager::offer`] calls
    /// this now and then by itself; call it from a timer for a quiet manager.
    pub fn prune(&mut self, now: OffsetDateTime) {
        self.offers = 0;
        let now_ns = unix_ns(now);
        let window = self.rules.dedup_window_ns;
        let open_ids = &mut self.open_ids;
        self.open.retain(|_, open| {
            let keep = now_ns.saturating_sub(open.last_ns) <= window;
            if !keep {
                open_ids.remove(&open.id);
            }
            keep
        });
        let expiry = self.rules.ack_expiry_ns;
        self.held
            .retain(|_, held| now_ns.saturating_sub(held.since_ns) <= expiry);
        let periods: HashMap<&str, i64> = self
            .rules
            .rules
            .iter()
            .filter_map(|r| r.rate_limit.map(|(_, per)| (r.name.as_str(), per)))
            .collect();
        self.runs.retain(|(rule, _), runs| {
            let Some(&per) = periods.get(rule.as_str()) else {
                return false;
            };
            while runs
                .front()
                .is_some_and(|&t| t <= now_ns.saturating_sub(per))
            {
                runs.pop_front();
            }
            !runs.is_empty()
        });
    }

    /// How many events duplicates can currently fold into (for metrics and tests).
    pub fn open_events(&self) -> usize {
        self.open.len()
    }
}
