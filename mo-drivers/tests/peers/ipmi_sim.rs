//! ipmi_sim (OpenIPMI's BMC simulator, PEERS.md) on a free loopback UDP port: chassis power
//! handled by a script that keeps the state in a file, and SOL on the device side of a socat pty
//! pair whose peer side the test holds. Included with `#[path]` by the test files that use it,
//! next to `mod peers`.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use mo_core::link::{Connector, Link};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout};

use crate::peers::{Fixture, Peer, STEP, SocatPair, read_until_from, terminate};
use tokio::io::AsyncWriteExt;

/// Where Debian installs ipmi_sim.
pub const IPMI_SIM: &str = "/usr/bin/ipmi_sim";
/// The administrator the configuration defines.
pub const USER: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "password";

/// `shared/peers/ipmi_sim-lan.conf` with `@DIR@`, `@PORT@` and `@SOL@` to fill in; SOL is on the
/// pty pair's device side.
const LAN_CONF: &str = r#"name "ipmisim1"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 @PORT@
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "@DIR@/chassis.sh 0x20"
  sol "@SOL@" 115200
  user 1 true  ""      "test"     user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
"#;

/// `shared/peers/ipmi_sim.emu`.
const EMU: &str = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
";

/// `shared/peers/ipmi_sim-chassis.sh`: power state in `$IPMISIM_DIR/power.state`, every change
/// appended to `power.state.log`.
const CHASSIS_SH: &str = r#"#!/bin/sh
STATE=${IPMISIM_DIR:?set IPMISIM_DIR}/power.state
[ -f "$STATE" ] || echo 0 > "$STATE"
mc="$1"; shift; op="$1"; shift
case "$op" in
  get) for item in "$@"; do case "$item" in
         power) echo "power:$(cat $STATE)";; boot) echo "boot:default";; esac; done ;;
  set) while [ $# -gt 0 ]; do case "$1" in
         power) echo "$2" > "$STATE"; echo "$(date +%s) power=$2" >> "$STATE.log"; shift 2;;
         reset) echo "$(date +%s) reset" >> "$STATE.log"; shift 2;;
         *) shift 2;; esac; done ;;
esac
exit 0
"#;

/// The SOL device's name: unique per simulator. ipmi_sim takes a UUCP lock on the device, named
/// after its last path component only (`/var/lock/LCK..NAME`), and does not open the device while
/// another live process holds that lock: simulators running at the same time with a common name
/// (`ttyDEV` once) left every SOL session but one without a device, so no byte passed.
pub fn sol_tty_name(dir: &Path) -> String {
    let unique = dir
        .file_name()
        .map(|n| n.to_string_lossy().trim_start_matches('.').to_owned())
        .unwrap_or_default();
    format!("ttySOL-{unique}")
}

/// Remove the UUCP lock file ipmi_sim took on `dev` (it is left behind when ipmi_sim is killed).
fn remove_uucp_lock(dev: &Path) {
    if let Some(name) = dev.file_name() {
        let _ = std::fs::remove_file(
            Path::new("/var/lock").join(format!("LCK..{}", name.to_string_lossy())),
        );
    }
}

/// A free loopback UDP port (free a moment ago).
pub fn free_udp_port() -> Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

/// ipmi_sim with its pty pair, in a temporary directory.
pub struct IpmiSim {
    /// The SOL pty pair: ipmi_sim opens `pair.dev`, the test opens `pair.peer` (the host side).
    pub pair: SocatPair,
    /// The UDP port of the simulated BMC.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl IpmiSim {
    /// Write the configuration, start socat and ipmi_sim, and wait until the BMC answers an
    /// ASF ping.
    pub async fn start() -> Result<Self> {
        if !Path::new(IPMI_SIM).exists() {
            bail!("{IPMI_SIM} is missing: apt-get install openipmi");
        }
        let dir = tempfile::tempdir()?;
        let pair = SocatPair::start_named(dir.path(), &sol_tty_name(dir.path()), "ttyPEER").await?;
        let port = free_udp_port()?;
        let path = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("lan.conf"),
            LAN_CONF
                .replace("@DIR@", &path)
                .replace("@PORT@", &port.to_string())
                .replace("@SOL@", &pair.dev.display().to_string()),
        )?;
        std::fs::write(dir.path().join("ipmi_sim.emu"), EMU)?;
        let script = dir.path().join("chassis.sh");
        std::fs::write(&script, CHASSIS_SH)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        std::fs::create_dir_all(dir.path().join("state"))?;
        let mut sim = Self {
            pair,
            port,
            dir,
            child: None,
        };
        sim.restart().await?;
        Ok(sim)
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ipmi://admin@127.0.0.1:PORT?cipher=3` plus `extra` query parameters (`&steal=1`).
    pub fn address(&self, extra: &str) -> String {
        format!("ipmi://{USER}@127.0.0.1:{}?cipher=3{extra}", self.port)
    }

    /// Driver options carrying `password`.
    pub fn options(password: &str) -> DriverOptions {
        DriverOptions::new().with_credentials(Credentials::new().with_password(password))
    }

    /// Start ipmi_sim (again) and wait until it answers.
    pub async fn restart(&mut self) -> Result<()> {
        let dir = self.dir.path();
        let child = Command::new(IPMI_SIM)
            .arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("ipmi_sim.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .env("IPMISIM_DIR", dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting ipmi_sim")?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Wait until the BMC answers an ASF presence ping.
    async fn wait_ready(&mut self) -> Result<()> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        socket.connect(("127.0.0.1", self.port)).await?;
        let deadline = Instant::now() + STEP;
        let mut buf = [0u8; 256];
        while Instant::now() < deadline {
            self.check_alive()?;
            let _ = socket.send(&mo_drivers::ipmi::rmcp::encode_ping(1)).await;
            if let Ok(Ok(n)) = timeout(Duration::from_millis(200), socket.recv(&mut buf)).await
                && matches!(
                    mo_drivers::ipmi::rmcp::decode_packet(&buf[..n], None),
                    Ok(mo_drivers::ipmi::rmcp::Packet::Pong { .. })
                )
            {
                return Ok(());
            }
        }
        bail!("ipmi_sim on port {} did not answer a ping", self.port)
    }

    /// Fail if ipmi_sim has exited (it has died silently after misbehaving clients).
    pub fn check_alive(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("ipmi_sim is stopped")?;
        if let Some(status) = child.try_wait()? {
            bail!("ipmi_sim exited: {status}");
        }
        Ok(())
    }

    /// Kill ipmi_sim (by its pid; SIGKILL, as a crash would).
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        remove_uucp_lock(&self.pair.dev);
        Ok(())
    }

    /// Stop ipmi_sim politely (SIGTERM by pid) and socat.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child).await?;
        }
        remove_uucp_lock(&self.pair.dev);
        self.pair.stop().await
    }

    /// The power state the chassis script holds: `0` or `1`.
    pub fn power(&self) -> Result<String> {
        let text = std::fs::read_to_string(self.dir.path().join("power.state"))
            .unwrap_or_else(|_| "0".to_owned());
        Ok(text.trim().to_owned())
    }

    /// Set the power state the chassis script reports.
    pub fn set_power(&self, on: bool) -> Result<()> {
        std::fs::write(
            self.dir.path().join("power.state"),
            if on { "1\n" } else { "0\n" },
        )?;
        Ok(())
    }

    /// The chassis script's log of power changes and resets.
    pub fn power_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("power.state.log")).unwrap_or_default()
    }

    /// Run ipmitool against the simulator (cipher suite 3) and return its output.
    pub async fn ipmitool(&self, args: &[&str]) -> Result<String> {
        let out = timeout(
            STEP,
            Command::new("ipmitool")
                .args(["-I", "lanplus", "-H", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .args(["-U", USER, "-P", PASSWORD, "-C", "3"])
                .args(args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await??;
        if !out.status.success() {
            bail!(
                "ipmitool {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The path of the SOL pty's host side.
    pub fn host_path(&self) -> PathBuf {
        self.pair.peer.clone()
    }
}

impl Drop for IpmiSim {
    /// ipmi_sim dies with its `Child` (kill on drop) and leaves its UUCP lock behind.
    fn drop(&mut self) {
        remove_uucp_lock(&self.pair.dev);
    }
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
        let sim = IpmiSim::start().await?;
        let connector = connector_for(&sim.address("&keepalive=0.3"), &IpmiSim::options(PASSWORD))?;
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
        let mut host = self.sim.pair.open_peer()?;
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
        self.sim.kill().await?;
        Ok(true)
    }
    async fn restart(&mut self) -> Result<()> {
        self.sim.restart().await
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
