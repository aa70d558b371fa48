//! Line signals: `POST /api/v1/devices/{name}/signals` sets DTR and RTS; [`Lines`] is what a
//! device's answer reports about its modem lines.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use mo_core::door::ws::{LineSetting, LineWord};

/// The body of `POST /api/v1/devices/{name}/signals`: at least one of `dtr` and `rts`; a line
/// left out is not touched. DTR is set before RTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct SignalRequest {
    /// What to do with DTR (Data Terminal Ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dtr: Option<LineSetting>,
    /// What to do with RTS (Request To Send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rts: Option<LineSetting>,
}

/// DTR and RTS as mo last set them and when the modem lines last changed (RFC 3339 UTC times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lines {
    /// DTR as mo last set it (a port raises it when it is opened).
    pub dtr: bool,
    /// When DTR was last set through mo (absent: not since the link came up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dtr_changed: Option<String>,
    /// RTS as mo last set it (a port raises it when it is opened).
    pub rts: bool,
    /// When RTS was last set through mo (absent: not since the link came up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rts_changed: Option<String>,
    /// When the status lines (`modem`: DCD, DSR, CTS, RI) last changed or were first reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub modem_changed: Option<String>,
}

/// The answer to `POST /api/v1/devices/{name}/signals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignalReport {
    /// The device.
    pub device: String,
    /// What was done, as the record log says it (`DTR dropped by alice`).
    pub done: Vec<String>,
    /// The lines after the change. The device's answer (DSR, CTS, …) arrives a moment later:
    /// read it from `GET /api/v1/devices/{name}` (`modem`).
    pub lines: Lines,
}
