//! N idle sim consoles in one process.

use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::console::{Console, ConsoleConfig};
use mo_core::log::{Fsync, LogOptions, LogWriter};

use crate::common::{raise_fd_limit, rss_bytes, sim};

/// Options of `mo-bench idle`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Consoles to run.
    #[arg(long, default_value_t = 10_000)]
    consoles: usize,
    /// Boot speed of the sims (`fast`, `normal`, `none`).
    #[arg(long, default_value = "fast")]
    boot: String,
    /// When the record logs are forced to disk, as `mod --fsync` (the daemon's default): each
    /// log's first sync waits for a journal commit, which is most of the start-up time on a
    /// loaded disk (`never` shows the rest).
    #[arg(long, default_value = "interval=1s")]
    fsync: Fsync,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    println!(
        "idle: {} sim consoles (boot={}) with record logs (--fsync {}), one process",
        o.consoles, o.boot, o.fsync
    );
    let log_opts = LogOptions {
        fsync: o.fsync,
        ..LogOptions::default()
    };
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let mut consoles = Vec::with_capacity(o.consoles);
    for i in 0..o.consoles {
        let name = format!("i{i:05}");
        let (log, _) = LogWriter::open(&tmp.path().join(&name), log_opts.clone())?;
        let console = Console::spawn(
            ConsoleConfig::new(name.clone()),
            sim(&name, &format!("boot={}", o.boot))?,
            Some(Box::new(log)),
        );
        consoles.push((name, console));
    }
    let spawned = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut pending: Vec<usize> = (0..consoles.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            let (name, c) = &consoles[i];
            let last = c.replay(0).await?;
            if !last.ends_with(format!("{name} login: ").as_bytes()) {
                still.push(i);
            }
        }
        pending = still;
        if Instant::now() > deadline {
            bail!("{} consoles never reached login:", pending.len());
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let up = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_bytes();
    println!("  consoles spawned in:   {:.2} s", spawned.as_secs_f64());
    println!(
        "  all at `login:` after: {:.2} s   (target < 5 s)",
        up.as_secs_f64()
    );
    println!(
        "  resident memory:       {:.0} MiB total, {:.0} MiB for the consoles, {:.1} KiB each   (target < 1024 MiB total)",
        rss as f64 / 1048576.0,
        rss.saturating_sub(rss0) as f64 / 1048576.0,
        rss.saturating_sub(rss0) as f64 / 1024.0 / consoles.len().max(1) as f64
    );
    let _keep: Vec<Console> = consoles.into_iter().map(|(_, c)| c).collect();
    Ok(())
}
