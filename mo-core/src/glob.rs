//! Globs over names: the one matcher behind device groups, `power`/`gang`/`listen` targets,
//! event-rule device lists and the site allowlist's paths and hosts (syntax in docs/globs.md).
//!
//! A glob matches the *whole* name, case-sensitively:
//!
//! | glob | matches |
//! |---|---|
//! | `*` | any run of characters, also none (`/` included) |
//! | `?` | exactly one character |
//! | `[abc]`, `[a-z0-9]` | one character from the class (ranges by code point) |
//! | `[!a-z]`, `[^a-z]` | one character not in the class |
//! | `\x` | the character `x` itself (`\*`, `\?`, `\[`, `\\`), also inside a class |
//! | anything else | itself |
//!
//! In a class, `]` right after `[` (or `[!`) and `-` first or last stand for themselves.
//! A glob with an unclosed `[`, a range whose end is before its start (`[z-a]`) or a `\` at the
//! end is refused by [`Glob::parse`]; [`glob_match`] compares such a pattern as a plain name.
//!
//! ```
//! use mo_core::glob::{Glob, glob_match};
//!
//! let g: Glob = "web[0-9][!x]-*".parse()?;
//! assert!(g.matches("web1a-east"));
//! assert!(!g.matches("web1x-east"));
//! assert!(glob_match("rack\\[1\\]", "rack[1]"));
//! assert!(glob_match("db?", "db1") && !glob_match("db?", "db12"));
//! # Ok::<(), mo_core::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A checked glob (see the [module documentation](self) for the syntax).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    text: String,
}

impl Glob {
    /// Check `text` as a glob. The error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Glob> {
        check(text).map_err(|reason| Error::BadSpec {
            what: "glob",
            input: text.to_string(),
            reason,
        })?;
        Ok(Glob {
            text: text.to_string(),
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match_checked(&self.text, name)
    }

    /// Whether the glob has no wildcard, class or escape: it matches only the name it spells.
    pub fn is_literal(&self) -> bool {
        !has_wildcards(&self.text)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Glob {
    type Err = Error;

    fn from_str(s: &str) -> Result<Glob> {
        Glob::parse(s)
    }
}

/// Whether `name` matches the glob `pattern` as a whole. A pattern that is not a valid glob
/// (unclosed `[`, reversed range, trailing `\`) matches only the name spelled exactly like it.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match check(pattern) {
        Ok(()) => match_checked(pattern, name),
        Err(_) => pattern == name,
    }
}

/// Whether `text` holds glob syntax (`*`, `?`, `[` or `\`), so it is more than one name.
pub fn has_wildcards(text: &str) -> bool {
    text.contains(['*', '?', '[', '\\'])
}

/// One element of a glob.
#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    /// A character that matches itself.
    Char(char),
    /// `?`.
    One,
    /// `*`.
    Star,
    /// `[…]`: the class body between the brackets (after `!`/`^`).
    Class { negated: bool, body: &'a str },
}

impl Token<'_> {
    /// Whether this (non-star) token matches `c`.
    fn matches(self, c: char) -> bool {
        match self {
            Token::Char(t) => t == c,
            Token::One => true,
            Token::Star => false,
            Token::Class { negated, body } => {
                let hit = ClassItems::new(body).any(|item| {
                    let (lo, hi) = item.unwrap_or(('\u{10ffff}', '\0'));
                    lo <= c && c <= hi
                });
                hit != negated
            }
        }
    }
}

/// The token at the start of `rest` and its length in bytes; `None` at the end.
fn token(rest: &str) -> std::result::Result<Option<(Token<'_>, usize)>, String> {
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return Ok(None);
    };
    Ok(Some(match c {
        '*' => (Token::Star, 1),
        '?' => (Token::One, 1),
        '\\' => match chars.next() {
            Some(lit) => (Token::Char(lit), 1 + lit.len_utf8()),
            None => return Err("`\\` at the end escapes nothing".to_string()),
        },
        '[' => {
            let after = &rest[1..];
            let (negated, start) = match after.chars().next() {
                Some('!' | '^') => (true, 2),
                _ => (false, 1),
            };
            let body_and_rest = &rest[start..];
            let mut end = None;
            let mut iter = body_and_rest.char_indices();
            let mut first = true;
            while let Some((i, c)) = iter.next() {
                match c {
                    '\\' if iter.next().is_none() => break,
                    ']' if !first => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                first = false;
            }
            let Some(end) = end else {
                return Err("unclosed `[` (no matching `]`)".to_string());
            };
            let body = &body_and_rest[..end];
            (Token::Class { negated, body }, start + end + 1)
        }
        other => (Token::Char(other), other.len_utf8()),
    }))
}

/// The characters and ranges of a class body, each as `(low, high)`; an error for a range
/// whose end is before its start.
struct ClassItems<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> ClassItems<'a> {
    fn new(body: &'a str) -> Self {
        ClassItems {
            chars: body.chars().peekable(),
        }
    }

    fn literal(&mut self, c: char) -> char {
        if c == '\\' {
            self.chars.next().unwrap_or('\\')
        } else {
            c
        }
    }
}

impl Iterator for ClassItems<'_> {
    type Item = std::result::Result<(char, char), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.chars.next()?;
        let lo = self.literal(c);
        // `-` makes a range only between two characters: first or last it is itself.
        if self.chars.peek() == Some(&'-') && self.chars.clone().nth(1).is_some() {
            self.chars.next();
            let h = self.chars.next()?;
            let hi = self.literal(h);
            if hi < lo {
                return Some(Err(format!("bad range `{lo}-{hi}` (end before start)")));
            }
            return Some(Ok((lo, hi)));
        }
        Some(Ok((lo, lo)))
    }
}

/// Check the syntax of a glob; the error says what is wrong.
fn check(pattern: &str) -> std::result::Result<(), String> {
    let mut at = 0;
    while let Some((tok, len)) = token(&pattern[at..])? {
        if let Token::Class { body, .. } = tok {
            for item in ClassItems::new(body) {
                item?;
            }
        }
        at += len;
    }
    Ok(())
}

/// Match a checked glob against the whole name: linear in practice, backtracking only to the
/// last `*`.
fn match_checked(pattern: &str, name: &str) -> bool {
    let tok = |at: usize| token(&pattern[at..]).ok().flatten();
    let (mut p, mut n) = (0usize, 0usize);
    // After the last `*`: where the pattern continues, and the name position it stands up to.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = name[n..].chars().next() {
        match tok(p) {
            Some((Token::Star, len)) => {
                p += len;
                star = Some((p, n));
            }
            Some((t, len)) if t.matches(c) => {
                p += len;
                n += c.len_utf8();
            }
            _ => match star {
                Some((sp, sn)) => {
                    let skipped = name[sn..].chars().next().map_or(1, char::len_utf8);
                    p = sp;
                    n = sn + skipped;
                    star = Some((sp, n));
                }
                None => return false,
            },
        }
    }
    // The name is used up: what is left of the pattern must be stars.
    while let Some((t, len)) = tok(p) {
        if !matches!(t, Token::Star) {
            return false;
        }
        p += len;
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn yes(pattern: &str, name: &str) {
        assert!(
            glob_match(pattern, name),
            "{pattern:?} should match {name:?}"
        );
        assert!(Glob::parse(pattern).unwrap().matches(name), "{pattern:?}");
    }

    fn no(pattern: &str, name: &str) {
        assert!(
            !glob_match(pattern, name),
            "{pattern:?} should not match {name:?}"
        );
    }

    #[test]
    fn star_and_question_mark() {
        yes("*", "");
        yes("*", "anything/at all");
        yes("web*", "web");
        no("web*", "we");
        yes("*1", "web1");
        no("*1", "web12");
        yes("w*b*1", "wxbyb1");
        yes("**x", "abx");
        no("?", "");
        yes("a?c", "abc");
        no("a?c", "abbc");
        yes("db?-*", "db1-east");
        no("web?", "web12");
        yes("", "");
        no("", "x");
        yes("caf?", "caf\u{e9}");
        yes("*\u{e9}", "caf\u{e9}");
        no("Web*", "web1");
    }

    #[test]
    fn classes() {
        yes("web[0-9]", "web7");
        no("web[0-9]", "weba");
        no("web[0-9]", "web10");
        yes("r[0-3]", "r2");
        no("r[0-3]", "r5");
        yes("[a-z]*", "db1");
        no("[a-z]*", "Db1");
        yes("x[abc]", "xb");
        no("x[abc]", "xd");
        yes("x[!a-c]", "xd");
        no("x[!a-c]", "xb");
        yes("x[^a-c]", "xd");
        no("x[^a-c]", "xa");
        yes("x[a-cx-z]", "xy");
        // `]` first and `-` first or last are themselves.
        yes("x[]]", "x]");
        yes("x[!]]", "xa");
        no("x[!]]", "x]");
        yes("x[-a]", "x-");
        yes("x[a-]", "x-");
        no("x[a-]", "xb");
        yes("[\u{e0}-\u{ff}]", "\u{e9}");
    }

    #[test]
    fn escapes() {
        yes("rack\\[1\\]", "rack[1]");
        no("rack\\[1\\]", "rack1");
        yes("a\\*", "a*");
        no("a\\*", "ab");
        yes("a\\?", "a?");
        no("a\\?", "ab");
        yes("a\\\\", "a\\");
        yes("x[\\]]", "x]");
        yes("x[a\\-z]", "x-");
        no("x[a\\-z]", "xb");
        yes("\\w", "w");
    }

    /// The cases the three old matchers disagreed on: the event and power matcher took `[`
    /// literally, device groups took it as a class.
    #[test]
    fn formerly_disagreeing() {
        yes("rack[1]", "rack1");
        no("rack[1]", "rack[1]");
        yes("web[a-z]", "webq");
        no("web[a-z]", "web[a-z]");
        yes("pdu[!0-9]", "pdux");
    }

    #[test]
    fn bad_globs() {
        for (bad, why) in [
            ("rack[1", "unclosed `[`"),
            ("x[]", "unclosed `[`"),
            ("x[\\", "unclosed `[`"),
            ("x[z-a]", "end before start"),
            ("x\\", "escapes nothing"),
        ] {
            let e = Glob::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad:?}: {e}");
            // As a plain name it matches only itself.
            assert!(glob_match(bad, bad), "{bad:?}");
            assert!(!glob_match(bad, "x"), "{bad:?}");
        }
        let g: Glob = "web*".parse().unwrap();
        assert_eq!((g.as_str(), g.to_string()), ("web*", "web*".to_string()));
        assert!(!g.is_literal() && Glob::parse("web1").unwrap().is_literal());
        assert!(has_wildcards("a[b]") && !has_wildcards("web-01.east"));
    }

    /// A slow, obviously right matcher over tokens, for the random comparison.
    fn naive(pattern: &str, name: &str) -> bool {
        match token(pattern).unwrap() {
            None => name.is_empty(),
            Some((Token::Star, len)) => {
                naive(&pattern[len..], name)
                    || name
                        .chars()
                        .next()
                        .is_some_and(|c| naive(pattern, &name[c.len_utf8()..]))
            }
            Some((t, len)) => name
                .chars()
                .next()
                .is_some_and(|c| t.matches(c) && naive(&pattern[len..], &name[c.len_utf8()..])),
        }
    }

    #[test]
    fn agrees_with_a_naive_matcher() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let pieces = [
            "a", "b", "-", "*", "?", "[ab]", "[!a]", "[a-c]", "\\*", "\\[", "\u{e9}", "]",
        ];
        let name_chars = ['a', 'b', 'c', '-', '*', '[', ']', '\u{e9}'];
        for _ in 0..50_000 {
            let pattern: String = (0..rng.random_range(0..7))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            let name: String = (0..rng.random_range(0..8))
                .map(|_| name_chars[rng.random_range(0..name_chars.len())])
                .collect();
            assert!(Glob::parse(&pattern).is_ok(), "{pattern:?}");
            assert_eq!(
                glob_match(&pattern, &name),
                naive(&pattern, &name),
                "{pattern:?} vs {name:?}"
            );
        }
    }

    #[test]
    fn long_names_stay_fast() {
        let name = "a".repeat(10_000);
        let started = std::time::Instant::now();
        assert!(!glob_match("*a*a*a*a*b", &name));
        assert!(glob_match("*a*a*a*a*", &name));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
