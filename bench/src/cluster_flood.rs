//! The flood phase of `mo-bench cluster` (issue 14: "replication lag p99 under a 1,000-console
//! flood; MB replicated per CPU-second"), measured on the product's path: the nodes' own
//! replication (`mod --replicas N`), records published to the stream `mo_records` and written by
//! the replica nodes into their `logs/NAME/`.
//!
//! `--flood` Unix-socket consoles, served by this process (its CPU is not counted), print
//! numbered 88-byte lines (`flood-unix`'s) at `--flood-rate` bytes/s each for `--flood-seconds`.
//! While they do, the newest record of a sample of consoles is read every 150 ms from the
//! segment files of the owner and of the replicas (the same machine: `mo_core::log::tail`):
//! the replication lag is now minus the time of the newest record a replica holds. After the
//! flood, the catch-up time is how long until every replica holds the owner's last record.
//! CPU is the nodes' and nats-server's (`/proc/PID/stat`), with their idle rate (the mean of
//! 5 s before the flood and 5 s after the catch-up, or as long as the flood if shorter) taken
//! off.
//!
//! Fails on: a flood console not connected when the flood starts, a write that fails, a line
//! missing, repeated or garbled in an owner's log, an owner's log that does not verify, a copy
//! that is neither byte-identical to the owner's nor a prefix of it, fewer identical copies than
//! `--replicas`, and a `log verify --replicas` (the API, for a sample) that reports a problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use mo_core::log::{list_segments, tail};
use mo_core::record::RecordKind;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::common::{quantile, sorted};
use crate::flood_unix::{LINE_LEN, check_log, flood_text};

/// Options of the flood phase (flattened into `mo-bench cluster`'s).
#[derive(Debug, Clone, clap::Args)]
pub struct FloodOpts {
    /// Unix-socket consoles flooding at once (added to the sims; 0: no flood phase).
    #[arg(long, default_value_t = 1000)]
    pub flood: usize,
    /// Bytes per second each flooding console prints (88-byte numbered lines).
    #[arg(long, default_value_t = 4000)]
    pub flood_rate: u64,
    /// How long the consoles flood, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub flood_seconds: f64,
    /// `mod --replicas`: nodes besides the owner keeping a copy of each log. The flood is run a
    /// second time on a site of `--replicas 0` (flood consoles only) to attribute CPU.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Skip the second flood on a `--replicas 0` site (the replication's CPU is then not
    /// attributed; the total CPU per MB is still printed).
    #[arg(long)]
    pub no_baseline: bool,
    /// Consoles whose copies are read for the lag every 150 ms.
    #[arg(long, default_value_t = 50)]
    pub lag_sample: usize,
    /// Consoles checked with `POST /api/v1/devices/NAME/log/verify?replicas=true`.
    #[arg(long, default_value_t = 5)]
    pub verify_sample: usize,
}

/// The name of flooding console `i`.
pub fn flood_name(i: usize) -> String {
    format!("flood{i:05}")
}

/// Linux's USER_HZ: the unit of the CPU times in `/proc/PID/stat`.
const USER_HZ: f64 = 100.0;
/// How often the copies are read for the lag.
const LAG_EVERY: Duration = Duration::from_millis(150);
/// How long the idle CPU rate is measured before the flood and after it, at most (and at most
/// as long as the flood): long enough to hold several heartbeats, which make the idle CPU come
/// in bursts.
const IDLE: Duration = Duration::from_secs(5);

/// CPU seconds (user + system) the process `pid` has used; 0 if it is gone.
pub fn cpu_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command in parentheses: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / USER_HZ
}

/// The listening sockets of the flooding consoles; each keeps the newest connection (the node
/// holding the console) until the flood starts, then floods it.
pub struct FloodSockets {
    dir: PathBuf,
    start: watch::Sender<Option<(u64, f64)>>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<UnixStream>>>,
}

impl FloodSockets {
    /// Listen on `count` sockets in `dir` (created).
    pub fn listen(dir: &Path, count: usize) -> anyhow::Result<FloodSockets> {
        std::fs::create_dir_all(dir)?;
        let (start, rx) = watch::channel(None);
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            let path = dir.join(format!("{i:05}.sock"));
            let listener = UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            let name = flood_name(i);
            tasks.push(tokio::spawn(serve(listener, rx.clone(), name)));
        }
        Ok(FloodSockets {
            dir: dir.to_path_buf(),
            start,
            tasks,
        })
    }

    /// The devices: `floodNNNNN` at `unix://DIR/NNNNN.sock`, pinned to `nodes` round-robin
    /// (so that they do not move while the nodes join, and spread evenly).
    pub fn devices(&self, nodes: &[String]) -> Vec<mo_store::Device> {
        (0..self.tasks.len())
            .map(|i| {
                let path = self.dir.join(format!("{i:05}.sock"));
                let mut d =
                    mo_store::Device::new(flood_name(i), format!("unix://{}", path.display()));
                d.settings.node = nodes.get(i % nodes.len().max(1)).cloned();
                d
            })
            .collect()
    }

    /// The names of the flooding consoles.
    pub fn names(&self) -> Vec<String> {
        (0..self.tasks.len()).map(flood_name).collect()
    }
}

/// One console's socket: accept (keeping the newest connection) until the start, then print
/// `lines` lines over `seconds`, paced every 50 ms. Returns the connection, held open.
async fn serve(
    listener: UnixListener,
    mut start: watch::Receiver<Option<(u64, f64)>>,
    name: String,
) -> anyhow::Result<UnixStream> {
    let mut stream = None;
    let (lines, seconds) = loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((s, _)) = accepted {
                    stream = Some(s);
                }
            }
            changed = start.changed() => {
                changed?;
                if let Some(go) = *start.borrow() {
                    break go;
                }
            }
        }
    };
    let Some(mut stream) = stream else {
        bail!("{name}: no node connected to its socket before the flood");
    };
    let text = flood_text(lines);
    let began = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while sent < lines {
        tick.tick().await;
        let due = ((began.elapsed().as_secs_f64() / seconds) * lines as f64) as u64;
        let due = due.min(lines);
        if due > sent {
            let bytes = &text[sent as usize * LINE_LEN..due as usize * LINE_LEN];
            stream
                .write_all(bytes)
                .await
                .with_context(|| format!("{name}: write to the node holding it"))?;
            sent = due;
        }
    }
    Ok(stream)
}

/// The site as the flood phase sees it.
pub struct SiteView<'a> {
    /// Each node's name and data directory.
    pub nodes: Vec<(String, PathBuf)>,
    /// The nodes' processes.
    pub pids: Vec<u32>,
    /// The nats-server's process.
    pub nats: u32,
    /// Which node holds each console.
    pub owner: BTreeMap<String, String>,
    /// A client of the first node.
    pub client: &'a mo_client::Client,
}

/// What one flood measured.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// How many copies besides the owner's (`--replicas`); `None`: no `--share-directory`.
    pub replicas: Option<usize>,
    /// Bytes of the owners' segment files of the flood consoles.
    pub records: u64,
    /// Bytes of the replicas' byte-identical copies.
    pub replicated: u64,
    /// CPU seconds of the nodes and nats-server, idle rate taken off.
    pub cpu: f64,
    /// The part of `cpu` that is nats-server's.
    pub nats_cpu: f64,
}

/// The CPU rate (CPU-s per second) of the nodes and of nats-server over `window`.
async fn idle_rate(v: &SiteView<'_>, window: Duration) -> (f64, f64) {
    let (t, before) = (Instant::now(), site_cpu(v));
    tokio::time::sleep(window).await;
    let after = site_cpu(v);
    let secs = t.elapsed().as_secs_f64();
    ((after.0 - before.0) / secs, (after.1 - before.1) / secs)
}

/// CPU seconds of the nodes and of nats-server.
fn site_cpu(v: &SiteView<'_>) -> (f64, f64) {
    (v.pids.iter().map(|p| cpu_of(*p)).sum(), cpu_of(v.nats))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The newest record's time (ns) in a device's log directory, if it has one.
fn newest(dir: &Path) -> Option<u64> {
    tail(dir, 1).ok()?.last().map(|r| r.time_ns)
}

/// The lag samples of one reading (ms): per sampled console, now minus the newest record of
/// the owner's copy, and of each of the `replicas` most advanced other copies (a missing one,
/// or one whose newest record is older than the flood, counts from the flood's start).
fn read_lag(
    v: &SiteView<'_>,
    sample: &[String],
    replicas: usize,
    began_ns: u64,
    owners: &mut Vec<f64>,
    copies: &mut Vec<f64>,
) {
    for name in sample {
        let now = now_ns();
        // A record older than the flood (the link coming up) counts as the flood's start.
        let ms = |t: u64| now.saturating_sub(t.max(began_ns)) as f64 / 1e6;
        let mut others = Vec::new();
        for (node, dir) in &v.nodes {
            let t = newest(&dir.join("logs").join(name));
            if v.owner.get(name) == Some(node) {
                owners.push(ms(t.unwrap_or(began_ns)));
            } else if let Some(t) = t {
                others.push(t);
            }
        }
        others.sort_unstable_by(|a, b| b.cmp(a));
        for i in 0..replicas {
            copies.push(ms(others.get(i).copied().unwrap_or(began_ns)));
        }
    }
}

/// How a copy compares with the owner's.
#[derive(Debug, PartialEq, Eq)]
enum Copy {
    /// Byte-identical segment files; their bytes.
    Identical(u64),
    /// The same files, each a prefix of the owner's (a copy that stopped following).
    Behind,
    /// Anything else: the first difference.
    Diverged(String),
}

/// The segment files of a log directory: name and bytes.
fn segments(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for seg in list_segments(dir)? {
        out.push((seg.name(), std::fs::read(&seg.path)?));
    }
    Ok(out)
}

fn compare(owner: &[(String, Vec<u8>)], copy: &[(String, Vec<u8>)]) -> Copy {
    if owner == copy {
        return Copy::Identical(copy.iter().map(|(_, b)| b.len() as u64).sum());
    }
    for (i, (name, bytes)) in copy.iter().enumerate() {
        let Some((oname, obytes)) = owner.get(i) else {
            return Copy::Diverged(format!("segment {name} is not on the owner"));
        };
        if oname != name {
            return Copy::Diverged(format!("segment {name} where the owner has {oname}"));
        }
        if !obytes.starts_with(bytes) {
            let at = bytes.iter().zip(obytes).position(|(a, b)| a != b);
            return Copy::Diverged(format!("segment {name} differs at byte {at:?}"));
        }
        if bytes.len() < obytes.len() && i + 1 < copy.len() {
            return Copy::Diverged(format!(
                "segment {name} is cut short, yet a later one exists"
            ));
        }
    }
    Copy::Behind
}

/// Has every flood console reached the end: the owner's log holds the last line, and
/// `replicas` other copies its last record?
fn caught_up(v: &SiteView<'_>, names: &[String], replicas: usize, last_line: &[u8]) -> bool {
    names.iter().all(|name| {
        let mut owner_seq = None;
        let mut seqs = Vec::new();
        for (node, dir) in &v.nodes {
            let Ok(recs) = tail(&dir.join("logs").join(name), 8) else {
                continue;
            };
            if v.owner.get(name) == Some(node) {
                // The last line may be split between records.
                let output: Vec<u8> = recs
                    .iter()
                    .filter(|r| r.kind == RecordKind::Output)
                    .flat_map(|r| r.bytes.iter().copied())
                    .collect();
                if output.ends_with(last_line) {
                    owner_seq = recs.last().map(|r| r.seq);
                }
            } else if let Some(r) = recs.last() {
                seqs.push(r.seq);
            }
        }
        owner_seq.is_some_and(|s| seqs.iter().filter(|q| **q == s).count() >= replicas)
    })
}

/// Run the flood on a site whose consoles are all up and print what it measured; `shared` is
/// the site's `--replicas` if it runs with `--share-directory`.
pub async fn measure(
    v: &SiteView<'_>,
    sockets: FloodSockets,
    o: &FloodOpts,
    shared: Option<usize>,
    timeout: Duration,
) -> anyhow::Result<Figures> {
    let names = sockets.names();
    let lines = ((o.flood_rate as f64 * o.flood_seconds) / LINE_LEN as f64).ceil() as u64;
    let lines = lines.max(1);
    let replicas = shared.unwrap_or(0).min(v.nodes.len() - 1);
    let step = (names.len() / o.lag_sample.max(1)).max(1);
    let sample: Vec<String> = names.iter().step_by(step).cloned().collect();
    let how = match shared {
        Some(r) => format!("--share-directory --replicas {r}"),
        None => "no --share-directory: nothing published, nothing replicated".into(),
    };
    println!(
        "  flood ({how}): {} consoles (Unix sockets served by mo-bench) × {} B/s \
         for {:.1} s: {lines} numbered {LINE_LEN}-byte lines each",
        names.len(),
        o.flood_rate,
        o.flood_seconds
    );

    let idle_for = IDLE.min(Duration::from_secs_f64(o.flood_seconds));
    let idle_before = idle_rate(v, idle_for).await;

    let cpu0 = site_cpu(v);
    let began = Instant::now();
    let began_ns = now_ns();
    sockets.start.send(Some((lines, o.flood_seconds)))?;
    let (mut owner_lag, mut copy_lag) = (Vec::new(), Vec::new());
    let flood_ends = began + Duration::from_secs_f64(o.flood_seconds);
    // The first readings are left out: the copies start from nothing.
    let settle =
        began + Duration::from_millis(500).min(Duration::from_secs_f64(o.flood_seconds / 2.0));
    while Instant::now() < flood_ends {
        tokio::time::sleep(LAG_EVERY).await;
        if Instant::now() >= settle && Instant::now() < flood_ends {
            read_lag(
                v,
                &sample,
                replicas,
                began_ns,
                &mut owner_lag,
                &mut copy_lag,
            );
        }
    }
    let mut held = Vec::with_capacity(sockets.tasks.len());
    for task in sockets.tasks {
        held.push(task.await??);
    }
    let stopped = Instant::now();
    let text = flood_text(lines);
    let last_line = &text[text.len() - LINE_LEN..];
    let deadline = stopped + timeout;
    while !caught_up(v, &names, replicas, last_line) {
        if Instant::now() >= deadline {
            bail!("the logs did not catch up within {timeout:?} of the flood's end");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catch_up = stopped.elapsed().as_secs_f64();
    let window = began.elapsed().as_secs_f64();
    let cpu1 = site_cpu(v);
    // The idle rate again, after: the mean of both is taken off.
    let idle_after = idle_rate(v, idle_for).await;
    let idle = (
        (idle_before.0 + idle_after.0) / 2.0,
        (idle_before.1 + idle_after.1) / 2.0,
    );
    let nodes_cpu = (cpu1.0 - cpu0.0 - idle.0 * window).max(0.0);
    let nats_cpu = (cpu1.1 - cpu0.1 - idle.1 * window).max(0.0);
    let cpu = nodes_cpu + nats_cpu;

    // Every line in every owner's log; every copy identical or behind (a prefix).
    let (mut records, mut replicated, mut identical, mut behind) = (0u64, 0u64, 0usize, 0usize);
    for name in &names {
        let owner = v
            .owner
            .get(name)
            .with_context(|| format!("{name} has no owner"))?;
        let dir_of = |node: &str| {
            v.nodes
                .iter()
                .find(|(n, _)| n == node)
                .map(|(_, d)| d.join("logs").join(name))
        };
        let owner_dir = dir_of(owner).with_context(|| format!("no node {owner}"))?;
        check_log(&owner_dir, &text)
            .with_context(|| format!("{name}'s log on its owner {owner}"))?;
        let own = segments(&owner_dir)?;
        records += own.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        let mut same = 0;
        let mut seen = Vec::new();
        for (node, dir) in v.nodes.iter().filter(|(n, _)| n != owner) {
            let dir = dir.join("logs").join(name);
            if !dir.exists() {
                continue;
            }
            match compare(&own, &segments(&dir)?) {
                Copy::Identical(bytes) => {
                    same += 1;
                    replicated += bytes;
                    seen.push(format!("{node}: identical"));
                }
                Copy::Behind => {
                    behind += 1;
                    seen.push(format!("{node}: behind"));
                }
                Copy::Diverged(why) => bail!("{name}: the copy on {node} diverges: {why}"),
            }
        }
        if same < replicas {
            bail!(
                "{name}: {same} byte-identical copies besides {owner}'s, want {replicas} \
                 (copies: {seen:?})"
            );
        }
        identical += same;
    }
    let verified = if shared.is_some() { o.verify_sample } else { 0 };
    for name in names.iter().take(verified) {
        let report = v
            .client
            .log_verify_replicas(name)
            .await
            .with_context(|| format!("log verify {name} --replicas"))?;
        if !report.ok || !report.problems.is_empty() {
            bail!("log verify {name} --replicas: {:?}", report.problems);
        }
    }

    // Closed only now: a console whose link goes down writes a record of it.
    drop(held);
    let payload = lines * LINE_LEN as u64 * names.len() as u64;
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "    printed {:.2} MB; the owners' logs hold {:.2} MB of records, all lines once and in \
         order; the replicas wrote {:.2} MB: {identical} byte-identical copies ({behind} older \
         copies, a prefix of the owner's, left by earlier owners or replicas)",
        mb(payload),
        mb(records),
        mb(replicated)
    );
    if replicas > 0 {
        let (o_lag, c_lag) = (sorted(owner_lag), sorted(copy_lag));
        println!(
            "    replication lag (now − newest record of a replica's copy; {} consoles read \
             every {} ms, {} readings): p50 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
            sample.len(),
            LAG_EVERY.as_millis(),
            c_lag.len(),
            quantile(&c_lag, 0.5),
            quantile(&c_lag, 0.99),
            c_lag.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "    the owner's own log, same readings: p50 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
            quantile(&o_lag, 0.5),
            quantile(&o_lag, 0.99),
            o_lag.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "    catch-up: every replica held its owner's last record {catch_up:.2} s after the \
             flood stopped; log verify --replicas (API) ok on {} consoles",
            names.len().min(o.verify_sample)
        );
    } else {
        println!("    every owner's log complete {catch_up:.2} s after the flood stopped");
    }
    println!(
        "    CPU of the nodes and nats-server: {cpu:.2} s ({nats_cpu:.2} s nats-server's) over \
         {window:.1} s (idle {:.3} CPU-s/s taken off): {:.2} CPU-s per MB of records, {:.2} MB \
         of records per CPU-second",
        idle.0 + idle.1,
        cpu / mb(records).max(1e-9),
        mb(records) / cpu.max(1e-9)
    );
    Ok(Figures {
        replicas: shared,
        nats_cpu,
        records,
        replicated,
        cpu,
    })
}

/// Print the cost of replication from a flood on a replicating site and one on a site that
/// replicates nothing (each normalised to its records, since the two sites' logs need not hold
/// the same bytes).
pub fn report_cost(with: &Figures, without: &Figures) {
    let mb = |b: u64| b as f64 / 1e6;
    let per_mb = |f: &Figures| f.cpu / mb(f.records).max(1e-9);
    let extra = (per_mb(with) - per_mb(without)) * mb(with.records);
    let nats_extra = (with.nats_cpu / mb(with.records).max(1e-9)
        - without.nats_cpu / mb(without.records).max(1e-9))
        * mb(with.records);
    let copies = with.replicas.unwrap_or(0);
    if extra <= 0.0 {
        println!(
            "  replication: no CPU cost seen over the site without --share-directory ({:.2} vs \
             {:.2} CPU-s per MB of records: the noise of the machine is larger)",
            per_mb(with),
            per_mb(without)
        );
        return;
    }
    println!(
        "  replication ({copies} copies): {:.2} MB replicated for {extra:.2} CPU-s more than \
         without --share-directory ({:.2} vs {:.2} CPU-s per MB of records; {nats_extra:.2} \
         CPU-s of it nats-server's): {:.2} MB replicated per CPU-second",
        mb(with.replicated),
        per_mb(with),
        per_mb(without),
        mb(with.replicated) / extra
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
        (name.to_string(), bytes.to_vec())
    }

    #[test]
    fn a_copy_is_identical_behind_or_diverged() {
        let owner = [seg("1.mlog", b"abcdef"), seg("9.mlog", b"ghi")];
        assert_eq!(compare(&owner, &owner), Copy::Identical(9));
        assert_eq!(compare(&owner, &[seg("1.mlog", b"abc")]), Copy::Behind);
        assert_eq!(
            compare(&owner, &[seg("1.mlog", b"abcdef"), seg("9.mlog", b"g")]),
            Copy::Behind
        );
        assert!(matches!(
            compare(&owner, &[seg("1.mlog", b"abX")]),
            Copy::Diverged(why) if why.contains("byte Some(2)")
        ));
        assert!(matches!(
            compare(&owner, &[seg("1.mlog", b"abc"), seg("9.mlog", b"g")]),
            Copy::Diverged(why) if why.contains("cut short")
        ));
        assert!(matches!(
            compare(&owner, &[seg("2.mlog", b"abc")]),
            Copy::Diverged(_)
        ));
        assert!(matches!(
            compare(&owner[..1], &[seg("1.mlog", b"abcdef"), seg("9.mlog", b"g")]),
            Copy::Diverged(why) if why.contains("not on the owner")
        ));
    }

    #[test]
    fn cpu_of_agrees_with_getrusage() {
        let mut spin = 0u64;
        while crate::common::cpu_seconds() < 0.1 {
            spin = (0..100_000u64).fold(spin, |a, b| a.wrapping_add(b * b));
        }
        let (rusage, proc) = (crate::common::cpu_seconds(), cpu_of(std::process::id()));
        assert!(spin > 0);
        // /proc counts in ticks of 10 ms.
        assert!(
            (proc - rusage).abs() < 0.05,
            "/proc {proc} s, getrusage {rusage} s"
        );
        assert_eq!(cpu_of(u32::MAX), 0.0);
    }
}
