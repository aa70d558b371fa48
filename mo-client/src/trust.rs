//! Which `https://` servers a [`crate::Client`] trusts: `--ca FILE` and `--pin SHA256`.

use std::path::{Path, PathBuf};

use mo_core::{Error, Result};

/// Which certificates an `https://` daemon may present (see [`mo_core::tls`] for the notation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// Certificates the public web roots vouch for (the default).
    #[default]
    PublicRoots,
    /// Certificates issued by a CA of this PEM bundle (a self-signed certificate may be given
    /// as its own CA); the host name of the URL must be in the certificate.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint, whatever its names.
    Pin([u8; 32]),
}

impl Trust {
    /// The trust that command-line options and binding arguments ask for: `ca` (a PEM file),
    /// `pin` (a SHA-256 fingerprint, 64 hex digits, colons allowed), or neither. Both at once,
    /// or a malformed pin, is an error.
    pub fn from_options(ca: Option<&Path>, pin: Option<&str>) -> Result<Trust> {
        match (ca, pin) {
            (Some(_), Some(_)) => Err(Error::BadSpec {
                what: "TLS trust",
                input: "--ca and --pin".into(),
                reason: "give a CA bundle or a pinned fingerprint, not both".into(),
            }),
            (Some(ca), None) => Ok(Trust::CaFile(ca.to_path_buf())),
            (None, Some(pin)) => mo_core::tls::parse_fingerprint(pin)
                .map(Trust::Pin)
                .ok_or_else(|| Error::BadSpec {
                    what: "certificate pin",
                    input: pin.to_owned(),
                    reason: "a pin is the certificate's SHA-256: 64 hex digits, colons allowed \
                             (`mod --tls-self-signed` prints it at start)"
                        .into(),
                }),
            (None, None) => Ok(Trust::PublicRoots),
        }
    }

    /// How this trust is named in messages (`--ca FILE`, `--pin …`).
    pub(crate) fn describe(&self) -> String {
        match self {
            Trust::PublicRoots => "the public web roots".into(),
            Trust::CaFile(path) => format!("--ca {}", path.display()),
            Trust::Pin(sha) => format!("--pin {}", mo_core::tls::format_fingerprint(sha)),
        }
    }

    /// The rustls configuration, or `None` for the public roots (reqwest's and tungstenite's
    /// own defaults).
    pub(crate) fn client_config(&self) -> Result<Option<rustls::ClientConfig>> {
        match self {
            Trust::PublicRoots => Ok(None),
            Trust::Pin(sha) => mo_core::tls::pinned_config(*sha).map(Some),
            Trust::CaFile(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::io(format!("reading CA bundle {} (--ca)", path.display()), e)
                })?;
                mo_core::tls::ca_config(&pem, &path.display().to_string()).map(Some)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn options_to_trust() {
        assert_eq!(Trust::from_options(None, None).unwrap(), Trust::PublicRoots);
        let pin = "AB:".repeat(31) + "AB";
        assert_eq!(
            Trust::from_options(None, Some(&pin)).unwrap(),
            Trust::Pin([0xab; 32])
        );
        let both = Trust::from_options(Some(Path::new("ca.pem")), Some(&pin));
        assert!(both.unwrap_err().to_string().contains("not both"));
        let bad = Trust::from_options(None, Some("abc"))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("64 hex digits"), "{bad}");
    }

    #[test]
    fn a_pin_on_plain_http_is_refused() {
        let err = crate::Client::with_trust("http://127.0.0.1:1", "", Trust::Pin([1; 32]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
        let missing = crate::Client::with_trust(
            "https://127.0.0.1:1",
            "",
            Trust::CaFile("/nonexistent/ca.pem".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}
