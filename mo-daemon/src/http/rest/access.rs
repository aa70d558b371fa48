//! Device groups, user groups and grants (global admins only): the same store calls, validation
//! and error texts as `mo group`, `mo usergroup` and `mo grant` on the daemon's host. A change is in force for the next
//! request: the policy is reloaded when the store's policy generation moves.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{
    AccessPath, DeviceGroup, DeviceGroupChange, DeviceGroupDetail, Grant, GrantQuery,
    NewDeviceGroup, NewUserGroup, UserGroup, UserGroupChange,
};
use mo_core::policy::{ALL_DEVICES, NamePattern, Permission, Subject};
use mo_store::{Outcome, validate_access_name, validate_device_name, validate_user_name};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::{ApiError, Code};
use super::{JsonBody, PathArgs, QueryArgs, blocking};

/// Record an administrative change in the audit log as `ok` or `failed` (with the error), as
/// the CLI does for the same change.
pub(super) fn audit<T>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    detail: String,
    result: &Result<T, ApiError>,
) {
    audit_device(state, caller, action, None, detail, result);
}

/// [`audit`] for a change to one device (its secrets).
pub(super) fn audit_device<T>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    device: Option<&str>,
    detail: String,
    result: &Result<T, ApiError>,
) {
    let (outcome, detail) = match result {
        Ok(_) => (Outcome::Ok, detail),
        Err(e) => (Outcome::Failed, format!("{detail}: {}", e.message)),
    };
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        action,
        device,
        outcome,
        detail,
    );
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
    tag = "access", params(AccessPath),
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

/// A device group as `GET /api/v1/groups/{name}` shows it: with the stored devices in it.
fn group_detail(s: &mo_store::Store, name: &str) -> mo_store::Result<DeviceGroupDetail> {
    let group = s.device_group(name)?;
    let devices = s.devices_in_group(&group)?;
    Ok(DeviceGroupDetail {
        every_device: group.name == ALL_DEVICES,
        members: group.members.into_iter().collect(),
        patterns: group
            .patterns
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
        name: group.name,
        devices,
    })
}

/// One device group and the stored devices in it (needs `admin` on the built-in group `all`),
/// as `mo group show`.
#[utoipa::path(get, path = "/api/v1/groups/{name}", operation_id = "showGroup", tag = "access",
    params(AccessPath),
    responses(
        (status = 200, description = "OK.", body = DeviceGroupDetail),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such device group (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn show_group(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<DeviceGroupDetail>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("device group", &name)?;
    Ok(Json(
        blocking(&state, move |s| group_detail(s, &name)).await?,
    ))
}

/// Add members and patterns to a device group and take others out (needs `admin` on the
/// built-in group `all`), as `mo group set`: 200 with the group as it is now. In force for the
/// next request.
#[utoipa::path(patch, path = "/api/v1/groups/{name}", operation_id = "changeGroup",
    tag = "access", params(AccessPath), request_body = DeviceGroupChange,
    responses(
        (status = 200, description = "Changed.", body = DeviceGroupDetail),
        (status = 400, description = "Bad member or pattern (code bad_request): a regex that does not compile, a glob with an unclosed `[`.", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such device group (code not_found; the built-in `all` has nothing to change).", body = mo_api::ErrorBody),
    ))]
pub async fn change_group(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<DeviceGroupChange>,
) -> Result<Json<DeviceGroupDetail>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("device group", &name)?;
    let detail = format!(
        "{name}: +members {:?} -members {:?} +patterns {:?} -patterns {:?}",
        body.add_members, body.rm_members, body.add_patterns, body.rm_patterns
    );
    let result = match checked_change(&body) {
        Ok(add) => {
            let group = name.clone();
            blocking(&state, move |s| {
                s.change_device_group(
                    &group,
                    &body.add_members,
                    &add,
                    &body.rm_members,
                    &body.rm_patterns,
                )
            })
            .await
        }
        Err(e) => Err(e),
    };
    audit(&state, &caller, "group.set", detail, &result);
    result?;
    Ok(Json(
        blocking(&state, move |s| group_detail(s, &name)).await?,
    ))
}

/// The patterns a device group change adds, parsed; what it takes away checked as the schema
/// states it (device names, patterns that parse: a stored pattern always does).
fn checked_change(body: &DeviceGroupChange) -> Result<Vec<NamePattern>, ApiError> {
    for member in &body.rm_members {
        validate_device_name(member)?;
    }
    for pattern in &body.rm_patterns {
        NamePattern::parse(pattern)?;
    }
    Ok(body
        .add_patterns
        .iter()
        .map(|t| NamePattern::parse(t))
        .collect::<mo_core::Result<Vec<_>>>()?)
}

/// A user group of the store as the API's.
fn api_user_group(g: mo_core::policy::UserGroup) -> UserGroup {
    UserGroup {
        name: g.name,
        members: g.members.into_iter().collect(),
    }
}

/// The user groups, by name (needs `admin` on the built-in group `all`).
#[utoipa::path(get, path = "/api/v1/usergroups", operation_id = "listUserGroups",
    tag = "access",
    responses(
        (status = 200, description = "OK.", body = Vec<UserGroup>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
    ))]
pub async fn user_groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserGroup>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let groups = blocking(&state, |s| s.list_user_groups()).await?;
    Ok(Json(groups.into_iter().map(api_user_group).collect()))
}

/// Add a user group (needs `admin` on the built-in group `all`), as `mo usergroup add`: 201
/// with the group.
#[utoipa::path(post, path = "/api/v1/usergroups", operation_id = "addUserGroup",
    tag = "access", request_body = NewUserGroup,
    responses(
        (status = 201, description = "Created.", body = UserGroup,
            links(("removeUserGroup" = (operation_id = "removeUserGroup", parameters(("name" = "$response.body#/name")))))),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "A member is no user (code not_found).", body = mo_api::ErrorBody),
        (status = 409, description = "It exists already (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn add_user_group(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUserGroup>,
) -> Result<(StatusCode, Json<UserGroup>), ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let detail = format!("{} members [{}]", body.name, body.members.join(" "));
    let (name, members) = (body.name.clone(), body.members.clone());
    let result = blocking(&state, move |s| {
        s.add_user_group(&name, &members)?;
        s.user_group(&name)
    })
    .await;
    audit(&state, &caller, "usergroup.add", detail, &result);
    Ok((StatusCode::CREATED, Json(api_user_group(result?))))
}

/// One user group and its members (needs `admin` on the built-in group `all`), as
/// `mo usergroup show`.
#[utoipa::path(get, path = "/api/v1/usergroups/{name}", operation_id = "showUserGroup",
    tag = "access", params(AccessPath),
    responses(
        (status = 200, description = "OK.", body = UserGroup),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such user group (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn show_user_group(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<UserGroup>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("user group", &name)?;
    let group = blocking(&state, move |s| s.user_group(&name)).await?;
    Ok(Json(api_user_group(group)))
}

/// Add users to a user group and take others out (needs `admin` on the built-in group `all`),
/// as `mo usergroup set`: 200 with the group as it is now. In force for the next request.
#[utoipa::path(patch, path = "/api/v1/usergroups/{name}", operation_id = "changeUserGroup",
    tag = "access", params(AccessPath), request_body = UserGroupChange,
    responses(
        (status = 200, description = "Changed.", body = UserGroup),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such user group (code not_found).", body = mo_api::ErrorBody),
        (status = 409, description = "A user to add does not exist (code conflict; the message names it).", body = mo_api::ErrorBody),
    ))]
pub async fn change_user_group(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<UserGroupChange>,
) -> Result<Json<UserGroup>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("user group", &name)?;
    let detail = format!("{name}: +[{}] -[{}]", body.add.join(" "), body.rm.join(" "));
    for user in &body.rm {
        validate_user_name(user)?;
    }
    let group = name.clone();
    // A user to add that does not exist is a 409: a 404 here says the group does not.
    let result = blocking(&state, move |s| {
        Ok(s.change_user_group(&group, &body.add, &body.rm)
            .and_then(|()| s.user_group(&group)))
    })
    .await
    .and_then(|changed| {
        changed.map_err(|e| match e {
            mo_store::Error::UnknownUser(_) => ApiError::new(Code::Conflict, e.to_string()),
            other => ApiError::from(other),
        })
    });
    audit(&state, &caller, "usergroup.set", detail, &result);
    Ok(Json(api_user_group(result?)))
}

/// Remove a user group (needs `admin` on the built-in group `all`), as `mo usergroup rm`;
/// refused while grants are made to it.
#[utoipa::path(delete, path = "/api/v1/usergroups/{name}", operation_id = "removeUserGroup",
    tag = "access", params(AccessPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such user group (code not_found).", body = mo_api::ErrorBody),
        (status = 409, description = "Grants are made to it (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_user_group(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("user group", &name)?;
    let removed = name.clone();
    let result = blocking(&state, move |s| s.remove_user_group(&removed)).await;
    audit(&state, &caller, "usergroup.rm", name, &result);
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
