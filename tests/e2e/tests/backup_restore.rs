//! `mo backup` while a console floods its log and the daemon runs, `mo restore` into a new data
//! directory, and a second daemon on the restored directory (issue 21 item 7): it serves the same
//! devices and users, and the restored record log verifies.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{
    Cli, Daemon, FLOOD_FOREVER, Login, SshClient, World, dir_size, ensure, free_port, run_test,
};

/// Generous: the machine is shared and may be loaded.
const LONG: Duration = Duration::from_secs(60);

/// Wait until the flooding device's log holds at least `bytes`.
fn wait_log_bytes(w: &World, device: &str, bytes: u64) -> mo_testsupport::Result<()> {
    let dir = w.data_dir().join("logs").join(device);
    let deadline = Instant::now() + LONG;
    loop {
        let size = dir_size(&dir);
        if size >= bytes {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the log of {device} holds only {size} bytes after {LONG:?} (not flooding?)"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn backup_during_a_flood_restores_into_a_new_data_directory() {
    run_test("backup-restore", |w| {
        let script = w.write_script("flood.sh", FLOOD_FOREVER)?;
        w.add_device("flood1", &format!("exec://{}", script.display()), &[])?;
        w.add_echo_device("box", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user_with_role("bob", "bob-pw", Some(("viewer", "all")))?;
        w.mo_ok(
            &["secret", "set", "box", "password", "--stdin"],
            Some("box-secret\n"),
        )?;
        w.start_daemon(&[])?;
        wait_log_bytes(w, "flood1", 500_000)?;
        // box's log has its greeting, so both logs are in the backup.
        let deadline = Instant::now() + LONG;
        loop {
            let shown = w.mo(&["log", "show", "box"], None)?;
            if shown.success() && shown.stdout.contains("console ready") {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "box's log never showed its greeting: {}",
                shown.combined()
            );
            thread::sleep(Duration::from_millis(100));
        }

        // The backup, taken while flood1 keeps printing.
        let archive = w.dir().join("site.tar.zst");
        let archive_s = archive.display().to_string();
        let out = w.mo_ok(
            &["backup", &archive_s, "--with-logs", "--with-secret-key"],
            None,
        )?;
        ensure!(out.stdout.contains("backed up"), "{}", out.combined());
        ensure!(
            out.stderr.contains("snapshot of the store"),
            "no progress: {}",
            out.combined()
        );
        ensure!(
            w.daemon()?.is_running(),
            "the daemon stopped during the backup"
        );
        let audit = w.mo_ok(&["audit", "--action", "backup"], None)?;
        ensure!(audit.stdout.contains("with logs"), "{}", audit.stdout);

        // Restore into a new directory; a second restore there is refused.
        let restored = w.dir().join("restored");
        let out = Cli::run_ok(&restored, &["restore", &archive_s], None)?;
        ensure!(
            out.stdout.contains("2 devices, 2 users"),
            "{}",
            out.combined()
        );
        let again = Cli::run(&restored, &["restore", &archive_s], None)?;
        ensure!(
            !again.success() && again.stderr.contains("not empty"),
            "{}",
            again.combined()
        );

        // The restored logs verify as they are (complete records only).
        for device in ["flood1", "box"] {
            let verify = Cli::run(&restored, &["log", "verify", device], None)?;
            ensure!(
                verify.success() && !verify.stdout.contains("warning"),
                "`mo log verify {device}` on the restored logs:\n{}",
                verify.combined()
            );
        }
        let shown = Cli::run_ok(&restored, &["log", "show", "flood1"], None)?;
        ensure!(
            shown.stdout.contains("flood line 1 padding"),
            "restored log lacks the first flood line ({} bytes shown)",
            shown.stdout.len()
        );
        let secret = Cli::run_ok(&restored, &["secret", "list", "box"], None)?;
        ensure!(secret.stdout.contains("password"), "{}", secret.combined());
        ensure!(
            restored.join("secret.key").is_file(),
            "--with-secret-key did not restore secret.key"
        );

        // A daemon on the restored directory serves the same devices and users.
        let port = free_port()?;
        let mut second = Daemon::start(&restored, port, &[])?;
        let alice = SshClient::with_password(w.dir(), port, "alice", "alice-pw")?;
        let deadline = Instant::now() + LONG;
        loop {
            let out = alice.run(Login::Shell, &["list"], None)?;
            let text = out.combined();
            if out.success() && text.contains("flood1") && text.contains("box") {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "restored daemon's `list`: {text}"
            );
            thread::sleep(Duration::from_millis(250));
        }
        let bob = SshClient::with_password(w.dir(), port, "bob", "bob-pw")?;
        let out = bob.run(Login::Shell, &["list"], None)?;
        ensure!(
            out.success() && out.combined().contains("box"),
            "{}",
            out.combined()
        );
        second.stop()?;

        // The restored log still verifies after the second daemon appended to it.
        let verify = Cli::run(&restored, &["log", "verify", "flood1"], None)?;
        ensure!(verify.success(), "{}", verify.combined());
        Ok(())
    });
}
