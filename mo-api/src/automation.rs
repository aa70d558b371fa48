//! Many consoles at once: `POST /api/v1/gang`, `GET /api/v1/macros`,
//! `POST /api/v1/macros/{name}/play`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `POST /api/v1/gang`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GangRequest {
    /// Device names, globs or @GROUPs.
    #[schema(min_items = 1)]
    pub targets: Vec<String>,
    /// The command line sent to each.
    pub command: String,
}

/// A device and why something did not happen on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceReason {
    /// The device.
    pub device: String,
    /// Why.
    pub reason: String,
}

/// The answer of `POST /api/v1/gang`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GangReport {
    /// Each device's output after the command.
    pub outputs: BTreeMap<String, String>,
    /// The devices that answered like the majority.
    pub majority: Vec<String>,
    /// The devices that answered differently.
    pub divergent: Vec<String>,
    /// Devices the command could not be sent to, and why.
    pub failed: Vec<DeviceReason>,
    /// Devices that could not be attached (lock held by someone else, console down), and why.
    pub refused: Vec<DeviceReason>,
    /// Output bytes lost per device while collecting (only devices that lost some).
    pub missed: BTreeMap<String, u64>,
}

/// The body of `POST /api/v1/macros/{name}/play`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayRequest {
    /// Device names, globs or @GROUPs.
    #[schema(min_items = 1)]
    pub targets: Vec<String>,
    /// The macro's arguments by name.
    #[serde(default)]
    #[schema(required = false)]
    pub args: BTreeMap<String, String>,
    /// Devices played at once (default 16).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000, nullable = false)]
    pub parallel: Option<usize>,
    /// Go on on the other devices after one fails (default: stop them all).
    #[serde(default, rename = "continue")]
    #[schema(required = false)]
    pub keep_going: bool,
    /// Only show the plan.
    #[serde(default)]
    #[schema(required = false)]
    pub dry_run: bool,
}

impl PlayRequest {
    /// Play on `targets` with no arguments, 16 at once, stopping all on a failure.
    pub fn new(targets: Vec<String>) -> Self {
        PlayRequest {
            targets,
            args: BTreeMap::new(),
            parallel: None,
            keep_going: false,
            dry_run: false,
        }
    }
}

/// The plan of a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MacroPlan {
    /// The macro.
    #[serde(rename = "macro")]
    pub name: String,
    /// The devices it would run on.
    pub devices: Vec<String>,
    /// The steps, as text.
    pub plan: String,
}

/// One device's outcome of a macro.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MacroResult {
    /// The device.
    pub device: String,
    /// Whether every step worked.
    pub ok: bool,
    /// What happened, one line.
    pub result: String,
}

/// The outcome of a played macro.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MacroResults {
    /// The macro.
    #[serde(rename = "macro")]
    pub name: String,
    /// Whether it worked on every device.
    pub ok: bool,
    /// Each device's outcome.
    pub results: Vec<MacroResult>,
}

/// The answer of `POST /api/v1/macros/{name}/play`: the plan (`dry_run`) or the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PlayReport {
    /// What a dry run would do.
    Plan(MacroPlan),
    /// What was done.
    Played(MacroResults),
}
