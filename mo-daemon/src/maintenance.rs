//! Maintenance windows at run time: `maintenance start|stop|list` in the SSH shell and
//! `mo maintenance …` write [`mo_store::MaintenanceEntry`] rows; a task here reads them every
//! second and applies them to the event manager next to the windows of the events file (the
//! same [`MaintenanceWindow`]s: events of the covered devices are stored, marked suppressed, and
//! run no action). When a window starts and when it ends, every covered console gets a notice in
//! its record log, which everyone attached sees as a banner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mo_core::console::WeakConsole;
use mo_core::event::MaintenanceWindow;
use mo_core::record::RecordKind;
use mo_store::MaintenanceEntry;
use time::OffsetDateTime;

use crate::Ctx;
use crate::power::Matcher;

/// How often the stored windows are read.
const POLL: Duration = Duration::from_secs(1);

/// The time now, in ns since the Unix epoch.
fn now_ns() -> i64 {
    i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX)
}

/// An instant as shown: RFC 3339, UTC, to the second.
pub fn show_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} s after the epoch"))
}

/// A window to start now for `duration` (`30m`, `1h`), checked.
pub fn new_entry(
    target: &str,
    name: Option<&str>,
    duration: &str,
    reason: &str,
    by: &str,
) -> Result<MaintenanceEntry, String> {
    let length = mo_core::event::parse_window_length(duration).map_err(|e| format!("--for {e}"))?;
    MaintenanceEntry::new(target, name, length, reason, by, now_ns())
}

/// One line per window: those started at run time, then those of the events file.
pub fn list_lines(ctx: &Ctx) -> Result<Vec<String>, String> {
    let now = now_ns();
    let mut lines = Vec::new();
    for e in ctx.store.list_maintenance().map_err(|e| e.to_string())? {
        if e.end_ns <= now {
            continue;
        }
        let left =
            Duration::from_secs(u64::try_from((e.end_ns - now) / 1_000_000_000).unwrap_or(0));
        lines.push(format!(
            "{}  {}  until {} ({} left)  by {}{}",
            e.name,
            e.target,
            show_time(e.end_ns),
            humantime::format_duration(left),
            e.by,
            if e.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", e.reason)
            }
        ));
    }
    for w in ctx.events.configured_maintenance() {
        let covers: Vec<String> = w
            .devices
            .iter()
            .cloned()
            .chain(w.groups.iter().map(|g| format!("@{g}")))
            .collect();
        let when = match (&w.start, &w.end, &w.schedule) {
            (Some(s), Some(e), _) => format!("{s} to {e}"),
            (_, _, Some(schedule)) => format!("schedule {schedule}"),
            _ => String::new(),
        };
        lines.push(format!(
            "{}  {}  {when}  (events file)",
            w.name,
            covers.join(",")
        ));
    }
    Ok(lines)
}

/// The running consoles `target` covers, and the window for the event manager.
fn window_for(ctx: &Ctx, e: &MaintenanceEntry) -> (Vec<WeakConsole>, Option<MaintenanceWindow>) {
    let matcher = Matcher::new(ctx, &e.target).ok();
    let entries = ctx.registry.list();
    let covered: Vec<_> = entries
        .iter()
        .filter(|x| matcher.as_ref().is_some_and(|m| m.matches(&x.device.name)))
        .collect();
    let consoles = covered
        .iter()
        .filter_map(|x| x.console.as_ref().map(|c| c.downgrade()))
        .collect();
    let (devices, groups) = match e.target.strip_prefix('@') {
        // A group of the store covers its devices as they are now (a rule group by that name
        // too).
        Some(group) => (
            covered.iter().map(|x| x.device.name.clone()).collect(),
            vec![group.to_owned()],
        ),
        None => (vec![e.target.clone()], Vec::new()),
    };
    let ns = |ns: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let window =
        MaintenanceWindow::between(&e.name, devices, groups, ns(e.start_ns), ns(e.end_ns)).ok();
    (consoles, window)
}

async fn banner(consoles: &[WeakConsole], text: &str) {
    for c in consoles.iter().filter_map(WeakConsole::upgrade) {
        let _ = c.record(RecordKind::Notice, "", text.to_owned()).await;
    }
}

/// Apply the stored windows to the event manager every second until the daemon stops.
pub fn start(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Windows applied: name to (entry, consoles covered at start).
        let mut applied: BTreeMap<String, (MaintenanceEntry, Vec<WeakConsole>)> = BTreeMap::new();
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            let now = now_ns();
            let store = ctx.store.clone();
            let rows = tokio::task::spawn_blocking(move || {
                let _ = store.prune_maintenance(now);
                store.list_maintenance()
            })
            .await;
            let rows = match rows {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => {
                    tracing::warn!("cannot read maintenance windows: {e}");
                    continue;
                }
                Err(_) => continue,
            };
            let active: BTreeMap<String, MaintenanceEntry> = rows
                .into_iter()
                .filter(|e| e.start_ns <= now && now < e.end_ns)
                .map(|e| (e.name.clone(), e))
                .collect();
            let gone: Vec<String> = applied
                .iter()
                .filter(|(name, (e, _))| active.get(*name) != Some(e))
                .map(|(name, _)| name.clone())
                .collect();
            for name in gone {
                if let Some((e, consoles)) = applied.remove(&name) {
                    ctx.events.remove_maintenance(&name);
                    if !active.contains_key(&name) {
                        tracing::info!("maintenance {name} ended");
                        let text = format!(
                            "*** maintenance {name} ({}) ended: event actions run again ***",
                            e.target
                        );
                        banner(&consoles, &text).await;
                    }
                }
            }
            for (name, e) in active {
                if applied.contains_key(&name) {
                    continue;
                }
                let (consoles, window) = window_for(&ctx, &e);
                let Some(window) = window else {
                    tracing::warn!("maintenance {name}: covers nothing ({})", e.target);
                    continue;
                };
                ctx.events.add_maintenance(window);
                tracing::info!("maintenance {name} started on {}", e.target);
                let text = format!(
                    "*** maintenance {name} ({}) by {} until {}{}: event actions suppressed ***",
                    e.target,
                    e.by,
                    show_time(e.end_ns),
                    if e.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", e.reason)
                    }
                );
                banner(&consoles, &text).await;
                applied.insert(name, (e, consoles));
            }
        }
    })
}
