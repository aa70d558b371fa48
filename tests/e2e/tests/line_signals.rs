//! Line signals from the SSH door (issue 23 item 6): `Ctrl-E c D` / `Ctrl-E c R` then `1`, `0` or
//! `t` raise, drop or toggle DTR and RTS of an RFC 2217 console. The peer is pyserial 3.5's RFC 2217
//! server on a `loop://` port (the peers venv), whose loop wires DTR to DSR and RTS to CTS, so what
//! the viewer sets comes back as the modem state mo announces (`DSR down (was up)`). Setting a line
//! needs the policy action `break` and the write lock, and is recorded with the user's name.

use mo_testsupport::{Login, PyserialRfc2217, WAIT, ensure, run_test, wait_log_count};

#[test]
fn dtr_and_rts_escapes_reach_the_rfc2217_port() {
    run_test("line-signals", |w| {
        let server = PyserialRfc2217::start(w.dir())?;
        let port = server.port;
        w.add_device("lab", &format!("rfc2217://127.0.0.1:{port}"), &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let otto = w.add_user_with_role("otto", "otto-pw", Some(("viewer", "all")))?;
        w.start_daemon(&[])?;
        // The first modem report after connecting: pyserial opens loop:// with DTR and RTS up.
        wait_log_count(w, "lab", "modem: DCD up, DSR up, CTS up", 1)?;

        let a = w.terminal("alice", &alice, Login::Attach("lab"), &[])?;
        a.wait_for("attached read-write", WAIT)?;
        // The help lists the new keys.
        a.send_keys(&["C-e", "c", "?"])?;
        a.wait_for("DTR on, off, toggle", WAIT)?;

        // DTR dropped through the escape: the loop's DSR follows, mo announces it.
        a.send_keys(&["C-e", "c", "D", "0"])?;
        a.wait_for("DTR dropped by alice", WAIT)?;
        a.wait_for("DSR down (was up)", WAIT)?;
        // Toggle raises it again.
        a.send_keys(&["C-e", "c", "D", "t"])?;
        a.wait_for("DTR raised by alice", WAIT)?;
        a.wait_for("DSR up (was down)", WAIT)?;
        // RTS drives CTS the same way.
        a.send_keys(&["C-e", "c", "R", "0"])?;
        a.wait_for("RTS dropped by alice", WAIT)?;
        a.wait_for("CTS down (was up)", WAIT)?;
        a.send_keys(&["C-e", "c", "R", "1"])?;
        a.wait_for("CTS up (was down)", WAIT)?;
        // An unknown key after D is refused, and the console still works.
        a.send_keys(&["C-e", "c", "D", "x"])?;
        a.wait_for("unknown DTR key 'x'", WAIT)?;

        // Who did what is in the record log.
        let log = wait_log_count(w, "lab", "CTS up (was down)", 1)?;
        for needle in [
            "DTR dropped by alice",
            "DTR raised by alice",
            "RTS raised by alice",
        ] {
            ensure!(
                log.contains(needle),
                "`{needle}` missing from the log:\n{log}"
            );
        }

        // A viewer without the `break` action may not set lines.
        let o = w.terminal("otto", &otto, Login::Attach("lab"), &[])?;
        o.wait_for("lab", WAIT)?;
        o.send_keys(&["C-e", "c", "D", "0"])?;
        o.wait_for("denied", WAIT)?;
        let log = w.mo(&["log", "show", "lab"], None)?.stdout;
        ensure!(
            !log.contains("DTR dropped by otto") && log.matches("DSR down (was up)").count() == 1,
            "otto changed DTR:\n{log}"
        );
        Ok(())
    });
}

#[test]
fn dtr_and_rts_shell_commands_reach_the_rfc2217_port() {
    run_test("line-signals-shell", |w| {
        let server = PyserialRfc2217::start(w.dir())?;
        let port = server.port;
        w.add_device("lab", &format!("rfc2217://127.0.0.1:{port}"), &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let otto = w.add_user_with_role("otto", "otto-pw", Some(("viewer", "all")))?;
        w.start_daemon(&[])?;
        wait_log_count(w, "lab", "modem: DCD up, DSR up, CTS up", 1)?;

        let off = alice.run(Login::Shell, &["dtr", "lab", "off"], None)?;
        ensure!(
            off.status.success() && off.stdout.contains("lab: DTR dropped by alice"),
            "dtr lab off:\n{}",
            off.combined()
        );
        wait_log_count(w, "lab", "DSR down (was up)", 1)?;
        let toggle = alice.run(Login::Shell, &["rts", "lab", "toggle"], None)?;
        ensure!(
            toggle.status.success() && toggle.stdout.contains("lab: RTS dropped by alice"),
            "rts lab toggle:\n{}",
            toggle.combined()
        );
        wait_log_count(w, "lab", "CTS down (was up)", 1)?;
        let on = alice.run(Login::Shell, &["dtr", "lab", "on"], None)?;
        ensure!(on.status.success(), "dtr lab on:\n{}", on.combined());
        wait_log_count(w, "lab", "DSR up (was down)", 1)?;

        // Wrong words: the usage, exit status 2; an unknown device: exit 1.
        let bad = alice.run(Login::Shell, &["dtr", "lab", "maybe"], None)?;
        ensure!(
            bad.status.code() == Some(2) && bad.stdout.contains("usage: dtr NAME on|off|toggle"),
            "{}",
            bad.combined()
        );
        let ghost = alice.run(Login::Shell, &["rts", "ghost", "on"], None)?;
        ensure!(
            ghost.status.code() == Some(1) && ghost.stdout.contains("unknown device `ghost`"),
            "{}",
            ghost.combined()
        );
        // Without the `break` action: denied, nothing set.
        let denied = otto.run(Login::Shell, &["dtr", "lab", "off"], None)?;
        ensure!(
            denied.status.code() == Some(1) && denied.stdout.contains("denied"),
            "{}",
            denied.combined()
        );
        let log = w.mo(&["log", "show", "lab"], None)?.stdout;
        ensure!(
            log.matches("DTR dropped by").count() == 1,
            "otto changed DTR:\n{log}"
        );
        Ok(())
    });
}
