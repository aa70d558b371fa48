use super::*;

/// Feed `keys` with a completer offering `words`; returns the events and the output.
fn run(ed: &mut LineEditor, keys: &[u8], words: &[&str]) -> (Vec<Event>, String) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut complete = |_: &str| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    for &b in keys {
        if let Some(ev) = ed.feed(b, &mut complete, &mut out) {
            events.push(ev);
        }
    }
    (events, String::from_utf8_lossy(&out).into_owned())
}

fn line(keys: &[u8]) -> String {
    let mut ed = LineEditor::new("mo> ");
    let (events, _) = run(&mut ed, keys, &[]);
    match events.as_slice() {
        [Event::Line(l)] => l.clone(),
        other => panic!("expected one line, got {other:?}"),
    }
}

#[test]
fn plain_typing_echoes_and_ends_with_enter() {
    let mut ed = LineEditor::new("mo> ");
    let mut out = Vec::new();
    ed.start(&mut out);
    assert_eq!(out, b"mo> ");
    let (events, echo) = run(&mut ed, b"list\r\n", &[]);
    assert_eq!(events, vec![Event::Line("list".into())]);
    assert!(echo.starts_with("list"), "{echo:?}");
    assert!(echo.ends_with("\r\n"), "{echo:?}");
}

#[test]
fn cr_lf_is_one_enter_but_two_crs_are_two() {
    let mut ed = LineEditor::new("> ");
    let (events, _) = run(&mut ed, b"a\r\nb\r\r", &[]);
    assert_eq!(
        events,
        vec![
            Event::Line("a".into()),
            Event::Line("b".into()),
            Event::Line(String::new())
        ]
    );
}

#[test]
fn cursor_keys_insert_mid_line() {
    assert_eq!(line(b"lst\x1b[D\x1b[Di\r"), "list");
    assert_eq!(line(b"ist\x01l\r"), "list");
    assert_eq!(line(b"ist\x1b[Hl\x1b[Fx\r"), "listx");
    assert_eq!(line(b"ist\x1bOHl\x1bOF!\r"), "list!");
    assert_eq!(line(b"ist\x1b[1~l\x1b[4~!\r"), "list!");
    assert_eq!(line(b"abc\x02\x02\x06X\r"), "abXc");
    assert_eq!(line(b"ab\x1b[C\x1b[C\x1b[Cc\r"), "abc");
}

#[test]
fn erasing_keys() {
    assert_eq!(line(b"abcd\x7f\r"), "abc");
    assert_eq!(line(b"abcd\x08\x08\r"), "ab");
    assert_eq!(line(b"abcd\x01\x1b[3~\r"), "bcd");
    assert_eq!(line(b"abcd\x01\x04\r"), "bcd");
    assert_eq!(line(b"abcd\x1b[D\x1b[D\x0b\r"), "ab");
    assert_eq!(line(b"abcd\x1b[D\x15\r"), "d");
    assert_eq!(line(b"power on web01\x17\x17\r"), "power ");
    assert_eq!(line(b"one two  \x17x\r"), "one x");
    assert_eq!(line(b"\x7f\x1b[3~\x0b\x15\x17ok\r"), "ok");
}

#[test]
fn word_moves() {
    assert_eq!(line(b"aa bb cc\x1bbX\r"), "aa bb Xcc");
    assert_eq!(line(b"aa bb cc\x01\x1bfX\r"), "aaX bb cc");
    assert_eq!(line(b"aa bb\x1b[1;5DX\r"), "aa Xbb");
    assert_eq!(line(b"aa bb\x01\x1b[1;5CX\r"), "aaX bb");
}

#[test]
fn ctrl_c_abandons_and_ctrl_d_ends_only_an_empty_line() {
    let mut ed = LineEditor::new("> ");
    let (events, out) = run(&mut ed, b"abc\x03", &[]);
    assert_eq!(events, vec![Event::Interrupt]);
    assert!(out.ends_with("^C\r\n"));
    assert_eq!(ed.line(), "");
    let (events, _) = run(&mut ed, b"x\x04\x7f\x04", &[]);
    assert_eq!(events, vec![Event::Eof]);
}

#[test]
fn history_walks_back_and_forth_and_keeps_the_typed_line() {
    let mut ed = LineEditor::new("> ");
    run(&mut ed, b"first\rsecond\rsecond\r  \r", &[]);
    assert_eq!(
        ed.history().entries().collect::<Vec<_>>(),
        vec!["first", "second"]
    );
    run(&mut ed, b"draft", &[]);
    run(&mut ed, b"\x1b[A", &[]);
    assert_eq!(ed.line(), "second");
    run(&mut ed, b"\x1b[A\x1b[A\x1b[A", &[]);
    assert_eq!(ed.line(), "first");
    run(&mut ed, b"\x1b[B", &[]);
    assert_eq!(ed.line(), "second");
    run(&mut ed, b"\x0e", &[]);
    assert_eq!(ed.line(), "draft");
    run(&mut ed, b"\x1b[B", &[]);
    assert_eq!(ed.line(), "draft");
    let (events, _) = run(&mut ed, b"\x10\x01x\r", &[]);
    assert_eq!(events, vec![Event::Line("xsecond".into())]);
}

#[test]
fn history_text_round_trip_is_bounded() {
    let mut h = History::new(3);
    for l in ["a", "b", "c\u{7}", "d", "d", ""] {
        h.add(l);
    }
    assert_eq!(h.entries().collect::<Vec<_>>(), vec!["b", "c", "d"]);
    assert_eq!(History::from_text(&h.to_text(), 3), h);
    assert_eq!(History::from_text("1\n2\n3\n4\n", 2).to_text(), "3\n4\n");
    assert!(History::new(0).is_empty());
}

#[test]
fn tab_completes_a_unique_word_and_adds_a_blank() {
    let mut ed = LineEditor::new("> ");
    let (events, _) = run(&mut ed, b"console we\t", &["web01", "db01"]);
    assert!(events.is_empty());
    assert_eq!(ed.line(), "console web01 ");
}

#[test]
fn tab_extends_the_common_prefix_then_lists_on_the_second_tab() {
    let mut ed = LineEditor::new("> ");
    let words = ["web01", "web02", "db01"];
    run(&mut ed, b"spy w\t", &words);
    assert_eq!(ed.line(), "spy web0");
    let (_, out) = run(&mut ed, b"\t", &words);
    assert_eq!(out, "\x07");
    let (_, out) = run(&mut ed, b"\t", &words);
    assert!(out.contains("web01  web02\r\n"), "{out:?}");
    assert!(out.contains("> spy web0"), "{out:?}");
    assert_eq!(ed.line(), "spy web0");
    run(&mut ed, b"2\t", &words);
    assert_eq!(ed.line(), "spy web02 ");
}

#[test]
fn tab_with_nothing_matching_rings() {
    let mut ed = LineEditor::new("> ");
    let (_, out) = run(&mut ed, b"zz\t", &["list"]);
    assert_eq!(out, "zz\x07");
    assert_eq!(ed.line(), "zz");
}

#[test]
fn completer_sees_the_text_before_the_cursor() {
    let mut ed = LineEditor::new("> ");
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut complete = |before: &str| {
        seen.push(before.to_string());
        Vec::new()
    };
    for &b in b"power o web\x1b[D\x1b[D\x1b[D\x1b[D\t" {
        ed.feed(b, &mut complete, &mut out);
    }
    assert_eq!(seen, vec!["power o"]);
}

#[test]
fn utf8_is_kept_and_bad_bytes_become_replacement_characters() {
    assert_eq!(line("grüße\r".as_bytes()), "grüße");
    assert_eq!(line(b"a\xffb\xc3\r"), "a\u{fffd}b\u{fffd}");
    assert_eq!(line("äö\x7f\r".as_bytes()), "ä");
}

#[test]
fn unknown_escape_sequences_are_swallowed() {
    assert_eq!(line(b"a\x1b[200~b\x1b[201~\x1b[99;99;99Zc\r"), "abc");
}

#[test]
fn long_lines_are_capped_with_a_bell() {
    let mut ed = LineEditor::new("> ");
    let keys = vec![b'x'; MAX_LINE + 10];
    let (_, out) = run(&mut ed, &keys, &[]);
    assert_eq!(ed.line().len(), MAX_LINE);
    assert!(out.ends_with('\x07'));
}

#[test]
fn wrapped_lines_redraw_from_the_first_row() {
    let mut ed = LineEditor::new("> ");
    ed.set_width(10);
    let mut out = Vec::new();
    ed.start(&mut out);
    // 2 + 15 characters: two rows; Home goes up one row.
    let (_, out) = run(&mut ed, b"abcdefghijklmno\x01", &[]);
    assert!(out.ends_with("\x1b[1A\r\x1b[2C"), "{out:?}");
    let (_, out) = run(&mut ed, b"X", &[]);
    assert!(out.starts_with("\r> Xabcdefghijklmno"), "{out:?}");
    assert_eq!(ed.cursor(), 1);
}

#[test]
fn arbitrary_bytes_keep_the_cursor_inside_the_line() {
    // A cheap deterministic stand-in for the fuzz target.
    let mut ed = LineEditor::new("mo> ");
    ed.set_width(7);
    let mut x: u32 = 12345;
    let mut out = Vec::new();
    let mut complete = |b: &str| vec![format!("{b}x"), "ab".into(), "abc".into()];
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = (x >> 16) as u8;
        let _ = ed.feed(b, &mut complete, &mut out);
        assert!(ed.cursor() <= ed.line().chars().count());
        out.clear();
    }
}

/// A small terminal with xterm's wrapping rules (a character in the last column leaves the
/// cursor there until the next character wraps), enough to replay what the editor writes.
struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    cols: usize,
    pending_wrap: bool,
    esc: Option<String>,
}

impl Screen {
    fn new(cols: usize) -> Screen {
        Screen {
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            cols,
            pending_wrap: false,
            esc: None,
        }
    }

    fn put(&mut self, c: char) {
        if self.pending_wrap {
            self.pending_wrap = false;
            self.row += 1;
            self.col = 0;
        }
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
        let line = &mut self.rows[self.row];
        while line.len() <= self.col {
            line.push(' ');
        }
        line[self.col] = c;
        if self.col + 1 == self.cols {
            self.pending_wrap = true;
        } else {
            self.col += 1;
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        for c in String::from_utf8_lossy(bytes).chars() {
            if let Some(seq) = &mut self.esc {
                seq.push(c);
                if seq.len() > 1 && c.is_ascii_alphabetic() || seq == "[~" {
                    let seq = self.esc.take().unwrap();
                    self.csi(&seq);
                }
                continue;
            }
            match c {
                '\x1b' => self.esc = Some(String::new()),
                '\r' => {
                    self.col = 0;
                    self.pending_wrap = false;
                }
                '\n' => {
                    self.row += 1;
                    self.pending_wrap = false;
                    while self.rows.len() <= self.row {
                        self.rows.push(Vec::new());
                    }
                }
                '\x07' => {}
                c => self.put(c),
            }
        }
    }

    fn csi(&mut self, seq: &str) {
        let body = &seq[1..seq.len() - 1];
        let n: usize = body.parse().unwrap_or(1);
        self.pending_wrap = false;
        match seq.chars().last().unwrap() {
            'A' => self.row -= n,
            'B' => self.row += n,
            'C' => self.col = (self.col + n).min(self.cols - 1),
            'D' => self.col = self.col.saturating_sub(n),
            'J' => {
                if let Some(line) = self.rows.get_mut(self.row) {
                    line.truncate(self.col);
                }
                self.rows.truncate(self.row + 1);
            }
            other => panic!("unexpected CSI {other} in {seq:?}"),
        }
    }

    fn text_from(&self, row: usize) -> String {
        self.rows[row..]
            .iter()
            .map(|r| r.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("|")
    }
}

#[test]
fn the_screen_always_shows_the_line_and_the_cursor_where_it_is() {
    for cols in [5usize, 7, 10, 80] {
        let keys: &[&[u8]] = &[
            b"a",
            b"b",
            b"c",
            b" ",
            "é".as_bytes(),
            b"\x1b[D",
            b"\x1b[C",
            b"\x01",
            b"\x05",
            b"\x7f",
            b"\x1b[3~",
            b"\x0b",
            b"\x15",
            b"\x17",
            b"\x1b[A",
            b"\x1b[B",
            b"\x1bb",
            b"\x1bf",
            b"\t",
        ];
        let mut ed = LineEditor::new("mo> ");
        ed.set_width(cols as u16);
        ed.set_history(History::from_text(
            "short\na much longer history line that wraps\n",
            10,
        ));
        let mut screen = Screen::new(cols);
        let mut out = Vec::new();
        ed.start(&mut out);
        screen.write(&out);
        let mut complete = |_: &str| vec!["completed-word".to_string()];
        let mut x: u32 = 7 + cols as u32;
        for step in 0..3000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let key = keys[(x >> 16) as usize % keys.len()];
            let mut out = Vec::new();
            for &b in key {
                assert_eq!(ed.feed(b, &mut complete, &mut out), None);
            }
            screen.write(&out);
            let want: String = format!("mo> {}", ed.line());
            let want_rows: Vec<String> = want
                .chars()
                .collect::<Vec<_>>()
                .chunks(cols)
                .map(|c| c.iter().collect())
                .collect();
            let mut shown = screen.text_from(0);
            let want_text = want_rows.join("|");
            // A line ending exactly at the edge has an empty row after it.
            if shown.len() > want_text.len() {
                shown = shown.trim_end_matches('|').to_string();
            }
            assert_eq!(shown, want_text, "step {step}, {cols} columns, key {key:?}");
            let at = 4 + ed.cursor();
            assert_eq!(
                (screen.row, screen.col),
                (at / cols, at % cols),
                "cursor after step {step}, {cols} columns, key {key:?}, line {:?}",
                ed.line()
            );
            if ed.line().chars().count() > 40 {
                let mut out = Vec::new();
                ed.feed(0x15, &mut complete, &mut out);
                ed.feed(0x0b, &mut complete, &mut out);
                screen.write(&out);
            }
        }
    }
}
