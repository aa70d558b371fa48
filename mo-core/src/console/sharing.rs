//! Sharing one console among its viewers — the conserver semantics — as a state machine without
//! I/O, clocks or tasks: who is connected, who holds the write lock, who may type.
//!
//! - `attach` takes the write lock if it is free, and otherwise spies (the viewer is told who
//!   holds it);
//! - `spy` is read-only;
//! - `force` takes the lock and demotes the holder to spy;
//! - `join` writes alongside the holder where the console allows it (without a holder it is an
//!   attach); joined writers become spies when the holder leaves or is demoted;
//! - `who` lists everyone, the holder first, then joined writers, then spies.
//!
//! Each change returns the notices the actor puts into the timeline (who attached, forced,
//! joined, left), in order.

use std::sync::Arc;
use std::time::SystemTime;

use super::{Mode, ViewerId, ViewerInfo, ViewerRole};
use crate::error::{Error, Result};

/// A notice for the timeline: the user it is about and the text.
pub(super) type Notice = (Arc<str>, String);

#[derive(Debug)]
struct Viewer {
    id: ViewerId,
    user: Arc<str>,
    origin: Arc<str>,
    role: ViewerRole,
    since: SystemTime,
}

/// What a viewer got: its role, a message for it alone, and the notices for everyone.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Granted {
    pub(super) role: ViewerRole,
    pub(super) message: String,
    pub(super) notices: Vec<Notice>,
}

/// The viewers of one console and their roles.
#[derive(Debug)]
pub(super) struct Sharing {
    name: Arc<str>,
    allow_join: bool,
    viewers: Vec<Viewer>,
    next_id: ViewerId,
}

impl Sharing {
    /// No viewers yet, for console `name`; `allow_join` permits [`Mode::Join`].
    pub(super) fn new(name: Arc<str>, allow_join: bool) -> Self {
        Sharing {
            name,
            allow_join,
            viewers: Vec::new(),
            next_id: 1,
        }
    }

    /// Whether nobody is connected.
    pub(super) fn is_empty(&self) -> bool {
        self.viewers.is_empty()
    }

    fn join_refused(&self) -> Error {
        Error::Denied {
            reason: format!("{} does not allow joined writers", self.name),
        }
    }

    /// Check that a new viewer may ask for `mode` (before anything else is set up for it).
    pub(super) fn check(&self, mode: Mode) -> Result<()> {
        if mode == Mode::Join && !self.allow_join {
            return Err(self.join_refused());
        }
        Ok(())
    }

    /// A new viewer connects asking for `mode`. Returns its id and what it got.
    pub(super) fn connect(
        &mut self,
        user: Arc<str>,
        origin: Arc<str>,
        mode: Mode,
        since: SystemTime,
    ) -> Result<(ViewerId, Granted)> {
        self.check(mode)?;
        let id = self.next_id;
        self.next_id += 1;
        self.viewers.push(Viewer {
            id,
            user,
            origin,
            role: ViewerRole::Spy,
            since,
        });
        match self.apply_mode(id, mode) {
            Ok(granted) => Ok((id, granted)),
            Err(e) => {
                self.viewers.retain(|v| v.id != id);
                Err(e)
            }
        }
    }

    fn viewer(&self, id: ViewerId) -> Option<&Viewer> {
        self.viewers.iter().find(|v| v.id == id)
    }

    fn holder(&self) -> Option<&Viewer> {
        self.viewers
            .iter()
            .find(|v| v.role == ViewerRole::ReadWrite)
    }

    fn gone() -> Error {
        Error::Denied {
            reason: "this viewer is no longer connected".into(),
        }
    }

    /// Give viewer `id` the role `mode` asks for.
    pub(super) fn apply_mode(&mut self, id: ViewerId, mode: Mode) -> Result<Granted> {
        let me = self
            .viewer(id)
            .map(|v| v.user.clone())
            .ok_or_else(Self::gone)?;
        let holder = self.holder().map(|v| (v.id, v.user.clone()));
        let granted = |role, message: String, notice: String| Granted {
            role,
            message,
            notices: vec![(me.clone(), notice)],
        };
        let attached = format!("{me} attached read-write");
        let spying = format!("{me} is spying");
        Ok(match mode {
            Mode::Spy => {
                self.set_role(id, ViewerRole::Spy);
                granted(ViewerRole::Spy, "spying (read-only)".into(), spying)
            }
            Mode::Attach => match holder {
                Some((hid, _)) if hid == id => Granted {
                    role: ViewerRole::ReadWrite,
                    message: "already attached read-write".into(),
                    notices: Vec::new(),
                },
                Some((_, huser)) => {
                    self.set_role(id, ViewerRole::Spy);
                    let message = format!(
                        "{} is in use by {huser}: spying (read-only); force with the escape `f`",
                        self.name
                    );
                    granted(ViewerRole::Spy, message, spying)
                }
                None => {
                    self.set_role(id, ViewerRole::ReadWrite);
                    granted(
                        ViewerRole::ReadWrite,
                        "attached read-write".into(),
                        attached,
                    )
                }
            },
            Mode::Force => {
                let notice = if let Some((hid, huser)) = holder.filter(|(hid, _)| *hid != id) {
                    self.set_role(hid, ViewerRole::Spy);
                    self.set_role(id, ViewerRole::ReadWrite);
                    format!("{me} forced write access; {huser} is now spying")
                } else {
                    self.set_role(id, ViewerRole::ReadWrite);
                    attached
                };
                let message = "attached read-write (forced)".into();
                granted(ViewerRole::ReadWrite, message, notice)
            }
            Mode::Join => {
                if !self.allow_join {
                    return Err(self.join_refused());
                }
                match holder {
                    Some((hid, huser)) if hid != id => {
                        self.set_role(id, ViewerRole::Joined);
                        granted(
                            ViewerRole::Joined,
                            format!("writing together with {huser}"),
                            format!("{me} joined {huser} (shared write)"),
                        )
                    }
                    _ => {
                        self.set_role(id, ViewerRole::ReadWrite);
                        granted(
                            ViewerRole::ReadWrite,
                            "attached read-write".into(),
                            attached,
                        )
                    }
                }
            }
        })
    }

    fn set_role(&mut self, id: ViewerId, role: ViewerRole) {
        if let Some(v) = self.viewers.iter_mut().find(|v| v.id == id) {
            v.role = role;
        }
        self.release_orphaned_joiners();
    }

    /// Joined writers share the holder's lock: without a holder they have nothing to join.
    fn release_orphaned_joiners(&mut self) {
        if self.holder().is_none() {
            for v in self
                .viewers
                .iter_mut()
                .filter(|v| v.role == ViewerRole::Joined)
            {
                v.role = ViewerRole::Spy;
            }
        }
    }

    /// Viewer `id` leaves; the notice to show, unless it was not connected.
    pub(super) fn disconnect(&mut self, id: ViewerId) -> Option<Notice> {
        let pos = self.viewers.iter().position(|v| v.id == id)?;
        let v = self.viewers.remove(pos);
        let text = if v.role == ViewerRole::ReadWrite {
            self.release_orphaned_joiners();
            format!("{} detached; write lock free", v.user)
        } else {
            format!("{} detached", v.user)
        };
        Some((v.user, text))
    }

    /// The user of viewer `id` if it may write; otherwise why not (`what` names the attempt:
    /// "typing", "sending a break").
    pub(super) fn writer(&self, id: ViewerId, what: &str) -> Result<Arc<str>> {
        let v = self.viewer(id).ok_or_else(Self::gone)?;
        if !v.role.can_write() {
            let by = self
                .holder()
                .map(|h| format!(" (write lock held by {})", h.user))
                .unwrap_or_default();
            return Err(Error::Denied {
                reason: format!(
                    "you are spying on {}{by}: {what} needs read-write; attach with the escape `a` or force with `f`",
                    self.name
                ),
            });
        }
        Ok(v.user.clone())
    }

    /// Whether `user`, acting outside the console (the REST API, the SSH shell), may do `what`,
    /// which needs write access: the write lock is free, or one of `user`'s own viewers holds
    /// it or writes joined to it. Otherwise a [`Error::Conflict`] naming the holder.
    pub(super) fn may_write_as(&self, user: &str, what: &str) -> Result<()> {
        let Some(holder) = self.holder() else {
            return Ok(());
        };
        if self
            .viewers
            .iter()
            .any(|v| &*v.user == user && v.role.can_write())
        {
            return Ok(());
        }
        Err(Error::Conflict {
            what: format!(
                "{} is in use: the write lock is held by {}; {what} needs the lock free or yours",
                self.name, holder.user
            ),
        })
    }

    /// Whether viewer `id` is connected and may write.
    pub(super) fn can_write(&self, id: ViewerId) -> bool {
        self.viewer(id).is_some_and(|v| v.role.can_write())
    }

    /// Everyone connected: the write-lock holder first, then joined writers, then spies, each
    /// group in the order they connected.
    pub(super) fn who(&self) -> Vec<ViewerInfo> {
        let mut list: Vec<ViewerInfo> = self
            .viewers
            .iter()
            .map(|v| ViewerInfo {
                id: v.id,
                user: v.user.clone(),
                role: v.role,
                since: v.since,
                origin: v.origin.clone(),
            })
            .collect();
        list.sort_by_key(|v| {
            (
                v.role != ViewerRole::ReadWrite,
                v.role != ViewerRole::Joined,
                v.id,
            )
        });
        list
    }
}

#[cfg(test)]
#[path = "sharing_tests.rs"]
mod tests;
