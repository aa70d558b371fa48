//! Rendering records as readable text with a timestamp on every line:
//!
//! ```text
//! 2026-11-22T10:00:00.123Z web01 login:
//! 2026-11-22T10:00:01.456Z <alice> ls -l
//! 2026-11-22T10:00:02.000Z [notice alice] attached read-write
//! 2026-11-22T10:00:03.000Z [note alice] rebooting for the firmware update
//! ```
//!
//! Output is split into lines the way a terminal would show them: ANSI escape sequences are
//! removed, a carriage return followed by more text overwrites the line, backspace moves back, and
//! other control characters are shown in caret notation (`^C`). Output lines that span several
//! records carry the time of their first byte. Input is shown per user as typed lines: Enter ends a
//! line, backspace and DEL erase, other keys such as Tab or arrows appear in caret notation.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::log::format::Record;
use crate::log::timespec::push_timestamp;
use crate::record::RecordKind;

/// Longest line kept before it is written out in pieces.
const MAX_LINE: usize = 64 * 1024;
/// Longest escape sequence or control string tracked before giving up on it.
const MAX_ESCAPE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    Ground,
    /// After ESC.
    Escape,
    /// ESC followed by intermediate bytes.
    Intermediate,
    /// Control Sequence Introducer (`ESC [`).
    Csi,
    /// A control string (OSC, DCS, …) up to BEL or `ESC \`.
    Str,
    /// ESC inside a control string.
    StrEscape,
}

/// One line being assembled.
#[derive(Debug)]
struct Line {
    buf: Vec<u8>,
    cursor: usize,
    start_ns: u64,
    started: bool,
    pending_cr: bool,
    esc: Esc,
    esc_len: usize,
    csi_params: Vec<u8>,
    /// With input hidden: this line already shows [`INPUT_HIDDEN`].
    hidden: bool,
}

/// What a reader without `log.read_input` sees in place of a line of typed input.
pub const INPUT_HIDDEN: &str = "<input hidden>";

/// `bytes` of input with everything but line ends replaced by one [`INPUT_HIDDEN`] per line.
fn hide_input(bytes: &[u8], hidden: &mut bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        if b == b'\r' || b == b'\n' {
            out.push(b);
            *hidden = false;
        } else if !*hidden {
            out.extend_from_slice(INPUT_HIDDEN.as_bytes());
            *hidden = true;
        }
    }
    out
}

impl Line {
    fn new() -> Self {
        Line {
            buf: Vec::new(),
            cursor: 0,
            start_ns: 0,
            started: false,
            pending_cr: false,
            esc: Esc::Ground,
            esc_len: 0,
            csi_params: Vec::new(),
            hidden: false,
        }
    }

    fn begin(&mut self, time_ns: u64) {
        if !self.started {
            self.started = true;
            self.start_ns = time_ns;
        }
    }

    /// Write the line (if it was started) and reset it.
    fn emit(&mut self, prefix: &str, ts: &mut Ts, out: &mut dyn Write) -> io::Result<()> {
        if self.started {
            write_line(
                out,
                ts,
                self.start_ns,
                prefix,
                &match std::str::from_utf8(&self.buf) {
                    Ok(text) => Cow::Borrowed(text),
                    Err(_) => String::from_utf8_lossy(&self.buf),
                },
            )?;
        }
        self.buf.clear();
        self.cursor = 0;
        self.started = false;
        Ok(())
    }

    /// Put one byte at the cursor, overwriting the character there (UTF-8 aware).
    fn put(&mut self, b: u8) {
        if self.cursor >= self.buf.len() {
            self.buf.push(b);
            self.cursor = self.buf.len();
        } else if is_continuation(b) {
            self.buf.insert(self.cursor, b);
            self.cursor += 1;
        } else {
            let mut end = self.cursor + 1;
            while self.buf.get(end).is_some_and(|&c| is_continuation(c)) {
                end += 1;
            }
            self.buf.splice(self.cursor..end, [b]);
            self.cursor += 1;
        }
    }

    fn put_caret(&mut self, c: u8) {
        self.put(b'^');
        self.put(if c == 0x7f { b'?' } else { c ^ 0x40 });
    }

    fn back(&mut self) {
        if self.cursor > self.buf.len() {
            self.cursor = self.buf.len();
        }
        while self.cursor > 0 {
            self.cursor -= 1;
            if !self
                .buf
                .get(self.cursor)
                .is_some_and(|&c| is_continuation(c))
            {
                break;
            }
        }
    }

    /// Feed device output.
    fn feed_output(
        &mut self,
        time_ns: u64,
        bytes: &[u8],
        ts: &mut Ts,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            i += 1;
            if self.esc != Esc::Ground {
                self.escape_byte(b);
                continue;
            }
            // Fast path: printable text appended at the end of the line, as most output is.
            if !self.pending_cr && self.cursor >= self.buf.len() && is_plain(b) {
                let room = MAX_LINE.saturating_sub(self.buf.len()).max(1);
                let rest = bytes.get(i - 1..).unwrap_or_default();
                let run = plain_run(rest.get(..room).unwrap_or(rest)).max(1);
                self.begin(time_ns);
                self.buf
                    .extend_from_slice(rest.get(..run).unwrap_or_default());
                self.cursor = self.buf.len();
                i += run - 1;
                if self.buf.len() >= MAX_LINE {
                    self.emit("", ts, out)?;
                }
                continue;
            }
            if self.pending_cr {
                self.pending_cr = false;
                match b {
                    b'\n' => {
                        self.emit("", ts, out)?;
                        continue;
                    }
                    0 => {
                        self.cursor = 0;
                        continue;
                    }
                    _ => self.cursor = 0,
                }
            }
            self.begin(time_ns);
            match b {
                b'\n' => self.emit("", ts, out)?,
                b'\r' => self.pending_cr = true,
                0x08 => self.back(),
                0x1b => {
                    self.esc = Esc::Escape;
                    self.esc_len = 0;
                }
                b'\t' => self.put(b),
                0x00 | 0x07 | 0x0e | 0x0f | 0x11 | 0x13 | 0x7f => {}
                c if c < 0x20 => self.put_caret(c),
                _ => self.put(b),
            }
            if self.buf.len() >= MAX_LINE {
                self.emit("", ts, out)?;
            }
        }
        Ok(())
    }

    /// Consume one byte of an escape sequence (removed from the output; `ESC [ K` erases).
    fn escape_byte(&mut self, b: u8) {
        self.esc_len += 1;
        if self.esc_len > MAX_ESCAPE || b == 0x18 || b == 0x1a {
            self.esc = Esc::Ground;
            return;
        }
        self.esc = match self.esc {
            Esc::Escape => match b {
                b'[' => {
                    self.csi_params.clear();
                    Esc::Csi
                }
                b']' | b'P' | b'X' | b'^' | b'_' => Esc::Str,
                0x20..=0x2f => Esc::Intermediate,
                _ => Esc::Ground,
            },
            Esc::Intermediate => match b {
                0x20..=0x2f => Esc::Intermediate,
                _ => Esc::Ground,
            },
            Esc::Csi => match b {
                0x40..=0x7e => {
                    if b == b'K' {
                        match self.csi_params.as_slice() {
                            b"" | b"0" => self.buf.truncate(self.cursor.min(self.buf.len())),
                            b"2" => {
                                self.buf.clear();
                                self.cursor = 0;
                            }
                            _ => {}
                        }
                    }
                    Esc::Ground
                }
                _ => {
                    if self.csi_params.len() < 16 {
                        self.csi_params.push(b);
                    }
                    Esc::Csi
                }
            },
            Esc::Str => match b {
                0x07 => Esc::Ground,
                0x1b => Esc::StrEscape,
                _ => Esc::Str,
            },
            Esc::StrEscape => match b {
                0x1b => Esc::StrEscape,
                b'\\' => Esc::Ground,
                _ => Esc::Str,
            },
            Esc::Ground => Esc::Ground,
        };
    }

    /// Feed keystrokes of one user.
    fn feed_input(
        &mut self,
        time_ns: u64,
        bytes: &[u8],
        prefix: &str,
        ts: &mut Ts,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        for &b in bytes {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' || b == 0 {
                    continue;
                }
            }
            self.begin(time_ns);
            match b {
                b'\r' => {
                    self.emit(prefix, ts, out)?;
                    self.pending_cr = true;
                }
                b'\n' => self.emit(prefix, ts, out)?,
                0x08 | 0x7f => {
                    self.cursor = self.buf.len();
                    self.back();
                    self.buf.truncate(self.cursor);
                }
                c if c < 0x20 => self.put_caret(c),
                _ => self.put(b),
            }
            if self.buf.len() >= MAX_LINE {
                self.emit(prefix, ts, out)?;
            }
        }
        Ok(())
    }
}

/// A byte that [`Line::put`] just appends when the cursor is at the end of the line.
fn is_plain(b: u8) -> bool {
    b >= 0x20 && b != 0x7f
}

/// How many bytes at the start of `s` are plain ([`is_plain`]), tested eight at a time.
fn plain_run(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    let mut n = 0;
    for word in words.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        // A high bit set for some byte below 0x20, and for some byte equal to 0x7f (exact as a
        // yes/no answer; which byte it is, the byte loop below finds).
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let del = x ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del & HIGH;
        if below_space | del != 0 {
            break;
        }
        n += 8;
    }
    let rest = s.get(n..).unwrap_or_default();
    n + rest
        .iter()
        .position(|&c| !is_plain(c))
        .unwrap_or(rest.len())
}

fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// The line being written, and the formatted timestamp of the last second seen: lines of the same
/// second (nearly all of them) only format their milliseconds.
#[derive(Debug, Default)]
struct Ts {
    buf: String,
    /// `time_ns / 1e9` that `second` was formatted for.
    sec: Option<u64>,
    /// `2026-11-22T10:00:00.` of that second.
    second: String,
}

impl Ts {
    fn start(&mut self, time_ns: u64) {
        self.buf.clear();
        let sec = time_ns / 1_000_000_000;
        if self.sec != Some(sec) {
            self.second.clear();
            push_timestamp(&mut self.second, time_ns);
            // `YYYY-MM-DDTHH:MM:SS.mmmZ`: keep everything before the milliseconds.
            if self.second.len() == 24 && self.second.ends_with('Z') {
                self.second.truncate(20);
                self.sec = Some(sec);
            } else {
                // Not the usual form (a year beyond 9999): format every time.
                self.sec = None;
                self.buf.push_str(&self.second);
                return;
            }
        }
        self.buf.push_str(&self.second);
        let ms = (time_ns / 1_000_000 % 1000) as u16;
        self.buf.push(char::from(b'0' + (ms / 100) as u8));
        self.buf.push(char::from(b'0' + (ms / 10 % 10) as u8));
        self.buf.push(char::from(b'0' + (ms % 10) as u8));
        self.buf.push('Z');
    }
}

fn write_line(
    out: &mut dyn Write,
    ts: &mut Ts,
    time_ns: u64,
    prefix: &str,
    text: &str,
) -> io::Result<()> {
    ts.start(time_ns);
    let ts = &mut ts.buf;
    if !prefix.is_empty() || !text.is_empty() {
        ts.push(' ');
        ts.push_str(prefix);
        if !prefix.is_empty() && !text.is_empty() {
            ts.push(' ');
        }
        ts.push_str(text);
    }
    ts.push('\n');
    out.write_all(ts.as_bytes())
}

/// Turns records into timestamped text lines. Keeps partial lines between records, so feed it the
/// records of one device in order and call [`Renderer::flush_partial`] at the end.
#[derive(Debug)]
pub struct Renderer {
    output: Line,
    /// Keystroke lines per user, with their `<user>` prefix.
    inputs: Vec<(String, Line)>,
    ts: Ts,
    /// Show typed input as [`INPUT_HIDDEN`].
    hide_input: bool,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    /// A renderer with no partial lines.
    pub fn new() -> Self {
        Renderer {
            output: Line::new(),
            inputs: Vec::new(),
            ts: Ts::default(),
            hide_input: false,
        }
    }

    /// Whether typed input is shown as [`INPUT_HIDDEN`] (for readers without `log.read_input`).
    pub fn hiding_input(mut self, hide: bool) -> Self {
        self.hide_input = hide;
        self
    }

    /// Render one record.
    pub fn render(&mut self, record: &Record, out: &mut dyn Write) -> io::Result<()> {
        self.render_parts(
            record.time_ns,
            record.kind,
            &record.user,
            &record.bytes,
            out,
        )
    }

    /// Render one record given by its parts.
    pub fn render_parts(
        &mut self,
        time_ns: u64,
        kind: RecordKind,
        user: &str,
        bytes: &[u8],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        match kind {
            RecordKind::Output => self.output.feed_output(time_ns, bytes, &mut self.ts, out),
            RecordKind::Input => {
                let i = match self.inputs.iter().position(|(u, _)| u == user) {
                    Some(i) => i,
                    None => {
                        self.inputs.push((user.to_owned(), Line::new()));
                        self.inputs.len() - 1
                    }
                };
                let prefix = format!("<{}>", if user.is_empty() { "?" } else { user });
                match self.inputs.get_mut(i) {
                    Some((_, line)) if self.hide_input => {
                        let bytes = hide_input(bytes, &mut line.hidden);
                        line.feed_input(time_ns, &bytes, &prefix, &mut self.ts, out)
                    }
                    Some((_, line)) => line.feed_input(time_ns, bytes, &prefix, &mut self.ts, out),
                    None => Ok(()),
                }
            }
            // What was lost broke every line in progress: end them before the gap, so that the
            // text after it does not read as their continuation.
            RecordKind::Gap => {
                self.flush_partial(out)?;
                self.render_text(time_ns, kind, user, bytes, out)
            }
            _ => self.render_text(time_ns, kind, user, bytes, out),
        }
    }

    /// A notice, note, event, power action, mark or control operation: `[kind user] text`.
    fn render_text(
        &mut self,
        time_ns: u64,
        kind: RecordKind,
        user: &str,
        bytes: &[u8],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let label = if user.is_empty() {
            format!("[{}]", kind.name())
        } else {
            format!("[{} {}]", kind.name(), sanitize(user))
        };
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return write_line(out, &mut self.ts, time_ns, &label, "");
        }
        for line in text.split('\n') {
            let line = sanitize(line.trim_end_matches('\r'));
            write_line(out, &mut self.ts, time_ns, &label, &line)?;
        }
        Ok(())
    }

    /// Write out lines that have not ended yet (a prompt, a half-typed command). Call it at the
    /// end, or when a followed log goes quiet.
    pub fn flush_partial(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.output.pending_cr = false;
        self.output.emit("", &mut self.ts, out)?;
        for (user, line) in &mut self.inputs {
            let prefix = format!("<{}>", if user.is_empty() { "?" } else { user });
            line.emit(&prefix, &mut self.ts, out)?;
        }
        Ok(())
    }
}

/// Control characters in caret notation, everything else unchanged.
fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from((c as u8) ^ 0x40));
            }
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
