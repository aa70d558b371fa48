//! Device groups (explicit members and name patterns), user groups, and name patterns.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};

use crate::error::{Error, Result};

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
/// - **glob** (the default): matches the *whole* name. `*` is any run of characters (also
///   none), `?` exactly one character, `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one character
///   from (or not from) a class, `\x` the character `x` itself; anything else matches itself.
///   `web*`, `rack3-??`, `pdu[0-9]`.
/// - **regex**, written `re:` then a [`regex`](https://docs.rs/regex) expression. It has the
///   usual regex semantics: it matches if it matches *anywhere* in the name unless anchored, so
///   write `re:^db[0-9]+$` for whole names.
///
/// Matching is case-sensitive. The text form ([`fmt::Display`]) is the pattern as written.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: String,
    /// The pattern as a regex: globs translated (anchored), regexes as written.
    regex_source: String,
    regex: Regex,
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
        if text.len() > MAX_PATTERN_LEN {
            return Err(bad(format!("longer than {MAX_PATTERN_LEN} bytes")));
        }
        let regex_source = match text.strip_prefix("re:") {
            Some("") => return Err(bad("empty regex after `re:`".to_string())),
            Some(re) => re.to_string(),
            None => glob_to_regex(text).map_err(bad)?,
        };
        let regex = compile(&regex_source).map_err(bad)?;
        Ok(NamePattern {
            text: text.to_string(),
            regex_source,
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
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

/// Translates a glob into an anchored regex; the error says what is wrong with the glob.
fn glob_to_regex(glob: &str) -> std::result::Result<String, String> {
    let mut out = String::from("(?s)^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => match chars.next() {
                Some(lit) => push_literal(&mut out, lit),
                None => return Err("`\\` at the end escapes nothing".to_string()),
            },
            '[' => {
                out.push('[');
                if matches!(chars.peek(), Some('!' | '^')) {
                    chars.next();
                    out.push('^');
                }
                let mut first = true;
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        chars
                            .next()
                            .ok_or_else(|| "unclosed `[` (no matching `]`)".to_string())?
                    } else {
                        c
                    };
                    let is_range = chars.peek() == Some(&'-')
                        && chars.clone().nth(1).is_some_and(|next| next != ']');
                    if is_range {
                        chars.next();
                        let hi = match chars.next() {
                            Some('\\') => chars
                                .next()
                                .ok_or_else(|| "unclosed `[` (no matching `]`)".to_string())?,
                            Some(hi) => hi,
                            None => return Err("unclosed `[` (no matching `]`)".to_string()),
                        };
                        if hi < lo {
                            return Err(format!("bad range `{lo}-{hi}` (end before start)"));
                        }
                        push_literal(&mut out, lo);
                        out.push('-');
                        push_literal(&mut out, hi);
                    } else {
                        push_literal(&mut out, lo);
                    }
                }
                if !closed {
                    return Err("unclosed `[` (no matching `]`)".to_string());
                }
                out.push(']');
            }
            other => push_literal(&mut out, other),
        }
    }
    out.push('$');
    Ok(out)
}

/// Appends `c` so that it matches itself, in or out of a class (`regex::escape` escapes every
/// meta character, including the class operators `-`, `&` and `~`).
fn push_literal(out: &mut String, c: char) {
    if c.is_alphanumeric() || c == '_' {
        out.push(c);
    } else {
        let mut buf = [0u8; 4];
        out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
    }
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
    /// Every pattern, joined (used for names that are not ASCII).
    matcher: Option<Regex>,
    /// Fast path for ASCII names: plain globs (literals, `*`, `?`) matched without a regex,
    /// and the other patterns joined into one regex.
    simple_globs: Vec<Box<[u8]>>,
    rest: Option<Regex>,
}

impl CompiledGroup {
    /// The built-in group `all`.
    pub(crate) fn everything() -> Self {
        CompiledGroup {
            group: DeviceGroup::new(ALL_DEVICES),
            all: true,
            matcher: None,
            simple_globs: Vec::new(),
            rest: None,
        }
    }

    pub(crate) fn new(group: DeviceGroup) -> Result<Self> {
        let matcher = join(&group.name, &group.patterns.iter().collect::<Vec<_>>())?;
        let (simple, other): (Vec<&NamePattern>, Vec<&NamePattern>) =
            group.patterns.iter().partition(|p| is_simple_glob(&p.text));
        let simple_globs = simple
            .iter()
            .map(|p| p.text.as_bytes().to_vec().into_boxed_slice())
            .collect();
        let rest = join(&group.name, &other)?;
        Ok(CompiledGroup {
            all: group.name == ALL_DEVICES,
            group,
            matcher,
            simple_globs,
            rest,
        })
    }

    pub(crate) fn contains(&self, device: &str) -> bool {
        if self.all || self.group.members.contains(device) {
            return true;
        }
        if device.is_ascii() {
            self.simple_globs
                .iter()
                .any(|g| glob_match(g, device.as_bytes()))
                || self.rest.as_ref().is_some_and(|m| m.is_match(device))
        } else {
            self.matcher.as_ref().is_some_and(|m| m.is_match(device))
        }
    }
}

/// The patterns as one regex (`None` for none).
fn join(group: &str, patterns: &[&NamePattern]) -> Result<Option<Regex>> {
    Ok(match patterns {
        [] => None,
        [one] => Some(one.regex.clone()),
        many => {
            let joined: Vec<String> = many
                .iter()
                .map(|p| format!("(?:{})", p.regex_source))
                .collect();
            Some(compile(&joined.join("|")).map_err(|reason| Error::BadSpec {
                what: "device group",
                input: group.to_string(),
                reason: format!("its patterns together are too large: {reason}"),
            })?)
        }
    })
}

/// An ASCII glob of literal characters, `*` and `?` only (no classes, no escapes).
fn is_simple_glob(text: &str) -> bool {
    !text.starts_with("re:") && text.is_ascii() && !text.contains(['[', '\\'])
}

/// Matches a simple glob against a whole ASCII name: `*` any run, `?` one byte (one character,
/// as the name is ASCII). Backtracks only to the last `*`, so it is linear in practice.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(n) {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&q) if q == b'?' || q == c => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|tail| tail.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod fast_glob_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn fast_globs_agree_with_their_regexes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let pattern_bytes = b"ab-*?";
        let name_bytes = b"ab-c";
        for _ in 0..50_000 {
            let plen = rng.random_range(1..8);
            let pattern: String = (0..plen)
                .map(|_| pattern_bytes[rng.random_range(0..pattern_bytes.len())] as char)
                .collect();
            let nlen = rng.random_range(0..9);
            let name: String = (0..nlen)
                .map(|_| name_bytes[rng.random_range(0..name_bytes.len())] as char)
                .collect();
            let parsed = NamePattern::parse(&pattern).unwrap();
            assert!(is_simple_glob(&pattern));
            assert_eq!(
                glob_match(pattern.as_bytes(), name.as_bytes()),
                parsed.matches(&name),
                "{pattern:?} vs {name:?}"
            );
        }
        let group = CompiledGroup::new(
            DeviceGroup::new("g")
                .pattern("web*")
                .unwrap()
                .pattern("re:^db[0-9]+$")
                .unwrap()
                .pattern("r[0-3]")
                .unwrap(),
        )
        .unwrap();
        for (name, yes) in [
            ("web01", true),
            ("db12", true),
            ("db1x", false),
            ("r2", true),
            ("r5", false),
            ("wéb", false),
            ("web\u{e9}", true),
        ] {
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
