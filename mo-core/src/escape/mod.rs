//! Escape sequences: the sans-I/O parser every front end runs over a viewer's keystrokes.
//!
//! A viewer types into a console; the [`EscapeParser`] splits those bytes into data for the device
//! and commands for mo. With the default prefix `^Ec` (Ctrl-E then `c`), as in conserver:
//!
//! | typed after `^Ec`       | result                                                          |
//! |-------------------------|-----------------------------------------------------------------|
//! | `.`                     | [`Command::Disconnect`]                                         |
//! | `a` / `s` / `f` / `j`   | [`Command::Attach`] / [`Command::Spy`] / [`Command::Force`] / [`Command::Join`] |
//! | `w`                     | [`Command::Who`]                                                |
//! | `r`                     | [`Command::Replay`] of [`DEFAULT_REPLAY_LINES`] (20)            |
//! | `p` digits Enter        | [`Command::Replay`] of that many lines (Enter alone: [`DEFAULT_PLAYBACK_LINES`], at most [`MAX_REPLAY_LINES`]) |
//! | `l` `1`–`9`             | [`Command::Break`] (see [`crate::breakseq`])                    |
//! | `l` `?` or `l` Enter    | [`Command::ListBreaks`]                                         |
//! | `n` text Enter          | [`Command::Note`] (at most [`MAX_NOTE_LEN`] bytes)              |
//! | `o` / `i`               | [`Command::Reconnect`] / [`Command::Info`]                      |
//! | `P`                     | [`Command::PowerMenu`], then one key of the power menu (below)  |
//! | `D` / `R` then `1` `0` `t` | [`Command::Signal`]: DTR / RTS on, off, toggle             |
//! | `?` or `h`              | [`Command::Help`] (show [`help_text`])                          |
//! | the first prefix byte   | the prefix itself is sent to the device (`^Ec^E` sends `^Ec`)   |
//! | Enter, Esc or Ctrl-C    | nothing: the escape is abandoned                                |
//! | anything else           | [`Input::Error`] naming the key and how to get help            |
//!
//! The prefix is recognised anywhere in the stream, not only after a newline. When the first
//! prefix byte is followed by anything but the second, the first byte goes to the device and the
//! following byte is read afresh: `^E` `x` sends both, and `^E^Ec.` sends one `^E` and disconnects.
//! A first prefix byte at the very end of a [`EscapeParser::feed`] is held until the next byte
//! arrives (see [`EscapeParser::pending`]).
//!
//! The power menu (`P`) reads one more key: `s` gives [`Command::PowerStatus`], `1`
//! [`Command::Power`] with [`PowerAction::On`] at once; the destructive ones — `0` off, `c` cycle,
//! `r` reset, `d` soft-off — first ask to type `yes` (Enter finishes; anything else does nothing).
//! Esc, Ctrl-C, Enter or `q` close the menu. See [`POWER_MENU`].
//!
//! The prompts of `p` and `n` (and the power confirmation) are line editors: typed characters, the prompt and erasures come
//! back as [`Input::Echo`] for the front end to show the viewer (they never reach the device);
//! Backspace or Del erases, Ctrl-U clears, Esc or Ctrl-C cancels, Enter finishes.
//!
//! The parser is a plain state machine: feeding a stream in any pieces gives the same inputs as
//! feeding it whole (only the grouping of adjacent [`Input::Data`] or [`Input::Echo`] differs). It
//! never panics and holds at most [`MAX_NOTE_LEN`] bytes between calls.
//!
//! ```
//! use mo_core::escape::{Command, EscapeConfig, EscapeParser, Input};
//!
//! let mut parser = EscapeParser::new(EscapeConfig::default());
//! let out = parser.feed(b"ls\r\x05cp4");
//! assert_eq!(out[0], Input::Data(b"ls\r".to_vec()));
//! assert!(parser.pending());
//! let out = parser.feed(b"2\r");
//! assert_eq!(out.last(), Some(&Input::Command(Command::Replay(42))));
//! ```

mod config;

pub use config::EscapeConfig;

use crate::link::Signal;
use crate::power::PowerAction;

use config::{describe_byte, notation};

/// Lines replayed by `^Ecr`.
pub const DEFAULT_REPLAY_LINES: u32 = 20;
/// Lines replayed by `^Ecp` when Enter is pressed without a number (conserver's playback).
pub const DEFAULT_PLAYBACK_LINES: u32 = 60;
/// The largest number `^Ecp` accepts.
pub const MAX_REPLAY_LINES: u32 = 10_000;
/// The longest note `^Ecn` accepts, in bytes.
pub const MAX_NOTE_LEN: usize = 1000;

/// The prompt echoed by `^Ecp`.
const REPLAY_PROMPT: &[u8] = b"[replay how many lines: ";
/// The prompt echoed by `^Ecn`.
const NOTE_PROMPT: &[u8] = b"[note: ";
/// Echoed when a prompt is finished with Enter.
const PROMPT_DONE: &[u8] = b"]\r\n";
/// Echoed when a prompt is cancelled.
const PROMPT_CANCELLED: &[u8] = b" cancelled]\r\n";
/// Echoed to erase one character.
const ERASE: &[u8] = b"\x08 \x08";
/// Echoed when a key is refused.
const BELL: &[u8] = b"\x07";
/// The power menu's keys, as front ends show them when [`Command::PowerMenu`] opens it.
pub const POWER_MENU: &str =
    "power: s status, 1 on, 0 off, c cycle, r reset, d soft-off; Esc closes";
/// Echoed when the power menu is closed without choosing.
const POWER_MENU_CLOSED: &[u8] = b"[power menu closed]\r\n";
/// Echoed when a destructive power action was not confirmed.
const POWER_NOT_CONFIRMED: &[u8] = b" - not confirmed, nothing done]\r\n";
/// The longest confirmation the power prompt takes (`yes` with room for typos).
const MAX_CONFIRM_LEN: usize = 16;
/// The most characters the replay prompt takes (`10000` or `00042`).
const MAX_REPLAY_DIGITS: u8 = 5;

const BACKSPACE: u8 = 0x08;
const DEL: u8 = 0x7f;
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;

/// What a viewer's bytes mean, in the order they were typed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// Bytes for the console's device. Consecutive data within one `feed` is one item.
    Data(Vec<u8>),
    /// An escape command for the front end and the console to carry out.
    Command(Command),
    /// Text to show this viewer only (prompts, typed argument characters, erasures, bells). It
    /// is raw terminal output: lines end in CR LF. Consecutive echo within one `feed` is one item.
    Echo(Vec<u8>),
    /// A mistyped escape, with a message for the viewer (one line, no line ending).
    Error(String),
}

/// An escape command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// `.`: leave the console.
    Disconnect,
    /// `a`: take the write lock if it is free, else stay a spy (with a notice).
    Attach,
    /// `s`: become read-only.
    Spy,
    /// `f`: take the write lock; the holder is demoted to spy with a notice.
    Force,
    /// `j`: write alongside the current holder, where policy allows.
    Join,
    /// `w`: list who is on this console.
    Who,
    /// `r` (20 lines) or `p` N Enter: replay the last N lines of output.
    Replay(u32),
    /// `l` 1–9: send break sequence N of the console.
    Break(u8),
    /// `l?` or `l` Enter: list the console's break sequences.
    ListBreaks,
    /// `n` text Enter: write a note into the console's record log.
    Note(String),
    /// `o`: drop the device link and connect again.
    Reconnect,
    /// `i`: show information about the console.
    Info,
    /// `?` or `h`: show the escape help ([`help_text`]).
    Help,
    /// `P`: the power menu opened; show the device's power state and [`POWER_MENU`]. The parser
    /// reads the menu key next (call [`EscapeParser::reset`] to close it, e.g. when the device
    /// has no power control).
    PowerMenu,
    /// `P` `s`: show the device's power state.
    PowerStatus,
    /// `P` then `1` (on), or `0` / `c` / `r` / `d` confirmed with `yes`: switch the device's power.
    Power(PowerAction),
    /// `D` (DTR) or `R` (RTS), then `1` raise, `0` drop or `t` toggle (`to` is `None`).
    Signal {
        /// The line.
        line: Signal,
        /// Raise (`true`), drop (`false`), or toggle (`None`).
        to: Option<bool>,
    },
}

/// Where the parser is within an escape sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Passing data through.
    Idle,
    /// Saw the first prefix byte.
    SawFirst,
    /// Saw the whole prefix; the next byte is the command.
    Command,
    /// `p`: reading a line count. `value` is the number so far, `digits` how many characters.
    ReplayCount { value: u32, digits: u8 },
    /// `l`: reading a break sequence number.
    BreakNumber,
    /// `n`: reading the note text (at most [`MAX_NOTE_LEN`] bytes).
    Note(Vec<u8>),
    /// `P`: the power menu is open; the next byte chooses.
    PowerMenu,
    /// `D` or `R`: the next byte says on, off or toggle.
    Signal(Signal),
    /// A destructive power action waits for `yes` (at most [`MAX_CONFIRM_LEN`] bytes).
    PowerConfirm(PowerAction, Vec<u8>),
}

/// The escape-sequence state machine of one viewer. Bytes in, [`Input`]s out; no I/O.
#[derive(Debug, Clone)]
pub struct EscapeParser {
    config: EscapeConfig,
    state: State,
}

impl Default for EscapeParser {
    /// A parser with the default prefix `^Ec`.
    fn default() -> Self {
        EscapeParser::new(EscapeConfig::default())
    }
}

impl EscapeParser {
    /// A parser for this escape prefix, outside any escape sequence.
    pub fn new(config: EscapeConfig) -> Self {
        EscapeParser {
            config,
            state: State::Idle,
        }
    }

    /// The escape prefix this parser recognises.
    pub fn config(&self) -> &EscapeConfig {
        &self.config
    }

    /// True while in the middle of an escape sequence: the parser holds a first prefix byte, waits
    /// for a command, or is reading a prompt's argument.
    pub fn pending(&self) -> bool {
        self.state != State::Idle
    }

    /// Abandon any escape sequence in progress, discarding what was typed of it (including a held
    /// first prefix byte).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Parse the next bytes a viewer typed. The sequence may continue in the next call.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Input> {
        let mut out = Output::default();
        for &byte in bytes {
            self.step(byte, &mut out);
        }
        out.items
    }

    fn step(&mut self, byte: u8, out: &mut Output) {
        let [first, second] = self.config.prefix;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => {
                if byte == first {
                    self.state = State::SawFirst;
                } else {
                    out.data(&[byte]);
                }
            }
            State::SawFirst => {
                if byte == second {
                    self.state = State::Command;
                } else {
                    out.data(&[first]);
                    // Read the byte afresh: it may start an escape itself. The state is Idle,
                    // which never recurses, so this goes one level deep at most.
                    self.step(byte, out);
                }
            }
            State::Command => self.command(byte, out),
            State::ReplayCount { value, digits } => self.replay_count(value, digits, byte, out),
            State::BreakNumber => self.break_number(byte, out),
            State::Signal(line) => self.signal(line, byte, out),
            State::Note(text) => self.note(text, byte, out),
            State::PowerMenu => self.power_menu(byte, out),
            State::PowerConfirm(action, text) => self.power_confirm(action, text, byte, out),
        }
    }

    /// The byte right after the prefix.
    fn command(&mut self, byte: u8, out: &mut Output) {
        let command = match byte {
            _ if byte == self.config.prefix[0] => {
                out.data(&self.config.prefix);
                return;
            }
            b'.' => Command::Disconnect,
            b'a' => Command::Attach,
            b's' => Command::Spy,
            b'f' => Command::Force,
            b'j' => Command::Join,
            b'w' => Command::Who,
            b'r' => Command::Replay(DEFAULT_REPLAY_LINES),
            b'o' => Command::Reconnect,
            b'i' => Command::Info,
            b'?' | b'h' => Command::Help,
            b'p' => {
                out.echo(REPLAY_PROMPT);
                self.state = State::ReplayCount {
                    value: 0,
                    digits: 0,
                };
                return;
            }
            b'l' => {
                self.state = State::BreakNumber;
                return;
            }
            b'n' => {
                out.echo(NOTE_PROMPT);
                self.state = State::Note(Vec::new());
                return;
            }
            b'D' | b'R' => {
                self.state = State::Signal(if byte == b'D' {
                    Signal::Dtr
                } else {
                    Signal::Rts
                });
                return;
            }
            b'P' => {
                self.state = State::PowerMenu;
                Command::PowerMenu
            }
            b'\r' | b'\n' | ESC | CTRL_C => return,
            other => {
                out.error(format!(
                    "unknown escape command {} — {} ? for help",
                    show_key(other),
                    self.config.describe()
                ));
                return;
            }
        };
        out.command(command);
    }

    /// A byte of `p`'s line count.
    fn replay_count(&mut self, value: u32, digits: u8, byte: u8, out: &mut Output) {
        let mut keep = |value: u32, digits: u8| {
            self.state = State::ReplayCount { value, digits };
        };
        match byte {
            b'0'..=b'9' => {
                let next = value * 10 + u32::from(byte - b'0');
                if digits < MAX_REPLAY_DIGITS && next <= MAX_REPLAY_LINES {
                    out.echo(&[byte]);
                    keep(next, digits + 1);
                } else {
                    out.echo(BELL);
                    keep(value, digits);
                }
            }
            BACKSPACE | DEL => {
                if digits == 0 {
                    out.echo(BELL);
                    keep(value, digits);
                } else {
                    out.echo(ERASE);
                    keep(value / 10, digits - 1);
                }
            }
            CTRL_U => {
                for _ in 0..digits {
                    out.echo(ERASE);
                }
                keep(0, 0);
            }
            b'\r' | b'\n' => {
                out.echo(PROMPT_DONE);
                let lines = if digits == 0 {
                    DEFAULT_PLAYBACK_LINES
                } else {
                    value
                };
                out.command(Command::Replay(lines));
            }
            ESC | CTRL_C => out.echo(PROMPT_CANCELLED),
            _ => {
                out.echo(BELL);
                keep(value, digits);
            }
        }
    }

    /// The byte after `l`.
    fn break_number(&mut self, byte: u8, out: &mut Output) {
        match byte {
            b'1'..=b'9' => out.command(Command::Break(byte - b'0')),
            b'?' | b'\r' | b'\n' => out.command(Command::ListBreaks),
            ESC | CTRL_C => {}
            other => out.error(format!(
                "unknown break sequence {} — {} l 1 to 9 sends one, {} l ? lists them",
                show_key(other),
                self.config.describe(),
                self.config.describe()
            )),
        }
    }

    /// The byte after `D` or `R`.
    fn signal(&mut self, line: Signal, byte: u8, out: &mut Output) {
        let to = match byte {
            b'1' => Some(true),
            b'0' => Some(false),
            b't' | b'T' => None,
            b'\r' | b'\n' | ESC | CTRL_C => return,
            other => {
                return out.error(format!(
                    "unknown {} key {} — 1 raises, 0 drops, t toggles; {} ? for help",
                    line.name(),
                    show_key(other),
                    self.config.describe()
                ));
            }
        };
        out.command(Command::Signal { line, to });
    }

    /// A byte of `n`'s note text.
    fn note(&mut self, mut text: Vec<u8>, byte: u8, out: &mut Output) {
        match byte {
            b'\r' | b'\n' => {
                if text.is_empty() {
                    out.echo(PROMPT_CANCELLED);
                } else {
                    out.echo(PROMPT_DONE);
                    out.command(Command::Note(String::from_utf8_lossy(&text).into_owned()));
                }
                return;
            }
            ESC | CTRL_C => {
                out.echo(PROMPT_CANCELLED);
                return;
            }
            BACKSPACE | DEL => {
                if pop_char(&mut text) {
                    out.echo(ERASE);
                } else {
                    out.echo(BELL);
                }
            }
            CTRL_U => {
                while pop_char(&mut text) {
                    out.echo(ERASE);
                }
            }
            0x00..=0x1f => out.echo(BELL),
            _ if text.len() >= MAX_NOTE_LEN => out.echo(BELL),
            _ => {
                text.push(byte);
                out.echo(&[byte]);
            }
        }
        self.state = State::Note(text);
    }
}

impl EscapeParser {
    /// The key chosen in the power menu.
    fn power_menu(&mut self, byte: u8, out: &mut Output) {
        let action = match byte {
            b's' | b'S' => {
                out.command(Command::PowerStatus);
                return;
            }
            b'1' => {
                out.command(Command::Power(PowerAction::On));
                return;
            }
            b'0' => PowerAction::Off,
            b'c' | b'C' => PowerAction::Cycle,
            b'r' | b'R' => PowerAction::Reset,
            b'd' | b'D' => PowerAction::SoftOff,
            b'q' | b'\r' | b'\n' | ESC | CTRL_C => {
                out.echo(POWER_MENU_CLOSED);
                return;
            }
            other => {
                out.error(format!(
                    "unknown power menu key {} — {POWER_MENU}",
                    show_key(other)
                ));
                return;
            }
        };
        out.echo(format!("[power {action}: type yes to confirm: ").as_bytes());
        self.state = State::PowerConfirm(action, Vec::new());
    }

    /// A byte of the power confirmation.
    fn power_confirm(
        &mut self,
        action: PowerAction,
        mut text: Vec<u8>,
        byte: u8,
        out: &mut Output,
    ) {
        match byte {
            b'\r' | b'\n' => {
                if text.eq_ignore_ascii_case(b"yes") {
                    out.echo(PROMPT_DONE);
                    out.command(Command::Power(action));
                } else {
                    out.echo(POWER_NOT_CONFIRMED);
                }
                return;
            }
            ESC | CTRL_C => {
                out.echo(PROMPT_CANCELLED);
                return;
            }
            BACKSPACE | DEL => {
                if text.pop().is_some() {
                    out.echo(ERASE);
                } else {
                    out.echo(BELL);
                }
            }
            CTRL_U => {
                while text.pop().is_some() {
                    out.echo(ERASE);
                }
            }
            0x20..=0x7e if text.len() < MAX_CONFIRM_LEN => {
                text.push(byte);
                out.echo(&[byte]);
            }
            _ => out.echo(BELL),
        }
        self.state = State::PowerConfirm(action, text);
    }
}

/// Remove the last UTF-8 character (or stray byte) of `text`; false if it was empty.
fn pop_char(text: &mut Vec<u8>) -> bool {
    while let Some(byte) = text.pop() {
        // Continuation bytes belong to the character still being removed.
        if byte & 0xc0 != 0x80 || text.is_empty() {
            return true;
        }
    }
    false
}

/// A key as named in error messages: `'x'`, `Ctrl-X`, `Space`.
fn show_key(byte: u8) -> String {
    match byte {
        0x21..=0x7e => format!("'{}'", char::from(byte)),
        _ => describe_byte(byte),
    }
}

/// The help for the escape commands, as [`Command::Help`] should show it: conserver style, one
/// command a line, each written with the configured prefix (`^Ec.`). Lines end in CR LF, ready
/// for a raw terminal.
pub fn help_text(config: &EscapeConfig) -> String {
    let prefix = config.to_string();
    let [first, _] = config.prefix;
    let rows: Vec<(String, String)> = vec![
        (".".into(), "disconnect".into()),
        (
            "a".into(),
            "attach read-write (spy if someone else holds it)".into(),
        ),
        ("s".into(), "switch to spy mode (read-only)".into()),
        (
            "f".into(),
            "force attach read-write (the holder becomes a spy)".into(),
        ),
        (
            "j".into(),
            "join: write alongside the current holder".into(),
        ),
        ("w".into(), "who is using this console".into()),
        (
            "r".into(),
            format!("replay the last {DEFAULT_REPLAY_LINES} lines"),
        ),
        (
            "p".into(),
            format!("replay the last N lines (asks for N; Enter alone: {DEFAULT_PLAYBACK_LINES})"),
        ),
        ("l1-9".into(), "send break sequence 1 to 9".into()),
        ("l?".into(), "list the break sequences".into()),
        ("n".into(), "write a note into the console log".into()),
        ("o".into(), "reconnect to the device".into()),
        ("i".into(), "information about this console".into()),
        (
            "P".into(),
            "power menu: s status, 1 on, 0 off, c cycle, r reset, d soft-off (asks yes)".into(),
        ),
        ("D1 D0 Dt".into(), "DTR on, off, toggle".into()),
        ("R1 R0 Rt".into(), "RTS on, off, toggle".into()),
        ("?".into(), "print this help (also h)".into()),
        (
            notation(first),
            format!("send {prefix} itself to the console"),
        ),
        ("<cr>".into(), "ignore / abort the escape".into()),
    ];
    let width = rows
        .iter()
        .map(|(key, _)| prefix.len() + key.len())
        .max()
        .unwrap_or(0)
        + 2;
    let mut text = format!("escape sequences ({prefix} is {}):\r\n", config.describe());
    for (key, what) in &rows {
        let sequence = format!("{prefix}{key}");
        text.push_str(&format!("  {sequence:<width$}{what}\r\n"));
    }
    text
}

/// Collects a `feed`'s inputs, joining adjacent data and adjacent echo.
#[derive(Default)]
struct Output {
    items: Vec<Input>,
}

impl Output {
    fn data(&mut self, bytes: &[u8]) {
        match self.items.last_mut() {
            Some(Input::Data(data)) => data.extend_from_slice(bytes),
            _ => self.items.push(Input::Data(bytes.to_vec())),
        }
    }

    fn echo(&mut self, bytes: &[u8]) {
        match self.items.last_mut() {
            Some(Input::Echo(echo)) => echo.extend_from_slice(bytes),
            _ => self.items.push(Input::Echo(bytes.to_vec())),
        }
    }

    fn command(&mut self, command: Command) {
        self.items.push(Input::Command(command));
    }

    fn error(&mut self, message: String) {
        self.items.push(Input::Error(message));
    }
}

#[cfg(test)]
mod tests;
