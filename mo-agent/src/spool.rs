//! A port's spool: every record the port printed, with the agent's sequence number and arrival
//! time, kept until the daemon acknowledges it.
//!
//! The spool is bounded (`--spool-mib`): when a new record would exceed the bound, the oldest
//! records go first, and what went is counted (records and bytes) and reported to the daemon
//! once the link is up. Sequence numbers start at 1 per agent start; the agent's random epoch
//! tells the daemon when they start over.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// One spooled record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's sequence number.
    pub seq: u64,
    /// When its bytes arrived (ns since the Unix epoch).
    pub time_ns: i64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    records: VecDeque<Record>,
    bytes: usize,
    next_seq: u64,
    dropped_records: u64,
    dropped_bytes: u64,
    unreported_records: u64,
    unreported_bytes: u64,
}

/// A bounded spool of records.
#[derive(Debug)]
pub struct Spool {
    limit: usize,
    inner: Mutex<Inner>,
    /// Woken when a record is added.
    pub added: Notify,
}

/// What a spool holds and has lost, for status lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records held.
    pub records: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Records dropped since the start.
    pub dropped_records: u64,
    /// Bytes dropped since the start.
    pub dropped_bytes: u64,
}

impl Spool {
    /// An empty spool holding at most `limit` bytes of records.
    pub fn new(limit: usize) -> Self {
        Spool {
            limit: limit.max(1),
            inner: Mutex::new(Inner {
                next_seq: 1,
                ..Inner::default()
            }),
            added: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add `bytes` that arrived at `time_ns`; returns the record's sequence number.
    pub fn push(&self, bytes: &[u8], time_ns: i64) -> u64 {
        let seq = {
            let mut s = self.lock();
            let seq = s.next_seq;
            s.next_seq += 1;
            s.bytes += bytes.len();
            s.records.push_back(Record {
                seq,
                time_ns,
                bytes: bytes.to_vec(),
            });
            while s.bytes > self.limit && s.records.len() > 1 {
                let Some(old) = s.records.pop_front() else {
                    break;
                };
                s.bytes -= old.bytes.len();
                s.dropped_records += 1;
                s.dropped_bytes += old.bytes.len() as u64;
                s.unreported_records += 1;
                s.unreported_bytes += old.bytes.len() as u64;
            }
            seq
        };
        self.added.notify_waiters();
        seq
    }

    /// The oldest sequence number held (the next one to come if the spool is empty).
    pub fn first_seq(&self) -> u64 {
        let s = self.lock();
        s.records.front().map_or(s.next_seq, |r| r.seq)
    }

    /// Up to `max_bytes` (at least one record) of records from sequence number `from` on.
    pub fn records_from(&self, from: u64, max_bytes: usize) -> Vec<Record> {
        let s = self.lock();
        let first = s.records.front().map_or(s.next_seq, |r| r.seq);
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut size = 0;
        for r in s.records.iter().skip(skip) {
            if !out.is_empty() && size + r.bytes.len() > max_bytes {
                break;
            }
            size += r.bytes.len();
            out.push(r.clone());
        }
        out
    }

    /// The daemon has stored everything up to `seq`: forget it.
    pub fn ack(&self, seq: u64) {
        let mut s = self.lock();
        while s.records.front().is_some_and(|r| r.seq <= seq) {
            if let Some(r) = s.records.pop_front() {
                s.bytes -= r.bytes.len();
            }
        }
    }

    /// Drops not yet reported to the daemon (records, bytes), and mark them reported.
    pub fn take_unreported(&self) -> Option<(u64, u64)> {
        let mut s = self.lock();
        if s.unreported_records == 0 {
            return None;
        }
        let out = (s.unreported_records, s.unreported_bytes);
        s.unreported_records = 0;
        s.unreported_bytes = 0;
        Some(out)
    }

    /// What the spool holds and has lost.
    pub fn stats(&self) -> SpoolStats {
        let s = self.lock();
        SpoolStats {
            records: s.records.len(),
            bytes: s.bytes,
            dropped_records: s.dropped_records,
            dropped_bytes: s.dropped_bytes,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_acks_and_drops_oldest_counted() {
        let spool = Spool::new(10);
        assert_eq!(spool.first_seq(), 1);
        assert_eq!(spool.push(b"abcd", 1), 1);
        assert_eq!(spool.push(b"efgh", 2), 2);
        assert_eq!(spool.take_unreported(), None);
        assert_eq!(spool.push(b"ijkl", 3), 3); // 12 bytes > 10: record 1 goes
        assert_eq!(spool.first_seq(), 2);
        assert_eq!(spool.take_unreported(), Some((1, 4)));
        assert_eq!(spool.take_unreported(), None);
        let got = spool.records_from(1, 100);
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(got[1].time_ns, 3);
        assert_eq!(spool.records_from(3, 100).len(), 1);
        assert_eq!(spool.records_from(2, 1).len(), 1, "at least one record");
        assert!(spool.records_from(4, 100).is_empty());
        spool.ack(2);
        assert_eq!(spool.first_seq(), 3);
        spool.ack(3);
        assert_eq!(spool.first_seq(), 4);
        assert_eq!(
            spool.stats(),
            SpoolStats {
                records: 0,
                bytes: 0,
                dropped_records: 1,
                dropped_bytes: 4
            }
        );
        // A record larger than the bound is kept alone rather than lost at once.
        spool.push(&[0; 50], 4);
        assert_eq!(spool.stats().records, 1);
    }
}
