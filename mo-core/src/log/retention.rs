//! Retention: which closed segments of a device's log are old or large enough to go, computed
//! without deleting anything ([`plan_retention`]), and how much a log holds ([`log_usage`]).
//!
//! Retention works by whole closed segments, oldest first, so what stays is always a contiguous
//! run of records ending at the newest one: the hash chain of what remains still verifies
//! (the first remaining segment's header carries the chain value of the record before it), and
//! `mo log verify` notes that older segments were pruned. The live segment is never removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;
use crate::log::reader::tail;
use crate::log::segment::{
    SegmentFile, compressed_path, io_err, is_compressed, list_segments, read_segment_header,
};

/// How much of a device's log to keep. Both limits may be set; a segment goes when either says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete the oldest closed segments while all segments together exceed this many bytes.
    pub max_bytes: Option<u64>,
    /// Delete closed segments whose every record is older than this.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// True when neither limit is set (nothing is ever removed).
    pub fn is_unlimited(&self) -> bool {
        self.max_bytes.is_none() && self.max_age.is_none()
    }
}

/// One segment file and its size on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentUsage {
    /// The segment.
    pub file: SegmentFile,
    /// Its size on disk in bytes (compressed size for a compressed segment).
    pub bytes: u64,
}

/// What retention would remove from a log now ([`plan_retention`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionPlan {
    /// Every segment, oldest first, with its size.
    pub segments: Vec<SegmentUsage>,
    /// How many of the oldest segments go (`segments[..remove]`).
    pub remove: usize,
    /// Bytes of all segments.
    pub total_bytes: u64,
    /// Bytes of the segments that go.
    pub remove_bytes: u64,
}

impl RetentionPlan {
    /// The segments that go, oldest first.
    pub fn removed(&self) -> &[SegmentUsage] {
        self.segments.get(..self.remove).unwrap_or_default()
    }
}

/// What retention removed ([`crate::record::RecordSink::apply_retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Segment files deleted.
    pub segments: u64,
    /// Their bytes on disk.
    pub bytes: u64,
}

/// How much a device's log holds ([`log_usage`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogUsage {
    /// Segment files.
    pub segments: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Sequence number of the first record kept.
    pub first_seq: Option<u64>,
    /// Time of the oldest record kept (ns since the Unix epoch).
    pub oldest_ns: Option<u64>,
    /// Time of the newest record (ns since the Unix epoch).
    pub newest_ns: Option<u64>,
}

fn segment_size(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        // Compressed in the meantime: the plain file was replaced by its `.zst` form.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_compressed(path) => {
            let zst = compressed_path(path);
            std::fs::metadata(&zst)
                .map(|m| m.len())
                .map_err(|e| io_err("stat log segment", &zst, e))
        }
        Err(e) => Err(io_err("stat log segment", path, e)),
    }
}

/// The segments of `dir` with their sizes, oldest first.
pub fn segment_usage(dir: &Path) -> Result<Vec<SegmentUsage>> {
    list_segments(dir)?
        .into_iter()
        .map(|file| {
            let bytes = segment_size(&file.path)?;
            Ok(SegmentUsage { file, bytes })
        })
        .collect()
}

/// Which closed segments of the log in `dir` retention removes at `now_ns` (ns since the Unix
/// epoch): the oldest ones while the log is over `retention.max_bytes`, and those whose newest
/// record is older than `retention.max_age` (every record of a segment is older than the first
/// record of the next one). Stops at the first segment that stays, at `live` (the segment a
/// writer appends to) and at the newest segment, which are never removed. Deletes nothing.
pub fn plan_retention(
    dir: &Path,
    retention: &Retention,
    now_ns: u64,
    live: Option<&Path>,
) -> Result<RetentionPlan> {
    let segments = segment_usage(dir)?;
    let total_bytes: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut plan = RetentionPlan {
        total_bytes,
        ..RetentionPlan::default()
    };
    if !retention.is_unlimited() {
        let mut left = total_bytes;
        for (i, seg) in segments.iter().enumerate() {
            if Some(seg.file.path.as_path()) == live || i + 1 == segments.len() {
                break;
            }
            let over_size = retention.max_bytes.is_some_and(|max| left > max);
            let expired = match (retention.max_age, segments.get(i + 1)) {
                (Some(age), Some(next)) => match read_segment_header(&next.file.path)? {
                    Some(h) => u128::from(now_ns.saturating_sub(h.created_ns)) > age.as_nanos(),
                    None => false,
                },
                _ => false,
            };
            if !over_size && !expired {
                break;
            }
            left -= seg.bytes;
            plan.remove += 1;
            plan.remove_bytes += seg.bytes;
        }
    }
    plan.segments = segments;
    Ok(plan)
}

/// Delete the segments `plan` removes, oldest first (both forms of a segment that is plain and
/// compressed at once). Stops at the first failure, so what stays is still contiguous.
pub fn execute_plan(plan: &RetentionPlan) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    for seg in plan.removed() {
        let path = &seg.file.path;
        let mut forms: Vec<PathBuf> = vec![path.clone()];
        if let Some(plain) = path
            .to_str()
            .and_then(|p| p.strip_suffix(crate::log::segment::COMPRESSED_SUFFIX))
        {
            forms.push(PathBuf::from(plain));
        } else {
            forms.push(compressed_path(path));
        }
        for (i, form) in forms.iter().enumerate() {
            match std::fs::remove_file(form) {
                Ok(()) => {}
                // The other form usually does not exist.
                Err(e) if i > 0 && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove old log segment", form, e)),
            }
        }
        tracing::debug!(segment = %path.display(), "log retention removed segment");
        pruned.segments += 1;
        pruned.bytes += seg.bytes;
    }
    Ok(pruned)
}

/// How much the log in `dir` holds: segments, bytes on disk, the first sequence number kept and
/// the times of its oldest and newest records.
pub fn log_usage(dir: &Path) -> Result<LogUsage> {
    let segments = segment_usage(dir)?;
    let mut usage = LogUsage {
        segments: segments.len() as u64,
        bytes: segments.iter().map(|s| s.bytes).sum(),
        ..LogUsage::default()
    };
    for seg in &segments {
        // The first segment with a complete header holds the oldest record kept.
        if let Some(h) = read_segment_header(&seg.file.path)? {
            usage.first_seq = Some(h.first_seq);
            usage.oldest_ns = Some(h.created_ns);
            break;
        }
    }
    if usage.oldest_ns.is_some() {
        usage.newest_ns = tail(dir, 1)?.last().map(|r| r.time_ns);
    }
    Ok(usage)
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
