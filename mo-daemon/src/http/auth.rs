//! Who is calling: `Authorization: Bearer TOKEN` (an API token of `mo token add`), or HTTP Basic
//! with a user's password (argon2, for curl). WebSocket upgrades (and only they) may pass
//! `?token=TOKEN` instead, since browsers cannot set headers on a WebSocket; a token in the query
//! of any other request is ignored (query strings end up in proxy and server logs).
//!
//! Refusals are audited as failed logins, throttled per source address ([`crate::throttle`]:
//! a locked-out address gets 429 with `Retry-After`, without a check), and password checks run
//! only so many at a time (503 when too many wait).
//!
//! A WebSocket upgrade that carries an `Origin` header is accepted only from the daemon's own
//! origin (`http://HOST` or `https://HOST` for the request's `Host`) or an origin given with
//! `mod --allowed-origin`; clients that send no `Origin` (programs, not browsers) are let
//! through. This stops another web site's page from opening a console in a visitor's browser.
//!
//! A 401 challenges with `WWW-Authenticate: Bearer realm="mo"`; `Basic realm="mo"` is added
//! only when the request itself carried Basic credentials, so a browser that did not ask for
//! Basic never pops up a password dialog for the API.

use std::net::SocketAddr;

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use mo_core::door::auth::Credentials;
use mo_core::policy::Permission;
use mo_store::{Outcome, TokenScope};

use super::AppState;
use super::error::{ApiError, Code};
use crate::throttle::{Admission, CheckError};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The mo user.
    pub user: String,
    /// Where the call came from, for the audit log and `who`: `http 127.0.0.1:5000 token ID`.
    pub origin: String,
    /// The token's scope (`None` for a password login: everything the user may).
    pub scope: Option<TokenScope>,
    /// The API token's id, when the caller came with one.
    pub token_id: Option<String>,
    /// The browser session, when the web console's cookie authenticated the caller
    /// ([`super::web`]).
    pub web: Option<super::SessionUse>,
}

impl Caller {
    /// Whether the token's scope lets the caller take `action` (the policy decides separately).
    pub fn scope_permits(&self, action: Permission) -> bool {
        self.scope.is_none_or(|s| s.permits(action))
    }

    /// Decide and audit `action` on `device`: the token's scope first, then the policy (the same
    /// check as the SSH front door). A denial is a 403 naming why.
    pub async fn check(
        &self,
        state: &AppState,
        action: Permission,
        device: &str,
    ) -> Result<(), ApiError> {
        if !self.scope_permits(action) {
            let why = format!(
                "denied: the API token's scope ({}) does not include {}",
                self.scope.map(|s| s.to_string()).unwrap_or_default(),
                action.name()
            );
            state.ctx.access.record(
                &self.user,
                &self.origin,
                action.name(),
                Some(device),
                Outcome::Denied,
                why.clone(),
            );
            return Err(ApiError::forbidden(why));
        }
        state
            .ctx
            .check(&self.user, &self.origin, action, device)
            .await
            .map_err(ApiError::forbidden)
    }

    /// Decide and audit `action` over every device (users, roles, the daemon's host): the
    /// token's scope, then a grant on the built-in group `all` — a group that merely matches
    /// every name is not enough. A denial is a 403 naming why.
    pub async fn check_global(&self, state: &AppState, action: Permission) -> Result<(), ApiError> {
        if !self.scope_permits(action) {
            let why = format!(
                "denied: the API token's scope ({}) does not include {}",
                self.scope.map(|s| s.to_string()).unwrap_or_default(),
                action.name()
            );
            state.ctx.access.record(
                &self.user,
                &self.origin,
                action.name(),
                Some(mo_core::policy::EVERY_DEVICE),
                Outcome::Denied,
                why.clone(),
            );
            return Err(ApiError::forbidden(why));
        }
        state
            .ctx
            .access
            .check_global(&self.user, &self.origin, action)
            .map_err(ApiError::forbidden)
    }

    /// Whether the caller may take `action` over every device (see [`Caller::check_global`]),
    /// without auditing.
    pub fn is_global(&self, state: &AppState, action: Permission) -> bool {
        self.scope_permits(action) && state.ctx.access.allows_global(&self.user, action)
    }

    /// Whether the caller may see `device` (`list`), without auditing: devices the caller may
    /// not see answer 404 like unknown ones.
    pub fn sees(&self, state: &AppState, device: &str) -> bool {
        self.scope_permits(Permission::List)
            && state
                .ctx
                .access
                .allows(&self.user, Permission::List, device)
    }

    /// Who holds a session opened by this caller, for the live re-checks.
    pub fn holder(&self) -> crate::live::Holder {
        crate::live::Holder {
            user: self.user.clone(),
            token: self.token_id.clone(),
            scope: self.scope,
            web: self.web.clone(),
        }
    }
}

/// Origins besides the daemon's own whose pages may open WebSockets (`mod --allowed-origin`),
/// put into each request's extensions by the server.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(pub Arc<Vec<String>>);

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Refuse a WebSocket upgrade whose `Origin` is neither the daemon's own nor allowed.
fn check_origin(parts: &Parts) -> Result<(), ApiError> {
    let Some(origin) = parts.headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim().trim_end_matches('/');
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = !host.is_empty()
        && [format!("http://{host}"), format!("https://{host}")]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin));
    let listed = parts.extensions.get::<AllowedOrigins>().is_some_and(|l| {
        l.0.iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    });
    if own || listed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "WebSocket refused: origin `{origin}` is not this daemon's (`{host}`); allow it with \
             `mod --allowed-origin {origin}`"
        )))
    }
}

/// The 401 challenge for callers that sent Basic credentials: Basic is offered too.
fn challenge_basic(error: ApiError, basic: bool) -> ApiError {
    if basic && error.code == Code::Unauthorized {
        error.with_header(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"mo\", Basic realm=\"mo\""),
        )
    } else {
        error
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::Unauthorized, message)
}

/// The credentials presented, if any.
enum Presented {
    Token(String),
    Basic(String, String),
}

fn presented(parts: &Parts) -> Result<Option<Presented>, ApiError> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not readable text"))?
            .trim();
        // Parsed in mo-core (mo_core::door::auth), where it is fuzzed.
        return match mo_core::door::auth::parse_authorization(value)
            .map_err(|e| unauthorized(e.reason))?
        {
            Credentials::Token(token) => Ok(Some(Presented::Token(token))),
            Credentials::Basic { user, password } => Ok(Some(Presented::Basic(user, password))),
        };
    }
    if !is_websocket_upgrade(parts) {
        return Ok(None);
    }
    let token = parts.uri.query().and_then(mo_core::door::auth::query_token);
    Ok(token.map(Presented::Token))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let peer = addr.map_or_else(|| "?".into(), |a| a.to_string());
        if is_websocket_upgrade(parts) {
            check_origin(parts)?;
        }
        let Some(presented) = presented(parts)? else {
            // No other credentials: the web console's session cookie (and its CSRF check).
            if let Some(caller) = super::web::session_caller(parts, state, &peer).await? {
                return Ok(caller);
            }
            return Err(unauthorized(
                "no credentials: send `Authorization: Bearer TOKEN` (make one with `mo token add USER`) or HTTP Basic user:password, or log in to the web console (POST /api/v1/login)",
            ));
        };
        let basic = matches!(presented, Presented::Basic(..));
        let throttle = state.ctx.throttle.clone();
        if let Some(addr) = addr
            && let Admission::LockedOut(left) = throttle.admit(addr.ip())
        {
            throttle.refused_locked();
            let secs = left.as_secs().max(1);
            let error = ApiError::new(
                Code::TooManyRequests,
                format!(
                    "too many failed logins from {}: try again in {secs}s",
                    addr.ip()
                ),
            );
            return Err(match axum::http::HeaderValue::from_str(&secs.to_string()) {
                Ok(v) => error.with_header(axum::http::header::RETRY_AFTER, v),
                Err(_) => error,
            });
        }
        let origin = format!("http {peer}");
        let refused = |user: &str, why: String| {
            match addr {
                Some(addr) => {
                    throttle.failed(addr.ip(), user, &origin, &why);
                }
                None => state.ctx.access.record(
                    user,
                    &origin,
                    "login",
                    None,
                    Outcome::Denied,
                    why.clone(),
                ),
            }
            challenge_basic(unauthorized(why), basic)
        };
        let store = state.ctx.store.clone();
        match presented {
            Presented::Token(token) => {
                let checked = tokio::task::spawn_blocking(move || store.verify_token(&token))
                    .await
                    .map_err(|e| ApiError::internal(format!("token check failed: {e}")))?;
                match checked {
                    Ok(verified) => {
                        if let Some(addr) = addr {
                            throttle.succeeded(addr.ip());
                        }
                        Ok(Caller {
                            origin: format!("http {peer} token {}", verified.id),
                            user: verified.user,
                            scope: Some(verified.scope),
                            token_id: Some(verified.id),
                            web: None,
                        })
                    }
                    Err(mo_store::Error::TokenRefused { reason }) => {
                        Err(refused("unknown", format!("API token refused: {reason}")))
                    }
                    Err(e) => Err(ApiError::from(e)),
                }
            }
            Presented::Basic(user, password) => {
                let ok = match throttle.verify_password(&user, &password).await {
                    Ok(ok) => ok,
                    Err(CheckError::Busy) => {
                        return Err(ApiError::new(
                            Code::Unavailable,
                            CheckError::Busy.to_string(),
                        ));
                    }
                    Err(e) => return Err(ApiError::internal(e.to_string())),
                };
                if ok {
                    if let Some(addr) = addr {
                        throttle.succeeded(addr.ip());
                    }
                    Ok(Caller {
                        user,
                        origin,
                        scope: None,
                        token_id: None,
                        web: None,
                    })
                } else {
                    Err(refused(
                        &user,
                        format!(
                            "HTTP Basic login of `{user}` refused: wrong password or unknown user"
                        ),
                    ))
                }
            }
        }
    }
}
