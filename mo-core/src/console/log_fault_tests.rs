//! The console keeps going when its record log cannot write: degraded state, notices, refused
//! notes, strict input, the gap record, and logging that resumes without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::link::EchoConnector;
use crate::log::{LogOptions, LogWriter, ReadOptions, read, verify};

/// A real log writer that fails (without writing) while `fail` is set, like a full disk.
struct FlakyLog {
    inner: LogWriter,
    fail: Arc<AtomicBool>,
    attempts: Arc<Mutex<u64>>,
}

impl RecordSink for FlakyLog {
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }
    fn append(&mut self, chunk: &Chunk) -> Result<()> {
        *self.attempts.lock().unwrap() += 1;
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::io(
                "append to log segment test.mlog",
                std::io::Error::from_raw_os_error(28), // ENOSPC
            ));
        }
        self.inner.append(chunk)
    }
    fn recent_output(&self, want: usize) -> Option<Vec<u8>> {
        self.inner.recent_output(want)
    }
}

struct Rig {
    console: Console,
    fail: Arc<AtomicBool>,
    attempts: Arc<Mutex<u64>>,
    dir: tempfile::TempDir,
}

fn rig(policy: LogPolicy) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (inner, _) = LogWriter::open(dir.path(), LogOptions::default()).unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(0));
    let sink = FlakyLog {
        inner,
        fail: fail.clone(),
        attempts: attempts.clone(),
    };
    let mut cfg = ConsoleConfig::new("dev1");
    cfg.log_policy = policy;
    let console = Console::spawn(cfg, Arc::new(EchoConnector), Some(Box::new(sink)));
    Rig {
        console,
        fail,
        attempts,
        dir,
    }
}

async fn up(console: &Console) {
    let mut state = console.watch_state();
    tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| matches!(s, LinkState::Up { .. })),
    )
    .await
    .unwrap()
    .unwrap();
}

/// Wait until the console's link is up, then attach `alice` as a viewer from the start.
async fn up_with_alice(console: &Console) -> Session {
    up(console).await;
    console
        .attach("alice", Mode::Attach, Some(0))
        .await
        .unwrap()
}

async fn notice_containing(s: &mut Session, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, s.recv())
            .await
            .unwrap_or_else(|_| panic!("no notice containing {needle:?}"));
        if let ViewerEvent::Chunk(c) = ev
            && matches!(c.kind, RecordKind::Notice | RecordKind::Gap)
        {
            let t = String::from_utf8_lossy(&c.bytes).to_string();
            if t.contains(needle) {
                return t;
            }
        }
    }
}

async fn output_containing(s: &mut Session, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains(needle) {
        let ev = tokio::time::timeout_at(deadline, s.recv())
            .await
            .unwrap_or_else(|_| panic!("output {needle:?} not seen"));
        if let ViewerEvent::Chunk(c) = ev
            && c.is_output()
        {
            got.extend_from_slice(&c.bytes);
        }
    }
}

fn records(dir: &std::path::Path) -> Vec<crate::log::Record> {
    read(dir, &ReadOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap()
}

#[tokio::test]
async fn one_failed_append_does_not_stop_the_log() {
    let r = rig(LogPolicy::Degrade);
    let mut alice = up_with_alice(&r.console).await;
    alice.write(b"before\n").await.unwrap();
    output_containing(&mut alice, "before").await;

    // The disk fills: the console keeps serving its viewer, says so once, refuses notes.
    r.fail.store(true, Ordering::SeqCst);
    alice.write(b"during-1\n").await.unwrap();
    let n = notice_containing(&mut alice, "log: degraded").await;
    assert!(n.contains("No space left on device"), "{n}");
    output_containing(&mut alice, "during-1").await;
    alice.write(b"during-2\n").await.unwrap();
    output_containing(&mut alice, "during-2").await;
    let health = r.console.log_health();
    let degraded = health.degraded.expect("log health says degraded");
    assert!(degraded.error.contains("No space left"), "{degraded:?}");
    assert!(health.write_errors >= 1);
    let err = alice.note("lost note").await.unwrap_err();
    assert!(
        matches!(err, Error::LogUnavailable { ref device, .. } if device == "dev1"),
        "{err}"
    );

    // Space comes back: the next retry writes a gap record and logging resumes by itself.
    r.fail.store(false, Ordering::SeqCst);
    let gap = notice_containing(&mut alice, "gap: ").await;
    assert!(
        gap.contains("records") && gap.contains("No space left"),
        "{gap}"
    );
    notice_containing(&mut alice, "log: recording again").await;
    assert!(r.console.log_health().degraded.is_none());
    assert_eq!(r.console.log_health().gaps, 1);
    alice.write(b"after\n").await.unwrap();
    output_containing(&mut alice, "after").await;
    let seq = alice.note("kept note").await.unwrap();
    assert!(seq > 1);

    let recs = records(r.dir.path());
    let text = |k: RecordKind| -> Vec<String> {
        recs.iter()
            .filter(|x| x.kind == k)
            .map(|x| String::from_utf8_lossy(&x.bytes).to_string())
            .collect()
    };
    let inputs = text(RecordKind::Input).concat();
    assert!(
        inputs.contains("before") && inputs.contains("after"),
        "{inputs}"
    );
    assert!(!inputs.contains("during"), "{inputs}");
    let gaps = text(RecordKind::Gap);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    // during-1, its echo, during-2, its echo, the refused note and the notices between: several
    // records, all counted.
    let lost: u64 = gaps[0]
        .strip_prefix("gap: ")
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(lost >= 4, "{}", gaps[0]);
    assert_eq!(text(RecordKind::Note), vec!["kept note".to_string()]);
    assert!(verify(r.dir.path()).unwrap().is_ok());
    // Sequence numbers are gap-free in the file: the gap is a record, not a hole.
    for w in recs.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
}

#[tokio::test]
async fn strict_policy_refuses_input_while_the_log_cannot_record() {
    let r = rig(LogPolicy::Strict);
    let mut alice = up_with_alice(&r.console).await;
    r.fail.store(true, Ordering::SeqCst);
    // The first keystroke finds out: its record fails, so it is not sent.
    let err = alice.write(b"secret-1\n").await.unwrap_err();
    assert!(matches!(err, Error::LogUnavailable { .. }), "{err}");
    let n = notice_containing(&mut alice, "log: degraded").await;
    assert!(n.contains("input is refused"), "{n}");
    let err = alice.write(b"secret-2\n").await.unwrap_err().to_string();
    assert!(err.contains("strict log policy"), "{err}");
    r.fail.store(false, Ordering::SeqCst);
    // Within the retry period input is accepted again; a barrier shows what reached the device.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while alice.write(b"ok-now\n").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "input still refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    output_containing(&mut alice, "ok-now").await;
    let recs = records(r.dir.path());
    let all: String = recs
        .iter()
        .map(|x| String::from_utf8_lossy(&x.bytes).to_string())
        .collect();
    assert!(
        !all.contains("secret-"),
        "refused input reached the log: {all}"
    );
    assert!(all.contains("ok-now"), "{all}");
    assert!(verify(r.dir.path()).unwrap().is_ok());
}

#[tokio::test]
async fn an_idle_degraded_log_recovers_on_its_own() {
    let r = rig(LogPolicy::Degrade);
    up(&r.console).await;
    r.fail.store(true, Ordering::SeqCst);
    let err = r
        .console
        .record(RecordKind::Mark, "bob", "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LogUnavailable { .. }), "{err}");
    let mut health = r.console.watch_log();
    assert!(health.borrow_and_update().degraded.is_some());
    let tries = *r.attempts.lock().unwrap();
    r.fail.store(false, Ordering::SeqCst);
    // Nothing else happens on the console: the actor's own retry timer writes the gap.
    tokio::time::timeout(
        Duration::from_secs(5),
        health.wait_for(|h| h.degraded.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(*r.attempts.lock().unwrap() > tries);
    let recs = records(r.dir.path());
    assert!(recs.iter().any(|x| x.kind == RecordKind::Gap));
    assert!(verify(r.dir.path()).unwrap().is_ok());
}

#[tokio::test]
async fn a_record_larger_than_the_format_allows_is_split_not_refused() {
    let r = rig(LogPolicy::Degrade);
    up(&r.console).await;
    let big = vec![b'p'; crate::log::format::MAX_PAYLOAD_LEN + 10];
    let seq = r
        .console
        .record(RecordKind::Power, "ops", big)
        .await
        .unwrap();
    let recs = records(r.dir.path());
    let power: Vec<_> = recs
        .iter()
        .filter(|x| x.kind == RecordKind::Power)
        .collect();
    assert_eq!(power.len(), 2);
    assert_eq!(power[0].bytes.len(), crate::log::format::MAX_PAYLOAD_LEN);
    assert_eq!(power[1].bytes.len(), 10);
    assert_eq!(power[1].seq, seq);
    assert!(r.console.log_health().degraded.is_none());
    // A note above its documented limit gets a clear error instead.
    let err = r
        .console
        .record(
            RecordKind::Note,
            "ops",
            vec![b'n'; crate::log::MAX_NOTE_LEN + 1],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 65536 bytes"), "{err}");
}

#[tokio::test]
async fn a_bounded_consumer_sees_output_the_log_could_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let (inner, _) = LogWriter::open(dir.path(), LogOptions::default()).unwrap();
    let fail = Arc::new(AtomicBool::new(true));
    let sink = FlakyLog {
        inner,
        fail: fail.clone(),
        attempts: Arc::default(),
    };
    let (scanner, mut rx) = bounded_consumer(8, Follow::Output);
    let console = Console::spawn_with(
        ConsoleConfig::new("dev2"),
        Arc::new(EchoConnector),
        Consumers::new().log(Box::new(sink)).bounded(scanner),
    );
    let alice = up_with_alice(&console).await;
    alice.write(b"scan me\n").await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&item.chunk.bytes[..], b"scan me\n");
    drop(dir);
}

#[tokio::test]
async fn a_log_that_cannot_be_opened_starts_the_console_degraded_until_it_can() {
    let base = tempfile::tempdir().unwrap();
    // The log's directory cannot be created: its parent is a file.
    let blocker = base.path().join("logs");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let dir = blocker.join("dev3");
    let (sink, recovery) = crate::log::ReopeningLog::open(&dir, LogOptions::default());
    assert!(recovery.is_none());
    assert!(
        sink.open_error().is_some_and(|e| e.contains("logs")),
        "{:?}",
        sink.open_error()
    );
    let console = Console::spawn(
        ConsoleConfig::new("dev3"),
        Arc::new(EchoConnector),
        Some(Box::new(sink)),
    );
    let mut alice = up_with_alice(&console).await;
    // The console works; the log says it cannot write.
    alice.write(b"unrecorded\n").await.unwrap();
    output_containing(&mut alice, "unrecorded").await;
    assert!(console.log_health().degraded.is_some());
    // The directory becomes possible: the log opens itself and starts with the gap.
    std::fs::remove_file(&blocker).unwrap();
    notice_containing(&mut alice, "log: recording again").await;
    alice.write(b"recorded\n").await.unwrap();
    output_containing(&mut alice, "recorded").await;
    let recs = records(&dir);
    assert_eq!(recs[0].kind, RecordKind::Gap, "{:?}", recs[0]);
    assert_eq!(recs[0].seq, 1);
    let all: String = recs
        .iter()
        .map(|x| String::from_utf8_lossy(&x.bytes).to_string())
        .collect();
    assert!(
        all.contains("recorded") && !all.contains("unrecorded"),
        "{all}"
    );
    assert!(verify(&dir).unwrap().is_ok());
}

/// A device that always has output ready (like a flood the kernel buffers faster than mo reads).
#[derive(Debug)]
struct Firehose;

#[async_trait::async_trait]
impl crate::link::Connector for Firehose {
    async fn connect(&self) -> Result<crate::link::Link> {
        Ok(crate::link::Link::plain(
            tokio::io::repeat(b'x'),
            tokio::io::sink(),
            "firehose",
        ))
    }
    fn capabilities(&self) -> crate::link::Capabilities {
        crate::link::Capabilities::NONE
    }
    fn address(&self) -> String {
        "firehose:".into()
    }
}

/// Counts the syncs of a real writer.
struct CountingSyncs {
    inner: LogWriter,
    syncs: Arc<Mutex<u64>>,
}

impl RecordSink for CountingSyncs {
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }
    fn append(&mut self, chunk: &Chunk) -> Result<()> {
        self.inner.append(chunk)
    }
    fn sync_deadline(&self) -> Option<std::time::Instant> {
        self.inner.sync_deadline()
    }
    fn sync(&mut self) -> Result<()> {
        *self.syncs.lock().unwrap() += 1;
        RecordSink::sync(&mut self.inner)
    }
}

#[tokio::test]
async fn the_sync_interval_holds_while_output_never_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        fsync: crate::log::Fsync::Interval(Duration::from_millis(50)),
        segment_max_bytes: 1 << 40,
        ..LogOptions::default()
    };
    let (inner, _) = LogWriter::open(dir.path(), opts).unwrap();
    let syncs = Arc::new(Mutex::new(0));
    let sink = CountingSyncs {
        inner,
        syncs: syncs.clone(),
    };
    let console = Console::spawn(
        ConsoleConfig::new("hose"),
        Arc::new(Firehose),
        Some(Box::new(sink)),
    );
    up(&console).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let n = *syncs.lock().unwrap();
    console.shutdown().await;
    // 600 ms at one sync per 50 ms: far more than the one a stop makes.
    assert!(n >= 4, "only {n} syncs in 600 ms of continuous output");
}

/// A quiet spell while the log is degraded, and across its recovery, does not lose the replay:
/// the buffer is given up only to a log that reads exactly its bytes back (output the log
/// missed is only in the buffer), and one given up before is read back before the gap record.
#[tokio::test(start_paused = true)]
async fn the_replay_buffer_survives_a_degraded_log_and_its_recovery() {
    let r = rig(LogPolicy::Degrade);
    let mut alice = up_with_alice(&r.console).await;
    alice.write(b"before\n").await.unwrap();
    output_containing(&mut alice, "before").await;
    // Quiet: the buffer is given up to the healthy log (and read back from it).
    tokio::time::sleep(super::hub::TAIL_QUIET * 3).await;
    assert_eq!(&r.console.replay(1).await.unwrap()[..], b"before\n");

    // The disk fills; the output echoed meanwhile is only in the buffer.
    r.fail.store(true, Ordering::SeqCst);
    alice.write(b"during\n").await.unwrap();
    notice_containing(&mut alice, "log: degraded").await;
    output_containing(&mut alice, "during").await;
    tokio::time::sleep(super::hub::TAIL_QUIET * 3).await;
    assert_eq!(&r.console.replay(2).await.unwrap()[..], b"before\nduring\n");

    // Space comes back: the gap record is written, the replay still has everything.
    r.fail.store(false, Ordering::SeqCst);
    notice_containing(&mut alice, "log: recording again").await;
    tokio::time::sleep(super::hub::TAIL_QUIET * 3).await;
    assert_eq!(&r.console.replay(2).await.unwrap()[..], b"before\nduring\n");
    alice.write(b"after\n").await.unwrap();
    output_containing(&mut alice, "after").await;
    tokio::time::sleep(super::hub::TAIL_QUIET * 3).await;
    assert_eq!(
        &r.console.replay(3).await.unwrap()[..],
        b"before\nduring\nafter\n"
    );
}
