//! `[[journal]]`: the systemd journal as a source of events, like a `[[logfile]]`. mo runs
//! `journalctl -f -o json -n 0` (with `-u UNIT` and `-t IDENTIFIER` when given) and scans each
//! entry's `MESSAGE` with the same patterns as the consoles, raising events under the entry's
//! device name (`mo` by default).
//!
//! The JSON lines are untrusted input: [`parse_line`] never panics and refuses what is not a
//! journal entry with a reason (fuzzed by `fuzz/fuzz_targets/journal_line.rs`).
//!
//! ```
//! use mo_core::event::{JournalConfig, parse_journal_line};
//! let line = br#"{"MESSAGE":"Out of memory: Killed process 42","SYSLOG_IDENTIFIER":"kernel","__REALTIME_TIMESTAMP":"1795000000000000"}"#;
//! let entry = parse_journal_line(line).unwrap().unwrap();
//! assert_eq!(entry.message, "Out of memory: Killed process 42");
//! assert_eq!(entry.identifier.as_deref(), Some("kernel"));
//! assert_eq!(entry.time_ns, Some(1_795_000_000_000_000_000));
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, watch};

use super::Candidate;
use crate::error::{Error, Result};
use crate::scan::{PatternSet, ScanConfig, Scanner};

/// The device journal events are raised under by default: this server.
pub const DEFAULT_JOURNAL_DEVICE: &str = "mo";
/// The program that reads the journal.
pub const JOURNALCTL: &str = "journalctl";
/// The longest journal line read (longer ones are skipped whole).
pub const MAX_JOURNAL_LINE: usize = 1 << 20;
/// How long to wait before running `journalctl` again after it stopped (doubling up to
/// [`MAX_RESTART_DELAY`]).
const RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

/// The output of one `journalctl` run, opened by the embedder (mo-core runs no programs: the
/// daemon spawns `journalctl` with [`Journal::args`]). `guard` is dropped when the output ends
/// or the follower stops (a child process with kill-on-drop stops with it).
pub struct JournalStream {
    /// `journalctl`'s standard output: one JSON entry per line.
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    /// Whatever must live as long as the reader (the child process).
    pub guard: Box<dyn Send>,
}

/// Starts `journalctl` for an entry: [`spawn_journal`] calls it again when the output ends.
pub type JournalOpener = fn(&Journal) -> std::io::Result<JournalStream>;

/// A `[[journal]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Only entries of this systemd unit (`journalctl -u`), e.g. `nginx.service`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Only entries with this syslog identifier (`journalctl -t`), e.g. `kernel`.
    #[serde(default)]
    pub identifier: Option<String>,
    /// The device events are raised under (default [`DEFAULT_JOURNAL_DEVICE`]).
    #[serde(default)]
    pub device: Option<String>,
}

/// A checked `[[journal]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The unit matched, if any.
    pub unit: Option<String>,
    /// The identifier matched, if any.
    pub identifier: Option<String>,
    /// The device events are raised under.
    pub device: String,
}

impl Journal {
    /// Check an entry: names must be non-empty, without control characters, and not start with
    /// `-` (they become journalctl arguments).
    pub fn from_config(config: &JournalConfig) -> Result<Journal> {
        let check = |field: &str, value: &Option<String>| -> Result<Option<String>> {
            let Some(v) = value else { return Ok(None) };
            let v = v.trim();
            if v.is_empty() || v.starts_with('-') || v.chars().any(char::is_control) {
                return Err(Error::BadSpec {
                    what: "[[journal]] entry",
                    input: v.to_owned(),
                    reason: format!(
                        "field `{field}`: give a name (not empty, not starting with '-', no \
                         control characters)"
                    ),
                });
            }
            Ok(Some(v.to_owned()))
        };
        Ok(Journal {
            unit: check("unit", &config.unit)?,
            identifier: check("identifier", &config.identifier)?,
            device: check("device", &config.device)?
                .unwrap_or_else(|| DEFAULT_JOURNAL_DEVICE.to_owned()),
        })
    }

    /// The arguments `journalctl` runs with: follow from now, JSON, the matches.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-f", "-o", "json", "-n", "0", "--no-pager"]
            .into_iter()
            .map(String::from)
            .collect();
        if let Some(unit) = &self.unit {
            args.extend(["-u".to_owned(), unit.clone()]);
        }
        if let Some(id) = &self.identifier {
            args.extend(["-t".to_owned(), id.clone()]);
        }
        args
    }

    /// A label for logs: `journal (unit nginx.service, identifier kernel)`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.unit {
            parts.push(format!("unit {u}"));
        }
        if let Some(i) = &self.identifier {
            parts.push(format!("identifier {i}"));
        }
        if parts.is_empty() {
            "journal".to_owned()
        } else {
            format!("journal ({})", parts.join(", "))
        }
    }
}

/// One journal entry, as far as mo uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    /// `MESSAGE` (binary messages, sent as byte arrays, decoded lossily).
    pub message: String,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: Option<String>,
    /// `_SYSTEMD_UNIT`.
    pub unit: Option<String>,
    /// `__REALTIME_TIMESTAMP` in ns since the epoch.
    pub time_ns: Option<i64>,
}

/// Parse one line of `journalctl -o json`: `Ok(None)` for an entry without a message (or a
/// blank line), an error naming what is wrong for anything else that is not a journal entry.
pub fn parse_line(line: &[u8]) -> std::result::Result<Option<JournalLine>, String> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() > MAX_JOURNAL_LINE {
        return Err(format!(
            "line of {} bytes: longer than the limit",
            line.len()
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("not a JSON object".to_owned());
    };
    let text = |key: &str| -> Option<String> {
        match map.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            // Non-UTF-8 or binary fields come as arrays of byte values.
            serde_json::Value::Array(items) => {
                let bytes: Option<Vec<u8>> = items
                    .iter()
                    .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                    .collect();
                bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
            }
            _ => None,
        }
    };
    let Some(message) = text("MESSAGE") else {
        return Ok(None);
    };
    let time_ns = text("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|us| us.checked_mul(1000));
    Ok(Some(JournalLine {
        message,
        identifier: text("SYSLOG_IDENTIFIER"),
        unit: text("_SYSTEMD_UNIT"),
        time_ns,
    }))
}

/// Follow the journal as `journal` says, in a task: each entry's message is scanned with the
/// patterns `patterns` holds (none: nothing is raised; new ones apply from the next entry on)
/// and every match offered to `tx` under the entry's device. `journalctl` is run again (after
/// a growing delay) when it stops; a missing `journalctl` is reported once and the task ends.
/// It ends when `tx` closes or the sender of `patterns` is dropped; aborting the task stops
/// `journalctl` too.
pub fn spawn_journal(
    journal: Journal,
    mut patterns: watch::Receiver<Option<PatternSet>>,
    tx: mpsc::Sender<Candidate>,
    open: JournalOpener,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = RESTART_DELAY;
        loop {
            if patterns.borrow_and_update().is_none() {
                tracing::info!(
                    "{}: no pattern applies to {}",
                    journal.label(),
                    journal.device
                );
                loop {
                    if patterns.changed().await.is_err() {
                        return;
                    }
                    if patterns.borrow_and_update().is_some() {
                        break;
                    }
                }
            }
            match follow(&journal, &mut patterns, &tx, open).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::error!(
                        "{}: cannot run {JOURNALCTL}: {e} (install systemd, or remove the \
                         [[journal]] entry)",
                        journal.label()
                    );
                    return;
                }
                Err(e) => tracing::warn!("{}: {JOURNALCTL}: {e}", journal.label()),
            }
            if tx.is_closed() {
                return;
            }
            tracing::warn!(
                "{}: {JOURNALCTL} stopped; running it again in {delay:?}",
                journal.label()
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RESTART_DELAY);
        }
    })
}

/// A scanner for `journal`'s entries with the patterns `patterns` holds now (none without).
fn scanner_for(
    journal: &Journal,
    patterns: &mut watch::Receiver<Option<PatternSet>>,
) -> Option<Scanner> {
    patterns
        .borrow_and_update()
        .clone()
        .map(|set| Scanner::with_set(journal.device.clone(), set, ScanConfig::default()))
}

/// Run journalctl once to its end: `Ok(true)` when the events channel closed or the patterns'
/// sender is gone (stop).
async fn follow(
    journal: &Journal,
    patterns: &mut watch::Receiver<Option<PatternSet>>,
    tx: &mpsc::Sender<Candidate>,
    open: JournalOpener,
) -> std::io::Result<bool> {
    let mut scanner = scanner_for(journal, patterns);
    let JournalStream { reader, guard } = open(journal)?;
    let _guard = guard;
    tracing::info!("following the {}", journal.label());
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut bad = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_JOURNAL_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(false);
        }
        if !line.ends_with(b"\n") && n > MAX_JOURNAL_LINE {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest).await?;
            continue;
        }
        let entry = match parse_line(&line) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(why) => {
                bad += 1;
                if bad == 1 || bad.is_power_of_two() {
                    tracing::warn!("{}: skipped a line ({bad} so far): {why}", journal.label());
                }
                continue;
            }
        };
        match patterns.has_changed() {
            Ok(true) => scanner = scanner_for(journal, patterns),
            Ok(false) => {}
            Err(_) => return Ok(true),
        }
        let Some(scanner) = scanner.as_mut() else {
            continue;
        };
        let mut text = entry.message.into_bytes();
        text.push(b'\n');
        let now = super::watch::now_i64();
        for m in scanner.feed(&text, Instant::now()) {
            let candidate =
                Candidate::from_match(&journal.device, &m, entry.time_ns.unwrap_or(now));
            if tx.send(candidate).await.is_err() {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
