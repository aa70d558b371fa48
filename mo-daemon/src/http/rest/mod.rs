//! The REST handlers of `/api/v1`, one module per resource. Every handler takes and returns the
//! types of [`mo_api`] and carries its `#[utoipa::path]` description, from which
//! [`super::openapi`] builds the OpenAPI document. This module holds what they share: the
//! extractors that turn malformed requests into 400s, store and log calls off the async threads,
//! and the conversions from the core's types to the API's.

mod access;
mod cluster;
mod devices;
mod discover;
mod events;
mod gang;
mod health;
mod hosts;
mod log;
mod macros;
mod maintenance;
mod power;
mod secrets;
mod sessions;
mod signals;
mod tokens;
mod users;

use std::time::SystemTime;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use mo_core::console::{ViewerInfo, ViewerRole};
use mo_core::event::Event;
use mo_core::log::{format_timestamp, parse_time_spec};
use mo_core::policy::Permission;
use mo_core::record::now_ns;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::registry::Entry;

pub use access::*;
pub use cluster::*;
pub use devices::*;
pub use discover::*;
pub use events::*;
pub use gang::*;
pub use health::*;
pub use hosts::*;
pub use log::*;
pub use macros::*;
pub use maintenance::*;
pub use power::*;
pub use secrets::*;
pub use sessions::*;
pub use signals::*;
pub use tokens::*;
pub use users::*;

/// A JSON body; malformed JSON is a 400 `bad_request` naming what is wrong.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(e) => return Err(json_rejection(e)),
        };
        serde_json::from_value(integral_floats_as_integers(value))
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
    }
}

/// JSON Schema counts `5.0` as an integer; serde does not. Numbers without a fraction become
/// integers so an `integer` field takes them (a `number` field takes integers anyway).
fn integral_floats_as_integers(value: Value) -> Value {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f >= 0.0 && f < u64::MAX as f64 => json!(f as u64),
            Some(f) if f.fract() == 0.0 && f < 0.0 && f >= i64::MIN as f64 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => {
            Value::Array(items.into_iter().map(integral_floats_as_integers).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integral_floats_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    ApiError::bad_request(format!("bad JSON body: {}", e.body_text()))
}

/// Query parameters; bad ones are a 400.
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryArgs(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query parameters: {}", e.body_text()))
}

/// Path parameters; bad ones are a 400.
pub struct PathArgs<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathArgs(v)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    ApiError::bad_request(format!("bad path parameter: {}", e.body_text()))
}

/// Run a store call off the async threads.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mo_store::Store) -> mo_store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.ctx.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
        .map_err(ApiError::from)
}

/// RFC 3339 UTC time of a [`SystemTime`].
pub fn rfc3339(t: SystemTime) -> String {
    let ns = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    format_timestamp(ns)
}

/// A viewer role as the API names it: `attach` (holds the write lock), `join` or `spy`.
pub fn api_role(role: ViewerRole) -> mo_api::ViewerRole {
    match role {
        ViewerRole::ReadWrite => mo_api::ViewerRole::Attach,
        ViewerRole::Joined => mo_api::ViewerRole::Join,
        _ => mo_api::ViewerRole::Spy,
    }
}

/// One viewer as the API shows it.
pub fn api_viewer(v: &ViewerInfo) -> mo_api::Viewer {
    mo_api::Viewer::new(&*v.user, api_role(v.role), rfc3339(v.since), &*v.origin)
}

/// An event as the API shows it.
pub fn api_event(e: &Event) -> mo_api::Event {
    let severity = e
        .severity
        .to_string()
        .parse()
        .unwrap_or(mo_api::Severity::Info);
    mo_api::Event {
        id: e.id,
        time: format_timestamp(u64::try_from(e.time_ns).unwrap_or(0)),
        device: e.device.clone(),
        severity,
        name: e.source.as_str().to_string(),
        text: e.message.clone(),
        count: e.count,
        acked_by: e.acked_by.clone(),
        node: e.node.clone(),
    }
}

/// The registry entry of a device the caller may see (404 otherwise).
pub fn visible_entry(state: &AppState, caller: &Caller, name: &str) -> Result<Entry, ApiError> {
    state
        .ctx
        .registry
        .get(name)
        .filter(|_| caller.sees(state, name))
        .ok_or_else(|| ApiError::unknown_device(name))
}

/// `since`/`until` query values as ns. An RFC 3339 time outside what the log can hold (before
/// 1970, after 2554) is clamped to its start or end; a range whose end is not after its start
/// selects nothing (it is not an error: the OpenAPI document cannot state the relation).
pub fn time_range(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let now = now_ns();
    let parse = |what: &str, s: &str| {
        parse_time_spec(s, now).or_else(|e| {
            match time::OffsetDateTime::parse(
                s.trim(),
                &time::format_description::well_known::Rfc3339,
            ) {
                Ok(t) if t.unix_timestamp_nanos() < 0 => Ok(0),
                Ok(_) => Ok(u64::MAX),
                Err(_) => Err(ApiError::bad_request(format!(
                    "bad `{what}` parameter: {e}"
                ))),
            }
        })
    };
    let since = since.map(|s| parse("since", s)).transpose()?;
    let until = until.map(|s| parse("until", s)).transpose()?;
    Ok((since, until))
}

/// Whether a time range selects nothing (its end is not after its start).
pub(crate) fn empty_range(since: Option<u64>, until: Option<u64>) -> bool {
    matches!((since, until), (Some(s), Some(u)) if u <= s)
}

/// `value` of query parameter `what` must be within `min..=max` (as the OpenAPI document says).
pub(crate) fn within(what: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), ApiError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ApiError::bad_request(format!(
            "bad `{what}` {v}: give {min} to {max}"
        ))),
        _ => Ok(()),
    }
}

/// The record-log directory of `name`, which the caller must see and may read (`log.read`).
pub async fn log_dir(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<std::path::PathBuf, ApiError> {
    visible_entry(state, caller, name)?;
    caller.check(state, Permission::LogRead, name).await?;
    // A device whose console never started (an address no driver takes) has no log yet: it
    // reads as an empty one.
    Ok(state.data.device_log_dir(name)?)
}

/// Whether the caller sees typed input as `<input hidden>`: it lacks `log.read_input` (in the
/// policy or in its token's scope).
pub fn hides_input(state: &AppState, caller: &Caller, name: &str) -> bool {
    !(caller.scope_permits(Permission::LogReadInput)
        && state
            .ctx
            .access
            .allows(&caller.user, Permission::LogReadInput, name))
}

/// Run a log reader off the async threads.
pub async fn run_log<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("log task failed: {e}")))?
}
