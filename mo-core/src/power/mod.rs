//! Power control: the [`PowerController`] trait every power driver implements (DESIGN.md §5).
//!
//! A controller switches one power target: a BMC's chassis (IPMI, Redfish), one PDU outlet (SNMP),
//! or whatever an `exec` template drives. Devices bind to one or more targets; dual power supplies
//! switch together (see [`PowerAction`] and the group operations built on top).
//!
//! Operations a controller lacks answer [`crate::Error::Unsupported`], as announced by
//! [`PowerCapabilities`]. Every operation is bounded in time by the controller: a dead BMC gives
//! [`crate::Error::Timeout`], never a hang.

pub mod binding;
pub mod group;
pub mod service;
#[cfg(test)]
mod testing;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::error::{Error, Result};

pub use binding::PowerBinding;
pub use group::{DeviceOutcome, DeviceResult, GroupEvent, GroupOperation, GroupReport};
pub use service::{
    PlanOutcome, PowerPlan, PowerResult, PowerService, PowerTarget, StatusError, Unavailable,
    read_states,
};

/// The power state of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off.
    Off,
    /// The controller cannot tell (or the target is between states).
    Unknown,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
        })
    }
}

/// A power operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerAction {
    /// Switch on.
    On,
    /// Switch off at once (pull the plug).
    Off,
    /// Off, wait, on.
    Cycle,
    /// Hard reset without removing power (where the controller can).
    Reset,
    /// Ask the operating system to shut down (ACPI power button).
    SoftOff,
}

impl PowerAction {
    /// Every action, in the order menus list them.
    pub const ALL: [PowerAction; 5] = [
        PowerAction::On,
        PowerAction::Off,
        PowerAction::Cycle,
        PowerAction::Reset,
        PowerAction::SoftOff,
    ];

    /// The action's name as commands spell it (`on`, `off`, `cycle`, `reset`, `soft-off`).
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
            PowerAction::SoftOff => "soft-off",
        }
    }

    /// Whether the action can take a running system down (front ends ask for confirmation).
    pub fn is_destructive(self) -> bool {
        !matches!(self, PowerAction::On)
    }

    /// The state the target should reach once the action is done, when there is one.
    pub fn target_state(self) -> Option<PowerState> {
        match self {
            PowerAction::On | PowerAction::Cycle | PowerAction::Reset => Some(PowerState::On),
            PowerAction::Off | PowerAction::SoftOff => Some(PowerState::Off),
        }
    }
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PowerAction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        PowerAction::ALL
            .into_iter()
            .find(|a| a.name() == wanted || (wanted == "softoff" && *a == PowerAction::SoftOff))
            .ok_or_else(|| Error::BadSpec {
                what: "power action",
                input: s.to_owned(),
                reason: "expected one of on, off, cycle, reset, soft-off".to_owned(),
            })
    }
}

/// Which operations a controller supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PowerCapabilities {
    /// [`PowerController::status`] answers.
    pub status: bool,
    /// [`PowerAction::On`] and [`PowerAction::Off`].
    pub on_off: bool,
    /// [`PowerAction::Cycle`] natively (otherwise callers may do off, wait, on).
    pub cycle: bool,
    /// [`PowerAction::Reset`].
    pub reset: bool,
    /// [`PowerAction::SoftOff`].
    pub soft_off: bool,
}

impl PowerCapabilities {
    /// Everything supported.
    pub const ALL: PowerCapabilities = PowerCapabilities {
        status: true,
        on_off: true,
        cycle: true,
        reset: true,
        soft_off: true,
    };

    /// Whether `action` is supported.
    pub fn supports(&self, action: PowerAction) -> bool {
        match action {
            PowerAction::On | PowerAction::Off => self.on_off,
            PowerAction::Cycle => self.cycle,
            PowerAction::Reset => self.reset,
            PowerAction::SoftOff => self.soft_off,
        }
    }

    /// Set [`PowerCapabilities::cycle`].
    pub fn with_cycle(mut self, yes: bool) -> Self {
        self.cycle = yes;
        self
    }

    /// Set [`PowerCapabilities::reset`].
    pub fn with_reset(mut self, yes: bool) -> Self {
        self.reset = yes;
        self
    }

    /// Set [`PowerCapabilities::soft_off`].
    pub fn with_soft_off(mut self, yes: bool) -> Self {
        self.soft_off = yes;
        self
    }
}

/// One power target: a BMC chassis, a PDU outlet, an exec template.
#[async_trait]
pub trait PowerController: Send + Sync + fmt::Debug {
    /// The target's address as shown to people (no secrets), e.g. `snmp://pdu1/apc/3`.
    fn address(&self) -> &str;

    /// What the controller can do.
    fn capabilities(&self) -> PowerCapabilities;

    /// The current power state.
    async fn status(&self) -> Result<PowerState>;

    /// Perform `action`. Returns once the controller has accepted it; controllers that can
    /// observe the result (Redfish polls PowerState) return once the target state is reached or
    /// fail with [`Error::Timeout`].
    async fn perform(&self, action: PowerAction) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_print() -> Result<()> {
        for action in PowerAction::ALL {
            assert_eq!(action.name().parse::<PowerAction>()?, action);
        }
        assert_eq!("SoftOff".parse::<PowerAction>()?, PowerAction::SoftOff);
        let err = "boot".parse::<PowerAction>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("bad power action `boot`: expected one of on, off, cycle, reset, soft-off")
        );
        Ok(())
    }

    #[test]
    fn capabilities_gate_actions() {
        let caps = PowerCapabilities::ALL.with_reset(false);
        assert!(caps.supports(PowerAction::Cycle));
        assert!(!caps.supports(PowerAction::Reset));
        assert!(!PowerAction::On.is_destructive());
        assert_eq!(PowerAction::SoftOff.target_state(), Some(PowerState::Off));
    }
}
