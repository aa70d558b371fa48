//! `GET /api/v1/devices/{name}/log/asciicast`: a time range of the device's record log as an
//! asciicast v2 recording ([`mo_core::log::export_asciicast`], as `mo log export --asciicast`
//! writes it), for the web console's player and for download. Policy `log.read`; typed input
//! is `<input hidden>` for callers without `log.read_input`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mo_api::{AsciicastQuery, DevicePath};
use mo_core::log::{AsciicastOptions, export_asciicast};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::rest::{PathArgs, QueryArgs, hides_input, log_dir, run_log, time_range};

/// The media type of an asciicast v2 file.
pub const CONTENT_TYPE: &str = "application/x-asciicast";

/// A time range of the record log as an asciicast v2 recording: a header line, then one
/// `[time, code, data]` event per line (typed input as `<input hidden>` without
/// `log.read_input`).
#[utoipa::path(get, path = "/api/v1/devices/{name}/log/asciicast", operation_id = "logAsciicast",
    tag = "log", params(DevicePath, AsciicastQuery),
    responses(
        (status = 200, description = "OK.", body = String, content_type = "application/x-asciicast"),
        (status = 503, description = "The console, its link or its record log is not available now (code unavailable).", body = mo_api::ErrorBody),
    ))]
pub async fn log_asciicast(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<AsciicastQuery>,
) -> Result<Response, ApiError> {
    let (since, until) = time_range(q.since.as_deref(), q.until.as_deref())?;
    let dir = log_dir(&state, &caller, &name).await?;
    let opts = AsciicastOptions {
        title: Some(name.clone()),
        since,
        until,
        hide_input: hides_input(&state, &caller, &name),
        ..AsciicastOptions::default()
    };
    let data = state.data.clone();
    let device = name.clone();
    let body = run_log(move || {
        // A device whose console never started has no log directory yet: it reads as an
        // empty log (the header alone, as for a range without records).
        if !dir.is_dir() {
            data.create_device_log_dir(&device)?;
        }
        let mut out = Vec::new();
        export_asciicast(&dir, &opts, &mut out)?;
        Ok(out)
    })
    .await?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.cast\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
