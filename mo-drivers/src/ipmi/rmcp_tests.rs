//! Tests of the RMCP+ codec: round trips, known packets and random input.

use super::*;
use rand::{Rng, SeedableRng};

fn session(p: Packet) -> SessionPacket {
    match p {
        Packet::Session(s) => s,
        other => panic!("not a session packet: {other:?}"),
    }
}

#[test]
fn ping_and_pong() {
    let ping = encode_ping(9);
    assert_eq!(ping, [6, 0, 0xFF, 6, 0, 0, 0x11, 0xBE, 0x80, 9, 0, 0]);
    let mut pong = ping.clone();
    pong[8] = ASF_PONG;
    pong.extend_from_slice(&[0; 16]);
    assert_eq!(decode_packet(&pong, None).unwrap(), Packet::Pong { tag: 9 });
    assert!(decode_packet(&ping, None).is_err());
}

#[test]
fn session_packets_round_trip_with_and_without_keys() {
    for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
        let keys = SessionKeys::derive(suite, b"sik");
        for len in 0..35 {
            let payload: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5A).collect();
            let wire = encode_packet(Some(&keys), PayloadType::Sol, 7, 42, &payload, [3; 16]);
            // Authenticated area is whole 4-byte words.
            assert_eq!((wire.len() - 4 - suite.integrity_len()) % 4, 0);
            let p = session(decode_packet(&wire, Some(&keys)).unwrap());
            assert_eq!(p.payload, payload);
            assert!(p.encrypted && p.authenticated);
            assert_eq!(
                (p.session_id, p.seq, p.payload_type),
                (7, 42, PayloadType::Sol)
            );
            // Any flipped byte is caught by the integrity check or the header parse.
            let mut bad = wire.clone();
            let i = 5 + len % (wire.len() - 5);
            bad[i] ^= 1;
            assert!(decode_packet(&bad, Some(&keys)).is_err(), "flip at {i}");
        }
        let wire = encode_packet(Some(&keys), PayloadType::Ipmi, 1, 1, b"x", [0; 16]);
        assert!(decode_packet(&wire, None).is_err());
    }
    let clear = encode_packet(None, PayloadType::Rakp1, 0, 0, b"abc", [0; 16]);
    let p = session(decode_packet(&clear, None).unwrap());
    assert_eq!(
        (p.payload_type, p.payload.as_slice()),
        (PayloadType::Rakp1, &b"abc"[..])
    );
}

#[test]
fn ipmi_messages_carry_checksums() {
    let req = encode_request(0x06, 0x3B, 5, &[4]);
    assert_eq!(req, [0x20, 0x18, 0xC8, 0x81, 0x14, 0x3B, 0x04, 0x2C]);
    // A response to it, as a BMC builds it.
    let mut resp = vec![0x81, 0x07 << 2];
    resp.push(checksum(&resp));
    let body = [0x20, 5 << 2, 0x3B, 0x00, 0x04];
    resp.extend_from_slice(&body);
    resp.push(checksum(&body));
    let r = decode_response(&resp).unwrap();
    assert_eq!((r.netfn, r.cmd, r.rq_seq, r.completion), (7, 0x3B, 5, 0));
    assert_eq!(r.data, [4]);
    let last = resp.len() - 1;
    resp[last] ^= 1;
    assert!(decode_response(&resp).is_err());
}

#[test]
fn rakp_messages_decode() {
    let open = encode_open_session(1, 4, 0xA0A1A2A3, CipherSuite::Suite17);
    assert_eq!(open.len(), 32);
    assert_eq!((open[12], open[20], open[28]), (3, 4, 1));
    let mut resp = vec![1, 0, 4, 0];
    resp.extend_from_slice(&0xA0A1A2A3u32.to_le_bytes());
    resp.extend_from_slice(&0x01020304u32.to_le_bytes());
    resp.extend_from_slice(&open[8..]);
    let o = OpenSessionResponse::decode(&resp).unwrap();
    assert_eq!((o.console_sid, o.bmc_sid), (0xA0A1A2A3, 0x01020304));
    assert_eq!(
        OpenSessionResponse::decode(&[1, 0x11]).unwrap().status,
        0x11
    );
    let rakp1 = encode_rakp1(2, 9, &[1; 16], 0x14, b"admin");
    assert_eq!(rakp1.len(), 28 + 5);
    let mut rakp2 = vec![2, 0, 0, 0, 1, 0, 0, 0];
    rakp2.extend_from_slice(&[7; 16]);
    rakp2.extend_from_slice(&[8; 16]);
    rakp2.extend_from_slice(&[9; 20]);
    let r2 = Rakp2::decode(&rakp2).unwrap();
    assert_eq!(
        (r2.console_sid, r2.bmc_random, r2.auth_code.len()),
        (1, [7; 16], 20)
    );
    assert!(Rakp2::decode(&rakp2[..20]).is_err());
    let r4 = Rakp4::decode(&[3, 0, 0, 0, 1, 0, 0, 0, 1, 2]).unwrap();
    assert_eq!(r4.icv, [1, 2]);
    assert_eq!(status_text(0x0D), "unauthorized name");
}

#[test]
fn session_sequence_window_refuses_replays_and_strangers() {
    let mut w = SeqWindow::new();
    assert!(!w.accept(0), "zero is reserved");
    assert!(w.accept(100));
    assert!(!w.accept(100), "a replay");
    assert!(w.accept(101));
    assert!(w.accept(117), "16 ahead");
    assert!(!w.accept(134), "17 ahead");
    assert!(w.accept(102), "late but in the window");
    assert!(!w.accept(102), "a late replay");
    assert!(!w.accept(101), "16 behind the highest (117)");
    assert!(w.accept(103), "14 behind");
    assert!(!w.accept(101), "still 16 behind");
    assert!(!w.accept(1), "far behind");
    assert_eq!(w.highest(), Some(117));
    // Wrapping around 2^32 (skipping the reserved zero).
    let mut w = SeqWindow::new();
    assert!(w.accept(u32::MAX - 1));
    assert!(w.accept(1));
    assert!(!w.accept(0));
    assert!(w.accept(u32::MAX), "late, across the wrap");
    assert!(!w.accept(u32::MAX - 1));
    assert!(!w.accept(u32::MAX - 20));
    assert_eq!(w.highest(), Some(1));
}

#[test]
fn sol_packets_and_sequence_numbers() {
    let p = SolPacket {
        seq: 3,
        ack_seq: 2,
        accepted: 5,
        status: SOL_BREAK,
        data: b"hi".to_vec(),
    };
    assert_eq!(SolPacket::decode(&p.encode()).unwrap(), p);
    assert!(SolPacket::decode(&[1, 2, 3]).is_err());
    assert_eq!(next_sol_seq(15), 1);
    assert_eq!(next_sol_seq(0), 1);
    assert_eq!(next_sol_seq(4), 5);
}

/// Seeded random input: no decoder may panic, with or without keys.
#[test]
fn random_bytes_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1b31_0623);
    let keys3 = SessionKeys::derive(CipherSuite::Suite3, b"k");
    let keys17 = SessionKeys::derive(CipherSuite::Suite17, b"k");
    let valid = encode_packet(Some(&keys3), PayloadType::Sol, 1, 1, b"abcdef", [1; 16]);
    let mut decoded = 0;
    for round in 0..30_000 {
        let mut bytes: Vec<u8> = if round % 3 == 0 {
            // Mutate a valid packet so the parse gets deep.
            let mut v = valid.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..v.len());
                v[i] = rng.random();
            }
            v.truncate(rng.random_range(0..=v.len()));
            v
        } else {
            let len = rng.random_range(0..80);
            (0..len).map(|_| rng.random()).collect()
        };
        if round % 2 == 0 && bytes.len() > 5 {
            bytes[0] = 6;
            bytes[3] = if round % 4 == 0 { 7 } else { 6 };
            bytes[4] = 6;
        }
        for keys in [None, Some(&keys3), Some(&keys17)] {
            if decode_packet(&bytes, keys).is_ok() {
                decoded += 1;
            }
        }
        let _ = decode_response(&bytes);
        let _ = OpenSessionResponse::decode(&bytes);
        let _ = Rakp2::decode(&bytes);
        let _ = Rakp4::decode(&bytes);
        let _ = SolPacket::decode(&bytes);
        let _ = keys3.decrypt(&bytes);
    }
    assert!(decoded > 0);
}
