//! `mo log usage`: how much each record log holds and what retention would remove now.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use mo_core::log::{Retention, format_timestamp, log_usage, plan_retention};
use mo_core::record::now_ns;
use mo_store::{DataDir, RetainSize};

use crate::table::Table;

/// The daemon defaults `mo log usage` assumes (`--retain-days/--retain-gib`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Defaults {
    /// Age limit.
    pub max_age: Option<Duration>,
    /// Size limit.
    pub max_size: Option<RetainSize>,
}

/// Run `mo log usage`.
pub fn run(
    dir: &DataDir,
    names: Vec<String>,
    defaults: Defaults,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let store = dir.open_store()?;
    let names = if names.is_empty() {
        let mut all: Vec<String> = store.list_devices()?.into_iter().map(|d| d.name).collect();
        if let Ok(entries) = std::fs::read_dir(dir.logs_dir()) {
            for entry in entries.flatten() {
                if entry.path().is_dir()
                    && let Some(name) = entry.file_name().to_str()
                    && mo_store::validate_device_name(name).is_ok()
                {
                    all.push(name.to_string());
                }
            }
        }
        all.sort();
        all.dedup();
        all
    } else {
        names
    };
    let defaults = Retention {
        max_bytes: defaults.max_size.map(RetainSize::bytes),
        max_age: defaults.max_age,
    };
    let now = now_ns();
    let mut rows = Vec::new();
    for name in &names {
        let device = store.get_device(name)?;
        let log = dir.device_log_dir(name)?;
        if !log.is_dir() && device.is_none() {
            bail!("no device and no record log called `{name}`");
        }
        let retention = device.as_ref().map_or(defaults, |d| d.retention(defaults));
        let (usage, plan) = if log.is_dir() {
            (
                log_usage(&log)?,
                plan_retention(&log, &retention, now, None)?,
            )
        } else {
            Default::default()
        };
        rows.push((name, device.is_some(), usage, retention, plan));
    }
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, exists, usage, retention, plan)| {
                serde_json::json!({
                    "device": name,
                    "in_store": exists,
                    "segments": usage.segments,
                    "bytes": usage.bytes,
                    "first_seq": usage.first_seq,
                    "oldest": usage.oldest_ns.map(format_timestamp),
                    "oldest_ns": usage.oldest_ns,
                    "newest": usage.newest_ns.map(format_timestamp),
                    "newest_ns": usage.newest_ns,
                    "retention": {
                        "max_bytes": retention.max_bytes,
                        "max_age_secs": retention.max_age.map(|a| a.as_secs_f64()),
                    },
                    "remove": {
                        "segments": plan.remove,
                        "bytes": plan.remove_bytes,
                        "files": plan.removed().iter().map(|s| s.file.name()).collect::<Vec<_>>(),
                    },
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &list)?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no devices and no record logs")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "DEVICE",
        "SEGMENTS",
        "SIZE",
        "OLDEST",
        "NEWEST",
        "RETENTION",
        "WOULD REMOVE",
    ]);
    let time = |t: Option<u64>| t.map_or_else(|| "-".into(), format_timestamp);
    for (name, exists, usage, retention, plan) in &rows {
        let label = if *exists {
            (*name).clone()
        } else {
            format!("{name} (removed)")
        };
        table.row(vec![
            label,
            usage.segments.to_string(),
            bytes_text(usage.bytes),
            time(usage.oldest_ns),
            time(usage.newest_ns),
            retention_text(retention),
            if plan.remove == 0 {
                "nothing".into()
            } else {
                format!(
                    "{} segments, {}",
                    plan.remove,
                    bytes_text(plan.remove_bytes)
                )
            },
        ]);
    }
    table.write(out)?;
    Ok(())
}

/// `1.5 GiB`, `12.0 MiB`, `800 B`.
fn bytes_text(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} B")
}

fn retention_text(r: &Retention) -> String {
    let age = r.max_age.map(|a| {
        let days = a.as_secs_f64() / 86_400.0;
        if days.fract() == 0.0 {
            format!("{days} d")
        } else {
            format!("{days:.4} d")
        }
    });
    let size = r.max_bytes.map(bytes_text);
    match (age, size) {
        (None, None) => "keep all".into(),
        (Some(a), None) => a,
        (None, Some(s)) => s,
        (Some(a), Some(s)) => format!("{a}, {s}"),
    }
}
