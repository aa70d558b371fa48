//! Fuzz break sequences (mo_core::breakseq, conserver notation set per device from the API, the
//! CLI and imported conserver.cf files): never a panic; a parsed sequence keeps its text, has at
//! least one step, never an empty or split `Send`, and needs BREAK exactly when it has a `\z`
//! step; any bytes written as `\ooo` octal escapes parse back to exactly those bytes; only
//! numbers 1 to 9 name a slot.
//!
//! Input: one byte of slot number, then the sequence's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::breakseq::{BreakSequence, BreakSequences, BreakStep};

fuzz_target!(|data: &[u8]| {
    let (slot, text) = match data.split_first() {
        Some((slot, rest)) => (*slot, rest),
        None => (1, data),
    };
    let text = String::from_utf8_lossy(text);

    if let Ok(seq) = BreakSequence::parse(&text) {
        assert_eq!(seq.text(), text);
        assert!(!seq.steps().is_empty());
        for pair in seq.steps().windows(2) {
            assert!(
                !matches!(pair, [BreakStep::Send(_), BreakStep::Send(_)]),
                "{text:?}: two sends in a row"
            );
        }
        for step in seq.steps() {
            if let BreakStep::Send(bytes) = step {
                assert!(!bytes.is_empty(), "{text:?}: empty send");
            }
        }
        assert_eq!(
            seq.needs_break(),
            seq.steps().iter().any(|s| matches!(s, BreakStep::Break(_)))
        );
        let mut slots = BreakSequences::empty();
        let set = slots.set(slot, seq.clone());
        assert_eq!(set.is_ok(), (1..=9).contains(&slot));
        assert_eq!(slots.get(slot), set.is_ok().then_some(&seq));
        assert_eq!(slots.iter().count(), usize::from(set.is_ok()));
    }

    // Every byte as `\ooo` gives those bytes back.
    if !text.is_empty() {
        let octal: String = text.bytes().map(|b| format!("\\{b:03o}")).collect();
        let seq = BreakSequence::parse(&octal);
        assert_eq!(
            seq.ok().map(|s| s.steps().to_vec()),
            Some(vec![BreakStep::Send(text.as_bytes().to_vec())])
        );
    }
});
