//! A literal prefilter for a pattern set: for each pattern, literals of which at least one occurs
//! in every text the pattern matches (`Kernel panic - not syncing` for `Kernel panic - (.*)`,
//! `Failed with result '` or `Main process exited, code=` for an alternation), all searched for
//! at once with Aho-Corasick. Text holding none of them cannot match any pattern, so the
//! [`regex::bytes::RegexSet`] is run only on text the prefilter lets through.
//!
//! The literals are a necessary condition, never a sufficient one: when in doubt (a pattern with
//! no literal it must contain, such as `^\d+$`) there is no prefilter and every line goes to the
//! set, as before. Case-insensitive parts (`(?i)fan`) are searched for ASCII-case-insensitively,
//! which finds more, never less.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, packed};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Most literals one pattern may contribute (an alternation of many words is left unfiltered).
const MAX_LITERALS_PER_PATTERN: usize = 32;
/// Longest literal kept (a longer one is cut: a prefix of a necessary literal is necessary too).
const MAX_LITERAL_LEN: usize = 32;
/// Literals per SIMD (Teddy) searcher; more are split over several.
const PER_SEARCHER: usize = 64;

/// A set of literals one of which occurs in every match (ASCII-lowercased).
type LitSet = Vec<Vec<u8>>;

/// The literals of a whole pattern set (see the [module documentation](self)). Literals and text
/// are compared ASCII-lowercased: that finds more, never less.
#[derive(Debug, Clone)]
pub(super) struct Prefilter {
    /// SIMD searchers over the lowercased text, when the CPU has them.
    packed: Vec<packed::Searcher>,
    /// Otherwise one automaton ignoring ASCII case.
    fallback: Option<AhoCorasick>,
    /// How many literals, for tests and benchmarks.
    literals: usize,
    /// Lines this long or shorter may match without holding a literal: the longest line that
    /// a whole-line pattern with only short literals (`^=> $`) matches, or 0.
    short_lines: usize,
}

impl Prefilter {
    /// The prefilter of `regexes`, or `None` when one of them has no literal it must contain
    /// (then every line has to be matched against the set).
    pub(super) fn new<'a>(regexes: impl IntoIterator<Item = &'a str>) -> Option<Prefilter> {
        let mut candidates: Vec<Vec<LitSet>> = Vec::new();
        let mut short_lines = 0;
        for regex in regexes {
            // The regex crate's defaults for byte regexes: Unicode on, may match invalid UTF-8.
            let hir = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(regex)
                .ok()?;
            // A prompt such as `^=> $` matches a whole line of a few bytes: searching for a
            // literal that short would slow the search for all; short lines are scanned instead.
            if let Some(lines) = whole_lines(&hir)
                && let Some(longest) = lines.iter().map(Vec::len).max()
                && lines.iter().any(|l| l.len() < SHORT_LITERAL)
            {
                short_lines = short_lines.max(longest);
                continue;
            }
            let found = sets(&hir);
            if found.is_empty() {
                return None;
            }
            candidates.push(found);
        }
        // Prefer literals many patterns share (`Failed with result '` for thirty services), as
        // long as they are not too short: fewer literals, faster search.
        let mut shared: HashMap<&[u8], usize> = HashMap::new();
        for found in &candidates {
            let mut mine: Vec<&[u8]> = found.iter().flatten().map(Vec::as_slice).collect();
            mine.sort_unstable();
            mine.dedup();
            for lit in mine {
                *shared.entry(lit).or_default() += 1;
            }
        }
        let mut literals: Vec<Vec<u8>> = Vec::new();
        for found in &candidates {
            let best = found.iter().max_by_key(|set| {
                let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
                let sharing = set
                    .iter()
                    .map(|l| shared.get(l.as_slice()).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0);
                (
                    shortest.min(4),
                    sharing,
                    shortest.min(8),
                    std::cmp::Reverse(set.len()),
                )
            })?;
            for lit in best {
                if lit.contains(&b'\n') || lit.contains(&b'\r') {
                    // Cannot be in a line; keep clear of what `starts` relies on.
                    return None;
                }
                if !literals.contains(lit) {
                    literals.push(lit.clone());
                }
            }
        }
        if literals.is_empty() {
            return Some(Prefilter {
                packed: Vec::new(),
                fallback: None,
                literals: 0,
                short_lines,
            });
        }
        let packed: Option<Vec<packed::Searcher>> = literals
            .chunks(PER_SEARCHER)
            .map(|chunk| {
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostFirst)
                    .builder()
                    .extend(chunk)
                    .build()
            })
            .collect();
        let (packed, fallback) = match packed {
            Some(packed) => (packed, None),
            None => {
                let ac = AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&literals)
                    .ok()?;
                (Vec::new(), Some(ac))
            }
        };
        Some(Prefilter {
            packed,
            fallback,
            literals: literals.len(),
            short_lines,
        })
    }

    /// How many literals are searched for.
    pub(super) fn literals(&self) -> usize {
        self.literals
    }

    /// Lines this long or shorter may match whether or not they hold a literal.
    pub(super) fn short_lines(&self) -> usize {
        self.short_lines
    }

    /// Appends to `starts` where literals start in `text`, in order: every line (text between
    /// line ends) that may match holds one of them. (Literals hold no line end, so a literal
    /// passed over for overlapping one found lies in the same line.) `lower` is scratch space.
    pub(super) fn starts(&self, text: &[u8], lower: &mut Vec<u8>, starts: &mut Vec<usize>) {
        let before = starts.len();
        if let Some(ac) = &self.fallback {
            starts.extend(ac.find_iter(text).map(|m| m.start()));
            return;
        }
        let text = lowered(text, lower);
        for searcher in &self.packed {
            starts.extend(searcher.find_iter(text).map(|m| m.start()));
        }
        if self.packed.len() > 1
            && let Some(new) = starts.get_mut(before..)
        {
            new.sort_unstable();
        }
    }

    /// Whether some pattern may match `text`: false only if none can. `lower` is scratch space.
    pub(super) fn may_match(&self, text: &[u8], lower: &mut Vec<u8>) -> bool {
        if text.len() <= self.short_lines {
            return true;
        }
        if let Some(ac) = &self.fallback {
            return ac.is_match(text);
        }
        let text = lowered(text, lower);
        self.packed.iter().any(|s| s.find(text).is_some())
    }
}

/// `text` ASCII-lowercased, in `buf`.
fn lowered<'b>(text: &[u8], buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(text);
    buf.make_ascii_lowercase();
    buf
}

/// Candidate literal sets of `hir`: for each, every match of `hir` contains one of its literals.
/// Empty if there is none.
fn sets(hir: &Hir) -> Vec<LitSet> {
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => {
            exactly(hir).map(|lit| vec![vec![lit]]).unwrap_or_default()
        }
        HirKind::Capture(c) => sets(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => sets(&r.sub),
        HirKind::Alternation(alternatives) => {
            let mut all: LitSet = Vec::new();
            for alternative in alternatives {
                let Some(best) = sets(alternative).into_iter().max_by_key(|set| {
                    let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
                    (shortest.min(8), std::cmp::Reverse(set.len()), shortest)
                }) else {
                    return Vec::new();
                };
                for lit in best {
                    if !all.contains(&lit) {
                        all.push(lit);
                    }
                }
                if all.len() > MAX_LITERALS_PER_PATTERN {
                    return Vec::new();
                }
            }
            vec![all]
        }
        HirKind::Concat(items) => {
            // Runs of items that each match one of a few fixed strings are one set of literals
            // (`(Oops|BUG): ` gives `oops: ` and `bug: `; looks match no text, so the strings
            // around them stay adjacent); the other items have their own.
            let mut found = Vec::new();
            let mut run: LitSet = vec![Vec::new()];
            for item in items {
                if matches!(item.kind(), HirKind::Look(_)) {
                    continue;
                }
                if let Some(strings) = exact_set(item) {
                    run = match product(&run, &strings) {
                        Some(longer) => longer,
                        None => {
                            found.push(std::mem::take(&mut run));
                            strings
                        }
                    };
                    continue;
                }
                found.push(std::mem::replace(&mut run, vec![Vec::new()]));
                found.extend(sets(item));
            }
            found.push(run);
            found.retain(|set| set.iter().all(|lit| !lit.is_empty()));
            for set in &mut found {
                for lit in set.iter_mut() {
                    lit.truncate(MAX_LITERAL_LEN);
                }
                set.sort_unstable();
                set.dedup();
            }
            found
        }
        _ => Vec::new(),
    }
}

/// Literals shorter than this are avoided where a pattern allows (they make the search slow).
const SHORT_LITERAL: usize = 4;

/// The lines `hir` matches, ASCII-lowercased, if it matches only whole lines that are one of a
/// few fixed strings (`^=> $`, `^(ok|=>) $`).
fn whole_lines(hir: &Hir) -> Option<LitSet> {
    use regex_syntax::hir::Look;
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    let (last, middle) = rest.split_last()?;
    if *first.kind() != HirKind::Look(Look::Start) || *last.kind() != HirKind::Look(Look::End) {
        return None;
    }
    let mut all: LitSet = vec![Vec::new()];
    for item in middle {
        all = product(&all, &exact_set(item)?)?;
    }
    Some(all)
}

/// Most strings in a set of fixed strings (`(a|b)(c|d)` is four).
const MAX_STRINGS: usize = 16;

/// Every string of `a` followed by every string of `b`, unless that makes too many.
fn product(a: &LitSet, b: &LitSet) -> Option<LitSet> {
    if a.len() * b.len() > MAX_STRINGS {
        return None;
    }
    Some(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y.as_slice()].concat()))
            .collect(),
    )
}

/// The few strings `hir` can match, ASCII-lowercased, if it matches only a few fixed strings
/// (a literal, an alternation or a sequence of them).
fn exact_set(hir: &Hir) -> Option<LitSet> {
    if let Some(lit) = exactly(hir) {
        return Some(vec![lit]);
    }
    match hir.kind() {
        HirKind::Capture(c) => exact_set(&c.sub),
        HirKind::Alternation(alternatives) => {
            let mut all = Vec::new();
            for alternative in alternatives {
                all.extend(exact_set(alternative)?);
                if all.len() > MAX_STRINGS {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(items) => {
            let mut all: LitSet = vec![Vec::new()];
            for item in items {
                if !matches!(item.kind(), HirKind::Look(_)) {
                    all = product(&all, &exact_set(item)?)?;
                }
            }
            Some(all)
        }
        _ => None,
    }
}

/// The one string `hir` always matches, ASCII-lowercased, if it matches exactly one (ignoring
/// ASCII case where a class is just the two cases of a letter).
fn exactly(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(lit) => Some(lit.0.to_ascii_lowercase()),
        HirKind::Class(Class::Unicode(class)) => {
            let chars: Vec<char> = class
                .ranges()
                .iter()
                .flat_map(|r| {
                    let n = u32::from(r.end()) - u32::from(r.start());
                    (n < 2).then(|| [r.start(), r.end()])
                })
                .flatten()
                .collect();
            one_of(&chars, class.ranges().len(), |c| {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf).as_bytes().to_vec()
            })
        }
        HirKind::Class(Class::Bytes(class)) => {
            let bytes: Vec<u8> = class
                .ranges()
                .iter()
                .flat_map(|r| {
                    let n = r.end() - r.start();
                    (n < 2).then(|| [r.start(), r.end()])
                })
                .flatten()
                .collect();
            one_of(&bytes, class.ranges().len(), |b| vec![*b])
        }
        HirKind::Capture(c) => exactly(&c.sub),
        _ => None,
    }
}

/// A class as a literal: one member, or the two ASCII cases of one letter. `members` holds each
/// range's two ends (a range of one or two members); `ranges` is how many ranges there were.
fn one_of<T: PartialEq + Copy>(
    members: &[T],
    ranges: usize,
    encode: impl Fn(&T) -> Vec<u8>,
) -> Option<Vec<u8>> {
    if members.len() != ranges * 2 {
        return None; // a range of three or more members
    }
    let mut distinct: Vec<T> = Vec::new();
    for m in members {
        if !distinct.contains(m) {
            distinct.push(*m);
        }
    }
    match distinct.as_slice() {
        [one] => Some(encode(one).to_ascii_lowercase()),
        [a, b] => {
            let (a, b) = (encode(a), encode(b));
            match (a.as_slice(), b.as_slice()) {
                ([x], [y]) if x.is_ascii_alphabetic() && x.eq_ignore_ascii_case(y) => {
                    Some(vec![x.to_ascii_lowercase()])
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The literals chosen for one pattern alone.
    fn lits(regex: &str) -> Option<Vec<String>> {
        Prefilter::new([regex])?;
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(regex)
            .unwrap();
        let best = sets(&hir).into_iter().max_by_key(|set| {
            let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
            (
                shortest.min(4),
                shortest.min(8),
                std::cmp::Reverse(set.len()),
            )
        })?;
        Some(
            best.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect(),
        )
    }

    fn v(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn the_literals_every_match_contains() {
        assert_eq!(
            lits(r"Kernel panic - not syncing: (.*)"),
            v(&["kernel panic - not syncing: "])
        );
        assert_eq!(lits(r"\bI/O error\b.*dev (\w+)"), v(&["i/o error"]));
        assert_eq!(lits(r"^=> $"), v(&["=> "]));
        assert_eq!(lits(r"\blogin: $"), v(&["login: "]));
        assert_eq!(
            lits(r"(\S+)\[(\d+)\]: segfault at ([0-9a-f]+)"),
            v(&["]: segfault at "])
        );
        assert_eq!(
            lits(r"(Failed with result '([\w-]+)'|Main process exited, code=(\w+))"),
            v(&["failed with result '", "main process exited, code="])
        );
        assert_eq!(lits(r"EDAC (MC\d+): (\d+) (CE|UE) "), v(&["edac "]));
        // Case-insensitive letters fold; `s` and `k` have non-ASCII cases and end a run.
        assert_eq!(
            lits(r"(?i)fan \d+ (failure|speed low)"),
            v(&["failure", "peed low"])
        );
        assert_eq!(lits(r"(?i)fan \d+ fail"), v(&[" fail"]));
        assert_eq!(
            lits(r"(?i)post error|memory test fail"),
            v(&["t error", "memory te"])
        );
        // Nothing every match must contain.
        assert_eq!(lits(r"^\d+$"), None);
        assert_eq!(lits(r"a|\d"), None);
        assert_eq!(lits(r"(abc)?"), None);
        assert_eq!(lits(r""), None);
    }

    #[test]
    fn shared_literals_are_preferred() {
        let services: Vec<String> = (0..40)
            .map(|i| format!(r"svc{i}\.service: (Failed with result '(\w+)'|Main process exited)"))
            .collect();
        let p = Prefilter::new(services.iter().map(String::as_str)).unwrap();
        assert_eq!(p.literals(), 2);
        let mut lower = Vec::new();
        assert!(p.may_match(b"svc7.service: Main process exited", &mut lower));
        assert!(!p.may_match(b"svc7.service: started", &mut lower));
    }

    #[test]
    fn whole_line_prompts_with_short_literals_scan_short_lines() {
        let mut lower = Vec::new();
        let p = Prefilter::new([r"^=> $", r"^(ok|=>)$", "Kernel panic"]).unwrap();
        assert_eq!((p.short_lines(), p.literals()), (3, 1));
        assert!(p.may_match(b"=> ", &mut lower));
        assert!(p.may_match(b"abc", &mut lower));
        assert!(!p.may_match(b"a line => with a prompt", &mut lower));
        let p = Prefilter::new([r"^=> $"]).unwrap();
        assert_eq!((p.short_lines(), p.literals()), (3, 0));
        let mut starts = Vec::new();
        p.starts(b"=> \r\nlonger line\r\n", &mut lower, &mut starts);
        assert!(starts.is_empty());
        assert!(!p.may_match(b"longer line", &mut lower));
    }

    #[test]
    fn no_prefilter_when_a_pattern_has_no_literal() {
        assert!(Prefilter::new(["panic", r"^\d+$"]).is_none());
        assert!(Prefilter::new(["panic", "oops"]).is_some());
    }

    #[test]
    fn literals_match_any_ascii_case_and_many_are_split_over_searchers() {
        let mut lower = Vec::new();
        let p = Prefilter::new([r"(?i)fan \d+ fail", "Kernel panic"]).unwrap();
        assert!(p.may_match(b"FAN 2 FAIL", &mut lower));
        assert!(p.may_match(b"xx Kernel panic", &mut lower));
        assert!(!p.may_match(b"fa n", &mut lower));
        let many: Vec<String> = (0..150).map(|i| format!("word{i:03}x")).collect();
        let p = Prefilter::new(many.iter().map(String::as_str)).unwrap();
        assert_eq!(p.literals(), 150);
        let mut starts = Vec::new();
        p.starts(b"a word149x b WORD002X c word000x", &mut lower, &mut starts);
        assert_eq!(starts, vec![2, 13, 24]);
    }
}
