//! `mo power status|on|off|cycle|reset|soft-off NAME…` on the data directory (without
//! `--server`): the devices' power controllers are built from the store (addresses and secrets)
//! and driven from this process, as the daemon would.
//!
//! One timeline: each action is written into the device's record log as a `power` record when it
//! starts and ends — when the log is free. While the daemon runs it owns the logs; the action is
//! then still done and audited, and `mo` says the record log does not have it (use
//! `mo --server URL power …` to go through the daemon).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use mo_core::log::{LogLock, LogOptions, LogWriter};
use mo_core::power::{
    DeviceOutcome, GroupEvent, GroupOperation, PowerAction, PowerBinding, PowerController,
};
use mo_core::record::{Chunk, RecordKind, RecordSink as _, now_ns};
use mo_drivers::power::power_controller_for;
use mo_drivers::{Credentials, DriverOptions};
use mo_store::{AuditEntry, DataDir, Device, Outcome, SecretKind, Store};

/// How many devices are switched at once.
const PARALLELISM: usize = 16;
/// How long one device may take.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(120);

/// Run `mo power ACTION NAMES…` locally (`(all, yes)`: `--all` was given, `--yes` confirms a
/// mass power-off). Exit status 1 when any device failed.
pub fn run(
    dir: &DataDir,
    action: &str,
    names: &[String],
    (all, yes): (bool, bool),
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let wanted: Option<PowerAction> = match action {
        "status" => None,
        other => Some(other.parse()?),
    };
    let store = dir.open_store()?;
    let devices = select(&store, names)?;
    let chosen: Vec<String> = devices.iter().map(|d| d.name.clone()).collect();
    crate::mass::confirm(action, &chosen, all, yes)?;
    let key = dir
        .secret_key()
        .context("cannot open the device-secret key")?;
    let mut bindings: Vec<(String, Result<Arc<PowerBinding>, String>)> = Vec::new();
    for device in &devices {
        bindings.push((device.name.clone(), binding(&store, &key, device)));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match wanted {
        None => rt.block_on(status(&bindings, json, out)),
        Some(action) => rt.block_on(perform(dir, &store, &bindings, action, json, out)),
    }
}

/// The devices named by `names` (names, globs, `@GROUP`), in order, without duplicates
/// ([`mo_core::selector`]).
fn select(store: &Store, names: &[String]) -> Result<Vec<Device>> {
    let all = store.list_devices()?;
    let list: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    let picked = mo_core::selector::select(names, &list, |group| {
        let group = store
            .device_group(group)
            .map_err(|e| mo_core::Error::NotFound {
                what: e.to_string(),
            })?;
        Ok(move |device: &str| group.contains(device))
    })?;
    Ok(picked
        .iter()
        .filter_map(|name| all.iter().find(|d| d.name == *name).cloned())
        .collect())
}

/// The device's power controllers, bound together, with its secrets.
pub(crate) fn binding(
    store: &Store,
    key: &mo_store::SecretKey,
    device: &Device,
) -> Result<Arc<PowerBinding>, String> {
    let name = &device.name;
    if device.settings.power.is_empty() {
        return Err(format!(
            "{name}: no power controller (set one with `mo device set {name} --power URL`)"
        ));
    }
    let secrets = store
        .device_credentials(key, name)
        .map_err(|e| format!("{name}: cannot read its secrets: {e}"))?;
    let mut creds = Credentials::new();
    let get = |kind| secrets.get(&kind).cloned();
    creds.password = get(SecretKind::Password);
    creds.bmc_key = get(SecretKind::BmcKey);
    creds.snmp_auth = get(SecretKind::SnmpAuth);
    creds.snmp_privacy = get(SecretKind::SnmpPrivacy);
    let opts = DriverOptions::new().with_credentials(creds);
    let controllers = device
        .settings
        .power
        .iter()
        .map(|url| power_controller_for(url, &opts))
        .collect::<mo_core::Result<Vec<Arc<dyn PowerController>>>>()
        .map_err(|e| format!("{name}: power control is broken: {e}"))?;
    PowerBinding::new(name.clone(), controllers)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

async fn status(
    bindings: &[(String, Result<Arc<PowerBinding>, String>)],
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (name, binding)) in bindings.iter().enumerate() {
        let binding = binding.clone();
        let name = name.clone();
        tasks.spawn(async move {
            let state = match binding {
                Ok(b) => match tokio::time::timeout(DEVICE_TIMEOUT, b.status()).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {}s", DEVICE_TIMEOUT.as_secs())),
                },
                Err(e) => Err(e),
            };
            (index, name, state)
        });
    }
    let mut results = BTreeMap::new();
    while let Some(Ok((index, name, state))) = tasks.join_next().await {
        results.insert(index, (name, state));
    }
    let failed = results.values().any(|(_, s)| s.is_err());
    if json {
        let list: Vec<serde_json::Value> = results
            .values()
            .map(|(name, state)| match state {
                Ok(s) => serde_json::json!({"device": name, "state": s.to_string()}),
                Err(e) => serde_json::json!({"device": name, "error": e}),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        for (name, state) in results.values() {
            match state {
                Ok(s) => writeln!(out, "{name}: {s}")?,
                Err(e) => writeln!(out, "{name}: error: {e}")?,
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Append a `power` record to the device's log if no other process (the daemon) holds it.
/// False when the log is held.
fn record(dir: &DataDir, device: &str, user: &str, text: &str) -> bool {
    let write = || -> mo_core::Result<()> {
        let path = dir
            .create_device_log_dir(device)
            .map_err(|e| mo_core::Error::Protocol {
                peer: device.to_owned(),
                reason: e.to_string(),
            })?;
        let _lock = LogLock::try_acquire(&path)?;
        let (mut writer, _) = LogWriter::open(&path, LogOptions::default())?;
        let seq = writer.next_seq();
        writer.append(&Chunk {
            seq,
            time_ns: now_ns(),
            kind: RecordKind::Power,
            user: user.into(),
            offset: 0,
            bytes: text.as_bytes().to_vec().into(),
        })?;
        writer.sync()
    };
    write().is_ok()
}

async fn perform(
    dir: &DataDir,
    store: &Store,
    bindings: &[(String, Result<Arc<PowerBinding>, String>)],
    action: PowerAction,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let user = crate::access::invoking_user();
    let mut lines: Vec<(String, bool, String)> = Vec::new();
    let mut members: Vec<(String, Arc<dyn PowerController>)> = Vec::new();
    let mut unlogged = Vec::new();
    for (name, binding) in bindings {
        match binding {
            Ok(b) => {
                let text = format!(
                    "power {action} by {user} (mo CLI) via {}: started",
                    b.address()
                );
                if !record(dir, name, &user, &text) {
                    unlogged.push(name.clone());
                }
                members.push((name.clone(), b.clone() as Arc<dyn PowerController>));
            }
            Err(e) => lines.push((name.clone(), false, format!("{name}: failed: {e}"))),
        }
    }
    let report = GroupOperation::new(action)
        .stage(members)
        .with_parallelism(PARALLELISM)
        .with_device_timeout(DEVICE_TIMEOUT)
        .run(|event: &GroupEvent| {
            if !json {
                eprintln!("{event}");
            }
        })
        .await;
    for r in &report.results {
        let outcome = match &r.outcome {
            DeviceOutcome::Done => "done".to_owned(),
            DeviceOutcome::Failed(e) => format!("failed: {e}"),
            DeviceOutcome::Skipped(why) => format!("skipped: {why}"),
        };
        let took = r.elapsed.as_secs_f64();
        if !unlogged.contains(&r.device) {
            let text = format!("power {action} by {user} (mo CLI): {outcome} ({took:.1}s)");
            record(dir, &r.device, &user, &text);
        }
        lines.push((
            r.device.clone(),
            r.outcome.is_done(),
            format!("{}: {action} {outcome} ({took:.1}s)", r.device),
        ));
    }
    for (device, ok, line) in &lines {
        let entry = AuditEntry::new(
            Some(&user),
            format!("power.{action}"),
            if *ok { Outcome::Ok } else { Outcome::Failed },
        )
        .source(Some("cli"))
        .device(Some(device))
        .detail(line.clone());
        if let Err(e) = store.append_audit(&entry) {
            eprintln!("mo: cannot write the audit log: {e}");
        }
    }
    let failed = lines.iter().any(|(_, ok, _)| !ok);
    if json {
        let list: Vec<serde_json::Value> = lines
            .iter()
            .map(|(d, ok, line)| serde_json::json!({"device": d, "ok": ok, "result": line}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        for (_, _, line) in &lines {
            writeln!(out, "{line}")?;
        }
        let mut summary = report.summary();
        let early = lines.len() - report.results.len();
        if early > 0 {
            summary.push_str(&format!(", {early} without power control"));
        }
        writeln!(out, "summary: {summary}")?;
    }
    for device in &unlogged {
        eprintln!(
            "mo: note: the daemon holds the record log of {device}, so this action is not in it \
             (use `mo --server URL power …` to go through the daemon)"
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
