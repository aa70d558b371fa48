//! `POST /api/v1/gang`: one command to many consoles.

use axum::Json;
use axum::extract::State;
use mo_api::{DeviceReason, GangReport, GangRequest};
use mo_core::policy::Permission;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::JsonBody;

/// Resolve `targets` (names, globs, `@GROUP`s) to running consoles, checking `action` on each.
/// Every denied device is named; nothing runs unless all are allowed.
pub(super) async fn consoles_for(
    state: &AppState,
    caller: &Caller,
    targets: &[String],
    action: Permission,
) -> Result<Vec<mo_core::console::Console>, ApiError> {
    if targets.is_empty() {
        return Err(ApiError::bad_request(
            "`targets` is empty: name at least one device",
        ));
    }
    let names: Vec<&str> = targets.iter().map(String::as_str).collect();
    let entries = crate::power::select(&state.ctx, &caller.user, &names)
        .map_err(|e| ApiError::new(Code::NotFound, e))?;
    let mut consoles = Vec::new();
    let mut denied = Vec::new();
    for entry in &entries {
        let device = &entry.device.name;
        if caller.check(state, action, device).await.is_err() {
            denied.push(device.clone());
            continue;
        }
        match &entry.console {
            Some(c) => consoles.push(c.clone()),
            None => {
                return Err(ApiError::new(
                    Code::Unavailable,
                    format!("{device} is not running"),
                ));
            }
        }
    }
    if !denied.is_empty() {
        return Err(ApiError::new(
            Code::Forbidden,
            format!(
                "denied: {} not allowed on {} — nothing was done",
                action.name(),
                denied.join(", ")
            ),
        ));
    }
    Ok(consoles)
}

/// Send one command to many consoles (each needs gang and its write lock); each device's
/// answer, the majority and the divergent devices.
#[utoipa::path(post, path = "/api/v1/gang", operation_id = "gang", tag = "automation",
    request_body = GangRequest,
    responses(
        (status = 200, description = "OK.", body = GangReport),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
        (status = 504, description = "A device or power controller did not answer in time (code timeout).", body = mo_api::ErrorBody),
    ))]
pub async fn gang(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<GangRequest>,
) -> Result<Json<GangReport>, ApiError> {
    use mo_core::automation::{CollectOptions, Gang};
    let consoles = consoles_for(&state, &caller, &body.targets, Permission::Gang).await?;
    let (mut gang, refused) = Gang::open_from(&caller.user, &caller.origin, &consoles).await;
    let report = gang
        .command(&body.command, &CollectOptions::default())
        .await;
    drop(gang);
    Ok(Json(GangReport {
        outputs: report
            .outputs
            .iter()
            .map(|(d, b)| (d.clone(), String::from_utf8_lossy(b).into_owned()))
            .collect(),
        majority: report.majority,
        divergent: report.divergent,
        failed: report
            .failed
            .into_iter()
            .map(|(device, reason)| DeviceReason { device, reason })
            .collect(),
        refused: refused
            .iter()
            .map(|r| DeviceReason {
                device: r.device().to_string(),
                reason: r.to_string(),
            })
            .collect(),
        missed: report.missed,
    }))
}
