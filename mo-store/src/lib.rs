//! mo-store: mo's SQLite store — devices with their access URLs and console settings, users with
//! argon2id passwords and SSH public keys — and the layout of a daemon's data directory.
//!
//! The daemon (`mod`) and the admin CLI (`mo`) open the same database at once: it runs in WAL mode
//! with a busy timeout, and [`Store::generation`] moves with every device change so the daemon
//! can notice the CLI's edits and reconcile its consoles without a restart. The schema is
//! migrated on open, versioned by `PRAGMA user_version`.
//!
//! The API is synchronous; async callers wrap calls in `spawn_blocking`.
//!
//! ```
//! use mo_store::{DataDir, Device, DeviceSettings};
//!
//! # fn main() -> mo_store::Result<()> {
//! # let tmp = tempfile::tempdir().map_err(|e| mo_store::Error::io("tempdir", e))?;
//! let dir = DataDir::open(tmp.path().join("mo-data"))?;
//! let store = dir.open_store()?;
//! let before = store.generation()?;
//! store.add_device(&Device {
//!     name: "web01".into(),
//!     url: "sim://web01".into(),
//!     settings: DeviceSettings { on_demand: true, ..Default::default() },
//! })?;
//! assert!(store.generation()? > before);
//! assert_eq!(store.device("web01")?.settings.replay_lines, 20);
//!
//! store.add_user("alice", Some("s3cret"))?;
//! assert!(store.verify_password("alice", "s3cret")?);
//! assert!(!store.verify_password("alice", "guess")?);
//! # Ok(())
//! # }
//! ```

mod access;
mod agent;
mod audit;
mod audit_archive;
pub mod backup;
pub mod config;
mod datadir;
mod device;
mod device_log;
mod error;
mod event;
mod gate;
mod macros;
mod maintenance;
mod names;
mod schema;
mod secrets;
mod shared;
mod sshkey;
mod store;
mod token;
mod user;

pub use access::{RoleInfo, validate_access_name};
pub use agent::{AgentInfo, AgentPort, ENROLL_VALID, ResumePoint};
pub use audit::{AuditEntry, AuditFilter, Outcome};
pub use audit_archive::{
    AUDIT_ARCHIVE_VERSION, AUDIT_PRUNE_ACTION, AuditArchive, verify_audit_archive,
};
pub use datadir::{
    DB_FILE, DataDir, HOST_KEY_FILE, LOGS_DIR, SERVICE_DATA_DIR, client_data_dir, default_data_dir,
};
pub use device::{
    DEFAULT_REPLAY_LINES, Device, DeviceSettings, MAX_DESCRIPTION, MAX_REPLAY_LINES,
    valid_node_name,
};
pub use device_log::{
    LogPolicy, MAX_RETAIN_DAYS, RetainSize, effective_retention, parse_log_policy,
    parse_retain_days,
};
pub use error::{Error, Result};
pub use event::EventFilter;
pub use gate::{AUDIT_QUEUE, AccessGate, AuditWriter, WriteHook};
pub use macros::{
    MACROS_DIR, MAX_MACRO_NAME, MacroStore, SCHEDULE_STATE_FILE, ScheduleState, check_macro,
    validate_macro_name,
};
pub use maintenance::MaintenanceEntry;
pub use names::{MAX_DEVICE_NAME, MAX_USER_NAME, validate_device_name, validate_user_name};
pub use secrets::{SECRET_KEY_FILE, SecretKey, SecretKind};
pub use shared::{SHARED_KINDS, SharedKind};
pub use sshkey::SshPublicKey;
pub use store::{BUSY_TIMEOUT, Store};
#[doc(hidden)]
pub use token::split_token;
pub use token::{NewToken, TOKEN_PREFIX, TokenInfo, TokenScope, VerifiedToken};
pub use user::UserInfo;
