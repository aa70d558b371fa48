//! The file-change monitor (issue 6 item 6) in the running daemon: a `[[watch]]` entry of the
//! events file watches a temp file; changing its contents (same size), its size, its mtime, and
//! deleting it each raise an event with source `file`, listed by `mo events` (the store) and by
//! `events` in the SSH shell. A bad `[[watch]]` entry stops the daemon at start with a clear error.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Login, WAIT, ensure, run_test};

#[test]
fn watched_file_changes_become_events() {
    run_test("file-watch", |w| {
        let file = w.dir().join("watched.conf");
        let write = |text: &str| {
            std::fs::write(&file, text).map_err(|e| mo_testsupport::Error::io("write file", e))
        };
        write("port = 22\n")?;
        let config = w.dir().join("events.toml");
        std::fs::write(
            &config,
            format!(
                "[[watch]]\nname = \"conf\"\npaths = [\"{}\"]\ninterval = \"200ms\"\n\
                 severity = \"error\"\ndevice = \"host1\"\n",
                file.display()
            ),
        )
        .map_err(|e| mo_testsupport::Error::io("write events.toml", e))?;
        let alice = w.add_user("alice", "alice-pw")?;
        let config_arg = config.display().to_string();
        w.start_daemon(&["--events", &config_arg])?;
        // The baseline is taken once the daemon says it watches the file.
        w.daemon()?
            .wait_log("watching 1 file(s) (1 present)", WAIT)?;

        // Wait until `mo events` lists a file event containing `needle`; returns the listing.
        let wait_event = |needle: &str| -> mo_testsupport::Result<String> {
            let deadline = Instant::now() + WAIT;
            loop {
                let out = w.mo_ok(&["events", "--device", "host1"], None)?;
                if out
                    .stdout
                    .lines()
                    .any(|l| l.contains(" file ") && l.contains(needle))
                {
                    return Ok(out.stdout);
                }
                ensure!(
                    Instant::now() < deadline,
                    "no file event with {needle:?}:\n{}",
                    out.combined()
                );
                thread::sleep(Duration::from_millis(100));
            }
        };

        // Same size, other contents.
        write("port = 23\n")?;
        let listing = wait_event("checksum changed")?;
        ensure!(
            listing.contains(" error ") && listing.contains(&file.display().to_string()),
            "the event lacks its severity or path:\n{listing}"
        );
        // Bigger.
        write("port = 2222\n")?;
        wait_event("size changed: 10 -> 12")?;
        // Only the modification time.
        let touched = Command::new("touch")
            .args(["-m", "-d", "2001-02-03 04:05:06 UTC"])
            .arg(&file)
            .status()
            .map_err(|e| mo_testsupport::Error::io("run touch", e))?;
        ensure!(touched.success(), "touch failed: {touched}");
        wait_event("2001-02-03T04:05:06")?;
        // Gone.
        std::fs::remove_file(&file).map_err(|e| mo_testsupport::Error::io("remove file", e))?;
        wait_event("disappeared")?;
        // The SSH shell shows them too.
        let shell = alice
            .run(Login::Shell, &["events", "host1", "50"], None)?
            .ok()?;
        for needle in [
            "checksum changed",
            "size changed",
            "mtime changed",
            "disappeared",
        ] {
            ensure!(
                shell.stdout.contains(needle),
                "`events host1` lacks {needle:?}:\n{}",
                shell.stdout
            );
        }
        // Back again.
        write("port = 22\n")?;
        wait_event("appeared")?;
        w.daemon()?.stop()?;

        // A relative path is refused at start, naming the file, the entry and the path.
        std::fs::write(
            &config,
            "[[watch]]\nname = \"bad\"\npaths = [\"etc/passwd\"]\n",
        )
        .map_err(|e| mo_testsupport::Error::io("write events.toml", e))?;
        let err = w.start_daemon(&["--events", &config_arg]).err();
        ensure!(
            err.is_some(),
            "the daemon started with a relative watch path"
        );
        let text = format!("{err:?}");
        ensure!(
            text.contains("`bad`") && text.contains("etc/passwd") && text.contains("not absolute"),
            "unclear error: {text}"
        );
        Ok(())
    });
}
