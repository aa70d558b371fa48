#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

use rand::{Rng, SeedableRng};

use super::*;
use crate::log::tests::{SEC, T0, chunk, small_segments};
use crate::log::{LogOptions, LogWriter, ShowOptions, list_segments, show};
use crate::record::{RecordKind, RecordSink};

fn put(w: &mut LogWriter, t: u64, kind: RecordKind, user: &str, bytes: &[u8]) {
    let seq = w.next_seq();
    w.append(&chunk(seq, t, kind, user, bytes)).unwrap();
}

fn run(dir: &Path, opts: &SearchOptions) -> (String, SearchStats) {
    let mut out = Vec::new();
    let stats = search(dir, opts, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

fn opts(pattern: &str, before: usize, after: usize) -> SearchOptions {
    SearchOptions {
        pattern: pattern.into(),
        before,
        after,
        ..SearchOptions::default()
    }
}

/// Text of each output line without its timestamp.
fn texts(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| {
            if l == "--" {
                l
            } else {
                l.get(25..).unwrap_or("")
            }
        })
        .collect()
}

#[test]
fn finds_a_line_split_across_records_and_a_segment_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(tmp.path(), small_segments()).unwrap();
    for i in 0..20u64 {
        put(
            &mut w,
            T0 + i * SEC,
            RecordKind::Output,
            "",
            format!("filler {i}\n").as_bytes(),
        );
    }
    // "Kernel panic" arrives in three records; make sure a rotation falls between them.
    let before = list_segments(tmp.path()).unwrap().len();
    put(&mut w, T0 + 30 * SEC, RecordKind::Output, "", b"Kern");
    put(&mut w, T0 + 31 * SEC, RecordKind::Output, "", &[b'x'; 300]);
    put(
        &mut w,
        T0 + 32 * SEC,
        RecordKind::Output,
        "",
        b"el panic - not syncing\r\n",
    );
    assert!(list_segments(tmp.path()).unwrap().len() > before);
    let (out, stats) = run(tmp.path(), &opts("panic - not", 0, 0));
    assert_eq!(stats.matches, 1);
    assert!(out.starts_with("2026-11-22T10:00:30.000Z Kernxxx"), "{out}");
    assert!(out.ends_with("el panic - not syncing\n"), "{out}");
    // The split word is found too (it only exists once the line is assembled).
    let (_, stats) = run(tmp.path(), &opts(r"Kern(x+)el", 0, 0));
    assert_eq!(stats.matches, 1);
}

#[test]
fn context_groups_are_separated_like_grep() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(tmp.path(), small_segments()).unwrap();
    for i in 0..30u64 {
        let text = if i == 5 || i == 7 || i == 20 {
            format!("line {i} ERROR\n")
        } else {
            format!("line {i}\n")
        };
        put(
            &mut w,
            T0 + i * SEC,
            RecordKind::Output,
            "",
            text.as_bytes(),
        );
    }
    let (out, stats) = run(tmp.path(), &opts("ERROR$", 1, 2));
    assert_eq!(stats.matches, 3);
    assert_eq!(stats.lines, 30);
    assert_eq!(
        texts(&out),
        [
            "line 4",
            "line 5 ERROR",
            "line 6",
            "line 7 ERROR",
            "line 8",
            "line 9",
            "--",
            "line 19",
            "line 20 ERROR",
            "line 21",
            "line 22",
        ]
    );
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("2026-11-22T10:00:05.000Z")
    );
    // Without context there are no separators.
    let (out, _) = run(tmp.path(), &opts("ERROR", 0, 0));
    assert_eq!(out.lines().count(), 3);
    // `^` anchors at the text, not the timestamp.
    let (_, stats) = run(tmp.path(), &opts("^line 2", 0, 0));
    assert_eq!(stats.matches, 11);
}

#[test]
fn case_time_range_and_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(tmp.path(), LogOptions::default()).unwrap();
    put(&mut w, T0, RecordKind::Output, "", b"Login: \r\n");
    put(&mut w, T0 + SEC, RecordKind::Input, "alice", b"reboot\r");
    put(
        &mut w,
        T0 + 2 * SEC,
        RecordKind::Note,
        "bob",
        b"firmware LOGIN fix",
    );
    put(&mut w, T0 + 3 * SEC, RecordKind::Output, "", b"login: ");
    let (_, stats) = run(tmp.path(), &opts("login", 0, 0));
    assert_eq!(
        stats.matches, 1,
        "the partial prompt at the end is searched"
    );
    let mut o = opts("login", 0, 0);
    o.ignore_case = true;
    assert_eq!(run(tmp.path(), &o).1.matches, 3);
    o.since = Some(T0 + SEC);
    o.until = Some(T0 + 3 * SEC);
    let (out, stats) = run(tmp.path(), &o);
    assert_eq!(stats.matches, 1);
    assert_eq!(texts(&out), ["[note bob] firmware LOGIN fix"]);
    let (out, _) = run(tmp.path(), &opts("^<alice> reboot$", 0, 0));
    assert_eq!(out, "2026-11-22T10:00:01.000Z <alice> reboot\n");
    assert!(matches!(
        search(tmp.path(), &opts("(unclosed", 0, 0), &mut Vec::new()),
        Err(Error::BadSpec { .. })
    ));
}

#[test]
fn context_reaches_back_into_earlier_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = LogWriter::open(tmp.path(), LogOptions::default()).unwrap();
    // Enough output to span several batches; the match is the first line of a later batch.
    let line = [b'a'; 999];
    let mut n = 0u64;
    while n * 1024 < (BATCH_BYTES as u64) * 2 + 4096 {
        let mut rec = format!("{n:06} ").into_bytes();
        rec.extend_from_slice(&line[..990]);
        rec.push(b'\n');
        put(&mut w, T0 + n, RecordKind::Output, "", &rec);
        n += 1;
    }
    // Each rendered line is 1023 bytes: the second batch starts at this line.
    let target = BATCH_BYTES.div_ceil(1023) as u64;
    let (out, stats) = run(tmp.path(), &opts(&format!("^{target:06} "), 3, 3));
    assert_eq!(stats.matches, 1);
    let got: Vec<String> = texts(&out).iter().map(|t| t[..6].to_owned()).collect();
    let want: Vec<String> = (target - 3..=target + 3)
        .map(|i| format!("{i:06}"))
        .collect();
    assert_eq!(got, want);
}

/// Random records: the batched search agrees with a naive per-line grep of `mo log show`.
#[test]
fn agrees_with_a_naive_grep_of_show() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5ea7c4);
    let alphabet = b"ab \n\r\x1b[K\x08xyzERR";
    for round in 0..40 {
        let tmp = tempfile::tempdir().unwrap();
        let (mut w, _) = LogWriter::open(tmp.path(), small_segments()).unwrap();
        for i in 0..rng.random_range(1..80u64) {
            let len = rng.random_range(0..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let kind = match rng.random_range(0..10) {
                0 => RecordKind::Input,
                1 => RecordKind::Note,
                _ => RecordKind::Output,
            };
            put(&mut w, T0 + i * SEC / 3, kind, "u", &bytes);
        }
        let pattern = ["ERR", "a+b", "^x", "z$", "b\\s*a", "y.*R"][round % 6];
        let (before, after) = (rng.random_range(0..3), rng.random_range(0..3));
        let mut shown = Vec::new();
        show(tmp.path(), &ShowOptions::default(), &mut shown).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        let re = regex::Regex::new(pattern).unwrap();
        let hits: Vec<usize> = (0..lines.len())
            .filter(|&i| re.is_match(lines[i].get(25..).unwrap_or("")))
            .collect();
        let mut want = String::new();
        let mut last: Option<usize> = None;
        for &h in &hits {
            for i in h.saturating_sub(before)..=(h + after).min(lines.len() - 1) {
                if last.is_some_and(|l| i <= l) {
                    continue;
                }
                if (before > 0 || after > 0) && last.is_some_and(|l| i > l + 1) {
                    want.push_str("--\n");
                }
                want.push_str(lines[i]);
                want.push('\n');
                last = Some(i);
            }
        }
        let (got, stats) = run(tmp.path(), &opts(pattern, before, after));
        assert_eq!(got, want, "round {round} pattern {pattern}");
        assert_eq!(stats.matches, hits.len() as u64);
    }
}
