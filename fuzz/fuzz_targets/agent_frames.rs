//! Fuzz the agent protocol's frame codec (mo_drivers::agent::codec): whatever a daemon or an
//! agent sends, decoding never panics, gives the same frames (and the same error) however the
//! stream is split, and every decoded frame encodes to bytes that decode to itself.
//!
//! Input layout: a length-prefixed list of piece sizes, then the stream itself.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_drivers::agent::codec::{Decoder, Frame, MAX_FRAME};

fn decode_all(pieces: &[&[u8]]) -> (Vec<Frame>, Option<String>) {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    // The error is lasting.
                    assert_eq!(
                        decoder.next_frame().map_err(|e| e.to_string()),
                        Err(e.to_string())
                    );
                    return (frames, Some(e.to_string()));
                }
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(cuts) = u.arbitrary::<Vec<u8>>() else {
        return;
    };
    let stream = u.take_rest();
    let (whole, whole_err) = decode_all(&[stream]);

    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let size = sizes
            .next()
            .map_or(1, |&s| usize::from(s % 64))
            .clamp(1, rest.len());
        let (piece, tail) = rest.split_at(size);
        pieces.push(piece);
        rest = tail;
    }
    let (split, split_err) = decode_all(&pieces);
    assert_eq!(split, whole, "pieces {cuts:?}");
    assert_eq!(split_err, whole_err, "pieces {cuts:?}");

    for frame in whole {
        let wire = frame.encode();
        assert!(wire.len() <= MAX_FRAME + 4);
        let (again, err) = decode_all(&[&wire]);
        assert_eq!(err, None, "{frame:?}");
        assert_eq!(again, vec![frame]);
    }
});
