//! ipmi_sim (OpenIPMI's BMC simulator, PEERS.md) from mo_testsupport ([`IpmiSim`]): chassis
//! power kept by a script in a file, and SOL on the device side of a socat pty pair whose host
//! side the test opens ([`open_host`]). Included with `#[path]` by the test files that use it,
//! next to `mod peers`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use mo_testsupport::{IPMI_PASSWORD as PASSWORD, IpmiSim, PeerEnd, Sol};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout};

use crate::peers::{Fixture, Peer, STEP, open_peer, read_until_from};

/// Start ipmi_sim with SOL in a temporary directory of its own; the test opens the host side.
pub fn start() -> Result<IpmiSim> {
    Ok(IpmiSim::start_temp("sol", Sol::Pty(PeerEnd::Caller))?)
}

/// `ipmi://admin@127.0.0.1:PORT?cipher=3` plus `extra` query parameters (`&steal=1`).
pub fn address(sim: &IpmiSim, extra: &str) -> String {
    format!("{}{extra}", sim.address())
}

/// Driver options carrying `password`.
pub fn options(password: &str) -> DriverOptions {
    DriverOptions::new().with_credentials(Credentials::new().with_password(password))
}

/// Open the host side of the SOL pty (see [`open_peer`]).
pub fn open_host(sim: &mut IpmiSim) -> Result<tokio_serial::SerialStream> {
    open_peer(sim.pty()?)
}

/// The `ipmi` driver (SOL, cipher suite 3) against ipmi_sim; the test holds the host side of
/// the SOL pty. Fast keepalive and retransmit timeout, so a killed BMC is noticed quickly.
pub struct IpmiFixture {
    /// The simulator and its pty pair.
    pub sim: IpmiSim,
    connector: Arc<dyn Connector>,
}

impl IpmiFixture {
    /// Start ipmi_sim and make a connector for it.
    pub async fn start() -> Result<Self> {
        let sim = start()?;
        let connector = connector_for(&address(&sim, "&keepalive=0.3"), &options(PASSWORD))?;
        Ok(Self { sim, connector })
    }
}

#[async_trait]
impl Fixture for IpmiFixture {
    fn name(&self) -> &'static str {
        "ipmi"
    }
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }
    /// ipmi_sim starts passing bytes a moment after the payload is activated and drops what
    /// comes before: numbered markers go from the pty to the link until one arrives, then from
    /// the link to the pty, so the exchange that follows starts in sync.
    async fn accept(&mut self, link: &mut Link) -> Result<Peer> {
        let mut host = open_host(&mut self.sim)?;
        let deadline = Instant::now() + STEP / 2;
        let mut n = 0u32;
        loop {
            n += 1;
            let marker = format!("<up {n}>\r\n");
            host.write_all(marker.as_bytes()).await?;
            host.flush().await?;
            let seen = timeout(
                Duration::from_millis(300),
                read_until_from(&mut link.reader, marker.as_bytes()),
            )
            .await;
            match seen {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => return Err(e.context("the link failed while waiting for a marker")),
                Err(_) => {}
            }
            if Instant::now() > deadline {
                bail!("ipmi_sim never passed a marker from the pty to the link ({n} sent)");
            }
        }
        let mut n = 0u32;
        loop {
            n += 1;
            let marker = format!("<sync {n}>\r\n");
            link.writer.write_all(marker.as_bytes()).await?;
            link.writer.flush().await?;
            let seen = timeout(
                Duration::from_millis(300),
                read_until_from(&mut host, marker.as_bytes()),
            )
            .await;
            if matches!(seen, Ok(Ok(_))) {
                break;
            }
            if Instant::now() > deadline {
                bail!("ipmi_sim never passed a marker from the link to the pty ({n} sent)");
            }
        }
        Ok(Peer::End(Box::new(host)))
    }
    async fn stop(&mut self, peer: Peer) -> Result<bool> {
        drop(peer);
        self.sim.kill()?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(self.sim.restart()?)
    }
    /// Connecting to a stopped BMC times out ([`mo_core::Error::Timeout`], UDP has no refusal),
    /// which tests/ipmi.rs checks; the suite's check expects a refused connect.
    fn connect_fails_when_stopped(&self) -> bool {
        false
    }
    /// SOL moves one acknowledged payload of at most a few hundred bytes at a time: 1 MiB each
    /// way takes about 4 s through ipmi_sim on an idle machine; 256 KiB (over a thousand
    /// payloads each way, the 4-bit sequence numbers wrapping many times) stays quick on a
    /// busy one.
    fn bulk_bytes(&self) -> usize {
        256 << 10
    }
    /// One SOL payload instance: a new session waits until the previous link's deactivate has
    /// reached the BMC ("already active" is retried).
    fn serves_one_at_a_time(&self) -> bool {
        true
    }
}
