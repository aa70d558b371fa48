//! Macros: procedures typed into a console, kept as text, recorded from a live session and played
//! on one device or many.
//!
//! # Format
//!
//! One step per line; blank lines and lines starting with `#` are ignored, leading and trailing
//! blanks trimmed:
//!
//! | line | meaning |
//! |------|---------|
//! | `param NAME [DEFAULT]` | declares a parameter (without a default it must be given) |
//! | `send TEXT` | types TEXT |
//! | `sendline TEXT` | types TEXT and Enter (CR) |
//! | `expect /REGEX/ [timeout=5s]` | waits for REGEX in the ANSI-stripped output |
//! | `wait 2s` | pauses (`ms`, `s`, `m`; decimals allowed) |
//! | `break [N]` | sends break sequence N (default 1, a real BREAK) |
//!
//! `${NAME}` anywhere in a step is replaced by the parameter's value (in an expect it is matched
//! literally); `${device}` is always the device's name. In TEXT, `\r`, `\n`, `\t`, `\e` (ESC),
//! `\\`, `\$` and `\xHH` are escapes. Parameters named like `password` or `secret` are shown as
//! `***` in plans and notes.
//!
//! [`Macro::parse`] refuses a bad file with every error and its line number. [`Macro::bind`] gives
//! a [`Plan`] (the steps with values filled in); [`play`] runs it on one
//! [`Expecter`](crate::automation::Expecter), [`play_many`] on many consoles in parallel;
//! [`Recorder`] writes a macro from a live session.

use crate::door::BadInput;
mod play;
mod record;

use std::fmt;
use std::time::Duration;

use crate::automation::expect::ExpectPattern;
use crate::error::{Error, Result};

pub use play::{OnFailure, Outcome, PlayOptions, Report, dry_run, play, play_many, play_many_with};
pub use record::Recorder;

/// The expect timeout when a step gives none.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `wait` or `timeout` accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The parameter that always holds the device's name.
pub const DEVICE_PARAM: &str = "device";
/// The most errors [`Macro::parse`] lists.
const MAX_ERRORS: usize = 20;

/// A step as written, before parameters are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Type this text (escapes already decoded, `${...}` not yet substituted).
    Send(String),
    /// Type this text and CR.
    SendLine(String),
    /// Wait for the expression.
    Expect {
        /// The expression, `${...}` not yet substituted.
        regex: String,
        /// The step's own timeout, if it gives one.
        timeout: Option<Duration>,
    },
    /// Pause.
    Wait(Duration),
    /// Send break sequence N.
    Break(u8),
}

/// A step with the line it was written on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Line number, from 1.
    pub line: usize,
    /// The step.
    pub step: Step,
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its default, if any.
    pub default: Option<String>,
    /// Where it was declared.
    pub line: usize,
}

/// One problem in a macro file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed macro (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    params: Vec<Param>,
    steps: Vec<Line>,
}

/// What a bound step does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Instruction {
    /// Type these bytes.
    Send(Vec<u8>),
    /// Wait for the pattern.
    Expect {
        /// The compiled pattern.
        pattern: ExpectPattern,
        /// How long.
        timeout: Duration,
    },
    /// Pause.
    Wait(Duration),
    /// Send break sequence N.
    Break(u8),
}

/// A bound step: what to do, the line it came from, and how to show it.
#[derive(Debug, Clone)]
pub struct PlanStep {
    /// Line number in the macro.
    pub line: usize,
    /// What to do.
    pub action: Instruction,
    /// The step as shown in plans and notes (secrets as `***`).
    pub shown: String,
}

/// A macro with its parameters filled in, ready to play.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<PlanStep>,
}

impl Plan {
    /// One line per step: `line 3: expect /login: $/ within 5 s`.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| format!("line {}: {}", s.line, s.shown))
            .collect()
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a parameter's value is hidden in plans and notes.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "passphrase"]
        .iter()
        .any(|w| n.contains(w))
}

/// Parses `5s`, `500ms`, `2m`, `1.5s`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, BadInput> {
    parse_duration_text(s).map_err(|reason| BadInput {
        what: "a duration",
        reason,
    })
}

fn parse_duration_text(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 500ms, 5s, 2m)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("`{s}` needs a unit (ms, s, m or h)")),
        other => return Err(format!("unknown unit `{other}` in `{s}` (ms, s, m or h)")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs < 0.0 || secs > MAX_DURATION.as_secs_f64() {
        return Err(format!("`{s}` is out of range (at most 24h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration as written in a macro (`500ms`, `5s`, `1.5s`).
fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Decodes the escapes of a `send` text.
fn unescape(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('e') => out.push('\x1b'),
            Some('\\') => out.push('\\'),
            // Kept escaped so that substitution leaves it alone; removed after substitution.
            Some('$') => out.push_str("\\$"),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 && b < 0x80 => out.push(char::from(b)),
                    _ => return Err(format!("`\\x{hex}` is not an ASCII byte \\x00 to \\x7f")),
                }
            }
            Some(other) => {
                return Err(format!(
                    "unknown escape `\\{other}` (known: \\r \\n \\t \\e \\\\ \\$ \\xHH)"
                ));
            }
            None => return Err("a lone `\\` ends the text".to_string()),
        }
    }
    Ok(out)
}

/// The escapes [`unescape`] decodes, written back (blanks at either end as `\x20`, so that
/// trimming keeps them).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    let lead = text.chars().take_while(|c| *c == ' ').count();
    let trail = text.chars().rev().take_while(|c| *c == ' ').count();
    for (i, c) in text.chars().enumerate() {
        match c {
            ' ' if i < lead || i + trail > last => out.push_str("\\x20"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The `${NAME}` references in `text`, or an error for an unterminated or malformed one.
fn references(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest.get(..at).is_some_and(|before| before.ends_with('\\')) {
            rest = rest.get(at + 2..).unwrap_or_default();
            continue;
        }
        let after = rest.get(at + 2..).unwrap_or_default();
        let Some(end) = after.find('}') else {
            return Err("`${` without its closing `}`".to_string());
        };
        let name = after.get(..end).unwrap_or_default();
        if !is_name(name) {
            return Err(format!("`${{{name}}}` is not a parameter name"));
        }
        names.push(name.to_string());
        rest = after.get(end + 1..).unwrap_or_default();
    }
    Ok(names)
}

/// Replaces every `${NAME}` in `text` with `value(NAME)`; `\$` is left alone (it is a regex
/// escape) or, in send text (`unescape`), becomes `$`.
fn substitute(text: &str, unescape: bool, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let (before, from) = rest.split_at(at);
        if let Some(stripped) = before.strip_suffix('\\') {
            out.push_str(if unescape { stripped } else { before });
            out.push('$');
            rest = from.get(1..).unwrap_or_default();
            continue;
        }
        out.push_str(before);
        let after = from.get(1..).unwrap_or_default();
        if let Some(inner) = after.strip_prefix('{')
            && let Some(end) = inner.find('}')
        {
            out.push_str(&value(inner.get(..end).unwrap_or_default()));
            rest = inner.get(end + 1..).unwrap_or_default();
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Parses `/REGEX/ [timeout=DUR]`.
fn parse_expect(rest: &str) -> std::result::Result<(String, Option<Duration>), String> {
    let Some(body) = rest.strip_prefix('/') else {
        return Err("expect needs /REGEX/ (the expression between slashes)".to_string());
    };
    let Some(close) = body.rfind('/') else {
        return Err("expect's /REGEX/ has no closing `/`".to_string());
    };
    let regex = body.get(..close).unwrap_or_default();
    if regex.is_empty() {
        return Err("expect's /REGEX/ is empty".to_string());
    }
    let mut timeout = None;
    for option in body.get(close + 1..).unwrap_or_default().split_whitespace() {
        match option.split_once('=') {
            Some(("timeout", value)) => timeout = Some(parse_duration_text(value)?),
            _ => {
                return Err(format!(
                    "unknown expect option `{option}` (known: timeout=DURATION)"
                ));
            }
        }
    }
    Ok((regex.to_string(), timeout))
}

/// Parses one non-comment line into a step or a parameter.
fn parse_line(text: &str) -> std::result::Result<Result2, String> {
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (text, ""),
    };
    let step = match word {
        "param" => {
            let (name, default) = match rest.split_once(char::is_whitespace) {
                Some((n, d)) => (n, Some(d.trim().to_string())),
                None => (rest, None),
            };
            if !is_name(name) {
                return Err(format!(
                    "`param` needs a name (letters, digits, _), not `{name}`"
                ));
            }
            if name == DEVICE_PARAM {
                return Err("`device` is given by the player; it cannot be declared".to_string());
            }
            return Ok(Result2::Param(name.to_string(), default));
        }
        "send" => Step::Send(unescape(rest)?),
        "sendline" => Step::SendLine(unescape(rest)?),
        "expect" => {
            let (regex, timeout) = parse_expect(rest)?;
            Step::Expect { regex, timeout }
        }
        "wait" => Step::Wait(parse_duration_text(rest)?),
        "break" => {
            let n = if rest.is_empty() {
                1
            } else {
                match rest.parse::<u8>() {
                    Ok(n @ 1..=9) => n,
                    _ => {
                        return Err(format!(
                            "break takes a sequence number 1 to 9, not `{rest}`"
                        ));
                    }
                }
            };
            Step::Break(n)
        }
        other => {
            return Err(format!(
                "unknown step `{other}` (known: param, send, sendline, expect, wait, break, #)"
            ));
        }
    };
    Ok(Result2::Step(step))
}

enum Result2 {
    Step(Step),
    Param(String, Option<String>),
}

impl Macro {
    /// Parses a macro file. Refuses it with [`Error::BadSpec`] listing every problem with its
    /// line number (see [`Macro::check`] for them one by one).
    pub fn parse(text: &str) -> Result<Macro> {
        Macro::parse_named("macro", text)
    }

    /// [`Macro::parse`] naming the file in the error.
    pub fn parse_named(name: &str, text: &str) -> Result<Macro> {
        Macro::check(text).map_err(|errors| Error::BadSpec {
            what: "macro",
            input: name.to_string(),
            reason: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// Parses a macro file, returning every problem found (at most 20) with its line number.
    pub fn check(text: &str) -> std::result::Result<Macro, Vec<ParseError>> {
        let mut errors = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut steps = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_line(trimmed) {
                Ok(Result2::Step(step)) => steps.push(Line { line, step }),
                Ok(Result2::Param(name, default)) => {
                    if let Some(p) = params.iter().find(|p| p.name == name) {
                        errors.push(ParseError {
                            line,
                            message: format!(
                                "parameter `{name}` is already declared on line {}",
                                p.line
                            ),
                        });
                    } else {
                        params.push(Param {
                            name,
                            default,
                            line,
                        });
                    }
                }
                Err(message) => errors.push(ParseError { line, message }),
            }
        }
        let m = Macro { params, steps };
        for l in &m.steps {
            let text = match &l.step {
                Step::Send(t) | Step::SendLine(t) => t.as_str(),
                Step::Expect { regex, .. } => regex.as_str(),
                _ => continue,
            };
            match references(text) {
                Err(message) => errors.push(ParseError {
                    line: l.line,
                    message,
                }),
                Ok(names) => {
                    for name in names {
                        if name != DEVICE_PARAM && !m.params.iter().any(|p| p.name == name) {
                            errors.push(ParseError {
                                line: l.line,
                                message: format!(
                                    "`${{{name}}}` is not a declared parameter (add `param {name}`)"
                                ),
                            });
                        }
                    }
                }
            }
            if let Step::Expect { regex, .. } = &l.step {
                // Check the expression now, with every parameter as a harmless literal.
                let probe = substitute(regex, false, &|_| "x".to_string());
                if let Err(e) = regex::Regex::new(&probe) {
                    errors.push(ParseError {
                        line: l.line,
                        message: format!("bad expression /{regex}/: {}", last_line(&e.to_string())),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(m)
        } else {
            errors.sort_by_key(|e| e.line);
            errors.truncate(MAX_ERRORS);
            Err(errors)
        }
    }

    /// The declared parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The steps.
    pub fn steps(&self) -> &[Line] {
        &self.steps
    }

    /// Fills in the parameters (`args` as name/value pairs; `device` is set by the player, here
    /// it stays `${device}` unless given) and compiles the expressions. Fails naming the line of
    /// a parameter that has no value, or an expression that does not compile.
    pub fn bind(&self, args: &[(&str, &str)]) -> Result<Plan> {
        self.bind_for(None, args)
    }

    /// [`Macro::bind`] for one device: `${device}` becomes `device`.
    pub fn bind_for(&self, device: Option<&str>, args: &[(&str, &str)]) -> Result<Plan> {
        let bad = |line: usize, reason: String| Error::BadSpec {
            what: "macro",
            input: format!("line {line}"),
            reason,
        };
        for (name, _) in args {
            if *name != DEVICE_PARAM && !self.params.iter().any(|p| p.name == *name) {
                return Err(Error::BadSpec {
                    what: "macro argument",
                    input: (*name).to_string(),
                    reason: "the macro declares no such parameter".to_string(),
                });
            }
        }
        let mut values: Vec<(String, String)> = Vec::new();
        for p in &self.params {
            let given = args
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, v)| (*v).to_string());
            match given.or_else(|| p.default.clone()) {
                Some(v) => values.push((p.name.clone(), v)),
                None => {
                    return Err(bad(p.line, format!("parameter `{}` needs a value", p.name)));
                }
            }
        }
        let device_value = device.map(str::to_string).or_else(|| {
            args.iter()
                .find(|(n, _)| *n == DEVICE_PARAM)
                .map(|(_, v)| (*v).to_string())
        });
        let lookup = |name: &str, shown: bool| -> String {
            if name == DEVICE_PARAM {
                return device_value
                    .clone()
                    .unwrap_or_else(|| "${device}".to_string());
            }
            if shown && is_secret(name) {
                return "***".to_string();
            }
            values
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut steps = Vec::with_capacity(self.steps.len());
        for l in &self.steps {
            let (action, shown) = match &l.step {
                Step::Send(t) | Step::SendLine(t) => {
                    let line = matches!(l.step, Step::SendLine(_));
                    let mut bytes = substitute(t, true, &|n| lookup(n, false)).into_bytes();
                    let shown = escape(&substitute(t, true, &|n| lookup(n, true)));
                    if line {
                        bytes.push(b'\r');
                    }
                    let word = if line { "sendline" } else { "send" };
                    (Instruction::Send(bytes), format!("{word} {shown:?}"))
                }
                Step::Expect { regex, timeout } => {
                    let source = substitute(regex, false, &|n| regex::escape(&lookup(n, false)));
                    let pattern =
                        ExpectPattern::regex(&source).map_err(|e| bad(l.line, e.to_string()))?;
                    let timeout = timeout.unwrap_or(DEFAULT_EXPECT_TIMEOUT);
                    let shown_re = substitute(regex, false, &|n| regex::escape(&lookup(n, true)));
                    (
                        Instruction::Expect { pattern, timeout },
                        format!("expect /{shown_re}/ within {}", show_duration(timeout)),
                    )
                }
                Step::Wait(d) => (Instruction::Wait(*d), format!("wait {}", show_duration(*d))),
                Step::Break(n) => (Instruction::Break(*n), format!("break {n}")),
            };
            steps.push(PlanStep {
                line: l.line,
                action,
                shown,
            });
        }
        Ok(Plan { steps })
    }

    /// The macro as text in the file format (parses back to the same macro).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for p in &self.params {
            match &p.default {
                Some(d) => out.push_str(&format!("param {} {d}\n", p.name)),
                None => out.push_str(&format!("param {}\n", p.name)),
            }
        }
        for l in &self.steps {
            let line = match &l.step {
                Step::Send(t) => format!("send {}", escape(t)),
                Step::SendLine(t) => format!("sendline {}", escape(t)),
                Step::Expect { regex, timeout } => match timeout {
                    Some(t) => format!("expect /{regex}/ timeout={}", show_duration(*t)),
                    None => format!("expect /{regex}/"),
                },
                Step::Wait(d) => format!("wait {}", show_duration(*d)),
                Step::Break(n) => format!("break {n}"),
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests;
