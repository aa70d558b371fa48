//! `GET /api/v1/cluster`: the nodes of the site (`mod --cluster … --node NAME`), as their
//! heartbeats tell.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DeviceState;

/// What a node name may be (`mod --node NAME`): a letter or digit, then letters, digits, `_`
/// and `-`, 64 at most. It is a key of the NATS KV bucket of heartbeats.
pub const NODE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";

/// How a node stands, as its last heartbeat tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NodeState {
    /// Heard within the last `lost_after` heartbeat intervals.
    Up,
    /// Not heard for longer than `lost_after` of its heartbeat intervals.
    Lost,
    /// Stopped cleanly: its last heartbeat said it was leaving.
    Left,
}

crate::api_names!(NodeState, "node state", "up, lost or left", {
    NodeState::Up => "up",
    NodeState::Lost => "lost",
    NodeState::Left => "left",
});

/// The site as the answering daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// Whether the daemon runs in a cluster (`mod --cluster`); when false, nothing else is set.
    pub enabled: bool,
    /// The answering daemon's node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    pub node: Option<String>,
    /// Whether the answering daemon is connected to NATS now (while it is not, `nodes` is what
    /// it heard last).
    #[serde(default)]
    pub connected: bool,
    /// Why it is not connected or cannot use the site's buckets, while that lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub error: Option<String>,
    /// A node counts as lost when it was not heard for this many of its heartbeat intervals.
    #[serde(default)]
    pub lost_after: u32,
    /// Every node heard of, by name.
    #[serde(default)]
    pub nodes: Vec<ClusterNode>,
}

impl ClusterStatus {
    /// The answer of a daemon that is not in a cluster.
    pub fn disabled() -> Self {
        ClusterStatus {
            enabled: false,
            node: None,
            connected: false,
            error: None,
            lost_after: 0,
            nodes: Vec::new(),
        }
    }
}

/// One node of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterNode {
    /// Its name (`mod --node NAME`).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    pub name: String,
    /// `up`, `lost` or `left`.
    pub state: NodeState,
    /// The version of its `mod`.
    pub version: String,
    /// When NATS stored its last heartbeat (RFC 3339).
    #[schema(format = DateTime)]
    pub last_heard: String,
    /// Milliseconds from its last heartbeat to this answer.
    pub age_ms: u64,
    /// Its heartbeat interval in milliseconds (`mod --heartbeat`).
    pub heartbeat_ms: u64,
    /// Whether it is the answering daemon.
    #[serde(default)]
    pub this_node: bool,
    /// Its consoles the caller may see, with their link state as of its last heartbeat.
    #[serde(default)]
    pub consoles: Vec<ClusterConsole>,
}

/// One console of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterConsole {
    /// The device.
    pub name: String,
    /// Its link state on that node.
    pub state: DeviceState,
}
