//! The patterns of a site as configured: each with the device-name globs it applies to, and the
//! built-in patterns used when none are configured. [`PatternBook::set_for`] gives each device
//! its compiled [`PatternSet`] (compiled once per distinct selection).
//!
//! ```toml
//! [[pattern]]                 # replaces the built-in patterns when any is given
//! name = "kernel-panic"
//! regex = 'Kernel panic - not syncing'
//! severity = "critical"       # info, notice, warning, error, critical (default warning)
//! message = ""                # template; empty = the matched line
//! devices = ["web*"]          # optional device-name globs (default: every device)
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;

use super::{Pattern, PatternSet, Severity};
use crate::error::{Error, Result};
use crate::glob::glob_match;

/// A pattern as written in a configuration file (`[[pattern]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Its name, unique.
    pub name: String,
    /// The regular expression, matched against ANSI-stripped lines.
    pub regex: String,
    /// `info`, `notice`, `warning` (the default), `error` or `critical`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// The event message template; empty: the matched line.
    #[serde(default)]
    pub message: String,
    /// Device-name globs the pattern applies to; empty: every device.
    #[serde(default)]
    pub devices: Vec<String>,
}

fn default_severity() -> String {
    "warning".into()
}

impl PatternConfig {
    /// A pattern for every device, with the default message.
    pub fn new(name: &str, regex: &str, severity: &str) -> Self {
        PatternConfig {
            name: name.into(),
            regex: regex.into(),
            severity: severity.into(),
            message: String::new(),
            devices: Vec::new(),
        }
    }
}

/// The patterns watched for when a configuration names none: kernel panics and oopses, soft
/// lockups, OOM kills, I/O errors, segfaults.
pub fn builtin_patterns() -> Vec<PatternConfig> {
    let p = PatternConfig::new;
    vec![
        p("kernel-panic", r"Kernel panic - not syncing", "critical"),
        p("kernel-oops", r"\b(Oops|BUG): ", "error"),
        p("soft-lockup", r"watchdog: BUG: soft lockup", "error"),
        p("oom-kill", r"Out of memory: Killed process", "error"),
        p("io-error", r"\bI/O error\b", "warning"),
        p("segfault", r"\bsegfault at\b", "warning"),
    ]
}

/// Checked patterns with the devices they apply to.
#[derive(Debug, Default)]
pub struct PatternBook {
    patterns: Vec<(Pattern, Vec<String>)>,
    cache: Mutex<HashMap<Vec<usize>, PatternSet>>,
}

impl PatternBook {
    /// Check `configs` (an empty list means [`builtin_patterns`]): severities, regexes and
    /// message templates are refused here, never at match time.
    pub fn from_config(configs: &[PatternConfig]) -> Result<PatternBook> {
        let builtin;
        let configs = if configs.is_empty() {
            builtin = builtin_patterns();
            &builtin[..]
        } else {
            configs
        };
        let mut patterns = Vec::with_capacity(configs.len());
        for p in configs {
            let severity: Severity = p.severity.parse().map_err(|e: Error| Error::BadSpec {
                what: "pattern",
                input: p.name.clone(),
                reason: e.to_string(),
            })?;
            patterns.push((
                Pattern::new(p.name.clone(), p.regex.clone(), severity, p.message.clone()),
                p.devices.clone(),
            ));
        }
        PatternBook::new(patterns)
    }

    /// Patterns each with the device-name globs it applies to (empty: every device). Compiles
    /// them all once so a bad one is refused now.
    pub fn new(patterns: Vec<(Pattern, Vec<String>)>) -> Result<PatternBook> {
        let all: Vec<Pattern> = patterns.iter().map(|(p, _)| p.clone()).collect();
        PatternSet::new(&all)?;
        Ok(PatternBook {
            patterns,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The patterns for every device (no globs).
    pub fn for_every_device(patterns: Vec<Pattern>) -> Result<PatternBook> {
        PatternBook::new(patterns.into_iter().map(|p| (p, Vec::new())).collect())
    }

    /// How many patterns the book holds.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the book holds no pattern.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The compiled set for `device` (the patterns whose globs match it); `None` when none
    /// applies.
    pub fn set_for(&self, device: &str) -> Option<PatternSet> {
        let chosen: Vec<usize> = self
            .patterns
            .iter()
            .enumerate()
            .filter(|(_, (_, globs))| {
                globs.is_empty() || globs.iter().any(|g| glob_match(g, device))
            })
            .map(|(i, _)| i)
            .collect();
        if chosen.is_empty() {
            return None;
        }
        let mut cache = self.cache.lock().ok();
        if let Some(set) = cache.as_ref().and_then(|c| c.get(&chosen)) {
            return Some(set.clone());
        }
        let patterns: Vec<Pattern> = chosen.iter().map(|&i| self.patterns[i].0.clone()).collect();
        let set = PatternSet::new(&patterns).ok()?;
        if let Some(cache) = cache.as_mut() {
            cache.insert(chosen, set.clone());
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_empty_configuration_means_the_builtin_patterns() {
        let book = PatternBook::from_config(&[]).unwrap();
        assert_eq!(book.len(), builtin_patterns().len());
        let set = book.set_for("any").unwrap();
        assert!(set.names().any(|n| n == "kernel-panic"));
    }

    #[test]
    fn device_globs_choose_the_patterns() {
        let mut web = PatternConfig::new("web-only", "boom", "error");
        web.devices = vec!["web*".into()];
        let all = PatternConfig::new("everywhere", "bang", "info");
        let book = PatternBook::from_config(&[web, all]).unwrap();
        let names = |d: &str| -> Vec<String> {
            book.set_for(d)
                .unwrap()
                .names()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(names("web1"), ["web-only", "everywhere"]);
        assert_eq!(names("db1"), ["everywhere"]);
    }

    #[test]
    fn a_bad_severity_or_regex_names_the_pattern() {
        let err = PatternBook::from_config(&[PatternConfig::new("p1", "x", "loud")]).unwrap_err();
        assert!(err.to_string().contains("`p1`"), "{err}");
        let err = PatternBook::from_config(&[PatternConfig::new("p2", "(", "info")]).unwrap_err();
        assert!(err.to_string().contains("`p2`"), "{err}");
    }
}
