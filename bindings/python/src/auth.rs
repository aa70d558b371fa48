//! The secrets and host-key policy of an embedded console (`password=`, `private_key=`,
//! `key_passphrase=`, `known_hosts=`, `trust_host_key=`, `bmc_key=`), turned into the
//! [`DriverOptions`] the daemon builds from a device's stored secrets. Every secret is a
//! [`mo_drivers::credentials::Secret`] at once: it prints as `***` and no error names it.

use std::path::PathBuf;

use mo_drivers::{Credentials, DriverOptions};
use pyo3::PyResult;
use pyo3::exceptions::PyValueError;

/// What `open()` was given for authentication; never printed (no `Debug`).
#[derive(Default)]
pub(crate) struct Auth {
    /// SSH password, IPMI user password.
    pub password: Option<String>,
    /// An SSH private key: OpenSSH/PEM text (starts with `-----BEGIN`), else a file path.
    pub private_key: Option<String>,
    /// The passphrase of an encrypted private key.
    pub key_passphrase: Option<String>,
    /// An OpenSSH `known_hosts` file.
    pub known_hosts: Option<PathBuf>,
    /// Accept (and record in `known_hosts`) a host key seen for the first time.
    pub trust_host_key: bool,
    /// The IPMI BMC key (K_g).
    pub bmc_key: Option<String>,
}

impl Auth {
    /// The driver options: credentials, known_hosts and trust on first use.
    pub(crate) fn driver_options(self) -> PyResult<DriverOptions> {
        let mut creds = Credentials::new();
        creds.password = self.password.map(Into::into);
        creds.private_key = self.private_key.map(read_key).transpose()?.map(Into::into);
        creds.key_passphrase = self.key_passphrase.map(Into::into);
        creds.bmc_key = self.bmc_key.map(Into::into);
        if self.trust_host_key && self.known_hosts.is_none() {
            return Err(PyValueError::new_err(
                "trust_host_key=True needs known_hosts= (the file the new host key is recorded in)",
            ));
        }
        let mut options = DriverOptions::new()
            .with_credentials(creds)
            .with_trust_on_first_use(self.trust_host_key);
        options.known_hosts = self.known_hosts;
        Ok(options)
    }
}

/// A private key given as text (it holds `-----BEGIN`) or as the path of a key file. Errors name
/// the path, never the key.
fn read_key(key: String) -> PyResult<String> {
    if key.contains("-----BEGIN") {
        return Ok(key);
    }
    std::fs::read_to_string(&key).map_err(|e| {
        PyValueError::new_err(format!(
            "private_key: cannot read the key file {key}: {e} (give a file path or the key's \
             PEM/OpenSSH text)"
        ))
    })
}
