#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn feed(bytes: &[u8]) -> Vec<Input> {
    EscapeParser::default().feed(bytes)
}

fn cmd(command: Command) -> Input {
    Input::Command(command)
}

fn data(bytes: &[u8]) -> Input {
    Input::Data(bytes.to_vec())
}

fn echo(bytes: &[u8]) -> Input {
    Input::Echo(bytes.to_vec())
}

/// Join adjacent data and adjacent echo, as one `feed` of the whole stream would.
fn normalize(items: impl IntoIterator<Item = Input>) -> Vec<Input> {
    let mut out: Vec<Input> = Vec::new();
    for item in items {
        match (out.last_mut(), item) {
            (Some(Input::Data(a)), Input::Data(b)) => a.extend_from_slice(&b),
            (Some(Input::Echo(a)), Input::Echo(b)) => a.extend_from_slice(&b),
            (_, item) => out.push(item),
        }
    }
    out
}

#[test]
fn lib_example_disconnects_after_data() {
    assert_eq!(
        feed(b"ls\r\x05c."),
        vec![data(b"ls\r"), cmd(Command::Disconnect)]
    );
}

#[test]
fn every_single_key_command() {
    let cases = [
        (b'.', Command::Disconnect),
        (b'a', Command::Attach),
        (b's', Command::Spy),
        (b'f', Command::Force),
        (b'j', Command::Join),
        (b'w', Command::Who),
        (b'r', Command::Replay(DEFAULT_REPLAY_LINES)),
        (b'o', Command::Reconnect),
        (b'i', Command::Info),
        (b'?', Command::Help),
        (b'h', Command::Help),
    ];
    for (key, command) in cases {
        let mut parser = EscapeParser::default();
        let out = parser.feed(&[b'x', 0x05, b'c', key, b'y']);
        assert_eq!(out, vec![data(b"x"), cmd(command), data(b"y")], "key {key}");
        assert!(!parser.pending());
    }
    assert_eq!(DEFAULT_REPLAY_LINES, 20);
}

#[test]
fn plain_data_passes_whole() {
    let all: Vec<u8> = (0..=255u8).filter(|&b| b != 0x05).collect();
    assert_eq!(feed(&all), vec![Input::Data(all.clone())]);
    assert_eq!(feed(b""), Vec::<Input>::new());
}

#[test]
fn escape_is_recognised_mid_line() {
    assert_eq!(
        feed(b"echo hi\x05cwmore"),
        vec![data(b"echo hi"), cmd(Command::Who), data(b"more")]
    );
}

#[test]
fn first_byte_without_second_passes_through() {
    assert_eq!(feed(b"\x05x"), vec![data(b"\x05x")]);
    assert_eq!(feed(b"a\x05\rb"), vec![data(b"a\x05\rb")]);
    // The byte after a lone first byte is read afresh, so a doubled first byte still escapes.
    assert_eq!(
        feed(b"\x05\x05c."),
        vec![data(b"\x05"), cmd(Command::Disconnect)]
    );
    assert_eq!(feed(b"\x05\x05\x05x"), vec![data(b"\x05\x05\x05x")]);
}

#[test]
fn first_byte_at_end_is_held_until_the_next_feed() {
    let mut parser = EscapeParser::default();
    assert_eq!(parser.feed(b"ab\x05"), vec![data(b"ab")]);
    assert!(parser.pending());
    assert_eq!(parser.feed(b"y"), vec![data(b"\x05y")]);
    assert!(!parser.pending());
    assert_eq!(parser.feed(b"\x05"), vec![]);
    assert_eq!(parser.feed(b"c"), vec![]);
    assert!(parser.pending());
    assert_eq!(parser.feed(b"s"), vec![cmd(Command::Spy)]);
}

#[test]
fn prefix_then_first_byte_sends_the_prefix_literally() {
    let mut parser = EscapeParser::default();
    assert_eq!(parser.feed(b"\x05c\x05"), vec![data(b"\x05c")]);
    assert!(!parser.pending());
    assert_eq!(parser.feed(b"\x05c\x05."), vec![data(b"\x05c.")]);
}

#[test]
fn enter_esc_and_ctrl_c_abandon_the_escape() {
    for key in [b'\r', b'\n', 0x1b, 0x03] {
        let mut parser = EscapeParser::default();
        assert_eq!(
            parser.feed(&[0x05, b'c', key, b'l', b's']),
            vec![data(b"ls")],
            "key {key}"
        );
        assert!(!parser.pending());
    }
}

#[test]
fn unknown_command_is_an_error_with_help_hint() {
    assert_eq!(
        feed(b"\x05cxls"),
        vec![
            Input::Error("unknown escape command 'x' — Ctrl-E c ? for help".into()),
            data(b"ls")
        ]
    );
    assert_eq!(
        feed(b"\x05c\x18"),
        vec![Input::Error(
            "unknown escape command Ctrl-X — Ctrl-E c ? for help".into()
        )]
    );
    assert_eq!(
        feed(b"\x05c "),
        vec![Input::Error(
            "unknown escape command Space — Ctrl-E c ? for help".into()
        )]
    );
    assert_eq!(
        feed(b"\x05c\xff"),
        vec![Input::Error(
            "unknown escape command \\377 — Ctrl-E c ? for help".into()
        )]
    );
    let mut parser = EscapeParser::new(EscapeConfig::parse("^]q").unwrap());
    assert_eq!(
        parser.feed(b"\x1dqZ"),
        vec![Input::Error(
            "unknown escape command 'Z' — Ctrl-] q ? for help".into()
        )]
    );
}

#[test]
fn replay_prompt_reads_a_number() {
    assert_eq!(
        feed(b"\x05cp42\r"),
        vec![
            echo(b"[replay how many lines: 42]\r\n"),
            cmd(Command::Replay(42))
        ]
    );
    assert_eq!(
        feed(b"\x05cp\rx"),
        vec![
            echo(b"[replay how many lines: ]\r\n"),
            cmd(Command::Replay(DEFAULT_PLAYBACK_LINES)),
            data(b"x")
        ]
    );
    assert_eq!(DEFAULT_PLAYBACK_LINES, 60);
    assert_eq!(feed(b"\x05cp7\n")[1], cmd(Command::Replay(7)));
    assert_eq!(feed(b"\x05cp00042\r")[1], cmd(Command::Replay(42)));
    assert_eq!(feed(b"\x05cp0\r")[1], cmd(Command::Replay(0)));
}

#[test]
fn replay_prompt_edits_and_caps() {
    assert_eq!(
        feed(b"\x05cp12\x7f3\r"),
        vec![
            echo(b"[replay how many lines: 12\x08 \x083]\r\n"),
            cmd(Command::Replay(13))
        ]
    );
    assert_eq!(feed(b"\x05cp98\x08\x08\x085\r")[1], cmd(Command::Replay(5)));
    assert_eq!(
        feed(b"\x05cp12\x159\r"),
        vec![
            echo(b"[replay how many lines: 12\x08 \x08\x08 \x089]\r\n"),
            cmd(Command::Replay(9))
        ]
    );
    // Non-digits ring the bell and change nothing.
    assert_eq!(
        feed(b"\x05cp4x2\r"),
        vec![
            echo(b"[replay how many lines: 4\x072]\r\n"),
            cmd(Command::Replay(42))
        ]
    );
    assert_eq!(
        feed(b"\x05cp10000\r")[1],
        cmd(Command::Replay(MAX_REPLAY_LINES))
    );
    assert_eq!(feed(b"\x05cp10001\r")[1], cmd(Command::Replay(1000)));
    assert_eq!(feed(b"\x05cp99999\r")[1], cmd(Command::Replay(9999)));
    assert_eq!(feed(b"\x05cp000012\r")[1], cmd(Command::Replay(1)));
    assert_eq!(
        feed(b"\x05cp999999999999999999999\r")[1],
        cmd(Command::Replay(9999))
    );
}

#[test]
fn replay_prompt_cancels() {
    for key in [0x1b, 0x03] {
        let mut parser = EscapeParser::default();
        let out = parser.feed(&[0x05, b'c', b'p', b'4', key, b'z']);
        assert_eq!(
            out,
            vec![
                echo(b"[replay how many lines: 4 cancelled]\r\n"),
                data(b"z")
            ]
        );
        assert!(!parser.pending());
    }
}

#[test]
fn break_numbers_and_list() {
    for n in 1..=9u8 {
        assert_eq!(
            feed(&[0x05, b'c', b'l', b'0' + n]),
            vec![cmd(Command::Break(n))]
        );
    }
    for key in [b'?', b'\r', b'\n'] {
        assert_eq!(
            feed(&[0x05, b'c', b'l', key]),
            vec![cmd(Command::ListBreaks)]
        );
    }
    assert_eq!(feed(b"\x05cl\x1bq"), vec![data(b"q")]);
    assert_eq!(
        feed(b"\x05cl0"),
        vec![Input::Error(
            "unknown break sequence '0' — Ctrl-E c l 1 to 9 sends one, Ctrl-E c l ? lists them"
                .into()
        )]
    );
    let out = feed(b"\x05clx");
    assert!(
        matches!(&out[..], [Input::Error(m)] if m.contains("'x'")),
        "{out:?}"
    );
}

#[test]
fn note_reads_a_line() {
    assert_eq!(
        feed(b"\x05cnrebooted for kernel 6.1\rok"),
        vec![
            echo(b"[note: rebooted for kernel 6.1]\r\n"),
            cmd(Command::Note("rebooted for kernel 6.1".into())),
            data(b"ok")
        ]
    );
}

#[test]
fn note_edits() {
    assert_eq!(
        feed(b"\x05cnabc\x08\x7fX\n")[1],
        cmd(Command::Note("aX".into()))
    );
    assert_eq!(
        feed(b"\x05cnold\x15new\r")[1],
        cmd(Command::Note("new".into()))
    );
    // Backspace on an empty note rings the bell; control characters are refused.
    assert_eq!(
        feed(b"\x05cn\x7fa\x01\tb\r"),
        vec![
            echo(b"[note: \x07a\x07\x07b]\r\n"),
            cmd(Command::Note("ab".into()))
        ]
    );
    // Backspace removes a whole UTF-8 character, echoing one erasure.
    assert_eq!(
        feed("\x05cnçé\x7f!\r".as_bytes()),
        vec![
            echo("[note: çé\x08 \x08!]\r\n".as_bytes()),
            cmd(Command::Note("ç!".into()))
        ]
    );
    // Bytes that are not UTF-8 are replaced, not refused.
    assert_eq!(
        feed(b"\x05cna\xffb\r")[1],
        cmd(Command::Note("a\u{fffd}b".into()))
    );
}

#[test]
fn note_cancels_and_empty_note_writes_nothing() {
    assert_eq!(
        feed(b"\x05cnhalf\x1b"),
        vec![echo(b"[note: half cancelled]\r\n")]
    );
    assert_eq!(
        feed(b"\x05cnhalf\x03x"),
        vec![echo(b"[note: half cancelled]\r\n"), data(b"x")]
    );
    assert_eq!(feed(b"\x05cn\r"), vec![echo(b"[note:  cancelled]\r\n")]);
    assert_eq!(
        feed(b"\x05cnab\x15\r"),
        vec![echo(b"[note: ab\x08 \x08\x08 \x08 cancelled]\r\n")]
    );
}

#[test]
fn note_is_capped() {
    let mut parser = EscapeParser::default();
    let mut input = b"\x05cn".to_vec();
    input.extend(std::iter::repeat_n(b'x', MAX_NOTE_LEN + 50));
    let out = parser.feed(&input);
    let Some(Input::Echo(shown)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(shown.iter().filter(|&&b| b == 0x07).count(), 50);
    let out = parser.feed(b"\r");
    let Some(Input::Command(Command::Note(text))) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(text.len(), MAX_NOTE_LEN);
}

#[test]
fn custom_prefix() {
    let config = EscapeConfig::parse("^]q").unwrap();
    let mut parser = EscapeParser::new(config);
    assert_eq!(parser.config(), &config);
    assert_eq!(
        parser.feed(b"\x05c.\x1dq."),
        vec![data(b"\x05c."), cmd(Command::Disconnect)]
    );
    assert_eq!(parser.feed(b"\x1dq\x1d"), vec![data(b"\x1dq")]);
    // A prefix of one key typed twice.
    let mut parser = EscapeParser::new(EscapeConfig::new([b'&', b'&']));
    assert_eq!(
        parser.feed(b"a&b&&w"),
        vec![data(b"a&b"), cmd(Command::Who)]
    );
    assert_eq!(parser.feed(b"&&&"), vec![data(b"&&")]);
}

#[test]
fn pending_and_reset() {
    let mut parser = EscapeParser::default();
    assert!(!parser.pending());
    for (bytes, pending) in [
        (&b"\x05"[..], true),
        (b"c", true),
        (b"n", true),
        (b"draft", true),
        (b"\r", false),
        (b"\x05cp1", true),
        (b"\r", false),
        (b"\x05cl", true),
        (b"1", false),
    ] {
        parser.feed(bytes);
        assert_eq!(parser.pending(), pending, "after {bytes:?}");
    }
    parser.feed(b"\x05cnsecret");
    parser.reset();
    assert!(!parser.pending());
    assert_eq!(parser.feed(b"\rx"), vec![data(b"\rx")]);
    parser.feed(b"\x05");
    parser.reset();
    assert_eq!(parser.feed(b"c."), vec![data(b"c.")]);
}

#[test]
fn help_lists_every_command_with_the_prefix() {
    let text = help_text(&EscapeConfig::default());
    assert!(
        text.starts_with("escape sequences (^Ec is Ctrl-E c):\r\n"),
        "{text}"
    );
    for sequence in [
        "^Ec.", "^Eca", "^Ecs", "^Ecf", "^Ecj", "^Ecw", "^Ecr", "^Ecp", "^Ecl1-9", "^Ecl?", "^Ecn",
        "^Eco", "^Eci", "^Ec?", "^Ec^E", "^Ec<cr>",
    ] {
        assert!(
            text.contains(&format!("  {sequence} ")),
            "{sequence} missing from\n{text}"
        );
    }
    assert!(text.contains("replay the last 20 lines"));
    assert!(text.contains("send ^Ec itself"));
    assert!(text.ends_with("\r\n"));
    assert!(text.split_inclusive('\n').all(|l| l.ends_with("\r\n")));
    // Every key the parser knows appears in the help.
    for key in [
        ".", "a", "s", "f", "j", "w", "r", "p", "l", "n", "o", "i", "?", "P",
    ] {
        assert!(text.contains(&format!("^Ec{key}")), "{key}");
    }
    let custom = help_text(&EscapeConfig::parse("&.").unwrap());
    assert!(custom.contains("  &.. "), "{custom}");
    assert!(custom.contains("  &.& "), "{custom}");
    assert!(!custom.contains("^Ec"), "{custom}");
}

/// Bytes weighted towards the ones the parser cares about.
fn random_stream(rng: &mut StdRng, prefix: [u8; 2], len: usize) -> Vec<u8> {
    const KEYS: &[u8] = b".asfjwrplnoi?h0123456789\r\n\x1b\x03\x08\x7f\x15x Pyescdq";
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0..=1 => prefix[0],
            2 => prefix[1],
            3..=6 => KEYS[rng.random_range(0..KEYS.len())],
            _ => rng.random(),
        })
        .collect()
}

#[test]
fn any_split_gives_the_same_inputs() {
    let mut rng = StdRng::seed_from_u64(0x6d6f_6573_6361_7065);
    for round in 0..3000 {
        let prefix = match round % 3 {
            0 => [0x05, b'c'],
            1 => [b'&', b'&'],
            _ => [rng.random(), rng.random()],
        };
        let config = EscapeConfig::new(prefix);
        let len = rng.random_range(0..300);
        let stream = random_stream(&mut rng, prefix, len);

        let mut whole = EscapeParser::new(config);
        let expected = whole.feed(&stream);
        assert_eq!(
            normalize(expected.clone()),
            expected,
            "feed output is coalesced"
        );

        let mut bytewise = EscapeParser::new(config);
        let by_byte = normalize(stream.iter().flat_map(|b| bytewise.feed(&[*b])));
        assert_eq!(by_byte, expected, "byte by byte, stream {stream:?}");
        assert_eq!(bytewise.pending(), whole.pending());

        let mut chunked = EscapeParser::new(config);
        let mut rest = &stream[..];
        let mut pieces = Vec::new();
        while !rest.is_empty() {
            let cut = rng.random_range(0..=rest.len().min(40));
            let (piece, tail) = rest.split_at(cut);
            pieces.extend(chunked.feed(piece));
            rest = tail;
        }
        assert_eq!(
            normalize(pieces),
            expected,
            "random pieces, stream {stream:?}"
        );

        for item in &expected {
            match item {
                Input::Command(Command::Note(text)) => {
                    assert!(!text.is_empty() && text.len() <= MAX_NOTE_LEN * 3)
                }
                Input::Command(Command::Replay(n)) => assert!(*n <= MAX_REPLAY_LINES),
                Input::Command(Command::Break(n)) => assert!((1..=9).contains(n)),
                Input::Error(message) => {
                    assert!(
                        message.contains("for help")
                            || message.contains("lists them")
                            || message.contains("Esc closes")
                    )
                }
                Input::Data(bytes) | Input::Echo(bytes) => assert!(!bytes.is_empty()),
                _ => {}
            }
        }
    }
}

#[test]
fn streams_without_the_first_prefix_byte_pass_untouched() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..500 {
        let len = rng.random_range(1..500);
        let stream: Vec<u8> = (0..len)
            .map(|_| rng.random())
            .filter(|&b| b != 0x05)
            .collect();
        if stream.is_empty() {
            continue;
        }
        assert_eq!(feed(&stream), vec![Input::Data(stream.clone())]);
    }
}

#[test]
fn power_menu_status_and_on_need_no_confirmation() {
    let mut parser = EscapeParser::default();
    assert_eq!(parser.feed(b"\x05cP"), vec![cmd(Command::PowerMenu)]);
    assert!(parser.pending());
    assert_eq!(
        parser.feed(b"sx"),
        vec![cmd(Command::PowerStatus), data(b"x")]
    );
    assert_eq!(
        feed(b"\x05cP1y"),
        vec![
            cmd(Command::PowerMenu),
            cmd(Command::Power(PowerAction::On)),
            data(b"y")
        ]
    );
}

#[test]
fn destructive_power_actions_ask_for_yes() {
    for (key, action) in [
        (b'0', PowerAction::Off),
        (b'c', PowerAction::Cycle),
        (b'r', PowerAction::Reset),
        (b'd', PowerAction::SoftOff),
    ] {
        let mut parser = EscapeParser::default();
        let out = parser.feed(&[0x05, b'c', b'P', key]);
        let prompt = format!("[power {action}: type yes to confirm: ");
        assert_eq!(out, vec![cmd(Command::PowerMenu), echo(prompt.as_bytes())]);
        assert!(parser.pending());
        // Typos can be erased; YES in capitals counts.
        let out = parser.feed(b"yx\x7fES\r.");
        assert_eq!(
            out,
            vec![
                echo(b"yx\x08 \x08ES]\r\n"),
                cmd(Command::Power(action)),
                data(b".")
            ],
            "key {key}"
        );
        assert!(!parser.pending());
    }
}

#[test]
fn power_menu_refusals_do_nothing() {
    // Anything but yes: nothing done, back to data.
    let out = feed(b"\x05cP0y\rls");
    assert_eq!(
        out,
        vec![
            cmd(Command::PowerMenu),
            echo(b"[power off: type yes to confirm: y - not confirmed, nothing done]\r\n"),
            data(b"ls")
        ]
    );
    // Esc cancels the confirmation; Esc, Enter and q close the menu.
    let out = feed(b"\x05cPc\x1bx");
    assert_eq!(out.last(), Some(&data(b"x")));
    assert!(out.contains(&echo(b"[power cycle: type yes to confirm:  cancelled]\r\n")));
    for close in [b'\x1b', b'\r', b'q'] {
        let out = feed(&[0x05, b'c', b'P', close, b'z']);
        assert_eq!(
            out,
            vec![
                cmd(Command::PowerMenu),
                echo(b"[power menu closed]\r\n"),
                data(b"z")
            ]
        );
    }
    let out = feed(b"\x05cPxz");
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(
        matches!(&out[1], Input::Error(m) if m.contains("unknown power menu key 'x'") && m.contains(POWER_MENU))
    );
    // The confirmation holds a bounded amount of text.
    let mut parser = EscapeParser::default();
    parser.feed(b"\x05cPr");
    let out = parser.feed(&[b'y'; 100]);
    let bells = out
        .iter()
        .map(|i| match i {
            Input::Echo(b) => b.iter().filter(|&&c| c == 0x07).count(),
            _ => 0,
        })
        .sum::<usize>();
    assert_eq!(bells, 100 - MAX_CONFIRM_LEN);
    // A reset closes the menu at once.
    let mut parser = EscapeParser::default();
    parser.feed(b"\x05cP");
    parser.reset();
    assert_eq!(parser.feed(b"1"), vec![data(b"1")]);
}

#[test]
fn line_signal_keys_set_and_toggle_dtr_and_rts() {
    let signal = |line, to| cmd(Command::Signal { line, to });
    assert_eq!(
        feed(b"\x05cD0\x05cD1\x05cDt\x05cR0\x05cRT"),
        vec![
            signal(Signal::Dtr, Some(false)),
            signal(Signal::Dtr, Some(true)),
            signal(Signal::Dtr, None),
            signal(Signal::Rts, Some(false)),
            signal(Signal::Rts, None),
        ]
    );
    // Split across feeds, the line key is remembered.
    let mut parser = EscapeParser::default();
    assert_eq!(parser.feed(b"\x05cR"), vec![]);
    assert!(parser.pending());
    assert_eq!(
        parser.feed(b"1x"),
        vec![signal(Signal::Rts, Some(true)), data(b"x")]
    );
    // Enter or Esc abandons; another key is refused and nothing reaches the device.
    assert_eq!(feed(b"\x05cD\rls"), vec![data(b"ls")]);
    let out = feed(b"\x05cDxls");
    assert!(
        matches!(out.first(), Some(Input::Error(m)) if m.contains("unknown DTR key 'x'")),
        "{out:?}"
    );
    assert_eq!(out.get(1), Some(&data(b"ls")));
    assert!(help_text(&EscapeConfig::default()).contains("^EcD1 D0 Dt"));
}
