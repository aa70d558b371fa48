//! Expect on a console session: wait for one of several patterns in the device's output.
//!
//! An [`Expecter`] reads a [`Session`] and keeps the output it has not yet consumed, ANSI-stripped
//! by the scanner's [`AnsiStripper`] (the one matcher of mo-core), with every run of line ends
//! (CR, LF, CR LF, blank lines) turned into one `\n`. [`Expecter::expect`] searches that text for
//! its patterns each time output arrives, so a pattern split across reads matches, and a partial
//! line — a prompt such as `login: ` that never ends in a newline — matches as soon as it is there.
//! A match consumes the text up to its end, as in `pexpect`.
//!
//! If the session fell behind and lost output, the loss is not hidden: [`ExpectMatch::missed`] and the
//! timeout error say how many bytes went by unseen.

use std::fmt;
use std::time::Duration;

use regex::Regex;

use crate::console::{Session, ViewerEvent};
use crate::error::{Error, Result};
use crate::record::RecordKind;
use crate::scan::{AnsiStripper, Piece};

/// Unconsumed output kept by default, in bytes; older text is dropped when more arrives.
pub const DEFAULT_MAX_BUFFER: usize = 64 * 1024;
/// Recent output kept for [`Expecter::recent`] (the classifier's input), in bytes.
pub const RECENT_BYTES: usize = 4096;

/// What to wait for: a regular expression or a literal string.
#[derive(Debug, Clone)]
pub struct ExpectPattern {
    regex: Regex,
    source: String,
    literal: bool,
}

impl ExpectPattern {
    /// A regular expression (Rust `regex` syntax). Fails with [`Error::BadSpec`] if it does not
    /// compile.
    pub fn regex(source: &str) -> Result<ExpectPattern> {
        let regex = Regex::new(source).map_err(|e| Error::BadSpec {
            what: "expect pattern",
            input: source.to_string(),
            reason: e.to_string(),
        })?;
        Ok(ExpectPattern {
            regex,
            source: source.to_string(),
            literal: false,
        })
    }

    /// A literal string, matched exactly. Fails only if the text is too long to compile.
    pub fn literal(text: &str) -> Result<ExpectPattern> {
        let regex = Regex::new(&regex::escape(text)).map_err(|e| Error::BadSpec {
            what: "expect literal",
            input: tail_chars(text, 80).to_string(),
            reason: e.to_string(),
        })?;
        Ok(ExpectPattern {
            regex,
            source: text.to_string(),
            literal: true,
        })
    }

    /// The pattern as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled expression.
    pub fn as_regex(&self) -> &Regex {
        &self.regex
    }
}

impl fmt::Display for ExpectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.literal {
            write!(f, "{:?}", self.source)
        } else {
            write!(f, "/{}/", self.source)
        }
    }
}

/// What [`Expecter::expect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectMatch {
    /// Which of the patterns matched (its index in the slice given).
    pub index: usize,
    /// The text it matched.
    pub matched: String,
    /// The unconsumed output before the match.
    pub before: String,
    /// The pattern's capture groups (group 1 first); `None` for a group that did not take part.
    pub captures: Vec<Option<String>>,
    /// Output bytes lost while waiting because the session fell behind (0 normally).
    pub missed: u64,
}

/// The text side of expect, without I/O: raw device output goes in ([`ExpectBuffer::feed`]),
/// is ANSI-stripped with line ends folded into `\n`, and is searched for patterns
/// ([`ExpectBuffer::try_match`]). [`Expecter`] (over a [`Session`]) and the facade's
/// [`crate::facade::ConsoleHandle`] (over any attachment, local or remote) both keep one.
#[derive(Debug)]
pub struct ExpectBuffer {
    stripper: AnsiStripper,
    /// Unconsumed stripped output.
    buffer: String,
    /// The last stripped output, consumed or not.
    recent: String,
    /// Whether the last piece fed was a line end (to fold runs of them into one `\n`).
    at_line_end: bool,
    max_buffer: usize,
}

impl Default for ExpectBuffer {
    fn default() -> Self {
        ExpectBuffer::new()
    }
}

impl ExpectBuffer {
    /// An empty buffer keeping at most [`DEFAULT_MAX_BUFFER`] bytes of unconsumed text.
    pub fn new() -> ExpectBuffer {
        ExpectBuffer {
            stripper: AnsiStripper::new(),
            buffer: String::new(),
            recent: String::new(),
            at_line_end: true,
            max_buffer: DEFAULT_MAX_BUFFER,
        }
    }

    /// Keep at most `bytes` of unconsumed output (at least 1 KiB).
    pub fn set_max_buffer(&mut self, bytes: usize) {
        self.max_buffer = bytes.max(1024);
    }

    /// The unconsumed output.
    pub fn buffer(&self) -> &str {
        &self.buffer
    }

    /// The last few KiB of output, consumed or not.
    pub fn recent(&self) -> &str {
        &self.recent
    }

    /// Forget the unconsumed output.
    pub fn clear(&mut self) {
        self.buffer.clear();
    }

    /// Feed raw device output (as it came from the device).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut text = Vec::with_capacity(bytes.len());
        let at_line_end = &mut self.at_line_end;
        self.stripper.feed(bytes, |piece| match piece {
            Piece::Text(t) => {
                text.extend_from_slice(t);
                *at_line_end = false;
            }
            Piece::LineEnd => {
                if !*at_line_end {
                    text.push(b'\n');
                    *at_line_end = true;
                }
            }
        });
        let text = String::from_utf8_lossy(&text);
        push_bounded(&mut self.buffer, &text, self.max_buffer);
        push_bounded(&mut self.recent, &text, RECENT_BYTES);
    }

    /// The earliest match of any pattern in the unconsumed output (ties: the lower index),
    /// consuming the text up to its end. `missed` is copied into [`ExpectMatch::missed`].
    pub fn try_match(&mut self, patterns: &[ExpectPattern], missed: u64) -> Option<ExpectMatch> {
        let mut best: Option<(usize, usize, usize)> = None;
        for (index, p) in patterns.iter().enumerate() {
            if let Some(m) = p.regex.find(&self.buffer)
                && best.is_none_or(|(_, start, _)| m.start() < start)
            {
                best = Some((index, m.start(), m.end()));
            }
        }
        let (index, start, end) = best?;
        let pattern = patterns.get(index)?;
        let captures = pattern
            .regex
            .captures_at(&self.buffer, start)
            .map(|c| {
                c.iter()
                    .skip(1)
                    .map(|g| g.map(|g| g.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let before = self.buffer.get(..start).unwrap_or_default().to_string();
        let matched = self.buffer.get(start..end).unwrap_or_default().to_string();
        self.buffer.drain(..end.min(self.buffer.len()));
        Some(ExpectMatch {
            index,
            matched,
            before,
            captures,
            missed,
        })
    }

    /// The [`Error::Timeout`] for waiting `after` on `device` for `patterns`: names the device,
    /// the patterns, the last output seen and the bytes missed.
    pub fn timeout_error(
        &self,
        device: &str,
        patterns: &[ExpectPattern],
        after: Duration,
        missed: u64,
    ) -> Error {
        let list: Vec<String> = patterns.iter().map(ToString::to_string).collect();
        let tail = tail_chars(&self.buffer, 80);
        let lost = if missed > 0 {
            format!(" ({missed} bytes of output were missed)")
        } else {
            String::new()
        };
        Error::Timeout {
            what: format!(
                "{device}: waiting for {}; last output {tail:?}{lost}",
                list.join(" or ")
            ),
            after,
        }
    }
}

/// Waits for patterns in a console session's output (see the [module documentation](self)).
#[derive(Debug)]
pub struct Expecter {
    session: Session,
    text: ExpectBuffer,
    missed: u64,
    line_end: Vec<u8>,
}

impl Expecter {
    /// An expecter reading `session` from now on (the replayed lines are not searched).
    pub fn new(session: Session) -> Expecter {
        Expecter {
            session,
            text: ExpectBuffer::new(),
            missed: 0,
            line_end: b"\r".to_vec(),
        }
    }

    /// An expecter that first takes the session's replayed recent output into its buffer, so that
    /// a prompt shown before the session started can still be matched.
    pub fn with_replay(mut session: Session) -> Expecter {
        let replay = session.take_replay();
        let mut e = Expecter::new(session);
        e.feed(&replay);
        e
    }

    /// Keep at most `bytes` of unconsumed output (at least 1 KiB).
    pub fn set_max_buffer(&mut self, bytes: usize) {
        self.text.set_max_buffer(bytes);
    }

    /// What [`Expecter::send_line`] appends (default `\r`, what a terminal's Enter sends).
    pub fn set_line_end(&mut self, line_end: &[u8]) {
        self.line_end = line_end.to_vec();
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, mutably.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Give the session back.
    pub fn into_session(self) -> Session {
        self.session
    }

    /// The device name.
    pub fn device(&self) -> &str {
        self.session.console().name()
    }

    /// The unconsumed output.
    pub fn buffer(&self) -> &str {
        self.text.buffer()
    }

    /// The last few KiB of output, consumed or not (for [`super::classify()`]).
    pub fn recent(&self) -> &str {
        self.text.recent()
    }

    /// Output bytes lost since the expecter started because the session fell behind.
    pub fn missed_total(&self) -> u64 {
        self.missed
    }

    /// Forget the unconsumed output.
    pub fn clear(&mut self) {
        self.text.clear();
    }

    /// Type `bytes` into the console.
    pub async fn send(&self, bytes: &[u8]) -> Result<()> {
        self.session.write(bytes).await
    }

    /// Type `text` and the line end.
    pub async fn send_line(&self, text: &str) -> Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + self.line_end.len());
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(&self.line_end);
        self.session.write(&bytes).await
    }

    /// Feed raw device output (as it came from the device) into the buffer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.text.feed(bytes);
    }

    /// Wait up to `timeout` for any of `patterns` (see the [module documentation](self)). Fails
    /// with [`Error::Timeout`] (naming the device, the patterns and the last output seen) or
    /// [`Error::ConsoleGone`] if the console stops.
    pub async fn expect(
        &mut self,
        patterns: &[ExpectPattern],
        timeout: Duration,
    ) -> Result<ExpectMatch> {
        let mut missed = 0u64;
        if let Some(m) = self.text.try_match(patterns, 0) {
            return Ok(m);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = match tokio::time::timeout_at(deadline, self.session.recv()).await {
                Ok(event) => event,
                Err(_) => return Err(self.timeout_error(patterns, timeout, missed)),
            };
            match event {
                ViewerEvent::Chunk(c) if c.kind == RecordKind::Output => {
                    self.feed(&c.bytes);
                    if let Some(m) = self.text.try_match(patterns, missed) {
                        return Ok(m);
                    }
                }
                ViewerEvent::Missed { bytes, .. } => {
                    missed += bytes;
                    self.missed += bytes;
                    tracing::warn!(device = self.device(), bytes, "expect: output missed");
                }
                ViewerEvent::Closed => {
                    return Err(Error::ConsoleGone {
                        device: self.device().to_string(),
                    });
                }
                _ => {}
            }
        }
    }

    fn timeout_error(&self, patterns: &[ExpectPattern], after: Duration, missed: u64) -> Error {
        self.text
            .timeout_error(self.device(), patterns, after, missed)
    }

    /// Wake the console: look for a prompt, and send Enter (the line end) until one of `prompts`
    /// appears, at most `tries` times, waiting `interval` after each. The unconsumed output is
    /// searched first, so a prompt already shown counts.
    pub async fn wake(
        &mut self,
        prompts: &[ExpectPattern],
        tries: u32,
        interval: Duration,
    ) -> Result<ExpectMatch> {
        if let Some(m) = self.text.try_match(prompts, 0) {
            return Ok(m);
        }
        let tries = tries.max(1);
        let mut last = None;
        for _ in 0..tries {
            let line_end = self.line_end.clone();
            self.send(&line_end).await?;
            match self.expect(prompts, interval).await {
                Ok(m) => return Ok(m),
                Err(e @ Error::Timeout { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.timeout_error(prompts, interval, 0)))
    }
}

/// Append `text` to `buf`, dropping the oldest text beyond `max` bytes (at a char boundary).
fn push_bounded(buf: &mut String, text: &str, max: usize) {
    buf.push_str(text);
    if buf.len() > max {
        let mut cut = buf.len() - max;
        while !buf.is_char_boundary(cut) {
            cut += 1;
        }
        buf.drain(..cut);
    }
}

/// The last `n` characters of `s`.
pub(crate) fn tail_chars(s: &str, n: usize) -> &str {
    let start = s
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    s.get(start..).unwrap_or(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_bound() {
        assert_eq!(tail_chars("hello", 3), "llo");
        assert_eq!(tail_chars("hé", 5), "hé");
        let mut s = String::from("ééé");
        push_bounded(&mut s, "x", 4);
        assert_eq!(s, "éx");
    }

    #[test]
    fn literal_patterns_are_escaped() {
        let p = ExpectPattern::literal("a.b$").unwrap();
        assert!(p.as_regex().is_match("xa.b$"));
        assert!(!p.as_regex().is_match("axb"));
        assert_eq!(p.to_string(), "\"a.b$\"");
        assert!(ExpectPattern::regex("(").is_err());
        assert_eq!(ExpectPattern::regex("x+").unwrap().to_string(), "/x+/");
    }

    /// An echo device sends back what is typed: the output arrives in the pieces written.
    #[tokio::test]
    async fn matches_across_pieces_and_escape_sequences() {
        use crate::console::{Console, ConsoleConfig, LinkState, Mode};
        use crate::link::EchoConnector;
        use std::sync::Arc;

        let console = Console::spawn(ConsoleConfig::new("echo1"), Arc::new(EchoConnector), None);
        let mut state = console.watch_state();
        state
            .wait_for(|s| matches!(s, LinkState::Up { .. }))
            .await
            .unwrap();
        let session = console.attach("t", Mode::Attach, Some(0)).await.unwrap();
        let mut e = Expecter::new(session);
        let login = ExpectPattern::regex(r"(\w+) login: $").unwrap();
        for piece in [&b"boot ok\r\n\r\nweb\x1b[3"[..], b"1m01\x1b[0m lo", b"gin"] {
            e.send(piece).await.unwrap();
        }
        let short = Duration::from_millis(200);
        let err = e
            .expect(std::slice::from_ref(&login), short)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("web01 login"), "{err}");
        e.send(b": ").await.unwrap();
        let m = e.expect(&[login], Duration::from_secs(5)).await.unwrap();
        assert_eq!(m.before, "boot ok\n");
        assert_eq!(m.matched, "web01 login: ");
        assert_eq!(m.captures, vec![Some("web01".to_string())]);
        assert_eq!(e.buffer(), "");
        assert_eq!(e.recent(), "boot ok\nweb01 login: ");
        // Earliest match wins over pattern order.
        e.send_line("a b").await.unwrap();
        let m = e
            .expect(
                &[
                    ExpectPattern::literal("b").unwrap(),
                    ExpectPattern::literal("a").unwrap(),
                ],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!((m.index, m.before.as_str()), (1, ""));
    }
}
