//! Watching one console: its output through a scanner, its link state and its record log's health,
//! each turned into [`Candidate`] events for the event manager (see [`super::EventService`]).
//!
//! The scanner reads the console's timeline from a bounded consumer ([`crate::console::Follow::Timeline`]),
//! scanning the output (a console-loop notice, `console/loopguard.rs`, becomes a `log` event):
//! it never slows the console; when it falls behind, the skipped bytes are counted
//! (`ConsumerFeed::skipped_total`, the daemon's `mo_scanner_skipped_bytes_total`), the partial line
//! is dropped, and a warning event with source `log` says how much was not scanned — at most one
//! such event a second per console, covering every skip since the last one.

use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{Candidate, EventSource};
use crate::console::{Console, ConsumerFeed, LOOP_NOTICE_PREFIX, LinkState};
use crate::record::RecordKind;
use crate::record::now_ns;
use crate::scan::{Match, PatternBook, ScanConfig, Scanner, Severity};

/// The shortest time between two "scanner fell behind" events of one console.
const SKIP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Skipped output not yet reported, and when it last was.
#[derive(Default)]
struct SkipReport {
    unreported: u64,
    last: Option<Instant>,
}

impl SkipReport {
    /// When the pending report is due (`None`: nothing pending; a time in the past: now).
    fn due(&self) -> Option<Instant> {
        (self.unreported > 0).then(|| match self.last {
            Some(t) => t + SKIP_REPORT_EVERY,
            None => Instant::now(),
        })
    }

    /// The message to send now, if one is due at `now`.
    fn take(&mut self, now: Instant, total: u64) -> Option<String> {
        if self.unreported == 0 || self.last.is_some_and(|t| now < t + SKIP_REPORT_EVERY) {
            return None;
        }
        let bytes = std::mem::take(&mut self.unreported);
        self.last = Some(now);
        Some(format!(
            "scanner fell behind: {bytes} bytes of output were not scanned \
             (the record log has them; {total} skipped in all)"
        ))
    }
}

/// The time now, as events carry it.
pub(super) fn now_i64() -> i64 {
    i64::try_from(now_ns()).unwrap_or(i64::MAX)
}

/// Follow `console` until it stops: scan its output from `feed` with the patterns of `books`
/// that apply to it (none: no scanning; a new book replaces them) and report link and log
/// changes, each as a candidate sent to `tx`. Waits when `tx` is full
/// (the feed then skips output, counted).
pub(super) async fn watch_console(
    console: Console,
    mut feed: ConsumerFeed,
    mut books: watch::Receiver<Arc<PatternBook>>,
    tx: mpsc::Sender<Candidate>,
) {
    let device = console.name().to_owned();
    let mut state = console.watch_state();
    let mut log = console.watch_log();
    // The watcher does not keep the console running: its owner decides when it stops.
    drop(console);
    let mut log_degraded = log.borrow_and_update().degraded.is_some();
    let mut log_open = true;
    let scanner_for = |books: &mut watch::Receiver<Arc<PatternBook>>| {
        let set = books.borrow_and_update().set_for(&device);
        set.map(|s| Scanner::with_set(device.clone(), s, ScanConfig::default()))
    };
    let mut scanner = scanner_for(&mut books);
    let mut books_open = true;
    let mut was_up = matches!(*state.borrow(), LinkState::Up { .. });
    let mut skips = SkipReport::default();
    let candidate = |source, severity, message: String| {
        Candidate::new(device.clone(), source, severity, message)
    };
    let found = |m: &Match| Candidate::from_match(device.clone(), m, now_i64());
    if was_up {
        let _ = tx
            .send(candidate(
                EventSource::Connection,
                Severity::Info,
                "link up".into(),
            ))
            .await;
    }
    loop {
        let deadline = match (
            scanner.as_ref().and_then(Scanner::next_deadline),
            skips.due(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let idle = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = feed.recv() => match item {
                Some(item) => {
                    if item.chunk.kind != RecordKind::Output {
                        // Only a console-loop notice matters here (see console/loopguard.rs).
                        let text = String::from_utf8_lossy(&item.chunk.bytes);
                        if item.chunk.kind == RecordKind::Notice
                            && text.starts_with(LOOP_NOTICE_PREFIX)
                        {
                            let _ = tx
                                .send(candidate(EventSource::Log, Severity::Warning, text.into_owned()))
                                .await;
                        }
                    }
                    let mut matches = Vec::new();
                    // Output read after a reload is scanned with the new patterns, whichever
                    // branch the select picked first.
                    if books_open && books.has_changed().unwrap_or(false) {
                        matches.extend(scanner.as_mut().map(Scanner::flush).unwrap_or_default());
                        scanner = scanner_for(&mut books);
                    }
                    if item.skipped_before > 0 {
                        if let Some(s) = scanner.as_mut() {
                            // What was before the skip is not the start of what follows.
                            matches.extend(s.flush());
                        }
                        skips.unreported += item.skipped_before;
                        if let Some(message) = skips.take(Instant::now(), feed.skipped_total()) {
                            let _ = tx.send(candidate(EventSource::Log, Severity::Warning, message)).await;
                        }
                    }
                    if let Some(s) = scanner.as_mut()
                        && item.chunk.kind == RecordKind::Output
                    {
                        matches.extend(s.feed(&item.chunk.bytes, Instant::now()));
                    }
                    for m in &matches {
                        if tx.send(found(m)).await.is_err() {
                            return;
                        }
                    }
                }
                None => {
                    // The console stopped: what was skipped since the last report is said now.
                    skips.last = None;
                    if let Some(message) = skips.take(Instant::now(), feed.skipped_total()) {
                        let _ = tx.send(candidate(EventSource::Log, Severity::Warning, message)).await;
                    }
                    return;
                }
            },
            () = idle => {
                if let Some(message) = skips.take(Instant::now(), feed.skipped_total()) {
                    let _ = tx.send(candidate(EventSource::Log, Severity::Warning, message)).await;
                }
                if let Some(s) = scanner.as_mut() {
                    for m in s.poll_idle(Instant::now()) {
                        let _ = tx.send(found(&m)).await;
                    }
                }
            }
            changed = books.changed(), if books_open => {
                if changed.is_err() {
                    books_open = false;
                    continue;
                }
                // The old patterns finish the line they were in; the new ones take the rest.
                let rest = scanner.as_mut().map(Scanner::flush).unwrap_or_default();
                for m in &rest {
                    let _ = tx.send(found(m)).await;
                }
                scanner = scanner_for(&mut books);
            }
            changed = log.changed(), if log_open => {
                if changed.is_err() {
                    // The console stopped; the feed still drains and the state watch ends this.
                    log_open = false;
                    continue;
                }
                let health = log.borrow_and_update().clone();
                match (&health.degraded, log_degraded) {
                    (Some(d), false) => {
                        log_degraded = true;
                        let _ = tx.send(candidate(
                            EventSource::Log,
                            Severity::Error,
                            format!("record log cannot write: {}", d.error),
                        )).await;
                    }
                    (None, true) => {
                        log_degraded = false;
                        let _ = tx.send(candidate(
                            EventSource::Log,
                            Severity::Notice,
                            "record log writes again (the loss is recorded as a gap)".into(),
                        )).await;
                    }
                    _ => {}
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = state.borrow().clone();
                match now {
                    LinkState::Up { .. } if !was_up => {
                        was_up = true;
                        let _ = tx.send(candidate(EventSource::Connection, Severity::Info, "link up".into())).await;
                    }
                    LinkState::Down { reason, .. } => {
                        if was_up {
                            let _ = tx.send(candidate(
                                EventSource::Connection,
                                Severity::Warning,
                                format!("link down: {reason}"),
                            )).await;
                        }
                        was_up = false;
                    }
                    LinkState::Stopped => return,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_reported_at_once_then_at_most_once_a_second_and_nothing_is_lost() {
        let mut skips = SkipReport::default();
        let t0 = Instant::now();
        assert_eq!(skips.due(), None, "nothing skipped, nothing due");
        skips.unreported += 100;
        let first = skips.take(t0, 100);
        assert!(
            first.is_some_and(|m| m.contains(": 100 bytes")),
            "the first skip is said at once"
        );
        skips.unreported += 20;
        skips.unreported += 30;
        assert_eq!(
            skips.take(t0 + Duration::from_millis(500), 150),
            None,
            "not twice a second"
        );
        assert_eq!(skips.due(), Some(t0 + SKIP_REPORT_EVERY));
        let second = skips.take(t0 + SKIP_REPORT_EVERY, 150);
        assert!(
            second.is_some_and(|m| m.contains(": 50 bytes") && m.contains("150 skipped in all")),
            "the next report covers every skip since the last"
        );
        assert_eq!(skips.due(), None);
    }
}
