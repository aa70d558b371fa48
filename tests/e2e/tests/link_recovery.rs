//! The device program dies (it exits, or it is killed): viewers are told the link is down, and the
//! console comes back by itself.

use std::time::Duration;

use mo_testsupport::{Login, WAIT, cmdline, descendant_pids, ensure, kill_exact, run_test};

/// Reconnect backoff plus a debug-build start: generous.
const RECOVER: Duration = Duration::from_secs(40);

#[test]
fn device_program_that_exits_is_restarted() {
    run_test("link-exit", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        w.start_daemon(&[])?;

        let a = w.terminal("alice", &alice, Login::Attach("ex1"), &[])?;
        a.wait_for("attached read-write", WAIT)?;
        let b = w.terminal("bob", &bob, Login::Spy("ex1"), &[])?;
        b.wait_for("spying", WAIT)?;
        a.send_line("before-death")?;
        b.wait_for("got: before-death", WAIT)?;

        a.send_line("die")?;
        for pane in [&a, &b] {
            pane.wait_for("dying now", WAIT)?;
            pane.wait_for("[mo: link down", WAIT)?;
            pane.wait_for("[mo: link up", RECOVER)?;
        }
        // The program was started again, and alice still holds the console.
        let text = a.wait_until("a second `console ready`", WAIT, |t| {
            t.matches("console ready").count() >= 2
        })?;
        ensure!(
            !a.is_dead()?,
            "alice's ssh session ended with the link:\n{text}"
        );
        a.send_line("after-restart")?;
        a.wait_for("got: after-restart", WAIT)?;
        b.wait_for("got: after-restart", WAIT)?;
        Ok(())
    });
}

#[test]
fn device_program_killed_by_signal_is_restarted() {
    run_test("link-kill", |w| {
        let script = w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        let a = w.terminal("alice", &alice, Login::Attach("ex1"), &[])?;
        a.wait_for("console ready", WAIT)?;

        // Find the device program among the daemon's descendants, by its script path.
        let script = script.display().to_string();
        let daemon_pid = w.daemon()?.pid();
        let victims: Vec<u32> = descendant_pids(daemon_pid)
            .into_iter()
            .filter(|&p| cmdline(p).contains(&script))
            .collect();
        ensure!(
            victims.len() == 1,
            "expected one process running {script} under mod (pid {daemon_pid}), found {victims:?}"
        );
        kill_exact(victims[0], &script)?;

        a.wait_for("[mo: link down", WAIT)?;
        a.wait_for("[mo: link up", RECOVER)?;
        a.wait_for_count("console ready", 2, WAIT)?;
        a.send_line("after-kill")?;
        a.wait_for("got: after-kill", WAIT)?;

        // A fresh program (new PID) runs now.
        let now: Vec<u32> = descendant_pids(daemon_pid)
            .into_iter()
            .filter(|&p| cmdline(p).contains(&script))
            .collect();
        ensure!(
            now.len() == 1 && now[0] != victims[0],
            "expected one new device process, found {now:?} (killed {})",
            victims[0]
        );
        Ok(())
    });
}
