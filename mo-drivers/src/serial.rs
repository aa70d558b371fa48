//! The `serial` driver: a local serial port (or anything that behaves like one, such as a pty).
//!
//! # Address
//!
//! ```text
//! serial:///dev/ttyS0                                  9600 8N1, no flow control
//! serial:///dev/ttyUSB0?baud=115200&flow=hardware
//! serial:///dev/ttyS1?baud=19200&data=7&parity=even&stop=2
//! serial:ttyDEV                                        relative to DriverOptions::base_dir
//! ```
//!
//! | parameter | values | default |
//! |-----------|--------|---------|
//! | `baud`    | 1 … 4000000 | `9600` |
//! | `data`    | `5` `6` `7` `8` | `8` |
//! | `parity`  | `none` `even` `odd` | `none` |
//! | `stop`    | `1` `2` | `1` |
//! | `flow`    | `none` `software` (XON/XOFF) `hardware` (RTS/CTS) | `none` |
//!
//! # Behaviour
//!
//! The port is opened exclusively (TIOCEXCL and an exclusive `flock`), in raw mode with the given
//! line settings. A port held by another opener is tried again for up to a second before the
//! connect fails: a child forked by the embedding program keeps a just-closed port locked until
//! it reaches `exec`. Capabilities: BREAK (the line is held in the break state for the requested
//! duration, then released — also if the operation is cancelled) and line settings. Modem lines
//! are probed at each connect: a real UART answers, a pty does not (`ENOTTY`), and
//! [`Capabilities::modem_lines`] reports what the last connect found. With modem lines,
//! [`ControlOp::SetDtr`] and [`ControlOp::SetRts`] raise or drop DTR and RTS (`TIOCMBIS` /
//! `TIOCMBIC`); without (a pty), they answer [`Error::Unsupported`] saying so. A port with modem
//! lines also reports the device's side (DCD, DSR, CTS, RI) as the link's [`LinkStatus`]: read
//! at connect and then every [`MODEM_POLL`] (`TIOCMGET`; `TIOCMIWAIT` would hold a thread per
//! port, and ptys answer neither), so the console announces each change (`modem: DCD down
//! (carrier lost); …`). A port without them (a pty) reports no modem state; a read that fails
//! later (the port went away) stops the reports and clears the state.
//!
//! On a pty (a socat pair in tests) BREAK succeeds but nothing reaches the other side: ptys
//! cannot carry a break condition. Linux ptys also force 8 data bits without parity whatever is
//! asked; speed, stop bits and flow control do reach a pty's settings. The tests check that BREAK is accepted and the link keeps
//! working; the break itself can only be seen on real hardware.
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let port = connector_for("serial:///dev/ttyS0?baud=115200", &DriverOptions::default()).unwrap();
//! assert!(port.capabilities().send_break);
//! assert!(connector_for("serial:///dev/ttyS0?parity=mark", &DriverOptions::default()).is_err());
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{
    Capabilities, Connector, ControlOp, Link, LinkControl, LinkStatus, ModemState,
};
use mo_core::{Error, Result};
use serialport::TTYPort;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_serial::{DataBits, FlowControl, Parity, SerialPort, SerialStream, StopBits};
use url::Url;

use crate::address::{self, DriverOptions, Query};

/// Query parameters the `serial` scheme knows.
/// The query parameters of a serial line (shared with `rfc2217`).
pub(crate) const PARAMETERS: &[&str] = &["baud", "data", "parity", "stop", "flow"];

/// The highest baud rate accepted in an address.
pub const MAX_BAUD: u32 = 4_000_000;

/// How long a connect waits for a port held elsewhere before reporting it busy.
const HELD_PORT_WAIT: Duration = Duration::from_secs(1);
/// How often it tries again meanwhile.
const HELD_PORT_RETRY: Duration = Duration::from_millis(10);
/// How often a port with modem lines has its status lines (DCD, DSR, CTS, RI) read.
pub const MODEM_POLL: Duration = Duration::from_millis(200);

/// Line settings of a serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Flow control.
    pub flow: FlowControl,
}

impl Default for LineSettings {
    /// 9600 8N1 without flow control.
    fn default() -> Self {
        Self {
            baud: 9600,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow: FlowControl::None,
        }
    }
}

impl LineSettings {
    /// Read the settings from the query of a `serial:` address.
    pub fn from_query(query: &Query) -> Result<Self> {
        let default = Self::default();
        Ok(Self {
            baud: query.parsed("baud", parse_baud)?.unwrap_or(default.baud),
            data_bits: query
                .parsed("data", |v| match v {
                    "5" => Ok(DataBits::Five),
                    "6" => Ok(DataBits::Six),
                    "7" => Ok(DataBits::Seven),
                    "8" => Ok(DataBits::Eight),
                    _ => Err("5, 6, 7 or 8".to_owned()),
                })?
                .unwrap_or(default.data_bits),
            parity: query
                .parsed("parity", |v| match v {
                    "none" => Ok(Parity::None),
                    "even" => Ok(Parity::Even),
                    "odd" => Ok(Parity::Odd),
                    _ => Err("none, even or odd".to_owned()),
                })?
                .unwrap_or(default.parity),
            stop_bits: query
                .parsed("stop", |v| match v {
                    "1" => Ok(StopBits::One),
                    "2" => Ok(StopBits::Two),
                    _ => Err("1 or 2".to_owned()),
                })?
                .unwrap_or(default.stop_bits),
            flow: query
                .parsed("flow", |v| match v {
                    "none" => Ok(FlowControl::None),
                    "software" => Ok(FlowControl::Software),
                    "hardware" => Ok(FlowControl::Hardware),
                    _ => Err("none, software or hardware".to_owned()),
                })?
                .unwrap_or(default.flow),
        })
    }
}

fn parse_baud(value: &str) -> std::result::Result<u32, String> {
    let expected = || format!("a whole number from 1 to {MAX_BAUD}");
    let baud: u32 = value.parse().map_err(|_| expected())?;
    if baud == 0 || baud > MAX_BAUD {
        return Err(expected());
    }
    Ok(baud)
}

/// Opens `serial` links.
#[derive(Debug)]
pub struct SerialConnector {
    path: PathBuf,
    settings: LineSettings,
    address: String,
    /// Whether the last connect could read the modem lines.
    modem_lines: AtomicBool,
}

impl SerialConnector {
    /// A connector for the port at `path` with `settings`.
    pub fn new(path: impl Into<PathBuf>, settings: LineSettings) -> Self {
        let path = path.into();
        let address = format!("serial://{}", path.display());
        Self {
            path,
            settings,
            address,
            modem_lines: AtomicBool::new(false),
        }
    }

    /// A connector for a `serial:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_local(url, address)?;
        let path = address::local_path(url, address, opts)?;
        if path.to_str().is_none() {
            return Err(address::bad(address, "the device path is not valid UTF-8"));
        }
        let query = Query::parse(url, address, PARAMETERS)?;
        let settings = LineSettings::from_query(&query)?;
        let mut connector = Self::new(path, settings);
        connector.address = address::display(url);
        Ok(connector)
    }

    /// The device path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The line settings used at connect.
    pub fn settings(&self) -> LineSettings {
        self.settings
    }

    fn connect_error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Connect {
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }
}

#[async_trait]
impl Connector for SerialConnector {
    async fn connect(&self) -> Result<Link> {
        let path = self
            .path
            .to_str()
            .ok_or_else(|| self.connect_error("the device path is not valid UTF-8"))?;
        let s = self.settings;
        let builder = tokio_serial::new(path, s.baud)
            .data_bits(s.data_bits)
            .parity(s.parity)
            .stop_bits(s.stop_bits)
            .flow_control(s.flow);
        // Opening with O_NONBLOCK and setting termios does not block. A port held elsewhere
        // (`NoDevice`: the exclusive flock is taken, or TIOCEXCL answers EBUSY) is tried again
        // for a moment: the lock belongs to the open file description, and a child forked by any
        // thread of this process holds a copy of every descriptor until its `exec` closes it, so
        // a link dropped just before keeps the port locked for as long as that child takes to
        // reach `exec`.
        let deadline = Instant::now() + HELD_PORT_WAIT;
        let port = loop {
            match builder.clone().open_native() {
                Ok(port) => break port,
                Err(e)
                    if e.kind == tokio_serial::ErrorKind::NoDevice && Instant::now() < deadline =>
                {
                    tokio::time::sleep(HELD_PORT_RETRY).await;
                }
                Err(e) if e.kind == tokio_serial::ErrorKind::NoDevice => {
                    return Err(self.connect_error(format!(
                        "cannot open {path}: {e} (still held after {} ms: another link or program has it open)",
                        HELD_PORT_WAIT.as_millis()
                    )));
                }
                Err(e) => return Err(self.connect_error(format!("cannot open {path}: {e}"))),
            }
        };
        let mut control_port = port
            .try_clone_native()
            .map_err(|e| self.connect_error(format!("cannot duplicate {path}: {e}")))?;
        let has_modem_lines = control_port.read_carrier_detect().is_ok();
        self.modem_lines.store(has_modem_lines, Ordering::Relaxed);
        let (status_tx, status) = watch::channel(LinkStatus::default());
        if has_modem_lines {
            let mut modem_port = port
                .try_clone_native()
                .map_err(|e| self.connect_error(format!("cannot duplicate {path}: {e}")))?;
            let first = read_modem(&mut modem_port).ok();
            status_tx.send_modify(|st| st.modem = first);
            tokio::spawn(watch_modem(modem_port, status_tx, self.address.clone()));
        }
        let stream = SerialStream::try_from(port)
            .map_err(|e| self.connect_error(format!("cannot watch {path}: {e}")))?;
        let (reader, writer) = tokio::io::split(stream);
        Ok(Link {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            control: Arc::new(SerialControl {
                port: tokio::sync::Mutex::new(control_port),
                modem_lines: has_modem_lines,
                address: self.address.clone(),
                status,
            }),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_break(true)
            .with_line_settings(true)
            .with_modem_lines(self.modem_lines.load(Ordering::Relaxed))
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

/// Control of a serial link. The port handle is a second descriptor of the same open port.
struct SerialControl {
    /// Held for the whole of a BREAK so two breaks never interleave; setting DTR or RTS waits
    /// for a BREAK in progress.
    port: tokio::sync::Mutex<TTYPort>,
    /// The port answered the modem-line probe at connect (a pty does not).
    modem_lines: bool,
    address: String,
    /// The modem status lines (only a port with modem lines reports them).
    status: watch::Receiver<LinkStatus>,
}

/// The device's side of the modem lines (`TIOCMGET`).
fn read_modem(port: &mut TTYPort) -> serialport::Result<ModemState> {
    Ok(ModemState {
        dcd: port.read_carrier_detect()?,
        dsr: port.read_data_set_ready()?,
        cts: port.read_clear_to_send()?,
        ri: port.read_ring_indicator()?,
    })
}

/// Read the modem lines every [`MODEM_POLL`] and publish each change, until nobody watches (the
/// link was dropped) or a read fails (the port went away: the state is cleared).
async fn watch_modem(mut port: TTYPort, status: watch::Sender<LinkStatus>, address: String) {
    let mut tick = tokio::time::interval(MODEM_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if status.is_closed() {
            return;
        }
        match read_modem(&mut port) {
            Ok(now) => {
                status.send_if_modified(|st| {
                    let changed = st.modem != Some(now);
                    st.modem = Some(now);
                    changed
                });
            }
            Err(e) => {
                tracing::debug!(address = %address, error = %e, "cannot read the modem lines any more");
                status.send_if_modified(|st| st.modem.take().is_some());
                return;
            }
        }
    }
}

/// Releases the break condition when dropped, so a cancelled BREAK never leaves the line held.
struct BreakHeld<'a> {
    port: &'a TTYPort,
    address: &'a str,
    released: bool,
}

impl BreakHeld<'_> {
    fn release(mut self) -> Result<()> {
        self.released = true;
        self.port.clear_break().map_err(|e| Error::Io {
            context: format!("{}: releasing BREAK", self.address),
            source: e.into(),
        })
    }
}

impl Drop for BreakHeld<'_> {
    fn drop(&mut self) {
        if !self.released
            && let Err(e) = self.port.clear_break()
        {
            tracing::warn!(address = %self.address, error = %e, "cannot release BREAK");
        }
    }
}

#[async_trait]
impl LinkControl for SerialControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::Break { duration } => {
                let port = self.port.lock().await;
                port.set_break().map_err(|e| Error::Io {
                    context: format!("{}: sending BREAK", self.address),
                    source: e.into(),
                })?;
                let held = BreakHeld {
                    port: &port,
                    address: &self.address,
                    released: false,
                };
                tokio::time::sleep(duration).await;
                held.release()
            }
            ControlOp::SetDtr(on) | ControlOp::SetRts(on) => {
                if !self.modem_lines {
                    return Err(Error::Unsupported {
                        operation: op.name(),
                        what: format!(
                            "{} (the port has no modem lines: a pty answers ENOTTY)",
                            self.address
                        ),
                    });
                }
                let mut port = self.port.lock().await;
                let done = if matches!(op, ControlOp::SetDtr(_)) {
                    port.write_data_terminal_ready(on)
                } else {
                    port.write_request_to_send(on)
                };
                done.map_err(|e| Error::Io {
                    context: format!(
                        "{}: setting {} {}",
                        self.address,
                        op.name(),
                        if on { "on" } else { "off" }
                    ),
                    source: e.into(),
                })
            }
            _ => Err(Error::Unsupported {
                operation: op.name(),
                what: format!("{} (a serial port)", self.address),
            }),
        }
    }

    fn status(&self) -> Option<watch::Receiver<LinkStatus>> {
        self.modem_lines.then(|| self.status.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn connector(address: &str) -> Result<SerialConnector> {
        let url = address::parse(address)?;
        SerialConnector::from_url(
            &url,
            address,
            &DriverOptions::new().with_base_dir("/run/mo"),
        )
    }

    #[test]
    fn defaults_are_9600_8n1() {
        let c = connector("serial:///dev/ttyS0").unwrap();
        assert_eq!(c.settings(), LineSettings::default());
        assert_eq!(c.settings().baud, 9600);
        assert_eq!(c.path(), std::path::Path::new("/dev/ttyS0"));
        assert_eq!(
            connector("serial:ttyDEV").unwrap().path(),
            std::path::Path::new("/run/mo/ttyDEV")
        );
    }

    #[test]
    fn reads_every_setting() {
        let c =
            connector("serial:///dev/ttyS1?baud=115200&data=7&parity=even&stop=2&flow=hardware")
                .unwrap();
        let s = c.settings();
        assert_eq!(s.baud, 115_200);
        assert_eq!(s.data_bits, DataBits::Seven);
        assert_eq!(s.parity, Parity::Even);
        assert_eq!(s.stop_bits, StopBits::Two);
        assert_eq!(s.flow, FlowControl::Hardware);
        let s = connector("serial:///dev/x?parity=odd&flow=software&data=5")
            .unwrap()
            .settings();
        assert_eq!(
            (s.parity, s.flow, s.data_bits),
            (Parity::Odd, FlowControl::Software, DataBits::Five)
        );
    }

    #[test]
    fn rejects_bad_settings() {
        for (address, needle) in [
            ("serial:///dev/x?baud=0", "from 1 to 4000000"),
            ("serial:///dev/x?baud=fast", "bad value `fast` for `baud`"),
            ("serial:///dev/x?baud=4000001", "from 1 to 4000000"),
            ("serial:///dev/x?data=9", "5, 6, 7 or 8"),
            ("serial:///dev/x?parity=mark", "none, even or odd"),
            ("serial:///dev/x?stop=1.5", "1 or 2"),
            ("serial:///dev/x?flow=rtscts", "none, software or hardware"),
            ("serial:///dev/x?bad=9600", "unknown parameter `bad`"),
            ("serial:///dev/x?baud=1&baud=2", "more than once"),
            ("serial://host/dev/x", "not a host"),
            ("serial://", "no path"),
        ] {
            let err = connector(address).unwrap_err().to_string();
            assert!(err.contains(needle), "{address}: {err}");
            assert!(err.contains(address), "{address}: {err}");
        }
    }

    #[tokio::test]
    async fn missing_device_is_a_connect_error() {
        let c = connector("serial:///dev/mo-no-such-tty").unwrap();
        let err = c.connect().await.unwrap_err().to_string();
        assert!(err.contains("/dev/mo-no-such-tty"), "{err}");
        assert!(
            err.starts_with("cannot connect to serial:///dev/mo-no-such-tty"),
            "{err}"
        );
    }
}
