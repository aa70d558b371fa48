//! `mo events`: list and follow the events the daemon raised (pattern matches, link changes, …).

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use mo_core::scan::Severity;
use mo_store::{EventFilter, Store};

/// `mo events [options]`
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mo events --since 1h\n  \
    mo events --device web01 --severity error\n  \
    mo events --follow")]
pub struct EventsArgs {
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
