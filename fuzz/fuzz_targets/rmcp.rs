//! Fuzz the RMCP+/SOL codec (mo_drivers::ipmi::rmcp): no decoder may panic on any datagram,
//! with or without session keys, and whatever a decoder accepts re-encodes consistently; the
//! session's inbound sequence window (`SeqWindow`) accepts exactly what IPMI 2.0 allows.
//!
//! Input layout: one selector byte (which keys to decode with), then the datagram.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_drivers::ipmi::crypto::{CipherSuite, SessionKeys};
use mo_drivers::ipmi::rmcp::{self, Packet, PayloadType, SolPacket};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datagram)) = data.split_first() else {
        return;
    };
    let suite = if selector & 1 == 0 {
        CipherSuite::Suite3
    } else {
        CipherSuite::Suite17
    };
    let keys = SessionKeys::derive(suite, b"fuzz sik");
    let with_keys = selector & 2 != 0;
    let decoded = rmcp::decode_packet(datagram, with_keys.then_some(&keys));

    // Payload decoders on the raw bytes.
    let _ = rmcp::decode_response(datagram);
    let _ = rmcp::OpenSessionResponse::decode(datagram);
    let _ = rmcp::Rakp2::decode(datagram);
    let _ = rmcp::Rakp4::decode(datagram);
    let _ = keys.decrypt(datagram);

    // A SOL packet that decodes encodes back to the same bytes (modulo the 4-bit sequence
    // fields) and decodes again to itself.
    if let Ok(sol) = SolPacket::decode(datagram) {
        let again = SolPacket::decode(&sol.encode()).expect("re-decoding an encoded SOL packet");
        assert_eq!(again, sol);
    }

    // A session packet that decodes goes through encode/decode with the same keys unchanged.
    // (Payloads near the 64 KiB length limit cannot grow by the IV and padding.)
    if let Ok(Packet::Session(p)) = decoded
        && p.payload.len() < 60_000
    {
        let keys = with_keys.then_some(&keys);
        let payload_type =
            if keys.is_some() && !matches!(p.payload_type, PayloadType::Ipmi | PayloadType::Sol) {
                PayloadType::Sol
            } else {
                p.payload_type
            };
        let wire =
            rmcp::encode_packet(keys, payload_type, p.session_id, p.seq, &p.payload, [9; 16]);
        match rmcp::decode_packet(&wire, keys) {
            Ok(Packet::Session(q)) => {
                assert_eq!(q.payload, p.payload);
                assert_eq!((q.session_id, q.seq), (p.session_id, p.seq));
            }
            other => panic!("re-encoded packet does not decode: {other:?}"),
        }
    }

    // The inbound sequence window against a model that remembers every number accepted within
    // the window: a number is accepted once, never zero, only within 16 ahead or 15 behind the
    // highest.
    let mut window = rmcp::SeqWindow::new();
    let mut accepted = std::collections::HashSet::new();
    let mut highest: Option<u32> = None;
    let mut base = u32::from_le_bytes([selector, selector ^ 0xA5, 0xFF, selector]);
    for pair in datagram.chunks(2) {
        // Mostly small steps around the base, sometimes a jump.
        let seq = match pair {
            [0xFF, jump] => base.wrapping_add(u32::from(*jump) << 24),
            [step, ..] => base.wrapping_add(i32::from(*step as i8) as u32),
            [] => continue,
        };
        base = seq;
        let expected = seq != 0
            && !accepted.contains(&seq)
            && highest.is_none_or(|h| {
                (1..=rmcp::SeqWindow::AHEAD).contains(&seq.wrapping_sub(h))
                    || h.wrapping_sub(seq) <= rmcp::SeqWindow::BEHIND
            });
        assert_eq!(window.accept(seq), expected, "seq {seq} after {highest:?}");
        if expected {
            accepted.insert(seq);
            if highest.is_none_or(|h| seq.wrapping_sub(h).wrapping_sub(1) < rmcp::SeqWindow::AHEAD)
            {
                highest = Some(seq);
                // Numbers that fell out of the window behind are forgotten (a 32-bit window).
                accepted.retain(|&a| seq.wrapping_sub(a) <= rmcp::SeqWindow::BEHIND);
            }
        }
        assert_eq!(window.highest(), highest);
    }
});
