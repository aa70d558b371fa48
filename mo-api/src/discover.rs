//! Discovery through the daemon: `POST /api/v1/discover` probes the addresses given from the
//! daemon's host and returns the plan `mo discover` prints; with `apply` it adds the devices.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// At most this many addresses in one `POST /api/v1/discover` (a /20).
pub const MAX_DISCOVER_ADDRESSES: usize = 4096;

/// The body of `POST /api/v1/discover`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// What to probe: addresses (`10.0.0.5`), CIDR ranges (`10.0.0.0/24`) or `FIRST-LAST`
    /// (`10.0.0.10-10.0.0.40`); at most 4096 addresses in all.
    #[schema(min_items = 1, max_items = 256)]
    pub targets: Vec<String>,
    /// What to probe on each address, as `mo discover --ports` (default
    /// `ipmi,snmp,redfish:443,redfish:80,ssh,telnet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, max_length = 1024)]
    pub ports: Option<String>,
    /// How long to wait for each answer: a whole number of `ms` or `s` (default `2s`, at most
    /// `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, pattern = "^[1-9][0-9]{0,4}(ms|s)$")]
    pub timeout: Option<String>,
    /// At most this many probes at a time (1 to 1024, default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, minimum = 1, maximum = 1024)]
    pub parallel: Option<u32>,
    /// Logins and SNMP communities per address pattern, as the entries of a `mo discover
    /// --credentials` file; passwords become encrypted device secrets, never returned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub credentials: Vec<DiscoverCredential>,
    /// Add the devices, power bindings and secrets in one transaction (needs `admin` on the
    /// built-in group `all`, as the plan does).
    #[serde(default)]
    #[schema(required = false)]
    pub apply: bool,
}

/// Credentials for the addresses `match` covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverCredential {
    /// An address, `ADDRESS/BITS`, `FIRST-LAST`, or a glob (`10.0.1.*`).
    #[serde(rename = "match")]
    #[schema(min_length = 1, max_length = 128)]
    pub pattern: String,
    /// The login for BMCs (IPMI, Redfish) and SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub user: Option<String>,
    /// Its password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub password: Option<String>,
    /// IPMI K_g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub bmc_key: Option<String>,
    /// SNMP v2c communities to try, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub communities: Vec<String>,
    /// An SNMPv3 user to try after the communities (SHA authentication, AES privacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub snmp_user: Option<String>,
    /// Its authentication passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub snmp_auth: Option<String>,
    /// Its privacy passphrase (authPriv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub snmp_privacy: Option<String>,
}

/// One address that answered, and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DiscoveredHost {
    /// The address.
    pub address: String,
    /// What was found, in the order of the port list: objects with a `kind` (`ipmi`,
    /// `redfish`, `snmp`, `ssh`, `telnet`, `other`), the `port` and what the probe read.
    #[schema(value_type = Vec<Object>)]
    pub found: Vec<serde_json::Value>,
}

/// The answer of `POST /api/v1/discover`: what was found and the plan (as `mo discover
/// --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DiscoverReport {
    /// The addresses that answered.
    pub hosts: Vec<DiscoveredHost>,
    /// The addresses that answered nothing.
    pub silent: Vec<String>,
    /// The plan, one line each, in `mo config import`'s format (`+ device …`, `~ …`).
    pub plan: Vec<String>,
    /// What was found but not added, with what to do about it.
    pub notes: Vec<String>,
    /// Whether the plan was applied.
    pub applied: bool,
}
