//! Fuzz the reader of mo-agent's spool segments (mo_drivers::agent::spool_record), which the
//! agent runs on whatever files it finds in its spool directory on start (a crash mid-write, a
//! full disk, a damaged disk): it never panics, keeps only a valid prefix of consecutive records
//! that re-encodes to exactly that prefix, and reads that prefix alone the same way. A segment
//! built from records and then damaged keeps every record before the damage.
//!
//! Input layout: a selector byte (even: raw bytes; odd: records built from the input, then one
//! byte flipped or the tail cut), then the data.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_drivers::agent::spool_record::{HEADER, MAX_RECORD, RecordAt, encode, parse_segment};

/// Check the parse of `data` after `prev`; returns the records.
fn check(data: &[u8], prev: Option<u64>) -> Vec<RecordAt> {
    let (records, valid) = parse_segment(data, prev);
    assert!(valid <= data.len());
    let mut again = Vec::new();
    let mut expect = prev;
    for r in &records {
        if let Some(p) = expect {
            assert_eq!(Some(r.seq), p.checked_add(1), "{records:?}");
        }
        expect = Some(r.seq);
        assert_eq!(r.offset as usize, again.len() + HEADER);
        let start = r.offset as usize;
        let bytes = &data[start..start + r.len as usize];
        again.extend(encode(r.seq, r.time_ns, bytes));
    }
    assert_eq!(
        &again[..],
        &data[..valid],
        "the valid part is not the records"
    );
    assert_eq!(
        parse_segment(&data[..valid], prev),
        (records.clone(), valid)
    );
    records
}

fuzz_target!(|input: &[u8]| {
    let mut u = Unstructured::new(input);
    let Ok(selector) = u.arbitrary::<u8>() else {
        return;
    };
    let prev = u.arbitrary::<Option<u64>>().unwrap_or(None);
    if selector % 2 == 0 {
        check(u.take_rest(), prev);
        return;
    }
    // Records with consecutive numbers, then damage.
    let first = prev.map_or(1, |p| p.wrapping_add(1));
    let mut seg = Vec::new();
    let mut ends = Vec::new();
    let mut seq = first;
    while let Ok(chunk) = u.arbitrary::<Vec<u8>>() {
        if chunk.is_empty() || chunk.len() > MAX_RECORD || ends.len() >= 64 {
            break;
        }
        let time_ns = u.arbitrary::<i64>().unwrap_or(0);
        seg.extend(encode(seq, time_ns, &chunk));
        ends.push(seg.len());
        seq = seq.wrapping_add(1);
    }
    let whole = check(&seg, prev);
    // (unless the numbers would pass u64::MAX: the reader stops there)
    if prev.is_none_or(|p| p.checked_add(ends.len() as u64).is_some()) {
        assert_eq!(whole.len(), ends.len(), "an undamaged segment lost records");
    }
    let at = u.arbitrary::<usize>().unwrap_or(0) % seg.len().max(1);
    let mut damaged = seg.clone();
    if u.arbitrary::<bool>().unwrap_or(false) {
        damaged.truncate(at);
    } else if let Some(b) = damaged.get_mut(at) {
        *b ^= u.arbitrary::<u8>().unwrap_or(1).max(1);
    }
    let kept = check(&damaged, prev);
    // Every record that ends before the damage is kept.
    let intact = ends.iter().filter(|&&end| end <= at).count();
    assert!(
        kept.len() >= intact.min(whole.len()),
        "{} < {intact}",
        kept.len()
    );
});
