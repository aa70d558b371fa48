//! Watching one console: its output through a scanner, its link state and its record log's health,
//! each turned into [`Candidate`] events for the event manager (see [`super::EventService`]).
//!
//! The scanner reads the console's output from a bounded consumer ([`crate::console::Follow::Output`]):
//! it never slows the console; when it falls behind, the skipped bytes are counted
//! (`ConsumerFeed::skipped_total`, the daemon's `mo_scanner_skipped_bytes_total`), the partial line
//! is dropped, and a warning event with source `log` says how much was not scanned.

use std::time::Instant;

use tokio::sync::mpsc;

use super::{Candidate, EventSource};
use crate::console::{Console, ConsumerFeed, LinkState};
use crate::record::now_ns;
use crate::scan::{Match, PatternSet, ScanConfig, Scanner, Severity};

/// The time now, as events carry it.
pub(super) fn now_i64() -> i64 {
    i64::try_from(now_ns()).unwrap_or(i64::MAX)
}

/// Follow `console` until it stops: scan its output from `feed` with `set` (none: no scanning)
/// and report link and log changes, each as a candidate sent to `tx`. Waits when `tx` is full
/// (the feed then skips output, counted).
pub(super) async fn watch_console(
    console: Console,
    mut feed: ConsumerFeed,
    set: Option<PatternSet>,
    tx: mpsc::Sender<Candidate>,
) {
    let device = console.name().to_owned();
    let mut state = console.watch_state();
    let mut log = console.watch_log();
    // The watcher does not keep the console running: its owner decides when it stops.
    drop(console);
    let mut log_degraded = log.borrow_and_update().degraded.is_some();
    let mut log_open = true;
    let mut scanner = set.map(|s| Scanner::with_set(device.clone(), s, ScanConfig::default()));
    let mut was_up = matches!(*state.borrow(), LinkState::Up { .. });
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
        let deadline = scanner.as_ref().and_then(Scanner::next_deadline);
        let idle = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = feed.recv() => match item {
                Some(item) => {
                    let mut matches = Vec::new();
                    if item.skipped_before > 0 {
                        if let Some(s) = scanner.as_mut() {
                            // What was before the skip is not the start of what follows.
                            matches.extend(s.flush());
                        }
                        let _ = tx.send(candidate(
                            EventSource::Log,
                            Severity::Warning,
                            format!(
                                "scanner fell behind: {} bytes of output were not scanned \
                                 (the record log has them; {} skipped in all)",
                                item.skipped_before,
                                feed.skipped_total()
                            ),
                        )).await;
                    }
                    if let Some(s) = scanner.as_mut() {
                        matches.extend(s.feed(&item.chunk.bytes, Instant::now()));
                    }
                    for m in &matches {
                        if tx.send(found(m)).await.is_err() {
                            return;
                        }
                    }
                }
                None => return,
            },
            () = idle => {
                if let Some(s) = scanner.as_mut() {
                    for m in s.poll_idle(Instant::now()) {
                        let _ = tx.send(found(&m)).await;
                    }
                }
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
