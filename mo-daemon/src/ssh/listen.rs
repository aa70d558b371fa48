//! `listen NAMES/GLOBS/GROUPS…`: the live output of many consoles merged read-only, each line
//! tagged with its device, until the user types the escape disconnect (`Ctrl-E c .`) or Ctrl-C.

use std::sync::Arc;

use mo_core::automation::tagged::PARTIAL_AFTER;
use mo_core::automation::{GangEventKind, Listen, TaggedLines};
use mo_core::escape::{Command, EscapeConfig, EscapeParser, Input};
use mo_core::policy::Permission;

use super::term::{Term, TermInput};
use crate::Ctx;

/// Run `listen`. Returns the exit status.
pub async fn run(ctx: &Arc<Ctx>, user: &str, origin: &str, names: &[&str], term: &mut Term) -> u32 {
    if names.is_empty() {
        term.line("usage: listen NAME|GLOB|@GROUP…").await;
        return 2;
    }
    let entries = match crate::power::select(ctx, user, names) {
        Ok(entries) => entries,
        Err(e) => {
            term.line(&e).await;
            return 1;
        }
    };
    let mut consoles = Vec::new();
    let mut denied = Vec::new();
    let mut stopped = Vec::new();
    for entry in &entries {
        let name = &entry.device.name;
        if ctx
            .check(user, origin, Permission::Spy, name)
            .await
            .is_err()
        {
            denied.push(name.clone());
            continue;
        }
        match &entry.console {
            Some(c) => consoles.push(c.clone()),
            None => stopped.push(name.clone()),
        }
    }
    if !denied.is_empty() {
        term.line(&format!(
            "not listening to {} (no spy permission): {}",
            denied.len(),
            denied.join(", ")
        ))
        .await;
    }
    if !stopped.is_empty() {
        term.line(&format!("not running: {}", stopped.join(", ")))
            .await;
    }
    if consoles.is_empty() {
        term.line("nothing to listen to").await;
        return 1;
    }
    let (mut listen, refused) = Listen::open(user, &consoles).await;
    for r in &refused {
        term.line(&r.to_string()).await;
    }
    let devices = listen.devices().join(", ");
    term.line(&format!(
        "[mo: listening to {} console(s): {devices}; read-only; Ctrl-E c . or Ctrl-C leaves]",
        listen.devices().len()
    ))
    .await;
    ctx.access.record(
        user,
        origin,
        "listen",
        None,
        mo_store::Outcome::Ok,
        devices.clone(),
    );
    let mut parser = EscapeParser::new(EscapeConfig::default());
    let mut lines = TaggedLines::new();
    let mut open = listen.devices().len();
    let mut tick = tokio::time::interval(PARTIAL_AFTER);
    let status = loop {
        tokio::select! {
            input = term.input() => match input {
                TermInput::Closed => break 0,
                TermInput::Resize { .. } => {}
                TermInput::Data(data) => {
                    if data.contains(&0x03) {
                        term.line("\r\n[mo: stopped listening]").await;
                        break 0;
                    }
                    let mut leave = false;
                    for item in parser.feed(&data) {
                        match item {
                            Input::Command(Command::Disconnect) => leave = true,
                            Input::Echo(bytes) => term.write(bytes).await,
                            Input::Data(_) => {
                                term.line("[mo: listen is read-only; Ctrl-E c . or Ctrl-C leaves]").await;
                            }
                            Input::Command(_) | Input::Error(_) => {
                                term.line("[mo: only Ctrl-E c . (leave) works in listen]").await;
                            }
                            _ => {}
                        }
                    }
                    if leave {
                        term.line("\r\n[mo: stopped listening]").await;
                        break 0;
                    }
                }
            },
            event = listen.next() => {
                let Some(event) = event else { break 1 };
                let out = lines.event(&event.device, &event.kind, std::time::Instant::now());
                if matches!(event.kind, GangEventKind::Closed) {
                    open = open.saturating_sub(1);
                }
                if !out.is_empty() {
                    term.write(term.crlf(&out)).await;
                }
                if open == 0 {
                    term.line("[mo: every console stopped]").await;
                    break 1;
                }
            }
            _ = tick.tick() => {
                // Prompts (lines without an end yet) are shown once they stand still.
                let out = lines.partials(std::time::Instant::now());
                if !out.is_empty() {
                    term.write(term.crlf(&out)).await;
                }
            }
        }
    };
    drop(listen);
    ctx.access.record(
        user,
        origin,
        "unlisten",
        None,
        mo_store::Outcome::Ok,
        devices,
    );
    status
}
