//! The web console's routes: browser sessions (`POST /api/v1/login`, `POST /api/v1/logout`,
//! `GET /api/v1/me`), notes (`POST /api/v1/devices/{name}/notes`) and the asciicast download
//! (`GET /api/v1/devices/{name}/log/asciicast`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The longest user name a login takes, in characters.
pub const MAX_LOGIN_USER: usize = 32;
/// The longest password a login takes, in characters.
pub const MAX_LOGIN_PASSWORD: usize = 1024;
/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 4096;

/// The body of `POST /api/v1/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The mo user.
    #[schema(min_length = 1, max_length = 32)]
    pub user: String,
    /// The user's password (the same as for SSH).
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

/// A browser session, as `POST /api/v1/login` answers it (the cookie itself is HttpOnly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = WebSession)]
pub struct WebSessionInfo {
    /// The session's user.
    pub user: String,
    /// Send it as the header `X-CSRF-Token` with every state-changing request.
    pub csrf: String,
    /// When the session ends at the latest (`mod --web-session-lifetime`), RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Seconds without a request after which the session ends (`mod --web-idle-timeout`).
    pub idle_timeout_s: u64,
}

/// `GET /api/v1/me`: the caller, its browser session, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The caller's user.
    pub user: String,
    /// The session's CSRF token (null for a caller with a token or password).
    pub csrf: Option<String>,
    /// When the session ends at the latest (null without a session), RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// The session's idle timeout in seconds (null without a session).
    pub idle_timeout_s: Option<u64>,
    /// The actions granted on the built-in group `all` (the policy's names, as `mo role show`
    /// prints them).
    pub global: Vec<String>,
    /// Per device the caller may see, the actions it may take there (`spy`, `attach`, `force`,
    /// `power.control`, `log.note`, …; `admin` lists every one).
    pub devices: BTreeMap<String, Vec<String>>,
}

/// The body of `POST /api/v1/devices/{name}/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// One line of text, without control characters.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub text: String,
}

/// A note written into a device's record log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Note)]
pub struct NoteCreated {
    /// The note's record number in the log.
    pub seq: u64,
    /// When it was written (RFC 3339).
    #[schema(format = DateTime)]
    pub time: String,
}

/// Query of `GET /api/v1/devices/{name}/log/asciicast`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsciicastQuery {
    /// Start time: RFC 3339, `now`, or a duration ago like `1h30m` (times before 1970 mean the
    /// start of the log). A range whose end is not after its start is empty.
    #[param(schema_with = crate::schema::time_spec)]
    pub since: Option<String>,
    /// End time (exclusive), in the same forms as `since`.
    #[param(schema_with = crate::schema::time_spec)]
    pub until: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use utoipa::PartialSchema as _;

    use super::*;

    #[test]
    fn the_note_pattern_is_the_plain_text_one() {
        let schema = serde_json::to_value(NoteRequest::schema()).unwrap();
        assert_eq!(
            schema["properties"]["text"]["pattern"],
            crate::PLAIN_TEXT_PATTERN
        );
        assert_eq!(schema["properties"]["text"]["maxLength"], MAX_NOTE_CHARS);
    }

    #[test]
    fn me_keeps_nulls_on_the_wire() {
        let me = Me {
            user: "alice".into(),
            csrf: None,
            expires_at: None,
            idle_timeout_s: None,
            global: vec!["admin".into()],
            devices: BTreeMap::new(),
        };
        let v = serde_json::to_value(&me).unwrap();
        assert!(v["csrf"].is_null() && v.get("csrf").is_some());
        let login: LoginRequest = serde_json::from_str(r#"{"user":"a","password":"b"}"#).unwrap();
        assert_eq!(login.user, "a");
        assert!(
            serde_json::from_str::<LoginRequest>(r#"{"user":"a","password":"b","x":1}"#).is_err()
        );
    }
}
