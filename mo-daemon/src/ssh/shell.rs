//! The command shell behind `ssh user@host` (and `ssh user@host COMMAND`).

use std::sync::Arc;
use std::time::SystemTime;

use mo_core::console::{LinkState, ViewerInfo};
use mo_core::door::line_edit::LineEditor;
use mo_core::door::shell::ShellCommand;
use mo_core::policy::Permission;

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
  events [NAME] [N]    the last N events (default 20), of one device or all
  ack ID               acknowledge an event (runs actions held for acknowledgement)
  gang NAME… [-- CMD]  send CMD to several consoles (names, globs, @groups) at once; show each
                       device's answer and which devices answered unlike the majority;
                       without CMD an interactive gang session (:help inside)
  listen NAME…         watch many consoles at once (names, globs, @groups), read-only,
                       each line tagged with its device; Ctrl-E c . or Ctrl-C leaves
  macro list|show|check|play|record …
                       macros: play NAME TARGET… [--dry-run] [--parallel N] [--continue]
                       [-- KEY=VALUE…]; record NAME DEVICE; check NAME|- (see `macro`)
  maintenance start TARGET [--for 1h] [--reason TEXT] [--name NAME]
                       put devices (name, glob, @GROUP) into maintenance: their events are
                       stored, marked suppressed, and run no action; viewers see a banner
  maintenance stop NAME | maintenance list
                       end a window; list the windows (run-time and events file)
  power status NAME…   power state of devices (names or globs like web*)
  power on|off|cycle|reset|soft-off NAME…
                       switch devices' power (all their outlets/BMCs together);
                       names, globs or @GROUP; group options: --order 'stor-*,web-*'
                       (stages), --delay 5s, --parallel 4, --stagger 1s, --stop-on-failure
  log show|search|notes|note NAME …
                       the record log: show (--since/--until/--tail N, --around SEQ),
                       search REGEX [-B n] [-A n] [-C n] [-i], notes, note TEXT
  dtr|rts NAME on|off|toggle
                       raise, drop or toggle a serial console's DTR or RTS line
                       (needs the `break` action and the write lock free or yours)
  help                 this text
  exit                 log out
line editing (with a terminal): Left/Right, Home/End, Ctrl-A/E move; Backspace, Delete,
  Ctrl-K/U/W erase; Up/Down recall your earlier commands (kept per user across logins);
  Tab completes commands and device names (Tab twice lists the choices); Ctrl-C drops the line
inside a console, Ctrl-E c ? lists the escape commands (Ctrl-E c . leaves)";

/// The interactive shell. Returns the exit status.
pub async fn run_shell(ctx: &Arc<Ctx>, user: &str, origin: &str, term: &mut Term) -> u32 {
    term.line(&format!(
        "mo console server — {} device(s). Type `help` for commands.",
        ctx.registry.list().len()
    ))
    .await;
    let mut pending = Vec::new();
    // With a pty the line editor reads (history, Tab); piped input is read plainly.
    let mut editor = if term.pty {
        let mut editor = LineEditor::new(PROMPT);
        editor.set_history(super::history::load(ctx, user).await);
        Some(editor)
    } else {
        None
    };
    loop {
        let line = match &mut editor {
            Some(editor) => {
                let mut complete = |before: &str| candidates(ctx, user, before);
                let line = term.read_edited(editor, &mut complete, &mut pending).await;
                if let Some(line) = &line
                    && !line.trim().is_empty()
                {
                    super::history::append(ctx, user, line).await;
                }
                line
            }
            None => {
                term.write(PROMPT).await;
                term.read_line(&mut pending).await
            }
        };
        let Some(line) = line else {
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

/// The shell's command words, for Tab.
const COMMANDS: &[&str] = &[
    "ack",
    "attach",
    "console",
    "dtr",
    "events",
    "exit",
    "force",
    "gang",
    "help",
    "join",
    "list",
    "listen",
    "log",
    "macro",
    "maintenance",
    "power",
    "rts",
    "spy",
    "who",
];

/// What Tab may put in place of the last word of `before` (the line up to the cursor): a command
/// word first, then a subcommand where the command has them, else the devices `user` may list.
fn candidates(ctx: &Ctx, user: &str, before: &str) -> Vec<String> {
    let words: Vec<&str> = before.split_whitespace().collect();
    let index = if before.is_empty() || before.ends_with(char::is_whitespace) {
        words.len()
    } else {
        words.len().saturating_sub(1)
    };
    let fixed: &[&str] = match (words.first().copied(), index) {
        (_, 0) => COMMANDS,
        (Some("power"), 1) => &["status", "on", "off", "cycle", "reset", "soft-off"],
        (Some("log"), 1) => &["show", "search", "notes", "note"],
        (Some("macro"), 1) => &["list", "show", "check", "play", "record"],
        (Some("maintenance"), 1) => &["start", "stop", "list"],
        (Some("dtr" | "rts"), 2) => &["on", "off", "toggle"],
        (Some("ack" | "help" | "exit" | "list"), _) => &[],
        _ => {
            return ctx
                .visible(user)
                .into_iter()
                .map(|e| e.device.name)
                .collect();
        }
    };
    fixed.iter().map(|w| w.to_string()).collect()
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
    // The line is read in mo-core (mo_core::door::shell), where it is fuzzed.
    match ShellCommand::parse(line) {
        ShellCommand::Empty => 0,
        ShellCommand::Attach {
            mode,
            device,
            replay,
        } => attach::run(ctx, user, origin, &device, mode, replay, term).await,
        ShellCommand::Help => {
            term.line(HELP).await;
            0
        }
        ShellCommand::List => {
            list(ctx, user, term).await;
            0
        }
        ShellCommand::Who(None) => {
            who_all(ctx, user, term).await;
            0
        }
        ShellCommand::Who(Some(device)) => {
            let entry = ctx
                .registry
                .get(&device)
                .filter(|_| ctx.access.allows(user, Permission::List, &device));
            // A console another node holds: its owner answers.
            let who = match &entry {
                Some(e) => crate::viewer::who(ctx, e).await,
                None => None,
            };
            match who {
                Some(who) => {
                    term.line(&format_who(&device, &who.unwrap_or_default()))
                        .await;
                    0
                }
                None => {
                    term.line(&format!("unknown device `{device}`")).await;
                    1
                }
            }
        }
        ShellCommand::Power { sub, args } => {
            let names: Vec<&str> = args.iter().map(String::as_str).collect();
            power(ctx, user, origin, &sub, &names, term).await
        }
        ShellCommand::Events { device, limit } => events(ctx, user, device, limit, term).await,
        ShellCommand::Gang => super::gang_cmd::run(ctx, user, origin, line, term).await,
        ShellCommand::Ack(id) => ack(ctx, user, origin, id, term).await,
        ShellCommand::Log => super::log_cmd::run(ctx, user, origin, line, term).await,
        ShellCommand::Listen(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            super::listen::run(ctx, user, origin, &names, term).await
        }
        ShellCommand::Macro => super::macro_cmd::run(ctx, user, origin, line, term).await,
        ShellCommand::Maintenance => super::maint_cmd::run(ctx, user, origin, line, term).await,
        ShellCommand::Signal { line, device, to } => {
            signal(ctx, user, origin, line, &device, to, term).await
        }
        ShellCommand::PowerUsage => {
            term.line(crate::power::USAGE).await;
            2
        }
        ShellCommand::Usage(message) => {
            term.line(&message).await;
            2
        }
        ShellCommand::Unknown(cmd) => {
            term.line(&format!("unknown command `{cmd}` — type `help`"))
                .await;
            127
        }
    }
}

/// `dtr|rts NAME on|off|toggle`: set the line as `user` while the write lock is free or held
/// by `user` (in another session, SSH or WebSocket); the change is recorded in the console's
/// log with the user's name. The REST API's `POST /api/v1/devices/{name}/signals` does the same.
async fn signal(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    line: mo_core::link::Signal,
    device: &str,
    to: Option<bool>,
    term: &mut Term,
) -> u32 {
    let Some(entry) = ctx
        .registry
        .get(device)
        .filter(|_| ctx.access.allows(user, Permission::List, device))
    else {
        term.line(&format!("unknown device `{device}`")).await;
        return 1;
    };
    if let Err(why) = ctx.check(user, origin, Permission::Break, device).await {
        term.line(&why).await;
        return 1;
    }
    let Some(console) = entry.console else {
        let why = entry.error.unwrap_or_default();
        term.line(&format!("{device} is not running: {why}")).await;
        return 1;
    };
    match console.set_signal_as(user, line, to).await {
        Ok(text) => {
            term.line(&format!("{device}: {text}")).await;
            0
        }
        Err(e) => {
            term.line(&format!("{device}: cannot set {}: {e}", line.name()))
                .await;
            1
        }
    }
}

async fn events(
    ctx: &Arc<Ctx>,
    user: &str,
    device: Option<String>,
    limit: usize,
    term: &mut Term,
) -> u32 {
    let filter = mo_store::EventFilter {
        limit: Some(limit),
        device,
        ..Default::default()
    };
    if let Some(device) = &filter.device
        && !ctx.access.allows(user, Permission::List, device)
    {
        term.line(&format!("unknown device `{device}`")).await;
        return 1;
    }
    let store = ctx.store.clone();
    let found = tokio::task::spawn_blocking(move || store.query_events(&filter)).await;
    match found {
        Ok(Ok(events)) => {
            let mut out = String::new();
            let policy = ctx.access.policy();
            for e in events
                .iter()
                .filter(|e| policy.allows(user, Permission::List, &e.device))
            {
                out.push_str(&e.line());
                out.push('\n');
            }
            if out.is_empty() {
                out.push_str("no events\n");
            }
            term.write(term.crlf(&out)).await;
            0
        }
        Ok(Err(e)) => {
            term.line(&format!("cannot read events: {e}")).await;
            1
        }
        Err(e) => {
            term.line(&format!("cannot read events: {e}")).await;
            1
        }
    }
}

async fn ack(ctx: &Arc<Ctx>, user: &str, origin: &str, id: u64, term: &mut Term) -> u32 {
    // An event of a device the user may not see is answered like a missing one: no name leaks.
    let event = match ctx.store.event(id) {
        Ok(Some(event)) if ctx.access.allows(user, Permission::List, &event.device) => event,
        _ => {
            term.line(&format!("no event #{id}")).await;
            return 1;
        }
    };
    if let Err(why) = ctx
        .check(user, origin, Permission::EventsAck, &event.device)
        .await
    {
        term.line(&why).await;
        return 1;
    }
    match ctx.events.ack(id, user) {
        Ok(true) => {
            term.line(&format!("event #{id} acknowledged")).await;
            0
        }
        Ok(false) => {
            term.line(&format!("event #{id} was already acknowledged"))
                .await;
            0
        }
        Err(e) => {
            term.line(&format!("cannot acknowledge #{id}: {e}")).await;
            1
        }
    }
}

async fn power(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    sub: &str,
    names: &[&str],
    term: &mut Term,
) -> u32 {
    let args = match crate::power::parse_args(names) {
        Ok(args) => args,
        Err(e) => {
            term.line(&e).await;
            return 2;
        }
    };
    let targets: Vec<&str> = args.targets.iter().map(String::as_str).collect();
    let entries = match crate::power::select(ctx, user, &targets) {
        Ok(entries) => entries,
        Err(e) => {
            term.line(&e).await;
            return 1;
        }
    };
    let needs = if sub == "status" {
        Permission::PowerStatus
    } else {
        Permission::PowerControl
    };
    for entry in &entries {
        if let Err(why) = ctx.check(user, origin, needs, &entry.device.name).await {
            term.line(&why).await;
            return 1;
        }
    }
    if sub == "status" {
        let mut failed = false;
        let mut out = String::new();
        for (name, state) in crate::power::status(&entries).await {
            match state {
                Ok(state) => out.push_str(&format!("{name}: {state}\n")),
                Err(e) => {
                    failed = true;
                    out.push_str(&format!("{name}: error: {e}\n"));
                }
            }
        }
        term.write(term.crlf(&out)).await;
        return u32::from(failed);
    }
    let action: mo_core::power::PowerAction = match sub.parse() {
        Ok(action) => action,
        Err(e) => {
            term.line(&e.to_string()).await;
            return 2;
        }
    };
    let plan = match crate::power::plan(ctx, &args, &entries) {
        Ok(plan) => plan,
        Err(e) => {
            term.line(&e).await;
            return 1;
        }
    };
    if args.is_group() {
        let mut text = format!(
            "plan: {action} of {} device(s) in {} stage(s), {} at once, {:?} between stages\n",
            entries.len(),
            plan.stages.len(),
            plan.parallelism,
            plan.stage_delay
        );
        for (i, stage) in plan.stages.iter().enumerate() {
            let names: Vec<&str> = stage.iter().map(|e| e.device.name.as_str()).collect();
            text.push_str(&format!("  stage {}: {}\n", i + 1, names.join(", ")));
        }
        term.write(term.crlf(&text)).await;
    }
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let owner = user.to_owned();
    let power = ctx.power.clone();
    let job = tokio::spawn(async move {
        crate::power::perform_plan(&power, &plan, action, &owner, move |line| {
            let _ = progress_tx.send(line);
        })
        .await
    });
    while let Some(line) = progress_rx.recv().await {
        term.line(&line).await;
    }
    match job.await {
        Ok(outcome) => {
            let mut text = String::from("results:\n");
            for r in &outcome.results {
                let audit = if r.ok {
                    mo_store::Outcome::Ok
                } else {
                    mo_store::Outcome::Failed
                };
                ctx.access.record(
                    user,
                    origin,
                    &format!("power.{action}"),
                    Some(&r.device),
                    audit,
                    r.line.clone(),
                );
                text.push_str(&r.line);
                text.push('\n');
            }
            text.push_str(&format!("summary: {}\n", outcome.summary));
            term.write(term.crlf(&text)).await;
            u32::from(!outcome.all_ok())
        }
        Err(e) => {
            term.line(&format!("power {sub} failed: {e}")).await;
            1
        }
    }
}

async fn list(ctx: &Arc<Ctx>, user: &str, term: &Term) {
    let entries = ctx.visible(user);
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

async fn who_all(ctx: &Arc<Ctx>, user: &str, term: &Term) {
    let mut out = String::new();
    for e in ctx.visible(user) {
        if let Some(who) = crate::viewer::who(ctx, &e).await {
            let who = who.unwrap_or_default();
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
                "{device}: {:<12} {:<6} {:>6} {}",
                v.user,
                v.role,
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
