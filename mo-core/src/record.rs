//! The unit of the data path: one [`Chunk`] of bytes with its sequence number, time, direction and
//! author. Chunks flow from a console actor into the hub, the record log and every viewer.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// What a record holds. The numeric values are part of the on-disk log format (docs/log-format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum RecordKind {
    /// Bytes the device sent.
    Output = 1,
    /// Bytes a user typed that were written to the device.
    Input = 2,
    /// A state change or sharing change (attach, detach, force, link up/down), as UTF-8 text.
    Notice = 3,
    /// An event raised by the scanner or the event manager, as UTF-8 text.
    Event = 4,
    /// A power action, as UTF-8 text.
    Power = 5,
    /// A bookmark without text.
    Mark = 6,
    /// A note a user wrote into the log, as UTF-8 text.
    Note = 7,
    /// A control operation sent to the link (for example a BREAK), as UTF-8 text.
    Control = 8,
    /// Records the log could not write while it was degraded (a full disk, an I/O error): how
    /// many records and bytes were lost and between which times, as UTF-8 text. Written as soon
    /// as the log can record again.
    Gap = 9,
}

impl RecordKind {
    /// Every kind, in numeric order.
    pub const ALL: [RecordKind; 9] = [
        RecordKind::Output,
        RecordKind::Input,
        RecordKind::Notice,
        RecordKind::Event,
        RecordKind::Power,
        RecordKind::Mark,
        RecordKind::Note,
        RecordKind::Control,
        RecordKind::Gap,
    ];

    /// The kind for a numeric code from the log format, if it is known.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u8 == code)
    }

    /// The numeric code used in the log format.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A short lower-case name (`output`, `input`, …) used in rendered logs and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Output => "output",
            RecordKind::Input => "input",
            RecordKind::Notice => "notice",
            RecordKind::Event => "event",
            RecordKind::Power => "power",
            RecordKind::Mark => "mark",
            RecordKind::Note => "note",
            RecordKind::Control => "control",
            RecordKind::Gap => "gap",
        }
    }
}

/// One piece of a console's timeline.
///
/// `seq` numbers every chunk of a device without gaps (it is the record sequence number in the
/// log). `offset` is the number of *output* bytes the device sent before this chunk; a viewer that
/// sees `offset` jump knows exactly how many bytes it missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Gap-free sequence number per device, starting at 1.
    pub seq: u64,
    /// Wall-clock time in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// What the bytes are.
    pub kind: RecordKind,
    /// Who caused it (the typing user for input, the acting user for notices); empty for the device.
    pub user: Arc<str>,
    /// Output bytes sent by the device before this chunk.
    pub offset: u64,
    /// The payload.
    pub bytes: Bytes,
}

impl Chunk {
    /// True for chunks a terminal viewer shows as device output.
    pub fn is_output(&self) -> bool {
        self.kind == RecordKind::Output
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where a console actor writes every chunk, in order, before anyone else sees it.
///
/// The record log writer ([`crate::log::LogWriter`]) is the real one. It is the only consumer allowed
/// to slow the link: `append` is called synchronously by the actor and must not skip.
pub trait RecordSink: Send {
    /// The sequence number the next appended chunk will carry (1 for a new log).
    fn next_seq(&self) -> u64;
    /// Append one chunk. `chunk.seq` equals [`RecordSink::next_seq`].
    fn append(&mut self, chunk: &Chunk) -> crate::Result<()>;
    /// The last `want` bytes of output this sink holds in its current segment (all of them if
    /// it holds fewer), read back from where it keeps them; `None` when it cannot (the default).
    /// A quiet console, or one whose replay buffer is full, gives the buffer up when this
    /// returns exactly what the buffer holds; replays then read it back from here, and output
    /// the sink takes moves its end along (see [`RecordSink::starts_segment`]).
    fn recent_output(&self, want: usize) -> Option<Vec<u8>> {
        let _ = want;
        None
    }
    /// Whether appending `chunk` now would put it at the start of a new segment, after which
    /// [`RecordSink::recent_output`] no longer reaches the output before it. A console whose
    /// replay buffer lives in the sink reads it back before such an append. `true` when the
    /// sink cannot tell (the default).
    fn starts_segment(&self, chunk: &Chunk) -> bool {
        let _ = chunk;
        true
    }
    /// Push buffered data to the operating system and make it durable (called when the console
    /// stops).
    fn flush(&mut self) -> crate::Result<()> {
        Ok(())
    }
    /// When what was appended should next be made durable with [`RecordSink::sync`]; `None` when
    /// nothing is waiting (or the sink's policy never syncs on a timer). The console actor calls
    /// `sync` once this time has come.
    fn sync_deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// Make everything appended so far durable.
    fn sync(&mut self) -> crate::Result<()> {
        Ok(())
    }
    /// Apply the sink's retention limits now, at `now_ns` (ns since the Unix epoch), and say what
    /// was removed. A log that only prunes when it rotates would keep a quiet console's old
    /// segments forever; the owner calls this periodically ([`crate::console::Console::apply_retention`]).
    /// The default keeps everything.
    fn apply_retention(&mut self, now_ns: u64) -> crate::Result<crate::log::Pruned> {
        let _ = now_ns;
        Ok(crate::log::Pruned::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_round_trip() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::from_code(k.code()), Some(k));
        }
        assert_eq!(RecordKind::from_code(0), None);
        assert_eq!(RecordKind::from_code(10), None);
    }
}
