//! `mo`: the command-line admin tool of mo, the console-management SDK.
//!
//! It works directly on a daemon's data directory (`--data-dir`, `MO_DATA_DIR`, default the
//! one `mod` uses: `$XDG_DATA_HOME/mo` or `~/.local/share/mo`, or the service's `/var/lib/mo`): devices and users in the SQLite store, and the per-device record logs. The
//! daemon may be running; it notices device changes within a second. With `--server URL`
//! (`MO_SERVER`) and `--token` (`MO_TOKEN`), `console`, `who`, `power`, `devices`, `device list`
//! and `log show` talk to a daemon's HTTP API instead. See `docs/cli.md`.
//!
//! Errors are one line on standard error (`mo: unknown device `web01``) and a non-zero exit
//! status; `mo log verify` exits with 1 when it finds problems.

mod access;
mod agent;
mod audit;
mod automation_cli;
mod backup;
mod cli;
#[cfg(test)]
mod cli_words;
mod cluster;
mod config;
mod device;
mod discover;
mod events;
mod events_remote;
mod generate;
mod host;
mod listen;
mod log;
mod log_usage;
mod macros;
mod maintenance;
mod mass;
mod power;
mod power_verify;
mod profile;
mod remote;
mod server_admin;
#[cfg(test)]
mod server_walk;
#[cfg(test)]
mod server_walk_access;
mod signal;
mod table;
mod user;
mod wizard;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use mo_store::DataDir;

use cli::{Cli, Command, DeviceCommand, UserCommand};

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = generate::intercept(&argv, <Cli as clap::CommandFactory>::command) {
        return ExitCode::from(u8::try_from(status).unwrap_or(1));
    }
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = profile::apply(&mut cli) {
        let _ = writeln!(io::stderr(), "mo: {}", one_line(&e));
        return ExitCode::FAILURE;
    }
    match cli
        .data_dir_given
        .clone()
        .or_else(|| mo_store::client_data_dir(|name| std::env::var_os(name)).map(|(dir, _)| dir))
    {
        Some(dir) => cli.data_dir = dir,
        // With --server no command uses the data directory.
        None if cli.server.as_deref().is_some_and(|s| !s.is_empty()) => {}
        None => {
            let _ = writeln!(
                io::stderr(),
                "mo: no data directory: give --data-dir DIR (neither $XDG_DATA_HOME nor $HOME is set)"
            );
            return ExitCode::FAILURE;
        }
    }
    let mut out = io::BufWriter::new(io::stdout());
    let result = run(cli, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "mo: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Help and version go out as clap prints them; a usage mistake becomes one line and status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let _ = writeln!(io::stderr(), "mo: {first} (see `mo --help`)");
    ExitCode::from(2)
}

fn run(cli: Cli, out: &mut (dyn Write + Send)) -> Result<ExitCode> {
    match &cli.command {
        Command::Login(args) => {
            profile::login(&cli, args, &mut io::stdin().lock(), out)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Logout(args) => {
            profile::logout(&cli, args, out)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Some(code) = backup::dispatch(&cli, out)? {
        return Ok(code);
    }
    if let Command::Maintenance(command) = &cli.command
        && let Some(server) = cli.server.as_deref().filter(|s| !s.is_empty())
    {
        let trust = mo_client::Trust::from_options(cli.ca.as_deref(), cli.pin.as_deref())?;
        maintenance::remote(server, cli.token.as_deref(), trust, command, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Host(command) = &cli.command {
        let trust = mo_client::Trust::from_options(cli.ca.as_deref(), cli.pin.as_deref())?;
        let server = cli.server.as_deref().filter(|s| !s.is_empty());
        host::run(server, cli.token.as_deref(), trust, command, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Events(args) = &cli.command
        && let Some(raise) = args.raise()
    {
        let trust = mo_client::Trust::from_options(cli.ca.as_deref(), cli.pin.as_deref())?;
        return events::raise(
            cli.server.as_deref(),
            cli.token.as_deref(),
            trust,
            raise,
            out,
        );
    }
    if let Some(server) = cli.server.as_deref().filter(|s| !s.is_empty()) {
        let trust = mo_client::Trust::from_options(cli.ca.as_deref(), cli.pin.as_deref())?;
        if let Some(code) = remote::run(
            server,
            cli.token.as_deref(),
            trust.clone(),
            &cli.command,
            out,
        )? {
            return Ok(code);
        }
        // Everything else goes through the API too, or is refused: never a local data directory
        // (`discover` has its own API path below).
        if !matches!(cli.command, Command::Discover(_)) {
            let stdin = io::stdin();
            return server_admin::run(
                server,
                cli.token.as_deref(),
                trust,
                &cli.command,
                &mut stdin.lock(),
                out,
            );
        }
    } else if remote::needs_server(&cli.command) {
        anyhow::bail!(
            "this command talks to a daemon: give its API with --server URL (or MO_SERVER), \
             e.g. --server http://127.0.0.1:8022"
        );
    }
    if let Command::Discover(args) = cli.command {
        match cli.server.as_deref().filter(|s| !s.is_empty()) {
            Some(server) => {
                let trust = mo_client::Trust::from_options(cli.ca.as_deref(), cli.pin.as_deref())?;
                discover::remote(server, cli.token.as_deref(), trust, args, out)?;
            }
            None => discover::run(&cli.data_dir, args, out)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Wizard(command) = cli.command {
        wizard::run(&cli.data_dir, command, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Only commands that create something create the data directory.
    let creates = matches!(
        cli.command,
        Command::Device(DeviceCommand::Add { .. })
            | Command::User(UserCommand::Add { .. })
            | Command::Config(config::ConfigCommand::Import { .. })
            | Command::Macro(macros::MacroCommand::Add { .. })
    );
    // An archive is checked on its own; the data directory, if there is one, adds the digest
    // its audit log recorded.
    if let Command::Audit(audit::AuditArgs {
        command: Some(audit::AuditCommand::VerifyArchive { file, json }),
        ..
    }) = &cli.command
    {
        let dir = DataDir::existing(&cli.data_dir).ok();
        audit::verify_archive(dir.as_ref(), file, *json, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = if creates {
        DataDir::open(&cli.data_dir)?
    } else {
        DataDir::existing(&cli.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "{e} (give it with --data-dir DIR or MO_DATA_DIR; `mo device add` creates it)"
            )
        })?
    };
    match cli.command {
        Command::Device(command) => {
            let store = dir.open_store()?;
            device::run(&dir, &store, command, out)?;
        }
        Command::User(command) => {
            let store = dir.open_store()?;
            let stdin = io::stdin();
            user::run(&store, command, &mut stdin.lock(), out)?;
        }
        Command::Log(command) => return log::run(&dir, command, out),
        Command::Group(command) => access::group(&dir.open_store()?, command, out)?,
        Command::UserGroup(command) => access::user_group(&dir.open_store()?, command, out)?,
        Command::Role(command) => access::role(&dir.open_store()?, command, out)?,
        Command::Grant(command) => access::grant(&dir.open_store()?, command, out)?,
        Command::Token(command) => access::token(&dir.open_store()?, command, out)?,
        Command::Secret(command) => {
            let store = dir.open_store()?;
            let stdin = io::stdin();
            access::secret(&dir, &store, command, &mut stdin.lock(), out)?;
        }
        Command::Audit(args) => audit::run(&dir.open_store()?, args, out)?,
        Command::Events(args) => events::run(&dir.open_store()?, args, out)?,
        Command::Config(command) => config::run(&dir, &dir.open_store()?, command, out)?,
        Command::Macro(command) => return macros::run(&dir, command, out),
        Command::Maintenance(command) => maintenance::run(&dir.open_store()?, command, out)?,
        Command::Agent(command) => agent::run(&dir, &dir.open_store()?, command, out)?,
        Command::Devices { json } => {
            let store = dir.open_store()?;
            device::run(&dir, &store, DeviceCommand::List { json }, out)?;
        }
        Command::Power {
            action,
            names,
            yes,
            wait,
            ..
        } if action == "verify" => return power_verify::run(&dir, &names, yes, wait, out),
        Command::Power {
            action,
            mut names,
            json,
            yes,
            all,
            ..
        } => {
            if all {
                names.push("*".into());
            }
            return power::run(&dir, &action, &names, (all, yes), json, out);
        }
        Command::Discover(_) | Command::Wizard(_) => {}
        Command::Console(_) | Command::Who { .. } | Command::Cluster(_) => {}
        Command::Login(_) | Command::Logout(_) | Command::Gang(_) | Command::Listen(_) => {}
        Command::Backup(_) | Command::Restore(_) | Command::Host(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The error and its causes on one line, leaving out causes whose text the message already holds
/// (mo's errors often include their source's text).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
