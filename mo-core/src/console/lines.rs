//! The modem lines of a console as its handles see them: DTR and RTS as mo last set them, and
//! when those and the device's status lines ([`super::Console::modem`]) last changed.

use std::time::SystemTime;

/// DTR and RTS as set through mo, and when the modem lines last changed ([`super::Console::lines`]).
/// Each new link starts with both raised and no setting time (a port raises them when opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    /// DTR as mo last set it (a port raises it when it is opened).
    pub dtr: bool,
    /// When DTR was last set through mo (`None`: not on the current link).
    pub dtr_changed: Option<SystemTime>,
    /// RTS as mo last set it (a port raises it when it is opened).
    pub rts: bool,
    /// When RTS was last set through mo (`None`: not on the current link).
    pub rts_changed: Option<SystemTime>,
    /// When the status lines (DCD, DSR, CTS, RI) last changed, or were first reported on the
    /// current link (`None`: never reported).
    pub modem_changed: Option<SystemTime>,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            dtr: true,
            dtr_changed: None,
            rts: true,
            rts_changed: None,
            modem_changed: None,
        }
    }
}

impl Lines {
    /// The level of `line` as mo last set it.
    pub fn level(&self, line: crate::link::Signal) -> bool {
        match line {
            crate::link::Signal::Dtr => self.dtr,
            crate::link::Signal::Rts => self.rts,
        }
    }

    /// Record that `line` was set to `on` at `at`.
    pub(super) fn set(&mut self, line: crate::link::Signal, on: bool, at: SystemTime) {
        match line {
            crate::link::Signal::Dtr => {
                self.dtr = on;
                self.dtr_changed = Some(at);
            }
            crate::link::Signal::Rts => {
                self.rts = on;
                self.rts_changed = Some(at);
            }
        }
    }
}
