//! Configuration import and export: mo's own TOML, device spreadsheets (CSV), and migration from
//! conserver (`conserver.cf`) and ConMan (`conman.conf`); and the daemon's schedule file
//! (`mod --schedule`, [`ScheduleConfig`]).
//!
//! Every reader turns its input into a [`SiteConfig`] (plain data) or fails with a
//! [`ConfigError`] naming the file and line. [`plan`] compares a configuration with a store and
//! [`apply`] carries the plan out in one transaction, so a bad file or a failing apply leaves the
//! store as it was. Importing the same file twice gives an empty plan the second time.
//!
//! ```
//! use mo_store::config::{self, Format, PlanOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! let store = mo_store::Store::open(tmp.path().join("mo.db"))?;
//! let text = "name,url,on_demand\nweb01,serial:///dev/ttyS0?baud=115200,yes\n";
//! let site = config::parse(text, "devices.csv", Format::Csv)?;
//! let plan = config::plan(&site, &store, &PlanOptions::default())?;
//! assert_eq!(plan.adds.len(), 1);
//! config::apply(&plan, &store)?;
//! assert!(config::plan(&site, &store, &PlanOptions::default())?.is_empty());
//! # Ok(())
//! # }
//! ```

mod conman;
mod conserver;
mod conserver_lex;
mod csv;
mod model;
mod plan;
mod schedule;
mod toml;
mod urls;

use std::path::Path;

pub use self::csv::{CSV_COLUMNS, parse_csv};
pub use self::toml::{parse_toml, to_toml};
pub use conman::parse_conman;
pub use conserver::{Loader, parse_conserver};
pub use model::{
    AccessRule, DeviceGroupEntry, SecretEntry, SiteConfig, Unsupported, UserEntry, UserGroupEntry,
};
pub use plan::{Change, FieldChange, Plan, PlanOptions, apply, apply_with_key, export, plan};
pub use schedule::{
    DEFAULT_SCHEDULE_PARALLEL, ScheduleConfig, ScheduleEntry, ScheduleFile, ScheduledJob,
};

/// What went wrong reading or importing a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not follow its format's grammar, or a value in it is invalid.
    #[error("{file} line {line}{}: {reason}", column_suffix(.column, .key))]
    Syntax {
        /// The file (as given).
        file: String,
        /// The line, 1-based.
        line: usize,
        /// The column (1-based), when known.
        column: Option<usize>,
        /// The key, field or column name involved, when known.
        key: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The file is well-formed but contradicts itself (a name defined twice, …).
    #[error("{file}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store refused the change (the transaction was rolled back).
    #[error(transparent)]
    Store(#[from] crate::Error),
}

fn column_suffix(column: &Option<usize>, key: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(c) = column {
        s.push_str(&format!(", column {c}"));
    }
    if let Some(k) = key {
        s.push_str(&format!(" ({k})"));
    }
    s
}

impl ConfigError {
    /// A [`ConfigError::Syntax`] at `line` with no column or key.
    pub(crate) fn at(file: &str, line: usize, reason: impl Into<String>) -> Self {
        ConfigError::Syntax {
            file: file.to_string(),
            line,
            column: None,
            key: None,
            reason: reason.into(),
        }
    }
}

/// The formats [`parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// mo's own TOML (what `mo config export` writes).
    Toml,
    /// A device spreadsheet with a header row (see [`CSV_COLUMNS`]).
    Csv,
    /// conserver's `conserver.cf`.
    Conserver,
    /// ConMan's `conman.conf`.
    Conman,
}

impl Format {
    /// Guess the format from a file name: `.toml`, `.csv`, `conserver*`/`.cf`, `conman*`.
    pub fn detect(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".toml") {
            Some(Format::Toml)
        } else if name.ends_with(".csv") {
            Some(Format::Csv)
        } else if name.starts_with("conman") {
            Some(Format::Conman)
        } else if name.starts_with("conserver") || name.ends_with(".cf") {
            Some(Format::Conserver)
        } else {
            None
        }
    }

    /// Guess the format from the first statement of the text (for names like `cluster.conf`):
    /// `KEYWORD key=value` is ConMan, `type name {` conserver, `[table]` or `key = value` TOML,
    /// a header row starting with `name,` CSV.
    pub fn sniff(text: &str) -> Option<Format> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))?;
        let lower = line.to_ascii_lowercase();
        let first = lower.split_whitespace().next().unwrap_or("");
        if matches!(first, "server" | "global" | "console")
            && lower.contains('=')
            && !lower.contains('{')
        {
            Some(Format::Conman)
        } else if lower.contains('{')
            || matches!(
                first,
                "default" | "console" | "break" | "access" | "group" | "config" | "task"
            )
        {
            Some(Format::Conserver)
        } else if lower.starts_with('[') || lower.contains(" = ") {
            Some(Format::Toml)
        } else if lower.starts_with("name,") {
            Some(Format::Csv)
        } else {
            None
        }
    }

    /// Parse a format name: `toml`, `csv`, `conserver`, `conman`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "csv" => Some(Format::Csv),
            "conserver" => Some(Format::Conserver),
            "conman" => Some(Format::Conman),
            _ => None,
        }
    }
}

/// Parse `text` (the content of the file called `file`) in `format`. conserver `#include` lines
/// are refused here (there is no file system); use [`read_file`] for those.
pub fn parse(text: &str, file: &str, format: Format) -> Result<SiteConfig, ConfigError> {
    match format {
        Format::Toml => parse_toml(text, file),
        Format::Csv => parse_csv(text, file),
        Format::Conserver => parse_conserver(text, file, &conserver::no_includes),
        Format::Conman => parse_conman(text, file),
    }
}

/// Read and parse the file at `path`; `format` `None` guesses it with [`Format::detect`], then
/// [`Format::sniff`].
/// conserver `#include` paths are read relative to the including file's directory.
pub fn read_file(path: &Path, format: Option<Format>) -> Result<SiteConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: shown.clone(),
        source,
    })?;
    let format = format
        .or_else(|| Format::detect(path))
        .or_else(|| Format::sniff(&text))
        .ok_or_else(|| ConfigError::Invalid {
            file: shown.clone(),
            reason: "cannot tell the format from the name or the content; \
                     give --format toml|csv|conserver|conman"
                .into(),
        })?;
    match format {
        Format::Conserver => {
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let loader = move |name: &str| -> Result<String, String> {
                let p = base.join(name);
                std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
            };
            parse_conserver(&text, &shown, &loader)
        }
        other => parse(&text, &shown, other),
    }
}
