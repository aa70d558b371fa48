//! mo-core: the domain and the data path of mo, the console-management SDK.
//!
//! Start here: [`open_local`] holds a device's console open in this process and attaches to it;
//! the [`ConsoleHandle`] it returns types lines and waits for output. The device comes from a
//! [`Connector`], which mo-drivers makes from an address: `mo_drivers::connector_for("sim://web01",
//! &opts)` for the built-in simulated machine (mo-drivers' crate docs open one this way), or
//! `serial:///dev/ttyS0`, `telnet://cs1:7001`, `ssh://…`. mo-core names no driver, so here the
//! echo device stands in.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use mo_core::link::EchoConnector;
//! use mo_core::{ExpectPattern, LocalOptions, open_local};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mo_core::Result<()> {
//! let console = open_local("web01", Arc::new(EchoConnector), LocalOptions::default()).await?;
//! console.send_line("uptime").await?;
//! // The echo device sends the line back; a real one answers it.
//! let seen = console.expect(&[ExpectPattern::literal("uptime")?], Duration::from_secs(5)).await?;
//! assert_eq!(seen.matched, "uptime");
//! console.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `compress` | on | zstd-compressed log segments: written when [`LogOptions::compress_level`] is set, and read. Without it (`default-features = false`, no zstd in the build) a compressed segment is an [`Error::Unsupported`] |
//! | `schema` | off | OpenAPI schemas of the core types the HTTP API shares (for mo-api) |
//!
//! Behind it, one console actor ([`Console`]) per device owns the device's [`Link`] for its
//! whole life. Every byte it reads or writes becomes a [`Chunk`] that goes, in this order, into
//! the record log ([`log`]) and the shared hub, from which every viewer reads at its own pace.
//! Viewers share a console with conserver's semantics (attach, spy, force, who) and drive it
//! through escape sequences parsed by the sans-I/O [`escape`] parser.
//!
//! mo-core knows nothing of SQLite, SSH or sockets (its tokio has neither `net` nor `process`):
//! drivers (`mo-drivers`) provide [`Connector`]s, front doors (`mo-daemon`) provide viewers.
//!
//! ```
//! use mo_core::{EscapeConfig, EscapeParser};
//! use mo_core::escape::Input;
//!
//! let mut parser = EscapeParser::new(EscapeConfig::default());
//! let out = parser.feed(b"ls\r\x05c.");
//! assert!(matches!(out.last(), Some(Input::Command(_))));
//! ```

pub mod automation;
pub mod breakseq;
pub mod console;
pub mod door;
pub mod error;
pub mod escape;
pub mod event;
pub mod facade;
pub mod filewatch;
pub mod glob;
pub mod link;
pub mod log;
pub mod memory;
pub mod policy;
pub mod power;
pub mod record;
pub mod scan;
pub mod secret;
pub mod selector;
pub mod tail;
pub mod tls;

pub use error::{Error, Result};

// The types a newcomer needs, at the root (the modules hold the rest).
pub use automation::{ExpectMatch, ExpectPattern};
pub use console::{Console, ConsoleConfig, Mode};
pub use escape::{EscapeConfig, EscapeParser};
pub use facade::{Attachment, ConsoleHandle, LocalOptions, Output, open_local};
pub use link::{Connector, Link};
pub use log::{LogOptions, LogWriter};
pub use power::{PowerAction, PowerController, PowerState};
pub use record::{Chunk, RecordKind};
