//! Who is on the consoles: `GET /api/v1/devices/{name}/who`, `GET /api/v1/sessions`.

use axum::Json;
use axum::extract::State;
use mo_api::{DevicePath, SessionInfo, Viewer};
use mo_core::policy::Permission;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::{PathArgs, api_viewer, visible_entry};

/// Who is on the console.
#[utoipa::path(get, path = "/api/v1/devices/{name}/who", operation_id = "who", tag = "sessions",
    params(DevicePath),
    responses(
        (status = 200, description = "OK.", body = Vec<Viewer>),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn who(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<Vec<Viewer>>, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    let who = match &entry.console {
        Some(c) => c.who().await?,
        // A console another node holds: its owner answers.
        None => match crate::viewer::who(&state.ctx, &entry).await {
            Some(who) => who.map_err(|e| ApiError::new(Code::Unavailable, e))?,
            None => Vec::new(),
        },
    };
    Ok(Json(who.iter().map(api_viewer).collect()))
}

/// Every viewer of every visible console.
#[utoipa::path(get, path = "/api/v1/sessions", operation_id = "sessions", tag = "sessions",
    responses((status = 200, description = "OK.", body = Vec<SessionInfo>)))]
pub async fn sessions(State(state): State<AppState>, caller: Caller) -> Json<Vec<SessionInfo>> {
    let mut out = Vec::new();
    if caller.scope_permits(Permission::List) {
        for entry in state.ctx.visible(&caller.user) {
            if let Some(Ok(who)) = crate::viewer::who(&state.ctx, &entry).await {
                for v in who {
                    out.push(SessionInfo::new(&entry.device.name, api_viewer(&v)));
                }
            }
        }
    }
    Json(out)
}
