//! Devices: a name, an access URL and the console settings, and their storage.

use std::collections::BTreeMap;

use mo_core::breakseq::{BreakSequence, BreakSequences};
use mo_core::escape::EscapeConfig;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::device_log::{LogPolicy, MAX_RETAIN_DAYS, RetainSize, effective_retention};
use crate::error::{Error, Result};
use crate::names::validate_device_name;
use crate::store::{Store, is_unique_violation};

/// The default number of lines replayed to a viewer on connect.
pub const DEFAULT_REPLAY_LINES: u32 = 20;
/// The largest accepted replay length.
pub const MAX_REPLAY_LINES: u32 = 100_000;
/// The longest accepted description, in characters.
pub const MAX_DESCRIPTION: usize = 1024;

/// A console device as stored: its name, access URL and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device name (see [`crate::validate_device_name`]).
    pub name: String,
    /// The access URL (`serial:///dev/ttyS0?baud=115200`, `sim://web01`, …). Only checked to be a
    /// URL here; the drivers check the rest when they connect.
    pub url: String,
    /// How the console behaves.
    #[serde(default)]
    pub settings: DeviceSettings,
}

/// Per-device console settings. Build with `DeviceSettings { field: …, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceSettings {
    /// Connect only while someone is attached (instead of holding the console open always).
    pub on_demand: bool,
    /// Lines of recent output replayed to a viewer on connect.
    pub replay_lines: u32,
    /// Whether several users may write at once (`join`).
    pub allow_join: bool,
    /// The escape sequence in conserver notation (`^Ec`, see [`EscapeConfig`]), or `None` for
    /// the default.
    pub escape: Option<String>,
    /// Break sequences 1–9 in conserver notation (see [`mo_core::breakseq`]); these override
    /// the defaults of the same number.
    pub break_sequences: BTreeMap<u8, String>,
    /// Free text shown in listings.
    pub description: Option<String>,
    /// Auto-login on every (re)connect: a profile name (`linux`, `cli`) or a script of
    /// `expect`/`send`/`secret` lines (see `mo_core::console::LoginScript`). The password comes
    /// from the device's stored secret `password`.
    pub login: Option<String>,
    /// The user name auto-login types (`{user}` in scripts).
    pub login_user: Option<String>,
    /// Accept an SSH device's host key the first time it is seen (a changed key is refused
    /// regardless).
    pub trust_host_key: bool,
    /// The power controllers (outlets, BMCs) that feed the device, by address
    /// (`snmp://pdu1/apc/3`, `ipmi://admin@bmc1`, `redfish://…`). Dual supplies switch together.
    pub power: Vec<String>,
    /// What happens to viewer input while the record log cannot write: `None` is the default,
    /// `degrade` (input goes through and the log records the gap); `strict` refuses input until
    /// the log records again.
    #[serde(with = "crate::device_log::policy_serde")]
    pub log_policy: Option<LogPolicy>,
    /// Keep the record log's closed segments for this many days (`None`: the daemon's
    /// `--retain-days`, if any).
    pub retain_days: Option<u32>,
    /// Keep at most this much of the record log, oldest closed segments going first (`None`:
    /// the daemon's `--retain-gib`, if any). Written as a number of GiB (`100`, `0.5`).
    pub retain_gib: Option<RetainSize>,
    /// Record input typed at password prompts as typed; `false` (the default) stores it as
    /// `<redacted N bytes>`.
    #[serde(default)]
    pub log_secrets: bool,
    /// Per-console TCP ports, `ADDR:PORT[/raw|/telnet|/telnet+login|/rfc2217]` (see
    /// [`mo_core::door::listen::ListenSpec`]; raw is the default).
    #[serde(default)]
    pub listen: Vec<String>,
    /// The networks (CIDR) that may connect to the device's ports; empty: any, but then ports
    /// without a login bind loopback only.
    #[serde(default)]
    pub listen_allow: Vec<String>,
    /// In a site (`mod --cluster … --share-devices`): the node that must hold this console (a
    /// local serial port, an agent's link); `None` lets the site place it on a live node.
    #[serde(default)]
    pub node: Option<String>,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            on_demand: false,
            replay_lines: DEFAULT_REPLAY_LINES,
            allow_join: true,
            escape: None,
            break_sequences: BTreeMap::new(),
            description: None,
            login: None,
            login_user: None,
            trust_host_key: false,
            power: Vec::new(),
            log_policy: None,
            retain_days: None,
            retain_gib: None,
            log_secrets: false,
            listen: Vec::new(),
            listen_allow: Vec::new(),
            node: None,
        }
    }
}

fn bad_break(device: &str, n: u8, text: &str, reason: String) -> Error {
    Error::BadSetting {
        device: device.to_string(),
        setting: format!("break sequence {n}"),
        value: text.to_string(),
        reason,
    }
}

/// The reason part of a mo-core specification error (its text already names the input).
fn spec_reason(e: mo_core::Error) -> String {
    match e {
        mo_core::Error::BadSpec { reason, .. } => reason,
        other => other.to_string(),
    }
}

impl Device {
    /// A device with default settings.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Device {
            name: name.into(),
            url: url.into(),
            settings: DeviceSettings::default(),
        }
    }

    /// The break sequences in force: conserver's defaults, overridden by the device's own.
    pub fn break_sequences(&self) -> Result<BreakSequences> {
        let mut all = BreakSequences::default();
        for (&n, text) in &self.settings.break_sequences {
            let bad = |e: mo_core::Error| bad_break(&self.name, n, text, spec_reason(e));
            all.set(n, BreakSequence::parse(text).map_err(bad)?)
                .map_err(bad)?;
        }
        Ok(all)
    }

    /// The device's own escape sequence, if it has one (else viewers use their default).
    pub fn escape_config(&self) -> Result<Option<EscapeConfig>> {
        self.settings
            .escape
            .as_deref()
            .map(|spec| {
                EscapeConfig::parse(spec).map_err(|e| Error::BadSetting {
                    device: self.name.clone(),
                    setting: "escape".into(),
                    value: spec.into(),
                    reason: spec_reason(e),
                })
            })
            .transpose()
    }

    /// The device's own escape sequence as two bytes (attention character, command character).
    pub fn escape_bytes(&self) -> Result<Option<[u8; 2]>> {
        Ok(self.escape_config()?.map(|c| c.prefix))
    }

    /// The record-log retention in force for this device: its own limits where it has them, else
    /// `defaults` (the daemon's `--retain-days`/`--retain-gib`).
    pub fn retention(&self, defaults: mo_core::log::Retention) -> mo_core::log::Retention {
        effective_retention(
            self.settings.retain_days,
            self.settings.retain_gib,
            defaults,
        )
    }

    /// Check the name, the URL (it must parse as an absolute URL) and every setting.
    pub fn validate(&self) -> Result<()> {
        validate_device_name(&self.name)?;
        let bad_url = |reason: String| Error::BadUrl {
            device: self.name.clone(),
            url: self.url.clone(),
            reason,
        };
        if self.url.trim() != self.url || self.url.chars().any(char::is_control) {
            return Err(bad_url("contains spaces or control characters".into()));
        }
        url::Url::parse(&self.url).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => bad_url(
                "not a URL; write it with a scheme, like `serial:///dev/ttyS0` or `sim://name`"
                    .into(),
            ),
            other => bad_url(other.to_string()),
        })?;
        let s = &self.settings;
        let bad = |setting: &str, value: String, reason: String| Error::BadSetting {
            device: self.name.clone(),
            setting: setting.into(),
            value,
            reason,
        };
        if s.replay_lines > MAX_REPLAY_LINES {
            return Err(bad(
                "replay lines",
                s.replay_lines.to_string(),
                format!("at most {MAX_REPLAY_LINES}"),
            ));
        }
        self.escape_config()?;
        if let Some(node) = &s.node
            && !valid_node_name(node)
        {
            return Err(bad(
                "node",
                node.clone(),
                "a node name is a letter or digit, then letters, digits, `_` and `-`, at most 64"
                    .into(),
            ));
        }
        for (&n, text) in &s.break_sequences {
            if !(1..=9).contains(&n) {
                return Err(bad_break(
                    &self.name,
                    n,
                    text,
                    "the number must be 1 to 9".into(),
                ));
            }
            BreakSequence::parse(text)
                .map_err(|e| bad_break(&self.name, n, text, spec_reason(e)))?;
        }
        if let Some(text) = &s.description {
            if text.chars().count() > MAX_DESCRIPTION {
                return Err(bad(
                    "description",
                    text.chars().take(40).collect::<String>() + "…",
                    format!("longer than {MAX_DESCRIPTION} characters"),
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(bad(
                    "description",
                    text.escape_debug().to_string(),
                    "contains control characters".into(),
                ));
            }
        }
        if let Some(login) = &s.login {
            if login.contains('\n') || login.contains(' ') {
                let user = s.login_user.as_deref().unwrap_or("user");
                // Validate the script's shape with a stand-in password; the real one is a secret.
                mo_core::console::LoginScript::parse(
                    login,
                    user,
                    Some(mo_core::secret::Secret::new("x")),
                )
                .map_err(|e| bad("login", login.clone(), spec_reason(e)))?;
            } else if !matches!(login.as_str(), "linux" | "cli") {
                return Err(bad(
                    "login",
                    login.clone(),
                    "a profile (linux, cli) or a script of expect/send/secret lines".into(),
                ));
            }
            if s.login_user.as_deref().is_none_or(str::is_empty) {
                return Err(bad(
                    "login user",
                    String::new(),
                    "auto-login needs a user name (--login-user)".into(),
                ));
            }
        }
        if let Some(days) = s.retain_days
            && !(1..=MAX_RETAIN_DAYS).contains(&days)
        {
            return Err(bad(
                "retain days",
                days.to_string(),
                format!("a whole number of days from 1 to {MAX_RETAIN_DAYS}"),
            ));
        }
        mo_core::door::listen::validate(&s.listen, &s.listen_allow).map_err(|e| {
            let value = s
                .listen
                .iter()
                .chain(&s.listen_allow)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            bad("listen", value, e.reason)
        })?;
        for address in &s.power {
            if url::Url::parse(address).is_err() || address.trim() != address {
                return Err(bad(
                    "power",
                    address.clone(),
                    "not a URL; write e.g. snmp://pdu1/apc/3 or ipmi://admin@bmc1".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` may be a node name of a site (`mod --node`): a letter or digit, then letters,
/// digits, `_` and `-`, at most 64 (the API's `NODE_PATTERN`).
pub fn valid_node_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

const DEVICE_COLUMNS: &str = "name, url, on_demand, replay_lines, allow_join, escape_seq, \
     break_sequences, description, login, login_user, trust_host_key, power, log_policy, \
     retain_days, retain_mib, log_secrets, listen, node";

impl Store {
    /// Add a device; [`Error::DeviceExists`] if the name is taken.
    pub fn add_device(&self, device: &Device) -> Result<()> {
        device.validate()?;
        let breaks = self.encode_breaks(device)?;
        let power = self.encode_power(device)?;
        let listen = encode_listen(device);
        let now = now_ns();
        let s = &device.settings;
        let result = self.conn().execute(
            &format!(
                "INSERT INTO devices ({DEVICE_COLUMNS}, created_ns, updated_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?13, ?13)"
            ),
            params![
                device.name,
                device.url,
                s.on_demand,
                s.replay_lines,
                s.allow_join,
                s.escape,
                breaks,
                s.description,
                s.login,
                s.login_user,
                s.trust_host_key,
                power,
                now,
                s.log_policy.map(LogPolicy::name),
                s.retain_days,
                s.retain_gib
                    .map(|r| i64::try_from(r.mib()).unwrap_or(i64::MAX)),
                s.log_secrets,
                listen,
                s.node
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::DeviceExists(device.name.clone())),
            Err(e) => Err(self.sql_error(&format!("add device `{}`", device.name), e)),
        }
    }

    /// Replace the URL and settings of an existing device; [`Error::UnknownDevice`] if there is
    /// none by that name.
    pub fn update_device(&self, device: &Device) -> Result<()> {
        device.validate()?;
        let breaks = self.encode_breaks(device)?;
        let power = self.encode_power(device)?;
        let listen = encode_listen(device);
        let s = &device.settings;
        let changed = self
            .conn()
            .execute(
                "UPDATE devices SET url = ?2, on_demand = ?3, replay_lines = ?4, allow_join = ?5, \
                 escape_seq = ?6, break_sequences = ?7, description = ?8, login = ?9, \
                 login_user = ?10, trust_host_key = ?11, power = ?12, updated_ns = ?13, \
                 log_policy = ?14, retain_days = ?15, retain_mib = ?16, log_secrets = ?17, \
                 listen = ?18, node = ?19 WHERE name = ?1",
                params![
                    device.name,
                    device.url,
                    s.on_demand,
                    s.replay_lines,
                    s.allow_join,
                    s.escape,
                    breaks,
                    s.description,
                    s.login,
                    s.login_user,
                    s.trust_host_key,
                    power,
                    now_ns(),
                    s.log_policy.map(LogPolicy::name),
                    s.retain_days,
                    s.retain_gib
                        .map(|r| i64::try_from(r.mib()).unwrap_or(i64::MAX)),
                    s.log_secrets,
                    listen,
                    s.node
                ],
            )
            .map_err(|e| self.sql_error(&format!("update device `{}`", device.name), e))?;
        if changed == 0 {
            return Err(Error::UnknownDevice(device.name.clone()));
        }
        Ok(())
    }

    /// Remove a device; [`Error::UnknownDevice`] if there is none by that name. Its record log
    /// stays on disk.
    pub fn remove_device(&self, name: &str) -> Result<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM devices WHERE name = ?1", [name])
            .map_err(|e| self.sql_error(&format!("remove device `{name}`"), e))?;
        if changed == 0 {
            return Err(Error::UnknownDevice(name.to_string()));
        }
        Ok(())
    }

    /// The device called `name`, or `None`.
    pub fn get_device(&self, name: &str) -> Result<Option<Device>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE name = ?1"),
                [name],
                RawDevice::from_row,
            )
            .optional()
            .map_err(|e| self.sql_error(&format!("read device `{name}`"), e))?;
        row.map(|raw| self.finish(raw)).transpose()
    }

    /// The device called `name`; [`Error::UnknownDevice`] if there is none.
    pub fn device(&self, name: &str) -> Result<Device> {
        self.get_device(name)?
            .ok_or_else(|| Error::UnknownDevice(name.to_string()))
    }

    /// Every device, sorted by name.
    pub fn list_devices(&self) -> Result<Vec<Device>> {
        let raws = self.read("list devices", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY name"
            ))?;
            let rows = stmt.query_map([], RawDevice::from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        raws.into_iter().map(|raw| self.finish(raw)).collect()
    }

    fn encode_breaks(&self, device: &Device) -> Result<String> {
        serde_json::to_string(&device.settings.break_sequences).map_err(|e| Error::BadSetting {
            device: device.name.clone(),
            setting: "break sequences".into(),
            value: format!("{:?}", device.settings.break_sequences),
            reason: e.to_string(),
        })
    }

    fn encode_power(&self, device: &Device) -> Result<String> {
        serde_json::to_string(&device.settings.power).map_err(|e| Error::BadSetting {
            device: device.name.clone(),
            setting: "power".into(),
            value: format!("{:?}", device.settings.power),
            reason: e.to_string(),
        })
    }

    fn finish(&self, raw: RawDevice) -> Result<Device> {
        let power = serde_json::from_str(&raw.power)
            .map_err(|e| self.corrupt(format!("devices.power of `{}`", raw.name), e.to_string()))?;
        let break_sequences = serde_json::from_str(&raw.break_sequences).map_err(|e| {
            self.corrupt(
                format!("devices.break_sequences of `{}`", raw.name),
                e.to_string(),
            )
        })?;
        let log_policy = raw
            .log_policy
            .map(|p| {
                p.parse::<LogPolicy>().map_err(|e| {
                    self.corrupt(
                        format!("devices.log_policy of `{}`", raw.name),
                        e.to_string(),
                    )
                })
            })
            .transpose()?;
        let retain_gib = raw
            .retain_mib
            .map(|mib| {
                u64::try_from(mib)
                    .ok()
                    .and_then(RetainSize::from_mib)
                    .ok_or_else(|| {
                        self.corrupt(
                            format!("devices.retain_mib of `{}`", raw.name),
                            format!("{mib} is not a size limit"),
                        )
                    })
            })
            .transpose()?;
        let listen: ListenColumn = serde_json::from_str(&raw.listen).map_err(|e| {
            self.corrupt(format!("devices.listen of `{}`", raw.name), e.to_string())
        })?;
        Ok(Device {
            name: raw.name,
            url: raw.url,
            settings: DeviceSettings {
                on_demand: raw.on_demand,
                replay_lines: raw.replay_lines,
                allow_join: raw.allow_join,
                escape: raw.escape,
                break_sequences,
                description: raw.description,
                login: raw.login,
                login_user: raw.login_user,
                trust_host_key: raw.trust_host_key,
                power,
                log_policy,
                retain_days: raw.retain_days,
                retain_gib,
                log_secrets: raw.log_secrets,
                listen: listen.ports,
                listen_allow: listen.allow,
                node: raw.node,
            },
        })
    }
}

struct RawDevice {
    name: String,
    url: String,
    on_demand: bool,
    replay_lines: u32,
    allow_join: bool,
    escape: Option<String>,
    break_sequences: String,
    description: Option<String>,
    login: Option<String>,
    login_user: Option<String>,
    trust_host_key: bool,
    power: String,
    log_policy: Option<String>,
    retain_days: Option<u32>,
    retain_mib: Option<i64>,
    log_secrets: bool,
    listen: String,
    node: Option<String>,
}

/// The `devices.listen` column.
#[derive(Default, Serialize, Deserialize)]
struct ListenColumn {
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
}

fn encode_listen(device: &Device) -> String {
    let column = ListenColumn {
        ports: device.settings.listen.clone(),
        allow: device.settings.listen_allow.clone(),
    };
    serde_json::to_string(&column).unwrap_or_else(|_| "{}".into())
}

impl RawDevice {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawDevice {
            name: row.get(0)?,
            url: row.get(1)?,
            on_demand: row.get(2)?,
            replay_lines: row.get(3)?,
            allow_join: row.get(4)?,
            escape: row.get(5)?,
            break_sequences: row.get(6)?,
            description: row.get(7)?,
            login: row.get(8)?,
            login_user: row.get(9)?,
            trust_host_key: row.get(10)?,
            power: row.get(11)?,
            log_policy: row.get(12)?,
            retain_days: row.get(13)?,
            retain_mib: row.get(14)?,
            log_secrets: row.get(15)?,
            listen: row.get(16)?,
            node: row.get(17)?,
        })
    }
}

/// Nanoseconds since the Unix epoch as SQLite's signed integer.
pub(crate) fn now_ns() -> i64 {
    i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX)
}
