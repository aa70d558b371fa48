//! Automation clients through the SSH door (issue 18 item 3): Netmiko (`linux` device type) and
//! Scrapli (generic driver, system transport) log in as `alice:DEVICE` to a `sim` console that
//! mo has logged in with auto-login, and run `uname -a` as they would on the machine itself.
//! The scripts are in tests/e2e/fixtures/automation and run with the peers venv's python
//! (`scripts/setup.sh` installs netmiko and scrapli there).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mo_testsupport::{Error, Result, WAIT, World, ensure, run_test, venv_bin};

/// How long one client run may take (logins, prompt detection, debug-build daemon).
const CLIENT: Duration = Duration::from_secs(120);

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/automation")
        .join(name)
}

/// The peers venv's python with `module` importable, or an error naming what to install.
fn python_with(module: &str) -> Result<PathBuf> {
    let python = venv_bin("python");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Err(Error::MissingBinary {
            name: format!("python module {module}"),
            path: python,
            hint: format!("run scripts/setup.sh (pip install {module} into target/peers-venv)"),
        });
    }
    Ok(python)
}

/// A `sim` console with auto-login (`linux` profile) as `web01`, user alice; waits until mo has
/// logged in (the record log shows `auto-login: done`).
fn world_with_logged_in_sim(w: &mut World) -> Result<()> {
    w.add_device(
        "web01",
        "sim://web01?boot=fast&login=admin&password=sim-pw",
        &["--login", "linux", "--login-user", "admin"],
    )?;
    w.mo_ok(
        &["secret", "set", "web01", "password", "--stdin"],
        Some("sim-pw\n"),
    )?;
    w.add_user("alice", "alice-pw")?;
    w.start_daemon(&[])?;
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let out = w.mo_ok(&["log", "show", "web01"], None)?;
        if out.stdout.contains("auto-login: done") {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "web01 was never logged in by auto-login:\n{}",
            out.combined()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Run `python SCRIPT PORT alice:web01 alice-pw LOG` and return its stdout.
fn run_client(w: &World, module: &str, name: &str) -> Result<String> {
    let python = python_with(module)?;
    let log = w.dir().join(format!("{name}.log"));
    let mut cmd = Command::new(python);
    cmd.arg(script(name))
        .arg(w.port().to_string())
        .arg("alice:web01")
        .arg("alice-pw")
        .arg(&log)
        .env("HOME", w.dir());
    let out = mo_testsupport::run_with_timeout(cmd, None, CLIENT)?;
    let session = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        out.success(),
        "{name} failed:\n{}\n--- session log ---\n{session}",
        out.combined()
    );
    Ok(out.stdout)
}

/// The text of the output line `TAG<text>`.
fn tagged<'a>(out: &'a str, tag: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        l.strip_prefix(tag)
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.strip_suffix('>'))
    })
}

/// The client printed the sim's prompt and its `uname -a` line (and nothing else: no echo, no
/// prompt, no mo notice).
fn check_answer(out: &str, client: &str) -> Result<()> {
    let uname = tagged(out, "UNAME").unwrap_or_default();
    ensure!(
        uname.starts_with("Linux web01 ") && uname.ends_with("GNU/Linux"),
        "{client}'s answer to `uname -a` is not the sim's (and only that):\n{out}"
    );
    let prompt = tagged(out, "PROMPT").unwrap_or_default();
    ensure!(
        prompt == "web01:~$",
        "{client} found the prompt {prompt:?}:\n{out}"
    );
    Ok(())
}

/// The console's record log has the command as alice's input.
fn check_logged(w: &World) -> Result<()> {
    let out = w.mo_ok(&["log", "show", "web01"], None)?;
    ensure!(
        out.stdout
            .lines()
            .any(|l| l.contains("<alice>") && l.contains("uname -a")),
        "the record log has no `uname -a` typed by <alice>:\n{}",
        out.stdout
    );
    Ok(())
}

#[test]
fn netmiko_runs_uname_through_the_ssh_door() {
    run_test("netmiko", |w| {
        world_with_logged_in_sim(w)?;
        // Twice: the first run leaves the console logged in for the next.
        for _ in 0..2 {
            let out = run_client(w, "netmiko", "netmiko_uname.py")?;
            check_answer(&out, "netmiko")?;
        }
        check_logged(w)
    });
}

#[test]
fn scrapli_runs_uname_through_the_ssh_door() {
    run_test("scrapli", |w| {
        world_with_logged_in_sim(w)?;
        for _ in 0..2 {
            let out = run_client(w, "scrapli", "scrapli_uname.py")?;
            check_answer(&out, "scrapli")?;
        }
        check_logged(w)
    });
}
