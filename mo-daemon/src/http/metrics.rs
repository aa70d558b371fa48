//! `/metrics`: Prometheus text exposition, written by hand (a handful of families).
//!
//! Byte counters follow each console's hub like any subscriber: output bytes come from the
//! chunks' output offsets (so a lagging subscriber still counts every byte exactly), input bytes
//! from the input chunks it sees. Link errors count the times a link went down or failed to
//! connect. Viewer counts and consoles up are read at scrape time.
//!
//! The page names devices, so it needs a token or password like every API route, and shows
//! only the devices the caller may list; `mod --metrics-public` serves every device to anyone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mo_core::console::{Console, LinkState};
use mo_core::record::RecordKind;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;

/// The counters of one device (across console restarts).
#[derive(Debug, Default)]
pub struct DeviceCounters {
    /// Bytes the device sent (console output).
    pub bytes_in: AtomicU64,
    /// Bytes typed into the device (viewers' input).
    pub bytes_out: AtomicU64,
    /// Times the link went down or a connection attempt failed.
    pub link_errors: AtomicU64,
    /// Record-log appends that failed.
    pub log_write_errors: AtomicU64,
}

/// Every device's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    devices: Mutex<BTreeMap<String, Arc<DeviceCounters>>>,
    /// `mod --metrics-public`: `/metrics` without authentication.
    public: AtomicBool,
}

impl Metrics {
    /// No counters yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve `/metrics` to anyone (`true`) or only to authenticated callers (the default).
    #[must_use]
    pub fn with_public(self, public: bool) -> Self {
        self.public.store(public, Ordering::Relaxed);
        self
    }

    /// The counters of `device`, created at zero.
    pub fn device(&self, device: &str) -> Arc<DeviceCounters> {
        match self.devices.lock() {
            Ok(mut map) => map.entry(device.to_owned()).or_default().clone(),
            Err(_) => Arc::new(DeviceCounters::default()),
        }
    }

    /// Count `console`'s bytes and link errors until it stops (call with each started console).
    pub fn watch(&self, device: &str, console: &Console) {
        let counters = self.device(device);
        let console = console.clone();
        tokio::spawn(async move {
            let mut state = console.watch_state();
            let mut log = console.watch_log();
            // Write errors are counted per console actor: add what each one adds.
            let mut seen_errors = log.borrow_and_update().write_errors;
            counters
                .log_write_errors
                .fetch_add(seen_errors, Ordering::Relaxed);
            let mut log_open = true;
            let Ok(mut hub) = console.subscribe().await else {
                return;
            };
            // Output offsets start at 0 with each console actor.
            let mut seen_out: u64 = 0;
            loop {
                tokio::select! {
                    chunk = hub.recv() => match chunk {
                        Ok(c) => match c.kind {
                            RecordKind::Output => {
                                let end = c.offset + c.bytes.len() as u64;
                                if end > seen_out {
                                    counters.bytes_in.fetch_add(end - seen_out, Ordering::Relaxed);
                                    seen_out = end;
                                }
                            }
                            RecordKind::Input => {
                                counters.bytes_out.fetch_add(c.bytes.len() as u64, Ordering::Relaxed);
                            }
                            _ => {}
                        },
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    },
                    changed = log.changed(), if log_open => {
                        if changed.is_err() {
                            log_open = false;
                            continue;
                        }
                        let errors = log.borrow_and_update().write_errors;
                        if errors > seen_errors {
                            counters.log_write_errors.fetch_add(errors - seen_errors, Ordering::Relaxed);
                            seen_errors = errors;
                        }
                    }
                    changed = state.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let now = state.borrow_and_update().clone();
                        match now {
                            LinkState::Down { .. } => {
                                counters.link_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            LinkState::Stopped => return,
                            _ => {}
                        }
                    }
                }
            }
        });
    }

    fn snapshot(&self) -> Vec<(String, Arc<DeviceCounters>)> {
        self.devices
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `GET /metrics`: needs a caller whose token allows `list` (per-device series only for the
/// devices it may list), unless the daemon runs with `--metrics-public`.
pub async fn serve(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Response, ApiError> {
    let visible: Box<dyn Fn(&str) -> bool + Send> = if state.metrics.public.load(Ordering::Relaxed)
    {
        Box::new(|_| true)
    } else {
        let caller = caller?;
        if !caller.scope_permits(mo_core::policy::Permission::List) {
            return Err(ApiError::forbidden(
                "denied: the API token's scope does not include list, which /metrics needs",
            ));
        }
        let policy = state.ctx.access.policy();
        Box::new(move |device| {
            policy.allows(&caller.user, mo_core::policy::Permission::List, device)
        })
    };
    let entries: Vec<_> = state
        .ctx
        .registry
        .list()
        .into_iter()
        .filter(|e| visible(&e.device.name))
        .collect();
    let mut out = String::new();
    let up = entries
        .iter()
        .filter(|e| {
            e.console
                .as_ref()
                .is_some_and(|c| matches!(c.state(), LinkState::Up { .. }))
        })
        .count();
    family(
        &mut out,
        "mo_consoles_up",
        "gauge",
        "Consoles whose link is up.",
    );
    let _ = writeln!(out, "mo_consoles_up {up}");
    family(
        &mut out,
        "mo_consoles",
        "gauge",
        "Consoles the daemon runs (any state).",
    );
    let _ = writeln!(out, "mo_consoles {}", entries.len());
    family(
        &mut out,
        "mo_console_up",
        "gauge",
        "1 while the device's console link is up, else 0 (down, connecting, on demand, stopped).",
    );
    for e in &entries {
        let up = e
            .console
            .as_ref()
            .is_some_and(|c| matches!(c.state(), LinkState::Up { .. }));
        let _ = writeln!(
            out,
            "mo_console_up{{device=\"{}\"}} {}",
            label(&e.device.name),
            u8::from(up)
        );
    }
    family(
        &mut out,
        "mo_build_info",
        "gauge",
        "Always 1; the labels say which mod runs.",
    );
    let _ = writeln!(
        out,
        "mo_build_info{{version=\"{}\",arch=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        label(std::env::consts::ARCH)
    );

    let mut counters = state.metrics.snapshot();
    counters.retain(|(device, _)| visible(device));
    let mut by = |name: &str, help: &str, pick: &dyn Fn(&DeviceCounters) -> u64| {
        family(&mut out, name, "counter", help);
        for (device, c) in &counters {
            let _ = writeln!(out, "{name}{{device=\"{}\"}} {}", label(device), pick(c));
        }
    };
    by(
        "mo_bytes_in_total",
        "Bytes received from the device (console output).",
        &|c| c.bytes_in.load(Ordering::Relaxed),
    );
    by(
        "mo_bytes_out_total",
        "Bytes sent to the device (keystrokes of viewers).",
        &|c| c.bytes_out.load(Ordering::Relaxed),
    );
    by(
        "mo_log_write_errors_total",
        "Record-log appends that failed (a full disk, an I/O error); see mo_log_degraded.",
        &|c| c.log_write_errors.load(Ordering::Relaxed),
    );
    by(
        "mo_link_errors_total",
        "Times the device's link went down or failed to connect.",
        &|c| c.link_errors.load(Ordering::Relaxed),
    );

    family(
        &mut out,
        "mo_viewers",
        "gauge",
        "Viewers attached to the device's console.",
    );
    for e in &entries {
        if let Some(c) = &e.console {
            let n = c.who().await.map(|w| w.len()).unwrap_or(0);
            let _ = writeln!(
                out,
                "mo_viewers{{device=\"{}\"}} {n}",
                label(&e.device.name)
            );
        }
    }

    family(
        &mut out,
        "mo_log_degraded",
        "gauge",
        "1 while the device's record log cannot write, else 0.",
    );
    for e in &entries {
        if let Some(c) = &e.console {
            let degraded = u8::from(c.log_health().degraded.is_some());
            let _ = writeln!(
                out,
                "mo_log_degraded{{device=\"{}\"}} {degraded}",
                label(&e.device.name)
            );
        }
    }
    family(
        &mut out,
        "mo_scanner_skipped_bytes_total",
        "counter",
        "Output bytes the event scanner skipped because it fell behind (the record log has them; \
         restarts at 0 with the console).",
    );
    for e in &entries {
        if let Some(skipped) = &e.scan_skipped {
            let _ = writeln!(
                out,
                "mo_scanner_skipped_bytes_total{{device=\"{}\"}} {}",
                label(&e.device.name),
                skipped.load(Ordering::Relaxed)
            );
        }
    }
    family(
        &mut out,
        "mo_event_candidates_dropped_total",
        "counter",
        "Candidate events dropped because the event manager was behind.",
    );
    let _ = writeln!(
        out,
        "mo_event_candidates_dropped_total {}",
        state.ctx.events.dropped()
    );

    let store = state.ctx.store.clone();
    let events = tokio::task::spawn_blocking(move || store.next_event_id())
        .await
        .ok()
        .and_then(Result::ok)
        .map_or(0, |next| next.saturating_sub(1));
    family(
        &mut out,
        "mo_events_total",
        "counter",
        "Events raised (stored) so far.",
    );
    let _ = writeln!(out, "mo_events_total {events}");
    crate::opsmetrics::render(&mut out);

    // Record-log sizes and free disk, read from the file system off the async threads.
    let names: Vec<String> = entries.iter().map(|e| e.device.name.clone()).collect();
    let data = state.data.clone();
    let disk = tokio::task::spawn_blocking(move || disk_figures(&data, &names))
        .await
        .unwrap_or_default();
    family(
        &mut out,
        "mo_log_bytes",
        "gauge",
        "Bytes the device's record log holds on disk (all segments; grows with every record \
         written, falls when retention removes segments).",
    );
    for (device, bytes) in &disk.logs {
        let _ = writeln!(out, "mo_log_bytes{{device=\"{}\"}} {bytes}", label(device));
    }
    family(
        &mut out,
        "mo_data_dir_free_bytes",
        "gauge",
        "Bytes available to mod on the file system of its data directory.",
    );
    if let Some(free) = disk.free {
        let _ = writeln!(
            out,
            "mo_data_dir_free_bytes{{dir=\"{}\"}} {free}",
            label(&state.data.path().display().to_string())
        );
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// What `/metrics` reads from the disk at scrape time.
#[derive(Debug, Default)]
struct DiskFigures {
    /// Per device: bytes of its record log's files.
    logs: Vec<(String, u64)>,
    /// Bytes available to unprivileged users on the data directory's file system.
    free: Option<u64>,
}

fn disk_figures(data: &mo_store::DataDir, devices: &[String]) -> DiskFigures {
    let logs = devices
        .iter()
        .filter_map(|d| {
            let dir = data.device_log_dir(d).ok()?;
            let bytes = std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum();
            Some((d.clone(), bytes))
        })
        .collect();
    let free = nix::sys::statvfs::statvfs(data.path())
        .ok()
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()));
    DiskFigures { logs, free }
}
