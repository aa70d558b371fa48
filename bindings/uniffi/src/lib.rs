//! `mo` for Kotlin, Swift and Ruby: a thin [uniffi](https://mozilla.github.io/uniffi-rs) layer
//! over [`mo_core::facade`] and [`mo_client`] (docs/ffi.md).
//!
//! Embedded mode opens a console from a device URL in this process ([`open`]); client mode
//! drives a running daemon ([`Client`]). Every call has a blocking form (`read`, `expect`, …) and
//! an async twin (`read_async`, …: Kotlin `suspend` functions, Swift `async` ones; in Ruby a
//! method that waits with the GVL released). Errors are one enum, [`MoError`], whose variant is the kind and whose message
//! is mo's.
//!
//! The uniffi macros generate the FFI glue, which is `unsafe` code of theirs, not ours: the
//! workspace's `unsafe_code = "deny"` is relaxed for this crate alone.
#![allow(unsafe_code)]

mod client;
mod console;
mod error;
mod runtime;

pub use client::{Client, Device, MoEvent, PowerReport, PowerResult, Session};
pub use console::{
    Console, EXPECT_TIMEOUT_SECS, ExpectMatch, OpenOptions, Viewer, open, open_async,
};
pub use error::MoError;

// The namespace of the generated code: Kotlin package `uniffi.mo`, Swift module `mo`, Ruby
// module `Mo`.
uniffi::setup_scaffolding!("mo");
