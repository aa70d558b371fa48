//! What a viewer asks for ([`Mode`]) and what it has ([`ViewerRole`]), by name, as every door
//! and binding reads and writes them, and the admission rule every door applies: `attach` by
//! someone who may only spy becomes `spy`, with one notice ([`admit`]).
//!
//! ```
//! use mo_core::console::{Mode, ViewerRole};
//!
//! assert_eq!("spy".parse::<Mode>().unwrap(), Mode::Spy);
//! assert_eq!("rw".parse::<Mode>().unwrap(), Mode::Attach); // an old spelling
//! assert_eq!(Mode::Force.to_string(), "force");
//! assert_eq!(ViewerRole::ReadWrite.to_string(), "attach");
//! assert_eq!("rw".parse::<ViewerRole>().unwrap(), ViewerRole::ReadWrite);
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::escape::Command;
use crate::policy::Permission;

/// What a viewer asks for when it connects or changes its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Read-write if the write lock is free, else spy (with a notice).
    Attach,
    /// Read-only.
    Spy,
    /// Take the write lock; the holder becomes a spy.
    Force,
    /// Write alongside the holder (if the console allows it).
    Join,
}

impl Mode {
    /// Every mode, in the order the doors list them.
    pub const ALL: [Mode; 4] = [Mode::Attach, Mode::Spy, Mode::Force, Mode::Join];

    /// The canonical name: `attach`, `spy`, `force` or `join`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Attach => "attach",
            Mode::Spy => "spy",
            Mode::Force => "force",
            Mode::Join => "join",
        }
    }

    /// The mode by name: the canonical names and the old spellings `rw` (attach) and `ro` (spy).
    /// `None` for anything else; [`str::parse`] gives the error message instead.
    pub fn by_name(name: &str) -> Option<Mode> {
        match name {
            "attach" | "rw" => Some(Mode::Attach),
            "spy" | "ro" => Some(Mode::Spy),
            "force" => Some(Mode::Force),
            "join" => Some(Mode::Join),
            _ => None,
        }
    }

    /// The mode an escape command asks for (`Ctrl-E c a`, `s`, `f`, `j`), `None` for the other
    /// commands.
    pub fn of_command(command: &Command) -> Option<Mode> {
        match command {
            Command::Attach => Some(Mode::Attach),
            Command::Spy => Some(Mode::Spy),
            Command::Force => Some(Mode::Force),
            Command::Join => Some(Mode::Join),
            _ => None,
        }
    }

    /// The permission a viewer needs for this mode (`attach`, `spy`, `force`, `join`).
    pub fn action(self) -> Permission {
        match self {
            Mode::Attach => Permission::Attach,
            Mode::Spy => Permission::Spy,
            Mode::Force => Permission::Force,
            Mode::Join => Permission::Join,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// A mode by name ([`Mode::by_name`]); the error names the word and the modes there are.
    fn from_str(s: &str) -> Result<Self, Error> {
        Mode::by_name(s).ok_or_else(|| Error::BadSpec {
            what: "mode",
            input: s.to_string(),
            reason: "use attach, spy, force or join".into(),
        })
    }
}

/// The role a viewer has on a console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViewerRole {
    /// Holds the write lock.
    ReadWrite,
    /// Writes alongside the lock holder.
    Joined,
    /// Read-only.
    Spy,
}

impl ViewerRole {
    /// The canonical name, the same in every door (`who` in the SSH shell, the API's `role`
    /// fields, the bindings): `attach` (holds the write lock), `join` or `spy`.
    pub fn name(self) -> &'static str {
        match self {
            ViewerRole::ReadWrite => "attach",
            ViewerRole::Joined => "join",
            ViewerRole::Spy => "spy",
        }
    }

    /// The role by name: the canonical names and the old spellings `rw` and `read-write`
    /// (attach), `joined` (join), `ro` and `read-only` (spy).
    pub fn by_name(name: &str) -> Option<ViewerRole> {
        match name {
            "attach" | "rw" | "read-write" => Some(ViewerRole::ReadWrite),
            "join" | "joined" => Some(ViewerRole::Joined),
            "spy" | "ro" | "read-only" => Some(ViewerRole::Spy),
            _ => None,
        }
    }

    /// True if the viewer may write.
    pub fn can_write(self) -> bool {
        !matches!(self, ViewerRole::Spy)
    }

    pub(super) fn to_u8(self) -> u8 {
        match self {
            ViewerRole::ReadWrite => 0,
            ViewerRole::Joined => 1,
            ViewerRole::Spy => 2,
        }
    }

    pub(super) fn from_u8(v: u8) -> ViewerRole {
        match v {
            0 => ViewerRole::ReadWrite,
            1 => ViewerRole::Joined,
            _ => ViewerRole::Spy,
        }
    }
}

impl fmt::Display for ViewerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for ViewerRole {
    type Err = Error;

    /// A role by name ([`ViewerRole::by_name`]).
    fn from_str(s: &str) -> Result<Self, Error> {
        ViewerRole::by_name(s).ok_or_else(|| Error::BadSpec {
            what: "viewer role",
            input: s.to_string(),
            reason: "use attach, join or spy".into(),
        })
    }
}

/// What a door lets a viewer in as ([`admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Admitted {
    /// The mode to attach with.
    pub mode: Mode,
    /// The notice for this viewer when it got less than it asked for
    /// (`denied: …; spying instead`).
    pub notice: Option<String>,
}

/// The admission rule of every door (conserver's): a viewer gets the `mode` it asked for when
/// `checked` (the door's permission check of [`Mode::action`]) passed; `attach` by someone who may
/// only spy (`may_spy`, asked only then) becomes `spy` with a notice `WHY; spying instead`, `why`
/// giving the refusal's text; any other refusal is returned as it is.
///
/// ```
/// use mo_core::console::{Mode, admit};
///
/// let denied: Result<(), String> = Err("denied: vera may not attach".into());
/// let a = admit(Mode::Attach, denied, |e| e.clone(), || true).unwrap();
/// assert_eq!(a.mode, Mode::Spy);
/// assert_eq!(a.notice.as_deref(), Some("denied: vera may not attach; spying instead"));
/// let denied: Result<(), String> = Err("denied: vera may not force".into());
/// assert!(admit(Mode::Force, denied, |e| e.clone(), || true).is_err());
/// ```
pub fn admit<E>(
    mode: Mode,
    checked: Result<(), E>,
    why: impl FnOnce(&E) -> String,
    may_spy: impl FnOnce() -> bool,
) -> Result<Admitted, E> {
    match checked {
        Ok(()) => Ok(Admitted { mode, notice: None }),
        Err(e) if mode == Mode::Attach && may_spy() => Ok(Admitted {
            mode: Mode::Spy,
            notice: Some(format!("{}; spying instead", why(&e))),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name() {
        for mode in Mode::ALL {
            assert_eq!(mode.to_string().parse::<Mode>().unwrap(), mode);
        }
        assert_eq!(Mode::by_name("rw"), Some(Mode::Attach));
        assert_eq!(Mode::by_name("ro"), Some(Mode::Spy));
        assert_eq!(Mode::of_command(&Command::Force), Some(Mode::Force));
        assert_eq!(Mode::of_command(&Command::Who), None);
        for bad in ["", "Attach", "spy ", "write", "joined"] {
            let e = bad.parse::<Mode>().unwrap_err().to_string();
            assert!(e.contains("attach, spy, force or join"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn roles_by_name() {
        for role in [ViewerRole::ReadWrite, ViewerRole::Joined, ViewerRole::Spy] {
            assert_eq!(role.to_string().parse::<ViewerRole>().unwrap(), role);
            assert_eq!(ViewerRole::from_u8(role.to_u8()), role);
        }
        assert_eq!(ViewerRole::ReadWrite.name(), "attach");
        for (old, role) in [
            ("rw", ViewerRole::ReadWrite),
            ("read-write", ViewerRole::ReadWrite),
            ("joined", ViewerRole::Joined),
            ("ro", ViewerRole::Spy),
        ] {
            assert_eq!(old.parse::<ViewerRole>().unwrap(), role);
        }
        assert!("force".parse::<ViewerRole>().is_err());
    }

    #[test]
    fn admission() {
        let ok: Result<(), String> = Ok(());
        assert_eq!(
            admit(Mode::Force, ok, |e| e.clone(), || false),
            Ok(Admitted {
                mode: Mode::Force,
                notice: None
            })
        );
        let no = || -> Result<(), String> { Err("denied".into()) };
        assert_eq!(
            admit(Mode::Attach, no(), |e| e.clone(), || false),
            Err("denied".to_string())
        );
        for mode in [Mode::Spy, Mode::Force, Mode::Join] {
            assert_eq!(
                admit(mode, no(), |e| e.clone(), || true),
                Err("denied".to_string())
            );
        }
        let mut asked = false;
        let _ = admit(
            Mode::Join,
            no(),
            |e| e.clone(),
            || {
                asked = true;
                true
            },
        );
        assert!(!asked, "may_spy is asked only for attach");
    }
}
