//! Device programs for `exec://` consoles in tests, plus small facts about files and processes
//! that end-to-end tests check.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{child_pids, run_with_timeout};

/// A tiny console: greets with `console ready (pid N)`, answers each input line with
/// `got: LINE`, exits on `die`, and on `flood N` prints N lines of ~60 bytes then `flood done`.
/// Relies on the pty's cooked mode (Enter arrives as a newline).
pub const ECHO_CONSOLE: &str = r#"#!/bin/sh
echo "console ready (pid $$)"
while IFS= read -r line; do
  case "$line" in
    die) echo "dying now"; exit 3 ;;
    flood\ *) seq 1 "${line#flood }" | sed 's/^/flood-line-padding-padding-padding-padding-padding-/'; echo "flood done" ;;
    *) echo "got: $line" ;;
  esac
done
echo "console input closed"
"#;

/// A device that floods forever: `flood line N padding...` as fast as `sh` can print.
pub const FLOOD_FOREVER: &str = r#"#!/bin/sh
i=0
while :; do
  i=$((i+1))
  echo "flood line $i padding padding padding padding padding padding"
done
"#;

/// Total size in bytes of the regular files under `dir` (0 if it does not exist).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// All descendants of `pid` (children, grandchildren, ...), read from `/proc`.
pub fn descendant_pids(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in child_pids(p) {
            if !out.contains(&c) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// The current UTC time as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`), from `date -u`.
pub fn utc_now_rfc3339() -> Result<String> {
    let mut cmd = Command::new("date");
    cmd.args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(10))?.ok()?;
    let s = out.stdout.trim().to_string();
    if s.len() != 20 {
        return Err(Error::Check(format!("unexpected `date -u` output {s:?}")));
    }
    Ok(s)
}

/// Whether `line` contains an RFC 3339 date-time (`2024-05-01T12:00:00[.fff](Z|+hh:mm)`).
pub fn has_rfc3339_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    (0..b.len()).any(|i| rfc3339_at(&b[i..]))
}

fn rfc3339_at(b: &[u8]) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < SHAPE.len() + 1 {
        return false;
    }
    let shaped = SHAPE.iter().zip(b).all(|(s, c)| match s {
        b'd' => c.is_ascii_digit(),
        b'T' => *c == b'T' || *c == b't',
        other => c == other,
    });
    if !shaped {
        return false;
    }
    let mut rest = &b[SHAPE.len()..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[1 + digits..];
    }
    match rest.first() {
        Some(b'Z' | b'z') => true,
        Some(b'+' | b'-') => {
            rest.len() >= 6
                && rest[1].is_ascii_digit()
                && rest[2].is_ascii_digit()
                && rest[3] == b':'
                && rest[4].is_ascii_digit()
                && rest[5].is_ascii_digit()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_rfc3339() {
        assert!(has_rfc3339_timestamp("2024-05-01T12:00:00Z got: x"));
        assert!(has_rfc3339_timestamp(
            "x 2024-05-01T12:00:00.123456789+02:00 <alice> ls"
        ));
        assert!(!has_rfc3339_timestamp("2024-05-01 12:00:00 got: x"));
        assert!(!has_rfc3339_timestamp("2024-05-01T12:00:00"));
        assert!(!has_rfc3339_timestamp("2024-05-01T12:00:00."));
    }

    #[test]
    fn timestamp_check_never_panics_on_random_input() {
        // Deterministic pseudo-random strings (xorshift), biased towards timestamp characters.
        let alphabet = b"0123456789-:T.Z+ zx";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let len = (state % 40) as usize;
            let mut s = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let text = String::from_utf8_lossy(&s);
            let _ = has_rfc3339_timestamp(&text);
        }
    }

    #[test]
    fn now_is_rfc3339() -> Result<()> {
        assert!(has_rfc3339_timestamp(&utc_now_rfc3339()?));
        Ok(())
    }

    #[test]
    fn echo_console_answers_and_floods() -> Result<()> {
        let dir = crate::ports::temp_dir("echo-console")?;
        let path = dir.path().join("c.sh");
        std::fs::write(&path, ECHO_CONSOLE).map_err(|e| Error::io("write", e))?;
        let mut cmd = Command::new("sh");
        cmd.arg(&path);
        let out = run_with_timeout(
            cmd,
            Some(b"hi\nflood 3\ndie\nnot reached\n"),
            Duration::from_secs(10),
        )?;
        assert_eq!(out.status.code(), Some(3));
        assert!(
            out.stdout.starts_with("console ready (pid "),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("got: hi\n"), "{}", out.stdout);
        assert!(
            out.stdout.contains("padding-3\nflood done\ndying now\n"),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains("not reached"));
        Ok(())
    }

    #[test]
    fn dir_size_sums_files() -> Result<()> {
        let dir = crate::ports::temp_dir("dir-size")?;
        std::fs::create_dir(dir.path().join("sub")).map_err(|e| Error::io("mkdir", e))?;
        std::fs::write(dir.path().join("a"), [0u8; 10]).map_err(|e| Error::io("write", e))?;
        std::fs::write(dir.path().join("sub/b"), [0u8; 5]).map_err(|e| Error::io("write", e))?;
        assert_eq!(dir_size(dir.path()), 15);
        Ok(())
    }
}
