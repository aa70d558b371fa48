//! OpenSSH sshd on loopback as an SSH device: mo_testsupport's [`Sshd`] (PEERS.md), with the
//! driver options that log in with its client key. Included with `#[path]` by the test files that
//! use it, next to `mod peers` and `mod net`.

#![allow(dead_code)]

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use mo_testsupport::Sshd;
use tokio::time::timeout;

use crate::peers::{Fixture, Peer, STEP, read_ready_pid};

/// Options that log in to `sshd` with its client key and know its host key.
pub fn key_options(sshd: &Sshd) -> Result<DriverOptions> {
    Ok(DriverOptions::new()
        .with_known_hosts(sshd.known_hosts("known_hosts")?)
        .with_credentials(Credentials::new().with_private_key(sshd.client_key().to_owned())))
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
        let sshd = Sshd::start(dir.path())?;
        let connector = connector_for(&sshd.address(RAW_CAT_QUERY), &key_options(&sshd)?)?;
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
        self.sshd.stop()?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        Ok(self.sshd.restart()?)
    }
    fn connect_fails_when_stopped(&self) -> bool {
        true
    }
}
