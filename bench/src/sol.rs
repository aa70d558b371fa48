//! SOL throughput: bytes written on the host side of the pty that ipmi_sim serves as its SOL
//! port, arriving on one `ipmi://` link (cipher suite 3). Starts its own socat and ipmi_sim
//! (mo_testsupport's) in a temporary directory and stops exactly those processes.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;
use mo_drivers::{Credentials, DriverOptions, connector_for};
use mo_testsupport::{IPMI_PASSWORD, IpmiSim, PeerEnd, Sol};
use tokio::io::AsyncReadExt;

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

/// Start socat and ipmi_sim (mo_testsupport's, SOL on a pty pair whose host side this benchmark
/// writes), measure, and stop them.
pub async fn run(o: Opts) -> anyhow::Result<()> {
    let mut sim = IpmiSim::start_temp("bench", Sol::Pty(PeerEnd::Caller))?;
    let host = sim.pty()?.peer_path().to_path_buf();
    let result = measure(&o, &host, sim.port()).await;
    if result.is_err() {
        eprintln!("ipmi_sim log:\n{}", sim.log_text());
    }
    result
}

async fn measure(o: &Opts, host: &std::path::Path, port: u16) -> anyhow::Result<()> {
    let opts =
        DriverOptions::new().with_credentials(Credentials::new().with_password(IPMI_PASSWORD));
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
    let host = host.to_path_buf();
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
