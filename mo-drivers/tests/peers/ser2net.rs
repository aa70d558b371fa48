//! ser2net 4.3 in front of a socat pty pair (PEERS.md, `shared/peers/ser2net.yaml`): RFC 2217,
//! telnet and raw TCP ports on loopback. Included with `#[path]` by the test files that use it,
//! next to `mod peers` and `mod net`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{DriverOptions, connector_for};
use tokio::process::{Child, Command};

use crate::net::{free_port, wait_for_port};
use crate::peers::{Fixture, Peer, SocatPair, terminate};

/// Where Debian installs ser2net.
pub const SER2NET: &str = "/usr/sbin/ser2net";

/// The configuration of PEERS.md (`shared/peers/ser2net.yaml`), with `@DIR@` and the three
/// ports to fill in.
const CONFIG: &str = "%YAML 1.1
---
connection: &con_rfc2217
  accepter: telnet(rfc2217),tcp,127.0.0.1,@RFC2217@
  connector: serialdev,@DIR@/ttyDEV,115200n81,local
  options:
    kickolduser: true
connection: &con_telnet
  accepter: telnet,tcp,127.0.0.1,@TELNET@
  connector: serialdev,@DIR@/ttyDEV,115200n81,local
connection: &con_raw
  accepter: tcp,127.0.0.1,@RAW@
  connector: serialdev,@DIR@/ttyDEV,115200n81,local
";

/// ser2net serving the device side of a socat pty pair; the test holds the peer side.
pub struct Ser2net {
    /// The pty pair; ser2net opens `pair.dev`.
    pub pair: SocatPair,
    /// The RFC 2217 port.
    pub rfc2217_port: u16,
    /// The plain telnet port.
    pub telnet_port: u16,
    /// The raw TCP port.
    pub raw_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Ser2net {
    /// Start socat and ser2net with their files in `dir`.
    pub async fn start(dir: &Path) -> Result<Self> {
        if !Path::new(SER2NET).exists() {
            bail!("{SER2NET} is missing: apt-get install ser2net");
        }
        let pair = SocatPair::start(dir).await?;
        let (rfc2217_port, telnet_port, raw_port) = (free_port()?, free_port()?, free_port()?);
        let config = dir.join("ser2net.yaml");
        let text = CONFIG
            .replace("@DIR@", &dir.display().to_string())
            .replace("@RFC2217@", &rfc2217_port.to_string())
            .replace("@TELNET@", &telnet_port.to_string())
            .replace("@RAW@", &raw_port.to_string());
        std::fs::write(&config, text)?;
        let mut peer = Self {
            pair,
            rfc2217_port,
            telnet_port,
            raw_port,
            config,
            child: None,
        };
        peer.restart().await?;
        Ok(peer)
    }

    /// Start ser2net (again) on the same ports.
    pub async fn restart(&mut self) -> Result<()> {
        let pid_file = self.config.with_file_name("ser2net.pid");
        let child = Command::new(SER2NET)
            .arg("-n")
            .arg("-u")
            .arg("-c")
            .arg(&self.config)
            .arg("-P")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting ser2net")?;
        self.child = Some(child);
        wait_for_port(self.rfc2217_port).await?;
        wait_for_port(self.telnet_port).await
    }

    /// Stop ser2net (the pty pair stays).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child).await?;
        }
        Ok(())
    }

    /// Stop ser2net and socat.
    pub async fn stop_all(&mut self) -> Result<()> {
        self.stop().await?;
        self.pair.stop().await
    }

    /// `rfc2217://127.0.0.1:PORT` followed by `query` (`""` or `?baud=…`).
    pub fn rfc2217_address(&self, query: &str) -> String {
        format!("rfc2217://127.0.0.1:{}{query}", self.rfc2217_port)
    }
}

/// Connect to a ser2net port. ser2net serves one connection per port and now and then hangs
/// up on, or ignores, a new one (while it still closes the previous one, and sometimes just
/// after it started): a refused connect ([`mo_core::Error::Connect`]) is retried a few times,
/// as the console actor retries with its backoff.
pub async fn connect_retrying(connector: &dyn Connector) -> Result<Link> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match tokio::time::timeout(crate::peers::STEP, connector.connect()).await? {
            Ok(link) => return Ok(link),
            Err(mo_core::Error::Connect { .. }) if attempt < 8 => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The `rfc2217` driver against ser2net; the test holds the pty's peer end.
pub struct Rfc2217Fixture {
    /// ser2net and its pty pair.
    pub ser2net: Ser2net,
    connector: Arc<dyn Connector>,
    _dir: tempfile::TempDir,
}

impl Rfc2217Fixture {
    /// Start the peers and make a connector for the RFC 2217 port.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let ser2net = Ser2net::start(dir.path()).await?;
        let connector = connector_for(
            &ser2net.rfc2217_address("?baud=115200"),
            &DriverOptions::default(),
        )?;
        Ok(Self {
            ser2net,
            connector,
            _dir: dir,
        })
    }
}

#[async_trait]
impl Fixture for Rfc2217Fixture {
    fn name(&self) -> &'static str {
        "rfc2217"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    async fn accept(&mut self, _link: &mut Link) -> Result<Peer> {
        Ok(Peer::End(Box::new(self.ser2net.pair.open_peer()?)))
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.ser2net.stop().await?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        self.ser2net.restart().await
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
    fn serves_one_at_a_time(&self) -> bool {
        true
    }
}
