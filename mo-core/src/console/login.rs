//! Auto-login: a script of expect/send steps the console actor runs on every (re)connect, so
//! device logins and service-processor CLIs come up ready (issue 3 item 6).
//!
//! A script is text, one step per line:
//!
//! ```text
//! # comments and blank lines are ignored
//! expect /login: *$/ 20s      wait for a regex on ANSI-stripped output (default timeout 10 s)
//! send {user}\r               send text; {user} is the login name, \r \n \t \\ \e escapes
//! expect /[Pp]assword: *$/
//! secret {password}\r         like send, but the bytes are never logged (a notice says so)
//! ```
//!
//! `{password}` is only allowed in `secret` steps, so a script cannot leak it into the record log
//! by mistake. Output is matched as it arrives, partial lines included (prompts end without a
//! newline). When an `expect` step sees nothing within its timeout, the actor sends one Enter to
//! wake the device and waits once more before it gives up with a notice.
//!
//! Ready profiles: [`LoginScript::profile`] `linux` (`login:` / `Password:`), `cli`
//! (`Username:` / `Password:`).
//!
//! ```
//! use mo_core::console::LoginScript;
//! use mo_core::secret::Secret;
//!
//! let script = LoginScript::profile("linux", "root", Some(Secret::new("pw"))).unwrap();
//! assert_eq!(script.steps().len(), 4);
//! let err = LoginScript::parse("send {password}\r", "root", None).unwrap_err();
//! assert!(err.to_string().contains("line 1"));
//! ```

use std::fmt;
use std::time::Duration;

use regex::bytes::Regex;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How long an `expect` step waits unless it says otherwise.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Output kept for matching while an `expect` step waits (older bytes are dropped).
const MATCH_WINDOW: usize = 4096;

/// One step of a login script.
#[derive(Clone)]
pub enum LoginStep {
    /// Wait until the output matches.
    Expect {
        /// The pattern, matched on ANSI-stripped output.
        pattern: Regex,
        /// How long to wait.
        timeout: Duration,
    },
    /// Send bytes, recorded as input by `auto-login`.
    Send(Vec<u8>),
    /// Send a secret; the record log gets a notice instead of the bytes.
    Secret(Secret),
}

impl fmt::Debug for LoginStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginStep::Expect { pattern, timeout } => f
                .debug_struct("Expect")
                .field("pattern", &pattern.as_str())
                .field("timeout", timeout)
                .finish(),
            LoginStep::Send(bytes) => f
                .debug_tuple("Send")
                .field(&String::from_utf8_lossy(bytes))
                .finish(),
            LoginStep::Secret(_) => f.write_str("Secret(***)"),
        }
    }
}

/// A parsed login script.
#[derive(Debug, Clone)]
pub struct LoginScript {
    steps: Vec<LoginStep>,
}

fn bad(line: usize, input: &str, reason: impl Into<String>) -> Error {
    Error::BadSpec {
        what: "login script",
        input: format!("line {line}: {input}"),
        reason: reason.into(),
    }
}

/// Expand escapes and `{user}` / `{password}` in a send argument.
fn expand(
    text: &str,
    user: &str,
    password: Option<&Secret>,
    allow_password: bool,
    line: usize,
    raw: &str,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{user}") {
            out.extend_from_slice(user.as_bytes());
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{password}") {
            if !allow_password {
                return Err(bad(
                    line,
                    raw,
                    "{password} may only appear in a `secret` step (it would be logged)",
                ));
            }
            let Some(password) = password else {
                return Err(bad(line, raw, "the device has no login password stored"));
            };
            out.extend_from_slice(password.expose().as_bytes());
            rest = after;
        } else if let Some(after) = rest.strip_prefix('\\') {
            let mut chars = after.chars();
            let byte = match chars.next() {
                Some('r') => b'\r',
                Some('n') => b'\n',
                Some('t') => b'\t',
                Some('e') => 0x1b,
                Some('\\') => b'\\',
                Some('{') => b'{',
                Some(other) => {
                    return Err(bad(
                        line,
                        raw,
                        format!("unknown escape `\\{other}` (known: \\r \\n \\t \\e \\\\ \\{{)"),
                    ));
                }
                None => return Err(bad(line, raw, "a lone `\\` ends the line")),
            };
            out.push(byte);
            rest = chars.as_str();
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

/// Parse `10s`, `500ms`, `2m`.
fn parse_timeout(text: &str) -> Option<Duration> {
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

impl LoginScript {
    /// Parse a script; `user` and `password` fill `{user}` and `{password}`. Errors name the
    /// line and what is wrong with it.
    pub fn parse(text: &str, user: &str, password: Option<Secret>) -> Result<LoginScript> {
        let mut steps = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (word, arg) = trimmed
                .split_once(char::is_whitespace)
                .unwrap_or((trimmed, ""));
            let arg = arg.trim_start();
            match word {
                "expect" => {
                    let Some(body) = arg.strip_prefix('/') else {
                        return Err(bad(line, raw, "write the pattern as /REGEX/"));
                    };
                    let Some(end) = body.rfind('/') else {
                        return Err(bad(line, raw, "the pattern has no closing `/`"));
                    };
                    let pattern = Regex::new(&body[..end])
                        .map_err(|e| bad(line, raw, format!("bad regex: {e}")))?;
                    let after = body[end + 1..].trim();
                    let timeout = if after.is_empty() {
                        DEFAULT_EXPECT_TIMEOUT
                    } else {
                        parse_timeout(after).ok_or_else(|| {
                            bad(
                                line,
                                raw,
                                format!("bad timeout `{after}` (write e.g. 10s, 500ms, 2m)"),
                            )
                        })?
                    };
                    steps.push(LoginStep::Expect { pattern, timeout });
                }
                "send" => steps.push(LoginStep::Send(expand(
                    arg,
                    user,
                    password.as_ref(),
                    false,
                    line,
                    raw,
                )?)),
                "secret" => {
                    let bytes = expand(arg, user, password.as_ref(), true, line, raw)?;
                    let text = String::from_utf8(bytes)
                        .map_err(|_| bad(line, raw, "the secret is not valid UTF-8"))?;
                    steps.push(LoginStep::Secret(Secret::new(text)));
                }
                other => {
                    return Err(bad(
                        line,
                        raw,
                        format!("unknown step `{other}` (known: expect, send, secret)"),
                    ));
                }
            }
        }
        if steps.is_empty() {
            return Err(bad(0, text, "the script has no steps"));
        }
        Ok(LoginScript { steps })
    }

    /// A ready profile: `linux` (a Linux `login:` prompt) or `cli` (a generic `Username:` /
    /// `Password:` CLI). Without a password the password steps are left out.
    pub fn profile(name: &str, user: &str, password: Option<Secret>) -> Result<LoginScript> {
        let (user_prompt, password_prompt) = match name {
            "linux" => ("login: *$", "[Pp]assword: *$"),
            "cli" => ("[Uu]ser ?[Nn]ame: *$", "[Pp]assword: *$"),
            other => {
                return Err(Error::BadSpec {
                    what: "login profile",
                    input: other.to_owned(),
                    reason: "known profiles: linux, cli".into(),
                });
            }
        };
        let mut text = format!("expect /{user_prompt}/\nsend {{user}}\\r\n");
        if password.is_some() {
            text.push_str(&format!(
                "expect /{password_prompt}/\nsecret {{password}}\\r\n"
            ));
        }
        LoginScript::parse(&text, user, password)
    }

    /// The steps.
    pub fn steps(&self) -> &[LoginStep] {
        &self.steps
    }
}

/// What a [`LoginRun`] wants the actor to do next.
#[derive(Debug)]
pub(crate) enum LoginAction {
    /// Write these bytes, recorded as input.
    Send(Vec<u8>),
    /// Write these secret bytes, recorded only as a redaction notice.
    SendSecret(Secret),
    /// Write an Enter to wake a quiet device.
    Wake,
    /// The script finished.
    Done,
    /// The script gave up; the reason is for a notice.
    Failed(String),
}

/// A script being run on one connection.
#[derive(Debug)]
pub(crate) struct LoginRun {
    script: std::sync::Arc<LoginScript>,
    step: usize,
    seen: Vec<u8>,
    stripper: crate::scan::AnsiStripper,
    deadline: Option<tokio::time::Instant>,
    woken: bool,
}

impl LoginRun {
    pub(crate) fn new(script: std::sync::Arc<LoginScript>) -> Self {
        LoginRun {
            script,
            step: 0,
            seen: Vec::new(),
            stripper: crate::scan::AnsiStripper::new(),
            deadline: None,
            woken: false,
        }
    }

    /// When the current expect step times out.
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// Run steps from the current one until an expect step has to wait.
    pub(crate) fn advance(&mut self, now: tokio::time::Instant) -> Vec<LoginAction> {
        let mut actions = Vec::new();
        loop {
            match self.script.steps.get(self.step) {
                None => {
                    self.deadline = None;
                    actions.push(LoginAction::Done);
                    return actions;
                }
                Some(LoginStep::Expect { pattern, timeout }) => {
                    if let Some(m) = pattern.find(&self.seen) {
                        let end = m.end();
                        self.seen.drain(..end);
                        self.step += 1;
                        self.deadline = None;
                        self.woken = false;
                        continue;
                    }
                    if self.deadline.is_none() {
                        self.deadline = Some(now + *timeout);
                    }
                    return actions;
                }
                Some(LoginStep::Send(bytes)) => {
                    actions.push(LoginAction::Send(bytes.clone()));
                    self.step += 1;
                }
                Some(LoginStep::Secret(secret)) => {
                    actions.push(LoginAction::SendSecret(secret.clone()));
                    self.step += 1;
                }
            }
        }
    }

    /// Feed device output; returns what to do.
    pub(crate) fn output(&mut self, bytes: &[u8], now: tokio::time::Instant) -> Vec<LoginAction> {
        let stripped = self.stripper.strip(bytes);
        self.seen.extend_from_slice(&stripped);
        if self.seen.len() > MATCH_WINDOW {
            let cut = self.seen.len() - MATCH_WINDOW;
            self.seen.drain(..cut);
        }
        self.advance(now)
    }

    /// The deadline passed: wake the device once, then give up.
    pub(crate) fn timed_out(&mut self, now: tokio::time::Instant) -> Vec<LoginAction> {
        let Some(LoginStep::Expect { pattern, timeout }) = self.script.steps.get(self.step) else {
            self.deadline = None;
            return Vec::new();
        };
        if !self.woken {
            self.woken = true;
            self.deadline = Some(now + *timeout);
            return vec![LoginAction::Wake];
        }
        self.deadline = None;
        vec![LoginAction::Failed(format!(
            "step {} waited {:.1}s for /{}/ and gave up",
            self.step + 1,
            timeout.as_secs_f64(),
            pattern.as_str()
        ))]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::time::Instant;

    #[test]
    fn parses_steps_and_escapes() {
        let s = LoginScript::parse(
            "# x\nexpect /login: $/ 3s\nsend {user}\\r\nexpect /word:/\nsecret {password}\\n\n",
            "root",
            Some(Secret::new("pw")),
        )
        .unwrap();
        assert_eq!(s.steps().len(), 4);
        assert!(matches!(&s.steps()[1], LoginStep::Send(b) if b == b"root\r"));
        assert!(matches!(&s.steps()[3], LoginStep::Secret(p) if p.expose() == "pw\n"));
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, needle) in [
            ("send x\nexpect login", "line 2"),
            ("expect /(/", "bad regex"),
            ("expect /x/ soon", "bad timeout"),
            ("send {password}", "only appear in a `secret`"),
            ("secret {password}", "no login password"),
            ("type x", "unknown step `type`"),
            ("send a\\q", "unknown escape"),
            ("", "no steps"),
        ] {
            let err = LoginScript::parse(text, "u", None).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        assert!(LoginScript::profile("vms", "u", None).is_err());
    }

    #[test]
    fn run_matches_prompts_across_chunks_and_wakes_once() {
        let script = Arc::new(LoginScript::profile("linux", "root", Some("pw".into())).unwrap());
        let mut run = LoginRun::new(script);
        let now = Instant::now();
        assert!(run.advance(now).is_empty());
        assert!(run.deadline().is_some());
        assert!(run.output(b"\x1b[1mhost lo", now).is_empty());
        let a = run.output(b"gin: ", now);
        assert!(matches!(&a[..], [LoginAction::Send(b)] if b == b"root\r"));
        let a = run.output(b"root\r\nPassword: ", now);
        assert!(matches!(
            &a[..],
            [LoginAction::SendSecret(_), LoginAction::Done]
        ));

        let mut run = LoginRun::new(Arc::new(
            LoginScript::parse("expect /never/ 1s", "u", None).unwrap(),
        ));
        run.advance(now);
        assert!(matches!(&run.timed_out(now)[..], [LoginAction::Wake]));
        assert!(
            matches!(&run.timed_out(now)[..], [LoginAction::Failed(m)] if m.contains("/never/"))
        );
    }

    #[test]
    fn random_scripts_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"expectsndr/\\{}user passwod#\n 10ms[]()*";
        for _ in 0..5000 {
            let len = rng.random_range(0..60);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            let _ = LoginScript::parse(&text, "u", Some("p".into()));
        }
    }
}
