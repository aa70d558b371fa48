//! Compressed segments: the writer compresses closed segments after rotation, and reading,
//! tail, search, notes, verify and reopening work across compressed and plain segments alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use super::*;
use crate::log::segment;
use crate::log::tests::{SEC, T0, all, append_lines, chunk, seqs};
use crate::log::{
    LogOptions, LogWriter, SearchOptions, is_compressed, list_notes, list_segments, search, tail,
    verify,
};
use crate::record::{RecordKind, RecordSink};

fn compressing() -> LogOptions {
    LogOptions {
        segment_max_bytes: 600,
        compress_level: Some(3),
        ..LogOptions::default()
    }
}

/// (compressed, plain) segment counts.
fn forms(dir: &Path) -> (usize, usize) {
    let segs = list_segments(dir).unwrap();
    let packed = segs.iter().filter(|s| s.is_compressed()).count();
    (packed, segs.len() - packed)
}

/// Write 30 lines to a compressing log in `dir`, close it, and return its first segment's path,
/// compressed.
fn closed_log_with_compressed_first_segment(dir: &Path) -> std::path::PathBuf {
    let (mut w, _) = LogWriter::open(dir, compressing()).unwrap();
    append_lines(&mut w, 30);
    w.wait_for_compression();
    drop(w);
    let first = list_segments(dir).unwrap()[0].path.clone();
    assert!(is_compressed(&first));
    first
}

fn search_text(dir: &Path, pattern: &str, context: usize) -> Vec<String> {
    let mut out = Vec::new();
    let opts = SearchOptions {
        pattern: pattern.into(),
        before: context,
        after: context,
        ..SearchOptions::default()
    };
    search(dir, &opts, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.get(25..).unwrap_or(l).to_owned())
        .collect()
}

#[test]
fn rotated_segments_are_compressed_and_read_like_plain_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut w, _) = LogWriter::open(dir, compressing()).unwrap();
    append_lines(&mut w, 60);
    w.wait_for_compression();
    let (packed, plain) = forms(dir);
    assert!(packed >= 3, "{packed} compressed segments");
    assert_eq!(plain, 1, "only the live segment stays plain");
    let live = w.segment_path().unwrap().to_owned();
    assert!(!is_compressed(&live) && live.exists());
    // No plain copy or temporary file is left beside a compressed segment.
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.ends_with(".zst") || Path::new(&name) == live.file_name().unwrap(),
            "unexpected file {name}"
        );
    }

    assert_eq!(seqs(&all(dir)), (1..=60).collect::<Vec<_>>());
    assert!(
        all(dir)
            .iter()
            .all(|r| r.bytes == format!("line {}\n", r.seq).as_bytes())
    );
    // tail walks back into compressed segments.
    assert_eq!(seqs(&tail(dir, 25).unwrap()), (36..=60).collect::<Vec<_>>());
    // Reading from a time inside a compressed segment skips the ones before it.
    let from = crate::log::read(
        dir,
        &crate::log::ReadOptions {
            since: Some(T0 + 10 * SEC),
            ..Default::default()
        },
    )
    .unwrap()
    .map(|r| r.unwrap().seq)
    .collect::<Vec<_>>();
    assert_eq!(from, (10..=60).collect::<Vec<_>>());
    // Search with context crosses from compressed into plain segments.
    let first_live = list_segments(dir).unwrap().last().unwrap().first_seq;
    let hit = format!("^line {first_live}$");
    assert_eq!(
        search_text(dir, &hit, 1),
        [
            format!("line {}", first_live - 1),
            format!("line {first_live}"),
            format!("line {}", first_live + 1),
        ]
    );
    let report = verify(dir).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 60);

    // Reopened, the writer continues the chain; the catch-up pass compresses the rest.
    drop(w);
    let (mut w, _) = LogWriter::open(dir, compressing()).unwrap();
    append_lines(&mut w, 30);
    w.append(&chunk(
        91,
        T0 + 91 * SEC,
        RecordKind::Note,
        "alice",
        b"after reopen",
    ))
    .unwrap();
    w.wait_for_compression();
    assert_eq!(seqs(&all(dir)), (1..=91).collect::<Vec<_>>());
    assert_eq!(list_notes(dir, None, None).unwrap().len(), 1);
    let report = verify(dir).unwrap();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn mixed_forms_a_compressed_newest_segment_and_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plain_opts = LogOptions {
        segment_max_bytes: 600,
        ..LogOptions::default()
    };
    let (mut w, _) = LogWriter::open(dir, plain_opts.clone()).unwrap();
    append_lines(&mut w, 40);
    drop(w);
    // Offline compression of every closed segment; the newest stays plain.
    let n = compress_closed_segments(dir, 1).unwrap();
    let (packed, plain) = forms(dir);
    assert_eq!((n, packed, plain), (packed, packed, 1));
    // More plain segments after compressed ones.
    let (mut w, _) = LogWriter::open(dir, plain_opts.clone()).unwrap();
    append_lines(&mut w, 40);
    drop(w);
    assert!(forms(dir).1 > 1);
    assert_eq!(seqs(&all(dir)), (1..=80).collect::<Vec<_>>());
    assert!(verify(dir).unwrap().is_ok());

    // Compress the newest too (as if closed for good): a writer starts a new segment after it.
    let newest = list_segments(dir).unwrap().last().unwrap().clone();
    compress_segment(&newest.path, 3, &Mutex::new(()))
        .unwrap()
        .unwrap();
    let (mut w, rec) = LogWriter::open(dir, plain_opts.clone()).unwrap();
    assert_eq!(rec.next_seq, 81);
    append_lines(&mut w, 5);
    drop(w);
    assert_eq!(seqs(&all(dir)), (1..=85).collect::<Vec<_>>());
    let report = verify(dir).unwrap();
    assert!(report.is_ok(), "{report}");

    // A crash between rename and unlink leaves both forms: the compressed one is read, and the
    // next pass removes the plain copy; a stray temporary file is removed too.
    let first = list_segments(dir).unwrap()[0].clone();
    assert!(first.is_compressed());
    let plain_path = first.path.with_extension("");
    let bytes = {
        let data = crate::log::segment::SegmentData::open(&first.path).unwrap();
        let mut b = vec![0u8; data.len().unwrap() as usize];
        data.read_at(&mut b, 0).unwrap();
        b
    };
    std::fs::write(&plain_path, &bytes).unwrap();
    std::fs::write(dir.join("00000000000000000099.mlog.zst.tmp"), b"junk").unwrap();
    assert_eq!(list_segments(dir).unwrap()[0].path, first.path);
    assert_eq!(seqs(&all(dir)), (1..=85).collect::<Vec<_>>());
    compress_closed_segments(dir, 3).unwrap();
    assert!(!plain_path.exists());
    assert!(!dir.join("00000000000000000099.mlog.zst.tmp").exists());
}

#[test]
fn a_damaged_compressed_segment_is_reported_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = closed_log_with_compressed_first_segment(dir);
    let mut bytes = std::fs::read(&first).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&first, &bytes).unwrap();
    let report = verify(dir).unwrap();
    assert!(!report.is_ok());
    assert!(report.to_string().contains(".mlog.zst"), "{report}");
    let err = crate::log::read(dir, &Default::default())
        .unwrap()
        .find_map(|r| r.err())
        .expect("reading a damaged compressed segment must fail");
    assert!(err.to_string().contains("decompress"), "{err}");
    // Truncated, and not zstd at all.
    std::fs::write(&first, &bytes[..bytes.len() / 3]).unwrap();
    assert!(!verify(dir).unwrap().is_ok());
    std::fs::write(&first, b"plain text, not zstd").unwrap();
    assert!(!verify(dir).unwrap().is_ok());
    assert!(tail(dir, 1000).is_err());
}

#[test]
fn retention_removes_compressed_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = LogOptions {
        retain_max_bytes: Some(1500),
        ..compressing()
    };
    let (mut w, _) = LogWriter::open(dir, opts).unwrap();
    for _ in 0..20 {
        append_lines(&mut w, 10);
        w.wait_for_compression();
    }
    let records = all(dir);
    assert_eq!(records.last().unwrap().seq, 200);
    assert!(records.first().unwrap().seq > 1, "nothing was pruned");
    let total: u64 = list_segments(dir)
        .unwrap()
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum();
    assert!(total <= 1500 + 600, "{total} bytes kept");
    assert!(verify(dir).unwrap().is_ok());
    let _ = w.next_seq();
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB each (4 bytes apiece): a few KiB that
/// decompress to `blocks` × 128 KiB. `claim` is the content size its header states, if any.
fn rle_frame(blocks: usize, claim: Option<u64>) -> Vec<u8> {
    let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
    match claim {
        // Single segment, 8-byte content size.
        Some(size) => {
            f.push(0xE0);
            f.extend_from_slice(&size.to_le_bytes());
        }
        // No content size; window 128 KiB (log 17 = 10 + 7).
        None => f.extend_from_slice(&[0x00, 7 << 3]),
    }
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | ((128 * 1024) << 3);
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(b'x');
    }
    f
}

#[test]
fn a_frame_claiming_or_decompressing_to_too_much_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = closed_log_with_compressed_first_segment(dir);
    let name = first.file_name().unwrap().to_str().unwrap().to_owned();

    // A 25-byte frame that claims 8 GiB: refused from its header, naming the file.
    std::fs::write(&first, rle_frame(1, Some(8 << 30))).unwrap();
    let err = crate::log::read(dir, &Default::default())
        .unwrap()
        .find_map(|r| r.err())
        .expect("a frame claiming 8 GiB must be refused");
    let text = err.to_string();
    assert!(
        text.contains(&name) && text.contains("claims 8589934592 bytes"),
        "{text}"
    );
    let report = verify(dir).unwrap();
    assert!(!report.is_ok());
    assert!(report.to_string().contains("claims"), "{report}");
    assert!(tail(dir, 1000).is_err());
    // Reopening for writing only reads the newest segment, so it still works.
    assert!(LogWriter::open(dir, compressing()).is_ok());

    // Without a stated size, decompressing stops at the limit (a small one here; the real one
    // is 1 GiB): 8 blocks are 1 MiB.
    let bomb = dir.join("bomb.mlog.zst");
    std::fs::write(&bomb, rle_frame(8, None)).unwrap();
    let bytes = segment::decompress_bounded(&bomb, 1 << 20).unwrap();
    // The buffer never grows past the bound either.
    assert_eq!((bytes.len(), bytes.capacity()), (1 << 20, 1 << 20));
    let err = segment::decompress_bounded(&bomb, (1 << 20) - 1).unwrap_err();
    assert!(
        err.to_string().contains("more than 1048575 bytes") && err.to_string().contains("bomb"),
        "{err}"
    );
    // A stated size below the limit is the bound.
    std::fs::write(&bomb, rle_frame(2, Some(256 * 1024))).unwrap();
    assert_eq!(
        segment::decompress_bounded(&bomb, 1 << 20).unwrap().len(),
        256 * 1024
    );
    let err = segment::decompress_bounded(&bomb, 100_000).unwrap_err();
    assert!(err.to_string().contains("claims 262144 bytes"), "{err}");
}
