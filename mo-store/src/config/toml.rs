//! mo's own configuration format: TOML, written in a stable order so that exports diff cleanly.
//!
//! ```toml
//! [[device]]
//! name = "web01"
//! url = "serial:///dev/ttyS0?baud=115200"
//! description = "front web server"
//! on_demand = false
//! replay_lines = 20
//! allow_join = true
//! escape = "^Ec"
//! break_sequences = { 2 = "\\r~^b" }
//!
//! [[user]]
//! name = "alice"
//! password_hash = "$argon2id$v=19$…"
//! ssh_keys = ["ssh-ed25519 AAAA… alice@laptop"]
//!
//! [[user_group]]
//! name = "ops"
//! members = ["alice"]
//!
//! [[device_group]]
//! name = "rack3"
//! patterns = ["rack3-*"]
//!
//! [[access]]
//! subject = "@ops"
//! role = "operator"
//! devices = "rack3"
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ConfigError;
use super::model::{
    AccessRule, DeviceGroupEntry, SecretEntry, SiteConfig, Unsupported, UserEntry, UserGroupEntry,
};
use crate::device::{Device, DeviceSettings};
use crate::error::Error;
use crate::names::validate_user_name;
use crate::sshkey::SshPublicKey;

#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    device: Vec<DeviceOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    user: &'a [UserEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    user_group: &'a [UserGroupEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    device_group: &'a [DeviceGroupEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    access: &'a [AccessRule],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    secret: &'a [SecretEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unsupported: &'a [Unsupported],
}

#[derive(Serialize)]
struct DeviceOut<'a> {
    name: &'a str,
    url: &'a str,
    /// The settings under their serde names, without unset (null) and empty values.
    #[serde(flatten)]
    settings: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[serde(default)]
    device: Vec<DeviceIn>,
    #[serde(default)]
    user: Vec<Spanned<UserEntry>>,
    #[serde(default)]
    user_group: Vec<Spanned<UserGroupEntry>>,
    #[serde(default)]
    device_group: Vec<Spanned<DeviceGroupEntry>>,
    #[serde(default)]
    access: Vec<Spanned<AccessRule>>,
    #[serde(default)]
    secret: Vec<Spanned<SecretEntry>>,
    #[serde(default)]
    unsupported: Vec<Unsupported>,
}

#[derive(Deserialize)]
struct DeviceIn {
    name: Spanned<String>,
    url: Spanned<String>,
    #[serde(flatten)]
    settings: BTreeMap<String, toml::Value>,
}

/// A device's settings as a TOML table: every setting under its serde name, leaving out unset
/// (null) and empty ones.
fn settings_table(settings: &DeviceSettings) -> Result<toml::Table, String> {
    let serde_json::Value::Object(map) =
        serde_json::to_value(settings).map_err(|e| e.to_string())?
    else {
        return Err("settings are not a table".into());
    };
    let mut table = toml::Table::new();
    for (key, value) in map {
        let empty = match &value {
            serde_json::Value::Null => true,
            serde_json::Value::Object(m) => m.is_empty(),
            serde_json::Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            table.insert(
                key,
                toml::Value::try_from(value).map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(table)
}

/// Device settings from a TOML table: unknown keys and values of the wrong type are errors
/// naming the key.
fn settings_from(
    table: &BTreeMap<String, toml::Value>,
) -> Result<DeviceSettings, (String, String)> {
    let serde_json::Value::Object(defaults) = serde_json::to_value(DeviceSettings::default())
        .map_err(|e| (String::new(), e.to_string()))?
    else {
        return Err((String::new(), "settings are not a table".into()));
    };
    let mut all = defaults.clone();
    for (key, value) in table {
        if !defaults.contains_key(key) {
            let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
            return Err((
                key.clone(),
                format!(
                    "unknown device setting `{key}` (known: name, url, {})",
                    known.join(", ")
                ),
            ));
        }
        let json = serde_json::to_value(value).map_err(|e| (key.clone(), e.to_string()))?;
        let mut one = defaults.clone();
        one.insert(key.clone(), json.clone());
        serde_json::from_value::<DeviceSettings>(serde_json::Value::Object(one))
            .map_err(|e| (key.clone(), format!("bad value for `{key}`: {e}")))?;
        all.insert(key.clone(), json);
    }
    serde_json::from_value(serde_json::Value::Object(all))
        .map_err(|e| (String::new(), e.to_string()))
}

/// Write `site` as TOML: devices, users, user groups, device groups, access rules and notes,
/// each sorted by name, every device setting spelled out.
pub fn to_toml(site: &SiteConfig) -> Result<String, ConfigError> {
    let mut site = site.clone();
    site.sort();
    let mut devices = Vec::new();
    for d in &site.devices {
        let settings = settings_table(&d.settings).map_err(|reason| ConfigError::Invalid {
            file: "(export)".into(),
            reason: format!("device `{}`: {reason}", d.name),
        })?;
        devices.push(DeviceOut {
            name: &d.name,
            url: &d.url,
            settings,
        });
    }
    let out = FileOut {
        device: devices,
        user: &site.users,
        user_group: &site.user_groups,
        device_group: &site.device_groups,
        access: &site.access,
        secret: &site.secrets,
        unsupported: &site.unsupported,
    };
    let body = toml::to_string(&out).map_err(|e| ConfigError::Invalid {
        file: "(export)".into(),
        reason: format!("cannot write TOML: {e}"),
    })?;
    Ok(format!(
        "# mo site configuration (mo config export). Import with: mo config import FILE\n\n{body}"
    ))
}

/// 1-based line and column of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The offset of the line assigning `key` in the table that holds offset `from` (the table's
/// first line if there is none).
fn key_offset(text: &str, from: usize, key: &str) -> usize {
    let start = text
        .get(..from)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let mut offset = start;
    for line in text.get(start..).unwrap_or("").split_inclusive('\n') {
        let trimmed = line.trim_start();
        if offset > start && trimmed.starts_with('[') {
            break;
        }
        if let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with(['=', '.'])
        {
            return offset + (line.len() - trimmed.len());
        }
        offset += line.len();
    }
    from
}

/// Read mo's TOML format. Errors name the line, column and key.
pub fn parse_toml(text: &str, file: &str) -> Result<SiteConfig, ConfigError> {
    let err_at = |at: usize, key: &str, reason: String| {
        let (line, column) = line_col(text, at);
        ConfigError::Syntax {
            file: file.to_string(),
            line,
            column: Some(column),
            key: (!key.is_empty()).then(|| key.to_string()),
            reason,
        }
    };
    let parsed: FileIn = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        err_at(at, "", e.message().trim().to_string())
    })?;
    let mut site = SiteConfig::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for d in parsed.device {
        let at = d.name.span().start;
        let name = d.name.get_ref().clone();
        if let Some(first) = seen.insert(name.clone(), at) {
            let (first_line, _) = line_col(text, first);
            return Err(err_at(
                at,
                "name",
                format!("device `{name}` is defined twice (first at line {first_line})"),
            ));
        }
        let mut settings = settings_from(&d.settings)
            .map_err(|(key, reason)| err_at(key_offset(text, at, &key), &key, reason))?;
        if settings.description.as_deref() == Some("") {
            settings.description = None;
        }
        let device = Device {
            name,
            url: d.url.get_ref().clone(),
            settings,
        };
        device.validate().map_err(|e| match &e {
            Error::BadUrl { .. } => err_at(d.url.span().start, "url", e.to_string()),
            Error::BadSetting { setting, .. } => {
                let key = if setting.starts_with("break sequence") {
                    "break_sequences".to_string()
                } else {
                    setting.replace(' ', "_")
                };
                err_at(key_offset(text, at, &key), &key, e.to_string())
            }
            _ => err_at(at, "name", e.to_string()),
        })?;
        site.devices.push(device);
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for u in parsed.user {
        let at = u.span().start;
        let user = u.into_inner();
        validate_user(&user).map_err(|(key, reason)| err_at(at, key, reason))?;
        if seen.insert(user.name.clone(), at).is_some() {
            return Err(err_at(
                at,
                "name",
                format!("user `{}` is defined twice", user.name),
            ));
        }
        site.users.push(user);
    }
    for g in parsed.user_group {
        let at = g.span().start;
        let group = g.into_inner();
        if group.name.is_empty() || site.user_groups.iter().any(|x| x.name == group.name) {
            return Err(err_at(
                at,
                "name",
                format!(
                    "user group `{}` is empty-named or defined twice",
                    group.name
                ),
            ));
        }
        site.user_groups.push(group);
    }
    for g in parsed.device_group {
        let at = g.span().start;
        let group = g.into_inner();
        if group.name.is_empty() || site.device_groups.iter().any(|x| x.name == group.name) {
            return Err(err_at(
                at,
                "name",
                format!(
                    "device group `{}` is empty-named or defined twice",
                    group.name
                ),
            ));
        }
        site.device_groups.push(group);
    }
    for r in parsed.access {
        let at = r.span().start;
        let rule = r.into_inner();
        if rule.devices != mo_core::policy::ALL_DEVICES
            && !site.device_groups.iter().any(|g| g.name == rule.devices)
        {
            return Err(err_at(
                at,
                "devices",
                format!("no [[device_group]] named `{}`", rule.devices),
            ));
        }
        if let Some(group) = rule.subject.strip_prefix('@') {
            if !site.user_groups.iter().any(|g| g.name == group) {
                return Err(err_at(
                    at,
                    "subject",
                    format!("no [[user_group]] named `{group}`"),
                ));
            }
        } else if rule.subject.is_empty() {
            return Err(err_at(at, "subject", "empty subject".into()));
        }
        if rule.role.is_empty() {
            return Err(err_at(at, "role", "empty role".into()));
        }
        site.access.push(rule);
    }
    for e in parsed.secret {
        let at = e.span().start;
        let entry = e.into_inner();
        if let Err(err) = entry.kind.parse::<crate::secrets::SecretKind>() {
            return Err(err_at(at, "kind", err.to_string()));
        }
        if entry.device.is_empty() || entry.sealed.trim().is_empty() {
            return Err(err_at(
                at,
                "sealed",
                "a secret needs a device and a sealed value".into(),
            ));
        }
        site.secrets.push(entry);
    }
    site.unsupported = parsed.unsupported;
    Ok(site)
}

/// Check a user entry: name rules, password hash format, SSH key lines. Errors carry the key.
pub(crate) fn validate_user(user: &UserEntry) -> Result<(), (&'static str, String)> {
    validate_user_name(&user.name).map_err(|e| ("name", e.to_string()))?;
    if let Some(hash) = &user.password_hash {
        let parsed = argon2::password_hash::PasswordHash::new(hash).map_err(|e| {
            (
                "password_hash",
                format!("user `{}`: not a PHC password hash ({e})", user.name),
            )
        })?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err((
                "password_hash",
                format!(
                    "user `{}`: the hash must be argon2id, not {}",
                    user.name, parsed.algorithm
                ),
            ));
        }
    }
    for key in &user.ssh_keys {
        SshPublicKey::parse(key).map_err(|e| ("ssh_keys", format!("user `{}`: {e}", user.name)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use rand::{Rng, SeedableRng};

    use super::*;

    const SAMPLE: &str = r#"
[[device]]
name = "web01"
url = "serial:///dev/ttyS0?baud=115200"
description = "front"
on_demand = true
break_sequences = { 2 = "\\r~^b" }

[[device]]
name = "lab"
url = "sim://lab"

[[user]]
name = "alice"
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti a@b"]

[[user_group]]
name = "ops"
members = ["alice"]

[[device_group]]
name = "all"
patterns = ["*"]

[[access]]
subject = "@ops"
role = "operator"
devices = "all"
"#;

    #[test]
    fn reads_and_round_trips() {
        let site = parse_toml(SAMPLE, "site.toml").unwrap();
        assert_eq!(site.devices.len(), 2);
        let web = site.device("web01").unwrap();
        assert!(web.settings.on_demand);
        assert_eq!(web.settings.replay_lines, 20);
        assert_eq!(web.settings.break_sequences.get(&2).unwrap(), "\\r~^b");
        assert_eq!(site.access.len(), 1);
        let text = to_toml(&site).unwrap();
        let again = parse_toml(&text, "out.toml").unwrap();
        let mut sorted = site.clone();
        sorted.sort();
        assert_eq!(again, sorted);
        assert_eq!(to_toml(&again).unwrap(), text, "export is stable");
        assert!(text.find("name = \"lab\"").unwrap() < text.find("name = \"web01\"").unwrap());
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad = SAMPLE.replace("url = \"sim://lab\"", "url = \"nope\"");
        let e = parse_toml(&bad, "site.toml").unwrap_err().to_string();
        assert!(e.starts_with("site.toml line 11, column"), "{e}");
        assert!(e.contains("(url)"), "{e}");
        let bad = SAMPLE.replace("on_demand = true", "on_demand = \"yes\"");
        let e = parse_toml(&bad, "site.toml").unwrap_err().to_string();
        assert!(e.starts_with("site.toml line 6"), "{e}");
        let bad = SAMPLE.replace("on_demand = true", "ondemand = true");
        let e = parse_toml(&bad, "site.toml").unwrap_err().to_string();
        assert!(e.contains("line 6") && e.contains("ondemand"), "{e}");
        let bad = SAMPLE.replace("devices = \"all\"", "devices = \"rack9\"");
        let e = parse_toml(&bad, "s.toml").unwrap_err().to_string();
        assert!(e.contains("(devices)") && e.contains("rack9"), "{e}");
        let bad = SAMPLE.replace("name = \"lab\"", "name = \"web01\"");
        let e = parse_toml(&bad, "s.toml").unwrap_err().to_string();
        assert!(
            e.contains("line 10") && e.contains("first at line 3"),
            "{e}"
        );
        let bad = SAMPLE.replace("2 = ", "12 = ");
        assert!(
            parse_toml(&bad, "s.toml")
                .unwrap_err()
                .to_string()
                .contains("(break_sequences)")
        );
        let bad = SAMPLE.replace(
            "ssh_keys = [\"ssh-ed25519 AAAAC3",
            "ssh_keys = [\"ssh-ed25519 XXAAC3",
        );
        assert!(
            parse_toml(&bad, "s.toml")
                .unwrap_err()
                .to_string()
                .contains("(ssh_keys)")
        );
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x70_6d);
        let alphabet = b"[]{}=\"'\\#\n .,abcdeviceurlname0123456789_-:/";
        for round in 0..2000 {
            let len = rng.random_range(0..200);
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect()
            } else {
                let mut b = SAMPLE.as_bytes().to_vec();
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..b.len());
                    b[i] = alphabet[rng.random_range(0..alphabet.len())];
                }
                b
            };
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_toml(&text, "fuzz.toml");
        }
    }
}
