//! `mo log search`: a regular expression over a device's rendered log, with context lines like
//! `grep -B/-A`.
//!
//! Records are read in order across every segment (a rotation is invisible) and rendered exactly
//! as [`crate::log::show`] renders them, so a line that the device sent in several records — or
//! that straddles a segment rotation — is assembled first and then searched as one line. The
//! pattern sees each line's text after its timestamp (`<alice> ls -l`, `[note bob] …`, device
//! text with ANSI sequences removed); results are the rendered lines, timestamp included, with
//! `--` between groups of context that are not adjacent.
//!
//! For speed, records are rendered in batches of a few MiB and the pattern runs once over the
//! whole batch text (multi-line mode, so `^` and `$` match at line ends); each hit is then
//! confirmed on its own line, so a match never spans two lines.
//!
//! Compressed closed segments (`.mlog.zst`) are read like plain ones: the reader decompresses
//! each into memory when it gets to it.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc;

use regex::bytes::{Regex, RegexBuilder};

use crate::error::{Error, Result};
use crate::log::reader::{self, ReadOptions};
use crate::log::render::Renderer;

/// Rendered bytes collected before the pattern runs over them.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Length of the rendered timestamp (`2026-11-22T10:00:00.123Z`) before each line's text.
const TIMESTAMP_LEN: usize = 24;

/// What [`search`] looks for, and how much context it prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchOptions {
    /// The regular expression (Rust `regex` syntax), matched against each line's text.
    pub pattern: String,
    /// Match letters regardless of case.
    pub ignore_case: bool,
    /// Lines of context printed before each matching line.
    pub before: usize,
    /// Lines of context printed after each matching line.
    pub after: usize,
    /// Only records at or after this time (ns since the Unix epoch).
    pub since: Option<u64>,
    /// Only records before this time (ns since the Unix epoch).
    pub until: Option<u64>,
    /// Show (and match) typed input as `<input hidden>` (a reader without `log.read_input`).
    pub hide_input: bool,
}

/// Counts from one [`search`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Records read.
    pub records: u64,
    /// Rendered lines searched.
    pub lines: u64,
    /// Lines that matched.
    pub matches: u64,
}

/// Compile `pattern` the way [`search`] uses it; the error names the pattern and what is wrong.
pub fn compile_pattern(pattern: &str, ignore_case: bool) -> Result<Regex> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| Error::BadSpec {
            what: "search pattern",
            input: pattern.to_owned(),
            reason: e.to_string(),
        })
}

/// Search the log in the device directory `dir`; matching lines and their context go to `out`.
///
/// Reading and rendering run on a thread of their own, a few batches ahead of the matching, so
/// the two overlap on a machine with more than one core.
pub fn search(dir: &Path, opts: &SearchOptions, out: &mut dyn Write) -> Result<SearchStats> {
    let regex = compile_pattern(&opts.pattern, opts.ignore_case)?;
    let read_opts = ReadOptions {
        from_seq: None,
        since: opts.since,
        until: opts.until,
    };
    let records = reader::read(dir, &read_opts)?;
    let hide_input = opts.hide_input;
    let mut searcher = Searcher::new(regex, opts.before, opts.after);
    // Batches travel to the matcher and come back empty, to be filled again.
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<(Vec<u8>, u64)>>(PIPELINE_DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| -> Result<SearchStats> {
        scope.spawn(move || render_batches(records, hide_input, &full_tx, &empty_rx));
        for batch in full_rx {
            let (batch, records) = batch?;
            searcher.stats.records += records;
            searcher.batch(&batch, out).map_err(write_err)?;
            let _ = empty_tx.send(batch);
        }
        out.flush().map_err(write_err)?;
        Ok(searcher.stats)
    })
}

/// [`search`] into memory: the matching lines (and their context, with `--` lines between
/// groups that are not adjacent), each without its line end. For the bindings' `Log.search`.
pub fn search_lines(dir: &Path, opts: &SearchOptions) -> Result<Vec<String>> {
    let mut out = Vec::new();
    search(dir, opts, &mut out)?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Batches in flight between the rendering thread and the matcher.
const PIPELINE_DEPTH: usize = 2;

/// Render `records` into batches of complete lines for [`search`], with the number of records
/// each holds; the last batch also holds the partial lines. Stops early when the receiver is gone.
fn render_batches(
    records: reader::Records,
    hide_input: bool,
    full: &mpsc::SyncSender<Result<(Vec<u8>, u64)>>,
    empty: &mpsc::Receiver<Vec<u8>>,
) {
    let mut renderer = Renderer::new().hiding_input(hide_input);
    let fresh = || Vec::with_capacity(BATCH_BYTES + 64 * 1024);
    let mut batch = fresh();
    let mut count = 0u64;
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        };
        count += 1;
        if let Err(e) = renderer.render(&record, &mut batch) {
            let _ = full.send(Err(write_err(e)));
            return;
        }
        if batch.len() >= BATCH_BYTES {
            let mut next = empty.try_recv().unwrap_or_else(|_| fresh());
            next.clear();
            if full
                .send(Ok((std::mem::replace(&mut batch, next), count)))
                .is_err()
            {
                return;
            }
            count = 0;
        }
    }
    if let Err(e) = renderer.flush_partial(&mut batch) {
        let _ = full.send(Err(write_err(e)));
        return;
    }
    let _ = full.send(Ok((batch, count)));
}

fn write_err(e: io::Error) -> Error {
    Error::io("write search results", e)
}

/// Matching and context state carried from batch to batch.
#[derive(Debug)]
struct Searcher {
    regex: Regex,
    before: usize,
    after: usize,
    /// Global number of the first line of the next batch.
    line_no: u64,
    /// The last `before` lines of earlier batches, with their numbers.
    ring: VecDeque<(u64, Vec<u8>)>,
    last_printed: Option<u64>,
    /// Lines of after-context still owed.
    after_left: usize,
    /// Scratch: line texts of a batch joined by `\n`, and where each line starts in it.
    text: Vec<u8>,
    text_starts: Vec<usize>,
    /// Scratch: each rendered line's range in the batch (newline excluded).
    lines: Vec<(usize, usize)>,
    stats: SearchStats,
}

impl Searcher {
    fn new(regex: Regex, before: usize, after: usize) -> Self {
        Searcher {
            regex,
            before,
            after,
            line_no: 0,
            ring: VecDeque::new(),
            last_printed: None,
            after_left: 0,
            text: Vec::new(),
            text_starts: Vec::new(),
            lines: Vec::new(),
            stats: SearchStats::default(),
        }
    }

    /// Search one batch of complete rendered lines.
    fn batch(&mut self, rendered: &[u8], out: &mut dyn Write) -> io::Result<()> {
        self.index(rendered);
        let matched = self.find_matches();
        let base = self.line_no;
        for &m in &matched {
            let g = base + m as u64;
            self.print_after_until(g, base, rendered, out)?;
            let from = g
                .saturating_sub(self.before as u64)
                .max(self.last_printed.map_or(0, |l| l + 1));
            for n in from..g {
                self.print_numbered(n, base, rendered, out)?;
            }
            self.print_numbered(g, base, rendered, out)?;
            self.after_left = self.after;
        }
        let end = base + self.lines.len() as u64;
        self.print_after_until(end, base, rendered, out)?;
        self.stats.matches += matched.len() as u64;
        self.stats.lines += self.lines.len() as u64;
        self.keep_tail(rendered);
        self.line_no = end;
        Ok(())
    }

    /// Split the batch into lines and gather their texts (after the timestamp) into `text`.
    fn index(&mut self, rendered: &[u8]) {
        self.lines.clear();
        self.text.clear();
        self.text_starts.clear();
        let mut start = 0;
        while start < rendered.len() {
            let end = memchr_newline(rendered, start);
            self.lines.push((start, end));
            let text_from = (start + TIMESTAMP_LEN + 1).min(end);
            self.text_starts.push(self.text.len());
            self.text
                .extend_from_slice(rendered.get(text_from..end).unwrap_or_default());
            self.text.push(b'\n');
            start = end + 1;
        }
    }

    /// Indexes of the lines of the current batch that match.
    fn find_matches(&self) -> Vec<usize> {
        let mut matched = Vec::new();
        let mut pos = 0;
        let mut line = 0;
        while pos < self.text.len() {
            let Some(m) = self.regex.find_at(&self.text, pos) else {
                break;
            };
            // The line holding the match start (lines only move forward).
            while self
                .text_starts
                .get(line + 1)
                .is_some_and(|&next| next <= m.start())
            {
                line += 1;
            }
            let Some(&line_start) = self.text_starts.get(line) else {
                break;
            };
            let line_end = self
                .text_starts
                .get(line + 1)
                .map_or(self.text.len(), |&n| n)
                .saturating_sub(1);
            let within = m.end() <= line_end && (m.start() < line_end || m.is_empty());
            let text = self.text.get(line_start..line_end).unwrap_or_default();
            if within || self.regex.is_match(text) {
                matched.push(line);
            }
            line += 1;
            match self.text_starts.get(line) {
                Some(&next) => pos = next,
                None => break,
            }
        }
        matched
    }

    /// Print owed after-context lines, up to (not including) global line `limit`.
    fn print_after_until(
        &mut self,
        limit: u64,
        base: u64,
        rendered: &[u8],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        while self.after_left > 0 {
            let next = self.last_printed.map_or(0, |l| l + 1);
            if next >= limit {
                break;
            }
            self.print_numbered(next, base, rendered, out)?;
            self.after_left -= 1;
        }
        Ok(())
    }

    /// Print global line `n`, from the batch or from the ring of earlier lines.
    fn print_numbered(
        &mut self,
        n: u64,
        base: u64,
        rendered: &[u8],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if self.last_printed.is_some_and(|l| n <= l) {
            return Ok(());
        }
        if (self.before > 0 || self.after > 0) && self.last_printed.is_some_and(|l| n > l + 1) {
            out.write_all(b"--\n")?;
        }
        self.last_printed = Some(n);
        if n >= base {
            let i = usize::try_from(n - base).unwrap_or(usize::MAX);
            if let Some(&(s, e)) = self.lines.get(i) {
                out.write_all(rendered.get(s..e).unwrap_or_default())?;
                out.write_all(b"\n")?;
            }
        } else if let Some((_, line)) = self.ring.iter().find(|(k, _)| *k == n) {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Keep the batch's last `before` lines for the next batch's before-context.
    fn keep_tail(&mut self, rendered: &[u8]) {
        if self.before == 0 {
            return;
        }
        let skip = self.lines.len().saturating_sub(self.before);
        for (i, &(s, e)) in self.lines.iter().enumerate().skip(skip) {
            let n = self.line_no + i as u64;
            self.ring
                .push_back((n, rendered.get(s..e).unwrap_or_default().to_vec()));
            if self.ring.len() > self.before {
                self.ring.pop_front();
            }
        }
    }
}

/// Position of the next `\n` at or after `from`, or the end of `buf`.
fn memchr_newline(buf: &[u8], from: usize) -> usize {
    buf.get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map_or(buf.len(), |p| from + p)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
