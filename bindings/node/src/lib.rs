//! `mo` for Node.js: a thin napi-rs shell over [`mo_core::facade`].
//!
//! Embedded mode opens a console from a device URL in this process ([`open`]); client mode drives
//! a running daemon ([`client::Client`]). Every method returns a Promise. Errors reject with a
//! message prefixed `[mo:CODE] `; `index.js` turns the code into a typed error class
//! (`ConnectError`, `AuthError`, `TimeoutError`, …), so the prefix never reaches users.
//!
//! The napi macros generate the FFI glue, which is `unsafe` code of theirs, not ours: the
//! workspace's `unsafe_code = "deny"` is relaxed for this crate alone.
#![allow(unsafe_code)]

mod client;
mod command;
mod console;
mod error;
mod log;

pub use client::{Client, EventStream};
pub use command::SendCommandOptions;
pub use console::{Console, open};
pub use log::Log;
