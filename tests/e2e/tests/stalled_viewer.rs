//! A viewer that stops reading does not slow another viewer or the log: an `ssh -T` spy whose
//! stdout the test never reads, and a raw TCP client of a per-console listen port
//! (docs/listen-ports.md) that never reads.

use std::io::Write;
use std::time::{Duration, Instant};

use mo_testsupport::{
    Collector, Login, Peer, Result, WAIT, World, ensure, free_port, run_test, utc_now_rfc3339,
    wait_until,
};

/// Lines the device prints in one flood: ~60 bytes each, ~18 MB — more than the stalled client's
/// pipe, SSH window and loopback socket buffers hold.
const FLOOD_LINES: u32 = 300_000;

/// Write `text` to the stdin of `live` (an ssh client).
fn send(live: &mut Peer, text: &str) -> Result<()> {
    let stdin = live
        .stdin()
        .ok_or_else(|| mo_testsupport::Error::Check("alice's ssh has no stdin".into()))?;
    stdin
        .write_all(text.as_bytes())
        .and_then(|()| stdin.flush())
        .map_err(|e| mo_testsupport::Error::io("write to alice's ssh", e))
}

/// Alice (`live`, attached to `ex1`, her output in `seen`) floods the console while a viewer
/// reads nothing: she gets to the end, her keystrokes still round-trip promptly, and the record
/// log has the whole flood and what came after.
fn flood_keeps_up(w: &World, live: &mut Peer, seen: &Collector) -> Result<()> {
    send(live, "ping-0\n")?;
    seen.wait_for("alice's session", "got: ping-0", WAIT)?;

    // Flood: alice must get to the end although the stalled viewer reads nothing.
    let started = Instant::now();
    send(live, &format!("flood {FLOOD_LINES}\n"))?;
    seen.wait_for("alice's session", "flood done", Duration::from_secs(150))?;
    let flood_time = started.elapsed();

    // Afterwards alice's keystrokes still round-trip promptly.
    let since = utc_now_rfc3339()?;
    let at = seen.len();
    let t0 = Instant::now();
    send(live, "ping-1\n")?;
    seen.wait_for_from("alice's session", at, "got: ping-1", WAIT)?;
    let rtt = t0.elapsed();
    ensure!(
        rtt < Duration::from_secs(3),
        "alice's round trip after the flood took {rtt:?} (flood itself took {flood_time:?})"
    );
    // The log kept up as well: the flood's end and the ping are in it.
    let deadline = Instant::now() + WAIT;
    loop {
        let out = w.mo_ok(&["log", "show", "ex1", "--since", &since], None)?;
        if out.stdout.contains("got: ping-1") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "`mo log show ex1 --since {since}` lacks `got: ping-1`:\n{}",
            out.stdout
                .chars()
                .rev()
                .take(3000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let tail = w.mo_ok(
        &["log", "show", "ex1", "--since", "10m", "--kind", "output"],
        None,
    )?;
    ensure!(
        tail.stdout.contains(&format!("padding-{FLOOD_LINES}"))
            && tail.stdout.contains("flood done"),
        "the log lacks the end of the flood ({} bytes shown)",
        tail.stdout.len()
    );
    // Every line, not only the last.
    let logged = tail.stdout.matches("flood-line-").count();
    ensure!(
        logged == FLOOD_LINES as usize,
        "the log has {logged} of the {FLOOD_LINES} flood lines"
    );
    Ok(())
}

/// The stalled viewer reads again (`seen`, named `who`): what alice types now reaches it, and it
/// did not get the whole flood (it was not buffered for it without bound).
fn caught_up(live: &mut Peer, seen: &Collector, who: &str) -> Result<()> {
    send(live, "ping-2\n")?;
    seen.wait_for(who, "got: ping-2", WAIT)?;
    let lines = seen.text().matches("flood-line-").count();
    ensure!(
        lines < FLOOD_LINES as usize,
        "{who} got all {lines} flood lines although it read nothing during the flood"
    );
    Ok(())
}

#[test]
fn stalled_spy_does_not_slow_others() {
    run_test("stalled-viewer", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let carol = w.add_user("carol", "carol-pw")?;
        w.start_daemon(&[])?;
        let ssh_log = w.dir().join("ssh-clients.log");

        // carol spies and never reads: her stdout pipe stays full.
        let mut stalled = carol.spawn(Login::Spy("ex1"), &[], &ssh_log)?;

        // alice attaches through plain pipes and reads everything.
        let mut live = alice.spawn(Login::Attach("ex1"), &[], &ssh_log)?;
        let seen = Collector::start(live.take_stdout());
        seen.wait_for("alice's session", "attached read-write", WAIT)?;
        flood_keeps_up(w, &mut live, &seen)?;

        // carol starts reading again: she is told what she missed and is resynced — the flood
        // was not buffered for her without bound.
        let carol_seen = Collector::start(stalled.take_stdout());
        carol_seen.wait_for("carol's session", "missed", WAIT)?;
        caught_up(&mut live, &carol_seen, "carol's session")
    });
}

#[test]
fn stalled_tcp_viewer_on_a_listen_port_does_not_slow_others() {
    run_test("stalled-tcp-viewer", |w| {
        let port = free_port()?;
        w.add_echo_device("ex1", &["--listen", &format!("127.0.0.1:{port}/raw,spy")])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        w.daemon()?
            .wait_log(&format!("listening on 127.0.0.1:{port}/"), WAIT)?;
        let ssh_log = w.dir().join("ssh-clients.log");

        // alice attaches through plain pipes and reads everything.
        let mut live = alice.spawn(Login::Attach("ex1"), &[], &ssh_log)?;
        let seen = Collector::start(live.take_stdout());
        seen.wait_for("alice's session", "attached read-write", WAIT)?;

        // A raw TCP client of the console's port that never reads; it is a viewer once its
        // connection shows in `who` (the daemon names it tcp:ADDR:PORT).
        let stalled = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| mo_testsupport::Error::io(format!("connect 127.0.0.1:{port}"), e))?;
        let mine = stalled
            .local_addr()
            .map_err(|e| mo_testsupport::Error::io("local address", e))?;
        wait_until("the TCP viewer in `who`", WAIT, || {
            let out = alice.run(Login::Shell, &["who", "ex1"], None)?;
            Ok(if out.combined().contains(&format!("tcp:{mine}")) {
                Ok(())
            } else {
                Err(out.combined())
            })
        })?;

        flood_keeps_up(w, &mut live, &seen)?;

        // The stalled client reads again: it gets what comes now, not the whole flood buffered
        // for it without bound.
        let reader = Collector::start(Some(stalled));
        caught_up(&mut live, &reader, "the TCP viewer")
    });
}
