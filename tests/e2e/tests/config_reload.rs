//! Running mod from a configuration file and reloading it (issue 21 items 2 and 3): a `--config`
//! file sets the listeners, `--check-config` prints the effective configuration or names the bad
//! key, its file and line; SIGHUP puts a changed events file in force while two users stay
//! attached, refuses a broken one (the old patterns keep working) and reports what needs a restart;
//! SIGHUP starts and stops `[[logfile]]` and `[[watch]]` entries, keeping unchanged ones where
//! they are.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{
    Error, Login, Peer, Result, Signal, World, append_line, bin_path, ensure, free_port,
    read_lossy, run_test, run_with_timeout,
};

/// Generous: the machine is shared and may be loaded.
const LONG: Duration = Duration::from_secs(60);

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Wait until `log` contains `needle` at least `count` times.
fn wait_log(log: &Path, needle: &str, count: usize) -> Result<String> {
    let deadline = Instant::now() + LONG;
    loop {
        let text = read_lossy(log);
        if text.matches(needle).count() >= count {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("{needle:?} (x{count}) in {}", log.display()),
                waited: LONG,
                context_name: "log".into(),
                context: text,
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `mod ARGS...` to completion.
fn mod_run(args: &[&str], env: &[(&str, &str)]) -> Result<mo_testsupport::CmdOutput> {
    let mut cmd = Command::new(bin_path("mod")?);
    cmd.args(args)
        .env_remove("MO_DATA_DIR")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, None, LONG)
}

#[test]
fn a_config_file_sets_the_listeners_and_check_config_tells() {
    run_test("config-file", |w| {
        let http = free_port()?;
        let config = w.dir().join("mod.toml");
        let body = format!(
            "# mod's configuration\ndata-dir = \"{}\"\nssh = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:{http}\"\nmax_ssh_channels = 4\n",
            w.data_dir().display(),
            w.port()
        );
        write(&config, &body)?;
        let config_arg = config.display().to_string();

        // --check-config: the effective configuration, each value's source, exit 0.
        let out = mod_run(&["--config", &config_arg, "--check-config"], &[])?;
        ensure!(out.success(), "check-config failed:\n{}", out.combined());
        let want = format!("ssh = \"127.0.0.1:{}\"  # file", w.port());
        ensure!(out.stdout.contains(&want), "no {want:?}:\n{}", out.stdout);
        ensure!(
            out.stdout.contains("max-ssh-channels = 4  # file")
                && out.stdout.contains("segment-mib = 64  # default"),
            "{}",
            out.stdout
        );
        // A flag wins over the file, the environment too.
        let out = mod_run(
            &[
                "--config",
                &config_arg,
                "--check-config",
                "--ssh",
                "127.0.0.1:1",
            ],
            &[("MO_DATA_DIR", "/elsewhere")],
        )?;
        ensure!(
            out.success()
                && out.stdout.contains("ssh = \"127.0.0.1:1\"  # flag")
                && out
                    .stdout
                    .contains("data-dir = \"/elsewhere\"  # env MO_DATA_DIR"),
            "{}",
            out.combined()
        );
        ensure!(
            !Path::new("/elsewhere").exists(),
            "--check-config created the data directory"
        );

        // A bad file: the key, the file and the line.
        let bad = w.dir().join("bad.toml");
        write(&bad, "ssh = \"127.0.0.1:1\"\n\nsssh = \"127.0.0.1:2\"\n")?;
        let bad_arg = bad.display().to_string();
        let out = mod_run(&["--config", &bad_arg, "--check-config"], &[])?;
        ensure!(
            !out.success()
                && out.stderr.contains(&format!("{bad_arg}:3"))
                && out.stderr.contains("unknown key `sssh`"),
            "{}",
            out.combined()
        );
        write(&bad, "segment-mib = \"lots\"\n")?;
        let out = mod_run(&["--config", &bad_arg, "--check-config"], &[])?;
        ensure!(
            !out.success()
                && out.stderr.contains(&format!("{bad_arg}:1"))
                && out.stderr.contains("segment-mib"),
            "{}",
            out.combined()
        );

        // The daemon itself, from the file alone: both listeners where it says.
        let alice = w.add_user("alice", "alice-pw")?;
        w.add_echo_device("box", &[])?;
        let log = w.dir().join("mod-config.log");
        let mut cmd = Command::new(bin_path("mod")?);
        cmd.args(["--config", &config_arg])
            .env_remove("MO_DATA_DIR")
            .env("NO_COLOR", "1");
        let mut daemon = Peer::spawn("mod", cmd, Some(&log))?;
        wait_log(
            &log,
            &format!("listening on 127.0.0.1:{} (SSH)", w.port()),
            1,
        )?;
        wait_log(&log, &format!("listening on 127.0.0.1:{http}"), 1)?;
        w.wait_listed(&alice, "box", true, LONG)?;
        let health = reqwest::blocking::get(format!("http://127.0.0.1:{http}/api/v1/health"))
            .map_err(|e| Error::Check(format!("GET /api/v1/health: {e}")))?;
        ensure!(health.status().is_success(), "health: {}", health.status());

        // SIGHUP: a bad file is refused; a changed listener needs a restart.
        write(&config, &format!("{body}bogus = 1\n"))?;
        daemon.signal(Signal::SIGHUP)?;
        wait_log(&log, "configuration not reloaded", 1)?;
        let moved = body.replace(&format!("127.0.0.1:{http}"), "127.0.0.1:1");
        write(&config, &moved)?;
        daemon.signal(Signal::SIGHUP)?;
        let text = wait_log(&log, "reload done; no session was dropped", 1)?;
        ensure!(
            text.contains("`http` changed") && text.contains("needs a restart"),
            "{text}"
        );
        ensure!(daemon.is_running(), "mod stopped:\n{}", read_lossy(&log));
        w.wait_listed(&alice, "box", true, LONG)?;
        Ok(())
    });
}

/// The events file: pattern `NAME` matches `NAME-<digits>` with the message `NAME <digits>`.
fn events_file(name: &str) -> String {
    format!(
        "[[pattern]]\nname = \"{name}\"\nregex = '{upper}-(?P<n>[0-9]+)'\nseverity = \"warning\"\nmessage = \"{name} ${{n}}\"\n",
        upper = name.to_uppercase()
    )
}

/// Poll `mo events --device box` until it mentions `needle`; the listing.
fn wait_event(w: &World, needle: &str) -> Result<String> {
    wait_device_event(w, "box", needle)
}

/// Poll `mo events --device DEVICE` until it mentions `needle`; the listing.
fn wait_device_event(w: &World, device: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + LONG;
    loop {
        let out = w.mo_ok(&["events", "--device", device], None)?;
        if out.stdout.contains(needle) {
            return Ok(out.stdout);
        }
        ensure!(
            Instant::now() < deadline,
            "no event {needle:?}:\n{}",
            out.stdout
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sighup_puts_new_patterns_in_force_and_keeps_everyone_attached() {
    run_test("reload-events", |w| {
        let events = w.dir().join("events.toml");
        write(&events, &events_file("alpha"))?;
        w.add_echo_device("box", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let bob = w.add_user("bob", "bob-pw")?;
        let events_arg = events.display().to_string();
        w.start_daemon(&["--events", &events_arg])?;
        let a = w.terminal("alice", &alice, Login::Shell, &["console", "box"])?;
        a.wait_for("attached", LONG)?;
        // Bob joins the console alice holds (read-only while she does).
        let b = w.terminal("bob", &bob, Login::Shell, &["console", "box"])?;
        b.wait_for("bob is spying", LONG)?;

        a.send_line("ALPHA-1")?;
        wait_event(w, "alpha 1")?;

        // New patterns: beta replaces alpha.
        write(&events, &events_file("beta"))?;
        w.daemon()?.signal(Signal::SIGHUP)?;
        w.daemon()?
            .wait_log(&format!("events file {events_arg} reloaded"), LONG)?;
        a.send_line("ALPHA-2")?;
        a.wait_for("got: ALPHA-2", LONG)?;
        a.send_line("BETA-2")?;
        let listing = wait_event(w, "beta 2")?;
        // The scanner reads in order: had alpha still matched, its event would be listed.
        ensure!(
            !listing.contains("alpha 2"),
            "the old pattern still matched:\n{listing}"
        );

        // Both sessions stayed: alice types, both see it, the pattern fires.
        a.send_line("BETA-3")?;
        a.wait_for("got: BETA-3", LONG)?;
        b.wait_for("got: BETA-3", LONG)?;
        wait_event(w, "beta 3")?;

        // A broken file is refused; the running patterns keep working.
        write(
            &events,
            "[[pattern]]\nname = \"broken\"\nregex = '('\nseverity = \"warning\"\n",
        )?;
        w.daemon()?.signal(Signal::SIGHUP)?;
        w.daemon()?.wait_log("events file not reloaded", LONG)?;
        let log = w.daemon()?.log_text();
        ensure!(
            log.contains("broken"),
            "the error does not name the pattern:\n{log}"
        );
        a.send_line("BETA-4")?;
        wait_event(w, "beta 4")?;
        let all = w.mo_ok(&["events"], None)?;
        ensure!(
            all.stdout.contains("reload refused"),
            "no event for the refused reload:\n{}",
            all.stdout
        );
        ensure!(
            !a.is_dead()? && !b.is_dead()?,
            "a session ended:\n{}\n{}",
            a.capture()?,
            b.capture()?
        );
        a.send_line("still-here")?;
        b.wait_for("got: still-here", LONG)?;
        Ok(())
    });
}

/// An events file: pattern `alpha` (see [`events_file`]), a `[[logfile]]` entry for each of
/// `logs` (file, device) and a `[[watch]]` entry for `watched` (device `watched`) if given.
fn sources_file(logs: &[(&Path, &str)], watched: Option<&Path>) -> String {
    let mut text = events_file("alpha");
    for (path, device) in logs {
        text.push_str(&format!(
            "[[logfile]]\npath = \"{}\"\ndevice = \"{device}\"\ninterval = \"100ms\"\n",
            path.display()
        ));
    }
    if let Some(path) = watched {
        text.push_str(&format!(
            "[[watch]]\nname = \"conf\"\npaths = [\"{}\"]\ninterval = \"200ms\"\ndevice = \"watched\"\n",
            path.display()
        ));
    }
    text
}

/// Send SIGHUP and wait until the daemon says the events file was reloaded once more. Each
/// reload is said twice, in the tracing log and on stderr (`mod: SIGHUP: …`); only the second
/// form is counted (counting both against a fixed number let the second reload's wait end on the
/// first one's lines).
fn reload(w: &mut World, events: &Path) -> Result<String> {
    let needle = format!("mod: SIGHUP: events file {} reloaded", events.display());
    let before = w.daemon()?.log_text().matches(&needle).count();
    w.daemon()?.signal(Signal::SIGHUP)?;
    let deadline = Instant::now() + LONG;
    loop {
        let log = w.daemon()?.log_text();
        if log.matches(&needle).count() > before {
            return Ok(log);
        }
        ensure!(
            Instant::now() < deadline,
            "no {needle:?} after SIGHUP:\n{log}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_starts_and_stops_log_files_and_watches() {
    run_test("reload-sources", |w| {
        let events = w.dir().join("events.toml");
        let a_log = w.dir().join("a.log");
        let b_log = w.dir().join("b.log");
        let conf = w.dir().join("app.conf");
        write(&a_log, "")?;
        write(&b_log, "")?;
        write(&conf, "first\n")?;
        write(&events, &sources_file(&[(&a_log, "loga")], None))?;
        w.add_user("alice", "alice-pw")?;
        let events_arg = events.display().to_string();
        w.start_daemon(&["--events", &events_arg])?;
        w.daemon()?.wait_log("following log file", LONG)?;
        append_line(&a_log, "ALPHA-1")?;
        wait_device_event(w, "loga", "alpha 1")?;

        // Added: a second log file and a watch; the first log file is unchanged and keeps its
        // place (nothing it read is read again).
        write(
            &events,
            &sources_file(&[(&a_log, "loga"), (&b_log, "logb")], Some(&conf)),
        )?;
        let log = reload(w, &events)?;
        ensure!(
            log.contains(
                "watches: 0 kept, 0 stopped, 1 started; log files: 1 kept, 0 stopped, 1 started"
            ),
            "the reload does not say what it started:\n{log}"
        );
        append_line(&b_log, "ALPHA-2")?;
        wait_device_event(w, "logb", "alpha 2")?;
        append_line(&a_log, "ALPHA-3")?;
        let listing = wait_device_event(w, "loga", "alpha 3")?;
        ensure!(
            listing.matches("alpha 1").count() == 1 && !listing.contains(" x2"),
            "the kept log file was read again:\n{listing}"
        );
        write(&conf, "second, longer\n")?;
        wait_device_event(w, "watched", &format!("file {}", conf.display()))?;

        // Removed: the first log file raises no more events.
        write(&events, &sources_file(&[(&b_log, "logb")], Some(&conf)))?;
        reload(w, &events)?;
        append_line(&a_log, "ALPHA-4")?;
        append_line(&b_log, "ALPHA-5")?;
        wait_device_event(w, "logb", "alpha 5")?;
        // Ten polls of the removed entry's interval.
        thread::sleep(Duration::from_secs(1));
        let listing = w.mo_ok(&["events", "--device", "loga"], None)?.stdout;
        ensure!(
            !listing.contains("alpha 4"),
            "a removed log file still raised an event:\n{listing}"
        );

        // A broken file is refused: the running log file and watch go on.
        write(
            &events,
            &format!(
                "{}[[logfile]]\npath = \"relative.log\"\n",
                sources_file(&[], None)
            ),
        )?;
        w.daemon()?.signal(Signal::SIGHUP)?;
        w.daemon()?.wait_log("events file not reloaded", LONG)?;
        let log = w.daemon()?.log_text();
        ensure!(
            log.contains("relative.log") && log.contains("must be absolute"),
            "the error does not name the entry:\n{log}"
        );
        append_line(&b_log, "ALPHA-6")?;
        wait_device_event(w, "logb", "alpha 6")?;
        let before = w.mo_ok(&["events", "--device", "watched"], None)?.stdout;
        let changes = before.matches("changed").count();
        write(&conf, "third, longer still\n")?;
        let deadline = Instant::now() + LONG;
        loop {
            let now = w.mo_ok(&["events", "--device", "watched"], None)?.stdout;
            if now.matches("changed").count() > changes {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the watch stopped after a refused reload:\n{now}"
            );
            thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    });
}
