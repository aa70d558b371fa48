//! Watching the consoles (issue 6): a panic printed on a console raises an event with its
//! context, 10,000 identical lines in a burst become one event with a count, an exec action runs
//! with the right argv, the event sits in the device's record log, and a bad pattern stops the
//! daemon at start with a clear error.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Login, WAIT, ensure, run_test};

const NOISY: &str = r#"#!/bin/sh
awk 'BEGIN { for (i = 1; i <= 10000; i++) printf "end_request: I/O error on dev sda\r\n" }'
printf 'Kernel panic - not syncing: VFS: unable to mount root fs\r\n'
exec sleep 600
"#;

#[test]
fn panics_and_bursts_become_events_and_actions_run() {
    run_test("events", |w| {
        let script = w.write_script("console-noisy.sh", NOISY)?;
        let record = w.dir().join("action.out");
        let action = w.write_script(
            "action.sh",
            &format!(
                "#!/bin/sh\nprintf '%s|' \"$@\" >>{}\necho >>{}\n",
                record.display(),
                record.display()
            ),
        )?;
        let config = w.dir().join("events.toml");
        std::fs::write(
            &config,
            format!(
                r#"[[pattern]]
name = "disk"
regex = 'I/O error on dev (?P<dev>\w+)'
severity = "warning"
message = "disk error on {{device}}"

[[pattern]]
name = "panic"
regex = 'Kernel panic - not syncing'
severity = "critical"

[rules]
dedup_window = "60s"
[[rules.rule]]
name = "page"
min_severity = "critical"
actions = ["script"]

[actions.script]
kind = "exec"
argv = ["{}", "{{device}}", "{{severity}}", "{{message}}"]
"#,
                action.display()
            ),
        )
        .map_err(|e| mo_testsupport::Error::io("write events.toml", e))?;
        w.add_device("noisy", &format!("exec://{}", script.display()), &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let config_arg = config.display().to_string();
        w.start_daemon(&["--events", &config_arg])?;

        let deadline = Instant::now() + WAIT;
        let listing = loop {
            let out = alice.run(Login::Shell, &["events", "noisy"], None)?.ok()?;
            if out.stdout.contains("critical") && out.stdout.contains("x10000") {
                break out.stdout;
            }
            ensure!(
                Instant::now() < deadline,
                "events never showed up:\n{}",
                out.combined()
            );
            thread::sleep(Duration::from_millis(200));
        };
        ensure!(
            listing.contains("disk error on noisy")
                && listing.lines().filter(|l| l.contains(" pattern ")).count() == 2,
            "expected one folded disk event and one panic:\n{listing}"
        );
        ensure!(
            listing.contains("connection link up"),
            "the link coming up is an event too:\n{listing}"
        );

        // The exec action ran once, for the critical event only, with the argv templated.
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(&record).unwrap_or_default();
            if !text.is_empty() {
                ensure!(
                    text.lines().count() == 1
                        && text.starts_with("noisy|critical|Kernel panic - not syncing"),
                    "action argv: {text:?}"
                );
                break;
            }
            ensure!(Instant::now() < deadline, "the exec action never ran");
            thread::sleep(Duration::from_millis(100));
        }

        // The event is in the console's timeline.
        let log = w.mo_ok(&["log", "show", "noisy", "--kind", "event"], None)?;
        ensure!(
            log.stdout.contains("[critical] Kernel panic"),
            "no event record in the log:\n{}",
            log.stdout
        );

        // `mo events` reads the same store.
        let cli = w.mo_ok(
            &["events", "--device", "noisy", "--severity", "warning"],
            None,
        )?;
        ensure!(
            cli.stdout.contains("x10000") && cli.stdout.contains("critical"),
            "mo events:\n{}",
            cli.stdout
        );
        let bad = w.mo(&["events", "--severity", "dire"], None)?;
        ensure!(
            !bad.success() && bad.stderr.contains("dire"),
            "{}",
            bad.combined()
        );

        // Acknowledge it.
        let id = listing
            .lines()
            .find(|l| l.contains("critical"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("#0")
            .to_string();
        let ack = alice.run(Login::Shell, &["ack", &id], None)?.ok()?;
        ensure!(ack.stdout.contains("acknowledged"), "{}", ack.combined());
        let after = alice.run(Login::Shell, &["events", "noisy"], None)?.ok()?;
        ensure!(
            after.stdout.contains("acked by alice"),
            "{}",
            after.combined()
        );
        Ok(())
    });
}

#[test]
fn a_bad_pattern_stops_the_daemon_at_start() {
    run_test("events-bad", |w| {
        let config = w.dir().join("events.toml");
        std::fs::write(&config, "[[pattern]]\nname = \"x\"\nregex = 'unclosed ('\n")
            .map_err(|e| mo_testsupport::Error::io("write events.toml", e))?;
        let config_arg = config.display().to_string();
        let err = w.start_daemon(&["--events", &config_arg]).err();
        let text = format!("{err:?}");
        ensure!(err.is_some(), "the daemon started with a bad pattern");
        ensure!(
            text.contains("events.toml"),
            "error does not name the file: {text}"
        );
        Ok(())
    });
}
