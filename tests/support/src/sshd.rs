//! OpenSSH sshd on loopback as an SSH device (PEERS.md, `peers/sshd_config`): host and client
//! keys made with `ssh-keygen`, a local user, and an sshd in the foreground (`-D`) whose PID the
//! test holds. Readiness is read from `/proc/net/tcp` (no probe connection in sshd's log).
//!
//! Two configurations: [`SshdConfig::device`] is the device the driver and end-to-end tests log
//! in to (user [`SSHD_USER`], made once when the tests run as root, with password
//! [`SSHD_PASSWORD`] and the client key), and [`SshdConfig::key_only`] lets a given user (the one
//! running a benchmark) in by key only, with room for a thousand logins at once.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::devices::descendant_pids;
use crate::error::{Error, Result};
use crate::ports::{free_port, tcp_listening};
use crate::process::{Peer, cmdline, kill_exact, read_lossy, run_with_timeout};

/// Where Debian installs sshd.
pub const SSHD: &str = "/usr/sbin/sshd";
/// The local user the device configuration lets in (PEERS.md's sample allows only this one).
pub const SSHD_USER: &str = "consoletest";
/// The password [`ensure_user`] gives [`SSHD_USER`] (`scripts/setup.sh` sets the same).
pub const SSHD_PASSWORD: &str = "mo-Test-pw-4711";

/// What the sshd lets in and how much it logs.
#[derive(Debug, Clone)]
pub struct SshdConfig {
    user: String,
    passwords: bool,
    max_startups: &'static str,
    log_level: &'static str,
    listen: std::net::Ipv4Addr,
}

impl SshdConfig {
    /// The SSH device of the tests: [`SSHD_USER`] by password or the client key, room for 100
    /// logins at once (`MaxStartups 300:30:400`), a debug log that shows the user names and
    /// authentication methods that arrive.
    pub fn device() -> SshdConfig {
        SshdConfig {
            user: SSHD_USER.into(),
            passwords: true,
            max_startups: "300:30:400",
            log_level: "DEBUG1",
            listen: std::net::Ipv4Addr::LOCALHOST,
        }
    }

    /// `user` by the client key only (root is let in `prohibit-password`), room for a thousand
    /// logins at once, errors only in the log.
    pub fn key_only(user: &str) -> SshdConfig {
        SshdConfig {
            user: user.into(),
            passwords: false,
            max_startups: "1000:30:1000",
            log_level: "ERROR",
            listen: std::net::Ipv4Addr::LOCALHOST,
        }
    }

    /// Listen on the loopback address `host` (127.0.0.2, …: one address per simulated host)
    /// instead of 127.0.0.1.
    pub fn on(mut self, host: std::net::Ipv4Addr) -> SshdConfig {
        self.listen = host;
        self
    }

    fn render(&self, port: u16, dir: &Path) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let root = if self.user == "root" {
            "prohibit-password"
        } else {
            "no"
        };
        format!(
            "Port {port}\nListenAddress {listen}\nHostKey {d}/ssh_host_ed25519_key\n\
             PidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys/%u\n\
             PasswordAuthentication {pw}\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nUsePAM no\nPermitRootLogin {root}\nStrictModes no\n\
             AllowUsers {user}\nMaxStartups {startups}\nMaxSessions 10\nUseDNS no\n\
             PrintMotd no\nPrintLastLog no\nLogLevel {level}\n",
            d = dir.display(),
            pw = yes_no(self.passwords),
            user = self.user,
            startups = self.max_startups,
            level = self.log_level,
            listen = self.listen,
        )
    }
}

/// Make [`SSHD_USER`] if it is missing and set its password to [`SSHD_PASSWORD`] (once per
/// process). Needs root, or the user made beforehand (`scripts/setup.sh`).
pub fn ensure_user() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| make_user().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Check)
}

fn make_user() -> Result<()> {
    let exists = Command::new("getent")
        .args(["passwd", SSHD_USER])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| Error::io("run getent passwd", e))?
        .success();
    let root = nix::unistd::geteuid().is_root();
    if !exists {
        if !root {
            return Err(Error::Check(format!(
                "the tests need a local user `{SSHD_USER}` (scripts/setup.sh makes it, or \
                 useradd -m {SSHD_USER}) or to run as root"
            )));
        }
        let mut cmd = Command::new("useradd");
        cmd.args(["-m", "-s", "/bin/sh", SSHD_USER]);
        run_with_timeout(cmd, None, Duration::from_secs(30))?.ok()?;
    }
    if root {
        let cmd = Command::new("chpasswd");
        run_with_timeout(
            cmd,
            Some(format!("{SSHD_USER}:{SSHD_PASSWORD}\n").as_bytes()),
            Duration::from_secs(30),
        )?
        .ok()?;
    }
    Ok(())
}

/// `ssh-keygen -t ed25519` without a passphrase: (re)writes `path` and `path.pub`; returns the
/// private key text.
pub fn keygen(path: &Path) -> Result<String> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "mo-test", "-f"])
        .arg(path);
    run_with_timeout(cmd, None, Duration::from_secs(30))
        .map_err(|e| Error::Check(format!("{e} (apt-get install openssh-client)")))?
        .ok()?;
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))
}

/// An sshd on a loopback port with its configuration, keys and log in a directory of the test's.
/// The listener is killed by PID when dropped (sessions it forked end with their connections).
#[derive(Debug)]
pub struct Sshd {
    user: String,
    port: u16,
    dir: PathBuf,
    client_key: String,
    peer: Option<Peer>,
}

impl Sshd {
    /// [`Sshd::start_with`] the device configuration ([`SshdConfig::device`]).
    pub fn start(dir: &Path) -> Result<Sshd> {
        Self::start_with(dir, SshdConfig::device())
    }

    /// Make keys and the configuration in `dir` (created; made world-readable, since sshd reads
    /// `authorized_keys` as the user logging in), check it with `sshd -t` and start sshd.
    pub fn start_with(dir: &Path, config: SshdConfig) -> Result<Sshd> {
        if !Path::new(SSHD).exists() {
            return Err(Error::MissingBinary {
                name: "sshd".into(),
                path: SSHD.into(),
                hint: "install it with apt-get install openssh-server".into(),
            });
        }
        if config.user == SSHD_USER {
            ensure_user()?;
        }
        std::fs::create_dir_all("/run/sshd")
            .map_err(|e| Error::io("create /run/sshd (sshd needs it)", e))?;
        let io = |what: &str| {
            let what = format!("{what} in {}", dir.display());
            move |e| Error::io(what, e)
        };
        std::fs::create_dir_all(dir).map_err(io("create the sshd dir"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod the sshd dir"))?;
        keygen(&dir.join("ssh_host_ed25519_key"))?;
        let client_key = keygen(&dir.join("client_key"))?;
        let keys = dir.join("authorized_keys");
        std::fs::create_dir_all(&keys).map_err(io("create authorized_keys"))?;
        std::fs::copy(dir.join("client_key.pub"), keys.join(&config.user))
            .map_err(io("copy the client key"))?;
        std::fs::set_permissions(
            keys.join(&config.user),
            std::fs::Permissions::from_mode(0o644),
        )
        .map_err(io("chmod the authorized key"))?;
        let port = free_port()?;
        std::fs::write(dir.join("sshd_config"), config.render(port, dir))
            .map_err(io("write sshd_config"))?;
        let mut check = Command::new(SSHD);
        check.arg("-t").arg("-f").arg(dir.join("sshd_config"));
        run_with_timeout(check, None, Duration::from_secs(30))?.ok()?;
        let mut sshd = Sshd {
            user: config.user.clone(),
            port,
            dir: dir.to_owned(),
            client_key,
            peer: None,
        };
        sshd.restart()?;
        Ok(sshd)
    }

    /// Start the listener (again, after [`Sshd::stop`] or [`Sshd::kill_all`]) on the same port
    /// and wait until it listens.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut old) = self.peer.take() {
            old.kill()?;
        }
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut peer = Peer::spawn("sshd", cmd, None)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !tcp_listening(self.port) {
            if let Some(status) = peer.exit_status()? {
                return Err(Error::PeerStart {
                    name: "sshd".into(),
                    reason: format!("exited with {status} before listening on {}", self.port),
                    log: self.log(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "sshd".into(),
                    reason: format!("not listening on 127.0.0.1:{} after 20 s", self.port),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.peer = Some(peer);
        Ok(())
    }

    /// Stop the listener politely (SIGTERM by PID); sessions already open keep running, as with
    /// a real server.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut peer) = self.peer.take() {
            peer.terminate(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Kill the listener and every session process it forked (a crashed device): the sessions'
    /// TCP connections close.
    pub fn kill_all(&mut self) -> Result<()> {
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

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory with the configuration, keys and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The private key (OpenSSH text) whose public half is authorized for the user.
    pub fn client_key(&self) -> &str {
        &self.client_key
    }

    /// Replace the host key with a new one (takes effect at the next start).
    pub fn rekey(&self) -> Result<()> {
        keygen(&self.dir.join("ssh_host_ed25519_key")).map(|_| ())
    }

    /// The host's public key line (`ssh-ed25519 AAAA… comment`).
    pub fn host_key(&self) -> Result<String> {
        let path = self.dir.join("ssh_host_ed25519_key.pub");
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .map_err(|e| Error::io(format!("read {}", path.display()), e))
    }

    /// A known_hosts file at `DIR/NAME` holding the current host key for this port.
    pub fn known_hosts(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        writeln!(file, "[127.0.0.1]:{} {}", self.port, self.host_key()?)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        Ok(path)
    }

    /// The user it lets in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `ssh://USER@127.0.0.1:PORT` with `query` (without `?`) appended when not empty.
    pub fn address(&self, query: &str) -> String {
        let mut address = format!("ssh://{}@127.0.0.1:{}", self.user, self.port);
        if !query.is_empty() {
            address.push('?');
            address.push_str(query);
        }
        address
    }

    /// The log file (`sshd -E`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// sshd's whole log.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    /// The last 20 lines of sshd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut peer) = self.peer.take() {
            let _ = peer.kill();
        }
    }
}
