//! Permissions: what a user can be allowed to do to a device, and sets of them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Something a user may do to a device. Written with its dotted name (`log.read`) in
/// configuration, in roles and in decisions; [`FromStr`] and [`fmt::Display`] use exactly those
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// `list`: see that the device exists.
    List,
    /// `spy`: watch the console read-only.
    Spy,
    /// `attach`: take the console's write lock when it is free.
    Attach,
    /// `force`: take the write lock from whoever holds it.
    Force,
    /// `join`: write to a console alongside its holder.
    Join,
    /// `break`: send a BREAK (or the device's break sequence).
    Break,
    /// `log.read`: read the device's record log.
    LogRead,
    /// `log.read_input`: see what users typed (input records) when reading the record log;
    /// without it, `log.read` shows input as `<input hidden>`.
    LogReadInput,
    /// `log.note`: write a note into the device's record log.
    LogNote,
    /// `power.status`: ask the device's power state.
    PowerStatus,
    /// `power.control`: switch the device's power on, off or cycle it.
    PowerControl,
    /// `macro.run`: run macros on the console.
    MacroRun,
    /// `gang`: include the device in a gang (one keyboard, many consoles).
    Gang,
    /// `events.ack`: acknowledge the device's events.
    EventsAck,
    /// `events.raise`: raise an event about the device by hand or from another system
    /// (`mo events raise`, `POST /api/v1/events`).
    EventsRaise,
    /// `host.show`: see a host's CPUs, memory, file systems and processes (`mo host show`: the
    /// daemon's own host or an agent's). Not about one device: it takes a grant on the group
    /// `all`.
    HostShow,
    /// `admin`: everything, including changing the device; implies every other action.
    Admin,
}

impl Permission {
    /// Every action, in declaration order.
    pub const ALL: [Permission; 17] = [
        Permission::List,
        Permission::Spy,
        Permission::Attach,
        Permission::Force,
        Permission::Join,
        Permission::Break,
        Permission::LogRead,
        Permission::LogReadInput,
        Permission::LogNote,
        Permission::PowerStatus,
        Permission::PowerControl,
        Permission::MacroRun,
        Permission::Gang,
        Permission::EventsAck,
        Permission::EventsRaise,
        Permission::HostShow,
        Permission::Admin,
    ];

    /// The action's dotted name, as written in configuration (`power.control`).
    pub fn name(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Spy => "spy",
            Permission::Attach => "attach",
            Permission::Force => "force",
            Permission::Join => "join",
            Permission::Break => "break",
            Permission::LogRead => "log.read",
            Permission::LogReadInput => "log.read_input",
            Permission::LogNote => "log.note",
            Permission::PowerStatus => "power.status",
            Permission::PowerControl => "power.control",
            Permission::MacroRun => "macro.run",
            Permission::Gang => "gang",
            Permission::EventsAck => "events.ack",
            Permission::EventsRaise => "events.raise",
            Permission::HostShow => "host.show",
            Permission::Admin => "admin",
        }
    }

    /// The action as a verb phrase taking the device as object, for decisions read by people
    /// ("alice may not *spy on* db1").
    pub fn verb(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Spy => "spy on",
            Permission::Attach => "attach",
            Permission::Force => "force",
            Permission::Join => "join",
            Permission::Break => "send a break to",
            Permission::LogRead => "read the log of",
            Permission::LogReadInput => "read what was typed on",
            Permission::LogNote => "write a note in the log of",
            Permission::PowerStatus => "see the power status of",
            Permission::PowerControl => "switch the power of",
            Permission::MacroRun => "run macros on",
            Permission::Gang => "gang",
            Permission::EventsAck => "acknowledge events of",
            Permission::EventsRaise => "raise events about",
            Permission::HostShow => "show the host info of",
            Permission::Admin => "administer",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Permission {
    type Err = Error;

    /// Parses a dotted action name exactly as [`Permission::name`] writes it (lowercase).
    fn from_str(s: &str) -> Result<Self> {
        if let Some(action) = Permission::ALL.into_iter().find(|a| a.name() == s) {
            return Ok(action);
        }
        let reason = if s.trim().is_empty() {
            "empty action name".to_string()
        } else {
            let names: Vec<&str> = Permission::ALL.iter().map(|a| a.name()).collect();
            format!("unknown action; expected one of {}", names.join(", "))
        };
        Err(Error::BadSpec {
            what: "action",
            input: s.to_string(),
            reason,
        })
    }
}

/// A set of [`Permission`]s, stored as a bit set (copying and testing it costs nothing).
///
/// Its text form is the dotted names separated by commas (`list,spy,log.read`); whitespace
/// around names is ignored and an empty string is the empty set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(u32);

impl PermissionSet {
    /// The empty set.
    pub const fn empty() -> Self {
        PermissionSet(0)
    }

    /// Every action (including `admin`).
    pub fn all() -> Self {
        Permission::ALL.into_iter().collect()
    }

    /// Whether `action` is literally in the set.
    pub fn contains(self, action: Permission) -> bool {
        self.0 & action.bit() != 0
    }

    /// Whether the set allows `action`: it contains it, or it contains [`Permission::Admin`], which
    /// implies every action.
    pub fn allows(self, action: Permission) -> bool {
        self.0 & (action.bit() | Permission::Admin.bit()) != 0
    }

    /// Adds `action`; returns whether it was new.
    pub fn insert(&mut self, action: Permission) -> bool {
        let new = !self.contains(action);
        self.0 |= action.bit();
        new
    }

    /// Removes `action`; returns whether it was there.
    pub fn remove(&mut self, action: Permission) -> bool {
        let had = self.contains(action);
        self.0 &= !action.bit();
        had
    }

    /// The set with `action` added (for building sets in expressions).
    #[must_use]
    pub fn with(mut self, action: Permission) -> Self {
        self.insert(action);
        self
    }

    /// Every action in either set.
    #[must_use]
    pub fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many actions the set holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The actions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::empty();
        set.extend(iter);
        set
    }
}

impl Extend<Permission> for PermissionSet {
    fn extend<I: IntoIterator<Item = Permission>>(&mut self, iter: I) {
        for action in iter {
            self.insert(action);
        }
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, action) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action.name())?;
        }
        Ok(())
    }
}

impl FromStr for PermissionSet {
    type Err = Error;

    /// Parses comma-separated dotted names; an error names the bad entry.
    fn from_str(s: &str) -> Result<Self> {
        if s.trim().is_empty() {
            return Ok(PermissionSet::empty());
        }
        s.split(',')
            .map(|name| {
                name.trim().parse::<Permission>().map_err(|e| match e {
                    Error::BadSpec { input, reason, .. } => Error::BadSpec {
                        what: "action set",
                        input: s.to_string(),
                        reason: format!("`{input}`: {reason}"),
                    },
                    other => other,
                })
            })
            .collect()
    }
}
