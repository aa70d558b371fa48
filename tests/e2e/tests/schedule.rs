//! The scheduler (issue 8 item 4): `mod --schedule FILE` runs a macro at the times of a cron
//! expression (every 2 seconds here), the result lands in the device's record log, a failing run
//! raises a `schedule` event, runs missed while the daemon was down are reported at the next
//! start, and a bad schedule file is refused naming the entry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use mo_testsupport::{WAIT, World, ensure, run_test};

const TICK: &str = "sendline tick-${device}\nexpect /got: tick-${device}/ timeout=5s\n";
const NEVER: &str = "sendline x\nexpect /never-shows/ timeout=1s\n";

const SCHEDULE: &str = r#"
[[schedule]]
cron = "*/2 * * * * *"
macro = "tick"
targets = ["c1"]

[[schedule]]
name = "broken"
cron = "*/2 * * * * *"
macro = "never"
targets = ["c3"]
"#;

/// Poll `mo ARGS` until its output holds `needle`; returns the output.
fn wait_mo(w: &World, args: &[&str], needle: &str) -> mo_testsupport::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = w.mo_ok(args, None)?;
        if out.stdout.contains(needle) {
            return Ok(out.stdout);
        }
        ensure!(
            Instant::now() < deadline,
            "no {needle:?} in `mo {}`:\n{}",
            args.join(" "),
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn scheduled_macros_run_log_and_report() {
    run_test("schedule", |w| {
        w.add_echo_device("c1", &[])?;
        w.add_echo_device("c3", &[])?;
        let tick = w.write_script("tick.macro", TICK)?;
        let never = w.write_script("never.macro", NEVER)?;
        w.mo_ok(&["macro", "add", "tick", &tick.display().to_string()], None)?;
        w.mo_ok(
            &["macro", "add", "never", &never.display().to_string()],
            None,
        )?;

        // A bad file is refused at start, naming the entry.
        let bad = w.write_script(
            "bad.toml",
            "[[schedule]]\ncron = \"61 * * * *\"\nmacro = \"tick\"\ntargets = [\"c1\"]\n",
        )?;
        let bad = bad.display().to_string();
        match w.start_daemon(&["--schedule", &bad]) {
            Ok(_) => ensure!(false, "a bad cron expression was accepted"),
            Err(e) => ensure!(
                e.to_string().contains("entry 1") && e.to_string().contains("cron expression"),
                "{e}"
            ),
        }
        let missing = w.write_script(
            "missing.toml",
            "[[schedule]]\ncron = \"* * * * *\"\nmacro = \"nope\"\ntargets = [\"c1\"]\n",
        )?;
        let missing = missing.display().to_string();
        match w.start_daemon(&["--schedule", &missing]) {
            Ok(_) => ensure!(false, "a missing macro was accepted"),
            Err(e) => ensure!(e.to_string().contains("no macro `nope`"), "{e}"),
        }

        let file = w.write_script("schedule.toml", SCHEDULE)?;
        let file = file.display().to_string();
        w.start_daemon(&["--schedule", &file])?;
        let log = wait_mo(
            w,
            &["log", "show", "c1"],
            "schedule tick: c1: done (2 steps",
        )?;
        ensure!(
            log.contains("got: tick-c1")
                && log.contains("macro tick: line 1: sendline \"tick-c1\""),
            "{log}"
        );
        let events = wait_mo(
            w,
            &["events", "--device", "c3"],
            "schedule broken: c3: FAILED at line 2",
        )?;
        ensure!(
            events.contains(" schedule "),
            "source not `schedule`:\n{events}"
        );
        let log = w.mo_ok(&["log", "show", "c3"], None)?;
        ensure!(
            log.stdout.contains("macro never: failed at line 2"),
            "{}",
            log.stdout
        );

        // The last run is kept in the data dir; runs missed while down are reported at start.
        w.daemon()?.stop()?;
        let state = std::fs::read_to_string(w.data_dir().join("schedule-state.json")).unwrap();
        ensure!(
            state.contains("\"tick\"") && state.contains("\"broken\""),
            "{state}"
        );
        std::thread::sleep(Duration::from_secs(3));
        w.start_daemon(&["--schedule", &file])?;
        wait_mo(
            w,
            &["events", "--device", "c1"],
            "missed while mod was down",
        )?;
        Ok(())
    });
}
