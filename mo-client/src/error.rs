//! API errors as [`mo_core::Error`] variants, so bindings map one error type to exception classes.
//!
//! | API code       | status | [`Error`] variant            |
//! |----------------|--------|------------------------------|
//! | `bad_request`  | 400    | [`Error::BadSpec`] (`what` = "request") |
//! | `unauthorized` | 401    | [`Error::Auth`]              |
//! | `forbidden`    | 403    | [`Error::Denied`]            |
//! | `not_found`    | 404    | [`Error::NotFound`]          |
//! | `conflict`     | 409    | [`Error::Conflict`]          |
//! | `unsupported`  | 422    | [`Error::Unsupported`]       |
//! | `timeout`      | 504    | [`Error::Timeout`]           |
//! | `unavailable`  | 503    | [`Error::ConsoleDown`]       |
//! | `internal`, anything else | | [`Error::Protocol`]       |

use std::time::Duration;

use mo_core::Error;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Debug, Deserialize)]
struct Body {
    code: String,
    #[serde(default)]
    message: String,
}

/// The error an API answer stands for. `server` is the base URL, `what` the request
/// (`GET /api/v1/devices/web01`), `device` the device the request was about (if any), `body` the
/// answer's body, `waited` how long the client waited. Not a stable API (public for the fuzz
/// targets).
#[doc(hidden)]
pub fn from_answer(
    server: &str,
    what: &str,
    device: Option<&str>,
    status: u16,
    body: &str,
    waited: Duration,
) -> Error {
    let (code, message) = match serde_json::from_str::<Envelope>(body) {
        Ok(e) => (e.error.code, e.error.message),
        Err(_) => {
            let text = body.trim();
            let text = if text.is_empty() {
                format!("HTTP status {status}")
            } else {
                format!("HTTP status {status}: {}", first_chars(text, 200))
            };
            (fallback_code(status).to_string(), text)
        }
    };
    from_code(server, what, device, &code, message, waited)
}

/// The error for an API error `code` with its `message` (also used for WebSocket error frames).
/// Not a stable API (public for the fuzz targets).
#[doc(hidden)]
pub fn from_code(
    server: &str,
    what: &str,
    device: Option<&str>,
    code: &str,
    message: String,
    waited: Duration,
) -> Error {
    match code {
        "bad_request" => Error::BadSpec {
            what: "request",
            input: what.to_string(),
            reason: message,
        },
        "unauthorized" => Error::Auth {
            target: server.to_string(),
            reason: message,
        },
        "forbidden" => Error::Denied { reason: message },
        "not_found" => Error::NotFound { what: message },
        "conflict" => Error::Conflict { what: message },
        "unsupported" => Error::Unsupported {
            operation: "this request",
            what: format!("{} ({message})", device.unwrap_or(server)),
        },
        "timeout" => Error::Timeout {
            what: format!("{what} on {server}: {message}"),
            after: waited,
        },
        "unavailable" => Error::ConsoleDown {
            device: device.unwrap_or(server).to_string(),
            reason: message,
        },
        _ => Error::Protocol {
            peer: server.to_string(),
            reason: format!("{what}: {code}: {message}"),
        },
    }
}

fn fallback_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        422 => "unsupported",
        503 => "unavailable",
        504 => "timeout",
        _ => "internal",
    }
}

/// A transport failure (connection refused, TLS, reading the body) as [`Error::Connect`], or
/// [`Error::Timeout`] if the request timed out.
pub(crate) fn transport(server: &str, what: &str, e: &reqwest::Error, waited: Duration) -> Error {
    if e.is_timeout() {
        return Error::Timeout {
            what: format!("{what} on {server}"),
            after: waited,
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    Error::Connect {
        address: server.to_string(),
        reason: format!("{what}: {reason}"),
    }
}

fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants() {
        let w = Duration::from_secs(1);
        let e = from_answer(
            "http://h",
            "GET /api/v1/devices/x",
            Some("x"),
            404,
            r#"{"error":{"code":"not_found","message":"unknown device `x`"}}"#,
            w,
        );
        assert!(
            matches!(e, Error::NotFound { what: ref m } if m == "unknown device `x`"),
            "{e:?}"
        );
        let e = from_answer("http://h", "GET /", None, 401, "", w);
        assert!(matches!(e, Error::Auth { .. }), "{e:?}");
        assert!(e.to_string().contains("HTTP status 401"), "{e}");
        let e = from_code("http://h", "p", Some("d"), "forbidden", "no".into(), w);
        assert!(matches!(e, Error::Denied { .. }));
        let e = from_code("http://h", "p", Some("d"), "unavailable", "down".into(), w);
        assert!(matches!(e, Error::ConsoleDown { ref device, .. } if device == "d"));
        let e = from_answer("http://h", "p", None, 502, "<html>bad gateway</html>", w);
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        assert!(e.to_string().contains("bad gateway"), "{e}");
    }
}
