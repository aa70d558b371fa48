//! The HTTP API's credentials: the `Authorization` header (`Bearer TOKEN` or `Basic` base64 of
//! `user:password`) and the `?token=` query parameter of WebSocket upgrades.

use super::BadInput;
use base64::Engine as _;

/// Credentials a client presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer TOKEN` or `?token=TOKEN`.
    Token(String),
    /// HTTP Basic: a user and a password.
    Basic {
        /// The user name (before the first `:`).
        user: String,
        /// The password (everything after it).
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    /// Secrets stay out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
        }
    }
}

/// Read an `Authorization` header's value. The scheme is matched without regard to case and
/// blanks around the parts are ignored. The error is the message for the client (it never
/// repeats the credentials).
pub fn parse_authorization(value: &str) -> Result<Credentials, BadInput> {
    parse_header(value).map_err(|reason| BadInput {
        what: "the Authorization header",
        reason,
    })
}

fn parse_header(value: &str) -> Result<Credentials, String> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Token(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| "the Basic credentials are not base64 of user:password".to_string())?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            "the Basic credentials lack the `:` between user and password".to_string()
        })?;
        return Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    Err(format!(
        "unsupported Authorization scheme `{scheme}` (use Bearer TOKEN or Basic)"
    ))
}

/// The value of the first `token=` parameter of a URL query (`a=1&token=T`), as written.
pub fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(
            parse_authorization("Bearer mo_1_2"),
            Ok(Credentials::Token("mo_1_2".into()))
        );
        assert_eq!(
            parse_authorization("  basic   YWxpY2U6cHc6eA== "),
            Ok(Credentials::Basic {
                user: "alice".into(),
                password: "pw:x".into()
            })
        );
        assert!(parse_authorization("Basic !!").is_err_and(|e| e.reason.contains("not base64")));
        assert!(
            parse_authorization("Basic YWxpY2U=").is_err_and(|e| e.reason.contains("lack the `:`"))
        );
        assert!(parse_authorization("Digest x").is_err_and(|e| e.reason.contains("`Digest`")));
        assert_eq!(query_token("a=1&token=T&token=U").as_deref(), Some("T"));
        assert_eq!(query_token("tokens=1"), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let c = parse_authorization("Basic YWxpY2U6cHc6eA==");
        assert!(!format!("{c:?}").contains("pw"));
    }
}
