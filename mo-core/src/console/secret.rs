//! Keeping typed passwords out of the record log (sans-I/O).
//!
//! A [`SecretGuard`] watches a console's output for a password prompt (the classifier's
//! `password` pattern, [`crate::automation::classify::PROMPT_PATTERNS`], on the last output line
//! with ANSI sequences removed; a prompt followed only by `*` masking still counts). Input typed
//! while such a prompt is the last thing the device said is held back from the log until the line
//! ends (CR or LF), then recorded as one input record whose payload is the text
//! `<redacted N bytes>` followed by the line end and anything typed after it — the secret itself
//! never reaches the log, the hub or any viewer. The bytes still go to the device, unchanged.
//!
//! Echo decides: a device that echoes the typed bytes back has echo on, so the secret is in its
//! output anyway and the held input is recorded as typed. Output that is not the echo and ends the
//! prompt (a new line, a message) flushes what was held as redacted.
//!
//! ```
//! use mo_core::console::{SecretGuard, redacted};
//!
//! let mut guard = SecretGuard::new();
//! guard.output(b"web01 login: root\r\nPassword: ");
//! assert_eq!(guard.input(b"hunter2"), None); // held, nothing recorded yet
//! assert_eq!(guard.input(b"\r").as_deref(), Some(&b"<redacted 7 bytes>\r"[..]));
//! assert_eq!(redacted(7), "<redacted 7 bytes>");
//! ```

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;

use crate::automation::classify::{Location, PROMPT_PATTERNS};
use crate::scan::{AnsiStripper, Piece};

/// The last output line kept for prompt detection.
const LINE_MAX: usize = 256;

/// The payload that stands for `n` redacted input bytes: `<redacted N bytes>` (`byte` for 1).
pub fn redacted(n: usize) -> String {
    if n == 1 {
        "<redacted 1 byte>".to_string()
    } else {
        format!("<redacted {n} bytes>")
    }
}

fn password_prompt() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        let source = PROMPT_PATTERNS
            .iter()
            .find(|p| p.location == Location::Password)?
            .regex;
        // The classifier's pattern ends in `:\s*$`; a prompt masking with `*` is still one.
        let masked = source.strip_suffix(r"\s*$").unwrap_or(source);
        Regex::new(&format!(r"{masked}\s*\**$")).ok()
    })
    .as_ref()
}

/// Watches output for password prompts and redacts the input typed at them (see the module).
#[derive(Debug, Default)]
pub struct SecretGuard {
    stripper: AnsiStripper,
    /// The current output line, ANSI-stripped (its last [`LINE_MAX`] bytes).
    line: Vec<u8>,
    /// The last output line is a password prompt: input is a secret until the line ends.
    armed: bool,
    /// Secret bytes typed and not yet recorded.
    held: BytesMut,
}

impl SecretGuard {
    /// A guard that has seen no output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether input typed now would be treated as a secret.
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Whether typed secret bytes are held, not yet recorded.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Feed device output. Returns what held input must be recorded *before* this output:
    /// the typed bytes if the output is their echo, else the redaction if the prompt is gone.
    pub fn output(&mut self, data: &[u8]) -> Option<Bytes> {
        let last_line = self.last_line_start(data);
        self.output_from(data, last_line)
    }

    /// [`output`](Self::output) with where the last line of `data` starts when that is certain
    /// (`None`: every byte is stripped; the tests' reference).
    fn output_from(&mut self, data: &[u8], last_line: Option<usize>) -> Option<Bytes> {
        let mut flush = None;
        if !self.held.is_empty() {
            let n = self.held.len().min(data.len());
            if n > 0 && data[..n] == self.held[..n] {
                // The device echoes: not a secret (its output shows it anyway).
                flush = Some(std::mem::take(&mut self.held).freeze());
                self.armed = false;
            }
        }
        let mut line_ended = false;
        // Only the last line matters: when where it starts is certain, what comes before it is
        // not stripped (a flood of output costs a `memrchr` and a `memchr`, not a strip).
        let mut rest = data;
        if let Some(start) = last_line {
            self.line.clear();
            line_ended = true;
            rest = data.get(start..).unwrap_or_default();
        }
        let line = &mut self.line;
        self.stripper.feed(rest, |piece| match piece {
            Piece::Text(text) => line.extend_from_slice(text),
            Piece::LineEnd => {
                line.clear();
                line_ended = true;
            }
        });
        if self.line.len() > LINE_MAX {
            self.line.drain(..self.line.len() - LINE_MAX);
        }
        let prompt = password_prompt().is_some_and(|re| re.is_match(&self.line));
        if flush.is_none() && !self.held.is_empty() && (line_ended || !prompt) {
            flush = Some(self.take_redacted(&[]));
            self.armed = false;
        }
        if flush.is_none() || prompt {
            self.armed = prompt;
        }
        flush
    }

    /// Where the last line of `data` starts when that is certain without stripping what comes
    /// before it: the stripper is in the ground state and no ESC comes before the last CR or LF,
    /// so the stripper stays in the ground state up to that CR or LF, which ends a line (only a
    /// string sequence, entered by ESC, keeps CR and LF from ending lines).
    fn last_line_start(&self, data: &[u8]) -> Option<usize> {
        if self.stripper.in_sequence() {
            return None;
        }
        let end = memchr::memrchr2(b'\r', b'\n', data)?;
        let before = data.get(..end).unwrap_or_default();
        memchr::memchr(0x1b, before).is_none().then_some(end + 1)
    }

    /// Feed input typed by a viewer. Returns what to record for it now (`None`: held until its
    /// line ends or the device answers).
    pub fn input(&mut self, data: &[u8]) -> Option<Bytes> {
        if !self.armed {
            return Some(Bytes::copy_from_slice(data));
        }
        match data.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(end) => {
                self.held.extend_from_slice(&data[..end]);
                self.armed = false;
                Some(self.take_redacted(&data[end..]))
            }
            None => {
                self.held.extend_from_slice(data);
                None
            }
        }
    }

    /// What is still held, redacted (for a console that goes down or stops); `None` if nothing.
    pub fn flush(&mut self) -> Option<Bytes> {
        self.armed = false;
        (!self.held.is_empty()).then(|| self.take_redacted(&[]))
    }

    /// Forget the current line and anything held (a new link starts afresh).
    pub fn reset(&mut self) -> Option<Bytes> {
        let held = self.flush();
        self.line.clear();
        self.stripper = AnsiStripper::new();
        held
    }

    fn take_redacted(&mut self, rest: &[u8]) -> Bytes {
        let n = std::mem::take(&mut self.held).len();
        let mut out = BytesMut::from(redacted(n).as_bytes());
        out.extend_from_slice(rest);
        out.freeze()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn typed(guard: &mut SecretGuard, keys: &[u8]) -> Vec<Bytes> {
        keys.chunks(1).filter_map(|k| guard.input(k)).collect()
    }

    #[test]
    fn keystrokes_at_a_password_prompt_become_one_redaction() {
        let mut g = SecretGuard::new();
        g.output(b"\x1b[1mPassword:\x1b[0m ");
        assert!(g.armed());
        let records = typed(&mut g, b"s3cret!!!\r");
        assert_eq!(records, vec![Bytes::from_static(b"<redacted 9 bytes>\r")]);
        assert!(!g.armed());
        // After Enter, typing is recorded again (the prompt must come back to re-arm).
        assert_eq!(g.input(b"ls").as_deref(), Some(&b"ls"[..]));
    }

    #[test]
    fn an_echoing_device_gets_its_input_recorded_as_typed() {
        let mut g = SecretGuard::new();
        g.output(b"Password: ");
        assert_eq!(g.input(b"a"), None);
        assert_eq!(g.output(b"a").as_deref(), Some(&b"a"[..]));
        assert_eq!(g.input(b"b").as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn masking_with_stars_stays_secret() {
        let mut g = SecretGuard::new();
        g.output(b"Enter passphrase for key: ");
        assert_eq!(g.input(b"a"), None);
        assert_eq!(g.output(b"*"), None);
        assert_eq!(g.input(b"b"), None);
        assert_eq!(g.output(b"*"), None);
        assert_eq!(
            g.input(b"\rnext").as_deref(),
            Some(&b"<redacted 2 bytes>\rnext"[..])
        );
    }

    #[test]
    fn other_output_flushes_what_was_held_as_redacted() {
        let mut g = SecretGuard::new();
        g.output(b"Password: ");
        assert_eq!(g.input(b"abc"), None);
        assert_eq!(
            g.output(b"\r\nLogin timed out\r\nlogin: ").as_deref(),
            Some(&b"<redacted 3 bytes>"[..])
        );
        assert!(!g.armed());
        assert_eq!(g.input(b"root").as_deref(), Some(&b"root"[..]));
        assert_eq!(g.flush(), None);
    }

    /// The shortcut to the last line decides as stripping every byte does: random output of
    /// text, line ends, escape and string sequences (BEL, ST, CAN, unfinished ones) and prompts,
    /// cut anywhere, with typing in between.
    #[test]
    fn the_last_line_shortcut_decides_as_stripping_everything() {
        use rand::{Rng, SeedableRng};
        const PIECES: &[&[u8]] = &[
            b"plain text ",
            b"\r\n",
            b"\n",
            b"\r",
            b"\x1b[1m",
            b"\x1b[",
            b"\x1b]0;title\r\nwith a line end\x07",
            b"\x1b]2;unfinished ",
            b"\x1bP",
            b"\x1b\\",
            b"\x18",
            b"\x1b(B",
            b"Password: ",
            b"login: ",
            b"*",
            b"\x07",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        for _ in 0..2000 {
            let mut fast = SecretGuard::new();
            let mut reference = SecretGuard::new();
            for _ in 0..rng.random_range(1..12) {
                let mut out = Vec::new();
                for _ in 0..rng.random_range(0..8) {
                    out.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())]);
                }
                let cut = rng.random_range(0..=out.len());
                for part in [&out[..cut], &out[cut..]] {
                    assert_eq!(
                        fast.output(part),
                        reference.output_from(part, None),
                        "{out:?}"
                    );
                    assert_eq!(fast.armed(), reference.armed(), "{out:?}");
                    assert_eq!(fast.line, reference.line, "{out:?}");
                    assert_eq!(
                        fast.stripper.in_sequence(),
                        reference.stripper.in_sequence(),
                        "{out:?}"
                    );
                }
                if rng.random_bool(0.5) {
                    let keys: &[u8] = if rng.random_bool(0.5) { b"pw" } else { b"x\r" };
                    assert_eq!(fast.input(keys), reference.input(keys));
                }
            }
        }
    }

    #[test]
    fn no_prompt_no_redaction_and_a_stop_flushes() {
        let mut g = SecretGuard::new();
        g.output(b"alice@web01:~$ ");
        assert_eq!(
            g.input(b"echo password:").as_deref(),
            Some(&b"echo password:"[..])
        );
        g.output(b"\r\nPassword for alice: ");
        assert_eq!(g.input(b"x"), None);
        assert_eq!(g.flush().as_deref(), Some(&b"<redacted 1 byte>"[..]));
    }
}
