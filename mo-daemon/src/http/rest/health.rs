//! `GET /api/v1/health`.

use axum::Json;
use axum::extract::State;
use mo_api::{Degraded, Health, HealthPart, HealthStatus};
use mo_core::log::format_timestamp;
use mo_core::policy::Permission;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;

/// Liveness, version and the status of each part: `log` (degraded while a record log cannot
/// write), `store` (degraded while the store cannot be read, or since a write to it failed) and,
/// with `mod --cluster`, `cluster` (degraded while NATS is not connected). The status is
/// `degraded` when any part is.
///
/// Anyone may ask; only an authenticated caller learns which devices (those it may list) and
/// what is wrong with each part.
#[utoipa::path(get, path = "/api/v1/health", operation_id = "health", tag = "health",
    security(()),
    responses((status = 200, description = "OK.", body = Health)))]
pub async fn health(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Json<Health> {
    let degraded: Vec<(String, mo_core::console::LogDegraded)> = state
        .ctx
        .registry
        .list()
        .into_iter()
        .filter_map(|e| {
            let d = e.console.as_ref()?.log_health().degraded?;
            Some((e.device.name, d))
        })
        .collect();
    let mut parts = vec![HealthPart::new(
        "log",
        (!degraded.is_empty()).then(|| format!("{} record logs cannot write", degraded.len())),
    )];
    let store = state.ctx.store.clone();
    let probe = tokio::task::spawn_blocking(move || store.generation().map(|_| ()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let store_problem = match (probe, crate::opsmetrics::store_error()) {
        (Err(e), _) => Some(format!("cannot read the store: {e}")),
        (Ok(()), Some((e, since))) => Some(format!(
            "a write failed at {}: {e}",
            format_timestamp(since)
        )),
        (Ok(()), None) => None,
    };
    parts.push(HealthPart::new("store", store_problem));
    if let Some(cluster) = &state.ctx.cluster {
        let status = cluster.status(&|_| false);
        parts.push(HealthPart::new(
            "cluster",
            (!status.connected).then(|| {
                status
                    .error
                    .unwrap_or_else(|| "not connected to NATS".into())
            }),
        ));
    }
    let status = if parts.iter().all(|p| p.status == HealthStatus::Ok) {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    };
    let mut body = Health::new(
        status,
        env!("CARGO_PKG_VERSION"),
        u64::try_from(degraded.len()).unwrap_or(u64::MAX),
    );
    body.parts = parts;
    let authenticated = caller.is_ok();
    if !authenticated {
        for part in &mut body.parts {
            part.detail = None;
        }
    }
    if let Ok(caller) = caller
        && caller.scope_permits(Permission::List)
    {
        let policy = state.ctx.access.policy();
        let devices: Vec<Degraded> = degraded
            .iter()
            .filter(|(name, _)| policy.allows(&caller.user, Permission::List, name))
            .map(|(name, d)| Degraded {
                device: name.clone(),
                part: "log".into(),
                error: d.error.clone(),
                since: format_timestamp(d.since_ns),
                lost_records: d.lost_records,
                lost_bytes: d.lost_bytes,
            })
            .collect();
        body.degraded = Some(devices);
    }
    Json(body)
}

pub use mo_api::Ready;

/// Readiness, apart from health: `200` once every front door listens and the consoles of the
/// store were started, `503` before that and while the daemon stops (for load balancers and
/// `systemd` checks; `/api/v1/health` says whether what runs is well).
#[utoipa::path(get, path = "/api/v1/ready", operation_id = "ready", tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Starting or stopping.", body = Ready)))]
pub async fn ready(State(state): State<AppState>) -> (axum::http::StatusCode, Json<Ready>) {
    if state.ctx.ready.load(std::sync::atomic::Ordering::Acquire) {
        let body = Ready {
            ready: true,
            waiting: None,
        };
        (axum::http::StatusCode::OK, Json(body))
    } else {
        let body = Ready {
            ready: false,
            waiting: Some("starting or stopping: the front doors are not all open".into()),
        };
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
