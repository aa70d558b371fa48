//! `mo cluster status`: the nodes of the site the daemon at `--server` is in (`mod --cluster`),
//! their consoles and when each was last heard, through `GET /api/v1/cluster`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use mo_client::{Client, ClusterStatus};

use crate::table::Table;

/// `mo cluster …` (needs --server).
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The nodes of the site as the daemon at --server heard them: each node's state (`up`,
    /// `lost` when not heard for --lost-after heartbeats, `left` when it stopped cleanly), when
    /// it was last heard, its version and its consoles with their link state (those you may
    /// see).
    #[command(after_help = "Examples:\n  \
        mo --server http://127.0.0.1:8022 cluster status\n  \
        mo --server http://127.0.0.1:8022 cluster status --json")]
    Status {
        /// Print the API's JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// Run `command` against `client`.
pub async fn run(
    client: &Client,
    server: &str,
    command: &ClusterCommand,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    match command {
        ClusterCommand::Status { json } => {
            let status = client.cluster().await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            if !status.enabled {
                bail!(
                    "the daemon at {server} is not in a cluster (start it with \
                     `mod --cluster nats://HOST:PORT --node NAME`)"
                );
            }
            write_status(&status, out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The nodes, then the consoles of each.
fn write_status(status: &ClusterStatus, out: &mut (dyn Write + Send)) -> Result<()> {
    let me = status.node.as_deref().unwrap_or("?");
    let link = if status.connected {
        "connected to NATS"
    } else {
        "NOT connected to NATS"
    };
    writeln!(out, "node {me}, {link}")?;
    if let Some(error) = &status.error {
        writeln!(out, "warning: {error}")?;
    }
    let mut nodes = Table::new(&["NODE", "STATE", "LAST HEARD", "AGO", "VERSION", "CONSOLES"]);
    let mut consoles = Table::new(&["CONSOLE", "NODE", "STATE"]);
    for n in &status.nodes {
        let up = n
            .consoles
            .iter()
            .filter(|c| c.state == mo_client::DeviceState::Up)
            .count();
        let name = if n.this_node {
            format!("{} (this)", n.name)
        } else {
            n.name.clone()
        };
        nodes.row(vec![
            name,
            n.state.to_string(),
            n.last_heard.clone(),
            format!("{:.1}s", n.age_ms as f64 / 1000.0),
            n.version.clone(),
            format!("{} ({up} up)", n.consoles.len()),
        ]);
        for c in &n.consoles {
            consoles.row(vec![c.name.clone(), n.name.clone(), c.state.to_string()]);
        }
    }
    nodes.write(out)?;
    writeln!(out)?;
    consoles.write(out)?;
    Ok(())
}
