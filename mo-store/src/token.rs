//! API tokens: `mo_<id>_<secret>`, shown once, stored hashed, with expiry, scope and revocation.
//!
//! The secret is 32 random bytes (64 hex digits); the id is 8 random bytes (16 hex digits) and
//! names the token in listings and revocation. The store keeps only SHA-256 of the secret. A
//! slow password hash (argon2) is not needed and would cost tens of milliseconds per API
//! request: it exists to slow down guessing of *low-entropy* passwords, while a 256-bit random
//! secret cannot be guessed, so a fast hash keeps a stolen database from revealing usable tokens
//! just as well. Hashes are compared in constant time.
//!
//! A token's scope limits what it may do *on top of* the policy: the daemon allows an action
//! through a token only if the policy allows it to the token's user and the scope holds it.

use std::fmt::Write as _;

use mo_core::policy::PermissionSet;
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::device::now_ns;
use crate::error::{Error, Result};
use crate::store::Store;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "mo_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// What a token may do: every action its user may, or only some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything the user may do (`all`).
    All,
    /// Only these actions (and only where the user may take them).
    Actions(PermissionSet),
}

impl TokenScope {
    /// Whether the scope lets the token take `action` (the policy must allow it too).
    pub fn permits(self, action: mo_core::policy::Permission) -> bool {
        match self {
            TokenScope::All => true,
            TokenScope::Actions(set) => set.allows(action),
        }
    }

    /// Parses `all` or a comma-separated action list (`list,spy,log.read`).
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        if trimmed == "all" {
            return Ok(TokenScope::All);
        }
        let set: PermissionSet = trimmed
            .parse()
            .map_err(|e: mo_core::Error| Error::BadValue {
                what: "token scope".into(),
                value: text.to_string(),
                reason: e.to_string(),
            })?;
        if set.is_empty() {
            return Err(Error::BadValue {
                what: "token scope".into(),
                value: text.to_string(),
                reason: "empty; give `all` or a list of actions".into(),
            });
        }
        Ok(TokenScope::Actions(set))
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenScope::All => f.write_str("all"),
            TokenScope::Actions(set) => write!(f, "{set}"),
        }
    }
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's id (the part after `mo_`).
    pub id: String,
    /// The user it acts as.
    pub user: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was made, ns since the Unix epoch.
    pub created_ns: i64,
    /// When it stops working, if ever.
    pub expires_ns: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_ns: Option<i64>,
    /// When it was last accepted, if ever.
    pub last_used_ns: Option<i64>,
}

/// A newly made token: the full text is shown to the user once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The token as listed.
    pub info: TokenInfo,
    /// `mo_<id>_<secret>`: what the client presents.
    pub token: mo_core::secret::Secret,
}

/// An accepted token: who it acts as and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The token's id.
    pub id: String,
    /// The user it acts as.
    pub user: String,
    /// What it may do.
    pub scope: TokenScope,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `mo_<id>_<secret>` (blanks around it ignored) into id and secret; `None` unless both
/// parts are lowercase hex of the right length. Public for the fuzz target only.
#[doc(hidden)]
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (is_hex(id, ID_BYTES * 2) && is_hex(secret, SECRET_BYTES * 2)).then_some((id, secret))
}

/// user, secret hash, scope, expiry, revocation.
type StoredToken = (String, String, String, Option<i64>, Option<i64>);
type TokenRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

impl Store {
    /// Make an API token for `user`. The returned [`NewToken::token`] is the only copy of the
    /// secret. `expires_ns` is an absolute time (ns since the Unix epoch), `None` for never.
    pub fn add_token(
        &self,
        user: &str,
        scope: TokenScope,
        expires_ns: Option<i64>,
    ) -> Result<NewToken> {
        self.user(user)?;
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        let (id, secret) = (hex(&id), hex(&secret));
        let created_ns = now_ns();
        self.read(&format!("add an API token for user `{user}`"), |c| {
            c.execute(
                "INSERT INTO api_tokens (id, user, secret_hash, scope, created_ns, expires_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    user,
                    hash_secret(&secret),
                    scope.to_string(),
                    created_ns,
                    expires_ns
                ],
            )
        })?;
        Ok(NewToken {
            token: mo_core::secret::Secret::new(format!("{TOKEN_PREFIX}{id}_{secret}")),
            info: TokenInfo {
                id,
                user: user.to_string(),
                scope,
                created_ns,
                expires_ns,
                revoked_ns: None,
                last_used_ns: None,
            },
        })
    }

    /// Check a presented token. Malformed, unknown and wrong tokens are refused with the same
    /// reason; expired and revoked ones say so. An accepted token's last use is recorded.
    pub fn verify_token(&self, token: &str) -> Result<VerifiedToken> {
        let refused = |reason: &str| Error::TokenRefused {
            reason: reason.to_string(),
        };
        let Some((id, secret)) = split_token(token) else {
            return Err(refused("unknown or wrong token"));
        };
        let row: Option<StoredToken> = self.read("look up an API token", |c| {
            c.query_row(
                "SELECT user, secret_hash, scope, expires_ns, revoked_ns FROM api_tokens \
                     WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
        })?;
        let presented = hash_secret(secret);
        let Some((user, hash, scope, expires, revoked)) = row else {
            // Same work as for a known id.
            let _ = constant_time_eq(presented.as_bytes(), presented.as_bytes());
            return Err(refused("unknown or wrong token"));
        };
        if !constant_time_eq(presented.as_bytes(), hash.as_bytes()) {
            return Err(refused("unknown or wrong token"));
        }
        if revoked.is_some() {
            return Err(refused(&format!("token {id} was revoked")));
        }
        let now = now_ns();
        if expires.is_some_and(|t| t <= now) {
            return Err(refused(&format!("token {id} has expired")));
        }
        let scope = TokenScope::parse(&scope)
            .map_err(|e| self.corrupt(format!("scope of API token {id}"), e.to_string()))?;
        self.read("record the use of an API token", |c| {
            c.execute(
                "UPDATE api_tokens SET last_used_ns = ?2 WHERE id = ?1",
                params![id, now],
            )
        })?;
        Ok(VerifiedToken {
            id: id.to_string(),
            user,
            scope,
        })
    }

    /// Revoke a token by id (the part after `mo_`, or the whole token). Revoking twice is an
    /// error naming the token.
    pub fn revoke_token(&self, id: &str) -> Result<()> {
        let id = split_token(id).map_or(id, |(id, _)| id);
        let changed = self.read(&format!("revoke API token {id}"), |c| {
            c.execute(
                "UPDATE api_tokens SET revoked_ns = ?2 WHERE id = ?1 AND revoked_ns IS NULL",
                params![id, now_ns()],
            )
        })?;
        if changed == 0 {
            return Err(Error::UnknownName {
                what: "active API token",
                name: id.to_string(),
            });
        }
        Ok(())
    }

    /// Every token (of `user`, if given), oldest first, revoked and expired ones included.
    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows: Vec<TokenRow> = self.read("list API tokens", |c| {
            let mut stmt = c.prepare(
                "SELECT id, user, scope, created_ns, expires_ns, revoked_ns, last_used_ns \
                 FROM api_tokens WHERE ?1 IS NULL OR user = ?1 ORDER BY created_ns, id",
            )?;
            let rows = stmt.query_map([user], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(
                |(id, user, scope, created_ns, expires_ns, revoked_ns, last_used_ns)| {
                    let scope = TokenScope::parse(&scope).map_err(|e| {
                        self.corrupt(format!("scope of API token {id}"), e.to_string())
                    })?;
                    Ok(TokenInfo {
                        id,
                        user,
                        scope,
                        created_ns,
                        expires_ns,
                        revoked_ns,
                        last_used_ns,
                    })
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn split_accepts_only_well_formed_tokens() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(32);
        let good = format!("mo_{id}_{secret}");
        assert_eq!(split_token(&good), Some((id, secret.as_str())));
        for bad in [
            "",
            "mo_",
            "mo__",
            &format!("xx_{id}_{secret}"),
            &format!("mo_{id}{secret}"),
            &format!("mo_{}_{secret}", &id[1..]),
            &format!("mo_{id}_{}", secret.to_uppercase()),
            &format!("mo_{id}_{secret}0"),
        ] {
            assert_eq!(split_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn split_never_panics_on_random_input() {
        let alphabet = "mo_0123456789abcdefxyz\u{e9}".as_bytes();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..20_000 {
            let len = rng.random_range(0..140);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = split_token(&text);
            let _ = TokenScope::parse(&text);
        }
    }

    #[test]
    fn scope_text_round_trips() {
        assert_eq!(TokenScope::parse("all").unwrap(), TokenScope::All);
        let s = TokenScope::parse("spy, list").unwrap();
        assert_eq!(s.to_string(), "list,spy");
        assert!(s.permits(mo_core::policy::Permission::Spy));
        assert!(!s.permits(mo_core::policy::Permission::Attach));
        assert!(TokenScope::parse("").is_err());
        assert!(TokenScope::parse("spy,fly").is_err());
    }
}
