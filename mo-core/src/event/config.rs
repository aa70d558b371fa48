//! The rule configuration as written (TOML-friendly serde structs), before it is checked and
//! compiled by [`super::Rules::from_config`].
//!
//! ```toml
//! dedup_window = "60s"
//!
//! [groups]
//! web = ["web*", "www?"]
//!
//! [schedules.office]
//! days = ["mon", "tue", "wed", "thu", "fri"]
//! hours = ["08:00-18:00"]
//!
//! [[rule]]
//! name = "panics"
//! sources = ["pattern"]
//! groups = ["web"]
//! min_severity = "critical"
//! text = "(?i)kernel panic"
//! actions = ["webhook-oncall"]
//! after_ack = ["power-cycle"]
//! escalate = [{ after = "15m", actions = ["pager"] }]
//! rate_limit = { count = 5, per = "10m" }
//! user = "ops-bot"                  # the identity macro actions play as
//!
//! [[maintenance]]
//! name = "web upgrade"
//! groups = ["web"]
//! start = "2026-11-22T01:00:00Z"
//! end = "2026-11-22T03:00:00Z"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long after an alert's last occurrence an identical one still only adds to its count.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(60);
/// How long `after_ack` actions wait for an acknowledgement before they are forgotten.
pub const DEFAULT_ACK_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// The whole event-manager configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Dedup window as a human duration (`60s`, `5m`; `0s` turns dedup off); default
    /// [`DEFAULT_DEDUP_WINDOW`].
    #[serde(default)]
    pub dedup_window: Option<String>,
    /// How long held `after_ack` actions wait; default [`DEFAULT_ACK_EXPIRY`].
    #[serde(default)]
    pub ack_expiry: Option<String>,
    /// Named device groups, each a list of device-name globs ([`crate::glob`]).
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Named time-of-day schedules, used by rules and maintenance windows.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleConfig>,
    /// The rules, tried in order (`[[rule]]` in TOML).
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
    /// Maintenance windows (`[[maintenance]]` in TOML).
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
}

/// One rule: which events it matches and what it does with them. Empty lists match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name, unique, used in errors and decisions.
    pub name: String,
    /// Sources matched (`pattern`, `connection`, `power`, `file`, `agent`, `manual`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Device-name globs matched. A rule with both `devices` and `groups` matches a device in
    /// either.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Groups matched: a group of [`RulesConfig::groups`] or a group the producer names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The least severity matched (`info`, `notice`, `warning`, `error`, `critical`).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// A regular expression the message must match (anywhere; anchor it with `^…$`).
    #[serde(default)]
    pub text: Option<String>,
    /// A schedule name: the rule only matches while the schedule is active.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Actions run when a new event matches, by name.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Actions held until an operator acknowledges the event, by name.
    #[serde(default)]
    pub after_ack: Vec<String>,
    /// At most this many action runs per device and period.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Stop trying later rules once this one matches.
    #[serde(default)]
    pub stop: bool,
    /// Further actions for an event still unacknowledged after a delay, each step run once;
    /// an acknowledgement cancels the steps not yet due.
    #[serde(default)]
    pub escalate: Vec<EscalateConfig>,
    /// The identity the rule's macro actions play as: its `macro.run` right on the event's
    /// device is checked and audited when the macro runs.
    #[serde(default)]
    pub user: Option<String>,
}

/// One escalation step: `{ after = "15m", actions = ["pager"] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateConfig {
    /// How long after the event the step runs if nobody acknowledged it (`90s`, `15m`).
    pub after: String,
    /// The actions it runs, by name.
    pub actions: Vec<String>,
}

/// A rate limit: at most `count` runs per `per`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Runs allowed per period (at least 1).
    pub count: u32,
    /// The period, as a human duration (`1m`, `1h`).
    pub per: String,
}

/// A time-of-day schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Days of the week (`mon` … `sun`, or full names); empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// `hh:mm-hh:mm` ranges, end excluded; empty means all day.
    #[serde(default)]
    pub hours: Vec<String>,
    /// Evaluate in UTC instead of the offset of the time the caller passes.
    #[serde(default)]
    pub utc: bool,
}

/// A maintenance window: while it is active, matching events are stored but their actions are
/// suppressed. Give `start` and `end`, or a `schedule`, or all three (then both must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// The window's name, unique.
    pub name: String,
    /// Device-name globs covered.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Groups covered.
    #[serde(default)]
    pub groups: Vec<String>,
    /// When it starts, RFC 3339 (`2026-11-22T01:00:00Z`).
    #[serde(default)]
    pub start: Option<String>,
    /// When it ends (excluded), RFC 3339.
    #[serde(default)]
    pub end: Option<String>,
    /// A recurring schedule by name.
    #[serde(default)]
    pub schedule: Option<String>,
}
