//! The byte formats of remote attach ([`super::remote`]): a console's timeline on its NATS
//! subject, a viewer's commands and the owner's answers. Binary, so that a keystroke or an
//! output chunk costs a few bytes of framing and no JSON.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mo_core::record::{Chunk, RecordKind};

/// A timeline message carrying one chunk.
const TL_CHUNK: u8 = 1;
/// A timeline message saying the console stopped.
const TL_CLOSED: u8 = 2;
/// A timeline message saying the owner's publisher fell behind and skipped chunks.
const TL_MISSED: u8 = 3;

/// One message of a console's timeline subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timeline {
    /// The next chunk.
    Chunk(Arc<Chunk>),
    /// The owner's publisher missed this many output bytes (its reader fell behind).
    Missed(u64),
    /// The console stopped on its owner.
    Closed,
}

impl Timeline {
    /// The message's bytes.
    pub fn encode(&self) -> Bytes {
        match self {
            Timeline::Chunk(c) => {
                let user = c.user.as_bytes();
                let user = &user[..user.len().min(u16::MAX as usize)];
                let mut b = BytesMut::with_capacity(28 + user.len() + c.bytes.len());
                b.put_u8(TL_CHUNK);
                b.put_u64(c.seq);
                b.put_u64(c.time_ns);
                b.put_u64(c.offset);
                b.put_u8(c.kind as u8);
                b.put_u16(user.len() as u16);
                b.put_slice(user);
                b.put_slice(&c.bytes);
                b.freeze()
            }
            Timeline::Missed(bytes) => {
                let mut b = BytesMut::with_capacity(9);
                b.put_u8(TL_MISSED);
                b.put_u64(*bytes);
                b.freeze()
            }
            Timeline::Closed => Bytes::from_static(&[TL_CLOSED]),
        }
    }

    /// Read a message; `None` for one this version does not know.
    pub fn decode(mut b: Bytes) -> Option<Timeline> {
        if b.is_empty() {
            return None;
        }
        match b.get_u8() {
            TL_CHUNK if b.len() >= 27 => {
                let seq = b.get_u64();
                let time_ns = b.get_u64();
                let offset = b.get_u64();
                let kind = RecordKind::from_code(b.get_u8())?;
                let n = b.get_u16() as usize;
                if b.len() < n {
                    return None;
                }
                let user = b.split_to(n);
                let user: Arc<str> = Arc::from(String::from_utf8_lossy(&user).as_ref());
                Some(Timeline::Chunk(Arc::new(Chunk {
                    seq,
                    time_ns,
                    kind,
                    user,
                    offset,
                    bytes: b,
                })))
            }
            TL_MISSED if b.len() >= 8 => Some(Timeline::Missed(b.get_u64())),
            TL_CLOSED => Some(Timeline::Closed),
            _ => None,
        }
    }
}

/// An answer: `Ok(body)` or the error text to show the viewer.
pub fn answer(result: Result<Bytes, String>) -> Bytes {
    let mut b = BytesMut::new();
    match result {
        Ok(body) => {
            b.put_u8(0);
            b.put_slice(&body);
        }
        Err(why) => {
            b.put_u8(1);
            b.put_slice(why.as_bytes());
        }
    }
    b.freeze()
}

/// Read an answer made by [`answer`].
pub fn read_answer(mut b: Bytes) -> Result<Bytes, String> {
    if b.is_empty() {
        return Err("empty answer from the console's owner".into());
    }
    match b.get_u8() {
        0 => Ok(b),
        _ => Err(String::from_utf8_lossy(&b).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_survives_the_trip() {
        let chunk = Arc::new(Chunk {
            seq: 7,
            time_ns: 123_456,
            kind: RecordKind::Input,
            user: Arc::from("alice"),
            offset: 99,
            bytes: Bytes::from_static(b"ls -l\r"),
        });
        let back = Timeline::decode(Timeline::Chunk(chunk.clone()).encode());
        assert_eq!(back, Some(Timeline::Chunk(chunk)));
        assert_eq!(
            Timeline::decode(Timeline::Missed(42).encode()),
            Some(Timeline::Missed(42))
        );
        assert_eq!(
            Timeline::decode(Timeline::Closed.encode()),
            Some(Timeline::Closed)
        );
        assert_eq!(Timeline::decode(Bytes::from_static(&[1, 2, 3])), None);
    }

    /// Timeline messages come from other nodes: every cut of a valid message and every byte
    /// changed in it decodes to a value or `None`, never a panic.
    #[test]
    fn truncated_or_changed_messages_never_panic() {
        let chunk = Timeline::Chunk(Arc::new(Chunk {
            seq: 1,
            time_ns: 2,
            kind: RecordKind::Output,
            user: Arc::from("bob"),
            offset: 3,
            bytes: Bytes::from_static(b"hello"),
        }))
        .encode();
        for cut in 0..=chunk.len() {
            let _ = Timeline::decode(chunk.slice(..cut));
            let _ = read_answer(chunk.slice(..cut));
        }
        for at in 0..chunk.len() {
            for value in [0u8, 1, 2, 3, 0x7f, 0xff] {
                let mut changed = chunk.to_vec();
                changed[at] = value;
                let _ = Timeline::decode(Bytes::from(changed.clone()));
                let _ = read_answer(Bytes::from(changed));
            }
        }
    }

    #[test]
    fn answers_carry_ok_or_the_error() {
        assert_eq!(
            read_answer(answer(Ok(Bytes::from_static(b"x")))),
            Ok(Bytes::from_static(b"x"))
        );
        assert_eq!(
            read_answer(answer(Err("you are spying".into()))),
            Err("you are spying".into())
        );
    }
}
