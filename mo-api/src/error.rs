//! The error body every non-2xx answer carries, and the stable error codes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The stable error codes of the API, each with its HTTP status ([`ErrorCode::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the request is malformed (bad JSON, bad parameter, bad value).
    BadRequest,
    /// 401: no credentials, or wrong ones.
    Unauthorized,
    /// 403: the policy (or the token's scope) denies it.
    Forbidden,
    /// 403: a state-changing request authenticated by the web console's session cookie came
    /// without the session's `X-CSRF-Token` header.
    Csrf,
    /// 404: no such device, event, user or route.
    NotFound,
    /// 405: the path exists but does not take this method (the `Allow` header lists those it
    /// takes).
    MethodNotAllowed,
    /// 409: it exists already, or is in use.
    Conflict,
    /// 422: the device cannot do this (no power controller, no break support).
    Unsupported,
    /// 426: a WebSocket endpoint was asked without the WebSocket upgrade.
    UpgradeRequired,
    /// 429: too many failed logins from the caller's address (`Retry-After` says when to try
    /// again).
    TooManyRequests,
    /// 500: the daemon failed (store, file system).
    Internal,
    /// 503: the console is down or gone.
    Unavailable,
    /// 504: a device or controller did not answer in time.
    Timeout,
}

crate::api_names!(ErrorCode, "error code", "bad_request, unauthorized, forbidden, csrf, not_found, method_not_allowed, conflict, unsupported, upgrade_required, too_many_requests, internal, unavailable or timeout", {
    ErrorCode::BadRequest => "bad_request",
    ErrorCode::Unauthorized => "unauthorized",
    ErrorCode::Forbidden => "forbidden",
    ErrorCode::Csrf => "csrf",
    ErrorCode::NotFound => "not_found",
    ErrorCode::MethodNotAllowed => "method_not_allowed",
    ErrorCode::Conflict => "conflict",
    ErrorCode::Unsupported => "unsupported",
    ErrorCode::UpgradeRequired => "upgrade_required",
    ErrorCode::TooManyRequests => "too_many_requests",
    ErrorCode::Internal => "internal",
    ErrorCode::Unavailable => "unavailable",
    ErrorCode::Timeout => "timeout",
});

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::Csrf => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::Unsupported => 422,
            ErrorCode::UpgradeRequired => 426,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }
}

/// The body of every error answer: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The code and message of an error answer (also the fields of a WebSocket `error` frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// What was wrong and where, for a human.
    pub message: String,
}

impl ErrorBody {
    /// An error body with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}
