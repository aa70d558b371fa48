//! N idle sim consoles in one process.

use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::console::{Console, ConsoleConfig};
use mo_core::log::{Fsync, LogOptions, LogWriter};

use crate::common::{raise_fd_limit, rss_bytes, sim, stop_consoles};

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
    /// How long after the last console reached `login:` the idle memory is measured, in
    /// milliseconds: a console gives its replay buffer up to its record log once its output has
    /// been quiet for two to four seconds.
    #[arg(long, default_value_t = 4500)]
    quiet_ms: u64,
    /// Skip the second start: the consoles stopped and started again over the logs the first
    /// made, as a restarted daemon starts them.
    #[arg(long)]
    no_restart: bool,
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
    let heap0 = heap_in_use();
    let t0 = Instant::now();
    let (consoles, spawned) = start_all(&o, tmp.path(), &log_opts)?;
    wait_for_login(&consoles).await?;
    let up = t0.elapsed();
    let rss_up = rss_bytes();
    let heap_up = heap_in_use();
    // Idle means quiet (the hub gives a quiet console's replay buffer up to its log).
    let quiet = Duration::from_millis(o.quiet_ms);
    tokio::time::sleep(quiet).await;
    let rss = rss_bytes();
    let heap = heap_in_use();
    println!("  consoles spawned in:   {:.2} s", spawned.as_secs_f64());
    println!(
        "  all at `login:` after: {:.2} s   (target < 2 s)",
        up.as_secs_f64()
    );
    let mib = |b: u64| b as f64 / 1048576.0;
    let each = |b: u64| b.saturating_sub(rss0) as f64 / 1024.0 / consoles.len().max(1) as f64;
    println!(
        "  resident memory:       {:.0} MiB total when all reached `login:` ({:.1} KiB each)",
        mib(rss_up),
        each(rss_up)
    );
    println!(
        "  resident memory:       {:.0} MiB total {:.1} s later, idle: {:.0} MiB for the consoles, {:.1} KiB each   (target <= 100 MiB total)",
        mib(rss),
        quiet.as_secs_f64(),
        mib(rss.saturating_sub(rss0)),
        each(rss)
    );
    let per = |b: u64| b.saturating_sub(heap0) as f64 / 1024.0 / consoles.len().max(1) as f64;
    println!(
        "  heap in use (malloc):  {:.0} MiB at `login:` ({:.1} KiB each), {:.0} MiB idle ({:.1} KiB each); the rest of the resident memory is the allocator's free space",
        mib(heap_up),
        per(heap_up),
        mib(heap),
        per(heap)
    );
    if !o.no_restart {
        // A daemon restarted over the same logs: each continues its live segment (no directory
        // or file to make), and the sims boot again.
        stop_consoles(consoles.iter().map(|(_, c)| c)).await?;
        let t0 = Instant::now();
        let (consoles, _) = start_all(&o, tmp.path(), &log_opts)?;
        wait_for_login(&consoles).await?;
        println!(
            "  restarted over the same logs: all at `login:` after {:.2} s   (target < 2 s)",
            t0.elapsed().as_secs_f64()
        );
        stop_consoles(consoles.iter().map(|(_, c)| c)).await?;
    }
    Ok(())
}

/// Open each console's log and start it; how long that took.
fn start_all(
    o: &Opts,
    dir: &std::path::Path,
    log_opts: &LogOptions,
) -> anyhow::Result<(Vec<(String, Console)>, Duration)> {
    let t0 = Instant::now();
    let mut consoles = Vec::with_capacity(o.consoles);
    for i in 0..o.consoles {
        let name = format!("i{i:05}");
        let (log, _) = LogWriter::open(&dir.join(&name), log_opts.clone())?;
        let console = Console::spawn(
            ConsoleConfig::new(name.clone()),
            sim(&name, &format!("boot={}", o.boot))?,
            Some(Box::new(log)),
        );
        consoles.push((name, console));
    }
    Ok((consoles, t0.elapsed()))
}

/// Wait until every console's output ends with its `login:` prompt (5 minutes at most).
async fn wait_for_login(consoles: &[(String, Console)]) -> anyhow::Result<()> {
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
    Ok(())
}

/// Bytes the C allocator has handed out and not had back (glibc's `mallinfo2`), the live heap
/// without the free space it keeps resident.
#[allow(unsafe_code)]
fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { nix::libc::mallinfo2() };
    info.uordblks as u64 + info.hblkhd as u64
}
