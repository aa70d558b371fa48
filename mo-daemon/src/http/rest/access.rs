//! Device groups and grants (global admins only): the same store calls, validation and error
//! texts as `mo group` and `mo grant` on the daemon's host. A change is in force for the next
//! request: the policy is reloaded when the store's policy generation moves.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{DeviceGroup, Grant, GrantQuery, GroupPath, NewDeviceGroup};
use mo_core::policy::{ALL_DEVICES, NamePattern, Permission, Subject};
use mo_store::{Outcome, validate_access_name, validate_user_name};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{JsonBody, PathArgs, QueryArgs, blocking};

/// Record an administrative change in the audit log as `ok` or `failed` (with the error), as
/// the CLI does for the same change.
fn audit<T>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    detail: String,
    result: &Result<T, ApiError>,
) {
    let (outcome, detail) = match result {
        Ok(_) => (Outcome::Ok, detail),
        Err(e) => (Outcome::Failed, format!("{detail}: {}", e.message)),
    };
    state
        .ctx
        .access
        .record(&caller.user, &caller.origin, action, None, outcome, detail);
}

/// The device groups, the built-in `all` first (needs `admin` on the built-in group `all`).
#[utoipa::path(get, path = "/api/v1/groups", operation_id = "listGroups", tag = "access",
    responses(
        (status = 200, description = "OK.", body = Vec<DeviceGroup>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
    ))]
pub async fn groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<DeviceGroup>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let stored = blocking(&state, |s| s.list_device_groups()).await?;
    let mut list = vec![DeviceGroup {
        name: ALL_DEVICES.into(),
        members: Vec::new(),
        patterns: Vec::new(),
        every_device: true,
    }];
    list.extend(stored.into_iter().map(|g| DeviceGroup {
        name: g.name,
        members: g.members.into_iter().collect(),
        patterns: g.patterns.iter().map(|p| p.as_str().to_string()).collect(),
        every_device: false,
    }));
    Ok(Json(list))
}

/// Add a device group (needs `admin` on the built-in group `all`): 201 with the group.
#[utoipa::path(post, path = "/api/v1/groups", operation_id = "addGroup", tag = "access",
    request_body = NewDeviceGroup,
    responses(
        (status = 201, description = "Created.", body = DeviceGroup,
            links(("removeGroup" = (operation_id = "removeGroup", parameters(("name" = "$response.body#/name")))))),
        (status = 400, description = "Bad name, member or pattern (code bad_request): a regex that does not compile, a glob with an unclosed `[`.", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 409, description = "It exists already, or it is `all` (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn add_group(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewDeviceGroup>,
) -> Result<(StatusCode, Json<DeviceGroup>), ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let detail = format!(
        "{} members [{}] patterns [{}]",
        body.name,
        body.members.join(" "),
        body.patterns.join(" ")
    );
    let mut group = mo_core::policy::DeviceGroup::new(&body.name);
    group.members.extend(body.members.iter().cloned());
    let result = match body
        .patterns
        .iter()
        .map(|t| NamePattern::parse(t))
        .collect::<mo_core::Result<Vec<_>>>()
    {
        Ok(patterns) => {
            group.patterns = patterns;
            let stored = group.clone();
            blocking(&state, move |s| s.add_device_group(&stored)).await
        }
        Err(e) => Err(ApiError::from(e)),
    };
    audit(&state, &caller, "group.add", detail, &result);
    result?;
    Ok((
        StatusCode::CREATED,
        Json(DeviceGroup {
            name: group.name,
            members: group.members.into_iter().collect(),
            patterns: body.patterns,
            every_device: false,
        }),
    ))
}

/// Remove a device group (needs `admin` on the built-in group `all`); refused while grants
/// name it, and for the built-in `all`.
#[utoipa::path(delete, path = "/api/v1/groups/{name}", operation_id = "removeGroup",
    tag = "access", params(GroupPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such device group (code not_found).", body = mo_api::ErrorBody),
        (status = 409, description = "Grants name it, or it is the built-in `all` (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_group(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("device group", &name)?;
    let removed = name.clone();
    let result = blocking(&state, move |s| s.remove_device_group(&removed)).await;
    audit(&state, &caller, "group.rm", name, &result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// A grant of the API as the store's, its names checked (a bad one is a 400 naming it).
fn stored_grant(
    subject: &str,
    role: &str,
    device_group: &str,
) -> Result<mo_core::policy::Grant, ApiError> {
    let grant = match subject.strip_prefix('@') {
        Some(group) => {
            validate_access_name("user group", group)?;
            mo_core::policy::Grant::to_group(group, role, device_group)
        }
        None => {
            validate_user_name(subject)?;
            mo_core::policy::Grant::to_user(subject, role, device_group)
        }
    };
    validate_access_name("role", role)?;
    validate_access_name("device group", device_group)?;
    Ok(grant)
}

/// The grants, in the order made (needs `admin` on the built-in group `all`).
#[utoipa::path(get, path = "/api/v1/grants", operation_id = "listGrants", tag = "access",
    responses(
        (status = 200, description = "OK.", body = Vec<Grant>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
    ))]
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Grant>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let grants = blocking(&state, |s| s.list_grants()).await?;
    Ok(Json(
        grants
            .into_iter()
            .map(|g| Grant {
                subject: match g.subject {
                    Subject::User(u) => u,
                    Subject::Group(g) => format!("@{g}"),
                },
                role: g.role,
                device_group: g.device_group,
            })
            .collect(),
    ))
}

/// Give a role on a device group to a user or a user group (`@GROUP`; needs `admin` on the
/// built-in group `all`): 201 with the grant. It is in force for the next request.
#[utoipa::path(post, path = "/api/v1/grants", operation_id = "addGrant", tag = "access",
    request_body = Grant,
    responses(
        (status = 201, description = "Created.", body = Grant),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such user, user group, role or device group (code not_found; the message names which).", body = mo_api::ErrorBody),
        (status = 409, description = "The same grant exists (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn add_grant(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Grant>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let grant = stored_grant(&body.subject, &body.role, &body.device_group)?;
    let detail = grant.to_string();
    let result = blocking(&state, move |s| s.add_grant(&grant)).await;
    audit(&state, &caller, "grant.add", detail, &result);
    result?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// Take a grant back (needs `admin` on the built-in group `all`); the query names it as
/// `GET /api/v1/grants` lists it. It is out of force for the next request.
#[utoipa::path(delete, path = "/api/v1/grants", operation_id = "removeGrant", tag = "access",
    params(GrantQuery),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such grant (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_grant(
    State(state): State<AppState>,
    caller: Caller,
    QueryArgs(query): QueryArgs<GrantQuery>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let grant = stored_grant(&query.subject, &query.role, &query.device_group)?;
    let detail = grant.to_string();
    let result = blocking(&state, move |s| s.remove_grant(&grant)).await;
    audit(&state, &caller, "grant.rm", detail, &result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}
