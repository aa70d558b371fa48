//! Reading a device's records in order across segments: from a sequence number, within a time
//! range, or the last N.

use std::collections::VecDeque;
use std::path::Path;

use crate::error::Result;
use crate::log::format::{HEADER_LEN, Record};
use crate::log::segment::{
    Cursor, SegmentFile, Step, corrupt, io_err, list_segments, read_record_ending_at,
    read_segment_header,
};

/// Which records [`read`] yields. The default is all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Start at this sequence number.
    pub from_seq: Option<u64>,
    /// Only records at or after this time (ns since the Unix epoch).
    pub since: Option<u64>,
    /// Only records before this time (ns since the Unix epoch).
    pub until: Option<u64>,
}

impl ReadOptions {
    fn wants_time(&self, time_ns: u64) -> bool {
        self.since.is_none_or(|s| time_ns >= s) && self.until.is_none_or(|u| time_ns < u)
    }
}

/// An iterator over the records of a device directory, oldest first (see [`read`]).
///
/// It checks every record's checksum and that sequence numbers have no gaps, and ends without an
/// error at a torn final record of the newest segment. Damage ends it with one
/// [`crate::Error::LogCorrupt`].
#[derive(Debug)]
pub struct Records {
    segments: Vec<SegmentFile>,
    next_index: usize,
    cursor: Option<Cursor>,
    opts: ReadOptions,
    expected_seq: Option<u64>,
    done: bool,
}

/// Read the records of the device directory `dir` selected by `opts`.
///
/// Whole segments are skipped by their file name (for `from_seq`) and by the time of the next
/// segment's first record (for `since`); reading stops at a segment that starts at or after
/// `until`. This assumes the wall clock did not go back across segments; within the segments read
/// every record is filtered exactly.
pub fn read(dir: &Path, opts: &ReadOptions) -> Result<Records> {
    let segments = list_segments(dir)?;
    let mut start = 0;
    if let Some(from) = opts.from_seq {
        start = segments
            .iter()
            .rposition(|s| s.first_seq <= from)
            .unwrap_or(0);
    }
    if let Some(since) = opts.since {
        while let Some(next) = segments.get(start + 1) {
            match read_segment_header(&next.path)? {
                Some(h) if h.created_ns <= since => start += 1,
                _ => break,
            }
        }
    }
    Ok(Records {
        segments,
        next_index: start,
        cursor: None,
        opts: *opts,
        expected_seq: None,
        done: false,
    })
}

impl Records {
    fn open_next(&mut self) -> Result<bool> {
        let Some(seg) = self.segments.get(self.next_index) else {
            return Ok(false);
        };
        let live = self.next_index + 1 == self.segments.len();
        self.next_index += 1;
        let cursor = match Cursor::open(&seg.path, live) {
            Ok(Some(c)) => c,
            // A torn header on the live segment: it holds no record yet.
            Ok(None) if live => return Ok(false),
            Ok(None) => return Err(corrupt(&seg.path, 0, "segment header cut short")),
            Err(crate::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // Removed by retention since it was listed.
                self.expected_seq = None;
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        let h = *cursor.header();
        if h.first_seq != seg.first_seq {
            return Err(corrupt(
                &seg.path,
                16,
                format!(
                    "header says first seq {} but the file name says {}",
                    h.first_seq, seg.first_seq
                ),
            ));
        }
        if self.opts.until.is_some_and(|u| h.created_ns >= u) {
            return Ok(false);
        }
        if let Some(expected) = self.expected_seq
            && expected != h.first_seq
        {
            return Err(corrupt(
                &seg.path,
                16,
                format!("expected seq {expected}, segment starts at {}", h.first_seq),
            ));
        }
        self.expected_seq = Some(h.first_seq);
        self.cursor = Some(cursor);
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<Record>> {
        loop {
            let Some(cursor) = &mut self.cursor else {
                if !self.open_next()? {
                    return Ok(None);
                }
                continue;
            };
            let (offset, reason) = match cursor.next()? {
                Step::Record { offset, record } => match self.expected_seq {
                    Some(expected) if record.seq != expected => (
                        offset,
                        format!("expected seq {expected}, found {}", record.seq),
                    ),
                    _ => {
                        self.expected_seq = Some(record.seq.saturating_add(1));
                        if self.opts.from_seq.is_some_and(|f| record.seq < f)
                            || !self.opts.wants_time(record.time_ns)
                        {
                            continue;
                        }
                        return Ok(Some(record.to_record()));
                    }
                },
                Step::End => {
                    self.cursor = None;
                    continue;
                }
                Step::Torn { .. } => return Ok(None),
                Step::Damaged { offset, reason } => (offset, reason),
            };
            return Err(corrupt(cursor.path(), offset, reason));
        }
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// The last `n` records of a device directory, oldest first.
///
/// Walks backwards from the end of each segment using the trailing record lengths; a segment whose
/// end does not walk back cleanly (a torn tail) is read forward instead.
pub fn tail(dir: &Path, n: usize) -> Result<Vec<Record>> {
    let segments = list_segments(dir)?;
    let mut out: Vec<Record> = Vec::new(); // newest first
    for (i, seg) in segments.iter().enumerate().rev() {
        if out.len() >= n {
            break;
        }
        let live = i + 1 == segments.len();
        let Some(mut cursor) = Cursor::open(&seg.path, live)? else {
            if live {
                continue;
            }
            return Err(corrupt(&seg.path, 0, "segment header cut short"));
        };
        let want = n - out.len();
        let before = out.len();
        if !walk_back(&cursor, want, &mut out)? {
            out.truncate(before);
            let mut forward = tail_forward(&mut cursor, want)?;
            forward.reverse();
            out.extend(forward);
        }
        if let (Some(newest_here), Some(oldest_after)) = (
            out.get(before),
            before.checked_sub(1).and_then(|i| out.get(i)),
        ) && newest_here.seq.saturating_add(1) != oldest_after.seq
        {
            return Err(corrupt(
                &seg.path,
                cursor.file_len(),
                format!(
                    "segment ends at seq {} but the next one starts at {}",
                    newest_here.seq, oldest_after.seq
                ),
            ));
        }
    }
    out.reverse();
    Ok(out)
}

/// Collect up to `want` records from the end of the segment, newest first. False if the segment
/// does not walk back cleanly to either `want` records or its header.
fn walk_back(cursor: &Cursor, want: usize, out: &mut Vec<Record>) -> Result<bool> {
    let mut end = cursor.file_len();
    let mut last_seq: Option<u64> = None;
    let mut got = 0;
    while got < want && end > HEADER_LEN as u64 {
        let found = read_record_ending_at(cursor.file(), end, HEADER_LEN as u64)
            .map_err(|e| io_err("read log segment", cursor.path(), e))?;
        let Some((start, raw)) = found else {
            return Ok(false);
        };
        let crate::log::format::Decoded::Record(r) = crate::log::format::decode_record(&raw) else {
            return Ok(false);
        };
        if last_seq.is_some_and(|s| r.seq.saturating_add(1) != s)
            || r.seq < cursor.header().first_seq
        {
            return Ok(false);
        }
        last_seq = Some(r.seq);
        out.push(r.to_record());
        got += 1;
        end = start;
    }
    Ok(true)
}

/// The last `want` records of one segment read forward, oldest first.
fn tail_forward(cursor: &mut Cursor, want: usize) -> Result<Vec<Record>> {
    let mut ring: VecDeque<Record> = VecDeque::with_capacity(want.min(1024));
    let mut expected = cursor.header().first_seq;
    loop {
        let (offset, reason) = match cursor.next()? {
            Step::Record { offset, record } if record.seq != expected => (
                offset,
                format!("expected seq {expected}, found {}", record.seq),
            ),
            Step::Record { record, .. } => {
                expected = expected.saturating_add(1);
                if want > 0 {
                    if ring.len() == want {
                        ring.pop_front();
                    }
                    ring.push_back(record.to_record());
                }
                continue;
            }
            Step::End | Step::Torn { .. } => return Ok(ring.into()),
            Step::Damaged { offset, reason } => (offset, reason),
        };
        return Err(corrupt(cursor.path(), offset, reason));
    }
}
