//! The log tools admins use every day, on a log the daemon wrote across several segments:
//! `mo log search` with context, `mo log note`/`notes`, `mo log show --around`, and
//! `mo log export --asciicast` played by the real `asciinema cat`.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{WAIT, ensure, has_rfc3339_timestamp, run_test, workspace_root};

/// 40,002 lines (about 2.3 MB, so three 1 MiB segments), a panic line after every 10,000th.
const PANICKY_CONSOLE: &str = r#"#!/bin/sh
awk 'BEGIN { for (i = 1; i <= 40002; i++) {
    printf "console output line %06d padding padding padding\r\n", i
    if (i % 10000 == 0) printf "Kernel panic - not syncing: %d\r\n", i
} }'
exec sleep 600
"#;

#[test]
fn search_notes_around_and_asciicast_export() {
    run_test("log-tools", |w| {
        let script = w.write_script("console-px.sh", PANICKY_CONSOLE)?;
        w.add_device("px", &format!("exec://{}", script.display()), &[])?;
        w.start_daemon(&["--segment-mib", "1"])?;

        // Wait until the whole output is logged.
        let deadline = Instant::now() + WAIT * 2;
        loop {
            let out = w.mo(&["log", "search", "px", "not syncing: 40000$"], None)?;
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
        // The daemon owns the log while it runs; stop it before writing a note.
        w.daemon()?.stop()?;

        let segments = std::fs::read_dir(w.data_dir().join("logs/px"))
            .map_err(|e| mo_testsupport::Error::io("list log segments", e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".mlog"))
            .count();
        ensure!(
            segments >= 2,
            "expected a rotated log, found {segments} segment(s)"
        );

        let out = w.mo_ok(&["log", "search", "px", "^Kernel panic", "-C", "2"], None)?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        ensure!(
            lines.len() == 4 * 5 + 3,
            "expected 4 groups of 5 lines and 3 separators:\n{}",
            out.stdout
        );
        ensure!(
            lines.iter().filter(|l| **l == "--").count() == 3,
            "groups are not separated by `--`:\n{}",
            out.stdout
        );
        ensure!(
            lines.iter().all(|l| *l == "--" || has_rfc3339_timestamp(l)),
            "a result line has no timestamp:\n{}",
            out.stdout
        );
        let group: Vec<&str> = lines.iter().skip(6).take(5).copied().collect();
        let want = ["019999", "020000", "not syncing: 20000", "020001", "020002"];
        ensure!(
            group.iter().zip(want).all(|(l, w)| l.contains(w)),
            "the second group is not the context of the 20000 panic: {group:?}"
        );
        let out = w.mo(
            &[
                "log",
                "search",
                "px",
                "-i",
                "KERNEL PANIC",
                "--until",
                "2000-01-01",
            ],
            None,
        )?;
        ensure!(
            out.status.code() == Some(1) && out.stdout.is_empty(),
            "a search with no match must print nothing and exit 1:\n{}",
            out.combined()
        );

        let out = w.mo_ok(
            &["log", "note", "px", "checked the panics", "--user", "carol"],
            None,
        )?;
        ensure!(
            out.stdout.contains("note "),
            "no seq reported:\n{}",
            out.stdout
        );
        let notes = w.mo_ok(&["log", "notes", "px", "--json"], None)?;
        let seq = notes
            .stdout
            .split("\"seq\":")
            .nth(1)
            .and_then(|s| s.trim().split(',').next())
            .map(str::to_owned)
            .unwrap_or_default();
        ensure!(
            notes.stdout.contains("\"user\": \"carol\"")
                && notes.stdout.contains("checked the panics")
                && !seq.is_empty(),
            "the note is not listed:\n{}",
            notes.stdout
        );
        let around = w.mo_ok(
            &["log", "show", "px", "--around", &seq, "--context", "4"],
            None,
        )?;
        ensure!(
            around.stdout.contains("[note carol] checked the panics")
                && around.stdout.contains("line 040002"),
            "`--around {seq}` does not show the note in its context:\n{}",
            around.stdout
        );

        let cast = w.dir().join("px.cast");
        let cast_arg = cast.display().to_string();
        w.mo_ok(
            &["log", "export", "px", "--asciicast", "-o", &cast_arg],
            None,
        )?;
        let asciinema = workspace_root().join("target/peers-venv/bin/asciinema");
        ensure!(
            asciinema.exists(),
            "{} is missing (run scripts/setup.sh)",
            asciinema.display()
        );
        let played = Command::new(&asciinema)
            .arg("cat")
            .arg(&cast)
            .output()
            .map_err(|e| mo_testsupport::Error::io("run asciinema cat", e))?;
        let text = String::from_utf8_lossy(&played.stdout);
        ensure!(
            played.status.success() && text.contains("Kernel panic - not syncing: 40000"),
            "asciinema cat did not play the export ({}):\n{}",
            played.status,
            String::from_utf8_lossy(&played.stderr)
        );
        let head = std::fs::read_to_string(&cast)
            .map_err(|e| mo_testsupport::Error::io("read the export", e))?;
        ensure!(
            head.contains("\"m\", \"note carol: checked the panics\""),
            "the note is not a marker in the export"
        );
        Ok(())
    });
}
