//! Enrollment tokens: `moenroll_SECRET_FINGERPRINT`.
//!
//! `mo agent add NAME` makes a random secret (the store keeps only its hash) and prints it with
//! the SHA-256 fingerprint of the daemon's SSH host key. `mo-agent --enroll TOKEN` checks the
//! daemon's host key against that fingerprint before it sends anything, presents the secret as
//! the SSH password of the agent's name, registers its own public key and pins the host key. The
//! secret works once.

use std::fmt;
#[cfg(feature = "ssh")]
use std::path::Path;

use mo_core::{Error, Result};

/// What every enrollment token starts with.
pub const ENROLL_PREFIX: &str = "moenroll_";

/// An enrollment token as printed by `mo agent add`.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollToken {
    /// The one-time secret (hex).
    pub secret: String,
    /// The daemon's host key fingerprint (`SHA256:…`).
    pub host_key: String,
}

impl fmt::Debug for EnrollToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollToken")
            .field("host_key", &self.host_key)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for EnrollToken {
    /// The token as printed: `moenroll_SECRET_BASE64` (the fingerprint without `SHA256:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fp = self
            .host_key
            .strip_prefix("SHA256:")
            .unwrap_or(&self.host_key);
        write!(f, "{ENROLL_PREFIX}{}_{fp}", self.secret)
    }
}

impl EnrollToken {
    /// Read a printed token. Errors say what is wrong without repeating the secret.
    pub fn parse(text: &str) -> Result<EnrollToken> {
        let bad = |reason: &str| Error::BadSpec {
            what: "enrollment token",
            input: "moenroll_…".into(),
            reason: reason.into(),
        };
        let rest = text
            .trim()
            .strip_prefix(ENROLL_PREFIX)
            .ok_or_else(|| bad("does not start with `moenroll_` (copy it from `mo agent add`)"))?;
        let (secret, fp) = rest
            .split_once('_')
            .ok_or_else(|| bad("no host key fingerprint after the secret"))?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the secret is not 64 hex digits"));
        }
        if fp.len() != 43
            || !fp
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(bad("the host key fingerprint is not 43 base64 characters"));
        }
        Ok(EnrollToken {
            secret: secret.to_owned(),
            host_key: format!("SHA256:{fp}"),
        })
    }
}

/// The `SHA256:…` fingerprint of the public half of the OpenSSH private key in `path` (the
/// daemon's host key file). Needs the `ssh` feature (russh reads the key).
#[cfg(feature = "ssh")]
pub fn host_key_fingerprint(path: &Path) -> Result<String> {
    let key = russh::keys::load_secret_key(path, None).map_err(|e| Error::NotFound {
        what: format!(
            "cannot read the SSH host key {}: {e} (start mod once to create it)",
            path.display()
        ),
    })?;
    Ok(crate::ssh::known_hosts::fingerprint(key.public_key()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_and_errors_hide_the_secret() {
        let token = EnrollToken {
            secret: "ab".repeat(32),
            host_key: format!("SHA256:{}", "A+/b".repeat(10) + "xyz"),
        };
        let text = token.to_string();
        assert!(text.starts_with("moenroll_abab"));
        assert_eq!(EnrollToken::parse(&format!(" {text}\n")).unwrap(), token);
        assert!(!format!("{token:?}").contains("abab"));
        for bad in [
            "mo_x",
            "moenroll_abc",
            &format!("moenroll_{}_short", "ab".repeat(32)),
            &format!("moenroll_{}_{}", "zz".repeat(32), "a".repeat(43)),
        ] {
            let e = EnrollToken::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("bad enrollment token"), "{e}");
            assert!(!e.contains("zzzz"), "{e}");
        }
    }
}
