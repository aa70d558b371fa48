//! Device secrets (global admins only): the kinds a device has, and setting or removing one,
//! with the same store calls and error texts as `mo secret` on the daemon's host. Values are
//! sealed with the data directory's secret key; they are never answered, logged or audited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{DevicePath, MAX_SECRET_CHARS, NewSecret, SecretPath};
use mo_core::policy::Permission;
use mo_core::secret::Secret;
use mo_store::SecretKind;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::access::audit_device;
use super::{JsonBody, PathArgs, blocking};

/// The kinds of secret a device has, never their values (needs `admin` on the built-in group
/// `all`), as `mo secret list`.
#[utoipa::path(get, path = "/api/v1/devices/{name}/secrets", operation_id = "listSecrets",
    tag = "devices", params(DevicePath),
    responses(
        (status = 200, description = "The kinds (`password`, `private_key`, …), in a fixed order.", body = Vec<String>),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such device (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn secrets(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(name): PathArgs<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let kinds = blocking(&state, move |s| {
        s.device(&name)?;
        s.secret_kinds(&name)
    })
    .await?;
    Ok(Json(kinds.iter().map(ToString::to_string).collect()))
}

/// The value of `PUT`, checked: not only white space, and one line but for a private key.
fn secret_value(kind: SecretKind, body: NewSecret) -> Result<Secret, ApiError> {
    if body.value.trim().is_empty() {
        return Err(ApiError::bad_request("the secret is empty"));
    }
    if body.value.chars().count() > MAX_SECRET_CHARS {
        return Err(ApiError::bad_request(format!(
            "the secret is longer than {MAX_SECRET_CHARS} characters"
        )));
    }
    if kind != SecretKind::PrivateKey && body.value.contains(['\n', '\r']) {
        return Err(ApiError::bad_request(format!(
            "a {kind} is one line; only a private_key may span lines"
        )));
    }
    Ok(Secret::new(body.value))
}

/// Store (or replace) a device secret, sealed with the daemon's secret key (needs `admin` on
/// the built-in group `all`), as `mo secret set`. The value is not answered.
#[utoipa::path(put, path = "/api/v1/devices/{name}/secrets/{kind}", operation_id = "setSecret",
    tag = "devices", params(SecretPath), request_body = NewSecret,
    responses(
        (status = 204, description = "Stored (encrypted)."),
        (status = 400, description = "Only white space, too long, or a line break in a value other than a private_key (code bad_request).", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "No such device (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn set_secret(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(path): PathArgs<SecretPath>,
    JsonBody(body): JsonBody<NewSecret>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let kind: SecretKind = path.kind.parse()?;
    let result = match secret_value(kind, body) {
        Ok(value) => {
            let (data, device) = (state.data.clone(), path.name.clone());
            blocking(&state, move |s| {
                s.set_secret(&data.secret_key()?, &device, kind, &value)
            })
            .await
        }
        Err(e) => Err(e),
    };
    audit_device(
        &state,
        &caller,
        "secret.set",
        Some(&path.name),
        kind.to_string(),
        &result,
    );
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a device secret (needs `admin` on the built-in group `all`), as `mo secret rm`.
#[utoipa::path(delete, path = "/api/v1/devices/{name}/secrets/{kind}",
    operation_id = "removeSecret", tag = "devices", params(SecretPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Denied (code forbidden): only `admin` on the built-in group `all` counts.", body = mo_api::ErrorBody),
        (status = 404, description = "The device has no such secret (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn remove_secret(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(path): PathArgs<SecretPath>,
) -> Result<StatusCode, ApiError> {
    caller.check_global(&state, Permission::Admin).await?;
    let kind: SecretKind = path.kind.parse()?;
    mo_store::validate_device_name(&path.name)?;
    let device = path.name.clone();
    let result = blocking(&state, move |s| s.remove_secret(&device, kind)).await;
    audit_device(
        &state,
        &caller,
        "secret.rm",
        Some(&path.name),
        kind.to_string(),
        &result,
    );
    result?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_api_names_the_stores_kinds() {
        assert_eq!(mo_api::SECRET_KINDS, SecretKind::ALL.map(SecretKind::name));
    }

    #[test]
    fn values_are_checked_without_naming_them() {
        let body = |v: &str| NewSecret { value: v.into() };
        let blank = secret_value(SecretKind::Password, body(" \t")).unwrap_err();
        assert_eq!(blank.message, "the secret is empty");
        let two = secret_value(SecretKind::Password, body("hunter2\nx")).unwrap_err();
        assert!(!two.message.contains("hunter2"), "{}", two.message);
        assert!(two.message.contains("one line"), "{}", two.message);
        let long = "x".repeat(MAX_SECRET_CHARS + 1);
        assert!(secret_value(SecretKind::PrivateKey, body(&long)).is_err());
        let key = secret_value(SecretKind::PrivateKey, body("a\nb\n")).unwrap();
        assert_eq!(key.expose(), "a\nb\n");
    }
}
