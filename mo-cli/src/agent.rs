//! `mo agent …`: agents (`mo-agent` on console servers) — enrollment tokens, listing, ports,
//! removal (which revokes: the daemon cuts the agent off). See docs/agent.md.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use mo_drivers::agent::{EnrollToken, caps_names, host_key_fingerprint};
use mo_store::{AgentInfo, DataDir, Store};

use crate::table::Table;

/// `mo agent …`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Add an agent and print its one-time enrollment token (valid 24 h).
    ///
    /// The token holds a secret and the fingerprint of the daemon's SSH host key: on the console
    /// server, `mo-agent --enroll TOKEN --connect ssh://NAME@HOST:PORT --key FILE` checks the
    /// daemon's key against it, registers the agent's key and pins the daemon's host key. The
    /// token works once.
    #[command(after_help = "Examples:\n  mo agent add cs1")]
    Add {
        /// Agent name: letters, digits, `.`, `_`, `-`; 1–64 characters.
        name: String,
    },
    /// List agents: enrolled or not, connected or not, from where.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one agent.
    Show {
        /// The agent.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The ports an agent offers (as of its last connection); use them as agent://NAME/PORT.
    #[command(after_help = "Examples:\n  mo agent ports cs1\n  \
        mo device add web01 agent://cs1/ttyS3")]
    Ports {
        /// The agent.
        name: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an agent: its key is revoked and a connected agent is cut off within seconds.
    Rm {
        /// The agent.
        name: String,
    },
}

fn when(ns: Option<i64>) -> String {
    ns.map_or_else(
        || "-".to_string(),
        |t| mo_core::log::format_timestamp(u64::try_from(t).unwrap_or(0)),
    )
}

fn state(a: &AgentInfo) -> &'static str {
    match (a.fingerprint.is_some(), a.connected_ns.is_some()) {
        (false, _) => "not enrolled",
        (true, true) => "connected",
        (true, false) => "disconnected",
    }
}

fn json(a: &AgentInfo) -> serde_json::Value {
    serde_json::json!({
        "name": a.name,
        "state": state(a),
        "fingerprint": a.fingerprint,
        "created_ns": a.created_ns,
        "enrolled_ns": a.enrolled_ns,
        "connected_ns": a.connected_ns,
        "seen_ns": a.seen_ns,
        "peer": a.peer,
        "software": a.software,
        "token_expires_ns": a.token_expires_ns,
    })
}

/// Run `mo agent …` on the data directory.
pub fn run(dir: &DataDir, store: &Store, command: AgentCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        AgentCommand::Add { name } => {
            let host_key = host_key_fingerprint(&dir.host_key_path())?;
            let secret = store.add_agent(&name)?;
            let token = EnrollToken { secret, host_key };
            writeln!(out, "{token}")?;
            eprintln!(
                "agent {name} added; on the console server run (the token works once, for 24 h):\n  \
                 mo-agent --enroll TOKEN --connect ssh://{name}@DAEMON:2222 --key /etc/mo-agent/key"
            );
        }
        AgentCommand::List { json: as_json } => {
            let agents = store.agents()?;
            if as_json {
                let list: Vec<_> = agents.iter().map(json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                let mut t = Table::new(&["NAME", "STATE", "SINCE", "PEER", "KEY"]);
                for a in &agents {
                    t.row(vec![
                        a.name.clone(),
                        state(a).into(),
                        when(a.connected_ns.or(a.seen_ns).or(a.enrolled_ns)),
                        a.peer.clone().unwrap_or_else(|| "-".into()),
                        a.fingerprint.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                t.write(out)?;
            }
        }
        AgentCommand::Show {
            name,
            json: as_json,
        } => {
            let a = store.agent(&name)?;
            let ports = store.agent_ports(&name)?;
            if as_json {
                let mut v = json(&a);
                v["ports"] = ports.iter().map(|p| p.name.clone()).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "agent:        {}", a.name)?;
                writeln!(out, "state:        {}", state(&a))?;
                writeln!(
                    out,
                    "key:          {}",
                    a.fingerprint.as_deref().unwrap_or("-")
                )?;
                writeln!(out, "added:        {}", when(Some(a.created_ns)))?;
                writeln!(out, "enrolled:     {}", when(a.enrolled_ns))?;
                if a.fingerprint.is_none() {
                    writeln!(out, "token until:  {}", when(a.token_expires_ns))?;
                }
                writeln!(out, "connected:    {}", when(a.connected_ns))?;
                writeln!(out, "last seen:    {}", when(a.seen_ns))?;
                writeln!(out, "peer:         {}", a.peer.as_deref().unwrap_or("-"))?;
                writeln!(
                    out,
                    "software:     {}",
                    a.software.as_deref().unwrap_or("-")
                )?;
                let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
                writeln!(
                    out,
                    "ports:        {}",
                    if names.is_empty() {
                        "-".to_string()
                    } else {
                        names.join(", ")
                    }
                )?;
            }
        }
        AgentCommand::Ports {
            name,
            json: as_json,
        } => {
            let ports = store.agent_ports(&name)?;
            if as_json {
                let list: Vec<_> = ports
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.name,
                            "url": p.url,
                            "address": format!("agent://{name}/{}", p.name),
                            "abilities": caps_names(p.caps),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                let mut t = Table::new(&["PORT", "DEVICE ADDRESS", "ABILITIES", "AGENT SIDE"]);
                for p in &ports {
                    t.row(vec![
                        p.name.clone(),
                        format!("agent://{name}/{}", p.name),
                        caps_names(p.caps),
                        p.url.clone(),
                    ]);
                }
                t.write(out)?;
            }
        }
        AgentCommand::Rm { name } => {
            store.remove_agent(&name)?;
            writeln!(out, "removed agent {name} (its key is revoked)")?;
        }
    }
    Ok(())
}
