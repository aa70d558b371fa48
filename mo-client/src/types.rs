//! The JSON objects of the API are the types of [`mo_api`], re-exported here: the daemon
//! answers with them and the client reads its answers into the same types. This module adds the
//! client's own query builders ([`EventQuery`], [`LogQuery`]).

pub use mo_api::{
    Device, DeviceReason, DeviceState, Event, GangReport, Health, HealthStatus, MacroPlan,
    MacroResult, MacroResults, NewDevice, PlayReport, PlayRequest, PowerAction, PowerReport,
    PowerResult, PowerState, SearchHit, SessionInfo, Settings, SettingsInput, Severity, User,
    VerifyReport, Viewer, ViewerRole,
};

/// Line signals (`POST /api/v1/devices/{name}/signals`) and modem lines of a [`Device`].
pub use mo_api::{LineSetting, LineWord, Lines, Modem, SignalReport, SignalRequest};

/// Discovery through the daemon (`POST /api/v1/discover`).
pub use mo_api::{DiscoverCredential, DiscoverReport, DiscoverRequest, DiscoveredHost};

/// The site (`GET /api/v1/cluster`).
pub use mo_api::{ClusterConsole, ClusterNode, ClusterStatus, NodeState};

/// A user's SSH public key (`/api/v1/users/{name}/keys`).
pub use mo_api::SshKey;

/// A maintenance window (`/api/v1/maintenance`).
pub use mo_api::Maintenance;

/// Host info (`GET /api/v1/hosts/{name}/{what}`).
pub use mo_api::{DAEMON_HOST, HostInfo, HostInfoKind};

/// A role (`GET /api/v1/roles`).
pub use mo_api::Role as RoleInfo;

/// Device groups, user groups and grants (`/api/v1/groups`, `/api/v1/usergroups`,
/// `/api/v1/grants`).
pub use mo_api::{DeviceGroup, DeviceGroupChange, DeviceGroupDetail, Grant, UserGroup};

/// Parse a power action (`on`, `off`, `cycle`, `reset`, `soft-off` or `softoff`, `status`).
pub fn parse_power_action(text: &str) -> mo_core::Result<PowerAction> {
    text.parse().map_err(|_| mo_core::Error::BadSpec {
        what: "power action",
        input: text.to_string(),
        reason: "expected on, off, cycle, reset, soft-off or status".into(),
    })
}

/// Filter of [`crate::Client::list_events`].
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
