//! `${secret:NAME}` in an `exec:` address: a device secret put into an argument or an
//! environment value only when the program starts.
//!
//! The address keeps the reference, so listings, the API, audit details and daemon logs show
//! `${secret:password}`, never the password. NAME is one of [`NAMES`] (the fields of
//! [`Credentials`]); an unknown name is an error when the address is read, a secret the device
//! does not have is an error when the program would start.
//!
//! ```
//! use mo_drivers::exec::{references, substitute};
//! use mo_drivers::Credentials;
//!
//! let creds = Credentials::new().with_password("s3cret");
//! assert_eq!(references("-P${secret:password}").unwrap(), ["password"]);
//! assert_eq!(substitute("-P${secret:password}", &creds).unwrap().expose(), "-Ps3cret");
//! ```

use mo_core::secret::Secret;

use crate::Credentials;

/// The secret names a reference may use.
pub const NAMES: &[&str] = &[
    "password",
    "private_key",
    "key_passphrase",
    "bmc_key",
    "snmp_auth",
    "snmp_privacy",
];

const OPEN: &str = "${secret:";

fn lookup<'a>(creds: &'a Credentials, name: &str) -> Option<&'a Secret> {
    match name {
        "password" => creds.password.as_ref(),
        "private_key" => creds.private_key.as_ref(),
        "key_passphrase" => creds.key_passphrase.as_ref(),
        "bmc_key" => creds.bmc_key.as_ref(),
        "snmp_auth" => creds.snmp_auth.as_ref(),
        "snmp_privacy" => creds.snmp_privacy.as_ref(),
        _ => None,
    }
}

/// What is wrong with a `${secret:NAME}` reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretRefError {
    /// `${secret:` without its closing `}`.
    #[error("`${{secret:` without its closing `}}`")]
    Unclosed,
    /// NAME is not one of [`NAMES`].
    #[error("unknown secret `{name}` in `${{secret:{name}}}` (one of: {})", NAMES.join(", "))]
    Unknown {
        /// The name as written.
        name: String,
    },
    /// The device has no secret of that name.
    #[error(
        "the address refers to `${{secret:{name}}}` but the device has no secret `{name}` \
         (set it with `mo secret set`)"
    )]
    Missing {
        /// The secret's name.
        name: String,
    },
}

/// The secret names `text` refers to, in order; an error names a malformed or unknown reference.
pub fn references(text: &str) -> Result<Vec<&str>, SecretRefError> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or(SecretRefError::Unclosed)?;
        let name = &after[..end];
        if !NAMES.contains(&name) {
            return Err(SecretRefError::Unknown {
                name: name.to_owned(),
            });
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// `text` with every reference replaced by the device's secret (kept a [`Secret`], so it is
/// never printed by accident). Fails naming the secret the device lacks, never its value.
pub fn substitute(text: &str, creds: &Credentials) -> Result<Secret, SecretRefError> {
    if !text.contains(OPEN) {
        return Ok(Secret::from(text));
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or(SecretRefError::Unclosed)?;
        let name = &after[..end];
        let secret = lookup(creds, name).ok_or_else(|| SecretRefError::Missing {
            name: name.to_owned(),
        })?;
        out.push_str(secret.expose());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Secret::from(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked_and_replaced() {
        let creds = Credentials::new().with_password("pw");
        assert_eq!(references("plain").unwrap(), Vec::<&str>::new());
        assert!(
            references("${secret:pasword}")
                .unwrap_err()
                .to_string()
                .contains("unknown secret")
        );
        assert!(
            references("${secret:password")
                .unwrap_err()
                .to_string()
                .contains("closing")
        );
        let s = substitute("a${secret:password}b${secret:password}", &creds).unwrap();
        assert_eq!(s.expose(), "apwbpw");
        let e = substitute("${secret:bmc_key}", &creds)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no secret `bmc_key`"), "{e}");
        assert!(!format!("{s:?}").contains("pw"));
    }
}
