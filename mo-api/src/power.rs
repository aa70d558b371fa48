//! Power: `GET/POST /api/v1/devices/{name}/power`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PowerAction {
    /// Switch on.
    On,
    /// Switch off.
    Off,
    /// Off, then on.
    Cycle,
    /// Hard reset.
    Reset,
    /// Ask the OS to shut down.
    SoftOff,
    /// Only report the state.
    Status,
}

crate::api_names!(PowerAction, "power action", "on, off, cycle, reset, soft-off or status", {
    PowerAction::On => "on",
    PowerAction::Off => "off",
    PowerAction::Cycle => "cycle",
    PowerAction::Reset => "reset",
    PowerAction::SoftOff => "soft-off" | "softoff",
    PowerAction::Status => "status",
});

/// The body of `POST /api/v1/devices/{name}/power`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    /// What to do (all controllers together).
    pub action: PowerAction,
}

/// The state of a power controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PowerState {
    /// Powered.
    On,
    /// Not powered.
    Off,
    /// The controller did not say.
    Unknown,
}

crate::api_names!(PowerState, "power state", "on, off or unknown", {
    PowerState::On => "on",
    PowerState::Off => "off",
    PowerState::Unknown => "unknown",
});

/// One power controller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PowerResult {
    /// The controller's address.
    pub controller: String,
    /// Its state.
    pub state: PowerState,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

impl PowerResult {
    /// A controller's state, without an error.
    pub fn new(controller: impl Into<String>, state: PowerState) -> Self {
        PowerResult {
            controller: controller.into(),
            state,
            error: None,
        }
    }
}

/// The answer of a power request: each controller's state (after the action, for an action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Power)]
pub struct PowerReport {
    /// The device.
    pub device: String,
    /// The action carried out (absent for a status query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub action: Option<PowerAction>,
    /// Whether the action succeeded on every controller (absent for a status query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ok: Option<bool>,
    /// What the controllers said (absent for a status query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
    /// Each controller's state.
    pub results: Vec<PowerResult>,
    /// The device's state over all its controllers: `on` or `off` when they all say so,
    /// `unknown` otherwise.
    #[serde(default = "unknown_state")]
    pub state: PowerState,
}

fn unknown_state() -> PowerState {
    PowerState::Unknown
}

/// `on` or `off` when every result says so, `unknown` otherwise (or without results).
fn overall(results: &[PowerResult]) -> PowerState {
    match results.first().map(|r| r.state) {
        Some(first)
            if results
                .iter()
                .all(|r| r.state == first && r.error.is_none()) =>
        {
            first
        }
        _ => PowerState::Unknown,
    }
}

impl PowerReport {
    /// A status report of `device`.
    pub fn status(device: impl Into<String>, results: Vec<PowerResult>) -> Self {
        PowerReport {
            device: device.into(),
            action: None,
            ok: None,
            message: None,
            state: overall(&results),
            results,
        }
    }
}
