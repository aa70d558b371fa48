#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::error::Error;

const MS: Duration = Duration::from_millis(1);

fn patterns() -> Vec<Pattern> {
    vec![
        Pattern::new(
            "kernel-panic",
            r"Kernel panic - not syncing: (?P<why>.*)",
            Severity::Critical,
            "kernel panic on {device}: ${why}",
        ),
        Pattern::new(
            "login",
            r"login: $",
            Severity::Info,
            "{device}: login prompt",
        ),
        Pattern::new(
            "uboot",
            r"^=> $",
            Severity::Notice,
            "{device}: U-Boot prompt",
        ),
        Pattern::new("bootprompt", r"^boot> $", Severity::Notice, ""),
        Pattern::new("last-login", r"Last login: \w+", Severity::Info, ""),
        Pattern::new(
            "oom",
            r"Out of memory: Killed process (\d+) \((\w+)\)",
            Severity::Error,
            "OOM killed $2 (pid $1) [{severity}/{pattern}]",
        ),
        Pattern::new(
            "io-error",
            r"I/O error, dev (\w+)",
            Severity::Warning,
            "disk $1",
        ),
    ]
}

fn scanner() -> Scanner {
    Scanner::new("web1", &patterns()).unwrap()
}

/// (pattern, message, line) of each match.
fn summary(matches: &[Match]) -> Vec<(String, String, String)> {
    matches
        .iter()
        .map(|m| (m.pattern.clone(), m.message.clone(), m.line.clone()))
        .collect()
}

/// Feeds `input` in pieces of `step` bytes, then flushes; returns every match.
fn feed_in_steps(input: &[u8], step: usize) -> Vec<Match> {
    let mut s = scanner();
    let t0 = Instant::now();
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        out.extend(s.feed(piece, t0));
    }
    out.extend(s.flush());
    out
}

/// A table case: name, input, expected (pattern, message) pairs.
type Case = (
    &'static str,
    &'static [u8],
    &'static [(&'static str, &'static str)],
);

#[test]
fn complete_lines_table() {
    let cases: &[Case] = &[
        (
            "kernel panic with named capture",
            b"[  1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n",
            &[(
                "kernel-panic",
                "kernel panic on web1: VFS: Unable to mount root fs",
            )],
        ),
        (
            "numbered captures, severity and pattern name",
            b"Out of memory: Killed process 4242 (java) total-vm:1kB\n",
            &[("oom", "OOM killed java (pid 4242) [error/oom]")],
        ),
        (
            "empty message is the line",
            b"boot> \n",
            &[("bootprompt", "boot> ")],
        ),
        (
            "colour codes inside the line",
            b"\x1b[1;31mKernel\x1b[0m panic - \x1b[33mnot\x1b[m syncing: \x1b]0;title\x07x\r\n",
            &[("kernel-panic", "kernel panic on web1: x")],
        ),
        (
            "charset select and OSC with ST",
            b"\x1b(B\x1b)0I/O \x1b]8;;http://x\x1b\\error\x1b]8;;\x1b\\, dev sda\n",
            &[("io-error", "disk sda")],
        ),
        ("no match", b"all is well\nlogin is fine\n", &[]),
        (
            "two patterns on one line, in pattern order",
            b"I/O error, dev sdb; Kernel panic - not syncing: disk\n",
            &[
                ("kernel-panic", "kernel panic on web1: disk"),
                ("io-error", "disk sdb"),
            ],
        ),
        (
            "lone CR ends a line, NUL dropped",
            b"progress 10%\r\0I/O error, dev sdc\r\0more\n",
            &[("io-error", "disk sdc")],
        ),
        (
            "anchored prompt after a CR redraw",
            b"garbage\r=> \r\n",
            &[("uboot", "web1: U-Boot prompt")],
        ),
    ];
    for (name, input, want) in cases {
        let got: Vec<(String, String)> = feed_in_steps(input, input.len())
            .into_iter()
            .map(|m| (m.pattern, m.message))
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect();
        assert_eq!(got, want, "case: {name}");
    }
}

#[test]
fn split_feeds_give_the_same_matches() {
    let input: &[u8] = b"U-Boot 2024.01\r\n\x1b[0;32m=> \x1b[0m\r\n\
        [ 12.3] Kernel \x1b[1mpanic\x1b[0m - not syncing: Attempted to kill init!\r\n\
        \x1b]2;a long window title\x1b\\Out of memory: Killed process 77 (cc1plus)\n\
        blk_update_request: I/O error, dev nvme0n1, sector 0\r\r\n\
        boot> ";
    let whole = summary(&feed_in_steps(input, input.len()));
    assert_eq!(whole.len(), 5, "{whole:?}");
    for step in [1, 2, 3, 5, 7, 16, 64] {
        assert_eq!(summary(&feed_in_steps(input, step)), whole, "step {step}");
    }
}

#[test]
fn prompt_matches_only_after_quiet() {
    let mut s = scanner();
    let t0 = Instant::now();
    assert!(s.next_deadline().is_none());
    assert!(
        s.feed(b"Debian GNU/Linux 12 web1 ttyS0\r\n\r\nweb1 ", t0)
            .is_empty()
    );
    assert!(s.feed(b"login: ", t0 + 100 * MS).is_empty());
    assert_eq!(s.next_deadline(), Some(t0 + 400 * MS));
    assert!(s.poll_idle(t0 + 399 * MS).is_empty());
    let found = s.poll_idle(t0 + 400 * MS);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pattern, "login");
    assert_eq!(found[0].message, "web1: login prompt");
    assert_eq!(found[0].line, "web1 login: ");
    assert!(found[0].partial);
    assert_eq!(found[0].context, vec!["Debian GNU/Linux 12 web1 ttyS0"]);
    // The same partial line is never matched twice.
    assert!(s.next_deadline().is_none());
    assert!(s.poll_idle(t0 + 10_000 * MS).is_empty());
    // Completing it does not report `login` again.
    assert!(s.feed(b"\r\n", t0 + 11_000 * MS).is_empty());
}

#[test]
fn bytes_restart_the_quiet_period() {
    let mut s = scanner();
    let t0 = Instant::now();
    s.feed(b"=> ", t0);
    // An escape sequence alone (cursor blink) is still activity.
    s.feed(b"\x1b[?25h", t0 + 200 * MS);
    assert!(s.poll_idle(t0 + 300 * MS).is_empty());
    assert_eq!(s.next_deadline(), Some(t0 + 500 * MS));
    assert_eq!(s.poll_idle(t0 + 500 * MS)[0].pattern, "uboot");
}

#[test]
fn appended_partial_line_is_scanned_again_without_repeats() {
    let mut s = scanner();
    let t0 = Instant::now();
    s.feed(b"I/O error, dev sda", t0);
    let first = s.poll_idle(t0 + 300 * MS);
    assert_eq!(summary(&first)[0].1, "disk sda");
    s.feed(b" ... Kernel panic - not syncing: late", t0 + 400 * MS);
    assert_eq!(s.next_deadline(), Some(t0 + 700 * MS));
    let second = s.poll_idle(t0 + 700 * MS);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].pattern, "kernel-panic");
    // The line completes with more text: nothing new matches, nothing is repeated.
    assert!(s.feed(b" end\n", t0 + 800 * MS).is_empty());
    // The next line starts afresh: the same pattern reports again.
    let third = s.feed(b"I/O error, dev sdb\n", t0 + 900 * MS);
    assert_eq!(summary(&third)[0].1, "disk sdb");
    assert!(!third[0].partial);
}

#[test]
fn context_lines_are_the_last_n_non_empty_lines() {
    let patterns = [Pattern::new("hit", "HIT", Severity::Warning, "")];
    let set = PatternSet::new(&patterns).unwrap();
    for n in [0usize, 1, 3, 5] {
        let config = ScanConfig {
            context_lines: n,
            ..ScanConfig::default()
        };
        let mut s = Scanner::with_set("d", set.clone(), config);
        let found = s.feed(
            b"one\ntwo\r\n\r\n\x1b[0m\nthree\rfour\nfive\nHIT here\n",
            Instant::now(),
        );
        assert_eq!(found.len(), 1);
        let all = ["one", "two", "three", "four", "five"];
        assert_eq!(
            found[0].context,
            all[all.len() - n.min(5)..].to_vec(),
            "n={n}"
        );
        assert_eq!(found[0].line, "HIT here");
    }
}

#[test]
fn overlong_line_is_bounded_and_scanned_in_pieces() {
    let patterns = [Pattern::new("x", "NEEDLE", Severity::Info, "")];
    let config = ScanConfig {
        max_line: 100,
        ..ScanConfig::default()
    };
    let mut s = Scanner::with_set("d", PatternSet::new(&patterns).unwrap(), config);
    let t0 = Instant::now();
    let mut found = Vec::new();
    for i in 0..10_000 {
        // 5_000 * 7 is a multiple of 100: the needle falls inside one piece.
        let chunk: &[u8] = if i == 5_000 { b"NEEDLE" } else { b"abcdefg" };
        found.extend(s.feed(chunk, t0));
        assert!(s.partial_line().len() < 100);
    }
    assert!(
        s.lines.line.capacity() <= 200,
        "{}",
        s.lines.line.capacity()
    );
    assert!(s.lines.context.iter().all(|l| l.capacity() <= 200));
    assert_eq!(found.len(), 1);
    assert!(found[0].line.len() <= 100);
    assert!(found[0].line.contains("NEEDLE"));
    // max_line is raised to the minimum.
    let tiny = ScanConfig {
        max_line: 0,
        ..ScanConfig::default()
    };
    let mut s = Scanner::with_set("d", PatternSet::new(&patterns).unwrap(), tiny);
    s.feed(&[b'a'; 1000], t0);
    assert!(s.partial_line().len() < MIN_MAX_LINE);
}

#[test]
fn many_patterns_are_evaluated_together() {
    let mut many: Vec<Pattern> = (0..200)
        .map(|i| {
            Pattern::new(
                format!("p{i}"),
                format!(r"\bcode{i}\b=(\d+)"),
                Severity::ALL[i % 5],
                format!("code {i} is $1"),
            )
        })
        .collect();
    many.push(Pattern::new("any", r"code\d+", Severity::Info, "any"));
    let mut s = Scanner::new("d", &many).unwrap();
    let found = s.feed(b"code7=1 code150=22 code199=3 code200=4\n", Instant::now());
    let got: Vec<(&str, &str, Severity)> = found
        .iter()
        .map(|m| (m.pattern.as_str(), m.message.as_str(), m.severity))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p7", "code 7 is 1", Severity::Warning),
            ("p150", "code 150 is 22", Severity::Info),
            ("p199", "code 199 is 3", Severity::Critical),
            ("any", "any", Severity::Info),
        ]
    );
}

#[test]
fn bad_patterns_are_refused_naming_the_pattern() {
    let cases: &[(Pattern, &[&str])] = &[
        (
            Pattern::new("broken-regex", r"panic (", Severity::Error, ""),
            &["broken-regex", "regex `panic (`"],
        ),
        (
            Pattern::new("no-group", r"panic", Severity::Error, "x $1"),
            &["no-group", "group $1 does not exist"],
        ),
        (
            Pattern::new("no-name", r"(?P<a>x)", Severity::Error, "${b}"),
            &["no-name", "no group named `b`"],
        ),
        (
            Pattern::new("open-brace", r"(x)", Severity::Error, "${1"),
            &["open-brace", "closing"],
        ),
        (
            Pattern::new("dollar", r"x", Severity::Error, "costs $ 5"),
            &["dollar", "must be followed"],
        ),
        (
            Pattern::new("", r"x", Severity::Error, ""),
            &["has no name"],
        ),
    ];
    for (pattern, needles) in cases {
        let set = [
            Pattern::new("good", "ok", Severity::Info, ""),
            pattern.clone(),
        ];
        let err = Scanner::new("d", &set).unwrap_err();
        assert!(matches!(err, Error::BadSpec { .. }), "{err:?}");
        let text = err.to_string();
        for needle in *needles {
            assert!(text.contains(needle), "`{text}` lacks `{needle}`");
        }
    }
    let dup = [
        Pattern::new("a", "x", Severity::Info, ""),
        Pattern::new("a", "y", Severity::Info, ""),
    ];
    assert!(
        PatternSet::new(&dup)
            .unwrap_err()
            .to_string()
            .contains("same name")
    );
}

#[test]
fn template_escapes_and_optional_groups() {
    let patterns = [Pattern::new(
        "t",
        r"price (\d+)(?: (?P<cur>[A-Z]+))?",
        Severity::Info,
        "$$$1 ${cur}|$cur|${1}x {unknown} {device}",
    )];
    let mut s = Scanner::new("dev-1", &patterns).unwrap();
    let t0 = Instant::now();
    assert_eq!(
        s.feed(b"price 5 EUR\n", t0)[0].message,
        "$5 EUR|EUR|5x {unknown} dev-1"
    );
    assert_eq!(
        s.feed(b"price 7\n", t0)[0].message,
        "$7 ||7x {unknown} dev-1"
    );
}

#[test]
fn severity_parses_and_displays() {
    for severity in Severity::ALL {
        assert_eq!(severity.to_string().parse::<Severity>().unwrap(), severity);
        assert_eq!(
            severity
                .to_string()
                .to_uppercase()
                .parse::<Severity>()
                .unwrap(),
            severity
        );
    }
    assert_eq!("warn".parse::<Severity>().unwrap(), Severity::Warning);
    assert_eq!("crit".parse::<Severity>().unwrap(), Severity::Critical);
    assert!(Severity::Info < Severity::Critical);
    let err = "fatal".parse::<Severity>().unwrap_err().to_string();
    assert!(err.contains("fatal") && err.contains("critical"), "{err}");
}

#[test]
fn stripper_table() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"plain", b"plain"),
        (b"\x1b[31mred\x1b[0m", b"red"),
        (b"a\x1b[?1049hb", b"ab"),
        (b"\x1b]0;title\x07text", b"text"),
        (b"\x1b]0;title\x1b\\text", b"text"),
        (b"\x1bPqdata\x1b\\x", b"x"),
        (b"\x1b(B\x1b)0\x1b#8ok", b"ok"),
        (b"\x1b7\x1bMok\x1b8", b"ok"),
        (b"tab\there\x07\x08\x00\x7f", b"tab\there"),
        (b"a\r\nb", b"a\n\nb"),
        // A line end aborts a CSI and still ends the line.
        (b"x\x1b[12\ny", b"x\ny"),
        // CAN aborts.
        (b"\x1b[1\x18z", b"z"),
        // UTF-8 passes through.
        ("é→ok".as_bytes(), "é→ok".as_bytes()),
    ];
    for (input, want) in cases {
        assert_eq!(AnsiStripper::new().strip(input), *want, "{input:?}");
        let mut stripper = AnsiStripper::new();
        let mut bytewise = Vec::new();
        for b in input.iter() {
            bytewise.extend(stripper.strip(std::slice::from_ref(b)));
        }
        assert_eq!(bytewise, *want, "bytewise {input:?}");
    }
}

#[test]
fn unterminated_sequences_are_bounded() {
    let mut stripper = AnsiStripper::new();
    let mut input = b"\x1b]0;".to_vec();
    input.extend(std::iter::repeat_n(b'a', MAX_STRING_LEN + 10));
    let out = stripper.strip(&input);
    assert!(!stripper.in_sequence());
    assert!(!out.is_empty() && out.len() <= 20, "{}", out.len());
    let mut input = b"\x1b[".to_vec();
    input.extend(std::iter::repeat_n(b'1', MAX_CSI_LEN + 5));
    let out = AnsiStripper::new().strip(&input);
    assert!(!out.is_empty() && out.len() <= 5, "{}", out.len());
}

#[test]
fn flush_ends_the_partial_line() {
    let mut s = scanner();
    let t0 = Instant::now();
    s.feed(b"Kernel panic - not syncing: eof\x1b[", t0);
    let found = s.flush();
    assert_eq!(found[0].pattern, "kernel-panic");
    assert!(s.partial_line().is_empty());
    assert!(s.next_deadline().is_none());
    // The escape in progress was forgotten.
    assert_eq!(
        s.feed(b"1mI/O error, dev sdz\n", t0)[0].line,
        "1mI/O error, dev sdz"
    );
}

#[test]
fn random_input_never_panics_and_stays_bounded() {
    let mut rng = StdRng::seed_from_u64(0x5ca7_7e55);
    let specials = [
        0x1b, b'[', b']', b'(', b'\\', 0x07, b'\r', b'\n', 0x00, 0x18, b'P', b';', 0xc3, b'$',
    ];
    let config = ScanConfig {
        quiet: 5 * MS,
        context_lines: 4,
        max_line: 128,
    };
    let mut patterns = patterns();
    patterns.push(Pattern::new("dollar", r"\$", Severity::Info, "$0"));
    let set = PatternSet::new(&patterns).unwrap();
    let mut s = Scanner::with_set("fuzz", set, config);
    let mut now = Instant::now();
    let mut matched = 0usize;
    for _ in 0..5000 {
        let len = rng.random_range(0..48);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.random_bool(0.3) {
                    specials[rng.random_range(0..specials.len())]
                } else if rng.random_bool(0.5) {
                    rng.random_range(b' '..=b'~')
                } else {
                    rng.random()
                }
            })
            .collect();
        now += Duration::from_millis(rng.random_range(0..10));
        for m in s.feed(&bytes, now).into_iter().chain(s.poll_idle(now)) {
            assert!(m.line.len() <= 128 * 3);
            assert!(m.context.len() <= 4);
            matched += 1;
        }
        assert!(s.partial_line().len() < 128);
        if let Some(deadline) = s.next_deadline() {
            assert!(deadline > now);
        }
    }
    matched += s.flush().len();
    assert!(matched > 0);
}

#[test]
fn escape_sequences_and_line_ends_split_across_chunks() {
    // Every split of each input into two feeds strips and matches as the input whole does:
    // sequences, CR LF pairs and literals cut anywhere.
    let inputs: &[&[u8]] = &[
        b"Kernel \x1b[1;31mpanic\x1b[0m - not syncing: split\r\nnext\r\n",
        b"x\x1b]0;title\x1b\\Out of memory: Killed process 9 (a)\r\n",
        b"plain\r\nI/O error, dev sda\r\rweb1 login: \r\n=> \n",
        b"\x1b[12\nI/O error, dev sdb\r\n\x1b(BOut of memory: Killed process 1 (x)\n",
    ];
    for input in inputs {
        let whole = feed_in_steps(input, input.len());
        assert!(!whole.is_empty(), "{input:?}");
        for cut in 0..=input.len() {
            let mut s = scanner();
            let t0 = Instant::now();
            let mut got = s.feed(&input[..cut], t0);
            got.extend(s.feed(&input[cut..], t0));
            got.extend(s.flush());
            assert_eq!(got, whole, "{input:?} cut at {cut}");
        }
    }
}

#[test]
fn stripper_runs_stop_at_every_control_byte() {
    // Long runs of text with one control byte at each position: the fast text scan must stop
    // exactly there.
    for at in 0..40 {
        for control in [0x00u8, 0x07, 0x08, 0x1b, b'\r', b'\n', 0x7f, 0x1f] {
            let mut input = vec![b'a'; 40];
            input[at] = control;
            let want: Vec<u8> = {
                let mut bytewise = AnsiStripper::new();
                input
                    .iter()
                    .flat_map(|b| bytewise.strip(std::slice::from_ref(b)))
                    .collect()
            };
            assert_eq!(
                AnsiStripper::new().strip(&input),
                want,
                "{control:#x} at {at}"
            );
        }
    }
}

/// `strip_into` (which writes words as whole blocks into room it makes) appends exactly what
/// the stripper's pieces are, for random output fed in random pieces to a buffer that already
/// holds something.
#[test]
fn strip_into_appends_exactly_the_pieces() {
    let mut rng = StdRng::seed_from_u64(17);
    let alphabet: &[u8] = b"ab c;[m0123456789\x1b\x1b\x1b\r\n\x07\x00]\\P";
    for round in 0..2000 {
        let len = rng.random_range(0..300);
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let (mut fast, mut slow) = (AnsiStripper::new(), AnsiStripper::new());
        let mut got = b"before".to_vec();
        let mut want = got.clone();
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let (piece, more) = rest.split_at(rng.random_range(1..=rest.len()));
            rest = more;
            fast.strip_into(piece, &mut got);
            slow.feed(piece, |p| match p {
                Piece::Text(t) => want.extend_from_slice(t),
                Piece::LineEnd => want.push(b'\n'),
            });
        }
        assert_eq!(got, want, "round {round}: {input:?}");
    }
}

/// Random console output: lines from a vocabulary (some matching), colours, CR, LF, CR LF,
/// control bytes, long lines.
fn random_output(rng: &mut StdRng, lines: usize) -> Vec<u8> {
    let words: &[&[u8]] = &[
        b"Kernel panic - not syncing: ",
        b"Out of memory: Killed process 42 (java)",
        b"I/O error, dev sda",
        b"web1 login: ",
        b"web1 login: root",
        b"Last login: Sat",
        b"=> ",
        b"boot> ",
        b"Ker\x1b[1mnel\x1b[0m panic - not syncing: in a colour",
        b"\x1b[31mI/O\x1b[0m error, dev sdb",
        b"Out of mem\x1b]0;title\x1b\\ory: Killed process 7 (sh)",
        b"123456789012",
        b"ordinary text",
        b"\x1b[0;32m",
        b"\x1b[0m",
        b"\x1b]0;t\x07",
        b"\t",
        b"\x07",
        b" ",
    ];
    let ends: &[&[u8]] = &[b"\r\n", b"\n", b"\r", b"\r\r\n", b""];
    let mut out = Vec::new();
    for _ in 0..lines {
        let n = if rng.random_bool(0.02) {
            40
        } else {
            rng.random_range(0..5)
        };
        for _ in 0..n {
            out.extend_from_slice(words[rng.random_range(0..words.len())]);
        }
        out.extend_from_slice(ends[rng.random_range(0..ends.len())]);
    }
    out
}

#[test]
fn plain_chunks_and_the_prefilter_match_as_every_line_scanned_would() {
    // `digits` has no literal, so a set with it has no prefilter and scans every line the slow
    // way; without it the prefilter passes lines over. Both must report the same matches, with
    // the same context, however the output is split.
    let config = ScanConfig {
        quiet: 5 * MS,
        context_lines: 3,
        max_line: 64,
    };
    let filtered = PatternSet::new(&patterns()).unwrap();
    assert!(filtered.prefilter().is_some());
    let mut all = patterns();
    all.push(Pattern::new("digits", r"^\d{12}$", Severity::Info, ""));
    let unfiltered = PatternSet::new(&all).unwrap();
    assert!(unfiltered.prefilter().is_none());
    let mut rng = StdRng::seed_from_u64(0xf11e_7e2d);
    for round in 0..40 {
        let output = random_output(&mut rng, 300);
        let mut a = Scanner::with_set("web1", filtered.clone(), config.clone());
        let mut b = Scanner::with_set("web1", unfiltered.clone(), config.clone());
        let mut now = Instant::now();
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let mut rest = &output[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(700));
            let (piece, more) = rest.split_at(n);
            rest = more;
            got.extend(a.feed(piece, now));
            want.extend(b.feed(piece, now));
            now += Duration::from_millis(rng.random_range(0..8));
            got.extend(a.poll_idle(now));
            want.extend(b.poll_idle(now));
            assert_eq!(a.partial_line(), b.partial_line(), "round {round}");
        }
        got.extend(a.flush());
        want.extend(b.flush());
        want.retain(|m| m.pattern != "digits");
        assert!(!want.is_empty(), "round {round}");
        assert_eq!(got, want, "round {round}");
    }
}

#[test]
fn csi_sequences_at_and_past_their_bound_strip_as_bytewise() {
    for params in [
        0,
        1,
        MAX_CSI_LEN - 1,
        MAX_CSI_LEN,
        MAX_CSI_LEN + 1,
        MAX_CSI_LEN + 5,
    ] {
        for last in [b'm', b'~', b'x', b'\n', 0x1b, 0x18] {
            let mut input = b"a\x1b[".to_vec();
            input.extend(std::iter::repeat_n(b'1', params));
            input.push(last);
            input.extend_from_slice(b"z\x1b[");
            let mut bytewise = AnsiStripper::new();
            let want: Vec<u8> = input
                .iter()
                .flat_map(|b| bytewise.strip(std::slice::from_ref(b)))
                .collect();
            let mut whole = AnsiStripper::new();
            assert_eq!(whole.strip(&input), want, "{params} params then {last:#x}");
            assert_eq!(whole.in_sequence(), bytewise.in_sequence());
        }
    }
}

#[test]
fn case_sensitive_and_insensitive_patterns_match_through_the_prefilter_cut_anywhere() {
    // The prefilter searches the text as it is: literals of case-sensitive patterns as written,
    // those of case-insensitive ones in any case. With escapes, CR and LF in between and the
    // output cut anywhere, it must find what scanning every line finds.
    let mixed = vec![
        Pattern::new(
            "fan",
            r"(?i)fan \d+ (failure|speed low)",
            Severity::Error,
            "",
        ),
        Pattern::new("panic", r"Kernel panic", Severity::Critical, ""),
        Pattern::new(
            "post",
            r"(?i)post error|memory test fail",
            Severity::Error,
            "",
        ),
        Pattern::new("fail", r"\bFAIL\b", Severity::Warning, ""),
    ];
    let filtered = PatternSet::new(&mixed).unwrap();
    assert!(filtered.prefilter().is_some());
    let mut all = mixed.clone();
    all.push(Pattern::new("digits", r"^\d{12}$", Severity::Info, ""));
    let unfiltered = PatternSet::new(&all).unwrap();
    assert!(unfiltered.prefilter().is_none());
    let input: &[u8] = b"FAN 1 FAILURE\r\nfan 2 \x1b[1mSpEeD\x1b[0m low\r\nkernel panic\n\
        KERNEL PANIC\rKernel panic\r\nPOST ERROR and fail\r\nmemory test fail\n\
        MEMORY TEST FAIL\r\nFaIl FAIL\r\nFaiFAILURE fan 3 fAILURE\nKernel \x1b[31mpanic\x1b[0m\n\
        fan 4 failur\r\n";
    let run = |set: &PatternSet, cuts: &[usize]| {
        let mut s = Scanner::with_set("web1", set.clone(), ScanConfig::default());
        let t0 = Instant::now();
        let mut got = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([input.len()].iter()) {
            got.extend(s.feed(&input[from..cut], t0));
            from = cut;
        }
        got.extend(s.flush());
        got.iter()
            .map(|m| (m.pattern.clone(), m.line.clone()))
            .collect::<Vec<_>>()
    };
    let want = run(&unfiltered, &[]);
    let names: Vec<&str> = want.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "fan", "fan", "panic", "post", "post", "post", "fail", "fail", "fan", "panic"
        ],
        "{want:?}"
    );
    assert_eq!(run(&filtered, &[]), want);
    for cut in 0..=input.len() {
        assert_eq!(run(&filtered, &[cut]), want, "cut at {cut}");
        assert_eq!(run(&unfiltered, &[cut]), want, "cut at {cut}");
    }
    for step in 1..8 {
        let cuts: Vec<usize> = (step..input.len()).step_by(step).collect();
        assert_eq!(run(&filtered, &cuts), want, "steps of {step}");
    }
}

#[test]
fn chunks_match_as_the_whole_output_stripped_and_split_into_lines_does() {
    // An oracle apart from the scanner: strip the whole output at once, split it into lines
    // (overlong ones into pieces) and match each against the set. Fed in random pieces — cut
    // inside literals, escape sequences and CR LF pairs — the scanner must find the same.
    let config = ScanConfig {
        quiet: 5 * MS,
        context_lines: 3,
        max_line: 64,
    };
    let set = PatternSet::new(&patterns()).unwrap();
    assert!(set.prefilter().is_some());
    let mut rng = StdRng::seed_from_u64(0x0c1e_5a11);
    for round in 0..40 {
        let output = random_output(&mut rng, 300);
        let stripped = AnsiStripper::new().strip(&output);
        let mut want = Vec::new();
        for line in stripped.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            for piece in line.chunks(config.max_line) {
                for index in set.set().matches(piece).iter() {
                    let name = set.get(index).unwrap().name.clone();
                    want.push((name, String::from_utf8_lossy(piece).into_owned()));
                }
            }
        }
        assert!(!want.is_empty(), "round {round}");
        let mut scanner = Scanner::with_set("web1", set.clone(), config.clone());
        let mut got = Vec::new();
        let mut rest = &output[..];
        let now = Instant::now();
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(300));
            let (piece, more) = rest.split_at(n);
            rest = more;
            got.extend(scanner.feed(piece, now));
        }
        got.extend(scanner.flush());
        let got: Vec<(String, String)> = got.into_iter().map(|m| (m.pattern, m.line)).collect();
        assert_eq!(got, want, "round {round}");
    }
}
