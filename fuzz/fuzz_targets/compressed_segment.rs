//! Fuzz the record log's compressed closed segments (`NAME.mlog.zst`, one zstd frame holding the
//! plain segment; `mo_core::log`, `docs/log-format.md`). The readers decompress such a segment
//! into memory and read it like a plain one: `read`, `tail`, `verify`, `show`, `search`, and the
//! writer's recovery (`LogWriter::open`) must never panic on a damaged or hostile frame, a frame
//! that claims or decompresses to too much is refused (never more than
//! `MAX_DECOMPRESSED_SEGMENT` bytes of memory), and an undamaged compressed log reads back
//! exactly as it was written.
//!
//! Input layout: a mode byte. Even: the rest is the bytes of a `.mlog.zst` file (bit 1 set: it is
//! followed by a valid plain live segment). Odd: the rest describes records that the real
//! `LogWriter` writes with small segments (so that it rotates), whose closed segments are then
//! compressed (`compress_closed_segments`; sometimes the newest too), and a few operations that
//! damage the compressed files (flip, truncate, overwrite, append, zero, remove, or damage the
//! plain bytes inside and compress again) or leave harmless leftovers (a plain copy beside its
//! compressed form, a stray `.tmp` file).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use mo_core::log::format::{self, GENESIS_CHAIN, RecordFields, SegmentHeader};
use mo_core::log::{
    LogOptions, LogWriter, ReadOptions, Record, SearchOptions, ShowOptions,
    compress_closed_segments, compressed_path, is_compressed, list_segments, read, search,
    segment_file_name, show, tail, verify,
};
use mo_core::record::{Chunk, RecordKind, RecordSink};

#[path = "common.rs"]
mod common;
use common::{assert_contiguous, damage};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = fresh_dir();
    if mode & 1 == 0 {
        write(&dir.join(format!("{}.zst", segment_file_name(1))), rest);
        if mode & 2 != 0 {
            // A valid live segment after it, continuing at an arbitrary seq.
            let first_seq = 1 + u64::from(mode >> 2);
            let header = SegmentHeader {
                first_seq,
                created_ns: 1_800_000_000_000_000_000,
                prev_chain: GENESIS_CHAIN,
            };
            let mut image = header.encode().to_vec();
            let fields = RecordFields {
                seq: first_seq,
                time_ns: 1_800_000_000_000_000_000,
                kind: RecordKind::Output,
                user: "",
                bytes: b"live\n",
            };
            let _ = format::encode_record(&mut image, &GENESIS_CHAIN, &fields);
            write(&dir.join(segment_file_name(first_seq)), &image);
        }
        check(&dir, None);
    } else if let Ok(clean) = build_log(&dir, &mut Unstructured::new(rest)) {
        check(&dir, clean.as_deref());
    }
});

/// Write a log with the real writer, compress it, then maybe damage it. Returns the records
/// written when nothing was damaged.
fn build_log(dir: &Path, u: &mut Unstructured<'_>) -> ArbResult<Option<Vec<Record>>> {
    let opts = LogOptions {
        segment_max_bytes: u.int_in_range(150..=1500)?,
        ..LogOptions::default()
    };
    let Ok((mut writer, _)) = LogWriter::open(dir, opts) else {
        return Err(libfuzzer_sys::arbitrary::Error::IncorrectFormat);
    };
    let mut time_ns: u64 = u.int_in_range(0..=1 << 62)?;
    let count: usize = u.int_in_range(0..=40)?;
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        time_ns = time_ns.saturating_add(u64::from(u.arbitrary::<u16>()?) << 10);
        let kind = RecordKind::from_code(u.arbitrary::<u8>()? % 10).unwrap_or(RecordKind::Output);
        let user_len = u.int_in_range(0..=8)?;
        let user = String::from_utf8_lossy(u.bytes(user_len)?).into_owned();
        let bytes_len = u.int_in_range(0..=120)?;
        let bytes = u.bytes(bytes_len)?.to_vec();
        let chunk = Chunk {
            seq: writer.next_seq(),
            time_ns,
            kind,
            user: user.as_str().into(),
            offset: 0,
            bytes: bytes.clone().into(),
        };
        writer.append(&chunk).expect("append to a fresh log");
        records.push(Record {
            seq: chunk.seq,
            time_ns,
            kind,
            user,
            bytes,
        });
    }
    drop(writer);
    let level = u.int_in_range(1..=5)?;
    compress_closed_segments(dir, level).expect("compress the closed segments");
    if u.ratio(1, 4)?
        && let Some(newest) = list_segments(dir).expect("list").pop()
        && !newest.is_compressed()
    {
        // Compressed as the writer does it, though it is the newest (closed for good).
        let plain = std::fs::read(&newest.path).expect("read the newest segment");
        write(&compressed_path(&newest.path), &zstd_frame(&plain, level));
        std::fs::remove_file(&newest.path).expect("remove the plain newest segment");
    }

    let mut clean = true;
    for _ in 0..u.int_in_range(0..=3)? {
        let segs = list_segments(dir).expect("list");
        let packed: Vec<PathBuf> = segs
            .into_iter()
            .filter(|s| s.is_compressed())
            .map(|s| s.path)
            .collect();
        if packed.is_empty() {
            break;
        }
        let path = &packed[u.choose_index(packed.len())?];
        let mut image = std::fs::read(path).expect("read a compressed segment");
        let op: u8 = u.int_in_range(0..=8)?;
        match op {
            0..=4 => damage(&mut image, op, u)?,
            5 => {
                // Damage the segment inside a valid frame, to reach the record checks.
                let Ok(mut plain) = zstd::decode_all(&image[..]) else {
                    continue;
                };
                let op = u.int_in_range(0..=4)?;
                damage(&mut plain, op, u)?;
                image = zstd_frame(&plain, 1);
            }
            6 => {
                std::fs::remove_file(path).expect("remove a compressed segment");
                clean = false;
                continue;
            }
            7 => {
                // A crash between rename and unlink leaves both forms: readers use the
                // compressed one.
                if let Ok(plain) = zstd::decode_all(&image[..]) {
                    write(&path.with_extension(""), &plain);
                }
                continue;
            }
            _ => {
                let mut tmp = path.clone().into_os_string();
                tmp.push(".tmp");
                write(Path::new(&tmp), &image[..image.len() / 2]);
                continue;
            }
        }
        write(path, &image);
        clean = false;
    }
    Ok(clean.then_some(records))
}

/// A zstd frame of `plain` as the writer makes it: content size and checksum included.
fn zstd_frame(plain: &[u8], level: i32) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), level).expect("zstd encoder");
    enc.include_checksum(true).expect("zstd checksum");
    enc.set_pledged_src_size(Some(plain.len() as u64))
        .expect("zstd pledged size");
    std::io::Write::write_all(&mut enc, plain).expect("zstd write");
    enc.finish().expect("zstd finish")
}

/// An empty directory of this process for the log.
fn fresh_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("mo-fuzz-compressed-segment-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the fuzz directory");
    dir.clone()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write a file of the fuzz directory");
}

/// Run every reader over the log in `dir`.
fn check(dir: &Path, clean: Option<&[Record]>) {
    let report = verify(dir).expect("verify only fails on I/O errors");
    let all: Vec<_> = match read(dir, &ReadOptions::default()) {
        Ok(records) => records.collect(),
        Err(e) => vec![Err(e)],
    };
    for r in &all {
        if let Err(e) = r {
            // A reader's error names the segment (or the directory) it is about.
            let text = e.to_string();
            assert!(
                text.contains(".mlog") || text.contains(&*dir.to_string_lossy()),
                "{text}"
            );
        }
    }
    let mut rendered = Vec::new();
    let shown = show(dir, &ShowOptions::default(), &mut rendered);
    let searched = search(
        dir,
        &SearchOptions {
            pattern: "e".into(),
            before: 1,
            after: 1,
            ..SearchOptions::default()
        },
        &mut std::io::sink(),
    );
    if let Some(expected) = clean {
        assert!(report.is_ok(), "undamaged log: {report}");
        assert_eq!(report.records, expected.len() as u64);
        let got: Vec<Record> = all
            .into_iter()
            .map(|r| r.expect("undamaged log reads"))
            .collect();
        assert_eq!(got, expected);
        for n in [0, 1, 3, 17, expected.len()] {
            let last = tail(dir, n).expect("undamaged log tails");
            assert_eq!(last[..], expected[expected.len().saturating_sub(n)..]);
        }
        assert_eq!(shown.expect("undamaged log shows"), expected.len() as u64);
        let stats = searched.expect("undamaged log searches");
        assert_eq!(stats.records, expected.len() as u64);
        // Reading from the middle (inside a compressed segment) starts exactly there.
        if let Some(mid) = expected.get(expected.len() / 2) {
            let from: Vec<u64> = read(
                dir,
                &ReadOptions {
                    from_seq: Some(mid.seq),
                    ..ReadOptions::default()
                },
            )
            .expect("undamaged log reads from a seq")
            .map(|r| r.expect("undamaged log reads from a seq").seq)
            .collect();
            assert_eq!(from.first(), Some(&mid.seq));
            assert_eq!(from.len(), expected.len() - expected.len() / 2);
        }
    } else {
        // Whatever was read before an error is in order without gaps.
        assert_contiguous(&all);
        if let Ok(last) = tail(dir, 5) {
            assert!(last.len() <= 5);
            assert!(
                last.windows(2)
                    .all(|w| w[0].seq.saturating_add(1) == w[1].seq)
            );
        }
    }

    // Reopening for writing: a compressed newest segment is never appended to; what is appended
    // then verifies.
    let newest_compressed = list_segments(dir)
        .ok()
        .and_then(|s| s.last().map(|s| is_compressed(&s.path)));
    if let Ok((mut writer, recovery)) = LogWriter::open(dir, LogOptions::default()) {
        if let Some(expected) = clean {
            let next = expected.last().map_or(1, |r| r.seq + 1);
            assert_eq!(recovery.next_seq, next);
            assert!(!recovery.torn);
        }
        let chunk = Chunk {
            seq: writer.next_seq(),
            time_ns: u64::MAX >> 1,
            kind: RecordKind::Note,
            user: "fuzz".into(),
            offset: 0,
            bytes: "appended".into(),
        };
        if writer.append(&chunk).is_ok() {
            if newest_compressed == Some(true) {
                let path = writer.segment_path().expect("a live segment after append");
                assert!(!is_compressed(path), "appended to a compressed segment");
            }
            let after = verify(dir).expect("verify only fails on I/O errors");
            assert!(
                after.torn_tail.is_none(),
                "after reopen and append: {after}"
            );
            if clean.is_some() {
                assert!(after.is_ok(), "after reopen and append: {after}");
                assert_eq!(after.records, clean.map_or(0, |c| c.len() as u64) + 1);
            }
        }
    }
}
