//! The site configuration as plain data: what every reader produces and the planner consumes.

use serde::{Deserialize, Serialize};

use crate::device::Device;

/// A whole site: devices, users, groups and access rules, plus what a migration could not carry
/// over. Readers keep the order of their input; the exporter sorts everything by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteConfig {
    /// Devices with their URL and settings.
    pub devices: Vec<Device>,
    /// Users with their credentials.
    pub users: Vec<UserEntry>,
    /// User groups (referred to as `@name` in access rules).
    pub user_groups: Vec<UserGroupEntry>,
    /// Device groups, by explicit members and by name patterns.
    pub device_groups: Vec<DeviceGroupEntry>,
    /// Who may do what on which device group.
    pub access: Vec<AccessRule>,
    /// Device secrets, sealed (see [`SecretEntry`]).
    pub secrets: Vec<SecretEntry>,
    /// What the source said that mo cannot express, with where it said it.
    pub unsupported: Vec<Unsupported>,
}

/// A user. `password_hash` and `ssh_keys` describe what the file says; see the planner for what
/// an absent password hash means (the stored one is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The user name.
    pub name: String,
    /// The argon2id PHC string (`$argon2id$v=19$…`), never a clear-text password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// OpenSSH public-key lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<String>,
}

/// A named set of users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserGroupEntry {
    /// The group's name (without `@`).
    pub name: String,
    /// Its members' user names.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A named set of devices: explicit members plus glob patterns on device names (`rack3-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceGroupEntry {
    /// The group's name.
    pub name: String,
    /// Devices named explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Name patterns (`*` and `?` globs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
}

/// One grant: `subject` (a user name, or `@group` for a user group) has `role` on the devices
/// of `devices` (a device group name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// `alice` or `@ops`.
    pub subject: String,
    /// A role name (`viewer`, `operator`, `admin` are built in).
    pub role: String,
    /// A device group name.
    pub devices: String,
}

/// A device secret in its export form: sealed with the data directory's key and bound to its
/// device and kind, base64. Never clear text; it opens only in a store with the same key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    /// The device.
    pub device: String,
    /// `password`, `private_key`, `key_passphrase`, `bmc_key`, `snmp_auth` or `snmp_privacy`.
    pub kind: String,
    /// The sealed value, base64.
    pub sealed: String,
}

/// Something in a source file that mo could not carry over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    /// The file it came from.
    pub file: String,
    /// Its line (1-based).
    pub line: usize,
    /// What it was and why it was not carried over.
    pub what: String,
}

impl SiteConfig {
    /// Record something that could not be carried over, once per file, line and text.
    pub fn note(&mut self, file: &str, line: usize, what: impl Into<String>) {
        let entry = Unsupported {
            file: file.to_string(),
            line,
            what: what.into(),
        };
        if !self.unsupported.contains(&entry) {
            self.unsupported.push(entry);
        }
    }

    /// The device called `name`, if the configuration has one.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Add the user `name` (no credentials) unless the configuration already has them.
    pub fn ensure_user(&mut self, name: &str) {
        if !self.users.iter().any(|u| u.name == name) {
            self.users.push(UserEntry {
                name: name.to_string(),
                ..UserEntry::default()
            });
        }
    }

    /// Put everything in a stable order (by name; rules and notes sorted), as the exporter writes it.
    pub fn sort(&mut self) {
        self.devices.sort_by(|a, b| a.name.cmp(&b.name));
        self.users.sort_by(|a, b| a.name.cmp(&b.name));
        self.user_groups.sort_by(|a, b| a.name.cmp(&b.name));
        for g in &mut self.user_groups {
            g.members.sort();
            g.members.dedup();
        }
        self.device_groups.sort_by(|a, b| a.name.cmp(&b.name));
        for g in &mut self.device_groups {
            g.members.sort();
            g.members.dedup();
        }
        self.access.sort();
        self.access.dedup();
        self.secrets.sort();
        self.secrets.dedup();
    }
}

/// The fields of a device that a plan compares, as `(field, text)` pairs: the URL, then every
/// setting under its serde name (so settings added later are compared too).
pub(crate) fn device_fields(device: &Device) -> Vec<(String, String)> {
    let mut out = vec![("url".to_string(), device.url.clone())];
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&device.settings) {
        for (key, value) in map {
            let text = match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.push((key, text));
        }
    }
    out
}
