//! mo-api: the request and response bodies of mo's HTTP/WebSocket API (`mod --http ADDR`), one
//! Rust type per JSON object, with serde for the wire and utoipa for the OpenAPI document.
//!
//! The daemon's handlers take and return these types, [mo-client] reads its answers into them,
//! and the document at `/api/v1/openapi.json` is generated from their [`utoipa::ToSchema`]
//! derives (with the constraints the handlers enforce: patterns, lengths, ranges, enums). The
//! crate has no I/O and depends on no other mo crate, so anything that speaks the API may use it.
//!
//! | resource | types |
//! |---|---|
//! | errors | [`ErrorBody`], [`ErrorCode`] |
//! | health | [`Health`] |
//! | cluster | [`ClusterStatus`], [`ClusterNode`], [`ClusterConsole`], [`NodeState`] |
//! | devices | [`Device`], [`Settings`], [`NewDevice`], [`SettingsInput`] |
//! | viewers | [`Viewer`], [`SessionInfo`], [`ViewerRole`] |
//! | power | [`PowerRequest`], [`PowerReport`], [`PowerAction`] |
//! | line signals | [`SignalRequest`], [`SignalReport`], [`Lines`], [`LineSetting`] |
//! | record log | [`LogQuery`], [`SearchQuery`], [`SearchHit`], [`VerifyQuery`], [`VerifyReport`] |
//! | events | [`Event`], [`EventsQuery`], [`Severity`] |
//! | users, roles | [`User`], [`NewUser`], [`UserPath`], [`NewPassword`], [`SshKey`], [`NewSshKey`], [`SshKeyQuery`], [`Role`] |
//! | device groups, grants | [`DeviceGroup`], [`DeviceGroupDetail`], [`NewDeviceGroup`], [`DeviceGroupChange`], [`AccessPath`], [`Grant`], [`GrantQuery`] |
//! | user groups, roles | [`UserGroup`], [`NewUserGroup`], [`UserGroupChange`], [`AccessPath`], [`RoleActions`] |
//! | device secrets | [`NewSecret`], [`SecretPath`], [`SECRET_KINDS`] |
//! | gang, macros | [`GangRequest`], [`GangReport`], [`PlayRequest`], [`PlayReport`] |
//! | WebSocket | [`ServerFrame`], [`ClientFrame`], [`AttachQuery`], [`StreamQuery`] |
//! | web console | [`LoginRequest`], [`WebSessionInfo`], [`Me`], [`NoteRequest`], [`NoteCreated`], [`AsciicastQuery`] |
//!
//! [mo-client]: https://example.invalid/mo/mo-client

mod access;
mod automation;
mod cluster;
mod devices;
mod discover;
mod error;
mod events;
mod health;
mod hosts;
mod log;
mod maintenance;
mod power;
pub mod schema;
mod secrets;
mod sessions;
mod signals;
mod tokens;
mod users;
mod web;
mod ws;

pub use access::{
    AccessPath, DeviceGroup, DeviceGroupChange, DeviceGroupDetail, Grant, GrantQuery,
    NewDeviceGroup, NewUserGroup, RoleActions, UserGroup, UserGroupChange,
};
pub use automation::{
    DeviceReason, GangReport, GangRequest, MacroPlan, MacroResult, MacroResults, PlayReport,
    PlayRequest,
};
pub use cluster::{ClusterConsole, ClusterNode, ClusterStatus, NODE_PATTERN, NodeState};
pub use devices::{
    Device, DeviceState, LogPolicy, LoginProfile, Modem, NewDevice, Settings, SettingsInput,
};
pub use discover::{
    DiscoverCredential, DiscoverReport, DiscoverRequest, DiscoveredHost, MAX_DISCOVER_ADDRESSES,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use events::{
    Event, EventId, EventsQuery, MAX_RAISE_CONTEXT_LINES, MAX_RAISE_MESSAGE_CHARS, RaiseEvent,
    RaiseSource, Severity,
};
pub use health::{Degraded, Health, HealthPart, HealthStatus, Ready};
pub use hosts::{DAEMON_HOST, HostInfo, HostInfoKind, HostPath};
pub use log::{LogQuery, SearchHit, SearchQuery, VerifyQuery, VerifyReport};
pub use maintenance::{Maintenance, MaintenancePath, StartMaintenance};
pub use power::{PowerAction, PowerReport, PowerRequest, PowerResult, PowerState};
pub use schema::{
    BREAK_PATTERN, DEVICE_URL_PATTERN, ESCAPE_PATTERN, MAX_EVENTS_LIMIT, MAX_REPLAY,
    MAX_SEARCH_LIMIT, MAX_TAIL, NAME_PATTERN, PLAIN_TEXT_PATTERN, POWER_URL_PATTERN,
    RELATIVE_TIME_PATTERN, USER_PATTERN,
};
pub use secrets::{MAX_SECRET_CHARS, NewSecret, SECRET_KINDS, SecretPath};
pub use sessions::{DevicePath, MacroPath, SessionInfo, Viewer, ViewerRole};
pub use signals::{LineSetting, LineWord, Lines, SignalReport, SignalRequest};
pub use tokens::{
    ApiToken, CreatedApiToken, NewApiToken, TOKEN_ACTIONS, TokenPath, valid_expiry, valid_scope,
};
pub use users::{NewPassword, NewSshKey, NewUser, Role, SshKey, SshKeyQuery, User, UserPath};
pub use web::{
    AsciicastQuery, LoginRequest, MAX_LOGIN_PASSWORD, MAX_LOGIN_USER, MAX_NOTE_CHARS, Me,
    NoteCreated, NoteRequest, WebSessionInfo,
};
pub use ws::{AttachQuery, ClientFrame, LinkStateName, ServerFrame, StreamQuery, ViewerMode};

/// A word of the API that is not one of an enum's names (`"sideways"` for a power action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being named (`power action`).
    pub what: &'static str,
    /// The word as given.
    pub given: String,
    /// The names that are known, comma-separated.
    pub expected: &'static str,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown {} `{}` (use {})",
            self.what, self.given, self.expected
        )
    }
}

impl std::error::Error for UnknownName {}

/// `impl Display` and `FromStr` for a fieldless enum by its API names.
macro_rules! api_names {
    ($ty:ty, $what:literal, $expected:literal, { $($variant:path => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// The name as the API spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $($variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name $(| $alias)* => Ok($variant),)+
                    _ => Err($crate::UnknownName {
                        what: $what,
                        given: s.to_string(),
                        expected: $expected,
                    }),
                }
            }
        }
    };
}
pub(crate) use api_names;
