//! Maintenance windows at run time: `GET`/`POST /api/v1/maintenance`,
//! `DELETE /api/v1/maintenance/{name}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A maintenance window: while it lasts, events of the devices it covers are stored, marked
/// suppressed, and run no action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Maintenance {
    /// The window's name.
    pub name: String,
    /// What it covers: a device name, a glob (`web*`) or `@GROUP`.
    pub target: String,
    /// Why.
    pub reason: String,
    /// Who started it.
    pub by: String,
    /// When it started (RFC 3339).
    #[schema(format = DateTime)]
    pub start: String,
    /// When it ends (RFC 3339).
    #[schema(format = DateTime)]
    pub end: String,
}

/// The body of `POST /api/v1/maintenance`: start a window now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMaintenance {
    /// What it covers: a device name, a glob (`web*`) or `@GROUP`.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^@?[^@\\u0000-\\u0020\\u007f-\\u009f][^\\u0000-\\u0020\\u007f-\\u009f]*$"
    )]
    pub target: String,
    /// How long: a whole number of `ms`, `s`, `m` or `h` (`90s`, `30m`, `2h`; default `1h`).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schema(required = false, pattern = "^[1-9][0-9]{0,5}(ms|s|m|h)$")]
    pub duration: Option<String>,
    /// Why (one line).
    #[serde(default)]
    #[schema(
        required = false,
        max_length = 1024,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
    /// The window's name (default: the target); a window of the same name is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        required = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u0020\\u007f-\\u009f]+$"
    )]
    pub name: Option<String>,
}

/// The path parameter of `DELETE /api/v1/maintenance/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MaintenancePath {
    /// The window's name.
    #[param(min_length = 1, max_length = 128)]
    pub name: String,
}
