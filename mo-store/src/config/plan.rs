//! Comparing a configuration with the store ([`plan`]), carrying the plan out in one transaction
//! ([`apply`]), and reading the store back as a configuration ([`export`]).
//!
//! A section the file does not have (no devices in a user list, no users in a device
//! spreadsheet) is left alone. Devices, users and SSH keys in the store but not in the file are
//! listed as "not in file" and kept, unless [`PlanOptions::prune`] asks to remove them. A user
//! without `password_hash` in the file keeps the stored password.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rusqlite::params;

use super::ConfigError;
use super::model::{
    AccessRule, DeviceGroupEntry, SecretEntry, SiteConfig, Unsupported, UserEntry, UserGroupEntry,
    device_fields,
};
use crate::device::{Device, now_ns};
use crate::error::{Error, Result};
use crate::secrets::{SecretKey, SecretKind};
use crate::sshkey::SshPublicKey;
use crate::store::{Store, is_unique_violation};
use mo_core::policy::{ALL_DEVICES, DeviceGroup, Grant, NamePattern, Subject};

/// How to plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Remove devices, users and SSH keys that are in the store but not in the file.
    pub prune: bool,
}

/// One field of a device that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// `url` or a setting's name (`on_demand`, `break_sequences`, …).
    pub field: String,
    /// The stored value, as text.
    pub from: String,
    /// The file's value, as text.
    pub to: String,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add this device.
    AddDevice(Device),
    /// Replace this device's URL and settings; `fields` says what differs.
    ChangeDevice {
        /// The device as the file has it.
        device: Device,
        /// The differing fields.
        fields: Vec<FieldChange>,
    },
    /// Remove the device of this name.
    RemoveDevice(String),
    /// Add this user with their password hash and keys.
    AddUser(UserEntry),
    /// Change a user's credentials.
    ChangeUser {
        /// The user.
        name: String,
        /// A new password hash, if it changes.
        password_hash: Option<String>,
        /// SSH keys to add (OpenSSH lines).
        add_keys: Vec<String>,
        /// SSH keys to remove (fingerprints).
        remove_keys: Vec<String>,
    },
    /// Remove the user of this name (and their keys).
    RemoveUser(String),
    /// Add this user group.
    AddUserGroup(UserGroupEntry),
    /// Add and remove members of a user group.
    ChangeUserGroup {
        /// The group.
        name: String,
        /// Users to add.
        add: Vec<String>,
        /// Users to remove (only with [`PlanOptions::prune`]).
        remove: Vec<String>,
    },
    /// Remove the user group of this name.
    RemoveUserGroup(String),
    /// Add this device group.
    AddDeviceGroup(DeviceGroupEntry),
    /// Add and remove members and patterns of a device group.
    ChangeDeviceGroup {
        /// The group.
        name: String,
        /// Devices to add.
        add_members: Vec<String>,
        /// Patterns to add.
        add_patterns: Vec<String>,
        /// Devices to remove (only with [`PlanOptions::prune`]).
        remove_members: Vec<String>,
        /// Patterns to remove (only with [`PlanOptions::prune`]).
        remove_patterns: Vec<String>,
    },
    /// Remove the device group of this name.
    RemoveDeviceGroup(String),
    /// Add this grant.
    AddGrant(AccessRule),
    /// Remove this grant.
    RemoveGrant(AccessRule),
    /// Store (or replace) a device secret from its sealed export form.
    SetSecret(SecretEntry),
    /// Remove a device secret: device and kind.
    RemoveSecret(String, String),
}

/// What an import would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// New devices and users.
    pub adds: Vec<Change>,
    /// Devices and users that differ.
    pub changes: Vec<Change>,
    /// Devices and users to remove (only with [`PlanOptions::prune`]).
    pub removals: Vec<Change>,
    /// What the store has and the file does not, kept (`device web9`, `SSH key … of alice`).
    pub not_in_file: Vec<String>,
    /// What the source could not carry over.
    pub unsupported: Vec<Unsupported>,
}

impl Plan {
    /// True if applying the plan would change nothing in the store.
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.changes.is_empty() && self.removals.is_empty()
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddDevice(d) => write!(f, "+ device {} ({})", d.name, d.url),
            Change::ChangeDevice { device, fields } => {
                write!(f, "~ device {}:", device.name)?;
                for (i, c) in fields.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{} `{}` → `{}`", c.field, c.from, c.to)?;
                }
                Ok(())
            }
            Change::RemoveDevice(n) => write!(f, "- device {n}"),
            Change::AddUser(u) => write!(
                f,
                "+ user {} ({}, {} SSH key{})",
                u.name,
                if u.password_hash.is_some() {
                    "password hash"
                } else {
                    "no password"
                },
                u.ssh_keys.len(),
                if u.ssh_keys.len() == 1 { "" } else { "s" }
            ),
            Change::ChangeUser {
                name,
                password_hash,
                add_keys,
                remove_keys,
            } => {
                let mut parts = Vec::new();
                if password_hash.is_some() {
                    parts.push("password hash changes".to_string());
                }
                for k in add_keys {
                    let fp = SshPublicKey::parse(k)
                        .map(|k| k.fingerprint().to_string())
                        .unwrap_or_default();
                    parts.push(format!("+ SSH key {fp}"));
                }
                for fp in remove_keys {
                    parts.push(format!("- SSH key {fp}"));
                }
                write!(f, "~ user {name}: {}", parts.join("; "))
            }
            Change::RemoveUser(n) => write!(f, "- user {n}"),
            Change::AddUserGroup(g) => {
                write!(f, "+ user group {} ({})", g.name, g.members.join(", "))
            }
            Change::ChangeUserGroup { name, add, remove } => {
                let parts: Vec<String> = add
                    .iter()
                    .map(|u| format!("+ {u}"))
                    .chain(remove.iter().map(|u| format!("- {u}")))
                    .collect();
                write!(f, "~ user group {name}: {}", parts.join("; "))
            }
            Change::RemoveUserGroup(n) => write!(f, "- user group {n}"),
            Change::AddDeviceGroup(g) => {
                let what: Vec<&str> = g
                    .members
                    .iter()
                    .chain(&g.patterns)
                    .map(String::as_str)
                    .collect();
                write!(f, "+ device group {} ({})", g.name, what.join(", "))
            }
            Change::ChangeDeviceGroup {
                name,
                add_members,
                add_patterns,
                remove_members,
                remove_patterns,
            } => {
                let parts: Vec<String> = add_members
                    .iter()
                    .chain(add_patterns)
                    .map(|x| format!("+ {x}"))
                    .chain(
                        remove_members
                            .iter()
                            .chain(remove_patterns)
                            .map(|x| format!("- {x}")),
                    )
                    .collect();
                write!(f, "~ device group {name}: {}", parts.join("; "))
            }
            Change::RemoveDeviceGroup(n) => write!(f, "- device group {n}"),
            Change::AddGrant(r) => {
                write!(f, "+ grant {} on {} to {}", r.role, r.devices, r.subject)
            }
            Change::RemoveGrant(r) => {
                write!(f, "- grant {} on {} to {}", r.role, r.devices, r.subject)
            }
            Change::SetSecret(e) => {
                write!(f, "~ secret {} of device {} (sealed)", e.kind, e.device)
            }
            Change::RemoveSecret(device, kind) => write!(f, "- secret {kind} of device {device}"),
        }
    }
}

impl fmt::Display for Plan {
    /// The plan for people: one line per change, then what is kept, counted, and not carried over.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.adds.iter().chain(&self.changes).chain(&self.removals) {
            writeln!(f, "{c}")?;
        }
        if self.is_empty() {
            writeln!(f, "no changes")?;
        }
        if !self.not_in_file.is_empty() {
            writeln!(
                f,
                "not in file (kept; --prune removes): {}",
                self.not_in_file.join(", ")
            )?;
        }
        if !self.unsupported.is_empty() {
            writeln!(f, "not carried over: {}", self.unsupported.len())?;
            for u in &self.unsupported {
                writeln!(f, "  {} line {}: {}", u.file, u.line, u.what)?;
            }
        }
        Ok(())
    }
}

/// A stored user: password hash and keys.
struct StoredUser {
    hash: Option<String>,
    keys: Vec<SshPublicKey>,
}

fn stored_users(store: &Store) -> Result<BTreeMap<String, StoredUser>> {
    let rows: Vec<(String, Option<String>)> = store.read("read users", |c| {
        let mut stmt = c.prepare("SELECT name, password_hash FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })?;
    let mut out = BTreeMap::new();
    for (name, hash) in rows {
        let keys = store.ssh_key_details(&name)?;
        out.insert(name, StoredUser { hash, keys });
    }
    Ok(out)
}

fn key_id(k: &SshPublicKey) -> (String, String) {
    (k.key_type().to_string(), k.blob_base64().to_string())
}

/// Compare `site` with the store: what to add, change and (with `prune`) remove.
pub fn plan(site: &SiteConfig, store: &Store, options: &PlanOptions) -> Result<Plan, ConfigError> {
    let mut plan = Plan {
        unsupported: site.unsupported.clone(),
        ..Plan::default()
    };
    if !site.devices.is_empty() {
        let stored: BTreeMap<String, Device> = store
            .list_devices()?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        for d in &site.devices {
            match stored.get(&d.name) {
                None => plan.adds.push(Change::AddDevice(d.clone())),
                Some(old) => {
                    let fields: Vec<FieldChange> = device_fields(old)
                        .into_iter()
                        .zip(device_fields(d))
                        .filter(|(a, b)| a.1 != b.1)
                        .map(|(a, b)| FieldChange {
                            field: a.0,
                            from: a.1,
                            to: b.1,
                        })
                        .collect();
                    if !fields.is_empty() {
                        plan.changes.push(Change::ChangeDevice {
                            device: d.clone(),
                            fields,
                        });
                    }
                }
            }
        }
        let named: BTreeSet<&str> = site.devices.iter().map(|d| d.name.as_str()).collect();
        for name in stored.keys().filter(|n| !named.contains(n.as_str())) {
            if options.prune {
                plan.removals.push(Change::RemoveDevice(name.clone()));
            } else {
                plan.not_in_file.push(format!("device {name}"));
            }
        }
    }
    if !site.users.is_empty() {
        let stored = stored_users(store)?;
        for u in &site.users {
            let Some(old) = stored.get(&u.name) else {
                plan.adds.push(Change::AddUser(u.clone()));
                continue;
            };
            let password_hash = u
                .password_hash
                .clone()
                .filter(|h| old.hash.as_ref() != Some(h));
            let mut wanted = BTreeSet::new();
            let mut add_keys = Vec::new();
            for line in &u.ssh_keys {
                let key = SshPublicKey::parse(line)?;
                let id = key_id(&key);
                if !old.keys.iter().any(|k| key_id(k) == id) && !wanted.contains(&id) {
                    add_keys.push(line.clone());
                }
                wanted.insert(id);
            }
            let mut remove_keys = Vec::new();
            for k in old.keys.iter().filter(|k| !wanted.contains(&key_id(k))) {
                if options.prune {
                    remove_keys.push(k.fingerprint().to_string());
                } else {
                    plan.not_in_file.push(format!(
                        "SSH key {} of user {}",
                        k.fingerprint(),
                        u.name
                    ));
                }
            }
            if password_hash.is_some() || !add_keys.is_empty() || !remove_keys.is_empty() {
                plan.changes.push(Change::ChangeUser {
                    name: u.name.clone(),
                    password_hash,
                    add_keys,
                    remove_keys,
                });
            }
        }
        let named: BTreeSet<&str> = site.users.iter().map(|u| u.name.as_str()).collect();
        for name in stored.keys().filter(|n| !named.contains(n.as_str())) {
            if options.prune {
                plan.removals.push(Change::RemoveUser(name.clone()));
            } else {
                plan.not_in_file.push(format!("user {name}"));
            }
        }
    }
    plan_access(site, store, options, &mut plan)?;
    plan_secrets(site, store, options, &mut plan)?;
    Ok(plan)
}

/// Compare device secrets by their sealed form. They are set after the devices are added (as
/// changes) and removed before anything else.
fn plan_secrets(
    site: &SiteConfig,
    store: &Store,
    options: &PlanOptions,
    plan: &mut Plan,
) -> Result<(), ConfigError> {
    if site.secrets.is_empty() {
        return Ok(());
    }
    for e in &site.secrets {
        let kind: SecretKind = e.kind.parse()?;
        let stored = match store.get_device(&e.device)? {
            Some(_) => store.export_secret(&e.device, kind)?,
            None => None,
        };
        if stored.as_deref() != Some(e.sealed.trim()) {
            plan.changes.push(Change::SetSecret(e.clone()));
        }
    }
    let mut removals = Vec::new();
    for device in store.list_devices()? {
        for kind in store.secret_kinds(&device.name)? {
            let named = site
                .secrets
                .iter()
                .any(|e| e.device == device.name && e.kind == kind.name());
            if named {
                continue;
            }
            if options.prune {
                removals.push(Change::RemoveSecret(
                    device.name.clone(),
                    kind.name().into(),
                ));
            } else {
                plan.not_in_file
                    .push(format!("secret {kind} of device {}", device.name));
            }
        }
    }
    plan.removals.splice(0..0, removals);
    Ok(())
}

/// The store's grants as access rules (`@group` for user groups).
fn stored_rules(store: &Store) -> Result<Vec<AccessRule>> {
    Ok(store.list_grants()?.iter().map(rule_of).collect())
}

fn rule_of(grant: &Grant) -> AccessRule {
    AccessRule {
        subject: match &grant.subject {
            Subject::User(u) => u.clone(),
            Subject::Group(g) => format!("@{g}"),
        },
        role: grant.role.clone(),
        devices: grant.device_group.clone(),
    }
}

fn grant_of(rule: &AccessRule) -> Grant {
    match rule.subject.strip_prefix('@') {
        Some(group) => Grant::to_group(group, &rule.role, &rule.devices),
        None => Grant::to_user(&rule.subject, &rule.role, &rule.devices),
    }
}

/// Compare user groups, device groups and grants. A section the file does not have is left
/// alone; what the store has beyond the file is kept (and listed) unless `prune`. The
/// built-in device group `all` is never added or removed.
fn plan_access(
    site: &SiteConfig,
    store: &Store,
    options: &PlanOptions,
    plan: &mut Plan,
) -> Result<(), ConfigError> {
    // Removals of grants, then of groups, go before every other removal: a removed user
    // takes their grants along, and a group can only go once no grant names it.
    let mut removals = Vec::new();
    if !site.access.is_empty() {
        let stored = stored_rules(store)?;
        for rule in &site.access {
            if !stored.contains(rule) {
                plan.adds.push(Change::AddGrant(rule.clone()));
            }
        }
        for rule in stored.iter().filter(|r| !site.access.contains(r)) {
            if options.prune {
                removals.push(Change::RemoveGrant(rule.clone()));
            } else {
                plan.not_in_file.push(format!(
                    "grant {} on {} to {}",
                    rule.role, rule.devices, rule.subject
                ));
            }
        }
    }
    if !site.user_groups.is_empty() {
        let stored: BTreeMap<String, BTreeSet<String>> = store
            .list_user_groups()?
            .into_iter()
            .map(|g| (g.name, g.members))
            .collect();
        let mut adds = Vec::new();
        for g in &site.user_groups {
            match stored.get(&g.name) {
                None => adds.push(Change::AddUserGroup(g.clone())),
                Some(members) => {
                    let add: Vec<String> = g
                        .members
                        .iter()
                        .filter(|m| !members.contains(*m))
                        .cloned()
                        .collect();
                    let mut remove = Vec::new();
                    for m in members.iter().filter(|m| !g.members.contains(m)) {
                        if options.prune {
                            remove.push(m.clone());
                        } else {
                            plan.not_in_file
                                .push(format!("member {m} of user group {}", g.name));
                        }
                    }
                    if !add.is_empty() || !remove.is_empty() {
                        plan.changes.push(Change::ChangeUserGroup {
                            name: g.name.clone(),
                            add,
                            remove,
                        });
                    }
                }
            }
        }
        // Grants are added after the groups they name.
        let at = first_grant(&plan.adds);
        plan.adds.splice(at..at, adds);
        for name in stored
            .keys()
            .filter(|n| !site.user_groups.iter().any(|g| &g.name == *n))
        {
            if options.prune {
                removals.push(Change::RemoveUserGroup(name.clone()));
            } else {
                plan.not_in_file.push(format!("user group {name}"));
            }
        }
    }
    let file_groups: Vec<&DeviceGroupEntry> = site
        .device_groups
        .iter()
        .filter(|g| g.name != ALL_DEVICES)
        .collect();
    if !file_groups.is_empty() {
        let stored: BTreeMap<String, DeviceGroup> = store
            .list_device_groups()?
            .into_iter()
            .map(|g| (g.name.clone(), g))
            .collect();
        let mut adds = Vec::new();
        for g in &file_groups {
            for p in &g.patterns {
                NamePattern::parse(p).map_err(|e| Error::BadValue {
                    what: format!("pattern of device group `{}`", g.name),
                    value: p.clone(),
                    reason: e.to_string(),
                })?;
            }
            let Some(old) = stored.get(&g.name) else {
                adds.push(Change::AddDeviceGroup((*g).clone()));
                continue;
            };
            let old_patterns: Vec<&str> = old.patterns.iter().map(NamePattern::as_str).collect();
            let add_members: Vec<String> = g
                .members
                .iter()
                .filter(|m| !old.members.contains(*m))
                .cloned()
                .collect();
            let add_patterns: Vec<String> = g
                .patterns
                .iter()
                .filter(|p| !old_patterns.contains(&p.as_str()))
                .cloned()
                .collect();
            let (mut remove_members, mut remove_patterns) = (Vec::new(), Vec::new());
            for m in old.members.iter().filter(|m| !g.members.contains(m)) {
                if options.prune {
                    remove_members.push(m.clone());
                } else {
                    plan.not_in_file
                        .push(format!("member {m} of device group {}", g.name));
                }
            }
            for p in old_patterns
                .iter()
                .filter(|p| !g.patterns.iter().any(|q| q == *p))
            {
                if options.prune {
                    remove_patterns.push((*p).to_string());
                } else {
                    plan.not_in_file
                        .push(format!("pattern {p} of device group {}", g.name));
                }
            }
            if !(add_members.is_empty()
                && add_patterns.is_empty()
                && remove_members.is_empty()
                && remove_patterns.is_empty())
            {
                plan.changes.push(Change::ChangeDeviceGroup {
                    name: g.name.clone(),
                    add_members,
                    add_patterns,
                    remove_members,
                    remove_patterns,
                });
            }
        }
        let at = first_grant(&plan.adds);
        plan.adds.splice(at..at, adds);
        for name in stored
            .keys()
            .filter(|n| !file_groups.iter().any(|g| &g.name == *n))
        {
            if options.prune {
                removals.push(Change::RemoveDeviceGroup(name.clone()));
            } else {
                plan.not_in_file.push(format!("device group {name}"));
            }
        }
    }
    plan.removals.splice(0..0, removals);
    Ok(())
}

/// Where the first grant is among the adds (the end if there is none).
fn first_grant(adds: &[Change]) -> usize {
    adds.iter()
        .position(|c| matches!(c, Change::AddGrant(_)))
        .unwrap_or(adds.len())
}

/// Carry out `plan` in one transaction: either every change lands or none does. A plan that
/// sets device secrets needs the data directory's key: see [`apply_with_key`].
pub fn apply(plan: &Plan, store: &Store) -> Result<(), ConfigError> {
    apply_with_key(plan, store, None)
}

/// [`apply`], with the key that sealed exported device secrets must open with (a secret sealed
/// by another data directory's key is refused, and nothing lands).
pub fn apply_with_key(
    plan: &Plan,
    store: &Store,
    key: Option<&SecretKey>,
) -> Result<(), ConfigError> {
    store.atomically("import a configuration", |own| {
        for change in plan.removals.iter().chain(&plan.adds).chain(&plan.changes) {
            apply_one(own, change, key)?;
        }
        Ok::<(), ConfigError>(())
    })
}

fn apply_one(store: &Store, change: &Change, key: Option<&SecretKey>) -> Result<()> {
    let sql = |what: String| move |e: rusqlite::Error| store.sql_error(&what, e);
    match change {
        Change::AddDevice(d) => store.add_device(d)?,
        Change::ChangeDevice { device, .. } => store.update_device(device)?,
        Change::RemoveDevice(name) => store.remove_device(name)?,
        Change::AddUser(u) => {
            super::toml::validate_user(u)
                .map_err(|(key, reason)| user_error(&u.name, key, reason))?;
            store
                .conn()
                .execute(
                    "INSERT INTO users (name, password_hash, created_ns) VALUES (?1, ?2, ?3)",
                    params![u.name, u.password_hash, now_ns()],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::UserExists(u.name.clone())
                    } else {
                        store.sql_error(&format!("add user `{}`", u.name), e)
                    }
                })?;
            for line in &u.ssh_keys {
                insert_key(store, &u.name, line)?;
            }
        }
        Change::ChangeUser {
            name,
            password_hash,
            add_keys,
            remove_keys,
        } => {
            if let Some(hash) = password_hash {
                let probe = UserEntry {
                    name: name.clone(),
                    password_hash: Some(hash.clone()),
                    ssh_keys: Vec::new(),
                };
                super::toml::validate_user(&probe)
                    .map_err(|(key, reason)| user_error(name, key, reason))?;
                store
                    .conn()
                    .execute(
                        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                        params![name, hash],
                    )
                    .map_err(sql(format!("set the password hash of user `{name}`")))?;
            }
            for fp in remove_keys {
                store.remove_ssh_key(name, fp)?;
            }
            for line in add_keys {
                insert_key(store, name, line)?;
            }
        }
        Change::RemoveUser(name) => store.remove_user(name)?,
        Change::AddUserGroup(g) => store.add_user_group(&g.name, &g.members)?,
        Change::ChangeUserGroup { name, add, remove } => {
            store.change_user_group(name, add, remove)?;
        }
        Change::RemoveUserGroup(name) => store.remove_user_group(name)?,
        Change::AddDeviceGroup(g) => store.add_device_group(&device_group(g)?)?,
        Change::ChangeDeviceGroup {
            name,
            add_members,
            add_patterns,
            remove_members,
            remove_patterns,
        } => {
            let parsed = add_patterns
                .iter()
                .map(|p| parse_pattern(name, p))
                .collect::<Result<Vec<_>>>()?;
            store.change_device_group(
                name,
                add_members,
                &parsed,
                remove_members,
                remove_patterns,
            )?;
        }
        Change::RemoveDeviceGroup(name) => store.remove_device_group(name)?,
        Change::AddGrant(rule) => store.add_grant(&grant_of(rule))?,
        Change::RemoveGrant(rule) => store.remove_grant(&grant_of(rule))?,
        Change::SetSecret(e) => {
            let kind: SecretKind = e.kind.parse()?;
            let key = key.ok_or_else(|| Error::Secret {
                what: format!("{kind} of device `{}`", e.device),
                reason: "importing device secrets needs the data directory's secret key".into(),
            })?;
            store.import_secret(key, &e.device, kind, &e.sealed)?;
        }
        Change::RemoveSecret(device, kind) => store.remove_secret(device, kind.parse()?)?,
    }
    Ok(())
}

fn parse_pattern(group: &str, text: &str) -> Result<NamePattern> {
    NamePattern::parse(text).map_err(|e| Error::BadValue {
        what: format!("pattern of device group `{group}`"),
        value: text.to_string(),
        reason: e.to_string(),
    })
}

fn device_group(entry: &DeviceGroupEntry) -> Result<DeviceGroup> {
    let mut group = DeviceGroup::new(&entry.name);
    group.members = entry.members.iter().cloned().collect();
    group.patterns = entry
        .patterns
        .iter()
        .map(|p| parse_pattern(&entry.name, p))
        .collect::<Result<_>>()?;
    Ok(group)
}

fn insert_key(store: &Store, user: &str, line: &str) -> Result<()> {
    let key = SshPublicKey::parse(line)?;
    let conn = store.conn();
    conn.execute(
        "INSERT INTO ssh_keys (user, key_type, blob, comment, fingerprint, created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![user, key.key_type(), key.blob_base64(), key.comment(), key.fingerprint(), now_ns()],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            let owner = conn
                .query_row(
                    "SELECT user FROM ssh_keys WHERE key_type = ?1 AND blob = ?2",
                    params![key.key_type(), key.blob_base64()],
                    |r| r.get::<_, String>(0),
                )
                .unwrap_or_else(|_| user.to_string());
            Error::DuplicateSshKey { user: owner, fingerprint: key.fingerprint().to_string() }
        } else {
            store.sql_error(&format!("add an SSH key to user `{user}`"), e)
        }
    })?;
    Ok(())
}

/// The store error for a user entry that [`super::toml::validate_user`] refused.
fn user_error(name: &str, key: &str, reason: String) -> Error {
    match key {
        "password_hash" => Error::BadPassword {
            user: name.to_string(),
            reason,
        },
        "ssh_keys" => Error::BadSshKey {
            source_name: Some(format!("user `{name}`")),
            reason,
        },
        _ => Error::BadName {
            what: "user",
            name: name.to_string(),
            reason,
        },
    }
}

/// The store as a configuration: every device, every user with their password hash and SSH
/// keys, user groups, device groups and grants. Roles are not part of it (the built-in ones
/// are the same everywhere; `mo role` manages others).
pub fn export(store: &Store) -> Result<SiteConfig, ConfigError> {
    let mut site = SiteConfig {
        devices: store.list_devices()?,
        ..SiteConfig::default()
    };
    for (name, user) in stored_users(store)? {
        site.users.push(UserEntry {
            name,
            password_hash: user.hash,
            ssh_keys: user.keys.iter().map(SshPublicKey::to_openssh).collect(),
        });
    }
    for g in store.list_user_groups()? {
        site.user_groups.push(UserGroupEntry {
            name: g.name,
            members: g.members.into_iter().collect(),
        });
    }
    for g in store.list_device_groups()? {
        site.device_groups.push(DeviceGroupEntry {
            name: g.name,
            members: g.members.into_iter().collect(),
            patterns: g.patterns.iter().map(|p| p.as_str().to_string()).collect(),
        });
    }
    site.access = stored_rules(store)?;
    for device in store.list_devices()? {
        for kind in store.secret_kinds(&device.name)? {
            if let Some(sealed) = store.export_secret(&device.name, kind)? {
                site.secrets.push(SecretEntry {
                    device: device.name.clone(),
                    kind: kind.name().to_string(),
                    sealed,
                });
            }
        }
    }
    site.sort();
    Ok(site)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
