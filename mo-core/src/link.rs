//! The link abstraction: how a console actor talks to a device.
//!
//! A [`Connector`] knows one device address and opens [`Link`]s to it, again and again (the actor
//! reconnects). A link is split in three parts so that reading, writing and control operations never
//! wait on each other: an [`AsyncRead`], an [`AsyncWrite`], and a [`LinkControl`] for the optional
//! abilities (BREAK, window size, …) announced by [`Capabilities`].
//!
//! A link may also report what it learns about the device's side out of band — today the modem
//! lines ([`ModemState`]) — as a [`LinkStatus`] that [`LinkControl::status`] lets the console
//! actor watch; the actor tells every viewer and the record log when it changes.
//!
//! Dropping all parts of a link closes it; drivers release what they hold in `Drop` (an `exec` link
//! ends its whole process group).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

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

/// A modem control line a viewer may set: DTR or RTS (escape `^EcD` / `^EcR`, shell `dtr` / `rts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// DTR (Data Terminal Ready).
    Dtr,
    /// RTS (Request To Send).
    Rts,
}

impl Signal {
    /// The line's name for messages: `DTR` or `RTS`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Dtr => "DTR",
            Signal::Rts => "RTS",
        }
    }

    /// The operation that raises (`true`) or drops (`false`) this line.
    pub fn op(self, on: bool) -> ControlOp {
        match self {
            Signal::Dtr => ControlOp::SetDtr(on),
            Signal::Rts => ControlOp::SetRts(on),
        }
    }
}

/// The levels of the modem status lines a serial port reads (the device's side of the cable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ModemState {
    /// DCD (Data Carrier Detect, RLSD): the device's carrier is present.
    pub dcd: bool,
    /// DSR (Data Set Ready): the device is powered and ready.
    pub dsr: bool,
    /// CTS (Clear To Send): the device accepts data.
    pub cts: bool,
    /// RI (Ring Indicator): a ring signal is present.
    pub ri: bool,
}

impl ModemState {
    /// Read the high four bits of a 16550 UART modem status register, the layout RFC 2217's
    /// NOTIFY-MODEMSTATE also uses: bit 7 DCD, 6 RI, 5 DSR, 4 CTS. The low four bits (which
    /// lines changed since the last report) are ignored.
    pub fn from_msr(mask: u8) -> ModemState {
        ModemState {
            dcd: mask & 0x80 != 0,
            ri: mask & 0x40 != 0,
            dsr: mask & 0x20 != 0,
            cts: mask & 0x10 != 0,
        }
    }

    /// Read back the state a [`ModemState::notice`] text announces (`modem: DSR down (was up);
    /// DCD up, CTS up, RI off`); `None` if `text` is not such a notice or misses a line.
    pub fn from_notice(text: &str) -> Option<ModemState> {
        let rest = text.strip_prefix("modem: ")?;
        let mut seen = [None::<bool>; 4];
        for item in rest.split([',', ';']) {
            let mut words = item.split_whitespace();
            let (Some(name), Some(word)) = (words.next(), words.next()) else {
                return None;
            };
            let on = match word {
                "up" | "on" => true,
                "down" | "off" => false,
                _ => return None,
            };
            let slot = match name {
                "DCD" => 0,
                "DSR" => 1,
                "CTS" => 2,
                "RI" => 3,
                _ => return None,
            };
            if let Some(s) = seen.get_mut(slot) {
                *s = Some(on);
            }
        }
        let [Some(dcd), Some(dsr), Some(cts), Some(ri)] = seen else {
            return None;
        };
        Some(ModemState { dcd, dsr, cts, ri })
    }

    /// The lines as `(name, level, word)`, in the order DCD, DSR, CTS, RI.
    fn lines(self) -> [(&'static str, bool, &'static str); 4] {
        let level = |on: bool| if on { "up" } else { "down" };
        [
            ("DCD", self.dcd, level(self.dcd)),
            ("DSR", self.dsr, level(self.dsr)),
            ("CTS", self.cts, level(self.cts)),
            ("RI", self.ri, if self.ri { "on" } else { "off" }),
        ]
    }

    /// The console notice for this state: `modem: DCD up, DSR up, CTS up, RI off` when there is
    /// no `previous` state (the first report after connecting); otherwise the lines that changed
    /// come first, `modem: DCD down (carrier lost); DSR up, CTS up, RI off` or
    /// `modem: CTS down (was up), DSR down (was up); DCD up, RI off`. `None` if nothing changed.
    pub fn notice(self, previous: Option<ModemState>) -> Option<String> {
        let Some(previous) = previous else {
            return Some(format!("modem: {self}"));
        };
        if previous == self {
            return None;
        }
        let mut changed = Vec::new();
        let mut same = Vec::new();
        for ((name, on, word), (_, was, was_word)) in self.lines().into_iter().zip(previous.lines())
        {
            if on == was {
                same.push(format!("{name} {word}"));
            } else if name == "DCD" {
                let what = if on { "carrier back" } else { "carrier lost" };
                changed.push(format!("{name} {word} ({what})"));
            } else {
                changed.push(format!("{name} {word} (was {was_word})"));
            }
        }
        let mut text = format!("modem: {}", changed.join(", "));
        if !same.is_empty() {
            text.push_str("; ");
            text.push_str(&same.join(", "));
        }
        Some(text)
    }
}

impl fmt::Display for ModemState {
    /// `DCD up, DSR up, CTS up, RI off`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, _, word)) in self.lines().into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {word}")?;
        }
        Ok(())
    }
}

/// What an open link knows about the device's side, out of band of the byte stream. A driver
/// publishes it through a [`watch`] channel (so it never waits for the console actor, and the
/// actor always sees the latest state) and hands out receivers from [`LinkControl::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStatus {
    /// The modem lines, once the link has read or been told them (`None` before, or for links
    /// without modem lines).
    pub modem: Option<ModemState>,
}

/// Out-of-band control of an open link. Shared (`Arc`) so a long BREAK sequence can run beside
/// reading and writing.
#[async_trait]
pub trait LinkControl: Send + Sync {
    /// Perform `op`, or answer [`Error::Unsupported`].
    async fn control(&self, op: ControlOp) -> Result<()>;

    /// A receiver of the link's [`LinkStatus`], for links that report one (the default: none).
    /// The console actor reads it once per link and announces every change of the modem lines.
    fn status(&self) -> Option<watch::Receiver<LinkStatus>> {
        None
    }

    /// For links that carry output read earlier elsewhere (a console-server agent's spool):
    /// when each part of the `n` bytes just read from the link was first read, as
    /// `(length, time_ns)` pieces in order (ns since the Unix epoch). The console actor asks
    /// after every read and records each piece with its time; pieces that do not add up to `n`
    /// leave the rest at the time of the read. `None` (the default): read now.
    fn origin_times(&self, n: usize) -> Option<Vec<(usize, u64)>> {
        let _ = n;
        None
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn modem_notices_name_what_changed() {
        let all = ModemState::from_msr(0xf0);
        assert_eq!(
            (all.dcd, all.ri, all.dsr, all.cts),
            (true, true, true, true)
        );
        // The low bits say which lines changed; they are not levels.
        assert_eq!(ModemState::from_msr(0x0f), ModemState::default());
        let up = ModemState::from_msr(0xb0);
        assert_eq!(up.to_string(), "DCD up, DSR up, CTS up, RI off");
        assert_eq!(
            up.notice(None).unwrap(),
            "modem: DCD up, DSR up, CTS up, RI off"
        );
        assert_eq!(up.notice(Some(up)), None);
        let no_carrier = ModemState { dcd: false, ..up };
        assert_eq!(
            no_carrier.notice(Some(up)).unwrap(),
            "modem: DCD down (carrier lost); DSR up, CTS up, RI off"
        );
        assert_eq!(
            up.notice(Some(no_carrier)).unwrap(),
            "modem: DCD up (carrier back); DSR up, CTS up, RI off"
        );
        let quiet = ModemState {
            dsr: false,
            cts: false,
            ri: true,
            ..up
        };
        assert_eq!(
            quiet.notice(Some(up)).unwrap(),
            "modem: DSR down (was up), CTS down (was up), RI on (was off); DCD up"
        );
        assert_eq!(
            ModemState::default().notice(Some(all)).unwrap(),
            "modem: DCD down (carrier lost), DSR down (was up), CTS down (was up), RI off (was on)"
        );
    }

    #[test]
    fn modem_notices_read_back() {
        let states = [0x00u8, 0x10, 0x20, 0x40, 0x80, 0xb0, 0xf0].map(ModemState::from_msr);
        for now in states {
            assert_eq!(
                ModemState::from_notice(&now.notice(None).unwrap()),
                Some(now)
            );
            for before in states.into_iter().filter(|b| *b != now) {
                let text = now.notice(Some(before)).unwrap();
                assert_eq!(ModemState::from_notice(&text), Some(now), "{text}");
            }
        }
        for bad in [
            "",
            "modem:",
            "modem: DCD up",
            "modem: DCD up, DSR up, CTS up, RI maybe",
            "modem: DCD up, DSR up, CTS up, XX on",
            "modem: DCD, DSR up, CTS up, RI off",
            "DCD up, DSR up, CTS up, RI off",
        ] {
            assert_eq!(ModemState::from_notice(bad), None, "{bad}");
        }
    }
}
