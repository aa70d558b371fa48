//! [`Transcript`]: a copy of a console's bytes as a program sees them (pexpect's `logfile`).

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Receives a copy of every byte a [`super::ConsoleHandle`] reads, and of what it sends when
/// the transcript wants that too. Called on the reading or writing task: keep it quick.
pub trait Transcript: Send + Sync {
    /// Bytes read from the console.
    fn received(&self, bytes: &[u8]);
    /// Bytes sent to the console (ignored by default).
    fn sent(&self, bytes: &[u8]) {
        let _ = bytes;
    }
}

/// A transcript appended to a file, written as the bytes come (no buffering in the process).
/// Write errors are logged once and do not disturb the console.
#[derive(Debug)]
pub struct FileTranscript {
    file: Mutex<File>,
    with_sent: bool,
    failed: std::sync::atomic::AtomicBool,
}

impl FileTranscript {
    /// Append to `path` (created if missing); with `with_sent`, what is sent goes in too.
    pub fn append(path: &Path, with_sent: bool) -> Result<FileTranscript> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::Io {
                context: format!("opening the transcript {}", path.display()),
                source: e,
            })?;
        Ok(FileTranscript {
            file: Mutex::new(file),
            with_sent,
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn put(&self, bytes: &[u8]) {
        let written = match self.file.lock() {
            Ok(mut file) => file.write_all(bytes),
            Err(_) => return,
        };
        if let Err(e) = written
            && !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(error = %e, "writing the transcript failed");
        }
    }
}

impl Transcript for FileTranscript {
    fn received(&self, bytes: &[u8]) {
        self.put(bytes);
    }

    fn sent(&self, bytes: &[u8]) {
        if self.with_sent {
            self.put(bytes);
        }
    }
}
