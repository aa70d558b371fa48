//! Device groups (explicit members and name patterns), user groups, and name patterns.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};

use crate::error::{Error, Result};
use crate::glob::Glob;

/// The name of the built-in device group holding every device.
pub const ALL_DEVICES: &str = "all";

/// The device name site-wide decisions ([`Policy::decide_global`](super::Policy::decide_global))
/// are recorded under: `*`, which no device can be called.
pub const EVERY_DEVICE: &str = "*";

/// Longest pattern text accepted, in bytes.
const MAX_PATTERN_LEN: usize = 1024;
/// Compiled-size limit for one pattern (and for a group's patterns together).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A pattern over device names.
///
/// Two notations:
/// - **glob** (the default): matches the *whole* name, with the syntax of [`crate::glob`]
///   (docs/globs.md): `*` is any run of characters (also none), `?` exactly one character,
///   `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one character from (or not from) a class, `\x`
///   the character `x` itself; anything else matches itself. `web*`, `rack3-??`, `pdu[0-9]`.
/// - **regex**, written `re:` then a [`regex`](https://docs.rs/regex) expression. It has the
///   usual regex semantics: it matches if it matches *anywhere* in the name unless anchored, so
///   write `re:^db[0-9]+$` for whole names.
///
/// Matching is case-sensitive. The text form ([`fmt::Display`]) is the pattern as written.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: String,
    kind: PatternKind,
}

/// How a [`NamePattern`] matches.
#[derive(Debug, Clone)]
enum PatternKind {
    Glob(Glob),
    Regex(Regex),
}

impl NamePattern {
    /// Parses a pattern (see the type's documentation for the notation).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadSpec {
            what: "name pattern",
            input: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty pattern".to_string()));
        }
        if text.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed".to_string()));
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err(bad(format!("longer than {MAX_PATTERN_LEN} bytes")));
        }
        let kind = match text.strip_prefix("re:") {
            Some("") => return Err(bad("empty regex after `re:`".to_string())),
            Some(re) => PatternKind::Regex(compile(re).map_err(bad)?),
            None => PatternKind::Glob(Glob::parse(text).map_err(|e| match e {
                Error::BadSpec { reason, .. } => bad(reason),
                other => other,
            })?),
        };
        Ok(NamePattern {
            text: text.to_string(),
            kind,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match &self.kind {
            PatternKind::Glob(g) => g.matches(name),
            PatternKind::Regex(re) => re.is_match(name),
        }
    }

    /// Whether the pattern is a regex (`re:`) rather than a glob.
    pub fn is_regex(&self) -> bool {
        self.text.starts_with("re:")
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for NamePattern {}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for NamePattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        NamePattern::parse(s)
    }
}

fn compile(source: &str) -> std::result::Result<Regex, String> {
    RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))
}

/// A named set of devices: explicit members plus name patterns. A device may be in many groups.
/// The group [`ALL_DEVICES`] (`all`) is built in and holds every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGroup {
    /// The group's name.
    pub name: String,
    /// Devices named explicitly.
    pub members: BTreeSet<String>,
    /// Patterns; a device whose name matches any of them is in the group.
    pub patterns: Vec<NamePattern>,
}

impl DeviceGroup {
    /// An empty group called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        DeviceGroup {
            name: name.into(),
            members: BTreeSet::new(),
            patterns: Vec::new(),
        }
    }

    /// Adds an explicit member.
    #[must_use]
    pub fn member(mut self, device: impl Into<String>) -> Self {
        self.members.insert(device.into());
        self
    }

    /// Adds a pattern, parsed with [`NamePattern::parse`].
    pub fn pattern(mut self, pattern: &str) -> Result<Self> {
        self.patterns.push(NamePattern::parse(pattern)?);
        Ok(self)
    }

    /// Whether `device` is in the group (uncompiled check; a [`Policy`](super::Policy) keeps a
    /// faster compiled form).
    pub fn contains(&self, device: &str) -> bool {
        self.name == ALL_DEVICES
            || self.members.contains(device)
            || self.patterns.iter().any(|p| p.matches(device))
    }
}

/// A group's membership test compiled once: all patterns joined into one regex.
#[derive(Debug, Clone)]
pub(crate) struct CompiledGroup {
    pub(crate) group: DeviceGroup,
    all: bool,
    /// The glob patterns ([`crate::glob`]).
    globs: Vec<Glob>,
    /// The regex (`re:`) patterns, joined into one.
    regexes: Option<Regex>,
}

impl CompiledGroup {
    /// The built-in group `all`.
    pub(crate) fn everything() -> Self {
        CompiledGroup {
            group: DeviceGroup::new(ALL_DEVICES),
            all: true,
            globs: Vec::new(),
            regexes: None,
        }
    }

    pub(crate) fn new(group: DeviceGroup) -> Result<Self> {
        let mut globs = Vec::new();
        let mut regexes = Vec::new();
        for p in &group.patterns {
            match &p.kind {
                PatternKind::Glob(g) => globs.push(g.clone()),
                PatternKind::Regex(re) => regexes.push(re.as_str()),
            }
        }
        let regexes = join(&group.name, &regexes)?;
        Ok(CompiledGroup {
            all: group.name == ALL_DEVICES,
            group,
            globs,
            regexes,
        })
    }

    pub(crate) fn contains(&self, device: &str) -> bool {
        self.all
            || self.group.members.contains(device)
            || self.globs.iter().any(|g| g.matches(device))
            || self.regexes.as_ref().is_some_and(|m| m.is_match(device))
    }
}

/// The regexes as one (`None` for none).
fn join(group: &str, sources: &[&str]) -> Result<Option<Regex>> {
    Ok(match sources {
        [] => None,
        many => {
            let joined: Vec<String> = many.iter().map(|p| format!("(?:{p})")).collect();
            Some(compile(&joined.join("|")).map_err(|reason| Error::BadSpec {
                what: "device group",
                input: group.to_string(),
                reason: format!("its patterns together are too large: {reason}"),
            })?)
        }
    })
}

#[cfg(test)]
mod compiled_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn compiled_groups_match_like_their_patterns() {
        let group = DeviceGroup::new("g")
            .pattern("web*")
            .unwrap()
            .pattern("re:^db[0-9]+$")
            .unwrap()
            .pattern("r[0-3]")
            .unwrap()
            .pattern("re:east")
            .unwrap()
            .member("solo");
        let compiled = CompiledGroup::new(group.clone()).unwrap();
        for (name, yes) in [
            ("web01", true),
            ("db12", true),
            ("db1x", false),
            ("r2", true),
            ("r5", false),
            ("wéb", false),
            ("web\u{e9}", true),
            ("a-east-1", true),
            ("solo", true),
            ("solo2", false),
        ] {
            assert_eq!(compiled.contains(name), yes, "{name}");
            assert_eq!(group.contains(name), yes, "{name}");
        }
    }
}

/// A named set of users, for granting roles to many users at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroup {
    /// The group's name.
    pub name: String,
    /// The user names in the group.
    pub members: BTreeSet<String>,
}

impl UserGroup {
    /// An empty group called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        UserGroup {
            name: name.into(),
            members: BTreeSet::new(),
        }
    }

    /// Adds a member.
    #[must_use]
    pub fn member(mut self, user: impl Into<String>) -> Self {
        self.members.insert(user.into());
        self
    }
}
