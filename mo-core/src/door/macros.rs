//! The shell's `macro` command line: `macro list`, `macro show NAME`, `macro check NAME|-`,
//! `macro play NAME TARGET… [--dry-run] [--parallel N] [--continue] [-- KEY=VALUE…]` and
//! `macro record NAME DEVICE`.
//!
//! ```
//! use mo_core::door::macros::MacroCommand;
//!
//! let cmd = MacroCommand::parse("macro play upgrade web-* -p 4 -- version=2.1").unwrap();
//! let MacroCommand::Play { name, play } = cmd else { unreachable!() };
//! assert_eq!((name.as_str(), play.parallel), ("upgrade", 4));
//! assert_eq!(play.args, [("version".to_string(), "2.1".to_string())]);
//! ```

use super::args::{ArgError, ArgResult};

/// The usage of the shell's `macro` command.
pub const MACRO_USAGE: &str = "\
usage: macro list
       macro show NAME
       macro check NAME|-            (- reads the macro text from stdin)
       macro play NAME TARGET… [--dry-run] [--parallel N] [--continue] [-- KEY=VALUE…]
       macro record NAME DEVICE";

/// Devices a play runs on at once unless `--parallel` says otherwise.
pub const DEFAULT_PARALLEL: usize = 16;

/// A `macro …` line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacroCommand {
    /// `macro list` (`ls`).
    List,
    /// `macro show NAME`.
    Show {
        /// The macro.
        name: String,
    },
    /// `macro check NAME|-`.
    Check {
        /// A stored macro's name, or `-` for the text on standard input.
        what: String,
    },
    /// `macro play NAME TARGET… [OPTIONS] [-- KEY=VALUE…]`.
    Play {
        /// The macro.
        name: String,
        /// Targets, options and arguments.
        play: PlayArgs,
    },
    /// `macro record NAME DEVICE`.
    Record {
        /// The macro to write.
        name: String,
        /// The device whose input is recorded.
        device: String,
    },
}

/// The words of `macro play` after the macro's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayArgs {
    /// Names, globs or `@GROUP`s (never empty).
    pub targets: Vec<String>,
    /// `--dry-run` (`-n`): show the bound steps, send nothing.
    pub dry_run: bool,
    /// `--parallel N` (`-p`): devices at once, 1 to 1000 (default [`DEFAULT_PARALLEL`]).
    pub parallel: usize,
    /// `--continue` (`-k`): the other devices go on after one fails.
    pub keep_going: bool,
    /// The macro's arguments after `--`, in order.
    pub args: Vec<(String, String)>,
}

/// The line's words after `macro` (before a ` -- `) and what follows the ` -- `.
fn split(line: &str) -> (Vec<&str>, Option<&str>) {
    let (head, tail) = match line.split_once(" -- ") {
        Some((h, t)) => (h, Some(t)),
        None => (line.strip_suffix(" --").unwrap_or(line), None),
    };
    (head.split_whitespace().skip(1).collect(), tail)
}

impl MacroCommand {
    /// Read a whole `macro …` line (its first word is the command's). [`ArgError::Usage`] when
    /// the words form none of the subcommands.
    pub fn parse(line: &str) -> ArgResult<MacroCommand> {
        let (words, tail) = split(line);
        let owned = |w: &str| w.to_string();
        Ok(match words.as_slice() {
            ["list" | "ls"] => MacroCommand::List,
            ["show", name] => MacroCommand::Show { name: owned(name) },
            ["check", what] => MacroCommand::Check { what: owned(what) },
            ["play", name, rest @ ..] => {
                let mut play = PlayArgs::parse(rest)?;
                let args: Vec<&str> = tail
                    .map(|t| t.split_whitespace().collect())
                    .unwrap_or_default();
                play.args = parse_macro_args(&args)?;
                MacroCommand::Play {
                    name: owned(name),
                    play,
                }
            }
            ["record", name, device] => MacroCommand::Record {
                name: owned(name),
                device: owned(device),
            },
            _ => return Err(ArgError::Usage { command: "macro" }),
        })
    }

    /// Whether the line reads stored macros (so the caller must be one who may see them):
    /// every subcommand but `check -` (the text comes from stdin) and `record` (checked its own
    /// way); not an empty `macro` line.
    pub fn reads_stored(line: &str) -> bool {
        let (words, _) = split(line);
        !words.is_empty() && !matches!(words.as_slice(), ["check", "-"] | ["record", ..])
    }
}

impl PlayArgs {
    /// Read the words after `macro play NAME` (before any ` -- `); [`PlayArgs::args`] is left
    /// empty.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> ArgResult<PlayArgs> {
        let mut a = PlayArgs {
            targets: Vec::new(),
            dry_run: false,
            parallel: DEFAULT_PARALLEL,
            keep_going: false,
            args: Vec::new(),
        };
        let mut it = words.iter().map(AsRef::as_ref);
        while let Some(w) = it.next() {
            match w {
                "--dry-run" | "-n" => a.dry_run = true,
                "--continue" | "-k" => a.keep_going = true,
                "--parallel" | "-p" => {
                    let n = it.next().ok_or_else(|| ArgError::MissingValue {
                        option: w.to_string(),
                    })?;
                    a.parallel = match n.parse::<usize>() {
                        Ok(n) if (1..=1000).contains(&n) => n,
                        _ => {
                            return Err(ArgError::BadValue {
                                option: w.to_string(),
                                value: n.to_string(),
                                expected: "a number from 1 to 1000",
                            });
                        }
                    };
                }
                w if w.starts_with('-') => {
                    return Err(ArgError::UnknownOption {
                        option: w.to_string(),
                    });
                }
                w => a.targets.push(w.to_string()),
            }
        }
        if a.targets.is_empty() {
            return Err(ArgError::NoTargets);
        }
        Ok(a)
    }
}

/// Read `KEY=VALUE` words into macro arguments, in order (the key is not empty; the value may
/// be, and may hold `=`).
pub fn parse_macro_args<S: AsRef<str>>(words: &[S]) -> ArgResult<Vec<(String, String)>> {
    words
        .iter()
        .map(|w| match w.as_ref().split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ArgError::BadMacroArgument {
                word: w.as_ref().to_string(),
            }),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_read() {
        assert_eq!(MacroCommand::parse("macro ls").unwrap(), MacroCommand::List);
        assert_eq!(
            MacroCommand::parse("macro  show  x").unwrap(),
            MacroCommand::Show { name: "x".into() }
        );
        assert_eq!(
            MacroCommand::parse("macro record m d").unwrap(),
            MacroCommand::Record {
                name: "m".into(),
                device: "d".into()
            }
        );
        for usage in [
            "macro",
            "macro list x",
            "macro show",
            "macro record m",
            "macro frob",
        ] {
            assert_eq!(
                MacroCommand::parse(usage),
                Err(ArgError::Usage { command: "macro" }),
                "{usage}"
            );
        }
        let MacroCommand::Play { name, play } =
            MacroCommand::parse("macro play m a -n --continue @g --parallel 3 -- x=1 y= z=a=b")
                .unwrap()
        else {
            panic!("not play")
        };
        assert_eq!(name, "m");
        assert_eq!(play.targets, ["a", "@g"]);
        assert!(play.dry_run && play.keep_going);
        assert_eq!(play.parallel, 3);
        assert_eq!(
            play.args,
            [
                ("x".into(), "1".into()),
                ("y".into(), String::new()),
                ("z".into(), "a=b".into())
            ]
        );
        // A trailing `--` with nothing after it is no argument.
        let MacroCommand::Play { play, .. } = MacroCommand::parse("macro play m a --").unwrap()
        else {
            panic!("not play")
        };
        assert!(play.args.is_empty() && play.targets == ["a"]);
    }

    #[test]
    fn play_errors_name_the_word() {
        let err = |line: &str| MacroCommand::parse(line).unwrap_err();
        assert_eq!(err("macro play m"), ArgError::NoTargets);
        assert_eq!(
            err("macro play m a --parallel"),
            ArgError::MissingValue {
                option: "--parallel".into()
            }
        );
        assert_eq!(
            err("macro play m a -p 0").to_string(),
            "-p needs a number from 1 to 1000, not `0`"
        );
        assert_eq!(
            err("macro play m a --frob"),
            ArgError::UnknownOption {
                option: "--frob".into()
            }
        );
        assert_eq!(
            err("macro play m a -- =x").to_string(),
            "bad macro argument `=x`: use NAME=VALUE"
        );
        assert_eq!(
            err("macro play m a -- novalue"),
            ArgError::BadMacroArgument {
                word: "novalue".into()
            }
        );
    }

    #[test]
    fn which_lines_read_stored_macros() {
        for yes in [
            "macro list",
            "macro show x",
            "macro check x",
            "macro play m a",
            "macro frob",
        ] {
            assert!(MacroCommand::reads_stored(yes), "{yes}");
        }
        for no in ["macro", "macro check -", "macro record m d", "macro record"] {
            assert!(!MacroCommand::reads_stored(no), "{no}");
        }
    }
}
