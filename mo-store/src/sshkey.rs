//! OpenSSH public keys (`ssh-ed25519 AAAA… comment`), checked and normalised.

use ssh_key::{HashAlg, PublicKey};

use crate::error::{Error, Result};

/// A validated SSH public key in the OpenSSH one-line form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey {
    key_type: String,
    blob: String,
    comment: String,
    fingerprint: String,
}

impl SshPublicKey {
    /// Parse one OpenSSH public-key line (`type base64 [comment]`). The key blob is decoded and
    /// checked; its algorithm must be one OpenSSH knows and must match the `type` word.
    ///
    /// ```
    /// let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti a@b";
    /// let key = mo_store::SshPublicKey::parse(line).unwrap();
    /// assert_eq!(key.key_type(), "ssh-ed25519");
    /// assert_eq!(key.comment(), "a@b");
    /// assert!(mo_store::SshPublicKey::parse("ssh-ed25519 AAAA").is_err());
    /// ```
    pub fn parse(line: &str) -> Result<Self> {
        Self::parse_from(line, None)
    }

    /// Parse every key in a file's text: one key per line, blank lines and `#` comments skipped.
    /// Errors name `source` (a file name) and the line number. A text without any key is an error.
    pub fn parse_many(text: &str, source: &str) -> Result<Vec<Self>> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            keys.push(Self::parse_from(
                trimmed,
                Some(format!("{source} line {}", index + 1)),
            )?);
        }
        if keys.is_empty() {
            return Err(Error::BadSshKey {
                source_name: Some(source.to_string()),
                reason: "no public key found".into(),
            });
        }
        Ok(keys)
    }

    fn parse_from(line: &str, source_name: Option<String>) -> Result<Self> {
        let bad = |reason: &str| Error::BadSshKey {
            source_name: source_name.clone(),
            reason: reason.to_string(),
        };
        let line = line.trim();
        if line.is_empty() {
            return Err(bad("empty"));
        }
        if line.contains("PRIVATE KEY") {
            return Err(bad(
                "this is a private key; give the public key (the `.pub` file)",
            ));
        }
        let key = PublicKey::from_openssh(line).map_err(|e| match e {
            ssh_key::Error::AlgorithmUnknown => {
                bad("unknown key type, or the type word does not match the key data")
            }
            _ => bad(&format!(
                "not an OpenSSH public key line `type base64 [comment]` ({e})"
            )),
        })?;
        if key.key_data().is_other() {
            return Err(bad(&format!(
                "unsupported key type `{}`",
                key.algorithm().as_str()
            )));
        }
        let text = key
            .to_openssh()
            .map_err(|e| bad(&format!("cannot re-encode the key ({e})")))?;
        let mut words = text.splitn(3, ' ');
        let key_type = words.next().unwrap_or_default().to_string();
        let blob = words.next().unwrap_or_default().to_string();
        Ok(SshPublicKey {
            key_type,
            blob,
            comment: key.comment().as_str_lossy().to_string(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        })
    }

    /// Rebuild a key from its stored parts (no checks: the parts came from [`SshPublicKey::parse`]).
    pub(crate) fn from_parts(
        key_type: String,
        blob: String,
        comment: String,
        fingerprint: String,
    ) -> Self {
        SshPublicKey {
            key_type,
            blob,
            comment,
            fingerprint,
        }
    }

    /// The algorithm name (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …).
    pub fn key_type(&self) -> &str {
        &self.key_type
    }

    /// The key blob in base64, as in the OpenSSH line (canonical encoding).
    pub fn blob_base64(&self) -> &str {
        &self.blob
    }

    /// The comment (often `user@host`), possibly empty.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The SHA-256 fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The OpenSSH line `type base64 [comment]`.
    pub fn to_openssh(&self) -> String {
        if self.comment.is_empty() {
            format!("{} {}", self.key_type, self.blob)
        } else {
            format!("{} {} {}", self.key_type, self.blob, self.comment)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti foo@bar.com";

    #[test]
    fn parses_and_normalises() {
        let key = SshPublicKey::parse(&format!("  {ED}  \n")).unwrap();
        assert_eq!(key.key_type(), "ssh-ed25519");
        assert_eq!(
            key.blob_base64(),
            "AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti"
        );
        assert_eq!(key.comment(), "foo@bar.com");
        assert!(
            key.fingerprint().starts_with("SHA256:"),
            "{}",
            key.fingerprint()
        );
        assert_eq!(key.to_openssh(), ED);
        let bare = SshPublicKey::parse(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti",
        )
        .unwrap();
        assert_eq!(bare.comment(), "");
        assert_eq!(bare.fingerprint(), key.fingerprint());
    }

    #[test]
    fn rejects_garbage() {
        for (bad, why) in [
            ("", "empty"),
            ("hello", "not an OpenSSH public key"),
            ("ssh-ed25519 !!!!", "not an OpenSSH public key"),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQ",
                "not an OpenSSH public key",
            ),
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti",
                "does not match",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ] {
            let err = SshPublicKey::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("bad SSH public key"), "{bad:?}: {err}");
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn parse_many_names_lines() {
        let text = format!("# my keys\n\n{ED}\n{ED} second\n");
        let keys = SshPublicKey::parse_many(&text, "keys.pub").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].comment(), "foo@bar.com second");
        let err = SshPublicKey::parse_many(&format!("{ED}\nnope\n"), "k.pub")
            .unwrap_err()
            .to_string();
        assert!(err.contains("(k.pub line 2)"), "{err}");
        let err = SshPublicKey::parse_many("# nothing\n", "e.pub")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no public key found"), "{err}");
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x5eed_554b);
        let alphabet: Vec<char> = "ssh-ed25519 rsa ecdsa AQAB+/=\n\t #@:xyz0123456789"
            .chars()
            .collect();
        for round in 0..3000 {
            let line: String = if round % 2 == 0 {
                let len = rng.random_range(0..120);
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect()
            } else {
                // Mutate a valid key: flip, drop or insert characters.
                let mut chars: Vec<char> = ED.chars().collect();
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..chars.len());
                    match rng.random_range(0..3) {
                        0 => chars[at] = alphabet[rng.random_range(0..alphabet.len())],
                        1 => {
                            chars.remove(at);
                        }
                        _ => chars.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    }
                }
                chars.into_iter().collect()
            };
            let _ = SshPublicKey::parse(&line);
            let _ = SshPublicKey::parse_many(&line, "fuzz");
        }
    }
}
