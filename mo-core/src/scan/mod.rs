//! The live output scanner: patterns matched against a device's output as it arrives, sans-I/O.
//!
//! A [`Scanner`] watches one device. Its output goes through [`Scanner::feed`] in whatever pieces
//! it was read in; the scanner strips ANSI escape sequences ([`AnsiStripper`]), splits lines (LF,
//! CR LF or a lone CR end a line; empty lines are ignored) and evaluates every pattern of its
//! [`PatternSet`] together, in one pass per line. A line arriving in many small reads matches
//! exactly as if it had arrived whole.
//!
//! Prompts (`login: `, `=> `, `boot> `) never end in a newline, so the partial line is also
//! matched once it has been quiet — no bytes fed — for [`ScanConfig::quiet`]. The scanner has no
//! clock: time is the caller's [`Instant`], passed to [`Scanner::feed`] and [`Scanner::poll_idle`],
//! and [`Scanner::next_deadline`] says when `poll_idle` is next worth calling. A partial line is
//! matched at most once per quiet period, only if text was added since; when the line is later
//! completed it is matched again, but a pattern never reports the same line twice. (So a line
//! that pauses mid-way for longer than `quiet` is reported as it stood then: anchor prompt patterns
//! with `$` and write line patterns so that a prefix of the line does not match.)
//!
//! Memory is bounded: a line longer than [`ScanConfig::max_line`] is matched in pieces of that
//! size, and only [`ScanConfig::context_lines`] earlier lines are kept as context for a
//! [`Match`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mo_core::scan::{Pattern, Scanner, Severity};
//!
//! let patterns = [
//!     Pattern::new("panic", r"Kernel panic - (.*)", Severity::Critical, "panic on {device}: $1"),
//!     Pattern::new("login", r"login: $", Severity::Info, "{device} is at a login prompt"),
//! ];
//! let mut scanner = Scanner::new("web1", &patterns).unwrap();
//! let t0 = Instant::now();
//!
//! let found = scanner.feed(b"\x1b[31mKernel panic - not syncing\x1b[0m\r\nweb1 lo", t0);
//! assert_eq!(found[0].message, "panic on web1: not syncing");
//!
//! // The prompt has no newline: it matches once output has been quiet long enough.
//! assert!(scanner.feed(b"gin: ", t0).is_empty());
//! let deadline = scanner.next_deadline().unwrap();
//! assert_eq!(deadline, t0 + Duration::from_millis(300));
//! let found = scanner.poll_idle(deadline);
//! assert_eq!(found[0].pattern, "login");
//! assert_eq!(found[0].line, "web1 login: ");
//! assert!(scanner.poll_idle(deadline + Duration::from_secs(1)).is_empty());
//! ```

mod ansi;
mod book;
mod buckets;
mod pattern;
mod prefilter;
mod template;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use ansi::{AnsiStripper, MAX_CSI_LEN, MAX_STRING_LEN, Piece};
pub use book::{PatternBook, PatternConfig, builtin_patterns};
pub use pattern::{Pattern, PatternSet, Severity};

use crate::error::Result;
use template::RenderInput;

/// How long a partial line must be quiet before it is matched.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(300);
/// How many earlier lines a match carries by default.
pub const DEFAULT_CONTEXT_LINES: usize = 3;
/// The longest line matched whole by default, in bytes after stripping.
pub const DEFAULT_MAX_LINE: usize = 4096;
/// The smallest [`ScanConfig::max_line`] honoured; smaller values are raised to it.
pub const MIN_MAX_LINE: usize = 64;
/// The most context lines honoured; larger values are lowered to it.
pub const MAX_CONTEXT_LINES: usize = 1000;

/// How a scanner behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanConfig {
    /// How long a partial line must be quiet before it is matched ([`DEFAULT_QUIET`]).
    pub quiet: Duration,
    /// How many earlier lines each match carries ([`DEFAULT_CONTEXT_LINES`], at most
    /// [`MAX_CONTEXT_LINES`]).
    pub context_lines: usize,
    /// The longest line matched whole, in bytes after stripping ([`DEFAULT_MAX_LINE`], at least
    /// [`MIN_MAX_LINE`]); longer lines are matched in pieces of this size.
    pub max_line: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            quiet: DEFAULT_QUIET,
            context_lines: DEFAULT_CONTEXT_LINES,
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// A pattern that matched a line of a device's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The pattern's name.
    pub pattern: String,
    /// The pattern's severity.
    pub severity: Severity,
    /// The rendered message template.
    pub message: String,
    /// The line that matched, ANSI-stripped, without its line end (invalid UTF-8 replaced).
    pub line: String,
    /// The non-empty lines before it, oldest first (at most [`ScanConfig::context_lines`]).
    pub context: Vec<String>,
    /// Whether the line was still partial (matched after a quiet period, not a line end).
    pub partial: bool,
}

/// The most scratch space kept per thread for stripped output between chunks (a larger chunk gets
/// a larger buffer, freed again after it).
const MAX_STRIPPED: usize = 256 * 1024;

thread_local! {
    /// Output stripped of escape sequences, line ends as `\n`, for [`Lines::push_plain`]: one
    /// buffer per thread rather than one per scanner (`feed` does not yield while it holds it).
    static STRIPPED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Scratch space of the prefilter (a lowercased copy of the text it searches), one per
    /// thread: kept per scanner, it held as much as each console's largest read.
    static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with the thread's prefilter scratch space, given back when it grew too large.
fn with_lower<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    LOWER.with_borrow_mut(|lower| {
        let r = f(lower);
        if lower.capacity() > MAX_STRIPPED {
            *lower = Vec::new();
        }
        r
    })
}

/// The line being assembled and the lines before it.
#[derive(Debug)]
struct Lines {
    line: Vec<u8>,
    max_line: usize,
    /// Patterns already reported for the current line.
    reported: Vec<usize>,
    /// Length of the current line when it was last matched as a partial line.
    idle_len: usize,
    /// Whether the prefilter already found a literal in the current line (whole in one chunk).
    holds_literal: bool,
    context: VecDeque<Vec<u8>>,
    context_lines: usize,
    /// Where the prefilter's literals start in the chunk being fed (reused from chunk to chunk).
    hits: Vec<usize>,
    /// Lines of the chunk being fed that were passed over, not yet in `context` (start, end), in
    /// order.
    passed: Vec<(usize, usize)>,
}

/// Who is scanning, for messages.
struct Who<'a> {
    patterns: &'a PatternSet,
    device: &'a str,
}

impl Lines {
    fn push_text(&mut self, mut text: &[u8], who: &Who<'_>, out: &mut Vec<Match>) {
        while !text.is_empty() {
            let room = self.max_line.saturating_sub(self.line.len());
            let (now, later) = text.split_at(room.min(text.len()));
            self.line.extend_from_slice(now);
            text = later;
            if self.line.len() >= self.max_line {
                self.end_line(who, out);
            }
        }
    }

    /// Feeds text holding no escape sequence and no control byte but TAB, CR and LF: output the
    /// stripper (in its ground state) would pass on unchanged, or what it made of some output
    /// ([`AnsiStripper::strip_into`]). The same as feeding the stripper's pieces one by one
    /// ([`Lines::push_text`], [`Lines::end_line`]), but lines wholly inside `bytes` in which the
    /// prefilter finds no literal are passed over without being copied or matched (only the last
    /// few are kept, as context).
    fn push_plain(&mut self, bytes: &[u8], who: &Who<'_>, out: &mut Vec<Match>) {
        let Some(first) = memchr::memchr2(b'\r', b'\n', bytes) else {
            self.push_text(bytes, who, out);
            return;
        };
        // The end of the line begun by earlier output.
        self.push_text(bytes.get(..first).unwrap_or_default(), who, out);
        self.end_line(who, out);
        // The start of the partial line at the end (there is a line end before it).
        let last = memchr::memrchr2(b'\r', b'\n', bytes).unwrap_or(first) + 1;
        let Some(prefilter) = who.patterns.prefilter() else {
            // Every line may match.
            self.pass_over(bytes, first + 1, last, true, who, out);
            self.push_text(bytes.get(last..).unwrap_or_default(), who, out);
            return;
        };
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        with_lower(|lower| prefilter.starts(bytes, lower, self.max_line, &mut hits));
        // Only the lines holding a literal are looked for; those between are passed over.
        let mut done = first + 1;
        for &hit in &hits {
            if hit < done {
                continue; // in a line already matched
            }
            if hit >= last {
                break; // in the partial line, matched once it is complete or quiet
            }
            let before = bytes.get(done..hit).unwrap_or_default();
            let start = memchr::memrchr2(b'\r', b'\n', before).map_or(done, |at| done + at + 1);
            let after = bytes.get(hit..).unwrap_or_default();
            // Literals hold no line end, and there is one at `last - 1`.
            let end = memchr::memchr2(b'\r', b'\n', after).map_or(last - 1, |at| hit + at);
            self.pass_over(bytes, done, start, false, who, out);
            self.push_text(bytes.get(start..end).unwrap_or_default(), who, out);
            // Not cut into pieces: the line holds the literal, no need to look for one again.
            self.holds_literal = end - start < self.max_line;
            self.end_line(who, out);
            done = end + 1;
        }
        self.hits = hits;
        self.pass_over(bytes, done, last, false, who, out);
        // The partial line.
        self.push_text(bytes.get(last..).unwrap_or_default(), who, out);
    }

    /// Feeds the complete lines of `bytes[from..to]` (`to` is just after a line end, or `from`),
    /// the line so far being empty. If `every`, each is matched; else none of them holds a
    /// literal, so none can match, and only the last few are kept, as context: found from the
    /// end, without looking at the lines before them (unless an overlong one is among them).
    fn pass_over(
        &mut self,
        bytes: &[u8],
        from: usize,
        to: usize,
        every: bool,
        who: &Who<'_>,
        out: &mut Vec<Match>,
    ) {
        let region = bytes.get(from..to).unwrap_or_default();
        if !every {
            self.passed.clear();
            let mut end = region.len();
            let mut fits = true;
            while end > 0 && self.passed.len() < self.context_lines {
                let line_end = end - 1;
                let before = region.get(..line_end).unwrap_or_default();
                let start = memchr::memrchr2(b'\r', b'\n', before).map_or(0, |at| at + 1);
                if line_end - start > self.max_line {
                    // Its pieces are context too: go line by line.
                    fits = false;
                    break;
                }
                if line_end > start {
                    self.passed.push((from + start, from + line_end));
                }
                end = start;
            }
            if fits {
                self.passed.reverse();
                self.keep_passed(bytes);
                return;
            }
            self.passed.clear();
        }
        let mut start = from;
        for end in memchr::memchr2_iter(b'\r', b'\n', region).map(|at| from + at) {
            let line = bytes.get(start..end).unwrap_or_default();
            if every || line.len() > self.max_line {
                self.keep_passed(bytes);
                self.push_text(line, who, out);
                self.end_line(who, out);
            } else if !line.is_empty() {
                self.passed.push((start, end));
            }
            start = end + 1;
        }
        self.keep_passed(bytes);
    }

    /// Puts the lines passed over in `bytes` into the context, as [`Lines::end_line`] would.
    fn keep_passed(&mut self, bytes: &[u8]) {
        let skip = self.passed.len().saturating_sub(self.context_lines);
        for i in skip..self.passed.len() {
            let Some(&(start, end)) = self.passed.get(i) else {
                continue;
            };
            let line = bytes.get(start..end).unwrap_or_default();
            let mut spare = if self.context.len() >= self.context_lines {
                self.context.pop_front().unwrap_or_default()
            } else {
                Vec::new()
            };
            spare.clear();
            spare.extend_from_slice(line);
            self.context.push_back(spare);
        }
        self.passed.clear();
    }

    fn end_line(&mut self, who: &Who<'_>, out: &mut Vec<Match>) {
        if self.line.is_empty() {
            self.holds_literal = false;
            return;
        }
        if self.idle_len != self.line.len() {
            self.scan(who, false, out);
        }
        if self.context_lines > 0 {
            let mut spare = if self.context.len() >= self.context_lines {
                self.context.pop_front().unwrap_or_default()
            } else {
                Vec::new()
            };
            std::mem::swap(&mut spare, &mut self.line);
            self.context.push_back(spare);
        }
        self.line.clear();
        self.reported.clear();
        self.idle_len = 0;
        self.holds_literal = false;
    }

    fn scan(&mut self, who: &Who<'_>, partial: bool, out: &mut Vec<Match>) {
        // Most lines match nothing: a line without any pattern's literal cannot match, and
        // `is_match` rejects the others fastest, stopping at the first hit.
        if !self.holds_literal
            && who.patterns.prefilter().is_some_and(|prefilter| {
                !with_lower(|lower| prefilter.may_match(&self.line, lower))
            })
        {
            return;
        }
        if !who.patterns.set().is_match(&self.line) {
            return;
        }
        let matched = who.patterns.set().matches(&self.line);
        if !matched.matched_any() {
            return;
        }
        let line = String::from_utf8_lossy(&self.line).into_owned();
        let context: Vec<String> = self
            .context
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        for index in matched.iter() {
            if self.reported.contains(&index) {
                continue;
            }
            let Some(pattern) = who.patterns.get(index) else {
                continue;
            };
            self.reported.push(index);
            let captures = if pattern.template.needs_captures() {
                pattern.regex.captures(&self.line)
            } else {
                None
            };
            let message = pattern.template.render(&RenderInput {
                captures: captures.as_ref(),
                line: &line,
                device: who.device,
                pattern: &pattern.name,
                severity: pattern.severity.as_str(),
            });
            out.push(Match {
                pattern: pattern.name.clone(),
                severity: pattern.severity,
                message,
                line: line.clone(),
                context: context.clone(),
                partial,
            });
        }
    }
}

/// Scans one device's output for patterns (see the [module documentation](self)).
#[derive(Debug)]
pub struct Scanner {
    device: String,
    patterns: PatternSet,
    quiet: Duration,
    stripper: AnsiStripper,
    lines: Lines,
    /// When bytes were last fed.
    last_activity: Option<Instant>,
}

impl Scanner {
    /// A scanner for `device` with its own compiled copy of `patterns` and the default
    /// [`ScanConfig`]. Fails, naming the pattern, if a pattern does not compile.
    pub fn new(device: impl Into<String>, patterns: &[Pattern]) -> Result<Scanner> {
        Ok(Scanner::with_set(
            device,
            PatternSet::new(patterns)?,
            ScanConfig::default(),
        ))
    }

    /// A scanner for `device` sharing an already compiled `patterns` set.
    pub fn with_set(
        device: impl Into<String>,
        patterns: PatternSet,
        config: ScanConfig,
    ) -> Scanner {
        let context_lines = config.context_lines.min(MAX_CONTEXT_LINES);
        Scanner {
            device: device.into(),
            patterns,
            quiet: config.quiet,
            stripper: AnsiStripper::new(),
            lines: Lines {
                line: Vec::new(),
                max_line: config.max_line.max(MIN_MAX_LINE),
                reported: Vec::new(),
                idle_len: 0,
                holds_literal: false,
                context: VecDeque::with_capacity(context_lines),
                context_lines,
                hits: Vec::new(),
                passed: Vec::new(),
            },
            last_activity: None,
        }
    }

    /// The device this scanner watches.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The patterns this scanner evaluates.
    pub fn patterns(&self) -> &PatternSet {
        &self.patterns
    }

    /// The partial line so far, ANSI-stripped (empty right after a line end).
    pub fn partial_line(&self) -> &[u8] {
        &self.lines.line
    }

    /// Scans device output read at `now`, returning the matches of every line it completes, in
    /// order. Any bytes, even an escape sequence alone, restart the quiet period.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) -> Vec<Match> {
        let mut out = Vec::new();
        if bytes.is_empty() {
            return out;
        }
        self.last_activity = Some(now);
        let Scanner {
            device,
            patterns,
            stripper,
            lines,
            ..
        } = self;
        let who = Who { patterns, device };
        if !stripper.in_sequence() && ansi::is_plain(bytes) {
            // Nothing to strip: lines can be matched (or passed over) in place.
            lines.push_plain(bytes, &who, &mut out);
        } else {
            // Stripped into one buffer first, so that the prefilter searches the chunk's text in
            // one pass and lines without a literal are passed over, as for plain output.
            STRIPPED.with_borrow_mut(|text| {
                text.clear();
                stripper.strip_into(bytes, text);
                lines.push_plain(text, &who, &mut out);
                if text.capacity() > MAX_STRIPPED {
                    *text = Vec::new();
                }
            });
        }
        out
    }

    /// When [`Scanner::poll_idle`] should next be called: the end of the quiet period of a partial
    /// line that has text not yet matched. `None` when there is nothing to wait for.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.lines.line.len() <= self.lines.idle_len {
            return None;
        }
        self.last_activity?.checked_add(self.quiet)
    }

    /// Matches the partial line if it has been quiet since the deadline ([`Scanner::next_deadline`])
    /// and has text not matched before. Patterns reported here are not reported again when the
    /// line is completed.
    pub fn poll_idle(&mut self, now: Instant) -> Vec<Match> {
        let mut out = Vec::new();
        if self.next_deadline().is_some_and(|deadline| now >= deadline) {
            let who = Who {
                patterns: &self.patterns,
                device: &self.device,
            };
            self.lines.scan(&who, true, &mut out);
            self.lines.idle_len = self.lines.line.len();
        }
        out
    }

    /// Ends the partial line as if a line end had arrived (the device went away), returning its
    /// matches. An escape sequence in progress is forgotten.
    pub fn flush(&mut self) -> Vec<Match> {
        let mut out = Vec::new();
        let who = Who {
            patterns: &self.patterns,
            device: &self.device,
        };
        self.lines.end_line(&who, &mut out);
        self.stripper = AnsiStripper::new();
        out
    }
}
