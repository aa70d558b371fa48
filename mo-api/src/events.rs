//! Events: `GET /api/v1/events`, `POST /api/v1/events/{id}/ack`, and the event stream's frames.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How bad an event is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Notice,
    /// Something may be wrong.
    Warning,
    /// Something is wrong.
    Error,
    /// Act now.
    Critical,
}

crate::api_names!(Severity, "severity", "info, notice, warning, error or critical", {
    Severity::Info => "info",
    Severity::Notice => "notice",
    Severity::Warning => "warning",
    Severity::Error => "error",
    Severity::Critical => "critical",
});

/// An event (`GET /api/v1/events`, one per frame of the event stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Its id (for acknowledging).
    pub id: u64,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    pub time: String,
    /// The device.
    pub device: String,
    /// How bad.
    pub severity: Severity,
    /// The rule or source that raised it.
    pub name: String,
    /// The message.
    pub text: String,
    /// How many times it was raised (repeats are counted).
    #[serde(default = "one")]
    #[schema(required = false)]
    pub count: u64,
    /// Who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub acked_by: Option<String>,
    /// The node of the site (`mod --cluster`) that raised it, when another node did: its
    /// actions ran there. Absent for an event of this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub node: Option<String>,
}

fn one() -> u64 {
    1
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this device.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub device: Option<String>,
    /// At most this many, the newest (default 100).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<u64>,
    /// Only unacknowledged events.
    pub unacked: Option<bool>,
}

/// The path parameter of `POST /api/v1/events/{id}/ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventId {
    /// The event id.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub id: u64,
}

/// Where a raised event comes from (`POST /api/v1/events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RaiseSource {
    /// An operator raised it by hand (the default).
    #[default]
    Manual,
    /// Another system sent it (a monitoring system, a script).
    External,
}

crate::api_names!(RaiseSource, "event source", "manual or external", {
    RaiseSource::Manual => "manual",
    RaiseSource::External => "external",
});

/// The most characters of a raised event's message.
pub const MAX_RAISE_MESSAGE_CHARS: usize = 1024;
/// The most context lines of a raised event.
pub const MAX_RAISE_CONTEXT_LINES: usize = 50;

/// The body of `POST /api/v1/events`: an event from outside, which goes through the same rules
/// (dedup, rate limits, maintenance, actions) as the events mo raises itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseEvent {
    /// The device it is about (need not be a console mo serves).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub device: String,
    /// How bad.
    pub severity: Severity,
    /// What happened: one line without control characters.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub message: String,
    /// `manual` (default) or `external`.
    #[serde(default)]
    #[schema(required = false)]
    pub source: RaiseSource,
    /// Lines of context, oldest first (at most 50; each is cut at 1024 characters, control
    /// characters become spaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false, max_items = 50)]
    pub context: Vec<String>,
}
