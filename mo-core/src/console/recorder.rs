//! The record log as a consumer of the timeline: it must never skip, and when it cannot write it
//! does not stop the console. A failed append puts it in the degraded state (counted, published
//! through [`LogHealth`]); it tries again every second, and once it can write it first records a
//! gap saying what was lost, when and why.
//!
//! This is bookkeeping only: what viewers are told is decided by the hub (`hub.rs`), which
//! shows the notices and gap records the recorder hands back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{LogDegraded, LogHealth, LogPolicy};
use crate::error::{Error, Result};
use crate::log::format_timestamp;
use crate::record::{Chunk, RecordKind, RecordSink, now_ns};

/// How often a degraded record log tries to write again.
const LOG_RETRY: Duration = Duration::from_secs(1);

/// Records a degraded log could not write, for the gap record written once it can again.
struct Lost {
    error: String,
    since_ns: u64,
    records: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    retry_at: Instant,
}

/// What an append that failed means for the viewers.
pub(super) struct Failed {
    /// The error the caller returns.
    pub(super) error: Error,
    /// The notice for viewers, on the first failure of a degraded period.
    pub(super) notice: Option<String>,
}

/// A console's record log and its degraded state.
pub(super) struct Recorder {
    name: Arc<str>,
    sink: Option<Box<dyn RecordSink>>,
    policy: LogPolicy,
    /// What viewers and the daemon see of the log's health.
    health: watch::Sender<LogHealth>,
    /// While the log is degraded: what was lost, and when to try writing again.
    lost: Option<Lost>,
}

impl Recorder {
    pub(super) fn new(
        name: Arc<str>,
        sink: Option<Box<dyn RecordSink>>,
        policy: LogPolicy,
        health: watch::Sender<LogHealth>,
    ) -> Self {
        Recorder {
            name,
            sink,
            policy,
            health,
            lost: None,
        }
    }

    /// Whether the console keeps a record log at all.
    pub(super) fn is_some(&self) -> bool {
        self.sink.is_some()
    }

    /// The sequence number the log gives its next record.
    pub(super) fn next_seq(&self) -> Option<u64> {
        self.sink.as_ref().map(|s| s.next_seq())
    }

    /// When the recorder wants to be woken: a degraded log's retry, or the log's sync deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let retry = self.lost.as_ref().map(|l| l.retry_at);
        let sync = self
            .sink
            .as_ref()
            .and_then(|l| l.sync_deadline())
            .map(Instant::from_std);
        retry.into_iter().chain(sync).min()
    }

    /// A degraded log whose retry time has come.
    pub(super) fn retry_due(&self) -> bool {
        self.lost
            .as_ref()
            .is_some_and(|l| l.retry_at <= Instant::now())
    }

    /// The last `want` bytes of output the log holds, read back from it (see
    /// [`crate::record::RecordSink::recent_output`]); `None` without a log or when it cannot
    /// read back. (While degraded, the log may lack the latest output: see [`Self::degraded`].)
    pub(super) fn recent_output(&self, want: usize) -> Option<Vec<u8>> {
        self.sink.as_ref().and_then(|s| s.recent_output(want))
    }

    /// Whether appending `chunk` would start a new segment (see
    /// [`crate::record::RecordSink::starts_segment`]); `true` without a log.
    pub(super) fn starts_segment(&self, chunk: &Chunk) -> bool {
        self.sink.as_ref().is_none_or(|s| s.starts_segment(chunk))
    }

    /// Whether the log is degraded.
    pub(super) fn degraded(&self) -> bool {
        self.lost.is_some()
    }

    /// Append `chunk`, giving it the log's next sequence number. Returns its number, or why it
    /// was not recorded. A degraded log only counts the chunk until its retry time.
    pub(super) fn append(&mut self, chunk: &mut Chunk) -> std::result::Result<u64, Failed> {
        let Some(log) = self.sink.as_mut() else {
            return Ok(chunk.seq);
        };
        chunk.seq = log.next_seq();
        if let Some(lost) = self.lost.as_mut() {
            // Degraded and not yet time to try again: count what the gap record will report.
            lost.records += 1;
            lost.bytes += chunk.bytes.len() as u64;
            lost.first_ns.get_or_insert(chunk.time_ns);
            lost.last_ns = chunk.time_ns;
            return Err(Failed {
                error: self.unavailable(""),
                notice: None,
            });
        }
        match log.append(chunk) {
            Ok(()) => {
                // The sink numbers the record (a log that just opened may renumber it).
                chunk.seq = log.next_seq().saturating_sub(1);
                Ok(chunk.seq)
            }
            Err(e) => {
                // A record that reached the file but could not be made durable is in the log.
                let written = log.next_seq() > chunk.seq;
                let notice = self.failed(&e, chunk, written);
                Err(Failed {
                    error: self.unavailable(if written {
                        "written but not made durable"
                    } else {
                        ""
                    }),
                    notice,
                })
            }
        }
    }

    /// The error of input refused or a record not written while degraded.
    pub(super) fn unavailable(&self, what: &str) -> Error {
        let error = self.lost.as_ref().map_or("", |l| l.error.as_str());
        let reason = if what.is_empty() {
            error.to_string()
        } else {
            format!("{what}: {error}")
        };
        Error::LogUnavailable {
            device: self.name.to_string(),
            reason,
        }
    }

    /// An append failed: enter (or stay in) the degraded state. Returns the notice for viewers
    /// on the first failure.
    fn failed(&mut self, e: &Error, chunk: &Chunk, written: bool) -> Option<String> {
        let first = self.lost.is_none();
        let lost = self.lost.get_or_insert_with(|| Lost {
            error: e.to_string(),
            since_ns: chunk.time_ns,
            records: 0,
            bytes: 0,
            first_ns: None,
            last_ns: chunk.time_ns,
            retry_at: Instant::now() + LOG_RETRY,
        });
        if !written {
            lost.records += 1;
            lost.bytes += chunk.bytes.len() as u64;
            lost.first_ns.get_or_insert(chunk.time_ns);
            lost.last_ns = chunk.time_ns;
        }
        lost.retry_at = Instant::now() + LOG_RETRY;
        self.publish(1, 0);
        if !first {
            return None;
        }
        tracing::error!(device = %self.name, error = %e, "record log write failed: log degraded");
        let input = match self.policy {
            LogPolicy::Degrade => "input still reaches the device, unrecorded",
            LogPolicy::Strict => "input is refused until it records again (strict log policy)",
        };
        Some(format!(
            "log: degraded: cannot write the record log ({e}); output is still shown, {input}; \
             the loss will be recorded as a gap"
        ))
    }

    /// Try to write the gap record of a degraded period; on success the log records again and
    /// the gap record (numbered, at output offset `offset`) is returned for the viewers.
    pub(super) fn try_recover(&mut self, offset: u64) -> Option<Chunk> {
        let lost = self.lost.as_mut()?;
        let Some(log) = self.sink.as_mut() else {
            self.lost = None;
            return None;
        };
        let now = now_ns();
        let between = match lost.first_ns {
            Some(first) => format!(
                " between {} and {}",
                format_timestamp(first),
                format_timestamp(lost.last_ns)
            ),
            None => String::new(),
        };
        let text = format!(
            "gap: {} records ({} bytes) were not recorded{between}; the log could not write \
             from {} to {}: {}",
            lost.records,
            lost.bytes,
            format_timestamp(lost.since_ns),
            format_timestamp(now),
            lost.error
        );
        let mut gap = Chunk {
            seq: log.next_seq(),
            time_ns: now,
            kind: RecordKind::Gap,
            user: Arc::from(""),
            offset,
            bytes: Bytes::from(text),
        };
        match log.append(&gap) {
            Ok(()) => {
                gap.seq = log.next_seq().saturating_sub(1);
                tracing::warn!(device = %self.name, records = lost.records, bytes = lost.bytes,
                    "record log writable again; gap recorded");
                self.lost = None;
                self.publish(0, 1);
                Some(gap)
            }
            Err(e) => {
                lost.retry_at = Instant::now() + LOG_RETRY;
                tracing::debug!(device = %self.name, error = %e, "record log still cannot write");
                self.publish(1, 0);
                None
            }
        }
    }

    /// Make what the log holds durable when its sync deadline has come. Returns the notice for
    /// viewers when a failed sync starts a degraded period.
    pub(super) fn sync_if_due(&mut self, seq: u64, offset: u64) -> Option<String> {
        let log = self.sink.as_mut()?;
        if log
            .sync_deadline()
            .is_none_or(|t| t > std::time::Instant::now())
        {
            return None;
        }
        let e = log.sync().err()?;
        let probe = Chunk {
            seq,
            time_ns: now_ns(),
            kind: RecordKind::Notice,
            user: Arc::from(""),
            offset,
            bytes: Bytes::new(),
        };
        self.failed(&e, &probe, true)
    }

    /// Under the strict log policy, input is refused while the log cannot record it.
    pub(super) fn strict(&self) -> bool {
        self.policy == LogPolicy::Strict && self.sink.is_some()
    }

    /// Make everything durable (the console stops).
    pub(super) fn flush(&mut self) {
        if let Some(log) = self.sink.as_mut()
            && let Err(e) = log.flush()
        {
            tracing::error!(device = %self.name, error = %e, "record log: final sync failed");
        }
    }

    /// Apply the log's retention limits now.
    pub(super) fn apply_retention(&mut self) -> Result<crate::log::Pruned> {
        let now = now_ns();
        self.sink
            .as_mut()
            .map(|l| l.apply_retention(now))
            .unwrap_or(Ok(crate::log::Pruned::default()))
    }

    /// Make the log's health visible: errors and gaps add to the counters.
    fn publish(&mut self, errors: u64, gaps: u64) {
        let degraded = self.lost.as_ref().map(|l| LogDegraded {
            error: l.error.clone(),
            since_ns: l.since_ns,
            lost_records: l.records,
            lost_bytes: l.bytes,
        });
        self.health.send_modify(|h| {
            h.degraded = degraded;
            h.write_errors += errors;
            h.gaps += gaps;
        });
    }
}
