//! `mo wizard console-server HOST` (a device per port) and `mo wizard pdu HOST` (outlets bound
//! to the devices named like them).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use mo_drivers::discover::{Found, PortSpec, Service};
use mo_drivers::profile::{self, PROFILES};

use super::{Rows, WizardCommon, device_name, probe};
use crate::discover::PlanStore;
use crate::discover::plan::{Console, Proposal, SnmpLogin, bind_outlets, host_of, merge_consoles};

/// At most this many ports on one console server.
const MAX_PORTS: usize = 1024;

/// `mo wizard console-server HOST --profile NAME`
#[derive(Debug, Args)]
pub struct ConsoleServerArgs {
    /// The console server (name or address).
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Its profile: opengear, avocent, lantronix, digi or ser2net (see docs/drivers.md).
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// The port numbers: 1-48, 1,3,5-8.
    #[arg(long, value_name = "LIST", default_value = "1-48")]
    pub ports: String,
    /// How to reach the ports (ssh, telnet, tcp, rfc2217; default the profile's).
    #[arg(long, value_name = "METHOD")]
    pub via: Option<String>,
    /// The base port of that method, for a site that moved it (the profile's `base=`).
    #[arg(long, value_name = "N")]
    pub base: Option<u32>,
    /// The login user (needed for ssh access).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub common: WizardCommon,
}

/// `mo wizard pdu HOST`
#[derive(Debug, Args)]
pub struct PduArgs {
    /// The PDU (name or address).
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Its SNMP port.
    #[arg(long, value_name = "N", default_value_t = 161)]
    pub port: u16,
    #[command(flatten)]
    pub common: WizardCommon,
}

/// The address of `host` (an address, or a name looked up).
fn resolve_host(host: &str) -> Result<IpAddr> {
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Ok(addr);
    }
    (host, 0)
        .to_socket_addrs()
        .with_context(|| format!("cannot look up {host}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| anyhow!("{host} has no address"))
}

/// Parse a port list `1-48` or `1,3,5-8` (1 to 65535, at most [`MAX_PORTS`]).
pub(crate) fn parse_port_numbers(list: &str) -> Result<Vec<u32>> {
    let mut out: Vec<u32> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=65535).contains(n))
                .ok_or_else(|| anyhow!("--ports: bad port number `{s}` in `{item}` (1–65535)"))
        };
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(item)?, number(item)?),
        };
        if last < first {
            bail!("--ports: `{item}`: the last port comes before the first");
        }
        if out.len() + (last - first + 1) as usize > MAX_PORTS {
            bail!("--ports: more than {MAX_PORTS} ports");
        }
        for n in first..=last {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    if out.is_empty() {
        bail!("--ports: the list is empty");
    }
    Ok(out)
}

/// The scheme of a resolved address and its explicit port, if it has one.
fn scheme_and_port(address: &str) -> (&str, Option<u16>) {
    let Some((scheme, rest)) = address.split_once("://") else {
        return ("", None);
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => port.parse().ok(),
        _ => None,
    };
    (scheme, port)
}

/// The label a port shows: the first line of its banner when that is one word a device name
/// can be.
fn label_of(found: &Found) -> Option<String> {
    let text = match found {
        Found::Telnet { banner, .. } => banner.as_str(),
        Found::Other { what, .. } => what.strip_prefix("text banner: ")?,
        _ => return None,
    };
    let first = text.split(" / ").next()?.trim();
    if first.is_empty() || first.contains(char::is_whitespace) {
        return None;
    }
    device_name(first).filter(|n| n == first)
}

/// Probe the console server's ports and propose a device per port that answers.
pub fn console_server(data_dir: &Path, args: &ConsoleServerArgs) -> Result<(Rows, Proposal)> {
    if !PROFILES.contains(&args.profile.as_str()) {
        bail!(
            "unknown profile `{}` (known: {})",
            args.profile,
            PROFILES.join(", ")
        );
    }
    let numbers = parse_port_numbers(&args.ports)?;
    let addr = resolve_host(&args.host)?;
    let user = args
        .user
        .as_ref()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let mut query = format!("profile={}", args.profile);
    if let Some(via) = &args.via {
        query.push_str(&format!("&via={via}"));
    }
    if let Some(base) = args.base {
        query.push_str(&format!("&base={base}"));
    }
    // Each port's address, and the TCP port to probe where the profile maps ports to ports.
    let mut planned: Vec<(u32, String, String, Option<PortSpec>)> = Vec::new();
    for n in &numbers {
        let cs = format!("cs://{user}{}/{n}?{query}", args.host);
        let resolved = profile::resolve(&cs).map_err(|e| anyhow!("{cs}: {e}"))?;
        let (scheme, port) = scheme_and_port(&resolved);
        let spec = port.map(|port| PortSpec {
            service: match scheme {
                "telnet" | "rfc2217" => Service::Telnet,
                _ => Service::Tcp,
            },
            port,
        });
        planned.push((*n, cs, resolved, spec));
    }
    let specs: Vec<PortSpec> = planned.iter().filter_map(|p| p.3).collect();
    let credentials = args.common.credentials()?;
    let mut answers: HashMap<u16, Found> = HashMap::new();
    if !specs.is_empty() {
        for report in probe(&[addr], &specs, &args.common, &credentials)? {
            for found in report.found {
                answers.insert(found.port(), found);
            }
        }
    }
    // A label several ports show (a welcome text) names none of them.
    let labels: Vec<Option<String>> = planned
        .iter()
        .map(|p| p.3.and_then(|s| answers.get(&s.port)).and_then(label_of))
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for label in labels.iter().flatten() {
        *count.entry(label.as_str()).or_default() += 1;
    }
    let host_part = device_name(&args.host).unwrap_or_else(|| "cs".to_string());
    let mut rows: Rows = vec![
        ["PORT", "REACHED AT", "ANSWER", "NAME"]
            .map(String::from)
            .to_vec(),
    ];
    let mut consoles = Vec::new();
    let mut proposal = Proposal::default();
    for ((n, cs, resolved, spec), label) in planned.into_iter().zip(labels.iter()) {
        let answer = match spec {
            Some(s) => match answers.get(&s.port) {
                Some(found) => describe(found),
                None => {
                    proposal.notes.push(format!(
                        "port {n} ({resolved}): nothing answered; not added"
                    ));
                    continue;
                }
            },
            None => "not probed (reached by user name)".to_string(),
        };
        let name = label
            .clone()
            .filter(|l| count.get(l.as_str()) == Some(&1))
            .unwrap_or_else(|| format!("{host_part}-p{n}"));
        rows.push(vec![n.to_string(), resolved.clone(), answer, name.clone()]);
        consoles.push(Console {
            name,
            url: cs,
            description: format!(
                "port {n} of console server {} ({}; found by mo wizard console-server)",
                args.host, args.profile
            ),
            power: Vec::new(),
            secrets: Vec::new(),
            ssh: resolved.starts_with("ssh:"),
        });
    }
    let planning = PlanStore::open(data_dir, false)?;
    let stored = planning.store.list_devices()?;
    merge_consoles(consoles, &stored, &mut proposal);
    Ok((rows, proposal))
}

/// What a port answered, for the table.
fn describe(found: &Found) -> String {
    match found {
        Found::Telnet {
            rfc2217, banner, ..
        } => {
            let kind = if *rfc2217 { "RFC 2217" } else { "telnet" };
            if banner.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {banner}")
            }
        }
        Found::Ssh { banner, .. } => banner.clone(),
        Found::Other { what, .. } => what.clone(),
        _ => "answered".to_string(),
    }
}

/// Read the PDU's outlets and bind each to the device of its name.
pub fn pdu(data_dir: &Path, args: &PduArgs) -> Result<(Rows, Proposal)> {
    let addr = resolve_host(&args.host)?;
    let credentials = args.common.credentials()?;
    let spec = PortSpec {
        service: Service::Snmp,
        port: args.port,
    };
    let reports = probe(&[addr], &[spec], &args.common, &credentials)?;
    let found = reports.into_iter().flat_map(|r| r.found).next();
    let (community, v3_user, profile, outlets) = match found {
        Some(Found::Snmp {
            community,
            v3_user,
            profile: Some(profile),
            outlets,
            ..
        }) => (community, v3_user, profile, outlets),
        Some(Found::Snmp {
            sys_descr,
            sys_object_id,
            ..
        }) => bail!(
            "{}: the SNMP agent (sysObjectID {sys_object_id}, sysDescr {sys_descr:?}) matches \
             no mo PDU profile",
            args.host
        ),
        _ => bail!(
            "{}: no SNMP answer on UDP {} (wrong community or SNMPv3 user? give them with --credentials)",
            args.host,
            args.port
        ),
    };
    let cred = credentials.for_address(addr).cloned().unwrap_or_default();
    let login = SnmpLogin::of(&cred, community, &v3_user);
    let planning = PlanStore::open(data_dir, false)?;
    let stored = planning.store.list_devices()?;
    let mut proposal = Proposal::default();
    let host = host_of(addr);
    bind_outlets(
        vec![(
            host.clone(),
            args.port,
            profile.clone(),
            outlets.clone(),
            login,
        )],
        &stored,
        &mut proposal,
    );
    let mut rows: Rows = vec![["OUTLET", "NAME", "DEVICE"].map(String::from).to_vec()];
    for (i, outlet) in outlets.iter().enumerate() {
        let wanted = outlet.trim().to_ascii_lowercase();
        let device = stored
            .iter()
            .find(|d| d.name.to_ascii_lowercase() == wanted)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| "-".to_string());
        rows.push(vec![(i + 1).to_string(), outlet.clone(), device]);
    }
    Ok((rows, proposal))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_and_addresses() {
        assert_eq!(parse_port_numbers("1-3,5,2").unwrap(), [1, 2, 3, 5]);
        assert!(parse_port_numbers("3-1").is_err());
        assert!(parse_port_numbers("0").is_err());
        assert!(parse_port_numbers("1-5000").is_err());
        assert_eq!(scheme_and_port("telnet://cs1:2005"), ("telnet", Some(2005)));
        assert_eq!(scheme_and_port("ssh://admin:port05@cs1"), ("ssh", None));
        assert_eq!(scheme_and_port("ssh://admin@cs1:3005"), ("ssh", Some(3005)));
        assert_eq!(scheme_and_port("tcp://[::1]:4001"), ("tcp", Some(4001)));
    }

    #[test]
    fn labels_are_one_word() {
        let telnet = |banner: &str| Found::Telnet {
            port: 1,
            rfc2217: false,
            banner: banner.into(),
        };
        assert_eq!(
            label_of(&telnet("web05 / login:")).as_deref(),
            Some("web05")
        );
        assert_eq!(label_of(&telnet("Welcome to cs1")), None);
        assert_eq!(label_of(&telnet("")), None);
        let raw = Found::Other {
            transport: "tcp",
            port: 1,
            what: "text banner: db7".into(),
        };
        assert_eq!(label_of(&raw).as_deref(), Some("db7"));
    }
}
