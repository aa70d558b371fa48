//! SIGHUP (`systemctl reload mod`): read the configuration again without dropping anyone.
//!
//! The `--config` file is parsed again with the same command line and environment; the events
//! file (patterns, rules, actions, maintenance windows, `[[watch]]`, `[[logfile]]` and
//! `[[journal]]` entries — unchanged entries run on, a log file from where it got to) and the
//! schedule file are read again and put in force; the TLS
//! pair is re-read by its own handler (http/tls.rs). Consoles, SSH and HTTP sessions are not
//! touched. A file that does not load is refused, the error logged and raised as an event
//! (device `mod`, source `file`), and what ran before stays. Settings that only a restart can
//! change (listen addresses, limits, …) are reported as such and keep their running value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use clap::FromArgMatches as _;
use mo_core::event::{Candidate, EventSource};
use mo_core::scan::Severity;
use mo_store::DataDir;

use crate::{Args, Ctx, automation, config, events};

/// The settings SIGHUP puts in force; every other changed setting needs a restart.
const LIVE: &[&str] = &["events", "schedule"];

/// The device name the reload's events carry.
const EVENT_DEVICE: &str = "mod";

/// What SIGHUP needs: how the daemon was started and what it runs.
pub struct Reloader {
    /// The parser and the command line the daemon was started with.
    pub cmd: clap::Command,
    /// The command line (the file is read again; flags and environment keep winning).
    pub argv: Vec<OsString>,
    /// The daemon's context.
    pub ctx: Arc<Ctx>,
    /// The data directory (macros, the scheduler's state).
    pub data: DataDir,
    /// The running scheduler (replaced when the schedule file changes).
    pub scheduler: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// The `--schedule` file in force.
    pub schedule: Option<PathBuf>,
    /// Every setting as it runs (argument id to its raw values).
    pub running: BTreeMap<String, Vec<String>>,
}

/// Every setting of `matches` as raw strings, by argument id.
pub fn settings(cmd: &clap::Command, matches: &clap::ArgMatches) -> BTreeMap<String, Vec<String>> {
    cmd.get_arguments()
        .filter(|a| !config::NOT_KEYS.contains(&a.get_id().as_str()))
        .map(|a| {
            let id = a.get_id().as_str();
            let raw = matches
                .try_get_raw(id)
                .ok()
                .flatten()
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            (id.to_owned(), raw)
        })
        .collect()
}

impl Reloader {
    /// Reload on every SIGHUP for as long as the process runs.
    pub fn spawn(mut self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups =
            signal(SignalKind::hangup()).context("cannot listen for SIGHUP (reload)")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                crate::notify::notify("RELOADING=1");
                self.reload().await;
                crate::notify::notify("READY=1");
            }
        });
        Ok(())
    }

    /// Say what happened, in the daemon's log and on its standard error.
    fn note(&self, line: &str) {
        tracing::info!("SIGHUP: {line}");
        eprintln!("mod: SIGHUP: {line}");
    }

    /// Say what was refused, and raise it as an event.
    fn refuse(&self, line: &str) {
        tracing::error!("SIGHUP: {line}");
        eprintln!("mod: SIGHUP: {line}");
        self.ctx.events.offer(Candidate::new(
            EVENT_DEVICE,
            EventSource::File,
            Severity::Error,
            format!("reload refused: {line}"),
        ));
    }

    async fn reload(&mut self) {
        let loaded = match config::load(&self.cmd, &self.argv) {
            Ok(loaded) => loaded,
            Err(e) => {
                return self.refuse(&format!(
                    "configuration not reloaded, the running one stays: {e}"
                ));
            }
        };
        let new = match Args::from_arg_matches(&loaded.matches) {
            Ok(args) => args,
            Err(e) => {
                return self.refuse(&format!(
                    "configuration not reloaded, the running one stays: {e}"
                ));
            }
        };
        let settings = settings(&self.cmd, &loaded.matches);
        for (id, value) in &settings {
            let old = self.running.get(id);
            if old == Some(value) || LIVE.contains(&id.as_str()) {
                continue;
            }
            let show = |v: Option<&Vec<String>>| match v {
                Some(v) if !v.is_empty() => v.join(" "),
                _ => "(not set)".to_owned(),
            };
            self.note(&format!(
                "`{}` changed ({} -> {}): needs a restart; the running value stays",
                id.replace('_', "-"),
                show(old),
                show(Some(value))
            ));
        }
        self.reload_events(new.events.clone()).await;
        self.reload_schedule(new.schedule.clone());
        self.note("reload done; no session was dropped");
    }

    async fn reload_events(&mut self, path: Option<PathBuf>) {
        match events::EventConfig::load(path.as_deref()) {
            Ok(config) => {
                let report = self.ctx.events.reload(config).await;
                self.note(&match &path {
                    Some(p) => format!("events file {} reloaded ({report})", p.display()),
                    None => format!("built-in event patterns in force ({report})"),
                });
            }
            Err(e) => self.refuse(&format!(
                "events file not reloaded, the running patterns, rules, actions, watches and \
                 log files stay: {e:#}"
            )),
        }
    }

    fn reload_schedule(&mut self, path: Option<PathBuf>) {
        let config = match &path {
            Some(p) => match mo_store::config::ScheduleConfig::load(p, &self.data.macros()) {
                Ok(config) => config,
                Err(e) => {
                    return self.refuse(&format!(
                        "schedule file {} not reloaded, the running schedule stays: {e}",
                        p.display()
                    ));
                }
            },
            None if self.schedule.is_none() => return,
            None => mo_store::config::ScheduleConfig::default(),
        };
        *self
            .ctx
            .scheduled_macros
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config.macro_names();
        let next = automation::start(self.ctx.clone(), config, self.data.schedule_state());
        let old = std::mem::replace(
            &mut *self
                .scheduler
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            next,
        );
        if let Some(old) = old {
            old.abort();
        }
        self.note(&match &path {
            Some(p) => format!("schedule file {} reloaded", p.display()),
            None => "no schedule".to_owned(),
        });
        self.schedule = path;
    }
}
