//! The link abstraction: how a console actor talks to a device.
//!
//! A [`Connector`] knows one device address and opens [`Link`]s to it, again and again (the actor
//! reconnects). A link is split in three parts so that reading, writing and control operations never
//! wait on each other: an [`AsyncRead`], an [`AsyncWrite`], and a [`LinkControl`] for the optional
//! abilities (BREAK, window size, …) announced by [`Capabilities`].
//!
//! Dropping all parts of a link closes it; drivers release what they hold in `Drop` (an `exec` link
//! ends its whole process group).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};

/// Optional abilities of a link. Operations a link lacks answer [`Error::Unsupported`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`ControlOp::Break`] reaches the device.
    pub send_break: bool,
    /// [`ControlOp::WindowSize`] reaches the device.
    pub window_size: bool,
    /// Baud rate, parity and the like can be changed.
    pub line_settings: bool,
    /// Modem lines can be set: [`ControlOp::SetDtr`] and [`ControlOp::SetRts`] reach the device.
    pub modem_lines: bool,
}

impl Capabilities {
    /// No optional abilities.
    pub const NONE: Capabilities = Capabilities {
        send_break: false,
        window_size: false,
        line_settings: false,
        modem_lines: false,
    };

    /// Set [`Capabilities::send_break`].
    pub fn with_break(mut self, yes: bool) -> Self {
        self.send_break = yes;
        self
    }

    /// Set [`Capabilities::window_size`].
    pub fn with_window_size(mut self, yes: bool) -> Self {
        self.window_size = yes;
        self
    }

    /// Set [`Capabilities::line_settings`].
    pub fn with_line_settings(mut self, yes: bool) -> Self {
        self.line_settings = yes;
        self
    }

    /// Set [`Capabilities::modem_lines`].
    pub fn with_modem_lines(mut self, yes: bool) -> Self {
        self.modem_lines = yes;
        self
    }
}

/// A control operation sent to a link, out of band of the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlOp {
    /// Send a BREAK condition for about this long.
    Break {
        /// How long the line is held in the break state.
        duration: Duration,
    },
    /// Tell the device the viewer's terminal size.
    WindowSize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Raise (`true`) or drop (`false`) the DTR (Data Terminal Ready) modem line.
    /// Announced by [`Capabilities::modem_lines`].
    SetDtr(bool),
    /// Raise (`true`) or drop (`false`) the RTS (Request To Send) modem line.
    /// Announced by [`Capabilities::modem_lines`].
    SetRts(bool),
}

impl ControlOp {
    /// A short name of the operation for messages (`break`, `window size`, `dtr`, `rts`).
    pub fn name(&self) -> &'static str {
        match self {
            ControlOp::Break { .. } => "break",
            ControlOp::WindowSize { .. } => "window size",
            ControlOp::SetDtr(_) => "dtr",
            ControlOp::SetRts(_) => "rts",
        }
    }
}

/// Out-of-band control of an open link. Shared (`Arc`) so a long BREAK sequence can run beside
/// reading and writing.
#[async_trait]
pub trait LinkControl: Send + Sync {
    /// Perform `op`, or answer [`Error::Unsupported`].
    async fn control(&self, op: ControlOp) -> Result<()>;
}

/// A control that supports nothing.
#[derive(Debug, Clone)]
pub struct NoControl {
    /// What to name in the `Unsupported` error (driver or address).
    pub what: String,
}

#[async_trait]
impl LinkControl for NoControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        Err(Error::Unsupported {
            operation: op.name(),
            what: self.what.clone(),
        })
    }
}

/// The reading half of a link.
pub type LinkReader = Pin<Box<dyn AsyncRead + Send>>;
/// The writing half of a link.
pub type LinkWriter = Pin<Box<dyn AsyncWrite + Send>>;

/// An open byte link to a device.
pub struct Link {
    /// Bytes from the device. `Ok(0)` or an error means the link is down.
    pub reader: LinkReader,
    /// Bytes to the device.
    pub writer: LinkWriter,
    /// Out-of-band operations.
    pub control: Arc<dyn LinkControl>,
}

impl Link {
    /// A link of just bytes: `reader` and `writer` with no optional abilities. Control operations
    /// answer [`Error::Unsupported`] naming `what`.
    pub fn plain(
        reader: impl AsyncRead + Send + 'static,
        writer: impl AsyncWrite + Send + 'static,
        what: impl Into<String>,
    ) -> Link {
        Link {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            control: Arc::new(NoControl { what: what.into() }),
        }
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// Opens links to one device address. A console actor calls [`Connector::connect`] at start and
/// after every failure.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// Open a new link. Errors say what failed and where.
    async fn connect(&self) -> Result<Link>;
    /// What links from this connector can do.
    fn capabilities(&self) -> Capabilities;
    /// The address, for messages (secrets removed).
    fn address(&self) -> String;
}

/// A device that sends back every byte it receives: for examples, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoConnector;

#[async_trait]
impl Connector for EchoConnector {
    async fn connect(&self) -> Result<Link> {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (mut device_rx, mut device_tx) = tokio::io::split(theirs);
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut device_rx, &mut device_tx).await;
        });
        let (reader, writer) = tokio::io::split(ours);
        Ok(Link::plain(reader, writer, "echo"))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    fn address(&self) -> String {
        "echo:".into()
    }
}
