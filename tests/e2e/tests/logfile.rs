//! System log files (issue 23 item 5): a `[[logfile]]` entry is scanned with the events file's
//! patterns by the real `mod`; the file is rotated twice by the real `logrotate` (Debian package)
//! while lines keep coming, and every matching line becomes exactly one event under the
//! configured device name — none lost, none repeated. A restarted daemon resumes at its saved
//! offset.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Error, Result, World, append_line, ensure, run_test};

const LOGROTATE: &str = "/usr/sbin/logrotate";

/// `logrotate -f -s STATE CONF`: rotate now.
fn rotate(dir: &Path) -> Result<()> {
    let out = Command::new(LOGROTATE)
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(dir.join("logrotate.conf"))
        .output()
        .map_err(|e| Error::io(format!("run {LOGROTATE} (install logrotate)"), e))?;
    ensure!(
        out.status.success(),
        "logrotate failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// How many events of device `logs` carry each `JOBFAIL N` number.
fn seen(w: &World) -> Result<BTreeMap<u32, usize>> {
    let out = w.mo_ok(&["events", "--device", "logs", "--limit", "1000"], None)?;
    let mut counts = BTreeMap::new();
    for line in out.stdout.lines() {
        if let Some(n) = line
            .split("JOBFAIL ")
            .nth(1)
            .and_then(|rest| rest.trim().parse::<u32>().ok())
        {
            ensure!(
                line.contains(" logs error pattern "),
                "unexpected event line: {line}"
            );
            ensure!(!line.contains(" x"), "a line was counted twice: {line}");
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Wait until events 1..=last are all stored; then every one must be there exactly once.
fn wait_all(w: &World, last: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = seen(w)?;
        if (1..=last).all(|n| counts.contains_key(&n)) {
            let wrong: Vec<_> = counts
                .iter()
                .filter(|(n, c)| **c != 1 || **n > last)
                .collect();
            ensure!(
                wrong.is_empty(),
                "lines raised more than once or never written: {wrong:?}"
            );
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "events 1..={last} never all arrived; seen {:?}\n{}",
            counts.keys().collect::<Vec<_>>(),
            w.diagnostics()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Wait until the follower saved its offsets once (it has looked at the file).
fn wait_followed(w: &World) -> Result<()> {
    let dir = w.data_dir().join("logfiles");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let saved = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().ends_with(".offsets"))
            })
            .unwrap_or(false);
        if saved {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the daemon never saved offsets in {}:\n{}",
            dir.display(),
            w.diagnostics()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until the saved offset of `app` is its length (everything read was also saved).
fn wait_saved(w: &World, app: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(app).map_err(|e| Error::io("stat app.log", e))?;
    let want = format!("{} {} {}", meta.dev(), meta.ino(), meta.len());
    let dir = w.data_dir().join("logfiles");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let saved = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".offsets"))
                    .any(|e| {
                        std::fs::read_to_string(e.path())
                            .unwrap_or_default()
                            .lines()
                            .any(|l| l == want)
                    })
            })
            .unwrap_or(false);
        if saved {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the daemon never saved the offset {want:?} in {}",
            dir.display()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_rotated_log_file_is_scanned_without_loss_or_duplicates() {
    run_test("logfile", |w| {
        ensure!(
            Path::new(LOGROTATE).exists(),
            "{LOGROTATE} is missing: install the Debian package logrotate (scripts/setup.sh)"
        );
        let logs = w.dir().join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| Error::io("create logs dir", e))?;
        let app = logs.join("app.log");
        std::fs::write(&app, "JOBFAIL 0 (before the daemon: not scanned)\n")
            .map_err(|e| Error::io("create app.log", e))?;
        std::fs::write(
            w.dir().join("logrotate.conf"),
            format!(
                "{} {{\n    rotate 5\n    create\n    missingok\n    nocompress\n}}\n",
                app.display()
            ),
        )
        .map_err(|e| Error::io("write logrotate.conf", e))?;
        let config = w.dir().join("events.toml");
        std::fs::write(
            &config,
            format!(
                r#"[[pattern]]
name = "job"
regex = 'JOBFAIL \d+'
severity = "error"

[rules]
dedup_window = "0s"

[[logfile]]
path = "{}"
device = "logs"
interval = "100ms"
"#,
                app.display()
            ),
        )
        .map_err(|e| Error::io("write events.toml", e))?;
        let config_arg = config.display().to_string();
        w.start_daemon(&["--events", &config_arg])?;
        wait_followed(w)?;

        for n in 1..=10 {
            append_line(&app, &format!("app: JOBFAIL {n}"))?;
        }
        rotate(w.dir())?;
        for n in 11..=20 {
            append_line(&app, &format!("app: ok {n}"))?;
            append_line(&app, &format!("app: JOBFAIL {n}"))?;
        }
        rotate(w.dir())?;
        ensure!(
            logs.join("app.log.2").exists() && logs.join("app.log.1").exists(),
            "logrotate did not rotate twice"
        );
        for n in 21..=30 {
            append_line(&app, &format!("app: JOBFAIL {n}"))?;
        }
        wait_all(w, 30)?;
        wait_saved(w, &app)?;

        // Stopped and started again: lines written meanwhile are read once, from the saved
        // offset (the start is not "end" for a file already known).
        w.daemon()?.stop()?;
        for n in 31..=35 {
            append_line(&app, &format!("app: JOBFAIL {n}"))?;
        }
        w.start_daemon(&["--events", &config_arg])?;
        wait_all(w, 35)?;
        Ok(())
    });
}
