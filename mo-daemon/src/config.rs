//! `mod --config FILE`: every flag of `mod` is also a key of a TOML file, named like the flag
//! without its dashes (`ssh = "0.0.0.0:2222"`, `segment-mib = 128`, `allowed-origin = [...]`;
//! `_` may stand for `-`). A flag on the command line wins over its environment variable, which
//! wins over the file, which wins over the built-in default (docs/config.md).
//!
//! The file is applied by giving its values to the same clap parser the flags go through, so a
//! key accepts exactly what its flag accepts. An unknown key, a table, or a value of the wrong
//! type is refused naming the key, the file and the line.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Arguments that are no keys of the file: what to read, what to do, help.
pub const NOT_KEYS: &[&str] = &["config", "check_config", "help", "version"];

/// Words that make a key's value a secret: `--check-config` prints `"(redacted)"` instead.
const SECRET_WORDS: &[&str] = &["password", "token", "secret"];

/// The command line after the configuration file was applied.
#[derive(Debug)]
pub struct Loaded {
    /// Every argument, the file's included.
    pub matches: ArgMatches,
    /// The file read (if any) and the argument ids it set.
    pub file: Option<(PathBuf, BTreeSet<String>)>,
}

/// Parse `argv` with `cmd` (a help or usage error is returned as is, for `clap::Error::exit`),
/// then apply the file `--config` names: its keys fill in every argument that neither the
/// command line nor the environment set.
pub fn load(cmd: &Command, argv: &[OsString]) -> Result<Loaded, LoadError> {
    let first = cmd
        .clone()
        .try_get_matches_from(argv)
        .map_err(LoadError::Clap)?;
    let Some(path) = first.get_one::<PathBuf>("config").cloned() else {
        return Ok(Loaded {
            matches: first,
            file: None,
        });
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LoadError::File(format!("cannot read {}: {e}", path.display())))?;
    let extra = file_args(cmd, &first, &path, &text)?;
    let set: BTreeSet<String> = extra.iter().map(|(id, _)| id.clone()).collect();
    let mut all = argv.to_vec();
    all.extend(extra.into_iter().flat_map(|(_, args)| args));
    let matches = cmd.clone().try_get_matches_from(&all).map_err(|e| {
        LoadError::File(format!(
            "{}: with the settings of this file: {}",
            path.display(),
            clap_message(&e)
        ))
    })?;
    Ok(Loaded {
        matches,
        file: Some((path, set)),
    })
}

/// Why the configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The command line itself (or `--help`, `--version`).
    Clap(clap::Error),
    /// The file: what is wrong, naming the file (and line, when it is one key).
    File(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Clap(e) => write!(f, "{}", clap_message(e)),
            LoadError::File(e) => f.write_str(e),
        }
    }
}

/// The first line of a clap error, without its `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.bytes().filter(|b| *b == b'\n').count())
        + 1
}

/// The command-line arguments standing for the file's keys (by argument id), for the
/// arguments not already set on the command line or in the environment. Each value is checked
/// alone first, so a bad one is reported with its key and line.
fn file_args(
    cmd: &Command,
    first: &ArgMatches,
    path: &Path,
    text: &str,
) -> Result<Vec<(String, Vec<OsString>)>, LoadError> {
    let table: std::collections::BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| LoadError::File(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let at = format!("{}:{}", path.display(), line_of(text, value.span().start));
        let long = key.replace('_', "-");
        let Some(arg) = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(&long) && !NOT_KEYS.contains(&a.get_id().as_str()))
        else {
            return Err(LoadError::File(format!(
                "{at}: unknown key `{key}` (the keys are mod's flags without the dashes, \
                 see `mod --help` and docs/config.md)"
            )));
        };
        let id = arg.get_id().as_str().to_owned();
        let flag = format!("--{long}");
        let args: Vec<OsString> = match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue, toml::Value::Boolean(b)) => {
                if *b {
                    vec![flag.clone().into()]
                } else {
                    Vec::new()
                }
            }
            (ArgAction::SetTrue, other) => {
                return Err(LoadError::File(format!(
                    "{at}: `{key}` is true or false, not {}",
                    other.type_str()
                )));
            }
            (ArgAction::Append, toml::Value::Array(items)) => {
                let mut args = Vec::new();
                for item in items {
                    args.push(format!("{flag}={}", scalar(key, &at, item)?).into());
                }
                args
            }
            (_, value) => vec![format!("{flag}={}", scalar(key, &at, value)?).into()],
        };
        // Check this key alone, so its error names the file and the line.
        let bin = cmd.get_name().to_owned();
        if let Err(e) = cmd
            .clone()
            .try_get_matches_from(std::iter::once(OsString::from(bin)).chain(args.clone()))
            && !matches!(
                e.kind(),
                clap::error::ErrorKind::MissingRequiredArgument
                    | clap::error::ErrorKind::ArgumentConflict
            )
        {
            return Err(LoadError::File(format!(
                "{at}: bad `{key}`: {}",
                clap_message(&e)
            )));
        }
        if matches!(
            first.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        out.push((id, args));
    }
    Ok(out)
}

/// A string, number or date value as its flag would take it.
fn scalar(key: &str, at: &str, value: &toml::Value) -> Result<String, LoadError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        other => Err(LoadError::File(format!(
            "{at}: `{key}` takes a string or a number, not {}",
            other.type_str()
        ))),
    }
}

/// The effective configuration as a TOML file `mod --config` would read: every key with its
/// value (secrets redacted) and, as a comment, where the value came from. Keys without a value
/// are listed commented out. `data_dir` is the data directory actually used.
pub fn effective(cmd: &Command, loaded: &Loaded, data_dir: &(PathBuf, &'static str)) -> String {
    let mut out = String::from("# mod: the effective configuration\n");
    if let Some((path, _)) = &loaded.file {
        let _ = writeln!(out, "# file: {}", path.display());
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if NOT_KEYS.contains(&id) {
            continue;
        }
        let source = match loaded.matches.value_source(id) {
            _ if loaded
                .file
                .as_ref()
                .is_some_and(|(_, set)| set.contains(id)) =>
            {
                "file".to_owned()
            }
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => format!(
                "env {}",
                arg.get_env()
                    .map(|e| e.to_string_lossy())
                    .unwrap_or_default()
            ),
            Some(ValueSource::DefaultValue) => "default".to_owned(),
            _ => String::new(),
        };
        if id == "data_dir" && source.is_empty() {
            let _ = writeln!(
                out,
                "{long} = {}  # default ({})",
                toml_string(&data_dir.0.display().to_string()),
                data_dir.1
            );
            continue;
        }
        let raw: Vec<String> = loaded
            .matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let secret = SECRET_WORDS.iter().any(|w| long.contains(w));
        let value = |s: &str| {
            if secret {
                "\"(redacted)\"".to_owned()
            } else if s.parse::<i64>().is_ok() || s == "true" || s == "false" {
                s.to_owned()
            } else {
                toml_string(s)
            }
        };
        if source.is_empty() || (raw.is_empty() && arg.get_action().takes_values()) {
            let _ = writeln!(out, "# {long} =  (not set)");
        } else if matches!(arg.get_action(), ArgAction::Append) {
            let items: Vec<String> = raw.iter().map(|s| value(s)).collect();
            let _ = writeln!(out, "{long} = [{}]  # {source}", items.join(", "));
        } else {
            let joined = raw.join(" ");
            let _ = writeln!(out, "{long} = {}  # {source}", value(&joined));
        }
    }
    out
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Where the data directory is when neither `--data-dir`, `MO_DATA_DIR` nor the file says
/// ([`mo_store::default_data_dir`]). With the reason, for `--check-config`.
pub fn default_data_dir(
    var: impl Fn(&str) -> Option<OsString>,
) -> anyhow::Result<(PathBuf, &'static str)> {
    mo_store::default_data_dir(var).ok_or_else(|| {
        anyhow::anyhow!(
            "no data directory: give --data-dir DIR (neither $XDG_DATA_HOME nor $HOME is set)"
        )
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
