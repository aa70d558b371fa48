//! `log …` in the SSH shell: the record-log tools of `mo log`, over the front door.
//!
//! ```text
//! log show NAME [--since T] [--until T] [--tail N]   rendered log (last N lines), timestamped
//! log show NAME --around SEQ [-C N]                  the log around one record (a note, say)
//! log search NAME REGEX [-B N] [-A N] [-C N] [-i] [--since T] [--until T]
//! log notes NAME [--since T] [--until T]             notes and marks, with their sequence numbers
//! log note NAME TEXT…                                write a note into the console's timeline
//! ```
//!
//! Reading needs the `log.read` permission on the device, writing a note `log.note`; both are
//! decided and audited by [`Ctx::check`]. Arguments may be quoted (`'…'`, `"…"`, `\`) the way a
//! POSIX shell quotes them, since `ssh host log search web01 'panic|oops'` arrives as one line.
//! Output streams to the client as it is rendered; a slow client slows the reader, never the
//! daemon.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use mo_core::log::{
    SearchOptions, ShowOptions, format_timestamp, list_notes, parse_time_spec, search, show,
    show_around_hiding,
};
use mo_core::policy::Permission;
use mo_core::record::now_ns;
use tokio::sync::mpsc;

use super::term::Term;
use crate::Ctx;

/// Usage of every `log` subcommand (also shown for a bad one).
pub const USAGE: &str = "\
usage: log show NAME [--since T] [--until T] [--tail N]
       log show NAME --around SEQ [-C N]
       log search NAME REGEX [-B N] [-A N] [-C N] [-i] [--since T] [--until T]
       log notes NAME [--since T] [--until T]
       log note NAME TEXT…
  T: now, 10m, 2h ago, 2026-11-22, 2026-11-22T10:00:00Z …";

/// Lines of context `log show --around` prints on each side by default.
const AROUND_CONTEXT: usize = 5;
/// Output is sent to the client in pieces of about this size.
const CHUNK: usize = 32 * 1024;

/// Run the shell command `line` (which starts with `log`). Returns the exit status: 0 done,
/// 1 refused, failed or (search) nothing matched, 2 bad usage.
pub async fn run(ctx: &Arc<Ctx>, user: &str, origin: &str, line: &str, term: &mut Term) -> u32 {
    let words = match split_args(line) {
        Ok(words) => words,
        Err(e) => {
            term.line(&e.reason).await;
            return 2;
        }
    };
    let parsed = match Parsed::parse(words.get(1..).unwrap_or_default()) {
        Ok(parsed) => parsed,
        Err(e) => {
            term.line(&format!("{e}\n{USAGE}")).await;
            return 2;
        }
    };
    let needs = if parsed.sub == Sub::Note {
        Permission::LogNote
    } else {
        Permission::LogRead
    };
    // Visibility first: a device the user may not list is unknown (no denial notice is
    // written into its log, nothing says it exists).
    if !ctx.access.allows(user, Permission::List, &parsed.device) {
        ctx.access.record(
            user,
            origin,
            needs.name(),
            Some(&parsed.device),
            mo_store::Outcome::Denied,
            format!("{user} may not list {}", parsed.device),
        );
        term.line(&format!("unknown device `{}`", parsed.device))
            .await;
        return 1;
    }
    if let Err(why) = ctx.check(user, origin, needs, &parsed.device).await {
        term.line(&why).await;
        return 1;
    }
    let dir = match existing_log_dir(ctx, &parsed.device) {
        Ok(dir) => dir,
        Err(e) => {
            term.line(&e).await;
            return 1;
        }
    };
    // Typed input only for holders of `log.read_input`; others see `<input hidden>`.
    let hide_input = !ctx
        .access
        .allows(user, Permission::LogReadInput, &parsed.device);
    match parsed.sub {
        Sub::Note => note(ctx, user, &parsed, term).await,
        _ => read(parsed, dir, hide_input, term).await,
    }
}

/// `DIR/logs/NAME`, which must exist (a removed device's log can still be read).
fn existing_log_dir(ctx: &Ctx, device: &str) -> Result<PathBuf, String> {
    let dir = ctx
        .registry
        .log_dir(device)
        .ok_or_else(|| format!("bad device name `{device}`"))?;
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!("no record log for device `{device}`"))
    }
}

/// `log note`: through the running console (so viewers see it and the log keeps one writer),
/// or straight into the log of a console that is not running.
async fn note(ctx: &Arc<Ctx>, user: &str, p: &Parsed, term: &mut Term) -> u32 {
    let text = p.rest.join(" ");
    if text.trim().is_empty() {
        term.line(&format!("the note is empty\n{USAGE}")).await;
        return 2;
    }
    // The same path as the API's POST …/notes.
    let written = crate::http::write_note(ctx, &p.device, user, text).await;
    match written {
        Ok(seq) => {
            term.line(&format!("note {seq} written to the log of {}", p.device))
                .await;
            0
        }
        Err(e) => {
            term.line(&format!(
                "cannot write the note into the log of {}: {e}",
                p.device
            ))
            .await;
            1
        }
    }
}

/// `log show`, `log search`, `log notes`: read the log on a blocking thread, streaming the text.
async fn read(p: Parsed, dir: PathBuf, hide_input: bool, term: &mut Term) -> u32 {
    let out = term.out().clone();
    let job = tokio::task::spawn_blocking(move || -> Result<u32, String> {
        let mut w = TermWriter::new(out);
        let status = read_blocking(&p, &dir, hide_input, &mut w)?;
        w.flush().map_err(|e| e.to_string())?;
        Ok(status)
    });
    match job.await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            term.line(&e).await;
            1
        }
        Err(e) => {
            term.line(&format!("log reader failed: {e}")).await;
            1
        }
    }
}

fn read_blocking(
    p: &Parsed,
    dir: &Path,
    hide_input: bool,
    out: &mut dyn Write,
) -> Result<u32, String> {
    let now = now_ns();
    let time = |spec: &Option<String>, flag: &str| {
        spec.as_deref()
            .map(|s| parse_time_spec(s, now).map_err(|e| format!("{flag}: {e}")))
            .transpose()
    };
    let since = time(&p.since, "--since")?;
    let until = time(&p.until, "--until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        return Err("--until must be later than --since".to_owned());
    }
    let e = |e: mo_core::Error| e.to_string();
    match p.sub {
        Sub::Show => {
            if let Some(seq) = p.around {
                let c = p.context.unwrap_or(AROUND_CONTEXT);
                show_around_hiding(dir, seq, c, c, hide_input, out).map_err(e)?;
                return Ok(0);
            }
            match p.tail {
                Some(n) if since.is_none() && until.is_none() => {
                    out.write_all(&tail_lines(dir, n, hide_input)?)
                        .map_err(|e| e.to_string())?;
                }
                tail => {
                    let opts = ShowOptions {
                        since,
                        until,
                        hide_input,
                        ..Default::default()
                    };
                    match tail {
                        Some(n) => {
                            let mut text = Vec::new();
                            show(dir, &opts, &mut text).map_err(e)?;
                            out.write_all(last_lines(&text, n))
                                .map_err(|e| e.to_string())?;
                        }
                        None => {
                            show(dir, &opts, out).map_err(e)?;
                        }
                    }
                }
            }
            Ok(0)
        }
        Sub::Search => {
            let Some(pattern) = p.rest.first() else {
                return Err(format!("log search needs a REGEX\n{USAGE}"));
            };
            if p.rest.len() > 1 {
                return Err(format!(
                    "log search takes one REGEX (quote it if it has spaces)\n{USAGE}"
                ));
            }
            let opts = SearchOptions {
                pattern: pattern.clone(),
                ignore_case: p.ignore_case,
                before: p.before.or(p.context).unwrap_or(0),
                after: p.after.or(p.context).unwrap_or(0),
                since,
                until,
                hide_input,
            };
            let stats = search(dir, &opts, out).map_err(e)?;
            Ok(u32::from(stats.matches == 0))
        }
        Sub::Notes => {
            let notes = list_notes(dir, since, until).map_err(e)?;
            let mut text = String::new();
            if notes.is_empty() {
                text.push_str("no notes\n");
            } else {
                text.push_str(&format!(
                    "{:<8} {:<24} {:<4} {:<12} TEXT\n",
                    "SEQ", "TIME", "KIND", "USER"
                ));
            }
            for n in &notes {
                text.push_str(&format!(
                    "{:<8} {:<24} {:<4} {:<12} {}\n",
                    n.seq,
                    format_timestamp(n.time_ns),
                    n.kind.name(),
                    n.user,
                    n.text.replace(['\n', '\r'], " ")
                ));
            }
            out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Sub::Note => Ok(0),
    }
}

/// The last `n` rendered lines of the log in `dir`: renders the last few records, more until
/// there are enough lines (or no more records).
fn tail_lines(dir: &Path, n: usize, hide_input: bool) -> Result<Vec<u8>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut records = n.saturating_add(1);
    loop {
        let mut text = Vec::new();
        let opts = ShowOptions {
            tail: Some(records),
            hide_input,
            ..Default::default()
        };
        let rendered = show(dir, &opts, &mut text).map_err(|e| e.to_string())?;
        let lines = text.iter().filter(|&&b| b == b'\n').count();
        // More lines than asked, so a first line begun by an earlier record is cut off.
        if lines > n || rendered < u64::try_from(records).unwrap_or(u64::MAX) {
            return Ok(last_lines(&text, n).to_vec());
        }
        records = records.saturating_mul(4);
    }
}

/// The last `n` lines of rendered `text` (each ends in `\n`).
fn last_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let mut seen = 0;
    for (i, &b) in text.iter().enumerate().rev().skip(1) {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return text.get(i + 1..).unwrap_or_default();
            }
        }
    }
    text
}

/// Sends written text to the SSH channel in pieces, every `\n` as CR LF. Blocks (on a blocking
/// thread) while the channel is full.
struct TermWriter {
    out: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl TermWriter {
    fn new(out: mpsc::Sender<Bytes>) -> Self {
        TermWriter {
            out,
            buf: Vec::with_capacity(CHUNK + CHUNK / 8),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + CHUNK / 8),
        ));
        self.out
            .blocking_send(piece)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for TermWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        for line in data.split_inclusive(|&b| b == b'\n') {
            match line.strip_suffix(b"\n") {
                Some(body) => {
                    self.buf
                        .extend_from_slice(body.strip_suffix(b"\r").unwrap_or(body));
                    self.buf.extend_from_slice(b"\r\n");
                }
                None => self.buf.extend_from_slice(line),
            }
        }
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

// `log` lines are read in mo-core (mo_core::door::shell), where they are fuzzed.
pub use mo_core::door::shell::split_args;
use mo_core::door::shell::{LogArgs as Parsed, LogSub as Sub};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_args(line).unwrap()
    }

    fn parse(line: &str) -> Result<Parsed, String> {
        Parsed::parse(&words(line)).map_err(|e| e.reason)
    }

    #[test]
    fn options_are_parsed_and_checked() {
        let p = parse("search web panic -B 2 -A=3 -i").unwrap_err();
        assert!(p.contains("unknown option `-A=3`"), "{p}");
        let p = parse("search web panic -B 2 --after=3 -i --since 1h").unwrap();
        assert_eq!(p.sub, Sub::Search);
        assert_eq!(p.device, "web");
        assert_eq!(p.rest, ["panic"]);
        assert_eq!((p.before, p.after, p.ignore_case), (Some(2), Some(3), true));
        assert_eq!(p.since.as_deref(), Some("1h"));
        let p = parse("search web -C 1 -- -x").unwrap();
        assert_eq!(
            (p.rest.as_slice(), p.context),
            (&["-x".to_owned()][..], Some(1))
        );
        let p = parse("show web --tail 5 --until now").unwrap();
        assert_eq!((p.tail, p.until.as_deref()), (Some(5), Some("now")));
        let p = parse("note web -B is not an option here").unwrap();
        assert_eq!(p.rest.join(" "), "-B is not an option here");
        assert!(
            parse("show web --tail x")
                .unwrap_err()
                .contains("not a count")
        );
        assert!(parse("show web extra").unwrap_err().contains("unexpected"));
        assert!(parse("show").unwrap_err().contains("needs a device"));
        assert!(parse("show web --around 3 --tail 2").is_err());
        assert!(
            parse("notes web -i")
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(
            parse("frobnicate web")
                .unwrap_err()
                .contains("unknown log subcommand")
        );
        assert!(
            parse("search web x -B")
                .unwrap_err()
                .contains("needs a value")
        );
    }

    #[test]
    fn last_lines_are_cut_at_line_starts() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc\n", 3), b"a\nb\nc\n");
        assert_eq!(last_lines(b"a\nb\nc\n", 9), b"a\nb\nc\n");
        assert_eq!(last_lines(b"a\nb\nc\n", 0), b"");
        assert_eq!(last_lines(b"", 2), b"");
    }

    #[test]
    fn writer_turns_newlines_into_crlf() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut w = TermWriter::new(tx);
        w.write_all(b"one\ntwo\r\nthr").unwrap();
        w.write_all(b"ee\n").unwrap();
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        while let Ok(piece) = rx.try_recv() {
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, b"one\r\ntwo\r\nthree\r\n");
    }
}
