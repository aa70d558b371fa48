//! The one error type of the support crate: every variant says which peer or command failed and
//! carries the text (log, pane, output) needed to see why.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while starting or driving a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed; `what` says which one and on what.
    #[error("{what}: {source}")]
    Io {
        /// The action, e.g. "create temp dir" or "spawn socat".
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A peer process did not come up (or died while starting).
    #[error(
        "{name} did not start: {reason}\n----- {name} log -----\n{log}\n----- end of {name} log -----"
    )]
    PeerStart {
        /// The peer, e.g. "socat" or "mod".
        name: String,
        /// Why we gave up on it.
        reason: String,
        /// Whatever the peer wrote (stdout and stderr).
        log: String,
    },
    /// Something expected did not happen in time.
    #[error(
        "timed out after {waited:?} waiting for {what}\n----- {context_name} -----\n{context}\n----- end of {context_name} -----"
    )]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// What the context is (e.g. "pane alice", "mo log").
        context_name: String,
        /// The text seen so far (pane contents, output, log).
        context: String,
    },
    /// A command ran but exited unsuccessfully.
    #[error(
        "`{command}` failed ({status})\n----- stdout -----\n{stdout}\n----- stderr -----\n{stderr}\n----- end -----"
    )]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status, rendered.
        status: String,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },
    /// A binary the tests need was not built.
    #[error("binary `{name}` not found at {}: {hint}", path.display())]
    MissingBinary {
        /// The binary's name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to build it.
        hint: String,
    },
    /// A check made by a test helper failed (the message says what was expected and what was seen).
    #[error("{0}")]
    Check(String),
}

impl Error {
    /// Wrap an [`std::io::Error`] with a description of the action that failed.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result with the support crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Return `Err(Error::Check(..))` with a formatted message unless the condition holds.
///
/// ```
/// fn f(x: u32) -> mo_testsupport::Result<()> {
///     mo_testsupport::ensure!(x > 1, "x must be > 1, was {x}");
///     Ok(())
/// }
/// assert!(f(2).is_ok());
/// assert!(f(0).is_err());
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Error::Check(format!($($fmt)+)));
        }
    };
}
