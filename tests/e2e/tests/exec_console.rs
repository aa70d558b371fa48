//! Two users on an `exec://` console, reached through the command shell and through
//! `ssh -t ... console NAME`: shared output, detach, attach, help.

use mo_testsupport::{Login, WAIT, ensure, run_test};

#[test]
fn two_users_share_an_exec_console() {
    run_test("exec-share", |w| {
        w.add_echo_device("ex1", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        w.start_daemon(&[])?;

        // alice uses the command shell.
        let a = w.terminal("alice", &alice, Login::Shell, &[])?;
        a.wait_for("mo>", WAIT)?;
        a.send_line("list")?;
        a.wait_after("list", &["ex1"], WAIT)?;
        a.send_line("console ex1")?;
        a.wait_for("attached read-write", WAIT)?;
        a.wait_for("console ready", WAIT)?;

        // bob runs one command: `ssh -t bob@host console ex1`.
        let b = w.terminal("bob", &bob, Login::Shell, &["console", "ex1"])?;
        b.wait_for("spying", WAIT)?;

        a.send_line("hello-from-alice")?;
        a.wait_for("got: hello-from-alice", WAIT)?;
        b.wait_for("got: hello-from-alice", WAIT)?;

        // alice disconnects with the escape; bob sees the lock free and takes it with `a`.
        a.send_keys(&["C-e", "c", "."])?;
        b.wait_for("alice detached", WAIT)?;
        b.send_keys(&["C-e", "c", "a"])?;
        b.wait_for("[mo: bob attached read-write]", WAIT)?;
        b.send_line("hello-from-bob")?;
        b.wait_for("got: hello-from-bob", WAIT)?;

        // The escape help lists the commands.
        b.send_keys(&["C-e", "c", "?"])?;
        let help = b.wait_for("escape sequences", WAIT)?;
        ensure!(
            help.contains("force"),
            "escape help should mention force:\n{help}"
        );
        Ok(())
    });
}

#[test]
fn shell_commands_answer_without_a_terminal() {
    run_test("exec-shell", |w| {
        w.add_echo_device("ex1", &[])?;
        w.add_echo_device("ex2", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let list = alice.run(Login::Shell, &["list"], None)?.ok()?;
        for name in ["ex1", "ex2"] {
            ensure!(
                list.stdout.split_whitespace().any(|word| word == name),
                "`list` should show {name}:\n{}",
                list.combined()
            );
        }
        let help = alice.run(Login::Shell, &["help"], None)?.ok()?;
        for word in ["console", "spy", "who", "list"] {
            ensure!(
                help.stdout.contains(word),
                "`help` should mention {word}:\n{}",
                help.combined()
            );
        }
        Ok(())
    });
}
