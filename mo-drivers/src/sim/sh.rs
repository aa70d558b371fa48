//! The little of a POSIX shell's grammar the simulated machine understands, so that tools built for
//! real shells (labgrid's `ShellDriver`, scripts that run `A; B` or `VAR=x cmd`) work on it:
//! `;`-separated lists, single and double quotes and backslashes, `$NAME`, `${NAME}`, `$?`, `$@`,
//! `$*`, `$1`…`$9`, variable assignments (alone: kept; before a command: for that command only)
//! and function definitions `NAME() { LIST; }`. No pipes, redirections, `$(…)` or control flow:
//! their characters are taken literally, and expansions are not split into fields.
//!
//! Device output and typed lines are untrusted: nothing here panics on any input, and the state
//! it keeps is bounded ([`MAX_VARS`], [`MAX_VALUE`]).

/// At most this many variables and as many functions; a new one beyond is refused.
pub(super) const MAX_VARS: usize = 64;
/// A variable's value or a function's body is cut at this many bytes.
pub(super) const MAX_VALUE: usize = 4096;
/// Functions and `sh -c` nest at most this deep.
pub(super) const MAX_DEPTH: u8 = 8;

/// What the shell remembers between lines: variables, functions, the last exit status.
#[derive(Debug, Default)]
pub(super) struct Sh {
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    funcs: Vec<(Vec<u8>, Vec<u8>)>,
    /// `$?`.
    pub(super) status: u8,
}

/// One word after quote removal and expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub(super) text: Vec<u8>,
    /// `Some(n)`: the word is an assignment `NAME=VALUE` whose name is `text[..n]`.
    pub(super) assign: Option<usize>,
}

impl Sh {
    /// The value of variable NAME (a few login variables are always there).
    pub(super) fn var(&self, name: &[u8]) -> Option<&[u8]> {
        if let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) {
            return Some(v);
        }
        match name {
            b"HOME" => Some(b"/root"),
            b"SHELL" => Some(b"/bin/sh"),
            b"PATH" => Some(b"/usr/local/bin:/usr/bin:/bin"),
            _ => None,
        }
    }

    /// Set NAME to VALUE; returns the previous value (for a temporary assignment), or `Err` when
    /// the table is full.
    pub(super) fn set(&mut self, name: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        let value = value[..value.len().min(MAX_VALUE)].to_vec();
        if let Some(slot) = self.vars.iter_mut().find(|(n, _)| n == name) {
            return Ok(Some(std::mem::replace(&mut slot.1, value)));
        }
        if self.vars.len() >= MAX_VARS {
            return Err(());
        }
        self.vars.push((name.to_vec(), value));
        Ok(None)
    }

    /// Put back what [`Sh::set`] returned: the old value, or no variable at all.
    pub(super) fn restore(&mut self, name: &[u8], old: Option<Vec<u8>>) {
        match old {
            Some(v) => {
                if let Some(slot) = self.vars.iter_mut().find(|(n, _)| n == name) {
                    slot.1 = v;
                }
            }
            None => self.vars.retain(|(n, _)| n != name),
        }
    }

    /// The body of function NAME.
    pub(super) fn function(&self, name: &[u8]) -> Option<Vec<u8>> {
        self.funcs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body.clone())
    }

    /// Define (or redefine) function NAME; `Err` when the table is full.
    pub(super) fn define(&mut self, name: &[u8], body: &[u8]) -> Result<(), ()> {
        let body = body[..body.len().min(MAX_VALUE)].to_vec();
        if let Some(slot) = self.funcs.iter_mut().find(|(n, _)| n == name) {
            slot.1 = body;
            return Ok(());
        }
        if self.funcs.len() >= MAX_VARS {
            return Err(());
        }
        self.funcs.push((name.to_vec(), body));
        Ok(())
    }

    /// Forget everything (a new login).
    pub(super) fn reset(&mut self) {
        *self = Sh::default();
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `NAME() { BODY }` (optionally `function`-less, spaces anywhere, a `;` after the brace):
/// the name and the body between the braces.
pub(super) fn function_definition(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = line.trim_ascii();
    let name_len = line.iter().take_while(|&&b| is_name(b)).count();
    if name_len == 0 || !is_name_start(line[0]) {
        return None;
    }
    let (name, rest) = line.split_at(name_len);
    let rest = rest.trim_ascii_start().strip_prefix(b"()")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"{")?;
    let rest = rest.trim_ascii_end();
    let rest = rest.strip_suffix(b";").unwrap_or(rest).trim_ascii_end();
    let body = rest.strip_suffix(b"}")?;
    Some((name, body))
}

/// Split a line into the commands of its `;`-list (quotes and backslashes respected); empty
/// commands are dropped.
pub(super) fn split_list(line: &[u8]) -> Vec<&[u8]> {
    let mut items = Vec::new();
    let (mut start, mut i) = (0, 0);
    let (mut single, mut double) = (false, false);
    while i < line.len() {
        let b = line[i];
        match b {
            b'\\' if !single => i += 1,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b';' if !single && !double => {
                items.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    items.push(&line[start.min(line.len())..]);
    items.retain(|item| !item.trim_ascii().is_empty());
    items
}

/// The words of one command, quotes removed and `$…` expanded with SH's variables, its `$?` and
/// the positional parameters ARGS.
pub(super) fn words(command: &[u8], sh: &Sh, args: &[Vec<u8>]) -> Vec<Word> {
    let mut out = Vec::new();
    let mut word: Option<Word> = None;
    // Whether the word so far is a bare name (it may still become an assignment).
    let mut bare_name = true;
    let mut i = 0;
    let mut single = false;
    let mut double = false;
    // Whether the word had quotes (an empty quoted word is a word, an empty expansion is not).
    let mut quoted = false;
    while i < command.len() {
        let b = command[i];
        if single {
            if b == b'\'' {
                single = false;
            } else {
                word.get_or_insert_with(empty).text.push(b);
            }
            i += 1;
            continue;
        }
        match b {
            b' ' | b'\t' | b'\r' | b'\n' if !double => {
                if let Some(w) = word.take().filter(|w| quoted || !w.text.is_empty()) {
                    out.push(w);
                }
                bare_name = true;
                quoted = false;
                i += 1;
            }
            b'\'' if !double => {
                single = true;
                quoted = true;
                bare_name = false;
                word.get_or_insert_with(empty);
                i += 1;
            }
            b'"' => {
                double = !double;
                quoted = true;
                bare_name = false;
                word.get_or_insert_with(empty);
                i += 1;
            }
            b'\\' => {
                bare_name = false;
                let w = word.get_or_insert_with(empty);
                match command.get(i + 1) {
                    // In double quotes a backslash only escapes `$ " \` and the backtick.
                    Some(&next) if !double || matches!(next, b'$' | b'"' | b'\\' | b'`') => {
                        w.text.push(next);
                        i += 2;
                    }
                    _ => {
                        w.text.push(b'\\');
                        i += 1;
                    }
                }
            }
            b'$' => {
                bare_name = false;
                let (value, used) = expand(&command[i + 1..], sh, args);
                let w = word.get_or_insert_with(empty);
                match value {
                    Some(v) => w.text.extend_from_slice(&v),
                    None => w.text.push(b'$'),
                }
                i += 1 + used;
            }
            b'=' if bare_name && !double => {
                let w = word.get_or_insert_with(empty);
                if w.assign.is_none() && !w.text.is_empty() && is_name_start(w.text[0]) {
                    w.assign = Some(w.text.len());
                }
                w.text.push(b'=');
                bare_name = false;
                i += 1;
            }
            _ => {
                if !is_name(b) {
                    bare_name = false;
                }
                word.get_or_insert_with(empty).text.push(b);
                i += 1;
            }
        }
    }
    if let Some(w) = word.filter(|w| quoted || !w.text.is_empty()) {
        out.push(w);
    }
    out
}

fn empty() -> Word {
    Word {
        text: Vec::new(),
        assign: None,
    }
}

/// Expand what follows a `$`: its value (`None`: not an expansion, the `$` stays) and how many
/// bytes after the `$` it used.
fn expand(rest: &[u8], sh: &Sh, args: &[Vec<u8>]) -> (Option<Vec<u8>>, usize) {
    match rest.first() {
        Some(b'?') => (Some(sh.status.to_string().into_bytes()), 1),
        Some(b'@' | b'*') => (Some(args.join(&b' ')), 1),
        Some(b'#') => (Some(args.len().to_string().into_bytes()), 1),
        Some(&d @ b'1'..=b'9') => {
            let n = usize::from(d - b'0');
            (Some(args.get(n - 1).cloned().unwrap_or_default()), 1)
        }
        Some(b'0') => (Some(b"sh".to_vec()), 1),
        Some(b'{') => {
            let Some(close) = rest.iter().position(|&b| b == b'}') else {
                return (None, 0);
            };
            let name = &rest[1..close];
            if name.is_empty() || !is_name_start(name[0]) || !name.iter().all(|&b| is_name(b)) {
                return (None, 0);
            }
            (Some(sh.var(name).unwrap_or_default().to_vec()), close + 1)
        }
        Some(&b) if is_name_start(b) => {
            let len = rest.iter().take_while(|&&b| is_name(b)).count();
            (Some(sh.var(&rest[..len]).unwrap_or_default().to_vec()), len)
        }
        _ => (None, 0),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn texts(words: &[Word]) -> Vec<String> {
        words
            .iter()
            .map(|w| String::from_utf8_lossy(&w.text).into_owned())
            .collect()
    }

    #[test]
    fn quotes_join_and_disappear() {
        let sh = Sh::default();
        let w = words(b"echo 'ab''cd' \"e f\" g\\ h", &sh, &[]);
        assert_eq!(texts(&w), ["echo", "abcd", "e f", "g h"]);
    }

    #[test]
    fn variables_status_and_positional_expand() {
        let mut sh = Sh::default();
        sh.set(b"MARKER", b"XY").unwrap();
        sh.status = 3;
        let args = vec![b"uname -s".to_vec(), b"b".to_vec()];
        let w = words(
            b"echo \"$MARKER $?\" ${MARKER}z $1 $2 $9 '$MARKER' $ $(x) \"\"",
            &sh,
            &args,
        );
        // No field splitting: `$1` stays one word; an unquoted empty expansion is no word, `""` is.
        assert_eq!(
            texts(&w),
            [
                "echo", "XY 3", "XYz", "uname -s", "b", "$MARKER", "$", "$(x)", ""
            ]
        );
    }

    #[test]
    fn assignments_are_recognised_only_before_quotes() {
        let sh = Sh::default();
        let w = words(b"MARKER='ab''cd' run 'uname -s' x=1", &sh, &[]);
        assert_eq!(w[0].assign, Some(6));
        assert_eq!(w[0].text, b"MARKER=abcd");
        assert_eq!(w[1].assign, None);
        assert_eq!(w[2].text, b"uname -s");
        // Any word of the form is one; the shell only treats leading ones as assignments.
        assert_eq!(w[3].assign, Some(1));
        let w = words(b"'A'=1 1A=2 \"B=3\"", &sh, &[]);
        assert!(w.iter().all(|w| w.assign.is_none()), "{w:?}");
    }

    #[test]
    fn lists_split_outside_quotes() {
        let items = split_list(b"echo a; echo 'b;c' ; echo \"d;\"e;;");
        assert_eq!(items, [&b"echo a"[..], b" echo 'b;c' ", b" echo \"d;\"e"]);
    }

    #[test]
    fn labgrid_run_function_is_a_definition() {
        let line = br#"run() { echo -n "$MARKER"; sh -c "$@"; echo "$MARKER $?"; }"#;
        let (name, body) = function_definition(line).unwrap();
        assert_eq!(name, b"run");
        assert_eq!(
            split_list(body),
            [
                &br#" echo -n "$MARKER""#[..],
                br#" sh -c "$@""#,
                br#" echo "$MARKER $?""#
            ]
        );
        assert!(function_definition(b"echo () {").is_none());
        assert!(function_definition(b"() { x; }").is_none());
    }

    #[test]
    fn state_is_bounded() {
        let mut sh = Sh::default();
        for i in 0..MAX_VARS {
            sh.set(format!("V{i}").as_bytes(), &[b'x'; MAX_VALUE * 2])
                .unwrap();
        }
        assert!(sh.set(b"ONE_TOO_MANY", b"1").is_err());
        assert_eq!(sh.var(b"V0").unwrap().len(), MAX_VALUE);
        let old = sh.set(b"V1", b"new").unwrap();
        sh.restore(b"V1", old);
        assert_eq!(sh.var(b"V1").unwrap().len(), MAX_VALUE);
    }
}
