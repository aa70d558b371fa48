//! Who is calling: `Authorization: Bearer TOKEN` (an API token of `mo token add`), or HTTP Basic
//! with a user's password (argon2, for curl). WebSocket clients may pass `?token=TOKEN` instead,
//! since browsers cannot set headers on a WebSocket. Refusals are audited as failed logins.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use mo_core::door::auth::Credentials;
use mo_core::policy::Action;
use mo_store::{Outcome, TokenScope};

use super::AppState;
use super::error::{ApiError, Code};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The mo user.
    pub user: String,
    /// Where the call came from, for the audit log and `who`: `http 127.0.0.1:5000 token ID`.
    pub origin: String,
    /// The token's scope (`None` for a password login: everything the user may).
    pub scope: Option<TokenScope>,
}

impl Caller {
    /// Whether the token's scope lets the caller take `action` (the policy decides separately).
    pub fn scope_permits(&self, action: Action) -> bool {
        self.scope.is_none_or(|s| s.permits(action))
    }

    /// Decide and audit `action` on `device`: the token's scope first, then the policy (the same
    /// check as the SSH front door). A denial is a 403 naming why.
    pub async fn check(
        &self,
        state: &AppState,
        action: Action,
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
    pub async fn check_global(&self, state: &AppState, action: Action) -> Result<(), ApiError> {
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
    pub fn is_global(&self, state: &AppState, action: Action) -> bool {
        self.scope_permits(action) && state.ctx.access.allows_global(&self.user, action)
    }

    /// Whether the caller may see `device` (`list`), without auditing: devices the caller may
    /// not see answer 404 like unknown ones.
    pub fn sees(&self, state: &AppState, device: &str) -> bool {
        self.scope_permits(Action::List)
            && state.ctx.access.allows(&self.user, Action::List, device)
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
        return match mo_core::door::auth::parse_authorization(value).map_err(unauthorized)? {
            Credentials::Token(token) => Ok(Some(Presented::Token(token))),
            Credentials::Basic { user, password } => Ok(Some(Presented::Basic(user, password))),
        };
    }
    let token = parts.uri.query().and_then(mo_core::door::auth::query_token);
    Ok(token.map(Presented::Token))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_else(|| "?".into());
        let Some(presented) = presented(parts)? else {
            return Err(unauthorized(
                "no credentials: send `Authorization: Bearer TOKEN` (make one with `mo token add USER`) or HTTP Basic user:password",
            ));
        };
        let store = state.ctx.store.clone();
        match presented {
            Presented::Token(token) => {
                let checked = tokio::task::spawn_blocking(move || store.verify_token(&token))
                    .await
                    .map_err(|e| ApiError::internal(format!("token check failed: {e}")))?;
                match checked {
                    Ok(verified) => Ok(Caller {
                        origin: format!("http {peer} token {}", verified.id),
                        user: verified.user,
                        scope: Some(verified.scope),
                    }),
                    Err(mo_store::Error::TokenRefused { reason }) => {
                        state.ctx.access.record(
                            "unknown",
                            &format!("http {peer}"),
                            "login",
                            None,
                            Outcome::Denied,
                            format!("API token refused: {reason}"),
                        );
                        Err(unauthorized(format!("API token refused: {reason}")))
                    }
                    Err(e) => Err(ApiError::from(e)),
                }
            }
            Presented::Basic(user, password) => {
                let name = user.clone();
                let ok =
                    tokio::task::spawn_blocking(move || store.verify_password(&name, &password))
                        .await
                        .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?
                        .unwrap_or(false);
                let origin = format!("http {peer}");
                if ok {
                    Ok(Caller {
                        user,
                        origin,
                        scope: None,
                    })
                } else {
                    state.ctx.access.record(
                        &user,
                        &origin,
                        "login",
                        None,
                        Outcome::Denied,
                        "HTTP Basic: wrong password or unknown user",
                    );
                    Err(unauthorized(format!(
                        "HTTP Basic login of `{user}` refused: wrong password or unknown user"
                    )))
                }
            }
        }
    }
}
