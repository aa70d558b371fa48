//! Fuzz the time specs of the API and the CLI (`--since`/`--until`, `?since=`:
//! mo_core::log::parse_time_spec): never a panic; surrounding blanks change nothing; a duration
//! ago is never after `now`; every time the log renders (`format_timestamp`) reads back to itself
//! (to the millisecond); `NhMm ago` is exactly that long before `now`, or an error when too long.
//!
//! Input: eight bytes of `now` (ns), then the spec's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::log::{format_timestamp, parse_time_spec};

const SEC: u64 = 1_000_000_000;

fuzz_target!(|data: &[u8]| {
    let (now, text) = match data.split_first_chunk::<8>() {
        Some((now, rest)) => (u64::from_le_bytes(*now), rest),
        None => (1_795_000_000 * SEC, data),
    };
    let spec = String::from_utf8_lossy(text);

    let got = parse_time_spec(&spec, now);
    let padded = parse_time_spec(&format!(" \t{spec}\n "), now);
    assert_eq!(got.as_ref().ok(), padded.as_ref().ok(), "{spec:?}");
    if let Ok(t) = &got {
        let trimmed = spec.trim();
        if trimmed.eq_ignore_ascii_case("now") {
            assert_eq!(*t, now);
        }
        // Starts with a digit and is no date: a duration ago.
        if trimmed.starts_with(|c: char| c.is_ascii_digit())
            && !(trimmed.len() >= 10 && trimmed.as_bytes().get(4) == Some(&b'-'))
        {
            assert!(*t <= now, "{spec:?} gave {t} after now {now}");
        }
    }

    // What the log shows reads back, to the millisecond.
    let shown = format_timestamp(now);
    if !shown.starts_with('@') {
        let back = parse_time_spec(&shown, 0);
        assert_eq!(back.ok(), Some(now - now % 1_000_000), "{shown}");
    }

    // `NhMm ago` from two numbers of the input.
    let (h, m) = (u64::from(text.first().copied().unwrap_or(0)), now % 100_000);
    let ago = parse_time_spec(&format!("{h}h{m}m ago"), now);
    let secs = h * 3600 + m * 60;
    match secs.checked_mul(SEC) {
        Some(ns) => assert_eq!(ago.ok(), Some(now.saturating_sub(ns))),
        None => assert!(ago.is_err()),
    }
});
