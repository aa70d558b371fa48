//! One console, many viewers, one stalled.

use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::console::{Console, ConsoleConfig, Mode, ViewerEvent};
use mo_core::record::now_ns;

use crate::common::{quantile, sim, sim_login, sorted};

/// Options of `mo-bench viewers`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Viewers reading the console.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Output rate of the device (sim `flood` rate).
    #[arg(long, default_value = "2M")]
    rate: String,
    /// Seconds per phase.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
}

async fn phase(
    console: &Console,
    readers: usize,
    stalled: bool,
    secs: u64,
) -> anyhow::Result<(Vec<f64>, u64, u64)> {
    let stalled_session = if stalled {
        Some(console.attach("stalled", Mode::Spy, Some(0)).await?)
    } else {
        None
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..readers {
        let mut s = console.attach(&format!("v{i}"), Mode::Spy, Some(0)).await?;
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut bytes = 0u64;
            let end = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < end {
                match tokio::time::timeout(Duration::from_millis(200), s.recv()).await {
                    Ok(ViewerEvent::Chunk(c)) if c.is_output() => {
                        lat.push(now_ns().saturating_sub(c.time_ns) as f64 / 1e3);
                        bytes += c.bytes.len() as u64;
                    }
                    Ok(ViewerEvent::Closed) => break,
                    _ => {}
                }
            }
            (lat, bytes)
        });
    }
    let mut all = Vec::new();
    let mut most = 0u64;
    while let Some(r) = tasks.join_next().await {
        let (lat, bytes) = r?;
        most = most.max(bytes);
        all.extend(lat);
    }
    let mut missed = 0;
    if let Some(mut s) = stalled_session {
        while let Some(ev) = s.try_recv() {
            if let ViewerEvent::Missed { bytes, .. } = ev {
                missed += bytes;
            }
        }
    }
    Ok((sorted(all), missed, most))
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let console = Console::spawn(ConsoleConfig::new("v1"), sim("v1", "boot=none")?, None);
    let mut driver = console.attach("driver", Mode::Attach, Some(1)).await?;
    sim_login(&mut driver, "v1").await?;
    let total = o.seconds * 2 + 4;
    driver
        .write(format!("flood {} {total}\r", o.rate).as_bytes())
        .await?;
    drop(driver);
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "viewers: one sim console flooding at {}B/s, latency from device read to viewer (µs)",
        o.rate
    );
    let (a, _, _) = phase(&console, o.viewers, false, o.seconds).await?;
    let (b, missed, seen) = phase(&console, o.viewers - 1, true, o.seconds).await?;
    println!(
        "  {} viewers, none stalled:   p50 {:>7.0}  p99 {:>7.0}  ({} samples)",
        o.viewers,
        quantile(&a, 0.5),
        quantile(&a, 0.99),
        a.len()
    );
    println!(
        "  {} viewers + 1 stalled:     p50 {:>7.0}  p99 {:>7.0}  ({} samples)",
        o.viewers - 1,
        quantile(&b, 0.5),
        quantile(&b, 0.99),
        b.len()
    );
    println!(
        "  the stalled viewer was told it missed {missed} bytes while each other viewer read up to {seen} (resynced; nobody waited)"
    );
    console.shutdown().await;
    if a.is_empty() || b.is_empty() || seen == 0 {
        bail!(
            "the viewers received no output ({} samples without a stalled viewer, {} with)",
            a.len(),
            b.len()
        );
    }
    Ok(())
}
