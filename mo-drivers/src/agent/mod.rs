//! `agent://AGENT/PORT`: a port of a console server held by `mo-agent` (docs/agent.md).
//!
//! The agent dials the daemon's SSH door and offers its ports over that one connection; the
//! daemon, not this crate, holds those connections. So an [`AgentConnector`] only reads the
//! address, and opens links through the [`AgentPorts`] the daemon hands in with
//! [`DriverOptions::agents`](crate::DriverOptions::agents). Without one (in `mo` on a data
//! directory, in an embedding program without agents), connecting fails with a clear error.
//!
//! Line settings in the address (`agent://cs1/ttyS3?baud=9600&parity=even&flow=none`) are pushed
//! to the agent, which applies them to the port.
//!
//! [`codec`] is the wire format both sides speak; [`EnrollToken`] is the one-time token
//! `mo agent add` prints and `mo-agent --enroll` takes.
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let device = connector_for("agent://cs1/ttyS3?baud=9600", &DriverOptions::default()).unwrap();
//! assert_eq!(device.address(), "agent://cs1/ttyS3?baud=9600");
//! assert!(connector_for("agent://cs1", &DriverOptions::default()).is_err());
//! ```

pub mod codec;
pub mod spool_record;
mod token;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, Link};
use mo_core::{Error, Result};
use url::Url;

use crate::address::{self, DriverOptions, Query};

#[cfg(feature = "ssh")]
pub use token::host_key_fingerprint;
pub use token::{ENROLL_PREFIX, EnrollToken};

/// The query parameters an `agent://` address takes: the line settings pushed to the agent.
pub const SETTINGS_KEYS: &[&str] = &["baud", "parity", "data", "stop", "flow"];

/// The query parameters an `agent://` address takes for its water marks (kept by the daemon).
pub const MARK_KEYS: &[&str] = &["high", "low"];

/// The high mark used when an address gives none: bytes per second over [`MARK_WINDOW`].
pub const DEFAULT_HIGH_MARK: u64 = 8192;

/// The window over which the high mark's rate is taken.
pub const MARK_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// A port's water marks: `high` (bytes per second over [`MARK_WINDOW`]: a flooding console)
/// and `low` (no output for this long: a silent console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaterMarks {
    /// Output rate above which the port floods (`None`: off, written `high=0`).
    pub high: Option<u64>,
    /// Silence after which the port is quiet (`None`: off, the default).
    pub low: Option<std::time::Duration>,
}

impl Default for WaterMarks {
    /// The built-in marks: high [`DEFAULT_HIGH_MARK`], low off.
    fn default() -> Self {
        WaterMarks {
            high: Some(DEFAULT_HIGH_MARK),
            low: None,
        }
    }
}

/// A high mark as written (`2000`: bytes per second; `0`: off).
pub fn parse_high_mark(text: &str) -> std::result::Result<Option<u64>, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!(
            "high mark `{text}`: give bytes per second (0: off)"
        )),
    }
}

/// A low mark as written (`30s`, `5m`; `0`: off).
pub fn parse_low_mark(text: &str) -> std::result::Result<Option<std::time::Duration>, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .map(|d| Some(d).filter(|d| !d.is_zero()))
        .map_err(|e| format!("low mark `{text}`: {e} (write 30s, 5m; 0: off)"))
}

/// The water marks of an `agent://…?high=BYTES_PER_S&low=DURATION` address (`low=30s`,
/// `low=5m`); the high mark defaults to [`DEFAULT_HIGH_MARK`], the low mark to off.
///
/// ```
/// use mo_drivers::agent::{water_marks, DEFAULT_HIGH_MARK};
/// let m = water_marks("agent://cs1/p0?low=30s").unwrap();
/// assert_eq!(m.high, Some(DEFAULT_HIGH_MARK));
/// assert_eq!(m.low, Some(std::time::Duration::from_secs(30)));
/// assert_eq!(water_marks("agent://cs1/p0?high=0").unwrap().high, None);
/// assert!(water_marks("agent://cs1/p0?low=soon").is_err());
/// ```
pub fn water_marks(address: &str) -> Result<WaterMarks> {
    water_marks_over(address, WaterMarks::default())
}

/// The water marks of an `agent://` address over `defaults` (the agent's, for its port): a mark
/// the address gives wins, one it leaves out is the default's.
///
/// ```
/// use std::time::Duration;
/// use mo_drivers::agent::{WaterMarks, water_marks_over};
/// let agent = WaterMarks { high: Some(2000), low: Some(Duration::from_secs(60)) };
/// let m = water_marks_over("agent://cs1/p0?high=500", agent).unwrap();
/// assert_eq!(m, WaterMarks { high: Some(500), low: Some(Duration::from_secs(60)) });
/// assert_eq!(water_marks_over("agent://cs1/p0?low=0", agent).unwrap().low, None);
/// ```
pub fn water_marks_over(address: &str, defaults: WaterMarks) -> Result<WaterMarks> {
    let url = address::parse(address)?;
    let keys: Vec<&str> = SETTINGS_KEYS.iter().chain(MARK_KEYS).copied().collect();
    let query = Query::parse(&url, address, &keys)?;
    let high = match query.single("high")? {
        None => defaults.high,
        Some(text) => parse_high_mark(text).map_err(|e| address::bad(address, e))?,
    };
    let low = match query.single("low")? {
        None => defaults.low,
        Some(text) => parse_low_mark(text).map_err(|e| address::bad(address, e))?,
    };
    Ok(WaterMarks { high, low })
}

/// What the daemon provides so that `agent://` links reach the agents connected to it.
#[async_trait]
pub trait AgentPorts: Send + Sync {
    /// Open a link to `port` of `agent`, pushing `settings` (`baud=9600&parity=even`, or empty)
    /// to the agent first. Waits a short while for an agent that is reconnecting; errors say
    /// which agent or port is missing.
    async fn open(&self, agent: &str, port: &str, settings: &str) -> Result<Link>;
}

/// The agents' ports, as handed to the drivers: empty (no agents) or the daemon's.
#[derive(Clone, Default)]
pub struct AgentDirectory(Option<Arc<dyn AgentPorts>>);

impl AgentDirectory {
    /// A directory backed by `ports`.
    pub fn new(ports: Arc<dyn AgentPorts>) -> Self {
        AgentDirectory(Some(ports))
    }

    /// The provider, if any.
    pub fn ports(&self) -> Option<&Arc<dyn AgentPorts>> {
        self.0.as_ref()
    }
}

impl fmt::Debug for AgentDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "AgentDirectory(daemon)"
        } else {
            "AgentDirectory(none)"
        })
    }
}

impl PartialEq for AgentDirectory {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for AgentDirectory {}

/// Opens links to one port of one agent.
#[derive(Debug, Clone)]
pub struct AgentConnector {
    agent: String,
    port: String,
    settings: String,
    address: String,
    directory: AgentDirectory,
}

impl AgentConnector {
    /// Read `agent://AGENT/PORT[?baud=…&parity=…&data=…&stop=…&flow=…]`.
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_no_fragment(url, address)?;
        if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
            return Err(address::bad(
                address,
                "`agent` addresses take no user name, password or port; write agent://AGENT/PORT",
            ));
        }
        let agent = url.host_str().unwrap_or_default().to_owned();
        if agent.is_empty() {
            return Err(address::bad(
                address,
                "no agent name; write agent://AGENT/PORT",
            ));
        }
        let path = url.path().trim_start_matches('/');
        let port = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| address::bad(address, "the port name is not valid UTF-8"))?
            .into_owned();
        if port.is_empty() || port.contains('/') {
            return Err(address::bad(
                address,
                "give one port name after the agent; write agent://AGENT/PORT",
            ));
        }
        water_marks(address)?;
        let keys: Vec<&str> = SETTINGS_KEYS.iter().chain(MARK_KEYS).copied().collect();
        let query = Query::parse(url, address, &keys)?;
        let mut settings = Vec::new();
        for key in SETTINGS_KEYS {
            if let Some(value) = query.single(key)? {
                settings.push(format!("{key}={value}"));
            }
        }
        Ok(AgentConnector {
            agent,
            port,
            settings: settings.join("&"),
            address: address::display(url),
            directory: opts.agents.clone(),
        })
    }

    /// The agent's name.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The port's name on the agent.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The line settings pushed to the agent (`baud=9600&parity=even`), or empty.
    pub fn settings(&self) -> &str {
        &self.settings
    }
}

/// The agent and the port an `agent://AGENT/PORT[?…]` address names; `None` for any other
/// address (or a malformed one). What the daemon matches a port's local users against.
///
/// ```
/// use mo_drivers::agent::agent_port;
/// assert_eq!(agent_port("agent://cs1/p0?baud=9600"), Some(("cs1".into(), "p0".into())));
/// assert_eq!(agent_port("serial:///dev/ttyS0"), None);
/// ```
pub fn agent_port(address: &str) -> Option<(String, String)> {
    let url = address::parse(address).ok()?;
    if url.scheme() != "agent" {
        return None;
    }
    let c = AgentConnector::from_url(&url, address, &DriverOptions::default()).ok()?;
    Some((c.agent, c.port))
}

#[async_trait]
impl Connector for AgentConnector {
    async fn connect(&self) -> Result<Link> {
        let Some(ports) = self.directory.ports() else {
            return Err(Error::Connect {
                address: self.address.clone(),
                reason:
                    "agent ports are reached through the daemon (mod) the agent is connected to"
                        .into(),
            });
        };
        ports.open(&self.agent, &self.port, &self.settings).await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_break(true)
            .with_line_settings(true)
            .with_modem_lines(true)
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

/// The capability bits of [`codec::PortInfo::caps`] for `caps`.
pub fn caps_bits(caps: Capabilities) -> u8 {
    u8::from(caps.send_break)
        | (u8::from(caps.line_settings) << 1)
        | (u8::from(caps.modem_lines) << 2)
}

/// Names of the abilities in [`codec::PortInfo::caps`] bits (`break, settings, modem`).
pub fn caps_names(bits: u8) -> String {
    let names: Vec<&str> = [(1, "break"), (2, "settings"), (4, "modem")]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| name)
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConnector> {
        let url = address::parse(text)?;
        AgentConnector::from_url(&url, text, &DriverOptions::default())
    }

    #[test]
    fn reads_agent_port_and_settings() {
        let c = parse("agent://cs1/ttyS3?parity=even&baud=9600").unwrap();
        assert_eq!((c.agent(), c.port()), ("cs1", "ttyS3"));
        assert_eq!(c.settings(), "baud=9600&parity=even");
        assert!(c.capabilities().send_break);
        let c = parse("agent://cs1/usb%20a").unwrap();
        assert_eq!(c.port(), "usb a");
        for (bad, needle) in [
            ("agent://cs1", "give one port name"),
            ("agent://cs1/", "give one port name"),
            ("agent://cs1/a/b", "give one port name"),
            ("agent:///ttyS0", "no agent name"),
            ("agent://u@cs1/p", "no user name"),
            ("agent://cs1:22/p", "no user name"),
            ("agent://cs1/p?speed=1", "speed"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn without_a_daemon_connecting_says_so() {
        let c = parse("agent://cs1/ttyS3").unwrap();
        let e = c.connect().await.unwrap_err().to_string();
        assert!(e.contains("through the daemon"), "{e}");
    }

    #[test]
    fn capability_bits_name_themselves() {
        let caps = Capabilities::NONE.with_break(true).with_modem_lines(true);
        assert_eq!(caps_bits(caps), 5);
        assert_eq!(caps_names(5), "break,modem");
        assert_eq!(caps_names(0), "-");
    }
}
