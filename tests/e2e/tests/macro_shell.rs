//! Macros through the SSH shell and the CLI (issue 8 item 3): files checked with line-numbered
//! errors, a macro played on 20 sim consoles in parallel while one device that never shows the
//! expected prompt fails cleanly, the steps recorded in each log, a dry run, a permission denial,
//! and a macro recorded from a live session and replayed on another device.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mo_testsupport::{Login, WAIT, ensure, run_test};

const LOGIN_MACRO: &str = "\
# log in and ask the machine its name
param user root
sendline
expect /${device} login: $/ timeout=10s
sendline ${user}
expect /Password: $/ timeout=10s
sendline secret
expect /${device}:~\\$ $/ timeout=10s
sendline uname -n
expect /\\n${device}\\n/ timeout=10s
";

const BAD_MACRO: &str = "sendline ok\nexpect /(/\nfrobnicate x\nwait 5y\n";

#[test]
fn macros_play_on_many_and_fail_cleanly() {
    run_test("macro-shell", |w| {
        let mut sims = Vec::new();
        for i in 1..=20 {
            let name = format!("m{i:02}");
            w.add_device(&name, &format!("sim://{name}?boot=none"), &[])?;
            sims.push(name);
        }
        w.add_echo_device("mdud", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let vera = w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;

        // The CLI checks and stores macros.
        let good = w.write_script("login.macro", LOGIN_MACRO)?;
        let bad = w.write_script("bad.macro", BAD_MACRO)?;
        let checked = w.mo(&["macro", "check", &bad.display().to_string()], None)?;
        ensure!(
            !checked.success()
                && checked.stdout.contains("line 2: bad expression")
                && checked.stdout.contains("line 3: unknown step `frobnicate`")
                && checked.stdout.contains("line 4: unknown unit `y`"),
            "bad macro not refused with line numbers:\n{}",
            checked.combined()
        );
        let refused = w.mo(&["macro", "add", "bad", &bad.display().to_string()], None)?;
        ensure!(
            !refused.success() && refused.stderr.contains("line 2:"),
            "{}",
            refused.combined()
        );
        w.mo_ok(
            &["macro", "add", "login", &good.display().to_string()],
            None,
        )?;
        let list = w.mo_ok(&["macro", "list"], None)?;
        ensure!(
            list.stdout.contains("login") && list.stdout.contains("user=root"),
            "{}",
            list.stdout
        );
        // A bad file dropped into the directory by hand is caught by the shell's check.
        std::fs::write(w.data_dir().join("macros/broken.macro"), BAD_MACRO).unwrap();

        w.start_daemon(&[])?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let list = alice.run(Login::Shell, &["list"], None)?.ok()?;
            if list.stdout.lines().filter(|l| l.contains(" up ")).count() == 21 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "not all up:\n{}",
                list.stdout
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }

        let out = alice.run(Login::Shell, &["macro", "list"], None)?;
        ensure!(
            out.stdout.contains("login")
                && out.stdout.contains("broken")
                && out.stdout.contains("bad"),
            "{}",
            out.combined()
        );
        let out = alice.run(Login::Shell, &["macro", "check", "broken"], None)?;
        ensure!(
            !out.success() && out.stdout.contains("broken.macro: line 2: bad expression"),
            "{}",
            out.combined()
        );
        let out = alice.run(Login::Shell, &["macro", "check", "-"], Some(LOGIN_MACRO))?;
        ensure!(
            out.stdout.contains("stdin: ok (8 steps"),
            "{}",
            out.combined()
        );

        // Dry run: the plan, nothing sent.
        let out = alice.run(
            Login::Shell,
            &[
                "macro",
                "play",
                "login",
                "m0*",
                "--dry-run",
                "--",
                "user=ops",
            ],
            None,
        )?;
        ensure!(
            out.success()
                && out.stdout.contains("line 5: sendline \"ops\"")
                && out.stdout.contains("would run on 9 device(s)"),
            "{}",
            out.combined()
        );
        // The viewer role may not run macros (it runs them nowhere, so it sees none).
        let out = vera.run(Login::Shell, &["macro", "play", "login", "m01"], None)?;
        ensure!(
            !out.success() && out.stdout.contains("vera may not run macros on any device"),
            "{}",
            out.combined()
        );

        // 20 sims and one device that never shows a login prompt, others going on.
        let out = alice.run(
            Login::Shell,
            &[
                "macro",
                "play",
                "login",
                "m*",
                "mdud",
                "--parallel",
                "8",
                "--continue",
                "--",
                "user=ops",
            ],
            None,
        )?;
        for sim in &sims {
            ensure!(
                out.stdout.contains(&format!("{sim}: done (8 steps")),
                "{sim} not done:\n{}",
                out.combined()
            );
        }
        ensure!(
            out.stdout.contains("mdud: FAILED at line 4 (expect")
                && out.stdout.contains("no answer within 10 s")
                && out.stdout.contains("20 done, 1 failed")
                && out.stdout.contains("m07: line 5: sendline \"ops\""),
            "failure or progress not reported:\n{}",
            out.combined()
        );
        ensure!(!out.success(), "a failed device must fail the command");
        let log = w.mo_ok(&["log", "show", "m07"], None)?;
        ensure!(
            log.stdout.contains("macro login: line 5: sendline \"ops\"")
                && log.stdout.contains("macro login: done")
                && log.stdout.contains("m07:~$ uname -n"),
            "m07's log lacks the macro steps:\n{}",
            log.stdout
        );
        ensure!(
            !log.stdout.contains("m08:~$"),
            "m07's log holds m08's output"
        );
        let log = w.mo_ok(&["log", "show", "mdud"], None)?;
        ensure!(
            log.stdout.contains("macro login: failed at line 4"),
            "mdud's log:\n{}",
            log.stdout
        );
        Ok(())
    });
}

#[test]
fn a_recorded_macro_replays_on_20_devices() {
    run_test("macro-record", |w| {
        w.add_device("rec0", "sim://rec0?boot=none", &[])?;
        let mut sims = Vec::new();
        for i in 1..=20 {
            let name = format!("s{i:02}");
            w.add_device(&name, &format!("sim://{name}?boot=none"), &[])?;
            sims.push(name);
        }
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        w.wait_listed(&alice, "s20", true, WAIT)?;
        let pane = w.terminal(
            "rec",
            &alice,
            Login::Shell,
            &["macro", "record", "rec1", "rec0"],
        )?;
        pane.wait_for("attached read-write", WAIT)?;
        pane.send_line("")?;
        pane.wait_for_count("rec0 login:", 2, WAIT)?;
        pane.send_line("root")?;
        pane.wait_for("Password:", WAIT)?;
        pane.send_line("hunter2")?;
        pane.wait_for("rec0:~$", WAIT)?;
        pane.send_line("uname -n")?;
        pane.wait_for_count("rec0:~$", 2, WAIT)?;
        pane.send_keys(&["C-e", "c", "."])?;
        pane.wait_for("macro rec1 written", WAIT)?;
        let shown = alice
            .run(Login::Shell, &["macro", "show", "rec1"], None)?
            .ok()?;
        ensure!(
            shown.stdout.contains("param password")
                && shown.stdout.contains("expect /${device} login: $/")
                && shown.stdout.contains("sendline root")
                && shown.stdout.contains("sendline ${password}")
                && shown.stdout.contains("sendline uname -n")
                && !shown.stdout.contains("hunter2"),
            "{}",
            shown.stdout
        );
        let out = alice.run(
            Login::Shell,
            &["macro", "play", "rec1", "s*", "--", "password=pw"],
            None,
        )?;
        ensure!(
            out.stdout.contains("20 done, 0 failed"),
            "{}",
            out.combined()
        );
        let log = w.mo_ok(&["log", "show", "s13", "--kind", "output"], None)?;
        ensure!(log.stdout.contains("s13:~$ uname -n"), "{}", log.stdout);
        // Recording under the name alice's macro has is refused to another (non-global-admin)
        // user before anything starts (issue 13 item 4).
        let bob = w.add_user_with_role("bob", "bob-pw", Some(("operator", "all")))?;
        let out = bob.run(Login::Shell, &["macro", "record", "rec1", "rec0"], None)?;
        ensure!(
            out.stdout.contains("macro `rec1` belongs to alice"),
            "{}",
            out.combined()
        );
        Ok(())
    });
}
