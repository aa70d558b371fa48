//! Tests across the log's modules: readers, tail, verify and tampering, follow, show, and a
//! corruption sweep over every byte of a small log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::log::format::{self, Decoded, HEADER_LEN};
use crate::log::*;
use crate::record::{Chunk, RecordKind, RecordSink};

/// 2026-11-22T10:00:00Z.
pub(crate) const T0: u64 = 1_795_341_600_000_000_000;
pub(crate) const SEC: u64 = 1_000_000_000;

pub(crate) fn chunk(seq: u64, time_ns: u64, kind: RecordKind, user: &str, bytes: &[u8]) -> Chunk {
    Chunk {
        seq,
        time_ns,
        kind,
        user: user.into(),
        offset: 0,
        bytes: bytes.to_vec().into(),
    }
}

/// Append output records `line <seq>\n`, one per second from `T0 + seq s`.
pub(crate) fn append_lines(w: &mut LogWriter, n: u64) {
    for _ in 0..n {
        let seq = w.next_seq();
        let text = format!("line {seq}\n");
        w.append(&chunk(
            seq,
            T0 + seq * SEC,
            RecordKind::Output,
            "",
            text.as_bytes(),
        ))
        .unwrap();
    }
}

pub(crate) fn all(dir: &Path) -> Vec<Record> {
    read(dir, &ReadOptions::default())
        .unwrap()
        .collect::<crate::Result<Vec<_>>>()
        .unwrap()
}

pub(crate) fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

pub(crate) fn small_segments() -> LogOptions {
    LogOptions {
        segment_max_bytes: 400,
        ..LogOptions::default()
    }
}

/// Byte ranges of the records of a segment file.
pub(crate) fn record_spans(path: &Path) -> Vec<(usize, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = HEADER_LEN;
    let mut spans = Vec::new();
    while let Decoded::Record(r) = format::decode_record(&bytes[at..]) {
        spans.push((at, at + r.len()));
        at += r.len();
    }
    spans
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect()
}

#[test]
fn reads_from_seq_and_time_ranges_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), small_segments()).unwrap();
    append_lines(&mut w, 40);
    assert!(segment_paths(dir.path()).len() >= 5);
    assert_eq!(seqs(&all(dir.path())), (1..=40).collect::<Vec<_>>());

    let from = |seq| {
        let opts = ReadOptions {
            from_seq: Some(seq),
            ..ReadOptions::default()
        };
        seqs(
            &read(dir.path(), &opts)
                .unwrap()
                .map(|r| r.unwrap())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(from(17), (17..=40).collect::<Vec<_>>());
    assert_eq!(from(40), vec![40]);
    assert!(from(41).is_empty());

    let range = ReadOptions {
        since: Some(T0 + 12 * SEC),
        until: Some(T0 + 30 * SEC),
        ..ReadOptions::default()
    };
    let got: Vec<Record> = read(dir.path(), &range)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(seqs(&got), (12..30).collect::<Vec<_>>());
    assert_eq!(got[0].bytes, b"line 12\n");
}

#[test]
fn tail_walks_back_across_segments_and_past_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), small_segments()).unwrap();
    append_lines(&mut w, 25);
    assert_eq!(seqs(&tail(dir.path(), 3).unwrap()), vec![23, 24, 25]);
    assert_eq!(
        seqs(&tail(dir.path(), 12).unwrap()),
        (14..=25).collect::<Vec<_>>()
    );
    assert_eq!(tail(dir.path(), 100).unwrap().len(), 25);
    assert!(tail(dir.path(), 0).unwrap().is_empty());

    // Tear the last record: tail and read stop before it without an error.
    let live = segment_paths(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&live).unwrap().len();
    truncate(&live, len - 5);
    assert_eq!(seqs(&tail(dir.path(), 3).unwrap()), vec![22, 23, 24]);
    assert_eq!(all(dir.path()).len(), 24);
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn verify_passes_a_clean_log_and_warns_about_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), small_segments()).unwrap();
    append_lines(&mut w, 20);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 20);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(20)));
    assert_eq!(report.segments as usize, segment_paths(dir.path()).len());
    let text = report.to_string();
    assert!(text.contains(": OK ("), "{text}");
    assert!(text.contains("20 records, seq 1..20"), "{text}");

    let live = segment_paths(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&live).unwrap().len();
    truncate(&live, len - 10);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report}");
    let torn = report.torn_tail.clone().expect("torn tail reported");
    assert_eq!(torn.offset, record_spans(&live).last().unwrap().1 as u64);
    assert!(
        report.to_string().contains("warning: torn final record"),
        "{report}"
    );
}

/// Rewrite the CRC of the record at `span` so that only the hash chain can notice a change.
fn fix_crc(bytes: &mut [u8], span: (usize, usize)) {
    let crc = crc32fast::hash(&bytes[span.0..span.1 - 4]);
    bytes[span.1 - 4..span.1].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn verify_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), LogOptions::default()).unwrap();
    append_lines(&mut w, 8);
    drop(w);
    let seg = segment_paths(dir.path()).pop().unwrap();
    let name = seg.file_name().unwrap().to_str().unwrap().to_owned();
    let original = std::fs::read(&seg).unwrap();
    let spans = record_spans(&seg);
    let check = |bytes: &[u8], offset: usize, reason: &str| {
        std::fs::write(&seg, bytes).unwrap();
        let report = verify(dir.path()).unwrap();
        let p = report
            .problem
            .clone()
            .unwrap_or_else(|| panic!("not detected: {report}"));
        assert_eq!(
            (p.segment.as_str(), p.offset),
            (name.as_str(), offset as u64),
            "{report}"
        );
        assert!(p.reason.contains(reason), "{report}");
        assert!(report.to_string().contains("DAMAGED"), "{report}");
        assert!(report.torn_tail.is_none(), "{report}");
    };

    // A changed byte in an earlier record.
    let mut b = original.clone();
    b[spans[2].0 + 30] ^= 1;
    check(&b, spans[2].0, "checksum");

    // The same change with the checksum recomputed: the hash chain catches it.
    fix_crc(&mut b, spans[2]);
    check(&b, spans[2].0, "hash chain");

    // A record deleted from the middle.
    let mut b = original.clone();
    b.drain(spans[4].0..spans[4].1);
    check(&b, spans[4].0, "expected seq 5, found 6");

    // Two records swapped.
    let mut b = original[..spans[3].0].to_vec();
    b.extend_from_slice(&original[spans[4].0..spans[4].1]);
    b.extend_from_slice(&original[spans[3].0..spans[3].1]);
    b.extend_from_slice(&original[spans[4].1..]);
    check(&b, spans[3].0, "expected seq 4, found 5");
    std::fs::write(&seg, &original).unwrap();
    assert!(verify(dir.path()).unwrap().is_ok());
}

#[test]
fn verify_detects_a_missing_or_altered_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), small_segments()).unwrap();
    append_lines(&mut w, 30);
    drop(w);
    let paths = segment_paths(dir.path());
    let middle = &paths[2];
    let saved = std::fs::read(middle).unwrap();

    std::fs::remove_file(middle).unwrap();
    let report = verify(dir.path()).unwrap();
    let p = report.problem.clone().unwrap();
    assert_eq!(p.segment, paths[3].file_name().unwrap().to_str().unwrap());
    assert!(p.reason.contains("segment starts at seq"), "{report}");
    // Readers refuse to skip the gap too.
    assert!(
        read(dir.path(), &ReadOptions::default())
            .unwrap()
            .any(|r| r.is_err())
    );

    // A segment whose header chain value was changed (and its header checksum fixed).
    std::fs::write(middle, &saved).unwrap();
    let mut b = std::fs::read(&paths[3]).unwrap();
    b[40] ^= 0xff;
    let crc = crc32fast::hash(&b[..HEADER_LEN - 4]);
    b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&paths[3], &b).unwrap();
    let report = verify(dir.path()).unwrap();
    let p = report.problem.clone().unwrap();
    assert!(
        p.reason.contains("does not continue the previous segment"),
        "{report}"
    );
    assert_eq!(p.offset, 32);
}

/// Flip every byte, and cut the log at every length: nothing panics, verify sees every flip, and
/// the writer's recovery drops at most the record that was damaged at the end.
#[test]
fn corruption_sweep_never_panics_and_recovery_drops_only_the_torn_tail() {
    let base = tempfile::tempdir().unwrap();
    let src = base.path().join("src");
    let (mut w, _) = LogWriter::open(
        &src,
        LogOptions {
            segment_max_bytes: 400,
            ..LogOptions::default()
        },
    )
    .unwrap();
    append_lines(&mut w, 6);
    w.append(&chunk(7, T0 + 7 * SEC, RecordKind::Input, "alice", b"ls\r"))
        .unwrap();
    drop(w);
    let paths = segment_paths(&src);
    assert_eq!(
        paths.len(),
        2,
        "the sweep wants one closed and one live segment"
    );
    let live_name = paths[1].file_name().unwrap().to_owned();
    let live_bytes = std::fs::read(&paths[1]).unwrap();
    let live_spans = record_spans(&paths[1]);
    let work = base.path().join("work");

    let reset = || {
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        for p in &paths {
            std::fs::copy(p, work.join(p.file_name().unwrap())).unwrap();
        }
    };
    let exercise_readers = || {
        let _ = verify(&work).map(|r| r.to_string());
        if let Ok(it) = read(&work, &ReadOptions::default()) {
            let _ = it.count();
        }
        let _ = tail(&work, 3);
        let _ = show(&work, &ShowOptions::default(), &mut Vec::new());
        if let Ok(mut f) = Follower::new(
            &work,
            FollowOptions {
                start: FollowStart::Beginning,
                ..FollowOptions::default()
            },
        ) {
            for _ in 0..20 {
                if !matches!(f.try_next(), Ok(Some(_))) {
                    break;
                }
            }
        }
    };

    // Flip each byte of each segment.
    for (si, p) in paths.iter().enumerate() {
        let original = std::fs::read(p).unwrap();
        for i in 0..original.len() {
            reset();
            let mut b = original.clone();
            b[i] ^= 0x5a;
            let target = work.join(p.file_name().unwrap());
            std::fs::write(&target, &b).unwrap();
            exercise_readers();
            let report = verify(&work).unwrap();
            let is_last_record = si == 1 && i >= live_spans.last().unwrap().0;
            assert!(
                report.problem.is_some() || (is_last_record && report.torn_tail.is_some()),
                "flip at {i} of segment {si} unnoticed: {report}"
            );
            if let Ok((_, recovery)) = LogWriter::open(&work, LogOptions::default()) {
                let len = std::fs::metadata(work.join(&live_name)).map_or(0, |m| m.len());
                if si == 1 {
                    // Only a damaged final record may be cut, never anything before it.
                    let damaged_start = live_spans
                        .iter()
                        .find(|s| i < s.1)
                        .map_or(0, |s| s.0 as u64);
                    assert!(len >= damaged_start, "flip at {i}: cut to {len}");
                    if recovery.torn {
                        assert_eq!(damaged_start, live_spans.last().unwrap().0 as u64);
                    }
                } else {
                    assert_eq!(len, live_bytes.len() as u64);
                }
            }
        }
    }

    // Cut the live segment at every length.
    for cut in 0..live_bytes.len() {
        reset();
        std::fs::write(work.join(&live_name), &live_bytes[..cut]).unwrap();
        exercise_readers();
        let report = verify(&work).unwrap();
        assert!(report.is_ok(), "cut at {cut}: {report}");
        let intact = live_spans.iter().filter(|s| s.1 <= cut).count();
        let (mut w, recovery) = LogWriter::open(&work, LogOptions::default()).unwrap();
        let at_boundary = cut == HEADER_LEN || live_spans.iter().any(|s| s.1 == cut);
        assert_eq!(recovery.torn, !at_boundary, "cut at {cut}: {recovery:?}");
        // A torn header (cut < HEADER_LEN) is removed and the closed segment continues.
        let closed = record_spans(&paths[0]).len() as u64;
        let next = w.next_seq();
        assert_eq!(next, closed + intact as u64 + 1, "cut at {cut}");
        // The log continues cleanly.
        w.append(&chunk(
            next,
            T0 + 100 * SEC,
            RecordKind::Output,
            "",
            b"after\n",
        ))
        .unwrap();
        let report = verify(&work).unwrap();
        assert!(
            report.is_ok() && report.torn_tail.is_none(),
            "cut at {cut}: {report}"
        );
        assert_eq!(report.last_seq, Some(next));
    }
}

#[test]
fn random_garbage_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x10c_f00d);
    let base = tempfile::tempdir().unwrap();
    for round in 0..150 {
        let dir = base.path().join(format!("r{round}"));
        let (mut w, _) = LogWriter::open(&dir, small_segments()).unwrap();
        append_lines(&mut w, rng.random_range(1..12));
        drop(w);
        for p in segment_paths(&dir) {
            let mut b = std::fs::read(&p).unwrap();
            for _ in 0..rng.random_range(0..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            if rng.random_bool(0.3) {
                let extra: Vec<u8> = (0..rng.random_range(0..100))
                    .map(|_| rng.random())
                    .collect();
                b.extend(extra);
            }
            b.truncate(rng.random_range(0..=b.len()));
            std::fs::write(&p, b).unwrap();
        }
        let _ = verify(&dir).unwrap().to_string();
        if let Ok(it) = read(&dir, &ReadOptions::default()) {
            let _ = it.count();
        }
        let _ = tail(&dir, 4);
        let _ = show(&dir, &ShowOptions::default(), &mut Vec::new());
        if let Ok((mut w, _)) = LogWriter::open(&dir, LogOptions::default()) {
            let seq = w.next_seq();
            w.append(&chunk(seq, T0, RecordKind::Note, "x", b"after"))
                .unwrap();
        }
    }
}

#[tokio::test]
async fn follow_picks_up_appends_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev");
    let opts = FollowOptions {
        start: FollowStart::End,
        poll_interval: Duration::from_millis(10),
    };
    // The directory does not exist yet.
    let mut f = Follower::new(&path, opts).unwrap();
    assert!(f.try_next().unwrap().is_none());
    let (mut w, _) = LogWriter::open(&path, small_segments()).unwrap();
    append_lines(&mut w, 2);
    assert_eq!(f.try_next().unwrap().unwrap().seq, 1);

    let mut from_end = Follower::new(&path, opts).unwrap();
    assert_eq!(from_end.next_seq(), 3);
    let writer = tokio::spawn(async move {
        for _ in 0..30 {
            append_lines(&mut w, 1);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        w
    });
    let mut got = Vec::new();
    while got.len() < 31 {
        let r = tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .expect("follower stalled")
            .unwrap();
        got.push(r.seq);
    }
    assert_eq!(got, (2..=32).collect::<Vec<_>>());
    let r = tokio::time::timeout(Duration::from_secs(10), from_end.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.seq, 3);
    let w = writer.await.unwrap();
    assert!(
        segment_paths(&path).len() > 3,
        "the writer rotated meanwhile"
    );
    drop(w);

    // A torn record in the live segment is not yielded; once repaired it is.
    let live = segment_paths(&path).pop().unwrap();
    let len = std::fs::metadata(&live).unwrap().len();
    truncate(&live, len - 3);
    let mut f = Follower::new(
        &path,
        FollowOptions {
            start: FollowStart::Seq(30),
            ..opts
        },
    )
    .unwrap();
    assert_eq!(f.try_next().unwrap().unwrap().seq, 30);
    assert_eq!(f.try_next().unwrap().unwrap().seq, 31);
    assert!(f.try_next().unwrap().is_none());
    let (mut w, recovery) = LogWriter::open(&path, small_segments()).unwrap();
    assert!(recovery.torn);
    append_lines(&mut w, 1);
    assert_eq!(f.try_next().unwrap().unwrap().seq, 32);

    let mut t = Follower::new(
        &path,
        FollowOptions {
            start: FollowStart::Tail(2),
            ..opts
        },
    )
    .unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq, 31);
}

#[test]
fn show_renders_ranges_and_tails() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), small_segments()).unwrap();
    append_lines(&mut w, 5);
    w.append(&chunk(
        6,
        T0 + 6 * SEC + 5_000_000,
        RecordKind::Input,
        "alice",
        b"ls -l\r",
    ))
    .unwrap();
    w.append(&chunk(
        7,
        T0 + 7 * SEC,
        RecordKind::Notice,
        "",
        b"bob attached (spy)",
    ))
    .unwrap();
    let mut out = Vec::new();
    let n = show(
        dir.path(),
        &ShowOptions {
            since: Some(T0 + 5 * SEC),
            ..ShowOptions::default()
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2026-11-22T10:00:05.000Z line 5\n\
         2026-11-22T10:00:06.005Z <alice> ls -l\n\
         2026-11-22T10:00:07.000Z [notice] bob attached (spy)\n"
    );
    let mut out = Vec::new();
    assert_eq!(
        show(
            dir.path(),
            &ShowOptions {
                tail: Some(2),
                ..ShowOptions::default()
            },
            &mut out
        )
        .unwrap(),
        2
    );
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("2026-11-22T10:00:06.005Z <alice>")
    );
    let mut out = Vec::new();
    let only_notices = ShowOptions {
        kinds: vec![RecordKind::Notice],
        tail: Some(5),
        until: Some(T0 + 8 * SEC),
        ..ShowOptions::default()
    };
    assert_eq!(show(dir.path(), &only_notices, &mut out).unwrap(), 1);
}

#[tokio::test]
async fn show_follow_stops_at_until() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(dir.path(), LogOptions::default()).unwrap();
    append_lines(&mut w, 3);
    let path = dir.path().to_path_buf();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        append_lines(&mut w, 20);
    });
    let opts = ShowOptions {
        from_seq: Some(2),
        until: Some(T0 + 10 * SEC),
        ..ShowOptions::default()
    };
    let mut out = Vec::new();
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        show_follow(&path, &opts, Duration::from_millis(5), &mut out),
    )
    .await
    .unwrap()
    .unwrap();
    writer.await.unwrap();
    assert_eq!(n, 8, "seq 2..=9");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("2026-11-22T10:00:02.000Z line 2\n"),
        "{text}"
    );
    assert!(
        text.ends_with("2026-11-22T10:00:09.000Z line 9\n"),
        "{text}"
    );
}
