//! `mo log …`: show, tail, follow, verify, search and export a device's record log; notes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mo_core::log::{
    AsciicastOptions, DEFAULT_FOLLOW_TAIL, LogOptions, SearchOptions, ShowOptions, append_note,
    export_asciicast, format_timestamp, list_notes, parse_time_spec, search, show, show_around,
    show_follow, verify,
};
use mo_core::record::{RecordKind, now_ns};
use mo_store::DataDir;

use crate::cli::{LogCommand, LogFilter};
use crate::table::Table;

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Run one `mo log` command; `mo log verify` answers 1 when the log is damaged, `mo log search`
/// when nothing matched.
pub fn run(dir: &DataDir, command: LogCommand, out: &mut (dyn Write + Send)) -> Result<ExitCode> {
    match command {
        LogCommand::Show {
            name,
            around: Some(seq),
            context,
            ..
        } => {
            let log = log_dir(dir, &name)?;
            show_around(&log, seq, context, context, out)?;
        }
        LogCommand::Show {
            name,
            filter,
            follow,
            tail,
            ..
        } => {
            let log = log_dir(dir, &name)?;
            let opts = show_options(&filter, tail)?;
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
        LogCommand::Usage {
            names,
            retain_days,
            retain_gib,
            retain_mib,
            json,
        } => {
            let defaults = crate::log_usage::Defaults {
                max_age: retain_days,
                max_size: retain_gib.or(retain_mib),
            };
            crate::log_usage::run(dir, names, defaults, json, out)?;
        }
        LogCommand::Verify {
            name,
            json,
            replicas,
        } => {
            if replicas {
                bail!("`mo log verify --replicas` asks a daemon of the site: give --server URL");
            }
            let log = log_dir(dir, &name)?;
            let report = verify(&log)?;
            if json {
                writeln!(out, "{}", verify_json(&report))?;
            } else {
                write!(out, "{report}")?;
            }
            if !report.is_ok() {
                return Ok(ExitCode::from(1));
            }
        }
        LogCommand::Search {
            name,
            regex,
            before,
            after,
            context,
            ignore_case,
            since,
            until,
            json,
        } => {
            let log = log_dir(dir, &name)?;
            let (since, until) = time_range(since.as_deref(), until.as_deref())?;
            let opts = SearchOptions {
                pattern: regex,
                ignore_case,
                before: before.or(context).unwrap_or(0),
                after: after.or(context).unwrap_or(0),
                since,
                until,
                hide_input: false,
            };
            let stats = if json {
                let mut text = Vec::new();
                let stats = search(&log, &opts, &mut text)?;
                writeln!(out, "{}", search_json(&String::from_utf8_lossy(&text)))?;
                stats
            } else {
                search(&log, &opts, out)?
            };
            if stats.matches == 0 {
                return Ok(ExitCode::from(1));
            }
        }
        LogCommand::Export {
            name,
            asciicast: _,
            since,
            until,
            width,
            height,
            output,
        } => {
            let log = log_dir(dir, &name)?;
            let (since, until) = time_range(since.as_deref(), until.as_deref())?;
            let opts = AsciicastOptions {
                width,
                height,
                title: Some(name.clone()),
                since,
                until,
                hide_input: false,
            };
            match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut file = std::io::BufWriter::new(file);
                    export_asciicast(&log, &opts, &mut file)?;
                }
                None => {
                    export_asciicast(&log, &opts, out)?;
                }
            }
        }
        LogCommand::Note { name, text, user } => {
            let log = log_dir(dir, &name)?;
            if text.trim().is_empty() {
                bail!("the note is empty");
            }
            let seq = append_note(&log, LogOptions::default(), RecordKind::Note, &user, &text)?;
            writeln!(out, "note {seq} written to the log of {name}")?;
        }
        LogCommand::Notes {
            name,
            since,
            until,
            json,
        } => {
            let log = log_dir(dir, &name)?;
            let (since, until) = time_range(since.as_deref(), until.as_deref())?;
            let notes = list_notes(&log, since, until)?;
            if json {
                let list: Vec<serde_json::Value> = notes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "seq": n.seq,
                            "time": format_timestamp(n.time_ns),
                            "kind": n.kind.name(),
                            "user": n.user,
                            "text": n.text,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else {
                let mut table = Table::new(&["SEQ", "TIME", "KIND", "USER", "TEXT"]);
                for n in &notes {
                    table.row(vec![
                        n.seq.to_string(),
                        format_timestamp(n.time_ns),
                        n.kind.name().to_owned(),
                        n.user.clone(),
                        n.text.replace(['\n', '\r'], " "),
                    ]);
                }
                table.write(out)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`/`--until` as ns since the Unix epoch; `--until` must be later.
fn time_range(since: Option<&str>, until: Option<&str>) -> Result<(Option<u64>, Option<u64>)> {
    let now = now_ns();
    let since = since.map(|s| parse_time_spec(s, now)).transpose()?;
    let until = until.map(|s| parse_time_spec(s, now)).transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        bail!("--until must be later than --since");
    }
    Ok((since, until))
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
        hide_input: false,
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

/// `mo log verify --json`: the shape of the API's report.
fn verify_json(report: &mo_core::log::VerifyReport) -> String {
    let mut problems: Vec<String> = report.problem.iter().map(|p| p.to_string()).collect();
    if report.problems > 1 {
        problems.push(format!("({} problems in all)", report.problems));
    }
    let mut warnings: Vec<String> = report
        .torn_tail
        .iter()
        .map(|t| format!("torn final record: {t}"))
        .collect();
    warnings.extend(report.notes.iter().cloned());
    let value = serde_json::json!({
        "ok": report.is_ok(),
        "records": report.records,
        "segments": report.segments,
        "problems": problems,
        "warnings": warnings,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// `mo log search --json`: each printed line (context lines too) as `{time, line}`; a line
/// continuing a record takes its record's time; the `--` separators are left out.
fn search_json(text: &str) -> String {
    let mut hits = Vec::new();
    let mut last_time = String::new();
    for line in text.lines().filter(|l| *l != "--" && !l.is_empty()) {
        let (time, rest) = match line.split_once(' ') {
            Some((t, rest)) if looks_like_time(t) => (t.to_string(), rest),
            _ => (last_time.clone(), line),
        };
        last_time.clone_from(&time);
        hits.push(serde_json::json!({ "time": time, "line": rest }));
    }
    serde_json::to_string_pretty(&hits).unwrap_or_default()
}

/// An RFC 3339 timestamp as the log renders it (`2026-11-22T10:00:00.123Z`).
fn looks_like_time(word: &str) -> bool {
    word.len() >= 20
        && word.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && word.contains('T')
        && word.ends_with('Z')
}
