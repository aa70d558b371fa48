//! Escalation steps survive a daemon restart (issue 23 item 3): an unacknowledged event's step
//! that was not yet due when the daemon stopped fires once, from the restarted daemon; a step of
//! an event acknowledged before the restart never fires.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Login, World, ensure, run_test};

/// Generous deadline for the daemon, the consoles and the escalation delays.
const LONG: Duration = Duration::from_secs(180);

/// A console that panics the first time it starts only (a restarted daemon restarts it).
fn panic_once(mark: &std::path::Path) -> String {
    format!(
        "#!/bin/sh\nif [ ! -e {m} ]; then : > {m}; echo \"Kernel panic - not syncing: boom\"; fi\nexec sleep 600\n",
        m = mark.display()
    )
}

/// The id (`#N`) of the panic event of `device`, once `mo events` lists it.
fn panic_id(w: &World, device: &str) -> mo_testsupport::Result<String> {
    let deadline = Instant::now() + LONG;
    loop {
        let out = w.mo_ok(&["events", "--device", device], None)?.stdout;
        if let Some(id) = out
            .lines()
            .find(|l| l.contains("Kernel panic"))
            .and_then(|l| l.split_whitespace().next())
        {
            return Ok(id.to_owned());
        }
        ensure!(
            Instant::now() < deadline,
            "no panic event for {device}:\n{out}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn escalation_steps_survive_a_restart_and_an_ack_before_it_cancels_them() {
    run_test("escalate-restart", |w| {
        let record = w.dir().join("actions.out");
        // Each run notes the daemon that ran it ($PPID: the exec action has no shell between).
        let action = w.write_script(
            "action.sh",
            &format!("#!/bin/sh\necho \"$1 $2 $PPID\" >>{}\n", record.display()),
        )?;
        for name in ["r1", "r2", "r3"] {
            let script = panic_once(&w.dir().join(format!("{name}.panicked")));
            let path = w.write_script(&format!("console-{name}.sh"), &script)?;
            w.add_device(name, &format!("exec://{}", path.display()), &[])?;
        }
        // r1 escalates after 15 s and nobody acknowledges it; r2 too but is acknowledged before
        // the restart; r3, 5 s later, marks the time by which r2's step would have run. (Up to
        // the restart took 0.7 s in a debug build with the machine's two cores busy.)
        let config = w.write_script(
            "events.toml",
            &format!(
                r#"[[pattern]]
name = "panic"
regex = 'Kernel panic - not syncing'
severity = "critical"

[[rules.rule]]
name = "late"
min_severity = "critical"
devices = ["r1", "r2"]
escalate = [{{ after = "15s", actions = ["second"] }}]

[[rules.rule]]
name = "marker"
min_severity = "critical"
devices = ["r3"]
escalate = [{{ after = "20s", actions = ["second"] }}]

[actions.second]
kind = "exec"
argv = ["{action}", "second", "{{device}}"]
"#,
                action = action.display()
            ),
        )?;
        let config = config.display().to_string();
        let alice = w.add_user("alice", "alice-pw")?;
        let started = Instant::now();
        let first_pid = w.start_daemon(&["--events", &config])?.pid();
        for name in ["r1", "r3"] {
            panic_id(w, name)?;
        }
        let id = panic_id(w, "r2")?;
        let ack = alice.run(Login::Shell, &["ack", &id], None)?.ok()?;
        ensure!(ack.stdout.contains("acknowledged"), "{}", ack.combined());

        // Restart before the steps are due (15 s after the panics).
        let second_pid = w.start_daemon(&["--events", &config])?.pid();
        ensure!(first_pid != second_pid, "the daemon did not restart");
        let restarted = started.elapsed();

        let deadline = Instant::now() + LONG;
        let text = loop {
            let text = std::fs::read_to_string(&record).unwrap_or_default();
            if text.lines().any(|l| l.starts_with("second r3 ")) {
                break text;
            }
            ensure!(
                Instant::now() < deadline,
                "r3's escalation never ran; actions so far:\n{text}\n{}",
                w.daemon()?.log_text()
            );
            thread::sleep(Duration::from_millis(250));
        };
        let r1: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("second r1 "))
            .collect();
        ensure!(
            r1 == [format!("second r1 {second_pid}")],
            "r1's step must run once, from the restarted daemon (pid {second_pid}; the first \
             was {first_pid}):\n{text}"
        );
        ensure!(
            !text.contains("second r2 "),
            "the acknowledgement before the restart ({restarted:?} after the first start) did \
             not cancel r2's step:\n{text}"
        );
        ensure!(
            !text
                .lines()
                .any(|l| l.contains("r1") && l.ends_with(&first_pid.to_string())),
            "r1's step ran before the restart ({restarted:?} after the first start):\n{text}"
        );
        let log = w.mo_ok(&["log", "show", "r1", "--kind", "event"], None)?;
        ensure!(
            log.stdout.contains("escalated (not acknowledged): second"),
            "the escalation is not in r1's log:\n{}",
            log.stdout
        );
        Ok(())
    });
}
