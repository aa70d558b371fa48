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
    /// Only the newest N events; `--limit` is the old spelling.
    #[arg(long = "tail", alias = "limit", value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Keep printing new events as they are stored (Ctrl-C ends).
    #[arg(long, short)]
    pub follow: bool,
    /// Print JSON: an array, or with --follow one object per line.
    #[arg(long)]
    pub json: bool,
}

/// One event as JSON (the fields of the API's event, plus the local ones).
pub fn event_json(e: &mo_core::event::Event) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "time": mo_core::log::format_timestamp(u64::try_from(e.time_ns).unwrap_or(0)),
        "device": e.device,
        "severity": e.severity.as_str(),
        "name": e.source.to_string(),
        "text": e.message,
        "count": e.count,
        "suppressed": e.suppressed,
        "acked_by": e.acked_by,
        "node": e.node,
        "context": e.context,
    })
}

/// Run `mo events`.
pub fn run(store: &Store, args: EventsArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(EventsCommand::Ack { ids }) = &args.command {
        let user = crate::access::invoking_user();
        let at = i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX);
        for id in ids {
            if !store.ack_event(*id, &user, at)? {
                bail!("no event #{id} (`mo events` lists them), or it is already acknowledged");
            }
            writeln!(out, "acknowledged event #{id}")?;
        }
        return Ok(());
    }
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
    if args.json && !args.follow {
        let list: Vec<_> = events.iter().map(event_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    for event in &events {
        write_event(out, event, args.json)?;
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
            write_event(out, &event, args.json)?;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn write_event(out: &mut dyn Write, event: &mo_core::event::Event, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", event_json(event))?;
    } else {
        writeln!(out, "{}", event.line())?;
    }
    Ok(())
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
    /// Acknowledge events by number (`#12` in `mo events` is 12): locally, or on the daemon
    /// at --server (needs `events.ack` on the device).
    #[command(
        after_help = "Examples:\n  mo events ack 12\n  mo --server http://127.0.0.1:8022 events ack 12 13"
    )]
    Ack {
        /// The events' numbers.
        #[arg(required = true, value_parser = parse_event_id)]
        ids: Vec<u64>,
    },
}

/// An event number, `12` or `#12`.
fn parse_event_id(text: &str) -> Result<u64, String> {
    text.trim_start_matches('#')
        .parse()
        .map_err(|_| format!("`{text}` is not an event number (like 12 or #12)"))
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
            Some(EventsCommand::Ack { .. }) | None => None,
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
