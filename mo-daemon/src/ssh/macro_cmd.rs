//! `macro list|show|check|play|record` in the SSH shell (macro files in `DATA_DIR/macros`).

use std::sync::Arc;
use std::time::Duration;

use mo_core::automation::macros::{OnFailure, PlayOptions, Recorder, dry_run};
use mo_core::automation::{GangEventKind, Listen};
use mo_core::console::Mode;
use mo_core::policy::Permission;
use mo_store::Outcome;

use super::term::{Term, TermInput};
use crate::Ctx;
use crate::automation;

use mo_core::door::macros::{MACRO_USAGE as USAGE, MacroCommand, PlayArgs};

/// The longest macro text read from stdin.
const MAX_TEXT: usize = 1 << 20;

/// Run a `macro …` line. Returns the exit status.
pub async fn run(ctx: &Arc<Ctx>, user: &str, origin: &str, line: &str, term: &mut Term) -> u32 {
    // Stored macros are seen only by users who may run macros somewhere (checking text from
    // stdin reads nothing stored; recording checks its own way).
    if MacroCommand::reads_stored(line)
        && let Err(why) = automation::check_access(ctx, user, origin)
    {
        term.line(&why).await;
        return 1;
    }
    let command = match MacroCommand::parse(line) {
        Ok(command) => command,
        Err(e) => {
            term.line(&e.message(USAGE)).await;
            return 2;
        }
    };
    match command {
        MacroCommand::List => list(ctx, term).await,
        MacroCommand::Show { name } => match automation::read_text(ctx, &name) {
            Ok(text) => {
                term.write(term.crlf(&text)).await;
                0
            }
            Err(e) => {
                term.line(&e).await;
                1
            }
        },
        MacroCommand::Check { what } => check(ctx, &what, term).await,
        MacroCommand::Play { name, play: opts } => play(ctx, user, origin, &name, opts, term).await,
        MacroCommand::Record { name, device } => {
            record(ctx, user, origin, &name, &device, term).await
        }
    }
}

async fn list(ctx: &Ctx, term: &Term) -> u32 {
    let names = automation::list_names(ctx);
    if names.is_empty() {
        term.line(&format!(
            "no macros (files NAME.macro in {}; `macro record NAME DEVICE` makes one)",
            ctx.macros.dir().display()
        ))
        .await;
        return 0;
    }
    let mut out = format!("{:<24} {:<6} {}\n", "MACRO", "STEPS", "PARAMETERS");
    for name in names {
        match automation::load(ctx, &name) {
            Ok(m) => {
                let params: Vec<String> = m
                    .params()
                    .iter()
                    .map(|p| match &p.default {
                        Some(d) => format!("{}={d}", p.name),
                        None => p.name.clone(),
                    })
                    .collect();
                out.push_str(&format!(
                    "{name:<24} {:<6} {}\n",
                    m.steps().len(),
                    params.join(" ")
                ));
            }
            Err(e) => {
                let n = e.lines().count();
                out.push_str(&format!(
                    "{name:<24} {:<6} ({n} error(s): `macro check {name}`)\n",
                    "bad"
                ));
            }
        }
    }
    term.write(term.crlf(&out)).await;
    0
}

async fn check(ctx: &Ctx, what: &str, term: &mut Term) -> u32 {
    let (origin, text) = if what == "-" {
        match read_stdin(term).await {
            Ok(text) => ("stdin".to_string(), text),
            Err(e) => {
                term.line(&e).await;
                return 1;
            }
        }
    } else {
        match automation::read_text(ctx, what) {
            Ok(text) => (format!("{what}.macro"), text),
            Err(e) => {
                term.line(&e).await;
                return 1;
            }
        }
    };
    match automation::parse(&origin, &text) {
        Ok(m) => {
            term.line(&format!(
                "{origin}: ok ({} steps, {} parameter(s))",
                m.steps().len(),
                m.params().len()
            ))
            .await;
            0
        }
        Err(errors) => {
            term.write(term.crlf(&errors)).await;
            1
        }
    }
}

async fn read_stdin(term: &mut Term) -> Result<String, String> {
    let mut text = Vec::new();
    loop {
        match term.input().await {
            TermInput::Data(d) => {
                text.extend_from_slice(&d);
                if text.len() > MAX_TEXT {
                    return Err(format!("macro text longer than {MAX_TEXT} bytes"));
                }
            }
            TermInput::Resize { .. } => {}
            TermInput::Closed => break,
        }
    }
    String::from_utf8(text).map_err(|_| "the macro text is not UTF-8".to_string())
}

async fn play(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    name: &str,
    opts: PlayArgs,
    term: &mut Term,
) -> u32 {
    let args = opts.args.clone();
    let macro_ = match automation::load(ctx, name) {
        Ok(m) => m,
        Err(e) => {
            term.write(term.crlf(&e)).await;
            return 1;
        }
    };
    let targets: Vec<&str> = opts.targets.iter().map(String::as_str).collect();
    let entries = match crate::power::select(ctx, user, &targets) {
        Ok(e) => e,
        Err(e) => {
            term.line(&e).await;
            return 1;
        }
    };
    let mut denied = Vec::new();
    let mut consoles = Vec::new();
    for entry in &entries {
        let device = &entry.device.name;
        if ctx
            .check(user, origin, Permission::MacroRun, device)
            .await
            .is_err()
        {
            denied.push(device.clone());
            continue;
        }
        match &entry.console {
            Some(c) => consoles.push(c.clone()),
            None => {
                term.line(&format!("{device} is not running")).await;
                return 1;
            }
        }
    }
    if !denied.is_empty() {
        term.line(&format!(
            "not allowed to run macros on: {} — nothing was played",
            denied.join(", ")
        ))
        .await;
        return 1;
    }
    let device_names: Vec<&str> = consoles.iter().map(|c| c.name()).collect();
    let pairs: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if opts.dry_run {
        return match macro_.bind(&pairs) {
            Ok(plan) => {
                let mut text = dry_run(name, &plan);
                text.push_str(&format!(
                    "would run on {} device(s), {} at once, {}: {}\n",
                    device_names.len(),
                    opts.parallel,
                    if opts.keep_going {
                        "others go on after a failure"
                    } else {
                        "stopping all at the first failure"
                    },
                    device_names.join(", ")
                ));
                term.write(term.crlf(&text)).await;
                0
            }
            Err(e) => {
                term.line(&format!("{name}: {e}")).await;
                1
            }
        };
    }
    // Bind once here so a missing parameter is reported before anything is sent.
    if let Err(e) = macro_.bind(&pairs) {
        term.line(&format!("{name}: {e}")).await;
        return 1;
    }
    let play_opts = PlayOptions {
        name: name.to_string(),
        notes: true,
        parallel: opts.parallel,
        on_failure: if opts.keep_going {
            OnFailure::Continue
        } else {
            OnFailure::StopAll
        },
        origin: format!("macro {name} ({origin})"),
    };
    term.line(&format!(
        "[mo: playing macro {name} on {} device(s), {} at once]",
        consoles.len(),
        opts.parallel
    ))
    .await;
    // The steps each player writes into its console's log come back here as progress.
    let (mut listen, _) = Listen::open(user, &consoles).await;
    let job = {
        let (user, consoles, macro_) = (user.to_string(), consoles.clone(), macro_.clone());
        tokio::spawn(async move {
            automation::play(&user, &consoles, &macro_, &args, &play_opts, None).await
        })
    };
    let prefix = format!("macro {name}: ");
    let mut job = std::pin::pin!(job);
    let reports = loop {
        tokio::select! {
            event = listen.next() => {
                if let Some(line) = event.and_then(|e| step_line(&prefix, &e.device, e.kind)) {
                    term.line(&line).await;
                }
            }
            joined = &mut job => break joined,
        }
    };
    // Notes still on their way.
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), listen.next()).await
    {
        if let Some(line) = step_line(&prefix, &event.device, event.kind) {
            term.line(&line).await;
        }
    }
    drop(listen);
    let reports = match reports {
        Ok(r) => r,
        Err(e) => {
            term.line(&format!("macro {name} failed: {e}")).await;
            return 1;
        }
    };
    let mut out = format!("results of macro {name}:\n");
    for r in &reports {
        let line = automation::result_line(r);
        ctx.access.record(
            user,
            origin,
            "macro.run",
            Some(&r.device),
            if r.ok() { Outcome::Ok } else { Outcome::Failed },
            format!("macro {name}: {line}"),
        );
        out.push_str(&line);
        out.push('\n');
    }
    let failed = reports.iter().filter(|r| !r.ok()).count();
    out.push_str(&format!(
        "{} done, {failed} failed\n",
        reports.len() - failed
    ));
    term.write(term.crlf(&out)).await;
    u32::from(failed > 0)
}

/// A progress line from a macro note (`device: line 3: sendline "x"`); `None` for other events.
fn step_line(prefix: &str, device: &str, kind: GangEventKind) -> Option<String> {
    let GangEventKind::Notice(text) = kind else {
        return None;
    };
    let rest = text.strip_prefix(prefix)?;
    let shown = ["started", "line ", "done", "failed at", "cancelled"];
    if shown.iter().any(|w| rest.starts_with(w)) {
        Some(format!("{device}: {rest}"))
    } else {
        None
    }
}

async fn record(
    ctx: &Arc<Ctx>,
    user: &str,
    origin: &str,
    name: &str,
    device: &str,
    term: &mut Term,
) -> u32 {
    if let Err(e) = mo_store::validate_macro_name(name) {
        term.line(&e.to_string()).await;
        return 2;
    }
    if let Err(why) = automation::may_record(ctx, user, origin, name) {
        term.line(&why).await;
        return 1;
    }
    let Some(entry) = ctx
        .registry
        .get(device)
        .filter(|_| ctx.access.allows(user, Permission::List, device))
    else {
        term.line(&format!("unknown device `{device}`")).await;
        return 1;
    };
    for action in [Permission::MacroRun, Permission::Attach] {
        if let Err(why) = ctx.check(user, origin, action, device).await {
            term.line(&why).await;
            return 1;
        }
    }
    let Some(console) = entry.console.clone() else {
        term.line(&format!("{device} is not running")).await;
        return 1;
    };
    // A spy session of our own sees everything typed into the console; the recorder keeps only
    // this user's input.
    let mut spy = match console
        .attach_from(user, "macro record", Mode::Spy, Some(1))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            term.line(&format!("cannot record {device}: {e}")).await;
            return 1;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut recorder = Recorder::new(device).only_user(user);
    // The prompt standing now (the last line of the console) is what the first line answers.
    let standing = spy.take_replay();
    if !standing.is_empty() {
        recorder.observe(&mo_core::record::Chunk {
            seq: 0,
            time_ns: 0,
            kind: mo_core::record::RecordKind::Output,
            user: Arc::from(""),
            offset: 0,
            bytes: standing,
        });
    }
    let recording = tokio::spawn(async move {
        let stop = async move {
            let _ = stop_rx.await;
            // Let the last keystrokes and the prompt that answers them arrive.
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        recorder.record(&mut spy, stop).await
    });
    term.line(&format!(
        "[mo: recording macro {name} on {device}: what you type becomes the macro; leave with Ctrl-E c . to save it]"
    ))
    .await;
    let status = super::attach::run(ctx, user, origin, device, Mode::Attach, None, term).await;
    let _ = stop_tx.send(());
    let recorded = match recording.await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            term.line(&format!("recording failed: {e}")).await;
            return 1;
        }
        Err(e) => {
            term.line(&format!("recording failed: {e}")).await;
            return 1;
        }
    };
    if status != 0 && recorded.steps().is_empty() {
        return status;
    }
    if recorded.steps().is_empty() {
        term.line(&format!("nothing typed; macro {name} not written"))
            .await;
        return 1;
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = format!(
        "# macro {name}, recorded by {user} on {device} at {stamp}\n{}",
        recorded.to_text()
    );
    // Checked again: the name may have been taken while the user typed.
    let replace = match automation::may_record(ctx, user, origin, name) {
        Ok(replace) => replace,
        Err(why) => {
            term.line(&why).await;
            return 1;
        }
    };
    match automation::save_owned(ctx, name, &text, user, replace) {
        Ok(path) => {
            ctx.access.record(
                user,
                origin,
                "macro.record",
                Some(device),
                Outcome::Ok,
                format!("macro {name}"),
            );
            term.line(&format!("macro {name} written to {}:", path.display()))
                .await;
            term.write(term.crlf(&text)).await;
            0
        }
        Err(e) => {
            term.line(&e).await;
            1
        }
    }
}
