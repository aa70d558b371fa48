//! Gang input: one command typed into N sim consoles at once, every answer collected.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::automation::gang::{CollectOptions, Gang, GangEventKind, Normalise};
use mo_core::console::{Console, ConsoleConfig, Mode};
use mo_core::log::{LogOptions, LogWriter};

use crate::common::{quantile, raise_fd_limit, sim, sim_login, sorted};

/// Options of `mo-bench gang`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Consoles in the gang.
    #[arg(long, default_value_t = 500)]
    consoles: usize,
    /// Commands to time (each to the whole gang).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Keep no record logs (by default every console logs to a temporary directory).
    #[arg(long)]
    no_logs: bool,
}

/// Consoles `g00000`… logged in at their shell prompts.
async fn start(
    n: usize,
    logs: Option<&std::path::Path>,
    prefix: &str,
) -> anyhow::Result<Vec<Console>> {
    let mut consoles = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{prefix}{i:05}");
        let log = match logs {
            Some(dir) => {
                let (w, _) = LogWriter::open(&dir.join(&name), LogOptions::default())?;
                Some(Box::new(w) as Box<dyn mo_core::record::RecordSink>)
            }
            None => None,
        };
        consoles.push(Console::spawn(
            ConsoleConfig::new(name.clone()),
            sim(&name, "boot=none")?,
            log,
        ));
    }
    let mut logins = tokio::task::JoinSet::new();
    for c in &consoles {
        let c = c.clone();
        logins.spawn(async move {
            let mut s = c.attach("bench", Mode::Attach, None).await?;
            sim_login(&mut s, c.name()).await
        });
    }
    while let Some(r) = logins.join_next().await {
        r??;
    }
    Ok(consoles)
}

/// Type `line` into the gang and wait until every member has answered with its prompt again.
async fn round(gang: &mut Gang, line: &str) -> anyhow::Result<Duration> {
    gang.drain();
    let mut pending: BTreeMap<String, Vec<u8>> = gang
        .active()
        .into_iter()
        .map(|d| (d.to_string(), Vec::new()))
        .collect();
    let t0 = Instant::now();
    let failed = gang.send_line(line).await;
    if let Some((device, e)) = failed.first() {
        bail!(
            "{} devices refused input, first {device}: {e}",
            failed.len()
        );
    }
    while !pending.is_empty() {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(30), gang.next()).await else {
            bail!("{} devices did not answer within 30 s", pending.len());
        };
        match ev.kind {
            GangEventKind::Output(bytes) => {
                let device = ev.device.to_string();
                let done = match pending.get_mut(&device) {
                    Some(seen) => {
                        seen.extend_from_slice(&bytes);
                        seen.ends_with(format!("{device}:~$ ").as_bytes())
                    }
                    None => false,
                };
                if done {
                    pending.remove(&device);
                }
            }
            GangEventKind::Missed { bytes } => bail!("{} missed {bytes} bytes", ev.device),
            _ => {}
        }
    }
    Ok(t0.elapsed())
}

async fn measure(
    consoles: &[Console],
    rounds: usize,
) -> anyhow::Result<(Vec<f64>, Duration, usize)> {
    let (mut gang, refused) = Gang::open("bench-gang", consoles).await;
    if let Some(r) = refused.first() {
        bail!("{} consoles refused, first: {r}", refused.len());
    }
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        times.push(
            round(&mut gang, &format!("echo round {i}"))
                .await?
                .as_secs_f64(),
        );
    }
    // The full comparison: collect until quiet, normalise, majority and divergence.
    let opts = CollectOptions {
        quiet: Duration::from_millis(100),
        max_wait: Duration::from_secs(30),
        normalise: Normalise::default(),
        pause_divergent: false,
    };
    let t0 = Instant::now();
    let report = gang.command("uname -a", &opts).await;
    // Whole, as a user waits for it: the quiet period is part of the comparison.
    let compare = t0.elapsed();
    Ok((sorted(times), compare, report.divergent.len()))
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    let logs = (!o.no_logs).then(|| tmp.path());
    println!(
        "gang: one command to {} sim consoles ({}), {} rounds, against one console alone",
        o.consoles,
        if o.no_logs {
            "no logs"
        } else {
            "with record logs"
        },
        o.rounds
    );
    let t0 = Instant::now();
    let many = start(o.consoles, logs, "g").await?;
    let one = start(1, logs, "solo").await?;
    println!(
        "  {} consoles up and logged in in {:.2} s",
        o.consoles + 1,
        t0.elapsed().as_secs_f64()
    );

    let (solo, solo_cmp, _) = measure(&one, o.rounds).await?;
    let (gang, gang_cmp, divergent) = measure(&many, o.rounds).await?;
    println!(
        "  compare: `uname -a` to every console, collected until 100 ms quiet, normalised, majority and divergence (the 100 ms included)"
    );
    println!(
        "  one console:   command to all answers p50 {:.1} ms, max {:.1} ms; compare {:.1} ms",
        quantile(&solo, 0.5) * 1e3,
        quantile(&solo, 1.0) * 1e3,
        solo_cmp.as_secs_f64() * 1e3
    );
    println!(
        "  {} consoles: command to all answers p50 {:.1} ms, max {:.1} ms; compare {:.1} ms ({} divergent)",
        o.consoles,
        quantile(&gang, 0.5) * 1e3,
        quantile(&gang, 1.0) * 1e3,
        gang_cmp.as_secs_f64() * 1e3,
        divergent
    );
    let worst = quantile(&gang, 1.0);
    println!(
        "  target < 2 s for {} consoles: {}",
        o.consoles,
        if worst < 2.0 { "met" } else { "NOT met" }
    );
    for c in many.iter().chain(one.iter()) {
        c.shutdown().await;
    }
    if divergent > 0 {
        // Every sim answers `uname -a` the same but for its name, which is masked.
        bail!("{divergent} consoles answered `uname -a` differently from the majority");
    }
    Ok(())
}
