#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::link::{Capabilities, Link, LinkControl, LinkStatus, ModemState};

/// A device whose far end the test holds: every connect hands the test a new duplex end.
#[derive(Debug)]
struct TestConnector {
    peers: mpsc::UnboundedSender<DuplexStream>,
    ops: Arc<Mutex<Vec<ControlOp>>>,
    caps: Capabilities,
}

struct TestControl(Arc<Mutex<Vec<ControlOp>>>);

#[async_trait]
impl LinkControl for TestControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

#[async_trait]
impl Connector for TestConnector {
    async fn connect(&self) -> Result<Link> {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        self.peers.send(theirs).map_err(|_| Error::Connect {
            address: "test:".into(),
            reason: "test ended".into(),
        })?;
        let (r, w) = tokio::io::split(ours);
        Ok(Link {
            reader: Box::pin(r),
            writer: Box::pin(w),
            control: Arc::new(TestControl(self.ops.clone())),
        })
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    fn address(&self) -> String {
        "test:".into()
    }
}

fn test_console(
    cfg: ConsoleConfig,
) -> (
    Console,
    mpsc::UnboundedReceiver<DuplexStream>,
    Arc<Mutex<Vec<ControlOp>>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ops = Arc::new(Mutex::new(Vec::new()));
    let conn = TestConnector {
        peers: tx,
        ops: ops.clone(),
        caps: Capabilities::NONE.with_break(true).with_window_size(true),
    };
    (Console::spawn(cfg, Arc::new(conn), None), rx, ops)
}

/// A sink that keeps every chunk.
#[derive(Clone, Default)]
struct VecSink(Arc<Mutex<Vec<Chunk>>>);

impl RecordSink for VecSink {
    fn next_seq(&self) -> u64 {
        self.0.lock().unwrap().len() as u64 + 1
    }
    fn append(&mut self, chunk: &Chunk) -> Result<()> {
        let mut v = self.0.lock().unwrap();
        assert_eq!(chunk.seq, v.len() as u64 + 1, "seq must be gap-free");
        v.push(chunk.clone());
        Ok(())
    }
}

/// A console on a [`TestConnector`] recording into `sink`, and the device ends of its links.
fn logged_console(
    cfg: ConsoleConfig,
    sink: &VecSink,
) -> (Console, mpsc::UnboundedReceiver<DuplexStream>) {
    console_with_sink(cfg, Box::new(sink.clone()))
}

/// A console on the test connector whose log is `sink`; its device ends arrive on the receiver.
fn console_with_sink(
    cfg: ConsoleConfig,
    sink: Box<dyn RecordSink>,
) -> (Console, mpsc::UnboundedReceiver<DuplexStream>) {
    let (tx, peers) = mpsc::unbounded_channel();
    let conn = TestConnector {
        peers: tx,
        ops: Arc::default(),
        caps: Capabilities::NONE,
    };
    let console = Console::spawn(cfg, Arc::new(conn), Some(sink));
    (console, peers)
}

/// A console with a record log in `dir` (segments of at most `segment_max_bytes`).
fn console_with_log(
    cfg: ConsoleConfig,
    dir: &std::path::Path,
    segment_max_bytes: u64,
) -> (Console, mpsc::UnboundedReceiver<DuplexStream>) {
    let opts = crate::log::LogOptions {
        segment_max_bytes,
        ..crate::log::LogOptions::default()
    };
    let (log, _) = crate::log::LogWriter::open(dir, opts).unwrap();
    console_with_sink(cfg, Box::new(log))
}

async fn next_notice(s: &mut Session, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ev = tokio::time::timeout_at(deadline, s.recv())
            .await
            .unwrap_or_else(|_| panic!("no notice containing {needle:?}"));
        if let ViewerEvent::Chunk(c) = ev
            && c.kind == RecordKind::Notice
        {
            let t = String::from_utf8_lossy(&c.bytes).to_string();
            if t.contains(needle) {
                return t;
            }
        }
    }
}

async fn read_output(s: &mut Session, want: &[u8]) {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.windows(want.len()).any(|w| w == want) {
        let ev = tokio::time::timeout_at(deadline, s.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "output {:?} not seen; got {:?}",
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(&got)
                )
            });
        if let ViewerEvent::Chunk(c) = ev
            && c.is_output()
        {
            got.extend_from_slice(&c.bytes);
        }
    }
}

#[tokio::test]
async fn attach_spy_force_who() {
    let (console, mut peers, _) = test_console(ConsoleConfig::new("web01"));
    let mut dev = peers.recv().await.unwrap();
    let mut alice = console
        .attach_from("alice", "ssh 127.0.0.1", Mode::Attach, None)
        .await
        .unwrap();
    assert_eq!(alice.role(), ViewerRole::ReadWrite);
    let bob = console.attach("bob", Mode::Attach, None).await.unwrap();
    assert_eq!(bob.role(), ViewerRole::Spy);
    assert!(
        bob.message().contains("in use by alice"),
        "{}",
        bob.message()
    );

    let who = console.who().await.unwrap();
    assert_eq!(who.len(), 2);
    assert_eq!(&*who[0].user, "alice");
    assert_eq!(who[0].role, ViewerRole::ReadWrite);
    assert_eq!(&*who[0].origin, "ssh 127.0.0.1");
    assert_eq!(who[1].role, ViewerRole::Spy);

    // A spy cannot type.
    let err = bob.write(b"x").await.unwrap_err().to_string();
    assert!(err.contains("spying") && err.contains("alice"), "{err}");

    alice.write(b"ls\r").await.unwrap();
    let mut buf = [0u8; 3];
    dev.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ls\r");

    // Force: bob takes the lock, alice is demoted and told.
    bob.set_mode(Mode::Force).await.unwrap();
    assert_eq!(bob.role(), ViewerRole::ReadWrite);
    let n = next_notice(&mut alice, "forced").await;
    assert!(
        n.contains("bob forced write access; alice is now spying"),
        "{n}"
    );
    assert!(alice.write(b"y").await.is_err());
    bob.write(b"z").await.unwrap();
    let mut one = [0u8; 1];
    dev.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"z");

    // Join: alice writes alongside bob.
    alice.set_mode(Mode::Join).await.unwrap();
    assert_eq!(alice.role(), ViewerRole::Joined);
    alice.write(b"j").await.unwrap();
    dev.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"j");

    // Holder leaves: joined writers lose write access, lock is free.
    drop(bob);
    let n = next_notice(&mut alice, "detached").await;
    assert!(n.contains("write lock free"), "{n}");
    assert!(alice.write(b"q").await.is_err());
    alice.set_mode(Mode::Attach).await.unwrap();
    assert_eq!(alice.role(), ViewerRole::ReadWrite);
}

#[tokio::test]
async fn join_denied_when_not_allowed() {
    let mut cfg = ConsoleConfig::new("db1");
    cfg.allow_join = false;
    let (console, _peers, _) = test_console(cfg);
    let _a = console.attach("a", Mode::Attach, None).await.unwrap();
    let err = console.attach("b", Mode::Join, None).await.unwrap_err();
    assert!(err.to_string().contains("does not allow joined writers"));
    assert_eq!(console.who().await.unwrap().len(), 1);
}

#[tokio::test]
async fn replay_last_lines_on_connect() {
    let (console, mut peers, _) = test_console(ConsoleConfig::new("r1"));
    let mut dev = peers.recv().await.unwrap();
    let mut watcher = console.attach("w", Mode::Spy, None).await.unwrap();
    let mut text = Vec::new();
    for i in 1..=30 {
        text.extend_from_slice(format!("line {i}\r\n").as_bytes());
    }
    text.extend_from_slice(b"login: ");
    dev.write_all(&text).await.unwrap();
    read_output(&mut watcher, b"login: ").await;

    let mut late = console.attach("late", Mode::Attach, None).await.unwrap();
    let replay = String::from_utf8(late.take_replay().to_vec()).unwrap();
    assert!(replay.starts_with("line 11\r\n"), "{replay}");
    assert!(replay.ends_with("line 30\r\nlogin: "), "{replay}");
    let mut three = console.attach("three", Mode::Spy, Some(3)).await.unwrap();
    assert_eq!(
        &three.take_replay()[..],
        b"line 28\r\nline 29\r\nline 30\r\nlogin: "
    );
    assert_eq!(&console.replay(1).await.unwrap()[..], b"line 30\r\nlogin: ");
}

/// A quiet console gives its replay buffer up to its record log and replays from there (shown by
/// moving the log's segment away: the replay is then empty, and whole again once it is back);
/// output that goes on first puts the buffer back, so replays run on across the quiet spell.
#[tokio::test(start_paused = true)]
async fn a_quiet_console_replays_from_its_record_log() {
    let dir = tempfile::tempdir().unwrap();
    let segment_max = crate::log::LogOptions::default().segment_max_bytes;
    let (console, mut peers) = console_with_log(ConsoleConfig::new("q1"), dir.path(), segment_max);
    let mut dev = peers.recv().await.unwrap();
    let mut watcher = console.attach("w", Mode::Spy, None).await.unwrap();
    let mut text = Vec::new();
    for i in 1..=30 {
        text.extend_from_slice(format!("boot line {i}\r\n").as_bytes());
    }
    text.extend_from_slice(b"q1 login: ");
    // In pieces, so the log holds several output records between notices.
    for piece in text.chunks(37) {
        dev.write_all(piece).await.unwrap();
        read_output(&mut watcher, piece).await;
    }
    let before = console.replay(5).await.unwrap();
    assert!(
        before.ends_with(b"boot line 30\r\nq1 login: "),
        "{before:?}"
    );
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "mlog"))
        .unwrap();
    let aside = dir.path().join("aside");

    // Still printing: the buffer holds the output itself.
    std::fs::rename(&segment, &aside).unwrap();
    assert_eq!(console.replay(5).await.unwrap(), before);
    std::fs::rename(&aside, &segment).unwrap();

    // Quiet for long enough: replays come from the log.
    tokio::time::sleep(hub::TAIL_QUIET * 3).await;
    assert_eq!(console.replay(5).await.unwrap(), before);
    std::fs::rename(&segment, &aside).unwrap();
    assert!(console.replay(5).await.unwrap().is_empty());
    std::fs::rename(&aside, &segment).unwrap();
    assert_eq!(console.replay(5).await.unwrap(), before);
    let mut late = console.attach("late", Mode::Spy, Some(5)).await.unwrap();
    assert_eq!(late.take_replay(), before);

    // Output again: the log goes on holding the buffer (its last bytes are the buffer's), and
    // replays run on across the quiet spell.
    dev.write_all(b"root\r\nPassword: ").await.unwrap();
    read_output(&mut watcher, b"Password: ").await;
    let after = console.replay(2).await.unwrap();
    assert_eq!(&after[..], b"boot line 30\r\nq1 login: root\r\nPassword: ");
    std::fs::rename(&segment, &aside).unwrap();
    assert!(console.replay(2).await.unwrap().is_empty());
    std::fs::rename(&aside, &segment).unwrap();
    let whole = console.replay(40).await.unwrap();
    assert!(whole.starts_with(b"boot line 1\r\n"), "{whole:?}");
    assert!(
        whole.ends_with(b"q1 login: root\r\nPassword: "),
        "{whole:?}"
    );
}

/// A flooding console's full replay buffer is given up to its record log at once, and the log's
/// last bytes stay the buffer as output goes on: replays are the last `tail_bytes` of output,
/// read back from the log; across a segment rotation the buffer is read back into memory before
/// the new segment starts, so replays go on whole.
#[tokio::test]
async fn a_full_replay_buffer_lives_in_the_record_log_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ConsoleConfig::new("fl");
    cfg.tail_bytes = 4096;
    let (console, mut peers) = console_with_log(cfg, dir.path(), 64 * 1024);
    let mut dev = peers.recv().await.unwrap();
    let mut watcher = console.attach("w", Mode::Spy, None).await.unwrap();
    let segments = || {
        let mut paths: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "mlog"))
            .collect();
        paths.sort();
        paths
    };
    let mut all = Vec::new();
    let mut checked = 0;
    for i in 0..3000 {
        let line = format!("flood line {i:05} {}\r\n", "x".repeat(i % 50));
        all.extend_from_slice(line.as_bytes());
        dev.write_all(line.as_bytes()).await.unwrap();
        read_output(&mut watcher, line.as_bytes()).await;
        assert_eq!(console.output_offset(), all.len() as u64);
        if i % 97 == 0 || i == 2999 {
            let replay = console.replay(10_000).await.unwrap();
            // More lines than it holds: the last 4096 bytes.
            let last = &all[all.len().saturating_sub(4096)..];
            assert_eq!(
                String::from_utf8_lossy(&replay),
                String::from_utf8_lossy(last),
                "after line {i}"
            );
            checked += 1;
        }
    }
    assert!(checked > 30);
    assert!(segments().len() >= 3, "the log rotated: {:?}", segments());
    // The buffer is in the log, not in memory: with the live segment moved away it is gone.
    let live = segments().pop().unwrap();
    let aside = dir.path().join("aside");
    std::fs::rename(&live, &aside).unwrap();
    assert!(console.replay(3).await.unwrap().is_empty());
    std::fs::rename(&aside, &live).unwrap();
    assert!(
        console
            .replay(1)
            .await
            .unwrap()
            .ends_with(b"flood line 02999 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n")
    );
}

/// Random output and notes into a log with tiny segments and a small replay buffer: after each
/// step the replay is exactly the last `tail_bytes` of output, whether the buffer is in memory,
/// in the log, or was read back before a rotation.
#[tokio::test]
async fn the_replay_is_the_last_output_whatever_the_log_does() {
    use rand::{Rng, SeedableRng};
    for seed in 0..4u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ConsoleConfig::new("r");
        cfg.tail_bytes = rng.random_range(256..3000);
        let cap = cfg.tail_bytes;
        let segment_max = rng.random_range(2048..8192);
        let (console, mut peers) = console_with_log(cfg, dir.path(), segment_max);
        let mut dev = peers.recv().await.unwrap();
        let mut all = Vec::new();
        for step in 0..250 {
            if rng.random_bool(0.2) {
                let len = rng.random_range(1..400);
                console
                    .record(RecordKind::Mark, "t", vec![b'm'; len])
                    .await
                    .unwrap();
            } else {
                let most = if rng.random_bool(0.1) { 9000 } else { 600 };
                let len = rng.random_range(1..most);
                let bytes: Vec<u8> = (0..len)
                    .map(|_| match rng.random_range(0..40) {
                        0 => b'\n',
                        1 => b'\r',
                        _ => rng.random_range(b' '..=b'~'),
                    })
                    .collect();
                all.extend_from_slice(&bytes);
                dev.write_all(&bytes).await.unwrap();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while console.output_offset() < all.len() as u64 {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "seed {seed} step {step}"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            let replay = console.replay(usize::MAX / 2).await.unwrap();
            let want = &all[all.len().saturating_sub(cap)..];
            assert!(
                replay == want,
                "seed {seed} step {step} (cap {cap}): replay of {} bytes, want {}",
                replay.len(),
                want.len()
            );
        }
    }
}

/// A log that cannot read back (a sink without [`RecordSink::recent_output`]) keeps the replay
/// buffer in memory through a quiet spell.
#[tokio::test(start_paused = true)]
async fn a_log_that_cannot_read_back_keeps_the_replay_buffer() {
    let sink = VecSink::default();
    let (console, mut peers) = logged_console(ConsoleConfig::new("q2"), &sink);
    let mut dev = peers.recv().await.unwrap();
    let mut watcher = console.attach("w", Mode::Spy, None).await.unwrap();
    dev.write_all(b"one\r\ntwo\r\nq2 login: ").await.unwrap();
    read_output(&mut watcher, b"q2 login: ").await;
    tokio::time::sleep(hub::TAIL_QUIET * 3).await;
    assert_eq!(&console.replay(1).await.unwrap()[..], b"two\r\nq2 login: ");
}

#[tokio::test]
async fn stalled_viewer_does_not_slow_others_or_the_log() {
    let sink = VecSink::default();
    let mut cfg = ConsoleConfig::new("flood");
    cfg.hub_capacity = 16;
    let (console, mut peers) = logged_console(cfg, &sink);
    let mut dev = peers.recv().await.unwrap();
    let mut stalled = console.attach("stalled", Mode::Spy, Some(0)).await.unwrap();
    let mut reader = console.attach("reader", Mode::Spy, Some(0)).await.unwrap();

    const TOTAL: usize = 4 << 20;
    let writer = tokio::spawn(async move {
        let block = vec![b'x'; 4096];
        for _ in 0..TOTAL / block.len() {
            dev.write_all(&block).await.unwrap();
        }
        dev
    });
    let mut seen = 0usize;
    while seen < TOTAL {
        match tokio::time::timeout(Duration::from_secs(10), reader.recv())
            .await
            .unwrap()
        {
            ViewerEvent::Chunk(c) if c.is_output() => seen += c.bytes.len(),
            ViewerEvent::Missed { .. } => {}
            ViewerEvent::Chunk(_) => {}
            ViewerEvent::Closed => panic!("closed"),
        }
    }
    let _dev = writer.await.unwrap();
    // The stalled viewer is told how much it missed.
    let mut missed = 0;
    loop {
        match stalled.try_recv() {
            Some(ViewerEvent::Missed { bytes, chunks }) => {
                assert!(chunks > 0);
                missed += bytes;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(missed > 0, "stalled viewer must be told it missed output");
    // The log holds every output byte, gap-free.
    let logged: usize = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.is_output())
        .map(|c| c.bytes.len())
        .sum();
    assert_eq!(logged, TOTAL);
}

#[tokio::test]
async fn reconnects_after_device_goes_away() {
    let mut cfg = ConsoleConfig::new("rc");
    cfg.backoff_initial = Duration::from_millis(20);
    let (console, mut peers, _) = test_console(cfg);
    let dev = peers.recv().await.unwrap();
    let mut v = console.attach("v", Mode::Attach, None).await.unwrap();
    drop(dev);
    let n = next_notice(&mut v, "link down").await;
    assert!(
        n.contains("closed the connection") && n.contains("retrying in"),
        "{n}"
    );
    let mut dev2 = tokio::time::timeout(Duration::from_secs(5), peers.recv())
        .await
        .unwrap()
        .unwrap();
    next_notice(&mut v, "link up").await;
    assert!(matches!(console.state(), LinkState::Up { .. }));
    dev2.write_all(b"back\r\n").await.unwrap();
    read_output(&mut v, b"back").await;
    // A viewer typing while the link is down gets a clear error; here it is up, so it works.
    v.write(b"ok").await.unwrap();
}

#[tokio::test]
async fn on_demand_connects_only_with_viewers() {
    let mut cfg = ConsoleConfig::new("od");
    cfg.on_demand = true;
    cfg.idle_timeout = Duration::from_millis(50);
    let (console, mut peers, _) = test_console(cfg);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(console.state(), LinkState::Idle);
    assert!(peers.try_recv().is_err());
    let v = console.attach("v", Mode::Attach, None).await.unwrap();
    let _dev = tokio::time::timeout(Duration::from_secs(5), peers.recv())
        .await
        .unwrap()
        .unwrap();
    drop(v);
    let mut state = console.watch_state();
    tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| *s == LinkState::Idle),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn break_sequences_and_window_size_reach_the_link() {
    let (console, mut peers, ops) = test_console(ConsoleConfig::new("brk"));
    let mut dev = peers.recv().await.unwrap();
    let spy = console.attach("spy", Mode::Spy, None).await.unwrap();
    let s = console.attach("root", Mode::Attach, None).await.unwrap();
    assert!(spy.send_break(1).await.is_err(), "a spy cannot send break");
    let text = s.send_break(1).await.unwrap();
    assert!(text.contains("break 1"), "{text}");
    s.send_break(3).await.unwrap();
    let mut buf = [0u8; 2];
    dev.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"#.");
    let err = s.send_break(9).await.unwrap_err().to_string();
    assert!(err.contains("no break sequence 9"), "{err}");
    spy.window_size(10, 10).await.unwrap();
    s.window_size(120, 40).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ops = ops.lock().unwrap().clone();
    assert!(ops.contains(&ControlOp::Break {
        duration: crate::breakseq::BREAK_DURATION
    }));
    assert!(ops.contains(&ControlOp::WindowSize {
        cols: 120,
        rows: 40
    }));
    assert!(!ops.contains(&ControlOp::WindowSize { cols: 10, rows: 10 }));
}

/// An echo console logging into `sink`, with alice attached read-write.
async fn echo_console_with_alice(sink: &VecSink) -> (Console, Session) {
    let console = Console::spawn(
        ConsoleConfig::new("echo"),
        Arc::new(crate::link::EchoConnector),
        Some(Box::new(sink.clone())),
    );
    let a = console.attach("alice", Mode::Attach, None).await.unwrap();
    (console, a)
}

#[tokio::test]
async fn input_is_logged_with_its_author() {
    let sink = VecSink::default();
    let (console, mut a) = echo_console_with_alice(&sink).await;
    let mut state = console.watch_state();
    state
        .wait_for(|s| matches!(s, LinkState::Up { .. }))
        .await
        .unwrap();
    a.write(b"hello").await.unwrap();
    read_output(&mut a, b"hello").await;
    a.note("checked").await.unwrap();
    let log = sink.0.lock().unwrap().clone();
    let input = log.iter().find(|c| c.kind == RecordKind::Input).unwrap();
    assert_eq!(&*input.user, "alice");
    assert_eq!(&input.bytes[..], b"hello");
    let note = log.iter().find(|c| c.kind == RecordKind::Note).unwrap();
    assert_eq!(&*note.user, "alice");
    assert!(
        log.windows(2)
            .all(|w| w[1].seq == w[0].seq + 1 && w[1].time_ns >= w[0].time_ns)
    );
    console.shutdown().await;
    next_notice(&mut a, "console stopped").await;
    assert_eq!(a.recv().await, ViewerEvent::Closed);
}

#[tokio::test]
async fn input_typed_elsewhere_is_logged_and_not_sent() {
    let sink = VecSink::default();
    let (console, mut peers) = logged_console(ConsoleConfig::new("cs"), &sink);
    let a = console.attach("alice", Mode::Attach, None).await.unwrap();
    let mut peer = peers.recv().await.unwrap();
    let mut state = console.watch_state();
    state
        .wait_for(|s| matches!(s, LinkState::Up { .. }))
        .await
        .unwrap();
    console
        .log_input("local:root@cs1", &b"typed on site"[..])
        .await
        .unwrap();
    a.write(b"x").await.unwrap();
    // The device gets alice's byte first: the local input did not go to it.
    let mut got = [0u8; 1];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"x");
    let inputs: Vec<(String, Vec<u8>)> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.kind == RecordKind::Input)
        .map(|c| (c.user.to_string(), c.bytes.to_vec()))
        .collect();
    assert_eq!(
        inputs,
        [
            ("local:root@cs1".to_string(), b"typed on site".to_vec()),
            ("alice".to_string(), b"x".to_vec())
        ]
    );
}

/// A device whose modem lines the test sets: every connect hands the test the far end of the
/// bytes and the sender of the link's status.
#[derive(Debug)]
struct ModemConnector {
    peers: mpsc::UnboundedSender<(DuplexStream, watch::Sender<LinkStatus>)>,
}

struct ModemControl(watch::Receiver<LinkStatus>);

#[async_trait]
impl LinkControl for ModemControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        Err(Error::Unsupported {
            operation: op.name(),
            what: "modem test".into(),
        })
    }
    fn status(&self) -> Option<watch::Receiver<LinkStatus>> {
        Some(self.0.clone())
    }
}

#[async_trait]
impl Connector for ModemConnector {
    async fn connect(&self) -> Result<Link> {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (status_tx, status_rx) = watch::channel(LinkStatus::default());
        self.peers
            .send((theirs, status_tx))
            .map_err(|_| Error::Connect {
                address: "modem:".into(),
                reason: "test ended".into(),
            })?;
        let (r, w) = tokio::io::split(ours);
        Ok(Link {
            reader: Box::pin(r),
            writer: Box::pin(w),
            control: Arc::new(ModemControl(status_rx)),
        })
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    fn address(&self) -> String {
        "modem:".into()
    }
}

fn modem(dcd: bool, dsr: bool, cts: bool) -> LinkStatus {
    LinkStatus {
        modem: Some(ModemState {
            dcd,
            dsr,
            cts,
            ri: false,
        }),
    }
}

#[tokio::test]
async fn modem_line_changes_reach_viewers_the_log_and_the_state() {
    let sink = VecSink::default();
    let (tx, mut peers) = mpsc::unbounded_channel();
    let mut cfg = ConsoleConfig::new("modem");
    cfg.backoff_initial = Duration::from_millis(20);
    let console = Console::spawn(
        cfg,
        Arc::new(ModemConnector { peers: tx }),
        Some(Box::new(sink.clone())),
    );
    let mut v = console.attach("v", Mode::Spy, None).await.unwrap();
    let (mut dev, status) = peers.recv().await.unwrap();
    let mut state = console.watch_state();
    state
        .wait_for(|s| matches!(s, LinkState::Up { .. }))
        .await
        .unwrap();
    assert_eq!(console.modem(), None, "nothing reported yet");
    let mut watch_modem = console.watch_modem();

    status.send_replace(modem(true, true, true));
    let n = next_notice(&mut v, "modem:").await;
    assert_eq!(n, "modem: DCD up, DSR up, CTS up, RI off");
    watch_modem.wait_for(Option::is_some).await.unwrap();
    assert_eq!(console.modem(), modem(true, true, true).modem);
    let lines = console.lines();
    assert!(lines.modem_changed.is_some(), "{lines:?}");
    assert!(
        lines.dtr && lines.rts && lines.dtr_changed.is_none(),
        "{lines:?}"
    );
    // This link has no DTR/RTS to set: refused by name, nothing recorded.
    let refused = console
        .set_signal_as("alice", crate::link::Signal::Dtr, Some(false))
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::Unsupported {
                operation: "dtr",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(console.lines().dtr, "unchanged");

    // The same state again (a repeated notification) is no news; the next notice is the change.
    // Output written after it is read after it (the actor looks at the status first).
    status.send_replace(modem(true, true, true));
    dev.write_all(b"tick\r\n").await.unwrap();
    read_output(&mut v, b"tick").await;
    status.send_replace(modem(false, true, true));
    let n = next_notice(&mut v, "modem:").await;
    assert_eq!(n, "modem: DCD down (carrier lost); DSR up, CTS up, RI off");
    watch_modem
        .wait_for(|m| m.is_some_and(|m| !m.dcd))
        .await
        .unwrap();

    // The link goes down: the modem state is unknown until the next link reports it, and the
    // first report after the reconnect is announced again.
    drop((dev, status));
    next_notice(&mut v, "link down").await;
    watch_modem.wait_for(Option::is_none).await.unwrap();
    let (_dev, status) = peers.recv().await.unwrap();
    next_notice(&mut v, "link up").await;
    status.send_replace(modem(false, true, true));
    let n = next_notice(&mut v, "modem:").await;
    assert_eq!(n, "modem: DCD down, DSR up, CTS up, RI off");

    let logged: Vec<String> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.kind == RecordKind::Notice && c.bytes.starts_with(b"modem:"))
        .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
        .collect();
    assert_eq!(
        logged,
        [
            "modem: DCD up, DSR up, CTS up, RI off",
            "modem: DCD down (carrier lost); DSR up, CTS up, RI off",
            "modem: DCD down, DSR up, CTS up, RI off",
        ]
    );
}

/// When the pieces of a link's next bytes were read: `(length, time_ns)`.
type Times = Arc<Mutex<Vec<(usize, u64)>>>;

/// A link that carries output read earlier elsewhere: the test says when each piece was read.
#[derive(Debug)]
struct TimedConnector {
    peers: mpsc::UnboundedSender<(DuplexStream, Times)>,
}

struct TimedControl(Times);

#[async_trait]
impl LinkControl for TimedControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        Err(Error::Unsupported {
            operation: op.name(),
            what: "timed test".into(),
        })
    }
    fn origin_times(&self, n: usize) -> Option<Vec<(usize, u64)>> {
        // Hand out pieces covering n bytes (the test writes whole pieces at once).
        let mut q = self.0.lock().unwrap();
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 && !q.is_empty() {
            let (len, t) = q.remove(0);
            let take = len.min(left);
            out.push((take, t));
            if take < len {
                q.insert(0, (len - take, t));
            }
            left -= take;
        }
        Some(out)
    }
}

#[async_trait]
impl Connector for TimedConnector {
    async fn connect(&self) -> Result<Link> {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let times = Arc::new(Mutex::new(Vec::new()));
        self.peers
            .send((theirs, times.clone()))
            .map_err(|_| Error::Connect {
                address: "timed:".into(),
                reason: "test ended".into(),
            })?;
        let (r, w) = tokio::io::split(ours);
        Ok(Link {
            reader: Box::pin(r),
            writer: Box::pin(w),
            control: Arc::new(TimedControl(times)),
        })
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    fn address(&self) -> String {
        "timed:".into()
    }
}

#[tokio::test]
async fn output_is_recorded_with_the_time_the_link_says_it_was_read() {
    let sink = VecSink::default();
    let (tx, mut peers) = mpsc::unbounded_channel();
    let console = Console::spawn(
        ConsoleConfig::new("timed"),
        Arc::new(TimedConnector { peers: tx }),
        Some(Box::new(sink.clone())),
    );
    let mut v = console.attach("v", Mode::Spy, None).await.unwrap();
    let (mut dev, times) = peers.recv().await.unwrap();
    times.lock().unwrap().extend([(5, 1_000), (4, 2_000)]);
    dev.write_all(b"old\r\nnew\n").await.unwrap();
    read_output(&mut v, b"new").await;
    let mut seen = Vec::new();
    for c in sink.0.lock().unwrap().iter() {
        if c.kind == RecordKind::Output {
            seen.extend(c.bytes.iter().map(|b| (*b, c.time_ns)));
        }
    }
    let want: Vec<(u8, u64)> = b"old\r\n"
        .iter()
        .map(|b| (*b, 1_000))
        .chain(b"new\n".iter().map(|b| (*b, 2_000)))
        .collect();
    assert_eq!(seen, want);
    // Bytes the link has no time for are read now.
    dev.write_all(b"live\n").await.unwrap();
    read_output(&mut v, b"live").await;
    let last = sink.0.lock().unwrap().last().map(|c| c.time_ns).unwrap();
    assert!(last > 1_000_000_000_000_000_000, "{last}");
}

/// Records recovered from elsewhere go into the log after a notice, with the log's next
/// sequence numbers and their own times, kinds and users; viewers see the notice only.
#[tokio::test]
async fn recovered_records_are_logged_with_fresh_numbers_after_a_notice() {
    let sink = VecSink::default();
    let (console, mut a) = echo_console_with_alice(&sink).await;
    let old = |seq, kind, user: &str, bytes: &[u8]| crate::log::Record {
        seq,
        time_ns: 1_000 + seq,
        kind,
        user: user.into(),
        bytes: bytes.to_vec(),
    };
    let before = sink.0.lock().unwrap().last().map_or(0, |c| c.seq);
    let (first, last) = console
        .append_recovered(
            "recovered: 2 records".into(),
            vec![
                old(7, RecordKind::Output, "", b"old output"),
                old(8, RecordKind::Input, "bob", b"old input"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((first, last), (before + 1, before + 3));
    let log = sink.0.lock().unwrap().clone();
    let tail: Vec<_> = log.iter().filter(|c| c.seq >= first).collect();
    assert_eq!(tail.len(), 3);
    assert_eq!(tail[0].kind, RecordKind::Notice);
    assert_eq!(&tail[0].bytes[..], b"recovered: 2 records");
    assert_eq!(
        (tail[1].time_ns, tail[1].kind, &tail[1].bytes[..]),
        (1_007, RecordKind::Output, &b"old output"[..])
    );
    assert_eq!(
        (tail[2].time_ns, &*tail[2].user, tail[2].seq),
        (1_008, "bob", before + 3)
    );
    next_notice(&mut a, "recovered: 2 records").await;
    a.write(b"new").await.unwrap();
    read_output(&mut a, b"new").await;
    console.shutdown().await;
}

/// A device with far more output ready than a bounded consumer holds (an 8 MiB flood into a
/// 512 KiB feed): the console lets other tasks run after each 128 KiB it reads instead of after
/// tokio's whole cooperative budget of reads, so a consumer that keeps up (a scanner) skips
/// nothing. Reading the budget through first filled the feed and skipped.
#[tokio::test(flavor = "current_thread")]
async fn a_flooding_console_lets_its_consumers_keep_up() {
    const FLOOD: usize = 8 << 20;
    let (tx, mut peers) = mpsc::unbounded_channel();
    let conn = TestConnector {
        peers: tx,
        ops: Arc::default(),
        caps: Capabilities::NONE,
    };
    let (consumer, mut feed) = bounded_consumer_bytes(512 * 1024, Follow::Output);
    let console = Console::spawn_with(
        ConsoleConfig::new("flood"),
        Arc::new(conn),
        Consumers::new().bounded(consumer),
    );
    let mut dev = peers.recv().await.unwrap();
    let writer = tokio::spawn(async move {
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..FLOOD / block.len() {
            dev.write_all(&block).await.unwrap();
        }
        dev
    });
    let mut got = 0;
    while got < FLOOD {
        // Skipped bytes show with the next chunk; skipped at the very end, none follows.
        let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await
        else {
            break;
        };
        got += delivery.chunk.bytes.len();
    }
    assert_eq!(feed.skipped_total(), 0, "the consumer fell behind");
    assert_eq!(got, FLOOD);
    drop(writer.await.unwrap());
    console.shutdown().await;
}
