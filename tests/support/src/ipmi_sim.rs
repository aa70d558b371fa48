//! ipmi_sim (OpenIPMI's BMC simulator, PEERS.md `peers/ipmi_sim-*`) on a free loopback UDP port:
//! user `admin` / `password`, chassis power kept by a script in `DIR/power.state`, and Serial over
//! LAN on the device end of a socat pty pair whose peer end the test holds (the "host" console).
//!
//! Two facts shape it. ipmi_sim takes a UUCP lock on the SOL device named after its last path
//! component only (`/var/lock/LCK..NAME`) and, while another live process holds that lock,
//! activates SOL without opening the device: every simulator here gets a unique device name, and
//! the lock it leaves behind when killed is removed. And ipmi_sim passes bytes only a moment after
//! a SOL payload is activated, dropping what comes before: a test sends numbered markers until one
//! arrives before it relies on the link.

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ports::{free_udp_port, temp_dir};
use crate::process::{Peer, read_lossy, run_with_timeout};
use crate::socat::{PeerEnd, SocatPty};

/// Where Debian installs ipmi_sim.
pub const IPMI_SIM: &str = "/usr/bin/ipmi_sim";
/// The administrator the configuration defines.
pub const IPMI_USER: &str = "admin";
/// Its password.
pub const IPMI_PASSWORD: &str = "password";

/// `peers/ipmi_sim-lan.conf` with `@DIR@`, `@PORT@` and `@SOL@` to fill in.
const LAN_CONF: &str = r#"name "ipmisim1"
set_working_mc 0x20
  startlan 1
    addr @HOST@ @PORT@
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

/// `peers/ipmi_sim.emu`.
const EMU: &str = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
";

/// `peers/ipmi_sim-chassis.sh`: power state in `$IPMISIM_DIR/power.state`, every change appended
/// to `power.state.log`.
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

/// An RMCP ASF presence ping (RMCP 0x06, ASF class, IANA 4542, type 0x80) with tag 1.
const ASF_PING: [u8; 12] = [
    0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x80, 0x01, 0x00, 0x00,
];
/// The ASF message type of the answer (pong).
const ASF_PONG: u8 = 0x40;

/// Whether the simulated BMC has a Serial-over-LAN line, and who holds its host end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sol {
    /// No SOL: chassis power only (the power tests).
    None,
    /// SOL on the device end of a socat pty pair; [`PeerEnd`] says who opens the host end.
    Pty(PeerEnd),
}

/// A running ipmi_sim, with its SOL pty pair unless started with [`Sol::None`]. Killed by PID when
/// dropped; its UUCP lock on the (uniquely named) SOL device is removed then.
#[derive(Debug)]
pub struct IpmiSim {
    pty: Option<SocatPty>,
    peer: Option<Peer>,
    port: u16,
    host: std::net::Ipv4Addr,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl IpmiSim {
    /// Write the configuration into `DIR/ipmi-NAME/`, start the SOL pty pair (its host end held,
    /// [`PeerEnd::Held`]) and ipmi_sim, and wait until the BMC answers an ASF ping. The SOL device
    /// is named after `NAME` and the directory, so simulators of parallel tests never share a
    /// UUCP lock.
    pub fn start(dir: &Path, name: &str) -> Result<IpmiSim> {
        Self::start_with(dir, name, Sol::Pty(PeerEnd::Held))
    }

    /// [`IpmiSim::start`] with the SOL line of `sol`.
    pub fn start_with(dir: &Path, name: &str, sol: Sol) -> Result<IpmiSim> {
        Self::start_on(dir, name, sol, std::net::Ipv4Addr::LOCALHOST)
    }

    /// [`IpmiSim::start_with`] listening on the loopback address `host` (127.0.0.2, …: one
    /// address per simulated host) instead of 127.0.0.1.
    pub fn start_on(dir: &Path, name: &str, sol: Sol, host: std::net::Ipv4Addr) -> Result<IpmiSim> {
        if !Path::new(IPMI_SIM).exists() {
            return Err(Error::MissingBinary {
                name: "ipmi_sim".into(),
                path: IPMI_SIM.into(),
                hint: "install it with apt-get install openipmi".into(),
            });
        }
        let dir = dir.join(format!("ipmi-{name}"));
        std::fs::create_dir_all(dir.join("state"))
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let unique = dir
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_owned())
            .unwrap_or_default();
        let pty = match sol {
            Sol::None => None,
            Sol::Pty(end) => Some(SocatPty::start_with(
                &dir,
                &format!("ttySOL-{unique}-{name}"),
                "ttySOL-host",
                end,
            )?),
        };
        let port = free_udp_port()?;
        let write = |file: &str, text: &str| {
            let path = dir.join(file);
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("write {}", path.display()), e))
        };
        let sol_line = pty
            .as_ref()
            .map(|p| format!("  sol \"{}\" 115200\n", p.device_path().display()))
            .unwrap_or_default();
        write(
            "lan.conf",
            &LAN_CONF
                .replace("@DIR@", &dir.display().to_string())
                .replace("@PORT@", &port.to_string())
                .replace("@HOST@", &host.to_string())
                .replace("  sol \"@SOL@\" 115200\n", &sol_line),
        )?;
        write("ipmi_sim.emu", EMU)?;
        write("chassis.sh", CHASSIS_SH)?;
        write("power.state", "0\n")?;
        std::fs::set_permissions(
            dir.join("chassis.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .map_err(|e| Error::io("chmod chassis.sh", e))?;
        let mut sim = IpmiSim {
            pty,
            peer: None,
            port,
            host,
            dir,
            _tmp: None,
        };
        sim.restart()?;
        Ok(sim)
    }

    /// [`IpmiSim::start_with`] in a fresh temporary directory of its own (removed on drop).
    pub fn start_temp(name: &str, sol: Sol) -> Result<IpmiSim> {
        let tmp = temp_dir(&format!("ipmi-{name}"))?;
        let mut sim = Self::start_with(tmp.path(), name, sol)?;
        sim._tmp = Some(tmp);
        Ok(sim)
    }

    /// Start ipmi_sim (again, after [`IpmiSim::kill`] or [`IpmiSim::stop_bmc`]) on the same port
    /// and SOL line, and wait until it answers an ASF ping.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut old) = self.peer.take() {
            old.kill()?;
        }
        self.remove_uucp_lock();
        let dir = &self.dir;
        let mut cmd = Command::new(IPMI_SIM);
        cmd.arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("ipmi_sim.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .env("IPMISIM_DIR", dir)
            .current_dir(dir)
            .stdin(Stdio::null());
        self.peer = Some(Peer::spawn(
            "ipmi_sim",
            cmd,
            Some(&dir.join("ipmi_sim.log")),
        )?);
        self.wait_ready(Duration::from_secs(20))
    }

    /// Wait until the BMC answers an ASF presence ping.
    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.connect((self.host, self.port)).map(|()| s))
            .and_then(|s| {
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .map(|()| s)
            })
            .map_err(|e| Error::io("open a UDP socket to ping ipmi_sim", e))?;
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 256];
        loop {
            self.check_alive()?;
            let _ = socket.send(&ASF_PING);
            if let Ok(n) = socket.recv(&mut buf)
                && n >= 9
                && buf[8] == ASF_PONG
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::PeerStart {
                    name: "ipmi_sim".into(),
                    reason: format!("no answer to an ASF ping on UDP {} in {limit:?}", self.port),
                    log: self.log_text(),
                });
            }
        }
    }

    /// Fail if ipmi_sim has exited (it has died silently after misbehaving clients).
    pub fn check_alive(&mut self) -> Result<()> {
        let Some(peer) = self.peer.as_mut() else {
            return Err(Error::Check("ipmi_sim is stopped".into()));
        };
        match peer.exit_status()? {
            None => Ok(()),
            Some(status) => Err(Error::Check(format!(
                "ipmi_sim exited with {status}; its log:\n{}",
                self.log_text()
            ))),
        }
    }

    /// Kill ipmi_sim (SIGKILL by PID, as a crash would); the SOL pty pair stays.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut peer) = self.peer.take() {
            peer.kill()?;
        }
        self.remove_uucp_lock();
        Ok(())
    }

    /// Stop ipmi_sim politely (SIGTERM by PID, then SIGKILL); the SOL pty pair stays.
    pub fn stop_bmc(&mut self) -> Result<()> {
        if let Some(mut peer) = self.peer.take() {
            peer.terminate(Duration::from_secs(10))?;
        }
        self.remove_uucp_lock();
        Ok(())
    }

    /// Stop ipmi_sim politely and the SOL pty pair.
    pub fn stop(&mut self) -> Result<()> {
        self.stop_bmc()?;
        match self.pty.as_mut() {
            Some(pty) => pty.stop(),
            None => Ok(()),
        }
    }

    /// The UDP port of the simulated BMC.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The simulator's directory (configuration, state, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ipmi://admin@127.0.0.1:PORT?cipher=3` (the password is a device secret).
    pub fn address(&self) -> String {
        format!("ipmi://{IPMI_USER}@127.0.0.1:{}?cipher=3", self.port)
    }

    /// The SOL pty pair: the "host" writes its console output with [`SocatPty::write_peer`] and
    /// reads what was typed with [`SocatPty::received`] (with [`PeerEnd::Held`]), or the caller
    /// opens [`SocatPty::peer_path`] (with [`PeerEnd::Caller`]). Fails for [`Sol::None`].
    pub fn pty(&mut self) -> Result<&mut SocatPty> {
        self.pty
            .as_mut()
            .ok_or_else(|| Error::Check("this ipmi_sim was started without SOL".into()))
    }

    /// The power state the chassis script holds: `0` or `1`.
    pub fn power(&self) -> String {
        std::fs::read_to_string(self.dir.join("power.state"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "0".to_owned())
    }

    /// Set the power state behind mo's back (someone pressed the button).
    pub fn set_power(&self, on: bool) -> Result<()> {
        let path = self.dir.join("power.state");
        std::fs::write(&path, if on { "1\n" } else { "0\n" })
            .map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// The chassis script's log: one line per power change or reset it was asked for.
    pub fn power_log(&self) -> String {
        read_lossy(&self.dir.join("power.state.log"))
    }

    /// Run ipmitool against the simulator (cipher suite 3) and return its output; fails with the
    /// output when ipmitool does.
    pub fn ipmitool(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("ipmitool");
        cmd.args(["-I", "lanplus", "-H", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", IPMI_USER, "-P", IPMI_PASSWORD, "-C", "3"])
            .args(args);
        Ok(run_with_timeout(cmd, None, Duration::from_secs(30))?
            .ok()?
            .stdout)
    }

    /// ipmi_sim's own output, for failure messages.
    pub fn log_text(&self) -> String {
        read_lossy(&self.dir.join("ipmi_sim.log"))
    }

    /// Remove the UUCP lock ipmi_sim took on the SOL device (left behind when it is killed).
    fn remove_uucp_lock(&self) {
        if let Some(name) = self.pty.as_ref().and_then(|p| p.device_path().file_name()) {
            let _ = std::fs::remove_file(
                Path::new("/var/lock").join(format!("LCK..{}", name.to_string_lossy())),
            );
        }
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        if let Some(mut peer) = self.peer.take() {
            let _ = peer.kill();
        }
        self.remove_uucp_lock();
    }
}
