//! Users and roles (global admins only): the same store calls and error texts as `mo user` and
//! `mo role` on the daemon's host; role changes are in force for the next request.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{
    AccessPath, NewPassword, NewSshKey, NewUser, Role, RoleActions, SshKey, SshKeyQuery, User,
    UserPath,
};
use mo_core::policy::{Permission, PermissionSet};
use mo_store::{Outcome, validate_access_name};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{JsonBody, PathArgs, QueryArgs, blocking};

/// Users (needs `admin` on the built-in group `all`).
#[utoipa::path(get, path = "/api/v1/users", operation_id = "listUsers", tag = "users",
    responses(
        (status = 200, description = "OK.", body = Vec<User>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
    ))]
pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let users = blocking(&state, |s| s.list_users()).await?;
    Ok(Json(
        users
            .iter()
            .map(|u| {
                User::new(
                    &u.name,
                    u.has_password,
                    u64::try_from(u.ssh_keys).unwrap_or(0),
                )
            })
            .collect(),
    ))
}

/// Add a user (needs `admin` on the built-in group `all`): 201 with the user.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "addUser", tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created.", body = User),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 409, description = "It exists already (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
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
    Ok((
        StatusCode::CREATED,
        Json(User::new(body.name, body.password.is_some(), 0)),
    ))
}

/// Remove a user (needs `admin` on the built-in group `all`), as `mo user rm`: what the store
/// keeps for the user goes with it (grants, group memberships, SSH keys), in force for the next
/// request.
#[utoipa::path(delete, path = "/api/v1/users/{name}", operation_id = "removeUser", tag = "users",
    params(UserPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such user (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    mo_store::validate_user_name(&name)?;
    let removed = name.clone();
    let result = blocking(&state, move |s| s.remove_user(&removed)).await;
    record(&state, &caller, "user.rm", name, result.is_ok());
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a user's password (needs `admin` on the built-in group `all`), as
/// `mo user passwd NAME --password-stdin`.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", operation_id = "setPassword",
    tag = "users", params(UserPath), request_body = NewPassword,
    responses(
        (status = 204, description = "Changed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such user (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<NewPassword>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    mo_store::validate_user_name(&name)?;
    let user = name.clone();
    let result = blocking(&state, move |s| s.set_password(&user, &body.password)).await;
    record(&state, &caller, "user.passwd", name, result.is_ok());
    result?;
    Ok(StatusCode::NO_CONTENT)
}

fn api_key(k: &mo_store::SshPublicKey) -> SshKey {
    SshKey {
        key_type: k.key_type().into(),
        fingerprint: k.fingerprint().into(),
        comment: k.comment().into(),
    }
}

/// A user's SSH keys (needs `admin` on the built-in group `all`), as `mo user key list`.
#[utoipa::path(get, path = "/api/v1/users/{name}/keys", operation_id = "listSshKeys",
    tag = "users", params(UserPath),
    responses(
        (status = 200, description = "OK.", body = Vec<SshKey>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such user (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn ssh_keys(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<Vec<SshKey>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    mo_store::validate_user_name(&name)?;
    let keys = blocking(&state, move |s| {
        s.user(&name)?;
        s.ssh_key_details(&name)
    })
    .await?;
    Ok(Json(keys.iter().map(api_key).collect()))
}

/// Add an SSH public key to a user (needs `admin` on the built-in group `all`), as
/// `mo user key add`: 201 with the key.
#[utoipa::path(post, path = "/api/v1/users/{name}/keys", operation_id = "addSshKey",
    tag = "users", params(UserPath), request_body = NewSshKey,
    responses(
        (status = 201, description = "Added.", body = SshKey),
        (status = 400, description = "Not an OpenSSH public key (code bad_request).", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such user (code not_found).", body = mo_api::ErrorBody),
        (status = 409, description = "A user has this key already (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn add_ssh_key(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<NewSshKey>,
) -> Result<(StatusCode, Json<SshKey>), ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    mo_store::validate_user_name(&name)?;
    let user = name.clone();
    let result = blocking(&state, move |s| {
        // The user first, so the error is about the user.
        s.user(&user)?;
        s.add_ssh_key(&user, &body.key)
    })
    .await;
    let detail = match &result {
        Ok(k) => format!("{name} {}", k.fingerprint()),
        Err(_) => name,
    };
    record(&state, &caller, "user.key.add", detail, result.is_ok());
    Ok((StatusCode::CREATED, Json(api_key(&result?))))
}

/// Remove an SSH key of a user by its fingerprint (needs `admin` on the built-in group `all`),
/// as `mo user key rm`.
#[utoipa::path(delete, path = "/api/v1/users/{name}/keys", operation_id = "removeSshKey",
    tag = "users", params(UserPath, SshKeyQuery),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such user or key (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_ssh_key(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    QueryArgs(query): QueryArgs<SshKeyQuery>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    mo_store::validate_user_name(&name)?;
    let (user, fingerprint) = (name.clone(), query.fingerprint.clone());
    let result = blocking(&state, move |s| {
        s.user(&user)?;
        if !s
            .ssh_key_details(&user)?
            .iter()
            .any(|k| k.fingerprint() == fingerprint)
        {
            return Err(mo_store::Error::UnknownName {
                what: "SSH key",
                name: fingerprint,
            });
        }
        s.remove_ssh_key(&user, &fingerprint)
    })
    .await;
    let detail = format!("{name} {}", query.fingerprint);
    record(&state, &caller, "user.key.rm", detail, result.is_ok());
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// An audit row for a user change by `caller`.
fn record(state: &AppState, caller: &Caller, action: &str, name: String, ok: bool) {
    let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
    state
        .ctx
        .access
        .record(&caller.user, &caller.origin, action, None, outcome, name);
}

/// Roles and their actions (needs `admin` on the built-in group `all`).
#[utoipa::path(get, path = "/api/v1/roles", operation_id = "listRoles", tag = "users",
    responses(
        (status = 200, description = "OK.", body = Vec<Role>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
    ))]
pub async fn roles(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Role>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let roles = blocking(&state, |s| s.list_roles()).await?;
    Ok(Json(roles.iter().map(api_role).collect()))
}

/// A role of the store as the API's.
fn api_role(r: &mo_store::RoleInfo) -> Role {
    Role::new(
        &r.role.name,
        r.role
            .actions
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        r.builtin,
    )
}

/// One role and its actions (needs `admin` on the built-in group `all`), as `mo role show`.
#[utoipa::path(get, path = "/api/v1/roles/{name}", operation_id = "showRole", tag = "users",
    params(AccessPath),
    responses(
        (status = 200, description = "OK.", body = Role),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such role (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn show_role(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<Role>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("role", &name)?;
    let role = blocking(&state, move |s| s.role(&name)).await?;
    Ok(Json(api_role(&role)))
}

/// Define a role, or redefine one (built-in ones too; needs `admin` on the built-in group
/// `all`), as `mo role add`: 200 with the role. In force for the next request.
#[utoipa::path(put, path = "/api/v1/roles/{name}", operation_id = "setRole", tag = "users",
    params(AccessPath), request_body = RoleActions,
    responses(
        (status = 200, description = "Defined.", body = Role,
            links(("removeRole" = (operation_id = "removeRole", parameters(("name" = "$response.body#/name")))))),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
    ))]
pub async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<RoleActions>,
) -> Result<Json<Role>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("role", &name)?;
    let actions = match body.actions.join(",").parse::<PermissionSet>() {
        Ok(actions) => Ok(actions),
        Err(e) => Err(ApiError::from(e)),
    };
    let detail = match &actions {
        Ok(actions) => format!("{name} = {actions}"),
        Err(_) => format!("{name} = {}", body.actions.join(",")),
    };
    let role = name.clone();
    let result = match actions {
        Ok(actions) => {
            blocking(&state, move |s| {
                s.set_role(&role, actions)?;
                s.role(&role)
            })
            .await
        }
        Err(e) => Err(e),
    };
    super::access::audit(&state, &caller, "role.add", detail, &result);
    Ok(Json(api_role(&result?)))
}

/// Remove a role (needs `admin` on the built-in group `all`), as `mo role rm`: a redefined
/// built-in role goes back to its built-in actions; refused while grants name a site role.
#[utoipa::path(delete, path = "/api/v1/roles/{name}", operation_id = "removeRole", tag = "users",
    params(AccessPath),
    responses(
        (status = 204, description = "Removed (or, for a built-in role, back to its built-in actions)."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group that matches every name does not).", body = mo_api::ErrorBody),
        (status = 404, description = "No such role (code not_found).", body = mo_api::ErrorBody),
        (status = 409, description = "Grants name it, or it is an unchanged built-in role (code conflict).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_role(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    validate_access_name("role", &name)?;
    let removed = name.clone();
    let result = blocking(&state, move |s| s.remove_role(&removed)).await;
    super::access::audit(&state, &caller, "role.rm", name, &result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}
