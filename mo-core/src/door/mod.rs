//! What the front doors read from the network, parsed without I/O: the `Authorization` header of
//! the HTTP API ([`auth`]), the SSH login name `user:DEVICE:spy` ([`login`]), the SSH shell's
//! command lines ([`shell`]) with the arguments of its `power`, `macro` and `gang` commands
//! ([`power`], [`macros`], [`gang`]; errors in [`args`]), the WebSocket attach protocol's
//! control messages ([`ws`]), and what clients of the per-console TCP ports send: telnet and
//! RFC 2217 ([`telnet`]), with the ports' `--listen`/`--listen-allow` values ([`listen`]).
//!
//! Each parser takes text and gives a value or the message to show the client; none does I/O,
//! so each has a fuzz target (`fuzz/`). The daemon (`mod`) wires them to its sockets.
//!
//! ```
//! use mo_core::console::Mode;
//! use mo_core::door::login::Login;
//!
//! let login = Login::parse("alice:web01:spy").unwrap();
//! assert_eq!((login.device.as_deref(), login.mode), (Some("web01"), Mode::Spy));
//! ```

/// What a door refused in something a user or a client sent, and why. The reason is the message
/// for them: it names the word, field or value at fault (and never repeats a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BadInput {
    /// What was being read (`the Authorization header`, `an SSH login name`, …).
    pub what: &'static str,
    /// What is wrong, naming the part at fault.
    pub reason: String,
}

pub mod args;
pub mod auth;
pub mod conserver;
pub mod gang;
pub mod line_edit;
pub mod listen;
pub mod login;
pub mod macros;
pub mod power;
pub mod shell;
pub mod telnet;
pub mod ws;
