//! API tokens: `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}` (`mo login`, `mo token`
//! with `--server`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// The user the token acts as (default: the caller; another user needs `admin` on `all`).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z_][a-z0-9_.-]{0,31}$")]
    pub user: Option<String>,
    /// `all` (the default) or the actions it may take, comma-separated (`list,spy,log.read`);
    /// the user's grants still apply.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^(all|(list|spy|attach|force|join|break|log\\.read|log\\.read_input|log\\.note|power\\.status|power\\.control|macro\\.run|gang|events\\.ack|events\\.raise|admin)(,(list|spy|attach|force|join|break|log\\.read|log\\.read_input|log\\.note|power\\.status|power\\.control|macro\\.run|gang|events\\.ack|events\\.raise|admin))*)$"
    )]
    pub scope: Option<String>,
    /// When it expires: a duration from now, 1 to 99999 seconds, minutes, hours, days or
    /// weeks (`30d`, `12h`, `1w`); left out: never.
    #[serde(default)]
    #[schema(min_length = 2, max_length = 6, pattern = "^[1-9][0-9]{0,4}[smhdw]$")]
    pub expires: Option<String>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    /// Its id (the 16 hex digits after `mo_`).
    pub id: String,
    /// The user it acts as.
    pub user: String,
    /// `all`, or the actions it may take.
    pub scope: String,
    /// When it expires (RFC 3339), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires_at: Option<String>,
    /// When it was last accepted (RFC 3339), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_used_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
}

/// A new token: `token` is its full text, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiToken {
    /// The token as listed.
    pub info: ApiToken,
    /// The token itself (`mo_<id>_<secret>`), for `Authorization: Bearer`.
    pub token: String,
}

/// The actions a token's scope may name (`scope` is `all` or a comma-separated list of them).
pub const TOKEN_ACTIONS: &[&str] = &[
    "list",
    "spy",
    "attach",
    "force",
    "join",
    "break",
    "log.read",
    "log.read_input",
    "log.note",
    "power.status",
    "power.control",
    "macro.run",
    "gang",
    "events.ack",
    "events.raise",
    "host.show",
    "admin",
];

/// Whether `scope` is what the schema allows: `all`, or actions of [`TOKEN_ACTIONS`] joined by
/// commas.
pub fn valid_scope(scope: &str) -> bool {
    scope == "all" || scope.split(',').all(|a| TOKEN_ACTIONS.contains(&a))
}

/// Whether `expires` is what the schema allows: 1 to 5 digits (no leading zero) and a unit of
/// `s`, `m`, `h`, `d` or `w`.
pub fn valid_expiry(expires: &str) -> bool {
    let Some((digits, unit)) = expires.split_at_checked(expires.len().saturating_sub(1)) else {
        return false;
    };
    (1..=5).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "s" | "m" | "h" | "d" | "w")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_expiries_as_the_schema_says() {
        assert!(valid_scope("all"));
        assert!(valid_scope("list,spy,log.read"));
        assert!(!valid_scope(",gffi,ht"));
        assert!(!valid_scope("list, spy"));
        assert!(!valid_scope("all,list"));
        assert!(valid_expiry("30d"));
        assert!(valid_expiry("99999w"));
        assert!(!valid_expiry("0d"));
        assert!(!valid_expiry("100000s"));
        assert!(!valid_expiry("d"));
        assert!(!valid_expiry("2027-01-01"));
        assert!(!valid_expiry("é"));
    }
}

/// The path parameter of `DELETE /api/v1/tokens/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's id.
    #[param(min_length = 1, max_length = 64)]
    pub id: String,
}
