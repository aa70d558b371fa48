//! Viewers of consoles: `GET /api/v1/devices/{name}/who`, `GET /api/v1/sessions`, and the path
//! parameters that name a device or a macro.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How a viewer is on a console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ViewerRole {
    /// Holds the write lock.
    Attach,
    /// Writes alongside others (`join`).
    Join,
    /// Reads only.
    Spy,
}

crate::api_names!(ViewerRole, "viewer role", "attach, join or spy", {
    ViewerRole::Attach => "attach",
    ViewerRole::Join => "join",
    ViewerRole::Spy => "spy",
});

/// One viewer of a console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Viewer {
    /// The user.
    pub user: String,
    /// How the user is on the console.
    pub role: ViewerRole,
    /// Since when (RFC 3339).
    #[schema(format = DateTime)]
    pub since: String,
    /// Where the viewer came from (front door and address).
    #[serde(default)]
    #[schema(required = false)]
    pub origin: String,
}

impl Viewer {
    /// A viewer `user` as `role` since `since` (RFC 3339) from `origin`.
    pub fn new(
        user: impl Into<String>,
        role: ViewerRole,
        since: impl Into<String>,
        origin: impl Into<String>,
    ) -> Self {
        Viewer {
            user: user.into(),
            role,
            since: since.into(),
            origin: origin.into(),
        }
    }
}

/// A viewer of one of the caller's visible consoles (`GET /api/v1/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// The device.
    pub device: String,
    /// The viewer.
    #[serde(flatten)]
    pub viewer: Viewer,
}

impl SessionInfo {
    /// `viewer` on `device`.
    pub fn new(device: impl Into<String>, viewer: Viewer) -> Self {
        SessionInfo {
            device: device.into(),
            viewer,
        }
    }
}

/// The path parameter of the routes under `/api/v1/devices/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DevicePath {
    /// The device name.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
}

/// The path parameter of `POST /api/v1/macros/{name}/play`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MacroPath {
    /// The macro name.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
}
