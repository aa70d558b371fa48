//! `listen` in the SSH shell (issue 8 items 2 and 5): the live output of many consoles merged
//! read-only, each line tagged with its device; a device the user may see but not spy on is
//! named once and left out; Ctrl-E c . and Ctrl-C both leave.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mo_testsupport::{Login, WAIT, ensure, run_test};

#[test]
fn listen_merges_many_consoles_read_only() {
    run_test("listen-shell", |w| {
        for name in ["l1", "l2", "l3"] {
            w.add_echo_device(name, &[])?;
        }
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user_with_role("bob", "bob-pw", None)?;
        w.mo_ok(&["role", "add", "lister", "--allow", "list"], None)?;
        w.mo_ok(
            &["group", "add", "open", "--member", "l1", "--member", "l2"],
            None,
        )?;
        w.mo_ok(&["group", "add", "hidden", "--member", "l3"], None)?;
        w.mo_ok(&["grant", "add", "bob", "viewer", "open"], None)?;
        w.mo_ok(&["grant", "add", "bob", "lister", "hidden"], None)?;
        w.start_daemon(&[])?;
        w.wait_listed(&alice, "l3", true, WAIT)?;
        for name in ["l1", "l2", "l3"] {
            w.wait_listed(&bob, name, true, WAIT)?;
        }

        let pane = w.terminal("bob-listen", &bob, Login::Shell, &["listen", "l*"])?;
        pane.wait_for("not listening to 1 (no spy permission): l3", WAIT)?;
        pane.wait_for("listening to 2 console(s): l1, l2", WAIT)?;
        alice
            .run(
                Login::Shell,
                &["gang", "l1", "l2", "--", "ping-listen"],
                None,
            )?
            .ok()?;
        pane.wait_for("l1: got: ping-listen", WAIT)?;
        pane.wait_for("l2: got: ping-listen", WAIT)?;
        // l3's output is not shown; a later line on l1 proves the stream went on meanwhile.
        alice
            .run(Login::Shell, &["gang", "l3", "--", "secret-stuff"], None)?
            .ok()?;
        alice
            .run(Login::Shell, &["gang", "l1", "--", "after-secret"], None)?
            .ok()?;
        let screen = pane.wait_for("l1: got: after-secret", WAIT)?;
        ensure!(!screen.contains("secret-stuff"), "l3 leaked:\n{screen}");
        // Typing is refused, not sent: after the refusal, a line typed into l1 and l2 through
        // gang comes back in listen (the barrier), and nothing typed into listen came before it,
        // on the screen or in either log.
        pane.send_line("typed-into-listen")?;
        pane.wait_for("listen is read-only", WAIT)?;
        alice
            .run(
                Login::Shell,
                &["gang", "l1", "l2", "--", "after-listen-typing"],
                None,
            )?
            .ok()?;
        pane.wait_for("l1: got: after-listen-typing", WAIT)?;
        let screen = pane.wait_for("l2: got: after-listen-typing", WAIT)?;
        ensure!(
            !screen.contains("got: typed-into-listen"),
            "typing into listen reached a console:\n{screen}"
        );
        pane.send_keys(&["C-e", "c", "."])?;
        pane.wait_for("stopped listening", WAIT)?;
        for name in ["l1", "l2"] {
            let log = w.mo_ok(&["log", "show", name], None)?;
            ensure!(
                log.stdout.contains("got: after-listen-typing")
                    && !log.stdout.contains("typed-into-listen"),
                "{name}'s log:\n{}",
                log.stdout
            );
        }

        // Ctrl-C leaves too; a denied spy is in l3's log.
        let pane = w.terminal("bob-listen-2", &bob, Login::Shell, &["listen", "l1"])?;
        pane.wait_for("listening to 1 console(s): l1", WAIT)?;
        pane.send_keys(&["C-c"])?;
        pane.wait_for("stopped listening", WAIT)?;
        let log = w.mo_ok(&["log", "show", "l3"], None)?;
        ensure!(
            log.stdout.contains("bob"),
            "denial not in l3's log:\n{}",
            log.stdout
        );

        let usage = alice.run(Login::Shell, &["listen"], None)?;
        ensure!(
            usage.stdout.contains("usage: listen"),
            "{}",
            usage.combined()
        );
        Ok(())
    });
}
