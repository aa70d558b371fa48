//! A sans-I/O telnet codec (RFC 854, RFC 855, RFC 856 BINARY, RFC 858 SGA, RFC 857 ECHO,
//! RFC 1073 NAWS), with option negotiation by the Q method of RFC 1143 so that it never loops.
//!
//! Bytes in, bytes out: no sockets, no clocks. [`TelnetCodec::feed`] takes bytes received from the
//! server and splits them into *data* (for the console) and *replies* (negotiation answers to
//! send back to the server). It is resumable at any byte boundary: feeding a stream in any pieces
//! gives the same data and replies as feeding it whole.
//!
//! What the codec agrees to:
//!
//! | the server sends | we answer |
//! |------------------|-----------|
//! | `WILL ECHO`, `WILL SGA`, `WILL BINARY` | `DO` (accepted) |
//! | `WILL` anything else | `DONT` |
//! | `DO SGA`, `DO BINARY` | `WILL` (accepted) |
//! | `DO NAWS` | `WILL NAWS`, then the window size once known |
//! | `DO` anything else | `WONT` |
//! | `WONT` / `DONT` for an enabled option | `DONT` / `WONT` (acknowledged) |
//!
//! A request for the state an option is already in is never answered, and a refusal is never
//! answered either, so two peers cannot talk each other into a loop. Subnegotiations are parsed
//! into a bounded buffer and ignored (none of the accepted options has server-to-client
//! subnegotiations); at most [`MAX_SUBNEGOTIATION`] bytes of a body are kept, whatever its
//! length.
//!
//! A codec made by [`TelnetCodec::com_port_client`] (for RFC 2217 links) also offers
//! `WILL COM-PORT-OPTION` at start, accepts `DO` and `WILL` [`COM_PORT_OPTION`], and keeps the
//! server's COM-PORT-OPTION subnegotiation bodies (at most [`MAX_PENDING_COM_PORT`], the oldest
//! dropped first) for [`TelnetCodec::take_com_port_message`]; bodies longer than
//! [`MAX_SUBNEGOTIATION`] are dropped whole.
//!
//! Received data: `IAC IAC` becomes one `0xFF` byte; in NVT (non-binary) mode `CR NUL` becomes
//! `CR` while `CR LF` is kept. Written data ([`TelnetCodec::encode_data`]): `0xFF` is doubled; in
//! NVT mode a `CR` not followed by `LF` in the same piece is sent as `CR NUL`.
//!
//! ```
//! use mo_drivers::telnet::codec::{TelnetCodec, IAC, WILL, DO, ECHO};
//!
//! let mut codec = TelnetCodec::new();
//! let (mut data, mut reply) = (Vec::new(), Vec::new());
//! codec.feed(&[IAC, WILL, ECHO, b'o', b'k', b'\r', 0], &mut data, &mut reply);
//! assert_eq!(data, b"ok\r");
//! assert_eq!(reply, [IAC, DO, ECHO]);
//! assert!(codec.remote_enabled(ECHO));
//! ```

/// Interpret As Command: starts every telnet command.
pub const IAC: u8 = 255;
/// Refuse (or stop) an option on the receiver's side.
pub const DONT: u8 = 254;
/// Ask the receiver to enable an option.
pub const DO: u8 = 253;
/// Refuse (or stop) an option on the sender's side.
pub const WONT: u8 = 252;
/// Offer to enable an option on the sender's side.
pub const WILL: u8 = 251;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Go ahead.
pub const GA: u8 = 249;
/// No operation.
pub const NOP: u8 = 241;
/// Data mark (the data-stream part of a Synch).
pub const DM: u8 = 242;
/// BREAK.
pub const BRK: u8 = 243;
/// Subnegotiation end.
pub const SE: u8 = 240;

/// Option: binary transmission (RFC 856).
pub const BINARY: u8 = 0;
/// Option: echo (RFC 857).
pub const ECHO: u8 = 1;
/// Option: suppress go-ahead (RFC 858).
pub const SGA: u8 = 3;
/// Option: negotiate about window size (RFC 1073).
pub const NAWS: u8 = 31;
/// Option: COM-PORT-OPTION, serial port control (RFC 2217).
pub const COM_PORT_OPTION: u8 = 44;

/// The largest subnegotiation body kept; longer ones are dropped whole.
pub const MAX_SUBNEGOTIATION: usize = 512;

/// The most COM-PORT-OPTION bodies kept until taken; older ones are dropped first.
pub const MAX_PENDING_COM_PORT: usize = 64;

/// One side's state of one option (RFC 1143).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Q {
    #[default]
    No,
    Yes,
    WantNo,
    WantYes,
}

/// Both sides' state of one option, with the RFC 1143 "opposite request queued" bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OptionState {
    us: Q,
    us_queued: bool,
    him: Q,
    him_queued: bool,
}

/// Where the parser is in the byte stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Data,
    Iac,
    Negotiate(u8),
    SbOption,
    SbData,
    SbIac,
}

/// The telnet protocol state of one connection (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct TelnetCodec {
    state: State,
    /// The last data byte was a CR in NVT mode: a following NUL is dropped.
    after_cr: bool,
    options: [OptionState; 256],
    sb_option: u8,
    sb_buf: Vec<u8>,
    /// The subnegotiation body being read is longer than [`MAX_SUBNEGOTIATION`].
    sb_overflow: bool,
    window: Option<(u16, u16)>,
    /// COM-PORT-OPTION is accepted and its subnegotiations kept (an RFC 2217 link).
    com_port: bool,
    com_port_messages: std::collections::VecDeque<Vec<u8>>,
}

impl Default for TelnetCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl TelnetCodec {
    /// A codec with every option off, as at the start of a connection.
    pub fn new() -> Self {
        Self {
            state: State::Data,
            after_cr: false,
            options: [OptionState::default(); 256],
            sb_option: 0,
            sb_buf: Vec::new(),
            sb_overflow: false,
            window: None,
            com_port: false,
            com_port_messages: std::collections::VecDeque::new(),
        }
    }

    /// A codec for an RFC 2217 client: as [`TelnetCodec::new`], and COM-PORT-OPTION is offered,
    /// accepted and its subnegotiations kept (see the [module docs](self)).
    pub fn com_port_client() -> Self {
        Self {
            com_port: true,
            ..Self::new()
        }
    }

    /// The requests a client sends on connect: `DO SGA` (character at a time, no go-aheads),
    /// and `WILL COM-PORT-OPTION` for a [`TelnetCodec::com_port_client`].
    pub fn start(&mut self, out_reply: &mut Vec<u8>) {
        self.ask_remote(SGA, out_reply);
        if self.com_port {
            self.offer_local(COM_PORT_OPTION, out_reply);
        }
    }

    /// The oldest COM-PORT-OPTION subnegotiation body received and not yet taken (the bytes
    /// between `IAC SB 44` and `IAC SE`, `IAC IAC` undone). Always `None` unless the codec was
    /// made by [`TelnetCodec::com_port_client`].
    pub fn take_com_port_message(&mut self) -> Option<Vec<u8>> {
        self.com_port_messages.pop_front()
    }

    /// Process bytes received from the server: data bytes are appended to `out_data`, negotiation
    /// answers to `out_reply` (to be sent to the server). Never panics, whatever the input.
    pub fn feed(&mut self, input: &[u8], out_data: &mut Vec<u8>, out_reply: &mut Vec<u8>) {
        for &byte in input {
            self.step(byte, out_data, out_reply);
        }
    }

    fn step(&mut self, byte: u8, data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        match self.state {
            State::Data => {
                if byte == IAC {
                    self.state = State::Iac;
                    return;
                }
                let nul_after_cr = self.after_cr && byte == 0;
                self.after_cr = byte == b'\r' && !self.remote_enabled(BINARY);
                if !nul_after_cr {
                    data.push(byte);
                }
            }
            State::Iac => self.command(byte, data),
            State::Negotiate(verb) => {
                self.state = State::Data;
                self.negotiate(verb, byte, reply);
            }
            State::SbOption => {
                self.sb_option = byte;
                self.sb_buf.clear();
                self.sb_overflow = false;
                self.state = State::SbData;
            }
            State::SbData => {
                if byte == IAC {
                    self.state = State::SbIac;
                } else {
                    self.sb_push(byte);
                }
            }
            State::SbIac => match byte {
                IAC => {
                    self.sb_push(IAC);
                    self.state = State::SbData;
                }
                SE => {
                    self.state = State::Data;
                    self.subnegotiation_done();
                }
                // A command inside a subnegotiation: the subnegotiation was cut short; drop it
                // and obey the command.
                other => {
                    self.sb_buf.clear();
                    self.command(other, data);
                }
            },
        }
    }

    /// The byte after an `IAC` in the data stream.
    fn command(&mut self, byte: u8, data: &mut Vec<u8>) {
        self.after_cr = false;
        self.state = State::Data;
        match byte {
            IAC => data.push(IAC),
            WILL | WONT | DO | DONT => self.state = State::Negotiate(byte),
            SB => self.state = State::SbOption,
            // NOP, DM, GA, BRK, AYT, EC, EL, IP, AO, SE outside a subnegotiation: nothing for a
            // client to do.
            _ => {}
        }
    }

    fn sb_push(&mut self, byte: u8) {
        // Bytes past the limit are dropped, and the body with them (see below).
        if self.sb_buf.len() < MAX_SUBNEGOTIATION {
            self.sb_buf.push(byte);
        } else {
            self.sb_overflow = true;
        }
    }

    fn subnegotiation_done(&mut self) {
        // Of the options we accept only COM-PORT-OPTION has subnegotiations sent by the server
        // (NAWS goes from client to server only); other bodies are dropped. Kept bodies and the
        // buffer both stay bounded.
        if self.com_port && self.sb_option == COM_PORT_OPTION && !self.sb_overflow {
            if self.com_port_messages.len() >= MAX_PENDING_COM_PORT {
                self.com_port_messages.pop_front();
            }
            self.com_port_messages.push_back(self.sb_buf.clone());
        }
        self.sb_buf.clear();
    }

    /// Whether we agree to enable `option` on our side when the server asks (`DO`).
    fn local_supported(&self, option: u8) -> bool {
        matches!(option, BINARY | SGA | NAWS) || (self.com_port && option == COM_PORT_OPTION)
    }

    /// Whether we agree to the server enabling `option` on its side (`WILL`).
    fn remote_supported(&self, option: u8) -> bool {
        matches!(option, BINARY | ECHO | SGA) || (self.com_port && option == COM_PORT_OPTION)
    }

    fn opt(&mut self, option: u8) -> &mut OptionState {
        &mut self.options[usize::from(option)]
    }

    /// RFC 1143 reception of WILL/WONT/DO/DONT.
    fn negotiate(&mut self, verb: u8, option: u8, reply: &mut Vec<u8>) {
        match verb {
            WILL => {
                let supported = self.remote_supported(option);
                let st = self.opt(option);
                match (st.him, st.him_queued) {
                    (Q::No, _) => {
                        if supported {
                            st.him = Q::Yes;
                            send(reply, DO, option);
                        } else {
                            send(reply, DONT, option);
                        }
                    }
                    (Q::Yes, _) => {}
                    // DONT answered by WILL: a misbehaving peer; settle on "off".
                    (Q::WantNo, false) => st.him = Q::No,
                    (Q::WantNo, true) => {
                        st.him = Q::Yes;
                        st.him_queued = false;
                    }
                    (Q::WantYes, false) => st.him = Q::Yes,
                    (Q::WantYes, true) => {
                        st.him = Q::WantNo;
                        st.him_queued = false;
                        send(reply, DONT, option);
                    }
                }
            }
            WONT => {
                let st = self.opt(option);
                match (st.him, st.him_queued) {
                    (Q::No, _) => {}
                    (Q::Yes, _) => {
                        st.him = Q::No;
                        send(reply, DONT, option);
                    }
                    (Q::WantNo, false) | (Q::WantYes, _) => {
                        st.him = Q::No;
                        st.him_queued = false;
                    }
                    (Q::WantNo, true) => {
                        st.him = Q::WantYes;
                        st.him_queued = false;
                        send(reply, DO, option);
                    }
                }
            }
            DO => {
                let supported = self.local_supported(option);
                let st = self.opt(option);
                let was_yes = st.us == Q::Yes;
                match (st.us, st.us_queued) {
                    (Q::No, _) => {
                        if supported {
                            st.us = Q::Yes;
                            send(reply, WILL, option);
                        } else {
                            send(reply, WONT, option);
                        }
                    }
                    (Q::Yes, _) => {}
                    (Q::WantNo, false) => st.us = Q::No,
                    (Q::WantNo, true) => {
                        st.us = Q::Yes;
                        st.us_queued = false;
                    }
                    (Q::WantYes, false) => st.us = Q::Yes,
                    (Q::WantYes, true) => {
                        st.us = Q::WantNo;
                        st.us_queued = false;
                        send(reply, WONT, option);
                    }
                }
                if option == NAWS && !was_yes && self.local_enabled(NAWS) {
                    self.send_window(reply);
                }
            }
            DONT => {
                let st = self.opt(option);
                match (st.us, st.us_queued) {
                    (Q::No, _) => {}
                    (Q::Yes, _) => {
                        st.us = Q::No;
                        send(reply, WONT, option);
                    }
                    (Q::WantNo, false) | (Q::WantYes, _) => {
                        st.us = Q::No;
                        st.us_queued = false;
                    }
                    (Q::WantNo, true) => {
                        st.us = Q::WantYes;
                        st.us_queued = false;
                        send(reply, WILL, option);
                    }
                }
            }
            _ => {}
        }
    }

    /// Ask the server to enable `option` on its side (RFC 1143 "we want him to enable").
    fn ask_remote(&mut self, option: u8, reply: &mut Vec<u8>) {
        let st = self.opt(option);
        match (st.him, st.him_queued) {
            (Q::No, _) => {
                st.him = Q::WantYes;
                send(reply, DO, option);
            }
            (Q::WantNo, false) => st.him_queued = true,
            (Q::WantYes, true) => st.him_queued = false,
            _ => {}
        }
    }

    /// Offer to enable `option` on our side (RFC 1143 "we want us to enable").
    fn offer_local(&mut self, option: u8, reply: &mut Vec<u8>) {
        let st = self.opt(option);
        match (st.us, st.us_queued) {
            (Q::No, _) => {
                st.us = Q::WantYes;
                send(reply, WILL, option);
            }
            (Q::WantNo, false) => st.us_queued = true,
            (Q::WantYes, true) => st.us_queued = false,
            _ => {}
        }
    }

    /// Whether `option` is enabled on our side.
    pub fn local_enabled(&self, option: u8) -> bool {
        self.options[usize::from(option)].us == Q::Yes
    }

    /// Whether `option` is enabled on the server's side.
    pub fn remote_enabled(&self, option: u8) -> bool {
        self.options[usize::from(option)].him == Q::Yes
    }

    /// Whether what we send is in binary mode (no `CR NUL` translation).
    pub fn binary_out(&self) -> bool {
        self.local_enabled(BINARY)
    }

    /// The window size last given to [`TelnetCodec::encode_window_size`].
    pub fn window_size(&self) -> Option<(u16, u16)> {
        self.window
    }

    /// Encode `data` for the server: `0xFF` doubled; in NVT mode a `CR` not followed by `LF`
    /// within `data` becomes `CR NUL`.
    pub fn encode_data(&self, data: &[u8], out: &mut Vec<u8>) {
        let binary = self.binary_out();
        out.reserve(data.len() + data.len() / 16 + 2);
        let mut bytes = data.iter().peekable();
        while let Some(&byte) = bytes.next() {
            out.push(byte);
            if byte == IAC {
                out.push(IAC);
            } else if byte == b'\r' && !binary && bytes.peek() != Some(&&b'\n') {
                out.push(0);
            }
        }
    }

    /// Encode a BREAK: `IAC BRK`.
    pub fn encode_break(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[IAC, BRK]);
    }

    /// Record the viewer's window size and encode what tells the server: the NAWS subnegotiation
    /// when NAWS is on, else an offer `WILL NAWS` (the size follows when the server agrees).
    pub fn encode_window_size(&mut self, cols: u16, rows: u16, out: &mut Vec<u8>) {
        self.window = Some((cols, rows));
        if self.local_enabled(NAWS) {
            self.send_window(out);
        } else {
            self.offer_local(NAWS, out);
        }
    }

    /// `IAC SB NAWS w w h h IAC SE`, with `0xFF` doubled inside.
    fn send_window(&self, out: &mut Vec<u8>) {
        let Some((cols, rows)) = self.window else {
            return;
        };
        let [c0, c1] = cols.to_be_bytes();
        let [r0, r1] = rows.to_be_bytes();
        encode_subnegotiation(NAWS, &[c0, c1, r0, r1], out);
    }
}

/// Encode a subnegotiation: `IAC SB option body IAC SE`, with `0xFF` in `body` doubled.
pub fn encode_subnegotiation(option: u8, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[IAC, SB, option]);
    for &byte in body {
        out.push(byte);
        if byte == IAC {
            out.push(IAC);
        }
    }
    out.extend_from_slice(&[IAC, SE]);
}

fn send(reply: &mut Vec<u8>, verb: u8, option: u8) {
    reply.extend_from_slice(&[IAC, verb, option]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn feed(codec: &mut TelnetCodec, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        codec.feed(input, &mut data, &mut reply);
        (data, reply)
    }

    #[test]
    fn data_passes_and_iac_iac_unescapes() {
        let mut c = TelnetCodec::new();
        let (data, reply) = feed(&mut c, b"abc\xff\xffdef\n");
        assert_eq!(data, b"abc\xffdef\n");
        assert!(reply.is_empty());
    }

    #[test]
    fn nvt_cr_nul_becomes_cr_and_cr_lf_is_kept() {
        let mut c = TelnetCodec::new();
        let (data, _) = feed(&mut c, b"login:\r\0x\r\ny\0z\r");
        assert_eq!(data, b"login:\rx\r\ny\0z\r");
        // The NUL after a CR split across feeds is still dropped.
        let (data, _) = feed(&mut c, b"\0w");
        assert_eq!(data, b"w");
        // In binary mode CR NUL is data.
        let (_, reply) = feed(&mut c, &[IAC, WILL, BINARY]);
        assert_eq!(reply, [IAC, DO, BINARY]);
        let (data, _) = feed(&mut c, b"\r\0");
        assert_eq!(data, b"\r\0");
    }

    #[test]
    fn accepts_what_it_understands_and_refuses_the_rest() {
        let mut c = TelnetCodec::new();
        // What inetutils telnetd sends first, then the usual ECHO/SGA/NAWS.
        let input = [
            IAC, WILL, 37, IAC, DO, 24, IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, SGA, IAC, DO,
            NAWS, IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO, ECHO,
        ];
        let (data, reply) = feed(&mut c, &input);
        assert!(data.is_empty());
        assert_eq!(
            reply,
            [
                IAC, DONT, 37, IAC, WONT, 24, IAC, DO, ECHO, IAC, DO, SGA, IAC, WILL, SGA, IAC,
                WILL, NAWS, IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WONT, ECHO,
            ]
        );
        assert!(c.remote_enabled(ECHO) && c.remote_enabled(SGA) && c.remote_enabled(BINARY));
        assert!(c.local_enabled(NAWS) && c.binary_out() && !c.local_enabled(ECHO));
        // Repeated requests for a state already reached get no answer; refusals are repeated.
        let (_, reply) = feed(&mut c, &input);
        assert_eq!(reply, [IAC, DONT, 37, IAC, WONT, 24, IAC, WONT, ECHO]);
        // Turning options off is acknowledged once.
        let (_, reply) = feed(&mut c, &[IAC, WONT, ECHO, IAC, WONT, ECHO, IAC, DONT, SGA]);
        assert_eq!(reply, [IAC, DONT, ECHO, IAC, WONT, SGA]);
        assert!(!c.remote_enabled(ECHO) && !c.local_enabled(SGA));
    }

    #[test]
    fn our_requests_are_settled_by_either_answer() {
        let mut c = TelnetCodec::new();
        let mut out = Vec::new();
        c.start(&mut out);
        assert_eq!(out, [IAC, DO, SGA]);
        // WILL answers our DO: no further reply.
        let (_, reply) = feed(&mut c, &[IAC, WILL, SGA]);
        assert!(reply.is_empty());
        assert!(c.remote_enabled(SGA));
        let mut c = TelnetCodec::new();
        c.start(&mut out);
        let (_, reply) = feed(&mut c, &[IAC, WONT, SGA]);
        assert!(reply.is_empty());
        assert!(!c.remote_enabled(SGA));
    }

    #[test]
    fn window_size_waits_for_do_naws_and_doubles_iac() {
        let mut c = TelnetCodec::new();
        let mut out = Vec::new();
        c.encode_window_size(80, 24, &mut out);
        assert_eq!(out, [IAC, WILL, NAWS]);
        let (_, reply) = feed(&mut c, &[IAC, DO, NAWS]);
        assert_eq!(reply, [IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE]);
        out.clear();
        c.encode_window_size(0x01ff, 0xff00, &mut out);
        assert_eq!(
            out,
            [IAC, SB, NAWS, 0x01, IAC, IAC, IAC, IAC, 0x00, IAC, SE]
        );
        // The server asking first: WILL NAWS and the size known so far.
        let mut c = TelnetCodec::new();
        let (_, reply) = feed(&mut c, &[IAC, DO, NAWS]);
        assert_eq!(reply, [IAC, WILL, NAWS]);
        out.clear();
        c.encode_window_size(132, 43, &mut out);
        assert_eq!(out, [IAC, SB, NAWS, 0, 132, 0, 43, IAC, SE]);
        assert_eq!(c.window_size(), Some((132, 43)));
    }

    #[test]
    fn encodes_data_and_break() {
        let mut c = TelnetCodec::new();
        let mut out = Vec::new();
        c.encode_data(b"a\xffb\rc\r\n\r", &mut out);
        assert_eq!(out, b"a\xff\xffb\r\0c\r\n\r\0");
        out.clear();
        c.encode_break(&mut out);
        assert_eq!(out, [IAC, BRK]);
        feed(&mut c, &[IAC, DO, BINARY]);
        out.clear();
        c.encode_data(b"\r\xff", &mut out);
        assert_eq!(out, b"\r\xff\xff");
    }

    #[test]
    fn subnegotiations_are_skipped_and_bounded() {
        let mut c = TelnetCodec::new();
        let mut input = vec![b'a', IAC, SB, 24, 1, IAC, IAC, IAC, SE, b'b'];
        input.extend([IAC, SB, 39]);
        input.extend(std::iter::repeat_n(7u8, 100_000));
        input.extend([IAC, SE, b'c']);
        let (data, reply) = feed(&mut c, &input);
        assert_eq!(data, b"abc");
        assert!(reply.is_empty());
        assert!(c.sb_buf.capacity() <= 2 * MAX_SUBNEGOTIATION);
        // A command inside a subnegotiation ends it and is obeyed.
        let (data, reply) = feed(&mut c, &[IAC, SB, 5, 1, IAC, WILL, ECHO, b'd']);
        assert_eq!(data, b"d");
        assert_eq!(reply, [IAC, DO, ECHO]);
    }

    #[test]
    fn com_port_option_only_for_a_com_port_client() {
        let sb = [IAC, SB, COM_PORT_OPTION, 101, 0, 0, IAC, IAC, IAC, SE];
        // A plain telnet client refuses the option and drops its subnegotiations.
        let mut c = TelnetCodec::new();
        let (_, reply) = feed(
            &mut c,
            &[IAC, DO, COM_PORT_OPTION, IAC, WILL, COM_PORT_OPTION],
        );
        assert_eq!(
            reply,
            [IAC, WONT, COM_PORT_OPTION, IAC, DONT, COM_PORT_OPTION]
        );
        feed(&mut c, &sb);
        assert_eq!(c.take_com_port_message(), None);
        // An RFC 2217 client offers it, accepts both directions and keeps the bodies.
        let mut c = TelnetCodec::com_port_client();
        let mut out = Vec::new();
        c.start(&mut out);
        assert_eq!(out, [IAC, DO, SGA, IAC, WILL, COM_PORT_OPTION]);
        let (data, reply) = feed(
            &mut c,
            &[IAC, DO, COM_PORT_OPTION, IAC, WILL, COM_PORT_OPTION],
        );
        assert_eq!(reply, [IAC, DO, COM_PORT_OPTION]);
        assert!(data.is_empty());
        assert!(c.local_enabled(COM_PORT_OPTION) && c.remote_enabled(COM_PORT_OPTION));
        let (data, _) = feed(&mut c, &[b'a', IAC, SB, 24, 1, IAC, SE, b'b']);
        assert_eq!(data, b"ab");
        feed(&mut c, &sb);
        assert_eq!(c.take_com_port_message(), Some(vec![101, 0, 0, IAC]));
        assert_eq!(c.take_com_port_message(), None);
        // Bounded: too long a body is dropped whole; too many keep only the newest.
        let mut long = vec![IAC, SB, COM_PORT_OPTION];
        long.extend(std::iter::repeat_n(1u8, MAX_SUBNEGOTIATION + 1));
        long.extend([IAC, SE]);
        feed(&mut c, &long);
        assert_eq!(c.take_com_port_message(), None);
        for n in 0..MAX_PENDING_COM_PORT + 10 {
            feed(&mut c, &[IAC, SB, COM_PORT_OPTION, 107, n as u8, IAC, SE]);
        }
        assert_eq!(c.take_com_port_message(), Some(vec![107, 10]));
        assert_eq!(c.com_port_messages.len(), MAX_PENDING_COM_PORT - 1);
        out.clear();
        encode_subnegotiation(COM_PORT_OPTION, &[1, 0, 0, 0xff, 0], &mut out);
        assert_eq!(out, [IAC, SB, 44, 1, 0, 0, IAC, IAC, 0, IAC, SE]);
    }

    #[test]
    fn commands_without_meaning_for_a_client_are_ignored() {
        let mut c = TelnetCodec::new();
        let (data, reply) = feed(
            &mut c,
            &[b'x', IAC, NOP, IAC, GA, IAC, DM, IAC, SE, IAC, 246, b'y'],
        );
        assert_eq!(data, b"xy");
        assert!(reply.is_empty());
    }

    /// Two codecs answering each other settle in a few rounds, whatever they ask.
    #[test]
    fn two_codecs_never_loop() {
        let mut a = TelnetCodec::new();
        let mut b = TelnetCodec::new();
        let mut to_b = Vec::new();
        a.start(&mut to_b);
        a.encode_window_size(80, 24, &mut to_b);
        let mut to_a = Vec::new();
        b.start(&mut to_a);
        b.encode_window_size(100, 30, &mut to_a);
        for _ in 0..6 {
            let (mut next_b, mut next_a) = (Vec::new(), Vec::new());
            a.feed(&to_a, &mut Vec::new(), &mut next_b);
            b.feed(&to_b, &mut Vec::new(), &mut next_a);
            to_a = next_a;
            to_b = next_b;
        }
        assert!(to_a.is_empty() && to_b.is_empty(), "{to_a:?} {to_b:?}");
        assert!(a.remote_enabled(SGA) && a.local_enabled(SGA));
        // A client refuses NAWS from the other side: each offer was declined once.
        assert!(!a.local_enabled(NAWS) && !b.remote_enabled(NAWS));
    }

    fn random_stream(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<u8> {
        // Weighted towards protocol bytes so commands and subnegotiations occur often.
        let special = [
            IAC,
            IAC,
            WILL,
            WONT,
            DO,
            DONT,
            SB,
            SE,
            0,
            b'\r',
            b'\n',
            NAWS,
            ECHO,
            BINARY,
            SGA,
            COM_PORT_OPTION,
        ];
        (0..len)
            .map(|_| {
                if rng.random_bool(0.5) {
                    special[rng.random_range(0..special.len())]
                } else {
                    rng.random()
                }
            })
            .collect()
    }

    /// Feeding a stream in random pieces gives exactly what feeding it whole gives; random input
    /// never panics.
    #[test]
    fn random_split_points_give_identical_results() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x07e1_2e07);
        for _ in 0..2_000 {
            let len = rng.random_range(0..400);
            let stream = random_stream(&mut rng, len);
            let make = if rng.random_bool(0.5) {
                TelnetCodec::com_port_client
            } else {
                TelnetCodec::new
            };
            let mut whole = make();
            let expected = feed(&mut whole, &stream);
            let mut pieces = make();
            let (mut data, mut reply) = (Vec::new(), Vec::new());
            let mut rest = stream.as_slice();
            while !rest.is_empty() {
                let n = rng.random_range(0..=rest.len().min(8));
                let (piece, tail) = rest.split_at(n);
                pieces.feed(piece, &mut data, &mut reply);
                rest = tail;
            }
            assert_eq!((data, reply), expected, "stream {stream:?}");
            assert_eq!(pieces.state, whole.state);
            assert_eq!(pieces.com_port_messages, whole.com_port_messages);
        }
    }

    /// Whatever we send, a receiver decodes exactly the data we encoded, in NVT and binary mode.
    #[test]
    fn encode_then_decode_round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x05ee_d7e1);
        for binary in [false, true] {
            let mut sender = TelnetCodec::new();
            let mut receiver = TelnetCodec::new();
            if binary {
                feed(&mut sender, &[IAC, DO, BINARY]);
                feed(&mut receiver, &[IAC, WILL, BINARY]);
            }
            for _ in 0..500 {
                let len = rng.random_range(0..200);
                let data = random_stream(&mut rng, len);
                let mut wire = Vec::new();
                sender.encode_data(&data, &mut wire);
                let (got, reply) = feed(&mut receiver, &wire);
                assert!(reply.is_empty());
                assert_eq!(got, data, "binary {binary}");
            }
        }
    }
}
