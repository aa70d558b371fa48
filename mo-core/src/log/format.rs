//! The byte format of the record log, without any I/O (docs/log-format.md, format version 2;
//! version 1 segments, which cannot hold `gap` records, are read too).
//!
//! A segment file is a [`SegmentHeader`] of [`HEADER_LEN`] bytes followed by records. A record is
//! framed by its length at both ends, protected by a CRC-32 and linked to the record before it by a
//! BLAKE3 hash chain:
//!
//! ```text
//! 0        u32  len       total record length, this field and the trailer included
//! 4        u64  seq
//! 12       u64  time_ns
//! 20       u8   kind      RecordKind code
//! 21       u8   flags     0
//! 22       u16  user_len
//! 24       user           user_len bytes of UTF-8
//! 24+u     payload
//! len-40   [32] chain     BLAKE3 keyed hash, key = previous chain value, over the payload
//!                         followed by bytes [0, 24+u) (payload first: it hashes faster aligned)
//! len-8    u32  len       the same length again (lets readers walk backwards)
//! len-4    u32  crc32     CRC-32 (IEEE) over bytes [0, len-4)
//! ```
//! All integers are little-endian.

use std::fmt;

use crate::error::{Error, Result};
use crate::record::{Chunk, RecordKind};

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"\x89MOLOG\r\n";
/// The format version this code writes (2: version 1 plus the `gap` record kind).
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this code reads.
pub const MIN_FORMAT_VERSION: u16 = 1;
/// Length of a segment header in bytes.
pub const HEADER_LEN: usize = 80;
/// Bytes of a record before the user name.
pub const RECORD_HEAD_LEN: usize = 24;
/// Bytes of a record after the payload (chain value, length, checksum).
pub const RECORD_TRAILER_LEN: usize = 40;
/// Framing bytes every record costs besides its user name and payload.
pub const RECORD_OVERHEAD: usize = RECORD_HEAD_LEN + RECORD_TRAILER_LEN;
/// Longest user name a record can carry.
pub const MAX_USER_LEN: usize = u16::MAX as usize;
/// Longest payload a record can carry (16 MiB).
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;
/// Longest record the format allows.
pub const MAX_RECORD_LEN: usize = RECORD_OVERHEAD + MAX_USER_LEN + MAX_PAYLOAD_LEN;

/// A hash-chain value: BLAKE3 output linking a record to everything before it.
pub type Chain = [u8; 32];
/// The chain value before the first record of a device (seq 1).
pub const GENESIS_CHAIN: Chain = [0; 32];

/// What is wrong with bytes that should be a segment header or a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The segment does not start with [`SEGMENT_MAGIC`].
    BadMagic,
    /// The segment was written by an unknown format version.
    UnsupportedVersion(u16),
    /// The header length field is not [`HEADER_LEN`].
    BadHeaderLength(u16),
    /// The header checksum does not match.
    HeaderChecksum,
    /// Reserved header or record bits are set.
    ReservedBits,
    /// A record length outside [`RECORD_OVERHEAD`]..=[`MAX_RECORD_LEN`].
    BadLength(u64),
    /// The record's checksum does not match its bytes.
    Checksum,
    /// The length at the end of the record differs from the one at its start.
    LengthMismatch {
        /// Length at the start.
        head: u32,
        /// Length at the end.
        trailer: u32,
    },
    /// An unknown record kind code.
    UnknownKind(u8),
    /// The user name does not fit in the record.
    BadUserLength(u16),
    /// The user name is not UTF-8.
    UserNotUtf8,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Truncated { have, need } => write!(f, "cut short: {have} of {need} bytes"),
            Damage::BadMagic => f.write_str("not a mo log segment (bad magic)"),
            Damage::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Damage::BadHeaderLength(n) => write!(f, "bad header length {n}"),
            Damage::HeaderChecksum => f.write_str("segment header checksum mismatch"),
            Damage::ReservedBits => f.write_str("reserved bits are set"),
            Damage::BadLength(n) => write!(f, "impossible record length {n}"),
            Damage::Checksum => f.write_str("record checksum mismatch"),
            Damage::LengthMismatch { head, trailer } => {
                write!(f, "record length {head} at start but {trailer} at end")
            }
            Damage::UnknownKind(k) => write!(f, "unknown record kind {k}"),
            Damage::BadUserLength(n) => write!(f, "user name length {n} does not fit the record"),
            Damage::UserNotUtf8 => f.write_str("user name is not UTF-8"),
        }
    }
}

/// The header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the first record in the segment.
    pub first_seq: u64,
    /// Time of the first record in the segment (ns since the Unix epoch).
    pub created_ns: u64,
    /// Chain value of the record before `first_seq` ([`GENESIS_CHAIN`] for seq 1).
    pub prev_chain: Chain,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        put(&mut b, 0, &SEGMENT_MAGIC);
        put(&mut b, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut b, 10, &(HEADER_LEN as u16).to_le_bytes());
        put(&mut b, 16, &self.first_seq.to_le_bytes());
        put(&mut b, 24, &self.created_ns.to_le_bytes());
        put(&mut b, 32, &self.prev_chain);
        let crc = crc32fast::hash(&b[..HEADER_LEN - 4]);
        put(&mut b, HEADER_LEN - 4, &crc.to_le_bytes());
        b
    }

    /// Parse a header from the first bytes of a segment file.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, Damage> {
        let Some(b) = buf.get(..HEADER_LEN) else {
            return Err(Damage::Truncated {
                have: buf.len(),
                need: HEADER_LEN,
            });
        };
        if b.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err(Damage::BadMagic);
        }
        let version = read_u16(b, 8);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Damage::UnsupportedVersion(version));
        }
        let header_len = read_u16(b, 10);
        if usize::from(header_len) != HEADER_LEN {
            return Err(Damage::BadHeaderLength(header_len));
        }
        if read_u32(b, HEADER_LEN - 4) != crc32fast::hash(b.get(..HEADER_LEN - 4).unwrap_or(&[])) {
            return Err(Damage::HeaderChecksum);
        }
        if read_u32(b, 12) != 0 || b.get(64..76).is_none_or(|r| r.iter().any(|&x| x != 0)) {
            return Err(Damage::ReservedBits);
        }
        Ok(SegmentHeader {
            first_seq: read_u64(b, 16),
            created_ns: read_u64(b, 24),
            prev_chain: read_chain(b, 32),
        })
    }
}

/// The fields of a record to encode.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Time in ns since the Unix epoch.
    pub time_ns: u64,
    /// What the payload is.
    pub kind: RecordKind,
    /// Who caused it (empty for the device).
    pub user: &'a str,
    /// The payload.
    pub bytes: &'a [u8],
}

impl<'a> RecordFields<'a> {
    /// The fields of a chunk.
    pub fn of_chunk(chunk: &'a Chunk) -> Self {
        RecordFields {
            seq: chunk.seq,
            time_ns: chunk.time_ns,
            kind: chunk.kind,
            user: &chunk.user,
            bytes: &chunk.bytes,
        }
    }

    /// Total encoded length of the record, or an error if a field is too long for the format.
    pub fn encoded_len(&self) -> Result<usize> {
        if self.user.len() > MAX_USER_LEN {
            return Err(too_long("user name", self.user.len(), MAX_USER_LEN));
        }
        if self.bytes.len() > MAX_PAYLOAD_LEN {
            return Err(too_long("payload", self.bytes.len(), MAX_PAYLOAD_LEN));
        }
        Ok(RECORD_OVERHEAD + self.user.len() + self.bytes.len())
    }
}

fn too_long(what: &str, len: usize, max: usize) -> Error {
    Error::BadSpec {
        what: "log record",
        input: format!("{what} of {len} bytes"),
        reason: format!("longer than the {max} bytes the log format allows"),
    }
}

/// Frame a record for a vectored write: on return `scratch` holds the record's head (everything
/// before the payload) followed by its trailer. Returns the head's length and the record's chain
/// value. The record on disk is `scratch[..head] ++ fields.bytes ++ scratch[head..]`.
pub fn frame_record(
    scratch: &mut Vec<u8>,
    prev: &Chain,
    fields: &RecordFields<'_>,
) -> Result<(usize, Chain)> {
    let len = fields.encoded_len()?;
    // encoded_len bounds len to MAX_RECORD_LEN, far below u32::MAX, and the user to u16::MAX.
    let len32 = len as u32;
    scratch.clear();
    scratch.reserve(RECORD_OVERHEAD + fields.user.len());
    scratch.extend_from_slice(&len32.to_le_bytes());
    scratch.extend_from_slice(&fields.seq.to_le_bytes());
    scratch.extend_from_slice(&fields.time_ns.to_le_bytes());
    scratch.push(fields.kind.code());
    scratch.push(0);
    scratch.extend_from_slice(&(fields.user.len() as u16).to_le_bytes());
    scratch.extend_from_slice(fields.user.as_bytes());
    let head = scratch.len();

    let chain = chain_link(prev, scratch, fields.bytes);

    let mut crc = crc32fast::Hasher::new();
    crc.update(scratch);
    crc.update(fields.bytes);
    scratch.extend_from_slice(&chain);
    scratch.extend_from_slice(&len32.to_le_bytes());
    crc.update(scratch.get(head..).unwrap_or(&[]));
    scratch.extend_from_slice(&crc.finalize().to_le_bytes());
    Ok((head, chain))
}

/// Append one encoded record to `out`; returns its chain value.
pub fn encode_record(out: &mut Vec<u8>, prev: &Chain, fields: &RecordFields<'_>) -> Result<Chain> {
    let mut scratch = Vec::new();
    let (head, chain) = frame_record(&mut scratch, prev, fields)?;
    let (h, t) = scratch.split_at(head);
    out.extend_from_slice(h);
    out.extend_from_slice(fields.bytes);
    out.extend_from_slice(t);
    Ok(chain)
}

/// The chain value that follows `prev` for a record whose bytes before the payload are `head`
/// (length through user name): BLAKE3 keyed with `prev` over `payload` then `head`.
pub fn chain_link(prev: &Chain, head: &[u8], payload: &[u8]) -> Chain {
    let mut hasher = blake3::Hasher::new_keyed(prev);
    hasher.update(payload);
    hasher.update(head);
    hasher.finalize().into()
}

/// A record decoded in place from a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Time in ns since the Unix epoch.
    pub time_ns: u64,
    /// What the payload is.
    pub kind: RecordKind,
    /// Who caused it (empty for the device).
    pub user: &'a str,
    /// The payload.
    pub bytes: &'a [u8],
    /// The chain value stored in the record.
    pub chain: Chain,
    /// The record's whole encoding.
    pub raw: &'a [u8],
}

impl RecordRef<'_> {
    /// Total encoded length.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Always false: a record has at least [`RECORD_OVERHEAD`] bytes.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether the stored chain value is the link that follows `prev`.
    pub fn follows(&self, prev: &Chain) -> bool {
        let head = self.raw.get(..RECORD_HEAD_LEN + self.user.len());
        head.is_some_and(|h| chain_link(prev, h, self.bytes) == self.chain)
    }

    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            time_ns: self.time_ns,
            kind: self.kind,
            user: self.user.to_owned(),
            bytes: self.bytes.to_vec(),
        }
    }
}

/// An owned record, as readers return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number (gap-free per device, from 1).
    pub seq: u64,
    /// Time in ns since the Unix epoch.
    pub time_ns: u64,
    /// What the payload is.
    pub kind: RecordKind,
    /// Who caused it (empty for the device).
    pub user: String,
    /// The payload.
    pub bytes: Vec<u8>,
}

impl Record {
    /// A [`Chunk`] with these contents; `offset` is the output offset the caller keeps.
    pub fn into_chunk(self, offset: u64) -> Chunk {
        Chunk {
            seq: self.seq,
            time_ns: self.time_ns,
            kind: self.kind,
            user: self.user.into(),
            offset,
            bytes: self.bytes.into(),
        }
    }
}

/// The outcome of decoding a record at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record (its length is `record.len()`).
    Record(RecordRef<'a>),
    /// The buffer holds only the first part of a record of at least `needed` bytes.
    Incomplete {
        /// Bytes the record needs in total (4 while the length is not known yet).
        needed: usize,
    },
    /// The bytes are not a valid record.
    Damaged(Damage),
}

/// Decode the record at the start of `buf`, checking its checksum and framing (not its chain link;
/// see [`RecordRef::follows`]).
pub fn decode_record(buf: &[u8]) -> Decoded<'_> {
    match check_record(buf) {
        Ok(len) => match buf.get(..len).and_then(view_record) {
            Some(r) => Decoded::Record(r),
            None => Decoded::Damaged(Damage::Truncated {
                have: buf.len(),
                need: len,
            }),
        },
        Err(Damage::Truncated { need, .. }) => Decoded::Incomplete { needed: need },
        Err(d) => Decoded::Damaged(d),
    }
}

/// The length field at the start of `buf`, if four bytes are there.
pub fn peek_record_len(buf: &[u8]) -> Option<u32> {
    buf.get(..4).map(|_| read_u32(buf, 0))
}

/// Check the record at the start of `buf` (length, checksum, trailer, kind, user) and return its
/// length. [`Damage::Truncated`] means the buffer ends inside the record.
pub fn check_record(buf: &[u8]) -> Result<usize, Damage> {
    let Some(len32) = peek_record_len(buf) else {
        return Err(Damage::Truncated {
            have: buf.len(),
            need: 4,
        });
    };
    let len = len32 as usize;
    if !(RECORD_OVERHEAD..=MAX_RECORD_LEN).contains(&len) {
        return Err(Damage::BadLength(u64::from(len32)));
    }
    let Some(raw) = buf.get(..len) else {
        return Err(Damage::Truncated {
            have: buf.len(),
            need: len,
        });
    };
    let crc = crc32fast::hash(raw.get(..len - 4).unwrap_or(&[]));
    if crc != read_u32(raw, len - 4) {
        return Err(Damage::Checksum);
    }
    let trailer = read_u32(raw, len - 8);
    if trailer != len32 {
        return Err(Damage::LengthMismatch {
            head: len32,
            trailer,
        });
    }
    let code = raw.get(20).copied().unwrap_or(0);
    if RecordKind::from_code(code).is_none() {
        return Err(Damage::UnknownKind(code));
    }
    if raw.get(21) != Some(&0) {
        return Err(Damage::ReservedBits);
    }
    let user_len = read_u16(raw, 22);
    let user_end = RECORD_HEAD_LEN + usize::from(user_len);
    if user_end > len - RECORD_TRAILER_LEN {
        return Err(Damage::BadUserLength(user_len));
    }
    let user = raw.get(RECORD_HEAD_LEN..user_end).unwrap_or(&[]);
    if std::str::from_utf8(user).is_err() {
        return Err(Damage::UserNotUtf8);
    }
    Ok(len)
}

/// Build a [`RecordRef`] over exactly one record that [`check_record`] accepted.
fn view_record(raw: &[u8]) -> Option<RecordRef<'_>> {
    let len = raw.len();
    let user_end = RECORD_HEAD_LEN + usize::from(read_u16(raw, 22));
    let user = std::str::from_utf8(raw.get(RECORD_HEAD_LEN..user_end)?).ok()?;
    Some(RecordRef {
        seq: read_u64(raw, 4),
        time_ns: read_u64(raw, 12),
        kind: RecordKind::from_code(*raw.get(20)?)?,
        user,
        bytes: raw.get(user_end..len.checked_sub(RECORD_TRAILER_LEN)?)?,
        chain: read_chain(raw, len.checked_sub(RECORD_TRAILER_LEN)?),
        raw,
    })
}

/// Decode the record that ends exactly at the end of `buf` (walking backwards via the trailing
/// length), returning its start offset within `buf`.
pub fn decode_record_ending_at(buf: &[u8]) -> Option<(usize, RecordRef<'_>)> {
    let end = buf.len();
    let len = read_u32(buf, end.checked_sub(8)?) as usize;
    let start = end.checked_sub(len)?;
    match decode_record(buf.get(start..)?) {
        Decoded::Record(r) if r.len() == len => Some((start, r)),
        _ => None,
    }
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + v.len()) {
        dst.copy_from_slice(v);
    }
}

fn read_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(read_array(b, at))
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(read_array(b, at))
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(read_array(b, at))
}

fn read_chain(b: &[u8], at: usize) -> Chain {
    read_array(b, at)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn fields<'a>(seq: u64, user: &'a str, bytes: &'a [u8]) -> RecordFields<'a> {
        RecordFields {
            seq,
            time_ns: 1_700_000_000_000_000_000 + seq,
            kind: RecordKind::Input,
            user,
            bytes,
        }
    }

    #[test]
    fn header_round_trip_and_damage() {
        let h = SegmentHeader {
            first_seq: 42,
            created_ns: 7,
            prev_chain: [9; 32],
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(
            SegmentHeader::decode(&b[..10]),
            Err(Damage::Truncated { have: 10, need: 80 })
        );
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(SegmentHeader::decode(&bad), Err(Damage::BadMagic));
        let mut bad = b;
        bad[40] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(Damage::HeaderChecksum));
        let mut bad = b;
        bad[8] = 3;
        assert_eq!(
            SegmentHeader::decode(&bad),
            Err(Damage::UnsupportedVersion(3))
        );
        let mut bad = b;
        bad[8] = 0;
        assert_eq!(
            SegmentHeader::decode(&bad),
            Err(Damage::UnsupportedVersion(0))
        );
    }

    #[test]
    fn record_round_trip_and_chain() {
        let mut buf = Vec::new();
        let c1 = encode_record(&mut buf, &GENESIS_CHAIN, &fields(1, "alice", b"ls -l\r")).unwrap();
        let first_len = buf.len();
        assert_eq!(first_len, RECORD_OVERHEAD + 5 + 6);
        let c2 = encode_record(&mut buf, &c1, &fields(2, "", b"")).unwrap();
        let Decoded::Record(r1) = decode_record(&buf) else {
            panic!("first record must decode");
        };
        assert_eq!((r1.seq, r1.user, r1.bytes), (1, "alice", &b"ls -l\r"[..]));
        assert_eq!(r1.kind, RecordKind::Input);
        assert_eq!(r1.chain, c1);
        assert!(r1.follows(&GENESIS_CHAIN));
        assert!(!r1.follows(&c2));
        let Decoded::Record(r2) = decode_record(&buf[first_len..]) else {
            panic!("second record must decode");
        };
        assert!(r2.follows(&c1));
        assert_eq!(r2.chain, c2);
        let (start, back) = decode_record_ending_at(&buf).unwrap();
        assert_eq!((start, back.seq), (first_len, 2));
        assert_eq!(
            decode_record(&buf[..10]),
            Decoded::Incomplete { needed: first_len }
        );
    }

    #[test]
    fn damage_is_detected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &GENESIS_CHAIN, &fields(1, "bob", b"hello")).unwrap();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(
                !matches!(decode_record(&bad), Decoded::Record(_)),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn too_long_fields_are_refused() {
        let user = "u".repeat(MAX_USER_LEN + 1);
        let mut out = Vec::new();
        assert!(matches!(
            encode_record(&mut out, &GENESIS_CHAIN, &fields(1, &user, b"")),
            Err(Error::BadSpec { .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_1065);
        let mut valid = Vec::new();
        let mut prev = GENESIS_CHAIN;
        for seq in 1..20 {
            prev = encode_record(&mut valid, &prev, &fields(seq, "carol", b"abc\n")).unwrap();
        }
        for _ in 0..5000 {
            let mut buf = valid.clone();
            let n: usize = rng.random_range(0..8);
            for _ in 0..n {
                let i = rng.random_range(0..buf.len());
                buf[i] = rng.random();
            }
            buf.truncate(rng.random_range(0..=buf.len()));
            let _ = decode_record(&buf);
            let _ = decode_record_ending_at(&buf);
            let _ = SegmentHeader::decode(&buf);
            let random: Vec<u8> = (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect();
            let _ = decode_record(&random);
            let _ = decode_record_ending_at(&random);
        }
    }
}
