//! A real sushy-emulator (Redfish, fake driver, plain HTTP) on a free loopback port, with basic
//! auth `admin`/`password`. The test owns the process and stops exactly it (by pid, on drop).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The peers venv built by scripts/setup.sh.
pub fn venv_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/peers-venv/bin")
        .join(name)
}

/// A running sushy-emulator.
pub struct Sushy {
    child: Child,
    /// Its TCP port.
    pub port: u16,
    /// Its directory.
    pub dir: tempfile::TempDir,
}

impl Sushy {
    /// Start it and wait until the service root answers.
    pub fn start() -> Result<Sushy> {
        Sushy::start_with(|_| String::new())
    }

    /// Start it with extra configuration lines, made from its directory (e.g. TLS settings).
    pub fn start_with(extra: impl FnOnce(&std::path::Path) -> String) -> Result<Sushy> {
        let dir = tempfile::tempdir()?;
        let extra = extra(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.path().display().to_string();
        let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers");
        let conf = std::fs::read_to_string(shared.join("sushy-emulator.conf"))
            .context("reading tests/peers/sushy-emulator.conf")?
            .replace("@DIR@", &d)
            .replace("= 8123", &format!("= {port}"))
            + &extra;
        std::fs::write(dir.path().join("sushy.conf"), conf)?;
        let hash = Command::new(venv_bin("python"))
            .args([
                "-c",
                "import bcrypt;print('admin:'+bcrypt.hashpw(b'password',bcrypt.gensalt(4)).decode())",
            ])
            .output()
            .context("hashing the sushy password")?;
        if !hash.status.success() {
            bail!("bcrypt failed: {}", String::from_utf8_lossy(&hash.stderr));
        }
        std::fs::write(dir.path().join("htpasswd"), &hash.stdout)?;
        let log = std::fs::File::create(dir.path().join("sushy.log"))?;
        let child = Command::new(venv_bin("sushy-emulator"))
            .arg("--config")
            .arg(dir.path().join("sushy.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting sushy-emulator")?;
        let mut me = Sushy { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(me);
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("sushy-emulator exited with {status}: {}", me.log());
            }
            if Instant::now() > deadline {
                bail!("sushy-emulator did not listen on {port}: {}", me.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sushy.log")).unwrap_or_default()
    }

    /// The ResetTypes POSTed to a system's `ComputerSystem.Reset` and accepted, in order, from
    /// sushy's log (tests/peers/sushy-emulator.conf turns that log line on).
    pub fn reset_types(&self, uuid: &str) -> Vec<String> {
        let prefix = format!("System \"{uuid}\" power state set to \"");
        self.log()
            .lines()
            .filter_map(|line| line.split_once(&prefix))
            .filter_map(|(_, rest)| rest.split_once('"'))
            .map(|(kind, _)| kind.to_owned())
            .collect()
    }

    /// The address of a system (`node1` starts off, `node2` on) by its UUID.
    pub fn address(&self, uuid: &str) -> String {
        format!(
            "redfish://admin@127.0.0.1:{}/Systems/{uuid}?tls=0&poll=500ms&wait=40s",
            self.port
        )
    }
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
