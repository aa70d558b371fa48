//! A record log that could not be opened yet (a read-only or full file system, damage in the
//! live segment) and opens itself on the next append that finds it possible. A console started on
//! it is degraded from the start instead of not starting at all: viewers can work (unless the
//! console's log policy is strict) and are told why nothing is recorded; the first record that is
//! written once the log opens is the gap record saying what was lost.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::{LogOptions, LogWriter, Recovery};
use crate::record::{Chunk, RecordSink};

/// A [`RecordSink`] that opens its [`LogWriter`] lazily, retrying on every append until it can.
#[derive(Debug)]
pub struct ReopeningLog {
    dir: PathBuf,
    opts: LogOptions,
    writer: Option<LogWriter>,
    /// Why the last attempt to open failed.
    error: String,
}

impl ReopeningLog {
    /// Open the log in `dir` now if possible; otherwise remember why and retry on each append.
    /// Returns the sink and what opening recovered (`None` when it could not open yet).
    pub fn open(dir: &Path, opts: LogOptions) -> (ReopeningLog, Option<Recovery>) {
        let (writer, recovery, error) = match LogWriter::open(dir, opts.clone()) {
            Ok((w, r)) => (Some(w), Some(r), String::new()),
            Err(e) => (None, None, e.to_string()),
        };
        (
            ReopeningLog {
                dir: dir.to_path_buf(),
                opts,
                writer,
                error,
            },
            recovery,
        )
    }

    /// Whether the writer is open.
    pub fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Why the log could not be opened, while it is not.
    pub fn open_error(&self) -> Option<&str> {
        (!self.is_open()).then_some(self.error.as_str())
    }

    fn writer(&mut self) -> Result<&mut LogWriter> {
        if self.writer.is_none() {
            match LogWriter::open(&self.dir, self.opts.clone()) {
                Ok((w, recovery)) => {
                    if recovery.torn {
                        tracing::warn!(dir = %self.dir.display(), "record log recovered: {recovery:?}");
                    }
                    self.writer = Some(w);
                }
                Err(e) => {
                    self.error = e.to_string();
                    return Err(e);
                }
            }
        }
        self.writer.as_mut().ok_or_else(|| Error::Io {
            context: format!("open record log {}", self.dir.display()),
            source: std::io::Error::other(self.error.clone()),
        })
    }
}

impl RecordSink for ReopeningLog {
    /// The writer's next number; 1 while the log is not open (chunks shown to viewers meanwhile
    /// carry it; the actor renumbers each record from the writer when it appends).
    fn next_seq(&self) -> u64 {
        self.writer.as_ref().map_or(1, RecordSink::next_seq)
    }

    /// Appends `chunk`; the first record after the log opened was numbered before the writer
    /// knew its number, so it gets the writer's (read it back with `next_seq() - 1`).
    fn append(&mut self, chunk: &Chunk) -> Result<()> {
        let writer = self.writer()?;
        if chunk.seq != writer.next_seq() {
            let mut renumbered = chunk.clone();
            renumbered.seq = writer.next_seq();
            return writer.append(&renumbered);
        }
        writer.append(chunk)
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.as_mut().map_or(Ok(()), RecordSink::flush)
    }

    fn recent_output(&self, want: usize) -> Option<Vec<u8>> {
        self.writer.as_ref().and_then(|w| w.recent_output(want))
    }

    fn starts_segment(&self, chunk: &Chunk) -> bool {
        self.writer.as_ref().is_none_or(|w| w.starts_segment(chunk))
    }

    fn sync_deadline(&self) -> Option<std::time::Instant> {
        self.writer.as_ref().and_then(RecordSink::sync_deadline)
    }

    fn sync(&mut self) -> Result<()> {
        self.writer.as_mut().map_or(Ok(()), RecordSink::sync)
    }

    fn apply_retention(&mut self, now_ns: u64) -> Result<crate::log::Pruned> {
        match self.writer.as_mut() {
            Some(w) => w.apply_retention(now_ns),
            None => Ok(crate::log::Pruned::default()),
        }
    }
}
