//! The records of `mo-agent`'s on-disk spool (docs/agent.md, "Store and forward"): sans-I/O,
//! so that the agent's reader of segment files it finds on start is fuzzed
//! (`fuzz/fuzz_targets/agent_spool.rs`).
//!
//! ```text
//! record = length:u32 LE  seq:u64 LE  time_ns:i64 LE  crc32(seq, time_ns, bytes):u32 LE  bytes
//! ```
//!
//! ```
//! use mo_drivers::agent::spool_record::{encode, parse_segment, HEADER};
//!
//! let mut seg = encode(7, 1_700_000_000_000_000_000, b"login: ");
//! seg.extend(encode(8, 1_700_000_000_000_000_001, b"root\r\n"));
//! seg.extend_from_slice(&encode(9, 0, b"torn")[..10]);
//! let (records, valid) = parse_segment(&seg, Some(6));
//! assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [7, 8]);
//! assert_eq!(records[1].offset as usize, 2 * HEADER + 7);
//! assert_eq!(valid, seg.len() - 10);
//! ```

/// Bytes of a record's header on disk.
pub const HEADER: usize = 24;

/// The largest record payload read back (a port read is at most 16 KiB).
pub const MAX_RECORD: usize = 1024 * 1024;

/// A valid record found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAt {
    /// Its sequence number.
    pub seq: u64,
    /// When its bytes were read from the port (ns since the Unix epoch).
    pub time_ns: i64,
    /// Where its payload starts in the segment.
    pub offset: u64,
    /// The payload's length.
    pub len: u32,
}

/// The checksum of a record: CRC-32 of its sequence number, time and bytes.
pub fn checksum(seq: u64, time_ns: i64, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&time_ns.to_le_bytes());
    h.update(bytes);
    h.finalize()
}

/// A record as stored.
pub fn encode(seq: u64, time_ns: i64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + bytes.len());
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time_ns.to_le_bytes());
    out.extend_from_slice(&checksum(seq, time_ns, bytes).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

fn le_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

/// The valid records of a segment's contents, following `prev` (the sequence number before the
/// segment's first); parsing stops at the first record that is torn, corrupt, too long or out of
/// sequence. Returns them and the length of the valid part.
pub fn parse_segment(data: &[u8], mut prev: Option<u64>) -> (Vec<RecordAt>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = data.get(at..at + HEADER) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let (Some(seq), Some(time)) = (le_u64(&head[4..]), le_u64(&head[12..])) else {
            break;
        };
        let time_ns = time as i64;
        let crc = u32::from_le_bytes([head[20], head[21], head[22], head[23]]);
        let start = at + HEADER;
        if len as usize > MAX_RECORD {
            break;
        }
        let Some(bytes) = data.get(start..start + len as usize) else {
            break;
        };
        if checksum(seq, time_ns, bytes) != crc
            || prev.is_some_and(|p| p.checked_add(1) != Some(seq))
        {
            break;
        }
        out.push(RecordAt {
            seq,
            time_ns,
            offset: start as u64,
            len,
        });
        prev = Some(seq);
        at = start + len as usize;
    }
    (out, at)
}
