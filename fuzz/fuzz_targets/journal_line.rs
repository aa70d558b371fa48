//! Fuzz the parser of `journalctl -o json` lines (mo_core::event::parse_journal_line), which
//! `[[journal]]` sources feed with whatever the journal holds: it must never panic, and an entry
//! it accepts has its message (and identifier and unit when present) from the line's fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::event::parse_journal_line;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(entry)) = parse_journal_line(data) {
        // What was accepted is a JSON object with a MESSAGE.
        let value: serde_json::Value =
            serde_json::from_slice(data.trim_ascii()).unwrap_or_default();
        assert!(value.get("MESSAGE").is_some(), "accepted without MESSAGE");
        if let Some(serde_json::Value::String(m)) = value.get("MESSAGE") {
            assert_eq!(&entry.message, m);
        }
        if let Some(ns) = entry.time_ns {
            assert_eq!(ns % 1000, 0, "microseconds scaled to ns");
        }
    }
});
