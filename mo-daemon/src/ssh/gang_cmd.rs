//! `gang` in the SSH shell: one input stream to many consoles.
//!
//! `gang NAME|GLOB|@GROUP… -- COMMAND` sends one command and prints each device's answer tagged
//! with its name, then which devices answered differently from the majority.
//!
//! `gang NAME|GLOB|@GROUP…` opens an interactive gang session: every line typed goes to every
//! active device the same way, and the report follows each line. Lines starting with `:` are
//! gang commands: `:devices`, `:pause DEV…`, `:resume DEV…`, `:pause-divergent on|off` (pause the
//! devices whose answer differs from the majority, after each command), `:help`, `:quit` (or
//! Ctrl-D). Every device needs the gang permission and its write lock, which the gang keeps for
//! the whole session (a device held by someone else is named as busy and left out).

use std::sync::Arc;

use mo_core::automation::{CollectOptions, CommandReport, Gang};
use mo_core::policy::Permission;

use super::term::Term;
use crate::Ctx;

use mo_core::door::gang::{GANG_USAGE as USAGE, GangInput, GangLine};

const HELP: &str = "\
every line goes to every active device; then each device's answer, tagged, and the divergent ones
  :devices                 active and paused devices
  :pause DEV…              stop sending to these devices
  :resume DEV…             send to them again
  :pause-divergent on|off  pause devices that answer differently from the majority
  :help                    this text
  :quit                    leave (Ctrl-D too)";

/// Run `gang …` (the whole shell line). Returns the exit status.
pub async fn run(ctx: &Arc<Ctx>, user: &str, origin: &str, line: &str, term: &mut Term) -> u32 {
    let Ok(GangLine { targets, command }) = GangLine::parse(line) else {
        term.line(USAGE).await;
        return 2;
    };
    let names: Vec<&str> = targets.iter().map(String::as_str).collect();
    let Some((mut gang, mut status)) = open(ctx, user, origin, &names, term).await else {
        return 1;
    };
    match command {
        Some(command) => {
            let report = gang.command(&command, &CollectOptions::default()).await;
            status |= show(&report, term).await;
            status
        }
        None => interactive(&mut gang, term).await.max(status),
    }
}

/// Check the gang permission on every target and open the gang; refusals are printed.
async fn open(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    names: &[&str],
    term: &mut Term,
) -> Option<(Gang, u32)> {
    let entries = match crate::power::select(ctx, user, names) {
        Ok(entries) => entries,
        Err(e) => {
            term.line(&e).await;
            return None;
        }
    };
    let mut consoles = Vec::new();
    for entry in &entries {
        if let Err(why) = ctx
            .check(user, origin, Permission::Gang, &entry.device.name)
            .await
        {
            term.line(&why).await;
            return None;
        }
        match &entry.console {
            Some(console) => consoles.push(console.clone()),
            None => {
                term.line(&format!("{} is not running", entry.device.name))
                    .await;
                return None;
            }
        }
    }
    let (gang, refused) = Gang::open_from(user, origin, &consoles).await;
    let mut status = 0;
    for refusal in &refused {
        term.line(&refusal.to_string()).await;
        status = 1;
    }
    if gang.devices().is_empty() {
        term.line("no device left in the gang").await;
        return None;
    }
    Some((gang, status))
}

/// Print a command's report: each device's answer tagged, failures, losses, divergence.
/// Returns 1 if the input could not be sent somewhere.
async fn show(report: &CommandReport, term: &mut Term) -> u32 {
    let mut status = 0;
    let mut out = String::new();
    for (device, bytes) in &report.outputs {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            out.push_str(&format!("{device}: {}\n", line.trim_end_matches('\r')));
        }
    }
    for (device, why) in &report.failed {
        out.push_str(&format!("{device}: not sent: {why}\n"));
        status = 1;
    }
    for (device, bytes) in &report.missed {
        out.push_str(&format!(
            "{device}: {bytes} bytes of output lost while collecting\n"
        ));
    }
    if report.divergent.is_empty() {
        out.push_str(&format!(
            "all {} devices answered alike\n",
            report.majority.len()
        ));
    } else {
        out.push_str(&format!(
            "divergent: {} (majority: {} devices)\n",
            report.divergent.join(", "),
            report.majority.len()
        ));
    }
    term.write(term.crlf(&out)).await;
    status
}

/// The interactive session: one line at a time to every active device.
async fn interactive(gang: &mut Gang, term: &mut Term) -> u32 {
    let mut opts = CollectOptions::default();
    let mut status = 0;
    let mut pending = Vec::new();
    term.line(&format!(
        "gang of {}: {} — lines go to every active device; `:help` lists gang commands, `:quit` leaves",
        gang.devices().len(),
        gang.devices().join(", ")
    ))
    .await;
    loop {
        term.write(format!("gang({})> ", gang.active().len())).await;
        let Some(line) = term.read_line(&mut pending).await else {
            break;
        };
        match GangInput::parse(&line) {
            GangInput::Quit => break,
            GangInput::Help => term.line(HELP).await,
            GangInput::Devices => {
                term.line(&format!("active: {}", gang.active().join(", ")))
                    .await;
                term.line(&format!("paused: {}", gang.paused().join(", ")))
                    .await;
            }
            GangInput::Pause { devices, pause } => {
                for device in &devices {
                    if !gang.set_paused(device, pause) {
                        term.line(&format!("{device} is not in this gang")).await;
                    }
                }
                term.line(&format!("paused: {}", gang.paused().join(", ")))
                    .await;
            }
            GangInput::PauseDivergent(on) => {
                opts.pause_divergent = on;
                let value = if on { "on" } else { "off" };
                term.line(&format!("pause-divergent {value}")).await;
            }
            GangInput::Unknown(first) => {
                term.line(&format!(
                    "unknown gang command `{first}`; `:help` lists them"
                ))
                .await;
            }
            GangInput::Send(line) => {
                if gang.active().is_empty() {
                    term.line("every device is paused: `:resume DEV` or `:quit`")
                        .await;
                    continue;
                }
                let report = gang.command(&line, &opts).await;
                status |= show(&report, term).await;
                if opts.pause_divergent && !report.divergent.is_empty() {
                    term.line(&format!("paused: {}", gang.paused().join(", ")))
                        .await;
                }
            }
        }
    }
    term.line("gang closed").await;
    status
}
