//! Playing a macro: on one session, on many consoles in parallel, or as a dry run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::{Instruction, Macro, Plan};
use crate::automation::expect::Expecter;
use crate::console::{Console, Mode, ViewerRole};
use crate::error::Result;

/// What to do when one device fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The other devices go on to the end.
    #[default]
    Continue,
    /// Start no more devices and stop the running ones before their next step.
    StopAll,
}

/// How a macro is played.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// The macro's name, in notes and reports.
    pub name: String,
    /// Write a note into the console's log before each step (seen by every viewer).
    pub notes: bool,
    /// How many devices run at once ([`play_many`]); at least 1.
    pub parallel: usize,
    /// What a failure on one device does to the others.
    pub on_failure: OnFailure,
    /// Where the user comes from, for `who` ([`play_many`]).
    pub origin: String,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            name: "macro".to_string(),
            notes: true,
            parallel: 16,
            on_failure: OnFailure::Continue,
            origin: "macro".to_string(),
        }
    }
}

/// How a device's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every step ran.
    Done,
    /// A step failed; the device stopped there.
    Failed {
        /// The failing step's line in the macro.
        line: usize,
        /// The step as shown.
        step: String,
        /// Why it failed.
        error: String,
    },
    /// The console's write lock is held by someone else.
    Busy {
        /// Who holds it.
        held_by: String,
    },
    /// The console could not be attached or the macro not bound for it.
    Refused {
        /// Why.
        error: String,
    },
    /// Stopped because another device failed ([`OnFailure::StopAll`]).
    Cancelled,
}

/// One device's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The device.
    pub device: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Steps completed.
    pub steps_done: usize,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Report {
    /// Whether every step ran.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Done
    }

    /// The result as one line for an admin, with the time taken: `web01: done (4 steps, 1.2 s)`
    /// or `web01: FAILED at line 3 (expect /login:/ within 5 s) after 2 steps: …`.
    pub fn result_line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        match &self.outcome {
            Outcome::Done => format!(
                "{}: done ({} steps, {secs:.1} s)",
                self.device, self.steps_done
            ),
            Outcome::Failed { line, step, error } => format!(
                "{}: FAILED at line {line} ({step}) after {} steps: {error}",
                self.device, self.steps_done
            ),
            _ => {
                let text = self.to_string();
                let rest = text
                    .strip_prefix(&format!("{}: ", self.device))
                    .unwrap_or(&text);
                format!("{}: FAILED: {rest}", self.device)
            }
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Outcome::Done => write!(f, "{}: done ({} steps)", self.device, self.steps_done),
            Outcome::Failed { line, step, error } => {
                write!(
                    f,
                    "{}: failed at line {line} ({step}): {error}",
                    self.device
                )
            }
            Outcome::Busy { held_by } => write!(f, "{}: busy: held by {held_by}", self.device),
            Outcome::Refused { error } => write!(f, "{}: {error}", self.device),
            Outcome::Cancelled => write!(
                f,
                "{}: cancelled after {} steps (another device failed)",
                self.device, self.steps_done
            ),
        }
    }
}

/// The plan as text, one step a line, without sending anything.
pub fn dry_run(name: &str, plan: &Plan) -> String {
    let mut out = format!("macro {name}: {} steps (dry run)\n", plan.steps.len());
    for line in plan.describe() {
        out.push_str("  ");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

async fn note(expecter: &Expecter, opts: &PlayOptions, text: &str) {
    if opts.notes {
        // A note that cannot be written does not stop the macro; the console says why elsewhere.
        let _ = expecter
            .session()
            .note(&format!("macro {}: {text}", opts.name))
            .await;
    }
}

/// Resolves once `cancel` turns true (never, if it is `None` or its sender is gone).
async fn cancelled(cancel: Option<&watch::Receiver<bool>>) {
    match cancel {
        Some(rx) => {
            let mut rx = rx.clone();
            if rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

async fn run_step(expecter: &mut Expecter, action: &Instruction) -> Result<()> {
    match action {
        Instruction::Send(bytes) => expecter.send(bytes).await,
        Instruction::Expect { pattern, timeout } => {
            expecter
                .expect(std::slice::from_ref(pattern), *timeout)
                .await?;
            Ok(())
        }
        Instruction::Wait(d) => {
            tokio::time::sleep(*d).await;
            Ok(())
        }
        Instruction::Break(n) => expecter.session().send_break(*n).await.map(|_| ()),
    }
}

/// Plays `plan` on one session, writing a note per step if `opts.notes`. Stops at the first
/// failing step, or before the next step once `cancel` turns true.
pub async fn play(
    expecter: &mut Expecter,
    plan: &Plan,
    opts: &PlayOptions,
    cancel: Option<&watch::Receiver<bool>>,
) -> Report {
    let start = Instant::now();
    let device = expecter.device().to_string();
    let mut done = 0;
    note(
        expecter,
        opts,
        &format!("started ({} steps)", plan.steps.len()),
    )
    .await;
    for step in &plan.steps {
        if cancel.is_some_and(|c| *c.borrow()) {
            note(expecter, opts, "cancelled").await;
            return report(device, Outcome::Cancelled, done, start);
        }
        note(
            expecter,
            opts,
            &format!("line {}: {}", step.line, step.shown),
        )
        .await;
        let result = tokio::select! {
            r = run_step(expecter, &step.action) => Some(r),
            () = cancelled(cancel) => None,
        };
        match result {
            Some(Ok(())) => done += 1,
            Some(Err(e)) => {
                let error = e.to_string();
                note(
                    expecter,
                    opts,
                    &format!("failed at line {}: {error}", step.line),
                )
                .await;
                let outcome = Outcome::Failed {
                    line: step.line,
                    step: step.shown.clone(),
                    error,
                };
                return report(device, outcome, done, start);
            }
            None => {
                note(expecter, opts, "cancelled").await;
                return report(device, Outcome::Cancelled, done, start);
            }
        }
    }
    note(expecter, opts, "done").await;
    report(device, Outcome::Done, done, start)
}

fn report(device: String, outcome: Outcome, steps_done: usize, start: Instant) -> Report {
    Report {
        device,
        outcome,
        steps_done,
        elapsed: start.elapsed(),
    }
}

/// Plays `macro_` on every console in parallel (at most `opts.parallel` at once), as `user`
/// with the write lock, `${device}` set to each console's name. A console held by someone else
/// is reported [`Outcome::Busy`]. Reports come back in the order of `consoles`.
pub async fn play_many(
    user: &str,
    consoles: &[Console],
    macro_: &Macro,
    args: &[(&str, &str)],
    opts: &PlayOptions,
) -> Vec<Report> {
    play_many_with(user, consoles, macro_, args, opts, |_| {}).await
}

/// [`play_many`], calling `on_result` with each device's report as soon as that device is
/// finished (front ends print progress from it).
pub async fn play_many_with(
    user: &str,
    consoles: &[Console],
    macro_: &Macro,
    args: &[(&str, &str)],
    opts: &PlayOptions,
    on_result: impl Fn(&Report) + Send + Sync + 'static,
) -> Vec<Report> {
    let on_result = Arc::new(on_result);
    let limit = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, console) in consoles.iter().enumerate() {
        let console = console.clone();
        let user = user.to_string();
        let opts = opts.clone();
        let limit = limit.clone();
        let stop_rx = stop_rx.clone();
        let stop_tx = stop_tx.clone();
        let on_result = Arc::clone(&on_result);
        let plan = macro_.bind_for(Some(console.name()), args);
        // Take the permit here, in the given order, so devices start in that order (a task
        // scheduled early must not jump the queue).
        let permit = limit.acquire_owned().await;
        tasks.spawn(async move {
            let _permit = permit;
            let device = console.name().to_string();
            let start = Instant::now();
            if *stop_rx.borrow() {
                let r = report(device, Outcome::Cancelled, 0, start);
                on_result(&r);
                return (i, r);
            }
            let r = match plan {
                Err(e) => report(
                    device,
                    Outcome::Refused {
                        error: e.to_string(),
                    },
                    0,
                    start,
                ),
                Ok(plan) => play_on(&console, &user, &plan, &opts, &stop_rx).await,
            };
            on_result(&r);
            if !r.ok() && opts.on_failure == OnFailure::StopAll && r.outcome != Outcome::Cancelled {
                let _ = stop_tx.send(true);
            }
            (i, r)
        });
    }
    let mut reports: Vec<(usize, Report)> = Vec::with_capacity(consoles.len());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(r) = joined {
            reports.push(r);
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

async fn play_on(
    console: &Console,
    user: &str,
    plan: &Plan,
    opts: &PlayOptions,
    stop: &watch::Receiver<bool>,
) -> Report {
    let device = console.name().to_string();
    let start = Instant::now();
    let session = match console
        .attach_from(user, &opts.origin, Mode::Attach, None)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            return report(
                device,
                Outcome::Refused {
                    error: e.to_string(),
                },
                0,
                start,
            );
        }
    };
    if session.role() == ViewerRole::Spy {
        drop(session);
        let held_by = console
            .who()
            .await
            .ok()
            .and_then(|w| w.into_iter().find(|v| v.role == ViewerRole::ReadWrite))
            .map_or_else(|| "someone".to_string(), |v| v.user.to_string());
        return report(device, Outcome::Busy { held_by }, 0, start);
    }
    // The recent output counts: the device may already show the first expected prompt.
    let mut expecter = Expecter::with_replay(session);
    play(&mut expecter, plan, opts, Some(stop)).await
}
