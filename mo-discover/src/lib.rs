//! `mo discover`'s plan, shared by the CLI and the daemon's `POST /api/v1/discover` so both
//! answer alike: from what mo-drivers' probes found on each host (consoles, BMCs, PDUs) to the
//! devices, power bindings and secrets to add, merged with what the store already has so that
//! running it again changes nothing.
//!
//! ```
//! use mo_discover::{CredentialsFile, propose};
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let store = mo_store::Store::open(tmp.path().join("mo.db")).unwrap();
//! // Nothing found: nothing proposed.
//! let proposal = propose(&[], &CredentialsFile::default(), &store).unwrap();
//! assert!(proposal.devices.is_empty());
//! ```

pub mod plan;

pub use plan::{CredentialEntry, CredentialsFile, Proposal, propose, site_of};

/// What went wrong while planning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The credentials file cannot be read or is not valid; the message names the file and
    /// the entry.
    #[error("{0}")]
    Credentials(String),
    /// The store could not be read, or a secret not sealed.
    #[error(transparent)]
    Store(#[from] mo_store::Error),
}

/// The result of planning.
pub type Result<T, E = Error> = std::result::Result<T, E>;
