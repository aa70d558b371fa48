#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::*;
use crate::log::tests::{SEC, T0, chunk};
use crate::log::{LogOptions, LogWriter, verify};
use crate::record::{RecordKind, RecordSink};

/// A log of `n` segments, one record each, the record of segment `i` (1-based) written at
/// minute `i` after T0.
fn minute_segments(dir: &Path, n: u64, opts: LogOptions) -> LogWriter {
    let (mut w, _) = LogWriter::open(
        dir,
        LogOptions {
            segment_max_age: Duration::from_secs(60),
            ..opts
        },
    )
    .unwrap();
    for seq in 1..=n {
        w.append(&chunk(
            seq,
            T0 + seq * 60 * SEC,
            RecordKind::Output,
            "",
            b"0123456789\n",
        ))
        .unwrap();
    }
    w
}

fn firsts(dir: &Path) -> Vec<u64> {
    list_segments(dir)
        .unwrap()
        .iter()
        .map(|s| s.first_seq)
        .collect()
}

#[test]
fn the_plan_deletes_nothing_and_says_what_would_go() {
    let dir = tempfile::tempdir().unwrap();
    let w = minute_segments(dir.path(), 10, LogOptions::default());
    let before = firsts(dir.path());
    assert_eq!(before, (1..=10).collect::<Vec<_>>());
    let one = plan_retention(dir.path(), &Retention::default(), T0, None)
        .unwrap()
        .segments[0]
        .bytes;

    // By age: segment i's records are all older than minute i + 1.
    let by_age = Retention {
        max_age: Some(Duration::from_secs(5 * 60)),
        ..Retention::default()
    };
    let now = T0 + 12 * 60 * SEC;
    let plan = plan_retention(dir.path(), &by_age, now, w.segment_path()).unwrap();
    // Segment i goes when 12 - (i + 1) > 5, i.e. i < 6.
    assert_eq!(plan.remove, 5);
    assert_eq!(plan.remove_bytes, 5 * one);
    assert_eq!(plan.total_bytes, 10 * one);
    assert_eq!(
        plan.removed()
            .iter()
            .map(|s| s.file.first_seq)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(firsts(dir.path()), before, "planning deletes nothing");

    // By size: keep at most three segments' worth.
    let by_size = Retention {
        max_bytes: Some(3 * one),
        ..Retention::default()
    };
    let plan = plan_retention(dir.path(), &by_size, now, w.segment_path()).unwrap();
    assert_eq!(plan.remove, 7);
    // The live (newest) segment never goes, however small the limit.
    let tiny = Retention {
        max_bytes: Some(1),
        max_age: Some(Duration::from_secs(1)),
    };
    let plan = plan_retention(dir.path(), &tiny, now, w.segment_path()).unwrap();
    assert_eq!(plan.remove, 9);
    assert_eq!(firsts(dir.path()), before);
}

#[test]
fn apply_retention_prunes_a_quiet_log_without_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        retain_max_age: Some(Duration::from_secs(5 * 60)),
        ..LogOptions::default()
    };
    // Each rotation pruned by the clock of its record: at minute 10, segments 1–3.
    let mut w = minute_segments(dir.path(), 10, opts);
    assert_eq!(firsts(dir.path()), (4..=10).collect::<Vec<_>>());
    // Then the console falls quiet: no record, no rotation; only the periodic call prunes.
    let pruned = w.apply_retention(T0 + 12 * 60 * SEC).unwrap();
    assert_eq!(pruned.segments, 2);
    assert_eq!(firsts(dir.path()), (6..=10).collect::<Vec<_>>());
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.first_seq, Some(6));
    // Nothing more to do: a second run removes nothing.
    assert_eq!(
        w.apply_retention(T0 + 12 * 60 * SEC).unwrap(),
        Pruned::default()
    );
    // The log continues.
    w.append(&chunk(
        11,
        T0 + 13 * 60 * SEC,
        RecordKind::Output,
        "",
        b"x\n",
    ))
    .unwrap();
    assert!(verify(dir.path()).unwrap().is_ok());

    // A writer without limits keeps everything.
    let other = tempfile::tempdir().unwrap();
    let mut w = minute_segments(other.path(), 3, LogOptions::default());
    assert_eq!(w.apply_retention(u64::MAX).unwrap(), Pruned::default());
    assert_eq!(firsts(other.path()).len(), 3);
}

#[test]
fn usage_counts_segments_bytes_and_times() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(log_usage(dir.path()).unwrap(), LogUsage::default());
    let _w = minute_segments(dir.path(), 4, LogOptions::default());
    let usage = log_usage(dir.path()).unwrap();
    let on_disk: u64 = list_segments(dir.path())
        .unwrap()
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum();
    assert_eq!(usage.segments, 4);
    assert_eq!(usage.bytes, on_disk);
    assert_eq!(usage.first_seq, Some(1));
    assert_eq!(usage.oldest_ns, Some(T0 + 60 * SEC));
    assert_eq!(usage.newest_ns, Some(T0 + 4 * 60 * SEC));
}
