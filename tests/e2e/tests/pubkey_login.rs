//! Public-key login with keys added by `mo user add --ssh-key`.

use mo_testsupport::{Login, SshClient, SshKey, WAIT, ensure, run_test};

#[test]
fn registered_key_logs_in_and_others_do_not() {
    run_test("pubkey", |w| {
        w.add_echo_device("ex1", &[])?;
        let (carol, _key) = w.add_user_with_key("carol", "carol-pw")?;
        w.start_daemon(&[])?;

        let out = carol.run(Login::Shell, &["list"], None)?;
        ensure!(
            out.success() && out.stdout.contains("ex1"),
            "login with carol's registered key failed:\n{}",
            out.combined()
        );

        // Her password still works too.
        let by_password = w.client("carol", "carol-pw")?;
        let out = by_password.run(Login::Shell, &["list"], None)?;
        ensure!(
            out.success(),
            "carol's password stopped working:\n{}",
            out.combined()
        );

        // A key nobody registered is refused.
        let stranger = SshKey::generate(w.dir(), "stranger")?;
        let out =
            SshClient::with_key(w.port(), "carol", &stranger).run(Login::Shell, &["list"], None)?;
        ensure!(
            !out.success() && out.stderr.contains("Permission denied"),
            "an unregistered key was accepted:\n{}",
            out.combined()
        );

        // The key works for an interactive attach too.
        let pane = w.terminal("carol", &carol, Login::Attach("ex1"), &[])?;
        pane.wait_for("attached read-write", WAIT)?;
        pane.send_line("typed-with-a-key")?;
        pane.wait_for("got: typed-with-a-key", WAIT)?;
        Ok(())
    });
}
