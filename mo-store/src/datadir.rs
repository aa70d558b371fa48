//! The layout of a daemon's data directory.
//!
//! ```text
//! DIR/                         mode 0700
//! DIR/mo.db                    the SQLite store (plus mo.db-wal, mo.db-shm)
//! DIR/logs/<device>/           the record log (segment files) of each device
//! DIR/ssh_host_ed25519_key     the SSH front door's host key
//! DIR/secret.key               the key sealing device secrets (mode 0600)
//! DIR/macros/NAME.macro        stored macros (and NAME.owner: who recorded it)
//! DIR/schedule-state.json      each scheduled job's last run
//! ```

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::macros::{MacroStore, ScheduleState};
use crate::names::validate_device_name;
use crate::store::Store;

/// The data directory of a system service.
pub const SERVICE_DATA_DIR: &str = "/var/lib/mo";

/// Where the data directory is when neither `--data-dir` nor `MO_DATA_DIR` says, with the
/// reason (for `mod --check-config`): `$STATE_DIRECTORY` (systemd's `StateDirectory=`, first
/// entry) or `/var/lib/mo` when run as a systemd service (`$INVOCATION_ID` set), else
/// `$XDG_DATA_HOME/mo`, else `~/.local/share/mo`. `None` when neither `$XDG_DATA_HOME` nor
/// `$HOME` is set. `var` reads the environment (`std::env::var_os` in the programs).
pub fn default_data_dir(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<(PathBuf, &'static str)> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(dirs) = set("STATE_DIRECTORY") {
        let first = dirs
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        if !first.is_empty() {
            return Some((PathBuf::from(first), "service: $STATE_DIRECTORY"));
        }
    }
    if set("INVOCATION_ID").is_some() {
        return Some((
            PathBuf::from(SERVICE_DATA_DIR),
            "service: $INVOCATION_ID is set",
        ));
    }
    if let Some(xdg) = set("XDG_DATA_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Some((xdg.join("mo"), "user: $XDG_DATA_HOME/mo"));
    }
    set("HOME").map(|home| {
        (
            PathBuf::from(home).join(".local/share/mo"),
            "user: ~/.local/share/mo",
        )
    })
}

/// The data directory a client on this host (`mo`) uses when not told: the one
/// [`default_data_dir`] names, unless that has no store while the system service's
/// (`/var/lib/mo`) has one — an admin on the daemon's host then works on the service's data.
pub fn client_data_dir(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<(PathBuf, &'static str)> {
    let found = default_data_dir(var)?;
    let service = Path::new(SERVICE_DATA_DIR);
    if !found.0.join(DB_FILE).exists() && service.join(DB_FILE).exists() {
        return Some((service.to_path_buf(), "the service's /var/lib/mo"));
    }
    Some(found)
}

/// File name of the database inside a data directory.
pub const DB_FILE: &str = "mo.db";
/// Directory holding the per-device record logs.
pub const LOGS_DIR: &str = "logs";
/// File name of the SSH host key.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// A data directory: where the store, the record logs and the host key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Open the data directory at `path`, creating it (mode 0700, parents too) and its `logs/`
    /// subdirectory if they do not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        create_private_dir(&root)?;
        let dir = DataDir { root };
        create_private_dir(&dir.logs_dir())?;
        Ok(dir)
    }

    /// Open an existing data directory without creating anything; [`Error::NoDataDir`] if `path`
    /// is not a directory.
    pub fn existing(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(Error::NoDataDir { path: root });
        }
        Ok(DataDir { root })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `DIR/mo.db`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// `DIR/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join(LOGS_DIR)
    }

    /// `DIR/logs/<device>`, after checking the device name (so it can never escape `logs/`).
    /// Nothing is created.
    pub fn device_log_dir(&self, device: &str) -> Result<PathBuf> {
        validate_device_name(device)?;
        Ok(self.logs_dir().join(device))
    }

    /// Like [`DataDir::device_log_dir`], and create the directory (mode 0700) if needed.
    pub fn create_device_log_dir(&self, device: &str) -> Result<PathBuf> {
        let dir = self.device_log_dir(device)?;
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// `DIR/ssh_host_ed25519_key`.
    pub fn host_key_path(&self) -> PathBuf {
        self.root.join(HOST_KEY_FILE)
    }

    /// `DIR/secret.key`: the key sealing device secrets.
    pub fn secret_key_path(&self) -> PathBuf {
        self.root.join(crate::secrets::SECRET_KEY_FILE)
    }

    /// The key sealing device secrets, read from `DIR/secret.key` or created there (mode 0600)
    /// on first use; see [`crate::SecretKey::load_or_create`].
    pub fn secret_key(&self) -> Result<crate::SecretKey> {
        crate::SecretKey::load_or_create(&self.secret_key_path())
    }

    /// The macros, `DIR/macros/` (see [`MacroStore`]).
    pub fn macros(&self) -> MacroStore {
        MacroStore::new(self.root.join(crate::macros::MACROS_DIR))
    }

    /// The scheduler's state, `DIR/schedule-state.json` (see [`ScheduleState`]).
    pub fn schedule_state(&self) -> ScheduleState {
        ScheduleState::new(self.root.join(crate::macros::SCHEDULE_STATE_FILE))
    }

    /// Open (creating and migrating if needed) the store `DIR/mo.db`.
    pub fn open_store(&self) -> Result<Store> {
        Store::open(self.db_path())
    }
}

fn create_private_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io(format!("cannot create directory {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_layout_private() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b/data");
        assert!(matches!(
            DataDir::existing(&root),
            Err(Error::NoDataDir { .. })
        ));
        let dir = DataDir::open(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(dir.logs_dir().is_dir());
        assert_eq!(dir.db_path(), root.join("mo.db"));
        assert_eq!(dir.host_key_path(), root.join("ssh_host_ed25519_key"));
        assert_eq!(dir.macros().dir(), root.join("macros"));
        assert_eq!(
            dir.schedule_state().path(),
            root.join("schedule-state.json")
        );
        let log = dir.create_device_log_dir("web01").unwrap();
        assert_eq!(log, root.join("logs/web01"));
        assert!(log.is_dir());
        assert!(dir.device_log_dir("../x").is_err());
        assert!(DataDir::existing(&root).is_ok());
        // Opening again is fine.
        assert_eq!(DataDir::open(&root).unwrap(), dir);
    }
}
