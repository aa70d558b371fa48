//! N sim consoles flooding into their record logs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::console::{Console, ConsoleConfig, Mode};
use mo_core::log::{LogOptions, LogWriter, ReadOptions, read, verify};
use mo_core::record::RecordKind;

use crate::common::{cpu_seconds, raise_fd_limit, sim, sim_login};

/// Options of `mo-bench flood`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Consoles flooding at once.
    #[arg(long, default_value_t = 1000)]
    consoles: usize,
    /// Seconds each console floods (`flood max SECONDS` on the sim).
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Where the logs go (a temporary directory by default; removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    let base = o.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "flood: {} sim consoles, `flood max {}` each, record log with checksums and hash chain",
        o.consoles, o.seconds
    );
    let mut consoles = Vec::new();
    for i in 0..o.consoles {
        let name = format!("f{i:05}");
        let (log, _) = LogWriter::open(&base.join(&name), LogOptions::default())?;
        let console = Console::spawn(
            ConsoleConfig::new(name.clone()),
            sim(&name, "boot=none")?,
            Some(Box::new(log)),
        );
        consoles.push((name, console));
    }
    // Log every console in, then start all floods at once.
    let mut sessions = Vec::new();
    let mut logins = tokio::task::JoinSet::new();
    for (name, console) in consoles.clone() {
        logins.spawn(async move {
            let mut s = console.attach("bench", Mode::Attach, Some(1)).await?;
            sim_login(&mut s, &name).await?;
            anyhow::Ok(s)
        });
    }
    while let Some(r) = logins.join_next().await {
        sessions.push(r??);
    }
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let cmd = format!("flood max {}\r", o.seconds);
    for s in &sessions {
        s.write(cmd.as_bytes()).await?;
    }
    // Viewers leave: only the log writer consumes the output.
    drop(sessions);
    // Done when every console shows its prompt again after the flood.
    let deadline = Instant::now() + Duration::from_secs(u64::from(o.seconds) * 20 + 60);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut done = 0;
        for (name, c) in &consoles {
            let last = c.replay(0).await?;
            if last.ends_with(format!("{name}:~$ ").as_bytes()) {
                done += 1;
            }
        }
        if done == consoles.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {done} of {} floods finished", consoles.len());
        }
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    for (_, c) in &consoles {
        c.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut payload = 0u64;
    let mut records = 0u64;
    let mut bad = 0usize;
    let mut file_bytes = 0u64;
    for (name, _) in &consoles {
        let dir = base.join(name);
        let report = verify(&dir)?;
        if !report.is_ok() {
            bad += 1;
            eprintln!("{report}");
        }
        let mut expect = 1u64;
        for r in read(&dir, &ReadOptions::default())? {
            let r = r?;
            if r.seq != expect {
                bad += 1;
                eprintln!("{name}: record {expect} missing (next is {})", r.seq);
            }
            expect = r.seq + 1;
            records += 1;
            if r.kind == RecordKind::Output {
                payload += r.bytes.len() as u64;
            }
        }
        for e in std::fs::read_dir(&dir)? {
            file_bytes += e?.metadata()?.len();
        }
    }
    let mb = payload as f64 / 1e6;
    println!(
        "  output logged:        {mb:.1} MB in {records} records ({:.1} MB on disk)",
        file_bytes as f64 / 1e6
    );
    println!(
        "  wall time:            {wall:.2} s ({:.1} MB/s)",
        mb / wall
    );
    println!("  process CPU time:     {cpu:.2} s (sims, actors and log writers together)");
    println!(
        "  logged per CPU-second: {:.0} MB   (target >= 400)",
        mb / cpu.max(1e-9)
    );
    println!("  logs failing verify or with seq gaps: {bad}   (target 0)");
    Ok(())
}
