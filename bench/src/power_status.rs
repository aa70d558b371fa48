//! Power status of many devices at once: most on outlets of a real snmpd PDU (APC pass script,
//! 8 outlets), the rest on Redfish systems of a real sushy-emulator. Reports the wall time and
//! the number of requests sent. SNMP outlets are read in one batched GET per PDU; Redfish
//! devices are read in parallel, one GET each (after one service-root read per controller).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mo_core::power::{PowerController, PowerState};
use mo_drivers::power::{RedfishController, SnmpOutlets};
use mo_drivers::{Credentials, DriverOptions};

/// Options of `mo-bench power-status`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Devices in all.
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// How many of them are Redfish systems (the rest are PDU outlets).
    #[arg(long, default_value_t = 20)]
    redfish: usize,
    /// The directory with the sample peer configs (`snmpd-apc.conf`, `apc_pass.py`,
    /// `sushy-emulator.conf`).
    #[arg(long)]
    peers: Option<PathBuf>,
    /// The sushy-emulator program.
    #[arg(long)]
    sushy: Option<PathBuf>,
    /// Rounds to measure (the first one also opens the sessions).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// A peer process this benchmark started; stopped (by its own pid) on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port(udp: bool) -> anyhow::Result<u16> {
    Ok(if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

fn wait_until(
    what: &str,
    child: &mut Child,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not come up within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn start_snmpd(peers: &Path, dir: &Path) -> anyhow::Result<(Peer, u16)> {
    let port = free_port(true)?;
    let conf = std::fs::read_to_string(peers.join("snmpd-apc.conf"))
        .context("reading snmpd-apc.conf")?
        .replace("@DIR@", &dir.display().to_string())
        .replace("udp:127.0.0.1:16161", &format!("udp:127.0.0.1:{port}"));
    std::fs::write(dir.join("snmpd.conf"), conf)?;
    std::fs::copy(peers.join("apc_pass.py"), dir.join("apc_pass.py"))?;
    std::fs::create_dir_all(dir.join("persist"))?;
    let mut child = Command::new("/usr/sbin/snmpd")
        .args(["-f", "-C", "-c"])
        .arg(dir.join("snmpd.conf"))
        .arg("-Lf")
        .arg(dir.join("snmpd.log"))
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting snmpd")?;
    wait_until("snmpd", &mut child, || {
        Command::new("snmpget")
            .args(["-v2c", "-c", "public", "-t", "0.5", "-r", "0"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(".1.3.6.1.2.1.1.5.0")
            .env("MIBS", "")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })?;
    Ok((Peer(child), port))
}

fn start_sushy(peers: &Path, program: &Path, dir: &Path) -> anyhow::Result<(Peer, u16)> {
    let port = free_port(false)?;
    let conf = std::fs::read_to_string(peers.join("sushy-emulator.conf"))
        .context("reading sushy-emulator.conf")?
        .replace("@DIR@", &dir.display().to_string())
        .replace("= 8123", &format!("= {port}"));
    std::fs::write(dir.join("sushy.conf"), conf)?;
    let python = program.with_file_name("python");
    let hash = Command::new(&python)
        .args([
            "-c",
            "import bcrypt;print('admin:'+bcrypt.hashpw(b'password',bcrypt.gensalt(4)).decode())",
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    std::fs::write(dir.join("htpasswd"), &hash.stdout)?;
    let log = std::fs::File::create(dir.join("sushy.log"))?;
    let mut child = Command::new(program)
        .arg("--config")
        .arg(dir.join("sushy.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    wait_until("sushy-emulator", &mut child, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok((Peer(child), port))
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let peers = o.peers.unwrap_or_else(|| workspace().join("tests/peers"));
    let sushy = o
        .sushy
        .unwrap_or_else(|| workspace().join("target/peers-venv/bin/sushy-emulator"));
    let tmp = tempfile::tempdir()?;
    let (_snmpd, snmp_port) = start_snmpd(&peers, tmp.path())?;
    let (_sushy, redfish_port) = start_sushy(&peers, &sushy, tmp.path())?;
    let outlet_devices = o.devices.saturating_sub(o.redfish);
    println!(
        "power-status: {} devices: {outlet_devices} on outlets of one snmpd PDU (8 outlets), {} on \
         sushy Redfish systems",
        o.devices, o.redfish
    );

    // PDU outlets: one controller per device, all on one shared PDU session.
    let v2 = DriverOptions::new().with_credentials(Credentials::new().with_snmp_auth("public"));
    let first = url::Url::parse(&format!("snmp://127.0.0.1:{snmp_port}/apc/1"))?;
    let pdu = Arc::clone(SnmpOutlets::from_url(&first, first.as_str(), &v2)?.pdu());
    let mut outlet_of = Vec::with_capacity(outlet_devices);
    for i in 0..outlet_devices {
        let text = format!("snmp://127.0.0.1:{snmp_port}/apc/{}", i % 8 + 1);
        let url = url::Url::parse(&text)?;
        let device = SnmpOutlets::from_url(&url, &text, &v2)?.on_pdu(Arc::clone(&pdu));
        outlet_of.push(device.outlets().to_vec());
    }

    // Redfish: one controller per device (as if each had its own BMC), over the two systems.
    let rf_opts =
        DriverOptions::new().with_credentials(Credentials::new().with_password("password"));
    let systems = [
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
    ];
    let mut bmcs = Vec::with_capacity(o.redfish);
    for i in 0..o.redfish {
        let text = format!(
            "redfish://admin@127.0.0.1:{redfish_port}/Systems/{}?tls=0",
            systems[i % systems.len()]
        );
        let url = url::Url::parse(&text)?;
        bmcs.push(Arc::new(RedfishController::from_url(
            &url, &text, &rf_opts,
        )?));
    }

    for round in 1..=o.rounds.max(1) {
        let snmp_before = pdu.requests_sent();
        let rf_before: u64 = bmcs.iter().map(|b| b.requests_sent()).sum();
        let t0 = Instant::now();
        // Every distinct outlet in one batched read, then each device's state from it.
        let snmp = async {
            let mut distinct: Vec<String> = outlet_of.iter().flatten().cloned().collect();
            distinct.sort();
            distinct.dedup();
            let states = pdu.status_many(&distinct).await?;
            let by_outlet: BTreeMap<String, PowerState> =
                distinct.into_iter().zip(states).collect();
            anyhow::Ok(
                outlet_of
                    .iter()
                    .map(|outlets| {
                        mo_core::power::binding::combine_states(
                            outlets.iter().filter_map(|o| by_outlet.get(o).copied()),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let redfish = async {
            let mut tasks = tokio::task::JoinSet::new();
            for bmc in &bmcs {
                let bmc = Arc::clone(bmc);
                tasks.spawn(async move { bmc.status().await });
            }
            let mut states = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                states.push(joined??);
            }
            anyhow::Ok(states)
        };
        let (snmp_states, rf_states) = tokio::join!(snmp, redfish);
        let elapsed = t0.elapsed();
        let (snmp_states, rf_states) = (snmp_states?, rf_states?);
        let answered = snmp_states.len() + rf_states.len();
        let known = snmp_states
            .iter()
            .chain(&rf_states)
            .filter(|s| **s != PowerState::Unknown)
            .count();
        let snmp_requests = pdu.requests_sent() - snmp_before;
        let rf_requests: u64 = bmcs.iter().map(|b| b.requests_sent()).sum::<u64>() - rf_before;
        println!(
            "  round {round}: {} devices ({known} with a known state) in {:.3} s; requests: {} SNMP \
             + {} HTTP = {}{}",
            snmp_states.len() + rf_states.len(),
            elapsed.as_secs_f64(),
            snmp_requests,
            rf_requests,
            snmp_requests + rf_requests,
            if round == 1 {
                " (first round opens sessions)"
            } else {
                ""
            }
        );
        if known != o.devices || answered != o.devices {
            bail!(
                "round {round}: {known} of {answered} answers are a known power state \
                 (expected all {} devices)",
                o.devices
            );
        }
    }
    println!("  target: < 2 s for 200 devices");
    Ok(())
}
