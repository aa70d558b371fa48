//! Network peers for the `tcp` and `telnet` drivers: a TCP listener held by the test, and
//! inetutils telnetd behind socat running a fake console script (PEERS.md). Included with
//! `#[path]` by the test files that use it, next to `mod peers`.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{DriverOptions, connector_for};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout};

use crate::peers::{Fixture, Peer, STEP, read_until};

/// Where inetutils telnetd is installed.
pub const TELNETD: &str = "/usr/sbin/telnetd";

/// The prompt the fake console prints.
pub const PROMPT: &str = "fake-console login: ";

/// A device behind telnetd: prints a login prompt, answers each line with `got: LINE`, the line
/// `size` with `size: ROWS COLS` of its terminal, and a BREAK (telnetd turns `IAC BRK` into
/// the terminal's quit character, so SIGQUIT) with `[break]` — it keeps running after one. The
/// line `rawcat` switches its terminal to raw mode, prints `RAW READY` and becomes `cat`: every
/// byte comes back as it was sent (for bulk data through telnetd and its pty).
pub const FAKE_CONSOLE: &str = r#"#!/bin/sh
broke=0
trap 'broke=1; printf "[break]\n"' INT QUIT
printf 'fake-console login: '
while :; do
  if IFS= read -r line; then
    case "$line" in
      size) printf 'size: %s\n' "$(stty size)" ;;
      rawcat) stty raw -echo -iexten; printf 'RAW READY\n'; exec cat ;;
      *) printf 'got: %s\n' "$line" ;;
    esac
    printf 'fake-console login: '
  elif [ $broke -eq 1 ]; then
    broke=0
  else
    exit 0
  fi
done
"#;

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Wait until something accepts connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + STEP;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// socat listening on a loopback port, running telnetd with [`FAKE_CONSOLE`] for each
/// connection. socat runs in its own process group, so stopping it ends the sessions too.
pub struct Telnetd {
    /// The TCP port.
    pub port: u16,
    script: PathBuf,
    child: Option<Child>,
}

impl Telnetd {
    /// Write the script into `dir` and start listening.
    pub async fn start(dir: &Path) -> Result<Self> {
        if !Path::new(TELNETD).exists() {
            bail!("{TELNETD} is missing: apt-get install inetutils-telnetd");
        }
        let script = dir.join("fake-console.sh");
        std::fs::write(&script, FAKE_CONSOLE)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        let mut peer = Self {
            port: free_port()?,
            script,
            child: None,
        };
        peer.restart().await?;
        Ok(peer)
    }

    /// Start socat (again) on the same port.
    pub async fn restart(&mut self) -> Result<()> {
        let child = Command::new("socat")
            .arg(format!(
                "TCP-LISTEN:{},bind=127.0.0.1,reuseaddr,fork",
                self.port
            ))
            .arg(format!(
                "EXEC:{TELNETD} -h -E {},nofork",
                self.script.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting socat (apt-get install socat)")?;
        self.child = Some(child);
        wait_for_port(self.port).await
    }

    /// Stop socat and every session it forked (its process group).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
            }
            if timeout(STEP, child.wait()).await.is_err() {
                child.kill().await?;
            }
        }
        Ok(())
    }
}

impl Drop for Telnetd {
    fn drop(&mut self) {
        if let Some(pid) = self
            .child
            .as_ref()
            .and_then(Child::id)
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        }
    }
}

/// The `telnet` driver against telnetd and the fake console.
pub struct TelnetFixture {
    /// The telnet server.
    pub telnetd: Telnetd,
    connector: Arc<dyn Connector>,
    _dir: tempfile::TempDir,
}

impl TelnetFixture {
    /// Start telnetd and make a connector for it.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let telnetd = Telnetd::start(dir.path()).await?;
        let connector = connector_for(
            &format!("telnet://127.0.0.1:{}", telnetd.port),
            &DriverOptions::default(),
        )?;
        Ok(Self {
            telnetd,
            connector,
            _dir: dir,
        })
    }
}

#[async_trait]
impl Fixture for TelnetFixture {
    fn name(&self) -> &'static str {
        "telnet"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, link: &mut Link) -> Result<Peer> {
        read_until(&mut link.reader, PROMPT.as_bytes()).await?;
        Ok(Peer::Dialogue {
            send: b"ping\r",
            expect: "got: ping",
        })
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.telnetd.stop().await?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        self.telnetd.restart().await
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
    /// The fake console's `rawcat`: `cat` on a raw pty behind telnetd, so any byte (IAC and
    /// CR included) must pass both ways unchanged.
    async fn bulk_peer(&mut self, link: &mut Link, _peer: Peer) -> Result<Peer> {
        use tokio::io::AsyncWriteExt;
        link.writer.write_all(b"rawcat\r").await?;
        link.writer.flush().await?;
        read_until(&mut link.reader, b"RAW READY\n").await?;
        Ok(Peer::Echo)
    }
}

/// The `tcp` driver against a listener held by the test.
pub struct TcpFixture {
    port: u16,
    listener: Option<TcpListener>,
    connector: Arc<dyn Connector>,
}

impl TcpFixture {
    /// Bind a loopback listener and make a connector for it.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connector = connector_for(
            &format!("tcp://127.0.0.1:{port}"),
            &DriverOptions::default(),
        )?;
        Ok(Self {
            port,
            listener: Some(listener),
            connector,
        })
    }
}

#[async_trait]
impl Fixture for TcpFixture {
    fn name(&self) -> &'static str {
        "tcp"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, _link: &mut Link) -> Result<Peer> {
        let listener = self.listener.as_ref().context("listener is stopped")?;
        let (stream, _) = timeout(STEP, listener.accept()).await??;
        Ok(Peer::End(Box::new(stream)))
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.listener = None;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        self.listener = Some(TcpListener::bind(("127.0.0.1", self.port)).await?);
        Ok(())
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
}
