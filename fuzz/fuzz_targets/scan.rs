//! Fuzz the output scanner: device bytes fed in arbitrary pieces, with quiet periods in between,
//! must never panic, the partial line must stay within its bound, and the literal prefilter
//! (which passes over lines holding none of the patterns' literals) must find what scanning
//! every line finds (a pattern with no literal turns the prefilter off). Two pattern sets: one
//! the prefilter searches for in the text as it is, one with so many case-insensitive literals
//! that it searches a lowercased copy.
//!
//! Input layout: a byte choosing the piece size (1–64) and the pattern set, then the device
//! output.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mo_core::scan::{Match, Pattern, PatternSet, ScanConfig, Scanner, Severity};

/// Per pattern set: the set, and the same with a pattern that has no literal (so no prefilter),
/// compiled once.
fn sets() -> &'static [(PatternSet, PatternSet)] {
    static SETS: OnceLock<Vec<(PatternSet, PatternSet)>> = OnceLock::new();
    SETS.get_or_init(|| {
        let common = [
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
        let mut lowered = common.to_vec();
        lowered.extend((0..12).map(|i| {
            Pattern::new(
                format!("part{i}"),
                format!(r"(?i)part{i} failed$"),
                Severity::Warning,
                "",
            )
        }));
        [common.to_vec(), lowered]
            .into_iter()
            .filter_map(|patterns| {
                let mut every_line = patterns.clone();
                every_line.push(Pattern::new("digits", r"^\d{12}$", Severity::Info, ""));
                Some((
                    PatternSet::new(&patterns).ok()?,
                    PatternSet::new(&every_line).ok()?,
                ))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, output)) = data.split_first() else {
        return;
    };
    let Some((filtered, every_line)) = sets().get(usize::from(step >> 7)) else {
        return;
    };
    let normal = ScanConfig::default();
    // Small enough that long lines are matched in pieces.
    let short = ScanConfig {
        max_line: 64,
        ..ScanConfig::default()
    };
    let mut scanners = [
        (filtered, &normal),
        (every_line, &normal),
        (filtered, &short),
        (every_line, &short),
    ]
    .map(|(set, config)| Scanner::with_set("fuzz", set.clone(), config.clone()));
    let mut found: [Vec<(String, String)>; 4] = Default::default();
    let keep = |list: &mut Vec<(String, String)>, matches: Vec<Match>| {
        list.extend(
            matches
                .into_iter()
                .filter(|m| m.pattern != "digits")
                .map(|m| (m.pattern, m.line)),
        );
    };
    let mut now = Instant::now();
    for piece in output.chunks(usize::from(step % 64) + 1) {
        for (s, list) in scanners.iter_mut().zip(found.iter_mut()) {
            keep(list, s.feed(piece, now));
        }
        for (s, config) in scanners.iter().zip([&normal, &normal, &short, &short]) {
            assert!(s.partial_line().len() <= config.max_line);
        }
        now += Duration::from_millis(u64::from(step) * 7);
        for (s, list) in scanners.iter_mut().zip(found.iter_mut()) {
            keep(list, s.poll_idle(now));
        }
    }
    for (s, list) in scanners.iter_mut().zip(found.iter_mut()) {
        keep(list, s.flush());
    }
    let [a, b, c, d] = &found;
    assert_eq!(a, b, "with and without the prefilter");
    assert_eq!(c, d, "with and without the prefilter, 64-byte lines");
});
