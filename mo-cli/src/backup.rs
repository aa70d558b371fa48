//! `mo backup FILE` and `mo restore FILE --data-dir NEW` (docs/admin.md, docs/cli.md).
//!
//! Both work on the data directory of this host (never through `--server`): the backup is an
//! online snapshot taken while the daemon runs; the restore fills a new, empty data directory
//! that a daemon can then be started on. The archive format is in `mo_store::backup`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use mo_store::backup::{BackupOptions, create_backup, restore_backup};
use mo_store::{AuditEntry, DataDir, Outcome};

use crate::cli::{Cli, Command};

/// `mo backup`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mo backup /var/backups/mo-$(date +%F).tar.zst\n  \
    mo backup --with-logs --with-secret-key /mnt/offsite/mo.tar")]
pub struct BackupArgs {
    /// The archive to write (a tar; zstd-compressed when the name ends in .zst or with --zstd).
    /// Created readable by its owner only; an existing file is replaced once the new one is
    /// complete.
    pub file: PathBuf,
    /// Add the record logs, each up to its last complete record at the moment it is copied.
    #[arg(long)]
    pub with_logs: bool,
    /// Add the key sealing device secrets (DIR/secret.key). Without it the restored secrets
    /// stay sealed until the key is copied over by hand.
    #[arg(long)]
    pub with_secret_key: bool,
    /// Compress with zstd (the default when FILE ends in .zst).
    #[arg(long)]
    pub zstd: bool,
    /// No progress lines on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `mo restore`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mo restore /var/backups/mo-2026-12-05.tar.zst --data-dir /var/lib/mo-new\n  \
    mod --data-dir /var/lib/mo-new ...")]
pub struct RestoreArgs {
    /// The archive `mo backup` wrote.
    pub file: PathBuf,
    /// Restore into a data directory that is not empty, replacing the files the backup holds.
    #[arg(long)]
    pub force: bool,
    /// No progress lines on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run `mo backup` or `mo restore`; `None` for every other command.
pub fn dispatch(cli: &Cli, out: &mut dyn Write) -> Result<Option<ExitCode>> {
    let (Command::Backup(_) | Command::Restore(_)) = &cli.command else {
        return Ok(None);
    };
    if cli.server.as_deref().is_some_and(|s| !s.is_empty()) {
        bail!(
            "backup and restore work on a data directory of this host, not through \
             --server/MO_SERVER: run them on the daemon's host (with --data-dir DIR)"
        );
    }
    match &cli.command {
        Command::Backup(args) => backup(cli, args, out)?,
        Command::Restore(args) => restore(cli, args, out)?,
        _ => {}
    }
    Ok(Some(ExitCode::SUCCESS))
}

fn progress(quiet: bool) -> impl FnMut(&str) {
    move |line: &str| {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "mo: {line}");
        }
    }
}

fn backup(cli: &Cli, args: &BackupArgs, out: &mut dyn Write) -> Result<()> {
    let dir = DataDir::existing(&cli.data_dir).map_err(|e| {
        anyhow::anyhow!("{e} (give the daemon's data directory with --data-dir DIR or MO_DATA_DIR)")
    })?;
    if !dir.db_path().exists() {
        bail!(
            "{} has no store ({}): nothing to back up",
            dir.path().display(),
            mo_store::DB_FILE
        );
    }
    let store = dir.open_store()?;
    let zstd = args.zstd || args.file.extension().is_some_and(|e| e == "zst");
    let opts = BackupOptions {
        with_logs: args.with_logs,
        with_secret_key: args.with_secret_key,
        zstd,
    };
    let result = create_backup(&dir, &store, &args.file, &opts, &mut progress(args.quiet));
    let detail = format!(
        "to {}{}{}",
        args.file.display(),
        if args.with_logs { ", with logs" } else { "" },
        if args.with_secret_key {
            ", with secret key"
        } else {
            ""
        }
    );
    let (outcome, detail) = match &result {
        Ok(_) => (Outcome::Ok, detail),
        Err(e) => (Outcome::Failed, format!("{detail}: {e}")),
    };
    let entry = AuditEntry::new(Some(&crate::access::invoking_user()), "backup", outcome)
        .source(Some("cli"))
        .detail(detail);
    let recorded = store.append_audit(&entry);
    let manifest = result?;
    recorded.context("the backup was written but could not be recorded in the audit log")?;
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    writeln!(
        out,
        "backed up {} ({} files, {bytes} bytes, schema {}) to {}",
        dir.path().display(),
        manifest.files.len(),
        manifest.schema_version,
        args.file.display()
    )?;
    if !args.with_secret_key {
        writeln!(
            out,
            "note: the secret key (secret.key) is not in the backup; keep a copy of it elsewhere, \
             or give --with-secret-key"
        )?;
    }
    Ok(())
}

fn restore(cli: &Cli, args: &RestoreArgs, out: &mut dyn Write) -> Result<()> {
    let Some(dest) = cli.data_dir_given.as_deref() else {
        bail!(
            "restoring needs the data directory to restore into: give --data-dir NEW (a new or \
             empty directory)"
        );
    };
    let report = restore_backup(
        &args.file,
        dest,
        args.force,
        &crate::access::invoking_user(),
        &mut progress(args.quiet),
    )?;
    let m = &report.manifest;
    writeln!(
        out,
        "restored {} into {}: {} devices, {} users (taken {} by mo {}, schema {}{})",
        args.file.display(),
        dest.display(),
        report.devices,
        report.users,
        m.created,
        m.mo_version,
        m.schema_version,
        if report.schema_version != m.schema_version {
            format!(", migrated to {}", report.schema_version)
        } else {
            String::new()
        }
    )?;
    if !m.with_logs {
        writeln!(
            out,
            "note: the backup has no record logs (taken without --with-logs)"
        )?;
    }
    if report.sealed_secrets > 0 && !m.with_secret_key {
        writeln!(
            out,
            "note: {} sealed device secrets need the secret key, which is not in the backup: copy \
             the old data directory's secret.key to {} (mode 0600) before starting the daemon",
            report.sealed_secrets,
            dest.join(mo_store::SECRET_KEY_FILE).display()
        )?;
    }
    Ok(())
}
