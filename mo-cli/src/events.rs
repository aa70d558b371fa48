//! `mo events`: list and follow the events the daemon raised (pattern matches, link changes, …);
//! `mo events raise` hands the daemon an event of one's own (through its HTTP API).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mo_core::scan::Severity;
use mo_store::{EventFilter, Store};

/// `mo events [options]`, `mo events raise DEVICE …`
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
    mo events --since 1h\n  \
    mo events --device web01 --severity error\n  \
    mo events --follow\n  \
    mo --server http://127.0.0.1:8022 events raise web01 --severity critical --message 'UPS on battery'"
)]
pub struct EventsArgs {
    /// Raise an event instead of listing them.
    #[command(subcommand)]
    pub command: Option<EventsCommand>,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Only this severity or worse: info, notice, warning, error, critical.
    #[arg(long)]
    pub severity: Option<String>,
    /// Only events at or after TIME (`2h`, `1d`, `2026-11-22T10:00:00Z`, …).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events not yet acknowledged.
    #[arg(long)]
    pub unacked: bool,
    /// Only the newest N events.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Keep printing new events as they are stored (Ctrl-C ends).
    #[arg(long, short)]
    pub follow: bool,
}

/// Run `mo events`.
pub fn run(store: &Store, args: EventsArgs, out: &mut dyn Write) -> Result<()> {
    let now = mo_core::record::now_ns();
    let since_ns = args
        .since
        .as_deref()
        .map(|t| mo_core::log::parse_time_spec(t, now))
        .transpose()?
        .map(|ns| i64::try_from(ns).unwrap_or(i64::MAX));
    let min_severity = args
        .severity
        .as_deref()
        .map(str::parse::<Severity>)
        .transpose()?;
    let mut filter = EventFilter {
        device: args.device,
        min_severity,
        since_ns,
        unacked: args.unacked,
        limit: Some(args.limit.max(1)),
        ..EventFilter::default()
    };
    let events = store.query_events(&filter)?;
    let mut last = events.last().map_or(0, |e| e.id);
    for event in &events {
        writeln!(out, "{}", event.line())?;
    }
    if !args.follow {
        if events.is_empty() {
            writeln!(out, "no events")?;
        }
        return Ok(());
    }
    if last == 0 {
        last = store.next_event_id()?.saturating_sub(1);
    }
    out.flush()?;
    loop {
        filter.after_id = Some(last);
        filter.limit = Some(1000);
        for event in store.query_events(&filter)? {
            last = last.max(event.id);
            writeln!(out, "{}", event.line())?;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `mo events SUBCOMMAND`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Raise an event about DEVICE on the daemon at --server (needs `events.raise` on it): it
    /// goes through the daemon's rules (dedup, rate limits, maintenance, actions) like the
    /// events mo raises itself.
    #[command(after_help = "Examples:\n  \
        mo --server http://127.0.0.1:8022 events raise web01 --severity critical --message 'UPS on battery'\n  \
        mo events raise db1 --severity warning --message 'backup late' --source external --context 'job 42'")]
    Raise(RaiseArgs),
}

/// Options of `mo events raise`.
#[derive(Debug, Args)]
pub struct RaiseArgs {
    /// The device the event is about (need not be a console the daemon serves).
    pub device: String,
    /// How bad: info, notice, warning, error, critical.
    #[arg(long, short)]
    pub severity: String,
    /// What happened, one line.
    #[arg(long, short)]
    pub message: String,
    /// `manual` (an operator; default) or `external` (another system).
    #[arg(long, default_value = "manual")]
    pub source: String,
    /// A line of context; repeatable, oldest first.
    #[arg(long, value_name = "LINE")]
    pub context: Vec<String>,
}

impl EventsArgs {
    /// The `raise` subcommand's options, if that is what was asked.
    pub fn raise(&self) -> Option<&RaiseArgs> {
        match &self.command {
            Some(EventsCommand::Raise(args)) => Some(args),
            None => None,
        }
    }
}

/// Run `mo events raise` against the daemon at `server`.
pub fn raise(
    server: Option<&str>,
    token: Option<&str>,
    trust: mo_client::Trust,
    args: &RaiseArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let Some(server) = server.filter(|s| !s.is_empty()) else {
        bail!(
            "`mo events raise` talks to a daemon: give its API with --server URL (or \
             MO_SERVER), e.g. --server http://127.0.0.1:8022"
        );
    };
    let severity: Severity = args.severity.parse()?;
    if !matches!(args.source.as_str(), "manual" | "external") {
        bail!(
            "bad --source `{}`: expected manual or external",
            args.source
        );
    }
    let client = mo_client::Client::with_trust(server, token.unwrap_or_default(), trust)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(client.raise_event(
        &args.device,
        severity.as_str(),
        &args.message,
        &args.source,
        &args.context,
    ))?;
    writeln!(
        out,
        "raised: {} {} {}",
        args.device,
        severity.as_str(),
        args.message
    )?;
    Ok(ExitCode::SUCCESS)
}
