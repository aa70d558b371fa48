//! The WebSocket endpoints: console attach (`GET /api/v1/devices/{name}/attach`) and the event
//! stream (`GET /api/v1/events/stream`). Binary frames carry console bytes both ways; text
//! frames carry the JSON objects below (the event stream sends one [`crate::Event`] per frame).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ErrorCode;
use crate::sessions::{Viewer, ViewerRole};

/// How a viewer attaches (`?mode=`, and the `mode` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ViewerMode {
    /// Take the write lock if free, else spy.
    Attach,
    /// Read only.
    Spy,
    /// Take the write lock from its holder.
    Force,
    /// Write alongside others.
    Join,
}

crate::api_names!(ViewerMode, "mode", "attach, spy, force or join", {
    ViewerMode::Attach => "attach" | "rw",
    ViewerMode::Spy => "spy" | "ro",
    ViewerMode::Force => "force",
    ViewerMode::Join => "join",
});

/// The link state a `state` frame reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LinkStateName {
    /// Connected.
    Up,
    /// Not connected.
    Down,
    /// Connecting.
    Connecting,
    /// Waiting for a viewer (on demand).
    Idle,
}

crate::api_names!(LinkStateName, "link state", "up, down, connecting or idle", {
    LinkStateName::Up => "up",
    LinkStateName::Down => "down",
    LinkStateName::Connecting => "connecting",
    LinkStateName::Idle => "idle",
});

/// Query of the attach endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachQuery {
    /// attach (default), spy, force or join.
    #[param(inline)]
    pub mode: Option<ViewerMode>,
    /// Lines of recent output to replay first.
    #[param(minimum = 0, maximum = 100_000)]
    pub replay: Option<u64>,
    /// API token (instead of the Authorization header).
    pub token: Option<String>,
}

/// Query of the event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only this device.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub device: Option<String>,
    /// API token (instead of the Authorization header).
    pub token: Option<String>,
}

/// A text frame from the daemon on the attach WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServerFrame {
    /// The first frame: who is attached how.
    Hello {
        /// The device.
        device: String,
        /// The user.
        user: String,
        /// The role the viewer got.
        role: ViewerRole,
        /// What happened on attach (`attached`, `spying: alice holds the lock`, …).
        message: String,
    },
    /// Something to show the user; `role` is set when the viewer's role changed.
    Notice {
        /// The text.
        text: String,
        /// The viewer's role now, after a mode change or a demotion.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        role: Option<ViewerRole>,
    },
    /// The viewer fell behind and lost this many bytes of output.
    Missed {
        /// Bytes lost.
        bytes: u64,
    },
    /// The link's state changed.
    State {
        /// The new state.
        state: LinkStateName,
    },
    /// The answer to a `who` message.
    Who {
        /// Everyone on the console.
        viewers: Vec<Viewer>,
    },
    /// A request failed (the connection stays open unless a `closed` frame follows).
    Error {
        /// The stable code.
        code: ErrorCode,
        /// What was wrong.
        message: String,
    },
    /// The daemon ends the session (the WebSocket close follows).
    Closed {
        /// Why.
        reason: String,
    },
}

impl ServerFrame {
    /// A notice without a role change.
    pub fn notice(text: impl Into<String>) -> Self {
        ServerFrame::Notice {
            text: text.into(),
            role: None,
        }
    }
}

/// A text frame from the client on the attach WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ClientFrame {
    /// Send break sequence `number` (0: the plain BREAK, sequence 1); needs `break`.
    Break {
        /// The sequence's number, 0 to 9.
        #[serde(default)]
        #[schema(maximum = 9)]
        number: u8,
    },
    /// The client's terminal size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Ask who is on the console (answered by a `who` frame).
    Who,
    /// Change the viewer's mode (answered by a notice with the new role).
    Mode {
        /// The mode.
        mode: ViewerMode,
    },
    /// Write a note into the record log (needs `log.note`).
    Note {
        /// The note (not empty, at most 64 KiB).
        text: String,
    },
    /// Replay the last `lines` lines (at most 100000).
    Replay {
        /// How many.
        lines: u64,
    },
    /// Set DTR and/or RTS (needs `break` and write access, like `POST
    /// /api/v1/devices/{name}/signals`); each change comes back as a notice (`DTR dropped by
    /// alice`) through the timeline, a refusal as an `error` frame.
    Signal {
        /// What to do with DTR.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        dtr: Option<crate::LineSetting>,
        /// What to do with RTS.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        rts: Option<crate::LineSetting>,
    },
}
