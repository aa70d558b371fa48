//! The escape prefix and its conserver notation (`^Ec`).

use std::fmt;

use crate::error::{Error, Result};

/// Which two bytes start an escape sequence.
///
/// Written in conserver's notation: each of the two characters is `^X` (the control character
/// Ctrl-X; `^?` is DEL), `\ooo` (the byte with octal value ooo), or a plain ASCII character other
/// than `^` and `\`. The default is `^Ec`: Ctrl-E followed by `c`.
///
/// ```
/// use mo_core::escape::EscapeConfig;
/// let config = EscapeConfig::parse("^Ec").unwrap();
/// assert_eq!(config, EscapeConfig::default());
/// assert_eq!(config.prefix, [0x05, b'c']);
/// assert_eq!(config.to_string(), "^Ec");
/// assert_eq!(config.describe(), "Ctrl-E c");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EscapeConfig {
    /// The two bytes of the escape prefix, in the order they are typed.
    pub prefix: [u8; 2],
}

impl Default for EscapeConfig {
    /// conserver's default, `^Ec` (Ctrl-E then `c`).
    fn default() -> Self {
        EscapeConfig {
            prefix: [0x05, b'c'],
        }
    }
}

impl EscapeConfig {
    /// An escape prefix of these two bytes, unchecked. Prefer [`EscapeConfig::parse`] for text
    /// that comes from a user or a configuration file.
    pub fn new(prefix: [u8; 2]) -> Self {
        EscapeConfig { prefix }
    }

    /// Parse conserver notation such as `^Ec`, `^]q` or `&.` (see the type's docs).
    ///
    /// Fails with [`Error::BadSpec`] if the text is not exactly two characters in that notation,
    /// or if the first character is CR or LF (every Enter would then wait for the next key).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadSpec {
            what: "escape sequence",
            input: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("is empty; expected two characters such as `^Ec`".into()));
        }
        let mut rest = text;
        let mut bytes = Vec::with_capacity(2);
        while !rest.is_empty() {
            if bytes.len() == 2 {
                return Err(bad(format!(
                    "has more than two characters (`{rest}` left over); an escape is two characters such as `^Ec`"
                )));
            }
            let (byte, used) = parse_one(rest).map_err(bad)?;
            bytes.push(byte);
            rest = rest.get(used..).unwrap_or_default();
        }
        let [first, second] = bytes[..] else {
            return Err(bad(
                "has only one character; an escape is two characters such as `^Ec`".into(),
            ));
        };
        if first == b'\r' || first == b'\n' {
            return Err(bad(
                "the first character may not be CR or LF: every Enter would wait for the next key"
                    .into(),
            ));
        }
        Ok(EscapeConfig {
            prefix: [first, second],
        })
    }

    /// The prefix for people: `Ctrl-E c` for `^Ec`, as used in help and error messages.
    pub fn describe(&self) -> String {
        let [a, b] = self.prefix;
        format!("{} {}", describe_byte(a), describe_byte(b))
    }
}

impl fmt::Display for EscapeConfig {
    /// conserver notation, which [`EscapeConfig::parse`] reads back: `^Ec`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.prefix;
        write!(f, "{}{}", notation(a), notation(b))
    }
}

/// Parse one character of the notation at the start of `text`; returns the byte and how many
/// bytes of `text` it used.
fn parse_one(text: &str) -> std::result::Result<(u8, usize), String> {
    let mut chars = text.chars();
    match chars.next() {
        Some('^') => match chars.next() {
            Some('?') => Ok((0x7f, 2)),
            Some(c) if c.is_ascii_alphabetic() || "@[\\]^_".contains(c) => {
                Ok((c.to_ascii_uppercase() as u8 & 0x1f, 2))
            }
            Some(c) => Err(format!(
                "`^{c}` is not a control character (use ^@, ^A … ^Z, ^[, ^\\, ^], ^^, ^_ or ^?)"
            )),
            None => Err("ends with a lone `^`".into()),
        },
        Some('\\') => {
            let digits: String = chars
                .take(3)
                .take_while(|c| ('0'..='7').contains(c))
                .collect();
            if digits.len() != 3 {
                let shown: String = text.chars().take(4).collect();
                return Err(format!(
                    "`{shown}` is not an octal escape: write a byte as a backslash and three octal digits, such as `\\005`"
                ));
            }
            let value = u32::from_str_radix(&digits, 8).unwrap_or(u32::MAX);
            let byte = u8::try_from(value)
                .map_err(|_| format!("octal escape `\\{digits}` is above `\\377`"))?;
            Ok((byte, 4))
        }
        Some(c) if c.is_ascii() => Ok((c as u8, 1)),
        Some(c) => Err(format!(
            "`{c}` is not ASCII; write a byte above 127 as `\\ooo` (three octal digits)"
        )),
        None => Err("is empty".into()),
    }
}

/// One byte in the notation [`EscapeConfig::parse`] reads.
pub(crate) fn notation(byte: u8) -> String {
    match byte {
        0x00..=0x1f => format!("^{}", char::from(byte | 0x40)),
        0x7f => "^?".into(),
        b'^' | b'\\' => format!("\\{byte:03o}"),
        0x20..=0x7e => char::from(byte).to_string(),
        _ => format!("\\{byte:03o}"),
    }
}

/// One byte as a person would name the key: `Ctrl-E`, `c`, `Space`, `\351`.
pub(crate) fn describe_byte(byte: u8) -> String {
    match byte {
        0x00..=0x1f => format!("Ctrl-{}", char::from(byte | 0x40)),
        0x7f => "Del".into(),
        b' ' => "Space".into(),
        0x21..=0x7e => char::from(byte).to_string(),
        _ => format!("\\{byte:03o}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_notation() {
        assert_eq!(EscapeConfig::parse("^Ec").unwrap().prefix, [0x05, b'c']);
        assert_eq!(EscapeConfig::parse("^ec").unwrap().prefix, [0x05, b'c']);
        assert_eq!(EscapeConfig::parse("^]q").unwrap().prefix, [0x1d, b'q']);
        assert_eq!(EscapeConfig::parse("&.").unwrap().prefix, [b'&', b'.']);
        assert_eq!(EscapeConfig::parse("^?^@").unwrap().prefix, [0x7f, 0x00]);
        assert_eq!(EscapeConfig::parse("\\005c").unwrap().prefix, [0x05, b'c']);
        assert_eq!(EscapeConfig::parse("^A\\136").unwrap().prefix, [0x01, b'^']);
        assert_eq!(
            EscapeConfig::parse("\\377\\134").unwrap().prefix,
            [0xff, b'\\']
        );
        assert_eq!(EscapeConfig::parse("~ ").unwrap().prefix, [b'~', b' ']);
    }

    #[test]
    fn display_round_trips_every_byte() {
        for a in 0..=255u8 {
            if a == b'\r' || a == b'\n' {
                continue;
            }
            for b in [0u8, b'c', b'^', b'\\', 0x7f, 0x80, 0xff, b' ', a] {
                let config = EscapeConfig::new([a, b]);
                let text = config.to_string();
                let back = EscapeConfig::parse(&text);
                assert_eq!(back.ok(), Some(config), "{text}");
            }
        }
        assert_eq!(EscapeConfig::default().to_string(), "^Ec");
    }

    #[test]
    fn describes_for_people() {
        assert_eq!(EscapeConfig::default().describe(), "Ctrl-E c");
        assert_eq!(EscapeConfig::new([b'&', b' ']).describe(), "& Space");
        assert_eq!(EscapeConfig::new([0x7f, 0xe9]).describe(), "Del \\351");
    }

    #[test]
    fn rejects_bad_notation_clearly() {
        let cases = [
            ("", "is empty"),
            ("^E", "only one character"),
            ("c", "only one character"),
            ("^Ecx", "more than two characters (`x` left over)"),
            ("^", "lone `^`"),
            ("a^", "lone `^`"),
            ("^1c", "`^1` is not a control character"),
            ("\\9c", "not an octal escape"),
            ("\\05c", "not an octal escape"),
            ("\\777c", "above `\\377`"),
            ("é.", "not ASCII"),
            ("\rx", "CR or LF"),
            ("\\012x", "CR or LF"),
        ];
        for (input, want) in cases {
            let err = EscapeConfig::parse(input).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::BadSpec { .. }), "{input:?}");
            assert!(text.starts_with("bad escape sequence"), "{input:?}: {text}");
            assert!(text.contains(want), "{input:?}: {text}");
        }
    }
}
