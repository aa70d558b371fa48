//! A line editor for the SSH shell, without I/O: keystroke bytes in ([`LineEditor::feed`]),
//! terminal output bytes (echo, redraws) and finished lines out.
//!
//! Keys: printable text is inserted at the cursor; Left/Right (and Ctrl-B/Ctrl-F), Home/End
//! (and Ctrl-A/Ctrl-E) move; Backspace and Delete erase; Ctrl-K kills to the end of the line,
//! Ctrl-U to its start, Ctrl-W the word before the cursor; Up/Down (and Ctrl-P/Ctrl-N) walk the
//! [`History`]; Tab completes the word before the cursor with the candidates the caller's
//! completer gives (a second Tab lists them when they share no longer prefix); Ctrl-L redraws;
//! Enter ends the line; Ctrl-C abandons it; Ctrl-D erases under the cursor, or ends input on an
//! empty line. Escape sequences it does not know are swallowed whole.
//!
//! Input is untrusted: any bytes are taken without a panic (the fuzz target `line_edit` checks),
//! invalid UTF-8 becomes U+FFFD, and a line holds at most [`MAX_LINE`] characters.
//!
//! ```
//! use mo_core::door::line_edit::{Event, LineEditor};
//!
//! let mut ed = LineEditor::new("mo> ");
//! let mut out = Vec::new();
//! let mut none = |_: &str| Vec::<String>::new();
//! let mut last = None;
//! // "lst", Left, insert "i", Enter.
//! for &b in b"lst\x1b[D\x1b[Di\r" {
//!     last = ed.feed(b, &mut none, &mut out).or(last);
//! }
//! assert_eq!(last, Some(Event::Line("list".into())));
//! ```

use std::collections::VecDeque;

/// The most characters one line may hold; more typing is refused with a bell.
pub const MAX_LINE: usize = 4096;

/// Bytes of one escape sequence's parameters kept at most (the rest is skipped).
const MAX_PARAMS: usize = 16;

/// What a keystroke finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Enter: the line (also added to the history when not blank).
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupt,
    /// Ctrl-D on an empty line: no more input.
    Eof,
}

/// Earlier lines, oldest first, at most `max` of them; a line equal to the newest one is not
/// added again and blank lines are never added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    entries: VecDeque<String>,
    max: usize,
}

impl History {
    /// An empty history keeping at most `max` lines.
    pub fn new(max: usize) -> History {
        History {
            entries: VecDeque::new(),
            max,
        }
    }

    /// Read a history from text, one line per line (oldest first); keeps the newest `max`.
    pub fn from_text(text: &str, max: usize) -> History {
        let mut h = History::new(max);
        for line in text.lines() {
            h.add(line);
        }
        h
    }

    /// The history as text, one line per line, oldest first.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Add `line` as the newest entry (unless blank or equal to the newest); control characters
    /// and line breaks are dropped so the text form stays one entry per line.
    pub fn add(&mut self, line: &str) {
        let clean: String = line.chars().filter(|c| !c.is_control()).collect();
        if clean.trim().is_empty() || self.entries.back() == Some(&clean) || self.max == 0 {
            return;
        }
        self.entries.push_back(clean);
        while self.entries.len() > self.max {
            self.entries.pop_front();
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where the escape-sequence reader is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Esc {
    /// Not in a sequence.
    None,
    /// After ESC.
    Start,
    /// After ESC `[`: parameter bytes so far.
    Csi(Vec<u8>),
    /// After ESC `O`.
    Ss3,
}

/// One line being edited, its history and the terminal state needed to redraw it.
#[derive(Debug, Clone)]
pub struct LineEditor {
    prompt: String,
    line: Vec<char>,
    cursor: usize,
    /// Rows of the drawn line above the cursor's row (for redraws of wrapped lines).
    cursor_row: usize,
    cols: usize,
    history: History,
    /// Position while walking the history (index into its entries), and the line being typed
    /// before the walk began.
    walk: Option<(usize, String)>,
    esc: Esc,
    utf8: Vec<u8>,
    last_cr: bool,
    last_tab: bool,
}

impl LineEditor {
    /// An editor showing `prompt`, with an empty history of 500 lines and 80 columns.
    pub fn new(prompt: &str) -> LineEditor {
        LineEditor {
            prompt: prompt.to_string(),
            line: Vec::new(),
            cursor: 0,
            cursor_row: 0,
            cols: 80,
            history: History::new(500),
            walk: None,
            esc: Esc::None,
            utf8: Vec::new(),
            last_cr: false,
            last_tab: false,
        }
    }

    /// Use `history` (e.g. loaded from the user's file).
    pub fn set_history(&mut self, history: History) {
        self.history = history;
    }

    /// The history, with the lines entered so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The terminal's width in columns (at least 1).
    pub fn set_width(&mut self, cols: u16) {
        self.cols = usize::from(cols).max(1);
    }

    /// The line so far.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// The cursor's position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Start a new, empty line: write the prompt.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        self.line.clear();
        self.cursor = 0;
        self.cursor_row = 0;
        self.walk = None;
        self.last_tab = false;
        out.extend_from_slice(self.prompt.as_bytes());
    }

    /// Take one byte of input. Output for the terminal is appended to `out`. `complete` gets
    /// the line before the cursor on Tab and returns the words that may replace its last word.
    pub fn feed(
        &mut self,
        byte: u8,
        complete: &mut dyn FnMut(&str) -> Vec<String>,
        out: &mut Vec<u8>,
    ) -> Option<Event> {
        let after_cr = std::mem::take(&mut self.last_cr);
        match std::mem::replace(&mut self.esc, Esc::None) {
            Esc::None => {}
            Esc::Start => {
                match byte {
                    b'[' => self.esc = Esc::Csi(Vec::new()),
                    b'O' => self.esc = Esc::Ss3,
                    b'b' | b'B' => self.word_left(out),
                    b'f' | b'F' => self.word_right(out),
                    _ => {}
                }
                return None;
            }
            Esc::Csi(mut params) => {
                if (0x20..0x40).contains(&byte) {
                    if params.len() < MAX_PARAMS {
                        params.push(byte);
                    }
                    self.esc = Esc::Csi(params);
                } else if (0x40..0x7f).contains(&byte) {
                    self.csi(&params, byte, out);
                }
                // Anything else ends the sequence unread.
                return None;
            }
            Esc::Ss3 => {
                self.csi(&[], byte, out);
                return None;
            }
        }
        let was_tab = std::mem::take(&mut self.last_tab);
        if !self.utf8.is_empty() && (byte & 0xc0) != 0x80 {
            // A character cut short: what came of it is one bad character; read this byte anew.
            self.utf8.clear();
            self.insert(char::REPLACEMENT_CHARACTER, out);
        }
        if byte >= 0x80 {
            self.utf8_byte(byte, out);
            return None;
        }
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.last_cr = byte == b'\r';
                self.move_to(self.line.len(), out);
                out.extend_from_slice(b"\r\n");
                let line = self.line();
                self.history.add(&line);
                self.line.clear();
                self.cursor = 0;
                self.cursor_row = 0;
                self.walk = None;
                Some(Event::Line(line))
            }
            0x03 => {
                out.extend_from_slice(b"^C\r\n");
                self.line.clear();
                self.cursor = 0;
                self.cursor_row = 0;
                self.walk = None;
                Some(Event::Interrupt)
            }
            0x04 if self.line.is_empty() => Some(Event::Eof),
            0x04 => {
                if self.cursor < self.line.len() {
                    self.line.remove(self.cursor);
                    self.refresh(out);
                }
                None
            }
            0x01 => {
                self.move_to(0, out);
                None
            }
            0x05 => {
                self.move_to(self.line.len(), out);
                None
            }
            0x02 => {
                self.move_to(self.cursor.saturating_sub(1), out);
                None
            }
            0x06 => {
                self.move_to((self.cursor + 1).min(self.line.len()), out);
                None
            }
            0x7f | 0x08 => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                    self.refresh(out);
                }
                None
            }
            0x0b => {
                self.line.truncate(self.cursor);
                self.refresh(out);
                None
            }
            0x15 => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
                self.refresh(out);
                None
            }
            0x17 => {
                let start = self.word_start(self.cursor);
                self.line.drain(start..self.cursor);
                self.cursor = start;
                self.refresh(out);
                None
            }
            0x0c => {
                out.extend_from_slice(b"\x1b[H\x1b[2J");
                self.cursor_row = 0;
                out.extend_from_slice(self.prompt.as_bytes());
                self.cursor_row = self.draw_from_prompt(out);
                None
            }
            0x10 => {
                self.history_step(true, out);
                None
            }
            0x0e => {
                self.history_step(false, out);
                None
            }
            b'\t' => {
                self.tab(was_tab, complete, out);
                None
            }
            0x1b => {
                self.esc = Esc::Start;
                None
            }
            b if (0x20..0x7f).contains(&b) => {
                self.insert(char::from(b), out);
                None
            }
            _ => None,
        }
    }

    /// Feed every byte of `data`; returns the first event and the bytes after it.
    pub fn feed_all<'a>(
        &mut self,
        data: &'a [u8],
        complete: &mut dyn FnMut(&str) -> Vec<String>,
        out: &mut Vec<u8>,
    ) -> Option<(Event, &'a [u8])> {
        for (i, &b) in data.iter().enumerate() {
            if let Some(ev) = self.feed(b, complete, out) {
                return Some((ev, data.get(i + 1..).unwrap_or_default()));
            }
        }
        None
    }

    fn utf8_byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        if self.utf8.is_empty() && byte < 0xc0 {
            self.insert(char::REPLACEMENT_CHARACTER, out);
            return;
        }
        self.utf8.push(byte);
        match std::str::from_utf8(&self.utf8) {
            Ok(s) => {
                let c = s.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                self.utf8.clear();
                self.insert(c, out);
            }
            Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => {
                self.utf8.clear();
                self.insert(char::REPLACEMENT_CHARACTER, out);
            }
            Err(_) => {}
        }
    }

    fn csi(&mut self, params: &[u8], fin: u8, out: &mut Vec<u8>) {
        match (params, fin) {
            (_, b'A') => self.history_step(true, out),
            (_, b'B') => self.history_step(false, out),
            (b"1;5" | b"1;3", b'C') => self.word_right(out),
            (b"1;5" | b"1;3", b'D') => self.word_left(out),
            (_, b'C') => self.move_to((self.cursor + 1).min(self.line.len()), out),
            (_, b'D') => self.move_to(self.cursor.saturating_sub(1), out),
            (_, b'H') | (b"1" | b"7", b'~') => self.move_to(0, out),
            (_, b'F') | (b"4" | b"8", b'~') => self.move_to(self.line.len(), out),
            (b"3", b'~') if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
                self.refresh(out);
            }
            _ => {}
        }
    }

    fn insert(&mut self, c: char, out: &mut Vec<u8>) {
        if self.line.len() >= MAX_LINE {
            out.push(0x07);
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        let width = self.prompt_len() + self.line.len();
        if self.cursor == self.line.len() && !width.is_multiple_of(self.cols) {
            // Typing at the end of a line that does not wrap here: the character is the echo.
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            self.cursor_row = (self.prompt_len() + self.cursor) / self.cols;
        } else {
            self.refresh(out);
        }
    }

    fn word_start(&self, from: usize) -> usize {
        let mut i = from;
        while i > 0 && self.line.get(i - 1).is_some_and(|c| c.is_whitespace()) {
            i -= 1;
        }
        while i > 0 && self.line.get(i - 1).is_some_and(|c| !c.is_whitespace()) {
            i -= 1;
        }
        i
    }

    fn word_left(&mut self, out: &mut Vec<u8>) {
        let to = self.word_start(self.cursor);
        self.move_to(to, out);
    }

    fn word_right(&mut self, out: &mut Vec<u8>) {
        let mut i = self.cursor;
        let len = self.line.len();
        while i < len && self.line.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        while i < len && self.line.get(i).is_some_and(|c| !c.is_whitespace()) {
            i += 1;
        }
        self.move_to(i, out);
    }

    fn history_step(&mut self, back: bool, out: &mut Vec<u8>) {
        let n = self.history.len();
        let next = match (&self.walk, back) {
            (None, true) if n > 0 => Some(n - 1),
            (None, _) => return,
            (Some((i, _)), true) => Some(i.saturating_sub(1)),
            (Some((i, _)), false) if i + 1 < n => Some(i + 1),
            (Some(_), false) => None,
        };
        let text = match next {
            Some(i) => {
                if self.walk.is_none() {
                    self.walk = Some((i, self.line()));
                } else if let Some(walk) = &mut self.walk {
                    walk.0 = i;
                }
                self.history.entries.get(i).cloned().unwrap_or_default()
            }
            None => self.walk.take().map(|(_, saved)| saved).unwrap_or_default(),
        };
        self.line = text.chars().take(MAX_LINE).collect();
        self.cursor = self.line.len();
        self.refresh(out);
    }

    fn tab(
        &mut self,
        again: bool,
        complete: &mut dyn FnMut(&str) -> Vec<String>,
        out: &mut Vec<u8>,
    ) {
        let before: String = self.line.iter().take(self.cursor).collect();
        let start = self.word_start_in_word(self.cursor);
        let word: String = self
            .line
            .iter()
            .skip(start)
            .take(self.cursor - start)
            .collect();
        let mut found: Vec<String> = complete(&before)
            .into_iter()
            .filter(|c| c.starts_with(&word))
            .collect();
        found.sort();
        found.dedup();
        match found.as_slice() {
            [] => out.push(0x07),
            [only] => {
                let rest: Vec<char> = only.chars().skip(word.chars().count()).collect();
                let at_end = self
                    .line
                    .get(self.cursor)
                    .is_none_or(|c| !c.is_whitespace());
                for c in rest {
                    self.insert(c, out);
                }
                if at_end {
                    self.insert(' ', out);
                }
            }
            many => {
                let common = common_prefix(many);
                let have = word.chars().count();
                if common.chars().count() > have {
                    for c in common.chars().skip(have).collect::<Vec<_>>() {
                        self.insert(c, out);
                    }
                } else if again {
                    self.move_to(self.line.len(), out);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(self.columns(many).as_bytes());
                    let cursor = self.cursor;
                    out.extend_from_slice(self.prompt.as_bytes());
                    self.cursor_row = 0;
                    self.cursor = self.line.len();
                    self.cursor_row = self.draw_from_prompt(out);
                    self.move_to(cursor, out);
                } else {
                    out.push(0x07);
                    self.last_tab = true;
                }
            }
        }
    }

    /// Start of the word the cursor ends (only non-blanks before it).
    fn word_start_in_word(&self, from: usize) -> usize {
        let mut i = from;
        while i > 0 && self.line.get(i - 1).is_some_and(|c| !c.is_whitespace()) {
            i -= 1;
        }
        i
    }

    /// Candidates laid out in columns that fit the terminal, each row ending with CR LF.
    fn columns(&self, words: &[String]) -> String {
        let widest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0) + 2;
        let per_row = (self.cols / widest).max(1);
        let mut s = String::new();
        for row in words.chunks(per_row) {
            for (i, w) in row.iter().enumerate() {
                s.push_str(w);
                if i + 1 < row.len() {
                    let pad = widest - w.chars().count();
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            s.push_str("\r\n");
        }
        s
    }

    fn prompt_len(&self) -> usize {
        self.prompt.chars().count()
    }

    /// Move the cursor to `to` (in characters) on the drawn line.
    fn move_to(&mut self, to: usize, out: &mut Vec<u8>) {
        let to = to.min(self.line.len());
        let (row, col) = self.place(to);
        if row < self.cursor_row {
            out.extend_from_slice(format!("\x1b[{}A", self.cursor_row - row).as_bytes());
        } else if row > self.cursor_row {
            out.extend_from_slice(format!("\x1b[{}B", row - self.cursor_row).as_bytes());
        }
        out.push(b'\r');
        if col > 0 {
            out.extend_from_slice(format!("\x1b[{col}C").as_bytes());
        }
        self.cursor = to;
        self.cursor_row = row;
    }

    /// Row (from the prompt's) and column of character position `pos`.
    fn place(&self, pos: usize) -> (usize, usize) {
        let at = self.prompt_len() + pos;
        (at / self.cols, at % self.cols)
    }

    /// Redraw prompt and line, then put the cursor in place.
    fn refresh(&mut self, out: &mut Vec<u8>) {
        if self.cursor_row > 0 {
            out.extend_from_slice(format!("\x1b[{}A", self.cursor_row).as_bytes());
        }
        out.push(b'\r');
        out.extend_from_slice(self.prompt.as_bytes());
        self.cursor_row = 0;
        let cursor = self.cursor;
        self.cursor_row = self.draw_from_prompt(out);
        self.cursor = self.line.len();
        self.move_to(cursor, out);
    }

    /// Write the line after a freshly written prompt, clear what was below, and return the row
    /// the terminal's cursor is on (the line's end).
    fn draw_from_prompt(&mut self, out: &mut Vec<u8>) -> usize {
        let text: String = self.line.iter().collect();
        out.extend_from_slice(text.as_bytes());
        let end = self.prompt_len() + self.line.len();
        if end > 0 && end.is_multiple_of(self.cols) {
            // The terminal waits to wrap: go to the next row's start so positions add up.
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\x1b[J");
        end / self.cols
    }
}

/// The longest prefix all of `words` share.
fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut n = first.chars().count();
    for w in words.iter().skip(1) {
        n = n.min(
            first
                .chars()
                .zip(w.chars())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    first.chars().take(n).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "line_edit_tests.rs"]
mod tests;
