//! Device credentials, kept apart from addresses (DESIGN.md §9).
//!
//! An address names *who* (`ssh://admin@10.0.0.5`, `ipmi://admin@bmc1`); the secrets to prove it
//! travel separately in [`Credentials`], filled from the store (encrypted at rest) and never
//! printed: every secret is a [`Secret`].
//!
//! ```
//! use mo_drivers::{Credentials, DriverOptions};
//! let opts = DriverOptions::new().with_credentials(Credentials::new().with_password("s3cret"));
//! assert!(format!("{opts:?}").contains("***"));
//! assert!(!format!("{opts:?}").contains("s3cret"));
//! ```

pub use mo_core::secret::Secret;

/// The secrets one device's link (or power controller) may need. Drivers use what applies to
/// them and ignore the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// A password: SSH password authentication, IPMI/Redfish user password.
    pub password: Option<Secret>,
    /// A private key in OpenSSH (or PEM) text form, for SSH public-key authentication.
    pub private_key: Option<Secret>,
    /// The passphrase of [`Credentials::private_key`], when it is encrypted.
    pub key_passphrase: Option<Secret>,
    /// The IPMI BMC key (K_g), when the BMC uses one; hex or text.
    pub bmc_key: Option<Secret>,
    /// SNMP: the v2c community, or the v3 authentication passphrase.
    pub snmp_auth: Option<Secret>,
    /// SNMP v3 privacy passphrase.
    pub snmp_privacy: Option<Secret>,
}

impl Credentials {
    /// No secrets (same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`Credentials::password`].
    pub fn with_password(mut self, password: impl Into<Secret>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Set [`Credentials::private_key`].
    pub fn with_private_key(mut self, key: impl Into<Secret>) -> Self {
        self.private_key = Some(key.into());
        self
    }

    /// Set [`Credentials::key_passphrase`].
    pub fn with_key_passphrase(mut self, passphrase: impl Into<Secret>) -> Self {
        self.key_passphrase = Some(passphrase.into());
        self
    }

    /// Set [`Credentials::bmc_key`].
    pub fn with_bmc_key(mut self, key: impl Into<Secret>) -> Self {
        self.bmc_key = Some(key.into());
        self
    }

    /// Set [`Credentials::snmp_auth`].
    pub fn with_snmp_auth(mut self, secret: impl Into<Secret>) -> Self {
        self.snmp_auth = Some(secret.into());
        self
    }

    /// Set [`Credentials::snmp_privacy`].
    pub fn with_snmp_privacy(mut self, secret: impl Into<Secret>) -> Self {
        self.snmp_privacy = Some(secret.into());
        self
    }
}
