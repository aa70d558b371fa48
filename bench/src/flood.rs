//! N sim consoles flooding into their record logs: MB logged per CPU-second, and a check that every
//! numbered line of every console is in its log exactly once, in order. `--compare-fsync` runs the
//! same flood with `--fsync never` and with a durability policy and prints the cost of syncing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::console::{Console, ConsoleConfig, Mode};
use mo_core::log::{Fsync, LogOptions, LogWriter, ReadOptions, read, verify};
use mo_core::record::RecordKind;

use crate::common::{cpu_seconds, raise_fd_limit, sim, sim_login, stop_consoles};
use crate::flood_lines::FloodLines;

/// Options of `mo-bench flood`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Consoles flooding at once.
    #[arg(long, default_value_t = 1000)]
    consoles: usize,
    /// Seconds each console floods (`flood RATE SECONDS` on the sim).
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Output rate of each sim in bytes/s (`500`, `100k`, `10M`), or `max`: as fast as it is read.
    #[arg(long, default_value = "max", value_parser = parse_rate)]
    rate: String,
    /// When the logs are forced to disk, as `mod --fsync`: `never`, `always` or
    /// `interval=DURATION`.
    #[arg(long, default_value = "interval=1s")]
    fsync: Fsync,
    /// Flood twice, with `--fsync never` and with the `--fsync` policy, and print the ratio of
    /// MB logged per CPU-second.
    #[arg(long)]
    compare_fsync: bool,
    /// With `--compare-fsync`: pairs of runs after a warm-up run (the order alternates; figures
    /// are summed).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Where the logs go (a temporary directory by default; removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A sim `flood` rate: `max`, or digits with an optional k, M or G.
fn parse_rate(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
    let ok = s.eq_ignore_ascii_case("max")
        || (!digits.is_empty()
            && s.len() - digits.len() <= 1
            && digits.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}`: expected max or bytes/s such as 500, 100k, 10M"
        ))
    }
}

/// What one flood measured.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    /// Output bytes logged, in MB.
    mb: f64,
    wall: f64,
    cpu: f64,
}

impl Figures {
    fn add(&mut self, other: Figures) {
        self.mb += other.mb;
        self.wall += other.wall;
        self.cpu += other.cpu;
    }

    fn per_cpu_second(&self) -> f64 {
        self.mb / self.cpu.max(1e-9)
    }
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    let base = o.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    if !o.compare_fsync {
        flood(&o, &base, o.fsync, 1).await?;
        return Ok(());
    }
    // The first flood in a process costs more than any later one (memory, page cache): a warm-up
    // run, checked but not counted, keeps that out of the comparison.
    println!("(warm-up run, not counted)");
    flood(&o, &base, Fsync::Never, 0).await?;
    let mut never = Figures::default();
    let mut policy = Figures::default();
    let mut run_no = 0;
    let mut pair_ratios = Vec::new();
    for round in 0..o.rounds.max(1) {
        // Alternate which runs first, so neither always pays for the other's write-back.
        let order = if round % 2 == 0 {
            [Fsync::Never, o.fsync]
        } else {
            [o.fsync, Fsync::Never]
        };
        let mut pair = [Figures::default(); 2];
        for fsync in order {
            run_no += 1;
            let figures = flood(&o, &base, fsync, run_no).await?;
            if fsync == Fsync::Never {
                never.add(figures);
                pair[0] = figures;
            } else {
                policy.add(figures);
                pair[1] = figures;
            }
        }
        pair_ratios.push(pair[1].per_cpu_second() / pair[0].per_cpu_second().max(1e-9));
    }
    let ratio = policy.per_cpu_second() / never.per_cpu_second().max(1e-9);
    println!(
        "flood --compare-fsync: {} consoles, `flood {} {}`, {} round(s)",
        o.consoles,
        o.rate,
        o.seconds,
        o.rounds.max(1)
    );
    for (name, f) in [("never".to_owned(), never), (o.fsync.to_string(), policy)] {
        println!(
            "  --fsync {name:<14} {:>6.0} MB per CPU-second, {:>6.0} MB/s wall ({:.1} MB, {:.2} CPU-s)",
            f.per_cpu_second(),
            f.mb / f.wall.max(1e-9),
            f.mb,
            f.cpu
        );
    }
    println!(
        "  ratio {} / never: {ratio:.3} of the MB per CPU-second   (target >= 0.90: {}); \
         per round: {}",
        o.fsync,
        if ratio >= 0.9 { "met" } else { "MISSED" },
        pair_ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// One flood of every console with the logs under `--fsync fsync`; fails if a log lost,
/// repeated or garbled anything.
async fn flood(o: &Opts, base: &Path, fsync: Fsync, run_no: u32) -> anyhow::Result<Figures> {
    let dir = base.join(format!("run{run_no}"));
    println!(
        "flood: {} sim consoles, `flood {} {}` each, record log with checksums and hash chain, \
         --fsync {fsync}",
        o.consoles, o.rate, o.seconds
    );
    let opts = LogOptions {
        fsync,
        ..LogOptions::default()
    };
    let mut consoles = Vec::new();
    for i in 0..o.consoles {
        let name = format!("f{i:05}");
        let (log, _) = LogWriter::open(&dir.join(&name), opts.clone())?;
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
    // Start from a quiet disk: what an earlier run left to write back is not this run's cost.
    nix::unistd::sync();
    let command = format!("flood {} {}", o.rate, o.seconds);
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    for s in &sessions {
        s.write(format!("{command}\r").as_bytes()).await?;
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
    // Stop every actor and wait until each has ended (its final log sync done, its writer closed).
    stop_consoles(consoles.iter().map(|(_, c)| c)).await?;

    let mut payload = 0u64;
    let mut records = 0u64;
    let mut lines = 0u64;
    let mut file_bytes = 0u64;
    let mut problems = Vec::new();
    for (name, _) in &consoles {
        let log = dir.join(name);
        let report = verify(&log)?;
        if !report.is_ok() {
            problems.push(format!("{name}: verify: {report}"));
        }
        let mut expect = 1u64;
        let mut check = FloodLines::new(&command);
        let mut line_error = None;
        for r in read(&log, &ReadOptions::default())? {
            let r = r?;
            if r.seq != expect {
                problems.push(format!(
                    "{name}: record {expect} missing (the next is {})",
                    r.seq
                ));
            }
            expect = r.seq + 1;
            records += 1;
            if r.kind == RecordKind::Output {
                payload += r.bytes.len() as u64;
                if line_error.is_none()
                    && let Err(e) = check.feed(&r.bytes)
                {
                    line_error = Some(e);
                }
            }
        }
        match line_error.map_or_else(|| check.finish(), Err) {
            Ok(n) => lines += n,
            Err(e) => problems.push(format!("{name}: {e}")),
        }
        for e in std::fs::read_dir(&log)? {
            file_bytes += e?.metadata()?.len();
        }
    }
    if o.dir.is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    let mb = payload as f64 / 1e6;
    println!(
        "  output logged:         {mb:.1} MB in {records} records ({:.1} MB on disk)",
        file_bytes as f64 / 1e6
    );
    println!(
        "  wall time:             {wall:.2} s ({:.1} MB/s)",
        mb / wall
    );
    println!("  process CPU time:      {cpu:.2} s (sims, actors and log writers together)");
    println!(
        "  logged per CPU-second: {:.0} MB   (target >= 400)",
        mb / cpu.max(1e-9)
    );
    if !problems.is_empty() {
        for p in problems.iter().take(20) {
            eprintln!("  LOST OR DAMAGED: {p}");
        }
        bail!(
            "{} problems in the record logs (the first: {})",
            problems.len(),
            problems[0]
        );
    }
    if lines == 0 {
        bail!("no flood line reached any log");
    }
    println!(
        "  flood lines checked:   {lines} ({:.0} per console), each once and in order in its log",
        lines as f64 / consoles.len().max(1) as f64
    );
    Ok(Figures { mb, wall, cpu })
}
