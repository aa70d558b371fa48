//! Following a device's log as it grows (`tail -f`), across segment rotation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;
use crate::log::format::Record;
use crate::log::reader::{self, ReadOptions};
use crate::log::segment::{Cursor, Step, corrupt, list_segments, scan_end};

/// Where a [`Follower`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowStart {
    /// The oldest record there is.
    Beginning,
    /// Only records appended after the follower was created.
    End,
    /// The record with this sequence number (or the first one after it).
    Seq(u64),
    /// The first record at or after this time (ns since the Unix epoch).
    Since(u64),
    /// The last `n` records already in the log.
    Tail(usize),
}

/// How a [`Follower`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// Where to start.
    pub start: FollowStart,
    /// How often to look for new records once the follower has caught up (default 100 ms).
    pub poll_interval: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            start: FollowStart::End,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// Yields a device's records as they are appended, following rotation into new segments.
///
/// It polls the live segment's length; a record still being written (a torn tail) is simply not
/// yielded yet. Reads are small synchronous reads from the page cache; each call reads at most one
/// buffer's worth, so it does not hold up an async runtime for long.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    poll: Duration,
    cursor: Option<Cursor>,
    want_seq: u64,
}

impl Follower {
    /// A follower of the device directory `dir` (which need not exist yet).
    pub fn new(dir: &Path, opts: FollowOptions) -> Result<Follower> {
        let want_seq = if dir.exists() {
            match opts.start {
                FollowStart::Beginning => 0,
                FollowStart::Seq(s) => s,
                FollowStart::End => end_seq(dir)?,
                FollowStart::Since(t) => {
                    let mut it = reader::read(
                        dir,
                        &ReadOptions {
                            since: Some(t),
                            ..ReadOptions::default()
                        },
                    )?;
                    match it.next().transpose()? {
                        Some(r) => r.seq,
                        None => end_seq(dir)?,
                    }
                }
                FollowStart::Tail(n) => match reader::tail(dir, n)?.first() {
                    Some(r) => r.seq,
                    None => end_seq(dir)?,
                },
            }
        } else {
            0
        };
        Ok(Follower {
            dir: dir.to_path_buf(),
            poll: opts.poll_interval,
            cursor: None,
            want_seq,
        })
    }

    /// The sequence number of the next record this follower yields (or a lower bound of it).
    pub fn next_seq(&self) -> u64 {
        self.want_seq
    }

    /// The next record, waiting for one to be appended.
    pub async fn next(&mut self) -> Result<Record> {
        loop {
            if let Some(r) = self.try_next()? {
                return Ok(r);
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The next record if one is there now, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Record>> {
        loop {
            if self.cursor.is_none() && !self.open_segment()? {
                return Ok(None);
            }
            let Some(cursor) = &mut self.cursor else {
                return Ok(None);
            };
            let torn = match cursor.next()? {
                Step::Record { record, .. } => {
                    if record.seq < self.want_seq {
                        continue;
                    }
                    self.want_seq = record.seq.saturating_add(1);
                    return Ok(Some(record.to_record()));
                }
                Step::Damaged { offset, reason } => {
                    return Err(corrupt(cursor.path(), offset, reason));
                }
                Step::End => None,
                Step::Torn { offset, reason, .. } => Some((offset, reason)),
            };
            let before = cursor.file_len();
            if cursor.refresh()? != before {
                continue;
            }
            // Caught up with this segment. Has the writer moved on to a newer one?
            let current = cursor.header().first_seq;
            let segments = list_segments(&self.dir)?;
            let Some(next) = segments.iter().find(|s| s.first_seq > current) else {
                return Ok(None);
            };
            // The writer finishes a segment before it creates the next: look once more.
            if cursor.refresh()? != before {
                continue;
            }
            if let Some((offset, reason)) = torn {
                return Err(corrupt(
                    cursor.path(),
                    offset,
                    format!("{reason} in a segment the writer has left"),
                ));
            }
            if next.first_seq > self.want_seq {
                return Err(corrupt(
                    &next.path,
                    16,
                    format!(
                        "expected seq {}, segment starts at {}",
                        self.want_seq, next.first_seq
                    ),
                ));
            }
            match Cursor::open(&next.path, true)? {
                Some(c) => self.cursor = Some(c),
                None => return Ok(None),
            }
        }
    }

    /// Open the segment that holds `want_seq`; false if there is none yet.
    fn open_segment(&mut self) -> Result<bool> {
        if !self.dir.exists() {
            return Ok(false);
        }
        let segments = list_segments(&self.dir)?;
        let Some(seg) = segments
            .iter()
            .rev()
            .find(|s| s.first_seq <= self.want_seq)
            .or(segments.first())
        else {
            return Ok(false);
        };
        // A segment being created may not have its header yet.
        self.cursor = Cursor::open(&seg.path, true)?;
        Ok(self.cursor.is_some())
    }
}

/// The sequence number the next appended record will carry.
fn end_seq(dir: &Path) -> Result<u64> {
    for seg in list_segments(dir)?.iter().rev() {
        if let Some(end) = scan_end(&seg.path, true)? {
            return Ok(end.next_seq);
        }
    }
    Ok(0)
}
