//! Opening the database: connection settings, migrations and the change counter.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};
use crate::schema::{MIGRATIONS, latest_version};

/// How long a statement waits for another process (daemon or CLI) to release the database.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle on mo's SQLite store. Cheap to clone; clones share one connection.
///
/// Every method is blocking and short (except password hashing, which runs without holding the
/// connection). Async callers use `tokio::task::spawn_blocking`. Several processes may open the
/// same file at once: the database runs in WAL mode with a busy timeout of [`BUSY_TIMEOUT`].
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// A hash of a random password, verified against for unknown users so that a login attempt
    /// for a user that does not exist costs as much as one for a user that does.
    pub(crate) dummy_hash: OnceLock<String>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open the database file at `path`, creating it if needed, and bring its schema up to date.
    ///
    /// Fails with [`Error::SchemaTooNew`] if the file was written by a newer mo.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        create_private_file(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| Error::sqlite(format!("cannot open database {shown}"), e))?;
        configure(&conn)
            .map_err(|e| Error::sqlite(format!("{shown}: cannot configure database"), e))?;
        migrate(&mut conn, &path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
                dummy_hash: OnceLock::new(),
            }),
        })
    }

    /// Open `DIR/mo.db` of a data directory (same as [`crate::DataDir::open_store`]).
    pub fn open_in(dir: &crate::DataDir) -> Result<Store> {
        Store::open(dir.db_path())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the open database (equal to the newest this build knows).
    pub fn schema_version(&self) -> Result<i64> {
        self.read("read the schema version", |c| {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
        })
    }

    /// Write a consistent copy of the database to `dest` (which must not exist) while other
    /// processes keep using it: SQLite's `VACUUM INTO`, one read transaction, so the copy is the
    /// database as of one moment, compacted, in rollback-journal mode.
    pub fn snapshot_into(&self, dest: &Path) -> Result<()> {
        let target = dest
            .to_str()
            .ok_or_else(|| Error::Backup(format!("{}: the path is not UTF-8", dest.display())))?;
        self.read(&format!("write a snapshot to {}", dest.display()), |c| {
            c.execute("VACUUM INTO ?1", [target]).map(|_| ())
        })
    }

    /// The device change counter. It increases with every added, changed or removed device, in
    /// any process, so a running daemon can poll it cheaply and reconcile its consoles when it
    /// moves.
    pub fn generation(&self) -> Result<u64> {
        let value: i64 = self.read("read the device generation", |c| {
            c.query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
        })?;
        u64::try_from(value).map_err(|_| Error::Corrupt {
            path: self.inner.path.clone(),
            what: "meta.generation".into(),
            reason: format!("negative value {value}"),
        })
    }

    /// Lock the connection. A panic in another thread while holding it does not leave the
    /// connection unusable (SQLite rolls back any open transaction), so poisoning is ignored.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Run `f` on the connection and add `what` and the file name to any error.
    pub(crate) fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = self.conn();
        f(&conn).map_err(|e| self.sql_error(what, e))
    }

    /// An [`Error::Sqlite`] naming the database file and what was being done.
    pub(crate) fn sql_error(&self, what: &str, e: rusqlite::Error) -> Error {
        Error::sqlite(format!("{}: cannot {what}", self.inner.path.display()), e)
    }

    /// Run `f` in one IMMEDIATE transaction on a connection of its own: every change `f` makes
    /// through the [`Store`] it is given is committed if `f` succeeds and rolled back if it
    /// fails. Other handles on the database wait (busy timeout) instead of mixing their
    /// statements into the transaction.
    pub(crate) fn atomically<T, E: From<Error>>(
        &self,
        what: &str,
        f: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let own = Store::open(&self.inner.path)?;
        // A transaction of several changes (often with their audit rows) is durable once
        // committed (the safety level cannot change inside it; this connection is dropped after).
        own.conn()
            .execute_batch("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
            .map_err(|e| own.sql_error(what, e))?;
        match f(&own) {
            Ok(value) => {
                own.conn()
                    .execute_batch("COMMIT")
                    .map_err(|e| own.sql_error(what, e))?;
                Ok(value)
            }
            Err(e) => {
                // Dropping the connection would roll back too; say so explicitly.
                let _ = own.conn().execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// An [`Error::Corrupt`] for this database.
    pub(crate) fn corrupt(&self, what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.inner.path.clone(),
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Create the database file readable by its owner only (it holds password hashes), unless it
/// exists. SQLite gives its `-wal` and `-shm` files the same permissions.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(
            format!("cannot create database {}", path.display()),
            e,
        )),
    }
}

/// True if `e` is a UNIQUE or PRIMARY KEY constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                )
    )
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The pragma answers with the mode in force. An in-memory database stays in "memory"
    // mode, which is still correct, only not shareable; files switch to WAL.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    let known = latest_version();
    let too_new = |found: i64| Error::SchemaTooNew {
        path: path.to_path_buf(),
        found,
        known,
    };
    let version = |c: &Connection| -> Result<i64> {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| Error::sqlite(format!("{shown}: cannot read the schema version"), e))
    };
    let current = version(conn)?;
    if current > known {
        return Err(too_new(current));
    }
    if current == known {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, so two processes migrating at once do it in turn and
    // the second one sees the first one's result.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| Error::sqlite(format!("{shown}: cannot start the schema migration"), e))?;
    let current = version(&tx)?;
    if current > known {
        return Err(too_new(current));
    }
    let start = usize::try_from(current).map_err(|_| Error::Corrupt {
        path: path.to_path_buf(),
        what: "PRAGMA user_version".into(),
        reason: format!("negative schema version {current}"),
    })?;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(step).map_err(|e| {
            Error::sqlite(
                format!("{shown}: migration to schema version {} failed", index + 1),
                e,
            )
        })?;
    }
    tx.pragma_update(None, "user_version", known)
        .map_err(|e| Error::sqlite(format!("{shown}: cannot set the schema version"), e))?;
    tx.commit()
        .map_err(|e| Error::sqlite(format!("{shown}: cannot commit the schema migration"), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_database_is_migrated_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mo.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest_version());
        assert_eq!(store.generation().unwrap(), 0);
        let mode: String = store
            .read("x", |c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            })
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .read("x", |c| {
                c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            })
            .unwrap();
        assert_eq!(fk, 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(store);
        let again = Store::open(&path).unwrap();
        assert_eq!(again.schema_version().unwrap(), latest_version());
        assert_eq!(again.generation().unwrap(), 0);
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mo.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 5)
            .unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { found, .. } if found == latest_version() + 5));
        assert!(
            err.to_string().contains("newer than this program knows"),
            "{err}"
        );
    }

    #[test]
    fn concurrent_first_opens_migrate_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mo.db");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Store::open(&path).map(|s| s.schema_version()))
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap().unwrap().unwrap(), latest_version());
        }
        assert_eq!(Store::open(&path).unwrap().generation().unwrap(), 0);
    }

    #[test]
    fn not_a_database_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mo.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text that is long enough........",
        )
        .unwrap();
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(err.contains("mo.db"), "{err}");
    }
}
