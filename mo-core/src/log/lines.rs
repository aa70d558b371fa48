//! The modem lines as a console's record log last recorded them: the latest `modem:` notice
//! (DCD, DSR, CTS, RI) and the latest `DTR …`/`RTS … by USER` record, with their times. This is
//! what `mo device show` reports without a running daemon to ask.

use std::path::Path;

use crate::error::Result;
use crate::link::{ModemState, Signal};
use crate::log::reader::{ReadOptions, read};
use crate::log::segment::list_segments;
use crate::record::RecordKind;

/// One setting of DTR or RTS as recorded: the level, when (ns since the Unix epoch) and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRecord {
    /// Raised (`true`) or dropped.
    pub on: bool,
    /// When (ns since the Unix epoch).
    pub time_ns: u64,
    /// Who set it.
    pub user: String,
}

/// What a record log last said about a console's modem lines ([`last_lines`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineHistory {
    /// The last modem state announced and when (ns since the Unix epoch).
    pub modem: Option<(ModemState, u64)>,
    /// The last DTR setting.
    pub dtr: Option<SignalRecord>,
    /// The last RTS setting.
    pub rts: Option<SignalRecord>,
}

impl LineHistory {
    /// Take what record `kind`/`user`/`bytes` at `time_ns` says about the lines (later records
    /// replace earlier ones).
    pub fn feed(&mut self, kind: RecordKind, time_ns: u64, user: &str, bytes: &[u8]) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        match kind {
            RecordKind::Notice if user.is_empty() => {
                if let Some(state) = ModemState::from_notice(text) {
                    self.modem = Some((state, time_ns));
                }
            }
            RecordKind::Control => {
                if let Some((line, on, who)) = parse_signal_record(text) {
                    let rec = Some(SignalRecord {
                        on,
                        time_ns,
                        user: who.to_string(),
                    });
                    match line {
                        Signal::Dtr => self.dtr = rec,
                        Signal::Rts => self.rts = rec,
                    }
                }
            }
            _ => {}
        }
    }

    fn complete(&self, signals: bool) -> bool {
        self.modem.is_some() && (!signals || (self.dtr.is_some() && self.rts.is_some()))
    }
}

/// `DTR dropped by alice` / `RTS raised by bob`: the line, its level and the user.
fn parse_signal_record(text: &str) -> Option<(Signal, bool, &str)> {
    let (line, rest) = text.split_once(' ')?;
    let line = match line {
        "DTR" => Signal::Dtr,
        "RTS" => Signal::Rts,
        _ => return None,
    };
    let (word, user) = rest.split_once(" by ")?;
    let on = match word {
        "raised" => true,
        "dropped" => false,
        _ => return None,
    };
    Some((line, on, user))
}

/// What the record log in `dir` last said about the modem lines. Segments are read newest
/// first and reading stops once the modem state (and, with `signals`, the last DTR and RTS
/// settings) were found, so a long log costs only its newest segments. A directory without
/// segments gives an empty history.
pub fn last_lines(dir: &Path, signals: bool) -> Result<LineHistory> {
    let segments = list_segments(dir)?;
    let mut found = LineHistory::default();
    let mut end: Option<u64> = None;
    for seg in segments.iter().rev() {
        // What this segment says, read forward so its last word wins; newer segments (already
        // read) win over it.
        let mut here = LineHistory::default();
        let opts = ReadOptions {
            from_seq: Some(seg.first_seq),
            ..ReadOptions::default()
        };
        for rec in read(dir, &opts)? {
            let rec = rec?;
            if end.is_some_and(|e| rec.seq >= e) {
                break;
            }
            here.feed(rec.kind, rec.time_ns, &rec.user, &rec.bytes);
        }
        found.modem = found.modem.or(here.modem);
        found.dtr = found.dtr.or(here.dtr);
        found.rts = found.rts.or(here.rts);
        if found.complete(signals) {
            break;
        }
        end = Some(seg.first_seq);
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signal_records_and_modem_notices() {
        let mut h = LineHistory::default();
        h.feed(
            RecordKind::Notice,
            1,
            "",
            b"modem: DCD up, DSR up, CTS up, RI off",
        );
        h.feed(RecordKind::Control, 2, "alice", b"DTR dropped by alice");
        h.feed(
            RecordKind::Notice,
            3,
            "",
            b"modem: DSR down (was up); DCD up, CTS up, RI off",
        );
        // A user's note that looks like a notice is not one; other control records are ignored.
        h.feed(RecordKind::Note, 4, "eve", b"modem: DCD down, DSR up");
        h.feed(RecordKind::Control, 5, "bob", b"break 1 sent by bob");
        h.feed(RecordKind::Control, 6, "bob", b"RTS sideways by bob");
        h.feed(RecordKind::Control, 7, "x", b"\xff\xfe");
        let (m, t) = h.modem.unwrap();
        assert_eq!(t, 3);
        assert!(m.dcd && !m.dsr && m.cts && !m.ri);
        assert_eq!(
            h.dtr,
            Some(SignalRecord {
                on: false,
                time_ns: 2,
                user: "alice".into()
            })
        );
        assert_eq!(h.rts, None);
    }
}
