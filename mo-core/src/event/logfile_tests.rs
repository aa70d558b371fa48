#![allow(clippy::unwrap_used)]

use std::io::Write;

use super::*;
use crate::scan::{Pattern, Severity};

fn set() -> PatternSet {
    PatternSet::new(&[Pattern::new("err", "ERROR", Severity::Error, "")]).unwrap()
}

fn entry(path: &Path, start: Option<&str>) -> Logfile {
    Logfile::from_config(&LogfileConfig {
        path: path.display().to_string(),
        start: start.map(str::to_owned),
        ..LogfileConfig::default()
    })
    .unwrap()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Every matched line of a poll (and of the polls right after while more is waiting).
fn lines(f: &mut LogFollower) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (found, more) = f.poll();
        out.extend(found.into_iter().map(|m| m.line));
        if !more {
            return out;
        }
    }
}

#[test]
fn starts_at_the_end_and_reads_only_complete_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "ERROR old\n");
    let mut f = LogFollower::new(entry(&log, None), Some(set()), None);
    assert!(lines(&mut f).is_empty());
    append(&log, "ok\nERROR one\nERROR tw");
    assert_eq!(lines(&mut f), ["ERROR one"]);
    append(&log, "o\n");
    assert_eq!(lines(&mut f), ["ERROR two"]);
    let mut from_start = LogFollower::new(entry(&log, Some("beginning")), Some(set()), None);
    assert_eq!(
        lines(&mut from_start),
        ["ERROR old", "ERROR one", "ERROR two"]
    );
}

#[test]
fn rotation_by_rename_and_truncation_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "");
    let mut f = LogFollower::new(entry(&log, None), Some(set()), None);
    assert!(lines(&mut f).is_empty());
    append(&log, "ERROR 1\n");
    // Written to the old file after the last poll, then rotated: still read, once.
    append(&log, "ERROR 2\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "ERROR 3\n");
    let mut got = lines(&mut f);
    got.sort();
    assert_eq!(got, ["ERROR 1", "ERROR 2", "ERROR 3"]);
    append(&log, "ERROR 4\n");
    assert_eq!(lines(&mut f), ["ERROR 4"]);
    // Two rotations between two polls: the file in the middle was never named when polled.
    append(&log, "ERROR 4b\n");
    std::fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).unwrap();
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "ERROR middle\n");
    std::fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).unwrap();
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "ERROR newest\n");
    let mut got = lines(&mut f);
    got.sort();
    assert_eq!(got, ["ERROR 4b", "ERROR middle", "ERROR newest"]);
    assert!(lines(&mut f).is_empty());
    // The compressed or old copies there before are not read.
    append(&log, "ERROR 4c\n");
    assert_eq!(lines(&mut f), ["ERROR 4c"]);
    // copytruncate: cut to nothing, then written again.
    std::fs::write(&log, "").unwrap();
    append(&log, "ERROR 5\n");
    assert_eq!(lines(&mut f), ["ERROR 5"]);
}

#[test]
fn a_saved_offset_resumes_and_a_new_file_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state");
    append(&log, "ERROR before\n");
    let mut f = LogFollower::new(entry(&log, None), Some(set()), Some(state.clone()));
    assert!(lines(&mut f).is_empty());
    append(&log, "ERROR a\n");
    assert_eq!(lines(&mut f), ["ERROR a"]);
    f.save();
    drop(f);
    append(&log, "ERROR while down\n");
    let mut g = LogFollower::new(entry(&log, None), Some(set()), Some(state.clone()));
    assert_eq!(lines(&mut g), ["ERROR while down"]);
    g.save();
    drop(g);
    // Rotated while down: the new file is new, read whole.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "ERROR new file\n");
    let mut h = LogFollower::new(entry(&log, None), Some(set()), Some(state));
    assert_eq!(lines(&mut h), ["ERROR new file"]);
}

#[test]
fn a_glob_follows_every_file_once_by_inode() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    append(&a, "");
    let mut f = LogFollower::new(entry(&dir.path().join("*.log*"), None), Some(set()), None);
    assert!(lines(&mut f).is_empty());
    append(&b, "ERROR in b\n");
    append(&a, "ERROR in a\n");
    let mut got = lines(&mut f);
    got.sort();
    assert_eq!(got, ["ERROR in a", "ERROR in b"]);
    // A rename within the glob is the same file: nothing again.
    std::fs::rename(&a, dir.path().join("a.log.1")).unwrap();
    assert!(lines(&mut f).is_empty());
}

#[test]
fn bad_entries_say_what_is_wrong() {
    let cases = [
        (
            LogfileConfig {
                path: "var/log/x".into(),
                ..Default::default()
            },
            "absolute",
        ),
        (
            LogfileConfig {
                path: "/var/*/x".into(),
                ..Default::default()
            },
            "only the file name",
        ),
        (
            LogfileConfig {
                path: "/x".into(),
                start: Some("middle".into()),
                ..Default::default()
            },
            "expected end or beginning",
        ),
        (
            LogfileConfig {
                path: "/x".into(),
                device: Some("a b".into()),
                ..Default::default()
            },
            "`device`",
        ),
        (
            LogfileConfig {
                path: "/x".into(),
                interval: Some("0s".into()),
                ..Default::default()
            },
            "`interval`",
        ),
        (
            LogfileConfig {
                path: "/x".into(),
                interval: Some("soon".into()),
                ..Default::default()
            },
            "`interval`",
        ),
        (
            LogfileConfig {
                path: "/".into(),
                ..Default::default()
            },
            "names no file",
        ),
    ];
    for (config, needle) in cases {
        let err = Logfile::from_config(&config).unwrap_err().to_string();
        assert!(err.contains(needle), "{config:?}: {err}");
    }
    let ok = Logfile::from_config(&LogfileConfig {
        path: "/var/log/syslog".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ok.device, "mo");
    assert!(ok.state_name().ends_with(".offsets") && !ok.state_name().contains('/'));
}

#[test]
fn new_patterns_apply_from_where_the_follower_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "");
    let mut f = LogFollower::new(entry(&log, None), Some(set()), None);
    assert!(lines(&mut f).is_empty());
    append(&log, "ERROR one\nWARN half");
    assert_eq!(lines(&mut f), ["ERROR one"]);
    let warn = PatternSet::new(&[Pattern::new("warn", "WARN", Severity::Warning, "")]).unwrap();
    f.set_patterns(Some(warn));
    // The line being read is finished with the new patterns; nothing before it is read again.
    append(&log, " done\nERROR two\n");
    assert_eq!(lines(&mut f), ["WARN half done"]);
    f.set_patterns(None);
    append(&log, "WARN three\n");
    assert!(lines(&mut f).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_task_offers_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "");
    let mut logfile = entry(&log, None);
    logfile.interval = Duration::from_millis(20);
    let (tx, mut rx) = mpsc::channel(16);
    let task = spawn_logfile(logfile, Some(set()), None, tx.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&log, "ERROR one\n");
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.message, "ERROR one");
    tokio::task::spawn_blocking(move || task.stop())
        .await
        .unwrap();
    append(&log, "ERROR two\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "a stopped follower offered a match");
}
