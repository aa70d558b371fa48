//! Fuzz the record log's readers on damaged or hostile segment files: the decoder
//! (`mo_core::log::format`), the text renderer, and the file readers `verify`, `read`, `tail` and
//! the writer's crash recovery (`LogWriter::open`) and its read-back of recent output. None may panic, every record that decodes must
//! re-encode to the same bytes, and an undamaged log must read back exactly as it was written.
//!
//! Input layout: a mode byte. Even: the rest is the bytes of one segment file (header, then
//! records; without a valid header the whole input is read as records). Odd: the rest describes a
//! log that is built with the real encoder (valid checksums and hash chain, one to three segment
//! files) and then damaged by a few operations (flip, truncate, overwrite a length, append
//! garbage, rename), so that the fuzzer reaches the paths behind the checksums.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use mo_core::log::format::{
    self, Chain, Decoded, GENESIS_CHAIN, HEADER_LEN, Record, RecordFields, SegmentHeader,
};
use mo_core::log::{
    LineHistory, LogOptions, LogWriter, ReadOptions, Renderer, last_lines, read, segment_file_name,
    tail, verify,
};
use mo_core::record::{Chunk, RecordKind, RecordSink};

#[path = "common.rs"]
mod common;
use common::{assert_contiguous, damage};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        decode_image(rest);
        check_files(&[(segment_file_name(1), rest.to_vec())], None);
    } else if let Ok((files, clean)) = build_log(&mut Unstructured::new(rest)) {
        for (_, image) in &files {
            decode_image(image);
        }
        check_files(&files, clean.as_deref());
    }
});

/// Walk a segment image forward and backward with the in-memory decoder.
fn decode_image(data: &[u8]) {
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
        assert_eq!(format::check_record(rest), Ok(r.len()));
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
    // Walking backwards from the end finds only whole records that end exactly there.
    let mut end = data.len();
    while let Some((start, r)) = format::decode_record_ending_at(&data[..end]) {
        assert_eq!(start + r.len(), end);
        end = start;
    }
    let _ = renderer.flush_partial(&mut out);
}

/// Build a log with the real encoder, then damage it. Returns the segment files (name, bytes) and,
/// when nothing was damaged, the records that were written.
fn build_log(u: &mut Unstructured<'_>) -> ArbResult<(Vec<(String, Vec<u8>)>, Option<Vec<Record>>)> {
    let first_seq = if u.arbitrary()? {
        1
    } else {
        u.arbitrary::<u64>()?
    };
    let mut time_ns: u64 = u.arbitrary()?;
    let count: usize = u.int_in_range(0..=12)?;
    let mut clean = true;
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        let mut seq = first_seq.wrapping_add(i as u64);
        if seq < first_seq {
            clean = false;
        }
        if u.ratio(1, 16)? {
            seq = u.arbitrary()?;
            clean = false;
        }
        time_ns = time_ns.wrapping_add(u64::from(u.arbitrary::<u16>()?));
        let code: u8 = u.arbitrary()?;
        let kind = RecordKind::from_code(code % 10).unwrap_or(RecordKind::Output);
        let user_len = u.int_in_range(0..=12)?;
        let user = String::from_utf8_lossy(u.bytes(user_len)?).into_owned();
        let bytes_len = u.int_in_range(0..=80)?;
        let bytes = u.bytes(bytes_len)?.to_vec();
        records.push(Record {
            seq,
            time_ns,
            kind,
            user,
            bytes,
        });
    }

    // Split into one to three non-empty segments (one empty segment for an empty log).
    let parts = if records.is_empty() {
        1
    } else {
        u.int_in_range(1..=records.len().min(3))?
    };
    let mut cuts = vec![0, records.len()];
    while cuts.len() < parts + 1 {
        let cut = u.int_in_range(1..=records.len().saturating_sub(1).max(1))?;
        if !cuts.contains(&cut) {
            cuts.push(cut);
        } else if u.is_empty() {
            break;
        }
    }
    cuts.sort_unstable();

    let created_ns: u64 = u.arbitrary()?;
    let mut chain: Chain = GENESIS_CHAIN;
    let mut files = Vec::new();
    for w in cuts.windows(2) {
        let part = &records[w[0]..w[1]];
        let seg_first = part.first().map_or(first_seq, |r| r.seq);
        let header = SegmentHeader {
            first_seq: seg_first,
            created_ns: part.first().map_or(created_ns, |r| r.time_ns),
            prev_chain: chain,
        };
        let mut image = header.encode().to_vec();
        for r in part {
            let fields = RecordFields {
                seq: r.seq,
                time_ns: r.time_ns,
                kind: r.kind,
                user: &r.user,
                bytes: &r.bytes,
            };
            chain = format::encode_record(&mut image, &chain, &fields).unwrap_or(chain);
        }
        files.push((segment_file_name(seg_first), image));
    }
    if files
        .iter()
        .enumerate()
        .any(|(i, f)| files[..i].iter().any(|g| g.0 == f.0))
    {
        // Two segments with the same name (a repeated seq): the last one written wins.
        clean = false;
    }

    for _ in 0..u.int_in_range(0..=3)? {
        let which = u.choose_index(files.len())?;
        let (name, image) = &mut files[which];
        let op: u8 = u.int_in_range(0..=5)?;
        match op {
            0..=4 => damage(image, op, u)?,
            _ => *name = segment_file_name(u.arbitrary()?),
        }
        clean = false;
    }
    Ok((files, clean.then_some(records)))
}

/// A directory of this process for the segment files.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("mo-fuzz-record-reader-{}", std::process::id()))
    })
}

/// Write the segment files and run the file readers over them.
fn check_files(files: &[(String, Vec<u8>)], clean: Option<&[Record]>) {
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the fuzz directory");
    for (name, image) in files {
        std::fs::write(dir.join(name), image).expect("write a segment file");
    }

    let report = verify(dir).expect("verify only fails on I/O errors");
    let all: Vec<_> = match read(dir, &ReadOptions::default()) {
        Ok(records) => records.collect(),
        Err(e) => vec![Err(e)],
    };
    if let Some(expected) = clean {
        assert!(report.is_ok(), "undamaged log: {report}");
        assert!(report.torn_tail.is_none(), "undamaged log: {report}");
        assert_eq!(report.records, expected.len() as u64);
        let got: Vec<Record> = all
            .into_iter()
            .map(|r| r.expect("undamaged log reads"))
            .collect();
        assert_eq!(got, expected);
        for n in [0, 1, 3, expected.len()] {
            let last = tail(dir, n).expect("undamaged log tails");
            assert_eq!(last[..], expected[expected.len().saturating_sub(n)..]);
        }
    } else {
        // Whatever was read before an error is in order without gaps.
        assert_contiguous(&all);
    }
    // The modem lines the log last recorded (`mo device show`): never a panic, and on an
    // undamaged log the same as feeding every record in order.
    let lines = last_lines(dir, true);
    if let Some(expected) = clean {
        let mut fed = LineHistory::default();
        for r in expected {
            fed.feed(r.kind, r.time_ns, &r.user, &r.bytes);
        }
        assert_eq!(lines.expect("undamaged log reads"), fed);
    }
    for n in [1, 5] {
        if let Ok(last) = tail(dir, n) {
            assert!(last.len() <= n);
            assert!(
                last.windows(2)
                    .all(|w| w[0].seq.saturating_add(1) == w[1].seq)
            );
        }
    }
    // A filtered read yields only records that pass the filter.
    let opts = ReadOptions {
        from_seq: files.first().map(|f| f.1.len() as u64 % 8),
        since: Some(1 << 20),
        until: Some(u64::MAX - (1 << 20)),
    };
    if let Ok(records) = read(dir, &opts) {
        for r in records.flatten() {
            assert!(r.seq >= opts.from_seq.unwrap_or(0));
            assert!(r.time_ns >= 1 << 20 && r.time_ns < u64::MAX - (1 << 20));
        }
    }

    // Crash recovery: opening for writing drops a torn tail; what it appends then verifies.
    if let Ok((mut writer, _recovery)) = LogWriter::open(dir, LogOptions::default()) {
        // Reading the last output back (a quiet console's replay) gives at most what was asked.
        for want in [0, 7, 4096, 1 << 20] {
            if let Some(back) = writer.recent_output(want) {
                assert!(
                    back.len() <= want,
                    "{} bytes read back for {want}",
                    back.len()
                );
            }
        }
        let chunk = Chunk {
            seq: writer.next_seq(),
            time_ns: 1_800_000_000_000_000_000,
            kind: RecordKind::Note,
            user: "fuzz".into(),
            offset: 0,
            bytes: "appended".into(),
        };
        if writer.append(&chunk).is_ok() {
            let after = verify(dir).expect("verify only fails on I/O errors");
            assert!(
                after.torn_tail.is_none(),
                "after recovery and append: {after}"
            );
            if clean.is_some() {
                assert!(after.is_ok(), "after recovery and append: {after}");
            }
        }
    }
}
