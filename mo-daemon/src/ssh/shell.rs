//! The command shell behind `ssh user@host` (and `ssh user@host COMMAND`).

use std::sync::Arc;
use std::time::SystemTime;

use mo_core::console::{LinkState, Mode, ViewerInfo};

use super::attach;
use super::term::Term;
use crate::Ctx;

const PROMPT: &str = "mo> ";

const HELP: &str = "\
commands:
  list                 devices, their link state and viewers
  console NAME [N]     attach to a console (read-write if free, else spy), replaying
                       the last N lines (default: the device's setting); also: attach
  spy NAME [N]         watch a console read-only
  force NAME [N]       attach and take the write lock from whoever holds it
  join NAME [N]        write alongside the current holder (where allowed)
  who [NAME]           who is on one console, or on all
  help                 this text
  exit                 log out
inside a console, Ctrl-E c ? lists the escape commands (Ctrl-E c . leaves)";

/// The interactive shell. Returns the exit status.
pub async fn run_shell(ctx: &Arc<Ctx>, user: &str, origin: &str, term: &mut Term) -> u32 {
    term.line(&format!(
        "mo console server — {} device(s). Type `help` for commands.",
        ctx.registry.list().len()
    ))
    .await;
    let mut pending = Vec::new();
    loop {
        term.write(PROMPT).await;
        let Some(line) = term.read_line(&mut pending).await else {
            return 0;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if matches!(line, "exit" | "quit" | "logout") {
            return 0;
        }
        execute(ctx, user, origin, line, term).await;
        // Keystrokes typed while a console session ran belong to it, not to the next prompt.
        pending.clear();
    }
}

/// `ssh user@host COMMAND`: run one command. Returns the exit status.
pub async fn run_command(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    command: &str,
    term: &mut Term,
) -> u32 {
    execute(ctx, user, origin, command.trim(), term).await
}

async fn execute(ctx: &Arc<Ctx>, user: &str, origin: &str, line: &str, term: &mut Term) -> u32 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return 0;
    };
    let mode = match cmd {
        "console" | "attach" | "c" => Some(Mode::Attach),
        "spy" => Some(Mode::Spy),
        "force" => Some(Mode::Force),
        "join" => Some(Mode::Join),
        _ => None,
    };
    if let Some(mode) = mode {
        let (device, replay) = match args {
            [device] => (device, None),
            [device, lines] => match lines.parse::<usize>() {
                Ok(n) if n <= 100_000 => (device, Some(n)),
                _ => {
                    term.line(&format!(
                        "bad line count `{lines}`: give 0 to 100000 lines to replay"
                    ))
                    .await;
                    return 2;
                }
            },
            _ => {
                term.line(&format!("usage: {cmd} NAME [LINES]")).await;
                return 2;
            }
        };
        return attach::run(ctx, user, origin, device, mode, replay, term).await;
    }
    match (cmd, args) {
        ("help" | "?", _) => {
            term.line(HELP).await;
            0
        }
        ("list" | "ls", []) => {
            list(ctx, term).await;
            0
        }
        ("who", []) => {
            who_all(ctx, term).await;
            0
        }
        ("who", [device]) => match ctx.registry.get(device).and_then(|e| e.console) {
            Some(console) => {
                let who = console.who().await.unwrap_or_default();
                term.line(&format_who(device, &who)).await;
                0
            }
            None => {
                term.line(&format!("unknown device `{device}`")).await;
                1
            }
        },
        ("list" | "who", _) => {
            term.line(&format!(
                "usage: {cmd}{}",
                if cmd == "who" { " [NAME]" } else { "" }
            ))
            .await;
            2
        }
        _ => {
            term.line(&format!("unknown command `{cmd}` — type `help`"))
                .await;
            127
        }
    }
}

async fn list(ctx: &Arc<Ctx>, term: &Term) {
    let entries = ctx.registry.list();
    if entries.is_empty() {
        term.line("no devices (add one with `mo device add NAME URL`)")
            .await;
        return;
    }
    let mut out = format!(
        "{:<20} {:<11} {:<8} {}\n",
        "DEVICE", "STATE", "VIEWERS", "ADDRESS"
    );
    for e in entries {
        let (state, viewers) = match &e.console {
            Some(c) => {
                let n = c.who().await.map(|w| w.len()).unwrap_or(0);
                (state_word(&c.state()), n.to_string())
            }
            None => ("error".to_string(), "-".to_string()),
        };
        out.push_str(&format!(
            "{:<20} {:<11} {:<8} {}\n",
            e.device.name, state, viewers, e.device.url
        ));
        if let Some(err) = e.error {
            out.push_str(&format!("  error: {err}\n"));
        }
    }
    term.write(term.crlf(&out)).await;
}

fn state_word(s: &LinkState) -> String {
    match s {
        LinkState::Connecting { attempt } if *attempt > 1 => format!("connecting#{attempt}"),
        other => other.word().to_string(),
    }
}

async fn who_all(ctx: &Arc<Ctx>, term: &Term) {
    let mut out = String::new();
    for e in ctx.registry.list() {
        if let Some(c) = e.console {
            let who = c.who().await.unwrap_or_default();
            if !who.is_empty() {
                out.push_str(&format_who(&e.device.name, &who));
                out.push('\n');
            }
        }
    }
    if out.is_empty() {
        out.push_str("nobody is on any console\n");
    }
    term.write(term.crlf(&out)).await;
}

/// `who` output for one console: one viewer a line, the write-lock holder first.
pub fn format_who(device: &str, who: &[ViewerInfo]) -> String {
    if who.is_empty() {
        return format!("{device}: nobody");
    }
    let now = SystemTime::now();
    let lines: Vec<String> = who
        .iter()
        .map(|v| {
            let secs = now
                .duration_since(v.since)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!(
                "{device}: {:<12} {:<5} {:>6} {}",
                v.user,
                v.role.name(),
                fmt_age(secs),
                v.origin
            )
        })
        .collect();
    lines.join("\n")
}

fn fmt_age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
