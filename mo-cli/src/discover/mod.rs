//! `mo discover`: find BMCs, Redfish services, PDUs, console servers and SSH gear on the
//! addresses given, show what mo would add in the import plan format, and with `--apply` add it
//! in one transaction (see `docs/discover.md`).

pub(crate) use mo_discover::plan;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use mo_core::secret::Secret;
use mo_drivers::discover::{self, Found, HostReport, ProbeOptions};
use mo_store::config::{self, PlanOptions};
use mo_store::{DataDir, Store};

use crate::table::Table;
use plan::CredentialsFile;

/// `mo discover TARGET…`
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mo discover 10.0.0.0/24\n  \
    mo discover 10.0.0.10-10.0.0.40 --ports ipmi,redfish:443,ssh --timeout 1s\n  \
    mo discover 10.0.1.0/24 --credentials creds.toml --apply\n  \
    mo discover 10.0.1.5 --ports telnet:7001,telnet:7002 --write found.toml\n  \
    mo --server https://mo1:8022 discover 10.0.2.0/24 --credentials creds.toml --apply\n\n\
    With --server the daemon probes from its host (POST /api/v1/discover; a global admin, at most\n\
    4096 addresses) and --apply applies the plan in its store.")]
pub struct DiscoverArgs {
    /// What to probe: an address (10.0.0.5), a CIDR range (10.0.0.0/24) or FIRST-LAST
    /// (10.0.0.10-10.0.0.40, or 10.0.0.10-40). Only these addresses are probed (at most 65536).
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// What to probe on each address, comma-separated: ipmi, redfish, snmp, ssh, telnet with
    /// an optional :PORT, tcp:PORT, or a bare port number.
    #[arg(long, value_name = "LIST", default_value = discover::DEFAULT_PORTS)]
    pub ports: String,
    /// How long to wait for each answer (500ms, 2s).
    #[arg(long, value_name = "D", default_value = "2s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// At most this many probes (one address, one port) at a time.
    #[arg(long, value_name = "N", default_value_t = discover::DEFAULT_PARALLEL,
          value_parser = parse_parallel)]
    pub parallel: usize,
    /// Print JSON (hosts, silent addresses, plan, notes) instead of the table and plan.
    #[arg(long)]
    pub json: bool,
    /// Logins and SNMP communities per address pattern (TOML, see docs/discover.md); the
    /// passwords become encrypted device secrets, never printed.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Add the devices, power bindings and secrets in one transaction (as `mo config import`).
    #[arg(long)]
    pub apply: bool,
    /// Write the devices as a file to edit and `mo config import` later: TOML (secrets sealed
    /// with this data directory's key) or, for a name ending in .csv, a spreadsheet (no secrets).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

pub(crate) fn parse_parallel(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err("give a number from 1 to 1024".into()),
    }
}

pub(crate) fn parse_timeout(text: &str) -> std::result::Result<Duration, String> {
    let d = mo_core::automation::macros::parse_duration(text).map_err(|e| e.reason)?;
    if d.is_zero() || d > Duration::from_secs(60) {
        return Err("give a timeout from 1ms to 60s".into());
    }
    Ok(d)
}

/// Run `mo discover` on the data directory at `data_dir`.
pub fn run(data_dir: &Path, args: DiscoverArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let addresses = discover::parse_targets(&args.targets)?;
    let ports = discover::parse_ports(&args.ports).map_err(|e| anyhow::anyhow!("--ports: {e}"))?;
    let credentials = match &args.credentials {
        Some(path) => CredentialsFile::read(path)?,
        None => CredentialsFile::default(),
    };
    let options_for = |addr| {
        let cred = credentials.for_address(addr);
        ProbeOptions {
            ports: ports.clone(),
            timeout: args.timeout,
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
    let reports = runtime()?.block_on(discover::discover(&addresses, args.parallel, options_for));
    let planning = PlanStore::open(data_dir, args.apply || args.write.is_some())?;
    let answered: std::collections::HashSet<_> = reports.iter().map(|r| r.address).collect();
    let silent: Vec<std::net::IpAddr> = addresses
        .iter()
        .copied()
        .filter(|a| !answered.contains(a))
        .collect();
    plan_and_report(&args, &reports, &silent, &credentials, &planning, out)
}

/// The async runtime discovery probes run on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The store a plan is made against: the data directory's; without one (and nothing to apply
/// or write), an empty one in a temporary file, removed when this is dropped.
pub(crate) struct PlanStore {
    /// The data directory, when there is one.
    pub dir: Option<DataDir>,
    /// Its store (or the scratch one).
    pub store: Store,
    scratch: Option<PathBuf>,
}

impl PlanStore {
    /// Open the store of `data_dir`, creating the directory when `create` (to apply or write).
    pub fn open(data_dir: &Path, create: bool) -> Result<PlanStore> {
        Ok(match DataDir::existing(data_dir) {
            Ok(dir) => {
                let store = dir.open_store()?;
                PlanStore {
                    dir: Some(dir),
                    store,
                    scratch: None,
                }
            }
            Err(_) if create => {
                let dir = DataDir::open(data_dir)?;
                let store = dir.open_store()?;
                PlanStore {
                    dir: Some(dir),
                    store,
                    scratch: None,
                }
            }
            Err(_) => {
                let path =
                    std::env::temp_dir().join(format!("mo-discover-{}.db", std::process::id()));
                let store = Store::open(&path)?;
                PlanStore {
                    dir: None,
                    store,
                    scratch: Some(path),
                }
            }
        })
    }
}

impl Drop for PlanStore {
    fn drop(&mut self) {
        if let Some(path) = &self.scratch {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// A proposal turned into a plan against the store, and applied or not.
pub(crate) struct Planned {
    /// The plan.
    pub plan: config::Plan,
    /// The plan in `mo config import`'s format.
    pub text: String,
    /// The site the plan was made from (to write to a file).
    pub site: config::SiteConfig,
    /// Whether it was applied.
    pub applied: bool,
}

/// Plan `proposal` against `planning`'s store and, with `apply`, apply it in one transaction.
/// Secrets are sealed with the data directory's key when applying or `seal` (to write a file).
pub(crate) fn plan_proposal(
    proposal: &plan::Proposal,
    planning: &PlanStore,
    apply: bool,
    seal: bool,
) -> Result<Planned> {
    let store = &planning.store;
    let needs_key = !proposal.secrets.is_empty();
    let key = match &planning.dir {
        Some(dir) if needs_key && (apply || seal) => Some(dir.secret_key()?),
        Some(dir) if needs_key && dir.secret_key_path().exists() => Some(dir.secret_key()?),
        _ => None,
    };
    let site = plan::site_of(proposal, store, key.as_ref())?;
    let mut plan = config::plan(&site, store, &PlanOptions { prune: false })?;
    // Discovery does not claim to see the whole site: what it did not find is not listed.
    plan.not_in_file.clear();
    let text = plan.to_string();
    let applied = if apply && !plan.is_empty() {
        config::apply_with_key(&plan, store, key.as_ref())?;
        true
    } else {
        false
    };
    Ok(Planned {
        plan,
        text,
        site,
        applied,
    })
}

/// Print the plan, the notes, the file written and what happened (`how` names the flag that
/// applies).
pub(crate) fn print_plan(
    planned: &Planned,
    notes: &[String],
    apply: bool,
    how: &str,
    written: Option<&Path>,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    write!(out, "{}", planned.text)?;
    if !notes.is_empty() {
        writeln!(out, "not added: {}", notes.len())?;
        for note in notes {
            writeln!(out, "  {note}")?;
        }
    }
    if let Some(path) = written {
        writeln!(
            out,
            "written to {} (import it with mo config import)",
            path.display()
        )?;
    }
    if planned.applied {
        writeln!(
            out,
            "applied: {} added, {} changed",
            planned.plan.adds.len(),
            planned.plan.changes.len()
        )?;
    } else if !apply && !planned.plan.is_empty() {
        writeln!(out, "nothing changed ({how} adds this)")?;
    }
    Ok(())
}

fn plan_and_report(
    args: &DiscoverArgs,
    reports: &[HostReport],
    silent: &[std::net::IpAddr],
    credentials: &CredentialsFile,
    planning: &PlanStore,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let proposal = plan::propose(reports, credentials, &planning.store)?;
    let planned = plan_proposal(&proposal, planning, args.apply, args.write.is_some())?;
    if let Some(path) = &args.write {
        write_site(path, &planned.site)?;
    }
    let applied = planned.applied;

    if args.json {
        let json = serde_json::json!({
            "hosts": reports,
            "silent": silent,
            "plan": planned.text.lines().collect::<Vec<_>>(),
            "notes": proposal.notes,
            "applied": applied,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    let mut table = Table::new(&["ADDRESS", "PORT", "FOUND", "DETAILS"]);
    for report in reports {
        for found in &report.found {
            let (port, what, details) = describe(found);
            table.row(vec![report.address.to_string(), port, what, details]);
        }
    }
    if !reports.is_empty() {
        table.write(out)?;
    }
    // Addresses that answered nothing are not an error; small ranges name them.
    let shown: Vec<String> = silent.iter().take(16).map(|a| a.to_string()).collect();
    let more = if silent.len() > shown.len() {
        format!(", {} more", silent.len() - shown.len())
    } else {
        String::new()
    };
    write!(
        out,
        "probed {} address{}: {} answered, {} silent",
        reports.len() + silent.len(),
        if reports.len() + silent.len() == 1 {
            ""
        } else {
            "es"
        },
        reports.len(),
        silent.len()
    )?;
    if silent.is_empty() {
        writeln!(out)?;
    } else {
        writeln!(out, " ({}{more})", shown.join(", "))?;
    }
    writeln!(out)?;
    print_plan(
        &planned,
        &proposal.notes,
        args.apply,
        "--apply",
        args.write.as_deref(),
        out,
    )
}

/// The table cells of a finding: port, what it is, details.
fn describe(found: &Found) -> (String, String, String) {
    match found {
        Found::Ipmi {
            port,
            ping,
            ipmi20,
            auth_types,
            cipher_suites,
        } => {
            let mut details = vec![if *ipmi20 { "IPMI 2.0" } else { "IPMI 1.5 only" }.to_string()];
            if !cipher_suites.is_empty() {
                let ids: Vec<String> = cipher_suites.iter().map(u8::to_string).collect();
                details.push(format!("cipher suites {}", ids.join(",")));
            }
            if !auth_types.is_empty() {
                details.push(format!("1.5 auth {}", auth_types.join(",")));
            }
            if !ping {
                details.push("no presence pong".into());
            }
            (format!("udp/{port}"), "IPMI BMC".into(), details.join("; "))
        }
        Found::Redfish {
            port,
            tls,
            fingerprint,
            vendor,
            product,
            version,
            systems,
            note,
        } => {
            let mut details = vec![format!(
                "{} Redfish {version}",
                if *tls { "https" } else { "http" }
            )];
            let who = [vendor.as_str(), product.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            if !who.is_empty() {
                details.push(who);
            }
            for s in systems {
                let mut name = s.name.clone();
                if !s.host_name.is_empty() {
                    name = format!("{name} ({})", s.host_name);
                }
                details.push(format!("system {}: {name}, power {}", s.id, s.power_state));
            }
            if let Some(note) = note {
                details.push(note.clone());
            }
            if let Some(fp) = fingerprint {
                details.push(format!("certificate SHA-256 {fp}"));
            }
            (format!("tcp/{port}"), "Redfish".into(), details.join("; "))
        }
        Found::Snmp {
            port,
            sys_descr,
            sys_object_id,
            profile,
            outlets,
            ..
        } => {
            let what = match profile {
                Some(p) => format!("PDU ({p})"),
                None => "SNMP agent".into(),
            };
            let mut details = Vec::new();
            if profile.is_some() {
                details.push(format!("{} outlets: {}", outlets.len(), outlets.join(", ")));
            }
            details.push(format!("sysDescr {sys_descr:?}"));
            details.push(format!("sysObjectID {sys_object_id}"));
            (format!("udp/{port}"), what, details.join("; "))
        }
        Found::Ssh { port, banner } => (format!("tcp/{port}"), "SSH".into(), banner.clone()),
        Found::Telnet {
            port,
            rfc2217,
            banner,
        } => {
            let what = if *rfc2217 {
                "serial port (RFC 2217)"
            } else {
                "telnet"
            };
            (format!("tcp/{port}"), what.into(), banner.clone())
        }
        Found::Other {
            transport,
            port,
            what,
        } => (
            format!("{transport}/{port}"),
            "unrecognised".into(),
            what.clone(),
        ),
    }
}

/// Write the proposed site to `path`: TOML, or CSV for a `.csv` name (without secrets).
fn write_site(path: &Path, site: &config::SiteConfig) -> Result<()> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let text = if csv {
        let mut text = String::from("name,url,description,trust_host_key,power\n");
        for d in &site.devices {
            let cells = [
                d.name.clone(),
                d.url.clone(),
                d.settings.description.clone().unwrap_or_default(),
                if d.settings.trust_host_key {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
                d.settings.power.join(";"),
            ];
            let quoted: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            text.push_str(&quoted.join(","));
            text.push('\n');
        }
        text
    } else {
        if site.secrets.iter().any(|s| s.sealed.is_empty()) {
            bail!("cannot seal the secrets to write {}", path.display());
        }
        config::to_toml(site)?
    };
    crate::config::write_private(path, &text)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `mo discover --server URL`: the daemon probes from its host (`POST /api/v1/discover`) and
/// answers with what it found and the plan, applied there with `--apply`.
pub fn remote(
    server: &str,
    token: Option<&str>,
    trust: mo_client::Trust,
    args: DiscoverArgs,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    if args.write.is_some() {
        bail!(
            "--write needs the data directory (secrets are sealed with its key): not with --server"
        );
    }
    let credentials = match &args.credentials {
        Some(path) => CredentialsFile::read(path)?
            .credentials
            .into_iter()
            .map(|c| mo_client::DiscoverCredential {
                pattern: c.pattern,
                user: c.user,
                password: c.password,
                bmc_key: c.bmc_key,
                communities: c.communities,
                snmp_user: c.snmp_user,
                snmp_auth: c.snmp_auth,
                snmp_privacy: c.snmp_privacy,
            })
            .collect(),
        None => Vec::new(),
    };
    let request = mo_client::DiscoverRequest {
        targets: args.targets.clone(),
        ports: Some(args.ports.clone()),
        timeout: Some(format!("{}ms", args.timeout.as_millis().max(1))),
        parallel: u32::try_from(args.parallel).ok(),
        credentials,
        apply: args.apply,
    };
    let client = mo_client::Client::with_trust(server, token.unwrap_or_default(), trust)?;
    let report = runtime()?
        .block_on(client.discover(&request))
        .with_context(|| format!("discovery through {server}"))?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let mut table = Table::new(&["ADDRESS", "PORT", "FOUND", "DETAILS"]);
    for host in &report.hosts {
        for found in &host.found {
            let (port, what, details) = describe_value(found);
            table.row(vec![host.address.clone(), port, what, details]);
        }
    }
    if !report.hosts.is_empty() {
        table.write(out)?;
    }
    let total = report.hosts.len() + report.silent.len();
    write!(
        out,
        "probed {total} address{} from {server}: {} answered, {} silent",
        if total == 1 { "" } else { "es" },
        report.hosts.len(),
        report.silent.len()
    )?;
    if report.silent.is_empty() {
        writeln!(out)?;
    } else {
        let shown: Vec<&str> = report.silent.iter().take(16).map(String::as_str).collect();
        let more = report.silent.len() - shown.len();
        let more = if more > 0 {
            format!(", {more} more")
        } else {
            String::new()
        };
        writeln!(out, " ({}{more})", shown.join(", "))?;
    }
    writeln!(out)?;
    for line in &report.plan {
        writeln!(out, "{line}")?;
    }
    if !report.notes.is_empty() {
        writeln!(out, "not added: {}", report.notes.len())?;
        for note in &report.notes {
            writeln!(out, "  {note}")?;
        }
    }
    let changes = report.plan.iter().any(|l| l.starts_with(['+', '~', '-']));
    if report.applied {
        writeln!(out, "applied on {server}")?;
    } else if !args.apply && changes {
        writeln!(out, "nothing changed (--apply adds this)")?;
    }
    Ok(())
}

/// The table cells of a finding as the API returns it: port, what it is, its other fields.
fn describe_value(found: &serde_json::Value) -> (String, String, String) {
    let field = |k: &str| found.get(k).cloned().unwrap_or_default();
    let kind = field("kind").as_str().unwrap_or_default().to_string();
    let port = field("port").as_u64().unwrap_or_default();
    let transport = match kind.as_str() {
        "ipmi" | "snmp" => "udp".to_string(),
        "other" => field("transport").as_str().unwrap_or("tcp").to_string(),
        _ => "tcp".to_string(),
    };
    let what = match kind.as_str() {
        "ipmi" => "IPMI BMC".to_string(),
        "redfish" => "Redfish".to_string(),
        "snmp" => match field("profile").as_str() {
            Some(p) => format!("PDU ({p})"),
            None => "SNMP agent".to_string(),
        },
        "ssh" => "SSH".to_string(),
        "telnet" if field("rfc2217").as_bool() == Some(true) => {
            "serial port (RFC 2217)".to_string()
        }
        "telnet" => "telnet".to_string(),
        _ => "unrecognised".to_string(),
    };
    let details = found
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "kind" | "port" | "transport"))
                .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k} {s}"),
                    other => format!("{k} {other}"),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    (format!("{transport}/{port}"), what, details)
}
