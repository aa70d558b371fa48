//! Patterns as configured, and the compiled set every scanner of a device group shares.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use regex::bytes::{Regex, RegexSet, RegexSetBuilder};

use super::prefilter::Prefilter;
use super::template::Template;
use crate::error::{Error, Result};

/// The lazy DFA cache of a pattern set, per thread using it. The default (2 MiB) is too small for
/// finding every match of many patterns with Unicode classes (`\w`): the DFA would give up and the
/// scan run a hundred times slower.
const SET_DFA_CACHE: usize = 16 << 20;

/// How serious a match is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing (a login prompt appeared).
    Info,
    /// Normal but significant (a reboot started).
    Notice,
    /// Something may be going wrong (a disk error that was retried).
    Warning,
    /// Something went wrong (a service failed).
    Error,
    /// The machine is down or about to be (a kernel panic).
    Critical,
}

impl Severity {
    /// Every severity, from least to most serious.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The lowercase name (`info`, `notice`, `warning`, `error`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;

    /// Parses a name in any case; the syslog spellings `warn`, `err` and `crit` are accepted too.
    fn from_str(s: &str) -> Result<Self> {
        let severity = match s.trim().to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "notice" => Severity::Notice,
            "warning" | "warn" => Severity::Warning,
            "error" | "err" => Severity::Error,
            "critical" | "crit" => Severity::Critical,
            _ => {
                return Err(Error::BadSpec {
                    what: "severity",
                    input: s.to_owned(),
                    reason: "expected info, notice, warning, error or critical".to_owned(),
                });
            }
        };
        Ok(severity)
    }
}

/// A pattern as configured: a regular expression on ANSI-stripped lines, a severity and a message.
///
/// The message is a template: `$1` or `${1}` is a capture group by number, `$name` or `${name}` a
/// named group (an unmatched group gives nothing), `$$` a dollar sign; `{device}`, `{pattern}` and
/// `{severity}` are the device name, this pattern's name and its severity. An empty message means
/// the matched line itself. Group references are checked when the pattern is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern's name, unique in its set (`kernel-panic`).
    pub name: String,
    /// The regular expression ([`regex`] syntax), matched against one line without its line end.
    pub regex: String,
    /// The severity of a match.
    pub severity: Severity,
    /// The message template.
    pub message: String,
}

impl Pattern {
    /// A pattern from its parts.
    pub fn new(
        name: impl Into<String>,
        regex: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Pattern {
            name: name.into(),
            regex: regex.into(),
            severity,
            message: message.into(),
        }
    }
}

/// One compiled pattern.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) name: String,
    pub(super) severity: Severity,
    pub(super) regex: Regex,
    pub(super) template: Template,
}

#[derive(Debug)]
struct Inner {
    set: RegexSet,
    /// Literals one of which every match contains, when every pattern has some.
    prefilter: Option<Prefilter>,
    patterns: Vec<Compiled>,
}

/// A compiled set of patterns, evaluated together in one pass per line. Cheap to clone: the
/// scanners of every device in a group share one.
#[derive(Debug, Clone)]
pub struct PatternSet {
    inner: Arc<Inner>,
}

impl PatternSet {
    /// Compiles `patterns`. Fails, naming the pattern, on an empty or duplicate name, a regex that
    /// does not compile, or a message referring to a group the regex does not have.
    pub fn new(patterns: &[Pattern]) -> Result<PatternSet> {
        let mut compiled: Vec<Compiled> = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let bad = |reason: String| Error::BadSpec {
                what: "pattern",
                input: pattern.name.clone(),
                reason,
            };
            if pattern.name.trim().is_empty() {
                return Err(Error::BadSpec {
                    what: "pattern",
                    input: pattern.regex.clone(),
                    reason: "the pattern has no name".to_owned(),
                });
            }
            if compiled.iter().any(|c| c.name == pattern.name) {
                return Err(bad("another pattern has the same name".to_owned()));
            }
            let regex = Regex::new(&pattern.regex)
                .map_err(|e| bad(format!("regex `{}`: {e}", pattern.regex)))?;
            let template = Template::parse(&pattern.message, &regex)
                .map_err(|e| bad(format!("message `{}`: {e}", pattern.message)))?;
            compiled.push(Compiled {
                name: pattern.name.clone(),
                severity: pattern.severity,
                regex,
                template,
            });
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|p| p.regex.as_str()))
            .dfa_size_limit(SET_DFA_CACHE)
            .build()
            .map_err(|e| Error::BadSpec {
                what: "pattern set",
                input: format!("{} patterns", patterns.len()),
                reason: e.to_string(),
            })?;
        Ok(PatternSet {
            inner: Arc::new(Inner {
                set,
                prefilter: Prefilter::new(patterns.iter().map(|p| p.regex.as_str())),
                patterns: compiled,
            }),
        })
    }

    /// How many patterns the set holds.
    pub fn len(&self) -> usize {
        self.inner.patterns.len()
    }

    /// Whether the set holds no pattern.
    pub fn is_empty(&self) -> bool {
        self.inner.patterns.is_empty()
    }

    /// The names of the patterns, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.patterns.iter().map(|p| p.name.as_str())
    }

    pub(super) fn set(&self) -> &RegexSet {
        &self.inner.set
    }

    /// How many literals the prefilter looks for before a line goes to the regexes: `None` when
    /// some pattern has no literal every match of it contains (then every line does).
    pub fn prefilter_literals(&self) -> Option<usize> {
        self.inner.prefilter.as_ref().map(|p| p.literals())
    }

    pub(super) fn prefilter(&self) -> Option<&Prefilter> {
        self.inner.prefilter.as_ref()
    }

    pub(super) fn get(&self, index: usize) -> Option<&Compiled> {
        self.inner.patterns.get(index)
    }
}
