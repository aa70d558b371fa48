#![allow(clippy::unwrap_used)]

use super::*;
use crate::log::tests::{SEC, T0};

/// Render `(time offset in ms, kind, user, bytes)` records and flush partial lines.
fn render(records: &[(u64, RecordKind, &str, &[u8])]) -> String {
    let mut r = Renderer::new();
    let mut out = Vec::new();
    for (ms, kind, user, bytes) in records {
        r.render_parts(T0 + ms * 1_000_000, *kind, user, bytes, &mut out)
            .unwrap();
    }
    r.flush_partial(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

const O: RecordKind = RecordKind::Output;
const I: RecordKind = RecordKind::Input;

#[test]
fn output_lines_carry_the_time_of_their_first_byte() {
    let text = render(&[
        (0, O, "", b"Booting kernel\r\nlog"),
        (1500, O, "", b"in: "),
        (2000, O, "", b"\r\n\r\nok\n"),
    ]);
    assert_eq!(
        text,
        "2026-11-22T10:00:00.000Z Booting kernel\n\
         2026-11-22T10:00:00.000Z login: \n\
         2026-11-22T10:00:02.000Z\n\
         2026-11-22T10:00:02.000Z ok\n"
    );
}

#[test]
fn ansi_sequences_are_removed_and_cr_overwrites() {
    let text = render(&[(
        0,
        O,
        "",
        b"\x1b[1;32mgreen\x1b[0m \x1b]0;title\x07done\r\n\
          10%\r50%\r100%\r\n\
          abc\x08\x08X\r\n\
          old text\r\x1b[Knew\r\n\
          bell\x07 nul\0 ctl\x03 \xc3\xa9t\xc3\xa9\r\0x\r\n",
    )]);
    let lines: Vec<&str> = text.lines().map(|l| &l[25..]).collect();
    assert_eq!(
        lines,
        vec!["green done", "100%", "aXc", "new", "xell nul ctl^C été"]
    );
}

#[test]
fn overwriting_multibyte_characters_keeps_utf8_whole() {
    let text = render(&[(0, O, "", "ééé\rab\n".as_bytes())]);
    assert!(text.ends_with(" abé\n"), "{text}");
    let text = render(&[(0, O, "", "abc\r€\n".as_bytes())]);
    assert!(text.ends_with(" €bc\n"), "{text}");
}

#[test]
fn input_is_shown_per_user_with_edits_applied() {
    let text = render(&[
        (0, I, "alice", b"l"),
        (100, I, "bob", b"w"),
        (200, I, "alice", b"s -k\x7fl"),
        (300, I, "alice", b"\r"),
        (400, I, "bob", b"ho\r\n"),
        (500, I, "alice", b"\t\x03\x1b[A"),
        (600, I, "", b"\r"),
    ]);
    assert_eq!(
        text,
        "2026-11-22T10:00:00.000Z <alice> ls -l\n\
         2026-11-22T10:00:00.100Z <bob> who\n\
         2026-11-22T10:00:00.600Z <?>\n\
         2026-11-22T10:00:00.500Z <alice> ^I^C^[[A\n"
    );
}

#[test]
fn notices_and_notes_are_labelled() {
    let text = render(&[
        (0, RecordKind::Notice, "", b"link down: connection refused"),
        (
            1,
            RecordKind::Note,
            "alice",
            b"before the upgrade\nline two\r\n",
        ),
        (2, RecordKind::Mark, "bob", b""),
        (3, RecordKind::Power, "carol", b"cycle \x1b[31m"),
        (4, RecordKind::Control, "alice", b"break"),
    ]);
    assert_eq!(
        text,
        "2026-11-22T10:00:00.000Z [notice] link down: connection refused\n\
         2026-11-22T10:00:00.001Z [note alice] before the upgrade\n\
         2026-11-22T10:00:00.001Z [note alice] line two\n\
         2026-11-22T10:00:00.002Z [mark bob]\n\
         2026-11-22T10:00:00.003Z [power carol] cycle ^[[31m\n\
         2026-11-22T10:00:00.004Z [control alice] break\n"
    );
}

#[test]
fn very_long_lines_are_split() {
    let long = vec![b'x'; MAX_LINE * 2 + 10];
    let text = render(&[(0, O, "", &long)]);
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xbadc0de);
    let mut r = Renderer::new();
    let mut out = Vec::new();
    for i in 0..3000u64 {
        let len = rng.random_range(0..64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.random_bool(0.3) {
                    *[0x1b, b'[', b'\r', b'\n', 0x08, 0x7f, 0xc3, b']', 0x07]
                        .get(rng.random_range(0..9))
                        .unwrap()
                } else {
                    rng.random()
                }
            })
            .collect();
        let kind = RecordKind::ALL[rng.random_range(0..RecordKind::ALL.len())];
        r.render_parts(T0 + i * SEC, kind, "u", &bytes, &mut out)
            .unwrap();
    }
    r.flush_partial(&mut out).unwrap();
    assert!(!out.is_empty());
}

#[test]
fn cached_timestamps_match_full_formatting_and_long_runs_split() {
    let mut r = Renderer::new();
    let mut out = Vec::new();
    let times = [0, 7, 999, 1000, 1001, 61_005, 3_600_000 * 24 + 42];
    for ms in times {
        r.render_parts(T0 + ms * 1_000_000 + 123, O, "", b"x\n", &mut out)
            .unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    let want: Vec<String> = times
        .iter()
        .map(|ms| {
            format!(
                "{} x",
                crate::log::format_timestamp(T0 + ms * 1_000_000 + 123)
            )
        })
        .collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
    // A line longer than the limit is cut at exactly MAX_LINE bytes by the fast path too.
    let long = vec![b'a'; MAX_LINE + 10];
    let got = render(&[(0, O, "", &long), (1, O, "", b"\r\nb\n")]);
    let lens: Vec<usize> = got.lines().map(|l| l.len() - 25).collect();
    assert_eq!(lens, [MAX_LINE, 10, 1]);
    let _ = SEC;
}

#[test]
fn plain_run_agrees_with_the_byte_test_at_every_position() {
    // Every byte value at every offset of a 20-byte window of plain text, so each word position
    // and the tail are covered.
    for b in 0..=255u8 {
        for at in 0..20 {
            let mut s = vec![b'a'; 20];
            s[at] = b;
            if let Some(x) = s.get_mut(at + 1) {
                *x = 0xc3; // a UTF-8 lead byte is plain
            }
            let expected = s.iter().position(|&c| !is_plain(c)).unwrap_or(s.len());
            assert_eq!(plain_run(&s), expected, "byte {b:#04x} at {at}");
        }
    }
    assert_eq!(plain_run(b""), 0);
}

#[test]
fn a_gap_ends_the_lines_it_broke() {
    let text = render(&[
        (0, O, "", b"line 1\nline 2 par"),
        (
            500,
            RecordKind::Gap,
            "",
            b"gap: 3 records (90 bytes) were not recorded",
        ),
        (1000, O, "", b"of line 5\nline 6\n"),
    ]);
    assert_eq!(
        text,
        "2026-11-22T10:00:00.000Z line 1\n\
         2026-11-22T10:00:00.000Z line 2 par\n\
         2026-11-22T10:00:00.500Z [gap] gap: 3 records (90 bytes) were not recorded\n\
         2026-11-22T10:00:01.000Z of line 5\n\
         2026-11-22T10:00:01.000Z line 6\n"
    );
}
