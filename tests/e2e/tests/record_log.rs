//! Everything typed on a console lands in its record log attributed to the user who typed it,
//! output with timestamps, and the log verifies.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Login, WAIT, World, ensure, has_rfc3339_timestamp, run_test};

/// Poll `mo log show NAME ARGS` until its output contains every needle; returns the output.
fn wait_log_show(
    w: &World,
    name: &str,
    args: &[&str],
    needles: &[&str],
) -> mo_testsupport::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut all = vec!["log", "show", name];
        all.extend_from_slice(args);
        let out = w.mo_ok(&all, None)?;
        if needles.iter().all(|n| out.stdout.contains(n)) {
            return Ok(out.stdout);
        }
        if Instant::now() >= deadline {
            return Err(mo_testsupport::Error::Check(format!(
                "`mo log show {name} {}` never showed all of {needles:?}; last output:\n{}",
                args.join(" "),
                out.combined()
            )));
        }
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn input_is_attributed_and_output_timestamped() {
    run_test("record-log", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        w.start_daemon(&[])?;

        let a = w.terminal("alice", &alice, Login::Attach("ex1"), &[])?;
        a.wait_for("attached read-write", WAIT)?;
        a.send_line("alpha-from-alice")?;
        a.wait_for("got: alpha-from-alice", WAIT)?;

        let b = w.terminal("bob", &bob, Login::Attach("ex1"), &[])?;
        b.wait_for("spying", WAIT)?;
        b.send_keys(&["C-e", "c", "f"])?;
        a.wait_for("bob forced write access", WAIT)?;
        b.send_line("bravo-from-bob")?;
        b.wait_for("got: bravo-from-bob", WAIT)?;

        let text = wait_log_show(
            w,
            "ex1",
            &[],
            &[
                "got: alpha-from-alice",
                "got: bravo-from-bob",
                "<alice>",
                "<bob>",
            ],
        )?;
        let lines: Vec<&str> = text.lines().collect();
        let typed_by = |user: &str, what: &str| {
            lines
                .iter()
                .any(|l| l.contains(&format!("<{user}>")) && l.contains(what))
        };
        ensure!(
            typed_by("alice", "alpha-from-alice"),
            "no input line `<alice> alpha-from-alice` in the log:\n{text}"
        );
        ensure!(
            typed_by("bob", "bravo-from-bob"),
            "no input line `<bob> bravo-from-bob` in the log:\n{text}"
        );
        ensure!(
            !typed_by("bob", "alpha-from-alice") && !typed_by("alice", "bravo-from-bob"),
            "input attributed to the wrong user:\n{text}"
        );
        for needle in ["got: alpha-from-alice", "got: bravo-from-bob", "<alice>"] {
            let line = lines
                .iter()
                .find(|l| l.contains(needle))
                .copied()
                .unwrap_or_default();
            ensure!(
                has_rfc3339_timestamp(line),
                "log line for {needle:?} has no RFC 3339 timestamp: {line:?}"
            );
        }
        // The sharing changes are in the log too.
        ensure!(
            text.contains("bob forced write access"),
            "the force notice is missing from the log:\n{text}"
        );

        // Time ranges: nothing before 2000, nothing after 2099.
        for range in [
            ["--until", "2000-01-01T00:00:00Z"],
            ["--since", "2099-01-01T00:00:00Z"],
        ] {
            let mut args = vec!["log", "show", "ex1"];
            args.extend_from_slice(&range);
            let out = w.mo_ok(&args, None)?;
            ensure!(
                !out.stdout.contains("alpha-from-alice"),
                "`mo log show ex1 {}` should be empty of today's records:\n{}",
                range.join(" "),
                out.stdout
            );
        }

        let verify = w.mo(&["log", "verify", "ex1"], None)?;
        ensure!(
            verify.success(),
            "`mo log verify ex1` failed:\n{}",
            verify.combined()
        );
        Ok(())
    });
}

#[test]
fn log_verify_fails_for_an_unknown_device() {
    run_test("record-log-unknown", |w| {
        w.add_echo_device("ex1", &[])?;
        let out = w.mo(&["log", "verify", "no-such-device"], None)?;
        ensure!(
            !out.success() && !out.stderr.trim().is_empty(),
            "`mo log verify no-such-device` should fail with a message:\n{}",
            out.combined()
        );
        Ok(())
    });
}
