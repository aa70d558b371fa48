//! IPMI over LAN (RMCP+): Serial-over-LAN consoles and chassis power control.
//!
//! Address: `ipmi://USER@BMC[:PORT][?PARAMS]` (port 623 by default). The password comes from
//! [`crate::Credentials::password`] and the BMC key K_g, when the BMC uses one, from
//! [`crate::Credentials::bmc_key`] (40 hex digits, or text); neither ever appears in the address.
//!
//! | parameter | values | default | meaning |
//! |-----------|--------|---------|---------|
//! | `cipher` | `3`, `17` | `3` | RMCP+ cipher suite: 3 = HMAC-SHA1 / HMAC-SHA1-96 / AES-CBC-128, 17 = the SHA-256 variants |
//! | `privilege` | `admin`, `operator`, `user` | `admin` | session privilege (Set Session Privilege Level) |
//! | `steal` | `1`/`true`/`yes`, `0`/`false`/`no` | `0` | when SOL is already active for another client (often a stale session of a crashed client), deactivate it and take over |
//! | `timeout` | seconds (decimal) | `1` | wait per try for each answer; 4 tries |
//! | `keepalive` | seconds (decimal) | `10` | SOL keepalive interval; the link goes down after 3 unanswered |
//!
//! Modules: [`rmcp`] is the sans-I/O codec, [`crypto`] the RMCP+ cryptography, [`session`] the
//! async session, [`sol`] the console link ([`IpmiConnector`]) and [`chassis`] the power
//! controller ([`IpmiPower`]).
//!
//! ```
//! use mo_drivers::ipmi::{CipherSuite, IpmiConfig, Privilege};
//! use mo_drivers::{Credentials, DriverOptions};
//!
//! let opts = DriverOptions::new().with_credentials(Credentials::new().with_password("pw"));
//! let config = IpmiConfig::from_address("ipmi://admin@bmc1:9623?cipher=17&steal=1", &opts).unwrap();
//! assert_eq!((config.host.as_str(), config.port, config.user.as_str()), ("bmc1", 9623, "admin"));
//! assert_eq!((config.cipher, config.privilege, config.steal), (CipherSuite::Suite17, Privilege::Admin, true));
//! assert!(IpmiConfig::from_address("ipmi://bmc1", &opts).is_err()); // no user name
//! ```

pub mod chassis;
// Protocol internals: public for the fuzz targets and the integration tests, not a stable API.
#[doc(hidden)]
pub mod crypto;
#[doc(hidden)]
pub mod rmcp;
pub mod session;
pub mod sol;

use std::time::Duration;

use mo_core::Result;
use mo_core::secret::Secret;
use url::Url;

use crate::address::{self, DriverOptions, Query};
pub use crypto::CipherSuite;

pub use chassis::IpmiPower;
pub use sol::IpmiConnector;

/// The RMCP+ port.
pub const DEFAULT_PORT: u16 = 623;

/// The privilege level a session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// User: read-only commands.
    User,
    /// Operator: SOL and chassis control on most BMCs.
    Operator,
    /// Administrator.
    Admin,
}

impl Privilege {
    /// The level's name as addresses spell it.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::User => "user",
            Privilege::Operator => "operator",
            Privilege::Admin => "admin",
        }
    }
}

/// Everything needed to reach one BMC, read from an `ipmi://` address and driver options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IpmiConfig {
    /// The address for messages (no secrets).
    pub display: String,
    /// The BMC host name or IP address.
    pub host: String,
    /// The BMC's UDP port.
    pub port: u16,
    /// The IPMI user name.
    pub user: String,
    /// The user's password (empty when none was given).
    pub password: Secret,
    /// The BMC key K_g, when the BMC uses one.
    pub bmc_key: Option<Secret>,
    /// The cipher suite.
    pub cipher: CipherSuite,
    /// The session privilege.
    pub privilege: Privilege,
    /// Take over a SOL payload that is active for another client.
    pub steal: bool,
    /// Wait per try for each answer.
    pub timeout: Duration,
    /// Tries per request.
    pub retries: u32,
    /// SOL keepalive interval.
    pub keepalive: Duration,
}

const PARAMS: &[&str] = &["cipher", "privilege", "steal", "timeout", "keepalive"];

fn seconds(value: &str) -> std::result::Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "a number of seconds between 0 and 3600".to_owned())
}

impl IpmiConfig {
    /// Read `address` (see the [module documentation](self)).
    pub fn from_address(address: &str, opts: &DriverOptions) -> Result<Self> {
        let url = address::parse(address)?;
        Self::from_url(&url, address, opts)
    }

    /// Read an already parsed `ipmi://` URL.
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_no_fragment(url, address)?;
        if url.scheme() != "ipmi" {
            return Err(address::bad(address, "not an `ipmi://` address"));
        }
        if url.password().is_some() {
            // Name the address without the password it carries.
            return Err(address::bad(
                &address::display(url),
                "passwords do not belong in addresses; store the BMC password as the device's credential",
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| address::bad(address, "no BMC host; write ipmi://USER@BMC"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(url.path(), "" | "/") {
            return Err(address::bad(
                address,
                format!(
                    "unexpected path `{}`; write ipmi://USER@BMC[:PORT]",
                    url.path()
                ),
            ));
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8()
            .map_err(|_| address::bad(address, "the user name is not valid UTF-8"))?
            .into_owned();
        if user.is_empty() {
            return Err(address::bad(address, "no user name; write ipmi://USER@BMC"));
        }
        if user.len() > 16 {
            return Err(address::bad(
                address,
                "IPMI user names are at most 16 bytes long",
            ));
        }
        let query = Query::parse(url, address, PARAMS)?;
        let cipher = query
            .parsed("cipher", |v| {
                v.parse::<u8>()
                    .ok()
                    .and_then(CipherSuite::from_id)
                    .ok_or_else(|| "3 or 17".to_owned())
            })?
            .unwrap_or(CipherSuite::Suite3);
        let privilege = query
            .parsed("privilege", |v| match v.to_ascii_lowercase().as_str() {
                "admin" | "administrator" => Ok(Privilege::Admin),
                "operator" => Ok(Privilege::Operator),
                "user" => Ok(Privilege::User),
                _ => Err("admin, operator or user".to_owned()),
            })?
            .unwrap_or(Privilege::Admin);
        let steal = query
            .parsed("steal", |v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err("1 or 0".to_owned()),
            })?
            .unwrap_or(false);
        let timeout = query
            .parsed("timeout", seconds)?
            .unwrap_or(Duration::from_secs(1));
        let keepalive = query
            .parsed("keepalive", seconds)?
            .unwrap_or(Duration::from_secs(10));
        let creds = &opts.credentials;
        Ok(IpmiConfig {
            display: address::display(url),
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            user,
            password: creds.password.clone().unwrap_or_else(|| Secret::new("")),
            bmc_key: creds.bmc_key.clone(),
            cipher,
            privilege,
            steal,
            timeout,
            retries: 4,
            keepalive,
        })
    }

    /// The BMC key as bytes: 40 hex digits decode to 20 bytes, anything else is used as text.
    pub fn kg(&self) -> Option<Vec<u8>> {
        let key = self.bmc_key.as_ref()?.expose();
        if key.is_empty() {
            return None;
        }
        let hex = key.strip_prefix("0x").unwrap_or(key);
        if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = (0..20)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            return Some(bytes);
        }
        Some(key.as_bytes().to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Credentials;

    #[test]
    fn addresses_parse_with_defaults_and_reject_mistakes() {
        let opts = DriverOptions::new().with_credentials(
            Credentials::new()
                .with_password("pw")
                .with_bmc_key("00112233445566778899aabbccddeeff00112233"),
        );
        let c = IpmiConfig::from_address("ipmi://admin@10.0.0.5", &opts).unwrap();
        assert_eq!(
            (c.port, c.cipher, c.privilege, c.steal),
            (623, CipherSuite::Suite3, Privilege::Admin, false)
        );
        assert_eq!(c.password.expose(), "pw");
        assert_eq!(c.kg().unwrap()[..2], [0x00, 0x11]);
        assert_eq!(c.timeout, Duration::from_secs(1));
        let c = IpmiConfig::from_address(
            "ipmi://op@[::1]:700?privilege=operator&timeout=0.5&keepalive=2&steal=yes",
            &opts,
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.privilege, c.steal),
            ("::1", 700, Privilege::Operator, true)
        );
        assert_eq!(c.timeout, Duration::from_millis(500));
        for (address, needle) in [
            ("ipmi://bmc", "no user name"),
            ("ipmi://u:secret@bmc", "passwords do not belong"),
            ("ipmi://u:secret@bmc", "`ipmi://u@bmc`"),
            ("ipmi://u@bmc?cipher=1", "expected 3 or 17"),
            ("ipmi://u@bmc?privilege=root", "admin, operator or user"),
            ("ipmi://u@bmc?steal=maybe", "1 or 0"),
            ("ipmi://u@bmc?timeout=-1", "seconds"),
            ("ipmi://u@bmc?ciper=3", "unknown parameter `ciper`"),
            ("ipmi://u@bmc/x", "unexpected path"),
            ("ipmi://u@bmc#x", "fragment"),
            ("ipmi://abcdefghijklmnopq@bmc", "at most 16"),
        ] {
            let err = IpmiConfig::from_address(address, &opts)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{address}: {err}");
        }
    }
}
