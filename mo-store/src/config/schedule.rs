//! The scheduler's file (`mod --schedule FILE`): `[[schedule]]` entries, each a cron expression,
//! a stored macro, its targets and arguments.
//!
//! ```toml
//! [[schedule]]
//! name = "nightly-check"      # default: the macro's name (numbered if it repeats)
//! cron = "0 3 * * *"          # 5 fields, or 6 with seconds first
//! macro = "health"            # DATA_DIR/macros/health.macro
//! targets = ["web-*", "@db"]  # names, globs, @GROUP
//! args = { level = "full" }   # the macro's arguments
//! parallel = 8                # devices at once (default 16)
//! ```
//!
//! [`ScheduleFile::parse`] reads the text alone (sans-I/O); [`ScheduleConfig::from_file`] turns
//! it into jobs, loading each macro from a [`MacroStore`].

use std::collections::BTreeMap;
use std::path::Path;

use mo_core::automation::schedule::Job;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::macros::MacroStore;

/// Devices a scheduled run plays on at once unless the entry says otherwise.
pub const DEFAULT_SCHEDULE_PARALLEL: usize = 16;

/// One `[[schedule]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// The job's name (default: the macro's name, numbered if it repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Cron expression (5 fields, or 6 with seconds first).
    pub cron: String,
    /// The macro's name in `DATA_DIR/macros`.
    #[serde(rename = "macro")]
    pub macro_name: String,
    /// Device names, globs or `@GROUP`s.
    pub targets: Vec<String>,
    /// Macro arguments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// Devices at once (default [`DEFAULT_SCHEDULE_PARALLEL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
}

/// A schedule file as written: its `[[schedule]]` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    /// The entries, in file order.
    #[serde(default, rename = "schedule")]
    pub entries: Vec<ScheduleEntry>,
}

impl ScheduleFile {
    /// Read the TOML `text` of the file called `file`; [`ConfigError::Syntax`] names the line.
    pub fn parse(text: &str, file: &str) -> Result<ScheduleFile, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let before = text.get(..at).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
                before.get(nl + 1..).map_or(0, |l| l.chars().count())
            }) + 1;
            ConfigError::Syntax {
                file: file.to_string(),
                line,
                column: Some(column),
                key: None,
                reason: e.message().trim().to_string(),
            }
        })
    }

    /// The file as TOML (what [`ScheduleFile::parse`] reads back to the same entries).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Invalid {
            file: "schedule".to_string(),
            reason: e.to_string(),
        })
    }

    /// Each entry's job name, one per entry and no two alike: its `name`, else its macro's; a
    /// name used before gets `-N` appended (N the entry's position, from 1) until it is new.
    pub fn job_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let name = e.name.clone().unwrap_or_else(|| e.macro_name.clone());
            let mut name = name;
            // `-N` again while the name is taken (an earlier entry may be called `tick-3`).
            while names.contains(&name) {
                name = format!("{name}-{}", i + 1);
            }
            names.push(name);
        }
        names
    }
}

/// A loaded job: the core job (cron, macro, targets) and how to play it.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    /// The job (its name, cron expression, macro as loaded at start, targets).
    pub job: Job,
    /// The macro's name (read again before each run, so edits apply from the next run).
    pub macro_name: String,
    /// The macro's arguments.
    pub args: Vec<(String, String)>,
    /// Devices at once (at least 1).
    pub parallel: usize,
}

/// The loaded schedule: every entry checked (cron, macro, targets).
#[derive(Debug, Clone, Default)]
pub struct ScheduleConfig {
    /// The jobs, in file order.
    pub jobs: Vec<ScheduledJob>,
}

impl ScheduleConfig {
    /// Read, parse and check the file at `path`, loading its macros from `macros`. Every error
    /// names the file and the entry: a bad cron expression, a missing or bad macro, an empty
    /// target list.
    pub fn load(path: &Path, macros: &MacroStore) -> Result<ScheduleConfig, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: shown.clone(),
            source,
        })?;
        let file = ScheduleFile::parse(&text, &shown)?;
        ScheduleConfig::from_file(file, &shown, macros)
    }

    /// Check `file` (called `shown` in errors), loading its macros from `macros`.
    pub fn from_file(
        file: ScheduleFile,
        shown: &str,
        macros: &MacroStore,
    ) -> Result<ScheduleConfig, ConfigError> {
        let names = file.job_names();
        let mut jobs = Vec::new();
        for ((i, e), name) in file.entries.into_iter().enumerate().zip(names) {
            let bad = |why: String| ConfigError::Invalid {
                file: shown.to_string(),
                reason: format!("entry {} ({name}): {why}", i + 1),
            };
            if e.targets.is_empty() {
                return Err(bad("`targets` is empty".to_string()));
            }
            let m = macros
                .load(&e.macro_name)
                .map_err(|why| bad(why.to_string()))?;
            let job = Job::new(&name, &e.cron, m, e.targets.clone())
                .map_err(|why| bad(why.to_string()))?;
            jobs.push(ScheduledJob {
                job,
                macro_name: e.macro_name,
                args: e.args.into_iter().collect(),
                parallel: e.parallel.unwrap_or(DEFAULT_SCHEDULE_PARALLEL).max(1),
            });
        }
        Ok(ScheduleConfig { jobs })
    }

    /// The macros the jobs play, sorted, without duplicates.
    pub fn macro_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.jobs.iter().map(|j| j.macro_name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether there are no jobs.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const FILE: &str = "\
[[schedule]]
cron = \"*/5 * * * *\"
macro = \"tick\"
targets = [\"c1\", \"@g\"]
args = { n = \"1\" }

[[schedule]]
cron = \"0 3 * * *\"
macro = \"tick\"
targets = [\"c2\"]
parallel = 0
";

    #[test]
    fn entries_become_jobs() {
        let tmp = tempfile::tempdir().unwrap();
        let macros = MacroStore::new(tmp.path());
        macros
            .save("tick", "sendline tick ${n}\nparam n\n", None, false)
            .ok();
        macros
            .save("tick", "param n\nsendline tick ${n}\n", None, true)
            .unwrap();
        let file = ScheduleFile::parse(FILE, "s.toml").unwrap();
        assert_eq!(file.job_names(), ["tick", "tick-2"]);
        let taken = ScheduleFile::parse(
            "[[schedule]]\nname = \"t-3\"\ncron = \"* * * * *\"\nmacro = \"x\"\ntargets = [\"a\"]\n\
             [[schedule]]\nname = \"t\"\ncron = \"* * * * *\"\nmacro = \"x\"\ntargets = [\"a\"]\n\
             [[schedule]]\nname = \"t\"\ncron = \"* * * * *\"\nmacro = \"x\"\ntargets = [\"a\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(taken.job_names(), ["t-3", "t", "t-3-3"]);
        assert_eq!(
            ScheduleFile::parse(&file.to_toml().unwrap(), "again").unwrap(),
            file
        );
        let config = ScheduleConfig::from_file(file, "s.toml", &macros).unwrap();
        assert_eq!(config.macro_names(), ["tick"]);
        assert_eq!(config.jobs[0].args, [("n".to_string(), "1".to_string())]);
        assert_eq!(config.jobs[0].parallel, 16);
        assert_eq!(config.jobs[1].parallel, 1);
        assert_eq!(config.jobs[1].job.name, "tick-2");
    }

    #[test]
    fn errors_name_file_and_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let macros = MacroStore::new(tmp.path());
        macros.save("tick", "sendline tick\n", None, false).unwrap();
        let err = |text: &str| {
            let file = match ScheduleFile::parse(text, "s.toml") {
                Ok(file) => file,
                Err(e) => return e.to_string(),
            };
            ScheduleConfig::from_file(file, "s.toml", &macros)
                .unwrap_err()
                .to_string()
        };
        let e = err("[[schedule]]\ncron = \"61 * * * *\"\nmacro = \"tick\"\ntargets = [\"c1\"]\n");
        assert!(
            e.contains("s.toml: entry 1 (tick)") && e.contains("cron expression"),
            "{e}"
        );
        let e = err("[[schedule]]\ncron = \"* * * * *\"\nmacro = \"nope\"\ntargets = [\"c1\"]\n");
        assert!(e.contains("entry 1 (nope): no macro `nope`"), "{e}");
        let e = err("[[schedule]]\ncron = \"* * * * *\"\nmacro = \"tick\"\ntargets = []\n");
        assert!(e.contains("`targets` is empty"), "{e}");
        let e = err(
            "[[schedule]]\ncron = \"* * * * *\"\nmacro = \"tick\"\ntargets = [\"a\"]\nfrob = 1\n",
        );
        assert!(e.starts_with("s.toml line 5"), "{e}");
        let e = err("[[schedule]]\ncron = \"* * * * *\"\nmacro = \"../x\"\ntargets = [\"a\"]\n");
        assert!(e.contains("bad macro name"), "{e}");
    }
}
