//! Line signals: `POST /api/v1/devices/{name}/signals` raises, drops or toggles DTR and RTS.
//!
//! The rule is the SSH shell's `dtr`/`rts`: the policy action `break`, a link with modem lines,
//! and the write lock free or held by the caller (a user attached read-write over WebSocket or
//! SSH may set lines of the console they hold from the API; someone else's lock is a 409).

use axum::Json;
use axum::extract::State;
use mo_api::{DevicePath, Lines, SignalReport, SignalRequest};
use mo_core::link::Signal;
use mo_core::policy::Permission;
use mo_store::Outcome;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::{JsonBody, PathArgs, rfc3339, visible_entry};

/// A console's [`mo_core::console::Lines`] as the API shows them.
pub fn api_lines(l: &mo_core::console::Lines) -> Lines {
    Lines {
        dtr: l.dtr,
        dtr_changed: l.dtr_changed.map(rfc3339),
        rts: l.rts,
        rts_changed: l.rts_changed.map(rfc3339),
        modem_changed: l.modem_changed.map(rfc3339),
    }
}

/// Raise, drop or toggle DTR and/or RTS (needs `break`); each change is recorded in the
/// console's log (`DTR dropped by alice`) and in the audit log (`signal.dtr`). DTR is set
/// before RTS; when the second fails, the first stays set.
#[utoipa::path(post, path = "/api/v1/devices/{name}/signals", operation_id = "setSignals",
    tag = "sessions", params(DevicePath), request_body = SignalRequest,
    responses(
        (status = 200, description = "OK: the lines were set.", body = SignalReport),
        (status = 409, description = "Someone else holds the console's write lock, or its link is not up now (code conflict).", body = mo_api::ErrorBody),
        (status = 422, description = "The device's link has no modem lines, or its console cannot run (code unsupported).", body = mo_api::ErrorBody),
    ))]
pub async fn set_signals(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<SignalRequest>,
) -> Result<Json<SignalReport>, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    let lines: Vec<(Signal, Option<bool>)> = [(Signal::Dtr, body.dtr), (Signal::Rts, body.rts)]
        .into_iter()
        .filter_map(|(line, set)| set.map(|s| (line, s.to())))
        .collect();
    if lines.is_empty() {
        return Err(ApiError::bad_request(
            "bad JSON body: give `dtr` or `rts` (true, false, \"on\", \"off\" or \"toggle\")",
        ));
    }
    caller.check(&state, Permission::Break, &name).await?;
    let Some(console) = entry.console else {
        return Err(ApiError::new(
            Code::Unsupported,
            format!(
                "{name} is not running: {}",
                entry.error.unwrap_or_else(|| "no console".into())
            ),
        ));
    };
    let mut done = Vec::new();
    for (line, to) in lines {
        let action = format!("signal.{}", line.name().to_ascii_lowercase());
        match console.set_signal_as(&caller.user, line, to).await {
            Ok(text) => {
                state.ctx.access.record(
                    &caller.user,
                    &caller.origin,
                    &action,
                    Some(&name),
                    Outcome::Ok,
                    text.clone(),
                );
                done.push(text);
            }
            Err(e) => {
                state.ctx.access.record(
                    &caller.user,
                    &caller.origin,
                    &action,
                    Some(&name),
                    Outcome::Failed,
                    e.to_string(),
                );
                // A link that is not up now is a state of the console, not of the server.
                return Err(match e {
                    mo_core::Error::ConsoleDown { .. } => {
                        ApiError::new(Code::Conflict, e.to_string())
                    }
                    other => ApiError::from(other),
                });
            }
        }
    }
    Ok(Json(SignalReport {
        device: name,
        done,
        lines: api_lines(&console.lines()),
    }))
}
