//! A sans-I/O RMCP+ codec (IPMI 2.0 §13): RMCP/ASF presence ping, the IPMI 2.0 session
//! header with integrity and confidentiality, IPMI request/response messages, the RAKP session
//! setup messages and SOL packets. No function here does I/O or panics, whatever the bytes.
//!
//! ```
//! use mo_drivers::ipmi::rmcp::{self, Packet, PayloadType};
//! let wire = rmcp::encode_packet(None, PayloadType::Ipmi, 0, 0, b"hi", [0; 16]);
//! match rmcp::decode_packet(&wire, None).unwrap() {
//!     Packet::Session(p) => assert_eq!(p.payload, b"hi"),
//!     other => panic!("{other:?}"),
//! }
//! assert!(rmcp::decode_packet(&[6, 0], None).is_err());
//! ```

use super::crypto::{CipherSuite, SessionKeys, codes_equal};

/// A malformed or unacceptable packet: what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

impl CodecError {
    /// An error saying `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        CodecError(reason.into())
    }
}

type Result<T> = std::result::Result<T, CodecError>;

/// RMCP header: version 6, reserved, sequence 0xFF (no RMCP ack), class.
const RMCP_VERSION: u8 = 0x06;
const CLASS_ASF: u8 = 0x06;
const CLASS_IPMI: u8 = 0x07;
const ASF_IANA: [u8; 4] = [0x00, 0x00, 0x11, 0xBE];
const ASF_PING: u8 = 0x80;
const ASF_PONG: u8 = 0x40;
/// IPMI 2.0 authentication type "RMCP+".
const AUTH_RMCP_PLUS: u8 = 0x06;
const FLAG_ENCRYPTED: u8 = 0x80;
const FLAG_AUTHENTICATED: u8 = 0x40;

/// Our software ID as requester (remote console 0x81) and the BMC's address.
pub const CONSOLE_ADDR: u8 = 0x81;
/// The BMC's slave address.
pub const BMC_ADDR: u8 = 0x20;

/// RMCP+ payload types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// An IPMI message.
    Ipmi,
    /// Serial over LAN.
    Sol,
    /// RMCP+ Open Session Request.
    OpenSessionRequest,
    /// RMCP+ Open Session Response.
    OpenSessionResponse,
    /// RAKP message 1.
    Rakp1,
    /// RAKP message 2.
    Rakp2,
    /// RAKP message 3.
    Rakp3,
    /// RAKP message 4.
    Rakp4,
    /// Anything else (ignored by the session).
    Other(u8),
}

impl PayloadType {
    /// The 6-bit code.
    pub fn code(self) -> u8 {
        match self {
            PayloadType::Ipmi => 0x00,
            PayloadType::Sol => 0x01,
            PayloadType::OpenSessionRequest => 0x10,
            PayloadType::OpenSessionResponse => 0x11,
            PayloadType::Rakp1 => 0x12,
            PayloadType::Rakp2 => 0x13,
            PayloadType::Rakp3 => 0x14,
            PayloadType::Rakp4 => 0x15,
            PayloadType::Other(code) => code & 0x3F,
        }
    }

    /// The type with 6-bit code `code`.
    pub fn from_code(code: u8) -> Self {
        match code & 0x3F {
            0x00 => PayloadType::Ipmi,
            0x01 => PayloadType::Sol,
            0x10 => PayloadType::OpenSessionRequest,
            0x11 => PayloadType::OpenSessionResponse,
            0x12 => PayloadType::Rakp1,
            0x13 => PayloadType::Rakp2,
            0x14 => PayloadType::Rakp3,
            0x15 => PayloadType::Rakp4,
            other => PayloadType::Other(other),
        }
    }
}

/// A bounds-checked little-endian reader over received bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Read `bytes`, naming `what` in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(CodecError::new(format!(
                "{} is truncated: needed {n} more bytes, {} left",
                self.what,
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// An IPMI 2.0 session packet, decrypted and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPacket {
    /// The payload type.
    pub payload_type: PayloadType,
    /// Whether the payload was encrypted on the wire.
    pub encrypted: bool,
    /// Whether the packet carried an integrity code (it was checked).
    pub authenticated: bool,
    /// The session ID (ours, in packets from the BMC).
    pub session_id: u32,
    /// The session sequence number.
    pub seq: u32,
    /// The clear payload.
    pub payload: Vec<u8>,
}

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// An ASF presence pong, with the ping's message tag.
    Pong {
        /// The tag of the ping answered.
        tag: u8,
    },
    /// An IPMI 2.0 (RMCP+) session packet.
    Session(SessionPacket),
    /// An IPMI 1.5 packet (some BMCs answer pre-session requests so): the raw message.
    V15 {
        /// The session ID.
        session_id: u32,
        /// The IPMI message.
        payload: Vec<u8>,
    },
}

/// An ASF presence ping with message tag `tag`.
pub fn encode_ping(tag: u8) -> Vec<u8> {
    let mut out = vec![RMCP_VERSION, 0, 0xFF, CLASS_ASF];
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[ASF_PING, tag, 0, 0]);
    out
}

/// Encode an IPMI 2.0 session packet. With `keys`, an encrypted-capable payload type (IPMI,
/// SOL) is encrypted with `iv` and every packet gets an integrity code; without, it goes in the
/// clear (session setup).
pub fn encode_packet(
    keys: Option<&SessionKeys>,
    payload_type: PayloadType,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    iv: [u8; 16],
) -> Vec<u8> {
    let sealed;
    let mut flags = 0u8;
    let body: &[u8] = match keys {
        Some(keys) if matches!(payload_type, PayloadType::Ipmi | PayloadType::Sol) => {
            flags |= FLAG_ENCRYPTED | FLAG_AUTHENTICATED;
            sealed = keys.encrypt(payload, iv);
            &sealed
        }
        Some(_) => {
            flags |= FLAG_AUTHENTICATED;
            payload
        }
        None => payload,
    };
    let mut out = vec![RMCP_VERSION, 0, 0xFF, CLASS_IPMI];
    out.push(AUTH_RMCP_PLUS);
    out.push(flags | payload_type.code());
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(body.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    out.extend_from_slice(body);
    if let Some(keys) = keys {
        let pad = (4 - (12 + body.len() + 2) % 4) % 4;
        out.extend(std::iter::repeat_n(0xFF, pad));
        out.push(pad as u8);
        out.push(0x07);
        let code = keys.integrity(&out[4..]);
        out.extend_from_slice(&code);
    }
    out
}

/// Decode one datagram. Session packets with an integrity code are checked against `keys` (an
/// authenticated packet without keys is an error) and encrypted payloads are decrypted.
pub fn decode_packet(bytes: &[u8], keys: Option<&SessionKeys>) -> Result<Packet> {
    let mut r = Reader::new(bytes, "RMCP packet");
    let header = r.array::<4>()?;
    if header[0] != RMCP_VERSION {
        return Err(CodecError::new(format!(
            "not an RMCP packet (version byte {:#04x})",
            header[0]
        )));
    }
    match header[3] & 0x1F {
        CLASS_ASF => {
            let mut r = Reader::new(r.rest(), "ASF message");
            let iana = r.array::<4>()?;
            let kind = r.u8()?;
            let tag = r.u8()?;
            if iana != ASF_IANA || kind != ASF_PONG {
                return Err(CodecError::new(format!(
                    "unexpected ASF message type {kind:#04x}"
                )));
            }
            Ok(Packet::Pong { tag })
        }
        CLASS_IPMI => decode_ipmi(bytes, r.rest(), keys),
        other => Err(CodecError::new(format!(
            "unexpected RMCP message class {other:#04x}"
        ))),
    }
}

fn decode_ipmi(whole: &[u8], body: &[u8], keys: Option<&SessionKeys>) -> Result<Packet> {
    let mut r = Reader::new(body, "IPMI session header");
    let auth_type = r.u8()?;
    if auth_type != AUTH_RMCP_PLUS {
        // IPMI 1.5: auth type, seq (4), session ID (4), [auth code 16], length (1), message.
        let _seq = r.u32()?;
        let session_id = r.u32()?;
        if auth_type != 0 {
            r.take(16)?;
        }
        let len = usize::from(r.u8()?);
        let payload = r.take(len)?.to_vec();
        return Ok(Packet::V15 {
            session_id,
            payload,
        });
    }
    let type_byte = r.u8()?;
    let session_id = r.u32()?;
    let seq = r.u32()?;
    let len = usize::from(r.u16()?);
    let body_on_wire = r.take(len)?;
    let encrypted = type_byte & FLAG_ENCRYPTED != 0;
    let authenticated = type_byte & FLAG_AUTHENTICATED != 0;
    if authenticated {
        let keys = keys.ok_or_else(|| {
            CodecError::new("authenticated packet outside an established session")
        })?;
        let trailer = r.rest();
        let code_len = keys.suite().integrity_len();
        if trailer.len() < code_len + 2 {
            return Err(CodecError::new("integrity trailer is truncated"));
        }
        let code_at = trailer.len() - code_len;
        let (fields, code) = trailer.split_at(code_at);
        let pad = usize::from(fields[fields.len() - 2]);
        if pad + 2 != fields.len() {
            return Err(CodecError::new(format!(
                "integrity pad length {pad} does not match the {} trailer bytes",
                fields.len()
            )));
        }
        // The code covers everything from the auth type through the next-header byte.
        let covered_end = whole.len() - code_len;
        let covered = whole.get(4..covered_end).unwrap_or_default();
        if !codes_equal(&keys.integrity(covered), code) {
            return Err(CodecError::new("integrity check failed"));
        }
    }
    let payload = if encrypted {
        let keys =
            keys.ok_or_else(|| CodecError::new("encrypted packet outside an established session"))?;
        keys.decrypt(body_on_wire)?
    } else {
        body_on_wire.to_vec()
    };
    Ok(Packet::Session(SessionPacket {
        payload_type: PayloadType::from_code(type_byte),
        encrypted,
        authenticated,
        session_id,
        seq,
        payload,
    }))
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request message (LAN format) from the remote console to the BMC.
pub fn encode_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![BMC_ADDR, netfn << 2];
    out.push(checksum(&out));
    let start = out.len();
    out.extend_from_slice(&[CONSOLE_ADDR, rq_seq << 2, cmd]);
    out.extend_from_slice(data);
    let sum = checksum(&out[start..]);
    out.push(sum);
    out
}

/// An IPMI response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response network function (request netfn + 1).
    pub netfn: u8,
    /// The command answered.
    pub cmd: u8,
    /// The requester sequence number echoed back.
    pub rq_seq: u8,
    /// The completion code (0 = success).
    pub completion: u8,
    /// Response data after the completion code.
    pub data: Vec<u8>,
}

/// Decode an IPMI response message, checking both checksums.
pub fn decode_response(bytes: &[u8]) -> Result<Response> {
    let mut r = Reader::new(bytes, "IPMI response");
    let head = r.array::<3>()?;
    if checksum(&head[..2]) != head[2] {
        return Err(CodecError::new("IPMI response header checksum mismatch"));
    }
    let rest = r.rest();
    if rest.len() < 5 {
        return Err(CodecError::new(format!(
            "IPMI response body of {} bytes is too short",
            rest.len()
        )));
    }
    let (body, sum) = rest.split_at(rest.len() - 1);
    if checksum(body) != sum[0] {
        return Err(CodecError::new("IPMI response data checksum mismatch"));
    }
    Ok(Response {
        netfn: head[1] >> 2,
        rq_seq: body[1] >> 2,
        cmd: body[2],
        completion: body[3],
        data: body[4..].to_vec(),
    })
}

/// The RMCP+ Open Session Request.
pub fn encode_open_session(
    tag: u8,
    privilege: u8,
    console_sid: u32,
    suite: CipherSuite,
) -> Vec<u8> {
    let mut out = vec![tag, privilege & 0x0F, 0, 0];
    out.extend_from_slice(&console_sid.to_le_bytes());
    for (kind, alg) in [
        (0u8, suite.auth_algorithm()),
        (1, suite.integrity_algorithm()),
        (2, suite.confidentiality_algorithm()),
    ] {
        out.extend_from_slice(&[kind, 0, 0, 8, alg, 0, 0, 0]);
    }
    out
}

/// The RMCP+ Open Session Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    /// The message tag echoed back.
    pub tag: u8,
    /// RMCP+ status code (0 = success).
    pub status: u8,
    /// Our session ID echoed back.
    pub console_sid: u32,
    /// The BMC's session ID (only with status 0).
    pub bmc_sid: u32,
}

impl OpenSessionResponse {
    /// Decode the payload.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "Open Session Response");
        let tag = r.u8()?;
        let status = r.u8()?;
        if status != 0 {
            return Ok(OpenSessionResponse {
                tag,
                status,
                console_sid: 0,
                bmc_sid: 0,
            });
        }
        let _privilege = r.u8()?;
        r.u8()?;
        let console_sid = r.u32()?;
        let bmc_sid = r.u32()?;
        Ok(OpenSessionResponse {
            tag,
            status,
            console_sid,
            bmc_sid,
        })
    }
}

/// RAKP message 1.
pub fn encode_rakp1(
    tag: u8,
    bmc_sid: u32,
    console_random: &[u8; 16],
    role: u8,
    user: &[u8],
) -> Vec<u8> {
    let user = &user[..user.len().min(16)];
    let mut out = vec![tag, 0, 0, 0];
    out.extend_from_slice(&bmc_sid.to_le_bytes());
    out.extend_from_slice(console_random);
    out.extend_from_slice(&[role, 0, 0, user.len() as u8]);
    out.extend_from_slice(user);
    out
}

/// RAKP message 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    /// The message tag.
    pub tag: u8,
    /// RMCP+ status code (0 = success).
    pub status: u8,
    /// Our session ID.
    pub console_sid: u32,
    /// The BMC's random number.
    pub bmc_random: [u8; 16],
    /// The BMC's GUID.
    pub bmc_guid: [u8; 16],
    /// The key exchange authentication code.
    pub auth_code: Vec<u8>,
}

impl Rakp2 {
    /// Decode the payload.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "RAKP message 2");
        let tag = r.u8()?;
        let status = r.u8()?;
        if status != 0 {
            return Ok(Rakp2 {
                tag,
                status,
                console_sid: 0,
                bmc_random: [0; 16],
                bmc_guid: [0; 16],
                auth_code: Vec::new(),
            });
        }
        r.take(2)?;
        Ok(Rakp2 {
            tag,
            status,
            console_sid: r.u32()?,
            bmc_random: r.array()?,
            bmc_guid: r.array()?,
            auth_code: r.rest().to_vec(),
        })
    }
}

/// RAKP message 3.
pub fn encode_rakp3(tag: u8, status: u8, bmc_sid: u32, auth_code: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, status, 0, 0];
    out.extend_from_slice(&bmc_sid.to_le_bytes());
    out.extend_from_slice(auth_code);
    out
}

/// RAKP message 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    /// The message tag.
    pub tag: u8,
    /// RMCP+ status code (0 = success).
    pub status: u8,
    /// Our session ID.
    pub console_sid: u32,
    /// The integrity check value.
    pub icv: Vec<u8>,
}

impl Rakp4 {
    /// Decode the payload.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "RAKP message 4");
        let tag = r.u8()?;
        let status = r.u8()?;
        if status != 0 {
            return Ok(Rakp4 {
                tag,
                status,
                console_sid: 0,
                icv: Vec::new(),
            });
        }
        r.take(2)?;
        Ok(Rakp4 {
            tag,
            status,
            console_sid: r.u32()?,
            icv: r.rest().to_vec(),
        })
    }
}

/// What an RMCP+ status code means (IPMI 2.0 table 13-15).
pub fn status_text(status: u8) -> &'static str {
    match status {
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized GUID",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// SOL operation bit (console to BMC): generate a BREAK.
pub const SOL_BREAK: u8 = 0x10;
/// SOL status bit (both ways): NACK, the packet's characters were not accepted.
pub const SOL_NACK: u8 = 0x40;
/// SOL status bit (BMC to console): character transfer is unavailable.
pub const SOL_UNAVAILABLE: u8 = 0x20;
/// SOL status bit (BMC to console): the BMC is deactivating SOL.
pub const SOL_DEACTIVATING: u8 = 0x10;

/// One SOL packet (IPMI 2.0 §15.9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolPacket {
    /// Packet sequence number, 1–15; 0 for an ack-only packet.
    pub seq: u8,
    /// The sequence number acknowledged (0: none).
    pub ack_seq: u8,
    /// Characters of the acknowledged packet that were accepted.
    pub accepted: u8,
    /// Operation (to the BMC) or status (from the BMC) bits.
    pub status: u8,
    /// Character data.
    pub data: Vec<u8>,
}

impl SolPacket {
    /// Encode the packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![
            self.seq & 0x0F,
            self.ack_seq & 0x0F,
            self.accepted,
            self.status,
        ];
        out.extend_from_slice(&self.data);
        out
    }

    /// Decode a SOL payload.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "SOL packet");
        Ok(SolPacket {
            seq: r.u8()? & 0x0F,
            ack_seq: r.u8()? & 0x0F,
            accepted: r.u8()?,
            status: r.u8()?,
            data: r.rest().to_vec(),
        })
    }
}

/// The window of inbound session sequence numbers an established RMCP+ session accepts (IPMI 2.0
/// §6.12.13: a sliding window of 32 around the highest number received). A packet is accepted
/// once: when its number is not zero (reserved), at most [`SeqWindow::AHEAD`] past the highest
/// number accepted so far, or at most [`SeqWindow::BEHIND`] before it and not yet seen.
/// Replayed, duplicated and out-of-window packets are refused. Numbers wrap around at 2^32.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqWindow {
    /// The highest number accepted; `None` before the first packet.
    highest: Option<u32>,
    /// Bit `i` set: `highest - i` was accepted (bit 0 is `highest` itself).
    seen: u32,
}

impl SeqWindow {
    /// How far past the highest number a packet may be.
    pub const AHEAD: u32 = 16;
    /// How far before the highest number a late packet may be.
    pub const BEHIND: u32 = 15;

    /// A window that has seen nothing: the first non-zero number is accepted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest number accepted so far.
    pub fn highest(&self) -> Option<u32> {
        self.highest
    }

    /// Whether to accept a packet numbered `seq`; if so, it is remembered.
    pub fn accept(&mut self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.seen = 1;
            return true;
        };
        let ahead = seq.wrapping_sub(highest);
        if (1..=Self::AHEAD).contains(&ahead) {
            self.seen = self.seen.checked_shl(ahead).unwrap_or(0) | 1;
            self.highest = Some(seq);
            return true;
        }
        let behind = highest.wrapping_sub(seq);
        if behind <= Self::BEHIND {
            let bit = 1u32 << behind;
            if self.seen & bit != 0 {
                return false;
            }
            self.seen |= bit;
            return true;
        }
        false
    }
}

/// The SOL sequence number after `seq` (1..=15, skipping 0).
pub fn next_sol_seq(seq: u8) -> u8 {
    if seq >= 15 { 1 } else { seq + 1 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
#[path = "rmcp_tests.rs"]
mod tests;
