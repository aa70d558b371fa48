//! The text of `listen`: many consoles' output as lines, each tagged with its device
//! (`web01: login:`), shared by the SSH shell's `listen` and `mo listen`.
//!
//! Sans-I/O: [`TaggedLines`] is fed a [`GangEventKind`] per device and asked for the partial
//! lines (prompts, which never end in a newline) that have stood still long enough; the caller
//! owns the clock and writes the text wherever it goes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use mo_core::automation::{GangEventKind, TaggedLines};
//!
//! let mut lines = TaggedLines::new();
//! let t0 = Instant::now();
//! let out = lines.event("web01", &GangEventKind::Output(Bytes::from_static(b"up\r\nlogin: ")), t0);
//! assert_eq!(out, "web01: up\n");
//! assert_eq!(lines.partials(t0), "");
//! assert_eq!(lines.partials(t0 + Duration::from_secs(1)), "web01: login: \n");
//! # Ok::<(), mo_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::GangEventKind;
use crate::console::{missed_text, stopped_text};
use crate::scan::{AnsiStripper, Piece};

/// A partial line (a prompt) is shown after this long without a line end.
pub const PARTIAL_AFTER: Duration = Duration::from_millis(500);

/// One device's line being assembled.
#[derive(Debug)]
struct Pending {
    stripper: AnsiStripper,
    line: Vec<u8>,
    since: Instant,
}

/// Output of many devices turned into tagged lines (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct TaggedLines {
    pending: BTreeMap<String, Pending>,
}

impl TaggedLines {
    /// No device seen yet.
    pub fn new() -> TaggedLines {
        TaggedLines::default()
    }

    /// The complete lines `event` of `device` makes, each `device: text\n`, ANSI escapes
    /// stripped; notices, missed output and the console's end as `device: [mo: …]\n`. `now`
    /// starts the quiet period of an unfinished line.
    pub fn event(&mut self, device: &str, event: &GangEventKind, now: Instant) -> String {
        let mut out = String::new();
        match event {
            GangEventKind::Output(bytes) => {
                let p = self
                    .pending
                    .entry(device.to_string())
                    .or_insert_with(|| Pending {
                        stripper: AnsiStripper::new(),
                        line: Vec::new(),
                        since: now,
                    });
                let mut lines: Vec<Vec<u8>> = Vec::new();
                let line = &mut p.line;
                p.stripper.feed(bytes, |piece| match piece {
                    Piece::Text(t) => line.extend_from_slice(t),
                    Piece::LineEnd => {
                        if !line.is_empty() {
                            lines.push(std::mem::take(line));
                        }
                    }
                });
                p.since = now;
                for l in lines {
                    out.push_str(&tagged(device, &String::from_utf8_lossy(&l)));
                }
            }
            GangEventKind::Notice(text) => out.push_str(&tagged(device, &format!("[mo: {text}]"))),
            GangEventKind::Missed { bytes } => {
                out.push_str(&tagged(device, &format!("[mo: {}]", missed_text(*bytes))));
            }
            GangEventKind::Closed => {
                out.push_str(&tagged(device, &format!("[mo: {}]", stopped_text(device))));
            }
        }
        out
    }

    /// The unfinished lines that have had no output for [`PARTIAL_AFTER`] by `now`, tagged,
    /// in device-name order; each is shown once.
    pub fn partials(&mut self, now: Instant) -> String {
        let mut out = String::new();
        for (device, p) in &mut self.pending {
            if !p.line.is_empty() && now.saturating_duration_since(p.since) >= PARTIAL_AFTER {
                out.push_str(&tagged(device, &String::from_utf8_lossy(&p.line)));
                p.line.clear();
            }
        }
        out
    }
}

/// `device: text` and a line end.
fn tagged(device: &str, text: &str) -> String {
    format!("{device}: {text}\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn output(text: &'static str) -> GangEventKind {
        GangEventKind::Output(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn lines_of_two_devices_stay_apart() {
        let mut lines = TaggedLines::new();
        let t0 = Instant::now();
        assert_eq!(lines.event("a", &output("one\r\ntw"), t0), "a: one\n");
        assert_eq!(
            lines.event("b", &output("\x1b[1mbold\x1b[0m\n"), t0),
            "b: bold\n"
        );
        assert_eq!(lines.event("a", &output("o\r\n"), t0), "a: two\n");
        assert_eq!(
            lines.event("b", &GangEventKind::Missed { bytes: 7 }, t0),
            format!("b: [mo: {}]\n", missed_text(7))
        );
        assert_eq!(
            lines.event("b", &GangEventKind::Closed, t0),
            "b: [mo: b stopped]\n"
        );
    }

    #[test]
    fn a_prompt_shows_once_it_stands_still() {
        let mut lines = TaggedLines::new();
        let t0 = Instant::now();
        lines.event("b", &output("login: "), t0);
        lines.event("a", &output("=> "), t0 + Duration::from_millis(400));
        let later = t0 + PARTIAL_AFTER;
        assert_eq!(lines.partials(later), "b: login: \n");
        assert_eq!(lines.partials(later), "");
        assert_eq!(lines.partials(later + PARTIAL_AFTER), "a: => \n");
    }
}
