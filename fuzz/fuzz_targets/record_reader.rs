//! Fuzz the record-log decoder (`mo_core::log::format`) and the text renderer on arbitrary segment
//! images: they must never panic, and every record that decodes must re-encode to the same bytes.
//!
//! Input layout: the bytes of a segment file (header, then records); without a valid header the
//! whole input is read as records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::log::Renderer;
use mo_core::log::format::{self, Decoded, GENESIS_CHAIN, HEADER_LEN, RecordFields, SegmentHeader};

fuzz_target!(|data: &[u8]| {
    let (mut chain, mut rest) = match SegmentHeader::decode(data) {
        Ok(h) => {
            assert_eq!(h.encode()[..], data[..HEADER_LEN]);
            (h.prev_chain, &data[HEADER_LEN..])
        }
        Err(_) => (GENESIS_CHAIN, data),
    };
    let mut renderer = Renderer::new();
    let mut out = std::io::sink();
    while let Decoded::Record(r) = format::decode_record(rest) {
        assert!(r.len() >= format::RECORD_OVERHEAD && r.len() <= rest.len());
        if r.follows(&chain) {
            // A record that continues the chain is exactly what the encoder writes.
            let mut again = Vec::new();
            let fields = RecordFields {
                seq: r.seq,
                time_ns: r.time_ns,
                kind: r.kind,
                user: r.user,
                bytes: r.bytes,
            };
            let link = format::encode_record(&mut again, &chain, &fields);
            assert_eq!(link.ok(), Some(r.chain));
            assert_eq!(again, r.raw);
        }
        chain = r.chain;
        let _ = renderer.render_parts(r.time_ns, r.kind, r.user, r.bytes, &mut out);
        rest = &rest[r.len()..];
    }
    if let Some((start, r)) = format::decode_record_ending_at(data) {
        assert_eq!(start + r.len(), data.len());
    }
    let _ = renderer.flush_partial(&mut out);
});
