#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use super::*;
use crate::link::{Capabilities, ControlOp, Link, LinkControl};
use crate::record::RecordKind;

const LONG: Duration = Duration::from_secs(10);

/// A device whose far end the test holds: every connect hands the test a new duplex end.
#[derive(Debug)]
struct DuplexConnector {
    peers: mpsc::UnboundedSender<DuplexStream>,
    ops: Arc<StdMutex<Vec<ControlOp>>>,
    fail: bool,
}

struct OpLog(Arc<StdMutex<Vec<ControlOp>>>);

#[async_trait]
impl LinkControl for OpLog {
    async fn control(&self, op: ControlOp) -> Result<()> {
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

#[async_trait]
impl Connector for DuplexConnector {
    async fn connect(&self) -> Result<crate::link::Link> {
        if self.fail {
            return Err(Error::Connect {
                address: "duplex:".into(),
                reason: "refused by the test".into(),
            });
        }
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        self.peers.send(theirs).map_err(|_| Error::Connect {
            address: "duplex:".into(),
            reason: "test ended".into(),
        })?;
        let (r, w) = tokio::io::split(ours);
        Ok(Link {
            reader: Box::pin(r),
            writer: Box::pin(w),
            control: Arc::new(OpLog(self.ops.clone())),
        })
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_break(true).with_window_size(true)
    }
    fn address(&self) -> String {
        "duplex:".into()
    }
}

type Peers = mpsc::UnboundedReceiver<DuplexStream>;

fn connector(fail: bool) -> (Arc<DuplexConnector>, Peers, Arc<StdMutex<Vec<ControlOp>>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ops = Arc::new(StdMutex::new(Vec::new()));
    let c = DuplexConnector {
        peers: tx,
        ops: ops.clone(),
        fail,
    };
    (Arc::new(c), rx, ops)
}

async fn read_some(device: &mut DuplexStream, want: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(want.len()).any(|w| w == want) {
        let n = tokio::time::timeout(LONG, device.read(&mut buf))
            .await
            .expect("device read timed out")
            .unwrap();
        assert!(n > 0, "link closed before {want:?} arrived; got {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test]
async fn expect_matches_across_pieces_and_times_out_naming_the_device() {
    let (conn, mut peers, _) = connector(false);
    let h = open_local("web01", conn, LocalOptions::default().user("alice"))
        .await
        .unwrap();
    let mut device = peers.recv().await.unwrap();
    assert_eq!(h.info().device, "web01");
    assert_eq!(h.info().user, "alice");
    assert_eq!(h.info().role, "attach");

    device
        .write_all(b"boot ok\r\n\x1b[1mweb01\x1b[0m lo")
        .await
        .unwrap();
    let login = ExpectPattern::regex(r"(\w+) login: $").unwrap();
    let err = h
        .expect(std::slice::from_ref(&login), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("web01: waiting for /(\\w+) login: $/"),
        "{text}"
    );
    assert!(text.contains("web01 lo"), "{text}");

    device.write_all(b"gin: ").await.unwrap();
    let m = h.expect(&[login], LONG).await.unwrap();
    assert_eq!(m.index, 0);
    assert_eq!(m.before, "boot ok\n");
    assert_eq!(m.matched, "web01 login: ");
    assert_eq!(m.captures, vec![Some("web01".to_string())]);
    assert_eq!(m.missed, 0);
    assert_eq!(h.buffer().await, "");

    // Keystrokes reach the device, with the line end.
    h.send_line("root").await.unwrap();
    read_some(&mut device, b"root\r").await;

    // The earliest match wins over pattern order.
    device.write_all(b"# a b").await.unwrap();
    let m = h
        .expect(
            &[
                ExpectPattern::literal("b").unwrap(),
                ExpectPattern::literal("a").unwrap(),
            ],
            LONG,
        )
        .await
        .unwrap();
    assert_eq!((m.index, m.before.as_str()), (1, "# "));
    h.close().await.unwrap();
}

/// A handle nobody reads falls behind; the loss is reported, and expect goes on after it.
#[tokio::test]
async fn a_slow_reader_is_told_what_it_missed() {
    let (conn, mut peers, _) = connector(false);
    let mut cfg = ConsoleConfig::new("flood1");
    cfg.hub_capacity = 4;
    let console = Console::spawn(cfg, conn, None);
    let mut state = console.watch_state();
    state
        .wait_for(|s| matches!(s, LinkState::Up { .. }))
        .await
        .unwrap();
    let mut device = peers.recv().await.unwrap();
    let session = console
        .attach("alice", Mode::Attach, Some(0))
        .await
        .unwrap();
    let h = ConsoleHandle::new(Box::new(LocalAttachment::new(session)));
    let mut watch = console.subscribe().await.unwrap();

    // One chunk per piece: wait until the console has taken each before writing the next.
    let pieces = QUEUE + 100;
    for i in 0..pieces {
        device
            .write_all(format!("line {i:04}\r\n").as_bytes())
            .await
            .unwrap();
        let _ = watch.recv().await;
    }
    device.write_all(b"END\r\n").await.unwrap();

    let m = h
        .expect(&[ExpectPattern::literal("END").unwrap()], LONG)
        .await
        .unwrap();
    let total = (pieces * 11) as u64;
    assert!(m.missed > 0, "nothing reported missed");
    assert!(m.missed < total, "missed {} of {total}", m.missed);
    assert!(m.before.starts_with("line 0000\n"), "{}", &m.before[..40]);
    // What arrived plus what was missed is everything the device sent before END.
    let seen: Vec<&str> = m.before.lines().collect();
    assert!(seen.iter().all(|l| l.len() == 9), "{seen:?}");
    assert_eq!(seen.len() as u64 * 11 + m.missed, total, "{seen:?}");
    assert_eq!(h.missed_total().await, m.missed);

    // Output::Missed is what a plain reader sees.
    for i in 0..pieces {
        device
            .write_all(format!("more {i:04}\r\n").as_bytes())
            .await
            .unwrap();
        let _ = watch.recv().await;
    }
    let mut saw = None;
    for _ in 0..pieces + 2 {
        match tokio::time::timeout(LONG, h.read()).await.unwrap() {
            Output::Missed(n) => {
                saw = Some(n);
                break;
            }
            Output::Data(_) | Output::Notice(_) => {}
            Output::Closed(why) => panic!("closed: {why}"),
        }
    }
    assert!(saw.is_some_and(|n| n > 0), "no Missed item: {saw:?}");
    h.close().await.unwrap();
    // The console was not owned by the handle: it still runs.
    assert!(console.attach("bob", Mode::Spy, Some(0)).await.is_ok());
}

#[tokio::test]
async fn who_break_resize_note_and_close() {
    let (conn, mut peers, ops) = connector(false);
    let h = open_local("sw1", conn, LocalOptions::default().user("alice"))
        .await
        .unwrap();
    let mut device = peers.recv().await.unwrap();

    let who = h.who().await.unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(
        (who[0].user.as_str(), who[0].role.as_str()),
        ("alice", "attach")
    );

    // 0 is the plain BREAK (sequence 1, `\z`).
    let text = h.send_break(0).await.unwrap();
    assert!(text.contains("break 1"), "{text}");
    h.resize(120, 40).await.unwrap();
    let seen = ops.lock().unwrap().clone();
    assert!(
        seen.iter().any(|op| matches!(
            op,
            ControlOp::WindowSize {
                cols: 120,
                rows: 40
            }
        )),
        "{seen:?}"
    );
    let err = h.send_break(42).await.unwrap_err();
    assert!(err.to_string().contains("42"), "{err}");

    // Notices reach the reader: the break record, then the note.
    h.note("checked").await.unwrap();
    let mut notices: Vec<String> = Vec::new();
    while !notices
        .iter()
        .any(|n| n.starts_with("note written (record "))
    {
        match tokio::time::timeout(LONG, h.read()).await.unwrap() {
            Output::Notice(n) => notices.push(n),
            Output::Closed(why) => panic!("closed: {why}"),
            _ => {}
        }
    }
    assert!(notices.iter().any(|n| n.contains("break 1")), "{notices:?}");
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("note written (record ")),
        "{notices:?}"
    );

    h.close().await.unwrap();
    // Reads now say closed, again and again; writes fail naming the device.
    for _ in 0..2 {
        loop {
            match tokio::time::timeout(LONG, h.read()).await.unwrap() {
                Output::Closed(_) => break,
                _ => continue,
            }
        }
    }
    let err = h.write(b"x").await.unwrap_err();
    assert!(matches!(err, Error::ConsoleGone { .. }), "{err:?}");
    assert!(err.to_string().contains("sw1"), "{err}");
    // The handle owned the console: the link is dropped.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LONG, device.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "link still open");
}

#[tokio::test]
async fn expect_fails_when_the_console_stops() {
    let (conn, _peers, _) = connector(false);
    let console = Console::spawn(ConsoleConfig::new("gone1"), conn, None);
    let session = console
        .attach("alice", Mode::Attach, Some(0))
        .await
        .unwrap();
    let h = ConsoleHandle::new(Box::new(LocalAttachment::new(session)));
    console.shutdown().await;
    let err = h
        .expect(&[ExpectPattern::literal("never").unwrap()], LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ConsoleGone { ref device } if device == "gone1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn spies_cannot_type_and_a_dead_link_is_reported() {
    let (conn, _peers, _) = connector(false);
    let h = open_local(
        "ro1",
        conn,
        LocalOptions::default().user("carol").mode(Mode::Spy),
    )
    .await
    .unwrap();
    assert_eq!(h.info().role, "spy");
    let err = h.write(b"ls\r").await.unwrap_err();
    assert!(err.to_string().contains("spy"), "{err}");
    h.close().await.unwrap();

    let (conn, _peers, _) = connector(true);
    let err = open_local("dead1", conn, LocalOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ConsoleDown { ref device, .. } if device == "dead1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("refused by the test"), "{err}");
}

#[tokio::test]
async fn a_log_dir_records_every_byte_with_its_user() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, mut peers, _) = connector(false);
    let h = open_local(
        "logged1",
        conn,
        LocalOptions::default().user("dave").log_dir(dir.path()),
    )
    .await
    .unwrap();
    let mut device = peers.recv().await.unwrap();
    h.send_line("uptime").await.unwrap();
    read_some(&mut device, b"uptime\r").await;
    device.write_all(b"up 3 days\r\n").await.unwrap();
    h.expect(&[ExpectPattern::literal("3 days").unwrap()], LONG)
        .await
        .unwrap();
    h.close().await.unwrap();
    let read = || -> Vec<crate::log::Record> {
        crate::log::read(dir.path(), &crate::log::ReadOptions::default())
            .unwrap()
            .collect::<Result<_>>()
            .unwrap()
    };
    let records = read();
    // Closed means final: nothing is written after `close()` returns.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read().len(), records.len(), "records written after close()");
    assert!(
        records
            .iter()
            .any(|r| r.kind == RecordKind::Input && r.user == "dave" && r.bytes == b"uptime\r"),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.kind == RecordKind::Output && r.bytes.starts_with(b"up 3 days"))
    );
}

#[test]
fn os_user_is_never_empty() {
    assert!(!os_user().is_empty());
}
