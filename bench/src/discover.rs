//! `mo discover` over a /24 of loopback addresses (127.0.N.0/24) where 10 addresses answer and
//! the rest are silent, with the default concurrency and timeout: the wall time and what was
//! sent (mo-drivers' own counters: UDP datagrams, TCP connection attempts, writes, HTTP
//! requests). Each answering address runs a small real listener sending an SSH banner; every
//! address is probed for the default services (IPMI, SNMP, Redfish ×2, SSH, telnet), on free
//! port numbers so that the listeners need no privileges. Every answering address must be
//! found, and nothing else: a miss fails the run.
//!
//! On loopback an address where nothing listens refuses at once (TCP RST, ICMP port
//! unreachable) instead of staying silent — except where the kernel rate-limits its ICMP
//! answers, and those probes wait out the timeout as on a real network.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::bail;
use mo_drivers::discover::{self, Found, PortSpec, ProbeOptions, Service};
use tokio::io::AsyncWriteExt;

/// The banner the listeners send.
const BANNER: &str = "SSH-2.0-OpenSSH_9.6 mo-bench-discover\r\n";

/// Options of `mo-bench discover`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// The range is 127.0.NET.0/24 (its first ADDRESSES addresses).
    #[arg(long, default_value_t = 9)]
    net: u8,
    /// Addresses swept (256: the whole /24).
    #[arg(long, default_value_t = 256)]
    addresses: usize,
    /// How many of them answer.
    #[arg(long, default_value_t = 10)]
    answering: usize,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    if o.addresses == 0 || o.addresses > 256 || o.answering == 0 || o.answering + 2 > o.addresses {
        bail!("give 1 to 256 addresses and fewer answering ones than addresses - 1");
    }
    let host = |last: usize| Ipv4Addr::new(127, 0, o.net, u8::try_from(last).unwrap_or(255));
    // The answering addresses, spread over the range (never .0 or the last one).
    let step = (o.addresses - 2) / o.answering;
    let answering: Vec<Ipv4Addr> = (0..o.answering).map(|i| host(1 + i * step)).collect();

    // One TCP port number free on every answering address: a listener on each.
    let mut listeners = Vec::new();
    for _ in 0..50 {
        let port = mo_testsupport::free_port()?;
        let bound: Vec<_> = answering
            .iter()
            .map_while(|a| std::net::TcpListener::bind((*a, port)).ok())
            .collect();
        if bound.len() == answering.len() {
            listeners = bound;
            break;
        }
    }
    if listeners.is_empty() {
        bail!("found no TCP port free on all of {answering:?}");
    }
    let ssh_port = listeners[0].local_addr()?.port();
    for listener in listeners {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = stream.write_all(BANNER.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
    }
    // The other services on port numbers where nothing listens.
    let ports = vec![
        PortSpec {
            service: Service::Ipmi,
            port: mo_testsupport::free_udp_port()?,
        },
        PortSpec {
            service: Service::Snmp,
            port: mo_testsupport::free_udp_port()?,
        },
        PortSpec {
            service: Service::Redfish,
            port: mo_testsupport::free_port()?,
        },
        PortSpec {
            service: Service::Redfish,
            port: mo_testsupport::free_port()?,
        },
        PortSpec {
            service: Service::Tcp,
            port: ssh_port,
        },
        PortSpec {
            service: Service::Telnet,
            port: mo_testsupport::free_port()?,
        },
    ];
    let addresses: Vec<IpAddr> = (0..o.addresses).map(|i| IpAddr::V4(host(i))).collect();
    println!(
        "discover: 127.0.{}.0-{} ({} addresses), {} answering (an SSH banner each), {} probes per \
         address (ipmi, snmp, redfish x2, ssh, telnet), parallel {}, timeout {:?}",
        o.net,
        o.addresses - 1,
        o.addresses,
        o.answering,
        ports.len(),
        discover::DEFAULT_PARALLEL,
        discover::DEFAULT_TIMEOUT,
    );

    let before = discover::sent();
    let start = Instant::now();
    let reports = discover::discover(&addresses, discover::DEFAULT_PARALLEL, |_| ProbeOptions {
        ports: ports.clone(),
        timeout: discover::DEFAULT_TIMEOUT,
        communities: Vec::new(),
        http_login: None,
        snmp_users: Vec::new(),
    })
    .await;
    let elapsed = start.elapsed();
    let after = discover::sent();

    let expected: BTreeSet<IpAddr> = answering.iter().map(|a| IpAddr::V4(*a)).collect();
    let mut found = BTreeSet::new();
    for report in &reports {
        let ssh = report.found.iter().any(
            |f| matches!(f, Found::Ssh { banner, .. } if banner.contains("mo-bench-discover")),
        );
        if !ssh || report.found.len() != 1 {
            bail!(
                "{} answered {:?}; expected only the SSH banner",
                report.address,
                report.found
            );
        }
        found.insert(report.address);
    }
    if found != expected {
        let missed: Vec<_> = expected.difference(&found).collect();
        bail!("discovery missed {missed:?} (found {found:?})");
    }
    let udp = after.udp_datagrams - before.udp_datagrams;
    let connects = after.tcp_connects - before.tcp_connects;
    let writes = after.tcp_writes - before.tcp_writes;
    let http = after.http_requests - before.http_requests;
    let packets = udp + connects + writes + http;
    println!(
        "discover: all {} answering addresses found, {} silent, in {:.2} s",
        found.len(),
        o.addresses - found.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "discover: sent {packets} packets ({:.1} per address): {udp} UDP datagrams, {connects} TCP \
         connection attempts, {writes} TCP writes, {http} HTTP requests",
        packets as f64 / o.addresses as f64
    );
    Ok(())
}
