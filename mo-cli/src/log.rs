//! `mo log …`: show, tail, follow and verify a device's record log.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mo_core::log::{DEFAULT_FOLLOW_TAIL, ShowOptions, parse_time_spec, show, show_follow, verify};
use mo_core::record::{RecordKind, now_ns};
use mo_store::DataDir;

use crate::cli::{LogCommand, LogFilter};

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Run one `mo log` command; `mo log verify` answers 1 when the log is damaged.
pub fn run(dir: &DataDir, command: LogCommand, out: &mut (dyn Write + Send)) -> Result<ExitCode> {
    match command {
        LogCommand::Show {
            name,
            filter,
            follow,
        } => {
            let log = log_dir(dir, &name)?;
            let opts = show_options(&filter, None)?;
            render(&log, &opts, follow, out)?;
        }
        LogCommand::Tail {
            name,
            lines,
            follow,
            filter,
        } => {
            let log = log_dir(dir, &name)?;
            let opts = show_options(&filter, Some(lines))?;
            render(&log, &opts, follow, out)?;
        }
        LogCommand::Verify { name } => {
            let log = log_dir(dir, &name)?;
            let report = verify(&log)?;
            write!(out, "{report}")?;
            if !report.is_ok() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `DIR/logs/NAME`, which must exist. A removed device's log can still be read.
fn log_dir(dir: &DataDir, name: &str) -> Result<PathBuf> {
    let log = dir.device_log_dir(name)?;
    if !log.is_dir() {
        bail!(
            "no record log for device `{name}` ({} does not exist; the daemon creates it when the \
             console starts)",
            log.display()
        );
    }
    Ok(log)
}

fn show_options(filter: &LogFilter, tail: Option<usize>) -> Result<ShowOptions> {
    let now = now_ns();
    let time = |spec: &Option<String>| -> Result<Option<u64>> {
        spec.as_deref()
            .map(|s| parse_time_spec(s, now))
            .transpose()
            .map_err(Into::into)
    };
    let since = time(&filter.since)?;
    let until = time(&filter.until)?;
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        bail!("--until must be later than --since");
    }
    let kinds = filter
        .kind
        .iter()
        .map(|name| {
            RecordKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .with_context(|| format!("unknown record kind `{name}` (one of: {})", kind_names()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ShowOptions {
        since,
        until,
        from_seq: filter.seq,
        tail,
        kinds,
    })
}

/// Every record kind's name, comma-separated.
pub fn kind_names() -> String {
    RecordKind::ALL.map(RecordKind::name).join(", ")
}

fn render(
    log: &std::path::Path,
    opts: &ShowOptions,
    follow: bool,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    if !follow {
        show(log, opts, out)?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("cannot start the runtime for --follow")?;
    runtime.block_on(show_follow(log, opts, FOLLOW_POLL, out))?;
    Ok(())
}

/// The number of records `mo log tail` shows by default.
pub const DEFAULT_TAIL: usize = DEFAULT_FOLLOW_TAIL;
