//! The record log: every byte of a console, who and when, in tamper-evident segment files.
//!
//! Each device has a directory of append-only **segment files** named after the sequence number
//! of their first record (`00000000000000000001.mlog`). A segment starts with a header (magic,
//! format version, first sequence number, time of its first record, and the hash-chain value
//! carried over from the previous segment) followed by **records**: `{seq, time_ns, kind, user,
//! bytes}`, each framed by its length at both ends and protected by a CRC-32 and a link of a
//! BLAKE3 hash chain over every record before it. Truncation, reordering, deletion or changes of
//! records are therefore detected by [`verify`]. The byte format is specified in
//! `docs/log-format.md` and implemented, without I/O, in [`format`](mod@format).
//!
//! - [`LogWriter`] is the console actor's [`crate::record::RecordSink`]: one `writev` per record,
//!   nothing buffered in the process (a killed daemon loses nothing the kernel accepted), rotation
//!   by size and age, optional retention. On open it recovers from a crash by cutting off a torn
//!   final record — and never anything before it ([`Recovery`] says what was dropped).
//! - With [`LogOptions::compress_level`], closed segments are compressed with zstd in the
//!   background (`….mlog.zst`, see [`compress_closed_segments`]); every reader below reads
//!   compressed and plain segments alike.
//! - [`read`] iterates records in order across segments, from a sequence number or within a time
//!   range; [`tail`] gives the last N; [`Follower`] yields records as they are appended.
//!   All readers stop quietly at a torn final record of the live segment.
//! - [`Renderer`] and [`show`] turn records into text with an RFC 3339 timestamp per line;
//!   [`parse_time_spec`] reads `--since`/`--until` values.
//!
//! ```
//! use mo_core::log::{LogOptions, LogWriter, ReadOptions, read, verify};
//! use mo_core::record::{Chunk, RecordKind, RecordSink};
//!
//! # fn main() -> mo_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("mo-log-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let (mut writer, _recovery) = LogWriter::open(&dir, LogOptions::default())?;
//! writer.append(&Chunk {
//!     seq: writer.next_seq(),
//!     time_ns: 1_795_341_600_000_000_000,
//!     kind: RecordKind::Input,
//!     user: "alice".into(),
//!     offset: 0,
//!     bytes: "uptime\r".into(),
//! })?;
//! let records: Vec<_> = read(&dir, &ReadOptions::default())?.collect::<Result<_, _>>()?;
//! assert_eq!(records[0].user, "alice");
//! assert!(verify(&dir)?.is_ok());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

pub mod format;

mod asciicast;
#[cfg(feature = "compress")]
mod compress;
mod follow;
mod lines;
mod notes;
mod reader;
mod render;
mod reopen;
mod retention;
mod search;
mod segment;
mod show;
mod timespec;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

pub use asciicast::{AsciicastOptions, export_asciicast};
#[cfg(feature = "compress")]
pub use compress::compress_closed_segments;
pub use follow::{FollowOptions, FollowStart, Follower};
pub use format::{Chain, Record};
pub use lines::{LineHistory, SignalRecord, last_lines};
pub use notes::{
    LOCK_FILE_NAME, LogLock, MAX_NOTE_LEN, NoteEntry, append_note, check_note_len, list_notes,
    show_around, show_around_hiding,
};
pub use reader::{ReadOptions, Records, read, tail};
pub use render::{INPUT_HIDDEN, Renderer};
pub use reopen::ReopeningLog;
pub use retention::{
    LogUsage, Pruned, Retention, RetentionPlan, SegmentUsage, execute_plan, log_usage,
    plan_retention, segment_usage,
};
pub use search::{SearchOptions, SearchStats, compile_pattern, search, search_lines};
pub use segment::{
    COMPRESSED_SUFFIX, MAX_DECOMPRESSED_SEGMENT, SegmentFile, compressed_path, is_compressed,
    list_segments, parse_segment_file_name, segment_file_name,
};
pub use show::{DEFAULT_FOLLOW_TAIL, ShowOptions, show, show_follow};
pub use timespec::{format_timestamp, parse_time_spec, push_timestamp};
pub use verify::{LogProblem, VerifyReport, verify};
pub use writer::{Fsync, LogOptions, LogWriter, Recovery};
