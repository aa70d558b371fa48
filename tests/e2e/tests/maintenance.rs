//! Maintenance windows at run time (issue 23 item 2): `mo maintenance start` on the data
//! directory puts a device into maintenance while the daemon runs — its events are stored and
//! marked suppressed, the rule's action does not run, the console's log shows a banner —
//! `maintenance list` in the SSH shell shows it, and `mo maintenance stop` ends it: a banner
//! again, and the action runs for the next events. Through the REST API (`mo --server`), an
//! operator starts, lists and stops a window and a viewer is refused.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{Login, World, ensure, run_test};

/// A console that panics three times a second, each panic with its own number.
const TICKING: &str = r#"#!/bin/sh
i=0
while :; do
  i=$((i+1))
  echo "Kernel panic - not syncing: tick $i"
  sleep 0.3
done
"#;

const LONG: Duration = Duration::from_secs(90);

/// Poll `mo ARGS` until `done` holds for its output; returns the output.
fn wait_mo(
    w: &World,
    args: &[&str],
    what: &str,
    done: impl Fn(&str) -> bool,
) -> mo_testsupport::Result<String> {
    let deadline = Instant::now() + LONG;
    loop {
        let out = w.mo_ok(args, None)?;
        if done(&out.stdout) {
            return Ok(out.stdout);
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: not in `mo {}`:\n{}",
            args.join(" "),
            out.stdout
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The message and id of each `Kernel panic` event in a `mo events` listing, and whether it
/// was suppressed.
fn panics(listing: &str) -> Vec<(u64, String, bool)> {
    listing
        .lines()
        .filter_map(|l| {
            let id = l
                .split_whitespace()
                .next()?
                .trim_start_matches('#')
                .parse()
                .ok()?;
            let at = l.find("Kernel panic")?;
            let rest = l.get(at..)?;
            let suppressed = rest.ends_with(" (suppressed)");
            let message = rest.trim_end_matches(" (suppressed)").to_owned();
            Some((id, message, suppressed))
        })
        .collect()
}

#[test]
fn a_window_started_from_the_cli_suppresses_actions_until_stopped() {
    run_test("maintenance", |w| {
        let script = w.write_script("console-ticker.sh", TICKING)?;
        w.add_device("ticker", &format!("exec://{}", script.display()), &[])?;
        let record = w.dir().join("actions.out");
        let action = w.write_script(
            "action.sh",
            &format!("#!/bin/sh\necho \"$1\" >>{}\n", record.display()),
        )?;
        let config = w.dir().join("events.toml");
        std::fs::write(
            &config,
            format!(
                r#"[[pattern]]
name = "panic"
regex = 'Kernel panic - not syncing'
severity = "critical"

[[rules.rule]]
name = "page"
min_severity = "critical"
actions = ["script"]

[actions.script]
kind = "exec"
argv = ["{}", "{{message}}"]
"#,
                action.display()
            ),
        )
        .map_err(|e| mo_testsupport::Error::io("write events.toml", e))?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&["--events", &config.display().to_string()])?;
        let actions = || std::fs::read_to_string(&record).unwrap_or_default();

        // Before: the action runs.
        let deadline = Instant::now() + LONG;
        while actions().is_empty() {
            ensure!(Instant::now() < deadline, "the action never ran");
            thread::sleep(Duration::from_millis(100));
        }

        let started = w.mo_ok(
            &[
                "maintenance",
                "start",
                "ticker",
                "--for",
                "1h",
                "--reason",
                "disk swap",
            ],
            None,
        )?;
        ensure!(
            started
                .stdout
                .contains("maintenance ticker on ticker until"),
            "{}",
            started.combined()
        );
        let banner = wait_mo(
            w,
            &["log", "show", "ticker", "--kind", "notice"],
            "the start banner",
            |t| t.contains("maintenance ticker (ticker) by"),
        )?;
        ensure!(
            banner.contains("disk swap") && banner.contains("event actions suppressed"),
            "{banner}"
        );
        wait_mo(
            w,
            &["events", "--device", "ticker", "--limit", "10000"],
            "a suppressed event",
            |t| panics(t).iter().any(|(_, _, s)| *s),
        )?;
        let listed = alice
            .run(Login::Shell, &["maintenance", "list"], None)?
            .ok()?;
        ensure!(
            listed.stdout.contains("ticker") && listed.stdout.contains("disk swap"),
            "{}",
            listed.combined()
        );
        let cli_list = w.mo_ok(&["maintenance", "list"], None)?;
        ensure!(cli_list.stdout.contains("disk swap"), "{}", cli_list.stdout);

        w.mo_ok(&["maintenance", "stop", "ticker"], None)?;
        wait_mo(
            w,
            &["log", "show", "ticker", "--kind", "notice"],
            "the end banner",
            |t| t.contains("maintenance ticker (ticker) ended"),
        )?;
        // After: a new event that is not suppressed, later than every suppressed one, runs
        // the action again.
        let deadline = Instant::now() + LONG;
        let (events, last) = loop {
            let listing = w
                .mo_ok(&["events", "--device", "ticker", "--limit", "10000"], None)?
                .stdout;
            let events = panics(&listing);
            let last_suppressed = events
                .iter()
                .filter(|(_, _, s)| *s)
                .map(|(id, _, _)| *id)
                .max()
                .unwrap_or(0);
            let done = actions();
            let after = events
                .iter()
                .find(|(id, m, s)| !*s && *id > last_suppressed && done.lines().any(|l| l == m));
            if let Some((_, m, _)) = after {
                break (events.clone(), m.clone());
            }
            ensure!(
                Instant::now() < deadline,
                "no action ran after the window ended:\n{listing}\nactions:\n{done}"
            );
            thread::sleep(Duration::from_millis(250));
        };
        let done = actions();
        for (id, message, suppressed) in &events {
            if *suppressed {
                ensure!(
                    !done.lines().any(|l| l == message),
                    "suppressed event #{id} ran its action ({message}); after it: {last}"
                );
            }
        }
        let gone = w.mo_ok(&["maintenance", "list"], None)?;
        ensure!(
            gone.stdout.contains("no maintenance windows"),
            "{}",
            gone.stdout
        );
        let bad = w.mo(&["maintenance", "start", "ticker", "--for", "soon"], None)?;
        ensure!(
            !bad.success() && bad.stderr.contains("--for `soon`"),
            "{}",
            bad.combined()
        );
        Ok(())
    });
}

#[test]
fn the_api_starts_lists_and_stops_windows_for_those_allowed() {
    run_test("maintenance-api", |w| {
        w.add_echo_device("m1", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let alice = add_token(w, "alice", "all")?;
        let vera = add_token(w, "vera", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        let mo = |token: &str, args: &[&str]| {
            let mut all = vec!["--server", api.base.as_str(), "--token", token];
            all.extend_from_slice(args);
            w.mo(&all, None)
        };
        let start = &[
            "maintenance",
            "start",
            "m1",
            "--for",
            "10m",
            "--reason",
            "api test",
        ];
        let denied = mo(&vera, start)?;
        ensure!(
            !denied.success() && denied.stderr.contains("denied"),
            "a viewer started a window: {}",
            denied.combined()
        );
        let started = mo(&alice, start)?;
        ensure!(
            started.success() && started.stdout.contains("maintenance m1 on m1 until"),
            "{}",
            started.combined()
        );
        let listed = mo(&alice, &["maintenance", "list"])?;
        ensure!(
            listed.stdout.contains("m1  m1") && listed.stdout.contains("by alice: api test"),
            "{}",
            listed.combined()
        );
        wait_mo(
            w,
            &["log", "show", "m1", "--kind", "notice"],
            "the start banner",
            |t| t.contains("maintenance m1 (m1) by alice"),
        )?;
        let denied = mo(&vera, &["maintenance", "stop", "m1"])?;
        ensure!(
            !denied.success() && denied.stderr.contains("denied"),
            "a viewer stopped a window: {}",
            denied.combined()
        );
        let stopped = mo(&alice, &["maintenance", "stop", "m1"])?;
        ensure!(
            stopped.success() && stopped.stdout.contains("maintenance m1 stopped"),
            "{}",
            stopped.combined()
        );
        wait_mo(
            w,
            &["log", "show", "m1", "--kind", "notice"],
            "the end banner",
            |t| t.contains("maintenance m1 (m1) ended"),
        )?;
        let gone = mo(&alice, &["maintenance", "stop", "m1"])?;
        ensure!(
            !gone.success() && gone.stderr.contains("no maintenance window `m1`"),
            "{}",
            gone.combined()
        );
        Ok(())
    });
}
