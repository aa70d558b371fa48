//! Network fixtures for the `tcp` and `telnet` drivers: a TCP listener held by the test, and
//! mo_testsupport's [`Telnetd`] (inetutils telnetd behind socat running a fake console script,
//! PEERS.md). Included with `#[path]` by the test files that use it, next to `mod peers`.

#![allow(dead_code)]

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{DriverOptions, connector_for};
use tokio::net::TcpListener;
use tokio::time::timeout;

use crate::peers::{Fixture, Peer, STEP, read_until};

pub use mo_testsupport::{TELNET_PROMPT as PROMPT, Telnetd};

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
        let telnetd = Telnetd::start(dir.path())?;
        let connector = connector_for(&telnetd.address(), &DriverOptions::default())?;
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
        self.telnetd.stop()?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(self.telnetd.restart()?)
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
