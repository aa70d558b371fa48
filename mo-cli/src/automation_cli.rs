//! `mo gang` and `mo macro play` through the daemon's API (`--server`), as the SSH shell's `gang`
//! and `macro play` do: `POST /api/v1/gang`, `POST /api/v1/macros/{name}/play`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use mo_client::{Client, PlayReport};

/// Options of `mo gang`.
#[derive(Debug, Args)]
pub struct GangArgs {
    /// The devices: names, globs (`web-*`) or `@GROUP`.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// The command line sent to every console (Enter is added).
    #[arg(long, short, value_name = "LINE")]
    pub command: String,
    /// Print the daemon's JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `KEY=VALUE` of `mo macro play --arg`.
pub fn parse_arg(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

/// `mo gang TARGET… --command LINE`: exit 1 when a device failed, refused or differed.
pub async fn gang(
    client: &Client,
    args: &GangArgs,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let targets: Vec<&str> = args.targets.iter().map(String::as_str).collect();
    let report = client.gang(&targets, &args.command).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for (device, text) in &report.outputs {
            writeln!(out, "=== {device}")?;
            write!(out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
        if !report.divergent.is_empty() {
            writeln!(
                out,
                "differ from the majority: {}",
                report.divergent.join(" ")
            )?;
        }
        for f in report.failed.iter().chain(&report.refused) {
            writeln!(out, "{}: {}", f.device, f.reason)?;
        }
    }
    let bad =
        !report.divergent.is_empty() || !report.failed.is_empty() || !report.refused.is_empty();
    Ok(if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `mo macro play NAME TARGET… [--arg K=V]… [--dry-run]`: exit 1 when a device failed.
pub async fn play(
    client: &Client,
    name: &str,
    targets: &[String],
    args: &[(String, String)],
    dry_run: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let report = client.play_macro(name, &targets, &args, dry_run).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    }
    match report {
        PlayReport::Plan(plan) => {
            if !json {
                writeln!(out, "macro {} on {}:", plan.name, plan.devices.join(" "))?;
                write!(out, "{}", plan.plan)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PlayReport::Played(played) => {
            if !json {
                for r in &played.results {
                    let how = if r.ok { "ok" } else { "FAILED" };
                    writeln!(out, "{}: {how}: {}", r.device, r.result)?;
                }
            }
            Ok(if played.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
