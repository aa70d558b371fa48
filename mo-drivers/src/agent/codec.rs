//! The agent protocol's frames: a sans-I/O, length-prefixed, versioned codec.
//!
//! Every channel between `mo-agent` and the daemon (the control channel and one channel per port)
//! carries a stream of frames (docs/agent.md, "Wire format"):
//!
//! ```text
//! frame = length:u32 (big-endian; the bytes after this field, 2 ..= MAX_FRAME)
//!         version:u8 (= VERSION) kind:u8 body
//! str   = length:u16 (big-endian) UTF-8 bytes
//! ```
//!
//! [`Decoder`] takes bytes in any pieces and hands out whole [`Frame`]s; [`Frame::encode`]
//! writes one. Both sides treat a decoding error as fatal for the channel (it is closed and the
//! link reconnects): the stream cannot be resynchronised.
//!
//! ```
//! use mo_drivers::agent::codec::{Decoder, Frame};
//!
//! let frame = Frame::Output { seq: 7, time_ns: 1_700_000_000_000_000_000, bytes: b"login: ".to_vec() };
//! let wire = frame.encode();
//! let mut decoder = Decoder::new();
//! decoder.push(&wire[..5]);
//! assert_eq!(decoder.next_frame().unwrap(), None);
//! decoder.push(&wire[5..]);
//! assert_eq!(decoder.next_frame().unwrap(), Some(frame));
//! ```

use std::fmt;

use super::WaterMarks;
use crate::host::HostTable;

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// The largest frame body (version, kind and payload), in bytes.
pub const MAX_FRAME: usize = 256 * 1024;

/// The longest string field, in bytes.
pub const MAX_STR: usize = 4096;

/// The most ports one `Ports` frame lists.
pub const MAX_PORTS: usize = 1024;

/// The most columns a host-info table has on the wire.
pub const MAX_COLUMNS: usize = 32;

/// An ability an agent announces in its `Hello`: it answers [`Frame::HostQuery`].
pub const ABILITY_HOST_INFO: u32 = 1;

/// An ability an agent announces in its `Hello`: it holds a port's output back on
/// [`Frame::Flow`] (the daemon's pushback while it has much of that port's output unwritten).
pub const ABILITY_FLOW: u32 = 2;

/// A port an agent offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The port's name (`ttyS3`), unique on the agent.
    pub name: String,
    /// The address the agent opens it with (`serial:///dev/ttyS3?baud=115200`).
    pub url: String,
    /// The link's abilities: bit 0 BREAK, bit 1 line settings, bit 2 modem lines (DTR/RTS).
    pub caps: u8,
}

/// The water marks the agent sets for one of its ports (its defaults, or the port's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMarks {
    /// The port's name.
    pub name: String,
    /// Its marks; a device's address may still override each.
    pub marks: WaterMarks,
}

/// A control operation for a port, sent by the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOp {
    /// Send a BREAK for this many milliseconds.
    Break(u32),
    /// Raise or drop DTR.
    Dtr(bool),
    /// Raise or drop RTS.
    Rts(bool),
}

/// One message of the agent protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// Agent → daemon, first on the control channel: who is speaking.
    Hello {
        /// The agent's name.
        agent: String,
        /// The agent's software version.
        software: String,
        /// What the agent can do beyond version 1's first frames: a bit set of `ABILITY_*`
        /// ([`ABILITY_HOST_INFO`]). Optional on the wire: a `Hello` without it (an older agent)
        /// decodes as 0.
        abilities: u32,
    },
    /// Agent → daemon on the control channel: the ports it offers (replaces any earlier list).
    Ports(Vec<PortInfo>),
    /// Agent → daemon, first on a port channel: the spool's epoch (changes when the agent
    /// restarts) and the oldest sequence number it still holds.
    PortHello {
        /// Random per agent start; sequence numbers are only comparable within one epoch.
        epoch: u64,
        /// The oldest record the agent can still replay.
        first_seq: u64,
    },
    /// Daemon → agent on a port channel: send records from this sequence number on (records of
    /// the same epoch before it are already in the log).
    Resume {
        /// The first sequence number wanted.
        next_seq: u64,
    },
    /// Agent → daemon: bytes the port printed, with the agent's sequence number and the time
    /// (ns since the Unix epoch) they arrived.
    Output {
        /// Per-port record number, from 1, increasing by one.
        seq: u64,
        /// When the bytes arrived at the agent.
        time_ns: i64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Daemon → agent: records up to and including `seq` are stored; the agent may drop them.
    Ack {
        /// The last stored sequence number.
        seq: u64,
    },
    /// Daemon → agent: bytes to write to the port.
    Input(Vec<u8>),
    /// Daemon → agent: a control operation for the port.
    Control(PortOp),
    /// Daemon → agent: line settings to apply (`baud=9600&parity=even&flow=none`).
    Settings(String),
    /// Agent → daemon: the port's modem status lines (16550 MSR layout, high four bits).
    Modem(u8),
    /// Agent → daemon: records the spool dropped (it was full) before they were sent.
    Dropped {
        /// How many records.
        records: u64,
        /// How many bytes.
        bytes: u64,
    },
    /// Either way: a notice about the port or the agent (`port ttyS3 down: …`).
    Notice(String),
    /// Either way: the sender refuses to go on, and why.
    Error(String),
    /// Daemon → agent on the control channel (only to an agent announcing
    /// [`ABILITY_HOST_INFO`]): show this host's `cpu`, `mem`, `fs` or `proc`.
    HostQuery {
        /// Chosen by the daemon; the reply carries it back.
        id: u32,
        /// `cpu`, `mem`, `fs` or `proc` ([`crate::host::HostWhat`]).
        what: String,
    },
    /// Agent → daemon on the control channel: the answer to the [`Frame::HostQuery`] `id`.
    HostReply {
        /// The query's id.
        id: u32,
        /// The table, or why there is none. Rows that would make the frame longer than
        /// [`MAX_FRAME`] are left out when it is encoded.
        reply: Result<HostTable, String>,
    },
    /// Agent → daemon on the control channel, after `Ports` and only when the agent sets water
    /// marks: the marks of these ports (replaces any earlier list; ports left out have the
    /// built-in ones).
    Marks(Vec<PortMarks>),
    /// Agent → daemon on a port channel: bytes a local user typed on the console server
    /// (`mo-agent tty`), already written to the port by the agent; the daemon logs them as input
    /// of `user`. Spooled while the link is down, so `time_ns` may be well in the past.
    LocalInput {
        /// Who typed, as the daemon names them: `local:USER@AGENT`.
        user: String,
        /// When the agent read the keystrokes (ns since the Unix epoch).
        time_ns: i64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Agent → daemon on a port channel: the local users on the port now (`local:USER@AGENT`,
    /// one entry per `mo-agent tty`), replacing any earlier list; the daemon lists them in `who`.
    LocalViewers(Vec<String>),
    /// Agent → daemon on a port channel: who views the port (`^Ec w` on a local terminal).
    WhoQuery {
        /// Chosen by the agent; the reply carries it back.
        id: u32,
    },
    /// Daemon → agent on a port channel: the answer to the [`Frame::WhoQuery`] `id`, as lines
    /// of text (every device on the port, every viewer).
    WhoReply {
        /// The query's id.
        id: u32,
        /// The `who` lines.
        text: String,
    },
    /// Daemon → agent on a port channel (only to an agent announcing [`ABILITY_FLOW`]): hold
    /// the port's output back (`hold`: it stays in the agent's spool) or send it again. The
    /// daemon holds a port back while much of its output waits for a console, so that one port
    /// never holds up the connection's other channels.
    Flow {
        /// Hold back (true) or go on (false).
        hold: bool,
    },
}

/// Why bytes are not a valid frame stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The length field is below 2 or above [`MAX_FRAME`].
    #[error("agent frame length {0} out of range (2..={MAX_FRAME})")]
    Length(u32),
    /// The version byte is not [`VERSION`].
    #[error("agent frame version {0} not supported (this side speaks {VERSION})")]
    Version(u8),
    /// The kind byte names no frame.
    #[error("unknown agent frame kind {0}")]
    Kind(u8),
    /// The body does not match its kind.
    #[error("bad agent frame body ({kind}): {reason}")]
    Body {
        /// The frame's kind.
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

mod kind {
    pub const HELLO: u8 = 1;
    pub const PORTS: u8 = 2;
    pub const PORT_HELLO: u8 = 3;
    pub const RESUME: u8 = 4;
    pub const OUTPUT: u8 = 5;
    pub const ACK: u8 = 6;
    pub const INPUT: u8 = 7;
    pub const CONTROL: u8 = 8;
    pub const SETTINGS: u8 = 9;
    pub const MODEM: u8 = 10;
    pub const DROPPED: u8 = 11;
    pub const NOTICE: u8 = 12;
    pub const ERROR: u8 = 13;
    pub const HOST_QUERY: u8 = 14;
    pub const HOST_REPLY: u8 = 15;
    pub const MARKS: u8 = 16;
    pub const LOCAL_INPUT: u8 = 17;
    pub const LOCAL_VIEWERS: u8 = 18;
    pub const WHO_QUERY: u8 = 19;
    pub const WHO_REPLY: u8 = 20;
    pub const FLOW: u8 = 21;
}

impl Frame {
    /// The frame's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Ports(_) => "ports",
            Frame::PortHello { .. } => "port hello",
            Frame::Resume { .. } => "resume",
            Frame::Output { .. } => "output",
            Frame::Ack { .. } => "ack",
            Frame::Input(_) => "input",
            Frame::Control(_) => "control",
            Frame::Settings(_) => "settings",
            Frame::Modem(_) => "modem",
            Frame::Dropped { .. } => "dropped",
            Frame::Notice(_) => "notice",
            Frame::Error(_) => "error",
            Frame::HostQuery { .. } => "host query",
            Frame::HostReply { .. } => "host reply",
            Frame::Marks(_) => "marks",
            Frame::LocalInput { .. } => "local input",
            Frame::LocalViewers(_) => "local viewers",
            Frame::WhoQuery { .. } => "who query",
            Frame::WhoReply { .. } => "who reply",
            Frame::Flow { .. } => "flow",
        }
    }

    /// The frame on the wire. Strings longer than [`MAX_STR`] and byte payloads that would make
    /// the frame longer than [`MAX_FRAME`] are cut short (senders split output into pieces of at
    /// most [`MAX_PAYLOAD`] bytes, so this never happens to them).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(32);
        body.push(VERSION);
        match self {
            Frame::Hello {
                agent,
                software,
                abilities,
            } => {
                body.push(kind::HELLO);
                put_str(&mut body, agent);
                put_str(&mut body, software);
                body.extend_from_slice(&abilities.to_be_bytes());
            }
            Frame::Ports(ports) => {
                body.push(kind::PORTS);
                let ports = &ports[..ports.len().min(MAX_PORTS)];
                body.extend_from_slice(&(ports.len() as u16).to_be_bytes());
                for port in ports {
                    put_str(&mut body, &port.name);
                    put_str(&mut body, &port.url);
                    body.push(port.caps);
                }
            }
            Frame::PortHello { epoch, first_seq } => {
                body.push(kind::PORT_HELLO);
                body.extend_from_slice(&epoch.to_be_bytes());
                body.extend_from_slice(&first_seq.to_be_bytes());
            }
            Frame::Resume { next_seq } => {
                body.push(kind::RESUME);
                body.extend_from_slice(&next_seq.to_be_bytes());
            }
            Frame::Output {
                seq,
                time_ns,
                bytes,
            } => {
                body.push(kind::OUTPUT);
                body.extend_from_slice(&seq.to_be_bytes());
                body.extend_from_slice(&time_ns.to_be_bytes());
                put_bytes(&mut body, bytes);
            }
            Frame::Ack { seq } => {
                body.push(kind::ACK);
                body.extend_from_slice(&seq.to_be_bytes());
            }
            Frame::Input(bytes) => {
                body.push(kind::INPUT);
                put_bytes(&mut body, bytes);
            }
            Frame::Control(op) => {
                body.push(kind::CONTROL);
                let (code, value) = match op {
                    PortOp::Break(ms) => (1u8, *ms),
                    PortOp::Dtr(on) => (2, u32::from(*on)),
                    PortOp::Rts(on) => (3, u32::from(*on)),
                };
                body.push(code);
                body.extend_from_slice(&value.to_be_bytes());
            }
            Frame::Settings(text) => {
                body.push(kind::SETTINGS);
                put_str(&mut body, text);
            }
            Frame::Modem(msr) => {
                body.push(kind::MODEM);
                body.push(*msr);
            }
            Frame::Dropped { records, bytes } => {
                body.push(kind::DROPPED);
                body.extend_from_slice(&records.to_be_bytes());
                body.extend_from_slice(&bytes.to_be_bytes());
            }
            Frame::Notice(text) => {
                body.push(kind::NOTICE);
                put_str(&mut body, text);
            }
            Frame::Error(text) => {
                body.push(kind::ERROR);
                put_str(&mut body, text);
            }
            Frame::HostQuery { id, what } => {
                body.push(kind::HOST_QUERY);
                body.extend_from_slice(&id.to_be_bytes());
                put_str(&mut body, what);
            }
            Frame::HostReply { id, reply } => {
                body.push(kind::HOST_REPLY);
                body.extend_from_slice(&id.to_be_bytes());
                match reply {
                    Ok(table) => {
                        body.push(0);
                        put_table(&mut body, table);
                    }
                    Err(text) => {
                        body.push(1);
                        put_str(&mut body, text);
                    }
                }
            }
            Frame::Marks(ports) => {
                body.push(kind::MARKS);
                let ports = &ports[..ports.len().min(MAX_PORTS)];
                body.extend_from_slice(&(ports.len() as u16).to_be_bytes());
                for port in ports {
                    put_str(&mut body, &port.name);
                    let high = port.marks.high.unwrap_or(0);
                    let low = port
                        .marks
                        .low
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    body.extend_from_slice(&high.to_be_bytes());
                    body.extend_from_slice(&low.to_be_bytes());
                }
            }
            Frame::LocalInput {
                user,
                time_ns,
                bytes,
            } => {
                body.push(kind::LOCAL_INPUT);
                put_str(&mut body, user);
                body.extend_from_slice(&time_ns.to_be_bytes());
                put_bytes(&mut body, bytes);
            }
            Frame::LocalViewers(users) => {
                body.push(kind::LOCAL_VIEWERS);
                let users = &users[..users.len().min(MAX_PORTS)];
                body.extend_from_slice(&(users.len() as u16).to_be_bytes());
                for user in users {
                    put_str(&mut body, user);
                }
            }
            Frame::WhoQuery { id } => {
                body.push(kind::WHO_QUERY);
                body.extend_from_slice(&id.to_be_bytes());
            }
            Frame::WhoReply { id, text } => {
                body.push(kind::WHO_REPLY);
                body.extend_from_slice(&id.to_be_bytes());
                put_str(&mut body, text);
            }
            Frame::Flow { hold } => {
                body.push(kind::FLOW);
                body.push(u8::from(*hold));
            }
        }
        let mut wire = Vec::with_capacity(body.len() + 4);
        wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
        wire.extend_from_slice(&body);
        wire
    }

    /// Read one frame body (version, kind, payload).
    fn decode(body: &[u8]) -> Result<Frame, CodecError> {
        let [version, code, rest @ ..] = body else {
            return Err(CodecError::Length(body.len() as u32));
        };
        if *version != VERSION {
            return Err(CodecError::Version(*version));
        }
        let mut r = Reader {
            rest,
            kind: "frame",
        };
        let frame = match *code {
            kind::HELLO => {
                r.kind = "hello";
                let agent = r.string()?;
                let software = r.string()?;
                // Added after the first agents: absent means none.
                let abilities = if r.rest.is_empty() { 0 } else { r.u32()? };
                Frame::Hello {
                    agent,
                    software,
                    abilities,
                }
            }
            kind::PORTS => {
                r.kind = "ports";
                let count = usize::from(r.u16()?);
                if count > MAX_PORTS {
                    return Err(r.bad("too many ports"));
                }
                let mut ports = Vec::with_capacity(count);
                for _ in 0..count {
                    ports.push(PortInfo {
                        name: r.string()?,
                        url: r.string()?,
                        caps: r.u8()?,
                    });
                }
                Frame::Ports(ports)
            }
            kind::PORT_HELLO => {
                r.kind = "port hello";
                Frame::PortHello {
                    epoch: r.u64()?,
                    first_seq: r.u64()?,
                }
            }
            kind::RESUME => {
                r.kind = "resume";
                Frame::Resume { next_seq: r.u64()? }
            }
            kind::OUTPUT => {
                r.kind = "output";
                let seq = r.u64()?;
                let time_ns = r.u64()? as i64;
                Frame::Output {
                    seq,
                    time_ns,
                    bytes: r.take_rest(),
                }
            }
            kind::ACK => {
                r.kind = "ack";
                Frame::Ack { seq: r.u64()? }
            }
            kind::INPUT => {
                r.kind = "input";
                Frame::Input(r.take_rest())
            }
            kind::CONTROL => {
                r.kind = "control";
                let code = r.u8()?;
                let value = r.u32()?;
                let on = |v: u32| match v {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(CodecError::Body {
                        kind: "control",
                        reason: "a line level must be 0 or 1",
                    }),
                };
                Frame::Control(match code {
                    1 => PortOp::Break(value),
                    2 => PortOp::Dtr(on(value)?),
                    3 => PortOp::Rts(on(value)?),
                    _ => return Err(r.bad("unknown control operation")),
                })
            }
            kind::SETTINGS => {
                r.kind = "settings";
                Frame::Settings(r.string()?)
            }
            kind::MODEM => {
                r.kind = "modem";
                Frame::Modem(r.u8()?)
            }
            kind::DROPPED => {
                r.kind = "dropped";
                Frame::Dropped {
                    records: r.u64()?,
                    bytes: r.u64()?,
                }
            }
            kind::NOTICE => {
                r.kind = "notice";
                Frame::Notice(r.string()?)
            }
            kind::ERROR => {
                r.kind = "error";
                Frame::Error(r.string()?)
            }
            kind::HOST_QUERY => {
                r.kind = "host query";
                Frame::HostQuery {
                    id: r.u32()?,
                    what: r.string()?,
                }
            }
            kind::HOST_REPLY => {
                r.kind = "host reply";
                let id = r.u32()?;
                let reply = match r.u8()? {
                    0 => Ok(r.table()?),
                    1 => Err(r.string()?),
                    _ => return Err(r.bad("unknown reply status")),
                };
                Frame::HostReply { id, reply }
            }
            kind::MARKS => {
                r.kind = "marks";
                let count = usize::from(r.u16()?);
                if count > MAX_PORTS {
                    return Err(r.bad("too many ports"));
                }
                let mut ports = Vec::with_capacity(count);
                for _ in 0..count {
                    let name = r.string()?;
                    let high = Some(r.u64()?).filter(|h| *h != 0);
                    let low = Some(r.u64()?)
                        .filter(|ms| *ms != 0)
                        .map(std::time::Duration::from_millis);
                    ports.push(PortMarks {
                        name,
                        marks: WaterMarks { high, low },
                    });
                }
                Frame::Marks(ports)
            }
            kind::LOCAL_INPUT => {
                r.kind = "local input";
                let user = r.string()?;
                let time_ns = r.u64()? as i64;
                Frame::LocalInput {
                    user,
                    time_ns,
                    bytes: r.take_rest(),
                }
            }
            kind::LOCAL_VIEWERS => {
                r.kind = "local viewers";
                let count = usize::from(r.u16()?);
                if count > MAX_PORTS {
                    return Err(r.bad("too many viewers"));
                }
                let mut users = Vec::with_capacity(count);
                for _ in 0..count {
                    users.push(r.string()?);
                }
                Frame::LocalViewers(users)
            }
            kind::WHO_QUERY => {
                r.kind = "who query";
                Frame::WhoQuery { id: r.u32()? }
            }
            kind::WHO_REPLY => {
                r.kind = "who reply";
                Frame::WhoReply {
                    id: r.u32()?,
                    text: r.string()?,
                }
            }
            kind::FLOW => {
                r.kind = "flow";
                match r.u8()? {
                    0 => Frame::Flow { hold: false },
                    1 => Frame::Flow { hold: true },
                    _ => return Err(r.bad("flow is 0 (go) or 1 (hold)")),
                }
            }
            other => return Err(CodecError::Kind(other)),
        };
        if !r.rest.is_empty() {
            return Err(r.bad("bytes after the end of the frame"));
        }
        Ok(frame)
    }
}

/// The most payload bytes an `Output` or `Input` frame carries.
pub const MAX_PAYLOAD: usize = MAX_FRAME - 64;

fn put_str(body: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(MAX_STR);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    body.extend_from_slice(&(end as u16).to_be_bytes());
    body.extend_from_slice(&text.as_bytes()[..end]);
}

/// `columns:u8 (str)* rows:u16 (str × columns)*`: as many rows as fit in [`MAX_FRAME`].
fn put_table(body: &mut Vec<u8>, table: &HostTable) {
    let columns = &table.columns[..table.columns.len().min(MAX_COLUMNS)];
    body.push(columns.len() as u8);
    for c in columns {
        put_str(body, c);
    }
    let count_at = body.len();
    body.extend_from_slice(&[0, 0]);
    let mut count: u16 = 0;
    let mut row_bytes = Vec::new();
    // Rows without columns would be empty: none are sent.
    let rows = if columns.is_empty() {
        &[][..]
    } else {
        &table.rows[..]
    };
    for row in rows {
        if count == u16::MAX {
            break;
        }
        row_bytes.clear();
        for i in 0..columns.len() {
            put_str(&mut row_bytes, row.get(i).map_or("", String::as_str));
        }
        if body.len() + row_bytes.len() > MAX_FRAME {
            break;
        }
        body.extend_from_slice(&row_bytes);
        count += 1;
    }
    body[count_at..count_at + 2].copy_from_slice(&count.to_be_bytes());
}

fn put_bytes(body: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_FRAME.saturating_sub(body.len());
    body.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

struct Reader<'a> {
    rest: &'a [u8],
    kind: &'static str,
}

impl Reader<'_> {
    fn bad(&self, reason: &'static str) -> CodecError {
        CodecError::Body {
            kind: self.kind,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.rest.len() < n {
            return Err(self.bad("too short"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let n = usize::from(self.u16()?);
        if n > MAX_STR {
            return Err(self.bad("string too long"));
        }
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.bad("string is not UTF-8"))
    }

    fn table(&mut self) -> Result<HostTable, CodecError> {
        let ncols = usize::from(self.u8()?);
        if ncols > MAX_COLUMNS {
            return Err(self.bad("too many columns"));
        }
        let columns = (0..ncols)
            .map(|_| self.string())
            .collect::<Result<Vec<_>, _>>()?;
        let nrows = usize::from(self.u16()?);
        if ncols == 0 && nrows > 0 {
            return Err(self.bad("rows without columns"));
        }
        let mut rows = Vec::new();
        for _ in 0..nrows {
            rows.push(
                (0..ncols)
                    .map(|_| self.string())
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(HostTable { columns, rows })
    }

    fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rest).to_vec()
    }
}

/// Collects bytes from a channel and hands out whole frames.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    failed: Option<CodecError>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buf.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that do not yet make a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `None` if more bytes are needed, or the error that ended the stream
    /// (returned again on every later call: the stream cannot be resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(head) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let n = len as usize;
        if !(2..=MAX_FRAME).contains(&n) {
            return Err(self.fail(CodecError::Length(len)));
        }
        if self.buf.len() < 4 + n {
            return Ok(None);
        }
        let result = Frame::decode(&self.buf[4..4 + n]);
        self.buf.drain(..4 + n);
        match result {
            Ok(frame) => Ok(Some(frame)),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: CodecError) -> CodecError {
        self.buf = Vec::new();
        self.failed = Some(e.clone());
        e
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Hello {
                agent: "cs1".into(),
                software: "0.1.0".into(),
                abilities: ABILITY_HOST_INFO,
            },
            Frame::Ports(vec![
                PortInfo {
                    name: "ttyS3".into(),
                    url: "serial:///dev/ttyS3".into(),
                    caps: 7,
                },
                PortInfo {
                    name: "é".into(),
                    url: String::new(),
                    caps: 0,
                },
            ]),
            Frame::Ports(Vec::new()),
            Frame::PortHello {
                epoch: u64::MAX,
                first_seq: 1,
            },
            Frame::Resume { next_seq: 42 },
            Frame::Output {
                seq: 1,
                time_ns: -5,
                bytes: b"hello\r\n".to_vec(),
            },
            Frame::Output {
                seq: 2,
                time_ns: 0,
                bytes: Vec::new(),
            },
            Frame::Ack { seq: 9 },
            Frame::Input(vec![0, 255, 3]),
            Frame::Control(PortOp::Break(250)),
            Frame::Control(PortOp::Dtr(true)),
            Frame::Control(PortOp::Rts(false)),
            Frame::Settings("baud=9600".into()),
            Frame::Modem(0xb0),
            Frame::Dropped {
                records: 3,
                bytes: 4096,
            },
            Frame::Notice("port down".into()),
            Frame::Error("go away".into()),
            Frame::HostQuery {
                id: 7,
                what: "cpu".into(),
            },
            Frame::HostReply {
                id: 7,
                reply: Ok(HostTable {
                    columns: vec!["A".into(), "B".into()],
                    rows: vec![
                        vec!["1".into(), "é".into()],
                        vec![String::new(), "x".into()],
                    ],
                }),
            },
            Frame::HostReply {
                id: 8,
                reply: Ok(HostTable::default()),
            },
            Frame::HostReply {
                id: u32::MAX,
                reply: Err("unknown host info `x`".into()),
            },
            Frame::Marks(vec![
                PortMarks {
                    name: "p0".into(),
                    marks: WaterMarks {
                        high: Some(2000),
                        low: Some(std::time::Duration::from_millis(1500)),
                    },
                },
                PortMarks {
                    name: "p1".into(),
                    marks: WaterMarks {
                        high: None,
                        low: None,
                    },
                },
            ]),
            Frame::LocalInput {
                user: "local:root@cs1".into(),
                time_ns: 1_700_000_000_000_000_000,
                bytes: b"reboot\r".to_vec(),
            },
            Frame::LocalInput {
                user: String::new(),
                time_ns: -1,
                bytes: Vec::new(),
            },
            Frame::LocalViewers(vec!["local:root@cs1".into(), "local:é@cs1".into()]),
            Frame::LocalViewers(Vec::new()),
            Frame::WhoQuery { id: 3 },
            Frame::Flow { hold: true },
            Frame::Flow { hold: false },
            Frame::WhoReply {
                id: 3,
                text: "web0: alice attach 5s ssh\nweb0: nobody".into(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_in_any_split() {
        let frames = all_frames();
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for step in [1, 2, 3, 7, 64, wire.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split {step}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn garbage_is_a_lasting_error() {
        let mut d = Decoder::new();
        d.push(b"SSH-2.0-garbage\r\n");
        let e = d.next_frame().unwrap_err();
        assert!(matches!(e, CodecError::Length(_)), "{e}");
        assert!(e.to_string().contains("out of range"), "{e}");
        d.push(&Frame::Ack { seq: 1 }.encode());
        assert_eq!(d.next_frame().unwrap_err(), e);

        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 2, 9, 1]);
        assert_eq!(d.next_frame().unwrap_err(), CodecError::Version(9));
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 2, VERSION, 99]);
        assert_eq!(d.next_frame().unwrap_err(), CodecError::Kind(99));
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 3, VERSION, kind::ACK, 1]);
        let e = d.next_frame().unwrap_err();
        assert!(e.to_string().contains("ack"), "{e}");
        let mut wire = Frame::Modem(1).encode();
        wire[3] += 1;
        wire.push(0);
        let mut d = Decoder::new();
        d.push(&wire);
        assert!(d.next_frame().unwrap_err().to_string().contains("after"));
    }

    #[test]
    fn a_hello_without_abilities_is_an_older_agents() {
        // What agents before host info sent: name and version only.
        let mut body = vec![VERSION, kind::HELLO];
        put_str(&mut body, "cs1");
        put_str(&mut body, "0.1.0");
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        let mut d = Decoder::new();
        d.push(&wire);
        assert_eq!(
            d.next_frame().unwrap(),
            Some(Frame::Hello {
                agent: "cs1".into(),
                software: "0.1.0".into(),
                abilities: 0,
            })
        );
    }

    #[test]
    fn a_big_host_table_is_cut_to_whole_rows() {
        let row = vec!["p".repeat(100), "q".repeat(100)];
        let table = HostTable {
            columns: vec!["A".into(), "B".into()],
            rows: vec![row.clone(); 5000],
        };
        let wire = Frame::HostReply {
            id: 1,
            reply: Ok(table),
        }
        .encode();
        assert!(wire.len() <= MAX_FRAME + 4);
        let mut d = Decoder::new();
        d.push(&wire);
        let Some(Frame::HostReply { reply: Ok(t), .. }) = d.next_frame().unwrap() else {
            panic!("not a host reply");
        };
        assert!(
            t.rows.len() > 1000 && t.rows.len() < 5000,
            "{}",
            t.rows.len()
        );
        assert!(t.rows.iter().all(|r| *r == row));
        // Short rows are padded, extra cells left out: every row as wide as the columns.
        let ragged = HostTable {
            columns: vec!["A".into(), "B".into()],
            rows: vec![vec!["1".into()], vec!["1".into(), "2".into(), "3".into()]],
        };
        let mut d = Decoder::new();
        d.push(
            &Frame::HostReply {
                id: 2,
                reply: Ok(ragged),
            }
            .encode(),
        );
        let Some(Frame::HostReply { reply: Ok(t), .. }) = d.next_frame().unwrap() else {
            panic!("not a host reply");
        };
        assert_eq!(t.rows, [vec!["1", ""], vec!["1", "2"]]);
    }

    #[test]
    fn oversized_fields_are_cut_not_broken() {
        let long = "x".repeat(MAX_STR + 10);
        let wire = Frame::Notice(long).encode();
        let mut d = Decoder::new();
        d.push(&wire);
        let Some(Frame::Notice(text)) = d.next_frame().unwrap() else {
            panic!("not a notice");
        };
        assert_eq!(text.len(), MAX_STR);
        let wire = Frame::Input(vec![1; MAX_FRAME * 2]).encode();
        assert!(wire.len() <= MAX_FRAME + 4);
        let mut d = Decoder::new();
        d.push(&wire);
        assert!(matches!(d.next_frame().unwrap(), Some(Frame::Input(_))));
    }
}
