//! Devices: `GET/POST /api/v1/devices`, `GET/DELETE /api/v1/devices/{name}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The state of a device's link as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeviceState {
    /// Connected.
    Up,
    /// Not connected (retrying, or no console runs).
    Down,
    /// Connecting now.
    Connecting,
    /// An on-demand device nobody is attached to.
    Idle,
    /// Stopped for good.
    Stopped,
}

crate::api_names!(DeviceState, "device state", "up, down, connecting, idle or stopped", {
    DeviceState::Up => "up",
    DeviceState::Down => "down",
    DeviceState::Connecting => "connecting",
    DeviceState::Idle => "idle",
    DeviceState::Stopped => "stopped",
});

/// The modem lines of a link that reports them (rfc2217), while it is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Modem {
    /// Data carrier detect.
    pub dcd: bool,
    /// Data set ready.
    pub dsr: bool,
    /// Clear to send.
    pub cts: bool,
    /// Ring indicator.
    pub ri: bool,
}

/// A device as the API shows it (`GET /api/v1/devices`; with its [`Settings`] from `GET
/// /api/v1/devices/{name}` and `POST /api/v1/devices`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its access address.
    pub url: String,
    /// The link's state.
    pub state: DeviceState,
    /// How many viewers are attached.
    pub viewers: u64,
    /// The device groups it belongs to.
    pub groups: Vec<String>,
    /// Its description, if any.
    #[serde(default)]
    #[schema(required = false)]
    pub description: Option<String>,
    /// Why its console is not running, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// The modem lines while the link is up and reports them (rfc2217).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub modem: Option<Modem>,
    /// DTR and RTS as mo set them and when the modem lines last changed, for a console whose
    /// link has modem lines (serial, rfc2217, agent ports) while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub lines: Option<crate::Lines>,
    /// Its settings (only in answers about one device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub settings: Option<Settings>,
}

impl Device {
    /// A device with no description, error, modem lines or settings.
    pub fn new(name: impl Into<String>, url: impl Into<String>, state: DeviceState) -> Self {
        Device {
            name: name.into(),
            url: url.into(),
            state,
            viewers: 0,
            groups: Vec::new(),
            description: None,
            error: None,
            modem: None,
            lines: None,
            settings: None,
        }
    }
}

/// While the record log cannot write: `degrade` lets input through and records the gap;
/// `strict` refuses input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogPolicy {
    /// Input goes through; the log records the gap (the default).
    Degrade,
    /// Input is refused until the log records again.
    Strict,
}

crate::api_names!(LogPolicy, "log policy", "degrade or strict", {
    LogPolicy::Degrade => "degrade",
    LogPolicy::Strict => "strict",
});

/// A device's settings as stored (`GET /api/v1/devices/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// Connect only while someone is attached.
    pub on_demand: bool,
    /// Lines of recent output replayed to a viewer on connect.
    pub replay_lines: u32,
    /// Whether several users may write at once (`join`).
    pub allow_join: bool,
    /// The escape sequence in conserver notation (`^Ec`); `null`: the default.
    pub escape: Option<String>,
    /// Break sequences 1 to 9 in conserver notation.
    #[schema(schema_with = crate::schema::break_sequences_shown)]
    pub break_sequences: BTreeMap<u8, String>,
    /// Free text shown in listings.
    pub description: Option<String>,
    /// Auto-login: a profile name (`linux`, `cli`) or a script.
    pub login: Option<String>,
    /// The user name auto-login types.
    pub login_user: Option<String>,
    /// Accept an SSH device's host key the first time it is seen.
    pub trust_host_key: bool,
    /// The power controllers, by address.
    pub power: Vec<String>,
    /// While the record log cannot write: degrade (default) lets input through and records the
    /// gap; strict refuses input.
    pub log_policy: Option<LogPolicy>,
    /// Keep closed log segments this many days (null: the daemon's --retain-days).
    #[schema(minimum = 1)]
    pub retain_days: Option<u32>,
    /// Keep at most this many GiB of log, whole MiB (null: the daemon's --retain-gib).
    #[schema(exclusive_minimum = 0)]
    pub retain_gib: Option<f64>,
    #[doc = "Record input typed at password prompts as typed; false (default) records `<redacted N bytes>`."]
    #[serde(default)]
    pub log_secrets: bool,
    /// The console's own TCP ports, `ADDR:PORT/MODE` (`mo device set --listen`,
    /// docs/listen-ports.md).
    #[serde(default)]
    pub listen: Vec<String>,
    /// The networks (CIDR) that may connect to the ports; empty: any.
    #[serde(default)]
    pub listen_allow: Vec<String>,
    /// In a site (`mod --cluster`): the node that must hold the console; absent: the site
    /// places it on a live node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    pub node: Option<String>,
}

/// An auto-login profile the API takes (`mo device set` also takes a script of expect/send
/// lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoginProfile {
    /// A Linux `login:`/`Password:` prompt.
    Linux,
    /// A network device's CLI prompt.
    Cli,
}

/// Settings of a new device; fields left out (or `null`) take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
#[schema(description = "Settings of a new device; fields left out take their defaults.")]
pub struct SettingsInput {
    /// The escape sequence, two characters in conserver notation (`^Ec`).
    #[schema(
        pattern = "^([ -\\[\\]_-~]|\\^[?@A-IK-LN-Za-ik-ln-z\\[\\\\\\]^_]|\\\\(0[02-7][0-7]|01[0-13-46-7]|[1-3][0-7][0-7]))([ -\\[\\]_-~]|\\^[?@A-Za-z\\[\\\\\\]^_]|\\\\[0-3][0-7][0-7])$"
    )]
    pub escape: Option<String>,
    /// Free text shown in listings.
    #[schema(max_length = 1024, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub description: Option<String>,
    /// Auto-login profile (needs `login_user`). `mo device set` also takes a script of
    /// expect/send lines.
    #[schema(value_type = Option<LoginProfile>)]
    pub login: Option<String>,
    /// The user name auto-login types.
    pub login_user: Option<String>,
    /// While the record log cannot write: degrade (default) lets input through and records the
    /// gap; strict refuses input.
    pub log_policy: Option<LogPolicy>,
    /// Keep closed log segments this many days (null: the daemon's --retain-days).
    #[schema(minimum = 1, maximum = 100_000)]
    pub retain_days: Option<u32>,
    /// Keep at most this many GiB of log, rounded to whole MiB, at least 1 MiB (null: the
    /// daemon's --retain-gib).
    #[schema(minimum = 0.00048828125, maximum = 1_073_741_824)]
    pub retain_gib: Option<f64>,
    /// Connect only while someone is attached.
    pub on_demand: Option<bool>,
    /// Whether several users may write at once (`join`).
    pub allow_join: Option<bool>,
    /// Accept an SSH device's host key the first time it is seen.
    pub trust_host_key: Option<bool>,
    #[doc = "Record input typed at password prompts as typed; false (default) records `<redacted N bytes>`."]
    pub log_secrets: Option<bool>,
    /// Lines of recent output replayed to a viewer on connect.
    #[schema(minimum = 0, maximum = 100_000)]
    pub replay_lines: Option<u32>,
    /// Break sequences 1 to 9 in conserver notation (`\z` break, `\d` delay).
    #[schema(schema_with = crate::schema::break_sequences)]
    pub break_sequences: Option<BTreeMap<u8, String>>,
    /// The power controllers (outlets, BMCs) that feed the device, by address
    /// (`snmp://pdu1/apc/3`, `ipmi://admin@bmc1`, `redfish://…`).
    #[schema(schema_with = crate::schema::power_urls)]
    pub power: Option<Vec<String>>,
    /// The console's own TCP ports, `ADDR:PORT[/raw|/telnet|/telnet+login|/rfc2217][,spy]`
    /// (docs/listen-ports.md); setting them needs `admin` on the built-in group `all`.
    #[schema(schema_with = crate::schema::listen_ports)]
    pub listen: Option<Vec<String>>,
    /// The networks (CIDR) that may connect to the ports; empty: any (ports without a login of
    /// their own then bind loopback only).
    #[schema(schema_with = crate::schema::listen_allow)]
    pub listen_allow: Option<Vec<String>>,
    /// In a site (`mod --cluster`): the node that must hold the console (null: the site places
    /// it on a live node).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    pub node: Option<String>,
}

/// The body of `POST /api/v1/devices`: a name, an address, and settings — either as the
/// `settings` object `GET` shows, or as top-level fields like `mo device add` options (these
/// win over `settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "A device: name, address and settings, either as the `settings` object `GET` shows or as top-level fields like `mo device add` options (these win)."
)]
pub struct NewDevice {
    /// The device name.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
    /// The console's address, e.g. `sim://web-1`, `telnet://cs1:7001`,
    /// `serial:///dev/ttyS0?baud=115200`, `ssh://admin@10.0.0.5`.
    #[schema(
        pattern = "^(exec|serial|unix|telnet|rfc2217|tcp|ssh|ipmi|sim|cs|agent)://(([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9._-]{1,253}(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?)?(/[A-Za-z0-9._~%+-]{0,255}){0,32}([?][A-Za-z0-9._~%+=&,:-]{0,1024})?$"
    )]
    pub url: String,
    /// Settings as an object (the top-level fields win over it).
    #[serde(default)]
    pub settings: Option<SettingsInput>,
    /// The escape sequence, two characters in conserver notation (`^Ec`).
    #[schema(
        pattern = "^([ -\\[\\]_-~]|\\^[?@A-IK-LN-Za-ik-ln-z\\[\\\\\\]^_]|\\\\(0[02-7][0-7]|01[0-13-46-7]|[1-3][0-7][0-7]))([ -\\[\\]_-~]|\\^[?@A-Za-z\\[\\\\\\]^_]|\\\\[0-3][0-7][0-7])$"
    )]
    #[serde(default)]
    pub escape: Option<String>,
    /// Free text shown in listings.
    #[schema(max_length = 1024, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub description: Option<String>,
    /// Auto-login profile (needs `login_user`). `mo device set` also takes a script of
    /// expect/send lines.
    #[schema(value_type = Option<LoginProfile>)]
    #[serde(default)]
    pub login: Option<String>,
    /// The user name auto-login types.
    #[serde(default)]
    pub login_user: Option<String>,
    /// While the record log cannot write: degrade (default) lets input through and records the
    /// gap; strict refuses input.
    #[serde(default)]
    pub log_policy: Option<LogPolicy>,
    /// Keep closed log segments this many days (null: the daemon's --retain-days).
    #[schema(minimum = 1, maximum = 100_000)]
    #[serde(default)]
    pub retain_days: Option<u32>,
    /// Keep at most this many GiB of log, rounded to whole MiB, at least 1 MiB (null: the
    /// daemon's --retain-gib).
    #[schema(minimum = 0.00048828125, maximum = 1_073_741_824)]
    #[serde(default)]
    pub retain_gib: Option<f64>,
    /// Connect only while someone is attached.
    #[serde(default)]
    pub on_demand: Option<bool>,
    /// Whether several users may write at once (`join`).
    #[serde(default)]
    pub allow_join: Option<bool>,
    /// Accept an SSH device's host key the first time it is seen.
    #[serde(default)]
    pub trust_host_key: Option<bool>,
    #[doc = "Record input typed at password prompts as typed; false (default) records `<redacted N bytes>`."]
    #[serde(default)]
    pub log_secrets: Option<bool>,
    /// Lines of recent output replayed to a viewer on connect.
    #[schema(minimum = 0, maximum = 100_000)]
    #[serde(default)]
    pub replay_lines: Option<u32>,
    /// Break sequences 1 to 9 in conserver notation (`\z` break, `\d` delay).
    #[schema(schema_with = crate::schema::break_sequences)]
    #[serde(default)]
    pub break_sequences: Option<BTreeMap<u8, String>>,
    /// The power controllers (outlets, BMCs) that feed the device, by address
    /// (`snmp://pdu1/apc/3`, `ipmi://admin@bmc1`, `redfish://…`).
    #[schema(schema_with = crate::schema::power_urls)]
    #[serde(default)]
    pub power: Option<Vec<String>>,
    /// The console's own TCP ports, `ADDR:PORT[/raw|/telnet|/telnet+login|/rfc2217][,spy]`
    /// (docs/listen-ports.md); setting them needs `admin` on the built-in group `all`.
    #[schema(schema_with = crate::schema::listen_ports)]
    #[serde(default)]
    pub listen: Option<Vec<String>>,
    /// The networks (CIDR) that may connect to the ports; empty: any (ports without a login of
    /// their own then bind loopback only).
    #[schema(schema_with = crate::schema::listen_allow)]
    #[serde(default)]
    pub listen_allow: Option<Vec<String>>,
    /// In a site (`mod --cluster`): the node that must hold the console (null: the site places
    /// it on a live node).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    #[serde(default)]
    pub node: Option<String>,
}

macro_rules! settings_fields {
    ($m:ident) => {
        $m!(
            escape,
            description,
            login,
            login_user,
            log_policy,
            retain_days,
            retain_gib,
            on_demand,
            allow_join,
            trust_host_key,
            log_secrets,
            replay_lines,
            break_sequences,
            power,
            listen,
            listen_allow,
            node
        )
    };
}

impl NewDevice {
    /// A device named `name` at `url` with the settings `settings` (as top-level fields).
    pub fn new(name: impl Into<String>, url: impl Into<String>, settings: SettingsInput) -> Self {
        macro_rules! build {
            ($($field:ident),+) => {
                NewDevice {
                    name: name.into(),
                    url: url.into(),
                    settings: None,
                    $($field: settings.$field,)+
                }
            };
        }
        settings_fields!(build)
    }

    /// The settings this body asks for: `settings`, then each top-level field that is set.
    pub fn merged_settings(&self) -> SettingsInput {
        let mut s = self.settings.clone().unwrap_or_default();
        macro_rules! take {
            ($($field:ident),+) => { $( if self.$field.is_some() { s.$field = self.$field.clone(); } )+ };
        }
        settings_fields!(take);
        s
    }
}
