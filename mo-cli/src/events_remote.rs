//! `mo events` with `--server`: list (`GET /api/v1/events`), follow (the event WebSocket) and
//! acknowledge (`POST /api/v1/events/{id}/ack`) the daemon's events.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use mo_client::{Client, Event, EventQuery};
use mo_core::scan::Severity;

use crate::events::{EventsArgs, EventsCommand};

/// Run `mo events` (list, `--follow`, `ack`) against the daemon.
pub async fn run(
    client: &Client,
    args: &EventsArgs,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    match &args.command {
        Some(EventsCommand::Ack { ids }) => {
            for id in ids {
                let event = client.ack_event(*id).await?;
                writeln!(out, "acknowledged event #{id}: {}", line(&event))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(EventsCommand::Raise(_)) => bail!("internal error: `events raise` reached the lister"),
        None => {}
    }
    if args.since.is_some() {
        bail!(
            "with --server, `mo events` takes --device, --severity, --unacked, --limit, --follow \
             and --json (--since works on the data directory)"
        );
    }
    let min: Option<Severity> = args
        .severity
        .as_deref()
        .map(str::parse::<Severity>)
        .transpose()?;
    let wanted = |e: &Event| {
        min.is_none_or(|m| {
            e.severity
                .to_string()
                .parse::<Severity>()
                .is_ok_and(|s| s >= m)
        })
    };
    // Open the stream before listing, so no event falls between the two.
    let mut stream = match args.follow {
        true => Some(client.event_stream(args.device.as_deref()).await?),
        false => None,
    };
    let mut query = EventQuery::default();
    query.device = args.device.clone();
    query.limit = Some(args.limit.clamp(1, 10_000));
    query.unacked = args.unacked;
    let events: Vec<Event> = client
        .list_events(&query)
        .await?
        .into_iter()
        .filter(|e| wanted(e))
        .collect();
    let mut last = events.iter().map(|e| e.id).max().unwrap_or(0);
    if args.json && stream.is_none() {
        writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for e in &events {
        write_event(out, e, args.json)?;
    }
    let Some(stream) = stream.as_mut() else {
        if events.is_empty() {
            writeln!(out, "no events")?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    out.flush()?;
    while let Some(event) = stream.next_event().await {
        let event = event?;
        if event.id <= last || !wanted(&event) || (args.unacked && event.acked_by.is_some()) {
            continue;
        }
        last = event.id;
        write_event(out, &event, args.json)?;
        out.flush()?;
    }
    bail!("the daemon closed the event stream")
}

fn write_event(out: &mut dyn Write, e: &Event, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(e)?)?;
    } else {
        writeln!(out, "{}", line(e))?;
    }
    Ok(())
}

/// The listing line, as `mo events` prints it on the data directory.
fn line(e: &Event) -> String {
    let at = e.node.as_ref().map(|n| format!("@{n}")).unwrap_or_default();
    let mut text = format!(
        "#{} {} {}{at} {} {}",
        e.id, e.time, e.device, e.severity, e.name
    );
    if e.count > 1 {
        text.push_str(&format!(" x{}", e.count));
    }
    text.push(' ');
    text.push_str(&e.text);
    if let Some(by) = &e.acked_by {
        text.push_str(&format!(" (acked by {by})"));
    }
    text
}
