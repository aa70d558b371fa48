//! A viewer that stops reading (an `ssh -T` spy whose stdout the test never reads) does not slow
//! another viewer or the log.

use std::io::Write;
use std::time::{Duration, Instant};

use mo_testsupport::{Collector, Login, WAIT, ensure, run_test, utc_now_rfc3339};

/// Lines the device prints in one flood: ~60 bytes each, ~18 MB — more than the stalled client's
/// pipe, SSH window and loopback socket buffers hold.
const FLOOD_LINES: u32 = 300_000;

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
        let mut send = |text: &str| -> mo_testsupport::Result<()> {
            let stdin = live
                .stdin()
                .ok_or_else(|| mo_testsupport::Error::Check("alice's ssh has no stdin".into()))?;
            stdin
                .write_all(text.as_bytes())
                .and_then(|()| stdin.flush())
                .map_err(|e| mo_testsupport::Error::io("write to alice's ssh", e))
        };

        send("ping-0\n")?;
        seen.wait_for("alice's session", "got: ping-0", WAIT)?;

        // Flood: alice must get to the end although carol reads nothing.
        let started = Instant::now();
        send(&format!("flood {FLOOD_LINES}\n"))?;
        seen.wait_for("alice's session", "flood done", Duration::from_secs(150))?;
        let flood_time = started.elapsed();

        // Afterwards alice's keystrokes still round-trip promptly.
        let since = utc_now_rfc3339()?;
        let at = seen.len();
        let t0 = Instant::now();
        send("ping-1\n")?;
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

        // carol starts reading again: she is told what she missed and is resynced — the flood
        // was not buffered for her without bound.
        let carol_seen = Collector::start(stalled.take_stdout());
        carol_seen.wait_for("carol's session", "missed", WAIT)?;
        send("ping-2\n")?;
        carol_seen.wait_for("carol's session", "got: ping-2", WAIT)?;
        let lines = carol_seen.text().matches("flood-line-").count();
        ensure!(
            lines < FLOOD_LINES as usize,
            "carol got all {lines} flood lines although she read nothing during the flood"
        );
        Ok(())
    });
}
