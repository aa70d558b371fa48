//! Verification of a device's whole log: checksums, sequence numbers, the hash chain within and
//! across segments, and segment headers.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::log::format::{Chain, GENESIS_CHAIN};
use crate::log::segment::{Cursor, Step, list_segments};

/// A place in the log and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogProblem {
    /// The segment's file name.
    pub segment: String,
    /// Byte offset within the segment.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for LogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.segment, self.offset, self.reason
        )
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The device directory.
    pub dir: PathBuf,
    /// Segment files checked.
    pub segments: u64,
    /// Valid records checked.
    pub records: u64,
    /// Bytes of segment files read.
    pub bytes: u64,
    /// Sequence number of the first record.
    pub first_seq: Option<u64>,
    /// Sequence number of the last valid record.
    pub last_seq: Option<u64>,
    /// The first sign of damage or tampering, if any.
    pub problem: Option<LogProblem>,
    /// How many problems were found in all (checking resumes at the next segment).
    pub problems: u64,
    /// A torn final record in the newest segment: a writer crashed there. Not tampering; the
    /// writer drops it when it opens the log again.
    pub torn_tail: Option<LogProblem>,
    /// Remarks that are not problems (for example that older segments were pruned).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// True when no problem was found (a torn tail is only a warning).
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    fn problem(&mut self, segment: &str, offset: u64, reason: impl Into<String>) {
        self.problems += 1;
        if self.problem.is_none() {
            self.problem = Some(LogProblem {
                segment: segment.to_owned(),
                offset,
                reason: reason.into(),
            });
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_ok() { "OK" } else { "DAMAGED" };
        write!(
            f,
            "{}: {verdict} ({} segments, {} records",
            self.dir.display(),
            self.segments,
            self.records
        )?;
        if let (Some(first), Some(last)) = (self.first_seq, self.last_seq) {
            write!(f, ", seq {first}..{last}")?;
        }
        writeln!(f, ", {} bytes checked)", self.bytes)?;
        if let Some(p) = &self.problem {
            writeln!(f, "problem: {p}")?;
            if self.problems > 1 {
                writeln!(f, "({} problems in all)", self.problems)?;
            }
        }
        if let Some(t) = &self.torn_tail {
            writeln!(
                f,
                "warning: torn final record: {t} (a writer crashed; dropped when the log is reopened)"
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// Check the whole log of the device directory `dir`.
///
/// Damage and tampering are reported in the [`VerifyReport`], not as errors; only failing to read
/// the directory or a file is an error.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let segments = list_segments(dir)?;
    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        segments: 0,
        records: 0,
        bytes: 0,
        first_seq: None,
        last_seq: None,
        problem: None,
        problems: 0,
        torn_tail: None,
        notes: Vec::new(),
    };
    // What the next segment must continue: (next seq, chain head), unknown after damage.
    let mut carry: Option<(u64, Chain)> = None;
    for (i, seg) in segments.iter().enumerate() {
        let name = seg.name();
        let live = i + 1 == segments.len();
        report.segments += 1;
        let cursor = match Cursor::open(&seg.path, live) {
            Ok(c) => c,
            Err(crate::Error::LogCorrupt { offset, reason, .. }) => {
                report.problem(&name, offset, reason);
                carry = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(mut cursor) = cursor else {
            let len = std::fs::metadata(&seg.path).map_or(0, |m| m.len());
            report.bytes += len;
            if live {
                report.torn_tail = Some(LogProblem {
                    segment: name,
                    offset: 0,
                    reason: format!("segment header cut short ({len} bytes)"),
                });
            } else {
                report.problem(&name, 0, format!("segment header cut short ({len} bytes)"));
                carry = None;
            }
            continue;
        };
        report.bytes += cursor.file_len();
        let h = *cursor.header();
        if h.first_seq != seg.first_seq {
            report.problem(
                &name,
                16,
                format!(
                    "header says first seq {} but the file name says {}",
                    h.first_seq, seg.first_seq
                ),
            );
        }
        match carry {
            Some((next_seq, chain)) => {
                if h.first_seq != next_seq {
                    report.problem(
                        &name,
                        16,
                        format!(
                            "segment starts at seq {} but the previous one ended before {next_seq}",
                            h.first_seq
                        ),
                    );
                } else if h.prev_chain != chain {
                    report.problem(
                        &name,
                        32,
                        "hash chain broken: header does not continue the previous segment",
                    );
                }
            }
            None if i == 0 && h.first_seq == 1 && h.prev_chain != GENESIS_CHAIN => {
                report.problem(&name, 32, "first segment does not start the hash chain");
            }
            None if i == 0 && h.first_seq > 1 => report.notes.push(format!(
                "log starts at seq {}; older segments were removed",
                h.first_seq
            )),
            None => {}
        }
        carry = check_records(&mut cursor, &name, live, &mut report)?;
    }
    Ok(report)
}

/// Check one segment's records; returns what the next segment must continue, unless damaged.
fn check_records(
    cursor: &mut Cursor,
    name: &str,
    live: bool,
    report: &mut VerifyReport,
) -> Result<Option<(u64, Chain)>> {
    let h = *cursor.header();
    let mut next_seq = h.first_seq;
    let mut chain = h.prev_chain;
    loop {
        match cursor.next()? {
            Step::Record { offset, record } => {
                if record.seq != next_seq {
                    report.problem(
                        name,
                        offset,
                        format!("expected seq {next_seq}, found {}", record.seq),
                    );
                    return Ok(None);
                }
                if !record.follows(&chain) {
                    report.problem(
                        name,
                        offset,
                        format!(
                            "hash chain broken at seq {}: record was changed, or one before it",
                            record.seq
                        ),
                    );
                    return Ok(None);
                }
                report.first_seq.get_or_insert(record.seq);
                report.last_seq = Some(record.seq);
                report.records += 1;
                next_seq = record.seq.saturating_add(1);
                chain = record.chain;
            }
            Step::End => return Ok(Some((next_seq, chain))),
            Step::Torn {
                offset,
                bytes,
                reason,
            } if live => {
                report.torn_tail = Some(LogProblem {
                    segment: name.to_owned(),
                    offset,
                    reason: format!("{reason} ({bytes} bytes)"),
                });
                return Ok(Some((next_seq, chain)));
            }
            Step::Torn { offset, reason, .. } | Step::Damaged { offset, reason } => {
                report.problem(name, offset, reason);
                return Ok(None);
            }
        }
    }
}
