//! Two users (and a late third) share one serial console on a socat pty pair: attach, spy,
//! force, who, replay; bytes flow both ways between the panes and the "machine".

use mo_testsupport::{Login, Result, SocatPty, Tmux, WAIT, ensure, run_test};

/// A barrier for what `user` typed into `pane`: `who` through the escape is answered only after
/// the front end has handed every key typed before it to the console (which wrote or refused
/// them), so a line typed by someone else afterwards reaches the machine after any of them.
fn input_handled(pane: &Tmux, device: &str, user: &str) -> Result<()> {
    let listed = format!("{device}: {user} ");
    let before = pane.capture()?.matches(&listed).count();
    pane.send_keys(&["C-e", "c", "w"])?;
    pane.wait_for_count(&listed, before + 1, WAIT)?;
    Ok(())
}

#[test]
fn two_users_share_a_serial_console() {
    run_test("serial-share", |w| {
        let mut line = SocatPty::start(w.dir())?;
        let url = format!("serial://{}?baud=115200", line.device_path().display());
        w.add_device("ser1", &url, &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        let carol = w.add_user("carol", "carol-pw")?;
        w.start_daemon(&[])?;

        // alice attaches first and gets the write lock.
        let a = w.terminal("alice", &alice, Login::Attach("ser1"), &[])?;
        a.wait_for("attached read-write", WAIT)?;
        line.write_peer(b"machine says one\r\n")?;
        a.wait_for("machine says one", WAIT)?;

        // bob attaches too and is told he is spying; alice is told bob is there.
        let b = w.terminal("bob", &bob, Login::Attach("ser1"), &[])?;
        b.wait_for("spying", WAIT)?;
        a.wait_for("[mo: bob is spying]", WAIT)?;

        // The machine's output reaches both.
        line.write_peer(b"machine says two\r\n")?;
        a.wait_for("machine says two", WAIT)?;
        b.wait_for("machine says two", WAIT)?;

        // What alice types reaches the machine; what spying bob types does not: bob is told so,
        // and alice's line, typed after bob's keys were handled, arrives without them before it.
        b.send_line("bob-typed-while-spying")?;
        input_handled(&b, "ser1", "bob")?;
        b.wait_for("typing needs read-write", WAIT)?;
        a.send_line("alice-typed-one")?;
        line.wait_peer_text("alice-typed-one", WAIT)?;
        let got = line.peer_text();
        ensure!(
            !got.contains("bob-typed-while-spying"),
            "input from a spy reached the serial line:\n{got}"
        );

        // bob forces: alice is demoted with a notice, bob's typing now reaches the machine.
        b.send_keys(&["C-e", "c", "f"])?;
        a.wait_for("[mo: bob forced write access; alice is now spying]", WAIT)?;
        b.send_line("bob-typed-after-force")?;
        line.wait_peer_text("bob-typed-after-force", WAIT)?;
        a.send_line("alice-typed-while-spying")?;
        input_handled(&a, "ser1", "alice")?;
        b.send_line("bob-barrier-after-alice")?;
        line.wait_peer_text("bob-barrier-after-alice", WAIT)?;
        let got = line.peer_text();
        ensure!(
            !got.contains("alice-typed-while-spying"),
            "input from demoted alice reached the serial line:\n{got}"
        );

        // who, through the escape: both users listed after a marker line.
        line.write_peer(b"MARK-BEFORE-WHO\r\n")?;
        b.wait_for("MARK-BEFORE-WHO", WAIT)?;
        b.send_keys(&["C-e", "c", "w"])?;
        b.wait_after("MARK-BEFORE-WHO", &["alice", "bob"], WAIT)?;

        // who, through the command shell of a third user.
        let who = carol.run(Login::Shell, &["who", "ser1"], None)?.ok()?;
        ensure!(
            who.stdout.contains("alice") && who.stdout.contains("bob"),
            "`who ser1` should list alice and bob:\n{}",
            who.combined()
        );

        // Replay: carol spying now sees the last lines without anything new being written.
        let c = w.terminal("carol", &carol, Login::Spy("ser1"), &[])?;
        let seen = c.wait_for("machine says two", WAIT)?;
        ensure!(
            seen.contains("machine says one"),
            "carol's replay should hold the earlier line too:\n{seen}"
        );
        // ... and the escape `r` replays them again.
        c.send_keys(&["C-e", "c", "r"])?;
        c.wait_for_count("machine says two", 2, WAIT)?;

        // Output keeps flowing to all three.
        line.write_peer(b"machine says three\r\n")?;
        for pane in [&a, &b, &c] {
            pane.wait_for("machine says three", WAIT)?;
        }
        Ok(())
    });
}
