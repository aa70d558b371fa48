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
//!
//! The text is searched as it is, without a lowercased copy: literals of case-sensitive patterns
//! are searched for as they are written, and a literal with case-insensitive letters through the
//! ASCII case variants of its beginning (up to [`MAX_FOLDED_LETTERS`] letters), each candidate
//! checked against the whole literal ignoring ASCII case. Only when that would take too many
//! variants, or more SIMD searchers (passes over the text) than the literals alone, is the text
//! lowercased and every literal searched for lowercased.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, Span, packed};
use memchr::memmem;

use super::buckets;
use regex_syntax::hir::{Class, Hir, HirKind};

/// Most literals one pattern may contribute (an alternation of many words is left unfiltered).
const MAX_LITERALS_PER_PATTERN: usize = 32;
/// Longest literal kept (a longer one is cut: a prefix of a necessary literal is necessary too).
const MAX_LITERAL_LEN: usize = 32;
/// Literals per SIMD (Teddy) searcher; more are split over several.
const PER_SEARCHER: usize = 64;
/// Case-insensitive letters at the start of a literal whose case variants are searched for
/// (2^3 = 8 variants per literal).
const MAX_FOLDED_LETTERS: u32 = 3;
/// Most case variants in all, beyond which the text is lowercased instead.
const MAX_VARIANTS: usize = 64;
/// Most short whole lines (each a pass over the text), beyond which there is no prefilter.
const MAX_SHORT: usize = 16;

/// One byte of a literal, and whether its ASCII case is free (a letter of a case-insensitive
/// part of a pattern, kept lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Unit {
    byte: u8,
    fold: bool,
}

/// A literal: bytes some of which may match in either ASCII case.
type Lit = Vec<Unit>;

/// A set of literals one of which occurs in every match.
type LitSet = Vec<Lit>;

/// `bytes` matched exactly.
fn exact(bytes: &[u8]) -> Lit {
    bytes
        .iter()
        .map(|&byte| Unit { byte, fold: false })
        .collect()
}

/// The bytes of `lit`, letters of free case lowercased.
fn bytes_of(lit: &[Unit]) -> Vec<u8> {
    lit.iter().map(|u| u.byte).collect()
}

/// Whether `lit` has a letter of free case.
fn folds(lit: &[Unit]) -> bool {
    lit.iter().any(|u| u.fold)
}

/// The literals of a whole pattern set (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub(super) struct Prefilter {
    search: Search,
    /// How many literals, for tests and benchmarks.
    literals: usize,
    /// The short whole lines of prompt patterns (`=> ` of `^=> $`, in each ASCII case where the
    /// case is free), each searched for on its own: a literal that short would make the SIMD
    /// searcher stop nearly everywhere.
    short: Vec<memmem::Finder<'static>>,
}

/// How the literals are searched for.
#[derive(Debug, Clone)]
enum Search {
    /// No literal (only short whole lines may match).
    Nothing,
    /// SIMD searchers over the text as it is (see the [module documentation](self)).
    Cased {
        searchers: Vec<Cased>,
        /// The literals with letters of free case, lowercased, checked ignoring ASCII case
        /// where a case variant of one's beginning was found.
        folded: Vec<Vec<u8>>,
    },
    /// SIMD searchers over the lowercased text, with every literal lowercased (all whole).
    Lowered(Vec<Cased>),
    /// One automaton ignoring ASCII case, when the CPU has no SIMD searcher.
    Automaton(AhoCorasick),
}

/// One SIMD searcher over the text as it is.
#[derive(Debug, Clone)]
struct Cased {
    searcher: packed::Searcher,
    /// Patterns below this index are whole literals; the others are case variants of the
    /// beginnings of folded literals, added last so that at a position where both match the
    /// whole literal is found.
    exact: usize,
    /// Per whole literal, whether it is found only at the end of a line (see [`Found`]).
    ends_line: Vec<bool>,
}

/// Where a literal was found.
#[derive(Debug, Clone, Copy)]
struct Found {
    start: usize,
    end: usize,
    /// Whether every pattern it stands for wants it at the end of the line (`\blogin: $`):
    /// found elsewhere, it is no reason to match the line.
    ends_line: bool,
}

impl Cased {
    /// Calls `found` with where literals are in `text`, in order, until it returns false.
    /// (Literals hold no line end, so a literal passed over for overlapping one found lies in
    /// the same line; the search goes on just after the start of one that must end a line,
    /// which may be found elsewhere to no avail.)
    fn search(&self, text: &[u8], folded: &[Vec<u8>], found: &mut impl FnMut(Found) -> bool) {
        let mut at = 0;
        while at < text.len() {
            let Some(m) = self.searcher.find_in(text, Span::from(at..text.len())) else {
                return;
            };
            let id = m.pattern().as_usize();
            if id < self.exact {
                let ends_line = self.ends_line.get(id).copied().unwrap_or(false);
                let here = Found {
                    start: m.start(),
                    end: m.end(),
                    ends_line,
                };
                if !found(here) {
                    return;
                }
                at = if ends_line { m.start() + 1 } else { m.end() };
                continue;
            }
            // A case variant of a beginning: no whole literal starts here (it would have been
            // preferred), but any folded literal may.
            let rest = text.get(m.start()..).unwrap_or_default();
            let whole = folded.iter().any(|lit| {
                rest.get(..lit.len())
                    .is_some_and(|r| r.eq_ignore_ascii_case(lit))
            });
            let here = Found {
                start: m.start(),
                end: m.end(),
                ends_line: false,
            };
            if whole && !found(here) {
                return;
            }
            at = m.start() + 1;
        }
    }
}

/// A SIMD searcher for `patterns`, in order, leftmost-first.
fn packed_searcher(patterns: &[Vec<u8>]) -> Option<packed::Searcher> {
    packed::Config::new()
        .match_kind(packed::MatchKind::LeftmostFirst)
        .builder()
        .extend(patterns)
        .build()
}

/// The ASCII case variants of the beginning of the folded literal `lit` (lowercased letters of
/// free case), up to [`MAX_FOLDED_LETTERS`] letters of free case.
fn case_variants(lit: &[Unit]) -> Vec<Vec<u8>> {
    let mut letters = 0;
    let len = lit
        .iter()
        .position(|u| {
            letters += u32::from(u.fold);
            letters > MAX_FOLDED_LETTERS
        })
        .unwrap_or(lit.len());
    let begin = lit.get(..len).unwrap_or_default();
    let free: Vec<usize> = (0..begin.len())
        .filter(|&i| begin.get(i).is_some_and(|u| u.fold))
        .collect();
    (0..1usize << free.len())
        .map(|mask| {
            let mut bytes = bytes_of(begin);
            for (bit, &i) in free.iter().enumerate() {
                if mask & (1 << bit) != 0
                    && let Some(b) = bytes.get_mut(i)
                {
                    b.make_ascii_uppercase();
                }
            }
            bytes
        })
        .collect()
}

impl Prefilter {
    /// The prefilter of `regexes`, or `None` when one of them has no literal it must contain
    /// (then every line has to be matched against the set).
    pub(super) fn new<'a>(regexes: impl IntoIterator<Item = &'a str>) -> Option<Prefilter> {
        // Per pattern, its candidate literal sets and the one that must end a line, if any.
        let mut candidates: Vec<(Vec<LitSet>, Option<LitSet>)> = Vec::new();
        let mut short: Vec<Vec<u8>> = Vec::new();
        for regex in regexes {
            // The regex crate's defaults for byte regexes: Unicode on, may match invalid UTF-8.
            let hir = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(regex)
                .ok()?;
            // A prompt such as `^=> $` matches a whole line of a few bytes: searching for a
            // literal that short with the others would slow the search for all, so each short
            // line is searched for on its own (in every case variant), the longer ones with the
            // others. (An empty line is never matched.)
            if let Some(lines) = whole_lines(&hir)
                && lines.iter().any(|l| l.len() < SHORT_LITERAL)
            {
                let (few, long): (LitSet, LitSet) = lines
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .partition(|l| l.len() < SHORT_LITERAL);
                for variant in few.iter().flat_map(|l| case_variants(l)) {
                    if !short.contains(&variant) {
                        short.push(variant);
                    }
                }
                if short.len() > MAX_SHORT {
                    return None;
                }
                if !long.is_empty() {
                    let ends = normalized(long.clone());
                    candidates.push((vec![long], Some(ends)));
                }
                continue;
            }
            let found = sets(&hir);
            if found.is_empty() {
                return None;
            }
            candidates.push((found, line_end_run(&hir).map(normalized)));
        }
        // Prefer literals many patterns share (`Failed with result '` for thirty services), as
        // long as they are not too short: fewer literals, faster search.
        let mut shared: HashMap<&[Unit], usize> = HashMap::new();
        for (found, _) in &candidates {
            let mut mine: Vec<&[Unit]> = found.iter().flatten().map(Vec::as_slice).collect();
            mine.sort_unstable();
            mine.dedup();
            for lit in mine {
                *shared.entry(lit).or_default() += 1;
            }
        }
        let mut literals: Vec<(Lit, bool)> = Vec::new();
        for (found, at_end) in &candidates {
            let best = found.iter().max_by_key(|set| {
                let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
                let sharing = set
                    .iter()
                    .map(|l| shared.get(l.as_slice()).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0);
                // Of equals, the set whose likeliest literal is least likely in console text
                // (` blocked for more than ` rather than ` seconds`).
                let rarest = set.iter().map(|l| surprise(l)).min().unwrap_or(0);
                (
                    shortest.min(4),
                    sharing,
                    shortest.min(8),
                    std::cmp::Reverse(set.len()),
                    rarest,
                )
            })?;
            // Only where this set is the one the pattern ends with, whole (not cut to
            // MAX_LITERAL_LEN), must its literals end the line.
            let ends_line = at_end.as_ref() == Some(&normalized(best.clone()));
            for lit in best {
                if lit.iter().any(|u| u.byte == b'\n' || u.byte == b'\r') {
                    // Cannot be in a line; keep clear of what `starts` relies on.
                    return None;
                }
                match literals.iter_mut().find(|(l, _)| l == lit) {
                    // Another pattern may want it anywhere.
                    Some((_, ends)) => *ends &= ends_line,
                    None => literals.push((lit.clone(), ends_line)),
                }
            }
        }
        let literals = focused(literals);
        let search = if literals.is_empty() {
            Search::Nothing
        } else {
            searches(&literals)?
        };
        Some(Prefilter {
            search,
            literals: literals.len(),
            short: short
                .iter()
                .map(|line| memmem::Finder::new(line).into_owned())
                .collect(),
        })
    }

    /// How many literals are searched for.
    pub(super) fn literals(&self) -> usize {
        self.literals
    }

    /// Appends to `starts` where literals start in `text`, in order: every line (text between
    /// line ends) that may match holds one of them. (Literals hold no line end, so a literal
    /// passed over for overlapping one found lies in the same line.) A literal that must end
    /// its line counts only where it does, or where the text ends (a partial line), or in a line
    /// longer than `max_line` (matched in pieces, each of which ends somewhere). `lower` is
    /// scratch space.
    pub(super) fn starts(
        &self,
        text: &[u8],
        lower: &mut Vec<u8>,
        max_line: usize,
        starts: &mut Vec<usize>,
    ) {
        let before = starts.len();
        for finder in &self.short {
            starts.extend(finder.find_iter(text));
        }
        let mut found = |f: Found| {
            if !f.ends_line || ends_line_or_long(text, f, max_line) {
                starts.push(f.start);
            }
            true
        };
        // How many runs of starts in order were appended.
        let searchers = self.short.len()
            + match &self.search {
                Search::Nothing => 0,
                Search::Automaton(ac) => {
                    for m in ac.find_iter(text) {
                        found(Found {
                            start: m.start(),
                            end: m.end(),
                            ends_line: false,
                        });
                    }
                    1
                }
                Search::Lowered(searchers) => {
                    let lowered = lowered(text, lower);
                    for searcher in searchers {
                        searcher.search(lowered, &[], &mut found);
                    }
                    searchers.len()
                }
                Search::Cased { searchers, folded } => {
                    for searcher in searchers {
                        searcher.search(text, folded, &mut found);
                    }
                    searchers.len()
                }
            };
        if searchers > 1
            && let Some(new) = starts.get_mut(before..)
        {
            new.sort_unstable();
        }
    }

    /// Whether some pattern may match the line `text`: false only if none can. `lower` is
    /// scratch space.
    pub(super) fn may_match(&self, text: &[u8], lower: &mut Vec<u8>) -> bool {
        if self.short.iter().any(|finder| finder.find(text).is_some()) {
            return true;
        }
        // Whether `searchers` find a literal where it counts in `within` (`text` or its
        // lowercased copy): one that must end the line only at the end.
        let any = |searchers: &[Cased], within: &[u8], folded: &[Vec<u8>]| {
            searchers.iter().any(|searcher| {
                let mut any = false;
                searcher.search(within, folded, &mut |f| {
                    any = !f.ends_line || f.end == within.len();
                    !any
                });
                any
            })
        };
        match &self.search {
            Search::Nothing => false,
            Search::Automaton(ac) => ac.is_match(text),
            Search::Lowered(searchers) => any(searchers, lowered(text, lower), &[]),
            Search::Cased { searchers, folded } => any(searchers, text, folded),
        }
    }
}

/// How to search for `literals` (not empty): in the text as it is when the CPU has SIMD
/// searchers and the literals of free case have few enough variants, else see [`Search`].
fn searches(literals: &[(Lit, bool)]) -> Option<Search> {
    // Whole literals, each with whether it must end a line.
    let mut exact: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut folded: Vec<Vec<u8>> = Vec::new();
    let mut variants: Vec<Vec<u8>> = Vec::new();
    for (lit, ends_line) in literals {
        if folds(lit) {
            folded.push(bytes_of(lit));
            for variant in case_variants(lit) {
                if !variants.contains(&variant) {
                    variants.push(variant);
                }
            }
        } else {
            exact.push((bytes_of(lit), *ends_line));
        }
    }
    // Each searcher is a pass over the text: the variants must not add one (measured with
    // `mo-bench scan`: a second pass costs more than lowercasing a copy of the text).
    let passes = |n: usize| n.div_ceil(PER_SEARCHER);
    if variants.len() <= MAX_VARIANTS
        && passes(exact.len() + variants.len()) <= passes(literals.len())
    {
        // Whole literals first in each searcher (see `Cased::exact`).
        let mut searchers = Vec::new();
        let mut rest = variants.as_slice();
        for chunk in exact.chunks(PER_SEARCHER) {
            let room = PER_SEARCHER - chunk.len();
            let (some, more) = rest.split_at(room.min(rest.len()));
            rest = more;
            // Whole literals alone may go in any order (see `buckets`).
            let chunk = if some.is_empty() {
                spread(chunk)
            } else {
                chunk.to_vec()
            };
            searchers.push(cased(&chunk, some));
        }
        for chunk in rest.chunks(PER_SEARCHER) {
            searchers.push(cased(&[], chunk));
        }
        if let Some(searchers) = searchers.into_iter().collect::<Option<Vec<Cased>>>() {
            return Some(Search::Cased { searchers, folded });
        }
    }
    let lowered: Vec<(Vec<u8>, bool)> = literals
        .iter()
        .map(|(lit, ends_line)| (bytes_of(lit).to_ascii_lowercase(), *ends_line))
        .collect();
    let packed: Option<Vec<Cased>> = lowered
        .chunks(PER_SEARCHER)
        .map(|chunk| cased(&spread(chunk), &[]))
        .collect();
    match packed {
        Some(packed) => Some(Search::Lowered(packed)),
        None => AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(lowered.iter().map(|(l, _)| l))
            .ok()
            .map(Search::Automaton),
    }
}

/// `whole` in the order that spreads them best over the SIMD searcher's buckets (see
/// [`buckets::ordered`]), some perhaps repeated.
fn spread(whole: &[(Vec<u8>, bool)]) -> Vec<(Vec<u8>, bool)> {
    let bytes: Vec<&[u8]> = whole.iter().map(|(l, _)| l.as_slice()).collect();
    buckets::ordered(&bytes)
        .into_iter()
        .filter_map(|i| whole.get(i).cloned())
        .collect()
}

/// A searcher for the whole literals `whole`, then the case variants `variants`.
fn cased(whole: &[(Vec<u8>, bool)], variants: &[Vec<u8>]) -> Option<Cased> {
    let patterns: Vec<Vec<u8>> = whole
        .iter()
        .map(|(l, _)| l.clone())
        .chain(variants.iter().cloned())
        .collect();
    Some(Cased {
        searcher: packed_searcher(&patterns)?,
        exact: whole.len(),
        ends_line: whole.iter().map(|&(_, e)| e).collect(),
    })
}

/// How unlikely `lit` is in console output: the sum of its bytes' surprisals (bits, by
/// [`buckets::frequency`]; a letter of free case counts both of its cases).
fn surprise(lit: &[Unit]) -> u32 {
    let bits: f64 = frequencies(lit).iter().map(|f| -f.log2()).sum();
    // Whole bits are fine enough to compare by; any literal fits in a u32.
    bits.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// How often each byte of `lit` occurs in console output (see [`buckets::frequency`]).
fn frequencies(lit: &[Unit]) -> Vec<f64> {
    lit.iter()
        .map(|u| {
            if u.fold {
                buckets::frequency(u.byte.to_ascii_lowercase())
                    + buckets::frequency(u.byte.to_ascii_uppercase())
            } else {
                buckets::frequency(u.byte)
            }
        })
        .collect()
}

/// Fewest bytes of a literal kept when it is cut to start where its bytes are rare.
const FOCUS_KEEP: usize = 8;

/// `literals` cut to start where their bytes are rare in console output (a piece of a necessary
/// literal is necessary too; see [`buckets::focus`]), without those holding another one (which
/// finds all they would find).
fn focused(literals: Vec<(Lit, bool)>) -> Vec<(Lit, bool)> {
    let trimmed: Vec<(Lit, bool)> = literals
        .into_iter()
        .map(|(lit, ends_line)| {
            // A piece from the start on ends the line where the literal does.
            let cut = buckets::focus(&frequencies(&lit), FOCUS_KEEP);
            (
                lit.get(cut..).map(<[Unit]>::to_vec).unwrap_or(lit),
                ends_line,
            )
        })
        .collect();
    let mut out: Vec<(Lit, bool)> = Vec::new();
    for (i, (lit, ends)) in trimmed.iter().enumerate() {
        let holds_another = trimmed.iter().enumerate().any(|(j, (other, other_ends))| {
            j != i
                && other.len() <= lit.len()
                && (other.len() < lit.len() || j < i)
                // One found only at line ends finds this only where it ends the line too.
                && (!other_ends || (*ends && lit.ends_with(other)))
                && lit.windows(other.len()).any(|w| w == other.as_slice())
        });
        if holds_another {
            continue;
        }
        match out.iter_mut().find(|(l, _)| l == lit) {
            Some((_, e)) => *e &= *ends,
            None => out.push((lit.clone(), *ends)),
        }
    }
    // The search goes on after the start of a literal found where it does not end the line,
    // but one starting at the same place would have been passed over: a literal that begins
    // another (in any ASCII case, as the search may ignore case) is taken anywhere.
    let lower: Vec<Vec<u8>> = out
        .iter()
        .map(|(l, _)| bytes_of(l).to_ascii_lowercase())
        .collect();
    for (i, (_, ends)) in out.iter_mut().enumerate() {
        let Some(me) = lower.get(i) else { continue };
        if lower
            .iter()
            .enumerate()
            .any(|(j, other)| j != i && (other.starts_with(me) || me.starts_with(other)))
        {
            *ends = false;
        }
    }
    out
}

/// `set` sorted, without repeats.
fn normalized(mut set: LitSet) -> LitSet {
    set.sort_unstable();
    set.dedup();
    set
}

/// The strings `hir` must end with at the end of the text (`login: ` of `\blogin: $`, both of
/// `(Password|Passphrase): $`), if it ends with a few fixed strings and then `$`.
fn line_end_run(hir: &Hir) -> Option<LitSet> {
    use regex_syntax::hir::Look;
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let (last, before) = items.split_last()?;
    if !matches!(
        last.kind(),
        HirKind::Look(Look::End | Look::EndLF | Look::EndCRLF)
    ) {
        return None;
    }
    let mut run: LitSet = vec![Vec::new()];
    for item in before.iter().rev() {
        if matches!(item.kind(), HirKind::Look(_)) {
            continue;
        }
        let Some(strings) = exact_set(item) else {
            break;
        };
        // The earlier strings go in front.
        run = product(&strings, &run)?;
    }
    run.iter().all(|l| !l.is_empty()).then_some(run)
}

/// Whether the literal `found` in `text` ends its line (or the text), or lies in a line longer
/// than `max_line`.
fn ends_line_or_long(text: &[u8], found: Found, max_line: usize) -> bool {
    let after = text.get(found.end..).unwrap_or_default();
    let Some(end) = memchr::memchr2(b'\r', b'\n', after) else {
        return true;
    };
    if end == 0 {
        return true;
    }
    let before = text.get(..found.start).unwrap_or_default();
    let start = memchr::memrchr2(b'\r', b'\n', before).map_or(0, |at| at + 1);
    found.end + end - start > max_line
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

/// The lines `hir` matches, if it matches only whole lines that are one of a
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

/// The few strings `hir` can match, if it matches only a few fixed strings
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

/// The one string `hir` always matches, if it matches exactly one (a class that is just the two
/// ASCII cases of a letter is that letter of free case).
fn exactly(hir: &Hir) -> Option<Lit> {
    match hir.kind() {
        HirKind::Literal(lit) => Some(exact(&lit.0)),
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
) -> Option<Lit> {
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
        [one] => Some(exact(&encode(one))),
        [a, b] => {
            let (a, b) = (encode(a), encode(b));
            match (a.as_slice(), b.as_slice()) {
                ([x], [y]) if x.is_ascii_alphabetic() && x.eq_ignore_ascii_case(y) => {
                    Some(vec![Unit {
                        byte: x.to_ascii_lowercase(),
                        fold: true,
                    }])
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
                .map(|l| String::from_utf8(bytes_of(&l)).unwrap())
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
            v(&["Kernel panic - not syncing: "])
        );
        assert_eq!(lits(r"\bI/O error\b.*dev (\w+)"), v(&["I/O error"]));
        assert_eq!(lits(r"^=> $"), v(&["=> "]));
        assert_eq!(lits(r"\blogin: $"), v(&["login: "]));
        assert_eq!(
            lits(r"(\S+)\[(\d+)\]: segfault at ([0-9a-f]+)"),
            v(&["]: segfault at "])
        );
        assert_eq!(
            lits(r"(Failed with result '([\w-]+)'|Main process exited, code=(\w+))"),
            v(&["Failed with result '", "Main process exited, code="])
        );
        assert_eq!(lits(r"EDAC (MC\d+): (\d+) (CE|UE) "), v(&["EDAC "]));
        // Case-sensitive letters keep their case (shown as written); case-insensitive ones
        // are of free case (shown lowercased); `s` and `k` have non-ASCII cases and end a run.
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
    fn whole_line_prompts_with_short_strings_search_for_them_on_their_own() {
        let mut lower = Vec::new();
        let p = Prefilter::new([
            r"^=> $",
            r"^(ok|=>|(?i)go)$",
            "Kernel panic",
            r"^(=|boot> )$",
        ])
        .unwrap();
        // `=> `, `ok`, `=>`, `go` in four cases, `=`; `Kernel panic` and `boot> ` with the rest.
        assert_eq!((p.short.len(), p.literals()), (8, 2));
        for line in [&b"=> "[..], b"ok", b"gO", b"=", b"boot> "] {
            assert!(p.may_match(line, &mut lower), "{line:?}");
        }
        assert!(!p.may_match(b"abc", &mut lower));
        // A necessary condition only: the line may hold more.
        assert!(p.may_match(b"a line => with a prompt", &mut lower));
        let p = Prefilter::new([r"^=> $"]).unwrap();
        assert_eq!((p.short.len(), p.literals()), (1, 0));
        let mut starts = Vec::new();
        p.starts(b"longer line\r\n=> \r\n", &mut lower, 4096, &mut starts);
        assert_eq!(starts, vec![13]);
        assert!(!p.may_match(b"longer line", &mut lower));
        // `^$` matches no line the scanner matches (empty lines are not).
        assert!(Prefilter::new([r"^$", "panic"]).unwrap().short.is_empty());
    }

    #[test]
    fn a_literal_a_pattern_wants_at_the_line_end_counts_only_there() {
        // `login: ` ends the line in a prompt; in `web1 login: root` it is no reason to match.
        let cased = Prefilter::new([r"\blogin: $", "Kernel panic"]).unwrap();
        assert!(matches!(cased.search, Search::Cased { .. }));
        // Enough case-insensitive literals that the text is lowercased instead.
        let mut many: Vec<String> = (0..12).map(|i| format!(r"(?i)part{i} failed")).collect();
        many.push(r"\blogin: $".to_owned());
        let lowered = Prefilter::new(many.iter().map(String::as_str)).unwrap();
        assert!(matches!(lowered.search, Search::Lowered(_)));
        for p in [&cased, &lowered] {
            assert_eq!(found(p, b"web1 login: root\r\nx"), (vec![], false));
            assert_eq!(found(p, b"web1 login: \r\nx").0, vec![5]);
            assert!(found(p, b"web1 login: ").1);
            // At the end of the text: a partial line, matched later.
            assert_eq!(found(p, b"x\nweb1 login: ").0, vec![7]);
            // In a line matched in pieces (longer than `max_line`) it may end a piece.
            let mut lower = Vec::new();
            let mut starts = Vec::new();
            p.starts(b"a long line, login: in it\n", &mut lower, 16, &mut starts);
            assert_eq!(starts, vec![13]);
            // Found where it does not count, the search goes on from just after its start.
            assert_eq!(found(p, b"login: login: \n").0, vec![7]);
        }
        // Patterns that want it anywhere keep it wanted anywhere.
        let p = Prefilter::new([r"\blogin: $", r"login: "]).unwrap();
        assert_eq!(found(&p, b"web1 login: root\n"), (vec![5], true));
        // One literal beginning another: both start at the same place, and the search must
        // not pass the other over for the one that does not count.
        let p = Prefilter::new([r"\blogin: $", r"login: failed"]).unwrap();
        let (starts, may) = found(&p, b"login: failed\n");
        assert!(starts.len() == 1 && may, "{starts:?}");
        // A literal holding one wanted at the line end is kept.
        let p = Prefilter::new([r"\blogin: $", r"Last login: "]).unwrap();
        let (starts, may) = found(&p, b"Last login: Sat\n");
        assert!(starts.len() == 1 && may, "{starts:?}");
        // Literals of such prompts that begin one another are wanted anywhere.
        let p = Prefilter::new([r"\blogin: $", r"\blogin: x"]).unwrap();
        assert_eq!(found(&p, b"login: x\n"), (vec![0], true));
    }

    #[test]
    fn no_prefilter_when_a_pattern_has_no_literal() {
        assert!(Prefilter::new(["panic", r"^\d+$"]).is_none());
        assert!(Prefilter::new(["panic", "oops"]).is_some());
    }

    #[test]
    fn literals_of_case_insensitive_parts_match_any_ascii_case_and_many_are_split_over_searchers() {
        let mut lower = Vec::new();
        let p = Prefilter::new([r"(?i)fan \d+ fail", "Kernel panic"]).unwrap();
        assert!(p.may_match(b"FAN 2 FAIL", &mut lower));
        assert!(p.may_match(b"xx Kernel panic", &mut lower));
        assert!(!p.may_match(b"fa n", &mut lower));
        let many: Vec<String> = (0..150).map(|i| format!("word{i:03}x")).collect();
        let p = Prefilter::new(many.iter().map(String::as_str)).unwrap();
        assert_eq!(p.literals(), 150);
        let mut starts = Vec::new();
        p.starts(
            b"a word149x b word002x c word000x",
            &mut lower,
            4096,
            &mut starts,
        );
        assert_eq!(starts, vec![2, 13, 24]);
        // Case-sensitive patterns: their literals are found as written only.
        starts.clear();
        p.starts(
            b"a WORD149X b word002x c WORD000x",
            &mut lower,
            4096,
            &mut starts,
        );
        assert_eq!(starts, vec![13]);
    }

    /// Where `p` finds literals in `text`, and whether it says a pattern may match.
    fn found(p: &Prefilter, text: &[u8]) -> (Vec<usize>, bool) {
        let mut lower = Vec::new();
        let mut starts = Vec::new();
        p.starts(text, &mut lower, 4096, &mut starts);
        (starts, p.may_match(text, &mut lower))
    }

    #[test]
    fn case_sensitive_literals_are_searched_as_written() {
        let p = Prefilter::new(["Kernel panic", "EDAC (MC\\d+)"]).unwrap();
        assert!(matches!(
            p.search,
            Search::Cased { .. } | Search::Automaton(_)
        ));
        assert_eq!(found(&p, b"x Kernel panic - y"), (vec![2], true));
        assert!(!found(&p, b"x kernel panic - y KERNEL PANIC").1);
        assert_eq!(found(&p, b"EDAC MC0 and edac"), (vec![0], true));
        assert!(!found(&p, b"Edac MC0 and KERNEL panic").1);
    }

    #[test]
    fn case_insensitive_literals_match_any_case_without_lowering_the_text() {
        let p =
            Prefilter::new([r"(?i)fan \d+ (failure|speed low)", "Kernel panic", "FAIL"]).unwrap();
        if let Search::Cased { folded, searchers } = &p.search {
            assert_eq!(folded.len(), 2, "{folded:?}");
            assert_eq!(searchers.len(), 1);
        }
        for text in [
            &b"fan 1 failure"[..],
            b"FAN 1 FAILURE",
            b"Fan 1 FaIlUrE",
            b"fan 2 SPEED LOW",
            b"fan 2 sPeEd LoW",
        ] {
            let (starts, may) = found(&p, text);
            assert!(may, "{}", String::from_utf8_lossy(text));
            assert_eq!(starts.len(), 1, "{}", String::from_utf8_lossy(text));
        }
        // A case variant of a beginning alone (`FAI`, `Pee`) is not a literal; `FAIL` is one
        // of a case-sensitive pattern, found where it starts, also inside a variant.
        assert_eq!(found(&p, b"FAIt Pee lo fai"), (vec![], false));
        assert_eq!(found(&p, b"xFAIL"), (vec![1], true));
        assert_eq!(found(&p, b"fail"), (vec![], false));
        // A beginning that is not the literal, then the literal overlapping it.
        assert_eq!(found(&p, b"FaiFAILURE"), (vec![3], true));
        assert_eq!(found(&p, b"peepeed low"), (vec![3], true));
        // Cut anywhere, a literal is found only in the text holding it whole.
        let text = b"a line; fan 7 Failure here";
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            let whole = cut >= 21 || cut <= 14;
            assert_eq!(found(&p, a).1 || found(&p, b).1, whole, "cut at {cut}");
        }
    }

    #[test]
    fn case_variants_of_the_beginning_of_a_folded_literal() {
        let lit: Lit = b"t er"
            .iter()
            .map(|&byte| Unit {
                byte,
                fold: byte != b' ',
            })
            .collect();
        let variants = case_variants(&lit);
        assert_eq!(variants.len(), 8);
        assert!(variants.contains(&b"T eR".to_vec()));
        let mut lit = lit;
        lit.extend(exact(b"Ror"));
        lit.push(Unit {
            byte: b'x',
            fold: true,
        });
        // Only three letters of free case: cut before the fourth (`Ror` is as written).
        let variants = case_variants(&lit);
        assert_eq!(variants.len(), 8);
        assert!(variants.contains(&b"t erRor".to_vec()));
    }

    #[test]
    fn many_case_insensitive_literals_fall_back_to_a_lowered_text() {
        // Forty literals of different beginnings: 320 case variants.
        let many: Vec<String> = (0..40u8)
            .map(|i| {
                format!(
                    "(?i){}{}alarm",
                    char::from(b'a' + i / 8),
                    char::from(b'a' + i % 8)
                )
            })
            .collect();
        let p = Prefilter::new(many.iter().map(String::as_str)).unwrap();
        assert!(matches!(
            p.search,
            Search::Lowered(_) | Search::Automaton(_)
        ));
        assert_eq!(found(&p, b"x AAALARM ehALArm"), (vec![2, 10], true));
        // Sixty literals as written and one of free case: its variants would take a second
        // searcher, a second pass over the text.
        let mut many: Vec<String> = (0..60).map(|i| format!("word{i:03}x")).collect();
        many.push("(?i)fan failure".to_owned());
        let p = Prefilter::new(many.iter().map(String::as_str)).unwrap();
        assert!(matches!(
            p.search,
            Search::Lowered(_) | Search::Automaton(_)
        ));
        assert_eq!(found(&p, b"x FAN FAILURE word007x"), (vec![2, 14], true));
        many.truncate(50);
        many.push("(?i)fan failure".to_owned());
        let p = Prefilter::new(many.iter().map(String::as_str)).unwrap();
        assert!(matches!(
            p.search,
            Search::Cased { .. } | Search::Automaton(_)
        ));
        assert_eq!(found(&p, b"x FAN FAILURE word007x"), (vec![2, 14], true));
        assert!(!found(&p, b"zzalarm").1);
    }
}
