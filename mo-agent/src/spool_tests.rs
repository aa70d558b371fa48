//! Tests of the on-disk spool.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[test]
fn keeps_order_acks_and_drops_oldest_counted() {
    let tmp = tempfile::tempdir().unwrap();
    // Room for two 4-byte records (28 bytes each on disk), not three.
    let spool = Spool::open(tmp.path(), 60).unwrap();
    assert_eq!(spool.first_seq(), 1);
    assert_eq!(spool.push(b"abcd", 1), Some(1));
    assert_eq!(spool.push(b"efgh", 2), Some(2));
    assert_eq!(spool.take_unreported(), None);
    assert_eq!(spool.push(b"ijkl", 3), Some(3)); // 84 bytes > 60: record 1 goes
    assert_eq!(spool.first_seq(), 2);
    assert_eq!(spool.take_unreported(), Some((1, 4)));
    assert_eq!(spool.take_unreported(), None);
    let got = spool.records_from(1, 100);
    assert_eq!(seqs(&got), [2, 3]);
    assert_eq!(got[1].time_ns, 3);
    assert_eq!(got[1].bytes, b"ijkl");
    assert_eq!(spool.records_from(3, 100).len(), 1);
    assert_eq!(spool.records_from(2, 1).len(), 1, "at least one record");
    assert!(spool.records_from(4, 100).is_empty());
    spool.ack(2);
    assert_eq!(spool.first_seq(), 3);
    spool.ack(3);
    assert_eq!(spool.first_seq(), 4);
    assert_eq!(
        spool.stats(),
        SpoolStats {
            records: 0,
            bytes: 0,
            dropped_records: 1,
            dropped_bytes: 4
        }
    );
    // A record larger than the bound is kept alone rather than lost at once.
    assert_eq!(spool.push(&[0; 500], 4), Some(4));
    assert_eq!(spool.stats().records, 1);
}

#[test]
fn survives_a_restart_in_the_same_epoch_and_segments_go_once_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let limit = 128 * 1024;
    let epoch;
    {
        let spool = Spool::open(tmp.path(), limit).unwrap();
        epoch = spool.epoch();
        for i in 0..2000u64 {
            let line = format!("line {i:05}\n");
            spool.push(line.as_bytes(), i as i64 * 1000).unwrap();
        }
        spool.ack(1500);
        let stats = spool.stats();
        assert_eq!(stats.records, 500);
        assert_eq!(stats.dropped_records, 0);
    }
    let segments = || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count()
    };
    // 2000 records of 35 bytes in 32 KiB segments: acknowledged segments are gone.
    assert!(segments() < 4, "{} segments left", segments());
    let spool = Spool::open(tmp.path(), limit).unwrap();
    assert_eq!(spool.epoch(), epoch);
    // What is left of the acknowledged part comes back too; the daemon's resume point skips it.
    let first = spool.first_seq();
    assert!(first <= 1501, "{first}");
    let got = spool.records_from(1501, usize::MAX);
    assert_eq!(got.len(), 500);
    assert_eq!(got[0].bytes, b"line 01500\n");
    assert_eq!(got[0].time_ns, 1_500_000);
    assert_eq!(spool.push(b"more", 7), Some(2001));
    // Everything acknowledged: the newest segment stays, so the sequence goes on.
    spool.ack(2001);
    drop(spool);
    assert_eq!(segments(), 1);
    let spool = Spool::open(tmp.path(), limit).unwrap();
    assert_eq!(spool.epoch(), epoch);
    assert_eq!(spool.push(b"next", 8), Some(2002));
}

#[test]
fn a_torn_tail_is_cut_off_and_an_empty_spool_starts_a_new_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let epoch = {
        let spool = Spool::open(tmp.path(), 1 << 20).unwrap();
        spool.push(b"one", 1);
        spool.push(b"two", 2);
        spool.epoch()
    };
    let seg = segment_path(tmp.path(), 1);
    // A crash in the middle of the third record's write.
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&encode(3, 3, b"three")[..10]).unwrap();
    drop(f);
    let spool = Spool::open(tmp.path(), 1 << 20).unwrap();
    assert_eq!(spool.epoch(), epoch);
    assert_eq!(seqs(&spool.records_from(1, 100)), [1, 2]);
    assert_eq!(spool.push(b"three", 3), Some(3));
    drop(spool);
    // A flipped byte fails the checksum: the spool ends before it.
    let mut data = std::fs::read(&seg).unwrap();
    let at = data.len() - 2;
    data[at] ^= 0xff;
    std::fs::write(&seg, &data).unwrap();
    let spool = Spool::open(tmp.path(), 1 << 20).unwrap();
    assert_eq!(seqs(&spool.records_from(1, 100)), [1, 2]);
    drop(spool);
    // Garbage only: nothing held, a new epoch from 1.
    std::fs::write(&seg, b"garbage that is no record at all").unwrap();
    let spool = Spool::open(tmp.path(), 1 << 20).unwrap();
    assert_ne!(spool.epoch(), epoch);
    assert_eq!(spool.first_seq(), 1);
    assert_eq!(spool.push(b"x", 1), Some(1));
}

#[test]
fn parsing_never_panics_on_short_or_huge_lengths() {
    for data in [
        &b""[..],
        &[0xff; 23][..],
        &[0xff; 24][..],
        &[0xff; 100][..],
        &[0; 24][..],
    ] {
        let (metas, valid) = parse_segment(data, None);
        assert!(valid <= data.len());
        assert!(metas.len() <= 1);
    }
}

#[test]
fn one_agent_per_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Spool::open(tmp.path(), 1 << 20).unwrap();
    let e = Spool::open(tmp.path(), 1 << 20).unwrap_err();
    assert!(
        format!("{e:#}").contains("in use by another mo-agent"),
        "{e:#}"
    );
    drop(first);
    Spool::open(tmp.path(), 1 << 20).unwrap();
}
