//! Macros and the scheduler in the daemon (issue 8).
//!
//! * Macro files live in `DATA_DIR/macros/NAME.macro`, in the text format of
//!   [`mo_core::automation::macros`]. [`play`] plays one on many consoles in parallel, telling a
//!   progress sink when each device starts and ends; the steps themselves are written into each
//!   console's record log as notes by the mo-core player, so everyone attached sees them.
//! * `mod --schedule FILE` reads `[[schedule]]` entries (cron, macro, targets, args); each run
//!   plays the macro as the user `schedule`, writes the result into each device's record log and
//!   raises a `schedule` event for every device that failed. The last run of each job is kept in
//!   `DATA_DIR/schedule-state.json`; runs that fell into a downtime are reported as events at start.
//! * Macros have owners: one recorded through the SSH shell belongs to its recorder
//!   (`DATA_DIR/macros/NAME.owner`); one stored with `mo macro add` belongs to the site (no owner
//!   file). Recording under a name another user owns, a site macro's name or a name the schedule
//!   plays needs a global admin ([`may_record`]); the scheduler plays an owned macro only on the
//!   devices where its owner may still run macros.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use mo_core::automation::macros::{Macro, OnFailure, Outcome, PlayOptions, Report, play_many_with};
use mo_core::automation::schedule::{Job, Scheduler};
use mo_core::console::Console;
use mo_core::event::{Candidate, EventSource};
use mo_core::record::RecordKind;
use mo_core::scan::Severity;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::Ctx;

/// The data directory (set once at start by [`init`]).
static DATA: OnceLock<PathBuf> = OnceLock::new();

/// Where macro files and the scheduler's state live: the daemon's data directory.
pub fn init(data_dir: &Path) {
    let _ = DATA.set(data_dir.to_path_buf());
}

fn data_dir() -> PathBuf {
    DATA.get().cloned().unwrap_or_else(|| PathBuf::from("."))
}

/// `DATA_DIR/macros`.
pub fn macros_dir() -> PathBuf {
    data_dir().join("macros")
}

/// Check a macro name: letters, digits, `.`, `_`, `-`; 1–64 characters; not starting with `.`
/// or `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad macro name `{name}`: use letters, digits, `.`, `_`, `-` (1–64, not starting with `.` or `-`)"
        ))
    }
}

/// The file of macro `name`.
pub fn macro_path(name: &str) -> Result<PathBuf, String> {
    check_name(name)?;
    Ok(macros_dir().join(format!("{name}.macro")))
}

/// The names of the stored macros, sorted.
pub fn list_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(macros_dir())
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".macro").map(str::to_string)
                })
                .filter(|n| check_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The text of macro `name`.
pub fn read_text(name: &str) -> Result<String, String> {
    let path = macro_path(name)?;
    std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no macro `{name}` (`macro list` shows them)"),
        _ => format!("cannot read {}: {e}", path.display()),
    })
}

/// `DATA_DIR/macros/NAME.owner`.
fn owner_path(name: &str) -> Result<PathBuf, String> {
    check_name(name)?;
    Ok(macros_dir().join(format!("{name}.owner")))
}

/// The user who recorded macro `name` through the daemon; `None` for a site macro (stored with
/// `mo macro add`) or one that does not exist.
pub fn owner(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(owner_path(name).ok()?).ok()?;
    let owner = text.trim();
    (!owner.is_empty()).then(|| owner.to_owned())
}

/// Whether `user` may see stored macros (list, show, check, play): `macro.run` on some device.
/// A refusal is audited and returned as the line to show.
pub fn check_access(ctx: &Ctx, user: &str, origin: &str) -> Result<(), String> {
    use mo_core::policy::Action;
    if ctx.access.policy().allows_somewhere(user, Action::MacroRun) {
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
    let exists = macro_path(name)?.exists();
    if ctx
        .access
        .allows_global(user, mo_core::policy::Action::Admin)
    {
        return Ok(exists);
    }
    let refusal = if ctx.scheduled_macros.iter().any(|m| m == name) {
        Some(format!(
            "denied: macro `{name}` is played by the schedule; only a global admin may record it"
        ))
    } else if exists {
        match owner(name) {
            Some(o) if o == user => None,
            Some(o) => Some(format!(
                "denied: macro `{name}` belongs to {o}; only {o} or a global admin may record it"
            )),
            None => Some(format!(
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
pub fn save_owned(name: &str, text: &str, owner: &str, replace: bool) -> Result<PathBuf, String> {
    let path = save(name, text, replace)?;
    let owner_file = owner_path(name)?;
    let tmp = macros_dir().join(format!(".{name}.owner.tmp"));
    std::fs::write(&tmp, format!("{owner}\n"))
        .and_then(|()| std::fs::rename(&tmp, &owner_file))
        .map_err(|e| format!("cannot write {}: {e}", owner_file.display()))?;
    Ok(path)
}

/// Parse `text` (from `origin`); on failure every problem as `ORIGIN: line N: what`.
pub fn parse(origin: &str, text: &str) -> Result<Macro, Vec<String>> {
    Macro::check(text).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| format!("{origin}: {e}"))
            .collect()
    })
}

/// Load and parse macro `name`; errors joined one per line.
pub fn load(name: &str) -> Result<Macro, String> {
    let text = read_text(name)?;
    parse(&format!("{name}.macro"), &text).map_err(|errors| errors.join("\n"))
}

/// Write macro `name` (atomically). Fails if it exists and `replace` is false.
pub fn save(name: &str, text: &str, replace: bool) -> Result<PathBuf, String> {
    let path = macro_path(name)?;
    let dir = macros_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if !replace && path.exists() {
        return Err(format!(
            "macro `{name}` exists already ({})",
            path.display()
        ));
    }
    let tmp = dir.join(format!(".{name}.macro.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
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

/// One device's result as a line: `web01: done (4 steps, 1.2 s)` or
/// `web01: FAILED at line 3 (expect /login:/ within 5 s): …`.
pub fn result_line(r: &Report) -> String {
    let secs = r.elapsed.as_secs_f64();
    match &r.outcome {
        Outcome::Done => format!("{}: done ({} steps, {secs:.1} s)", r.device, r.steps_done),
        Outcome::Failed { line, step, error } => format!(
            "{}: FAILED at line {line} ({step}) after {} steps: {error}",
            r.device, r.steps_done
        ),
        _ => format!("{}: FAILED: {}", r.device, strip_device(r)),
    }
}

fn strip_device(r: &Report) -> String {
    let text = r.to_string();
    text.strip_prefix(&format!("{}: ", r.device))
        .map_or(text.clone(), str::to_string)
}

/// Parse `key=value` words into macro arguments.
pub fn parse_args(words: &[&str]) -> Result<Vec<(String, String)>, String> {
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("bad macro argument `{w}`: use NAME=VALUE")),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The scheduler.

/// One `[[schedule]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryConfig {
    /// The job's name (default: the macro's name, numbered if it repeats).
    #[serde(default)]
    name: Option<String>,
    /// Cron expression (5 fields, or 6 with seconds first).
    cron: String,
    /// The macro's name in `DATA_DIR/macros`.
    #[serde(rename = "macro")]
    macro_name: String,
    /// Device names, globs or `@GROUP`s.
    targets: Vec<String>,
    /// Macro arguments.
    #[serde(default)]
    args: BTreeMap<String, String>,
    /// Devices at once (default 16).
    #[serde(default)]
    parallel: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default, rename = "schedule")]
    entries: Vec<EntryConfig>,
}

/// A loaded job: the core job plus what the daemon needs to run it.
#[derive(Debug, Clone)]
struct JobSpec {
    macro_name: String,
    args: Vec<(String, String)>,
    parallel: usize,
}

/// The loaded `--schedule` file.
#[derive(Debug, Default)]
pub struct ScheduleConfig {
    jobs: Vec<(Job, JobSpec)>,
}

impl ScheduleConfig {
    /// Load `path` (or nothing when `None`). Every error names the file and the entry: a bad
    /// cron expression, a missing or bad macro, an empty target list.
    pub fn load(path: Option<&Path>) -> anyhow::Result<ScheduleConfig> {
        let Some(path) = path else {
            return Ok(ScheduleConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read schedule file {}", path.display()))?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("schedule file {}: {e}", path.display()))?;
        let mut jobs: Vec<(Job, JobSpec)> = Vec::new();
        for (i, e) in file.entries.into_iter().enumerate() {
            let at = format!("schedule file {}, entry {}", path.display(), i + 1);
            let name = e.name.clone().unwrap_or_else(|| e.macro_name.clone());
            let name = if jobs.iter().any(|(j, _)| j.name == name) {
                format!("{name}-{}", i + 1)
            } else {
                name
            };
            if e.targets.is_empty() {
                anyhow::bail!("{at} ({name}): `targets` is empty");
            }
            let m = load(&e.macro_name).map_err(|why| anyhow::anyhow!("{at} ({name}): {why}"))?;
            let job = Job::new(&name, &e.cron, m, e.targets.clone())
                .map_err(|why| anyhow::anyhow!("{at}: {why}"))?;
            let spec = JobSpec {
                macro_name: e.macro_name,
                args: e.args.into_iter().collect(),
                parallel: e.parallel.unwrap_or(16).max(1),
            };
            jobs.push((job, spec));
        }
        Ok(ScheduleConfig { jobs })
    }

    /// The macros the jobs play, sorted, without duplicates.
    pub fn macro_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .jobs
            .iter()
            .map(|(_, s)| s.macro_name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether there are no jobs.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// `DATA_DIR/schedule-state.json`: each job's last run, in seconds since the epoch.
fn state_path() -> PathBuf {
    data_dir().join("schedule-state.json")
}

fn read_state() -> BTreeMap<String, u64> {
    std::fs::read_to_string(state_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_state(state: &BTreeMap<String, u64>) {
    let path = state_path();
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(state).unwrap_or_default();
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
pub fn start(ctx: Arc<Ctx>, config: ScheduleConfig) -> Option<tokio::task::JoinHandle<()>> {
    if config.is_empty() {
        return None;
    }
    let now = SystemTime::now();
    let mut state = read_state();
    let mut scheduler = Scheduler::new();
    let mut specs: BTreeMap<String, JobSpec> = BTreeMap::new();
    for (job, spec) in config.jobs {
        let last = state
            .get(&job.name)
            .map(|s| UNIX_EPOCH + Duration::from_secs(*s));
        specs.insert(job.name.clone(), spec);
        scheduler.add(job, last);
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
        state.insert(job.name.clone(), secs(now));
    }
    let names: Vec<String> = scheduler.jobs().map(|j| j.name.clone()).collect();
    for name in &names {
        scheduler.mark_run(name, now);
    }
    state.retain(|k, _| names.contains(k));
    write_state(&state);
    let state = Arc::new(Mutex::new(state));
    let specs = Arc::new(specs);
    Some(tokio::spawn(async move {
        scheduler
            .run(
                move |job, due| {
                    let ctx = ctx.clone();
                    let state = state.clone();
                    let specs = specs.clone();
                    async move {
                        if let Ok(mut s) = state.lock() {
                            s.insert(job.name.clone(), secs(due));
                            write_state(&s);
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
    let Some(owner) = owner(name) else {
        return consoles;
    };
    let policy = ctx.access.policy();
    let mut kept = Vec::new();
    for c in consoles {
        let decision = policy.decide(&owner, mo_core::policy::Action::MacroRun, c.name());
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
async fn run_job(ctx: Arc<Ctx>, job: Job, spec: JobSpec, due: SystemTime) {
    let title = format!("schedule {}", job.name);
    // The file is read again: an edited macro applies from the next run.
    let macro_ = match load(&spec.macro_name) {
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
