//! `mo listen NAME|GLOB|@GROUP…` through the daemon's API (`--server`), as the SSH shell's
//! `listen`: the live output of many consoles merged read-only, each line tagged with its device
//! (`web01: login:`), until Ctrl-C or every console has stopped.
//!
//! Each console is watched as a spy over the WebSocket attach route (`mode=spy`), so the daemon
//! refuses any write; standard input is not read. Selectors are expanded with
//! [`mo_core::selector`] against the devices the caller may see; the lines are made by
//! [`mo_core::automation::TaggedLines`], the same text the SSH shell shows.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use mo_client::Client;
use mo_core::automation::tagged::PARTIAL_AFTER;
use mo_core::automation::{GangEventKind, TaggedLines};
use mo_core::console::Mode;
use mo_core::facade::Output;
use tokio::sync::mpsc;

/// Options of `mo listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The devices: names, globs (`web-*`) or `@GROUP`.
    #[arg(required = true, value_name = "NAME|GLOB|@GROUP")]
    pub names: Vec<String>,
}

/// `mo listen …`: exit 0 after Ctrl-C, 1 when every console has stopped.
pub async fn run(
    client: &Client,
    args: &ListenArgs,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let names = crate::mass::expand_with(client, &args.names, false).await?;
    let (tx, mut events) = mpsc::channel::<(Arc<str>, GangEventKind)>(256);
    let mut listening: Vec<String> = Vec::new();
    for name in &names {
        let handle = match client.attach(name, Mode::Spy, Some(0)).await {
            Ok(handle) => handle,
            Err(e) => {
                writeln!(io::stderr(), "mo: not listening to {name}: {e}")?;
                continue;
            }
        };
        listening.push(name.clone());
        let device: Arc<str> = Arc::from(name.as_str());
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let (kind, last) = match handle.read().await {
                    Output::Data(bytes) => (GangEventKind::Output(bytes), false),
                    Output::Notice(text) => (GangEventKind::Notice(text), false),
                    Output::Missed(bytes) => (GangEventKind::Missed { bytes }, false),
                    Output::Closed(_) => (GangEventKind::Closed, true),
                    _ => continue,
                };
                if tx.send((device.clone(), kind)).await.is_err() || last {
                    break;
                }
            }
            let _ = handle.close().await;
        });
    }
    drop(tx);
    if listening.is_empty() {
        bail!("nothing to listen to");
    }
    writeln!(
        io::stderr(),
        "[mo: listening to {} console(s): {}; read-only; Ctrl-C leaves]",
        listening.len(),
        listening.join(", ")
    )?;
    let mut lines = TaggedLines::new();
    let mut open = listening.len();
    let mut tick = tokio::time::interval(PARTIAL_AFTER);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let text = tokio::select! {
            event = events.recv() => {
                let Some((device, kind)) = event else { break };
                if matches!(kind, GangEventKind::Closed) {
                    open = open.saturating_sub(1);
                }
                lines.event(&device, &kind, Instant::now())
            }
            _ = tick.tick() => lines.partials(Instant::now()),
            _ = &mut interrupted => {
                writeln!(io::stderr(), "\n[mo: stopped listening]")?;
                return Ok(ExitCode::SUCCESS);
            }
        };
        if !text.is_empty() {
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        if open == 0 {
            break;
        }
    }
    writeln!(io::stderr(), "[mo: every console stopped]")?;
    Ok(ExitCode::FAILURE)
}
