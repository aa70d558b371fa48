//! The log tools in the SSH shell (issue 6 item 5, "same in the SSH shell"), with the real
//! OpenSSH client against a running daemon: `log search` with context across a segment rotation,
//! `log show --tail`, `log note` written through the running console and listed by `log notes`,
//! `log show --around` on it (the daemon compresses closed segments, so reading crosses
//! compressed and plain segments); a viewer may read but not write notes, a user without a grant may
//! do neither, and bad usage is refused with a clear message.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Login, WAIT, ensure, has_rfc3339_timestamp, run_test, shell_quote};

/// 20,002 lines (about 1.2 MB, so two 1 MiB segments), a panic line after every 5,000th.
const PANICKY_CONSOLE: &str = r#"#!/bin/sh
awk 'BEGIN { for (i = 1; i <= 20002; i++) {
    printf "console output line %06d padding padding padding\r\n", i
    if (i % 5000 == 0) printf "Kernel panic - not syncing: %d\r\n", i
} }'
exec sleep 600
"#;

/// Lines of `ssh` output without the CR of CR LF.
fn lines(text: &str) -> Vec<&str> {
    text.lines().map(|l| l.trim_end_matches('\r')).collect()
}

#[test]
fn log_show_search_and_notes_over_ssh() {
    run_test("log-shell", |w| {
        let script = w.write_script("console-px.sh", PANICKY_CONSOLE)?;
        w.add_device("px", &format!("exec://{}", script.display()), &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let vera = w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let nemo = w.add_user_with_role("nemo", "nemo-pw", None)?;
        w.start_daemon(&["--segment-mib", "1", "--compress-segments"])?;

        // Wait until the whole output is logged (the regex arrives quoted, as one word).
        let last = shell_quote("not syncing: 20000$");
        let deadline = Instant::now() + WAIT * 2;
        loop {
            let out = alice.run(Login::Shell, &["log", "search", "px", &last], None)?;
            if out.success() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the last panic line never reached the log:\n{}",
                out.combined()
            );
            thread::sleep(Duration::from_millis(250));
        }
        // The closed segment is compressed in the background: wait for `.mlog.zst`.
        let deadline = Instant::now() + WAIT;
        loop {
            let names: Vec<String> = std::fs::read_dir(w.data_dir().join("logs/px"))
                .map_err(|e| mo_testsupport::Error::io("list log segments", e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            let packed = names.iter().filter(|n| n.ends_with(".mlog.zst")).count();
            let plain = names.iter().filter(|n| n.ends_with(".mlog")).count();
            if packed >= 1 && plain == 1 {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "expected a rotated log with its closed segment compressed: {names:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }

        // Search with context, by a viewer (log.read is enough).
        let pattern = shell_quote("^Kernel panic - not");
        let out = vera
            .run(
                Login::Shell,
                &["log", "search", "px", &pattern, "-B", "1", "-A", "2"],
                None,
            )?
            .ok()?;
        let got = lines(&out.stdout);
        ensure!(
            got.len() == 4 * 4 + 3,
            "expected 4 groups of 4 lines and 3 separators:\n{}",
            out.stdout
        );
        ensure!(
            got.iter().all(|l| *l == "--" || has_rfc3339_timestamp(l)),
            "a result line has no timestamp:\n{}",
            out.stdout
        );
        let group: Vec<&str> = got.iter().skip(5).take(4).copied().collect();
        let want = ["010000", "not syncing: 10000", "010001", "010002"];
        ensure!(
            group.iter().zip(want).all(|(l, w)| l.contains(w)),
            "the second group is not the context of the 10000 panic: {group:?}"
        );
        let none = vera.run(
            Login::Shell,
            &["log", "search", "px", "-i", "'no such text'"],
            None,
        )?;
        ensure!(
            none.status.code() == Some(1) && none.stdout.is_empty(),
            "a search without a match must print nothing and exit 1:\n{}",
            none.combined()
        );

        // show --tail N: the last N lines, each with a timestamp.
        let out = vera
            .run(Login::Shell, &["log", "show", "px", "--tail", "3"], None)?
            .ok()?;
        let got = lines(&out.stdout);
        ensure!(
            got.len() == 3
                && got.iter().all(|l| has_rfc3339_timestamp(l))
                && got.iter().any(|l| l.contains("console output line 020002")),
            "show --tail 3:\n{}",
            out.stdout
        );
        let out = vera
            .run(
                Login::Shell,
                &["log", "show", "px", "--until", "2000-01-01"],
                None,
            )?
            .ok()?;
        ensure!(
            out.stdout.trim().is_empty(),
            "nothing was logged before 2000:\n{}",
            out.stdout
        );

        // A note by the admin goes through the running console; notes lists it with its seq.
        let out = alice
            .run(
                Login::Shell,
                &["log", "note", "px", "checked", "the", "'panics -- all 4'"],
                None,
            )?
            .ok()?;
        let seq: String = out
            .stdout
            .trim()
            .strip_prefix("note ")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        ensure!(
            seq.parse::<u64>().is_ok(),
            "no sequence number reported:\n{}",
            out.combined()
        );
        let notes = vera
            .run(Login::Shell, &["log", "notes", "px"], None)?
            .ok()?;
        let listed = lines(&notes.stdout);
        ensure!(
            listed.len() == 2
                && listed[1].starts_with(&seq)
                && listed[1].contains("alice")
                && listed[1].ends_with("checked the panics -- all 4"),
            "the note is not listed:\n{}",
            notes.stdout
        );
        let around = vera
            .run(
                Login::Shell,
                &["log", "show", "px", "--around", &seq, "-C", "2"],
                None,
            )?
            .ok()?;
        ensure!(
            around
                .stdout
                .contains("[note alice] checked the panics -- all 4")
                && around.stdout.contains("line 020002"),
            "`--around {seq}` does not show the note in its context:\n{}",
            around.stdout
        );

        // A viewer may not write notes; a user without grants may not read.
        let denied = vera.run(Login::Shell, &["log", "note", "px", "hi"], None)?;
        ensure!(
            denied.status.code() == Some(1) && denied.stdout.contains("denied"),
            "a viewer wrote a note:\n{}",
            denied.combined()
        );
        // To a user who may not even list px it is an unknown device (issue 13 item 2).
        let denied = nemo.run(Login::Shell, &["log", "show", "px", "--tail", "1"], None)?;
        ensure!(
            denied.status.code() == Some(1)
                && denied.stdout.contains("unknown device `px`")
                && !denied.stdout.contains("line 0"),
            "a user without grants read the log:\n{}",
            denied.combined()
        );
        let notes = vera
            .run(Login::Shell, &["log", "notes", "px"], None)?
            .ok()?;
        ensure!(
            !notes.stdout.contains(" hi"),
            "the refused note was written:\n{}",
            notes.stdout
        );

        // Bad usage: exit 2 and a message naming the problem.
        for (args, says) in [
            (&["log", "show", "px", "--tail", "many"][..], "not a count"),
            (
                &["log", "search", "px", "'(unclosed'"][..],
                "search pattern",
            ),
            (&["log", "frob", "px"][..], "unknown log subcommand"),
            (
                &["log", "show", "px", "--since", "yesterday-ish"][..],
                "--since",
            ),
        ] {
            let out = alice.run(Login::Shell, args, None)?;
            ensure!(
                !out.success() && out.stdout.contains(says),
                "`{}` should fail saying {says:?}:\n{}",
                args.join(" "),
                out.combined()
            );
        }
        let out = alice.run(Login::Shell, &["log", "show", "ghost"], None)?;
        ensure!(
            out.status.code() == Some(1) && out.stdout.contains("no record log for device `ghost`"),
            "{}",
            out.combined()
        );
        Ok(())
    });
}
