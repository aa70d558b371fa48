//! The error type of mo-core.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in mo-core. Each variant says what was wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An access address (URL) could not be understood.
    #[error("bad address `{address}`: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Opening a link to a device failed.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The address that was tried.
        address: String,
        /// Why it failed.
        reason: String,
    },
    /// The link (or the console) does not support an operation.
    #[error("{operation} is not supported by {what}")]
    Unsupported {
        /// The operation asked for (`break`, `window size`, …).
        operation: &'static str,
        /// What does not support it (a driver or device name).
        what: String,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and on what.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record log file is damaged or not a log file.
    #[error("{}: offset {offset}: {reason}", path.display())]
    LogCorrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The console's actor has stopped (the device was removed or the daemon is shutting down).
    #[error("console {device} is gone")]
    ConsoleGone {
        /// The device name.
        device: String,
    },
    /// The console is not connected to its device right now.
    #[error("console {device} is down: {reason}")]
    ConsoleDown {
        /// The device name.
        device: String,
        /// Why, and when it retries.
        reason: String,
    },
    /// The console's record log cannot write right now (a full disk, an I/O error): a note or
    /// mark was not recorded, or input was refused under the strict log policy.
    #[error("the record log of {device} cannot write: {reason}")]
    LogUnavailable {
        /// The device name.
        device: String,
        /// The write error, and what was refused.
        reason: String,
    },
    /// The caller may not do this (the policy refused it), or not right now (for example:
    /// typing while spying).
    #[error("{reason}")]
    Denied {
        /// Why, naming who, what and where (`alice may not force web01: …`).
        reason: String,
    },
    /// Something named does not exist (or is not visible to the caller): a device, event, user.
    #[error("{what}")]
    NotFound {
        /// What was looked for, by name (`unknown device `x``).
        what: String,
    },
    /// Something exists already or is in use (adding a device or user twice).
    #[error("{what}")]
    Conflict {
        /// What clashed, by name.
        what: String,
    },
    /// The peer refused the credentials offered (password, key, community, token).
    #[error("authentication to {target} failed: {reason}")]
    Auth {
        /// The address or peer that refused.
        target: String,
        /// What was refused, never the secret itself.
        reason: String,
    },
    /// An SSH host key is unknown (and trust on first use is off) or differs from the known one.
    #[error("host key of {address} not accepted: {reason}")]
    HostKey {
        /// The address whose key was presented.
        address: String,
        /// Why it was not accepted, with the key's fingerprint.
        reason: String,
    },
    /// A peer did not answer in time.
    #[error("{what}: no answer within {}", humanize(*after))]
    Timeout {
        /// What was waited for, and from whom.
        what: String,
        /// How long mo waited.
        after: std::time::Duration,
    },
    /// A peer sent something mo cannot work with (malformed packet, unexpected reply, error code).
    #[error("{peer}: {reason}")]
    Protocol {
        /// The peer (its address).
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// A textual specification (break sequence, escape setting, time, …) is malformed.
    #[error("bad {what} `{input}`: {reason}")]
    BadSpec {
        /// What kind of specification.
        what: &'static str,
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`] with the given context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// A duration as people write it: `250 ms`, `3 s`, `1.5 s`.
fn humanize(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `Result` with mo-core's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
