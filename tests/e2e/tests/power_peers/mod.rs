//! Real power peers for the end-to-end power tests (PEERS.md): ipmi_sim with a chassis script
//! keeping the power state in a file, sushy-emulator (Redfish, fake driver) and net-snmp snmpd as
//! an APC PDU. Each test owns its peers and stops exactly them (by pid, on drop).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mo_testsupport::Error;

type Result<T> = std::result::Result<T, Error>;

fn check(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(what.to_string(), e)
}

fn fail(name: &str, reason: String, log: String) -> Error {
    Error::PeerStart {
        name: name.into(),
        reason,
        log,
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> Result<u16> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(check("bind udp"))?;
    Ok(s.local_addr().map_err(check("udp addr"))?.port())
}

fn free_tcp_port() -> Result<u16> {
    let s = std::net::TcpListener::bind("127.0.0.1:0").map_err(check("bind tcp"))?;
    Ok(s.local_addr().map_err(check("tcp addr"))?.port())
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

const IPMI_LAN_CONF: &str = r#"name "ipmisim1"
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
  user 1 true  ""      "test"     user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
"#;

const IPMI_EMU: &str = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
";

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

/// ipmi_sim (OpenIPMI) with chassis power in `DIR/power.state` (`0` off, `1` on; starts off).
pub struct IpmiSim {
    child: Child,
    /// Its UDP port.
    pub port: u16,
    /// Its directory.
    pub dir: PathBuf,
}

impl IpmiSim {
    /// Start it in `dir` (created) and wait until the chassis script has been asked once.
    pub fn start(dir: &Path) -> Result<IpmiSim> {
        std::fs::create_dir_all(dir.join("state")).map_err(check("ipmi dir"))?;
        let port = free_udp_port()?;
        let d = dir.display().to_string();
        std::fs::write(
            dir.join("lan.conf"),
            IPMI_LAN_CONF
                .replace("@DIR@", &d)
                .replace("@PORT@", &port.to_string()),
        )
        .map_err(check("write lan.conf"))?;
        std::fs::write(dir.join("ipmi_sim.emu"), IPMI_EMU).map_err(check("write emu"))?;
        let script = dir.join("chassis.sh");
        std::fs::write(&script, CHASSIS_SH).map_err(check("write chassis.sh"))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(check("chmod chassis.sh"))?;
        std::fs::write(dir.join("power.state"), "0\n").map_err(check("write power.state"))?;
        let log = std::fs::File::create(dir.join("ipmi_sim.log")).map_err(check("ipmi log"))?;
        let child = Command::new("/usr/bin/ipmi_sim")
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
            .stdout(log.try_clone().map_err(check("ipmi log"))?)
            .stderr(log)
            .spawn()
            .map_err(check("spawn /usr/bin/ipmi_sim (apt-get install openipmi)"))?;
        let mut me = IpmiSim {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        // Wait until it answers an RMCP presence ping (ASF).
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(check("bind"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(check("timeout"))?;
        let ping = [
            0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x00, 0x00, 0x00,
        ];
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let _ = socket.send_to(&ping, ("127.0.0.1", port));
            let mut buf = [0u8; 64];
            if socket.recv_from(&mut buf).is_ok() {
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(fail("ipmi_sim", format!("exited with {status}"), me.log()));
            }
            if Instant::now() > deadline {
                return Err(fail("ipmi_sim", format!("no answer on {port}"), me.log()));
            }
        }
    }

    /// `ipmi://admin@127.0.0.1:PORT?cipher=3` (password `password`).
    pub fn address(&self) -> String {
        format!("ipmi://admin@127.0.0.1:{}?cipher=3", self.port)
    }

    /// The chassis power state: `0` or `1`.
    pub fn power(&self) -> String {
        std::fs::read_to_string(self.dir.join("power.state"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Set the state behind mo's back (someone pressed the button).
    pub fn set_power(&self, on: bool) -> Result<()> {
        std::fs::write(self.dir.join("power.state"), if on { "1\n" } else { "0\n" })
            .map_err(check("write power.state"))
    }

    /// Every change the chassis script saw.
    pub fn changes(&self) -> String {
        std::fs::read_to_string(self.dir.join("power.state.log")).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ipmi_sim.log")).unwrap_or_default()
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// sushy-emulator, fake driver: node1 (`1111…`) starts off, node2 (`2222…`) on; basic auth
/// `admin` / `password`.
pub struct Sushy {
    child: Child,
    /// Its TCP port.
    pub port: u16,
    /// Its directory.
    pub dir: PathBuf,
}

/// node1's UUID.
pub const NODE1: &str = "11111111-1111-1111-1111-111111111111";
/// node2's UUID.
pub const NODE2: &str = "22222222-2222-2222-2222-222222222222";

impl Sushy {
    /// Start it in `dir` (created) and wait until it listens.
    pub fn start(dir: &Path) -> Result<Sushy> {
        std::fs::create_dir_all(dir).map_err(check("sushy dir"))?;
        let port = free_tcp_port()?;
        let conf = std::fs::read_to_string(root().join("tests/peers/sushy-emulator.conf"))
            .map_err(check("read tests/peers/sushy-emulator.conf"))?
            .replace("@DIR@", &dir.display().to_string())
            .replace("= 8123", &format!("= {port}"));
        std::fs::write(dir.join("sushy.conf"), conf).map_err(check("write sushy.conf"))?;
        let venv = root().join("target/peers-venv/bin");
        let hash = Command::new(venv.join("python"))
            .args([
                "-c",
                "import bcrypt;print('admin:'+bcrypt.hashpw(b'password',bcrypt.gensalt(4)).decode())",
            ])
            .output()
            .map_err(check("run the peers venv python (scripts/setup.sh builds it)"))?;
        std::fs::write(dir.join("htpasswd"), &hash.stdout).map_err(check("write htpasswd"))?;
        let log = std::fs::File::create(dir.join("sushy.log")).map_err(check("sushy log"))?;
        let child = Command::new(venv.join("sushy-emulator"))
            .arg("--config")
            .arg(dir.join("sushy.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(check("sushy log"))?)
            .stderr(log)
            .spawn()
            .map_err(check("spawn sushy-emulator"))?;
        let mut me = Sushy {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(fail(
                    "sushy-emulator",
                    format!("exited with {status}"),
                    me.log(),
                ));
            }
            if Instant::now() > deadline {
                return Err(fail(
                    "sushy-emulator",
                    format!("no listener on {port}"),
                    me.log(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The plain-HTTP address of a system.
    pub fn address(&self, uuid: &str) -> String {
        format!(
            "redfish://admin@127.0.0.1:{}/Systems/{uuid}?tls=0&poll=500ms&wait=40s",
            self.port
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sushy.log")).unwrap_or_default()
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
}

impl Drop for Sushy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// snmpd as an 8-outlet APC PDU; communities `public` (read-only) and `private`.
pub struct Snmpd {
    child: Child,
    /// Its UDP port.
    pub port: u16,
    /// Its directory.
    pub dir: PathBuf,
}

impl Snmpd {
    /// Start it in `dir` (created) and wait until it answers.
    pub fn start(dir: &Path) -> Result<Snmpd> {
        std::fs::create_dir_all(dir.join("persist")).map_err(check("snmpd dir"))?;
        let port = free_udp_port()?;
        let peers = root().join("tests/peers");
        let conf = std::fs::read_to_string(peers.join("snmpd-apc.conf"))
            .map_err(check("read tests/peers/snmpd-apc.conf"))?
            .replace("@DIR@", &dir.display().to_string())
            .replace("udp:127.0.0.1:16161", &format!("udp:127.0.0.1:{port}"));
        std::fs::write(dir.join("snmpd.conf"), conf).map_err(check("write snmpd.conf"))?;
        std::fs::copy(peers.join("apc_pass.py"), dir.join("apc_pass.py"))
            .map_err(check("copy apc_pass.py"))?;
        let child = Command::new("/usr/sbin/snmpd")
            .args(["-f", "-C", "-c"])
            .arg(dir.join("snmpd.conf"))
            .arg("-Lf")
            .arg(dir.join("snmpd.log"))
            .arg("-p")
            .arg(dir.join("snmpd.pid"))
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(check("spawn /usr/sbin/snmpd"))?;
        let mut me = Snmpd {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = Command::new("snmpget")
                .args(["-v2c", "-c", "public", "-t", "0.5", "-r", "0"])
                .arg(format!("127.0.0.1:{port}"))
                .arg(".1.3.6.1.2.1.1.5.0")
                .env("MIBS", "")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(fail("snmpd", format!("exited with {status}"), me.log()));
            }
            if Instant::now() > deadline {
                return Err(fail("snmpd", format!("no answer on {port}"), me.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `snmp://127.0.0.1:PORT/apc/OUTLETS` (v2c; the community is the device's `snmp_auth`).
    pub fn address(&self, outlets: &str) -> String {
        format!("snmp://127.0.0.1:{}/apc/{outlets}", self.port)
    }

    /// An outlet's state: 1 on, 2 off (all on before the first set).
    pub fn outlet(&self, n: u32) -> u32 {
        let text = std::fs::read_to_string(self.dir.join("outlets.json")).unwrap_or_default();
        let key = format!("\"{n}\": ");
        text.find(&key)
            .and_then(|at| text[at + key.len()..].chars().next())
            .and_then(|c| c.to_digit(10))
            .unwrap_or(1)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("snmpd.log")).unwrap_or_default()
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
