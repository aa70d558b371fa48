//! Command lines of the SSH shell (`ssh alice@host`, `ssh alice@host COMMAND`): the first word
//! picks the command ([`ShellCommand::parse`]); `log` lines are split like a POSIX shell
//! ([`split_args`]) and read by [`LogArgs::parse`].

use super::BadInput;
use crate::console::Mode;

/// The most lines a shell command may ask to replay.
pub const MAX_REPLAY: usize = 100_000;

/// One shell command line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellCommand {
    /// A blank line.
    Empty,
    /// `console|attach|c|spy|force|join NAME [LINES]`.
    Attach {
        /// The mode the command word asks for.
        mode: Mode,
        /// The device.
        device: String,
        /// Lines to replay (0 to [`MAX_REPLAY`]), if given.
        replay: Option<usize>,
    },
    /// `help` or `?`.
    Help,
    /// `list` or `ls`.
    List,
    /// `who [NAME]`.
    Who(Option<String>),
    /// `power SUB NAME…` (the words after SUB are read by the power command).
    Power {
        /// The subcommand (status, on, off, …), as written.
        sub: String,
        /// The words after it (at least one).
        args: Vec<String>,
    },
    /// `events [NAME] [N]`: a number is the count (1 to 10000), a word the device.
    Events {
        /// The device, if given.
        device: Option<String>,
        /// How many events.
        limit: usize,
    },
    /// `ack ID` (`#ID` too).
    Ack(u64),
    /// `listen NAME…`.
    Listen(Vec<String>),
    /// `gang …`: the gang command reads the whole line.
    Gang,
    /// `log …`: read the whole line with [`split_args`] and [`LogArgs::parse`].
    Log,
    /// `macro …`: the macro command reads the whole line.
    Macro,
    /// `maintenance …`: the maintenance command reads the whole line.
    Maintenance,
    /// `dtr NAME on|off|toggle` or `rts NAME on|off|toggle`.
    Signal {
        /// The line.
        line: crate::link::Signal,
        /// The device.
        device: String,
        /// Raise (`true`), drop (`false`) or toggle (`None`).
        to: Option<bool>,
    },
    /// `power` without a device: show the power command's usage (exit status 2).
    PowerUsage,
    /// A known command used wrongly: the message to show (exit status 2).
    Usage(String),
    /// An unknown command: its word (exit status 127).
    Unknown(String),
}

impl ShellCommand {
    /// Read a command line (blanks separate words).
    pub fn parse(line: &str) -> ShellCommand {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return ShellCommand::Empty;
        };
        let owned = |words: &[&str]| words.iter().map(|w| (*w).to_string()).collect::<Vec<_>>();
        let mode = match cmd {
            "console" | "attach" | "c" => Some(Mode::Attach),
            "spy" => Some(Mode::Spy),
            "force" => Some(Mode::Force),
            "join" => Some(Mode::Join),
            _ => None,
        };
        if let Some(mode) = mode {
            return match args {
                [device] => ShellCommand::Attach {
                    mode,
                    device: (*device).to_string(),
                    replay: None,
                },
                [device, lines] => match lines.parse::<usize>() {
                    Ok(n) if n <= MAX_REPLAY => ShellCommand::Attach {
                        mode,
                        device: (*device).to_string(),
                        replay: Some(n),
                    },
                    _ => ShellCommand::Usage(format!(
                        "bad line count `{lines}`: give 0 to 100000 lines to replay"
                    )),
                },
                _ => ShellCommand::Usage(format!("usage: {cmd} NAME [LINES]")),
            };
        }
        match (cmd, args) {
            ("help" | "?", _) => ShellCommand::Help,
            ("list" | "ls", []) => ShellCommand::List,
            ("who", []) => ShellCommand::Who(None),
            ("who", [device]) => ShellCommand::Who(Some((*device).to_string())),
            ("power", [sub, names @ ..]) if !names.is_empty() => ShellCommand::Power {
                sub: (*sub).to_string(),
                args: owned(names),
            },
            ("events", rest) if rest.len() <= 2 => {
                let (mut device, mut limit) = (None, 20);
                for arg in rest {
                    match arg.parse::<usize>() {
                        Ok(n) => limit = n.clamp(1, 10_000),
                        Err(_) => device = Some((*arg).to_string()),
                    }
                }
                ShellCommand::Events { device, limit }
            }
            ("gang", _) => ShellCommand::Gang,
            ("ack", [id]) => match id.trim_start_matches('#').parse::<u64>() {
                Ok(id) => ShellCommand::Ack(id),
                Err(_) => ShellCommand::Usage(format!("bad event id `{id}`")),
            },
            ("log", _) => ShellCommand::Log,
            ("listen", names) => ShellCommand::Listen(owned(names)),
            ("macro", _) => ShellCommand::Macro,
            ("maintenance", _) => ShellCommand::Maintenance,
            ("dtr" | "rts", [device, set]) if matches!(*set, "on" | "off" | "toggle") => {
                ShellCommand::Signal {
                    line: if cmd == "dtr" {
                        crate::link::Signal::Dtr
                    } else {
                        crate::link::Signal::Rts
                    },
                    device: (*device).to_string(),
                    to: match *set {
                        "on" => Some(true),
                        "off" => Some(false),
                        _ => None,
                    },
                }
            }
            ("dtr" | "rts", _) => ShellCommand::Usage(format!("usage: {cmd} NAME on|off|toggle")),
            ("power", _) => ShellCommand::PowerUsage,
            ("list" | "who", _) => ShellCommand::Usage(format!(
                "usage: {cmd}{}",
                if cmd == "who" { " [NAME]" } else { "" }
            )),
            _ => ShellCommand::Unknown(cmd.to_string()),
        }
    }
}

/// The subcommands of `log`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogSub {
    /// `log show NAME`: the rendered log.
    #[default]
    Show,
    /// `log search NAME REGEX`.
    Search,
    /// `log notes NAME`: the notes.
    Notes,
    /// `log note NAME TEXT…`: write a note.
    Note,
}

impl LogSub {
    /// The word that names it.
    pub fn name(self) -> &'static str {
        match self {
            LogSub::Show => "show",
            LogSub::Search => "search",
            LogSub::Notes => "notes",
            LogSub::Note => "note",
        }
    }
}

/// A parsed `log` command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogArgs {
    /// The subcommand.
    pub sub: LogSub,
    /// The device.
    pub device: String,
    /// Positional words after NAME (the REGEX, or the note's words).
    pub rest: Vec<String>,
    /// `--since`, as written.
    pub since: Option<String>,
    /// `--until`, as written.
    pub until: Option<String>,
    /// `--tail N`.
    pub tail: Option<usize>,
    /// `--around SEQ`.
    pub around: Option<u64>,
    /// `-B N`.
    pub before: Option<usize>,
    /// `-A N`.
    pub after: Option<usize>,
    /// `-C N`.
    pub context: Option<usize>,
    /// `-i`.
    pub ignore_case: bool,
}

impl LogArgs {
    /// Parse the words after `log` (see [`split_args`]). The error is the message for the user.
    pub fn parse(words: &[String]) -> Result<LogArgs, BadInput> {
        Self::parse_words(words).map_err(|reason| BadInput {
            what: "the log command",
            reason,
        })
    }

    fn parse_words(words: &[String]) -> Result<LogArgs, String> {
        let Some((sub, args)) = words.split_first() else {
            return Err("log: which subcommand?".to_owned());
        };
        let sub = match sub.as_str() {
            "show" => LogSub::Show,
            "search" => LogSub::Search,
            "notes" => LogSub::Notes,
            "note" => LogSub::Note,
            other => return Err(format!("unknown log subcommand `{other}`")),
        };
        let mut p = LogArgs {
            sub,
            ..Default::default()
        };
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(word) = it.next() {
            // A note's text is taken as written, options and all.
            if sub == LogSub::Note && !positional.is_empty() {
                positional.push(word.clone());
                continue;
            }
            let (flag, inline) = match word.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (word.as_str(), None),
            };
            let allowed: &[&str] = match sub {
                LogSub::Show => &[
                    "--since",
                    "--until",
                    "--tail",
                    "--around",
                    "-C",
                    "--context",
                ],
                LogSub::Search => &[
                    "--since",
                    "--until",
                    "-B",
                    "-A",
                    "-C",
                    "--before",
                    "--after",
                    "--context",
                    "-i",
                    "--ignore-case",
                ],
                LogSub::Notes => &["--since", "--until"],
                LogSub::Note => &[],
            };
            if !flag.starts_with('-') || flag == "-" || (sub == LogSub::Search && flag == "--") {
                if flag == "--" {
                    positional.extend(it.by_ref().cloned());
                } else {
                    positional.push(word.clone());
                }
                continue;
            }
            if !allowed.contains(&flag) {
                return Err(format!("log {}: unknown option `{flag}`", sub.name()));
            }
            if matches!(flag, "-i" | "--ignore-case") {
                p.ignore_case = true;
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option `{flag}` needs a value"))?,
            };
            let count = |v: &str| -> Result<usize, String> {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 1_000_000)
                    .ok_or_else(|| format!("{flag}: `{v}` is not a count (0 to 1000000)"))
            };
            match flag {
                "--since" => p.since = Some(value),
                "--until" => p.until = Some(value),
                "--tail" => p.tail = Some(count(&value)?),
                "--around" => {
                    p.around = Some(
                        value
                            .trim_start_matches('#')
                            .parse()
                            .map_err(|_| format!("--around: `{value}` is not a sequence number"))?,
                    )
                }
                "-B" | "--before" => p.before = Some(count(&value)?),
                "-A" | "--after" => p.after = Some(count(&value)?),
                _ => p.context = Some(count(&value)?),
            }
        }
        let mut positional = positional.into_iter();
        p.device = positional
            .next()
            .ok_or_else(|| format!("log {} needs a device NAME", sub.name()))?;
        p.rest = positional.collect();
        if matches!(sub, LogSub::Show | LogSub::Notes) && !p.rest.is_empty() {
            return Err(format!(
                "log {}: unexpected argument `{}`",
                sub.name(),
                p.rest.join(" ")
            ));
        }
        if p.around.is_some() && (p.since.is_some() || p.until.is_some() || p.tail.is_some()) {
            return Err("log show: --around does not go with --since/--until/--tail".to_owned());
        }
        Ok(p)
    }
}

/// Split a command line into words like a POSIX shell: blanks separate words, `'…'` is literal,
/// `"…"` is literal except `\"` and `\\`, and `\` outside quotes escapes the next character.
pub fn split_args(line: &str) -> Result<Vec<String>, BadInput> {
    split_words(line).map_err(|reason| BadInput {
        what: "a command line",
        reason,
    })
}

fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".to_owned()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a `\\` at the end of the line escapes nothing".to_owned()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests;
