//! Line-by-line check of a sim flood as its record log holds it: after the echo of the `flood`
//! command, every numbered line exactly once, in order, unchanged, then the sim's closing summary
//! with the same line count.

use mo_drivers::sim::{FLOOD_LINE_LEN, flood_line};

/// Longest non-flood line accepted before a line end (the summary is about 50 bytes).
const MAX_OTHER_LINE: usize = 1024;

/// Feeds a console's output, record by record, through the check.
#[derive(Debug)]
pub struct FloodLines {
    /// The echo of the command that started the flood (`flood max 3\r\n`).
    command: Vec<u8>,
    state: State,
    /// The current line, when it is split between records (or is not a flood line).
    partial: Vec<u8>,
    /// The number of the next flood line expected.
    next: u64,
}

#[derive(Debug)]
enum State {
    /// Before the echo of the command: the tail of what was seen so far.
    Before(Vec<u8>),
    /// Reading numbered lines.
    Lines,
    /// After the summary, which said this many lines.
    Done(u64),
}

impl FloodLines {
    /// A check of the output that follows `command` (as typed, without the line end).
    pub fn new(command: &str) -> Self {
        FloodLines {
            command: format!("{command}\r\n").into_bytes(),
            state: State::Before(Vec::new()),
            partial: Vec::new(),
            next: 1,
        }
    }

    /// Flood lines seen so far.
    pub fn lines(&self) -> u64 {
        self.next - 1
    }

    /// The next piece of output. The error names the line that is lost, repeated or garbled.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        if let State::Before(seen) = &mut self.state {
            seen.extend_from_slice(bytes);
            let Some(at) = find(seen, &self.command) else {
                // Keep only what may still be the start of the echo.
                let keep = seen.len().min(self.command.len());
                seen.drain(..seen.len() - keep);
                return Ok(());
            };
            let rest = seen.split_off(at + self.command.len());
            self.state = State::Lines;
            return self.feed(&rest);
        }
        while !bytes.is_empty() {
            if matches!(self.state, State::Done(_)) {
                return Ok(());
            }
            // Fast path: a whole line at the start of what is left.
            if self.partial.is_empty()
                && let Some(line) = bytes.get(..FLOOD_LINE_LEN)
                && line == flood_line(self.next)
            {
                self.next += 1;
                bytes = &bytes[FLOOD_LINE_LEN..];
                continue;
            }
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.partial.extend_from_slice(&bytes[..=end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.partial);
                    self.line(&line)?;
                }
                None => {
                    self.partial.extend_from_slice(bytes);
                    if self.partial.len() > MAX_OTHER_LINE {
                        return Err(format!(
                            "after line {}: {} bytes without a line end: {}",
                            self.lines(),
                            self.partial.len(),
                            shown(&self.partial)
                        ));
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One whole line (with its `\n`) that was not the expected flood line on the fast path.
    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        if line == flood_line(self.next) {
            self.next += 1;
            return Ok(());
        }
        if let Some(summary) = line.strip_prefix(b"flood: ") {
            let said = std::str::from_utf8(summary)
                .ok()
                .and_then(|s| s.split_once(" lines,"))
                .and_then(|(n, _)| n.parse::<u64>().ok())
                .ok_or_else(|| format!("unreadable flood summary {}", shown(line)))?;
            if said != self.lines() {
                return Err(format!(
                    "the sim printed {said} lines, the log holds {}{}",
                    self.lines(),
                    if said > self.lines() {
                        format!(": lines {} to {said} lost", self.next)
                    } else {
                        String::new()
                    }
                ));
            }
            self.state = State::Done(said);
            return Ok(());
        }
        let number = (line.len() == FLOOD_LINE_LEN && line[10] == b' ')
            .then(|| std::str::from_utf8(&line[..10]).ok()?.parse::<u64>().ok())
            .flatten();
        let expected = self.next;
        Err(match number {
            Some(n) if n < expected => {
                format!("line {n} again after line {} (duplicated)", expected - 1)
            }
            Some(n) if n > expected => format!(
                "line {expected} missing{} (the log goes on with line {n})",
                if n - expected > 1 {
                    format!(" up to line {} ({} lines lost)", n - 1, n - expected)
                } else {
                    String::new()
                }
            ),
            Some(_) => format!("line {expected} garbled: {}", shown(line)),
            None => format!("line {expected} expected, found {}", shown(line)),
        })
    }

    /// The end of the log: Ok(lines) if the flood's summary was seen.
    pub fn finish(self) -> Result<u64, String> {
        match self.state {
            State::Before(_) => Err(format!(
                "the echo of `{}` never appears in the log",
                String::from_utf8_lossy(&self.command).trim_end()
            )),
            State::Lines => Err(format!(
                "the log ends after line {} without the flood's closing summary{}",
                self.lines(),
                if self.partial.is_empty() {
                    String::new()
                } else {
                    format!(" (then {})", shown(&self.partial))
                }
            )),
            State::Done(lines) => Ok(lines),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A line for an error message: quoted, at most 80 bytes.
fn shown(line: &[u8]) -> String {
    let cut = &line[..line.len().min(80)];
    format!(
        "{:?}{}",
        String::from_utf8_lossy(cut),
        if cut.len() < line.len() { "…" } else { "" }
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// What a console shows around a flood of `lines` lines, with `edit` applied to the lines.
    fn console(lines: u64, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
        let mut body: Vec<Vec<u8>> = (1..=lines).map(|n| flood_line(n).to_vec()).collect();
        edit(&mut body);
        let mut out = b"f1 login: bench\r\nPassword: \r\nf1:~$ flood max 1\r\n".to_vec();
        out.extend(body.concat());
        out.extend_from_slice(
            format!(
                "flood: {lines} lines, {} bytes in 1.0 s\r\nf1:~$ ",
                lines * 64
            )
            .as_bytes(),
        );
        out
    }

    /// Feed `out` in pieces of `piece` bytes.
    fn check(out: &[u8], piece: usize) -> Result<u64, String> {
        let mut c = FloodLines::new("flood max 1");
        for p in out.chunks(piece) {
            c.feed(p)?;
        }
        c.finish()
    }

    #[test]
    fn a_whole_flood_passes_however_it_is_split() {
        let out = console(500, |_| {});
        for piece in [1, 7, 63, 64, 65, 1000, out.len()] {
            assert_eq!(check(&out, piece), Ok(500), "pieces of {piece}");
        }
    }

    #[test]
    fn a_lost_line_is_named() {
        let out = console(300, |l| {
            l.remove(41);
        });
        let e = check(&out, 100).unwrap_err();
        assert!(e.contains("line 42 missing"), "{e}");
        let out = console(300, |l| {
            l.drain(9..19);
        });
        let e = check(&out, 4096).unwrap_err();
        assert!(
            e.contains("line 10 missing up to line 19 (10 lines lost)"),
            "{e}"
        );
    }

    #[test]
    fn a_repeated_line_is_named() {
        let out = console(300, |l| {
            let again = l[99].clone();
            l.insert(100, again);
        });
        let e = check(&out, 333).unwrap_err();
        assert!(e.contains("line 100 again after line 100"), "{e}");
    }

    #[test]
    fn a_garbled_line_is_named() {
        let out = console(300, |l| l[6][30] = b'#');
        let e = check(&out, 64).unwrap_err();
        assert!(e.contains("line 7 garbled"), "{e}");
        let out = console(300, |l| l[6].truncate(20));
        let e = check(&out, 64).unwrap_err();
        assert!(e.contains("line 7 expected, found"), "{e}");
    }

    #[test]
    fn lines_lost_at_the_end_or_a_missing_summary_fail() {
        let out = console(300, |l| l.truncate(299));
        let e = check(&out, 64).unwrap_err();
        assert!(
            e.contains("the sim printed 300 lines, the log holds 299"),
            "{e}"
        );
        let out = console(300, |_| {});
        let cut = out.len() - 60;
        let e = check(&out[..cut], 64).unwrap_err();
        assert!(e.contains("without the flood's closing summary"), "{e}");
        let e = check(b"f1:~$ ", 64).unwrap_err();
        assert!(e.contains("never appears"), "{e}");
    }
}
