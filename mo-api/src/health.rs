//! `GET /api/v1/health`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether every part works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Everything works.
    Ok,
    /// Some part does not work (see [`Health::parts`] and [`Health::degraded`]).
    Degraded,
}

crate::api_names!(HealthStatus, "health status", "ok or degraded", {
    HealthStatus::Ok => "ok",
    HealthStatus::Degraded => "degraded",
});

/// Liveness, version and the parts that are degraded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while a record log cannot write.
    pub status: HealthStatus,
    /// The daemon's version.
    pub version: String,
    /// Consoles whose record log cannot write.
    #[serde(default)]
    pub log_degraded: u64,
    /// Each part of the daemon with its own status: `log` (record logs), `store` (the SQLite
    /// store), `cluster` (NATS, only with `mod --cluster`).
    #[serde(default)]
    pub parts: Vec<HealthPart>,
    /// Only for an authenticated caller: the degraded parts of the devices it may list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub degraded: Option<Vec<Degraded>>,
}

impl Health {
    /// A health answer (`degraded` left out).
    pub fn new(status: HealthStatus, version: impl Into<String>, log_degraded: u64) -> Self {
        Health {
            status,
            version: version.into(),
            log_degraded,
            parts: Vec::new(),
            degraded: None,
        }
    }
}

/// One part of the daemon and whether it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthPart {
    /// `log`, `store` or `cluster`.
    pub name: String,
    /// `ok` or `degraded`.
    pub status: HealthStatus,
    /// What is wrong, for an authenticated caller (absent when the part is ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub detail: Option<String>,
}

impl HealthPart {
    /// A part with its status and, when degraded, what is wrong.
    pub fn new(name: impl Into<String>, detail: Option<String>) -> Self {
        HealthPart {
            name: name.into(),
            status: if detail.is_some() {
                HealthStatus::Degraded
            } else {
                HealthStatus::Ok
            },
            detail,
        }
    }
}

/// One degraded part of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Degraded {
    /// The device.
    pub device: String,
    /// Which part: `log` (its record log cannot write).
    #[schema(pattern = "^log$")]
    pub part: String,
    /// The last error.
    pub error: String,
    /// Since when (RFC 3339).
    #[schema(format = DateTime)]
    pub since: String,
    /// Records not written since then.
    pub lost_records: u64,
    /// Bytes not written since then.
    pub lost_bytes: u64,
}

/// Whether the daemon is ready for users (`GET /api/v1/ready`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `true` once every front door listens and the consoles of the store were started.
    pub ready: bool,
    /// What it waits for (absent when ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}
