//! Device secrets (passwords, private keys, BMC and SNMP keys), encrypted at rest.
//!
//! The key is 32 random bytes in `DIR/secret.key` (64 hex digits), created with mode 0600 the
//! first time it is needed ([`crate::DataDir::secret_key`]); a key file others can read is
//! refused. Each value is sealed with XChaCha20-Poly1305 under a fresh random 24-byte nonce,
//! with the device name and the secret kind as associated data, so a sealed value copied to
//! another device or kind does not open. The database holds `nonce || ciphertext || tag`; the
//! export form is that, base64 — exports never hold clear text, and importing one needs the
//! same key file.
//!
//! Clear values only ever travel as [`Secret`], which never prints.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use base64ct::{Base64, Encoding};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mo_core::secret::Secret;
use rand::RngCore;
use rusqlite::{OptionalExtension, params};

use crate::device::now_ns;
use crate::error::{Error, Result};
use crate::names::validate_device_name;
use crate::store::Store;

/// File name of the secret key inside a data directory.
pub const SECRET_KEY_FILE: &str = "secret.key";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// What a device secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// `password`: login password (SSH, telnet login, Redfish, IPMI user password).
    Password,
    /// `private_key`: an OpenSSH private key.
    PrivateKey,
    /// `key_passphrase`: the passphrase of that private key.
    KeyPassphrase,
    /// `bmc_key`: IPMI BMC key (K_g).
    BmcKey,
    /// `snmp_auth`: SNMP community or v3 authentication passphrase.
    SnmpAuth,
    /// `snmp_privacy`: SNMP v3 privacy passphrase.
    SnmpPrivacy,
}

impl SecretKind {
    /// Every kind.
    pub const ALL: [SecretKind; 6] = [
        SecretKind::Password,
        SecretKind::PrivateKey,
        SecretKind::KeyPassphrase,
        SecretKind::BmcKey,
        SecretKind::SnmpAuth,
        SecretKind::SnmpPrivacy,
    ];

    /// The kind's name as written on the command line and stored (`private_key`).
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::PrivateKey => "private_key",
            SecretKind::KeyPassphrase => "key_passphrase",
            SecretKind::BmcKey => "bmc_key",
            SecretKind::SnmpAuth => "snmp_auth",
            SecretKind::SnmpPrivacy => "snmp_privacy",
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecretKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        SecretKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::BadValue {
                what: "secret kind".into(),
                value: s.to_string(),
                reason: format!(
                    "expected one of {}",
                    SecretKind::ALL.map(SecretKind::name).join(", ")
                ),
            })
    }
}

/// The key that seals device secrets. Never printed.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        SecretKey {
            cipher: XChaCha20Poly1305::new(&bytes.into()),
        }
    }

    /// Read the key file at `path`, or create it (mode 0600, 32 random bytes as hex) if it
    /// does not exist. Two processes creating it at once end up with the same key (the file is
    /// written aside and linked into place). A key file readable by group or others, or not
    /// holding 64 hex digits, is refused.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    fn load(path: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Secret {
                what: shown,
                reason: format!(
                    "the key file has mode {mode:o} and others can read it; `chmod 600` it"
                ),
            });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
        let text = text.trim();
        let bad = || Error::Secret {
            what: shown.clone(),
            reason: format!("expected {} hex digits", KEY_BYTES * 2),
        };
        if text.len() != KEY_BYTES * 2 || !text.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(SecretKey::from_bytes(bytes))
    }

    fn create(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let shown = path.display().to_string();
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let mut nonce = [0u8; 8];
        rand::rng().fill_bytes(&mut nonce);
        let tmp = path.with_extension(format!(
            "tmp.{}.{}",
            std::process::id(),
            nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        let io = |e| Error::io(format!("cannot create {shown}"), e);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(file, "{text}")?;
            file.sync_all()
        };
        let linked = write().and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(SecretKey::from_bytes(bytes)),
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io(e)),
        }
    }

    /// `value` sealed for `kind` of `device` in the export form (base64, what
    /// [`Store::export_secret`] gives and a `[[secret]]` import takes). Never clear text.
    pub fn seal_for_export(
        &self,
        device: &str,
        kind: SecretKind,
        value: &Secret,
    ) -> Result<String> {
        Ok(Base64::encode_string(&self.seal(device, kind, value)?))
    }

    fn seal(&self, device: &str, kind: SecretKind, value: &Secret) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(device, kind);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Secret {
                what: format!("{kind} of device `{device}`"),
                reason: "encryption failed".into(),
            })?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, device: &str, kind: SecretKind, sealed: &[u8]) -> Result<Secret> {
        let bad = |reason: &str| Error::Secret {
            what: format!("{kind} of device `{device}`"),
            reason: reason.to_string(),
        };
        if sealed.len() < NONCE_BYTES + 16 {
            return Err(bad("sealed value too short"));
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let mut n = [0u8; NONCE_BYTES];
        n.copy_from_slice(nonce);
        let aad = aad(device, kind);
        let clear = self
            .cipher
            .decrypt(
                &XNonce::from(n),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                bad(
                    "cannot decrypt: sealed with another key file, for another device or kind, \
                     or damaged",
                )
            })?;
        String::from_utf8(clear)
            .map(Secret::new)
            .map_err(|_| bad("decrypted value is not UTF-8"))
    }
}

/// `device NUL kind`: binds a sealed value to its place.
fn aad(device: &str, kind: SecretKind) -> Vec<u8> {
    let mut aad = Vec::with_capacity(device.len() + 1 + kind.name().len());
    aad.extend_from_slice(device.as_bytes());
    aad.push(0);
    aad.extend_from_slice(kind.name().as_bytes());
    aad
}

impl Store {
    fn ensure_device(&self, device: &str) -> Result<()> {
        validate_device_name(device)?;
        let found: Option<i64> = self.read(&format!("look up device `{device}`"), |c| {
            c.query_row("SELECT 1 FROM devices WHERE name = ?1", [device], |r| {
                r.get(0)
            })
            .optional()
        })?;
        found
            .map(|_| ())
            .ok_or_else(|| Error::UnknownDevice(device.to_string()))
    }

    fn put_sealed(&self, device: &str, kind: SecretKind, sealed: &[u8]) -> Result<()> {
        self.read(&format!("store the {kind} of device `{device}`"), |c| {
            c.execute(
                "INSERT INTO device_secrets (device, kind, sealed, updated_ns) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device, kind) DO UPDATE \
                 SET sealed = excluded.sealed, updated_ns = excluded.updated_ns",
                params![device, kind.name(), sealed, now_ns()],
            )
        })?;
        Ok(())
    }

    fn sealed(&self, device: &str, kind: SecretKind) -> Result<Option<Vec<u8>>> {
        self.read(&format!("read the {kind} of device `{device}`"), |c| {
            c.query_row(
                "SELECT sealed FROM device_secrets WHERE device = ?1 AND kind = ?2",
                params![device, kind.name()],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Store (or replace) a device secret, sealed with `key`. The device must exist; its
    /// secrets go when it is removed.
    pub fn set_secret(
        &self,
        key: &SecretKey,
        device: &str,
        kind: SecretKind,
        value: &Secret,
    ) -> Result<()> {
        self.ensure_device(device)?;
        let sealed = key.seal(device, kind, value)?;
        self.put_sealed(device, kind, &sealed)
    }

    /// A device secret in clear, if set.
    pub fn secret(
        &self,
        key: &SecretKey,
        device: &str,
        kind: SecretKind,
    ) -> Result<Option<Secret>> {
        self.sealed(device, kind)?
            .map(|sealed| key.open(device, kind, &sealed))
            .transpose()
    }

    /// Remove a device secret. [`Error::UnknownName`] if it is not set.
    pub fn remove_secret(&self, device: &str, kind: SecretKind) -> Result<()> {
        let changed = self.read(&format!("remove the {kind} of device `{device}`"), |c| {
            c.execute(
                "DELETE FROM device_secrets WHERE device = ?1 AND kind = ?2",
                params![device, kind.name()],
            )
        })?;
        if changed == 0 {
            return Err(Error::UnknownName {
                what: "secret",
                name: format!("{device}/{kind}"),
            });
        }
        Ok(())
    }

    /// The kinds of secret a device has, in [`SecretKind::ALL`] order (no key needed).
    pub fn secret_kinds(&self, device: &str) -> Result<Vec<SecretKind>> {
        let names: Vec<String> = self.read(&format!("list the secrets of `{device}`"), |c| {
            c.prepare("SELECT kind FROM device_secrets WHERE device = ?1")?
                .query_map([device], |r| r.get(0))?
                .collect()
        })?;
        let mut kinds = Vec::with_capacity(names.len());
        for name in names {
            kinds.push(name.parse().map_err(|e: Error| {
                self.corrupt(format!("secret kind of device `{device}`"), e.to_string())
            })?);
        }
        kinds.sort();
        Ok(kinds)
    }

    /// Every secret of a device in clear, by kind: what a driver needs to log in. mo-store does
    /// not know the drivers; the caller builds its credentials from this map.
    pub fn device_credentials(
        &self,
        key: &SecretKey,
        device: &str,
    ) -> Result<BTreeMap<SecretKind, Secret>> {
        let mut out = BTreeMap::new();
        for kind in self.secret_kinds(device)? {
            if let Some(secret) = self.secret(key, device, kind)? {
                out.insert(kind, secret);
            }
        }
        Ok(out)
    }

    /// The export form of a device secret: its sealed bytes, base64. Never clear text.
    pub fn export_secret(&self, device: &str, kind: SecretKind) -> Result<Option<String>> {
        Ok(self
            .sealed(device, kind)?
            .map(|sealed| Base64::encode_string(&sealed)))
    }

    /// Store a secret in its export form. It must open with `key` for this device and kind
    /// (so a foreign or damaged export is refused, not stored).
    pub fn import_secret(
        &self,
        key: &SecretKey,
        device: &str,
        kind: SecretKind,
        exported: &str,
    ) -> Result<()> {
        self.ensure_device(device)?;
        let sealed = Base64::decode_vec(exported.trim()).map_err(|_| Error::Secret {
            what: format!("exported {kind} of device `{device}`"),
            reason: "not base64".into(),
        })?;
        key.open(device, kind, &sealed)?;
        self.put_sealed(device, kind, &sealed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn sealed_values_are_bound_to_device_and_kind() {
        let key = SecretKey::from_bytes([7; 32]);
        let value = Secret::new("hunter2");
        let sealed = key.seal("web01", SecretKind::Password, &value).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            key.open("web01", SecretKind::Password, &sealed).unwrap(),
            value
        );
        assert!(key.open("web02", SecretKind::Password, &sealed).is_err());
        assert!(key.open("web01", SecretKind::BmcKey, &sealed).is_err());
        let other = SecretKey::from_bytes([8; 32]);
        let err = other
            .open("web01", SecretKind::Password, &sealed)
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        // Fresh nonce each time.
        assert_ne!(
            sealed,
            key.seal("web01", SecretKind::Password, &value).unwrap()
        );
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
    }

    #[test]
    fn opening_random_bytes_never_panics() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..5_000 {
            let len = rng.random_range(0..100);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            assert!(key.open("d", SecretKind::Password, &bytes).is_err());
        }
    }

    #[test]
    fn kinds_parse() {
        for kind in SecretKind::ALL {
            assert_eq!(kind.name().parse::<SecretKind>().unwrap(), kind);
        }
        let err = "pasword".parse::<SecretKind>().unwrap_err().to_string();
        assert!(err.contains("snmp_privacy"), "{err}");
    }
}
