//! Fuzz the escape-sequence parser: it must never panic, and feeding a stream in any pieces must
//! give the same inputs as feeding it whole (adjacent data and echo joined).
//!
//! Input layout: a flag byte (odd: a custom prefix follows in the next two bytes, else `^Ec`),
//! a length-prefixed list of piece sizes, then the stream itself.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_core::escape::{Command, EscapeConfig, EscapeParser, Input, MAX_NOTE_LEN, MAX_REPLAY_LINES};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(flags) = u.arbitrary::<u8>() else {
        return;
    };
    let config = if flags & 1 == 1 {
        let Ok(prefix) = u.arbitrary::<[u8; 2]>() else {
            return;
        };
        EscapeConfig::new(prefix)
    } else {
        EscapeConfig::default()
    };
    let Ok(cuts) = u.arbitrary::<Vec<u8>>() else {
        return;
    };
    let stream = u.take_rest();

    let mut whole = EscapeParser::new(config);
    let expected = whole.feed(stream);
    assert_eq!(
        normalize(expected.clone()),
        expected,
        "one feed coalesces its output"
    );

    // The same stream in pieces: the sizes given (cycled), or byte by byte if none.
    let mut pieces = EscapeParser::new(config);
    let mut got = Vec::new();
    let mut rest = stream;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(1, |&s| usize::from(s % 64));
        if size == 0 {
            // An empty feed must change nothing; then move on by one byte so the loop ends.
            got.extend(pieces.feed(&[]));
        }
        let size = size.clamp(1, rest.len());
        let (piece, tail) = rest.split_at(size);
        got.extend(pieces.feed(piece));
        rest = tail;
    }
    assert_eq!(normalize(got), expected, "pieces {cuts:?}");
    assert_eq!(pieces.pending(), whole.pending());

    // Nothing is lost when no escape can start.
    if !stream.is_empty() && !stream.contains(&config.prefix[0]) {
        assert_eq!(expected, vec![Input::Data(stream.to_vec())]);
    }

    for item in &expected {
        match item {
            Input::Data(bytes) | Input::Echo(bytes) => assert!(!bytes.is_empty()),
            Input::Command(Command::Note(text)) => {
                // Lossy UTF-8 may turn each byte into a 3-byte replacement character.
                assert!(!text.is_empty() && text.len() <= 3 * MAX_NOTE_LEN);
            }
            Input::Command(Command::Replay(lines)) => assert!(*lines <= MAX_REPLAY_LINES),
            Input::Command(Command::Break(n)) => assert!((1..=9).contains(n)),
            Input::Error(message) => assert!(!message.is_empty()),
            _ => {}
        }
    }
});

/// Join adjacent data and adjacent echo, as one feed of the whole stream does.
fn normalize(items: Vec<Input>) -> Vec<Input> {
    let mut out: Vec<Input> = Vec::with_capacity(items.len());
    for item in items {
        match (out.last_mut(), item) {
            (Some(Input::Data(a)), Input::Data(b)) => a.extend_from_slice(&b),
            (Some(Input::Echo(a)), Input::Echo(b)) => a.extend_from_slice(&b),
            (_, item) => out.push(item),
        }
    }
    out
}
