//! The REST handlers of `/api/v1`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mo_core::console::{Role, ViewerInfo};
use mo_core::event::Event;
use mo_core::log::{SearchOptions, ShowOptions, format_timestamp, parse_time_spec};
use mo_core::policy::Action;
use mo_core::record::now_ns;
use mo_store::{Device, DeviceSettings, EventFilter, Outcome};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code};
use crate::registry::Entry;

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
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::ReadWrite => "attach",
        Role::Joined => "join",
        _ => "spy",
    }
}

/// One viewer as the API shows it.
pub fn viewer_json(v: &ViewerInfo) -> Value {
    json!({
        "user": &*v.user,
        "role": role_name(v.role),
        "since": rfc3339(v.since),
        "origin": &*v.origin,
    })
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

fn state_word(entry: &Entry) -> &'static str {
    match &entry.console {
        Some(c) => c.state().word(),
        None => "down",
    }
}

async fn device_json(state: &AppState, entry: &Entry, with_settings: bool) -> Value {
    let viewers = match &entry.console {
        Some(c) => c.who().await.map(|w| w.len()).unwrap_or(0),
        None => 0,
    };
    let policy = state.ctx.access.policy();
    let groups: Vec<String> = policy
        .groups_of(&entry.device.name)
        .map(|g| g.name.clone())
        .collect();
    let mut v = json!({
        "name": entry.device.name,
        "url": entry.device.url,
        "state": state_word(entry),
        "viewers": viewers,
        "groups": groups,
        "description": entry.device.settings.description,
    });
    if let Some(error) = &entry.error {
        v["error"] = json!(error);
    }
    // The modem lines, while the link is up and reports them (rfc2217).
    if let Some(m) = entry.console.as_ref().and_then(|c| c.modem()) {
        v["modem"] = json!({"dcd": m.dcd, "dsr": m.dsr, "cts": m.cts, "ri": m.ri});
    }
    if with_settings {
        v["settings"] = json!(entry.device.settings);
    }
    v
}

/// `GET /api/v1/health`: liveness, version, and the parts that are degraded. Anyone may ask;
/// only an authenticated caller learns which devices (those it may list).
pub async fn health(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> axum::Json<Value> {
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
        "ok"
    } else {
        "degraded"
    };
    let mut body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "log_degraded": degraded.len(),
    });
    if let Ok(caller) = caller
        && caller.scope_permits(Action::List)
    {
        let policy = state.ctx.access.policy();
        let devices: Vec<Value> = degraded
            .iter()
            .filter(|(name, _)| policy.allows(&caller.user, Action::List, name))
            .map(|(name, d)| {
                json!({
                    "device": name,
                    "part": "log",
                    "error": d.error,
                    "since": format_timestamp(d.since_ns),
                    "lost_records": d.lost_records,
                    "lost_bytes": d.lost_bytes,
                })
            })
            .collect();
        body["degraded"] = Value::Array(devices);
    }
    axum::Json(body)
}

/// `GET /api/v1/devices`: the devices the caller may see.
pub async fn list_devices(State(state): State<AppState>, caller: Caller) -> Response {
    let mut out = Vec::new();
    if caller.scope_permits(Action::List) {
        for entry in state.ctx.visible(&caller.user) {
            out.push(device_json(&state, &entry, false).await);
        }
    }
    axum::Json(out).into_response()
}

/// `GET /api/v1/devices/{name}`.
pub async fn get_device(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Response, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    Ok(axum::Json(device_json(&state, &entry, true).await).into_response())
}

/// The body of `POST /api/v1/devices`: a name, a URL, and settings — either as the `settings`
/// object `GET` shows, or as top-level fields like `mo device add` options (these win).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    name: String,
    url: String,
    #[serde(default)]
    settings: Option<DeviceSettings>,
    on_demand: Option<bool>,
    replay_lines: Option<u32>,
    allow_join: Option<bool>,
    escape: Option<String>,
    break_sequences: Option<BTreeMap<u8, String>>,
    description: Option<String>,
    login: Option<String>,
    login_user: Option<String>,
    trust_host_key: Option<bool>,
    power: Option<Vec<String>>,
    #[serde(default, with = "policy_field")]
    log_policy: Option<mo_store::LogPolicy>,
    retain_days: Option<u32>,
    retain_gib: Option<mo_store::RetainSize>,
    log_secrets: Option<bool>,
}

/// `log_policy` in a request body: `"degrade"` or `"strict"`.
mod policy_field {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<mo_store::LogPolicy>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| mo_store::parse_log_policy(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl NewDevice {
    fn into_device(self) -> Device {
        let mut s = self.settings.unwrap_or_default();
        if let Some(v) = self.on_demand {
            s.on_demand = v;
        }
        if let Some(v) = self.replay_lines {
            s.replay_lines = v;
        }
        if let Some(v) = self.allow_join {
            s.allow_join = v;
        }
        if self.escape.is_some() {
            s.escape = self.escape;
        }
        if let Some(v) = self.break_sequences {
            s.break_sequences = v;
        }
        if self.description.is_some() {
            s.description = self.description;
        }
        if self.login.is_some() {
            s.login = self.login;
        }
        if self.login_user.is_some() {
            s.login_user = self.login_user;
        }
        if let Some(v) = self.trust_host_key {
            s.trust_host_key = v;
        }
        if let Some(v) = self.power {
            s.power = v;
        }
        if self.log_policy.is_some() {
            s.log_policy = self.log_policy;
        }
        if self.retain_days.is_some() {
            s.retain_days = self.retain_days;
        }
        if self.retain_gib.is_some() {
            s.retain_gib = self.retain_gib;
        }
        if let Some(v) = self.log_secrets {
            s.log_secrets = v;
        }
        Device {
            name: self.name,
            url: self.url,
            settings: s,
        }
    }
}

/// `POST /api/v1/devices`: add a device (needs `admin` on its name). Its console is started
/// before the answer, so the caller's next request finds it (read-your-writes).
pub async fn add_device(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewDevice>,
) -> Result<Response, ApiError> {
    let device = body.into_device();
    mo_store::validate_device_name(&device.name)?;
    check_addresses(&device)?;
    caller.check(&state, Action::Admin, &device.name).await?;
    check_reach(&state, &caller, &device, "device.add")?;
    let stored = device.clone();
    let result = blocking(&state, move |s| s.add_device(&stored)).await;
    let outcome = if result.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        "device.add",
        Some(&device.name),
        outcome,
        device.url.clone(),
    );
    result?;
    apply_device(&state, &device.name).await?;
    let entry = state.ctx.registry.get(&device.name).ok_or_else(|| {
        ApiError::internal(format!(
            "device `{}` was stored but the daemon does not run it",
            device.name
        ))
    })?;
    let body = device_json(&state, &entry, true).await;
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The site allowlist check for a device write (`audit_action` names it in the audit log): an
/// address that runs a program, opens a local path or connects to a host needs a global admin
/// or a covering `[[allow]]` entry (crate::site). Every route that creates or changes a device's
/// addresses (console URL or power) calls this before storing; a refusal is audited and is a 403
/// naming the missing entry.
pub fn check_reach(
    state: &AppState,
    caller: &Caller,
    device: &Device,
    audit_action: &str,
) -> Result<(), ApiError> {
    let global = caller.is_global(state, Action::Admin);
    state.ctx.site.check_device(device, global).map_err(|why| {
        state.ctx.access.record(
            &caller.user,
            &caller.origin,
            audit_action,
            Some(&device.name),
            Outcome::Denied,
            why.clone(),
        );
        ApiError::forbidden(why)
    })
}

/// The API takes device and power addresses of the shapes its OpenAPI document states
/// ([`super::openapi::DEVICE_URL_PATTERN`], [`super::openapi::POWER_URL_PATTERN`]).
fn check_addresses(device: &Device) -> Result<(), ApiError> {
    use std::sync::LazyLock;
    static DEVICE_URL: LazyLock<Option<regex::Regex>> =
        LazyLock::new(|| regex::Regex::new(super::openapi::DEVICE_URL_PATTERN).ok());
    static POWER_URL: LazyLock<Option<regex::Regex>> =
        LazyLock::new(|| regex::Regex::new(super::openapi::POWER_URL_PATTERN).ok());
    let (Some(device_url), Some(power_url)) = (DEVICE_URL.as_ref(), POWER_URL.as_ref()) else {
        return Err(ApiError::internal("the address patterns do not compile"));
    };
    if !device_url.is_match(&device.url) {
        return Err(ApiError::bad_request(format!(
            "device `{}`: bad url `{}`: write SCHEME://[USER@]HOST[:PORT][/PATH][?QUERY] with a \
             scheme mo has a driver for (exec, serial, unix, telnet, rfc2217, tcp, ssh, ipmi, \
             sim, cs) and URL-safe characters",
            device.name, device.url
        )));
    }
    if let Some(bad) = device
        .settings
        .power
        .iter()
        .find(|p| !power_url.is_match(p))
    {
        return Err(ApiError::bad_request(format!(
            "device `{}`: bad power address `{bad}`: write SCHEME://[USER@]HOST[:PORT][/PATH] \
             with a power scheme (ipmi, redfish, snmp, exec), e.g. snmp://pdu1/apc/3",
            device.name
        )));
    }
    Ok(())
}

/// Put a device write in force before answering: the registry starts, restarts or stops the
/// device's console now instead of at its next store poll.
pub async fn apply_device(state: &AppState, name: &str) -> Result<(), ApiError> {
    state.ctx.registry.apply(name).await.map_err(|e| {
        ApiError::internal(format!(
            "device `{name}` was changed in the store, but not yet in the daemon: {e}"
        ))
    })
}

/// `DELETE /api/v1/devices/{name}` (needs `admin` on it). Its record log stays on disk.
pub async fn remove_device(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Response, ApiError> {
    let known = {
        let n = name.clone();
        blocking(&state, move |s| s.get_device(&n)).await?
    };
    if known.is_none() || !caller.sees(&state, &name) {
        return Err(ApiError::unknown_device(&name));
    }
    caller.check(&state, Action::Admin, &name).await?;
    let n = name.clone();
    let result = blocking(&state, move |s| s.remove_device(&n)).await;
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        "device.remove",
        Some(&name),
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        "",
    );
    result?;
    apply_device(&state, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/devices/{name}/who`.
pub async fn who(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Response, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    let who = match &entry.console {
        Some(c) => c.who().await?,
        None => Vec::new(),
    };
    let list: Vec<Value> = who.iter().map(viewer_json).collect();
    Ok(axum::Json(list).into_response())
}

/// `GET /api/v1/sessions`: every viewer of every device the caller may see.
pub async fn sessions(State(state): State<AppState>, caller: Caller) -> Response {
    let mut out = Vec::new();
    if caller.scope_permits(Action::List) {
        for entry in state.ctx.visible(&caller.user) {
            if let Some(c) = &entry.console {
                for v in c.who().await.unwrap_or_default() {
                    let mut j = viewer_json(&v);
                    j["device"] = json!(entry.device.name);
                    out.push(j);
                }
            }
        }
    }
    axum::Json(out).into_response()
}

async fn power_report(entry: &Entry) -> Result<Vec<Value>, ApiError> {
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
            Ok(s) => json!({"controller": controller, "state": s.to_string()}),
            Err(e) => json!({"controller": controller, "state": "unknown", "error": e.to_string()}),
        });
    }
    Ok(out)
}

/// `GET /api/v1/devices/{name}/power`: the state of each power controller.
pub async fn power_status(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Response, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    caller.check(&state, Action::PowerStatus, &name).await?;
    let results = power_report(&entry).await?;
    Ok(axum::Json(json!({"device": name, "results": results})).into_response())
}

/// The body of `POST /api/v1/devices/{name}/power`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerBody {
    action: String,
}

/// `POST /api/v1/devices/{name}/power`: switch (all controllers together), then report.
pub async fn power_action(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<PowerBody>,
) -> Result<Response, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    if body.action == "status" {
        caller.check(&state, Action::PowerStatus, &name).await?;
        let results = power_report(&entry).await?;
        return Ok(axum::Json(json!({"device": name, "results": results})).into_response());
    }
    let action: mo_core::power::PowerAction = body.action.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "bad power action `{}`: use on, off, cycle, reset, soft-off or status",
            body.action
        ))
    })?;
    caller.check(&state, Action::PowerControl, &name).await?;
    crate::power::controller(&entry).map_err(|e| ApiError::new(Code::Unsupported, e))?;
    let results =
        crate::power::perform(std::slice::from_ref(&entry), action, &caller.user, |_| {}).await;
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
            if item.get("error").is_none() {
                item["error"] = json!(line);
            }
        }
    }
    Ok(axum::Json(json!({
        "device": name,
        "action": action.name(),
        "ok": failed.is_none(),
        "message": results.iter().map(|r| r.line.clone()).collect::<Vec<_>>().join("; "),
        "results": report,
    }))
    .into_response())
}

/// `since`/`until` query values as ns. An RFC 3339 time outside what the log can hold (before
/// 1970, after 2554) is clamped to its start or end; a range whose end is not after its start
/// selects nothing (it is not an error: the OpenAPI document cannot state the relation).
fn time_range(
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
fn empty_range(since: Option<u64>, until: Option<u64>) -> bool {
    matches!((since, until), (Some(s), Some(u)) if u <= s)
}

/// `value` of query parameter `what` must be within `min..=max` (as the OpenAPI document says).
fn within(what: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), ApiError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ApiError::bad_request(format!(
            "bad `{what}` {v}: give {min} to {max}"
        ))),
        _ => Ok(()),
    }
}

async fn log_dir(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<std::path::PathBuf, ApiError> {
    visible_entry(state, caller, name)?;
    caller.check(state, Action::LogRead, name).await?;
    // A device whose console never started (an address no driver takes) has no log yet: it
    // reads as an empty one.
    Ok(state.data.device_log_dir(name)?)
}

/// Whether the caller sees typed input as `<input hidden>`: it lacks `log.read_input` (in the
/// policy or in its token's scope).
fn hides_input(state: &AppState, caller: &Caller, name: &str) -> bool {
    !(caller.scope_permits(Action::LogReadInput)
        && state
            .ctx
            .access
            .allows(&caller.user, Action::LogReadInput, name))
}

async fn run_log<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("log task failed: {e}")))?
}

/// Query of `GET …/log`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    since: Option<String>,
    until: Option<String>,
    tail: Option<u64>,
}

/// `GET /api/v1/devices/{name}/log`: the rendered log, a timestamp per line.
pub async fn log_show(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<LogQuery>,
) -> Result<Response, ApiError> {
    within("tail", q.tail, 0, super::openapi::MAX_TAIL)?;
    let (since, until) = time_range(q.since.as_deref(), q.until.as_deref())?;
    let dir = log_dir(&state, &caller, &name).await?;
    let opts = ShowOptions {
        since,
        until,
        hide_input: hides_input(&state, &caller, &name),
        tail: q.tail.map(|t| usize::try_from(t).unwrap_or(usize::MAX)),
        ..ShowOptions::default()
    };
    let text = if empty_range(since, until) || !dir.is_dir() {
        Vec::new()
    } else {
        run_log(move || {
            let mut out = Vec::new();
            mo_core::log::show(&dir, &opts, &mut out)?;
            Ok(out)
        })
        .await?
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Query of `GET …/log/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u64>,
}

/// `GET /api/v1/devices/{name}/log/search`: matching lines as `[{"time","line","user"?}]`.
pub async fn log_search(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(q): QueryArgs<SearchQuery>,
) -> Result<Response, ApiError> {
    let pattern = q
        .q
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing `q` parameter (the regular expression)"))?;
    mo_core::log::compile_pattern(&pattern, false)?;
    within("limit", q.limit, 1, super::openapi::MAX_SEARCH_LIMIT)?;
    let (since, until) = time_range(q.since.as_deref(), q.until.as_deref())?;
    let dir = log_dir(&state, &caller, &name).await?;
    let limit = usize::try_from(q.limit.unwrap_or(1000)).unwrap_or(usize::MAX);
    let opts = SearchOptions {
        pattern,
        since,
        until,
        hide_input: hides_input(&state, &caller, &name),
        ..SearchOptions::default()
    };
    let text = if empty_range(since, until) || !dir.is_dir() {
        Vec::new()
    } else {
        run_log(move || {
            let mut out = Vec::new();
            mo_core::log::search(&dir, &opts, &mut out)?;
            Ok(out)
        })
        .await?
    };
    let text = String::from_utf8_lossy(&text);
    let mut hits: Vec<Value> = Vec::new();
    let mut last_time = String::new();
    for line in text.lines().filter(|l| *l != "--" && !l.is_empty()) {
        if hits.len() == limit {
            break;
        }
        if let Some(hit) = search_hit(line, &mut last_time) {
            hits.push(hit);
        }
    }
    Ok(axum::Json(hits).into_response())
}

/// A rendered line `TIMESTAMP text` as `{"time","line","user"?}`: input lines (`<alice> ls`) and
/// notes (`[note bob] …`) name their user. A line without a timestamp of its own (the
/// continuation of a record) takes the previous line's (`last_time`); one before any timestamped
/// line is left out, so `time` is always an RFC 3339 time.
fn search_hit(line: &str, last_time: &mut String) -> Option<Value> {
    let is_time = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    };
    let (time, text) = match line.split_once(' ') {
        Some((t, rest)) if is_time(t) => (t, rest),
        None if is_time(line) => (line, ""),
        _ if !last_time.is_empty() => (last_time.as_str(), line),
        _ => return None,
    };
    let time = time.to_string();
    let mut hit = json!({"time": time, "line": text});
    *last_time = time;
    let user = text
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .map(|(u, _)| u)
        .or_else(|| {
            text.strip_prefix("[note ")
                .and_then(|r| r.split_once(']'))
                .map(|(u, _)| u)
        });
    if let Some(user) = user.filter(|u| !u.is_empty() && !u.contains(' ')) {
        hit["user"] = json!(user);
    }
    Some(hit)
}

/// `POST /api/v1/devices/{name}/log/verify`.
pub async fn log_verify(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Response, ApiError> {
    let dir = log_dir(&state, &caller, &name).await?;
    if !dir.is_dir() {
        return Ok(axum::Json(json!({
            "ok": true,
            "records": 0,
            "segments": 0,
            "problems": [],
            "warnings": ["no record log yet: the console has not started"],
        }))
        .into_response());
    }
    let report = run_log(move || Ok(mo_core::log::verify(&dir)?)).await?;
    let mut problems: Vec<String> = report.problem.iter().map(|p| p.to_string()).collect();
    if report.problems > 1 {
        problems.push(format!("({} problems in all)", report.problems));
    }
    let mut warnings: Vec<String> = report
        .torn_tail
        .iter()
        .map(|t| format!("torn final record: {t}"))
        .collect();
    warnings.extend(report.notes.iter().cloned());
    Ok(axum::Json(json!({
        "ok": report.is_ok(),
        "records": report.records,
        "segments": report.segments,
        "problems": problems,
        "warnings": warnings,
    }))
    .into_response())
}

/// An event as the API shows it.
pub fn event_json(e: &Event) -> Value {
    let mut v = json!({
        "id": e.id,
        "time": format_timestamp(u64::try_from(e.time_ns).unwrap_or(0)),
        "device": e.device,
        "severity": e.severity.to_string(),
        "name": e.source.as_str(),
        "text": e.message,
        "count": e.count,
    });
    if let Some(by) = &e.acked_by {
        v["acked_by"] = json!(by);
    }
    v
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    device: Option<String>,
    limit: Option<u64>,
    unacked: Option<bool>,
}

/// `GET /api/v1/events`: the newest events (of devices the caller may see), oldest first.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    QueryArgs(q): QueryArgs<EventsQuery>,
) -> Result<Response, ApiError> {
    within("limit", q.limit, 1, super::openapi::MAX_EVENTS_LIMIT)?;
    if let Some(device) = &q.device {
        mo_store::validate_device_name(device)?;
        if !caller.sees(&state, device) {
            return Err(ApiError::unknown_device(device));
        }
    }
    let filter = EventFilter {
        device: q.device.clone(),
        unacked: q.unacked.unwrap_or(false),
        limit: Some(usize::try_from(q.limit.unwrap_or(100)).unwrap_or(usize::MAX)),
        ..EventFilter::default()
    };
    let found = blocking(&state, move |s| s.query_events(&filter)).await?;
    let list: Vec<Value> = found
        .iter()
        .filter(|e| caller.sees(&state, &e.device))
        .map(event_json)
        .collect();
    Ok(axum::Json(list).into_response())
}

/// `POST /api/v1/events/{id}/ack` (needs `events.ack` on the event's device).
pub async fn ack_event(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(id): PathArgs<String>,
) -> Result<Response, ApiError> {
    let id: u64 = id
        .trim_start_matches('#')
        .parse()
        .map_err(|_| ApiError::bad_request(format!("bad event id `{id}`: give a number")))?;
    let missing = || ApiError::not_found(format!("no event #{id}"));
    let event = blocking(&state, move |s| s.event(id))
        .await?
        .ok_or_else(missing)?;
    if !caller.sees(&state, &event.device) {
        return Err(missing());
    }
    caller
        .check(&state, Action::EventsAck, &event.device)
        .await?;
    let events = state.ctx.events.clone();
    let user = caller.user.clone();
    tokio::task::spawn_blocking(move || events.ack(id, &user))
        .await
        .map_err(|e| ApiError::internal(format!("ack task failed: {e}")))??;
    let event = blocking(&state, move |s| s.event(id))
        .await?
        .ok_or_else(missing)?;
    Ok(axum::Json(event_json(&event)).into_response())
}

/// `GET /api/v1/users` (needs `admin` on every device).
pub async fn users(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.check_global(&state, Action::Admin).await?;
    let users = blocking(&state, |s| s.list_users()).await?;
    let list: Vec<Value> = users
        .iter()
        .map(|u| json!({"name": u.name, "has_password": u.has_password, "ssh_keys": u.ssh_keys}))
        .collect();
    Ok(axum::Json(list).into_response())
}

/// The body of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    password: Option<String>,
}

/// `POST /api/v1/users` (needs `admin` on every device): 201 with the user.
pub async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    caller.check_global(&state, Action::Admin).await?;
    let (name, password) = (body.name.clone(), body.password.clone());
    let result = blocking(&state, move |s| s.add_user(&name, password.as_deref())).await;
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        "user.add",
        None,
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        body.name.clone(),
    );
    result?;
    let body = json!({"name": body.name, "has_password": body.password.is_some(), "ssh_keys": 0});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `GET /api/v1/roles` (needs `admin` on every device).
pub async fn roles(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.check_global(&state, Action::Admin).await?;
    let roles = blocking(&state, |s| s.list_roles()).await?;
    let list: Vec<Value> = roles
        .iter()
        .map(|r| {
            json!({
                "name": r.role.name,
                "actions": r.role.actions.iter().map(|a| a.name()).collect::<Vec<_>>(),
                "builtin": r.builtin,
            })
        })
        .collect();
    Ok(axum::Json(list).into_response())
}

/// Resolve `targets` (names, globs, `@GROUP`s) to running consoles, checking `action` on each.
/// Every denied device is named; nothing runs unless all are allowed.
async fn consoles_for(
    state: &AppState,
    caller: &Caller,
    targets: &[String],
    action: Action,
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

/// Body of `POST /api/v1/gang`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GangBody {
    targets: Vec<String>,
    command: String,
}

/// `POST /api/v1/gang`: one command to many consoles; each device's answer and the divergent ones.
pub async fn gang(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<GangBody>,
) -> Result<Response, ApiError> {
    use mo_core::automation::{CollectOptions, Gang};
    let consoles = consoles_for(&state, &caller, &body.targets, Action::Gang).await?;
    let (mut gang, refused) = Gang::open_from(&caller.user, &caller.origin, &consoles).await;
    let report = gang
        .command(&body.command, &CollectOptions::default())
        .await;
    drop(gang);
    let outputs: BTreeMap<&String, String> = report
        .outputs
        .iter()
        .map(|(d, b)| (d, String::from_utf8_lossy(b).into_owned()))
        .collect();
    Ok(axum::Json(json!({
        "outputs": outputs,
        "majority": report.majority,
        "divergent": report.divergent,
        "failed": report.failed.iter().map(|(d, why)| json!({"device": d, "reason": why})).collect::<Vec<_>>(),
        "refused": refused.iter().map(|r| json!({"device": r.device(), "reason": r.to_string()})).collect::<Vec<_>>(),
        "missed": report.missed,
    }))
    .into_response())
}

/// `GET /api/v1/macros`: the stored macros' names, for callers who may run macros somewhere
/// (`macro.run` on some device, within the token's scope); others get a 403.
pub async fn macros(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    check_macro_access(&state, &caller)?;
    Ok(axum::Json(crate::automation::list_names()).into_response())
}

/// Macros are seen (listed, shown, played) only by callers who may run macros on some device;
/// a refusal is audited.
fn check_macro_access(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    crate::automation::check_access(&state.ctx, &caller.user, &caller.origin)
        .map_err(ApiError::forbidden)?;
    if !caller.scope_permits(Action::MacroRun) {
        return Err(ApiError::forbidden(format!(
            "denied: the API token's scope ({}) does not include macro.run",
            caller.scope.map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Body of `POST /api/v1/macros/{name}/play`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayBody {
    targets: Vec<String>,
    #[serde(default)]
    args: BTreeMap<String, String>,
    #[serde(default)]
    parallel: Option<usize>,
    /// Go on on the other devices after one fails (default: stop them all).
    #[serde(default, rename = "continue")]
    keep_going: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/macros/{name}/play`: play a stored macro on devices (or show the plan).
pub async fn macro_play(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<PlayBody>,
) -> Result<Response, ApiError> {
    use mo_core::automation::macros::{OnFailure, PlayOptions, dry_run};
    check_macro_access(&state, &caller)?;
    let macro_ = crate::automation::load(&name).map_err(|e| {
        if e.starts_with("no macro") {
            ApiError::new(Code::NotFound, e)
        } else {
            ApiError::bad_request(e)
        }
    })?;
    let parallel = body.parallel.unwrap_or(16);
    if !(1..=1000).contains(&parallel) {
        return Err(ApiError::bad_request(format!(
            "bad parallel {parallel}: give 1 to 1000"
        )));
    }
    let consoles = consoles_for(&state, &caller, &body.targets, Action::MacroRun).await?;
    let pairs: Vec<(&str, &str)> = body
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let plan = macro_
        .bind(&pairs)
        .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))?;
    let devices: Vec<&str> = consoles.iter().map(|c| c.name()).collect();
    if body.dry_run {
        return Ok(axum::Json(json!({
            "macro": name,
            "devices": devices,
            "plan": dry_run(&name, &plan),
        }))
        .into_response());
    }
    let opts = PlayOptions {
        name: name.clone(),
        notes: true,
        parallel,
        on_failure: if body.keep_going {
            OnFailure::Continue
        } else {
            OnFailure::StopAll
        },
        origin: format!("macro {name} ({})", caller.origin),
    };
    let args: Vec<(String, String)> = body.args.into_iter().collect();
    let reports =
        crate::automation::play(&caller.user, &consoles, &macro_, &args, &opts, None).await;
    for r in &reports {
        state.ctx.access.record(
            &caller.user,
            &caller.origin,
            "macro.run",
            Some(&r.device),
            if r.ok() { Outcome::Ok } else { Outcome::Failed },
            crate::automation::result_line(r),
        );
    }
    let results: Vec<Value> = reports
        .iter()
        .map(|r| json!({"device": r.device, "ok": r.ok(), "result": crate::automation::result_line(r)}))
        .collect();
    Ok(axum::Json(json!({
        "macro": name,
        "ok": reports.iter().all(|r| r.ok()),
        "results": results,
    }))
    .into_response())
}
