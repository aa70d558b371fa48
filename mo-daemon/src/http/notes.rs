//! `POST /api/v1/devices/{name}/notes`: a note in the device's record log, as the SSH shell's
//! `log note` and the console's note escape write it (policy `log.note`, audited by the check).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mo_api::{DevicePath, MAX_NOTE_CHARS, NoteCreated, NoteRequest};
use mo_core::log::{LogOptions, append_note, format_timestamp};
use mo_core::policy::Permission;
use mo_core::record::{RecordKind, now_ns};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::rest::{JsonBody, PathArgs, visible_entry};
use crate::Ctx;

/// Write a note by `user` into the log of `device`: through the running console (so its
/// viewers see it and the log keeps one writer), or straight into the log of a console that
/// is not running. Returns the record's sequence number.
pub async fn write_note(
    ctx: &Arc<Ctx>,
    device: &str,
    user: &str,
    text: String,
) -> Result<u64, String> {
    match ctx.registry.get(device).and_then(|e| e.console) {
        Some(console) => console
            .record(RecordKind::Note, user, text.into_bytes())
            .await
            .map_err(|e| e.to_string()),
        None => {
            let dir = ctx
                .registry
                .log_dir(device)
                .ok_or_else(|| format!("bad device name `{device}`"))?;
            let user = user.to_owned();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                append_note(&dir, LogOptions::default(), RecordKind::Note, &user, &text)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        }
    }
}

/// Write a note into the device's record log (needs `log.note`), as the SSH shell's `log note`
/// does.
#[utoipa::path(post, path = "/api/v1/devices/{name}/notes", operation_id = "addNote",
    tag = "log", params(DevicePath), request_body = NoteRequest,
    responses(
        (status = 201, description = "Created.", body = NoteCreated),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<NoteRequest>,
) -> Result<Response, ApiError> {
    let chars = body.text.chars().count();
    if !(1..=MAX_NOTE_CHARS).contains(&chars) {
        return Err(ApiError::bad_request(format!(
            "bad `text`: a note has 1 to {MAX_NOTE_CHARS} characters (got {chars})"
        )));
    }
    if body
        .text
        .chars()
        .any(|c| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
    {
        return Err(ApiError::bad_request(
            "bad `text`: a note is one line without control characters",
        ));
    }
    visible_entry(&state, &caller, &name)?;
    caller.check(&state, Permission::LogNote, &name).await?;
    let time = now_ns();
    let seq = write_note(&state.ctx, &name, &caller.user, body.text)
        .await
        .map_err(|e| {
            ApiError::new(
                super::error::Code::Unavailable,
                format!("cannot write the note into the log of {name}: {e}"),
            )
        })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NoteCreated {
            seq,
            time: format_timestamp(time),
        }),
    )
        .into_response())
}
