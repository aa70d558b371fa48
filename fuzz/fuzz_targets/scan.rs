//! Fuzz the output scanner: device bytes fed in arbitrary pieces, with quiet periods in between,
//! must never panic, the partial line must stay within its bound, and the literal prefilter
//! (which passes over lines holding none of the patterns' literals) must find what scanning
//! every line finds (a pattern with no literal turns the prefilter off).
//!
//! Input layout: a byte choosing the piece size (1–64), then the device output.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mo_core::scan::{Pattern, PatternSet, ScanConfig, Scanner, Severity};

/// The patterns, and the same with one that has no literal (so no prefilter), compiled once.
fn sets() -> Option<&'static (PatternSet, PatternSet)> {
    static SETS: OnceLock<Option<(PatternSet, PatternSet)>> = OnceLock::new();
    SETS.get_or_init(|| {
        let patterns = [
            Pattern::new(
                "panic",
                r"Kernel panic - not syncing: (.*)",
                Severity::Critical,
                "panic: $1",
            ),
            Pattern::new("login", r"login: $", Severity::Info, "{device} at login"),
            Pattern::new("prompt", r"^(=>|ok|boot>) ?$", Severity::Notice, ""),
            Pattern::new("last", r"Last login: \w+", Severity::Info, ""),
            Pattern::new(
                "fan",
                r"(?i)fan \d+ (failure|speed low)",
                Severity::Error,
                "",
            ),
            Pattern::new("pw", r"^Password: $", Severity::Info, ""),
        ];
        let mut every_line = patterns.to_vec();
        every_line.push(Pattern::new("digits", r"^\d{12}$", Severity::Info, ""));
        Some((
            PatternSet::new(&patterns).ok()?,
            PatternSet::new(&every_line).ok()?,
        ))
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, output)) = data.split_first() else {
        return;
    };
    let Some((filtered, every_line)) = sets() else {
        return;
    };
    let mut scanner = Scanner::with_set("fuzz", filtered.clone(), ScanConfig::default());
    let mut plain = Scanner::with_set("fuzz", every_line.clone(), ScanConfig::default());
    // Small enough that long lines are matched in pieces.
    let config = ScanConfig {
        max_line: 64,
        ..ScanConfig::default()
    };
    let mut small = Scanner::with_set("fuzz", scanner.patterns().clone(), config.clone());
    let mut small_plain = Scanner::with_set("fuzz", plain.patterns().clone(), config.clone());
    let max_line = ScanConfig::default().max_line;
    let mut now = Instant::now();
    let mut found: [Vec<(String, String)>; 4] = Default::default();
    let mut keep = |i: usize, matches: Vec<mo_core::scan::Match>| {
        if let Some(list) = found.get_mut(i) {
            list.extend(
                matches
                    .into_iter()
                    .filter(|m| m.pattern != "digits")
                    .map(|m| (m.pattern, m.line)),
            );
        }
    };
    for piece in output.chunks(usize::from(step % 64) + 1) {
        for (i, s) in [&mut scanner, &mut plain, &mut small, &mut small_plain]
            .into_iter()
            .enumerate()
        {
            keep(i, s.feed(piece, now));
        }
        assert!(scanner.partial_line().len() <= max_line);
        assert!(small.partial_line().len() <= config.max_line);
        now += Duration::from_millis(u64::from(step) * 7);
        for (i, s) in [&mut scanner, &mut plain, &mut small, &mut small_plain]
            .into_iter()
            .enumerate()
        {
            keep(i, s.poll_idle(now));
        }
    }
    for (i, s) in [&mut scanner, &mut plain, &mut small, &mut small_plain]
        .into_iter()
        .enumerate()
    {
        keep(i, s.flush());
    }
    assert_eq!(found[0], found[1], "with and without the prefilter");
    assert_eq!(
        found[2], found[3],
        "with and without the prefilter, short lines"
    );
});
