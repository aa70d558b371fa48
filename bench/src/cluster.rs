//! A site on one machine (issue 14, "Benchmark"): one nats-server (JetStream, from the peers
//! venv) and N `mod --cluster … --share-directory` nodes; N × M `sim` consoles are added on the
//! first node and spread over the site by its placement (or pinned round-robin with `--pinned`),
//! plus one echoing console (`cat` on a raw pty, as `rtt`'s) pinned to the first node.
//!
//! Measured: the time until every console is up on exactly one node; the keystroke round trip
//! through the console's owner and through another node; the failover time when a node is
//! killed with SIGKILL (until each of its consoles is up on exactly one other node); the RSS of
//! each node and of the nats-server; the heartbeat's size per console; and, with `--flood`
//! Unix-socket consoles printing numbered lines (`cluster_flood`), the replication lag under the
//! flood, the catch-up time after it, and the MB replicated per CPU-second (the same flood run
//! again on a site of `--replicas 0` to attribute the CPU).
//!
//! Fails on: a console that does not come up, or not on exactly one node; an echo that differs
//! from the keystrokes; a console of the killed node that no other node takes; a flood line lost
//! or a copy of a log that differs from its owner's. Every process started here is killed by
//! PID when dropped (also on error).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mo_client::{ClusterStatus, DeviceState, NodeState};

use crate::cluster_flood::{self, FloodOpts, FloodSockets, SiteView};
use crate::common::{Daemon, free_port, quantile, raise_fd_limit, rss_of, sorted, start_daemon};
use crate::echo::{EchoConsole, host_key};

/// Options of `mo-bench cluster`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Nodes in the site (at least 2: one is killed).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// `sim` consoles per node (N × M in all, added on the first node).
    #[arg(long, default_value_t = 3000)]
    consoles: usize,
    /// Pin the sims to the nodes round-robin instead of letting the site place them (the
    /// failover then has nothing to move and is not measured).
    #[arg(long)]
    pinned: bool,
    /// Keystrokes to time each way (through the owner, through another node).
    #[arg(long, default_value_t = 500)]
    keys: usize,
    /// `mod --heartbeat`.
    #[arg(long, default_value = "1s")]
    heartbeat: String,
    /// `mod --lease-ttl` (at least 5s).
    #[arg(long, default_value = "10s")]
    lease_ttl: String,
    /// How long the consoles may take to come up, and to fail over, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// The `mod` binary (default: next to this program).
    #[arg(long)]
    daemon: Option<PathBuf>,
    /// The flood that measures the replicated logs.
    #[command(flatten)]
    flood: FloodOpts,
}

/// The password of the benchmark's user.
const PASSWORD: &str = "bench-password";
/// The echoing console, pinned to the first node.
const ECHO: &str = "echo";
/// `cat` on a pty in raw mode without the kernel's echo (as `rtt`'s).
const ECHO_URL: &str = "exec:///bin/sh?arg=-c&arg=stty+raw+-echo%3B+exec+cat";

/// One `mod` of the site.
struct Node {
    name: String,
    dir: PathBuf,
    ssh: u16,
    /// `None` once killed.
    daemon: Option<Daemon>,
}

/// A running site: its nodes, a client of the first node, its nats-server. Dropped in that
/// order: the nodes go before their server.
struct Site {
    nodes: Vec<Node>,
    client: mo_client::Client,
    nats: mo_testsupport::Nats,
}

impl Site {
    /// Start a nats-server in `dir/nats` and `names` nodes in `dir/NAME`, with
    /// `--share-directory --replicas R` if `replicas` is `Some(R)`. The benchmark's user, grant
    /// and token are stored on the first node; so are `devices` when the directory is shared (the
    /// first node brings them to the site), otherwise each is stored on the node it is pinned to
    /// (the first if none). Returns the site and the seconds storing took.
    fn start(
        o: &Opts,
        dir: &Path,
        names: &[String],
        replicas: Option<usize>,
        devices: &[mo_store::Device],
    ) -> anyhow::Result<(Site, f64)> {
        let bin = match o.daemon.clone() {
            Some(b) => b,
            None => std::env::current_exe()?.with_file_name("mod"),
        };
        let nats = mo_testsupport::Nats::start(&dir.join("nats"))?;
        let url = nats.url();
        let mut stores = Vec::with_capacity(names.len());
        for name in names {
            stores.push(mo_store::DataDir::open(dir.join(name))?.open_store()?);
        }
        stores[0].add_user("bench", Some(PASSWORD))?;
        stores[0].add_grant(&mo_core::policy::Grant::to_user("bench", "admin", "all"))?;
        let token = stores[0].add_token("bench", mo_store::TokenScope::All, None)?;
        let t = Instant::now();
        for d in devices {
            if replicas.is_some() {
                stores[0].add_device(d)?;
                continue;
            }
            let at = names
                .iter()
                .position(|n| Some(n) == d.settings.node.as_ref());
            let mut own = d.clone();
            own.settings.node = None;
            stores[at.unwrap_or(0)].add_device(&own)?;
        }
        let stored = t.elapsed().as_secs_f64();
        drop(stores);
        let mut nodes = Vec::with_capacity(names.len());
        let mut http0 = 0;
        for name in names {
            let node_dir = dir.join(name);
            let (ssh, http) = (free_port()?, free_port()?);
            let mut args: Vec<String> = [
                "--cluster",
                &url,
                "--node",
                name,
                "--heartbeat",
                &o.heartbeat,
                "--ssh",
                &format!("127.0.0.1:{ssh}"),
                "--http",
                &format!("127.0.0.1:{http}"),
            ]
            .map(str::to_string)
            .to_vec();
            if let Some(r) = replicas {
                args.extend(
                    [
                        "--share-directory",
                        "--replicas",
                        &r.to_string(),
                        "--lease-ttl",
                        &o.lease_ttl,
                    ]
                    .map(str::to_string),
                );
            }
            let daemon =
                start_daemon(&bin, &node_dir, &args).with_context(|| format!("node {name}"))?;
            if nodes.is_empty() {
                http0 = http;
            }
            nodes.push(Node {
                name: name.clone(),
                dir: node_dir,
                ssh,
                daemon: Some(daemon),
            });
        }
        let client =
            mo_client::Client::new(&format!("http://127.0.0.1:{http0}"), token.token.expose())?;
        Ok((
            Site {
                nodes,
                client,
                nats,
            },
            stored,
        ))
    }

    /// The site as the flood phase sees it, with the owners `status` shows.
    fn view(&self, status: &ClusterStatus) -> SiteView<'_> {
        SiteView {
            pids: self
                .nodes
                .iter()
                .filter_map(|n| n.daemon.as_ref().map(Daemon::pid))
                .collect(),
            nats: self.nats.pid(),
            nodes: self
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.dir.clone()))
                .collect(),
            owner: holders(status, None)
                .into_iter()
                .filter_map(|(c, h)| h.first().map(|n| (c, n.clone())))
                .collect(),
            client: &self.client,
        }
    }
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    if o.nodes < 2 {
        bail!("--nodes must be at least 2 (one is killed)");
    }
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    let names: Vec<String> = (0..o.nodes).map(|i| format!("n{i}")).collect();
    let sims: Vec<String> = (0..o.nodes * o.consoles)
        .map(|i| format!("sim{i:06}"))
        .collect();
    let mut devices = Vec::with_capacity(sims.len() + o.flood.flood + 1);
    let mut echo = mo_store::Device::new(ECHO, ECHO_URL);
    echo.settings.node = Some(names[0].clone());
    devices.push(echo);
    for (i, sim) in sims.iter().enumerate() {
        let mut d = mo_store::Device::new(sim, format!("sim://{sim}?boot=fast"));
        if o.pinned {
            d.settings.node = Some(names[i % o.nodes].clone());
        }
        devices.push(d);
    }
    let sockets = FloodSockets::listen(&tmp.path().join("flood"), o.flood.flood)?;
    let floods = sockets.names();
    devices.extend(sockets.devices(&names));
    let started = Instant::now();
    let (site, stored) = Site::start(
        &o,
        &tmp.path().join("site"),
        &names,
        Some(o.flood.replicas),
        &devices,
    )?;
    println!(
        "cluster: {} nodes, {} sim consoles ({} per node{}) + 1 echo console pinned to {} + {} \
         flooding Unix-socket consoles (pinned round-robin); heartbeat {}, lease TTL {}, --replicas {}; devices \
         stored in {stored:.1} s",
        o.nodes,
        sims.len(),
        o.consoles,
        if o.pinned {
            ", pinned"
        } else {
            ", placed by the site"
        },
        names[0],
        floods.len(),
        o.heartbeat,
        o.lease_ttl,
        o.flood.replicas
    );
    let mut site = site;
    let timeout = Duration::from_secs(o.timeout);
    let mut all: Vec<String> = sims.clone();
    all.push(ECHO.into());
    all.extend(floods.iter().cloned());

    // (0) Every console up on exactly one node.
    let seen = wait_held(&site.client, &all, None, timeout)
        .await
        .context("waiting for every console to come up")?;
    println!(
        "  all {} consoles up, each on exactly one node, {:.1} s after the first node started",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    let per_node = count_per_node(&seen);
    println!("  consoles per node: {per_node:?}");

    // (3) Memory, and the heartbeat's size, with everything up.
    println!("  RSS (VmRSS) with every console up:");
    let mut total = 0;
    for n in &site.nodes {
        let rss = n
            .daemon
            .as_ref()
            .map_or(0, |d| rss_of(&d.pid().to_string()));
        total += rss;
        let held = per_node.get(&n.name).copied().unwrap_or(0);
        println!(
            "    {}: {:.1} MB, {held} consoles: {:.1} KB per console (upper bound: the node's \
             own footprint included)",
            n.name,
            rss as f64 / 1e6,
            rss as f64 / 1e3 / held.max(1) as f64
        );
    }
    println!(
        "    all nodes: {:.1} MB ({:.1} KB per console); nats-server: {:.1} MB",
        total as f64 / 1e6,
        total as f64 / 1e3 / all.len() as f64,
        rss_of(&site.nats.pid().to_string()) as f64 / 1e6
    );
    for node in &seen.nodes {
        let bytes = heartbeat_bytes(node);
        println!(
            "  heartbeat of {}: {bytes} bytes of JSON for {} consoles ({:.1} bytes per console)",
            node.name,
            node.consoles.len(),
            bytes as f64 / node.consoles.len().max(1) as f64
        );
    }

    // (1) Keystroke round trip through the owner, then through another node.
    let local = time_keys(&site.nodes[0], o.keys)
        .await
        .context("through the owner")?;
    // The first session's leaving reaches the console a moment after its SSH connection
    // closes; attached before that, the second would be a spy whose keys are refused.
    wait_no_viewer(&site.client, ECHO).await?;
    let remote = time_keys(&site.nodes[1], o.keys)
        .await
        .context("through another node")?;
    println!(
        "  keystroke round trip, {} keys each way (echo pinned to {}):",
        o.keys, names[0]
    );
    for (how, s) in [
        (format!("through the owner {}", names[0]), &local),
        (format!("through {} (remote attach)", names[1]), &remote),
    ] {
        println!(
            "    {how}: p50 {:.3} ms   p99 {:.3} ms   max {:.3} ms",
            quantile(s, 0.5),
            quantile(s, 0.99),
            s.last().copied().unwrap_or(f64::NAN)
        );
    }

    // (4) Replicated logs: lag and cost under a flood.
    let flooded = if floods.is_empty() {
        None
    } else {
        // Pinned: each is where `seen` shows it (the sims may have moved since).
        let view = site.view(&seen);
        Some(
            cluster_flood::measure(&view, sockets, &o.flood, Some(o.flood.replicas), timeout)
                .await?,
        )
    };

    // (2) Failover: the last node dies. The flood consoles are left out: their sockets are
    // closed now.
    let steady: Vec<String> = all
        .iter()
        .filter(|c| !floods.contains(c))
        .cloned()
        .collect();
    let victim = site.nodes.len() - 1;
    let victim_name = site.nodes[victim].name.clone();
    let moving: Vec<String> = if o.pinned {
        Vec::new()
    } else {
        holders(&seen, None)
            .into_iter()
            .filter(|(c, h)| h.contains(&victim_name) && !floods.contains(c))
            .map(|(c, _)| c)
            .collect()
    };
    if moving.is_empty() {
        println!(
            "  failover: not measured ({victim_name} holds no console that may move{})",
            if o.pinned {
                ": every console is pinned"
            } else {
                ""
            }
        );
    } else {
        let killed = Instant::now();
        // Drop = SIGKILL of that PID (and wait for it).
        site.nodes[victim].daemon = None;
        wait_held(&site.client, &moving, Some(&victim_name), timeout)
            .await
            .with_context(|| format!("the consoles of {victim_name} after its SIGKILL"))?;
        let took = killed.elapsed().as_secs_f64();
        // Every console, not only the moved ones, on exactly one live node.
        let left = wait_held(&site.client, &steady, Some(&victim_name), timeout)
            .await
            .context("every console after the failover")?;
        println!(
            "  failover: {victim_name} killed (SIGKILL) with {} consoles; all up on the other \
             nodes after {took:.1} s (lease TTL {}); consoles per node now: {:?}",
            moving.len(),
            o.lease_ttl,
            count_per_node(&left)
        );
    }

    drop(site);
    if let Some(with) = flooded
        && o.flood.replicas > 0
        && !o.flood.no_baseline
    {
        // The same flood on a site that replicates nothing (no --share-directory: nothing is
        // published; flood consoles only): the difference in CPU per MB is what replication
        // costs.
        let sockets = FloodSockets::listen(&tmp.path().join("flood0"), o.flood.flood)?;
        let devices = sockets.devices(&names);
        let (base, _) = Site::start(&o, &tmp.path().join("base"), &names, None, &devices)?;
        let status = wait_held(&base.client, &sockets.names(), None, timeout)
            .await
            .context("the flood consoles of the site without --share-directory")?;
        let without =
            cluster_flood::measure(&base.view(&status), sockets, &o.flood, None, timeout).await?;
        cluster_flood::report_cost(&with, &without);
    }
    Ok(())
}

/// Time `keys` keystrokes on the echo console through `node`'s SSH door; sorted milliseconds.
/// The login is tried again until the node knows the user (it learns it from the directory).
async fn time_keys(node: &Node, keys: usize) -> anyhow::Result<Vec<f64>> {
    let key = host_key(&mo_store::DataDir::open(&node.dir)?)?;
    let login = format!("bench:{ECHO}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut console = loop {
        match EchoConsole::open(node.ssh, &key, &login, PASSWORD).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.context(format!("attach through {}", node.name))),
        }
    };
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        samples.push(console.time_key(b'a' + (i % 26) as u8).await?);
    }
    console.check()?;
    console.close().await;
    Ok(sorted(samples))
}

/// Wait (up to 10 s) until nobody is attached to `device`.
async fn wait_no_viewer(client: &mo_client::Client, device: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let viewers = client.who(device).await?;
        if viewers.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{device}: still {} viewer(s) attached 10 s after the session closed",
                viewers.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// For each console listed up in a heartbeat: the nodes (up, and not `except`) holding it.
fn holders(s: &ClusterStatus, except: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &s.nodes {
        if n.state != NodeState::Up || Some(n.name.as_str()) == except {
            continue;
        }
        for c in n.consoles.iter().filter(|c| c.state == DeviceState::Up) {
            out.entry(c.name.clone()).or_default().push(n.name.clone());
        }
    }
    out
}

/// How many consoles each node holds up.
fn count_per_node(s: &ClusterStatus) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, hs) in holders(s, None) {
        for h in hs {
            *out.entry(h).or_insert(0) += 1;
        }
    }
    out
}

/// Poll the first node's `GET /api/v1/cluster` until each of `want` is up on exactly one node
/// other than `except`; the error names what was missing or doubled at the deadline.
async fn wait_held(
    client: &mo_client::Client,
    want: &[String],
    except: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<ClusterStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let problem = match client.cluster().await {
            Ok(s) => {
                let h = holders(&s, except);
                let missing: Vec<&String> = want.iter().filter(|c| !h.contains_key(*c)).collect();
                let doubled: BTreeSet<&String> = want
                    .iter()
                    .filter(|c| h.get(*c).is_some_and(|n| n.len() > 1))
                    .collect();
                if missing.is_empty() && doubled.is_empty() {
                    return Ok(s);
                }
                format!(
                    "{} of {} not up on any node (first: {:?}); {} on more than one (first: {:?})",
                    missing.len(),
                    want.len(),
                    missing.iter().take(5).collect::<Vec<_>>(),
                    doubled.len(),
                    doubled.iter().take(5).collect::<Vec<_>>()
                )
            }
            Err(e) => format!("GET /api/v1/cluster: {e}"),
        };
        if Instant::now() >= deadline {
            bail!("after {timeout:?}: {problem}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The size of `node`'s heartbeat as the node writes it (docs/cluster.md: JSON `{"node",
/// "instance","version","heartbeat_ms","leaving","consoles":[{"name","state"}]}`), from what
/// the status shows of it; the instance id counted as 32 characters.
fn heartbeat_bytes(node: &mo_client::ClusterNode) -> usize {
    let head = format!(
        r#"{{"node":"{}","instance":"{}","version":"{}","heartbeat_ms":{},"leaving":false,"consoles":[]}}"#,
        node.name,
        "0".repeat(32),
        node.version,
        node.heartbeat_ms
    );
    let consoles: usize = node
        .consoles
        .iter()
        .map(|c| r#"{"name":"","state":""},"#.len() + c.name.len() + state_word(&c.state).len())
        .sum();
    head.len() + consoles
}

/// The link state word a heartbeat carries.
fn state_word(s: &DeviceState) -> &'static str {
    match s {
        DeviceState::Up => "up",
        DeviceState::Down => "down",
        DeviceState::Connecting => "connecting",
        DeviceState::Idle => "idle",
        DeviceState::Stopped => "stopped",
        // A state added later: counted at the length of the longest word above.
        _ => "connecting",
    }
}
