//! The pager of the simulated machine (`sim://NAME?pager=LINES`): a command's output longer than
//! a page stops at `--More--` like network gear's, and a key decides what comes next.

use super::machine::{Machine, Mode};

/// The pager's prompt.
pub(super) const PROMPT: &[u8] = b"--More--";
/// What erases the prompt before the next lines (as util-linux `more` does on a dumb terminal).
const ERASE: &[u8] = b"\r        \r";

impl Machine {
    /// Page the output written since `start` (a command's) if the machine has a pager and the
    /// output is longer than a page: the rest waits in [`Mode::More`]. `true` when it paged.
    pub(super) fn page_from(&mut self, start: usize) -> bool {
        let Some(page) = self.dev.opts.pager else {
            return false;
        };
        let output = self.out.get(start..).unwrap_or_default();
        let Some(cut) = line_end_after(output, usize::from(page)) else {
            return false;
        };
        if start + cut >= self.out.len() {
            return false;
        }
        let rest = self.out.split_off(start + cut);
        self.out.extend_from_slice(PROMPT);
        self.mode = Mode::More(rest);
        true
    }

    /// A key at `--More--`: Space shows the next page, Enter the next line, `q` or Ctrl-C drops
    /// the rest; other keys ring the bell.
    pub(super) fn more_key(&mut self, byte: u8) {
        let lines = match byte {
            b' ' => usize::from(self.dev.opts.pager.unwrap_or(1)),
            b'\r' | b'\n' => 1,
            b'q' | b'Q' | 0x03 => 0,
            _ => {
                self.out.push(0x07);
                return;
            }
        };
        let Mode::More(rest) = std::mem::replace(&mut self.mode, Mode::Shell) else {
            return;
        };
        self.out.extend_from_slice(ERASE);
        let mut rest = rest;
        if lines > 0 {
            let cut = line_end_after(&rest, lines).unwrap_or(rest.len());
            let shown: Vec<u8> = rest.drain(..cut).collect();
            self.out.extend_from_slice(&shown);
            if !rest.is_empty() {
                self.out.extend_from_slice(PROMPT);
                self.mode = Mode::More(rest);
                return;
            }
        }
        self.prompt();
    }
}

/// The offset just after the `lines`th `\n` of `text`, if it has that many.
fn line_end_after(text: &[u8], lines: usize) -> Option<usize> {
    let nth = lines.checked_sub(1)?;
    text.iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(nth)
        .map(|(i, _)| i + 1)
}
