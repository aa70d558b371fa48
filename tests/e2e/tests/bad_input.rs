//! Bad input gets clear errors and breaks nothing: wrong passwords, unknown devices, bad URLs,
//! malformed escape sequences.

use mo_testsupport::{Login, WAIT, ensure, run_test};

#[test]
fn wrong_password_is_rejected() {
    run_test("bad-password", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_user("alice", "right-pw")?;
        w.start_daemon(&[])?;

        let wrong = w.client("alice", "wrong-pw")?;
        let out = wrong.run(Login::Shell, &["list"], None)?;
        ensure!(
            !out.success()
                && out.stderr.contains("Permission denied")
                && !out.stdout.contains("ex1"),
            "a wrong password must be rejected:\n{}",
            out.combined()
        );
        let nobody = w.client("mallory", "right-pw")?;
        let out = nobody.run(Login::Shell, &["list"], None)?;
        ensure!(
            !out.success() && out.stderr.contains("Permission denied"),
            "an unknown user must be rejected:\n{}",
            out.combined()
        );
        let right = w.client("alice", "right-pw")?;
        let out = right.run(Login::Shell, &["list"], None)?.ok()?;
        ensure!(
            out.stdout.contains("ex1"),
            "the right password must work:\n{}",
            out.combined()
        );
        Ok(())
    });
}

#[test]
fn unknown_device_gives_a_one_line_error() {
    run_test("unknown-device", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        let expected = "unknown device `nosuch`";

        // One command, and a direct attach by login name.
        for (how, login, remote) in [
            (
                "ssh alice@ console nosuch",
                Login::Shell,
                &["console", "nosuch"][..],
            ),
            ("ssh alice:nosuch@", Login::Attach("nosuch"), &[][..]),
        ] {
            let out = alice.run(login, remote, None)?;
            let text = out.combined();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            ensure!(
                !out.success() && lines.len() == 1 && lines[0].contains(expected),
                "`{how}` should fail with the one line {expected:?}, got ({}):\n{text}",
                out.status
            );
        }

        // In the command shell the error is reported and the shell goes on.
        let a = w.terminal("alice", &alice, Login::Shell, &[])?;
        a.wait_for("mo>", WAIT)?;
        a.send_line("console nosuch")?;
        a.wait_for(expected, WAIT)?;
        a.send_line("list")?;
        a.wait_after(expected, &["ex1"], WAIT)?;
        ensure!(
            !a.is_dead()?,
            "the shell ended after an unknown device:\n{}",
            a.capture()?
        );
        Ok(())
    });
}

#[test]
fn bad_urls_are_refused_with_a_reason() {
    run_test("bad-url", |w| {
        w.add_echo_device("ex1", &[])?;
        for (name, url, why) in [
            ("bad1", "bogus://x", "bogus"),
            ("bad2", "not a url", "not a url"),
            ("bad3", "serial:///dev/ttyS0?bad=9600", "bad"),
            ("bad4", "exec://", "exec"),
        ] {
            let out = w.mo(&["device", "add", name, url], None)?;
            ensure!(
                !out.success() && out.stderr.contains(why),
                "`mo device add {name} {url:?}` should fail mentioning {why:?}:\n{}",
                out.combined()
            );
        }
        let list = w.mo_ok(&["device", "list"], None)?;
        ensure!(
            list.stdout.contains("ex1") && !list.stdout.lines().any(|l| l.starts_with("bad")),
            "only the good device may be listed:\n{}",
            list.stdout
        );
        Ok(())
    });
}

#[test]
fn malformed_escape_is_reported_and_the_session_goes_on() {
    run_test("bad-escape", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        let a = w.terminal("alice", &alice, Login::Attach("ex1"), &[])?;
        a.wait_for("console ready", WAIT)?;

        a.send_keys(&["C-e", "c", "z"])?;
        a.wait_for("unknown escape command", WAIT)?;
        a.send_keys(&["C-e", "c", "l", "x"])?;
        a.wait_for("unknown break sequence", WAIT)?;
        a.send_line("still-alive")?;
        a.wait_for("got: still-alive", WAIT)?;
        // A Ctrl-E not followed by `c` is no escape: both keys reach the console (which echoes ^Ex).
        a.send_keys(&["C-e", "x"])?;
        a.send_line("after-ctrl-e")?;
        a.wait_for("^Exafter-ctrl-e", WAIT)?;
        ensure!(!a.is_dead()?, "the session ended:\n{}", a.capture()?);
        Ok(())
    });
}
