//! Retention, run at start and then periodically: record-log segments beyond each device's
//! limits (a quiet console never rotates, so rotation alone would never prune it), old events,
//! and old audit rows — archived to a verifiable file before they are deleted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mo_store::Store;

use crate::registry::Registry;

/// The directory under the data directory that receives audit archives.
pub const AUDIT_ARCHIVE_DIR: &str = "audit-archive";

/// What the retention task prunes and how often.
#[derive(Debug, Clone)]
pub struct RetentionTask {
    /// How often to run (it also runs once at start).
    pub every: Duration,
    /// Delete events whose last occurrence is older than this.
    pub events_max_age: Option<Duration>,
    /// Archive, then delete, audit rows older than this.
    pub audit_max_age: Option<Duration>,
    /// Where audit archives go.
    pub archive_dir: PathBuf,
}

/// Parse a number of days, fractions allowed (`90`, `0.5`), as a duration.
pub fn parse_days(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0 && *d <= f64::from(mo_store::MAX_RETAIN_DAYS))
        .map(|d| Duration::from_secs_f64(d * 86_400.0))
        .ok_or_else(|| {
            format!(
                "expected a number of days above 0 and at most {} (fractions allowed: 0.5 = 12 h)",
                mo_store::MAX_RETAIN_DAYS
            )
        })
}

/// Parse a size limit in GiB (fractions allowed) or with a unit (`512MiB`).
pub fn parse_size(text: &str) -> Result<mo_store::RetainSize, String> {
    text.parse::<mo_store::RetainSize>().map_err(|e| match e {
        mo_store::Error::BadValue { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// ns since the Unix epoch, `age` ago.
fn cutoff(age: Duration) -> i64 {
    let now = mo_core::record::now_ns();
    let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
    i64::try_from(now.saturating_sub(age)).unwrap_or(i64::MAX)
}

/// Run the retention task until the registry is dropped by everyone else.
pub fn start(
    registry: Arc<Registry>,
    store: Store,
    task: RetentionTask,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(task.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&registry, &store, &task).await;
            if Arc::strong_count(&registry) == 1 {
                return;
            }
        }
    })
}

/// One round: every console's log, then events, then audit.
pub async fn run_once(registry: &Registry, store: &Store, task: &RetentionTask) {
    for entry in registry.list() {
        let Some(console) = entry.console else {
            continue;
        };
        match console.apply_retention().await {
            Ok(p) if p.segments > 0 => tracing::info!(
                device = %entry.device.name,
                segments = p.segments,
                bytes = p.bytes,
                "log retention removed old segments"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(device = %entry.device.name, "log retention failed: {e}"),
        }
    }
    if let Some(age) = task.events_max_age {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune_events(cutoff(age))).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(events = n, "event retention removed old events"),
            Ok(Err(e)) => tracing::warn!("event retention failed: {e}"),
            Err(e) => tracing::warn!("event retention failed: {e}"),
        }
    }
    if let Some(age) = task.audit_max_age {
        let s = store.clone();
        let dir = task.archive_dir.clone();
        match tokio::task::spawn_blocking(move || s.prune_audit(cutoff(age), &dir)).await {
            Ok(Ok(archives)) => {
                for a in archives {
                    tracing::info!(
                        rows = a.rows,
                        archive = %a.path.display(),
                        sha256 = %a.sha256,
                        "audit retention archived and removed old audit rows"
                    );
                }
            }
            Ok(Err(e)) => {
                tracing::warn!("audit retention failed (nothing deleted unarchived): {e}")
            }
            Err(e) => tracing::warn!("audit retention failed: {e}"),
        }
    }
}
