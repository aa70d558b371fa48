//! An `ssh://` console whose device is a real OpenSSH sshd on loopback: `mod` logs in with the
//! password from the device's stored secrets and checks the host key against its known_hosts; a
//! user attaches through mod's SSH front door with the OpenSSH client (in tmux), runs a command in
//! the device's shell and sees its answer; the record log holds the input under the user's name.
//! When the device's sshd dies the viewer is told the link is down, and the console comes back by
//! itself once sshd listens again.
//!
//! The device is mo_testsupport's [`Sshd`]: the local user `consoletest` (made when the tests run
//! as root, or by `scripts/setup.sh`) with password `mo-Test-pw-4711`.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mo_testsupport::{
    Error, Login, Result, SSHD_PASSWORD, SSHD_USER, Sshd, Tmux, WAIT, World, ensure, run_test,
};

/// Reconnect backoff plus a debug-build start: generous.
const RECOVER: Duration = Duration::from_secs(60);

/// A token no earlier run left in any log.
fn token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}x{nanos:08x}", std::process::id())
}

/// Poll `mo log show NAME` until `ok` accepts its output; returns the output.
fn wait_log(w: &World, name: &str, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = w.mo_ok(&["log", "show", name], None)?;
        if ok(&out.stdout) {
            return Ok(out.stdout);
        }
        ensure!(
            Instant::now() < deadline,
            "`mo log show {name}` never showed {what}; last output:\n{}",
            out.combined()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// Wait until the attached pane shows the device's shell: its prompt (replayed when the link was
/// already up at attach time) or the link-up notice. Typing while the link is still connecting
/// would be refused ("console is down"). tmux drops the blank after `$`.
fn wait_shell(pane: &Tmux) -> Result<()> {
    pane.wait_for("attached read-write", WAIT)?;
    pane.wait_until("the device's shell prompt or link up", WAIT, |text| {
        text.contains("[mo: link up")
            || text
                .split_once("attached read-write")
                .is_some_and(|(_, t)| t.lines().any(|l| l.trim_end() == "$"))
    })?;
    Ok(())
}

/// Add device `name` for `sshd`: its password as a stored secret, its host key in mod's
/// known_hosts.
fn add_ssh_device(w: &World, name: &str, sshd: &Sshd) -> Result<()> {
    w.add_device(name, &sshd.address(""), &[])?;
    w.mo_ok(
        &["secret", "set", name, "password", "--stdin"],
        Some(&format!("{SSHD_PASSWORD}\n")),
    )?;
    let known_hosts = w.data_dir().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", sshd.port(), sshd.host_key()?),
    )
    .map_err(|e| Error::io(format!("write {}", known_hosts.display()), e))?;
    Ok(())
}

#[test]
fn user_runs_a_command_on_an_ssh_device() {
    run_test("ssh-device", |w| {
        let sshd = Sshd::start(&w.dir().join("sshd"))?;
        add_ssh_device(w, "sshdev", &sshd)?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let a = w.terminal("alice", &alice, Login::Attach("sshdev"), &[])?;
        wait_shell(&a)?;
        // The shell computes the answer: seeing it proves the line went to the device and back.
        let tag = token();
        a.send_line(&format!("echo hello-{tag}-$((6*7))"))?;
        let answer = format!("hello-{tag}-42");
        let seen = a.wait_for(&answer, WAIT)?;
        ensure!(
            !seen.contains("Permission denied"),
            "the device refused the login:\n{seen}"
        );

        // The record log: alice's input under her name, the device's answer as output.
        let typed = format!("echo hello-{tag}");
        let text = wait_log(w, "sshdev", "alice's input and the answer", |t| {
            t.contains(&answer)
                && t.lines()
                    .any(|l| l.contains("<alice>") && l.contains(&typed))
        })?;
        let input = text
            .lines()
            .filter(|l| l.contains(&typed))
            .collect::<Vec<_>>();
        ensure!(
            input.iter().any(|l| l.contains("<alice>")),
            "no input line by <alice> holding {typed:?}:\n{text}"
        );
        // mod logged in with the stored password; sshd says so.
        ensure!(
            sshd.log()
                .contains(&format!("Accepted password for {SSHD_USER}")),
            "sshd's log shows no password login:\n{}",
            sshd.log()
        );
        Ok(())
    });
}

#[test]
fn ssh_device_that_dies_comes_back() {
    run_test("ssh-device-down", |w| {
        let mut sshd = Sshd::start(&w.dir().join("sshd"))?;
        add_ssh_device(w, "sshdev", &sshd)?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let a = w.terminal("alice", &alice, Login::Attach("sshdev"), &[])?;
        wait_shell(&a)?;
        a.send_line("echo before-$((1+1))")?;
        a.wait_for("before-2", WAIT)?;

        // The link may have come up before alice attached: count the link-up notices she has.
        let ups = a.capture()?.matches("[mo: link up").count();
        sshd.kill_all()?;
        a.wait_for("[mo: link down", WAIT)?;
        // While sshd is gone the console keeps retrying; alice stays attached.
        thread::sleep(Duration::from_secs(2));
        ensure!(
            !a.is_dead()?,
            "alice's session ended with the link:\n{}",
            a.capture()?
        );

        sshd.restart()?;
        a.wait_for_count("[mo: link up", ups + 1, RECOVER)?;
        // A fresh login shell on the device answers.
        let tag = token();
        a.send_line(&format!("echo after-{tag}-$((2+3))"))?;
        a.wait_for(&format!("after-{tag}-5"), WAIT)?;
        Ok(())
    });
}
