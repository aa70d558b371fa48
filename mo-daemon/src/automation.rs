//! Macros and the scheduler in the daemon (issue 8): the wiring of the libraries' parts to the
//! daemon's policy, audit log, registry and events.
//!
//! * Macro files live in `DATA_DIR/macros/NAME.macro` ([`mo_store::MacroStore`]), in the text
//!   format of [`mo_core::automation::macros`]. [`play`] plays one on many consoles in parallel, telling a
//!   progress sink when each device starts and ends; the steps themselves are written into each
//!   console's record log as notes by the mo-core player, so everyone attached sees them.
//! * `mod --schedule FILE` reads `[[schedule]]` entries (cron, macro, targets, args;
//!   [`mo_store::config::ScheduleConfig`]); each run
//!   plays the macro as the user `schedule`, writes the result into each device's record log and
//!   raises a `schedule` event for every device that failed. The last run of each job is kept in
//!   `DATA_DIR/schedule-state.json` ([`mo_store::ScheduleState`]); runs that fell into a downtime are reported as events at start.
//! * Macros have owners: one recorded through the SSH shell belongs to its recorder
//!   (`DATA_DIR/macros/NAME.owner`); one stored with `mo macro add` belongs to the site (no owner
//!   file). Recording under a name another user owns, a site macro's name or a name the schedule
//!   plays needs a global admin ([`may_record`]); the scheduler plays an owned macro only on the
//!   devices where its owner may still run macros.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mo_core::automation::macros::{Macro, OnFailure, PlayOptions, Report, play_many_with};
use mo_core::automation::schedule::{Job, Scheduler};
use mo_core::console::Console;
use mo_core::event::{Candidate, EventSource};
use mo_core::record::RecordKind;
use mo_core::scan::Severity;
use mo_store::ScheduleState;
use mo_store::config::{ScheduleConfig, ScheduledJob};
use tokio::sync::mpsc;

use crate::Ctx;

/// The line to show for a macro store error (a missing macro says how to list them).
fn message(e: &mo_store::Error) -> String {
    match e {
        mo_store::Error::NoMacro { .. } => format!("{e} (`macro list` shows them)"),
        e => e.to_string(),
    }
}

/// The names of the stored macros, sorted (none, with a warning, when the directory cannot be
/// read).
pub fn list_names(ctx: &Ctx) -> Vec<String> {
    ctx.macros.names().unwrap_or_else(|e| {
        tracing::warn!("{e}");
        Vec::new()
    })
}

/// The text of macro `name`.
pub fn read_text(ctx: &Ctx, name: &str) -> Result<String, String> {
    ctx.macros.read(name).map_err(|e| message(&e))
}

/// Load and parse macro `name`; errors one per line.
pub fn load(ctx: &Ctx, name: &str) -> Result<Macro, String> {
    ctx.macros.load(name).map_err(|e| message(&e))
}

/// Parse `text` (from `origin`); on failure every problem as `ORIGIN: line N: what`, one a line.
pub fn parse(origin: &str, text: &str) -> Result<Macro, String> {
    mo_store::check_macro(origin, text).map_err(|e| e.to_string())
}

/// Whether `user` may see stored macros (list, show, check, play): `macro.run` on some device.
/// A refusal is audited and returned as the line to show.
pub fn check_access(ctx: &Ctx, user: &str, origin: &str) -> Result<(), String> {
    use mo_core::policy::Permission;
    if ctx
        .access
        .policy()
        .allows_somewhere(user, Permission::MacroRun)
    {
        return Ok(());
    }
    let why = format!("denied: {user} may not run macros on any device, so sees no macros");
    ctx.access.record(
        user,
        origin,
        "macro.list",
        None,
        mo_store::Outcome::Denied,
        why.clone(),
    );
    Err(why)
}

/// Whether `user` may record macro `name`: a new name, or a macro `user` recorded, unless the
/// schedule plays it; a global admin may record any name. `Ok(true)` when an existing macro is
/// to be replaced. A refusal is audited and says who owns the name.
pub fn may_record(ctx: &Ctx, user: &str, origin: &str, name: &str) -> Result<bool, String> {
    let exists = ctx.macros.exists(name).map_err(|e| e.to_string())?;
    if ctx
        .access
        .allows_global(user, mo_core::policy::Permission::Admin)
    {
        return Ok(exists);
    }
    let scheduled = ctx
        .scheduled_macros
        .read()
        .is_ok_and(|names| names.iter().any(|m| m == name));
    let refusal = if scheduled {
        Some(format!(
            "denied: macro `{name}` is played by the schedule; only a global admin may record it"
        ))
    } else if exists {
        match ctx.macros.owner(name) {
            Err(e) => Some(format!("denied: macro `{name}`: {e}")),
            Ok(Some(o)) if o == user => None,
            Ok(Some(o)) => Some(format!(
                "denied: macro `{name}` belongs to {o}; only {o} or a global admin may record it"
            )),
            Ok(None) => Some(format!(
                "denied: macro `{name}` belongs to the site (stored with `mo macro add`); only a global admin may record it"
            )),
        }
    } else {
        None
    };
    match refusal {
        Some(why) => {
            ctx.access.record(
                user,
                origin,
                "macro.record",
                None,
                mo_store::Outcome::Denied,
                why.clone(),
            );
            Err(why)
        }
        None => Ok(exists),
    }
}

/// Write macro `name` recorded by `owner` (atomically, then its owner file). Fails if it
/// exists and `replace` is false.
pub fn save_owned(
    ctx: &Ctx,
    name: &str,
    text: &str,
    owner: &str,
    replace: bool,
) -> Result<PathBuf, String> {
    ctx.macros
        .save(name, text, Some(owner), replace)
        .map_err(|e| e.to_string())
}

/// A progress line for a sink (`device: text`).
pub type Progress = mpsc::UnboundedSender<String>;

/// Play `macro_` on each console (at most `opts.parallel` at once) as `user` with the write
/// lock, `${device}` set to each console's name. Each device's result line goes to `progress`;
/// a failing step stops that device (and, with [`OnFailure::StopAll`], the others before their
/// next step). Reports come back in the order of `consoles`.
pub async fn play(
    user: &str,
    consoles: &[Console],
    macro_: &Macro,
    args: &[(String, String)],
    opts: &PlayOptions,
    progress: Option<Progress>,
) -> Vec<Report> {
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    play_many_with(user, consoles, macro_, &args, opts, move |r| {
        if let Some(p) = &progress {
            let _ = p.send(result_line(r));
        }
    })
    .await
}

/// One device's result as a line (see [`Report::result_line`]).
pub fn result_line(r: &Report) -> String {
    r.result_line()
}

// ---------------------------------------------------------------------------------------------
// The scheduler.

fn secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Write the scheduler's state; a failure is logged (the next write tries again).
fn write_state(state: &ScheduleState, runs: &BTreeMap<String, SystemTime>) {
    if let Err(e) = state.write(runs) {
        tracing::warn!("{e}");
    }
}

fn show_time(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{} s after the epoch", secs(t)))
}

/// The devices matched by `targets` (names, globs, `@GROUP`), sorted, without duplicates.
fn resolve(ctx: &Ctx, targets: &[String]) -> (Vec<Console>, Vec<String>) {
    let all = ctx.registry.list();
    let mut consoles: Vec<Console> = Vec::new();
    let mut problems = Vec::new();
    for t in targets {
        let matcher = match crate::power::Matcher::new(ctx, t) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("target `{t}`: {e}"));
                continue;
            }
        };
        let mut any = false;
        for e in all.iter().filter(|e| matcher.matches(&e.device.name)) {
            any = true;
            match &e.console {
                Some(c) if !consoles.iter().any(|x| x.name() == c.name()) => {
                    consoles.push(c.clone())
                }
                Some(_) => {}
                None => problems.push(format!("{} is not running", e.device.name)),
            }
        }
        if !any {
            problems.push(format!("target `{t}` matches no device"));
        }
    }
    (consoles, problems)
}

fn raise(ctx: &Ctx, device: &str, severity: Severity, message: String) {
    ctx.events.offer(Candidate::new(
        device,
        EventSource::Schedule,
        severity,
        message,
    ));
}

/// The user scheduled macros run as (shown by `who`, in notes and in the log).
pub const SCHEDULE_USER: &str = "schedule";

/// Start the scheduler for `config`: report the runs missed while the daemon was down, then run
/// each job at its times until the daemon stops. Returns `None` when there are no jobs.
pub fn start(
    ctx: Arc<Ctx>,
    config: ScheduleConfig,
    store: ScheduleState,
) -> Option<tokio::task::JoinHandle<()>> {
    if config.is_empty() {
        return None;
    }
    let now = SystemTime::now();
    let mut state = store.read().unwrap_or_else(|e| {
        tracing::warn!("{e}; missed runs are not reported");
        BTreeMap::new()
    });
    let mut scheduler = Scheduler::new();
    let mut specs: BTreeMap<String, ScheduledJob> = BTreeMap::new();
    for spec in config.jobs {
        let last = state.get(&spec.job.name).copied();
        scheduler.add(spec.job.clone(), last);
        specs.insert(spec.job.name.clone(), spec);
    }
    let missed = scheduler.missed(now);
    let mut by_job: BTreeMap<String, Vec<SystemTime>> = BTreeMap::new();
    for m in missed {
        by_job.entry(m.job).or_default().push(m.due);
    }
    for job in scheduler.jobs() {
        if let Some(dues) = by_job.get(&job.name) {
            let (first, last) = (dues.first(), dues.last());
            let (Some(first), Some(last)) = (first, last) else {
                continue;
            };
            let n = dues.len();
            let macro_name = specs.get(&job.name).map_or("?", |s| s.macro_name.as_str());
            let message = format!(
                "schedule {}: {n} run(s) of macro {macro_name} missed while mod was down (first due {}, last due {})",
                job.name,
                show_time(*first),
                show_time(*last)
            );
            tracing::warn!("{message}");
            let (consoles, _) = resolve(&ctx, &job.devices);
            if consoles.is_empty() {
                raise(
                    &ctx,
                    &format!("schedule:{}", job.name),
                    Severity::Warning,
                    message.clone(),
                );
            }
            for c in consoles {
                raise(&ctx, c.name(), Severity::Warning, message.clone());
            }
        }
        // From now on, downtime is measured from this start.
        state.insert(job.name.clone(), now);
    }
    let names: Vec<String> = scheduler.jobs().map(|j| j.name.clone()).collect();
    for name in &names {
        scheduler.mark_run(name, now);
    }
    state.retain(|k, _| names.contains(k));
    write_state(&store, &state);
    let state = Arc::new(Mutex::new(state));
    let specs = Arc::new(specs);
    Some(tokio::spawn(async move {
        scheduler
            .run(
                move |job, due| {
                    let ctx = ctx.clone();
                    let state = state.clone();
                    let specs = specs.clone();
                    let store = store.clone();
                    async move {
                        if let Ok(mut s) = state.lock() {
                            s.insert(job.name.clone(), due);
                            write_state(&store, &s);
                        }
                        if let Some(spec) = specs.get(&job.name).cloned() {
                            // Runs go on in the background: a long macro never delays another job.
                            tokio::spawn(run_job(ctx, job, spec, due));
                        }
                    }
                },
                std::future::pending(),
            )
            .await;
    }))
}

/// The consoles the owner of macro `name` may still run macros on (all of them for a site
/// macro). Each one left out gets a note in its log, an event and a denied audit entry.
async fn owner_may_run(ctx: &Ctx, title: &str, name: &str, consoles: Vec<Console>) -> Vec<Console> {
    let owner = match ctx.macros.owner(name) {
        Ok(Some(owner)) => owner,
        Ok(None) => return consoles,
        Err(e) => {
            // Whose macro it is cannot be told: played nowhere.
            let message = format!("{title}: macro {name} not played: {e}");
            tracing::error!("{message}");
            let job = title.strip_prefix("schedule ").unwrap_or(title);
            raise(ctx, &format!("schedule:{job}"), Severity::Error, message);
            return Vec::new();
        }
    };
    let policy = ctx.access.policy();
    let mut kept = Vec::new();
    for c in consoles {
        let decision = policy.decide(&owner, mo_core::policy::Permission::MacroRun, c.name());
        if decision.allowed() {
            kept.push(c);
            continue;
        }
        let message = format!(
            "{title}: macro {name} not played on {}: its owner {}",
            c.name(),
            decision.reason()
        );
        tracing::warn!("{message}");
        ctx.access.record(
            SCHEDULE_USER,
            title,
            "macro.run",
            Some(c.name()),
            mo_store::Outcome::Denied,
            message.clone(),
        );
        let _ = c
            .record(RecordKind::Note, SCHEDULE_USER, message.clone())
            .await;
        raise(ctx, c.name(), Severity::Error, message);
    }
    kept
}

/// One scheduled run: play the macro on the job's devices, write each result into the device's
/// log, and raise an event for each failure.
async fn run_job(ctx: Arc<Ctx>, job: Job, spec: ScheduledJob, due: SystemTime) {
    let title = format!("schedule {}", job.name);
    // The file is read again: an edited macro applies from the next run.
    let macro_ = match load(&ctx, &spec.macro_name) {
        Ok(m) => m,
        Err(why) => {
            let message = format!("{title}: cannot load macro: {why}");
            let (consoles, _) = resolve(&ctx, &job.devices);
            for c in &consoles {
                let _ = c
                    .record(RecordKind::Note, SCHEDULE_USER, message.clone())
                    .await;
                raise(&ctx, c.name(), Severity::Error, message.clone());
            }
            if consoles.is_empty() {
                raise(
                    &ctx,
                    &format!("schedule:{}", job.name),
                    Severity::Error,
                    message,
                );
            }
            return;
        }
    };
    let (consoles, problems) = resolve(&ctx, &job.devices);
    let consoles = owner_may_run(&ctx, &title, &spec.macro_name, consoles).await;
    for p in problems {
        let message = format!("{title}: {p}");
        tracing::warn!("{message}");
        raise(
            &ctx,
            &format!("schedule:{}", job.name),
            Severity::Error,
            message,
        );
    }
    tracing::info!(
        "{title}: running macro {} on {} device(s) (due {})",
        spec.macro_name,
        consoles.len(),
        show_time(due)
    );
    let opts = PlayOptions {
        name: spec.macro_name.clone(),
        notes: true,
        parallel: spec.parallel,
        on_failure: OnFailure::Continue,
        origin: title.clone(),
    };
    let reports = play(SCHEDULE_USER, &consoles, &macro_, &spec.args, &opts, None).await;
    for (console, r) in consoles.iter().zip(&reports) {
        let line = format!("{title}: {}", result_line(r));
        let _ = console
            .record(RecordKind::Note, SCHEDULE_USER, line.clone())
            .await;
        if !r.ok() {
            raise(&ctx, &r.device, Severity::Error, line);
        }
    }
}
