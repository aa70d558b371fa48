//! An `ssh://` console whose device is a real OpenSSH sshd on loopback: `mod` logs in with the
//! password from the device's stored secrets and checks the host key against its known_hosts; a
//! user attaches through mod's SSH front door with the OpenSSH client (in tmux), runs a command in
//! the device's shell and sees its answer; the record log holds the input under the user's name.
//! When the device's sshd dies the viewer is told the link is down, and the console comes back by
//! itself once sshd listens again.
//!
//! Needs the local user `consoletest` with password `mo-Test-pw-4711` (`scripts/setup.sh`).

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mo_testsupport::{
    Error, Login, Peer, Result, Tmux, WAIT, World, cmdline, descendant_pids, ensure, free_port,
    kill_exact, run_test,
};

/// Where Debian installs sshd.
const SSHD: &str = "/usr/sbin/sshd";
/// The device's local user and its password (made by `scripts/setup.sh`).
const DEVICE_USER: &str = "consoletest";
const DEVICE_PASSWORD: &str = "mo-Test-pw-4711";
/// Reconnect backoff plus a debug-build start: generous.
const RECOVER: Duration = Duration::from_secs(60);

/// An OpenSSH sshd in the foreground (`-D`) on a free loopback port, password logins for
/// [`DEVICE_USER`] only.
struct DeviceSshd {
    dir: PathBuf,
    port: u16,
    peer: Option<Peer>,
}

impl DeviceSshd {
    fn start(world_dir: &Path) -> Result<DeviceSshd> {
        ensure!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server"
        );
        let user = Command::new("getent")
            .args(["passwd", DEVICE_USER])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Error::io("run getent", e))?;
        ensure!(
            user.success(),
            "the local user {DEVICE_USER} is missing: run scripts/setup.sh"
        );
        std::fs::create_dir_all("/run/sshd").map_err(|e| Error::io("create /run/sshd", e))?;
        let dir = world_dir.join("sshd");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the sshd dir", e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("chmod the sshd dir", e))?;
        let key = dir.join("ssh_host_ed25519_key");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "mo-e2e-device", "-f"])
            .arg(&key)
            .output()
            .map_err(|e| Error::io("run ssh-keygen", e))?;
        ensure!(
            keygen.status.success(),
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&keygen.stderr)
        );
        let port = free_port()?;
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {d}/sshd.pid\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication no\nUsePAM no\nPermitRootLogin no\nStrictModes no\n\
             AllowUsers {DEVICE_USER}\nUseDNS no\nPrintMotd no\nPrintLastLog no\n\
             LogLevel VERBOSE\n",
            key = key.display(),
            d = dir.display(),
        );
        std::fs::write(dir.join("sshd_config"), config)
            .map_err(|e| Error::io("write sshd_config", e))?;
        let check = Command::new(SSHD)
            .arg("-t")
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .output()
            .map_err(|e| Error::io("run sshd -t", e))?;
        ensure!(
            check.status.success(),
            "sshd -t rejected the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut sshd = DeviceSshd {
            dir,
            port,
            peer: None,
        };
        sshd.listen()?;
        Ok(sshd)
    }

    /// Start the listener (again) and wait until it accepts connections.
    fn listen(&mut self) -> Result<()> {
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.peer = Some(Peer::spawn("device sshd", cmd, None)?);
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            ensure!(
                Instant::now() < deadline,
                "sshd did not listen on 127.0.0.1:{} within {WAIT:?}; its log:\n{}",
                self.port,
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kill the listener and every session process it forked (a crashed device): the sessions'
    /// TCP connections close.
    fn kill(&mut self) -> Result<()> {
        let Some(mut peer) = self.peer.take() else {
            return Ok(());
        };
        let sessions: Vec<u32> = descendant_pids(peer.pid())
            .into_iter()
            .filter(|&p| cmdline(p).starts_with("sshd"))
            .collect();
        for pid in sessions {
            // A session may end on its own meanwhile; that is fine.
            if !cmdline(pid).is_empty() {
                let _ = kill_exact(pid, "sshd");
            }
        }
        peer.kill()?;
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn host_key(&self) -> Result<String> {
        let path = self.dir.join("ssh_host_ed25519_key.pub");
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::io(format!("read {}", path.display()), e))
    }

    fn address(&self) -> String {
        format!("ssh://{DEVICE_USER}@127.0.0.1:{}", self.port)
    }
}

impl Drop for DeviceSshd {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

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
fn add_ssh_device(w: &World, name: &str, sshd: &DeviceSshd) -> Result<()> {
    w.add_device(name, &sshd.address(), &[])?;
    w.mo_ok(
        &["secret", "set", name, "password", "--stdin"],
        Some(&format!("{DEVICE_PASSWORD}\n")),
    )?;
    let known_hosts = w.data_dir().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key()?),
    )
    .map_err(|e| Error::io(format!("write {}", known_hosts.display()), e))?;
    Ok(())
}

#[test]
fn user_runs_a_command_on_an_ssh_device() {
    run_test("ssh-device", |w| {
        let sshd = DeviceSshd::start(w.dir())?;
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
                .contains(&format!("Accepted password for {DEVICE_USER}")),
            "sshd's log shows no password login:\n{}",
            sshd.log()
        );
        Ok(())
    });
}

#[test]
fn ssh_device_that_dies_comes_back() {
    run_test("ssh-device-down", |w| {
        let mut sshd = DeviceSshd::start(w.dir())?;
        add_ssh_device(w, "sshdev", &sshd)?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let a = w.terminal("alice", &alice, Login::Attach("sshdev"), &[])?;
        wait_shell(&a)?;
        a.send_line("echo before-$((1+1))")?;
        a.wait_for("before-2", WAIT)?;

        // The link may have come up before alice attached: count the link-up notices she has.
        let ups = a.capture()?.matches("[mo: link up").count();
        sshd.kill()?;
        a.wait_for("[mo: link down", WAIT)?;
        // While sshd is gone the console keeps retrying; alice stays attached.
        thread::sleep(Duration::from_secs(2));
        ensure!(
            !a.is_dead()?,
            "alice's session ended with the link:\n{}",
            a.capture()?
        );

        sshd.listen()?;
        a.wait_for_count("[mo: link up", ups + 1, RECOVER)?;
        // A fresh login shell on the device answers.
        let tag = token();
        a.send_line(&format!("echo after-{tag}-$((2+3))"))?;
        a.wait_for(&format!("after-{tag}-5"), WAIT)?;
        Ok(())
    });
}
