//! The record log: `GET …/log`, `GET …/log/search`, `POST …/log/verify`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /api/v1/devices/{name}/log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Start time: RFC 3339, `now`, or a duration ago like `1h30m` (times before 1970 mean the
    /// start of the log). A range whose end is not after its start is empty.
    #[param(schema_with = crate::schema::time_spec)]
    pub since: Option<String>,
    /// End time (exclusive), in the same forms as `since`.
    #[param(schema_with = crate::schema::time_spec)]
    pub until: Option<String>,
    /// Only the last N records.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    pub tail: Option<u64>,
}

/// Query of `GET /api/v1/devices/{name}/log/search`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Regular expression (Rust `regex` syntax: no look-around or back-references).
    #[param(required = true, min_length = 1, format = Regex)]
    pub q: Option<String>,
    /// Start time: RFC 3339, `now`, or a duration ago like `1h30m` (times before 1970 mean the
    /// start of the log). A range whose end is not after its start is empty.
    #[param(schema_with = crate::schema::time_spec)]
    pub since: Option<String>,
    /// End time (exclusive), in the same forms as `since`.
    #[param(schema_with = crate::schema::time_spec)]
    pub until: Option<String>,
    /// At most this many hits (default 1000).
    #[param(minimum = 1, maximum = 100_000)]
    pub limit: Option<u64>,
}

/// One line found by a log search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// When (RFC 3339; a continuation line has its record's time).
    #[schema(format = DateTime)]
    pub time: String,
    /// The rendered line.
    pub line: String,
    /// Who typed it (input lines) or wrote it (notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub user: Option<String>,
}

impl SearchHit {
    /// A hit at `time` without a user.
    pub fn new(time: impl Into<String>, line: impl Into<String>) -> Self {
        SearchHit {
            time: time.into(),
            line: line.into(),
            user: None,
        }
    }
}

/// Query of `POST /api/v1/devices/{name}/log/verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Also compare this log with every node's copy of it (`mod --cluster … --share-devices`):
    /// each divergence is a problem naming the node, the device and the record.
    pub replicas: Option<bool>,
}

/// The answer of a log verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Verify)]
pub struct VerifyReport {
    /// True if the log is intact.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// Segment files checked.
    #[serde(default)]
    #[schema(required = false)]
    pub segments: u64,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// Things worth knowing that are not damage (a torn final record).
    #[serde(default)]
    #[schema(required = false)]
    pub warnings: Vec<String>,
}
