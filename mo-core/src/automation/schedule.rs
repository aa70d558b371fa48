//! The scheduler: cron expressions (the `croner` crate) that run a macro on devices.
//!
//! A [`Job`] is a cron expression, a macro and the devices to run it on. Expressions have five
//! fields (minute to weekday) or six with seconds first (`*/5 * * * * *`), and croner's extras
//! (`L`, `#`, `W`, `@daily`). The [`Scheduler`] knows each job's last run; [`Scheduler::run`] sleeps
//! until the next due time and calls back for every job due, and [`Scheduler::missed`] lists the
//! runs that fell into a downtime (after the last run, before now) — reported, not run.
//!
//! The scheduler has no clock of its own besides the system time it is given or reads in `run`;
//! running the macro (with [`super::macros::play_many`]), logging the result and raising events on
//! failure is the callback's work.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use mo_core::automation::macros::Macro;
//! use mo_core::automation::schedule::Job;
//!
//! let m = Macro::parse("sendline uptime\n")?;
//! let job = Job::new("uptime", "0 * * * *", m, vec!["web01".into()])?;
//! let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 22:13:20 UTC
//! let next = job.next_after(t).unwrap();
//! assert_eq!(next, UNIX_EPOCH + Duration::from_secs(1_700_002_800)); // 23:00:00
//! # Ok::<(), mo_core::Error>(())
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::macros::Macro;
use crate::error::{Error, Result};

/// The most missed runs listed per job ([`Scheduler::missed`]).
pub const MAX_MISSED: usize = 1000;

/// A macro to run on devices at the times of a cron expression.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// The expression as given.
    pub cron: String,
    /// The macro.
    pub macro_: Arc<Macro>,
    /// The devices (names, globs or groups: the caller resolves them).
    pub devices: Vec<String>,
    schedule: Cron,
}

fn to_utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

impl Job {
    /// A job. Fails with [`Error::BadSpec`] naming the expression if it does not parse.
    pub fn new(name: &str, cron: &str, macro_: Macro, devices: Vec<String>) -> Result<Job> {
        let schedule = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| Error::BadSpec {
                what: "cron expression",
                input: cron.to_string(),
                reason: format!("job {name}: {e}"),
            })?;
        Ok(Job {
            name: name.to_string(),
            cron: cron.to_string(),
            macro_: Arc::new(macro_),
            devices,
            schedule,
        })
    }

    /// The first run strictly after `t` (`None` if the expression never matches again).
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        self.schedule
            .find_next_occurrence(&to_utc(t), false)
            .ok()
            .map(SystemTime::from)
    }

    /// The runs strictly after `after` and at or before `until`, oldest first, at most `limit`.
    pub fn runs_between(
        &self,
        after: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Vec<SystemTime> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < limit {
            match self.next_after(t) {
                Some(next) if next <= until => {
                    out.push(next);
                    t = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// A run that should have happened while the scheduler was not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedRun {
    /// The job.
    pub job: String,
    /// When it was due.
    pub due: SystemTime,
}

#[derive(Debug)]
struct Entry {
    job: Job,
    last_run: Option<SystemTime>,
}

/// Jobs with their last runs (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct Scheduler {
    entries: Vec<Entry>,
}

impl Scheduler {
    /// No jobs.
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Add a job; `last_run` is when it last ran (from the store), if ever. A job of the same
    /// name is replaced.
    pub fn add(&mut self, job: Job, last_run: Option<SystemTime>) {
        self.entries.retain(|e| e.job.name != job.name);
        self.entries.push(Entry { job, last_run });
    }

    /// Remove a job; false if there was none of that name.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.job.name != name);
        self.entries.len() != before
    }

    /// The jobs.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.entries.iter().map(|e| &e.job)
    }

    /// When the job last ran.
    pub fn last_run(&self, name: &str) -> Option<SystemTime> {
        self.entries
            .iter()
            .find(|e| e.job.name == name)
            .and_then(|e| e.last_run)
    }

    /// The runs missed between each job's last run and `now` (at most [`MAX_MISSED`] per job),
    /// oldest first. Jobs that never ran have missed nothing.
    pub fn missed(&self, now: SystemTime) -> Vec<MissedRun> {
        let mut out: Vec<MissedRun> = self
            .entries
            .iter()
            .filter_map(|e| Some((e, e.last_run?)))
            .flat_map(|(e, last)| {
                e.job
                    .runs_between(last, now, MAX_MISSED)
                    .into_iter()
                    .map(|due| MissedRun {
                        job: e.job.name.clone(),
                        due,
                    })
            })
            .collect();
        out.sort_by_key(|m| m.due);
        out
    }

    /// The next due time after `now` and the jobs due then.
    pub fn next_due(&self, now: SystemTime) -> Option<(SystemTime, Vec<&Job>)> {
        let mut best: Option<(SystemTime, Vec<&Job>)> = None;
        for e in &self.entries {
            let Some(t) = e.job.next_after(now) else {
                continue;
            };
            match &mut best {
                Some((bt, jobs)) if *bt == t => jobs.push(&e.job),
                Some((bt, _)) if *bt < t => {}
                _ => best = Some((t, vec![&e.job])),
            }
        }
        best
    }

    /// Mark `name` as run at `at`.
    pub fn mark_run(&mut self, name: &str, at: SystemTime) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.job.name == name) {
            e.last_run = Some(at);
        }
    }

    /// Run until `stop` resolves: sleep until the next due time, then call `callback(job, due)`
    /// for each job due, one after the other, and record the run. A callback that takes longer
    /// than the gap to the next run makes the scheduler skip to the next time still ahead (the
    /// skipped times are not run; [`Scheduler::missed`] would list them).
    pub async fn run<F, Fut>(&mut self, mut callback: F, stop: impl Future<Output = ()>)
    where
        F: FnMut(Job, SystemTime) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut stop = std::pin::pin!(stop);
        loop {
            let now = SystemTime::now();
            let Some((due, jobs)) = self.next_due(now) else {
                // Nothing will ever be due: wait for the stop.
                stop.as_mut().await;
                return;
            };
            let jobs: Vec<Job> = jobs.into_iter().cloned().collect();
            let wait = due.duration_since(now).unwrap_or(Duration::ZERO);
            tokio::select! {
                () = stop.as_mut() => return,
                () = tokio::time::sleep(wait) => {}
            }
            // The system clock may lag the timer slightly: never fire before the due time.
            if let Ok(early) = due.duration_since(SystemTime::now()) {
                tokio::time::sleep(early).await;
            }
            for job in jobs {
                let name = job.name.clone();
                callback(job, due).await;
                self.mark_run(&name, due);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn m() -> Macro {
        Macro::parse("sendline uptime\n").unwrap()
    }

    #[test]
    fn next_runs_and_missed() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let job = Job::new("every5s", "*/5 * * * * *", m(), vec![]).unwrap();
        assert_eq!(job.next_after(t0), Some(t0 + Duration::from_secs(5)));
        let runs = job.runs_between(t0, t0 + Duration::from_secs(20), 100);
        assert_eq!(runs.len(), 4);
        let mut s = Scheduler::new();
        s.add(job, Some(t0));
        s.add(
            Job::new("never-ran", "* * * * *", m(), vec![]).unwrap(),
            None,
        );
        let missed = s.missed(t0 + Duration::from_secs(12));
        assert_eq!(
            missed,
            vec![
                MissedRun {
                    job: "every5s".into(),
                    due: t0 + Duration::from_secs(5)
                },
                MissedRun {
                    job: "every5s".into(),
                    due: t0 + Duration::from_secs(10)
                },
            ]
        );
        let (due, jobs) = s.next_due(t0).unwrap();
        assert_eq!(due, t0 + Duration::from_secs(5));
        assert_eq!(jobs.len(), 1);
        assert!(s.remove("never-ran"));
        assert!(!s.remove("never-ran"));
    }

    #[test]
    fn bad_expressions_are_refused() {
        for bad in ["", "* * *", "61 * * * *", "* * * * * * * *", "nonsense"] {
            let e = Job::new("j", bad, m(), vec![]).unwrap_err();
            assert!(e.to_string().contains("cron expression"), "{bad}: {e}");
        }
    }
}
