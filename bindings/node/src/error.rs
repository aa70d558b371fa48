//! mo errors as napi errors carrying a stable code that `index.js` maps to an error class.

use mo_core::Error;

/// The code `index.js` maps to a class: `connect`, `auth`, `timeout`, `not_found`,
/// `permission_denied`, `protocol`, else a plain `MoError` (`bad_request`, `conflict`,
/// `unsupported`, `closed`, `io`, `error`).
pub(crate) fn code(e: &Error) -> &'static str {
    match e {
        Error::Connect { .. } | Error::ConsoleDown { .. } => "connect",
        Error::Auth { .. } | Error::HostKey { .. } => "auth",
        Error::Timeout { .. } => "timeout",
        Error::Denied { .. } => "permission_denied",
        Error::NotFound { .. } => "not_found",
        Error::Conflict { .. } => "conflict",
        Error::Protocol { .. } | Error::LogCorrupt { .. } => "protocol",
        Error::BadAddress { .. } | Error::BadSpec { .. } => "bad_request",
        Error::Unsupported { .. } => "unsupported",
        Error::ConsoleGone { .. } => "closed",
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "not_found",
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "permission_denied"
        }
        Error::Io { .. } => "io",
        _ => "error",
    }
}

/// A napi error for `code` and `message`: `[mo:CODE] MESSAGE`.
pub(crate) fn coded(code: &str, message: impl std::fmt::Display) -> napi::Error {
    napi::Error::from_reason(format!("[mo:{code}] {message}"))
}

/// A napi error for a mo error.
pub(crate) fn to_napi(e: Error) -> napi::Error {
    coded(code(&e), e)
}

/// A napi error for an argument the caller got wrong.
pub(crate) fn bad_request(message: impl std::fmt::Display) -> napi::Error {
    coded("bad_request", message)
}
