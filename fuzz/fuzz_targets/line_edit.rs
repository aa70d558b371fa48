//! Fuzz the SSH shell's line editor (mo_core::door::line_edit): any keystroke bytes, on a
//! terminal of any width, with a completer offering words: never a panic; the cursor stays
//! inside the line; a line never exceeds MAX_LINE characters; a finished line is in the history
//! unless blank.
//!
//! Input: the first byte picks the terminal's width, the rest are keystrokes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::door::line_edit::{Event, History, LineEditor, MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let Some((&width, keys)) = data.split_first() else {
        return;
    };
    let mut ed = LineEditor::new("mo> ");
    ed.set_width(u16::from(width));
    ed.set_history(History::from_text("list\nconsole web01\n", 50));
    let mut out = Vec::new();
    ed.start(&mut out);
    let mut complete = |before: &str| {
        vec![
            format!("{before}x"),
            "web01".to_string(),
            "web02".to_string(),
            "wé".to_string(),
        ]
    };
    for &b in keys {
        let event = ed.feed(b, &mut complete, &mut out);
        let len = ed.line().chars().count();
        assert!(ed.cursor() <= len);
        assert!(len <= MAX_LINE);
        if let Some(Event::Line(line)) = event
            && !line.trim().is_empty()
            && !line.chars().any(char::is_control)
        {
            assert_eq!(ed.history().entries().last(), Some(line.as_str()));
        }
        if out.len() > 1 << 20 {
            out.clear();
        }
    }
});
