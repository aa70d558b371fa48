//! The heartbeat a node puts into the KV bucket [`super::NODES_BUCKET`] under its own name, and
//! how a reader turns the last one it heard into a node's state. Pure: no NATS, no clock.

use std::time::{Duration, SystemTime};

use mo_api::{ClusterConsole, ClusterNode, DeviceState, NodeState};
use serde::{Deserialize, Serialize};

/// The shortest heartbeat interval a reader believes (a beat claiming 0 ms would make its node
/// lost at once).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// One heartbeat: JSON in the bucket, key = the node's name. Fields a reader does not know are
/// ignored, so later versions may add some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// The node's name (`mod --node`); a beat whose name is not its key is ignored.
    pub node: String,
    /// A random id of the daemon process: two daemons started with the same `--node` show as
    /// two ids under one key.
    pub instance: String,
    /// The daemon's version.
    pub version: String,
    /// How often the node beats, in milliseconds.
    pub heartbeat_ms: u64,
    /// The node is stopping cleanly: this is its last beat.
    #[serde(default)]
    pub leaving: bool,
    /// The consoles the node holds and their link state words (`up`, `down`, `connecting`,
    /// `idle`, `stopped`).
    #[serde(default)]
    pub consoles: Vec<BeatConsole>,
}

/// One console in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeatConsole {
    /// The device.
    pub name: String,
    /// Its link state word.
    pub state: String,
}

/// What went wrong reading a heartbeat from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBeat {
    /// The key it was stored under.
    pub key: String,
    /// Why it was ignored.
    pub reason: String,
}

impl std::fmt::Display for BadBeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heartbeat of node `{}` ignored: {}",
            self.key, self.reason
        )
    }
}

impl Beat {
    /// The JSON stored in the bucket.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read the value stored under `key` (bytes from the network: never panics).
    pub fn decode(key: &str, value: &[u8]) -> Result<Beat, BadBeat> {
        let bad = |reason: String| BadBeat {
            key: key.to_string(),
            reason,
        };
        let beat: Beat =
            serde_json::from_slice(value).map_err(|e| bad(format!("not a heartbeat: {e}")))?;
        if beat.node != key {
            return Err(bad(format!("it names node `{}`", beat.node)));
        }
        Ok(beat)
    }

    /// The node as a reader shows it: `heard` is when NATS stored the beat, `now` the reader's
    /// clock; it is lost when older than `lost_after` of its intervals. `visible` filters its
    /// consoles (those the caller may list).
    pub fn to_node(
        &self,
        heard: SystemTime,
        now: SystemTime,
        lost_after: u32,
        this_node: bool,
        visible: &dyn Fn(&str) -> bool,
    ) -> ClusterNode {
        let interval = Duration::from_millis(self.heartbeat_ms).max(MIN_INTERVAL);
        let age = now.duration_since(heard).unwrap_or(Duration::ZERO);
        let state = if self.leaving {
            NodeState::Left
        } else if age > interval.saturating_mul(lost_after.max(1)) {
            NodeState::Lost
        } else {
            NodeState::Up
        };
        ClusterNode {
            name: self.node.clone(),
            state,
            version: self.version.clone(),
            last_heard: rfc3339(heard),
            age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            heartbeat_ms: self.heartbeat_ms,
            this_node,
            consoles: self
                .consoles
                .iter()
                .filter(|c| visible(&c.name))
                .map(|c| ClusterConsole {
                    name: c.name.clone(),
                    state: c.state.parse().unwrap_or(DeviceState::Down),
                })
                .collect(),
        }
    }
}

/// RFC 3339 UTC time of a [`SystemTime`].
fn rfc3339(t: SystemTime) -> String {
    let ns = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    mo_core::log::format_timestamp(ns)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn beat() -> Beat {
        Beat {
            node: "alpha".into(),
            instance: "1f".into(),
            version: "0.1.0".into(),
            heartbeat_ms: 1000,
            leaving: false,
            consoles: vec![
                BeatConsole {
                    name: "web01".into(),
                    state: "up".into(),
                },
                BeatConsole {
                    name: "db01".into(),
                    state: "weird".into(),
                },
            ],
        }
    }

    #[test]
    fn a_beat_reads_back_and_must_name_its_key() {
        let b = beat();
        assert_eq!(Beat::decode("alpha", &b.encode()).unwrap(), b);
        let err = Beat::decode("beta", &b.encode()).unwrap_err();
        assert!(err.to_string().contains("names node `alpha`"), "{err}");
        assert!(Beat::decode("alpha", b"\xff{").is_err());
        assert!(Beat::decode("alpha", b"").is_err());
    }

    #[test]
    fn a_node_is_lost_after_n_intervals_and_left_when_it_said_so() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let all = |_: &str| true;
        let b = beat();
        let at = |secs| t0 + Duration::from_millis(secs);
        assert_eq!(
            b.to_node(t0, at(2_900), 3, false, &all).state,
            NodeState::Up
        );
        assert_eq!(
            b.to_node(t0, at(3_100), 3, false, &all).state,
            NodeState::Lost
        );
        // A reader whose clock is behind the server's sees age 0, not a panic.
        assert_eq!(b.to_node(at(5_000), t0, 3, false, &all).age_ms, 0);
        let mut left = b.clone();
        left.leaving = true;
        assert_eq!(
            left.to_node(t0, at(99_000), 3, false, &all).state,
            NodeState::Left
        );
    }

    #[test]
    fn consoles_are_filtered_and_unknown_states_read_as_down() {
        let t0 = SystemTime::UNIX_EPOCH;
        let node = beat().to_node(t0, t0, 3, true, &|name: &str| name != "web01");
        assert!(node.this_node);
        assert_eq!(node.consoles.len(), 1);
        assert_eq!(node.consoles[0].name, "db01");
        assert_eq!(node.consoles[0].state, DeviceState::Down);
    }
}
