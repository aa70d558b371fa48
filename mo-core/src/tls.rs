//! Which TLS servers a client of mo trusts, shared by every client that speaks TLS: the Redfish
//! power controller (mo-drivers), the API client (mo-client, hence `mo --server https://…` and
//! the bindings) and the daemon, which prints its certificate's fingerprint in this notation.
//!
//! Two ways besides the public web roots, because BMCs and mo daemons mostly carry certificates
//! no public CA signed:
//! - **a pin**: exactly one certificate is accepted, by the SHA-256 of its DER encoding, written
//!   as 64 hex digits with optional colons or spaces (`AB:CD:…`, as `openssl x509 -fingerprint
//!   -sha256` prints it, or `abcd…`). The name in the URL is not checked: the pin is the identity.
//! - **a CA bundle**: the PEM certificates of a file are the only roots; the name in the URL must
//!   be in the server certificate (a self-signed certificate may be its own root).
//!
//! ```
//! use mo_core::tls::{format_fingerprint, parse_fingerprint};
//!
//! let pin = parse_fingerprint(&"ab:".repeat(32)).unwrap();
//! assert_eq!(pin, [0xab; 32]);
//! assert_eq!(parse_fingerprint(&format_fingerprint(&pin)), Some(pin));
//! assert!(parse_fingerprint("abcd").is_none());
//! ```

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::{Error, Result};

/// 64 hex digits (colons and spaces ignored, either case) to the 32 bytes of a SHA-256;
/// `None` if the text is anything else.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text
        .trim()
        .bytes()
        .filter(|b| !matches!(b, b':' | b' '))
        .collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A SHA-256 as mo prints fingerprints: upper-case hex pairs joined by colons (OpenSSL's form).
pub fn format_fingerprint(sha256: &[u8; 32]) -> String {
    let pairs: Vec<String> = sha256.iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(":")
}

/// The SHA-256 fingerprint of a DER-encoded certificate.
pub fn certificate_fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The crypto mo's TLS uses (rustls with *ring*).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str, e: rustls::Error) -> Error {
    Error::BadSpec {
        what: "TLS setting",
        input: what.to_owned(),
        reason: e.to_string(),
    }
}

/// A client configuration that accepts exactly the certificate with this SHA-256 fingerprint
/// (its signature over the handshake is still verified).
pub fn pinned_config(sha256: [u8; 32]) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier = pinned::Pinned {
        sha256,
        algorithms: provider.signature_verification_algorithms,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("pinned certificate", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The certificates of a PEM bundle; `source` names it in errors. At least one is required.
pub fn parse_pem_certificates(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |reason: String| Error::BadSpec {
        what: "CA bundle",
        input: source.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no `BEGIN CERTIFICATE` block in it".into()));
    }
    Ok(certs)
}

/// A client configuration whose only roots are the certificates of the PEM bundle `pem`
/// (`source` names it in errors).
pub fn ca_config(pem: &[u8], source: &str) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_pem_certificates(pem, source)? {
        roots.add(cert).map_err(|e| Error::BadSpec {
            what: "CA bundle",
            input: source.to_owned(),
            reason: format!("a certificate cannot be a root: {e}"),
        })?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(source, e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A rustls verifier that accepts exactly one certificate, by its SHA-256 fingerprint.
mod pinned {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub(super) struct Pinned {
        pub(super) sha256: [u8; 32],
        pub(super) algorithms: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let seen = super::certificate_fingerprint(end_entity.as_ref());
            if seen == self.sha256 {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(format!(
                    "certificate fingerprint {} does not match the pinned one, {}",
                    super::format_fingerprint(&seen),
                    super::format_fingerprint(&self.sha256),
                )))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_in_every_notation() {
        let plain = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let pin = parse_fingerprint(plain).unwrap();
        assert_eq!(pin[1], 0x11);
        assert_eq!(pin[31], 0xff);
        assert_eq!(parse_fingerprint(&format_fingerprint(&pin)), Some(pin));
        assert_eq!(parse_fingerprint(&plain.to_lowercase()), Some(pin));
        assert!(parse_fingerprint(&plain[2..]).is_none());
        assert!(parse_fingerprint(&format!("{plain}00")).is_none());
        assert!(parse_fingerprint(&plain.replace('a', "g")).is_none());
        assert!(parse_fingerprint("").is_none());
    }

    #[test]
    fn bundles_without_certificates_are_refused() {
        let err = ca_config(b"hello", "ca.pem").unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains("BEGIN CERTIFICATE"),
            "{err}"
        );
    }
}
