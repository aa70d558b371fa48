//! The macros of a data directory: `DIR/macros/NAME.macro` holds a macro's text (the format of
//! [`mo_core::automation::macros`]); `DIR/macros/NAME.owner` names the user who recorded it
//! through the daemon. A macro without an owner file belongs to the site (stored with
//! `mo macro add`). Also the scheduler's memory of each job's last run,
//! `DIR/schedule-state.json` ([`ScheduleState`]).
//!
//! ```
//! use mo_store::DataDir;
//!
//! # fn main() -> mo_store::Result<()> {
//! # let tmp = tempfile::tempdir().map_err(|e| mo_store::Error::io("tempdir", e))?;
//! let dir = DataDir::open(tmp.path())?;
//! let macros = dir.macros();
//! macros.save("hello", "sendline echo hi\nexpect /hi/\n", Some("alice"), false)?;
//! assert_eq!(macros.names()?, ["hello"]);
//! assert_eq!(macros.owner("hello")?.as_deref(), Some("alice"));
//! assert_eq!(macros.load("hello")?.steps().len(), 2);
//! assert!(macros.load("nope").is_err());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mo_core::automation::macros::Macro;

use crate::error::{Error, Result};

/// Directory holding the macro files inside a data directory.
pub const MACROS_DIR: &str = "macros";
/// File name of the scheduler's state inside a data directory.
pub const SCHEDULE_STATE_FILE: &str = "schedule-state.json";
/// The longest macro name.
pub const MAX_MACRO_NAME: usize = 64;

/// Check a macro name: letters, digits, `.`, `_`, `-`; 1–64 characters; not starting with `.`
/// or `-` (so a name is always one plain file name in the macros directory).
pub fn validate_macro_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_MACRO_NAME
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName {
            what: "macro",
            name: name.to_owned(),
            reason: "use letters, digits, `.`, `_`, `-` (1–64, not starting with `.` or `-`)"
                .to_owned(),
        })
    }
}

/// Parse macro text from `origin` (a file name, `stdin`); on failure [`Error::BadMacro`] with
/// every problem and its line.
pub fn check_macro(origin: &str, text: &str) -> Result<Macro> {
    Macro::check(text).map_err(|errors| Error::BadMacro {
        origin: origin.to_owned(),
        errors,
    })
}

/// The macro files of a data directory ([`crate::DataDir::macros`]). Cheap to clone; every
/// call reads the directory again, so edits by another process apply at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroStore {
    dir: PathBuf,
}

impl MacroStore {
    /// The macros in `dir` (created when the first macro is saved).
    pub fn new(dir: impl Into<PathBuf>) -> MacroStore {
        MacroStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of macro `name` (`DIR/NAME.macro`), after checking the name.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        validate_macro_name(name)?;
        Ok(self.dir.join(format!("{name}.macro")))
    }

    fn owner_path(&self, name: &str) -> Result<PathBuf> {
        validate_macro_name(name)?;
        Ok(self.dir.join(format!("{name}.owner")))
    }

    /// Whether macro `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.path(name)?.exists())
    }

    /// The names of the stored macros, sorted (files whose names break the rules are left out);
    /// none when the directory does not exist yet.
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot list macros in {}", self.dir.display()),
                    e,
                ));
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".macro").map(str::to_string)
            })
            .filter(|n| validate_macro_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The text of macro `name`; [`Error::NoMacro`] when there is none.
    pub fn read(&self, name: &str) -> Result<String> {
        let path = self.path(name)?;
        std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::NoMacro {
                name: name.to_owned(),
            },
            _ => Error::io(format!("cannot read {}", path.display()), e),
        })
    }

    /// Read and parse macro `name`; [`Error::BadMacro`] names `NAME.macro` and each bad line.
    pub fn load(&self, name: &str) -> Result<Macro> {
        let text = self.read(name)?;
        check_macro(&format!("{name}.macro"), &text)
    }

    /// The user who recorded macro `name` through the daemon; `None` for a site macro (no owner
    /// file, or an empty one) or a macro that does not exist.
    pub fn owner(&self, name: &str) -> Result<Option<String>> {
        let path = self.owner_path(name)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let owner = text.trim();
                Ok((!owner.is_empty()).then(|| owner.to_owned()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    /// Write macro `name` (atomically: a temporary file renamed over it), then its owner file:
    /// `owner` for a macro recorded by a user, `None` for a site macro (an old owner file is
    /// removed). [`Error::NameExists`] if the macro exists and `replace` is false. Returns the
    /// macro's file.
    pub fn save(
        &self,
        name: &str,
        text: &str,
        owner: Option<&str>,
        replace: bool,
    ) -> Result<PathBuf> {
        let path = self.path(name)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("cannot create {}", self.dir.display()), e))?;
        if !replace && path.exists() {
            return Err(Error::NameExists {
                what: "macro",
                name: name.to_owned(),
            });
        }
        write_atomic(&path, &self.dir.join(format!(".{name}.macro.tmp")), text)?;
        let owner_file = self.owner_path(name)?;
        match owner {
            Some(owner) => write_atomic(
                &owner_file,
                &self.dir.join(format!(".{name}.owner.tmp")),
                &format!("{owner}\n"),
            )?,
            None => remove_if_there(&owner_file)?,
        }
        Ok(path)
    }

    /// Remove macro `name` and its owner file; [`Error::NoMacro`] when there is none.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => remove_if_there(&self.owner_path(name)?),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NoMacro {
                name: name.to_owned(),
            }),
            Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
    }
}

fn write_atomic(path: &Path, tmp: &Path, text: &str) -> Result<()> {
    std::fs::write(tmp, text)
        .and_then(|()| std::fs::rename(tmp, path))
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(Error::io(format!("cannot remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// The scheduler's memory of each job's last run (`DIR/schedule-state.json`, a JSON object of
/// job name to seconds since the epoch), so runs missed while the daemon was down are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    path: PathBuf,
}

impl ScheduleState {
    /// The state kept in `path`.
    pub fn new(path: impl Into<PathBuf>) -> ScheduleState {
        ScheduleState { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Each job's last run; empty when the file does not exist. [`Error::Corrupt`] when it is
    /// not what [`ScheduleState::write`] writes.
    pub fn read(&self) -> Result<BTreeMap<String, SystemTime>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(Error::io(format!("cannot read {}", self.path.display()), e));
            }
        };
        let secs: BTreeMap<String, u64> =
            serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                what: "schedule state".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(secs
            .into_iter()
            .map(|(job, s)| (job, UNIX_EPOCH + Duration::from_secs(s)))
            .collect())
    }

    /// Replace the file (atomically) with `runs`, to the second.
    pub fn write(&self, runs: &BTreeMap<String, SystemTime>) -> Result<()> {
        let secs: BTreeMap<&str, u64> = runs
            .iter()
            .map(|(job, t)| {
                let s = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                (job.as_str(), s)
            })
            .collect();
        let text = serde_json::to_string_pretty(&secs).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            what: "schedule state".to_owned(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path, &self.path.with_extension("json.tmp"), &text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_macro_name("upgrade-1.2").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"x".repeat(65)] {
            let err = validate_macro_name(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("bad macro name"),
                "{bad}: {err}"
            );
        }
        let store = MacroStore::new("/nonexistent/macros");
        assert!(matches!(store.path("../x"), Err(Error::BadName { .. })));
        assert!(store.names().unwrap().is_empty());
    }

    #[test]
    fn save_read_own_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = MacroStore::new(tmp.path().join("macros"));
        let err = store.read("m").unwrap_err();
        assert_eq!(err.to_string(), "no macro `m`");
        store
            .save("m", "sendline a\n", Some("alice"), false)
            .unwrap();
        assert!(matches!(
            store.save("m", "sendline b\n", None, false),
            Err(Error::NameExists { what: "macro", .. })
        ));
        assert_eq!(store.owner("m").unwrap().as_deref(), Some("alice"));
        // A site macro replacing it drops the owner.
        store.save("m", "sendline b\n", None, true).unwrap();
        assert_eq!(store.owner("m").unwrap(), None);
        assert_eq!(store.read("m").unwrap(), "sendline b\n");
        std::fs::write(tmp.path().join("macros/.hidden.macro"), "x").unwrap();
        std::fs::write(tmp.path().join("macros/bad.macro"), "frobnicate\n").unwrap();
        assert_eq!(store.names().unwrap(), ["bad", "m"]);
        let err = store.load("bad").unwrap_err();
        assert!(
            matches!(&err, Error::BadMacro { origin, errors } if origin == "bad.macro" && errors.len() == 1)
        );
        assert!(err.to_string().starts_with("bad.macro: line 1:"), "{err}");
        store.save("m", "sendline c\n", Some("bob"), true).unwrap();
        store.remove("m").unwrap();
        assert!(!store.exists("m").unwrap());
        assert_eq!(store.owner("m").unwrap(), None);
        assert!(matches!(store.remove("m"), Err(Error::NoMacro { .. })));
    }

    #[test]
    fn schedule_state_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let state = ScheduleState::new(tmp.path().join(SCHEDULE_STATE_FILE));
        assert!(state.read().unwrap().is_empty());
        let mut runs = BTreeMap::new();
        runs.insert(
            "nightly".to_string(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        state.write(&runs).unwrap();
        assert_eq!(state.read().unwrap(), runs);
        std::fs::write(state.path(), "{not json").unwrap();
        assert!(matches!(state.read(), Err(Error::Corrupt { .. })));
    }
}
