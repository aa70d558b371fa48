//! Commands that talk to a daemon's HTTP API (`--server URL`, `--token TOKEN`) through
//! `mo-client`: `console` (interactive attach), `who`, `power`, `devices`, `device list`,
//! `device signal`, `listen` and `log show`.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use mo_client::{Client, LogQuery, PowerAction};
use mo_core::console::Mode;
use mo_core::escape::{Command as Escape, EscapeConfig, EscapeParser, Input, help_text};
use mo_core::facade::{ConsoleHandle, Output};
use tokio::sync::mpsc;

use crate::cli::{Command, DeviceCommand, LogCommand};
use crate::table::Table;

/// Options of `mo console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The device.
    pub name: String,
    /// Read-only: watch without typing.
    #[arg(long, conflicts_with_all = ["force", "join"])]
    pub spy: bool,
    /// Take the write lock from whoever holds it (they become a spy).
    #[arg(long, conflicts_with = "join")]
    pub force: bool,
    /// Type alongside the holder of the write lock (where the console allows it).
    #[arg(long)]
    pub join: bool,
    /// Lines of recent output to replay first (default: the console's setting).
    #[arg(long, value_name = "N")]
    pub replay: Option<usize>,
}

/// True for commands that need `--server` (`power` also runs on the data directory).
pub fn needs_server(command: &Command) -> bool {
    matches!(
        command,
        Command::Console(_)
            | Command::Who { .. }
            | Command::Cluster(_)
            | Command::Device(DeviceCommand::Signal(_))
            | Command::Gang(_)
            | Command::Listen(_)
    )
}

/// Run `command` against the daemon at `server` if it is one the API serves; `None` otherwise
/// (the caller then runs it on the data directory).
pub fn run(
    server: &str,
    token: Option<&str>,
    trust: mo_client::Trust,
    command: &Command,
    out: &mut (dyn Write + Send),
) -> Result<Option<ExitCode>> {
    let remote = matches!(
        command,
        Command::Console(_)
            | Command::Listen(_)
            | Command::Who { .. }
            | Command::Cluster(_)
            | Command::Power { .. }
            | Command::Devices { .. }
            | Command::Device(DeviceCommand::List { .. })
            | Command::Device(DeviceCommand::Signal(_))
            | Command::Log(LogCommand::Show { .. })
    );
    if !remote {
        return Ok(None);
    }
    let client = Client::with_trust(server, token.unwrap_or_default(), trust)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = rt.block_on(async {
        match command {
            Command::Console(args) => console(&client, args).await,
            Command::Listen(args) => crate::listen::run(&client, args, out).await,
            Command::Cluster(command) => crate::cluster::run(&client, server, command, out).await,
            Command::Who { name, json } => who(&client, name.as_deref(), *json, out).await,
            Command::Device(DeviceCommand::Signal(args)) => {
                crate::signal::remote(&client, args, out).await
            }
            Command::Power { action, .. } if action == "verify" => {
                Err(crate::server_admin::refusal("power verify"))
            }
            Command::Power {
                action,
                names,
                json,
                yes,
                all,
                ..
            } => {
                let names = crate::mass::expand_with(&client, names, *all).await?;
                crate::mass::confirm(action, &names, *all, *yes)?;
                power(&client, action, &names, *json, out).await
            }
            Command::Devices { json } | Command::Device(DeviceCommand::List { json }) => {
                devices(&client, *json, out).await
            }
            Command::Log(LogCommand::Show {
                name,
                filter,
                tail,
                follow,
                around,
                ..
            }) => {
                if *follow || around.is_some() || filter.seq.is_some() || !filter.kind.is_empty() {
                    bail!(
                        "with --server, `mo log show` takes only --since, --until and --tail \
                         (--follow, --around, --seq and --kind work on the data directory)"
                    );
                }
                let mut query = LogQuery::default();
                query.since = filter.since.clone();
                query.until = filter.until.clone();
                query.limit = *tail;
                let text = client.log(name, &query).await?;
                out.write_all(text.as_bytes())?;
                Ok(ExitCode::SUCCESS)
            }
            _ => Ok(ExitCode::SUCCESS),
        }
    });
    // The stdin reader thread of `console` may still block in read(2): do not wait for it.
    rt.shutdown_background();
    code.map(Some)
}

async fn devices(client: &Client, json: bool, out: &mut (dyn Write + Send)) -> Result<ExitCode> {
    let list = client.devices().await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["NAME", "STATE", "VIEWERS", "MODEM", "URL", "DESCRIPTION"]);
    for d in &list {
        table.row(vec![
            d.name.clone(),
            d.state.to_string(),
            d.viewers.to_string(),
            crate::signal::api_modem_cell(d),
            d.url.clone(),
            d.description.clone().unwrap_or_default(),
        ]);
    }
    table.write(out)?;
    Ok(ExitCode::SUCCESS)
}

async fn who(
    client: &Client,
    name: Option<&str>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let list: Vec<mo_client::SessionInfo> = match name {
        Some(n) => client
            .who(n)
            .await?
            .into_iter()
            .map(|viewer| mo_client::SessionInfo::new(n, viewer))
            .collect(),
        None => client.sessions().await?,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["DEVICE", "USER", "ROLE", "SINCE", "FROM"]);
    for s in &list {
        table.row(vec![
            s.device.clone(),
            s.viewer.user.clone(),
            s.viewer.role.to_string(),
            s.viewer.since.clone(),
            s.viewer.origin.clone(),
        ]);
    }
    table.write(out)?;
    Ok(ExitCode::SUCCESS)
}

async fn power(
    client: &Client,
    action: &str,
    names: &[String],
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    let action = mo_client::parse_power_action(action)?;
    let mut failed = false;
    let mut reports = Vec::new();
    for name in names {
        let report = match action {
            PowerAction::Status => client.power_status(name).await,
            _ => client.power(name, action).await,
        };
        match report {
            Ok(r) => {
                failed |= r.ok == Some(false) || r.results.iter().any(|c| c.error.is_some());
                if !json {
                    for c in &r.results {
                        let error = c.error.as_deref().map(|e| format!(" ({e})"));
                        writeln!(
                            out,
                            "{name}: {} {}{}",
                            c.controller,
                            c.state,
                            error.unwrap_or_default()
                        )?;
                    }
                    if r.results.is_empty() {
                        writeln!(out, "{name}: {}", r.message.as_deref().unwrap_or("done"))?;
                    }
                }
                reports.push(r);
            }
            Err(e) => {
                failed = true;
                writeln!(io::stderr(), "mo: {name}: {e}")?;
            }
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A notice line on the raw terminal.
fn notice(text: &str) -> Vec<u8> {
    mo_core::console::terminal_notice(text).to_vec()
}

fn write_term(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// `mo console NAME`: bridge the terminal and the console until `^Ec.` or the end.
async fn console(client: &Client, args: &ConsoleArgs) -> Result<ExitCode> {
    let mode = if args.spy {
        Mode::Spy
    } else if args.force {
        Mode::Force
    } else if args.join {
        Mode::Join
    } else {
        Mode::Attach
    };
    let handle = Arc::new(client.attach(&args.name, mode, args.replay).await?);
    let escape = EscapeConfig::default();
    let info = handle.info().clone();
    let term = mo_drivers::terminal::RawTerminal::enter();
    let greeting = if info.message.is_empty() {
        format!("{} as {}", info.user, info.role)
    } else {
        info.message.clone()
    };
    write_term(&notice(&format!(
        "{}: {greeting}; {escape}? for help, {escape}. to leave",
        info.device
    )))?;
    if let Some((cols, rows)) = term.size() {
        let _ = handle.resize(cols, rows).await;
    }

    // Keystrokes are read on a thread of their own (a blocking read of the terminal).
    let (keys_tx, mut keys) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut buf = [0u8; 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut parser = EscapeParser::new(escape);
    let code = loop {
        tokio::select! {
            item = handle.read() => match item {
                Output::Data(bytes) => write_term(&bytes)?,
                item @ (Output::Notice(_) | Output::Missed(_)) => write_term(&item.terminal())?,
                Output::Closed(reason) => {
                    write_term(&notice(&format!("{} closed: {reason}", info.device)))?;
                    break ExitCode::FAILURE;
                }
                _ => {}
            },
            keys = keys.recv() => {
                let Some(keys) = keys else {
                    // End of input (a pipe): leave.
                    break ExitCode::SUCCESS;
                };
                if leave(&handle, &mut parser, &keys, &escape).await? {
                    write_term(&notice(&format!("left {}", info.device)))?;
                    break ExitCode::SUCCESS;
                }
            }
            Some(()) = async {
                match winch.as_mut() {
                    Some(w) => w.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((cols, rows)) = term.size() {
                    let _ = handle.resize(cols, rows).await;
                }
            }
        }
    };
    let _ = handle.close().await;
    drop(term);
    Ok(code)
}

/// Carry out typed keys; true when the viewer asked to leave.
async fn leave(
    handle: &ConsoleHandle,
    parser: &mut EscapeParser,
    keys: &[u8],
    escape: &EscapeConfig,
) -> Result<bool> {
    for input in parser.feed(keys) {
        match input {
            Input::Data(bytes) => {
                if let Err(e) = handle.write(&bytes).await {
                    write_term(&notice(&e.to_string()))?;
                }
            }
            Input::Echo(bytes) => write_term(&bytes)?,
            Input::Error(msg) => write_term(&notice(&msg))?,
            Input::Command(Escape::Disconnect) => return Ok(true),
            Input::Command(cmd) => {
                let reply = escape_command(handle, cmd, escape).await;
                write_term(&reply)?;
            }
            _ => {}
        }
    }
    Ok(false)
}

async fn escape_command(handle: &ConsoleHandle, cmd: Escape, escape: &EscapeConfig) -> Vec<u8> {
    let result = match cmd {
        Escape::Who => match handle.who().await {
            Ok(viewers) => {
                let mut text = format!("\r\n{}:\r\n", handle.device());
                for v in viewers {
                    text.push_str(&format!("  {:<16} {}\r\n", v.user, v.role));
                }
                return text.into_bytes();
            }
            Err(e) => Err(e),
        },
        Escape::Break(n) => handle.send_break(n).await,
        // The daemon answers with a notice (`DTR dropped by alice`) or why not.
        Escape::Signal { line, to } => handle.set_signal(line, to).await,
        ref cmd if let Some(mode) = Mode::of_command(cmd) => handle.set_mode(mode).await,
        // The note comes back through the timeline as `note written (record SEQ)`.
        Escape::Note(text) => match handle.note(&text).await {
            Ok(()) => return Vec::new(),
            Err(e) => Err(e),
        },
        Escape::Help => {
            return format!("\r\n{}", help_text(escape))
                .replace("\r\n", "\n")
                .replace('\n', "\r\n")
                .into_bytes();
        }
        Escape::Info => {
            let i = handle.info();
            Ok(format!("{}: you are {} as {}", i.device, i.user, i.role))
        }
        _ => Ok("this escape command is not available through --server".to_string()),
    };
    match result {
        Ok(text) => notice(&text),
        Err(e) => notice(&e.to_string()),
    }
}
