//! The events file (`mod --events FILE`, TOML): patterns, event-manager rules, actions and file
//! watches. Actions and file watches are run by other crates and programs, so the file is
//! generic over their configuration types (the daemon reads it as
//! `EventsFile<mo_drivers::action::ActionConfig, WatchConfig>`).
//!
//! ```toml
//! [[pattern]]                 # replaces the built-in patterns when any is given
//! name = "kernel-panic"
//! regex = 'Kernel panic - not syncing'
//! severity = "critical"
//!
//! [rules]                     # the event manager: dedup, rate limits, maintenance, schedules
//! dedup_window = "60s"
//! [[rules.rule]]
//! name = "page-on-panic"
//! min_severity = "critical"
//! actions = ["pager"]
//!
//! [actions.pager]             # parsed by the action runner (A)
//! kind = "webhook"
//! url = "http://127.0.0.1:9000/hook"
//!
//! [[watch]]                   # parsed by the file watcher's owner (W)
//! paths = ["/srv/app/app.conf"]
//!
//! [[logfile]]                 # system log files scanned with the patterns (see LogfileConfig)
//! path = "/var/log/syslog"
//!
//! [[journal]]                 # the systemd journal, scanned the same way (see JournalConfig)
//! unit = "nginx.service"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{JournalConfig, LogfileConfig, Rules, RulesConfig};
use crate::error::{Error, Result};
use crate::scan::{PatternBook, PatternConfig};

/// The whole events file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "A: Deserialize<'de>, W: Deserialize<'de>")
)]
pub struct EventsFile<A, W> {
    /// `[[pattern]]`: the scanner's patterns (none: the built-in ones).
    #[serde(default, rename = "pattern")]
    pub patterns: Vec<PatternConfig>,
    /// `[rules]`: the event manager's rules.
    #[serde(default)]
    pub rules: RulesConfig,
    /// `[actions.NAME]`: the actions rules may name.
    #[serde(default = "BTreeMap::new")]
    pub actions: BTreeMap<String, A>,
    /// `[[watch]]`: file watches.
    #[serde(default = "Vec::new", rename = "watch")]
    pub watches: Vec<W>,
    /// `[[logfile]]`: system log files scanned with the patterns ([`super::LogfileConfig`]).
    #[serde(default, rename = "logfile")]
    pub logfiles: Vec<LogfileConfig>,
    /// `[[journal]]`: the systemd journal scanned with the patterns ([`super::JournalConfig`]).
    #[serde(default, rename = "journal")]
    pub journals: Vec<JournalConfig>,
}

impl<A, W> Default for EventsFile<A, W> {
    fn default() -> Self {
        EventsFile {
            patterns: Vec::new(),
            rules: RulesConfig::default(),
            actions: BTreeMap::new(),
            watches: Vec::new(),
            logfiles: Vec::new(),
            journals: Vec::new(),
        }
    }
}

impl<A, W> EventsFile<A, W> {
    /// Check the patterns and rules (every action a rule names must be under `[actions]`) and
    /// compile them. Errors say what is wrong; the caller adds which file.
    pub fn compile(&self) -> Result<(PatternBook, Rules)> {
        let patterns = PatternBook::from_config(&self.patterns)?;
        let rules = Rules::from_config(&self.rules)?;
        if let Some(name) = rules
            .action_names()
            .into_iter()
            .find(|name| !self.actions.contains_key(*name))
        {
            return Err(Error::NotFound {
                what: format!(
                    "a rule names the action `{name}`, which is not defined under [actions]"
                ),
            });
        }
        Ok((patterns, rules))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    type File = EventsFile<toml::Value, toml::Value>;

    #[test]
    fn an_empty_file_means_builtin_patterns_and_no_rules() {
        let file: File = toml::from_str("").unwrap();
        let (patterns, _rules) = file.compile().unwrap();
        assert!(patterns.set_for("web1").is_some());
    }

    #[test]
    fn a_rule_naming_an_undefined_action_is_refused() {
        let text = "[[rules.rule]]\nname = \"r\"\nactions = [\"pager\"]\n";
        let file: File = toml::from_str(text).unwrap();
        let err = file.compile().unwrap_err().to_string();
        assert!(
            err.contains("`pager`") && err.contains("[actions]"),
            "{err}"
        );
        let text = format!("{text}[actions.pager]\nkind = \"webhook\"\n");
        let file: File = toml::from_str(&text).unwrap();
        assert!(file.compile().is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<File>("[[patern]]\nname = \"x\"\n").is_err());
    }
}
