//! OpenSSH sshd on loopback as an SSH device (PEERS.md, `shared/peers/sshd_config`): keys made
//! with `ssh-keygen`, a local user `consoletest` (created once, with a known password, when the
//! tests run as root), and an sshd in the foreground (`-D`) whose pid the test holds. Included
//! with `#[path]` by the test files that use it, next to `mod peers` and `mod net`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::net::{free_port, wait_for_port};
use crate::peers::{Fixture, Peer, STEP, read_ready_pid};

/// Where Debian installs sshd.
pub const SSHD: &str = "/usr/sbin/sshd";
/// The local user the tests log in as (the sample config allows only this one).
pub const USER: &str = "consoletest";
/// The password the fixture gives [`USER`].
pub const PASSWORD: &str = "mo-Test-pw-4711";

/// PEERS.md's sample configuration, with the port and directory to fill in, plus room for 100
/// logins at once and no banners in the way of the tests; debug logging shows the user names
/// that arrive.
const CONFIG: &str = "Port @PORT@
ListenAddress 127.0.0.1
HostKey @DIR@/ssh_host_ed25519_key
PidFile @DIR@/sshd.pid
AuthorizedKeysFile @DIR@/authorized_keys/%u
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PermitRootLogin no
StrictModes no
AllowUsers consoletest
MaxStartups 300:30:400
MaxSessions 10
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel DEBUG1
";

/// Make `consoletest` (once per process) and set its password. Needs root.
pub fn ensure_user() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| make_user().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn make_user() -> Result<()> {
    let exists = std::process::Command::new("getent")
        .args(["passwd", USER])
        .stdout(Stdio::null())
        .status()?
        .success();
    if !exists {
        if !rustix::process::geteuid().is_root() {
            bail!("the tests need a local user `{USER}` (useradd -m {USER}) or to run as root");
        }
        let status = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", USER])
            .status()?;
        if !status.success() {
            bail!("useradd {USER} failed: {status}");
        }
    }
    if rustix::process::geteuid().is_root() {
        let mut child = std::process::Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()?;
        use std::io::Write;
        child
            .stdin
            .take()
            .context("chpasswd stdin")?
            .write_all(format!("{USER}:{PASSWORD}\n").as_bytes())?;
        let status = child.wait()?;
        if !status.success() {
            bail!("chpasswd failed: {status}");
        }
    }
    Ok(())
}

/// `ssh-keygen -t ed25519` without a passphrase: writes `path` and `path.pub`; returns the
/// private key text.
pub fn keygen(path: &Path) -> Result<String> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "mo-test", "-f"])
        .arg(path)
        .status()
        .context("running ssh-keygen (apt-get install openssh-client)")?;
    if !status.success() {
        bail!("ssh-keygen failed: {status}");
    }
    Ok(std::fs::read_to_string(path)?)
}

/// An sshd on a loopback port with its keys in a directory of the test's.
pub struct Sshd {
    /// The TCP port.
    pub port: u16,
    /// The directory with the config, keys and log.
    pub dir: PathBuf,
    /// The private key (OpenSSH text) whose public half is authorized for [`USER`].
    pub client_key: String,
    child: Option<Child>,
}

impl Sshd {
    /// Make keys and config in `dir` and start sshd.
    pub async fn start(dir: &Path) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            bail!("{SSHD} is missing: apt-get install openssh-server");
        }
        ensure_user()?;
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd (sshd needs it)")?;
        // sshd reads authorized_keys as the user: the directory must be reachable.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        keygen(&dir.join("ssh_host_ed25519_key"))?;
        let client_key = keygen(&dir.join("client_key"))?;
        let keys = dir.join("authorized_keys");
        std::fs::create_dir_all(&keys)?;
        std::fs::copy(dir.join("client_key.pub"), keys.join(USER))?;
        std::fs::set_permissions(keys.join(USER), std::fs::Permissions::from_mode(0o644))?;
        let port = free_port()?;
        let config = CONFIG
            .replace("@PORT@", &port.to_string())
            .replace("@DIR@", &dir.display().to_string());
        std::fs::write(dir.join("sshd_config"), config)?;
        let mut sshd = Self {
            port,
            dir: dir.to_owned(),
            client_key,
            child: None,
        };
        let test = std::process::Command::new(SSHD)
            .arg("-t")
            .arg("-f")
            .arg(sshd.dir.join("sshd_config"))
            .output()?;
        if !test.status.success() {
            bail!(
                "sshd -t rejected the config: {}",
                String::from_utf8_lossy(&test.stderr)
            );
        }
        sshd.restart().await?;
        Ok(sshd)
    }

    /// Start sshd (again) in the foreground on the same port.
    pub async fn restart(&mut self) -> Result<()> {
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.dir.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting sshd")?;
        self.child = Some(child);
        wait_for_port(self.port).await
    }

    /// Stop the listening sshd (sessions already open keep running, as with a real server).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::peers::terminate(&mut child).await?;
        }
        Ok(())
    }

    /// Replace the host key with a new one (takes effect at the next start).
    pub fn rekey(&self) -> Result<()> {
        keygen(&self.dir.join("ssh_host_ed25519_key"))?;
        Ok(())
    }

    /// The host's public key line (`ssh-ed25519 AAAA… comment`).
    pub fn host_key(&self) -> Result<String> {
        Ok(
            std::fs::read_to_string(self.dir.join("ssh_host_ed25519_key.pub"))?
                .trim()
                .to_owned(),
        )
    }

    /// A known_hosts file at `DIR/NAME` holding the current host key for this port.
    pub fn known_hosts(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(
            &path,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key()?),
        )?;
        Ok(path)
    }

    /// `ssh://consoletest@127.0.0.1:PORT` with `query` (without `?`) appended when not empty.
    pub fn address(&self, query: &str) -> String {
        let mut address = format!("ssh://{USER}@127.0.0.1:{}", self.port);
        if !query.is_empty() {
            address.push('?');
            address.push_str(query);
        }
        address
    }

    /// Options that log in with the client key and know the host key.
    pub fn key_options(&self) -> Result<DriverOptions> {
        Ok(DriverOptions::new()
            .with_known_hosts(self.known_hosts("known_hosts")?)
            .with_credentials(Credentials::new().with_private_key(self.client_key.clone())))
    }

    /// sshd's whole log.
    pub fn log_tail_all(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The last lines of sshd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// `cat` on a raw pty through SSH, announcing itself with `READY <pid>`.
pub const RAW_CAT_QUERY: &str = "command=stty+raw+-echo+-iexten%3B+echo+READY+%24%24%3B+exec+cat";

/// The `ssh` driver against sshd running [`RAW_CAT_QUERY`]'s command.
pub struct SshFixture {
    /// The server.
    pub sshd: Sshd,
    connector: Arc<dyn Connector>,
    pid: Option<i32>,
    _dir: tempfile::TempDir,
}

impl SshFixture {
    /// Start sshd and make a connector that logs in with the client key.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let sshd = Sshd::start(dir.path()).await?;
        let connector = connector_for(&sshd.address(RAW_CAT_QUERY), &sshd.key_options()?)?;
        Ok(Self {
            sshd,
            connector,
            pid: None,
            _dir: dir,
        })
    }
}

#[async_trait]
impl Fixture for SshFixture {
    fn name(&self) -> &'static str {
        "ssh"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, link: &mut Link) -> Result<Peer> {
        self.pid = Some(timeout(STEP, read_ready_pid(&mut link.reader)).await??);
        Ok(Peer::Echo)
    }
    async fn stop(&mut self, _peer: Peer) -> Result<bool> {
        let pid = self.pid.take().context("no session is running")?;
        let pid = rustix::process::Pid::from_raw(pid).context("pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
        self.sshd.stop().await?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        self.sshd.restart().await
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
}
