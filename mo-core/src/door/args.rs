//! The error of the shell commands' argument parsers ([`super::power`], [`super::macros`],
//! [`super::gang`]): what was wrong, naming the option or word where it was.

/// Why a command's arguments were refused. The message names the option or word at fault; the
/// door adds the command's usage when [`ArgError::wants_usage`] says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// An option that takes a value came last.
    #[error("{option} needs a value")]
    MissingValue {
        /// The option, as written (`--delay`).
        option: String,
    },
    /// An option the command does not have.
    #[error("unknown option `{option}`")]
    UnknownOption {
        /// The option, as written.
        option: String,
    },
    /// An option's value is out of its range or not of its kind.
    #[error("{option} needs {expected}, not `{value}`")]
    BadValue {
        /// The option (`--parallel`).
        option: String,
        /// The value as written.
        value: String,
        /// What it should be (`a number from 1 to 1000`).
        expected: &'static str,
    },
    /// No device (name, glob or `@GROUP`) was given.
    #[error("no devices given")]
    NoTargets,
    /// A macro argument without `=` or with an empty name.
    #[error("bad macro argument `{word}`: use NAME=VALUE")]
    BadMacroArgument {
        /// The word as written.
        word: String,
    },
    /// `-- ` with nothing after it where a command must follow.
    #[error("no command after `--`")]
    EmptyCommand,
    /// The words do not form any of the command's forms.
    #[error("{command}: wrong arguments")]
    Usage {
        /// The command (`macro`, `gang`).
        command: &'static str,
    },
}

impl ArgError {
    /// Whether the door should show the command's usage after the message (the words were
    /// wrong in form, not in one value).
    pub fn wants_usage(&self) -> bool {
        !matches!(
            self,
            ArgError::BadValue { .. } | ArgError::BadMacroArgument { .. }
        )
    }

    /// The message for the user: the usage alone for [`ArgError::Usage`], the error followed by
    /// the usage on the next line when [`ArgError::wants_usage`], else the error alone.
    pub fn message(&self, usage: &str) -> String {
        match self {
            ArgError::Usage { .. } => usage.to_string(),
            e if e.wants_usage() => format!("{e}\n{usage}"),
            e => e.to_string(),
        }
    }
}

/// A `Result` with [`ArgError`].
pub type ArgResult<T> = std::result::Result<T, ArgError>;
