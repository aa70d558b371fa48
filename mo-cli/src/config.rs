//! `mo config export` and `mo config import`: the whole site as TOML, device spreadsheets, and
//! migration from conserver and ConMan (see `docs/config.md`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use mo_store::Store;
use mo_store::config::{self, Format, PlanOptions};

/// `mo config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write devices and users (with password hashes, never passwords) as TOML.
    ///
    /// The output is sorted by name with every setting spelled out, so two exports diff
    /// cleanly. Written to standard output, or to FILE (created readable by its owner only).
    #[command(after_help = "Examples:\n  \
        mo config export > site.toml\n  \
        mo config export -o /backup/site.toml")]
    Export {
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Import a configuration: mo TOML, a device spreadsheet (CSV), conserver.cf or conman.conf.
    ///
    /// Prints the plan (+ add, ~ change, - remove), then applies it in one transaction: a bad
    /// file or a failing change leaves the store as it was. Importing the same file again
    /// changes nothing. Devices and users the file does not mention are kept (listed as "not in
    /// file") unless --prune is given. What a migration cannot carry over is listed with its
    /// file and line.
    #[command(after_help = "Examples:\n  \
        mo config import site.toml --dry-run\n  \
        mo config import devices.csv\n  \
        mo config import /etc/conserver.cf\n  \
        mo config import /etc/conman.conf --format conman")]
    Import {
        /// The file to read.
        file: PathBuf,
        /// Print the plan only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also remove devices, users and SSH keys that are not in the file.
        #[arg(long)]
        prune: bool,
        /// The file's format; `auto` guesses from the name (.toml, .csv, conserver*, *.cf,
        /// conman*), then from the content.
        #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
        format: FormatArg,
        /// Print the plan and the outcome as JSON: `{"plan": [LINE…], "adds", "changes",
        /// "removals", "dry_run", "applied"}`.
        #[arg(long)]
        json: bool,
    },
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Guess from the file name, then the content.
    Auto,
    /// mo's TOML.
    Toml,
    /// A device spreadsheet.
    Csv,
    /// conserver.cf.
    Conserver,
    /// conman.conf.
    Conman,
}

impl FormatArg {
    fn format(self) -> Option<Format> {
        match self {
            FormatArg::Auto => None,
            FormatArg::Toml => Some(Format::Toml),
            FormatArg::Csv => Some(Format::Csv),
            FormatArg::Conserver => Some(Format::Conserver),
            FormatArg::Conman => Some(Format::Conman),
        }
    }
}

/// Run a `mo config` command.
pub fn run(
    dir: &mo_store::DataDir,
    store: &Store,
    command: ConfigCommand,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    match command {
        ConfigCommand::Export { output } => {
            let text = config::to_toml(&config::export(store)?)?;
            match output {
                None => out.write_all(text.as_bytes())?,
                Some(path) => write_private(&path, &text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            }
        }
        ConfigCommand::Import {
            file,
            dry_run,
            prune,
            format,
            json,
        } => {
            let site = config::read_file(&file, format.format())?;
            let plan = config::plan(&site, store, &PlanOptions { prune })?;
            if !json {
                write!(out, "{plan}")?;
            }
            if dry_run {
                if !json {
                    writeln!(out, "dry run: nothing changed")?;
                }
            } else if !plan.is_empty() {
                let sets_secrets = plan
                    .changes
                    .iter()
                    .any(|c| matches!(c, config::Change::SetSecret(_)));
                let key = if sets_secrets {
                    Some(dir.secret_key()?)
                } else {
                    None
                };
                config::apply_with_key(&plan, store, key.as_ref())?;
                if !json {
                    writeln!(
                        out,
                        "applied: {} added, {} changed, {} removed",
                        plan.adds.len(),
                        plan.changes.len(),
                        plan.removals.len()
                    )?;
                }
            }
            if json {
                let text = plan.to_string();
                let report = serde_json::json!({
                    "plan": text.lines().collect::<Vec<_>>(),
                    "adds": plan.adds.len(),
                    "changes": plan.changes.len(),
                    "removals": plan.removals.len(),
                    "dry_run": dry_run,
                    "applied": !dry_run && !plan.is_empty(),
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            }
        }
    }
    Ok(())
}

/// Write `text` to `path` through a temporary file in the same directory (mode 0600), renamed
/// into place, so a reader never sees half a file.
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
