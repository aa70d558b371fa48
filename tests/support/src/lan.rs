//! A simulated network for discovery and wizard tests: loopback addresses stand for hosts
//! (127.0.0.2, 127.0.2.5, … — the whole of 127.0.0.0/8 is local), and the real peers
//! (ipmi_sim, sushy-emulator, snmpd, ser2net) listen each on its own address.
//!
//! [`lan_host`] names an address; [`sushy_on`] starts sushy-emulator on one with a single
//! system of a given name (a BMC managing one server); [`LabelledPorts`] starts ser2net as a
//! console server whose consecutive ports show their labels as banners; [`write_credentials`]
//! writes a `mo discover --credentials` file.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ports::{free_port, tcp_listening};
use crate::process::Peer;
use crate::ser2net::SER2NET;
use crate::socat::{PeerEnd, SocatPty};
use crate::sushy::Sushy;

/// The loopback address `127.0.NET.LAST`, standing for a host.
pub fn lan_host(net: u8, last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, net, last)
}

/// sushy-emulator on `host` managing one system, `name`, powered off (its UUID is
/// [`crate::NODE1`]).
pub fn sushy_on(dir: &Path, host: Ipv4Addr, name: &str) -> Result<Sushy> {
    let name = name.to_string();
    Sushy::start_with(dir, move |_| {
        format!(
            "\nSUSHY_EMULATOR_LISTEN_IP = '{host}'\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [\n  \
             {{'uuid': '{}', 'name': '{name}', 'power_state': 'Off',\n   \
             'nics': [{{'mac': '00:5c:52:31:3a:01', 'ip': '127.0.0.11'}}]}},\n]\n",
            crate::NODE1
        )
    })
}

/// Write a credentials file (`[[credentials]]` entries: match, then the TOML lines given).
pub fn write_credentials(path: &Path, entries: &[(&str, &str)]) -> Result<PathBuf> {
    let mut text = String::new();
    for (pattern, lines) in entries {
        text.push_str(&format!(
            "[[credentials]]\nmatch = \"{pattern}\"\n{lines}\n\n"
        ));
    }
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    Ok(path.to_owned())
}

/// ser2net as a console server on `host`: port N (1-based) listens on `base + N`, a telnet
/// port in front of a socat pty of its own (ser2net serves a device to one port at a time),
/// showing `labels[N-1]` (when given) as its banner. Killed
/// by PID when dropped.
#[derive(Debug)]
pub struct LabelledPorts {
    _ptys: Vec<SocatPty>,
    _peer: Peer,
    base: u16,
    config: PathBuf,
}

impl LabelledPorts {
    /// Start it; the base is chosen so that every port was free a moment ago.
    pub fn start(dir: &Path, host: Ipv4Addr, labels: &[Option<&str>]) -> Result<LabelledPorts> {
        if !Path::new(SER2NET).exists() {
            return Err(Error::MissingBinary {
                name: "ser2net".into(),
                path: SER2NET.into(),
                hint: "install it with apt-get install ser2net".into(),
            });
        }
        let ptys = (1..=labels.len())
            .map(|n| {
                SocatPty::start_with(
                    dir,
                    &format!("tty-cs{n}"),
                    &format!("tty-cs{n}-peer"),
                    PeerEnd::Held,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut last_error = None;
        for attempt in 0..10 {
            let base = free_base(host, labels.len())?;
            let mut text = String::from("%YAML 1.1\n---\n");
            for (i, (label, pty)) in labels.iter().zip(&ptys).enumerate() {
                text.push_str(&format!(
                    "connection: &port{n}\n  accepter: telnet,tcp,{host},{port}\n  \
                     connector: serialdev,{dev},115200n81,local\n",
                    n = i + 1,
                    port = u32::from(base) + i as u32 + 1,
                    dev = pty.device_path().display(),
                ));
                if let Some(label) = label {
                    text.push_str(&format!("  options:\n    banner: \"{label}\\r\\n\"\n"));
                }
            }
            let config = dir.join(format!("ser2net-cs-{attempt}.yaml"));
            std::fs::write(&config, text)
                .map_err(|e| Error::io(format!("write {}", config.display()), e))?;
            let mut cmd = Command::new(SER2NET);
            cmd.arg("-n")
                .arg("-u")
                .arg("-c")
                .arg(&config)
                .arg("-P")
                .arg(config.with_extension("pid"))
                .stdin(Stdio::null());
            let mut peer = Peer::spawn("ser2net", cmd, Some(&config.with_extension("log")))?;
            let ports: Vec<u16> = (1..=labels.len() as u16).map(|n| base + n).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if ports.iter().all(|&p| tcp_listening(p)) {
                    return Ok(LabelledPorts {
                        _ptys: ptys,
                        _peer: peer,
                        base,
                        config,
                    });
                }
                if peer.exit_status()?.is_some() || Instant::now() >= deadline {
                    // A port taken meanwhile: another base.
                    last_error = Some(Error::PeerStart {
                        name: "ser2net".into(),
                        reason: format!("not listening on {host} ports {ports:?}"),
                        log: peer.log_text(),
                    });
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Check("ser2net did not start".into())))
    }

    /// The base port: port N listens on `base + N`.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// The configuration file, for failure messages.
    pub fn config(&self) -> &Path {
        &self.config
    }
}

/// A port `base` such that `base + 1 ..= base + count` could all be bound on `host` a moment
/// ago.
fn free_base(host: Ipv4Addr, count: usize) -> Result<u16> {
    for _ in 0..100 {
        let base = free_port()?;
        if u32::from(base) + count as u32 >= 65535 {
            continue;
        }
        let held: Vec<_> = (1..=count as u16)
            .map_while(|n| TcpListener::bind((host, base + n)).ok())
            .collect();
        if held.len() == count {
            return Ok(base);
        }
    }
    Err(Error::Check(format!(
        "found no {count} consecutive free TCP ports on {host}"
    )))
}
