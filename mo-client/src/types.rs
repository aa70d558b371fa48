//! The JSON objects of the API (see docs and `API.md`). Times are RFC 3339 UTC strings as sent.
//! Unknown fields are ignored, so newer servers that add fields still work.

use serde::{Deserialize, Serialize};

/// A device (`GET /api/v1/devices`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its access address.
    pub url: String,
    /// The link's state: `up`, `down`, `connecting`, `idle`.
    pub state: String,
    /// How many viewers are attached.
    #[serde(default)]
    pub viewers: u64,
    /// The device groups it belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Its description, if any.
    #[serde(default)]
    pub description: Option<String>,
    /// Why its console is not running, if it is not.
    #[serde(default)]
    pub error: Option<String>,
    /// Its settings (only from `GET /api/v1/devices/{name}`).
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
}

/// A viewer of a console (`who`, `sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The device (set by `GET /api/v1/sessions`).
    #[serde(default)]
    pub device: Option<String>,
    /// The user.
    pub user: String,
    /// `attach` (holds the write lock), `join` or `spy`.
    pub role: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// Where the viewer came from (front door and address), if the server says.
    #[serde(default)]
    pub origin: Option<String>,
}

/// One power controller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PowerResult {
    /// The controller.
    pub controller: String,
    /// `on`, `off` or `unknown`.
    pub state: String,
    /// What went wrong, if anything.
    #[serde(default)]
    pub error: Option<String>,
}

/// The answer of a power request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PowerReport {
    /// The device.
    pub device: String,
    /// The action carried out (absent for a status query).
    #[serde(default)]
    pub action: Option<String>,
    /// Whether the action succeeded on every controller (absent for a status query).
    #[serde(default)]
    pub ok: Option<bool>,
    /// What the controllers said (absent for a status query).
    #[serde(default)]
    pub message: Option<String>,
    /// Each controller's state.
    #[serde(default)]
    pub results: Vec<PowerResult>,
}

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PowerAction {
    /// Switch on.
    On,
    /// Switch off.
    Off,
    /// Off, then on.
    Cycle,
    /// Hard reset.
    Reset,
    /// Ask the OS to shut down.
    SoftOff,
    /// Only report the state.
    Status,
}

impl PowerAction {
    /// The action as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
            PowerAction::SoftOff => "soft-off",
            PowerAction::Status => "status",
        }
    }

    /// Parse `on`, `off`, `cycle`, `reset`, `soft-off` or `status`.
    pub fn parse(text: &str) -> mo_core::Result<PowerAction> {
        Ok(match text {
            "on" => PowerAction::On,
            "off" => PowerAction::Off,
            "cycle" => PowerAction::Cycle,
            "reset" => PowerAction::Reset,
            "soft-off" | "softoff" => PowerAction::SoftOff,
            "status" => PowerAction::Status,
            _ => {
                return Err(mo_core::Error::BadSpec {
                    what: "power action",
                    input: text.to_string(),
                    reason: "expected on, off, cycle, reset, soft-off or status".into(),
                });
            }
        })
    }
}

/// One line found by a log search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchHit {
    /// When (RFC 3339).
    pub time: String,
    /// The line.
    pub line: String,
    /// Who typed it, for input lines.
    #[serde(default)]
    pub user: Option<String>,
}

/// The answer of a log verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// True if the log is intact.
    pub ok: bool,
    /// Records checked.
    #[serde(default)]
    pub records: u64,
    /// Segment files checked.
    #[serde(default)]
    pub segments: Option<u64>,
    /// What is wrong, one line each.
    #[serde(default)]
    pub problems: Vec<String>,
    /// Things worth knowing that are not damage (a torn final record).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// An event (`GET /api/v1/events`, the event stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Its id (for acknowledging).
    pub id: i64,
    /// When (RFC 3339).
    pub time: String,
    /// The device.
    pub device: String,
    /// `info`, `warning`, `critical`, …
    pub severity: String,
    /// The rule or source that raised it.
    pub name: String,
    /// The message.
    pub text: String,
    /// How many times it was raised (repeats are counted).
    #[serde(default)]
    pub count: Option<u64>,
    /// Who acknowledged it.
    #[serde(default)]
    pub acked_by: Option<String>,
}

/// Filter of [`crate::Client::events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventQuery {
    /// Only this device.
    pub device: Option<String>,
    /// At most this many (server default 100).
    pub limit: Option<usize>,
    /// Only unacknowledged events.
    pub unacked: bool,
}

impl EventQuery {
    /// Only events of `device`.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// At most `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Only unacknowledged events.
    pub fn unacked(mut self, yes: bool) -> Self {
        self.unacked = yes;
        self
    }
}

/// Time range and size of [`crate::Client::log`] and [`crate::Client::log_search`]. Times are
/// what `mo log show --since` takes (RFC 3339, `2h`, …); the server parses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogQuery {
    /// From this time.
    pub since: Option<String>,
    /// Until this time.
    pub until: Option<String>,
    /// Only the last N lines (show) / at most N hits (search).
    pub limit: Option<usize>,
}

impl LogQuery {
    /// From `since`.
    pub fn since(mut self, since: impl Into<String>) -> Self {
        self.since = Some(since.into());
        self
    }

    /// Until `until`.
    pub fn until(mut self, until: impl Into<String>) -> Self {
        self.until = Some(until.into());
        self
    }

    /// The last `n` lines, or at most `n` hits.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// A user (`GET /api/v1/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// The name.
    pub name: String,
    /// Whether a password is set.
    #[serde(default)]
    pub has_password: bool,
    /// How many SSH keys are registered.
    #[serde(default)]
    pub ssh_keys: u64,
}

/// A role (`GET /api/v1/roles`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoleInfo {
    /// The name.
    pub name: String,
    /// The actions it grants.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Whether it is built in.
    #[serde(default)]
    pub builtin: bool,
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The daemon's version.
    pub version: String,
}
