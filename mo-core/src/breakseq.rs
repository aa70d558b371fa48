//! Named break sequences: what "send break" does on a console.
//!
//! Many devices want something other than a plain BREAK condition to drop into their monitor: Sun
//! consoles accept `~^B` after a newline, LOMs want `#.`. A [`BreakSequence`] is a list of
//! [`BreakStep`]s written in conserver's notation:
//!
//! | text   | step                                  |
//! |--------|---------------------------------------|
//! | `\z`   | a BREAK condition (250 ms)            |
//! | `\d`   | a pause of 500 ms                     |
//! | `\r` `\n` `\t` `\\` | that character           |
//! | `\ooo` | the byte with octal value ooo         |
//! | `^X`   | the control character Ctrl-X          |
//! | other  | the character itself                  |
//!
//! ```
//! use mo_core::breakseq::{BreakSequence, BreakStep};
//! let seq = BreakSequence::parse("\\r~^b").unwrap();
//! assert_eq!(seq.steps(), &[BreakStep::Send(b"\r~\x02".to_vec())]);
//! ```

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::error::{Error, Result};

/// How long `\z` holds the line in the break state.
pub const BREAK_DURATION: Duration = Duration::from_millis(250);
/// How long `\d` pauses.
pub const DELAY_DURATION: Duration = Duration::from_millis(500);

/// One step of a break sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakStep {
    /// Send a BREAK condition for this long (a control operation on the link).
    Break(Duration),
    /// Wait this long.
    Delay(Duration),
    /// Write these bytes to the device.
    Send(Vec<u8>),
}

/// A parsed break sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakSequence {
    steps: Vec<BreakStep>,
    text: String,
}

impl BreakSequence {
    /// Parse conserver-style notation (see the module docs).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadSpec {
            what: "break sequence",
            input: text.to_string(),
            reason,
        };
        let mut steps = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        let flush = |bytes: &mut Vec<u8>, steps: &mut Vec<BreakStep>| {
            if !bytes.is_empty() {
                steps.push(BreakStep::Send(std::mem::take(bytes)));
            }
        };
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('z') => {
                        flush(&mut bytes, &mut steps);
                        steps.push(BreakStep::Break(BREAK_DURATION));
                    }
                    Some('d') => {
                        flush(&mut bytes, &mut steps);
                        steps.push(BreakStep::Delay(DELAY_DURATION));
                    }
                    Some('r') => bytes.push(b'\r'),
                    Some('n') => bytes.push(b'\n'),
                    Some('t') => bytes.push(b'\t'),
                    Some('\\') => bytes.push(b'\\'),
                    Some('^') => bytes.push(b'^'),
                    Some(d @ '0'..='7') => {
                        let mut value = d as u32 - '0' as u32;
                        for _ in 0..2 {
                            match chars.peek() {
                                Some(n @ '0'..='7') => {
                                    value = value * 8 + (*n as u32 - '0' as u32);
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        let byte = u8::try_from(value)
                            .map_err(|_| bad(format!("octal escape \\{value:o} is above \\377")))?;
                        bytes.push(byte);
                    }
                    Some(other) => return Err(bad(format!("unknown escape `\\{other}`"))),
                    None => return Err(bad("ends with a lone `\\`".into())),
                },
                '^' => match chars.next() {
                    Some(ch) if ch.is_ascii_alphabetic() || "@[\\]^_?".contains(ch) => {
                        let up = ch.to_ascii_uppercase() as u8;
                        bytes.push(if up == b'?' { 0x7f } else { up & 0x1f });
                    }
                    Some(other) => {
                        return Err(bad(format!("`^{other}` is not a control character")));
                    }
                    None => return Err(bad("ends with a lone `^`".into())),
                },
                c => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        flush(&mut bytes, &mut steps);
        if steps.is_empty() {
            return Err(bad("is empty".into()));
        }
        Ok(BreakSequence {
            steps,
            text: text.to_string(),
        })
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[BreakStep] {
        &self.steps
    }

    /// The notation it was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True if any step needs the link's BREAK capability.
    pub fn needs_break(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, BreakStep::Break(_)))
    }
}

/// The break sequences of a console, numbered 1 to 9 as in conserver (`Ctrl-E c l 1`).
///
/// Cloning shares the slots; [`BreakSequences::set`] copies them first when they are shared, so
/// ten thousand consoles with the defaults hold one copy of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakSequences {
    slots: Arc<[Option<BreakSequence>; 9]>,
}

/// conserver's defaults, parsed once.
static DEFAULTS: LazyLock<BreakSequences> = LazyLock::new(|| {
    let mut slots: [Option<BreakSequence>; 9] = Default::default();
    for (slot, text) in slots
        .iter_mut()
        .zip(["\\z", "\\r~^b", "#.", "\\r\\d~\\d^b"])
    {
        *slot = BreakSequence::parse(text).ok();
    }
    BreakSequences {
        slots: Arc::new(slots),
    }
});

impl Default for BreakSequences {
    /// conserver's defaults: 1 = `\z`, 2 = `\r~^b`, 3 = `#.`, 4 = `\r\d~\d^b`.
    fn default() -> Self {
        DEFAULTS.clone()
    }
}

impl BreakSequences {
    /// No sequences at all.
    pub fn empty() -> Self {
        BreakSequences {
            slots: Arc::default(),
        }
    }

    /// Sequence number `n` (1–9).
    pub fn get(&self, n: u8) -> Option<&BreakSequence> {
        let i = usize::from(n).checked_sub(1)?;
        self.slots.get(i)?.as_ref()
    }

    /// Set sequence number `n` (1–9).
    pub fn set(&mut self, n: u8, seq: BreakSequence) -> Result<()> {
        let i = usize::from(n)
            .checked_sub(1)
            .filter(|i| *i < self.slots.len())
            .ok_or_else(|| Error::BadSpec {
                what: "break sequence number",
                input: n.to_string(),
                reason: "must be 1 to 9".into(),
            })?;
        Arc::make_mut(&mut self.slots)[i] = Some(seq);
        Ok(())
    }

    /// All defined sequences with their numbers.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &BreakSequence)> {
        (1u8..)
            .zip(self.slots.iter())
            .filter_map(|(n, s)| Some((n, s.as_ref()?)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_conserver_defaults() {
        let d = BreakSequences::default();
        assert_eq!(
            d.get(1).map(|s| s.steps().to_vec()),
            Some(vec![BreakStep::Break(BREAK_DURATION)])
        );
        assert_eq!(
            d.get(3).map(|s| s.steps().to_vec()),
            Some(vec![BreakStep::Send(b"#.".to_vec())])
        );
        let four = d.get(4).map(|s| s.steps().to_vec()).unwrap_or_default();
        assert_eq!(
            four,
            vec![
                BreakStep::Send(b"\r".to_vec()),
                BreakStep::Delay(DELAY_DURATION),
                BreakStep::Send(b"~".to_vec()),
                BreakStep::Delay(DELAY_DURATION),
                BreakStep::Send(vec![2]),
            ]
        );
        assert!(d.get(5).is_none());
        assert!(d.get(0).is_none());
        assert!(d.get(10).is_none());
    }

    #[test]
    fn setting_one_console_s_sequence_leaves_the_shared_defaults_alone() {
        let mut one = BreakSequences::default();
        let other = BreakSequences::default();
        assert!(Arc::ptr_eq(&one.slots, &other.slots));
        one.set(1, BreakSequence::parse("~B").unwrap()).unwrap();
        assert_eq!(one.get(1).map(BreakSequence::text), Some("~B"));
        assert_eq!(other.get(1).map(BreakSequence::text), Some("\\z"));
        assert_eq!(BreakSequences::default(), other);
        assert!(one.set(10, BreakSequence::parse("x").unwrap()).is_err());
        assert!(one.set(0, BreakSequence::parse("x").unwrap()).is_err());
        let mut empty = BreakSequences::empty();
        empty.set(9, BreakSequence::parse("x").unwrap()).unwrap();
        assert_eq!(empty.iter().map(|(n, _)| n).collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn octal_and_errors() {
        let s = BreakSequence::parse("a\\101\\0").map(|s| s.steps().to_vec());
        assert_eq!(s.ok(), Some(vec![BreakStep::Send(b"aA\0".to_vec())]));
        for bad in ["", "\\", "^", "\\q", "\\777", "^1"] {
            let err = BreakSequence::parse(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("bad break sequence"), "{bad}: {err}");
        }
    }
}
