//! `mo log export --asciicast`: a device's log as an asciicast v2 recording, playable with
//! `asciinema play` and `asciinema cat`.
//!
//! The file is the v2 header line (`version`, `width`, `height`, `timestamp` of the first
//! exported record, `title`, and `env`) followed by one JSON array per event,
//! `[seconds, code, data]`:
//!
//! - device output → `"o"` events with the bytes (raw, escape sequences included, so a player
//!   shows what the terminal showed; UTF-8 sequences split across records are joined, invalid
//!   bytes become U+FFFD);
//! - keystrokes → `"i"` events with the bytes typed. **Who typed them**: every `"i"` event is
//!   preceded, whenever the typing user differs from the one of the previous `"i"` event, by a
//!   marker event `[t, "m", "input <user>"]` at the same time. So the user of an `"i"` event is
//!   the label after `input ` of the last such marker before it. (Events stay three-element
//!   arrays as the format requires; `asciinema play` unpacks exactly three.)
//! - notes, marks, notices, events, power actions and control operations → markers
//!   `[t, "m", "<kind> <user>: <text>"]`.
//!
//! Times are seconds since the first exported record, with microsecond precision; they never go
//! back (a record written after the wall clock was set back gets its predecessor's time).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::log::reader::{self, ReadOptions};
use crate::record::RecordKind;

/// How [`export_asciicast`] writes the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsciicastOptions {
    /// Terminal columns in the header (the log does not record the size; default 80).
    pub width: u16,
    /// Terminal rows in the header (default 24).
    pub height: u16,
    /// The header's `title` (normally the device name).
    pub title: Option<String>,
    /// Only records at or after this time (ns since the Unix epoch).
    pub since: Option<u64>,
    /// Only records before this time (ns since the Unix epoch).
    pub until: Option<u64>,
    /// Write typed input as `<input hidden>` (a reader without `log.read_input`).
    pub hide_input: bool,
}

impl Default for AsciicastOptions {
    fn default() -> Self {
        AsciicastOptions {
            width: 80,
            height: 24,
            title: None,
            since: None,
            until: None,
            hide_input: false,
        }
    }
}

/// Write the log in `dir` as an asciicast v2 recording to `out`; returns the number of events.
pub fn export_asciicast(dir: &Path, opts: &AsciicastOptions, out: &mut dyn Write) -> Result<u64> {
    let werr = |e| Error::io("write asciicast", e);
    let read_opts = ReadOptions {
        from_seq: None,
        since: opts.since,
        until: opts.until,
    };
    let mut enc = Encoder::default();
    let mut line = String::new();
    let mut events = 0u64;
    let mut start: Option<u64> = None;
    let mut last = 0u64;
    for record in reader::read(dir, &read_opts)? {
        let r = record?;
        let t0 = *start.get_or_insert_with(|| {
            line.clear();
            header(&mut line, opts, r.time_ns);
            r.time_ns
        });
        if !line.is_empty() {
            out.write_all(line.as_bytes()).map_err(werr)?;
            line.clear();
        }
        // Event times never go back, even if the wall clock did.
        let secs = r.time_ns.saturating_sub(t0).max(last);
        last = secs;
        match r.kind {
            RecordKind::Output => {
                let text = enc.output.take_text(&r.bytes);
                if !text.is_empty() {
                    event(&mut line, secs, "o", &text);
                    events += 1;
                }
            }
            RecordKind::Input => {
                if enc.last_input_user.as_deref() != Some(r.user.as_str()) {
                    event(&mut line, secs, "m", &format!("input {}", r.user));
                    events += 1;
                    enc.last_input_user = Some(r.user.clone());
                }
                let text = if opts.hide_input {
                    crate::log::render::INPUT_HIDDEN.into()
                } else {
                    String::from_utf8_lossy(&r.bytes)
                };
                event(&mut line, secs, "i", &text);
                events += 1;
            }
            kind => {
                let text = String::from_utf8_lossy(&r.bytes);
                let label = match (r.user.is_empty(), text.is_empty()) {
                    (true, _) => format!("{}: {}", kind.name(), text),
                    (false, true) => format!("{} {}", kind.name(), r.user),
                    (false, false) => format!("{} {}: {}", kind.name(), r.user, text),
                };
                event(&mut line, secs, "m", label.trim_end());
                events += 1;
            }
        }
        out.write_all(line.as_bytes()).map_err(werr)?;
        line.clear();
    }
    if start.is_none() {
        header(&mut line, opts, crate::record::now_ns());
        out.write_all(line.as_bytes()).map_err(werr)?;
    }
    out.flush().map_err(werr)?;
    Ok(events)
}

#[derive(Debug, Default)]
struct Encoder {
    output: Utf8Carry,
    last_input_user: Option<String>,
}

/// Joins UTF-8 sequences that records split.
#[derive(Debug, Default)]
struct Utf8Carry {
    carry: Vec<u8>,
}

impl Utf8Carry {
    fn take_text(&mut self, bytes: &[u8]) -> String {
        let mut all = std::mem::take(&mut self.carry);
        all.extend_from_slice(bytes);
        // Keep back an incomplete sequence at the end (at most 3 bytes).
        let keep = incomplete_tail(&all);
        self.carry = all.split_off(all.len() - keep);
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// Length of a possibly incomplete UTF-8 sequence at the end of `b`.
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let Some(&c) = b.get(b.len() - back) else {
            return 0;
        };
        if c & 0xc0 == 0x80 {
            continue;
        }
        let need = match c {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

fn header(line: &mut String, opts: &AsciicastOptions, time_ns: u64) {
    let _ = write!(
        line,
        "{{\"version\": 2, \"width\": {}, \"height\": {}, \"timestamp\": {}",
        opts.width.max(1),
        opts.height.max(1),
        time_ns / 1_000_000_000
    );
    if let Some(title) = &opts.title {
        line.push_str(", \"title\": ");
        json_string(line, title);
    }
    line.push_str(", \"env\": {\"TERM\": \"xterm-256color\"}}\n");
}

fn event(line: &mut String, ns: u64, code: &str, data: &str) {
    let _ = write!(
        line,
        "[{}.{:06}, \"{code}\", ",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1000
    );
    json_string(line, data);
    line.push_str("]\n");
}

/// `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::log::LogWriter;
    use crate::log::tests::{SEC, T0, chunk, small_segments};
    use crate::record::RecordSink;

    fn put(w: &mut LogWriter, t: u64, kind: RecordKind, user: &str, bytes: &[u8]) {
        let seq = w.next_seq();
        w.append(&chunk(seq, t, kind, user, bytes)).unwrap();
    }

    fn export(dir: &Path, opts: &AsciicastOptions) -> String {
        let mut out = Vec::new();
        export_asciicast(dir, opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn events_carry_output_input_users_and_notes() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut w, _) = LogWriter::open(tmp.path(), small_segments()).unwrap();
        put(
            &mut w,
            T0,
            RecordKind::Output,
            "",
            b"login: \x1b[1m\"x\"\xc3",
        );
        put(&mut w, T0 + SEC / 2, RecordKind::Output, "", b"\xa9\r\n");
        put(&mut w, T0 + SEC, RecordKind::Input, "alice", b"ls\r");
        put(&mut w, T0 + SEC + 1000, RecordKind::Input, "alice", b"\x03");
        put(&mut w, T0 + 2 * SEC, RecordKind::Input, "bob", b"id\r");
        put(&mut w, T0 + 3 * SEC, RecordKind::Note, "bob", b"done\n");
        put(&mut w, T0 + 4 * SEC, RecordKind::Mark, "bob", b"");
        let opts = AsciicastOptions {
            title: Some("web\"01".into()),
            ..AsciicastOptions::default()
        };
        let text = export(tmp.path(), &opts);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": 1795341600, \
                 \"title\": \"web\\\"01\", \"env\": {\"TERM\": \"xterm-256color\"}}",
                "[0.000000, \"o\", \"login: \\u001b[1m\\\"x\\\"\"]",
                "[0.500000, \"o\", \"é\\r\\n\"]",
                "[1.000000, \"m\", \"input alice\"]",
                "[1.000000, \"i\", \"ls\\r\"]",
                "[1.000001, \"i\", \"\\u0003\"]",
                "[2.000000, \"m\", \"input bob\"]",
                "[2.000000, \"i\", \"id\\r\"]",
                "[3.000000, \"m\", \"note bob: done\"]",
                "[4.000000, \"m\", \"mark bob\"]",
            ]
        );
        let later = AsciicastOptions {
            since: Some(T0 + 2 * SEC),
            ..AsciicastOptions::default()
        };
        let text = export(tmp.path(), &later);
        assert!(text.contains("\"timestamp\": 1795341602"), "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("[0.000000, \"m\", \"input bob\"]")
        );
    }

    #[test]
    fn empty_log_is_a_header_only() {
        let tmp = tempfile::tempdir().unwrap();
        let text = export(tmp.path(), &AsciicastOptions::default());
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("{\"version\": 2,"));
    }

    #[test]
    fn utf8_carry_never_panics_and_keeps_every_char() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xa5c11);
        for _ in 0..2000 {
            let s: String = (0..rng.random_range(0..20))
                .map(|_| ['a', 'é', '€', '😀', '\n'][rng.random_range(0..5)])
                .collect();
            let bytes = s.as_bytes();
            let mut carry = Utf8Carry::default();
            let mut got = String::new();
            let mut i = 0;
            while i < bytes.len() {
                let j = (i + rng.random_range(1..5)).min(bytes.len());
                got.push_str(&carry.take_text(&bytes[i..j]));
                i = j;
            }
            assert_eq!(got, s);
            let junk: Vec<u8> = (0..rng.random_range(0..12)).map(|_| rng.random()).collect();
            let _ = carry.take_text(&junk);
        }
    }
}
