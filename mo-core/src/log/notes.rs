//! Notes and marks in the record log: listing them, showing the log around one, and appending a
//! note from outside the console actor.
//!
//! A note ([`RecordKind::Note`]) is text a user wrote into a console's timeline (the session
//! escape `note`, `mo log note`); a mark ([`RecordKind::Mark`]) is a bookmark, normally without
//! text. Both are ordinary records, so they carry a sequence number, a time and a user, and they
//! are covered by the hash chain like everything else.
//!
//! Only one process may append to a log. [`LogLock`] is the advisory lock (`flock` on the file
//! `.writer.lock` in the device directory) that says who that is: whoever runs a device's
//! [`crate::log::LogWriter`] long-term holds it, and [`append_note`] takes it before opening a
//! writer of its own, so it refuses instead of corrupting a log someone else is writing.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::reader::{self, ReadOptions};
use crate::log::render::Renderer;
use crate::log::writer::{LogOptions, LogWriter};
use crate::record::{Chunk, RecordKind, RecordSink, now_ns};

/// Name of the lock file inside a device directory (segment readers ignore it).
pub const LOCK_FILE_NAME: &str = ".writer.lock";

/// Exclusive right to append to one device's log, held until dropped.
#[derive(Debug)]
pub struct LogLock {
    _file: File,
    path: PathBuf,
}

impl LogLock {
    /// Take the lock of the device directory `dir` (which must exist) without waiting. Fails
    /// with an [`Error::Denied`] naming the directory when another process (normally the daemon
    /// running that console) holds it.
    pub fn try_acquire(dir: &Path) -> Result<LogLock> {
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open log lock {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(LogLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(Error::Denied {
                reason: format!(
                    "the log in {} is being written by another process (is the daemon running this \
                 console? write the note from a session with the escape `note` instead)",
                    dir.display()
                ),
            }),
            Err(TryLockError::Error(e)) => Err(Error::io(format!("lock {}", path.display()), e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Longest note (in bytes of UTF-8) a user may write into a log, through any door.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// Refuse a note longer than [`MAX_NOTE_LEN`], naming the limit.
pub fn check_note_len(text: &[u8]) -> Result<()> {
    if text.len() > MAX_NOTE_LEN {
        return Err(Error::BadSpec {
            what: "note",
            input: format!("{} bytes", text.len()),
            reason: format!("a note may be at most {MAX_NOTE_LEN} bytes"),
        });
    }
    Ok(())
}

/// Append a note (or, with `kind` [`RecordKind::Mark`], a mark) by `user` to the log in `dir`,
/// now. Takes the [`LogLock`] first, so it refuses while another process writes the log.
/// Returns the new record's sequence number.
pub fn append_note(
    dir: &Path,
    opts: LogOptions,
    kind: RecordKind,
    user: &str,
    text: &str,
) -> Result<u64> {
    if !matches!(kind, RecordKind::Note | RecordKind::Mark) {
        return Err(Error::BadSpec {
            what: "note kind",
            input: kind.name().to_owned(),
            reason: "only note and mark records can be appended this way".to_owned(),
        });
    }
    check_note_len(text.as_bytes())?;
    let _lock = LogLock::try_acquire(dir)?;
    let (mut writer, _recovery) = LogWriter::open(dir, opts)?;
    let seq = writer.next_seq();
    writer.append(&Chunk {
        seq,
        time_ns: now_ns(),
        kind,
        user: user.into(),
        offset: 0,
        bytes: text.as_bytes().to_vec().into(),
    })?;
    writer.sync()?;
    Ok(seq)
}

/// One note or mark found by [`list_notes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteEntry {
    /// Its sequence number (give it to [`show_around`]).
    pub seq: u64,
    /// When it was written, ns since the Unix epoch.
    pub time_ns: u64,
    /// Note or mark.
    pub kind: RecordKind,
    /// Who wrote it.
    pub user: String,
    /// Its text (lossy UTF-8; empty for most marks).
    pub text: String,
}

/// Every note and mark in the log in `dir` within `since`/`until` (ns), oldest first.
pub fn list_notes(dir: &Path, since: Option<u64>, until: Option<u64>) -> Result<Vec<NoteEntry>> {
    let opts = ReadOptions {
        from_seq: None,
        since,
        until,
    };
    let mut notes = Vec::new();
    for record in reader::read(dir, &opts)? {
        let r = record?;
        if matches!(r.kind, RecordKind::Note | RecordKind::Mark) {
            notes.push(NoteEntry {
                seq: r.seq,
                time_ns: r.time_ns,
                kind: r.kind,
                user: r.user,
                text: String::from_utf8_lossy(&r.bytes).into_owned(),
            });
        }
    }
    Ok(notes)
}

/// Render the log in `dir` around the record `seq` (a note, say): up to `before` rendered lines
/// that came before it, its own lines, then up to `after` lines. Returns the number of lines
/// written; an [`Error::BadSpec`] if there is no record `seq`.
pub fn show_around(
    dir: &Path,
    seq: u64,
    before: usize,
    after: usize,
    out: &mut dyn Write,
) -> Result<usize> {
    show_around_hiding(dir, seq, before, after, false, out)
}

/// [`show_around`], with typed input shown as `<input hidden>` if `hide_input` (a reader without
/// `log.read_input`).
pub fn show_around_hiding(
    dir: &Path,
    seq: u64,
    before: usize,
    after: usize,
    hide_input: bool,
    out: &mut dyn Write,
) -> Result<usize> {
    let werr = |e| Error::io("write rendered log", e);
    // Records rarely render to zero lines; start far enough back for `before` lines, plus slack.
    let back = u64::try_from(before).unwrap_or(u64::MAX).saturating_mul(2) + 16;
    let opts = ReadOptions {
        from_seq: Some(seq.saturating_sub(back).max(1)),
        since: None,
        until: None,
    };
    let mut renderer = Renderer::new().hiding_input(hide_input);
    let mut buf: Vec<u8> = Vec::new();
    let mut ring: VecDeque<Vec<u8>> = VecDeque::new();
    let mut found = false;
    let mut written = 0;
    let mut after_left = after;
    for record in reader::read(dir, &opts)? {
        let r = record?;
        if r.seq == seq {
            // Lines completed by earlier records belong before it; the target's own lines may
            // finish a partial line, which is fine: they print together.
            found = true;
            for line in ring.drain(..) {
                out.write_all(&line).map_err(werr)?;
                written += 1;
            }
            renderer.render(&r, &mut buf).map_err(werr)?;
            for line in split_lines(&buf) {
                out.write_all(line).map_err(werr)?;
                written += 1;
            }
            buf.clear();
            continue;
        }
        renderer.render(&r, &mut buf).map_err(werr)?;
        for line in split_lines(&buf) {
            if found {
                if after_left == 0 {
                    break;
                }
                out.write_all(line).map_err(werr)?;
                written += 1;
                after_left -= 1;
            } else if before > 0 {
                if ring.len() == before {
                    ring.pop_front();
                }
                ring.push_back(line.to_vec());
            }
        }
        buf.clear();
        if found && after_left == 0 {
            break;
        }
    }
    if !found {
        return Err(Error::BadSpec {
            what: "sequence number",
            input: seq.to_string(),
            reason: format!("no such record in {}", dir.display()),
        });
    }
    if after_left > 0 {
        renderer.flush_partial(&mut buf).map_err(werr)?;
        for line in split_lines(&buf).take(after_left) {
            out.write_all(line).map_err(werr)?;
            written += 1;
        }
    }
    out.flush().map_err(werr)?;
    Ok(written)
}

/// Lines of rendered text, each with its newline.
fn split_lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split_inclusive(|&b| b == b'\n')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::log::tests::{SEC, T0, chunk, small_segments};

    fn put(w: &mut LogWriter, t: u64, kind: RecordKind, user: &str, bytes: &[u8]) -> u64 {
        let seq = w.next_seq();
        w.append(&chunk(seq, t, kind, user, bytes)).unwrap();
        seq
    }

    #[test]
    fn notes_are_listed_and_jumped_to() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut w, _) = LogWriter::open(tmp.path(), small_segments()).unwrap();
        for i in 0..10 {
            put(
                &mut w,
                T0 + i * SEC,
                RecordKind::Output,
                "",
                format!("l{i}\n").as_bytes(),
            );
        }
        let note = put(
            &mut w,
            T0 + 10 * SEC,
            RecordKind::Note,
            "alice",
            b"firmware now",
        );
        let mark = put(&mut w, T0 + 11 * SEC, RecordKind::Mark, "bob", b"");
        for i in 12..20 {
            put(
                &mut w,
                T0 + i * SEC,
                RecordKind::Output,
                "",
                format!("l{i}\n").as_bytes(),
            );
        }
        let notes = list_notes(tmp.path(), None, None).unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(
            notes[0],
            NoteEntry {
                seq: note,
                time_ns: T0 + 10 * SEC,
                kind: RecordKind::Note,
                user: "alice".into(),
                text: "firmware now".into(),
            }
        );
        assert_eq!((notes[1].seq, notes[1].kind), (mark, RecordKind::Mark));
        assert_eq!(
            list_notes(tmp.path(), Some(T0 + 11 * SEC), None)
                .unwrap()
                .len(),
            1
        );

        let mut out = Vec::new();
        let n = show_around(tmp.path(), note, 2, 3, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| &l[25..]).collect();
        assert_eq!(
            lines,
            [
                "l8",
                "l9",
                "[note alice] firmware now",
                "[mark bob]",
                "l12",
                "l13"
            ]
        );
        assert_eq!(n, 6);
        assert!(matches!(
            show_around(tmp.path(), 999, 1, 1, &mut Vec::new()),
            Err(Error::BadSpec { .. })
        ));
    }

    #[test]
    fn append_note_takes_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        {
            let (mut w, _) = LogWriter::open(dir, LogOptions::default()).unwrap();
            put(&mut w, T0, RecordKind::Output, "", b"hello\n");
        }
        let seq = append_note(dir, LogOptions::default(), RecordKind::Note, "carol", "hi").unwrap();
        assert_eq!(seq, 2);
        let held = LogLock::try_acquire(dir).unwrap();
        assert!(held.path().ends_with(LOCK_FILE_NAME));
        let refused = append_note(dir, LogOptions::default(), RecordKind::Note, "carol", "x");
        assert!(matches!(refused, Err(Error::Denied { .. })), "{refused:?}");
        drop(held);
        assert_eq!(
            append_note(dir, LogOptions::default(), RecordKind::Mark, "carol", "").unwrap(),
            3
        );
        assert!(append_note(dir, LogOptions::default(), RecordKind::Input, "c", "x").is_err());
        let notes = list_notes(dir, None, None).unwrap();
        assert_eq!(notes.iter().map(|n| n.seq).collect::<Vec<_>>(), [2, 3]);
        assert!(crate::log::verify(dir).unwrap().is_ok());
    }
}
