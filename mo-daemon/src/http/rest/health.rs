//! `GET /api/v1/health`.

use axum::Json;
use axum::extract::State;
use mo_api::{Degraded, Health, HealthStatus};
use mo_core::log::format_timestamp;
use mo_core::policy::Permission;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;

/// Liveness, version and degraded parts (status `degraded` while a record log cannot write).
///
/// Anyone may ask; only an authenticated caller learns which devices (those it may list).
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
    let status = if degraded.is_empty() {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    };
    let mut body = Health::new(
        status,
        env!("CARGO_PKG_VERSION"),
        u64::try_from(degraded.len()).unwrap_or(u64::MAX),
    );
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

/// Whether the daemon is ready for users.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `true` once every front door listens and the consoles of the store were started.
    pub ready: bool,
    /// What it waits for (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

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
