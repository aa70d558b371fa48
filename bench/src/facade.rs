//! The Rust facade's figures for the per-binding comparison (`scripts/bench-bindings.sh`): read
//! throughput of a flooding `sim://` console through [`ConsoleHandle::read`], and expect latency
//! (`send_line` of an `echo` and `expect` of its output line, p50/p99). The Python and Node
//! bindings measure the same in bindings/python/bench_read.py and bindings/node/bench-read.mjs.

use std::time::{Duration, Instant};

use mo_core::automation::ExpectPattern;
use mo_core::facade::{ConsoleHandle, LocalOptions, Output, open_local};

use crate::common::{quantile, sim};

/// Bytes per flood line (mo-drivers/src/sim/flood.rs).
const LINE: f64 = 64.0;

/// Options of `mo-bench facade`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Seconds of reading the flood.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Flood rate as the sim's `flood` takes it (`max`, `50M`, ...).
    #[arg(long, default_value = "max")]
    rate: String,
    /// send_line + expect round trips measured for the latency figures.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

/// Log in to a fresh sim console, measure expect latency, then read throughput; print the
/// figures and the `BENCH` line that scripts/bench-bindings.sh collects.
pub async fn run(o: Opts) -> anyhow::Result<()> {
    let con = open_local("bench", sim("bench", "boot=none")?, LocalOptions::default()).await?;
    let wait = Duration::from_secs(10);
    con.expect(&[ExpectPattern::regex("login: ")?], wait)
        .await?;
    con.send_line("root").await?;
    con.expect(&[ExpectPattern::regex("Password: ")?], wait)
        .await?;
    con.send_line("pw").await?;
    con.expect(&[ExpectPattern::regex(r":~\$ ")?], wait).await?;

    let (p50, p99) = expect_latency(&con, o.iterations).await?;

    con.send_line(&format!("flood {} {}", o.rate, o.seconds.ceil() as u64 + 2))
        .await?;
    con.expect(&[ExpectPattern::regex(r"\n\d{10} ")?], wait)
        .await?;
    let (mut bytes, mut missed) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < o.seconds {
        match con.read().await {
            Output::Data(b) => bytes += b.len() as u64,
            Output::Missed(n) => missed += n,
            Output::Closed(why) => anyhow::bail!("the console closed during the flood: {why}"),
            _ => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    con.write(b"\x03").await?;
    report("rust", bytes, secs, missed, p50, p99);
    Ok(())
}

/// `iterations` round trips of `send_line("echo lat-N")` and `expect` of the output line:
/// p50 and p99 in milliseconds.
async fn expect_latency(con: &ConsoleHandle, iterations: usize) -> anyhow::Result<(f64, f64)> {
    let mut ms = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let pattern = ExpectPattern::regex(&format!(r"\nlat-{i}\r?\n"))?;
        let t = Instant::now();
        con.send_line(&format!("echo lat-{i}")).await?;
        con.expect(&[pattern], Duration::from_secs(10)).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((quantile(&ms, 0.50), quantile(&ms, 0.99)))
}

/// Print the figures for people and the `BENCH` line (binding, MB/s, lines/s, p50 ms, p99 ms)
/// that scripts/bench-bindings.sh turns into its table.
fn report(binding: &str, bytes: u64, secs: f64, missed: u64, p50: f64, p99: f64) {
    let mb_s = bytes as f64 / 1e6 / secs;
    let lines_s = bytes as f64 / LINE / secs;
    println!(
        "{binding}: read {:.1} MB in {secs:.2} s = {mb_s:.1} MB/s, {lines_s:.0} lines/s (missed {missed} B); \
         expect p50 {p50:.2} ms, p99 {p99:.2} ms",
        bytes as f64 / 1e6
    );
    println!("BENCH {binding} {mb_s:.2} {lines_s:.0} {p50:.3} {p99:.3}");
}
