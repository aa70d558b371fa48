//! mo errors as Python exceptions: each [`mo_core::Error`] variant maps to one class of the
//! hierarchy defined in `mo/_errors.py` (`MoError` and its subclasses).

use std::io::ErrorKind;

use mo_core::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The exception class (a name in `mo._errors`) for an error.
pub(crate) fn class_of(e: &Error) -> &'static str {
    match e {
        Error::Connect { .. } | Error::ConsoleDown { .. } => "ConnectError",
        Error::Auth { .. } | Error::HostKey { .. } => "AuthError",
        Error::Timeout { .. } => "TimeoutError",
        Error::Denied { .. } => "PermissionDenied",
        Error::NotFound { .. } => "NotFound",
        Error::Conflict { .. } => "Conflict",
        Error::Protocol { .. } | Error::LogCorrupt { .. } => "ProtocolError",
        Error::Unsupported { .. } => "Unsupported",
        Error::BadAddress { .. } | Error::BadSpec { .. } => "InvalidArgument",
        Error::ConsoleGone { .. } => "ConsoleClosed",
        Error::Io { source, .. } => match source.kind() {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::PermissionDenied => "PermissionDenied",
            ErrorKind::TimedOut => "TimeoutError",
            ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected => "ConnectError",
            _ => "MoError",
        },
        _ => "MoError",
    }
}

/// A mo error as the Python exception of its kind.
pub(crate) fn to_py(e: Error) -> PyErr {
    raise(class_of(&e), e.to_string())
}

/// An exception of class `class` (a name in `mo._errors`) with `message`.
pub(crate) fn raise(class: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let found = py
            .import("mo._errors")
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match found {
            Ok(ty) => PyErr::from_type(ty, message),
            Err(why) => PyRuntimeError::new_err(format!(
                "{message} (and mo._errors.{class} could not be loaded: {why})"
            )),
        }
    })
}
