//! ser2net 4.3 in front of a socat pty pair (mo_testsupport's [`Ser2net`], PEERS.md): RFC 2217,
//! telnet and raw TCP ports on loopback; the test opens the pty's peer end itself
//! ([`crate::peers::open_peer`]). Included with `#[path]` by the test files that use it, next to
//! `mod peers` and `mod net`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{DriverOptions, connector_for};
use mo_testsupport::PeerEnd;
pub use mo_testsupport::Ser2net;

use crate::peers::{Fixture, Peer, open_peer};

/// Start ser2net in front of a fresh pty pair in `dir`, the peer end left to the test.
pub fn start(dir: &Path) -> Result<Ser2net> {
    Ok(Ser2net::start_with(dir, "dev", PeerEnd::Caller)?)
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
        let ser2net = start(dir.path())?;
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
        Ok(Peer::End(Box::new(open_peer(self.ser2net.pty())?)))
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.ser2net.stop()?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(self.ser2net.restart()?)
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
    fn serves_one_at_a_time(&self) -> bool {
        true
    }
}
