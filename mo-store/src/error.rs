//! The error type of mo-store.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in mo-store. Each variant says what was wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation on the data directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The data directory does not exist (and was not asked to be created).
    #[error("data directory {} does not exist", path.display())]
    NoDataDir {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// SQLite reported an error.
    #[error("{context}: {source}")]
    Sqlite {
        /// What was being done, and on which database.
        context: String,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer mo than this one.
    #[error(
        "{}: database schema version {found} is newer than this program knows ({known}); \
         use a newer mo",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database content is not what this program wrote (a column holds an impossible value).
    #[error("{}: {what}: {reason}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which row or column.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A device or user name breaks the naming rules.
    #[error("bad {what} name `{name}`: {reason}")]
    BadName {
        /// `device` or `user`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A device's access URL does not parse.
    #[error("bad URL `{url}` for device `{device}`: {reason}")]
    BadUrl {
        /// The device.
        device: String,
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A device setting has an invalid value.
    #[error("bad {setting} `{value}` for device `{device}`: {reason}")]
    BadSetting {
        /// The device.
        device: String,
        /// Which setting (`escape`, `break sequence 3`, …).
        setting: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A device with this name is already in the store.
    #[error("device `{0}` already exists")]
    DeviceExists(String),
    /// No device with this name is in the store.
    #[error("unknown device `{0}`")]
    UnknownDevice(String),
    /// A user with this name is already in the store.
    #[error("user `{0}` already exists")]
    UserExists(String),
    /// No user with this name is in the store.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// A password was refused before hashing (for example: empty).
    #[error("bad password for user `{user}`: {reason}")]
    BadPassword {
        /// The user.
        user: String,
        /// Why it was refused.
        reason: String,
    },
    /// Hashing a password failed.
    #[error("cannot hash the password of user `{user}`: {reason}")]
    PasswordHash {
        /// The user.
        user: String,
        /// What the hasher said.
        reason: String,
    },
    /// A line is not an OpenSSH public key.
    #[error("bad SSH public key{}: {reason}", source_suffix(.source_name))]
    BadSshKey {
        /// Where the key came from (a file and line), if known.
        source_name: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// This SSH public key is already registered.
    #[error("SSH key {fingerprint} is already registered for user `{user}`")]
    DuplicateSshKey {
        /// The user who has it.
        user: String,
        /// The key's SHA-256 fingerprint.
        fingerprint: String,
    },
    /// No role, group, grant, token or secret with this name is in the store.
    #[error("unknown {what} `{name}`")]
    UnknownName {
        /// `role`, `device group`, `user group`, `grant`, `token`, `secret`.
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// A role, group or grant with this name is already in the store.
    #[error("{what} `{name}` already exists")]
    NameExists {
        /// `role`, `device group`, `user group`, `grant`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Something cannot be removed or changed because other entries use it.
    #[error("{what} `{name}` {reason}")]
    InUse {
        /// `role`, `device group`, `user group`.
        what: &'static str,
        /// The name.
        name: String,
        /// What uses it and what to do.
        reason: String,
    },
    /// A value (pattern, action list, scope, secret kind, time) is invalid.
    #[error("bad {what} `{value}`: {reason}")]
    BadValue {
        /// What the value is.
        what: String,
        /// The value as given (never a secret).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An API token was refused. Unknown and wrong tokens give the same reason.
    #[error("API token refused: {reason}")]
    TokenRefused {
        /// Why (`unknown or wrong token`, `expired`, `revoked`, `malformed`).
        reason: String,
    },
    /// No macro with this name is in the data directory's macros.
    #[error("no macro `{name}`")]
    NoMacro {
        /// The name as given.
        name: String,
    },
    /// A macro's text does not parse.
    #[error("{}", macro_errors(.origin, .errors))]
    BadMacro {
        /// Where the text came from (`NAME.macro`, `stdin`, a file).
        origin: String,
        /// Every problem, each with its line.
        errors: Vec<mo_core::automation::macros::ParseError>,
    },
    /// A device secret or the secret key file cannot be used.
    #[error("{what}: {reason}")]
    Secret {
        /// Which secret or file.
        what: String,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// A backup cannot be made or restored: the text names the file and what is wrong.
    #[error("{0}")]
    Backup(String),
}

fn source_suffix(source: &Option<String>) -> String {
    source
        .as_ref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

/// One `ORIGIN: line N: what` line per problem.
fn macro_errors(origin: &str, errors: &[mo_core::automation::macros::ParseError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("{origin}: {e}")).collect();
    lines.join("\n")
}

impl Error {
    /// An [`Error::Io`] with the given context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::Sqlite`] with the given context.
    pub fn sqlite(context: impl Into<String>, source: rusqlite::Error) -> Self {
        Error::Sqlite {
            context: context.into(),
            source,
        }
    }
}

/// `Result` with mo-store's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
