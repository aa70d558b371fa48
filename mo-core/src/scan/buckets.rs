//! Where the prefilter's literals start and in what order they are handed to the SIMD searcher,
//! chosen so that console text makes the searcher stop as seldom as possible.
//!
//! Teddy (`aho_corasick::packed`) looks for the first few bytes (up to four) of every literal at
//! once, by buckets: 8 buckets for up to 32 literals, 16 for more. At each position of the text
//! it asks, per bucket, whether each of the next bytes has a low and a high half (nibble) that
//! some literal of the bucket has at that place; where one does, every literal of the bucket is
//! compared with the text. A bucket holding literals that begin with common bytes, or many
//! different ones (whose halves combine into yet more), stops the search nearly everywhere: with
//! the 100 patterns of `mo-bench scan` such verifications were most of the scanner's time.
//!
//! So: a literal is cut to start where its bytes are rare in console output ([`focus`]), and the
//! literals are spread over the buckets so that each bucket's halves combine into few common
//! bytes ([`ordered`]). Teddy gives a literal whose first bytes' low halves are new the bucket
//! `BUCKETS - 1 - (index % BUCKETS)`, and the bucket of the earlier one otherwise (`aho-corasick`
//! 1.1); [`ordered`] lays the literals out so that this puts them where they were meant to go.
//! That is only ever about speed: in any order the searcher finds the same literals.

/// How often `byte` occurs in console output, roughly (a share of all bytes; lowercase letters
/// as in English text, a fifth of that for capitals).
pub(super) fn frequency(byte: u8) -> f64 {
    const LETTERS: &[u8; 26] = b"etaoinsrhldcumfpgwybvkxjqz";
    const LETTER_SHARE: [f64; 26] = [
        0.080, 0.060, 0.055, 0.050, 0.050, 0.050, 0.050, 0.045, 0.025, 0.030, 0.030, 0.025, 0.020,
        0.020, 0.015, 0.015, 0.012, 0.010, 0.010, 0.010, 0.008, 0.006, 0.003, 0.001, 0.001, 0.001,
    ];
    let letter = |b: u8| {
        LETTERS
            .iter()
            .position(|&l| l == b)
            .and_then(|i| LETTER_SHARE.get(i).copied())
            .unwrap_or(0.001)
    };
    match byte {
        b' ' => 0.15,
        b'a'..=b'z' => letter(byte),
        b'A'..=b'Z' => letter(byte.to_ascii_lowercase()) / 5.0,
        b'0' => 0.03,
        b'1'..=b'9' => 0.015,
        b':' | b'.' => 0.02,
        b'\r' | b'\n' => 0.012,
        b'-' => 0.01,
        b'/' => 0.008,
        b'[' | b']' | b',' | b'_' => 0.005,
        b'(' | b')' | b'=' => 0.003,
        b'\'' | b'"' => 0.002,
        _ => 0.0005,
    }
}

/// Bytes of a literal the searcher looks at first.
const FINGERPRINT: usize = 4;

/// How likely console text is to hold `bytes` at a given place, by [`frequency`].
fn likelihood(bytes: impl IntoIterator<Item = f64>) -> f64 {
    bytes.into_iter().take(FINGERPRINT).product()
}

/// Where to start a literal so that its first bytes are rare (a piece of a necessary literal is
/// necessary too), keeping at least `keep` bytes of it: the start, among those, whose first
/// [`FINGERPRINT`] bytes are least likely, the earliest of equals. `frequencies` has one entry
/// per byte of the literal.
pub(super) fn focus(frequencies: &[f64], keep: usize) -> usize {
    let last = frequencies.len().saturating_sub(keep);
    let mut best = (f64::INFINITY, 0);
    for start in 0..=last {
        let rest = frequencies.get(start..).unwrap_or_default();
        let p = likelihood(rest.iter().copied());
        if p < best.0 {
            best = (p, start);
        }
    }
    best.1
}

/// The literals of one bucket, by the halves of their first bytes.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Per place of the fingerprint, which low and which high halves occur (bit sets).
    low: [u16; FINGERPRINT],
    high: [u16; FINGERPRINT],
    /// Literals in it.
    literals: usize,
    /// Groups (literals sharing their first bytes' low halves) it was given.
    groups: usize,
}

impl Bucket {
    /// This bucket with `bytes` (the first bytes of `count` literals) added.
    fn with(&self, bytes: &[u8], count: usize) -> Bucket {
        let mut next = self.clone();
        for (at, &b) in bytes.iter().take(FINGERPRINT).enumerate() {
            if let (Some(low), Some(high)) = (next.low.get_mut(at), next.high.get_mut(at)) {
                *low |= 1 << (b & 0xf);
                *high |= 1 << (b >> 4);
            }
        }
        next.literals += count;
        next.groups += 1;
        next
    }

    /// What it costs: how likely the bucket is to stop the search at a position of console
    /// text, times the literals then compared.
    fn cost(&self, width: usize) -> f64 {
        if self.literals == 0 {
            return 0.0;
        }
        let mut p = 1.0;
        for at in 0..width.min(FINGERPRINT) {
            let (low, high) = (
                self.low.get(at).copied().unwrap_or(0),
                self.high.get(at).copied().unwrap_or(0),
            );
            p *= (0..=255u8)
                .filter(|&b| low & (1 << (b & 0xf)) != 0 && high & (1 << (b >> 4)) != 0)
                .map(frequency)
                .sum::<f64>();
        }
        p * self.literals as f64
    }
}

/// The order (indices into `patterns`, at most 64 of them, none empty) that spreads them best
/// over Teddy's buckets (see the [module documentation](self)), possibly with some repeated to
/// move the next ones to the right bucket; or their own order where no better one was found.
pub(super) fn ordered(patterns: &[&[u8]]) -> Vec<usize> {
    let as_given = || (0..patterns.len()).collect::<Vec<usize>>();
    let buckets_for = |n: usize| if n > 32 { 16 } else { 8 };
    let nb = buckets_for(patterns.len());
    let width = patterns
        .iter()
        .map(|p| p.len())
        .min()
        .unwrap_or(0)
        .min(FINGERPRINT);
    if patterns.len() < 2 || width == 0 {
        return as_given();
    }
    // Literals whose first bytes have the same low halves share a bucket whatever the order.
    let key = |p: &[u8]| -> Vec<u8> { p.iter().take(width).map(|b| b & 0xf).collect() };
    let mut groups: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let k = key(p);
        match groups.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, members)) => members.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    // Most likely to stop the search first, each into the bucket it costs least in, at most
    // `room` groups a bucket (so that laying them out needs few or no repeats).
    let group_likelihood = |members: &[usize]| {
        members
            .iter()
            .filter_map(|&i| patterns.get(i))
            .map(|p| likelihood(p.iter().map(|&b| frequency(b))))
            .fold(0.0, f64::max)
    };
    groups.sort_by(|a, b| group_likelihood(&b.1).total_cmp(&group_likelihood(&a.1)));
    let room = groups.len().div_ceil(nb);
    let mut buckets = vec![Bucket::default(); nb];
    // Per bucket, its groups (each a first literal, then the others sharing its key).
    let mut placed: Vec<Vec<Vec<usize>>> = vec![Vec::new(); nb];
    for (_, members) in &groups {
        let Some(head) = members.first().and_then(|&i| patterns.get(i)) else {
            continue;
        };
        let mut best: Option<(f64, usize, Bucket)> = None;
        for (b, bucket) in buckets.iter().enumerate() {
            if bucket.groups >= room {
                continue;
            }
            let next = bucket.with(head, members.len());
            let added = next.cost(width) - bucket.cost(width);
            if best.as_ref().is_none_or(|(c, _, _)| added < *c) {
                best = Some((added, b, next));
            }
        }
        let Some((_, b, next)) = best else {
            return as_given();
        };
        if let (Some(slot), Some(list)) = (buckets.get_mut(b), placed.get_mut(b)) {
            *slot = next;
            list.push(members.clone());
        }
    }
    // Lay out: fullest buckets take Teddy's first bucket numbers, so that the last round
    // needs no repeats; a group's first literal goes where Teddy gives its bucket, the others
    // after it anywhere. Teddy's bucket `nb - 1 - (index % nb)` is `placed[order[index % nb]]`.
    let mut order: Vec<usize> = (0..nb).collect();
    order.sort_by_key(|&b| std::cmp::Reverse(placed.get(b).map_or(0, Vec::len)));
    let mut heads: Vec<std::collections::VecDeque<Vec<usize>>> = order
        .iter()
        .map(|&b| placed.get(b).cloned().unwrap_or_default().into())
        .collect();
    let mut out: Vec<usize> = Vec::with_capacity(64);
    let mut followers: Vec<usize> = Vec::new();
    let mut filler: Option<usize> = None;
    while heads.iter().any(|h| !h.is_empty()) {
        let slot = out.len() % nb;
        match heads.get_mut(slot).and_then(|h| h.pop_front()) {
            Some(group) => {
                let mut members = group.into_iter();
                if let Some(head) = members.next() {
                    filler.get_or_insert(head);
                    out.push(head);
                }
                followers.extend(members);
            }
            None => match followers.pop().or(filler) {
                // Any literal already placed goes to its own bucket: it only moves the next.
                Some(i) => out.push(i),
                None => return as_given(),
            },
        }
    }
    out.extend(followers);
    if out.len() > 64 || buckets_for(out.len()) != nb {
        return as_given();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Where Teddy (aho-corasick 1.1) puts each pattern: the bucket of each index.
    fn teddy_buckets(patterns: &[Vec<u8>]) -> Vec<usize> {
        let nb = if patterns.len() > 32 { 16 } else { 8 };
        let width = patterns.iter().map(Vec::len).min().unwrap().min(4);
        let mut seen: Vec<(Vec<u8>, usize)> = Vec::new();
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let k: Vec<u8> = p.iter().take(width).map(|b| b & 0xf).collect();
                match seen.iter().find(|(sk, _)| *sk == k) {
                    Some((_, b)) => *b,
                    None => {
                        let b = nb - 1 - i % nb;
                        seen.push((k, b));
                        b
                    }
                }
            })
            .collect()
    }

    #[test]
    fn a_literal_starts_where_its_bytes_are_rare() {
        let f = |s: &str| s.bytes().map(frequency).collect::<Vec<f64>>();
        // ": NIC Link is Down" is better searched for past its ": ", in its capitals.
        let at = focus(&f(": NIC Link is Down"), 8);
        assert!((2..=4).contains(&at), "{at}");
        // Never shorter than asked.
        assert_eq!(focus(&f(": ab"), 8), 0);
        assert!(focus(&f("   xyzq  "), 6) <= 3);
    }

    #[test]
    fn the_order_keeps_every_literal_and_spreads_them() {
        let lits: Vec<Vec<u8>> = [
            "login: ",
            "password: ",
            "seconds",
            "timing out command",
            "boot> ",
            "main process exited",
            "kernel panic",
            "out of memory",
            "exception emask",
            "grub rescue> ",
            "firmware error",
            "i/o error",
            "initramfs) ",
            "hang",
            "segfault at ",
            "hard resetting link",
            "reset adapter",
            "nic link is down",
            "edac ",
            "xfs (",
            "btrfs error",
            "btrfs critical",
            "ext4-fs error",
            "md/raid",
            "watchdog",
            "soft lockup",
            "hard lockup",
            "rcu_sched",
            "rcu_preempt",
            "possible syn flooding",
            "table full",
            "failed password",
            "authentication failure",
            "emergency mode",
            "inconsistency",
            "any key to stop",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let refs: Vec<&[u8]> = lits.iter().map(Vec::as_slice).collect();
        let out: Vec<Vec<u8>> = ordered(&refs).iter().map(|&i| lits[i].clone()).collect();
        // Nothing lost (repeats allowed), at most Teddy's 64.
        for l in &lits {
            assert!(out.contains(l), "{} lost", String::from_utf8_lossy(l));
        }
        assert!(out.len() <= 64 && out.len() > 32);
        // The buckets Teddy makes of that order are as planned: no bucket holds more than
        // its share of groups plus the repeats, and all 16 are used.
        let buckets = teddy_buckets(&out);
        let mut used = [0usize; 16];
        for b in &buckets {
            used[*b] += 1;
        }
        assert!(used.iter().all(|&n| n > 0), "{used:?}");
        // And the order is better than the given one by the cost it minimizes.
        let cost = |pats: &[Vec<u8>]| {
            let tb = teddy_buckets(pats);
            let mut bs = vec![Bucket::default(); 16];
            for (p, b) in pats.iter().zip(tb) {
                bs[b] = bs[b].with(p, 1);
            }
            bs.iter().map(|b| b.cost(4)).sum::<f64>()
        };
        assert!(
            cost(&out) < cost(&lits),
            "{} >= {}",
            cost(&out),
            cost(&lits)
        );
    }

    #[test]
    fn too_few_or_too_short_are_left_as_they_are() {
        assert_eq!(ordered(&[b"login: "]), [0]);
        assert_eq!(ordered(&[b"abcd", b""]), [0, 1]);
    }
}
