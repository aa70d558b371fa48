//! API tokens through the API: a user makes tokens for itself (`mo login` with a password),
//! lists and revokes its own; `admin` on the built-in group `all` does so for every user.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mo_api::{ApiToken, CreatedApiToken, NewApiToken, TokenPath};
use mo_core::log::format_timestamp;
use mo_core::policy::Permission;
use mo_core::record::now_ns;
use mo_store::{Outcome, TokenInfo, TokenScope};
use serde::Deserialize;
use utoipa::IntoParams;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::error::ApiError;
use super::{JsonBody, PathArgs, QueryArgs, blocking};

/// The query of `GET /api/v1/tokens`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokensQuery {
    /// Only this user's tokens (another user's need `admin` on `all`).
    #[param(min_length = 1, max_length = 32, pattern = "^[a-z_][a-z0-9_.-]{0,31}$")]
    pub user: Option<String>,
}

fn time(ns: Option<i64>) -> Option<String> {
    ns.map(|t| format_timestamp(u64::try_from(t).unwrap_or(0)))
}

fn api(t: TokenInfo) -> ApiToken {
    let now = i64::try_from(now_ns()).unwrap_or(i64::MAX);
    let state = if t.revoked_ns.is_some() {
        "revoked"
    } else if t.expires_ns.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    ApiToken {
        id: t.id,
        user: t.user,
        scope: t.scope.to_string(),
        expires_at: time(t.expires_ns),
        last_used_at: time(t.last_used_ns),
        state: state.into(),
    }
}

/// A caller may act on `user`'s tokens: its own (not with a token: a token cannot make or list
/// tokens unless its user is a global admin), or anyone's as `admin` on `all`.
async fn may_manage(state: &AppState, caller: &Caller, user: &str) -> Result<(), ApiError> {
    if user == caller.user && caller.token_id.is_none() {
        return Ok(());
    }
    caller.check_global(state, Permission::Admin).await
}

/// Expiry as ns since the epoch: `expires` (checked with [`mo_api::valid_expiry`]: digits and
/// a unit of s, m, h, d or w) from now.
fn expiry(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "bad `expires`: `{text}` is not a duration like 30d"
        ))
    };
    let (digits, unit) = text
        .split_at_checked(text.len().saturating_sub(1))
        .ok_or_else(bad)?;
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let unit_s: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    let at = now_ns().saturating_add(n.saturating_mul(unit_s).saturating_mul(1_000_000_000));
    Ok(i64::try_from(at).unwrap_or(i64::MAX))
}

/// Make an API token: for the caller (logged in with a password or the web console), or for
/// any user as `admin` on `all`. The answer holds the token's text, shown this once.
#[utoipa::path(post, path = "/api/v1/tokens", operation_id = "addToken", tag = "users",
    request_body = NewApiToken,
    responses(
        (status = 201, description = "Created: the token's text is in `token`, shown this once.", body = CreatedApiToken),
        (status = 400, description = "Bad scope or expiry (code bad_request).", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden): another user's token, or a token made with a token, needs `admin` on the built-in group `all`.", body = mo_api::ErrorBody),
        (status = 404, description = "No such user (code not_found).", body = mo_api::ErrorBody),
    ))]
pub async fn add_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<(StatusCode, Json<CreatedApiToken>), ApiError> {
    // Every field is optional: only an object is such a body (not `[null, null]`).
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let body: NewApiToken = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("bad body: {e}")))?;
    if let Some(user) = &body.user {
        mo_store::validate_user_name(user)
            .map_err(|e| ApiError::bad_request(format!("bad `user`: {e}")))?;
    }
    if body
        .scope
        .as_deref()
        .is_some_and(|s| !mo_api::valid_scope(s))
    {
        return Err(ApiError::bad_request(format!(
            "bad `scope`: give `all` or actions among {} joined by commas",
            mo_api::TOKEN_ACTIONS.join(", ")
        )));
    }
    if body
        .expires
        .as_deref()
        .is_some_and(|e| !mo_api::valid_expiry(e))
    {
        return Err(ApiError::bad_request(
            "bad `expires`: give a duration like 30d, 12h or 1w (1 to 99999 s, m, h, d or w)",
        ));
    }
    let user = body.user.clone().unwrap_or_else(|| caller.user.clone());
    may_manage(&state, &caller, &user).await?;
    let scope = TokenScope::parse(body.scope.as_deref().unwrap_or("all"))
        .map_err(|e| ApiError::bad_request(format!("bad `scope`: {e}")))?;
    let expires = body.expires.as_deref().map(expiry).transpose()?;
    let owner = user.clone();
    let result = blocking(&state, move |s| s.add_token(&owner, scope, expires)).await;
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        "token.add",
        None,
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        format!("for {user}, scope {scope}"),
    );
    let new = result?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken {
            token: new.token.expose().to_string(),
            info: api(new.info),
        }),
    ))
}

/// The caller's tokens, or a user's (`admin` on `all` for another user; without `user`, an
/// admin sees every token). Never their secrets.
#[utoipa::path(get, path = "/api/v1/tokens", operation_id = "listTokens", tag = "users",
    params(TokensQuery),
    responses(
        (status = 200, description = "OK.", body = Vec<ApiToken>),
        (status = 400, description = "A bad user name (code bad_request).", body = mo_api::ErrorBody),
        (status = 403, description = "Denied (code forbidden).", body = mo_api::ErrorBody),
    ))]
pub async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
    QueryArgs(q): QueryArgs<TokensQuery>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let user = match q.user {
        Some(u) => {
            mo_store::validate_user_name(&u)
                .map_err(|e| ApiError::bad_request(format!("bad `user`: {e}")))?;
            if u != caller.user {
                caller.check_global(&state, Permission::Admin).await?;
            }
            Some(u)
        }
        None if caller.is_global(&state, Permission::Admin) => None,
        None => Some(caller.user.clone()),
    };
    let list = blocking(&state, move |s| s.list_tokens(user.as_deref())).await?;
    Ok(Json(list.into_iter().map(api).collect()))
}

/// Revoke a token: one's own, or any as `admin` on `all`.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", operation_id = "revokeToken", tag = "users",
    params(TokenPath),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Denied (code forbidden): another user's token, or one that does not exist, unless the caller is `admin` on `all`.", body = mo_api::ErrorBody),
        (status = 404, description = "No such token (code not_found; told only to a global admin).", body = mo_api::ErrorBody),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    PathArgs(id): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    let wanted = id.clone();
    let owner = blocking(&state, move |s| {
        Ok(s.list_tokens(None)?
            .into_iter()
            .find(|t| t.id == wanted)
            .map(|t| t.user))
    })
    .await?;
    // Only a global admin learns whether a token exists: others are told no (403) alike.
    if owner.as_deref() != Some(caller.user.as_str()) {
        caller.check_global(&state, Permission::Admin).await?;
    }
    if owner.is_none() {
        return Err(ApiError::not_found(format!("no token `{id}`")));
    }
    let revoked = id.clone();
    let result = blocking(&state, move |s| s.revoke_token(&revoked)).await;
    state.ctx.access.record(
        &caller.user,
        &caller.origin,
        "token.revoke",
        None,
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        id,
    );
    result?;
    Ok(StatusCode::NO_CONTENT)
}
