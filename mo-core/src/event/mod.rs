//! Events and the event manager: what the scanner, the consoles, the power controllers and the
//! file monitor report, deduplicated, filtered by rules and turned into actions, sans-I/O.
//!
//! An [`Event`] is `{id, time, device, source, severity, message, context}` plus its bookkeeping
//! (how many times it happened, whether a maintenance window suppressed it, who acknowledged it).
//! Producers hand the [`EventManager`] a [`Candidate`]; [`EventManager::offer`] answers with a
//! [`Verdict`]: what to write to the store ([`StoreOp`]) and which actions to run
//! ([`ActionRef`], named in the rule configuration and resolved by the caller). The manager never
//! reads a clock and does no I/O: the caller passes the time in, which makes it table-testable.
//!
//! # How the rules work
//! - **Dedup.** A candidate identical to a recent event (same device, source, severity and
//!   message) within [`RulesConfig::dedup_window`] (default [`DEFAULT_DEDUP_WINDOW`]) of that
//!   event's *last* occurrence does not become a new event: the manager answers
//!   [`StoreOp::UpdateCount`] with the event's new absolute count, and runs no action. A flood of
//!   10,000 identical lines is therefore one event with count 10000, and its actions run once.
//!   Counts are absolute and last-writer-wins, so the caller may coalesce count updates (keep the
//!   latest per id and write them, say, once a second) instead of writing every one.
//! - **Ids.** The manager numbers events itself ([`EventManager::with_next_id`]; seed it from the
//!   store's next id at start), so a count update can name its event before the insert has been
//!   written. There must be one manager per store (the daemon).
//! - **Rules** ([`RuleConfig`]) are tried in order; every matching rule contributes its actions
//!   until one with `stop = true` matches. A rule matches on source, device globs, groups,
//!   minimum severity, a message regex and an optional time-of-day schedule.
//! - **Rate limit.** A rule may run its actions at most `count` times per `per` for each device;
//!   beyond that the event is still stored but the rule's actions are dropped
//!   ([`Verdict::rate_limited`]).
//! - **Maintenance windows** (per device glob or group, fixed `start`/`end` in RFC 3339 or a
//!   recurring schedule) suppress actions; the event is still stored, marked `suppressed`.
//! - **Schedules** are days of the week plus `hh:mm-hh:mm` ranges (a range whose end is before its
//!   start wraps past midnight; `24:00` is the end of the day). They are evaluated in the UTC
//!   offset of the time the caller passes (pass local time for local schedules) unless the
//!   schedule says `utc = true`.
//! - **Acknowledgement.** A rule's `after_ack` actions (power cycles, macros: anything that must
//!   wait for a human) are held until an operator acknowledges the event with
//!   [`EventManager::ack`], which hands them back. After an acknowledgement the next occurrence
//!   of the same alert starts a new event, so a recurrence is noticed.
//!
//! ```
//! use mo_core::event::{Candidate, EventManager, EventSource, Rules, RulesConfig, RuleConfig, StoreOp};
//! use mo_core::scan::Severity;
//! use time::macros::datetime;
//!
//! let config = RulesConfig {
//!     rules: vec![RuleConfig {
//!         name: "panics".into(),
//!         min_severity: Some("critical".into()),
//!         actions: vec!["page-oncall".into()],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let mut manager = EventManager::new(Rules::from_config(&config).unwrap()).with_next_id(1);
//! let now = datetime!(2026-11-22 03:00 UTC);
//! let panic = Candidate::new("web1", EventSource::Pattern, Severity::Critical, "kernel panic");
//!
//! let first = manager.offer(panic.clone(), now);
//! assert!(matches!(first.store, StoreOp::Insert(ref e) if e.id == 1 && e.count == 1));
//! assert_eq!(first.actions[0].action, "page-oncall");
//!
//! let again = manager.offer(panic, now + time::Duration::seconds(1));
//! assert!(matches!(again.store, StoreOp::UpdateCount { id: 1, count: 2, .. }));
//! assert!(again.actions.is_empty());
//! ```

mod config;
mod file;
mod journal;
mod logfile;
mod manager;
mod rules;
mod schedule;
mod service;
mod watch;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::scan::{Match, Severity};

pub use config::{
    DEFAULT_ACK_EXPIRY, DEFAULT_DEDUP_WINDOW, EscalateConfig, MaintenanceConfig, RateLimitConfig,
    RuleConfig, RulesConfig, ScheduleConfig,
};
pub use file::EventsFile;
pub use journal::{
    DEFAULT_JOURNAL_DEVICE, JOURNALCTL, Journal, JournalConfig, JournalLine, JournalOpener,
    JournalStream, MAX_JOURNAL_LINE, parse_line as parse_journal_line, spawn_journal,
};
pub use logfile::{
    DEFAULT_LOGFILE_DEVICE, DEFAULT_LOGFILE_INTERVAL, LogFollower, Logfile, LogfileConfig,
    LogfileTask, spawn_logfile,
};
pub use manager::{ActionRef, EventManager, PendingEscalation, StoreOp, Verdict};
pub use rules::{MaintenanceWindow, Rules, parse_window_length};
pub use schedule::Schedule;
pub use service::{CANDIDATE_CAPACITY, EventService, EventSink, NoSink, SCANNER_CAPACITY};

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EventSource {
    /// A scanner pattern matched the device's output.
    Pattern,
    /// The console's link to the device went up or down.
    Connection,
    /// The device's power changed or a power action ran.
    Power,
    /// A monitored file changed or disappeared.
    File,
    /// An agent on the device reported something.
    Agent,
    /// An operator raised it by hand (`mo events raise`, `POST /api/v1/events`).
    Manual,
    /// Another system sent it (`POST /api/v1/events` with source `external`).
    External,
    /// A scheduled macro run failed, or runs were missed while the daemon was down.
    Schedule,
    /// The console's record log could not write, recovered, or its scanner fell behind.
    Log,
}

impl EventSource {
    /// Every source.
    pub const ALL: [EventSource; 9] = [
        EventSource::Pattern,
        EventSource::Connection,
        EventSource::Power,
        EventSource::File,
        EventSource::Agent,
        EventSource::Manual,
        EventSource::Schedule,
        EventSource::Log,
        EventSource::External,
    ];

    /// The lowercase name (`pattern`, `connection`, `power`, `file`, `agent`, `manual`,
    /// `schedule`, `log`, `external`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Pattern => "pattern",
            EventSource::Connection => "connection",
            EventSource::Power => "power",
            EventSource::File => "file",
            EventSource::Agent => "agent",
            EventSource::Manual => "manual",
            EventSource::Schedule => "schedule",
            EventSource::Log => "log",
            EventSource::External => "external",
        }
    }
}

impl fmt::Display for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventSource {
    type Err = Error;

    /// Parses a lowercase name, in any case.
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        EventSource::ALL
            .into_iter()
            .find(|source| source.as_str() == wanted)
            .ok_or_else(|| Error::BadSpec {
                what: "event source",
                input: s.to_owned(),
                reason: "expected pattern, connection, power, file, agent, manual, schedule, log \
                 or external"
                    .to_owned(),
            })
    }
}

/// Something that happened on a device, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's number, assigned by the [`EventManager`], increasing.
    pub id: u64,
    /// When it first happened, in nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// When it last happened (equal to `time_ns` until a duplicate arrives).
    pub last_ns: i64,
    /// The device's name.
    pub device: String,
    /// Where it came from.
    pub source: EventSource,
    /// How serious it is.
    pub severity: Severity,
    /// What happened, in one line.
    pub message: String,
    /// Lines of output around it, oldest first (for a pattern: the lines before, then the
    /// matching line).
    pub context: Vec<String>,
    /// How many times it happened (identical alerts within the dedup window).
    pub count: u64,
    /// Whether a maintenance window suppressed its actions.
    pub suppressed: bool,
    /// Who acknowledged it, if anyone.
    pub acked_by: Option<String>,
    /// When it was acknowledged, in nanoseconds since the Unix epoch.
    pub acked_ns: Option<i64>,
    /// The node of the site (`mod --cluster`) that raised it, when another node did (a copy
    /// kept for listing; its actions ran there); `None` for an event raised here.
    pub node: Option<String>,
}

impl Event {
    /// One line for listings: `#12 2026-11-22T07:03:36.120Z web01 critical pattern x3 message`,
    /// with `(acked by NAME)` or `(suppressed)` when they apply; the device is `web01@NODE`
    /// for an event another node of the site raised.
    pub fn line(&self) -> String {
        let time = crate::log::format_timestamp(u64::try_from(self.time_ns).unwrap_or(0));
        let at = self
            .node
            .as_ref()
            .map(|n| format!("@{n}"))
            .unwrap_or_default();
        let mut out = format!(
            "#{} {time} {}{at} {} {}",
            self.id, self.device, self.severity, self.source
        );
        if self.count > 1 {
            out.push_str(&format!(" x{}", self.count));
        }
        out.push(' ');
        out.push_str(&self.message);
        if let Some(by) = &self.acked_by {
            out.push_str(&format!(" (acked by {by})"));
        } else if self.suppressed {
            out.push_str(" (suppressed)");
        }
        out
    }
}

/// What a producer reports, before the manager has decided what it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// When it happened, in nanoseconds since the Unix epoch (0: use the time passed to
    /// [`EventManager::offer`]).
    pub time_ns: i64,
    /// The device's name.
    pub device: String,
    /// Groups the device belongs to (from the device's settings), besides the groups the rule
    /// configuration defines by glob.
    pub groups: Vec<String>,
    /// Where it came from.
    pub source: EventSource,
    /// How serious it is.
    pub severity: Severity,
    /// What happened, in one line.
    pub message: String,
    /// Lines of output around it, oldest first.
    pub context: Vec<String>,
}

impl Candidate {
    /// A candidate without groups, context or time (it takes the time passed to `offer`).
    pub fn new(
        device: impl Into<String>,
        source: EventSource,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Candidate {
            time_ns: 0,
            device: device.into(),
            groups: Vec::new(),
            source,
            severity,
            message: message.into(),
            context: Vec::new(),
        }
    }

    /// A candidate from a scanner [`Match`]: source `pattern`, the match's severity and message,
    /// and as context the lines before the match followed by the matching line.
    pub fn from_match(device: impl Into<String>, found: &Match, time_ns: i64) -> Self {
        let mut context = Vec::with_capacity(found.context.len() + 1);
        context.extend(found.context.iter().cloned());
        context.push(found.line.clone());
        Candidate {
            time_ns,
            device: device.into(),
            groups: Vec::new(),
            source: EventSource::Pattern,
            severity: found.severity,
            message: found.message.clone(),
            context,
        }
    }
}
