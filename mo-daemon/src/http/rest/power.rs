//! Power: `GET/POST /api/v1/devices/{name}/power`.

use axum::Json;
use axum::extract::State;
use mo_api::{DevicePath, PowerAction, PowerReport, PowerRequest, PowerResult, PowerState};
use mo_core::policy::Permission;
use mo_store::Outcome;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::{JsonBody, PathArgs, visible_entry};
use crate::registry::Entry;

async fn power_report(entry: &Entry) -> Result<Vec<PowerResult>, ApiError> {
    if let Some(error) = &entry.power_error {
        return Err(ApiError::new(
            Code::Unsupported,
            format!("{}: power control is broken: {error}", entry.device.name),
        ));
    }
    let Some(binding) = &entry.power else {
        return Err(ApiError::new(
            Code::Unsupported,
            format!(
                "{}: no power controller (set one with `mo device set {} --power URL`)",
                entry.device.name, entry.device.name
            ),
        ));
    };
    let mut out = Vec::new();
    for (controller, result) in binding.status_each().await {
        out.push(match result {
            Ok(s) => PowerResult::new(
                controller,
                s.to_string().parse().unwrap_or(PowerState::Unknown),
            ),
            Err(e) => {
                let mut r = PowerResult::new(controller, PowerState::Unknown);
                r.error = Some(e.to_string());
                r
            }
        });
    }
    Ok(out)
}

/// Power state of each controller.
#[utoipa::path(get, path = "/api/v1/devices/{name}/power", operation_id = "powerStatus",
    tag = "power", params(DevicePath),
    responses(
        (status = 200, description = "OK.", body = PowerReport),
        (status = 422, description = "The device has no (working) power controller (code unsupported).", body = mo_api::ErrorBody),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
        (status = 504, description = "A device or power controller did not answer in time (code timeout).", body = mo_api::ErrorBody),
    ))]
pub async fn power_status(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<PowerReport>, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    caller.check(&state, Permission::PowerStatus, &name).await?;
    let results = power_report(&entry).await?;
    Ok(Json(PowerReport::status(name, results)))
}

/// Switch power (all controllers together), then report.
#[utoipa::path(post, path = "/api/v1/devices/{name}/power", operation_id = "powerAction",
    tag = "power", params(DevicePath), request_body = PowerRequest,
    responses(
        (status = 200, description = "OK.", body = PowerReport),
        (status = 422, description = "The device has no (working) power controller (code unsupported).", body = mo_api::ErrorBody),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
        (status = 504, description = "A device or power controller did not answer in time (code timeout).", body = mo_api::ErrorBody),
    ))]
pub async fn power_action(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<PowerRequest>,
) -> Result<Json<PowerReport>, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    if body.action == PowerAction::Status {
        caller.check(&state, Permission::PowerStatus, &name).await?;
        let results = power_report(&entry).await?;
        return Ok(Json(PowerReport::status(name, results)));
    }
    let action: mo_core::power::PowerAction = body.action.name().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "bad power action `{}`: use on, off, cycle, reset, soft-off or status",
            body.action
        ))
    })?;
    caller
        .check(&state, Permission::PowerControl, &name)
        .await?;
    crate::power::controller(&entry).map_err(|e| ApiError::new(Code::Unsupported, e))?;
    let results = crate::power::perform(
        &state.ctx.power,
        std::slice::from_ref(&entry),
        action,
        &caller.user,
        |_| {},
    )
    .await;
    let mut failed = None;
    for r in &results {
        state.ctx.access.record(
            &caller.user,
            &caller.origin,
            &format!("power.{action}"),
            Some(&r.device),
            if r.ok { Outcome::Ok } else { Outcome::Failed },
            r.line.clone(),
        );
        if !r.ok {
            failed = Some(r.line.clone());
        }
    }
    let mut report = power_report(&entry).await?;
    if let Some(line) = &failed {
        for item in &mut report {
            if item.error.is_none() {
                item.error = Some(line.clone());
            }
        }
    }
    let mut answer = PowerReport::status(name, report);
    answer.action = Some(body.action);
    answer.ok = Some(failed.is_none());
    answer.message = Some(
        results
            .iter()
            .map(|r| r.line.clone())
            .collect::<Vec<_>>()
            .join("; "),
    );
    Ok(Json(answer))
}
