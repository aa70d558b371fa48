//! The words of the shell's `power ACTION [OPTIONS] TARGET…` after the action: targets (names,
//! globs, `@GROUP`) and the group-operation options (`--order`, `--delay`, `--parallel`,
//! `--stagger`, `--stop-on-failure`).
//!
//! ```
//! use std::time::Duration;
//! use mo_core::door::power::PowerArgs;
//!
//! let args = PowerArgs::parse(&["--order", "'stor-*,web-*'", "--delay=5s", "web-*"]).unwrap();
//! assert_eq!(args.order, ["stor-*", "web-*"]);
//! assert_eq!(args.delay, Some(Duration::from_secs(5)));
//! assert_eq!(args.stage_of("web-1", |pattern, name| pattern == "web-*" && name.starts_with("web-")), 1);
//! ```

use std::time::Duration;

use super::args::{ArgError, ArgResult};

/// The usage line of the shell's `power` command.
pub const POWER_USAGE: &str = "usage: power status|on|off|cycle|reset|soft-off [--order A,B,…] \
[--delay DUR] [--parallel N] [--stagger DUR] [--stop-on-failure] NAME|GLOB|@GROUP…";

/// The most devices a group operation switches at once.
pub const MAX_PARALLEL: usize = 1000;

/// The longest `--delay` or `--stagger` (a day).
pub const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// The arguments of `power ACTION [OPTIONS] TARGET…`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PowerArgs {
    /// Names, globs or `@GROUP`s (never empty once parsed).
    pub targets: Vec<String>,
    /// `--order A,B,…`: stage 1 is the targets matching A, stage 2 those matching B, …; targets
    /// matching none come last.
    pub order: Vec<String>,
    /// `--delay DUR`: the wait between stages.
    pub delay: Option<Duration>,
    /// `--parallel N`: devices switched at once within a stage (1 to [`MAX_PARALLEL`]).
    pub parallel: Option<usize>,
    /// `--stagger DUR`: the wait between starting two devices of a stage.
    pub stagger: Option<Duration>,
    /// `--stop-on-failure`: skip later stages once a device failed.
    pub stop_on_failure: bool,
}

impl PowerArgs {
    /// Read the words after the action. Quotes around a word are dropped (`'stor-*,web-*'`);
    /// `--opt=value` and `--opt value` are the same.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> ArgResult<PowerArgs> {
        let mut args = PowerArgs::default();
        let mut rest = words.iter().map(|w| unquote(w.as_ref()));
        while let Some(word) = rest.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (word.as_str(), None),
            };
            if !flag.starts_with("--") {
                args.targets.push(word.clone());
                continue;
            }
            if flag == "--stop-on-failure" {
                if let Some(value) = inline {
                    return Err(ArgError::BadValue {
                        option: flag.to_owned(),
                        value,
                        expected: "no value",
                    });
                }
                args.stop_on_failure = true;
                continue;
            }
            if !matches!(flag, "--order" | "--delay" | "--stagger" | "--parallel") {
                return Err(ArgError::UnknownOption {
                    option: flag.to_owned(),
                });
            }
            let value = match inline {
                Some(v) => v,
                None => rest.next().ok_or_else(|| ArgError::MissingValue {
                    option: flag.to_owned(),
                })?,
            };
            match flag {
                "--order" => {
                    args.order = value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if args.order.is_empty() {
                        return Err(ArgError::BadValue {
                            option: flag.to_owned(),
                            value,
                            expected: "patterns like 'stor-*,web-*'",
                        });
                    }
                }
                "--delay" => args.delay = Some(parse_wait(flag, &value)?),
                "--stagger" => args.stagger = Some(parse_wait(flag, &value)?),
                _ => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_PARALLEL).contains(&n) => args.parallel = Some(n),
                    _ => {
                        return Err(ArgError::BadValue {
                            option: flag.to_owned(),
                            value,
                            expected: "a number from 1 to 1000",
                        });
                    }
                },
            }
        }
        if args.targets.is_empty() {
            return Err(ArgError::NoTargets);
        }
        Ok(args)
    }

    /// Whether any group-operation option was given.
    pub fn is_group(&self) -> bool {
        !self.order.is_empty()
            || self.delay.is_some()
            || self.parallel.is_some()
            || self.stagger.is_some()
            || self.stop_on_failure
    }

    /// The stage (from 0) device `name` belongs to: the first `--order` pattern that
    /// `matches(pattern, name)`, or the stage after the last pattern's when none does.
    pub fn stage_of(&self, name: &str, matches: impl Fn(&str, &str) -> bool) -> usize {
        self.order
            .iter()
            .position(|pattern| matches(pattern, name))
            .unwrap_or(self.order.len())
    }
}

/// `word` without blanks around it and without one pair of matching quotes (`'…'` or `"…"`).
pub fn unquote(word: &str) -> String {
    let w = word.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = w.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    w.to_owned()
}

/// A wait: `500ms`, `5s`, `2m` or plain seconds, at most [`MAX_WAIT`].
pub fn parse_wait(option: &str, text: &str) -> ArgResult<Duration> {
    let bad = || ArgError::BadValue {
        option: option.to_owned(),
        value: text.to_owned(),
        expected: "a duration such as 500ms, 5s or 2m",
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    // Digits and dots only: no `inf`, `NaN` or exponent can reach the float parser.
    let value: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) {
        return Err(bad());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn group_options_parse() {
        let args = PowerArgs::parse(&[
            "--order",
            "'stor-*,web-*'",
            "--delay=5s",
            "--parallel",
            "4",
            "--stop-on-failure",
            "web-*",
            "@storage",
        ])
        .unwrap();
        assert_eq!(args.order, vec!["stor-*", "web-*"]);
        assert_eq!(args.delay, Some(Duration::from_secs(5)));
        assert_eq!(args.parallel, Some(4));
        assert!(args.stop_on_failure && args.is_group());
        assert_eq!(args.targets, vec!["web-*", "@storage"]);
        let plain = PowerArgs::parse(&["web01"]).unwrap();
        assert!(!plain.is_group());
        let glob = |p: &str, n: &str| n.starts_with(p.trim_end_matches('*'));
        assert_eq!(args.stage_of("stor-2", glob), 0);
        assert_eq!(args.stage_of("web-1", glob), 1);
        assert_eq!(args.stage_of("db-1", glob), 2);
    }

    #[test]
    fn bad_group_options_say_what_is_wrong() {
        let err = |w: &[&str]| PowerArgs::parse(w).unwrap_err();
        let delay = err(&["--delay", "soon", "x"]);
        assert_eq!(
            delay.to_string(),
            "--delay needs a duration such as 500ms, 5s or 2m, not `soon`"
        );
        assert!(!delay.wants_usage());
        assert_eq!(
            err(&["--parallel", "0", "x"]).to_string(),
            "--parallel needs a number from 1 to 1000, not `0`"
        );
        assert_eq!(
            err(&["--frobnicate", "x"]),
            ArgError::UnknownOption {
                option: "--frobnicate".into()
            }
        );
        assert_eq!(err(&["--order"]).to_string(), "--order needs a value");
        assert!(err(&["--order"]).wants_usage());
        assert_eq!(err(&["--stop-on-failure"]), ArgError::NoTargets);
        assert!(matches!(
            err(&["--order", ",", "x"]),
            ArgError::BadValue { .. }
        ));
        assert_eq!(
            err(&["--stop-on-failure=no", "x"]).to_string(),
            "--stop-on-failure needs no value, not `no`"
        );
        assert!(err(&["--delay", "1e9", "x"]).to_string().contains("1e9"));
        assert!(
            err(&["--delay", "86401", "x"])
                .to_string()
                .contains("86401")
        );
    }

    #[test]
    fn waits_read() {
        assert_eq!(
            parse_wait("--delay", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_wait("--delay", "2m").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse_wait("--delay", "1.5").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_wait("--delay", "1440m").unwrap(), MAX_WAIT);
        for bad in ["", ".", "5h", "-1", "1..2", "1441m"] {
            assert!(parse_wait("--delay", bad).is_err(), "{bad}");
        }
        assert_eq!(unquote(" 'a b' "), "a b");
        assert_eq!(unquote("\"x\""), "x");
        assert_eq!(unquote("'x\""), "'x\"");
        assert_eq!(unquote("'"), "'");
    }
}
