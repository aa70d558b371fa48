//! Fuzz what an RFC 2217 server sends (mo_drivers::rfc2217 through the telnet codec of an RFC 2217
//! client): never a panic; the COM-PORT-OPTION messages and the port state are the same however
//! the stream is split (taking messages after every piece, as the link's observer does); no body
//! but the empty one is refused by `Reply::parse`; and every answer a server can give, encoded
//! on the wire (`IAC SB 44 … IAC SE`, IAC doubled), reaches the client as that answer (or, over
//! the codec's bound of 512 bytes, is dropped whole).
//!
//! Input: a length-prefixed list of piece sizes, then the server's stream.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_drivers::rfc2217::{PortState, Reply, SERVER_OFFSET, code};
use mo_drivers::telnet::codec::{
    COM_PORT_OPTION, MAX_SUBNEGOTIATION, TelnetCodec, encode_subnegotiation,
};

/// Feed `pieces` to a fresh client codec; the messages taken after each piece, and the state.
fn run<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut codec = TelnetCodec::com_port_client();
    let (mut data, mut reply, mut messages) = (Vec::new(), Vec::new(), Vec::new());
    codec.start(&mut reply);
    for piece in pieces {
        codec.feed(piece, &mut data, &mut reply);
        while let Some(body) = codec.take_com_port_message() {
            messages.push(body);
        }
    }
    (messages, data)
}

fn state_of(messages: &[Vec<u8>]) -> PortState {
    let mut state = PortState::default();
    for body in messages {
        match Reply::parse(body) {
            Some(reply) => state.apply(&reply),
            None => assert!(body.is_empty()),
        }
    }
    state
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(cuts) = u.arbitrary::<Vec<u8>>() else {
        return;
    };
    let stream = u.take_rest();

    let (whole, whole_data) = run(std::iter::once(stream));
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let size = sizes
            .next()
            .map_or(1, |&s| usize::from(s % 32))
            .clamp(1, rest.len());
        let (piece, tail) = rest.split_at(size);
        pieces.push(piece);
        rest = tail;
    }
    let (split, split_data) = run(pieces.into_iter());
    assert_eq!(split_data, whole_data);
    // Taken after every piece, nothing is dropped; whole, the oldest of a flood may be.
    assert!(split.ends_with(&whole), "{cuts:?}");
    if whole.len() == split.len() {
        assert_eq!(state_of(&whole), state_of(&split));
    }

    // Each answer, sent on the wire, arrives as itself.
    for body in whole.iter().chain(std::iter::once(&stream.to_vec())) {
        let Some(reply) = Reply::parse(body) else {
            continue;
        };
        let mut wire = Vec::new();
        encode_subnegotiation(COM_PORT_OPTION, body, &mut wire);
        let (got, _) = run(std::iter::once(wire.as_slice()));
        // Bodies over the codec's bound are dropped whole (MAX_SUBNEGOTIATION).
        if body.len() > MAX_SUBNEGOTIATION {
            assert!(got.is_empty());
            continue;
        }
        if body.len() == MAX_SUBNEGOTIATION {
            continue;
        }
        assert_eq!(got.as_slice(), std::slice::from_ref(body));
        assert_eq!(Reply::parse(&got[0]).as_ref(), Some(&reply));
    }
    // Well-formed answers parse to their values.
    let value = stream.first().copied().unwrap_or(0);
    let baud = u32::from_be_bytes([value, value ^ 0x55, 0xff, value]);
    let mut body = vec![SERVER_OFFSET + code::SET_BAUDRATE];
    body.extend_from_slice(&baud.to_be_bytes());
    assert_eq!(Reply::parse(&body), Some(Reply::Baud(baud)));
    assert_eq!(
        Reply::parse(&[SERVER_OFFSET + code::NOTIFY_MODEMSTATE, value]),
        Some(Reply::ModemState(value))
    );
});
