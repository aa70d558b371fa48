//! `mo wizard bmc|console-server|pdu`: discovery aimed at one kind of gear, which names what it
//! finds after the gear's own names (a BMC's Redfish system, a console-server port's label, a
//! PDU outlet's name) and prints the plan in `mo config import`'s format; `--apply` (or `--yes`)
//! adds it in one transaction, as `mo discover --apply` does (see `docs/wizard.md`).

mod bmc;
mod ports;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use mo_core::secret::Secret;
use mo_drivers::discover::{self, HostReport, PortSpec, ProbeOptions};

use crate::discover::plan::{CredentialsFile, Proposal};
use crate::discover::{PlanStore, parse_parallel, parse_timeout, plan_proposal, print_plan};

/// `mo wizard …`
#[derive(Debug, Subcommand)]
pub enum WizardCommand {
    /// Find the BMCs in RANGE and add one device per BMC, named after its system's own name
    /// (Redfish HostName, else Name), with its Serial-over-LAN console (IPMI 2.0; else the
    /// BMC's SSH) and its power binding (IPMI; else Redfish).
    #[command(after_help = "Examples:\n  \
        mo wizard bmc 10.0.1.0/24 --credentials creds.toml\n  \
        mo wizard bmc 10.0.1.10-40 --credentials creds.toml --apply")]
    Bmc(bmc::BmcArgs),
    /// Add one device per port of the console server HOST, reaching the port through the
    /// profile's addressing (cs://HOST/N?profile=NAME) and named after the port's label where
    /// the port shows one (its banner's first line, one word), else HOST-pN.
    #[command(after_help = "Examples:\n  \
        mo wizard console-server cs1 --profile ser2net --ports 1-16\n  \
        mo wizard console-server cs2 --profile opengear --user admin --ports 1-48 --apply")]
    ConsoleServer(ports::ConsoleServerArgs),
    /// List the outlets of the PDU at HOST with their names and bind each outlet to the device
    /// of the same name (case ignored).
    #[command(after_help = "Examples:\n  \
        mo wizard pdu pdu1 --credentials creds.toml\n  \
        mo wizard pdu 10.0.1.4 --credentials creds.toml --apply")]
    Pdu(ports::PduArgs),
}

/// The options every wizard has.
#[derive(Debug, Args)]
pub struct WizardCommon {
    /// How long to wait for each answer (500ms, 2s).
    #[arg(long, value_name = "D", default_value = "2s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// At most this many probes at a time.
    #[arg(long, value_name = "N", default_value_t = discover::DEFAULT_PARALLEL,
          value_parser = parse_parallel)]
    pub parallel: usize,
    /// Logins and SNMP communities per address pattern (TOML, as for mo discover); passwords
    /// become encrypted device secrets, never printed.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Print JSON (what was found, plan, notes, applied) instead of the table and plan.
    #[arg(long)]
    pub json: bool,
    /// Add the devices, power bindings and secrets in one transaction; nothing changes
    /// without it.
    #[arg(long, alias = "yes", short = 'y')]
    pub apply: bool,
}

impl WizardCommon {
    fn credentials(&self) -> Result<CredentialsFile> {
        match &self.credentials {
            Some(path) => Ok(CredentialsFile::read(path)?),
            None => Ok(CredentialsFile::default()),
        }
    }
}

/// Probe `addresses` on `ports` with the options of `common` and the credentials given.
fn probe(
    addresses: &[std::net::IpAddr],
    ports: &[PortSpec],
    common: &WizardCommon,
    credentials: &CredentialsFile,
) -> Result<Vec<HostReport>> {
    let options_for = |addr| {
        let cred = credentials.for_address(addr);
        ProbeOptions {
            ports: ports.to_vec(),
            timeout: common.timeout,
            communities: cred
                .map(|c| {
                    c.communities
                        .iter()
                        .map(|s| Secret::new(s.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            http_login: cred.and_then(|c| {
                Some((
                    c.user.clone()?,
                    Secret::new(c.password.clone().unwrap_or_default()),
                ))
            }),
            snmp_users: cred.and_then(|c| c.snmp_v3()).into_iter().collect(),
        }
    };
    Ok(crate::discover::runtime()?.block_on(discover::discover(
        addresses,
        common.parallel,
        options_for,
    )))
}

/// A device name made of `text`: characters a name cannot hold become `-`, at most 64, not
/// starting with `.` or `-`; `None` when nothing is left.
pub(crate) fn device_name(text: &str) -> Option<String> {
    let mapped: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped
        .trim_start_matches(['.', '-'])
        .trim_end_matches('-')
        .chars()
        .take(mo_store::MAX_DEVICE_NAME)
        .collect::<String>();
    mo_store::validate_device_name(&trimmed)
        .ok()
        .map(|()| trimmed)
}

/// Run a wizard on the data directory at `data_dir`.
pub fn run(data_dir: &Path, command: WizardCommand, out: &mut (dyn Write + Send)) -> Result<()> {
    let (common, found, proposal) = match &command {
        WizardCommand::Bmc(args) => {
            let (found, proposal) = bmc::run(data_dir, args)?;
            (&args.common, found, proposal)
        }
        WizardCommand::ConsoleServer(args) => {
            let (found, proposal) = ports::console_server(data_dir, args)?;
            (&args.common, found, proposal)
        }
        WizardCommand::Pdu(args) => {
            let (found, proposal) = ports::pdu(data_dir, args)?;
            (&args.common, found, proposal)
        }
    };
    finish(data_dir, common, &found, &proposal, out)
}

/// What a wizard found, as table rows (the first row is the header).
pub(crate) type Rows = Vec<Vec<String>>;

/// Plan the proposal, apply it with `--apply`, and print it.
fn finish(
    data_dir: &Path,
    common: &WizardCommon,
    found: &Rows,
    proposal: &Proposal,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let planning = PlanStore::open(data_dir, common.apply)?;
    let planned = plan_proposal(proposal, &planning, common.apply, false)?;
    if common.json {
        let header = found.first().cloned().unwrap_or_default();
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = found
            .iter()
            .skip(1)
            .map(|row| {
                header
                    .iter()
                    .zip(row)
                    .map(|(h, v)| (h.to_ascii_lowercase(), serde_json::Value::from(v.clone())))
                    .collect()
            })
            .collect();
        let json = serde_json::json!({
            "found": rows,
            "plan": planned.text.lines().collect::<Vec<_>>(),
            "notes": proposal.notes,
            "applied": planned.applied,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    if let Some((header, rows)) = found.split_first()
        && !rows.is_empty()
    {
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = crate::table::Table::new(&header);
        for row in rows {
            table.row(row.clone());
        }
        table.write(out)?;
        writeln!(out)?;
    }
    print_plan(
        &planned,
        &proposal.notes,
        common.apply,
        "--apply",
        None,
        out,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_from_labels() {
        assert_eq!(device_name("web03").as_deref(), Some("web03"));
        assert_eq!(device_name(" db 7 ").as_deref(), Some("db-7"));
        assert_eq!(device_name("-.x/y-").as_deref(), Some("x-y"));
        assert_eq!(device_name("---"), None);
        assert_eq!(device_name("").as_deref(), None);
        assert_eq!(device_name(&"a".repeat(80)).map(|s| s.len()), Some(64));
    }
}
