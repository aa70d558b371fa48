//! The server side of telnet (RFC 854) and its COM-PORT option (RFC 2217) for per-console ports
//! (`--listen ADDR:PORT/telnet|/telnet+login|/rfc2217`), without I/O.
//!
//! [`Server::feed`] turns what a client sends into [`Event`]s: console input (with `IAC IAC`
//! unescaped and telnet's `CR NUL` turned into `CR`), bytes to send back (option negotiation),
//! COM-PORT requests ([`ComRequest`]) and BREAK. [`ComPort::answer`] answers a request from the
//! port's line settings and says what the console should do (send a BREAK, set DTR/RTS).
//! Bad input — an `IAC` followed by a byte that is no telnet command, an over-long or malformed
//! subnegotiation — is a [`BadInput`] naming what was wrong: the daemon says so and drops the
//! client. Nothing here panics on any input (fuzz target `telnet_server`).
//!
//! ```
//! use mo_core::door::telnet::{ComPort, ComRequest, Event, LineSettings, Server, IAC, SB, SE};
//!
//! let mut server = Server::new(true);
//! let _greeting = server.greeting();
//! let events = server.feed(&[b'h', b'i', IAC, SB, 44, 1, 0, 0, 0x25, 0x80, IAC, SE]).unwrap();
//! assert_eq!(events[0], Event::Data(b"hi".to_vec()));
//! assert_eq!(events[1], Event::Com(ComRequest::SetBaud(9600)));
//! let mut port = ComPort::new(LineSettings::default(), false);
//! let (reply, _action) = port.answer(&ComRequest::SetBaud(9600));
//! assert_eq!(reply, [IAC, SB, 44, 101, 0, 0, 0x25, 0x80, IAC, SE]);
//! ```

use super::BadInput;

/// Interpret As Command.
pub const IAC: u8 = 255;
/// Refuse an option of the other side.
pub const DONT: u8 = 254;
/// Ask the other side to use an option.
pub const DO: u8 = 253;
/// Refuse to use an option.
pub const WONT: u8 = 252;
/// Offer to use an option.
pub const WILL: u8 = 251;
/// Subnegotiation begins.
pub const SB: u8 = 250;
/// BREAK.
pub const BRK: u8 = 243;
/// Subnegotiation ends.
pub const SE: u8 = 240;

/// Option: binary transmission.
pub const OPT_BINARY: u8 = 0;
/// Option: echo.
pub const OPT_ECHO: u8 = 1;
/// Option: suppress go-ahead.
pub const OPT_SGA: u8 = 3;
/// Option: COM-PORT (RFC 2217).
pub const OPT_COM_PORT: u8 = 44;

/// The longest subnegotiation accepted (a COM-PORT signature is the longest legitimate one).
pub const MAX_SUBNEGOTIATION: usize = 256;

/// What the server calls itself in answer to a SIGNATURE request.
pub const SIGNATURE: &[u8] = b"mo";

/// Something the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes for the console.
    Data(Vec<u8>),
    /// Bytes to send back to the client (option negotiation).
    Reply(Vec<u8>),
    /// A COM-PORT request to answer ([`ComPort::answer`]).
    Com(ComRequest),
    /// Telnet's BREAK command (`IAC BRK`).
    Break,
}

/// A COM-PORT request of the client (RFC 2217 section 3). A value of 0 asks for the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComRequest {
    /// SIGNATURE: the client's name, or empty to ask for ours.
    Signature(Vec<u8>),
    /// SET-BAUDRATE.
    SetBaud(u32),
    /// SET-DATASIZE (5 to 8).
    SetDataSize(u8),
    /// SET-PARITY (1 none, 2 odd, 3 even, 4 mark, 5 space).
    SetParity(u8),
    /// SET-STOPSIZE (1, 2, 3 for 1.5).
    SetStopSize(u8),
    /// SET-CONTROL (flow control, BREAK, DTR, RTS).
    SetControl(u8),
    /// NOTIFY-MODEMSTATE sent by the client: pyserial's poll of the modem lines.
    ModemStatePoll,
    /// FLOWCONTROL-SUSPEND.
    Suspend,
    /// FLOWCONTROL-RESUME.
    Resume,
    /// SET-LINESTATE-MASK.
    LineStateMask(u8),
    /// SET-MODEMSTATE-MASK.
    ModemStateMask(u8),
    /// PURGE-DATA (1 receive, 2 transmit, 3 both).
    Purge(u8),
}

impl ComRequest {
    /// Read a COM-PORT subnegotiation's payload (after the option byte).
    pub fn parse(payload: &[u8]) -> Result<ComRequest, BadInput> {
        let bad = |reason: String| BadInput {
            what: "an RFC 2217 request",
            reason,
        };
        let Some((&code, value)) = payload.split_first() else {
            return Err(bad("a COM-PORT subnegotiation without a command".into()));
        };
        let one = |name: &str| -> Result<u8, BadInput> {
            match value {
                [v] => Ok(*v),
                _ => Err(bad(format!("{name} carries {} bytes, not 1", value.len()))),
            }
        };
        Ok(match code {
            0 => ComRequest::Signature(value.to_vec()),
            1 => match value {
                [a, b, c, d] => ComRequest::SetBaud(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => {
                    return Err(bad(format!(
                        "SET-BAUDRATE carries {} bytes, not 4",
                        value.len()
                    )));
                }
            },
            2 => ComRequest::SetDataSize(one("SET-DATASIZE")?),
            3 => ComRequest::SetParity(one("SET-PARITY")?),
            4 => ComRequest::SetStopSize(one("SET-STOPSIZE")?),
            5 => ComRequest::SetControl(one("SET-CONTROL")?),
            7 => ComRequest::ModemStatePoll,
            8 => ComRequest::Suspend,
            9 => ComRequest::Resume,
            10 => ComRequest::LineStateMask(one("SET-LINESTATE-MASK")?),
            11 => ComRequest::ModemStateMask(one("SET-MODEMSTATE-MASK")?),
            12 => ComRequest::Purge(one("PURGE-DATA")?),
            other => return Err(bad(format!("unknown COM-PORT command {other}"))),
        })
    }
}

/// A port's line settings as RFC 2217 codes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits, 5 to 8.
    pub data: u8,
    /// RFC 2217 parity code (1 none, 2 odd, 3 even, 4 mark, 5 space).
    pub parity: u8,
    /// RFC 2217 stop-size code (1, 2, 3 for 1.5).
    pub stop: u8,
}

impl Default for LineSettings {
    /// 115200 8N1.
    fn default() -> Self {
        LineSettings {
            baud: 115_200,
            data: 8,
            parity: 1,
            stop: 1,
        }
    }
}

impl LineSettings {
    /// The settings a device URL names in its `baud`, `data`, `parity` and `stop` parameters
    /// (those of mo's serial driver), the rest from [`LineSettings::default`]. Values that do not
    /// parse are left at the default.
    pub fn from_query(pairs: impl IntoIterator<Item = (String, String)>) -> LineSettings {
        let mut s = LineSettings::default();
        for (key, value) in pairs {
            match key.as_str() {
                "baud" => s.baud = value.parse().unwrap_or(s.baud),
                "data" => {
                    s.data = value
                        .parse()
                        .ok()
                        .filter(|d| (5..=8).contains(d))
                        .unwrap_or(s.data)
                }
                "parity" => {
                    s.parity = match value.as_str() {
                        "none" => 1,
                        "odd" => 2,
                        "even" => 3,
                        "mark" => 4,
                        "space" => 5,
                        _ => s.parity,
                    }
                }
                "stop" => {
                    s.stop = match value.as_str() {
                        "1" => 1,
                        "2" => 2,
                        "1.5" => 3,
                        _ => s.stop,
                    }
                }
                _ => {}
            }
        }
        s
    }
}

/// What the console should do for a COM-PORT request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComAction {
    /// Send a BREAK (SET-CONTROL 5, BREAK on; BREAK off does nothing).
    Break,
    /// Raise or drop DTR.
    Dtr(bool),
    /// Raise or drop RTS.
    Rts(bool),
}

/// One RFC 2217 client's view of the port: the line settings it was given, and whether it may
/// change them.
#[derive(Debug, Clone)]
pub struct ComPort {
    /// The settings in force for this client.
    pub settings: LineSettings,
    /// Whether a request for other settings is refused (answered with the current ones).
    pub fixed: bool,
}

/// Encode a COM-PORT message from the server: `IAC SB 44 code+100 value IAC SE`, with `IAC` in
/// the value doubled.
pub fn com_reply(code: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![IAC, SB, OPT_COM_PORT, code.wrapping_add(100)];
    out.extend(escape(value));
    out.extend([IAC, SE]);
    out
}

/// Console output for a telnet client: `IAC` doubled.
pub fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2);
    for &b in data {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

impl ComPort {
    /// A port with `settings`; `fixed` refuses changes.
    pub fn new(settings: LineSettings, fixed: bool) -> Self {
        ComPort { settings, fixed }
    }

    /// The answer to `request` (bytes for the client) and what the console should do. A setting
    /// is taken when the port is not fixed and the value is valid; otherwise (and for a query, 0)
    /// the answer carries the current value.
    pub fn answer(&mut self, request: &ComRequest) -> (Vec<u8>, Option<ComAction>) {
        let s = &mut self.settings;
        let fixed = self.fixed;
        match *request {
            ComRequest::Signature(ref text) if text.is_empty() => (com_reply(0, SIGNATURE), None),
            ComRequest::Signature(_) => (Vec::new(), None),
            ComRequest::SetBaud(baud) => {
                if baud != 0 && !fixed {
                    s.baud = baud;
                }
                (com_reply(1, &s.baud.to_be_bytes()), None)
            }
            ComRequest::SetDataSize(v) => {
                if (5..=8).contains(&v) && !fixed {
                    s.data = v;
                }
                (com_reply(2, &[s.data]), None)
            }
            ComRequest::SetParity(v) => {
                if (1..=5).contains(&v) && !fixed {
                    s.parity = v;
                }
                (com_reply(3, &[s.parity]), None)
            }
            ComRequest::SetStopSize(v) => {
                if (1..=3).contains(&v) && !fixed {
                    s.stop = v;
                }
                (com_reply(4, &[s.stop]), None)
            }
            ComRequest::SetControl(v) => {
                let action = match v {
                    5 => Some(ComAction::Break),
                    8 => Some(ComAction::Dtr(true)),
                    9 => Some(ComAction::Dtr(false)),
                    11 => Some(ComAction::Rts(true)),
                    12 => Some(ComAction::Rts(false)),
                    _ => None,
                };
                // Queries (0, 4, 7, 10, 13) are answered with the usual state: no flow
                // control, BREAK off, DTR and RTS on.
                let value = match v {
                    0 => 1,
                    4 => 6,
                    7 => 8,
                    10 => 11,
                    13 => 14,
                    other => other,
                };
                (com_reply(5, &[value]), action)
            }
            // DCD, DSR and CTS up: the console is there.
            ComRequest::ModemStatePoll => (com_reply(7, &[0xB0]), None),
            ComRequest::Suspend | ComRequest::Resume => (Vec::new(), None),
            ComRequest::LineStateMask(v) => (com_reply(10, &[v]), None),
            ComRequest::ModemStateMask(v) => (com_reply(11, &[v]), None),
            ComRequest::Purge(v) => (com_reply(12, &[v]), None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// After a CR: a NUL that follows is dropped.
    Cr,
    Iac,
    /// After `IAC WILL|WONT|DO|DONT`.
    Option(u8),
    /// Inside a subnegotiation.
    Sub,
    /// `IAC` inside a subnegotiation.
    SubIac,
}

/// A telnet server's reading of one client ([module docs](self)).
#[derive(Debug, Clone)]
pub struct Server {
    state: State,
    rfc2217: bool,
    /// Options this side has agreed to use.
    us: [bool; 256],
    /// Options the client has agreed to use.
    him: [bool; 256],
    sub: Vec<u8>,
}

impl Server {
    /// A server; `rfc2217` offers the COM-PORT option.
    pub fn new(rfc2217: bool) -> Self {
        Server {
            state: State::Data,
            rfc2217,
            us: [false; 256],
            him: [false; 256],
            sub: Vec::new(),
        }
    }

    /// What the server sends first: it will echo and suppress go-ahead (character mode), and
    /// for RFC 2217 asks the client to use COM-PORT.
    pub fn greeting(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for opt in [OPT_ECHO, OPT_SGA] {
            self.us[usize::from(opt)] = true;
            out.extend([IAC, WILL, opt]);
        }
        if self.rfc2217 {
            out.extend([IAC, DO, OPT_COM_PORT]);
        }
        out
    }

    fn we_support(&self, opt: u8) -> bool {
        matches!(opt, OPT_BINARY | OPT_ECHO | OPT_SGA) || (self.rfc2217 && opt == OPT_COM_PORT)
    }

    fn they_may(&self, opt: u8) -> bool {
        matches!(opt, OPT_BINARY | OPT_SGA) || (self.rfc2217 && opt == OPT_COM_PORT)
    }

    fn negotiate(&mut self, verb: u8, opt: u8) -> Option<Vec<u8>> {
        let i = usize::from(opt);
        match verb {
            DO if self.we_support(opt) => {
                let new = !self.us.get(i).copied().unwrap_or(false);
                if let Some(slot) = self.us.get_mut(i) {
                    *slot = true;
                }
                new.then(|| vec![IAC, WILL, opt])
            }
            DO => Some(vec![IAC, WONT, opt]),
            DONT => {
                let was = self.us.get(i).copied().unwrap_or(false);
                if let Some(slot) = self.us.get_mut(i) {
                    *slot = false;
                }
                was.then(|| vec![IAC, WONT, opt])
            }
            WILL if self.they_may(opt) => {
                let new = !self.him.get(i).copied().unwrap_or(false);
                if let Some(slot) = self.him.get_mut(i) {
                    *slot = true;
                }
                // COM-PORT was asked for in the greeting: its WILL is the answer.
                (new && opt != OPT_COM_PORT).then(|| vec![IAC, DO, opt])
            }
            WILL => Some(vec![IAC, DONT, opt]),
            _ => {
                let was = self.him.get(i).copied().unwrap_or(false);
                if let Some(slot) = self.him.get_mut(i) {
                    *slot = false;
                }
                was.then(|| vec![IAC, DONT, opt])
            }
        }
    }

    /// Whether the client agreed to use COM-PORT.
    pub fn com_port_active(&self) -> bool {
        self.him
            .get(usize::from(OPT_COM_PORT))
            .copied()
            .unwrap_or(false)
    }

    /// Read what the client sent. Events come in order; consecutive console bytes are joined.
    /// An error ends the conversation (the events before it are lost with it).
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<Event>, BadInput> {
        let mut events = Vec::new();
        let mut data = Vec::new();
        let flush = |data: &mut Vec<u8>, events: &mut Vec<Event>| {
            if !data.is_empty() {
                events.push(Event::Data(std::mem::take(data)));
            }
        };
        for &b in input {
            match self.state {
                State::Data | State::Cr => {
                    let after_cr = self.state == State::Cr;
                    self.state = State::Data;
                    match b {
                        IAC => self.state = State::Iac,
                        0 if after_cr => {}
                        b'\r' => {
                            data.push(b);
                            self.state = State::Cr;
                        }
                        _ => data.push(b),
                    }
                }
                State::Iac => {
                    self.state = State::Data;
                    match b {
                        IAC => data.push(IAC),
                        WILL | WONT | DO | DONT => self.state = State::Option(b),
                        SB => {
                            self.sub.clear();
                            self.state = State::Sub;
                        }
                        BRK => {
                            flush(&mut data, &mut events);
                            events.push(Event::Break);
                        }
                        // NOP, data mark, interrupt, abort output, are-you-there, erase
                        // character/line, go ahead: nothing to do for a console.
                        241..=249 => {}
                        other => {
                            return Err(BadInput {
                                what: "telnet input",
                                reason: format!(
                                    "IAC followed by {other:#04x}, which is no telnet command"
                                ),
                            });
                        }
                    }
                }
                State::Option(verb) => {
                    self.state = State::Data;
                    if let Some(reply) = self.negotiate(verb, b) {
                        flush(&mut data, &mut events);
                        events.push(Event::Reply(reply));
                    }
                }
                State::Sub => match b {
                    IAC => self.state = State::SubIac,
                    _ => self.sub_push(b)?,
                },
                State::SubIac => match b {
                    IAC => {
                        self.state = State::Sub;
                        self.sub_push(IAC)?;
                    }
                    SE => {
                        self.state = State::Data;
                        let sub = std::mem::take(&mut self.sub);
                        if let Some((&OPT_COM_PORT, payload)) = sub.split_first() {
                            if !self.rfc2217 {
                                continue;
                            }
                            let request = ComRequest::parse(payload)?;
                            flush(&mut data, &mut events);
                            events.push(Event::Com(request));
                        }
                    }
                    other => {
                        return Err(BadInput {
                            what: "telnet input",
                            reason: format!(
                                "IAC followed by {other:#04x} inside a subnegotiation \
                                 (expected IAC SE)"
                            ),
                        });
                    }
                },
            }
        }
        flush(&mut data, &mut events);
        Ok(events)
    }

    fn sub_push(&mut self, b: u8) -> Result<(), BadInput> {
        if self.sub.len() >= MAX_SUBNEGOTIATION {
            return Err(BadInput {
                what: "telnet input",
                reason: format!("a subnegotiation longer than {MAX_SUBNEGOTIATION} bytes"),
            });
        }
        self.sub.push(b);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn data_is_unescaped() {
        let mut s = Server::new(false);
        let ev = s
            .feed(&[b'a', IAC, IAC, b'\r', 0, b'b', b'\r', b'\n'])
            .unwrap();
        assert_eq!(
            ev,
            vec![Event::Data(vec![b'a', IAC, b'\r', b'b', b'\r', b'\n'])]
        );
    }

    #[test]
    fn negotiation_answers_once() {
        let mut s = Server::new(true);
        let g = s.greeting();
        assert!(g.ends_with(&[IAC, DO, OPT_COM_PORT]));
        // pyserial: WILL COM-PORT, DO ECHO (already on), DO SGA (already on), DO BINARY.
        let ev = s
            .feed(&[
                IAC, WILL, 44, IAC, DO, 1, IAC, DO, 3, IAC, DO, 0, IAC, DO, 24,
            ])
            .unwrap();
        assert_eq!(
            ev,
            vec![
                Event::Reply(vec![IAC, WILL, 0]),
                Event::Reply(vec![IAC, WONT, 24])
            ]
        );
        assert!(s.com_port_active());
        let ev = s.feed(&[IAC, WILL, 31, IAC, BRK]).unwrap();
        assert_eq!(ev, vec![Event::Reply(vec![IAC, DONT, 31]), Event::Break]);
    }

    #[test]
    fn com_port_requests() {
        let mut s = Server::new(true);
        let ev = s
            .feed(&[
                IAC, SB, 44, 1, 0, 1, 0xC2, 0x00, IAC, SE, IAC, SB, 44, 5, 5, IAC, SE,
            ])
            .unwrap();
        assert_eq!(
            ev,
            vec![
                Event::Com(ComRequest::SetBaud(115_200)),
                Event::Com(ComRequest::SetControl(5))
            ]
        );
        let mut fixed = ComPort::new(LineSettings::default(), true);
        let (reply, _) = fixed.answer(&ComRequest::SetBaud(9600));
        assert_eq!(reply, com_reply(1, &115_200u32.to_be_bytes()));
        let mut free = ComPort::new(LineSettings::default(), false);
        let (reply, _) = free.answer(&ComRequest::SetBaud(9600));
        assert_eq!(reply, com_reply(1, &9600u32.to_be_bytes()));
        let (_, action) = free.answer(&ComRequest::SetControl(5));
        assert_eq!(action, Some(ComAction::Break));
        // A baud with an IAC byte in it is escaped.
        let (reply, _) = free.answer(&ComRequest::SetBaud(0xFF));
        assert_eq!(reply, vec![IAC, SB, 44, 101, 0, 0, 0, IAC, IAC, IAC, SE]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Server::new(true).feed(&[IAC, 7]).is_err());
        assert!(
            Server::new(true)
                .feed(&[IAC, SB, 44, 1, 0, IAC, SE])
                .is_err()
        );
        assert!(Server::new(true).feed(&[IAC, SB, 44, 99, IAC, SE]).is_err());
        assert!(Server::new(true).feed(&[IAC, SB, 44, 1, IAC, 3]).is_err());
        let mut long = vec![IAC, SB, 44, 0];
        long.extend([b'x'; 300]);
        assert!(Server::new(true).feed(&long).is_err());
        // Split anywhere, the same events.
        let input = [b'x', IAC, SB, 44, 2, 7, IAC, SE, b'\r', 0, b'y'];
        let whole = Server::new(true).feed(&input).unwrap();
        let (a, b) = input.split_at(5);
        let mut s = Server::new(true);
        let mut split = s.feed(a).unwrap();
        split.extend(s.feed(b).unwrap());
        assert_eq!(whole, split);
    }

    #[test]
    fn line_settings_from_a_url_query() {
        let q = [
            ("baud", "9600"),
            ("parity", "even"),
            ("stop", "2"),
            ("data", "7"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let s = LineSettings::from_query(q);
        assert_eq!(
            s,
            LineSettings {
                baud: 9600,
                data: 7,
                parity: 3,
                stop: 2
            }
        );
    }
}
