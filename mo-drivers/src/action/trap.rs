//! The `snmp_trap` action: an SNMPv2c trap (SNMPv2-Trap-PDU), BER-encoded by hand.
//!
//! The varbinds are `sysUpTime.0` (this process's uptime in hundredths of a second),
//! `snmpTrapOID.0` = [`MO_EVENT_TRAP_OID`], then under [`MO_ENTERPRISE_OID`]`.1.1`:
//! `.1` device (OCTET STRING), `.2` severity (INTEGER: 1 info, 2 notice, 3 warning, 4 error,
//! 5 critical), `.3` message, `.4` source, `.5` event id (decimal OCTET STRING), `.6` count
//! (Counter32-saturated Gauge32). mo has no private enterprise number of its own: it uses 32473,
//! the number RFC 5612 reserves for documentation; sites can map it in their trap receiver.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mo_core::event::Event;
use mo_core::scan::Severity;
use mo_core::{Error, Result};
use tokio::net::UdpSocket;

use super::ActionOutcome;

/// mo's enterprise subtree: `1.3.6.1.4.1.32473.1` (RFC 5612 documentation number, `.1` = mo).
pub const MO_ENTERPRISE_OID: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 1];
/// The trap identifier sent in `snmpTrapOID.0`: `1.3.6.1.4.1.32473.1.0.1` (moEventTrap).
pub const MO_EVENT_TRAP_OID: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 1, 0, 1];
/// How long sending may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

const SYS_UPTIME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
const SNMP_TRAP_OID_0: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];

/// A trap receiver to send events to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapAction {
    /// `host:port` of the receiver.
    pub address: String,
    /// The SNMPv2c community.
    pub community: String,
}

/// A value in a varbind.
enum Value<'a> {
    Integer(i64),
    Octets(&'a [u8]),
    Oid(&'a [u32]),
    TimeTicks(u32),
    Gauge32(u32),
}

/// Append a BER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Append a tag-length-value.
fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// The minimal two's-complement big-endian content of a signed integer.
fn int_content(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// The minimal content of an unsigned integer (a leading zero if the top bit is set).
fn uint_content(value: u32) -> Vec<u8> {
    int_content(i64::from(value))
}

/// The content of an OBJECT IDENTIFIER (at least two arcs, the first two combined).
fn oid_content(oid: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, rest) = match oid {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        [a] => (a * 40, &[][..]),
        [] => (0, &[][..]),
    };
    for &arc in std::iter::once(&first).chain(rest) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    out
}

fn push_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Integer(v) => push_tlv(out, 0x02, &int_content(*v)),
        Value::Octets(v) => push_tlv(out, 0x04, v),
        Value::Oid(v) => push_tlv(out, 0x06, &oid_content(v)),
        Value::TimeTicks(v) => push_tlv(out, 0x43, &uint_content(*v)),
        Value::Gauge32(v) => push_tlv(out, 0x42, &uint_content(*v)),
    }
}

/// Encode an SNMPv2c trap message carrying `varbinds` (after sysUpTime.0 and snmpTrapOID.0).
fn encode_trap(
    community: &str,
    request_id: i32,
    uptime_cs: u32,
    trap_oid: &[u32],
    varbinds: &[(Vec<u32>, Value<'_>)],
) -> Vec<u8> {
    let mut list = Vec::new();
    let fixed = [
        (SYS_UPTIME_0.to_vec(), Value::TimeTicks(uptime_cs)),
        (SNMP_TRAP_OID_0.to_vec(), Value::Oid(trap_oid)),
    ];
    for (oid, value) in fixed.iter().chain(varbinds) {
        let mut bind = Vec::new();
        push_tlv(&mut bind, 0x06, &oid_content(oid));
        push_value(&mut bind, value);
        push_tlv(&mut list, 0x30, &bind);
    }
    let mut pdu = Vec::new();
    push_tlv(&mut pdu, 0x02, &int_content(i64::from(request_id)));
    push_tlv(&mut pdu, 0x02, &[0]); // error-status
    push_tlv(&mut pdu, 0x02, &[0]); // error-index
    push_tlv(&mut pdu, 0x30, &list);
    let mut message = Vec::new();
    push_tlv(&mut message, 0x02, &[1]); // version: v2c
    push_tlv(&mut message, 0x04, community.as_bytes());
    push_tlv(&mut message, 0xa7, &pdu); // [7] SNMPv2-Trap-PDU
    let mut out = Vec::new();
    push_tlv(&mut out, 0x30, &message);
    out
}

/// The trap's severity value (1 info … 5 critical).
fn severity_value(severity: Severity) -> i64 {
    match severity {
        Severity::Info => 1,
        Severity::Notice => 2,
        Severity::Warning => 3,
        Severity::Error => 4,
        Severity::Critical => 5,
    }
}

/// This process's uptime in hundredths of a second, counted from the first trap's encoding
/// (close enough to start-up for a receiver that only orders traps by it).
fn uptime_cs() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    u32::try_from(elapsed.as_millis() / 10).unwrap_or(u32::MAX)
}

impl TrapAction {
    /// The encoded trap message for an event.
    pub fn encode(&self, event: &Event) -> Vec<u8> {
        let field = |n: u32| {
            let mut oid = MO_ENTERPRISE_OID.to_vec();
            oid.extend_from_slice(&[1, 1, n]);
            oid
        };
        let id = event.id.to_string();
        let varbinds = [
            (field(1), Value::Octets(event.device.as_bytes())),
            (field(2), Value::Integer(severity_value(event.severity))),
            (field(3), Value::Octets(event.message.as_bytes())),
            (field(4), Value::Octets(event.source.as_str().as_bytes())),
            (field(5), Value::Octets(id.as_bytes())),
            (
                field(6),
                Value::Gauge32(u32::try_from(event.count).unwrap_or(u32::MAX)),
            ),
        ];
        let request_id = i32::try_from(event.id % (i32::MAX as u64)).unwrap_or(0);
        encode_trap(
            &self.community,
            request_id,
            uptime_cs(),
            MO_EVENT_TRAP_OID,
            &varbinds,
        )
    }

    /// Send the trap (one UDP datagram; traps are not acknowledged).
    pub async fn send(&self, event: &Event) -> Result<ActionOutcome> {
        let message = self.encode(event);
        let peer = format!("SNMP trap receiver {}", self.address);
        let io = |what: &str, e: std::io::Error| Error::io(format!("{peer}: {what}"), e);
        let work = async {
            let socket = UdpSocket::bind(super::syslog::local_any(&self.address))
                .await
                .map_err(|e| io("cannot open a UDP socket", e))?;
            socket
                .connect(&self.address)
                .await
                .map_err(|e| io("cannot reach the receiver", e))?;
            socket
                .send(&message)
                .await
                .map_err(|e| io("cannot send", e))?;
            Ok(ActionOutcome::Delivered { attempts: 1 })
        };
        tokio::time::timeout(SEND_TIMEOUT, work)
            .await
            .map_err(|_| Error::Timeout {
                what: peer.clone(),
                after: SEND_TIMEOUT,
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_pieces() {
        assert_eq!(int_content(0), [0]);
        assert_eq!(int_content(127), [0x7f]);
        assert_eq!(int_content(128), [0x00, 0x80]);
        assert_eq!(int_content(-1), [0xff]);
        assert_eq!(int_content(-129), [0xff, 0x7f]);
        assert_eq!(uint_content(u32::MAX), [0x00, 0xff, 0xff, 0xff, 0xff]);
        // 1.3.6.1.4.1.32473 → 2b 06 01 04 01 81 fd 59
        assert_eq!(
            oid_content(&[1, 3, 6, 1, 4, 1, 32473]),
            [0x2b, 6, 1, 4, 1, 0x81, 0xfd, 0x59]
        );
        let mut out = Vec::new();
        push_len(&mut out, 300);
        assert_eq!(out, [0x82, 0x01, 0x2c]);
    }

    #[test]
    fn a_minimal_trap_encodes_exactly() {
        let got = encode_trap("public", 1, 0, &[1, 3, 6, 1], &[]);
        let want: Vec<u8> = vec![
            0x30, 0x3a, // message
            0x02, 0x01, 0x01, // version 1 (v2c)
            0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // community
            0xa7, 0x2d, // trap PDU
            0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, // request id, status, index
            0x30, 0x22, // varbinds
            0x30, 0x0d, 0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 3, 0, 0x43, 0x01,
            0x00, // sysUpTime.0
            0x30, 0x11, 0x06, 0x0a, 0x2b, 6, 1, 6, 3, 1, 1, 4, 1, 0, 0x06, 0x03, 0x2b, 6, 1,
        ];
        assert_eq!(got, want);
    }
}
