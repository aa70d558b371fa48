//! SOL throughput: bytes written on the host side of the pty that ipmi_sim serves as its SOL
//! port, arriving on one `ipmi://` link (cipher suite 3). Starts its own socat and ipmi_sim in a
//! temporary directory and stops exactly those processes.

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::common::cpu_seconds;

/// Options of `mo-bench sol`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Bytes written on the pty's host side.
    #[arg(long, default_value_t = 1 << 20)]
    bytes: usize,
    /// Give up after this many seconds (partial figures are still printed).
    #[arg(long, default_value_t = 120)]
    seconds: u64,
}

const LAN_CONF: &str = r#"name "benchbmc"
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
  sol "@SOL@" 115200
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
"#;

const EMU: &str = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
";

/// Stop a child we started, by its pid.
async fn stop(mut child: Child) {
    let _ = child.kill().await;
}

async fn wait_for(path: &std::path::Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{} did not appear", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Start socat and ipmi_sim, measure, and stop them.
pub async fn run(o: Opts) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // ipmi_sim locks the SOL device as /var/lock/LCK..NAME (last path component only) and does
    // not open a device another live process has locked: the name must be unique.
    let sol_name = format!(
        "ttySOL-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_owned())
            .unwrap_or_default()
    );
    let sol = dir.join(&sol_name);
    std::fs::write(
        dir.join("lan.conf"),
        LAN_CONF
            .replace("@SOL@", &sol.display().to_string())
            .replace("@PORT@", &port.to_string()),
    )?;
    std::fs::write(dir.join("sim.emu"), EMU)?;
    std::fs::create_dir_all(dir.join("state"))?;
    let socat = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", sol.display()))
        .arg(format!("pty,raw,echo=0,link={}/ttyHOST", dir.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting socat")?;
    wait_for(&dir.join("ttyHOST")).await?;
    let sim = Command::new("ipmi_sim")
        .arg("-c")
        .arg(dir.join("lan.conf"))
        .arg("-f")
        .arg(dir.join("sim.emu"))
        .arg("-s")
        .arg(dir.join("state"))
        .arg("-n")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting ipmi_sim (apt-get install openipmi)")?;
    let result = measure(&o, dir, port).await;
    stop(sim).await;
    stop(socat).await;
    // Killed, ipmi_sim leaves its lock file behind.
    let _ = std::fs::remove_file(format!("/var/lock/LCK..{sol_name}"));
    result
}

async fn measure(o: &Opts, dir: &std::path::Path, port: u16) -> anyhow::Result<()> {
    let opts = DriverOptions::new().with_credentials(Credentials::new().with_password("password"));
    let connector = connector_for(&format!("ipmi://admin@127.0.0.1:{port}?cipher=3"), &opts)?;
    // ipmi_sim needs a moment to open its port.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut link = loop {
        match connector.connect().await {
            Ok(link) => break link,
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    println!(
        "sol: {} bytes from the pty's host side through ipmi_sim to one ipmi:// link (cipher 3)",
        o.bytes
    );
    let host = dir.join("ttyHOST");
    let total = o.bytes;
    // ipmi_sim opens its side of the pty when SOL is activated; give it a moment, as the driver
    // tests do, so the first bytes are not written into a pty nobody reads yet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut tty = std::fs::OpenOptions::new().write(true).open(host)?;
        let mut left = total;
        while left > 0 {
            let n = left.min(LINE.len());
            tty.write_all(LINE.get(..n).unwrap_or_default())?;
            left -= n;
        }
        tty.flush()
    });
    let mut got = 0usize;
    // Every byte is checked against what was written: only the host's output counts.
    let mut wrong: Option<usize> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let limit = Duration::from_secs(o.seconds);
    while got < total {
        let left = limit.saturating_sub(wall0.elapsed());
        match tokio::time::timeout(left, link.reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                println!("  the link went down after {got} bytes");
                break;
            }
            Ok(Ok(n)) => {
                for (i, byte) in buf.iter().take(n).enumerate() {
                    if wrong.is_none() && *byte != expected(got + i) {
                        wrong = Some(got + i);
                    }
                }
                got += n;
            }
            Err(_) => {
                println!("  stopped after {} s", o.seconds);
                break;
            }
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "  received {got} of {total} bytes in {wall:.2} s: {:.0} bytes/s; mo CPU {cpu:.2} s ({:.0} bytes per CPU-second)",
        got as f64 / wall,
        got as f64 / cpu.max(1e-9)
    );
    drop(link);
    writer.abort();
    if let Some(at) = wrong {
        bail!("the bytes received differ from those written, first at offset {at}");
    }
    if got < total {
        bail!("only {got} of {total} bytes arrived");
    }
    Ok(())
}

/// The text the host writes, over and over: 63 printable characters and a newline.
const LINE: &[u8; 64] = b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_\n";

/// The byte at `offset` of what the host writes.
fn expected(offset: usize) -> u8 {
    LINE.get(offset % LINE.len()).copied().unwrap_or_default()
}
