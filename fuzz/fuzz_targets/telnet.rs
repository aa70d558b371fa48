//! Fuzz the telnet codec (mo_drivers::telnet::codec): it must never panic, feeding a stream in
//! any pieces must give the same data and replies as feeding it whole, and whatever state the
//! peer talked it into, encoding then decoding data gives the data back.
//!
//! Input layout: a length-prefixed list of piece sizes, then the stream itself.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_drivers::telnet::codec::{IAC, TelnetCodec};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(cuts) = u.arbitrary::<Vec<u8>>() else {
        return;
    };
    let stream = u.take_rest();

    let mut whole = TelnetCodec::new();
    let (mut expected_data, mut expected_reply) = (Vec::new(), Vec::new());
    whole.feed(stream, &mut expected_data, &mut expected_reply);
    // Data never grows: commands are removed, IAC IAC halves, CR NUL shrinks.
    assert!(expected_data.len() <= stream.len());

    let mut pieces = TelnetCodec::new();
    let (mut got_data, mut got_reply) = (Vec::new(), Vec::new());
    let mut rest = stream;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(1, |&s| usize::from(s % 64));
        let size = size.clamp(1, rest.len());
        let (piece, tail) = rest.split_at(size);
        pieces.feed(piece, &mut got_data, &mut got_reply);
        rest = tail;
    }
    assert_eq!(got_data, expected_data, "pieces {cuts:?}");
    assert_eq!(got_reply, expected_reply, "pieces {cuts:?}");

    // Replies are whole commands: each starts with IAC.
    assert!(expected_reply.is_empty() || expected_reply[0] == IAC);

    // Our own encoding of the stream, read by a codec in the same mode, is the stream again.
    let mut wire = Vec::new();
    whole.encode_data(stream, &mut wire);
    let mut reader = TelnetCodec::new();
    if whole.binary_out() {
        reader.feed(
            &[
                IAC,
                mo_drivers::telnet::codec::WILL,
                mo_drivers::telnet::codec::BINARY,
            ],
            &mut Vec::new(),
            &mut Vec::new(),
        );
    }
    let mut decoded = Vec::new();
    reader.feed(&wire, &mut decoded, &mut Vec::new());
    assert_eq!(decoded, stream);

    let mut out = Vec::new();
    whole.encode_break(&mut out);
    whole.encode_window_size(u16::MAX, 0xff, &mut out);
    assert!(out.len() >= 2);
});
