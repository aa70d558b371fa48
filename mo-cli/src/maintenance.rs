//! `mo maintenance start|stop|list`: maintenance windows started at run time, kept in the data
//! directory's store; the running daemon applies them within a second (events of the covered
//! devices are stored, marked suppressed and run no action; viewers see a banner).

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mo_client::Maintenance;
use mo_store::{MaintenanceEntry, Store};

/// `mo maintenance …`
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Put devices into maintenance now, for a while.
    #[command(after_help = "Examples:\n  \
        mo maintenance start db1 --for 2h --reason 'kernel upgrade'\n  \
        mo maintenance start 'web*' --for 30m\n  \
        mo maintenance start @rack3 --for 1h --name rack3-move")]
    Start {
        /// What it covers: a device name, a glob (`web*`) or `@GROUP` (a device group).
        target: String,
        /// How long: `30m`, `2h`, `90s`.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
        duration: String,
        /// Why (shown in the banner and by `list`).
        #[arg(long, default_value = "")]
        reason: String,
        /// The window's name (default: the target); starting a window of the same name
        /// replaces it.
        #[arg(long)]
        name: Option<String>,
    },
    /// End a maintenance window now.
    Stop {
        /// The window's name (`mo maintenance list`).
        name: String,
    },
    /// The maintenance windows started at run time and not yet ended.
    List {
        /// Print a JSON array of windows (name, target, reason, by, start, end).
        #[arg(long)]
        json: bool,
    },
}

/// Who starts a window from the command line.
fn local_user() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    if user.is_empty() {
        "local".to_owned()
    } else {
        format!("{user} (local)")
    }
}

fn now_ns() -> i64 {
    i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX)
}

/// The time as shown: RFC 3339, UTC, to the second.
fn show(ns: i64) -> String {
    mo_core::log::format_timestamp(u64::try_from(ns).unwrap_or(0))
}

/// Run `mo maintenance …` on the data directory's store.
pub fn run(store: &Store, command: MaintenanceCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        MaintenanceCommand::Start {
            target,
            duration,
            reason,
            name,
        } => {
            let length = mo_core::event::parse_window_length(&duration)
                .map_err(|e| anyhow::anyhow!("--for {e}"))?;
            let entry = MaintenanceEntry::new(
                &target,
                name.as_deref(),
                length,
                &reason,
                &local_user(),
                now_ns(),
            )
            .map_err(anyhow::Error::msg)?;
            store.start_maintenance(&entry)?;
            writeln!(
                out,
                "maintenance {} on {} until {}",
                entry.name,
                entry.target,
                show(entry.end_ns)
            )?;
        }
        MaintenanceCommand::Stop { name } => {
            if !store.stop_maintenance(&name)? {
                bail!("no maintenance window `{name}` (`mo maintenance list`)");
            }
            writeln!(out, "maintenance {name} stopped")?;
        }
        MaintenanceCommand::List { json } => {
            let now = now_ns();
            let live: Vec<Maintenance> = store
                .list_maintenance()?
                .into_iter()
                .filter(|e| e.end_ns > now)
                .map(|e| Maintenance {
                    start: show(e.start_ns),
                    end: show(e.end_ns),
                    name: e.name,
                    target: e.target,
                    reason: e.reason,
                    by: e.by,
                })
                .collect();
            write_windows(&live, json, out)?;
        }
    }
    Ok(())
}

/// Run `mo --server URL maintenance …` through the daemon's API.
pub fn remote(
    server: &str,
    token: Option<&str>,
    trust: mo_client::Trust,
    command: &MaintenanceCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let client = mo_client::Client::with_trust(server, token.unwrap_or_default(), trust)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        MaintenanceCommand::Start {
            target,
            duration,
            reason,
            name,
        } => {
            let w = rt.block_on(client.start_maintenance(
                target,
                Some(duration),
                reason,
                name.as_deref(),
            ))?;
            writeln!(
                out,
                "maintenance {} on {} until {}",
                w.name, w.target, w.end
            )?;
        }
        MaintenanceCommand::Stop { name } => {
            let w = rt.block_on(client.stop_maintenance(name))?;
            writeln!(out, "maintenance {} stopped", w.name)?;
        }
        MaintenanceCommand::List { json } => {
            write_windows(&rt.block_on(client.maintenance())?, *json, out)?;
        }
    }
    Ok(())
}

/// `mo maintenance list`: one line per window, or a JSON array.
fn write_windows(windows: &[Maintenance], json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(windows)?)?;
        return Ok(());
    }
    if windows.is_empty() {
        writeln!(out, "no maintenance windows")?;
    }
    for w in windows {
        let reason = if w.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", w.reason)
        };
        writeln!(
            out,
            "{}  {}  {} to {}  by {}{reason}",
            w.name, w.target, w.start, w.end, w.by
        )?;
    }
    Ok(())
}
