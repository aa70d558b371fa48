//! Users: argon2id password hashes and SSH public keys.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};

use crate::device::now_ns;
use crate::error::{Error, Result};
use crate::names::validate_user_name;
use crate::sshkey::SshPublicKey;
use crate::store::{Store, is_unique_violation};

/// A user as listed: name and what credentials they have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    /// How many SSH public keys the user has.
    pub ssh_keys: usize,
}

const USER_SELECT: &str = "SELECT u.name, u.password_hash IS NOT NULL, \
     (SELECT COUNT(*) FROM ssh_keys k WHERE k.user = u.name) FROM users u";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserInfo> {
    Ok(UserInfo {
        name: r.get(0)?,
        has_password: r.get(1)?,
        ssh_keys: usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
    })
}

/// Hash a password with argon2id (default parameters) and a random 16-byte salt, as a PHC string.
fn hash_password(user: &str, password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::BadPassword {
            user: user.to_string(),
            reason: "the password is empty".into(),
        });
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let hash_error = |e: argon2::password_hash::Error| Error::PasswordHash {
        user: user.to_string(),
        reason: e.to_string(),
    };
    let salt = SaltString::encode_b64(&salt).map_err(hash_error)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(hash_error)?;
    Ok(hash.to_string())
}

/// Check `password` against a PHC string; false for a wrong password or an unreadable hash.
fn verify_hash(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

impl Store {
    /// Add a user, with a password or without one (then they log in with SSH keys only).
    /// [`Error::UserExists`] if the name is taken.
    pub fn add_user(&self, name: &str, password: Option<&str>) -> Result<()> {
        self.add_user_with_keys(name, password, &[])
    }

    /// Add a user together with SSH keys, all or nothing.
    pub fn add_user_with_keys(
        &self,
        name: &str,
        password: Option<&str>,
        keys: &[SshPublicKey],
    ) -> Result<()> {
        validate_user_name(name)?;
        // Hash before taking the connection: it takes tens of milliseconds.
        let hash = password.map(|pw| hash_password(name, pw)).transpose()?;
        let mut conn = self.conn();
        let what = format!("add user `{name}`");
        let tx = conn.savepoint().map_err(|e| self.sql_error(&what, e))?;
        match tx.execute(
            "INSERT INTO users (name, password_hash, created_ns) VALUES (?1, ?2, ?3)",
            params![name, hash, now_ns()],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(Error::UserExists(name.to_string())),
            Err(e) => return Err(self.sql_error(&what, e)),
        }
        for key in keys {
            self.insert_key(&tx, name, key)?;
        }
        tx.commit().map_err(|e| self.sql_error(&what, e))
    }

    /// Set (or replace) a user's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let hash = hash_password(name, password)?;
        let changed = self
            .conn()
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )
            .map_err(|e| self.sql_error(&format!("set the password of user `{name}`"), e))?;
        if changed == 0 {
            return Err(Error::UnknownUser(name.to_string()));
        }
        Ok(())
    }

    /// Remove a user's password (they keep their SSH keys).
    pub fn clear_password(&self, name: &str) -> Result<()> {
        let changed = self
            .conn()
            .execute(
                "UPDATE users SET password_hash = NULL WHERE name = ?1",
                [name],
            )
            .map_err(|e| self.sql_error(&format!("clear the password of user `{name}`"), e))?;
        if changed == 0 {
            return Err(Error::UnknownUser(name.to_string()));
        }
        Ok(())
    }

    /// True if `name` exists, has a password, and `password` is it. An unknown user, a user
    /// without a password, and a wrong password all answer `false` after the same amount of
    /// hashing work, so the answer time does not tell which users exist.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<bool> {
        let stored: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_error(&format!("read the password of user `{name}`"), e))?;
        match stored.flatten() {
            Some(hash) => Ok(verify_hash(&hash, password)),
            None => {
                let dummy = self.dummy_hash();
                let _ = verify_hash(dummy, password);
                Ok(false)
            }
        }
    }

    fn dummy_hash(&self) -> &str {
        self.inner.dummy_hash.get_or_init(|| {
            let mut secret = [0u8; 24];
            rand::rng().fill_bytes(&mut secret);
            let text: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            hash_password("(dummy)", &text).unwrap_or_default()
        })
    }

    /// Add an SSH public key (an OpenSSH line) to a user. [`Error::DuplicateSshKey`] if any user
    /// already has this key. Returns the parsed key.
    pub fn add_ssh_key(&self, user: &str, openssh_line: &str) -> Result<SshPublicKey> {
        let key = SshPublicKey::parse(openssh_line)?;
        self.add_parsed_ssh_key(user, &key)?;
        Ok(key)
    }

    /// Add an already parsed SSH public key to a user (see [`Store::add_ssh_key`]).
    pub fn add_parsed_ssh_key(&self, user: &str, key: &SshPublicKey) -> Result<()> {
        let mut conn = self.conn();
        let what = format!("add an SSH key to user `{user}`");
        let tx = conn.savepoint().map_err(|e| self.sql_error(&what, e))?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM users WHERE name = ?1", [user], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql_error(&what, e))?;
        if exists.is_none() {
            return Err(Error::UnknownUser(user.to_string()));
        }
        self.insert_key(&tx, user, key)?;
        tx.commit().map_err(|e| self.sql_error(&what, e))
    }

    fn insert_key(&self, tx: &rusqlite::Connection, user: &str, key: &SshPublicKey) -> Result<()> {
        let result = tx.execute(
            "INSERT INTO ssh_keys (user, key_type, blob, comment, fingerprint, created_ns) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                user,
                key.key_type(),
                key.blob_base64(),
                key.comment(),
                key.fingerprint(),
                now_ns()
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let owner: String = tx
                    .query_row(
                        "SELECT user FROM ssh_keys WHERE key_type = ?1 AND blob = ?2",
                        params![key.key_type(), key.blob_base64()],
                        |r| r.get(0),
                    )
                    .map_err(|e| self.sql_error("find the owner of a duplicate SSH key", e))?;
                Err(Error::DuplicateSshKey {
                    user: owner,
                    fingerprint: key.fingerprint().to_string(),
                })
            }
            Err(e) => Err(self.sql_error(&format!("add an SSH key to user `{user}`"), e)),
        }
    }

    /// Remove one of a user's SSH keys, given by fingerprint (`SHA256:…`) or by its OpenSSH line.
    /// [`Error::BadSshKey`] if the user has no such key.
    pub fn remove_ssh_key(&self, user: &str, key: &str) -> Result<()> {
        let fingerprint = if key.starts_with("SHA256:") {
            key.trim().to_string()
        } else {
            SshPublicKey::parse(key)?.fingerprint().to_string()
        };
        self.ensure_user(user)?;
        let changed = self
            .conn()
            .execute(
                "DELETE FROM ssh_keys WHERE user = ?1 AND fingerprint = ?2",
                params![user, fingerprint],
            )
            .map_err(|e| self.sql_error(&format!("remove an SSH key of user `{user}`"), e))?;
        if changed == 0 {
            return Err(Error::BadSshKey {
                source_name: None,
                reason: format!("user `{user}` has no key {fingerprint}"),
            });
        }
        Ok(())
    }

    /// A user's SSH keys as OpenSSH lines, oldest first.
    pub fn ssh_keys(&self, user: &str) -> Result<Vec<String>> {
        Ok(self
            .ssh_key_details(user)?
            .iter()
            .map(SshPublicKey::to_openssh)
            .collect())
    }

    /// A user's SSH keys with their fingerprints, oldest first. [`Error::UnknownUser`] if there is
    /// no such user.
    pub fn ssh_key_details(&self, user: &str) -> Result<Vec<SshPublicKey>> {
        self.ensure_user(user)?;
        self.read(&format!("list the SSH keys of user `{user}`"), |c| {
            let mut stmt = c.prepare(
                "SELECT key_type, blob, comment, fingerprint FROM ssh_keys WHERE user = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([user], |r| {
                Ok(SshPublicKey::from_parts(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect()
        })
    }

    /// The user who owns the key with this algorithm name and base64 blob (as in an OpenSSH line,
    /// e.g. from russh's `PublicKey::to_openssh()`), if any.
    pub fn find_user_by_key(&self, key_type: &str, blob_base64: &str) -> Result<Option<String>> {
        self.read("look up an SSH key", |c| {
            c.query_row(
                "SELECT user FROM ssh_keys WHERE key_type = ?1 AND blob = ?2",
                params![key_type, blob_base64],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Remove a user and their SSH keys.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(|e| self.sql_error(&format!("remove user `{name}`"), e))?;
        if changed == 0 {
            return Err(Error::UnknownUser(name.to_string()));
        }
        Ok(())
    }

    /// The user called `name` with a summary of their credentials; [`Error::UnknownUser`] if none.
    pub fn user(&self, name: &str) -> Result<UserInfo> {
        self.read(&format!("read user `{name}`"), |c| {
            c.query_row(
                &format!("{USER_SELECT} WHERE u.name = ?1"),
                [name],
                user_from_row,
            )
            .optional()
        })?
        .ok_or_else(|| Error::UnknownUser(name.to_string()))
    }

    /// Every user, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        self.read("list users", |c| {
            let mut stmt = c.prepare(&format!("{USER_SELECT} ORDER BY u.name"))?;
            let rows = stmt.query_map([], user_from_row)?;
            rows.collect()
        })
    }

    fn ensure_user(&self, name: &str) -> Result<()> {
        let found: Option<i64> = self.read(&format!("look up user `{name}`"), |c| {
            c.query_row("SELECT 1 FROM users WHERE name = ?1", [name], |r| r.get(0))
                .optional()
        })?;
        found
            .map(|_| ())
            .ok_or_else(|| Error::UnknownUser(name.to_string()))
    }
}
