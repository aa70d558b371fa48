//! A port's spool: every record the port printed, with the agent's sequence number and the time
//! its bytes were read, kept on disk until the daemon acknowledges it.
//!
//! Each port has a directory (`SPOOL_DIR/port-NAME`) holding its `epoch` (random, 16 hex digits)
//! and segment files `FIRST_SEQ.seg` of records:
//!
//! ```text
//! record = length:u32 LE  seq:u64 LE  time_ns:i64 LE  crc32(seq, time_ns, bytes):u32 LE  bytes
//! ```
//!
//! (read and written by the sans-I/O [`mo_drivers::agent::spool_record`], which is fuzzed).
//!
//! A record is written (one `write`) before it is offered to the daemon, so an agent that is
//! stopped or killed finds it again on start; it then continues the same epoch and sequence. A
//! torn or corrupt tail (a crash mid-write, a full disk) ends the spool there and is cut off.
//!
//! The spool is bounded (`--spool-mib`, counting records as stored, headers included): when a
//! new record would exceed the bound, the oldest records go first, and what went is counted
//! (records and bytes) and reported to the daemon once the link is up. A segment file is deleted
//! once none of its records is held; the newest segment always stays, so that the sequence goes
//! on after a restart. Sequence numbers start at 1 in a new epoch; an empty spool directory gets a
//! new epoch, which tells the daemon that they started over.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use tokio::sync::Notify;

pub use mo_drivers::agent::spool_record::HEADER;
use mo_drivers::agent::spool_record::{self, MAX_RECORD, encode};

/// One spooled record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's sequence number.
    pub seq: u64,
    /// When its bytes were read from the port (ns since the Unix epoch).
    pub time_ns: i64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Where a held record is on disk.
#[derive(Debug, Clone, Copy)]
struct Meta {
    seq: u64,
    time_ns: i64,
    /// Index of its segment: the segment's first sequence number.
    segment: u64,
    /// Offset of the payload in the segment file.
    offset: u64,
    len: u32,
}

impl Meta {
    fn stored(&self) -> usize {
        HEADER + self.len as usize
    }
}

#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    file: File,
    size: u64,
}

#[derive(Debug)]
struct Inner {
    records: VecDeque<Meta>,
    segments: VecDeque<Segment>,
    /// Stored size of the held records.
    bytes: usize,
    next_seq: u64,
    dropped_records: u64,
    dropped_bytes: u64,
    unreported_records: u64,
    unreported_bytes: u64,
}

/// A bounded on-disk spool of records.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// `DIR/lock`, locked for as long as the spool is open: one agent per spool.
    _lock: File,
    limit: usize,
    segment_limit: u64,
    epoch: u64,
    inner: Mutex<Inner>,
    /// Woken when a record is added.
    pub added: Notify,
}

/// What a spool holds and has lost, for status lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records held.
    pub records: usize,
    /// Bytes held (payload only).
    pub bytes: usize,
    /// Records dropped since the start.
    pub dropped_records: u64,
    /// Bytes dropped since the start.
    pub dropped_bytes: u64,
}

/// The valid records of a segment's contents after `prev`, and the length of the valid part
/// ([`spool_record::parse_segment`]); their segment is set by the caller.
fn parse_segment(data: &[u8], prev: Option<u64>) -> (Vec<Meta>, usize) {
    let (records, valid) = spool_record::parse_segment(data, prev);
    let metas = records
        .into_iter()
        .map(|r| Meta {
            seq: r.seq,
            time_ns: r.time_ns,
            segment: 0,
            offset: r.offset,
            len: r.len,
        })
        .collect();
    (metas, valid)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

impl Spool {
    /// Open (or create) the spool in `dir`, holding at most `limit` bytes of records: what an
    /// earlier run left there is held again, in the same epoch. Errors name the directory.
    pub fn open(dir: &Path, limit: usize) -> anyhow::Result<Spool> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if let Err(e) = lock.try_lock() {
            anyhow::bail!(
                "the spool {} is in use by another mo-agent ({e}); give each agent its own \
                 --spool-dir",
                dir.display()
            );
        }
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the spool directory {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".seg").and_then(|s| s.parse::<u64>().ok()))
            .collect();
        firsts.sort_unstable();
        let mut records = VecDeque::new();
        let mut segments = VecDeque::new();
        let mut prev: Option<u64> = None;
        let mut broken = false;
        for first in firsts {
            let path = segment_path(dir, first);
            if broken {
                // After a break in the sequence nothing later can be replayed in order.
                tracing::warn!(
                    "spool {}: dropping {} after a damaged record",
                    dir.display(),
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let mut data = Vec::new();
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open the spool segment {}", path.display()))?;
            file.read_to_end(&mut data)
                .with_context(|| format!("cannot read the spool segment {}", path.display()))?;
            let (metas, valid) = parse_segment(&data, prev);
            if valid < data.len() {
                tracing::warn!(
                    "spool segment {}: {} damaged byte(s) at offset {valid} cut off",
                    path.display(),
                    data.len() - valid
                );
                file.set_len(valid as u64)
                    .with_context(|| format!("cannot cut the spool segment {}", path.display()))?;
                broken = true;
            }
            if metas.is_empty() {
                drop(file);
                let _ = std::fs::remove_file(&path);
                continue;
            }
            prev = metas.last().map(|m| m.seq);
            let seg_first = metas.first().map_or(first, |m| m.seq);
            records.extend(metas.into_iter().map(|m| Meta {
                segment: seg_first,
                ..m
            }));
            segments.push_back(Segment {
                first: seg_first,
                path,
                file,
                size: valid as u64,
            });
        }
        let epoch_path = dir.join("epoch");
        let known = std::fs::read_to_string(&epoch_path)
            .ok()
            .and_then(|t| u64::from_str_radix(t.trim(), 16).ok());
        let epoch = match known {
            Some(e) if !records.is_empty() => e,
            _ => {
                // Nothing held: the sequence starts over, in a new epoch.
                let e = rand::random::<u64>();
                let tmp = dir.join("epoch.new");
                std::fs::write(&tmp, format!("{e:016x}\n"))
                    .and_then(|()| std::fs::rename(&tmp, &epoch_path))
                    .with_context(|| format!("cannot write {}", epoch_path.display()))?;
                e
            }
        };
        let next_seq = prev.map_or(1, |p| p.saturating_add(1));
        let bytes = records.iter().map(Meta::stored).sum();
        let limit = limit.max(HEADER + 1);
        let spool = Spool {
            dir: dir.to_owned(),
            _lock: lock,
            limit,
            segment_limit: (limit as u64 / 4).clamp(4096, 4 * 1024 * 1024),
            epoch,
            inner: Mutex::new(Inner {
                records,
                segments,
                bytes,
                next_seq,
                dropped_records: 0,
                dropped_bytes: 0,
                unreported_records: 0,
                unreported_bytes: 0,
            }),
            added: Notify::new(),
        };
        {
            let mut s = spool.lock();
            spool.trim(&mut s);
        }
        Ok(spool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spool's epoch: its sequence numbers count from 1 in it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Drop the oldest records past the bound (counted), and delete segments nothing is held in.
    fn trim(&self, s: &mut Inner) {
        while s.bytes > self.limit && s.records.len() > 1 {
            let Some(old) = s.records.pop_front() else {
                break;
            };
            s.bytes -= old.stored();
            s.dropped_records += 1;
            s.dropped_bytes += u64::from(old.len);
            s.unreported_records += 1;
            s.unreported_bytes += u64::from(old.len);
        }
        let oldest_held = s.records.front().map_or(u64::MAX, |r| r.seq);
        // Segment i holds sequence numbers below segment i + 1's first; keep the newest.
        while s.segments.len() > 1 && s.segments.get(1).is_some_and(|n| n.first <= oldest_held) {
            if let Some(seg) = s.segments.pop_front()
                && let Err(e) = std::fs::remove_file(&seg.path)
            {
                tracing::warn!(
                    "cannot delete the spool segment {}: {e}",
                    seg.path.display()
                );
            }
        }
    }

    /// Add `bytes` read at `time_ns`; returns the record's sequence number, or `None` when it
    /// could not be stored (the error is logged and the record counted as dropped).
    pub fn push(&self, bytes: &[u8], time_ns: i64) -> Option<u64> {
        let seq = {
            let mut s = self.lock();
            let seq = s.next_seq;
            match self.write(&mut s, seq, time_ns, bytes) {
                Ok(meta) => {
                    s.next_seq += 1;
                    s.bytes += meta.stored();
                    s.records.push_back(meta);
                    self.trim(&mut s);
                    Some(seq)
                }
                Err(e) => {
                    tracing::error!("spool {}: record dropped: {e:#}", self.dir.display());
                    s.dropped_records += 1;
                    s.dropped_bytes += bytes.len() as u64;
                    s.unreported_records += 1;
                    s.unreported_bytes += bytes.len() as u64;
                    None
                }
            }
        };
        self.added.notify_waiters();
        seq
    }

    /// Append one record to the newest segment (a new one when it is full or missing).
    fn write(&self, s: &mut Inner, seq: u64, time_ns: i64, bytes: &[u8]) -> anyhow::Result<Meta> {
        anyhow::ensure!(
            bytes.len() <= MAX_RECORD,
            "a record of {} bytes",
            bytes.len()
        );
        if s.segments
            .back()
            .is_none_or(|g| g.size >= self.segment_limit)
        {
            let path = segment_path(&self.dir, seq);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            file.set_len(0)
                .with_context(|| format!("cannot empty {}", path.display()))?;
            s.segments.push_back(Segment {
                first: seq,
                path,
                file,
                size: 0,
            });
        }
        let seg = s
            .segments
            .back_mut()
            .ok_or_else(|| anyhow::anyhow!("no segment"))?;
        let wire = encode(seq, time_ns, bytes);
        if let Err(e) = (&seg.file).write_all(&wire) {
            // Cut off whatever part went out, so the segment stays readable.
            let _ = seg.file.set_len(seg.size);
            return Err(e).with_context(|| format!("cannot write {}", seg.path.display()));
        }
        let meta = Meta {
            seq,
            time_ns,
            segment: seg.first,
            offset: seg.size + HEADER as u64,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        };
        seg.size += wire.len() as u64;
        Ok(meta)
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
            if !out.is_empty() && size + r.len as usize > max_bytes {
                break;
            }
            let Some(seg) = s.segments.iter().find(|g| g.first == r.segment) else {
                break;
            };
            let mut bytes = vec![0u8; r.len as usize];
            if let Err(e) = seg.file.read_exact_at(&mut bytes, r.offset) {
                tracing::error!("cannot read {}: {e}", seg.path.display());
                break;
            }
            size += bytes.len();
            out.push(Record {
                seq: r.seq,
                time_ns: r.time_ns,
                bytes,
            });
        }
        out
    }

    /// The daemon has stored everything up to `seq`: forget it.
    pub fn ack(&self, seq: u64) {
        let mut s = self.lock();
        while s.records.front().is_some_and(|r| r.seq <= seq) {
            if let Some(r) = s.records.pop_front() {
                s.bytes -= r.stored();
            }
        }
        self.trim(&mut s);
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
            bytes: s.records.iter().map(|r| r.len as usize).sum(),
            dropped_records: s.dropped_records,
            dropped_bytes: s.dropped_bytes,
        }
    }
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
