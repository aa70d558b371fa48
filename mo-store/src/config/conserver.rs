//! Migration from conserver: `conserver.cf` → [`SiteConfig`].
//!
//! Consoles become devices (type `device` → `serial://`, `exec` → `exec://`, `host` →
//! `telnet://` or `tcp://` with `protocol raw`, `uds` → `unix://`, `ipmi` → `ipmi://`), with
//! `default` blocks and `include`s applied as conserver applies them. `break` blocks become break
//! sequences, `group` blocks user groups, console `rw`/`ro` lists and access-block `admin` lists
//! access rules (roles `operator`, `viewer`, `admin`). Everything else is listed in
//! [`SiteConfig::unsupported`] with its file and line.

use std::collections::{BTreeMap, BTreeSet};

use super::ConfigError;
use super::conserver_lex::{Block, Entry, Loc, lex};
use super::model::{AccessRule, DeviceGroupEntry, SiteConfig, UserGroupEntry};
use super::urls;
use crate::device::{Device, DeviceSettings};
use crate::names::{validate_device_name, validate_user_name};

pub use super::conserver_lex::Loader;
pub(crate) use super::conserver_lex::no_includes;

/// The user group that stands for conserver's `*` (any user).
pub const EVERYONE: &str = "everyone";
/// The device group holding every imported console (for access-block `admin` lists).
pub const ALL_DEVICES: &str = "all";

/// A console's access grants: (subject, role) pairs.
type Grants = BTreeSet<(String, String)>;

#[derive(Debug, Clone)]
struct Val {
    text: String,
    loc: Loc,
}

/// Console or default settings as conserver accumulates them.
#[derive(Debug, Clone, Default)]
struct Props {
    single: BTreeMap<&'static str, Val>,
    options: Vec<Val>,
    rw: Vec<Val>,
    ro: Vec<Val>,
    other: Vec<Entry>,
}

/// Keywords with one value that the converter reads.
const SINGLE: &[&str] = &[
    "type",
    "device",
    "baud",
    "parity",
    "exec",
    "host",
    "port",
    "portbase",
    "portinc",
    "protocol",
    "uds",
    "motd",
    "logfile",
    "master",
    "username",
    "password",
    "devicesubst",
    "execsubst",
    "udssubst",
    "replstring",
    "timestamp",
];

impl Props {
    fn get(&self, key: &str) -> Option<&Val> {
        self.single.get(key)
    }
    fn text(&self, key: &str) -> Option<&str> {
        self.get(key)
            .map(|v| v.text.as_str())
            .filter(|t| !t.is_empty())
    }
    fn merge(&mut self, other: &Props) {
        for (k, v) in &other.single {
            self.single.insert(k, v.clone());
        }
        self.options.extend(other.options.iter().cloned());
        self.rw.extend(other.rw.iter().cloned());
        self.ro.extend(other.ro.iter().cloned());
        self.other.extend(other.other.iter().cloned());
    }
}

/// Split a conserver list value (`a, b c`) into items.
fn list(value: &str) -> Vec<String> {
    value
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

struct Converter<'a> {
    files: &'a [String],
    site: SiteConfig,
    defaults: BTreeMap<String, Props>,
    groups: BTreeMap<String, Vec<String>>,
    breaks: BTreeMap<u8, String>,
    /// Per console: its access grants (subject, role).
    grants: Vec<(String, BTreeSet<(String, String)>)>,
    admins: BTreeSet<String>,
}

/// Read a `conserver.cf`. `#include` lines are read with `loader` (see [`super::read_file`]).
/// Grammar errors name the file and line; what parses but cannot be carried over is listed in
/// the result's `unsupported`.
pub fn parse_conserver(text: &str, file: &str, loader: &Loader) -> Result<SiteConfig, ConfigError> {
    let lexed = lex(text, file, loader)?;
    let mut c = Converter {
        files: &lexed.files,
        site: SiteConfig::default(),
        defaults: BTreeMap::new(),
        groups: BTreeMap::new(),
        breaks: BTreeMap::new(),
        grants: Vec::new(),
        admins: BTreeSet::new(),
    };
    for block in &lexed.blocks {
        c.block(block)?;
    }
    Ok(c.finish())
}

impl Converter<'_> {
    fn file(&self, loc: Loc) -> &str {
        self.files.get(loc.file).map_or("", String::as_str)
    }
    fn error(&self, loc: Loc, reason: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file(loc), loc.line, reason)
    }
    fn note(&mut self, loc: Loc, what: impl Into<String>) {
        let file = self.file(loc).to_string();
        self.site.note(&file, loc.line, what);
    }

    fn block(&mut self, b: &Block) -> Result<(), ConfigError> {
        match b.kind.as_str() {
            "default" => {
                let props = self.props(b, Props::default())?;
                self.defaults.insert(b.name.clone(), props);
            }
            "console" => {
                let start = self.defaults.get("*").cloned().unwrap_or_default();
                let props = self.props(b, start)?;
                self.console(b, &props);
            }
            "break" => self.break_block(b),
            "group" => self.group(b),
            "access" => self.access(b),
            "config" => {
                for e in &b.entries {
                    self.note(
                        e.loc,
                        format!(
                            "config {}: `{} {}` (server settings are mo's own; see mod --help)",
                            b.name, e.keyword, e.value
                        ),
                    );
                }
            }
            "task" => self.note(
                b.loc,
                format!(
                    "task `{}`: mo has no server-side tasks; use a macro",
                    b.name
                ),
            ),
            other => self.note(
                b.loc,
                format!("`{other} {}` block is not supported", b.name),
            ),
        }
        Ok(())
    }

    /// Evaluate a console or default block's entries on top of `props`.
    fn props(&mut self, b: &Block, mut props: Props) -> Result<Props, ConfigError> {
        for e in &b.entries {
            let val = Val {
                text: e.value.clone(),
                loc: e.loc,
            };
            match e.keyword.as_str() {
                "include" => {
                    let inc = self.defaults.get(&e.value).cloned().ok_or_else(|| {
                        self.error(
                            e.loc,
                            format!(
                                "include {}: no default block of that name defined before",
                                e.value
                            ),
                        )
                    })?;
                    props.merge(&inc);
                }
                "options" if e.value.is_empty() => props.options.clear(),
                "options" => props.options.push(val),
                "rw" if e.value.is_empty() => props.rw.clear(),
                "rw" => props.rw.push(val),
                "ro" if e.value.is_empty() => props.ro.clear(),
                "ro" => props.ro.push(val),
                k => match SINGLE.iter().find(|s| **s == k) {
                    Some(key) => {
                        props.single.insert(key, val);
                    }
                    None => props.other.push(e.clone()),
                },
            }
        }
        Ok(props)
    }

    fn console(&mut self, b: &Block, p: &Props) {
        let name = b.name.clone();
        if let Err(e) = validate_device_name(&name) {
            self.note(b.loc, format!("console `{name}` not imported: {e}"));
            return;
        }
        let mut settings = DeviceSettings::default();
        let url = match self.console_url(&name, p, &mut settings) {
            Ok(url) => url,
            Err((loc, reason)) => {
                self.note(
                    loc.unwrap_or(b.loc),
                    format!("console `{name}` not imported: {reason}"),
                );
                return;
            }
        };
        if let Some(motd) = p.text("motd") {
            settings.description = Some(
                motd.chars()
                    .filter(|c| !c.is_control())
                    .take(1024)
                    .collect(),
            );
        }
        if let Some(master) = p
            .get("master")
            .filter(|m| !matches!(m.text.as_str(), "" | "localhost" | "127.0.0.1" | "::1"))
        {
            let loc = master.loc;
            let text = master.text.clone();
            self.note(loc, format!("console `{name}`: conserver master `{text}`; mo serves every imported console itself"));
        }
        if let Some(log) = p.get("logfile") {
            let (loc, empty) = (log.loc, log.text.is_empty());
            if empty {
                self.note(loc, format!("console `{name}`: logging was off (`logfile \"\"`); mo always keeps a record log"));
            } else {
                self.note(loc, "logfile: mo records every console in its own record log (logs/<device>/); the path is not used");
            }
        }
        for e in p.other.clone() {
            let what = match e.keyword.as_str() {
                "break" => format!(
                    "`break {}`: mo has no per-console default break; use break N by number",
                    e.value
                ),
                "aliases" => format!("aliases `{}`: mo has no console aliases", e.value),
                "logfilemax" => {
                    "logfilemax: mo's record logs have their own segment rotation".to_string()
                }
                k => format!("`{k}` is not supported (value `{}`)", e.value),
            };
            self.note(e.loc, what);
        }
        for (&n, text) in &self.breaks {
            let default = mo_core::breakseq::BreakSequences::default();
            if default.get(n).map(|s| s.text()) != Some(text.as_str()) {
                settings.break_sequences.insert(n, text.clone());
            }
        }
        let device = Device {
            name: name.clone(),
            url,
            settings,
        };
        if let Err(e) = device.validate() {
            self.note(b.loc, format!("console `{name}` not imported: {e}"));
            return;
        }
        let grants = self.access_lists(&name, p);
        self.site.devices.retain(|d| d.name != name);
        self.grants.retain(|(n, _)| *n != name);
        self.site.devices.push(device);
        self.grants.push((name, grants));
    }

    /// The mo URL for a console, or where and why it cannot have one.
    fn console_url(
        &mut self,
        name: &str,
        p: &Props,
        settings: &mut DeviceSettings,
    ) -> Result<String, (Option<Loc>, String)> {
        let kind = match p.text("type") {
            Some(t) => t.to_string(),
            None if p.text("device").is_some() => "device".into(),
            None if p.text("exec").is_some() => "exec".into(),
            None if p.text("uds").is_some() => "uds".into(),
            None if p.text("host").is_some() && p.text("port").is_some() => "host".into(),
            None => return Err((None, "no `type`".into())),
        };
        let type_loc = p.get("type").map(|v| v.loc);
        let loc_of = |k: &str| p.get(k).map(|v| v.loc).or(type_loc);
        let mut serial_params: Vec<(&str, Option<String>)> = Vec::new();
        for opt in &p.options {
            for item in list(&opt.text) {
                let (on, word) = match item.strip_prefix('!') {
                    Some(w) => (false, w.to_string()),
                    None => (true, item.clone()),
                };
                match (word.as_str(), on) {
                    ("ondemand", on) => settings.on_demand = on,
                    ("crtscts", true) => serial_params.push(("flow", Some("hardware".into()))),
                    ("ixon" | "ixoff", true) => {
                        serial_params.push(("flow", Some("software".into())))
                    }
                    ("cstopb", true) => serial_params.push(("stop", Some("2".into()))),
                    (
                        "crtscts" | "ixon" | "ixoff" | "cstopb" | "ixany" | "hupcl" | "striphigh"
                        | "unloved",
                        false,
                    )
                    | ("login" | "autoreinit" | "reinitoncc", true) => {}
                    (w, _) => self.note(
                        opt.loc,
                        format!(
                            "console `{name}`: option `{item}` is not supported{}",
                            if [
                                "ixany",
                                "hupcl",
                                "striphigh",
                                "unloved",
                                "login",
                                "autoreinit",
                                "reinitoncc"
                            ]
                            .contains(&w)
                            {
                                ""
                            } else {
                                " (unknown option)"
                            }
                        ),
                    ),
                }
            }
        }
        let port = || -> Result<Option<u32>, (Option<Loc>, String)> {
            let Some(port) = p.text("port") else {
                return Ok(None);
            };
            let num = |k: &str, d: i64| -> Result<i64, (Option<Loc>, String)> {
                p.text(k).map_or(Ok(d), |t| {
                    t.parse()
                        .map_err(|_| (loc_of(k), format!("{k} `{t}` is not a number")))
                })
            };
            let n: i64 = match port.parse() {
                Ok(n) => n,
                Err(_) => match port {
                    "telnet" => 23,
                    "ssh" => 22,
                    _ => {
                        return Err((
                            loc_of("port"),
                            format!(
                                "port `{port}` is a service name mo cannot look up; give a number"
                            ),
                        ));
                    }
                },
            };
            let fin = num("portbase", 0)? + num("portinc", 1)? * n;
            u32::try_from(fin)
                .map(Some)
                .map_err(|_| (loc_of("port"), format!("port works out to {fin}")))
        };
        let subst = |value: &str, key: &str| -> Result<String, (Option<Loc>, String)> {
            match p.text(key) {
                None => Ok(value.to_string()),
                Some(spec) => substitute(value, spec, name, p, port()?)
                    .map_err(|e| (loc_of(key), format!("{key}: {e}"))),
            }
        };
        match kind.as_str() {
            "device" => {
                let dev = p
                    .text("device")
                    .ok_or((type_loc, "type device without `device`".to_string()))?;
                let dev = subst(dev, "devicesubst")?;
                let parity = match p.text("parity") {
                    None | Some("none") => None,
                    Some(par @ ("even" | "odd")) => Some(par.to_string()),
                    Some(other) => {
                        self.note(
                            loc_of("parity").unwrap_or(Loc { file: 0, line: 0 }),
                            format!(
                                "console `{name}`: parity `{other}` is not supported; none used"
                            ),
                        );
                        None
                    }
                };
                let mut params = vec![
                    ("baud", p.text("baud").map(str::to_string)),
                    ("parity", parity),
                ];
                params.extend(serial_params);
                params.dedup_by(|a, b| a.0 == b.0);
                urls::serial(&dev, &params).map_err(|e| (loc_of("device"), e))
            }
            "exec" => {
                let command = subst(p.text("exec").unwrap_or("/bin/sh -i"), "execsubst")?;
                urls::command(&command).map_err(|e| (loc_of("exec"), e))
            }
            "host" => {
                let host = p
                    .text("host")
                    .ok_or((type_loc, "type host without `host`".to_string()))?;
                let port = port()?.ok_or((type_loc, "type host without `port`".to_string()))?;
                let scheme = if p.text("protocol") == Some("raw") {
                    "tcp"
                } else {
                    "telnet"
                };
                urls::host(scheme, None, host, Some(port)).map_err(|e| (loc_of("host"), e))
            }
            "uds" => {
                let path = p
                    .text("uds")
                    .ok_or((type_loc, "type uds without `uds`".to_string()))?;
                urls::unix(&subst(path, "udssubst")?).map_err(|e| (loc_of("uds"), e))
            }
            "ipmi" => {
                let host = p
                    .text("host")
                    .ok_or((type_loc, "type ipmi without `host`".to_string()))?;
                if let Some(pw) = p.get("password").filter(|v| !v.text.is_empty()) {
                    let loc = pw.loc;
                    self.note(loc, format!("console `{name}`: the IPMI password is not carried over; set the device's credentials in mo"));
                }
                urls::host("ipmi", p.text("username"), host, None).map_err(|e| (loc_of("host"), e))
            }
            "noop" => Err((
                type_loc,
                "type noop (a placeholder) has nothing to connect to".into(),
            )),
            other => Err((type_loc, format!("unknown type `{other}`"))),
        }
    }

    /// The access grants of one console from its rw and ro lists.
    fn access_lists(&mut self, console: &str, p: &Props) -> BTreeSet<(String, String)> {
        let mut grants = BTreeSet::new();
        for (vals, role) in [(&p.rw, "operator"), (&p.ro, "viewer")] {
            let mut denied = BTreeSet::new();
            let mut everyone = None;
            let mut subjects = Vec::new();
            for v in vals {
                for item in list(&v.text) {
                    if let Some(who) = item.strip_prefix('!') {
                        self.note(v.loc, format!("console `{console}`: `!{who}` (an exclusion) cannot be expressed: mo denies by default, so only the listed users get access"));
                        denied.insert(who.to_string());
                    } else if item == "*" {
                        everyone = Some(v.loc);
                    } else if let Some(subject) = self.subject(&item, v.loc) {
                        subjects.push(subject);
                    }
                }
            }
            if let Some(loc) = everyone {
                if denied.is_empty() {
                    subjects.push(format!("@{EVERYONE}"));
                    self.note(loc, format!("`*` (any user): granted to user group `{EVERYONE}`, whose members are the users this file names; add others to it"));
                } else {
                    self.note(loc, format!("console `{console}`: `*` with exclusions is not granted; grant the users it should cover"));
                }
            }
            for s in subjects {
                // With exclusions, a conserver group is granted member by member, without them.
                let expanded = match s.strip_prefix('@').and_then(|g| self.groups.get(g)) {
                    Some(members) if !denied.is_empty() => members.clone(),
                    _ => vec![s],
                };
                for s in expanded {
                    if !denied.contains(&s) {
                        grants.insert((s, role.to_string()));
                    }
                }
            }
        }
        grants
    }

    /// A user name, `@group`, or `None` (noted) for a name mo cannot use.
    fn subject(&mut self, item: &str, loc: Loc) -> Option<String> {
        if self.groups.contains_key(item) {
            return Some(format!("@{item}"));
        }
        if let Some(unix) = item.strip_prefix('@') {
            self.note(loc, format!("`@{unix}` is a Unix group: user group `{unix}` is created empty; add its members"));
            if !self.site.user_groups.iter().any(|g| g.name == unix) {
                self.site.user_groups.push(UserGroupEntry {
                    name: unix.to_string(),
                    members: Vec::new(),
                });
            }
            return Some(item.to_string());
        }
        match validate_user_name(item) {
            Ok(()) => {
                self.site.ensure_user(item);
                Some(item.to_string())
            }
            Err(e) => {
                self.note(loc, format!("user `{item}` not carried over: {e}"));
                None
            }
        }
    }

    fn break_block(&mut self, b: &Block) {
        let n = match b.name.parse::<u8>() {
            Ok(n) if (1..=9).contains(&n) => n,
            _ => {
                self.note(
                    b.loc,
                    format!("break `{}`: mo has break sequences 1 to 9 only", b.name),
                );
                return;
            }
        };
        let mut text = None;
        for e in &b.entries {
            match e.keyword.as_str() {
                "string" => text = Some((e.value.clone(), e.loc)),
                "delay" if e.value != "500" => self.note(
                    e.loc,
                    format!("break {n}: delay {} ms; mo's `\\d` pauses 500 ms", e.value),
                ),
                "confirm" if matches!(e.value.as_str(), "yes" | "true" | "on") => self.note(
                    e.loc,
                    format!("break {n}: mo does not ask for confirmation"),
                ),
                "delay" | "confirm" => {}
                k => self.note(e.loc, format!("break {n}: `{k}` is not supported")),
            }
        }
        let Some((text, loc)) = text else { return };
        let converted = convert_break(&text);
        match mo_core::breakseq::BreakSequence::parse(&converted) {
            Ok(_) => {
                self.breaks.insert(n, converted);
            }
            Err(e) => self.note(loc, format!("break {n} `{text}` not carried over: {e}")),
        }
    }

    fn group(&mut self, b: &Block) {
        let mut members: Vec<String> = Vec::new();
        for e in &b.entries {
            if e.keyword != "users" {
                self.note(
                    e.loc,
                    format!("group {}: `{}` is not supported", b.name, e.keyword),
                );
                continue;
            }
            if e.value.is_empty() {
                members.clear();
            }
            for item in list(&e.value) {
                if let Some(who) = item.strip_prefix('!') {
                    self.note(
                        e.loc,
                        format!(
                            "group {}: `!{who}` (an exclusion) cannot be expressed; left out",
                            b.name
                        ),
                    );
                    members.retain(|m| m != who);
                } else if let Some(inner) = self.groups.get(&item) {
                    members.extend(inner.iter().cloned());
                } else if item.starts_with('@') || item == "*" {
                    self.note(
                        e.loc,
                        format!("group {}: `{item}` cannot be a member", b.name),
                    );
                } else if let Some(user) = self.subject(&item, e.loc) {
                    members.push(user);
                }
            }
        }
        self.groups.insert(b.name.clone(), members.clone());
        self.site.user_groups.retain(|g| g.name != b.name);
        if validate_user_name(&b.name).is_err() {
            self.note(
                b.loc,
                format!("group `{}`: not a usable group name", b.name),
            );
        }
        self.site.user_groups.push(UserGroupEntry {
            name: b.name.clone(),
            members,
        });
    }

    fn access(&mut self, b: &Block) {
        if b.name != "*" {
            self.note(
                b.loc,
                format!(
                    "access `{}`: per-server access blocks are merged; mo has one server",
                    b.name
                ),
            );
        }
        for e in &b.entries {
            match e.keyword.as_str() {
                "admin" => {
                    for item in list(&e.value) {
                        if item.starts_with('!') || item == "*" {
                            self.note(e.loc, format!("admin `{item}` is not carried over"));
                        } else if let Some(s) = self.subject(&item, e.loc) {
                            self.admins.insert(s);
                        }
                    }
                }
                "allowed" | "rejected" | "trusted" => self.note(
                    e.loc,
                    format!(
                        "{} {}: mo authenticates users, not client hosts; use a firewall",
                        e.keyword, e.value
                    ),
                ),
                "include" => {}
                k => self.note(e.loc, format!("access: `{k}` is not supported")),
            }
        }
    }

    fn finish(mut self) -> SiteConfig {
        let all_users: Vec<String> = self.site.users.iter().map(|u| u.name.clone()).collect();
        let mut sets: Vec<(Grants, Vec<String>)> = Vec::new();
        for (console, grants) in std::mem::take(&mut self.grants) {
            if grants.is_empty() {
                continue;
            }
            match sets.iter_mut().find(|(g, _)| *g == grants) {
                Some((_, members)) => members.push(console),
                None => sets.push((grants, vec![console])),
            }
        }
        let mut uses_everyone = false;
        for (i, (grants, members)) in sets.into_iter().enumerate() {
            let group = format!("access-{}", i + 1);
            for (subject, role) in grants {
                uses_everyone |= subject == format!("@{EVERYONE}");
                self.site.access.push(AccessRule {
                    subject,
                    role,
                    devices: group.clone(),
                });
            }
            self.site.device_groups.push(DeviceGroupEntry {
                name: group,
                members,
                patterns: Vec::new(),
            });
        }
        if !self.admins.is_empty() {
            self.site.device_groups.push(DeviceGroupEntry {
                name: ALL_DEVICES.into(),
                members: Vec::new(),
                patterns: vec!["*".into()],
            });
            for subject in std::mem::take(&mut self.admins) {
                self.site.access.push(AccessRule {
                    subject,
                    role: "admin".into(),
                    devices: ALL_DEVICES.into(),
                });
            }
        }
        if uses_everyone {
            self.site.user_groups.push(UserGroupEntry {
                name: EVERYONE.into(),
                members: all_users,
            });
        }
        self.site
    }
}

/// conserver break-string notation → mo's (`\a \b \f \v` become octal, `\c` a literal `c`).
fn convert_break(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('a') => out.push_str("\\007"),
            Some('b') => out.push_str("\\010"),
            Some('f') => out.push_str("\\014"),
            Some('v') => out.push_str("\\013"),
            Some(k @ ('d' | 'n' | 'r' | 't' | 'z' | '\\' | '^' | '0'..='7')) => {
                out.push('\\');
                out.push(k);
            }
            Some(other) => out.push(other),
            None => out.push_str("\\\\"),
        }
    }
    out
}

/// conserver's `devicesubst`/`execsubst`/`udssubst`: `c=t[n]f,…` replaces character `c` in
/// `value` with the console name (`c`), host (`h`), replstring (`r`), baud (`b`), config port
/// (`p`) or computed port (`P`), formatted with width `n` and format `f` (`s d x X a A`).
fn substitute(
    value: &str,
    spec: &str,
    name: &str,
    p: &Props,
    port: Option<u32>,
) -> Result<String, String> {
    let mut map: BTreeMap<char, String> = BTreeMap::new();
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        let mut it = item.chars();
        let (Some(c), Some('='), Some(t)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("`{item}` is not c=t[n]f"));
        };
        let rest: String = it.collect();
        let f = rest
            .chars()
            .last()
            .ok_or_else(|| format!("`{item}` has no format"))?;
        let width_text = rest.get(..rest.len() - f.len_utf8()).unwrap_or("");
        let width: usize = if width_text.is_empty() {
            0
        } else {
            width_text
                .parse()
                .map_err(|_| format!("`{item}`: bad width"))?
        };
        let zero = width_text.starts_with('0');
        let text = match t {
            'c' | 'h' | 'r' => {
                let s = match t {
                    'c' => name.to_string(),
                    'h' => p.text("host").unwrap_or_default().to_string(),
                    _ => p.text("replstring").unwrap_or_default().to_string(),
                };
                if f != 's' {
                    return Err(format!("`{item}`: string replacements use format s"));
                }
                format!("{s:>width$}")
            }
            'b' | 'p' | 'P' => {
                let n: u64 = match t {
                    'b' => p
                        .text("baud")
                        .unwrap_or("0")
                        .parse()
                        .map_err(|_| "baud is not a number".to_string())?,
                    'p' => p
                        .text("port")
                        .unwrap_or("0")
                        .parse()
                        .map_err(|_| "port is not a number".to_string())?,
                    _ => u64::from(port.ok_or("no port to compute")?),
                };
                let digits = match f {
                    'd' => n.to_string(),
                    'x' => format!("{n:x}"),
                    'X' => format!("{n:X}"),
                    'a' | 'A' => radix36(n, f == 'A'),
                    _ => return Err(format!("`{item}`: numeric format must be d, x, X, a or A")),
                };
                if zero {
                    format!("{digits:0>width$}")
                } else {
                    format!("{digits:>width$}")
                }
            }
            _ => return Err(format!("`{item}`: unknown replacement `{t}`")),
        };
        map.insert(c, text);
    }
    Ok(value
        .chars()
        .map(|ch| map.get(&ch).cloned().unwrap_or_else(|| ch.to_string()))
        .collect())
}

fn radix36(mut n: u64, upper: bool) -> String {
    let digits: &[u8] = if upper {
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    } else {
        b"0123456789abcdefghijklmnopqrstuvwxyz"
    };
    let mut out = Vec::new();
    loop {
        out.push(char::from(digits[usize::try_from(n % 36).unwrap_or(0)]));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.iter().rev().collect()
}

#[cfg(test)]
#[path = "conserver_tests.rs"]
mod tests;
