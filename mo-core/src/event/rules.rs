//! The compiled rule set: configuration checked once, at load time, so that nothing can fail
//! while events are being matched.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::{
    DEFAULT_ACK_EXPIRY, DEFAULT_DEDUP_WINDOW, MaintenanceConfig, RuleConfig, RulesConfig,
};
use super::schedule::Schedule;
use super::{Candidate, EventSource};
use crate::error::{Error, Result};
use crate::glob::glob_match;
use crate::scan::Severity;

/// The largest compiled size of a rule's `text` regex.
const TEXT_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Which devices something applies to: device-name globs and group names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Target {
    devices: Vec<String>,
    groups: Vec<String>,
}

impl Target {
    fn is_any(&self) -> bool {
        self.devices.is_empty() && self.groups.is_empty()
    }

    /// Whether the candidate's device is named by a glob or belongs to a group — one the
    /// candidate names, or one the configuration defines by globs.
    fn covers(&self, candidate: &Candidate, groups: &BTreeMap<String, Vec<String>>) -> bool {
        self.devices
            .iter()
            .any(|g| glob_match(g, &candidate.device))
            || self.groups.iter().any(|group| {
                candidate.groups.iter().any(|g| g == group)
                    || groups
                        .get(group)
                        .is_some_and(|globs| globs.iter().any(|g| glob_match(g, &candidate.device)))
            })
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) name: String,
    sources: Vec<EventSource>,
    target: Target,
    min_severity: Severity,
    text: Option<Regex>,
    schedule: Option<Schedule>,
    pub(super) actions: Vec<String>,
    pub(super) after_ack: Vec<String>,
    /// `(count, period in ns)`.
    pub(super) rate_limit: Option<(u32, i64)>,
    pub(super) stop: bool,
    /// Escalation steps: `(delay in ns, actions)`.
    pub(super) escalate: Vec<(i64, Vec<String>)>,
}

impl Rule {
    pub(super) fn matches(
        &self,
        candidate: &Candidate,
        groups: &BTreeMap<String, Vec<String>>,
        now: OffsetDateTime,
    ) -> bool {
        (self.sources.is_empty() || self.sources.contains(&candidate.source))
            && candidate.severity >= self.min_severity
            && (self.target.is_any() || self.target.covers(candidate, groups))
            && self
                .text
                .as_ref()
                .is_none_or(|re| re.is_match(&candidate.message))
            && self.schedule.as_ref().is_none_or(|s| s.is_active(now))
    }
}

/// A maintenance window: while active, events of the devices it covers are stored, marked
/// suppressed, and run no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    name: String,
    target: Target,
    /// `[start, end)` in ns since the epoch.
    between: Option<(i64, i64)>,
    schedule: Option<Schedule>,
}

impl MaintenanceWindow {
    /// A one-off window over devices (globs) and groups, from `start` to `end` (excluded).
    /// Fails if both lists are empty (a window must say what it covers) or `end <= start`.
    pub fn between(
        name: impl Into<String>,
        devices: Vec<String>,
        groups: Vec<String>,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<MaintenanceWindow> {
        let name = name.into();
        let target = Target { devices, groups };
        if target.is_any() {
            return Err(bad(
                "maintenance window",
                &name,
                "devices",
                "name at least one device or group",
            ));
        }
        if end <= start {
            return Err(bad(
                "maintenance window",
                &name,
                "end",
                "the window ends before it starts",
            ));
        }
        Ok(MaintenanceWindow {
            name,
            target,
            between: Some((unix_ns(start), unix_ns(end))),
            schedule: None,
        })
    }

    /// The window's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn covers(
        &self,
        candidate: &Candidate,
        groups: &BTreeMap<String, Vec<String>>,
        now: OffsetDateTime,
    ) -> bool {
        let ns = unix_ns(now);
        self.between
            .is_none_or(|(start, end)| start <= ns && ns < end)
            && self.schedule.as_ref().is_none_or(|s| s.is_active(now))
            && self.target.covers(candidate, groups)
    }

    fn from_config(
        config: &MaintenanceConfig,
        schedules: &BTreeMap<String, Schedule>,
    ) -> Result<MaintenanceWindow> {
        let what = "maintenance window";
        let name = &config.name;
        let target = Target {
            devices: config.devices.clone(),
            groups: config.groups.clone(),
        };
        if target.is_any() {
            return Err(bad(
                what,
                name,
                "devices",
                "name at least one device or group",
            ));
        }
        let time = |field: &str, value: &Option<String>| -> Result<Option<i64>> {
            value
                .as_deref()
                .map(|text| {
                    OffsetDateTime::parse(text, &Rfc3339)
                        .map(unix_ns)
                        .map_err(|e| {
                            bad(
                                what,
                                name,
                                field,
                                &format!("`{text}`: {e} (expected RFC 3339)"),
                            )
                        })
                })
                .transpose()
        };
        let between = match (time("start", &config.start)?, time("end", &config.end)?) {
            (Some(start), Some(end)) if end > start => Some((start, end)),
            (Some(_), Some(_)) => {
                return Err(bad(what, name, "end", "the window ends before it starts"));
            }
            (None, None) => None,
            _ => {
                return Err(bad(
                    what,
                    name,
                    "start",
                    "give both start and end, or neither",
                ));
            }
        };
        let schedule = lookup_schedule(what, name, &config.schedule, schedules)?;
        if between.is_none() && schedule.is_none() {
            return Err(bad(
                what,
                name,
                "start",
                "give start and end, or a schedule",
            ));
        }
        Ok(MaintenanceWindow {
            name: name.clone(),
            target,
            between,
            schedule,
        })
    }
}

/// The compiled event-manager configuration. Build it with [`Rules::from_config`]; every
/// mistake (bad regex, unknown schedule, bad duration) is refused there, naming the rule and the
/// field.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(super) dedup_window_ns: i64,
    pub(super) ack_expiry_ns: i64,
    pub(super) groups: BTreeMap<String, Vec<String>>,
    pub(super) rules: Vec<Rule>,
    pub(super) maintenance: Vec<MaintenanceWindow>,
}

impl Default for Rules {
    /// No rules, no maintenance, the default dedup window.
    fn default() -> Self {
        Rules {
            dedup_window_ns: duration_ns(DEFAULT_DEDUP_WINDOW),
            ack_expiry_ns: duration_ns(DEFAULT_ACK_EXPIRY),
            groups: BTreeMap::new(),
            rules: Vec::new(),
            maintenance: Vec::new(),
        }
    }
}

impl Rules {
    /// Check and compile a configuration.
    pub fn from_config(config: &RulesConfig) -> Result<Rules> {
        let top = |field: &str, value: &Option<String>, default: Duration| -> Result<i64> {
            match value {
                None => Ok(duration_ns(default)),
                Some(text) => parse_duration(text)
                    .map(duration_ns)
                    .map_err(|reason| bad("event configuration", "top level", field, &reason)),
            }
        };
        let dedup_window_ns = top("dedup_window", &config.dedup_window, DEFAULT_DEDUP_WINDOW)?;
        let ack_expiry_ns = top("ack_expiry", &config.ack_expiry, DEFAULT_ACK_EXPIRY)?;
        let mut schedules = BTreeMap::new();
        for (name, schedule) in &config.schedules {
            schedules.insert(name.clone(), Schedule::from_config(name, schedule)?);
        }
        let mut seen = BTreeSet::new();
        let mut rules = Vec::with_capacity(config.rules.len());
        for rule in &config.rules {
            if !seen.insert(rule.name.as_str()) {
                return Err(bad(
                    "event rule",
                    &rule.name,
                    "name",
                    "another rule has this name",
                ));
            }
            rules.push(compile_rule(rule, &schedules)?);
        }
        let mut seen = BTreeSet::new();
        let mut maintenance = Vec::with_capacity(config.maintenance.len());
        for window in &config.maintenance {
            if !seen.insert(window.name.as_str()) {
                return Err(bad(
                    "maintenance window",
                    &window.name,
                    "name",
                    "another window has this name",
                ));
            }
            maintenance.push(MaintenanceWindow::from_config(window, &schedules)?);
        }
        Ok(Rules {
            dedup_window_ns,
            ack_expiry_ns,
            groups: config.groups.clone(),
            rules,
            maintenance,
        })
    }

    /// Every action name the rules refer to (in `actions` or `after_ack`), so the caller can
    /// check at load time that each one is defined.
    pub fn action_names(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .flat_map(|r| {
                r.actions
                    .iter()
                    .chain(&r.after_ack)
                    .chain(r.escalate.iter().flat_map(|(_, a)| a))
            })
            .map(String::as_str)
            .collect()
    }
}

fn compile_rule(config: &RuleConfig, schedules: &BTreeMap<String, Schedule>) -> Result<Rule> {
    let what = "event rule";
    let name = &config.name;
    if name.trim().is_empty() {
        return Err(bad(what, name, "name", "a rule needs a name"));
    }
    let sources = config
        .sources
        .iter()
        .map(|s| {
            s.parse::<EventSource>()
                .map_err(|e| bad(what, name, "sources", &e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let min_severity = match &config.min_severity {
        None => Severity::Info,
        Some(s) => s
            .parse::<Severity>()
            .map_err(|e| bad(what, name, "min_severity", &e.to_string()))?,
    };
    let text = config
        .text
        .as_deref()
        .map(|re| {
            RegexBuilder::new(re)
                .size_limit(TEXT_REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| bad(what, name, "text", &e.to_string()))
        })
        .transpose()?;
    let rate_limit = config
        .rate_limit
        .as_ref()
        .map(|limit| {
            if limit.count == 0 {
                return Err(bad(what, name, "rate_limit.count", "must be at least 1"));
            }
            let per = parse_duration(&limit.per)
                .map_err(|reason| bad(what, name, "rate_limit.per", &reason))?;
            if per.is_zero() {
                return Err(bad(
                    what,
                    name,
                    "rate_limit.per",
                    "must be longer than zero",
                ));
            }
            Ok((limit.count, duration_ns(per)))
        })
        .transpose()?;
    for action in config.actions.iter().chain(&config.after_ack) {
        if action.trim().is_empty() {
            return Err(bad(what, name, "actions", "an action name is empty"));
        }
    }
    let mut escalate = Vec::with_capacity(config.escalate.len());
    for (i, step) in config.escalate.iter().enumerate() {
        let field = format!("escalate[{i}]");
        let after = parse_duration(&step.after)
            .map_err(|reason| bad(what, name, &format!("{field}.after"), &reason))?;
        if after.is_zero() {
            return Err(bad(
                what,
                name,
                &format!("{field}.after"),
                "must be longer than zero (use `actions` for what runs at once)",
            ));
        }
        if step.actions.is_empty() {
            return Err(bad(
                what,
                name,
                &format!("{field}.actions"),
                "name at least one action",
            ));
        }
        if step.actions.iter().any(|a| a.trim().is_empty()) {
            return Err(bad(
                what,
                name,
                &format!("{field}.actions"),
                "an action name is empty",
            ));
        }
        escalate.push((duration_ns(after), step.actions.clone()));
    }
    Ok(Rule {
        name: name.clone(),
        sources,
        target: Target {
            devices: config.devices.clone(),
            groups: config.groups.clone(),
        },
        min_severity,
        text,
        schedule: lookup_schedule(what, name, &config.schedule, schedules)?,
        actions: config.actions.clone(),
        after_ack: config.after_ack.clone(),
        rate_limit,
        stop: config.stop,
        escalate,
    })
}

fn lookup_schedule(
    what: &'static str,
    name: &str,
    wanted: &Option<String>,
    schedules: &BTreeMap<String, Schedule>,
) -> Result<Option<Schedule>> {
    wanted
        .as_deref()
        .map(|s| {
            schedules
                .get(s)
                .cloned()
                .ok_or_else(|| bad(what, name, "schedule", &format!("no schedule named `{s}`")))
        })
        .transpose()
}

/// An error naming the item (rule, window) and the field.
fn bad(what: &'static str, name: &str, field: &str, reason: &str) -> Error {
    Error::BadSpec {
        what,
        input: name.to_owned(),
        reason: format!("field `{field}`: {reason}"),
    }
}

/// A maintenance window's length as written (`90s`, `30m`, `2h`, `1h 30m`, `3days`): longer
/// than zero. The error says what was wrong with `text`.
pub fn parse_window_length(text: &str) -> std::result::Result<Duration, String> {
    let length = parse_duration(text)?;
    if length.is_zero() {
        return Err(format!("`{text}` is zero: a window lasts longer than that"));
    }
    Ok(length)
}

/// A human duration (`90s`, `5m`, `1h 30m`).
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}`: {e} (expected a duration like 30s, 5m or 1h)"))
}

pub(super) fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Nanoseconds since the Unix epoch, saturated to `i64`.
pub(super) fn unix_ns(t: OffsetDateTime) -> i64 {
    let ns = t.unix_timestamp_nanos();
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}
