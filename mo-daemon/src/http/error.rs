//! The API's error type: every non-2xx answer is `{"error":{"code","message"}}` with one of the
//! stable codes, and client mistakes never come back as 500.

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// The stable error codes of the API ([`mo_api::ErrorCode`]), each with its HTTP status.
pub use mo_api::ErrorCode as Code;

/// The HTTP status of an error code.
pub fn status_of(code: Code) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An API error: a code and a message naming what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code.
    pub code: Code,
    /// The human text.
    pub message: String,
    /// Extra response headers (`Retry-After`, a Basic challenge), usually none.
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The same error with one more response header (it replaces one of the same name).
    pub fn with_header(
        mut self,
        name: axum::http::HeaderName,
        value: axum::http::HeaderValue,
    ) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    /// 500, logged.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!("HTTP API: {message}");
        Self::new(Code::Internal, message)
    }

    /// `unknown device `NAME`` (also for devices the caller may not see).
    pub fn unknown_device(name: &str) -> Self {
        Self::not_found(format!("unknown device `{name}`"))
    }

    /// The JSON body.
    pub fn body(&self) -> mo_api::ErrorBody {
        mo_api::ErrorBody::new(self.code, self.message.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (status_of(self.code), axum::Json(self.body())).into_response();
        if self.code == Code::Unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                // Basic is offered only to callers that sent Basic (auth::challenge_basic): a
                // browser that did not ask for it gets no password dialog.
                axum::http::HeaderValue::from_static("Bearer realm=\"mo\""),
            );
        }
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        if self.code == Code::UpgradeRequired {
            let headers = response.headers_mut();
            headers.insert(
                axum::http::header::UPGRADE,
                axum::http::HeaderValue::from_static("websocket"),
            );
            headers.insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("Upgrade"),
            );
        }
        response
    }
}

impl From<mo_store::Error> for ApiError {
    fn from(e: mo_store::Error) -> Self {
        use mo_store::Error as E;
        let code = match &e {
            E::BadName { .. }
            | E::BadUrl { .. }
            | E::BadSetting { .. }
            | E::BadPassword { .. }
            | E::BadSshKey { .. }
            | E::BadValue { .. } => Code::BadRequest,
            E::DeviceExists(_)
            | E::UserExists(_)
            | E::NameExists { .. }
            | E::DuplicateSshKey { .. }
            | E::InUse { .. } => Code::Conflict,
            E::UnknownDevice(_) | E::UnknownUser(_) | E::UnknownName { .. } => Code::NotFound,
            E::TokenRefused { .. } => Code::Unauthorized,
            _ => return ApiError::internal(e.to_string()),
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<mo_core::Error> for ApiError {
    fn from(e: mo_core::Error) -> Self {
        use mo_core::Error as E;
        let code = match &e {
            E::BadSpec { .. } | E::BadAddress { .. } => Code::BadRequest,
            E::Unsupported { .. } => Code::Unsupported,
            E::ConsoleGone { .. }
            | E::ConsoleDown { .. }
            | E::Connect { .. }
            | E::LogUnavailable { .. } => Code::Unavailable,
            E::Denied { .. } => Code::Forbidden,
            E::NotFound { .. } => Code::NotFound,
            E::Conflict { .. } => Code::Conflict,
            E::Timeout { .. } => Code::Timeout,
            _ => return ApiError::internal(e.to_string()),
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<crate::viewer::ViewError> for ApiError {
    fn from(e: crate::viewer::ViewError) -> Self {
        match e {
            crate::viewer::ViewError::Console(e) => e.into(),
            // The owner's refusals and silence arrive as text.
            crate::viewer::ViewError::Remote(text) => ApiError::new(Code::Unavailable, text),
        }
    }
}

/// The answer for a path no route serves.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such API route: {method} {} (see /api/v1/openapi.json)",
        uri.path()
    ))
}

/// The answer for a known path asked with a method it does not take: 405 with an `Allow` header
/// naming the methods the path takes (those of [`super::ROUTES`]).
pub async fn bad_method(method: Method, uri: Uri) -> Response {
    let allowed = allowed_methods(uri.path());
    let error = ApiError::new(
        Code::MethodNotAllowed,
        format!(
            "method {method} is not allowed on {} (allowed: {}; see /api/v1/openapi.json)",
            uri.path(),
            allowed.join(", ")
        ),
    );
    let mut response = error.into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
        response
            .headers_mut()
            .insert(axum::http::header::ALLOW, value);
    }
    response
}

/// The methods [`super::ROUTES`] serves on a concrete `path` (`{param}` segments match any one
/// segment), in the order the routes are listed.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out: Vec<&'static str> = Vec::new();
    for route in super::ROUTES {
        let template: Vec<&str> = route.path.split('/').collect();
        let matches = template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s);
        if matches && !out.contains(&route.method) {
            out.push(route.method);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn allowed_methods_follow_the_routes() {
        assert_eq!(allowed_methods("/api/v1/devices"), ["GET", "POST"]);
        assert_eq!(
            allowed_methods("/api/v1/devices/web-1"),
            ["GET", "PUT", "DELETE"]
        );
        assert_eq!(allowed_methods("/api/v1/events/7/ack"), ["POST"]);
        assert_eq!(allowed_methods("/api/v1/events/stream"), ["GET"]);
        assert!(allowed_methods("/api/v1/nothing").is_empty());
    }
}
