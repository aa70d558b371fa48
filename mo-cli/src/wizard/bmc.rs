//! `mo wizard bmc RANGE`: one device per BMC, named after the system it manages.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Result, anyhow};
use clap::Args;
use mo_core::secret::Secret;
use mo_drivers::discover::{self, Found, HostReport, RedfishSystem};
use mo_store::SecretKind;

use super::{Rows, WizardCommon, device_name, probe};
use crate::discover::PlanStore;
use crate::discover::plan::{
    Console, CredentialsFile, Proposal, host_of, merge_consoles, name_for, port_suffix,
};

/// What the BMC wizard probes by default: IPMI, Redfish (HTTPS, HTTP) and the BMC's SSH.
pub const BMC_PORTS: &str = "ipmi,redfish:443,redfish:80,ssh";

/// `mo wizard bmc RANGE…`
#[derive(Debug, Args)]
pub struct BmcArgs {
    /// The BMCs' addresses: an address, a CIDR range or FIRST-LAST (as for mo discover).
    #[arg(required = true, value_name = "RANGE")]
    pub targets: Vec<String>,
    /// What to probe on each address (as mo discover's --ports).
    #[arg(long, value_name = "LIST", default_value = BMC_PORTS)]
    pub ports: String,
    #[command(flatten)]
    pub common: WizardCommon,
}

/// The name a Redfish system gives itself: the first label of its HostName, else its Name.
fn system_name(system: &RedfishSystem) -> Option<String> {
    let host = system.host_name.split('.').next().unwrap_or_default();
    device_name(host).or_else(|| device_name(&system.name))
}

/// Probe the range and propose a device per BMC.
pub fn run(data_dir: &Path, args: &BmcArgs) -> Result<(Rows, Proposal)> {
    let addresses = discover::parse_targets(&args.targets)?;
    let ports = discover::parse_ports(&args.ports).map_err(|e| anyhow!("--ports: {e}"))?;
    let credentials = args.common.credentials()?;
    let reports = probe(&addresses, &ports, &args.common, &credentials)?;
    let planning = PlanStore::open(data_dir, false)?;
    let stored = planning.store.list_devices()?;
    let mut proposal = Proposal::default();
    let (rows, consoles) = consoles_of(&reports, &credentials, &mut proposal.notes);
    merge_consoles(consoles, &stored, &mut proposal);
    Ok((rows, proposal))
}

/// The consoles of the BMCs in `reports`, and the table of what was found.
fn consoles_of(
    reports: &[HostReport],
    credentials: &CredentialsFile,
    notes: &mut Vec<String>,
) -> (Rows, Vec<Console>) {
    let mut rows: Rows = vec![
        ["ADDRESS", "BMC", "SYSTEM", "NAME", "CONSOLE", "POWER"]
            .map(String::from)
            .to_vec(),
    ];
    let mut consoles: Vec<Console> = Vec::new();
    let mut names = HashSet::new();
    for report in reports {
        let addr = report.address;
        let host = host_of(addr);
        let cred = credentials.for_address(addr).cloned().unwrap_or_default();
        let user = cred.user.clone().unwrap_or_else(|| "admin".to_string());
        let mut ipmi = None;
        let mut redfish = None;
        let mut ssh = None;
        for found in &report.found {
            match found {
                Found::Ipmi {
                    port, ipmi20: true, ..
                } => ipmi = ipmi.or(Some(*port)),
                Found::Ipmi { port, .. } => notes.push(format!(
                    "{host}: IPMI on UDP {port} without IPMI 2.0: no Serial-over-LAN console"
                )),
                Found::Redfish { .. } if redfish.is_none() => redfish = Some(found),
                Found::Ssh { port, .. } => ssh = ssh.or(Some(*port)),
                _ => {}
            }
        }
        if ipmi.is_none() && redfish.is_none() {
            continue;
        }
        let ipmi_url = ipmi.map(|p| format!("ipmi://{user}@{host}{}", port_suffix(p, 623)));
        let ssh_url = ssh.map(|p| format!("ssh://{user}@{host}{}", port_suffix(p, 22)));
        let login = if cred.password.is_some() {
            format!("{user}@")
        } else {
            String::new()
        };
        let (systems, redfish_base) = match redfish {
            Some(Found::Redfish {
                port,
                tls,
                fingerprint,
                systems,
                note,
                ..
            }) => {
                if let Some(note) = note {
                    notes.push(format!(
                        "{host}: Redfish on TCP {port}: {note}; the system's name is not known"
                    ));
                }
                let query = match (tls, fingerprint) {
                    (false, _) => "?tls=0".to_string(),
                    (true, Some(fp)) => format!("?fingerprint={}", fp.replace(':', "")),
                    (true, None) => String::new(),
                };
                (
                    systems.as_slice(),
                    Some((format!("redfish://{login}{host}:{port}"), query)),
                )
            }
            _ => (&[][..], None),
        };
        let redfish_url = |s: &RedfishSystem| {
            redfish_base
                .as_ref()
                .map(|(base, query)| format!("{base}/Systems/{}{query}", s.id))
        };
        let (system, name, redfish_power) = match systems {
            [one] => (one.name.clone(), system_name(one), redfish_url(one)),
            [] => (String::new(), None, None),
            many => {
                notes.push(format!(
                    "{host}: Redfish manages {} systems ({}): one BMC console for several \
                     systems is named after the BMC; bind each system's power with mo device \
                     set NAME --power {}",
                    many.len(),
                    many.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    many.first().and_then(redfish_url).unwrap_or_default()
                ));
                (String::new(), None, None)
            }
        };
        // The console: IPMI Serial-over-LAN, else the BMC's SSH command line.
        let (url, is_ssh) = match (&ipmi_url, &ssh_url) {
            (Some(u), _) => (u.clone(), false),
            (None, Some(u)) => (u.clone(), true),
            (None, None) => {
                notes.push(format!(
                    "{host}: Redfish system {system:?} has no console mo can reach (no IPMI 2.0 \
                     Serial-over-LAN, no SSH){}",
                    redfish_power
                        .as_ref()
                        .map(|p| format!("; its power: {p}"))
                        .unwrap_or_default()
                ));
                continue;
            }
        };
        let fallback = name_for("bmc", addr, ipmi.unwrap_or(623), 623);
        let mut name = name.unwrap_or(fallback);
        if !names.insert(name.clone()) {
            name = format!("{name}-{}", addr.to_string().replace(['.', ':'], "-"));
            names.insert(name.clone());
        }
        let power: Vec<String> = ipmi_url.clone().or(redfish_power).into_iter().collect();
        let mut secrets = Vec::new();
        if let Some(p) = &cred.password {
            secrets.push((SecretKind::Password, Secret::new(p.clone())));
        }
        if ipmi.is_some()
            && let Some(k) = &cred.bmc_key
        {
            secrets.push((SecretKind::BmcKey, Secret::new(k.clone())));
        }
        let kind = match (ipmi.is_some(), redfish.is_some()) {
            (true, true) => "IPMI 2.0, Redfish",
            (true, false) => "IPMI 2.0",
            _ => "Redfish",
        };
        rows.push(vec![
            addr.to_string(),
            kind.to_string(),
            if system.is_empty() {
                "-".into()
            } else {
                system.clone()
            },
            name.clone(),
            url.clone(),
            power.first().cloned().unwrap_or_else(|| "-".into()),
        ]);
        consoles.push(Console {
            name,
            url,
            description: if system.is_empty() {
                "BMC (found by mo wizard bmc)".to_string()
            } else {
                format!("BMC of system {system} (found by mo wizard bmc)")
            },
            power,
            secrets,
            ssh: is_ssh,
        });
    }
    (rows, consoles)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn system(name: &str, host_name: &str) -> RedfishSystem {
        RedfishSystem {
            id: "1".into(),
            name: name.into(),
            host_name: host_name.into(),
            ..RedfishSystem::default()
        }
    }

    #[test]
    fn bmcs_are_named_after_their_systems() {
        let report = |addr: &str, found: Vec<Found>| HostReport {
            address: addr.parse().unwrap(),
            found,
        };
        let ipmi = Found::Ipmi {
            port: 623,
            ping: true,
            ipmi20: true,
            auth_types: vec![],
            cipher_suites: vec![3],
        };
        let redfish = |systems: Vec<RedfishSystem>| Found::Redfish {
            port: 443,
            tls: false,
            fingerprint: None,
            vendor: String::new(),
            product: String::new(),
            version: "1.0".into(),
            systems,
            note: None,
        };
        let reports = vec![
            report(
                "10.0.0.2",
                vec![
                    ipmi.clone(),
                    redfish(vec![system("Node 1", "web07.example")]),
                ],
            ),
            report("10.0.0.3", vec![redfish(vec![system("db1", "")])]),
            report(
                "10.0.0.4",
                vec![
                    redfish(vec![system("db1", "")]),
                    Found::Ssh {
                        port: 22,
                        banner: "SSH-2.0-x".into(),
                    },
                ],
            ),
            report("10.0.0.5", vec![ipmi]),
        ];
        let mut notes = Vec::new();
        let (rows, consoles) = consoles_of(&reports, &CredentialsFile::default(), &mut notes);
        let names: Vec<&str> = consoles.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web07", "db1", "bmc-10-0-0-5"]);
        assert_eq!(consoles[0].url, "ipmi://admin@10.0.0.2");
        assert_eq!(consoles[0].power, ["ipmi://admin@10.0.0.2"]);
        assert_eq!(consoles[1].url, "ssh://admin@10.0.0.4");
        assert_eq!(
            consoles[1].power,
            ["redfish://10.0.0.4:443/Systems/1?tls=0"]
        );
        assert_eq!(rows.len(), 4);
        assert!(
            notes.iter().any(|n| n.starts_with("10.0.0.3:")),
            "{notes:?}"
        );
    }
}
