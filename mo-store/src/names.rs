//! The naming rules for devices and users.
//!
//! Device names become directory names under `logs/` and appear in `ssh user:device@host`, so they
//! are restricted to `[A-Za-z0-9._-]`, 1 to 64 characters, not starting with `.` or `-`.
//! User names follow the usual Unix rule `[a-z_][a-z0-9_.-]{0,31}`; in particular they contain no
//! `:`, which separates user and device in `ssh alice:web01@host`.

use crate::error::{Error, Result};

/// The longest allowed device name.
pub const MAX_DEVICE_NAME: usize = 64;
/// The longest allowed user name.
pub const MAX_USER_NAME: usize = 32;

/// Check a device name against the rules in the module docs.
///
/// ```
/// assert!(mo_store::validate_device_name("web01.rack-3_a").is_ok());
/// assert!(mo_store::validate_device_name("../etc").is_err());
/// ```
pub fn validate_device_name(name: &str) -> Result<()> {
    let bad = |reason: String| Error::BadName {
        what: "device",
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("is empty".into()));
    }
    if name.len() > MAX_DEVICE_NAME {
        return Err(bad(format!(
            "is {} characters long; at most {MAX_DEVICE_NAME} are allowed",
            name.chars().count()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(bad(format!(
            "contains {}; only letters, digits, `.`, `_` and `-` are allowed",
            describe(c)
        )));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(bad("must not start with `.` or `-`".into()));
    }
    Ok(())
}

/// Check a user name against the rules in the module docs.
///
/// ```
/// assert!(mo_store::validate_user_name("alice").is_ok());
/// assert!(mo_store::validate_user_name("alice:web01").is_err());
/// ```
pub fn validate_user_name(name: &str) -> Result<()> {
    let bad = |reason: String| Error::BadName {
        what: "user",
        name: name.to_string(),
        reason,
    };
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(bad("is empty".into()));
    };
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err(bad(format!(
            "starts with {}; it must start with a lower-case letter or `_`",
            describe(first)
        )));
    }
    if let Some(c) = chars
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
    {
        return Err(bad(format!(
            "contains {}; only lower-case letters, digits, `_`, `.` and `-` are allowed",
            describe(c)
        )));
    }
    if name.len() > MAX_USER_NAME {
        return Err(bad(format!(
            "is {} characters long; at most {MAX_USER_NAME} are allowed",
            name.len()
        )));
    }
    Ok(())
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("the character {:?}", c)
    } else {
        format!("`{c}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        for good in ["a", "web01", "A.b_c-d", "0", &"x".repeat(64)] {
            assert!(validate_device_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            (".hidden", "start"),
            ("-x", "start"),
            ("a/b", "`/`"),
            ("a b", "' '"),
            ("..", "start"),
            ("é", "`é`"),
            (&"x".repeat(65), "65 characters"),
        ] {
            let err = validate_device_name(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.starts_with("bad device name"), "{err}");
        }
    }

    #[test]
    fn user_names() {
        for good in ["alice", "_svc", "a.b-c_1", &"a".repeat(32)] {
            assert!(validate_user_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Alice", "starts with `A`"),
            ("1abc", "starts with `1`"),
            ("al:ice", "`:`"),
            ("al ice", "' '"),
            (&"a".repeat(33), "33 characters"),
        ] {
            let err = validate_user_name(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
