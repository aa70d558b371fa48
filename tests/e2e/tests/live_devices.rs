//! Devices added while `mod` runs become reachable without a restart; a removed one disappears
//! from `list` without disturbing a session on another console.

use std::thread;
use std::time::Duration;

use mo_testsupport::{Login, WAIT, ensure, run_test};

#[test]
fn devices_come_and_go_while_the_daemon_runs() {
    run_test("live-devices", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        w.start_daemon(&[])?;
        let daemon_pid = w.daemon()?.pid();

        let a = w.terminal("alice", &alice, Login::Attach("ex1"), &[])?;
        a.wait_for("console ready", WAIT)?;
        a.send_line("first")?;
        a.wait_for("got: first", WAIT)?;

        // Add ex2 with the CLI: it shows up in `list` and can be attached.
        w.add_echo_device("ex2", &[])?;
        w.wait_listed(&bob, "ex2", true, WAIT)?;
        let b = w.terminal("bob", &bob, Login::Attach("ex2"), &[])?;
        b.wait_for("console ready", WAIT)?;
        b.send_line("on-ex2")?;
        b.wait_for("got: on-ex2", WAIT)?;
        b.send_keys(&["C-e", "c", "."])?;
        b.wait_dead(WAIT)?;

        // Remove ex2: it leaves `list`; alice's session on ex1 carries on undisturbed.
        w.mo_ok(&["device", "rm", "ex2"], None)?;
        w.wait_listed(&bob, "ex2", false, WAIT)?;
        let out = bob.run(Login::Attach("ex2"), &[], None)?;
        ensure!(
            !out.success() && out.combined().contains("unknown device `ex2`"),
            "attaching the removed ex2 should fail as unknown:\n{}",
            out.combined()
        );
        thread::sleep(Duration::from_millis(500));
        a.send_line("second")?;
        let text = a.wait_for("got: second", WAIT)?;
        ensure!(
            !text.contains("link down") && text.matches("console ready").count() == 1,
            "alice's console ex1 was disturbed by adding/removing ex2:\n{text}"
        );
        ensure!(
            w.daemon()?.is_running() && w.daemon()?.pid() == daemon_pid,
            "the daemon restarted or died"
        );
        Ok(())
    });
}
