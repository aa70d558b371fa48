//! mo-core: the domain and the data path of mo, the console-management SDK.
//!
//! One console actor ([`console::Console`]) per device owns the device's [`link::Link`] for its
//! whole life. Every byte it reads or writes becomes a [`record::Chunk`] that goes, in this order,
//! into the record log ([`log`]) and the shared hub, from which every viewer reads at its own pace.
//! Viewers share a console with conserver's semantics (attach, spy, force, who) and drive it through
//! escape sequences parsed by the sans-I/O [`escape`] parser.
//!
//! mo-core knows nothing of SQLite, SSH or sockets: drivers (`mo-drivers`) provide
//! [`link::Connector`]s, front doors (`mo-daemon`) provide viewers.
//!
//! ```
//! use mo_core::escape::{EscapeConfig, EscapeParser, Input};
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
pub mod link;
pub mod log;
pub mod policy;
pub mod power;
pub mod record;
pub mod scan;
pub mod secret;
pub mod tail;
pub mod tls;

pub use error::{Error, Result};
