//! Devices: list, show, add, replace (`mo device set`), remove.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{DevicePath, DeviceState, Modem, NewDevice, Settings, SettingsInput};
use mo_core::policy::Permission;
use mo_store::{Device, DeviceSettings, Outcome};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{JsonBody, PathArgs, blocking, visible_entry};
use crate::registry::Entry;

fn state_of(entry: &Entry) -> DeviceState {
    let word = match &entry.console {
        Some(c) => c.state().word(),
        None => "down",
    };
    word.parse().unwrap_or(DeviceState::Down)
}

/// A device's stored settings as the API shows them.
pub fn api_settings(s: &DeviceSettings) -> Settings {
    Settings {
        on_demand: s.on_demand,
        replay_lines: s.replay_lines,
        allow_join: s.allow_join,
        escape: s.escape.clone(),
        break_sequences: s.break_sequences.clone(),
        description: s.description.clone(),
        login: s.login.clone(),
        login_user: s.login_user.clone(),
        trust_host_key: s.trust_host_key,
        power: s.power.clone(),
        log_policy: s.log_policy.map(|p| match p.name() {
            "strict" => mo_api::LogPolicy::Strict,
            _ => mo_api::LogPolicy::Degrade,
        }),
        retain_days: s.retain_days,
        retain_gib: s.retain_gib.map(|r| r.gib()),
        log_secrets: s.log_secrets,
        listen: s.listen.clone(),
        listen_allow: s.listen_allow.clone(),
        node: s.node.clone(),
    }
}

/// The settings a request asks for, over the defaults; the store checks them when it stores.
pub fn store_settings(input: SettingsInput) -> Result<DeviceSettings, ApiError> {
    let mut s = DeviceSettings::default();
    if let Some(v) = input.on_demand {
        s.on_demand = v;
    }
    if let Some(v) = input.replay_lines {
        s.replay_lines = v;
    }
    if let Some(v) = input.allow_join {
        s.allow_join = v;
    }
    s.escape = input.escape;
    if let Some(v) = input.break_sequences {
        s.break_sequences = v;
    }
    s.description = input.description;
    s.login = input.login;
    s.login_user = input.login_user;
    if let Some(v) = input.trust_host_key {
        s.trust_host_key = v;
    }
    if let Some(v) = input.power {
        s.power = v;
    }
    s.log_policy = input
        .log_policy
        .map(|p| mo_store::parse_log_policy(p.name()))
        .transpose()?;
    s.retain_days = input.retain_days;
    s.retain_gib = input
        .retain_gib
        .map(|gib| {
            use serde::Deserialize as _;
            use serde::de::IntoDeserializer as _;
            let d: serde::de::value::F64Deserializer<serde::de::value::Error> =
                gib.into_deserializer();
            mo_store::RetainSize::deserialize(d)
                .map_err(|e| ApiError::bad_request(format!("bad JSON body: retain_gib: {e}")))
        })
        .transpose()?;
    if let Some(v) = input.log_secrets {
        s.log_secrets = v;
    }
    if let Some(v) = input.listen {
        s.listen = v;
    }
    if let Some(v) = input.listen_allow {
        s.listen_allow = v;
    }
    s.node = input.node;
    Ok(s)
}

/// The device a `POST`/`PUT` body asks for. Top-level fields win over the `settings` object,
/// but a value in that object must be valid on its own all the same (the schema says so, and a
/// mistake there should not pass unnoticed): it is checked with the store's rules, the login
/// pair and the ports' networks taken from the merged body since they go together.
fn body_device(body: NewDevice) -> Result<Device, ApiError> {
    let merged = body.merged_settings();
    let own = body.settings.clone();
    let device = Device {
        name: body.name,
        url: body.url,
        settings: store_settings(merged.clone())?,
    };
    if let Some(mut probe) = own
        && device.validate().is_ok()
    {
        probe.login = merged.login;
        probe.login_user = merged.login_user;
        if probe.listen_allow.is_none() {
            probe.listen_allow = merged.listen_allow;
        }
        let alone = Device {
            settings: store_settings(probe)
                .map_err(|e| ApiError::bad_request(format!("the `settings` object: {e}")))?,
            ..device.clone()
        };
        alone
            .validate()
            .map_err(|e| ApiError::bad_request(format!("the `settings` object: {e}")))?;
    }
    Ok(device)
}

/// A device as the API shows it, with its settings if `with_settings`.
pub async fn api_device(state: &AppState, entry: &Entry, with_settings: bool) -> mo_api::Device {
    let viewers = match &entry.console {
        Some(c) => c.who().await.map(|w| w.len()).unwrap_or(0),
        None => 0,
    };
    let policy = state.ctx.access.policy();
    let mut d = mo_api::Device::new(&entry.device.name, &entry.device.url, state_of(entry));
    d.viewers = u64::try_from(viewers).unwrap_or(u64::MAX);
    d.groups = policy
        .groups_of(&entry.device.name)
        .map(|g| g.name.clone())
        .collect();
    d.description.clone_from(&entry.device.settings.description);
    d.error.clone_from(&entry.error);
    // The modem lines, while the link is up and reports them (rfc2217).
    d.modem = entry
        .console
        .as_ref()
        .and_then(|c| c.modem())
        .map(|m| Modem {
            dcd: m.dcd,
            dsr: m.dsr,
            cts: m.cts,
            ri: m.ri,
        });
    // DTR/RTS as set and when the lines changed, once the link reported or mo set any.
    d.lines = entry
        .console
        .as_ref()
        .map(|c| (c.lines(), d.modem.is_some()))
        .filter(|(l, modem)| *modem || l.dtr_changed.is_some() || l.rts_changed.is_some())
        .map(|(l, _)| super::api_lines(&l));
    if with_settings {
        d.settings = Some(api_settings(&entry.device.settings));
    }
    d
}

/// The devices the caller may see.
#[utoipa::path(get, path = "/api/v1/devices", operation_id = "listDevices", tag = "devices",
    responses((status = 200, description = "OK.", body = Vec<mo_api::Device>,
        links(
            ("getDevice" = (operation_id = "getDevice", parameters(("name" = "$response.body#/0/name")))),
            ("removeDevice" = (operation_id = "removeDevice", parameters(("name" = "$response.body#/0/name")))),
            ("who" = (operation_id = "who", parameters(("name" = "$response.body#/0/name")))),
            ("powerStatus" = (operation_id = "powerStatus", parameters(("name" = "$response.body#/0/name")))),
            ("powerAction" = (operation_id = "powerAction", parameters(("name" = "$response.body#/0/name")))),
            ("logShow" = (operation_id = "logShow", parameters(("name" = "$response.body#/0/name")))),
            ("logSearch" = (operation_id = "logSearch", parameters(("name" = "$response.body#/0/name")))),
            ("logVerify" = (operation_id = "logVerify", parameters(("name" = "$response.body#/0/name")))),
            ("attach" = (operation_id = "attach", parameters(("name" = "$response.body#/0/name")))),
        ))))]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Json<Vec<mo_api::Device>> {
    let mut out = Vec::new();
    if caller.scope_permits(Permission::List) {
        for entry in state.ctx.visible(&caller.user) {
            out.push(api_device(&state, &entry, false).await);
        }
    }
    Json(out)
}

/// One device with its settings.
#[utoipa::path(get, path = "/api/v1/devices/{name}", operation_id = "getDevice", tag = "devices",
    params(DevicePath),
    responses((status = 200, description = "OK.", body = mo_api::Device,
        links(
            ("getDevice" = (operation_id = "getDevice", parameters(("name" = "$response.body#/name")))),
            ("removeDevice" = (operation_id = "removeDevice", parameters(("name" = "$response.body#/name")))),
            ("who" = (operation_id = "who", parameters(("name" = "$response.body#/name")))),
            ("powerStatus" = (operation_id = "powerStatus", parameters(("name" = "$response.body#/name")))),
            ("powerAction" = (operation_id = "powerAction", parameters(("name" = "$response.body#/name")))),
            ("logShow" = (operation_id = "logShow", parameters(("name" = "$response.body#/name")))),
            ("logSearch" = (operation_id = "logSearch", parameters(("name" = "$response.body#/name")))),
            ("logVerify" = (operation_id = "logVerify", parameters(("name" = "$response.body#/name")))),
            ("attach" = (operation_id = "attach", parameters(("name" = "$response.body#/name")))),
        ))))]
pub async fn get_device(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<mo_api::Device>, ApiError> {
    let entry = visible_entry(&state, &caller, &name)?;
    Ok(Json(api_device(&state, &entry, true).await))
}

/// Add a device (needs `admin` on its name; an address that runs a program, opens a local path
/// or reaches a host also needs a global admin or a site `[[allow]]` entry, docs/security.md).
///
/// Its console is started before the answer, so the caller's next request finds it
/// (read-your-writes).
#[utoipa::path(post, path = "/api/v1/devices", operation_id = "addDevice", tag = "devices",
    request_body = NewDevice,
    responses(
        (status = 201, description = "Created.", body = mo_api::Device,
        links(
            ("getDevice" = (operation_id = "getDevice", parameters(("name" = "$response.body#/name")))),
            ("removeDevice" = (operation_id = "removeDevice", parameters(("name" = "$response.body#/name")))),
            ("who" = (operation_id = "who", parameters(("name" = "$response.body#/name")))),
            ("powerStatus" = (operation_id = "powerStatus", parameters(("name" = "$response.body#/name")))),
            ("powerAction" = (operation_id = "powerAction", parameters(("name" = "$response.body#/name")))),
            ("logShow" = (operation_id = "logShow", parameters(("name" = "$response.body#/name")))),
            ("logSearch" = (operation_id = "logSearch", parameters(("name" = "$response.body#/name")))),
            ("logVerify" = (operation_id = "logVerify", parameters(("name" = "$response.body#/name")))),
            ("attach" = (operation_id = "attach", parameters(("name" = "$response.body#/name")))),
        )),
        (status = 403, description = "Denied (code forbidden): no `admin` on the name, or the address (console or power) runs a program, opens a local path or reaches a host, and the caller is no global admin and no site `[[allow]]` entry covers it; the message names the missing entry.", body = mo_api::ErrorBody),
        (status = 409, description = "It exists already (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn add_device(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewDevice>,
) -> Result<(StatusCode, Json<mo_api::Device>), ApiError> {
    let device = body_device(body)?;
    mo_store::validate_device_name(&device.name)?;
    check_addresses(&device)?;
    caller
        .check(&state, Permission::Admin, &device.name)
        .await?;
    check_reach(&state, &caller, &device, "device.add")?;
    check_listen(&state, &caller, &device, None, "device.add")?;
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
    Ok((
        StatusCode::CREATED,
        Json(api_device(&state, &entry, true).await),
    ))
}

/// Replace a device's address and settings (`mo device set` through the API): the body is a
/// whole device as for `POST`, fields left out take their defaults; its name must be the path's.
/// Needs `admin` on the device; a changed address that runs a program, opens a local path or
/// reaches a host also needs a global admin or a site `[[allow]]` entry, and changed ports
/// (`listen`, `listen_allow`) a global admin. The console is restarted with the new settings
/// before the answer.
#[utoipa::path(put, path = "/api/v1/devices/{name}", operation_id = "replaceDevice",
    tag = "devices", params(DevicePath), request_body = NewDevice,
    responses(
        (status = 200, description = "Replaced.", body = mo_api::Device),
        (status = 400, description = "A bad address or setting (code bad_request), or a body naming another device; the message names the setting.", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): no `admin` on the device, an address outside the site's [[allow]] entries, or ports changed by a caller who is no global admin.", body = mo_api::ErrorBody),
        (status = 404, description = "No such device (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn replace_device(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<NewDevice>,
) -> Result<Json<mo_api::Device>, ApiError> {
    let current = {
        let n = name.clone();
        blocking(&state, move |s| s.get_device(&n)).await?
    };
    let Some(current) = current.filter(|_| caller.sees(&state, &name)) else {
        return Err(ApiError::unknown_device(&name));
    };
    caller.check(&state, Permission::Admin, &name).await?;
    if body.name != name {
        return Err(ApiError::bad_request(format!(
            "the body names device `{}` but the path `{name}`: a device is renamed by adding it \
             under the new name and removing the old one",
            body.name
        )));
    }
    let device = body_device(body)?;
    check_addresses(&device)?;
    if device.url != current.url || device.settings.power != current.settings.power {
        check_reach(&state, &caller, &device, "device.set")?;
    }
    check_listen(&state, &caller, &device, Some(&current), "device.set")?;
    let stored = device.clone();
    let result = blocking(&state, move |s| s.update_device(&stored)).await;
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        "device.set",
        Some(&device.name),
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        device.url.clone(),
    );
    result?;
    apply_device(&state, &name).await?;
    let entry = state.ctx.registry.get(&name).ok_or_else(|| {
        ApiError::internal(format!(
            "device `{name}` was stored but the daemon does not run it"
        ))
    })?;
    Ok(Json(api_device(&state, &entry, true).await))
}

/// A device's own TCP ports open listeners on the daemon's host: adding or changing them
/// (`listen`, `listen_allow`) needs a global admin; a refusal is audited and is a 403.
fn check_listen(
    state: &AppState,
    caller: &Caller,
    device: &Device,
    current: Option<&Device>,
    audit_action: &str,
) -> Result<(), ApiError> {
    let unchanged = match current {
        Some(c) => {
            c.settings.listen == device.settings.listen
                && c.settings.listen_allow == device.settings.listen_allow
        }
        None => device.settings.listen.is_empty() && device.settings.listen_allow.is_empty(),
    };
    if unchanged || caller.is_global(state, Permission::Admin) {
        return Ok(());
    }
    let why = format!(
        "device `{}`: its own TCP ports (listen, listen_allow) open listeners on the daemon's \
         host: only `admin` on the built-in group `all` may set them",
        device.name
    );
    Err(denied(state, caller, device, audit_action, why))
}

/// A refused device write: audited as denied, answered 403 with `why`.
fn denied(
    state: &AppState,
    caller: &Caller,
    device: &Device,
    audit_action: &str,
    why: String,
) -> ApiError {
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        audit_action,
        Some(&device.name),
        Outcome::Denied,
        why.clone(),
    );
    ApiError::forbidden(why)
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
    let global = caller.is_global(state, Permission::Admin);
    state
        .ctx
        .site
        .check_device(device, global)
        .map_err(|why| denied(state, caller, device, audit_action, why))
}

/// The API takes device and power addresses of the shapes its OpenAPI document states
/// ([`mo_api::DEVICE_URL_PATTERN`], [`mo_api::POWER_URL_PATTERN`]).
fn check_addresses(device: &Device) -> Result<(), ApiError> {
    use std::sync::LazyLock;
    static DEVICE_URL: LazyLock<Option<regex::Regex>> =
        LazyLock::new(|| regex::Regex::new(mo_api::DEVICE_URL_PATTERN).ok());
    static POWER_URL: LazyLock<Option<regex::Regex>> =
        LazyLock::new(|| regex::Regex::new(mo_api::POWER_URL_PATTERN).ok());
    let (Some(device_url), Some(power_url)) = (DEVICE_URL.as_ref(), POWER_URL.as_ref()) else {
        return Err(ApiError::internal("the address patterns do not compile"));
    };
    if !device_url.is_match(&device.url) {
        return Err(ApiError::bad_request(format!(
            "device `{}`: bad url `{}`: write SCHEME://[USER@]HOST[:PORT][/PATH][?QUERY] with a \
             scheme mo has a driver for (exec, serial, unix, telnet, rfc2217, tcp, ssh, ipmi, \
             sim, cs, agent), a port up to 65535 and URL-safe characters",
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

/// Remove a device (needs `admin`); its log stays.
#[utoipa::path(delete, path = "/api/v1/devices/{name}", operation_id = "removeDevice",
    tag = "devices", params(DevicePath),
    responses((status = 204, description = "Done; no content.")))]
pub async fn remove_device(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    let known = {
        let n = name.clone();
        blocking(&state, move |s| s.get_device(&n)).await?
    };
    if known.is_none() || !caller.sees(&state, &name) {
        return Err(ApiError::unknown_device(&name));
    }
    caller.check(&state, Permission::Admin, &name).await?;
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
    Ok(StatusCode::NO_CONTENT)
}
