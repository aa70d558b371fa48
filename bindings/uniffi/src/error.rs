//! mo's errors as one uniffi error enum, [`MoError`]: a variant per kind (the kinds the Python
//! exceptions and the Node error classes name), each carrying mo's message.

use std::io::ErrorKind;

use mo_core::Error;

/// What went wrong: the variant says the kind, the message says what and where (the device, the
/// URL, the patterns and the last output of a timed-out `expect`, …). Secrets are never in it.
///
/// Kotlin: `MoException.Timeout` …; Swift: `MoError.Timeout(message:)` …; Ruby:
/// `Mo::MoError::Timeout` … (each a `StandardError` whose message is the text).
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum MoError {
    /// The device or the daemon could not be reached, or its link is down.
    #[error("{0}")]
    Connect(String),
    /// Authentication failed (a password, a key, a token, an unknown or changed host key).
    #[error("{0}")]
    Auth(String),
    /// Nothing came in time (`expect`, waiting for the link).
    #[error("{0}")]
    Timeout(String),
    /// The token or user may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// No such device, console, file or macro.
    #[error("{0}")]
    NotFound(String),
    /// It clashes with the state (e.g. someone else holds the write lock).
    #[error("{0}")]
    Conflict(String),
    /// The peer answered something mo does not understand, or a log is corrupt.
    #[error("{0}")]
    Protocol(String),
    /// The device or driver cannot do this (no power controller, a driver built without its
    /// feature, …).
    #[error("{0}")]
    Unsupported(String),
    /// An argument is wrong: a bad URL, a bad regular expression, a bad option.
    #[error("{0}")]
    InvalidArgument(String),
    /// The console is closed.
    #[error("{0}")]
    ConsoleClosed(String),
    /// Anything else (an I/O error, …).
    #[error("{0}")]
    Other(String),
}

impl From<Error> for MoError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Connect { .. } | Error::ConsoleDown { .. } => MoError::Connect(message),
            Error::Auth { .. } | Error::HostKey { .. } => MoError::Auth(message),
            Error::Timeout { .. } => MoError::Timeout(message),
            Error::Denied { .. } => MoError::PermissionDenied(message),
            Error::NotFound { .. } => MoError::NotFound(message),
            Error::Conflict { .. } => MoError::Conflict(message),
            Error::Protocol { .. } | Error::LogCorrupt { .. } => MoError::Protocol(message),
            Error::Unsupported { .. } => MoError::Unsupported(message),
            Error::BadAddress { .. } | Error::BadSpec { .. } => MoError::InvalidArgument(message),
            Error::ConsoleGone { .. } => MoError::ConsoleClosed(message),
            Error::Io { source, .. } => match source.kind() {
                ErrorKind::NotFound => MoError::NotFound(message),
                ErrorKind::PermissionDenied => MoError::PermissionDenied(message),
                ErrorKind::TimedOut => MoError::Timeout(message),
                ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected => MoError::Connect(message),
                _ => MoError::Other(message),
            },
            _ => MoError::Other(message),
        }
    }
}

/// An [`MoError::InvalidArgument`] with `message`.
pub(crate) fn invalid(message: impl Into<String>) -> MoError {
    MoError::InvalidArgument(message.into())
}
