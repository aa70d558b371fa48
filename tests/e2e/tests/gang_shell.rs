//! Gang input from the SSH shell (issue 8 item 5): `gang NAME… -- COMMAND` sends one line to
//! several consoles, shows each device's answer tagged with its name, flags the device that
//! answered unlike the majority, refuses a console whose write lock someone else holds, and each
//! device's record log holds only its own output. Without `-- COMMAND`, an interactive gang
//! session sends each typed line, pauses and resumes devices, and pauses divergent ones.

use mo_testsupport::{Login, WAIT, ensure, run_test};

const ODD_CONSOLE: &str =
    "#!/bin/sh\necho ready\nwhile IFS= read -r line; do echo \"odd: $line\"; done\n";

#[test]
fn gang_sends_to_many_and_flags_the_divergent_one() {
    run_test("gang-shell", |w| {
        for name in ["g1", "g2", "g3"] {
            w.add_echo_device(name, &[])?;
        }
        let odd = w.write_script("odd.sh", ODD_CONSOLE)?;
        w.add_device("g4", &format!("exec://{}", odd.display()), &[])?;
        w.add_echo_device("held", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        w.start_daemon(&[])?;
        // Wait until every console is up.
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let list = alice.run(Login::Shell, &["list"], None)?.ok()?;
            if list.stdout.lines().filter(|l| l.contains(" up ")).count() == 5 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "not all up:\n{}",
                list.stdout
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }

        let out = alice.run(Login::Shell, &["gang", "g*", "--", "hello-gang"], None)?;
        for device in ["g1", "g2", "g3"] {
            ensure!(
                out.stdout.contains(&format!("{device}: got: hello-gang")),
                "{device} answer missing:\n{}",
                out.combined()
            );
        }
        ensure!(
            out.stdout.contains("g4: odd: hello-gang")
                && out.stdout.contains("divergent: g4 (majority: 3 devices)"),
            "g4 not flagged:\n{}",
            out.combined()
        );
        let log = w.mo_ok(&["log", "show", "g2", "--kind", "output"], None)?;
        ensure!(
            log.stdout.contains("got: hello-gang") && !log.stdout.contains("odd:"),
            "g2's log:\n{}",
            log.stdout
        );

        // bob holds `held`: alice's gang is told who holds it.
        let b = w.terminal("bob", &bob, Login::Shell, &["console", "held"])?;
        b.wait_for("attached read-write", WAIT)?;
        let out = alice.run(Login::Shell, &["gang", "held", "--", "x"], None)?;
        ensure!(
            out.stdout.contains("busy") && out.stdout.contains("bob"),
            "busy console not reported:\n{}",
            out.combined()
        );
        let usage = alice.run(Login::Shell, &["gang"], None)?;
        ensure!(usage.stdout.contains("usage: gang"), "{}", usage.combined());

        // An interactive gang session: each line goes to every active device; a paused device
        // gets nothing; divergent devices can be paused automatically.
        let a = w.terminal("alice", &alice, Login::Shell, &["gang", "g1", "g2", "g4"])?;
        a.wait_for("gang(3)>", WAIT)?;
        a.send_line("first-line")?;
        a.wait_for("divergent: g4 (majority: 2 devices)", WAIT)?;
        let screen = a.capture()?;
        ensure!(
            screen.contains("g1: got: first-line") && screen.contains("g4: odd: first-line"),
            "tagged answers missing:\n{screen}"
        );
        a.send_line(":pause-divergent on")?;
        a.send_line("second-line")?;
        a.wait_for("paused: g4", WAIT)?;
        a.wait_for("gang(2)>", WAIT)?;
        a.send_line("third-line")?;
        a.wait_for("all 2 devices answered alike", WAIT)?;
        a.send_line(":resume g4")?;
        a.send_line(":quit")?;
        a.wait_for("gang closed", WAIT)?;
        // A barrier: a line sent to g4 after the session is answered and logged; third-line,
        // sent while g4 was paused, is nowhere before it (neither as input nor as an answer).
        let after = alice.run(Login::Shell, &["gang", "g4", "--", "after-pause"], None)?;
        ensure!(
            after.stdout.contains("g4: odd: after-pause"),
            "{}",
            after.combined()
        );
        let g4 = w.mo_ok(&["log", "show", "g4"], None)?;
        ensure!(
            g4.stdout.contains("odd: second-line")
                && g4.stdout.contains("odd: after-pause")
                && !g4.stdout.contains("third-line"),
            "g4 was paused for third-line:\n{}",
            g4.stdout
        );
        Ok(())
    });
}
