//! Run one command at a shell-like prompt and get its output, as Netmiko's `send_command` does:
//! the text between the command's echo and the next prompt, with pager prompts (`--More--`)
//! answered and taken out.
//!
//! This module is the text side, without I/O: [`prompt_from_output`] learns a prompt from what a
//! device printed after an empty line, [`prompt_pattern`] turns it into the pattern that ends a
//! command's output, and [`CommandOutput`] assembles the pages of one answer. The facade's
//! [`crate::facade::ConsoleHandle::send_command`] drives them over any console, local or remote.
//!
//! All text here is [`ExpectBuffer`](super::ExpectBuffer) text: ANSI-stripped, with every run of
//! line ends folded into one `\n` (so a pager's `\r` erase shows up as line ends) and C0 controls
//! such as backspace removed (so a pager's backspace erase shows up as spaces).
//!
//! ```
//! use mo_core::automation::command::{CommandOutput, prompt_from_output};
//!
//! assert_eq!(prompt_from_output("\nweb01:~$ "), Some("web01:~$"));
//! let mut out = CommandOutput::new();
//! out.page("uname\nline 1\n", "--More--");
//! out.push("\n        \nline 2\n");
//! assert_eq!(out.finish("uname"), "line 1\nline 2");
//! ```

use crate::error::Result;

use super::ExpectPattern;

/// The pager prompts [`crate::facade::ConsoleHandle::send_command`] answers by default (a
/// regular expression, case-insensitive): `--More--`, `-- More --`, `--More--(42%)`,
/// `<--- More --->` and `Press any key to continue`.
pub const DEFAULT_PAGER: &str =
    r"(?i)<-{2,4} ?more ?-{2,4}>|-{2,4} ?more ?-{2,4}(?: ?\(\d+%\))?|press any key to continue";

/// What answers a pager prompt: one space, the next page.
pub const PAGER_ANSWER: &[u8] = b" ";

/// The prompt in `text`, output a device printed after an empty line: its last line that holds
/// more than white space, without the white space around it. `None` when there is none.
pub fn prompt_from_output(text: &str) -> Option<&str> {
    text.rsplit('\n')
        .map(str::trim)
        .find(|line| !line.is_empty())
}

/// The pattern of a learnt `prompt`: the prompt text, literally, at the start of a line, with
/// any spaces after it.
pub fn prompt_pattern(prompt: &str) -> Result<ExpectPattern> {
    ExpectPattern::regex(&format!("(?m)^{}[ \\t]*", regex::escape(prompt.trim())))
}

/// The output of one command, assembled page by page from what `expect` gives before each pager
/// prompt and before the final prompt.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    text: String,
    /// The width of the pager prompt just answered: the erase of it starts the next text.
    erase: Option<usize>,
}

impl CommandOutput {
    /// Nothing yet.
    pub fn new() -> CommandOutput {
        CommandOutput::default()
    }

    /// Text that arrived before the pager prompt `pager` (which was then answered).
    pub fn page(&mut self, before: &str, pager: &str) {
        // Spaces before the pager prompt on its line are part of it (` --More-- `).
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let before = match before.get(line_start..) {
            Some(partial) if partial.trim_matches([' ', '\t']).is_empty() => &before[..line_start],
            _ => before,
        };
        self.push(before);
        // The text after the prompt starts with its erase (and the spaces around it).
        self.erase = Some(pager.chars().count() + 4);
    }

    /// Text that arrived (before the next pager prompt or the final prompt).
    pub fn push(&mut self, text: &str) {
        let text = match self.erase.take() {
            Some(width) => strip_erase(text, width),
            None => text,
        };
        self.text.push_str(text);
    }

    /// The output of `command`: everything pushed, without the command's echo (the first line,
    /// when it ends with the command) and without the line end before the prompt.
    pub fn finish(self, command: &str) -> String {
        let mut text = self.text.as_str();
        let command = command.trim();
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        if first.trim_end().ends_with(command) {
            text = rest;
        }
        text.strip_suffix('\n').unwrap_or(text).to_string()
    }
}

/// `text` without the erase of a pager prompt `width` characters wide at its start: a carriage
/// return style erase (`\r` spaces `\r`, or `\r` ESC `[K`) is folded into blank line ends, a
/// backspace style erase leaves at most `width` spaces (the backspaces are gone).
fn strip_erase(text: &str, width: usize) -> &str {
    let mut rest = text;
    let mut blank_lines = false;
    while let Some((line, after)) = rest.split_once('\n') {
        if !line.trim_matches([' ', '\t']).is_empty() {
            break;
        }
        rest = after;
        blank_lines = true;
    }
    if blank_lines {
        return rest;
    }
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    rest.get(spaces.min(width)..).unwrap_or(rest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::automation::ExpectBuffer;

    /// Feed raw device output through an expect buffer, answering pagers and stopping at the
    /// prompt, as `send_command` does.
    fn run(command: &str, prompt: &str, raw: &[&[u8]]) -> String {
        let pager = ExpectPattern::regex(DEFAULT_PAGER).unwrap();
        let prompt = prompt_pattern(prompt).unwrap();
        let patterns = [prompt, pager];
        let mut buffer = ExpectBuffer::new();
        let mut out = CommandOutput::new();
        for chunk in raw {
            buffer.feed(chunk);
            while let Some(m) = buffer.try_match(&patterns, 0) {
                if m.index == 0 {
                    out.push(&m.before);
                    return out.finish(command);
                }
                out.page(&m.before, &m.matched);
            }
        }
        panic!("no prompt in {raw:?}");
    }

    #[test]
    fn the_prompt_is_the_last_line_with_text() {
        assert_eq!(prompt_from_output("\r\nweb01:~$ "), Some("web01:~$"));
        assert_eq!(prompt_from_output("\nrouter#\n\n  "), Some("router#"));
        assert_eq!(prompt_from_output("\n \n"), None);
        assert_eq!(prompt_from_output(""), None);
    }

    #[test]
    fn the_prompt_matches_only_at_a_line_start() {
        let p = prompt_pattern("web01:~$").unwrap();
        assert!(p.as_regex().is_match("out\nweb01:~$ "));
        assert!(!p.as_regex().is_match("echo web01:~$"));
    }

    #[test]
    fn output_is_between_the_echo_and_the_prompt() {
        let got = run(
            "uname -a",
            "web01:~$",
            &[b"uname -a\r\nLinux web01 6.1\r\n", b"web01:~$ "],
        );
        assert_eq!(got, "Linux web01 6.1");
        // No output at all.
        assert_eq!(run("true", "web01:~$", &[b"true\r\nweb01:~$ "]), "");
        // A device that does not echo.
        assert_eq!(run("x", "p>", &[b"result\r\np> "]), "result");
    }

    #[test]
    fn carriage_return_pagers_are_answered_and_erased() {
        let got = run(
            "show run",
            "r1#",
            &[
                b"show run\r\nline 1\r\n  line 2\r\n--More--",
                b"\r        \r  line 3\r\n--More--(50%)",
                b"\r\x1b[Kline 4\r\nr1#",
            ],
        );
        assert_eq!(got, "line 1\n  line 2\n  line 3\nline 4");
    }

    #[test]
    fn backspace_pagers_are_answered_and_erased() {
        let got = run(
            "show ver",
            "sw1>",
            &[
                b"show ver\r\nIOS 15\r\n --More-- ",
                b"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08          \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08uptime 3d\r\n<--- More --->",
                b"\r              \r    indented\r\nsw1>",
            ],
        );
        assert_eq!(got, "IOS 15\nuptime 3d\n    indented");
    }
}
