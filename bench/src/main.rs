//! `mo-bench`: the figures issue targets are checked against. Prints measurements; asserts
//! nothing about time.
//!
//! ```text
//! cargo build --release -p mo-daemon -p mo-bench
//! target/release/mo-bench all          # every benchmark with the issue's sizes
//! target/release/mo-bench flood --consoles 100 --seconds 2
//! target/release/mo-bench flood --consoles 200 --seconds 3 --compare-fsync
//! ```

mod agent;
mod cluster;
mod cluster_flood;
mod common;
mod discover;
mod echo;
mod facade;
mod flood;
mod flood_lines;
mod flood_pty;
mod flood_unix;
mod gang;
mod idle;
mod policy;
mod power_status;
mod pty;
mod rtt;
mod scan;
mod search;
mod sol;
mod ssh_connect;
mod viewers;
mod ws_attach;

use clap::{CommandFactory as _, Parser, Subcommand};

/// mo benchmarks (run a release build).
#[derive(Debug, Parser)]
#[command(name = "mo-bench", version)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// N sim consoles flooding into their record logs: MB logged per CPU-second, lost records.
    Flood(flood::Opts),
    /// N unix-socket consoles flooding 88-byte lines from a producer process: a bare reader and
    /// mo's path (record logs, scanner): MB per CPU-second, wall time, peak RSS.
    FloodUnix(flood_unix::Opts),
    /// The producer process of `flood-unix` (started by it).
    #[command(hide = true)]
    FloodUnixProducer(flood_unix::ProducerOpts),
    /// N exec:// consoles on ptys flooding 88-byte lines from a producer process each: a bare
    /// pty reader and mo's path (record logs, scanner): MB per CPU-second, wall time, peak RSS.
    FloodPty(flood_unix::Opts),
    /// The producer `flood-pty` runs on each pty (started by it and by mo's exec driver).
    #[command(hide = true)]
    FloodPtyProducer(flood_pty::ProducerOpts),
    /// N idle sim consoles in one process: time until all show `login:`, resident memory.
    Idle(idle::Opts),
    /// One console, many viewers, one of them stalled: the others' latency with and without it.
    Viewers(viewers::Opts),
    /// Keystroke round trip through mod's SSH front door to an echoing console.
    Rtt(rtt::Opts),
    /// One command to N sim consoles at once (default 500), all answers collected, against one alone.
    Gang(gang::Opts),
    /// Policy decisions at site scale (10,000 devices, 1,000 users, 200 groups): ns per check.
    Policy(policy::Opts),
    /// Power status of 200 devices over snmpd outlets and Redfish: wall time and requests sent.
    PowerStatus(power_status::Opts),
    /// `mo log search` over 1 GB with 3 lines of context, against `grep -C 3` on the same text.
    Search(search::Opts),
    /// Scanner throughput: 100 patterns over realistic console output, MB/s per core.
    Scan(scan::Opts),
    /// `mo discover` over a /24 where 10 addresses answer: wall time and packets sent.
    Discover(discover::Opts),
    /// N SSH consoles to one sshd on loopback: time until all are connected.
    SshConnect(ssh_connect::Opts),
    /// Serial-over-LAN throughput: host output through ipmi_sim to one `ipmi://` link.
    Sol(sol::Opts),
    /// Attach-to-first-byte latency over the HTTP API's WebSocket (p50/p99).
    WsAttach(ws_attach::Opts),
    /// The Rust facade's read throughput of a flooding sim console and send_line + expect latency
    /// (p50/p99): the baseline of scripts/bench-bindings.sh.
    Facade(facade::Opts),
    /// Agents carrying flooding ports into one daemon (1 x 48 ports, then 100 x 48, 11.5 KB/s
    /// each): daemon and agent CPU per port, bytes on the wire per payload byte, keystroke round
    /// trip through an agent port against a direct serial console.
    Agent(agent::Opts),
    /// A site on one machine: one nats-server, N nodes (default 3) with M sim consoles each
    /// (default 3,000): time until all are up, keystroke round trip through the owner and
    /// through another node, replication lag and MB replicated per CPU-second under a flood of
    /// 1,000 consoles, failover time after a SIGKILL, RSS per node and of NATS.
    Cluster(cluster::Opts),
    /// All of the above with the issue's sizes, each in a fresh process (flood with
    /// `--compare-fsync`).
    All,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.cmd {
        Cmd::Flood(o) => rt.block_on(flood::run(o)),
        Cmd::FloodUnix(o) => rt.block_on(flood_unix::run(o, flood_unix::Carrier::Unix)),
        Cmd::FloodPty(o) => rt.block_on(flood_unix::run(o, flood_unix::Carrier::Pty)),
        Cmd::FloodPtyProducer(o) => rt.block_on(flood_pty::produce(o)),
        Cmd::FloodUnixProducer(o) => rt.block_on(flood_unix::produce(o)),
        Cmd::Idle(o) => rt.block_on(idle::run(o)),
        Cmd::Viewers(o) => rt.block_on(viewers::run(o)),
        Cmd::Rtt(o) => rt.block_on(rtt::run(o)),
        Cmd::Gang(o) => rt.block_on(gang::run(o)),
        Cmd::Policy(o) => policy::run(o),
        Cmd::PowerStatus(o) => rt.block_on(power_status::run(o)),
        Cmd::Search(o) => rt.block_on(search::run(o)),
        Cmd::Scan(o) => scan::run(o),
        Cmd::Discover(o) => rt.block_on(discover::run(o)),
        Cmd::SshConnect(o) => rt.block_on(ssh_connect::run(o)),
        Cmd::Sol(o) => rt.block_on(sol::run(o)),
        Cmd::WsAttach(o) => rt.block_on(ws_attach::run(o)),
        Cmd::Agent(o) => rt.block_on(agent::run(o)),
        Cmd::Facade(o) => rt.block_on(facade::run(o)),
        Cmd::Cluster(o) => rt.block_on(cluster::run(o)),
        Cmd::All => {
            let me = std::env::current_exe()?;
            // Every subcommand but this one, so that a new benchmark is never left out.
            let names: Vec<String> = Args::command()
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_owned())
                .filter(|name| name != "all" && name != "help")
                .collect();
            for name in names {
                let extra: &[&str] = match name.as_str() {
                    "flood" => &["--compare-fsync"],
                    _ => &[],
                };
                let status = std::process::Command::new(&me)
                    .arg(&name)
                    .args(extra)
                    .status()?;
                if !status.success() {
                    anyhow::bail!("mo-bench {name} {} failed: {status}", extra.join(" "));
                }
            }
            Ok(())
        }
    }
}
