//! `mo host show NAME cpu|mem|fs|proc [--json]`: a host's CPUs, memory, file systems or
//! processes, for the daemon's own host (`mod`) or a connected agent's (docs/agent.md, "Host
//! info"). With `--server` through the API (`GET /api/v1/hosts/{name}/{what}`, needs
//! `host.show`); without it only `mod`, read on this machine.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mo_client::{DAEMON_HOST, HostInfo, HostInfoKind};
use mo_drivers::host::{self, HostWhat};

use crate::table::Table;

/// `mo host …`
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Show a host's CPUs, memory, file systems or processes as a table.
    #[command(after_help = "Examples:\n  \
        mo --server http://127.0.0.1:8022 host show mod cpu\n  \
        mo --server http://127.0.0.1:8022 host show cs1 proc --json\n  \
        mo host show mod mem")]
    Show {
        /// `mod` (the daemon's host) or an agent's name (needs --server).
        name: String,
        /// cpu, mem, fs or proc.
        #[arg(value_name = "WHAT", value_parser = parse_kind)]
        info: HostInfoKind,
        /// The answer as JSON (`{"host","what","columns","rows"}`), as the API gives it.
        #[arg(long)]
        json: bool,
    },
}

fn parse_kind(text: &str) -> Result<HostInfoKind, String> {
    text.parse::<HostInfoKind>().map_err(|e| e.to_string())
}

/// Run `command`: through the daemon at `server`, or on this machine.
pub fn run(
    server: Option<&str>,
    token: Option<&str>,
    trust: mo_client::Trust,
    command: &HostCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let HostCommand::Show {
        name,
        info: what,
        json,
    } = command;
    let info = match server {
        Some(server) => {
            let client = mo_client::Client::with_trust(server, token.unwrap_or_default(), trust)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(client.host_info(name, *what))?
        }
        None if name == DAEMON_HOST => {
            let kind: HostWhat = what.name().parse()?;
            let table = host::collect(kind);
            HostInfo {
                host: name.clone(),
                what: *what,
                columns: table.columns,
                rows: table.rows,
            }
        }
        None => bail!(
            "host `{name}`: an agent's host is shown through the daemon: give its API with \
             --server URL (or MO_SERVER); without it only `{DAEMON_HOST}` (this machine) is shown"
        ),
    };
    if *json {
        serde_json::to_writer_pretty(&mut *out, &info)?;
        writeln!(out)?;
        return Ok(());
    }
    let headers: Vec<&str> = info.columns.iter().map(String::as_str).collect();
    let mut table = Table::new(&headers);
    for row in info.rows {
        table.row(row);
    }
    table.write(out)?;
    Ok(())
}
