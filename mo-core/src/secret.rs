//! Secrets (passwords, private keys, community strings) that must never reach a log or a message.
//!
//! A [`Secret`] prints as `***` through `Debug` and `Display`; only [`Secret::expose`] gives the
//! text, so every place that uses the clear value is easy to find.
//!
//! ```
//! use mo_core::secret::Secret;
//! let s = Secret::new("hunter2");
//! assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
//! assert_eq!(s.expose(), "hunter2");
//! ```

use std::fmt;
use std::sync::Arc;

/// A secret value, shared cheaply, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wrap a clear value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The clear value. Use it only to hand it to the peer that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}
