//! `mo device …`: add, change, list, show and remove devices.

use std::io::Write;

use anyhow::Result;
use mo_core::breakseq::BreakSequences;
use mo_core::escape::EscapeConfig;
use mo_store::{DataDir, Device, DeviceSettings, Store};

use crate::cli::{AddSettings, DeviceCommand, SetSettings};
use crate::table::Table;

/// Run one `mo device` command.
pub fn run(
    dir: &DataDir,
    store: &Store,
    command: DeviceCommand,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        DeviceCommand::Add {
            name,
            url,
            settings,
        } => {
            let device = Device {
                name,
                url,
                settings: add_settings(settings)?,
            };
            device.validate()?;
            check_address(&device)?;
            store.add_device(&device)?;
            writeln!(out, "added device `{}` ({})", device.name, device.url)?;
        }
        DeviceCommand::Set { name, settings } => {
            let mut device = store.device(&name)?;
            apply(&mut device, settings)?;
            device.validate()?;
            check_address(&device)?;
            store.update_device(&device)?;
            writeln!(out, "changed device `{name}`")?;
        }
        DeviceCommand::List { json } => {
            let devices = store.list_devices()?;
            let modems: Vec<_> = devices.iter().map(|d| recorded_modem(dir, d)).collect();
            if json {
                let mut values = Vec::new();
                for (d, m) in devices.iter().zip(&modems) {
                    let mut v = serde_json::to_value(d)?;
                    if let (Some((_, m)), Some(obj)) = (m, v.as_object_mut()) {
                        obj.insert("modem".into(), m.clone());
                    }
                    values.push(v);
                }
                serde_json::to_writer_pretty(&mut *out, &values)?;
                writeln!(out)?;
            } else {
                list(&devices, &modems, out)?;
            }
        }
        DeviceCommand::Show { name, json } => {
            let device = store.device(&name)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &device)?;
                writeln!(out)?;
            } else {
                show(dir, &device, out)?;
            }
        }
        DeviceCommand::Signal(args) => anyhow::bail!(
            "`mo device signal` sets lines through the running daemon: give its API with \
             --server URL (e.g. mo --server http://127.0.0.1:8022 device signal {} --dtr off)",
            args.name
        ),
        DeviceCommand::Rm { name } => {
            store.remove_device(&name)?;
            let log = dir.device_log_dir(&name)?;
            if log.exists() {
                writeln!(
                    out,
                    "removed device `{name}`; its record log stays in {}",
                    log.display()
                )?;
            } else {
                writeln!(out, "removed device `{name}`")?;
            }
        }
    }
    Ok(())
}

/// Ask the drivers whether they understand the address, so a typo is caught now and not when the
/// daemon tries to connect. Nothing is opened.
pub(crate) fn check_address(device: &Device) -> Result<()> {
    mo_drivers::connector_for(&device.url, &mo_drivers::DriverOptions::default())
        .map_err(|e| anyhow::anyhow!("device `{}`: {e}", device.name))?;
    Ok(())
}

/// A `--login` value: a profile name as is, `@FILE` read from the file.
fn login_value(value: String) -> Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read login script {path}: {e}")),
        None => Ok(value),
    }
}

fn add_settings(s: AddSettings) -> Result<DeviceSettings> {
    Ok(DeviceSettings {
        on_demand: s.on_demand,
        replay_lines: s.replay_lines,
        allow_join: !s.no_join,
        escape: s.escape,
        break_sequences: s.breaks.into_iter().collect(),
        description: s.description.filter(|d| !d.is_empty()),
        login: s.login.map(login_value).transpose()?,
        login_user: s.login_user,
        trust_host_key: s.trust_host_key,
        power: s.power,
        log_policy: s.log_policy,
        retain_days: s.retain_days,
        retain_gib: s.retain_gib.or(s.retain_mib),
        log_secrets: s.log_secrets,
        listen: s.listen,
        listen_allow: s.listen_allow,
        node: s.node,
    })
}

pub(crate) fn apply(device: &mut Device, s: SetSettings) -> Result<()> {
    let d = &mut device.settings;
    if s.no_login {
        d.login = None;
        d.login_user = None;
    }
    if let Some(login) = s.login {
        d.login = Some(login_value(login)?);
    }
    if let Some(user) = s.login_user {
        d.login_user = Some(user);
    }
    if s.trust_host_key {
        d.trust_host_key = true;
    }
    if s.no_trust_host_key {
        d.trust_host_key = false;
    }
    if s.no_power {
        d.power.clear();
    }
    if !s.power.is_empty() {
        d.power = s.power;
    }
    if let Some(url) = s.url {
        device.url = url;
    }
    if s.on_demand {
        d.on_demand = true;
    }
    if s.always_connected {
        d.on_demand = false;
    }
    if let Some(n) = s.replay_lines {
        d.replay_lines = n;
    }
    if s.join {
        d.allow_join = true;
    }
    if s.no_join {
        d.allow_join = false;
    }
    if s.default_escape {
        d.escape = None;
    }
    if let Some(escape) = s.escape {
        d.escape = Some(escape);
    }
    for n in s.clear_break {
        d.break_sequences.remove(&n);
    }
    d.break_sequences.extend(s.breaks);
    if let Some(text) = s.description {
        d.description = Some(text).filter(|t| !t.is_empty());
    }
    if let Some(policy) = s.log_policy {
        d.log_policy = Some(policy);
    }
    if let Some(days) = s.retain_days {
        d.retain_days = days.value();
    }
    if let Some(size) = s.retain_gib {
        d.retain_gib = size.value();
    }
    if let Some(size) = s.retain_mib {
        d.retain_gib = Some(size);
    }
    if s.log_secrets {
        d.log_secrets = true;
    }
    if s.no_log_secrets {
        d.log_secrets = false;
    }
    if s.no_listen {
        d.listen.clear();
        d.listen_allow.clear();
    }
    if !s.listen.is_empty() {
        d.listen = s.listen;
    }
    if !s.listen_allow.is_empty() {
        d.listen_allow = s.listen_allow;
    }
    if let Some(node) = s.node {
        d.node = node.value();
    }
    Ok(())
}

/// `30 days, 100 GiB`, or what is left to the daemon.
pub fn retention_text(s: &DeviceSettings) -> String {
    let days = match s.retain_days {
        Some(1) => "1 day".to_string(),
        Some(d) => format!("{d} days"),
        None => "age: the daemon's --retain-days".into(),
    };
    let size = match s.retain_gib {
        Some(size) => size.to_string(),
        None => "size: the daemon's --retain-gib".into(),
    };
    format!("{days}, {size}")
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The modem lines the record log of `device` last recorded, for links that have them (serial,
/// rfc2217, agent ports; other logs are not read). A log that cannot be read shows nothing.
fn recorded_modem(dir: &DataDir, device: &Device) -> Option<(String, serde_json::Value)> {
    let scheme = device.url.split_once("://").map(|(s, _)| s)?;
    if !matches!(scheme, "serial" | "rfc2217" | "agent") {
        return None;
    }
    crate::signal::log_modem(dir, &device.name).ok().flatten()
}

fn list(
    devices: &[Device],
    modems: &[Option<(String, serde_json::Value)>],
    out: &mut dyn Write,
) -> Result<()> {
    if devices.is_empty() {
        writeln!(out, "no devices (add one with `mo device add NAME URL`)")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "NAME",
        "URL",
        "ON-DEMAND",
        "JOIN",
        "REPLAY",
        "MODEM",
        "DESCRIPTION",
    ]);
    for (d, modem) in devices.iter().zip(modems) {
        let s = &d.settings;
        table.row(vec![
            d.name.clone(),
            d.url.clone(),
            yes_no(s.on_demand).into(),
            yes_no(s.allow_join).into(),
            s.replay_lines.to_string(),
            modem
                .as_ref()
                .map_or_else(|| "-".into(), |(cell, _)| cell.clone()),
            s.description.clone().unwrap_or_default(),
        ]);
    }
    table.write(out)?;
    Ok(())
}

fn show(dir: &DataDir, device: &Device, out: &mut dyn Write) -> Result<()> {
    let s = &device.settings;
    let escape = match device.escape_config()? {
        Some(config) => format!("{config} ({})", config.describe()),
        None => {
            let config = EscapeConfig::default();
            format!("{config} ({}, the default)", config.describe())
        }
    };
    let mut table = Table::default();
    let mut field = |k: &str, v: String| table.row(vec![format!("{k}:"), v]);
    field("name", device.name.clone());
    field("url", device.url.clone());
    field(
        "connection",
        if s.on_demand {
            "on demand (only while someone is attached)".into()
        } else {
            "always".into()
        },
    );
    field("replay lines", s.replay_lines.to_string());
    field(
        "join",
        if s.allow_join {
            "allowed (several writers)".into()
        } else {
            "no (one writer at a time)".into()
        },
    );
    field("escape", escape);
    let defaults = BreakSequences::default();
    for (n, seq) in device.break_sequences()?.iter() {
        let origin = if s.break_sequences.contains_key(&n) {
            ""
        } else if defaults.get(n).is_some() {
            " (default)"
        } else {
            ""
        };
        field(&format!("break {n}"), format!("{}{origin}", seq.text()));
    }
    field("description", s.description.clone().unwrap_or_default());
    field(
        "auto-login",
        match (&s.login, &s.login_user) {
            (Some(login), user) if !login.contains('\n') => {
                format!("profile {login} as {}", user.as_deref().unwrap_or("?"))
            }
            (Some(login), user) => format!(
                "script of {} lines as {}",
                login.lines().count(),
                user.as_deref().unwrap_or("?")
            ),
            (None, _) => "off".into(),
        },
    );
    field("trust new host key", yes_no(s.trust_host_key).into());
    field(
        "power",
        if s.power.is_empty() {
            "none".into()
        } else {
            s.power.join(", ")
        },
    );
    field(
        "record log",
        dir.device_log_dir(&device.name)?.display().to_string(),
    );
    field(
        "log policy",
        match s.log_policy {
            Some(p) => p.to_string(),
            None => "degrade (the default)".into(),
        },
    );
    field("retention", retention_text(s));
    for (k, v) in crate::signal::log_rows(dir, &device.name)? {
        field(&k, v);
    }
    field(
        "listen",
        if s.listen.is_empty() {
            "no ports".into()
        } else {
            s.listen.join(", ")
        },
    );
    if !s.listen_allow.is_empty() {
        field("listen allow", s.listen_allow.join(", "));
    }
    if let Some(node) = &s.node {
        field("node", format!("{node} (pinned)"));
    }
    field(
        "typed secrets",
        if s.log_secrets {
            "logged as typed (--log-secrets)"
        } else {
            "redacted at password prompts"
        }
        .into(),
    );
    table.write(out)?;
    Ok(())
}
