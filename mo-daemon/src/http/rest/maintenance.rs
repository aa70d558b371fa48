//! Maintenance windows at run time (see [`crate::maintenance`]): list, start, stop. Starting or
//! stopping needs `events.ack` on every device the target covers.

use axum::Json;
use axum::extract::State;
use mo_api::{Maintenance, MaintenancePath, StartMaintenance};
use mo_core::policy::Permission;
use mo_store::MaintenanceEntry;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{JsonBody, PathArgs, blocking};
use crate::power::Matcher;

fn api(e: &MaintenanceEntry) -> Maintenance {
    let time = |ns: i64| mo_core::log::format_timestamp(u64::try_from(ns).unwrap_or(0));
    Maintenance {
        name: e.name.clone(),
        target: e.target.clone(),
        reason: e.reason.clone(),
        by: e.by.clone(),
        start: time(e.start_ns),
        end: time(e.end_ns),
    }
}

/// The devices the caller sees that `target` covers.
fn covered(state: &AppState, caller: &Caller, target: &str) -> Vec<String> {
    let Ok(matcher) = Matcher::new(&state.ctx, target) else {
        return Vec::new();
    };
    state
        .ctx
        .visible(&caller.user)
        .into_iter()
        .map(|e| e.device.name)
        .filter(|name| matcher.matches(name))
        .collect()
}

/// `events.ack` somewhere, or 403 before anything is looked at.
fn may_ack_somewhere(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let somewhere = state
        .ctx
        .access
        .policy()
        .allows_somewhere(&caller.user, Permission::EventsAck);
    if !somewhere || !caller.scope_permits(Permission::EventsAck) {
        return Err(ApiError::forbidden(format!(
            "denied: {} may not acknowledge events (events.ack) on any device, so may not start or stop maintenance",
            caller.user
        )));
    }
    Ok(())
}

/// `events.ack` on every device the target covers (none seen: 404).
async fn may_change(state: &AppState, caller: &Caller, target: &str) -> Result<(), ApiError> {
    let devices = covered(state, caller, target);
    if devices.is_empty() {
        return Err(ApiError::not_found(format!(
            "`{target}` matches no device you can see"
        )));
    }
    for device in devices {
        caller.check(state, Permission::EventsAck, &device).await?;
    }
    Ok(())
}

/// The body's fields as the schema states them (mo_api::StartMaintenance).
fn check_body(body: &StartMaintenance) -> Result<(), String> {
    let blank = |c: char| c <= ' ' || ('\u{7f}'..='\u{9f}').contains(&c);
    let word = |field: &str, text: &str| {
        let n = text.chars().count();
        if !(1..=128).contains(&n) || text.chars().any(blank) {
            return Err(format!(
                "bad {field}: 1 to 128 characters, no blanks or control characters"
            ));
        }
        Ok(())
    };
    word("target", &body.target)?;
    let rest = body.target.strip_prefix('@').unwrap_or(&body.target);
    if rest.is_empty() || rest.starts_with('@') {
        return Err(format!(
            "bad target `{}`: a device name, a glob or @GROUP",
            body.target
        ));
    }
    if let Some(name) = &body.name {
        word("name", name)?;
    }
    if body.reason.chars().count() > 1024 || body.reason.chars().any(char::is_control) {
        return Err("bad reason: one line of at most 1024 characters".into());
    }
    if let Some(length) = &body.duration {
        let digits = length.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &length[digits.len()..];
        let ok = !digits.is_empty()
            && digits.len() <= 6
            && !digits.starts_with('0')
            && digits.chars().all(|c| c.is_ascii_digit())
            && matches!(unit, "ms" | "s" | "m" | "h");
        if !ok {
            return Err(format!(
                "bad for `{length}`: a whole number of ms, s, m or h (90s, 30m, 2h)"
            ));
        }
    }
    Ok(())
}

/// The maintenance windows started at run time and not yet ended, of devices the caller sees.
#[utoipa::path(get, path = "/api/v1/maintenance", operation_id = "listMaintenance",
    tag = "events",
    responses((status = 200, description = "OK.", body = Vec<Maintenance>,
        links(("stopMaintenance" = (operation_id = "stopMaintenance", parameters(("name" = "$response.body#/0/name"))))))))]
pub async fn list_maintenance(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Maintenance>>, ApiError> {
    let now = i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX);
    let all = blocking(&state, |s| s.list_maintenance()).await?;
    Ok(Json(
        all.iter()
            .filter(|e| e.end_ns > now && !covered(&state, &caller, &e.target).is_empty())
            .map(api)
            .collect(),
    ))
}

/// Start a maintenance window now (`events.ack` on every device it covers): their events are
/// stored, marked suppressed and run no action until it ends; viewers see a banner.
#[utoipa::path(post, path = "/api/v1/maintenance", operation_id = "startMaintenance",
    tag = "events", request_body = StartMaintenance,
    responses(
        (status = 200, description = "OK.", body = Maintenance,
            links(("stopMaintenance" = (operation_id = "stopMaintenance", parameters(("name" = "$response.body#/name")))))),
        (status = 404, description = "The target matches no device the caller sees (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn start_maintenance(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<StartMaintenance>,
) -> Result<Json<Maintenance>, ApiError> {
    may_ack_somewhere(&state, &caller)?;
    check_body(&body).map_err(ApiError::bad_request)?;
    let entry = crate::maintenance::new_entry(
        &body.target,
        body.name.as_deref(),
        body.duration.as_deref().unwrap_or("1h"),
        &body.reason,
        &caller.user,
    )
    .map_err(ApiError::bad_request)?;
    may_change(&state, &caller, &entry.target).await?;
    let stored = entry.clone();
    blocking(&state, move |s| s.start_maintenance(&stored)).await?;
    Ok(Json(api(&entry)))
}

/// End a maintenance window now (`events.ack` on every device it covers).
#[utoipa::path(delete, path = "/api/v1/maintenance/{name}", operation_id = "stopMaintenance",
    tag = "events", params(MaintenancePath),
    responses(
        (status = 200, description = "OK: the window as it was.", body = Maintenance),
        (status = 404, description = "No such window the caller sees (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn stop_maintenance(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<Maintenance>, ApiError> {
    may_ack_somewhere(&state, &caller)?;
    let all = blocking(&state, |s| s.list_maintenance()).await?;
    let missing = || ApiError::not_found(format!("no maintenance window `{name}`"));
    let entry = all
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(missing)?;
    may_change(&state, &caller, &entry.target).await?;
    let gone = entry.name.clone();
    blocking(&state, move |s| s.stop_maintenance(&gone)).await?;
    Ok(Json(api(&entry)))
}
