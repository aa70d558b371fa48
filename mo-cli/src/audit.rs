//! `mo audit`: read the audit log.

use std::io::{self, Write};

use anyhow::Result;
use clap::Args;
use mo_store::{AuditFilter, Outcome, Store};

use crate::table::Table;

/// Options of `mo audit`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
    mo audit --since 1d\n  \
    mo audit --user alice --denied\n  \
    mo audit --device web01 --action power.control --limit 20\n  \
    mo audit verify-archive DIR/audit-archive/audit-20260101T000000Z-20260201T000000Z-812.jsonl"
)]
pub struct AuditArgs {
    /// Work on audit archives instead of reading the log.
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only this user (`os:NAME` for changes made with the `mo` CLI).
    #[arg(long)]
    pub user: Option<String>,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Only this action (`attach`, `login`, `grant.add`, …).
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries at or after TIME (`2h`, `1d`, `2026-11-22T10:00:00Z`, …).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only entries before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only denied requests (same as `--outcome denied`).
    #[arg(long, conflicts_with = "outcome")]
    pub denied: bool,
    /// Only this outcome: allowed, denied, failed, ok.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only the newest N entries; `--limit` is the old spelling.
    #[arg(
        long = "tail",
        alias = "limit",
        value_name = "N",
        default_value_t = 100
    )]
    pub limit: usize,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `mo audit …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check an audit archive written by `mod --audit-retain-days` (DIR/audit-archive/*.jsonl).
    ///
    /// Checks the header, every row, the row count and the file's SHA-256 against its last
    /// line, and compares that digest with the one the audit log recorded when the archive was
    /// written (its `audit.prune` entry), while that entry is still in the log. Exit status 0:
    /// intact; 1: damaged, changed or unreadable.
    VerifyArchive {
        /// The archive file.
        file: std::path::PathBuf,
        /// Print the report as JSON (file, rows, first_id, last_id, from, to, sha256 and
        /// `recorded`: `same` when the audit log's audit.prune entry has the same digest,
        /// `none` when it has no entry); a bad or replaced archive is still an error.
        #[arg(long)]
        json: bool,
    },
}

/// Run `mo audit verify-archive`.
pub fn verify_archive(
    dir: Option<&mo_store::DataDir>,
    file: &std::path::Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let archive = mo_store::verify_audit_archive(file)?;
    let when = |ns: i64| mo_core::log::format_timestamp(u64::try_from(ns).unwrap_or(0));
    let mut report = serde_json::json!({"file": file.display().to_string(), "rows": archive.rows,
        "first_id": archive.first_id, "last_id": archive.last_id, "from": when(archive.from_ns),
        "to": when(archive.to_ns), "sha256": archive.sha256});
    // Text goes out as it is found; JSON once the digest is compared.
    let mut text: Box<dyn Write + '_> = if json {
        Box::new(io::sink())
    } else {
        Box::new(&mut *out)
    };
    writeln!(
        text,
        "{}: OK: {} audit rows (ids {}–{}), {} to {}, sha256 {}",
        file.display(),
        archive.rows,
        archive.first_id,
        archive.last_id,
        when(archive.from_ns),
        when(archive.to_ns),
        archive.sha256
    )?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let recorded = match dir {
        Some(dir) if dir.db_path().exists() => dir.open_store()?.audit_archive_digest(name)?,
        _ => None,
    };
    match recorded {
        Some(digest) if digest == archive.sha256 => {
            report["recorded"] = "same".into();
            writeln!(
                text,
                "the audit log's audit.prune entry records the same digest"
            )?;
        }
        Some(digest) => anyhow::bail!(
            "{}: the audit log recorded sha256 {digest} when this archive was written, but the \
             file now has {} (replaced)",
            file.display(),
            archive.sha256
        ),
        None => {
            report["recorded"] = "none".into();
            writeln!(
                text,
                "no audit.prune entry for {name} in this data directory's audit log (archived \
                 itself by a later prune, or another data directory): checked the file on its own"
            )?;
        }
    }
    drop(text);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// Run `mo audit`.
pub fn run(store: &Store, args: AuditArgs, out: &mut dyn Write) -> Result<()> {
    let now = mo_core::record::now_ns();
    let time = |t: &Option<String>| -> Result<Option<i64>> {
        t.as_deref()
            .map(|t| {
                let ns = mo_core::log::parse_time_spec(t, now)?;
                Ok(i64::try_from(ns).unwrap_or(i64::MAX))
            })
            .transpose()
    };
    let outcome = if args.denied {
        Some(Outcome::Denied)
    } else {
        args.outcome.as_deref().map(str::parse).transpose()?
    };
    let filter = AuditFilter {
        user: args.user,
        device: args.device,
        action: args.action,
        outcome,
        since_ns: time(&args.since)?,
        until_ns: time(&args.until)?,
        limit: Some(args.limit),
        own_after_id: None,
    };
    let entries = store.query_audit(&filter)?;
    let when = |ns: i64| mo_core::log::format_timestamp(u64::try_from(ns).unwrap_or(0));
    if args.json {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id,
                    "time": when(e.time_ns),
                    "time_ns": e.time_ns,
                    "user": e.user,
                    "source": e.source,
                    "action": e.action,
                    "device": e.device,
                    "outcome": e.outcome.name(),
                    "detail": e.detail,
                    "node": e.node,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &list)?;
        writeln!(out)?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(out, "no audit entries match")?;
        return Ok(());
    }
    // A site's entries (`mod --cluster --share-directory`) name the node they were made on.
    let site = entries.iter().any(|e| e.node.is_some());
    let mut columns = vec![
        "TIME", "USER", "SOURCE", "ACTION", "DEVICE", "OUTCOME", "DETAIL",
    ];
    if site {
        columns.insert(1, "NODE");
    }
    let mut table = Table::new(&columns);
    for e in entries {
        let node = e.node.clone().unwrap_or_else(|| "(here)".into());
        let mut row = vec![
            when(e.time_ns),
            e.user.unwrap_or_else(|| "-".into()),
            e.source.unwrap_or_else(|| "-".into()),
            e.action,
            e.device.unwrap_or_else(|| "-".into()),
            e.outcome.to_string(),
            e.detail.replace('\n', " "),
        ];
        if site {
            row.insert(1, node);
        }
        table.row(row);
    }
    table.write(out)?;
    Ok(())
}
