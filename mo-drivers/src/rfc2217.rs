//! The `rfc2217` driver: a serial port behind a telnet server that speaks the COM Port Control
//! option (RFC 2217), such as ser2net's `telnet(rfc2217)` accepter or a console server's
//! RFC 2217 port.
//!
//! # Address
//!
//! ```text
//! rfc2217://cs1:7001                                   line settings left as the server has them
//! rfc2217://cs1:7001?baud=115200
//! rfc2217://[::1]:7001?baud=19200&data=7&parity=even&stop=2&flow=hardware
//! ```
//!
//! The port is required. The parameters are those of the [`serial`](crate::serial) driver
//! (`baud`, `data`, `parity`, `stop`, `flow`, read by [`LineSettings::from_query`]); only the
//! parameters given are sent, so a port configured on the server keeps the rest.
//!
//! # Behaviour
//!
//! The link is a [`telnet`] link whose codec also offers and accepts
//! COM-PORT-OPTION (option 44). On connect the client waits (up to [`REPLY_TIMEOUT`]) for the
//! server to agree to the option, sends SET-BAUDRATE, SET-DATASIZE, SET-PARITY, SET-STOPSIZE and
//! SET-CONTROL (flow control) for the parameters given, and waits for each answer: a server that
//! refuses the option, does not answer, or answers with another value than the one asked for
//! fails the connect with [`Error::Connect`] naming the address.
//!
//! Capabilities: BREAK (SET-CONTROL break on, the requested duration, break off — break off is
//! also sent if the operation is cancelled), line settings, and modem lines:
//! [`ControlOp::SetDtr`] and [`ControlOp::SetRts`] send SET-CONTROL 8/9 (DTR on/off) and 11/12
//! (RTS on/off) without waiting for the answer (ser2net on a pty never answers them; an answer
//! that does come lands in [`PortState::control`]). Window size is not supported.
//! The server's notifications (line state, modem state) and answers are kept in a
//! [`PortState`] that [`Rfc2217Connector::port_state`] lets a caller watch across reconnects.
//! The modem lines of NOTIFY-MODEMSTATE (DCD, DSR, CTS, RI) are also published as the link's
//! [`LinkStatus`] ([`LinkControl::status`]), only when their levels change: the console actor
//! announces the first report after each connect and every change to the viewers and the record
//! log (`[mo: modem: DCD down (carrier lost); DSR up, CTS up, RI off]`) and keeps the current
//! state in [`Console::modem`](mo_core::console::Console::modem). A repeated notification with
//! the same levels is no news.
//! Server messages are parsed by [`Reply::parse`], which never panics and keeps only bounded
//! data.
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let port = connector_for("rfc2217://cs1:7001?baud=19200", &DriverOptions::default()).unwrap();
//! assert_eq!(port.address(), "rfc2217://cs1:7001?baud=19200");
//! assert!(port.capabilities().send_break && port.capabilities().line_settings);
//! assert!(port.capabilities().modem_lines);
//! assert!(!port.capabilities().window_size);
//! assert!(connector_for("rfc2217://cs1?baud=19200", &DriverOptions::default()).is_err());
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{
    Capabilities, Connector, ControlOp, Link, LinkControl, LinkStatus, ModemState,
};
use mo_core::{Error, Result};
use tokio::sync::{mpsc, watch};
use tokio_serial::{DataBits, FlowControl, Parity, StopBits};
use url::Url;

use crate::address::{self, DriverOptions, Query};
use crate::serial::LineSettings;
use crate::tcp::HostPort;
use crate::telnet::codec::{COM_PORT_OPTION, TelnetCodec, encode_subnegotiation};
use crate::telnet::{self, Observer};

/// How long the server may take to agree to COM-PORT-OPTION and to answer each setting.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// COM-PORT-OPTION command codes sent by a client (RFC 2217); the server answers with the code
/// plus [`SERVER_OFFSET`].
pub mod code {
    /// SIGNATURE: text naming the client or server.
    pub const SIGNATURE: u8 = 0;
    /// SET-BAUDRATE: 4 bytes, big-endian.
    pub const SET_BAUDRATE: u8 = 1;
    /// SET-DATASIZE: 5 to 8.
    pub const SET_DATASIZE: u8 = 2;
    /// SET-PARITY: 1 none, 2 odd, 3 even, 4 mark, 5 space.
    pub const SET_PARITY: u8 = 3;
    /// SET-STOPSIZE: 1, 2, or 3 for 1.5.
    pub const SET_STOPSIZE: u8 = 4;
    /// SET-CONTROL: flow control, BREAK, DTR and RTS (the `CONTROL_*` values).
    pub const SET_CONTROL: u8 = 5;
    /// NOTIFY-LINESTATE: the line state mask.
    pub const NOTIFY_LINESTATE: u8 = 6;
    /// NOTIFY-MODEMSTATE: the modem state mask (CTS, DSR, RI, DCD and their changes).
    pub const NOTIFY_MODEMSTATE: u8 = 7;
    /// Added to a command code in the server's messages.
    pub const SERVER_OFFSET: u8 = 100;
    /// SET-CONTROL: no flow control.
    pub const CONTROL_FLOW_NONE: u8 = 1;
    /// SET-CONTROL: XON/XOFF flow control.
    pub const CONTROL_FLOW_XONXOFF: u8 = 2;
    /// SET-CONTROL: RTS/CTS flow control.
    pub const CONTROL_FLOW_HARDWARE: u8 = 3;
    /// SET-CONTROL: BREAK on.
    pub const CONTROL_BREAK_ON: u8 = 5;
    /// SET-CONTROL: BREAK off.
    pub const CONTROL_BREAK_OFF: u8 = 6;
    /// SET-CONTROL: DTR on.
    pub const CONTROL_DTR_ON: u8 = 8;
    /// SET-CONTROL: DTR off.
    pub const CONTROL_DTR_OFF: u8 = 9;
    /// SET-CONTROL: RTS on.
    pub const CONTROL_RTS_ON: u8 = 11;
    /// SET-CONTROL: RTS off.
    pub const CONTROL_RTS_OFF: u8 = 12;
}

pub use code::SERVER_OFFSET;

/// A COM-PORT-OPTION command sent by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// SET-BAUDRATE.
    Baud(u32),
    /// SET-DATASIZE.
    DataSize(u8),
    /// SET-PARITY.
    Parity(u8),
    /// SET-STOPSIZE.
    StopSize(u8),
    /// SET-CONTROL.
    Control(u8),
}

impl Command {
    /// The command's code.
    pub fn code(&self) -> u8 {
        match self {
            Command::Baud(_) => code::SET_BAUDRATE,
            Command::DataSize(_) => code::SET_DATASIZE,
            Command::Parity(_) => code::SET_PARITY,
            Command::StopSize(_) => code::SET_STOPSIZE,
            Command::Control(_) => code::SET_CONTROL,
        }
    }

    /// The value asked for.
    pub fn value(&self) -> u32 {
        match *self {
            Command::Baud(v) => v,
            Command::DataSize(v)
            | Command::Parity(v)
            | Command::StopSize(v)
            | Command::Control(v) => u32::from(v),
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Baud(_) => "baud",
            Command::DataSize(_) => "data bits",
            Command::Parity(_) => "parity",
            Command::StopSize(_) => "stop bits",
            Command::Control(_) => "flow control",
        }
    }

    /// Append the whole telnet frame: `IAC SB 44 code value IAC SE` (`0xFF` doubled).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = vec![self.code()];
        match *self {
            Command::Baud(v) => body.extend_from_slice(&v.to_be_bytes()),
            Command::DataSize(v)
            | Command::Parity(v)
            | Command::StopSize(v)
            | Command::Control(v) => body.push(v),
        }
        encode_subnegotiation(COM_PORT_OPTION, &body, out);
    }

    /// The commands that apply the parameters given in `query` (read into `settings`), in the
    /// order baud, data bits, parity, stop bits, flow control.
    pub fn for_settings(settings: &LineSettings, query: &Query) -> Result<Vec<Command>> {
        let mut commands = Vec::new();
        if query.single("baud")?.is_some() {
            commands.push(Command::Baud(settings.baud));
        }
        if query.single("data")?.is_some() {
            commands.push(Command::DataSize(match settings.data_bits {
                DataBits::Five => 5,
                DataBits::Six => 6,
                DataBits::Seven => 7,
                DataBits::Eight => 8,
            }));
        }
        if query.single("parity")?.is_some() {
            commands.push(Command::Parity(match settings.parity {
                Parity::None => 1,
                Parity::Odd => 2,
                Parity::Even => 3,
            }));
        }
        if query.single("stop")?.is_some() {
            commands.push(Command::StopSize(match settings.stop_bits {
                StopBits::One => 1,
                StopBits::Two => 2,
            }));
        }
        if query.single("flow")?.is_some() {
            commands.push(Command::Control(match settings.flow {
                FlowControl::None => code::CONTROL_FLOW_NONE,
                FlowControl::Software => code::CONTROL_FLOW_XONXOFF,
                FlowControl::Hardware => code::CONTROL_FLOW_HARDWARE,
            }));
        }
        Ok(commands)
    }
}

/// A COM-PORT-OPTION message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The baud rate now set.
    Baud(u32),
    /// The data size now set.
    DataSize(u8),
    /// The parity now set.
    Parity(u8),
    /// The stop size now set.
    StopSize(u8),
    /// The SET-CONTROL state now set (or the answer to a control request).
    Control(u8),
    /// A NOTIFY-LINESTATE mask.
    LineState(u8),
    /// A NOTIFY-MODEMSTATE mask.
    ModemState(u8),
    /// The server's signature text (invalid UTF-8 replaced).
    Signature(String),
    /// Any other message (a request from the server, a malformed answer): only its code.
    Other(u8),
}

impl Reply {
    /// Parse a COM-PORT-OPTION subnegotiation body from the server. `None` for an empty body.
    /// Never panics; a body of the wrong length is [`Reply::Other`].
    pub fn parse(body: &[u8]) -> Option<Reply> {
        let (&command, value) = body.split_first()?;
        let byte = match value {
            [b] => Some(*b),
            _ => None,
        };
        let reply = match (command.checked_sub(SERVER_OFFSET), byte) {
            (Some(code::SET_BAUDRATE), _) => match <[u8; 4]>::try_from(value) {
                Ok(bytes) => Reply::Baud(u32::from_be_bytes(bytes)),
                Err(_) => Reply::Other(command),
            },
            (Some(code::SIGNATURE), _) => {
                Reply::Signature(String::from_utf8_lossy(value).into_owned())
            }
            (Some(code::SET_DATASIZE), Some(v)) => Reply::DataSize(v),
            (Some(code::SET_PARITY), Some(v)) => Reply::Parity(v),
            (Some(code::SET_STOPSIZE), Some(v)) => Reply::StopSize(v),
            (Some(code::SET_CONTROL), Some(v)) => Reply::Control(v),
            (Some(code::NOTIFY_LINESTATE), Some(v)) => Reply::LineState(v),
            (Some(code::NOTIFY_MODEMSTATE), Some(v)) => Reply::ModemState(v),
            _ => Reply::Other(command),
        };
        Some(reply)
    }
}

/// What the server last said about the port, on the current connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortState {
    /// The server agreed to COM-PORT-OPTION.
    pub agreed: bool,
    /// The baud rate the server last reported.
    pub baud: Option<u32>,
    /// The data size the server last reported.
    pub data_size: Option<u8>,
    /// The parity the server last reported (1 none, 2 odd, 3 even, 4 mark, 5 space).
    pub parity: Option<u8>,
    /// The stop size the server last reported (1, 2, 3 = 1.5).
    pub stop_size: Option<u8>,
    /// The SET-CONTROL value the server last reported.
    pub control: Option<u8>,
    /// The last NOTIFY-LINESTATE mask.
    pub line_state: Option<u8>,
    /// The last NOTIFY-MODEMSTATE mask (bit 7 DCD, 6 RI, 5 DSR, 4 CTS; low bits: changes).
    pub modem_state: Option<u8>,
    /// The server's signature, if it sent one.
    pub signature: Option<String>,
    /// How many COM-PORT-OPTION messages the server sent.
    pub messages: u64,
}

impl PortState {
    /// Record one message from the server.
    pub fn apply(&mut self, reply: &Reply) {
        self.messages = self.messages.saturating_add(1);
        match reply {
            Reply::Baud(v) => self.baud = Some(*v),
            Reply::DataSize(v) => self.data_size = Some(*v),
            Reply::Parity(v) => self.parity = Some(*v),
            Reply::StopSize(v) => self.stop_size = Some(*v),
            Reply::Control(v) => self.control = Some(*v),
            Reply::LineState(v) => self.line_state = Some(*v),
            Reply::ModemState(v) => self.modem_state = Some(*v),
            Reply::Signature(text) => self.signature = Some(text.clone()),
            Reply::Other(_) => {}
        }
    }

    /// The value the server reported for `command`'s setting, once it has.
    pub fn answer(&self, command: &Command) -> Option<u32> {
        match command {
            Command::Baud(_) => self.baud,
            Command::DataSize(_) => self.data_size.map(u32::from),
            Command::Parity(_) => self.parity.map(u32::from),
            Command::StopSize(_) => self.stop_size.map(u32::from),
            Command::Control(_) => self.control.map(u32::from),
        }
    }
}

/// Opens `rfc2217` links.
#[derive(Debug, Clone)]
pub struct Rfc2217Connector {
    target: HostPort,
    commands: Vec<Command>,
    address: String,
    state: Arc<watch::Sender<PortState>>,
}

impl Rfc2217Connector {
    /// A connector for the RFC 2217 server at `host:port` that sends `commands` on connect.
    pub fn new(host: impl Into<String>, port: u16, commands: Vec<Command>) -> Self {
        let target = HostPort {
            host: host.into(),
            port,
        };
        Self {
            address: target.address("rfc2217"),
            target,
            commands,
            state: Arc::new(watch::channel(PortState::default()).0),
        }
    }

    /// A connector for an `rfc2217:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str, _opts: &DriverOptions) -> Result<Self> {
        let query = Query::parse(url, address, crate::serial::PARAMETERS)?;
        let settings = LineSettings::from_query(&query)?;
        let commands = Command::for_settings(&settings, &query)?;
        let mut bare = url.clone();
        bare.set_query(None);
        let target = HostPort::from_url(&bare, address, None)?;
        let mut connector = Self::new(target.host, target.port, commands);
        connector.address = address::display(url);
        Ok(connector)
    }

    /// Where this connector connects.
    pub fn target(&self) -> &HostPort {
        &self.target
    }

    /// The commands sent on every connect.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// What the server last reported about the port (reset at every connect); changes, such as
    /// modem-state notifications, wake the receiver.
    pub fn port_state(&self) -> watch::Receiver<PortState> {
        self.state.subscribe()
    }

    fn failed(&self, reason: impl Into<String>) -> Error {
        Error::Connect {
            address: self.address.clone(),
            reason: reason.into(),
        }
    }

    /// Wait until `done` holds for the port state, or fail with `what` in the reason.
    async fn wait_for(
        &self,
        rx: &mut watch::Receiver<PortState>,
        what: &str,
        done: impl FnMut(&PortState) -> bool,
    ) -> Result<()> {
        match tokio::time::timeout(REPLY_TIMEOUT, rx.wait_for(done)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(self.failed(format!(
                "the server closed the connection while waiting for {what}"
            ))),
            Err(_) => Err(self.failed(format!(
                "no {what} within {} s (is this an RFC 2217 port?)",
                REPLY_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The observer run by the telnet reading task: takes the COM-PORT-OPTION messages out of the
/// codec and records them in the port state; modem-line levels that changed go to the link's
/// `status` (never waiting: a watch channel keeps only the latest).
fn observer(
    state: Arc<watch::Sender<PortState>>,
    status: watch::Sender<LinkStatus>,
    address: String,
) -> Observer {
    Box::new(move |codec: &mut TelnetCodec| {
        let agreed = codec.local_enabled(COM_PORT_OPTION) || codec.remote_enabled(COM_PORT_OPTION);
        let mut replies = Vec::new();
        while let Some(body) = codec.take_com_port_message() {
            if let Some(reply) = Reply::parse(&body) {
                replies.push(reply);
            }
        }
        state.send_if_modified(|s| {
            let changed = s.agreed != agreed || !replies.is_empty();
            s.agreed = agreed;
            for reply in &replies {
                if let Reply::ModemState(mask) = reply
                    && s.modem_state != Some(*mask)
                {
                    tracing::debug!(
                        %address,
                        mask,
                        dcd = mask & 0x80 != 0,
                        ri = mask & 0x40 != 0,
                        dsr = mask & 0x20 != 0,
                        cts = mask & 0x10 != 0,
                        "RFC 2217 modem state"
                    );
                }
                s.apply(reply);
            }
            changed
        });
        for reply in &replies {
            if let Reply::ModemState(mask) = reply {
                let modem = Some(ModemState::from_msr(*mask));
                status.send_if_modified(|st| {
                    let changed = st.modem != modem;
                    st.modem = modem;
                    changed
                });
            }
        }
    })
}

#[async_trait]
impl Connector for Rfc2217Connector {
    async fn connect(&self) -> Result<Link> {
        self.state.send_replace(PortState::default());
        let mut rx = self.state.subscribe();
        let (status_tx, status) = watch::channel(LinkStatus::default());
        let session = telnet::open(
            &self.target,
            &self.address,
            TelnetCodec::com_port_client(),
            Some(observer(
                Arc::clone(&self.state),
                status_tx,
                self.address.clone(),
            )),
        )
        .await?;
        self.wait_for(&mut rx, "agreement to COM-PORT-OPTION", |s| s.agreed)
            .await?;
        for command in &self.commands {
            let mut frame = Vec::new();
            command.encode(&mut frame);
            session.frames.send(frame).await.map_err(|_| {
                self.failed("the connection closed while sending the line settings")
            })?;
        }
        for command in &self.commands {
            let what = format!("answer to setting {} {}", command.name(), command.value());
            self.wait_for(&mut rx, &what, |s| s.answer(command).is_some())
                .await?;
            let answer = rx.borrow().answer(command);
            if answer != Some(command.value()) {
                return Err(self.failed(format!(
                    "asked for {} {}; the server set {}",
                    command.name(),
                    command.value(),
                    answer.map_or_else(|| "nothing".to_owned(), |v| v.to_string())
                )));
            }
        }
        Ok(Link {
            reader: session.reader,
            writer: session.writer,
            control: Arc::new(Rfc2217Control {
                frames: session.frames,
                breaking: tokio::sync::Mutex::new(()),
                address: self.address.clone(),
                status,
            }),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_break(true)
            .with_line_settings(true)
            .with_modem_lines(true)
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

/// BREAK, DTR and RTS for an RFC 2217 link.
struct Rfc2217Control {
    frames: mpsc::Sender<Vec<u8>>,
    /// Held for the whole of a BREAK so two breaks never interleave.
    breaking: tokio::sync::Mutex<()>,
    address: String,
    /// The modem lines the server reported on this connection.
    status: watch::Receiver<LinkStatus>,
}

impl Rfc2217Control {
    async fn send(&self, command: Command, what: &str) -> Result<()> {
        let mut frame = Vec::new();
        command.encode(&mut frame);
        self.frames.send(frame).await.map_err(|_| {
            Error::io(
                format!("{}: {what}", self.address),
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the connection is closed"),
            )
        })
    }
}

/// Sends BREAK off when dropped before [`BreakHeld::release`] (a cancelled BREAK).
struct BreakHeld<'a> {
    frames: &'a mpsc::Sender<Vec<u8>>,
    armed: bool,
}

impl Drop for BreakHeld<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut frame = Vec::new();
            Command::Control(code::CONTROL_BREAK_OFF).encode(&mut frame);
            let _ = self.frames.try_send(frame);
        }
    }
}

#[async_trait]
impl LinkControl for Rfc2217Control {
    async fn control(&self, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::Break { duration } => {
                let _one_at_a_time = self.breaking.lock().await;
                self.send(Command::Control(code::CONTROL_BREAK_ON), "sending break")
                    .await?;
                let mut held = BreakHeld {
                    frames: &self.frames,
                    armed: true,
                };
                tokio::time::sleep(duration).await;
                held.armed = false;
                self.send(Command::Control(code::CONTROL_BREAK_OFF), "sending break")
                    .await
            }
            ControlOp::SetDtr(on) => {
                let value = if on {
                    code::CONTROL_DTR_ON
                } else {
                    code::CONTROL_DTR_OFF
                };
                self.send(Command::Control(value), "setting dtr").await
            }
            ControlOp::SetRts(on) => {
                let value = if on {
                    code::CONTROL_RTS_ON
                } else {
                    code::CONTROL_RTS_OFF
                };
                self.send(Command::Control(value), "setting rts").await
            }
            other => Err(Error::Unsupported {
                operation: other.name(),
                what: self.address.clone(),
            }),
        }
    }

    fn status(&self) -> Option<watch::Receiver<LinkStatus>> {
        Some(self.status.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::telnet::codec::{IAC, SB, SE};
    use rand::{Rng, SeedableRng};

    fn read(address: &str) -> Result<Rfc2217Connector> {
        Rfc2217Connector::from_url(&address::parse(address)?, address, &DriverOptions::new())
    }

    #[test]
    fn reads_addresses_and_sends_only_the_parameters_given() {
        let c = read("rfc2217://cs1:7001").unwrap();
        assert_eq!((c.target().host.as_str(), c.target().port), ("cs1", 7001));
        assert!(c.commands().is_empty());
        let c = read("rfc2217://[::1]:7001?baud=19200&data=7&parity=even&stop=2&flow=hardware")
            .unwrap();
        assert_eq!(c.target().host, "::1");
        assert_eq!(
            c.commands(),
            [
                Command::Baud(19200),
                Command::DataSize(7),
                Command::Parity(3),
                Command::StopSize(2),
                Command::Control(code::CONTROL_FLOW_HARDWARE),
            ]
        );
        assert_eq!(
            read("rfc2217://cs1:1?parity=odd&flow=software")
                .unwrap()
                .commands(),
            [
                Command::Parity(2),
                Command::Control(code::CONTROL_FLOW_XONXOFF)
            ]
        );
        assert_eq!(
            Rfc2217Connector::new("h", 7, vec![]).address(),
            "rfc2217://h:7"
        );
        for (address, needle) in [
            ("rfc2217://cs1", "no port"),
            ("rfc2217://cs1:7001?x=1", "unknown parameter `x`"),
            ("rfc2217://cs1:7001?baud=0", "bad value `0` for `baud`"),
            ("rfc2217://cs1:7001?parity=mark", "bad value `mark`"),
            ("rfc2217://cs1:7001?baud=9600&baud=1", "more than once"),
            ("rfc2217://admin@cs1:7001", "no user name"),
            ("rfc2217://cs1:7001/p", "unexpected path `/p`"),
        ] {
            let text = read(address).unwrap_err().to_string();
            assert!(text.contains(needle) && text.contains(address), "{text}");
        }
    }

    #[test]
    fn encodes_commands_with_iac_doubled() {
        let mut out = Vec::new();
        Command::Baud(19200).encode(&mut out);
        assert_eq!(out, [IAC, SB, 44, 1, 0, 0, 0x4b, 0, IAC, SE]);
        out.clear();
        Command::Baud(0x0000_ff00).encode(&mut out);
        assert_eq!(out, [IAC, SB, 44, 1, 0, 0, IAC, IAC, 0, IAC, SE]);
        out.clear();
        Command::Control(code::CONTROL_BREAK_ON).encode(&mut out);
        assert_eq!(out, [IAC, SB, 44, 5, 5, IAC, SE]);
    }

    #[test]
    fn parses_what_ser2net_sends() {
        // Captured from ser2net 4.3 answering SET-BAUDRATE 19200.
        assert_eq!(Reply::parse(&[107, 0]), Some(Reply::ModemState(0)));
        assert_eq!(
            Reply::parse(&[101, 0, 0, 0x4b, 0]),
            Some(Reply::Baud(19200))
        );
        assert_eq!(Reply::parse(&[105, 5]), Some(Reply::Control(5)));
        assert_eq!(
            Reply::parse(b"dser2net"),
            Some(Reply::Signature("ser2net".into()))
        );
        assert_eq!(Reply::parse(&[101, 0, 0]), Some(Reply::Other(101)));
        assert_eq!(Reply::parse(&[102]), Some(Reply::Other(102)));
        assert_eq!(Reply::parse(&[8]), Some(Reply::Other(8)));
        assert_eq!(Reply::parse(&[]), None);
        let mut state = PortState::default();
        for reply in [
            Reply::Baud(19200),
            Reply::DataSize(7),
            Reply::ModemState(0x30),
        ] {
            state.apply(&reply);
        }
        assert_eq!(state.answer(&Command::Baud(1)), Some(19200));
        assert_eq!(state.answer(&Command::DataSize(8)), Some(7));
        assert_eq!(state.answer(&Command::Parity(1)), None);
        assert_eq!((state.modem_state, state.messages), (Some(0x30), 3));
    }

    /// Server bytes come from the network: random bodies never panic, and through the codec
    /// and the observer the state stays consistent.
    #[test]
    fn random_server_messages_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x2217_2217);
        let state = Arc::new(watch::channel(PortState::default()).0);
        let (status, status_rx) = watch::channel(LinkStatus::default());
        let mut observe = observer(Arc::clone(&state), status, "rfc2217://test:1".into());
        let mut codec = TelnetCodec::com_port_client();
        let mut parsed = 0u64;
        for _ in 0..5_000 {
            let len = rng.random_range(0..12);
            let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if let Some(first) = body.first_mut()
                && rng.random_bool(0.7)
            {
                *first = 100 + rng.random_range(0..10);
            }
            if Reply::parse(&body).is_some() {
                parsed += 1;
            }
            let mut wire = Vec::new();
            encode_subnegotiation(COM_PORT_OPTION, &body, &mut wire);
            if rng.random_bool(0.1) {
                wire.truncate(rng.random_range(0..wire.len()));
            }
            codec.feed(&wire, &mut Vec::new(), &mut Vec::new());
            observe(&mut codec);
        }
        assert!(parsed > 4_000);
        let seen = state.borrow().messages;
        assert!(seen > 3_000 && seen <= parsed, "{seen} of {parsed}");
        // The link status follows the levels of the last modem-state mask.
        let last = state.borrow().modem_state;
        assert_eq!(status_rx.borrow().modem, last.map(ModemState::from_msr));
    }
}
