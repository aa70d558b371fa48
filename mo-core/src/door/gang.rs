//! The shell's `gang` command: the line `gang NAME|GLOB|@GROUP… [-- COMMAND]` ([`GangLine`]) and,
//! in an interactive gang session, each line typed ([`GangInput`]: a `:` command or a line for
//! every device).
//!
//! ```
//! use mo_core::door::gang::{GangInput, GangLine};
//!
//! let line = GangLine::parse("gang web-* @db -- uptime").unwrap();
//! assert_eq!(line.targets, ["web-*", "@db"]);
//! assert_eq!(line.command.as_deref(), Some("uptime"));
//! assert_eq!(GangInput::parse(":pause web-1"), GangInput::Pause { devices: vec!["web-1".into()], pause: true });
//! ```

use super::args::{ArgError, ArgResult};

/// The usage of the shell's `gang` command.
pub const GANG_USAGE: &str =
    "usage: gang NAME… [-- COMMAND]   (without COMMAND: an interactive gang session)";

/// A `gang …` line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GangLine {
    /// Names, globs or `@GROUP`s (never empty).
    pub targets: Vec<String>,
    /// The command after ` -- ` (trimmed, never empty); `None` opens an interactive session.
    pub command: Option<String>,
}

impl GangLine {
    /// Read a whole `gang …` line (its first word is the command's): [`ArgError::NoTargets`]
    /// without a device, [`ArgError::EmptyCommand`] when ` -- ` is followed by nothing.
    pub fn parse(line: &str) -> ArgResult<GangLine> {
        let (names, command) = match line.split_once(" -- ") {
            Some((names, command)) => (names, Some(command.trim())),
            None => (line, None),
        };
        let targets: Vec<String> = names
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect();
        if targets.is_empty() {
            return Err(ArgError::NoTargets);
        }
        if command.is_some_and(str::is_empty) {
            return Err(ArgError::EmptyCommand);
        }
        Ok(GangLine {
            targets,
            command: command.map(str::to_string),
        })
    }
}

/// One line typed in an interactive gang session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GangInput {
    /// `:quit` (`:q`, `:exit`).
    Quit,
    /// `:help` (`:h`, `:?`).
    Help,
    /// `:devices`.
    Devices,
    /// `:pause DEV…` or `:resume DEV…` (at least one device).
    Pause {
        /// The devices as written.
        devices: Vec<String>,
        /// `true` for `:pause`, `false` for `:resume`.
        pause: bool,
    },
    /// `:pause-divergent on|off`.
    PauseDivergent(bool),
    /// Another word starting with `:` (or a gang command used wrongly): the word.
    Unknown(String),
    /// Anything else (an empty line too): the line, to send to every active device.
    Send(String),
}

impl GangInput {
    /// Read one typed line.
    pub fn parse(line: &str) -> GangInput {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [":quit" | ":q" | ":exit"] => GangInput::Quit,
            [":help" | ":h" | ":?"] => GangInput::Help,
            [":devices"] => GangInput::Devices,
            [verb @ (":pause" | ":resume"), devices @ ..] if !devices.is_empty() => {
                GangInput::Pause {
                    devices: devices.iter().map(|d| (*d).to_string()).collect(),
                    pause: *verb == ":pause",
                }
            }
            [":pause-divergent", value @ ("on" | "off")] => {
                GangInput::PauseDivergent(*value == "on")
            }
            [first, ..] if first.starts_with(':') => GangInput::Unknown((*first).to_string()),
            _ => GangInput::Send(line.to_string()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lines_read() {
        assert_eq!(
            GangLine::parse("gang a b").unwrap(),
            GangLine {
                targets: vec!["a".into(), "b".into()],
                command: None
            }
        );
        assert_eq!(
            GangLine::parse("gang a --  echo -- x ")
                .unwrap()
                .command
                .as_deref(),
            Some("echo -- x")
        );
        assert_eq!(GangLine::parse("gang"), Err(ArgError::NoTargets));
        assert_eq!(GangLine::parse("gang  -- ls"), Err(ArgError::NoTargets));
        assert_eq!(GangLine::parse("gang a --  "), Err(ArgError::EmptyCommand));
    }

    #[test]
    fn session_input_reads() {
        assert_eq!(GangInput::parse(" :q "), GangInput::Quit);
        assert_eq!(GangInput::parse(":?"), GangInput::Help);
        assert_eq!(GangInput::parse(":devices"), GangInput::Devices);
        assert_eq!(
            GangInput::parse(":resume a b"),
            GangInput::Pause {
                devices: vec!["a".into(), "b".into()],
                pause: false
            }
        );
        assert_eq!(
            GangInput::parse(":pause-divergent off"),
            GangInput::PauseDivergent(false)
        );
        assert_eq!(
            GangInput::parse(":pause"),
            GangInput::Unknown(":pause".into())
        );
        assert_eq!(
            GangInput::parse(":pause-divergent maybe"),
            GangInput::Unknown(":pause-divergent".into())
        );
        assert_eq!(GangInput::parse(""), GangInput::Send(String::new()));
        assert_eq!(
            GangInput::parse("uname -a"),
            GangInput::Send("uname -a".into())
        );
    }
}
