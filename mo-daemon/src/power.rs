//! Power control by device name, shared by the SSH shell and the escape-sequence power menu.
//!
//! A device's power controllers (its `--power` addresses, bound together for dual supplies) come
//! from the registry. Every action is written into the device's record log as a `power` record at
//! the moment it starts and when it ends, so console output and power share one timeline.

use std::sync::Arc;
use std::time::Duration;

use mo_core::event::glob_match;
use mo_core::power::{
    DeviceOutcome, GroupEvent, GroupOperation, PowerAction, PowerController, PowerState,
};
use mo_core::record::RecordKind;

use crate::Ctx;
use crate::registry::Entry;

/// How many devices are switched at once by one command.
const PARALLELISM: usize = 16;
/// How long one device may take (Redfish BMCs poll until the state changes).
const DEVICE_TIMEOUT: Duration = Duration::from_secs(120);

/// The registry entries named by `patterns` (names or globs), in the order given, without
/// duplicates, among the devices `user` may see. Errors name a pattern that matched nothing.
pub fn select(ctx: &Ctx, user: &str, patterns: &[&str]) -> Result<Vec<Entry>, String> {
    let all = ctx.visible(user);
    let mut out: Vec<Entry> = Vec::new();
    for pattern in patterns {
        let before = out.len();
        for entry in &all {
            if glob_match(pattern, &entry.device.name)
                && !out.iter().any(|e| e.device.name == entry.device.name)
            {
                out.push(entry.clone());
            }
        }
        if out.len() == before && !out.iter().any(|e| glob_match(pattern, &e.device.name)) {
            return Err(format!("unknown device `{pattern}`"));
        }
    }
    Ok(out)
}

/// The device's bound power controllers, or why there are none.
pub fn controller(entry: &Entry) -> Result<Arc<dyn PowerController>, String> {
    if let Some(error) = &entry.power_error {
        return Err(format!(
            "{}: power control is broken: {error}",
            entry.device.name
        ));
    }
    match &entry.power {
        Some(binding) => Ok(binding.clone()),
        None => Err(format!(
            "{}: no power controller (set one with `mo device set {} --power URL`)",
            entry.device.name, entry.device.name
        )),
    }
}

async fn record(entry: &Entry, user: &str, text: String) {
    if let Some(console) = &entry.console {
        let _ = console.record(RecordKind::Power, user, text).await;
    }
}

/// The status of each device, one line each: `web01: on` or `web01: error: …`.
pub async fn status(entries: &[Entry]) -> Vec<(String, Result<PowerState, String>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let name = entry.device.name.clone();
        let controller = controller(entry);
        tasks.spawn(async move {
            let state = match controller {
                Ok(c) => match tokio::time::timeout(DEVICE_TIMEOUT, c.status()).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {}s", DEVICE_TIMEOUT.as_secs())),
                },
                Err(e) => Err(e),
            };
            (index, name, state)
        });
    }
    let mut out: Vec<(usize, String, Result<PowerState, String>)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(item) = done {
            out.push(item);
        }
    }
    out.sort_by_key(|(i, ..)| *i);
    out.into_iter().map(|(_, n, s)| (n, s)).collect()
}

/// How one device's power action ended.
pub struct PowerResult {
    /// The device.
    pub device: String,
    /// Whether the action was done.
    pub ok: bool,
    /// One line for the admin: `web01: cycle done (4.2s)` or `web01: failed: …`.
    pub line: String,
}

/// Perform `action` on every device (in parallel, at most [`PARALLELISM`] at once), calling
/// `progress` with one line per step. Returns one result per device.
pub async fn perform(
    entries: &[Entry],
    action: PowerAction,
    user: &str,
    mut progress: impl FnMut(String) + Send,
) -> Vec<PowerResult> {
    let mut results = Vec::new();
    let mut members: Vec<(String, Arc<dyn PowerController>)> = Vec::new();
    for entry in entries {
        match controller(entry) {
            Ok(c) => {
                let text = format!("power {action} by {user} via {}: started", c.address());
                record(entry, user, text).await;
                members.push((entry.device.name.clone(), c));
            }
            Err(e) => results.push(PowerResult {
                device: entry.device.name.clone(),
                ok: false,
                line: format!("{}: failed: {e}", entry.device.name),
            }),
        }
    }
    let report = GroupOperation::new(action)
        .stage(members)
        .with_parallelism(PARALLELISM)
        .with_device_timeout(DEVICE_TIMEOUT)
        .run(|event: &GroupEvent| progress(event.to_string()))
        .await;
    for result in &report.results {
        let outcome = match &result.outcome {
            DeviceOutcome::Done => "done".to_string(),
            DeviceOutcome::Failed(e) => format!("failed: {e}"),
            DeviceOutcome::Skipped(why) => format!("skipped: {why}"),
        };
        if let Some(entry) = entries.iter().find(|e| e.device.name == result.device) {
            record(entry, user, format!("power {action} by {user}: {outcome}")).await;
        }
        results.push(PowerResult {
            device: result.device.clone(),
            ok: result.outcome.is_done(),
            line: format!(
                "{}: {action} {outcome} ({:.1}s)",
                result.device,
                result.elapsed.as_secs_f64()
            ),
        });
    }
    results
}
