//! What a viewer sees: the one rendering of a console's timeline that every door uses.
//!
//! A [`Session`](super::Session) yields [`ViewerEvent`]s: every chunk of the timeline, a count of
//! what a slow viewer missed, the end. [`view`] turns one into an [`Output`] — device bytes,
//! a notice worded the same in every door, a "missed N bytes" marker, or the end — or nothing
//! (keystrokes, the device echoes what it wants shown; one's own note, which the command that
//! wrote it confirms). Each door only wraps the result in its transport's frame: the SSH door and
//! `mo console` with [`Output::terminal`] (`[mo: …]` lines), the WebSocket API in its JSON
//! frames, the facade and the bindings hand the [`Output`] itself to the program.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use mo_core::console::{Output, ViewerEvent, view};
//! use mo_core::record::{Chunk, RecordKind};
//!
//! let chunk = Chunk {
//!     seq: 7,
//!     time_ns: 0,
//!     kind: RecordKind::Note,
//!     user: Arc::from("bob"),
//!     offset: 0,
//!     bytes: Bytes::from_static(b"rebooting"),
//! };
//! let seen = view(ViewerEvent::Chunk(Arc::new(chunk)), "alice", "web01");
//! assert_eq!(seen, Some(Output::Notice("note by bob: rebooting".into())));
//! let missed = view(ViewerEvent::Missed { bytes: 10, chunks: 1 }, "alice", "web01").unwrap();
//! assert_eq!(&missed.terminal()[..], b"\r\n[mo: you fell behind and missed 10 bytes of output; continuing]\r\n");
//! ```

use bytes::Bytes;

use super::ViewerEvent;
use crate::record::{Chunk, RecordKind};

/// The next thing a viewer sees.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Bytes the device sent (replayed output first).
    Data(Bytes),
    /// A message from mo: someone attached or forced, the link went down, a note, an error.
    Notice(String),
    /// This viewer fell behind and this many output bytes went by unseen.
    Missed(u64),
    /// The attachment has ended, and why. Every later read gives this again.
    Closed(String),
}

impl Output {
    /// The item as text for a notice line: the notice, the missed marker
    /// ([`missed_text`]) or why it ended. `None` for device bytes.
    pub fn notice_text(&self) -> Option<String> {
        match self {
            Output::Data(_) => None,
            Output::Notice(text) | Output::Closed(text) => Some(text.clone()),
            Output::Missed(bytes) => Some(missed_text(*bytes)),
        }
    }

    /// The item as a terminal shows it: device bytes as they are, everything else as a
    /// [`terminal_notice`] line.
    pub fn terminal(&self) -> Bytes {
        match self {
            Output::Data(bytes) => bytes.clone(),
            other => terminal_notice(&other.notice_text().unwrap_or_default()),
        }
    }
}

/// A notice on a terminal: `[mo: text]` on a line of its own.
pub fn terminal_notice(text: &str) -> Bytes {
    Bytes::from(format!("\r\n[mo: {text}]\r\n"))
}

/// The words of the missed marker: `you fell behind and missed N bytes of output; continuing`.
pub fn missed_text(bytes: u64) -> String {
    format!("you fell behind and missed {bytes} bytes of output; continuing")
}

/// Why a viewer's stream ended when its console stopped: `DEVICE stopped`.
pub fn stopped_text(device: &str) -> String {
    format!("{device} stopped")
}

/// How one chunk of the timeline reaches the viewer `me`; `None`: not shown.
///
/// Output is shown as it is; input is not (the device echoes what it wants shown; everyone's
/// keystrokes are in the log); notices, control operations, power, events and gaps as their
/// text; notes as `note by USER: TEXT`, except one's own, shown as `note written (record SEQ)`;
/// bookmarks as `bookmark by USER`.
pub fn render(chunk: &Chunk, me: &str) -> Option<Output> {
    let text = || String::from_utf8_lossy(&chunk.bytes).into_owned();
    Some(match chunk.kind {
        RecordKind::Output => Output::Data(chunk.bytes.clone()),
        RecordKind::Input => return None,
        RecordKind::Notice
        | RecordKind::Control
        | RecordKind::Power
        | RecordKind::Event
        | RecordKind::Gap => Output::Notice(text()),
        RecordKind::Note if &*chunk.user == me => {
            Output::Notice(format!("note written (record {})", chunk.seq))
        }
        RecordKind::Note => Output::Notice(format!("note by {}: {}", chunk.user, text())),
        RecordKind::Mark => Output::Notice(format!("bookmark by {}", chunk.user)),
    })
}

/// How one event of a session reaches the viewer `me` of `device`; `None`: not shown. The end
/// reads `DEVICE stopped` ([`stopped_text`]).
pub fn view(event: ViewerEvent, me: &str, device: &str) -> Option<Output> {
    match event {
        ViewerEvent::Chunk(chunk) => render(&chunk, me),
        ViewerEvent::Missed { bytes, .. } => Some(Output::Missed(bytes)),
        ViewerEvent::Closed => Some(Output::Closed(stopped_text(device))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn chunk(kind: RecordKind, user: &str, bytes: &'static [u8]) -> Arc<Chunk> {
        Arc::new(Chunk {
            seq: 42,
            time_ns: 0,
            kind,
            user: Arc::from(user),
            offset: 0,
            bytes: Bytes::from_static(bytes),
        })
    }

    fn seen(kind: RecordKind, user: &str, bytes: &'static [u8]) -> Option<Output> {
        view(
            ViewerEvent::Chunk(chunk(kind, user, bytes)),
            "alice",
            "web01",
        )
    }

    #[test]
    fn every_kind() {
        assert_eq!(
            seen(RecordKind::Output, "", b"login: "),
            Some(Output::Data(Bytes::from_static(b"login: ")))
        );
        assert_eq!(seen(RecordKind::Input, "bob", b"root\r"), None);
        assert_eq!(seen(RecordKind::Input, "alice", b"root\r"), None);
        for kind in [
            RecordKind::Notice,
            RecordKind::Control,
            RecordKind::Power,
            RecordKind::Event,
            RecordKind::Gap,
        ] {
            assert_eq!(
                seen(kind, "bob", b"bob is spying"),
                Some(Output::Notice("bob is spying".into())),
                "{kind:?}"
            );
        }
        assert_eq!(
            seen(RecordKind::Note, "bob", b"disk swapped"),
            Some(Output::Notice("note by bob: disk swapped".into()))
        );
        assert_eq!(
            seen(RecordKind::Note, "alice", b"disk swapped"),
            Some(Output::Notice("note written (record 42)".into()))
        );
        assert_eq!(
            seen(RecordKind::Mark, "bob", b""),
            Some(Output::Notice("bookmark by bob".into()))
        );
        assert_eq!(
            seen(RecordKind::Notice, "", b"caf\xc3\xa9 \xff"),
            Some(Output::Notice("caf\u{e9} \u{fffd}".into()))
        );
    }

    #[test]
    fn missed_and_closed() {
        let missed = view(
            ViewerEvent::Missed {
                bytes: 183_304,
                chunks: 9,
            },
            "alice",
            "web01",
        )
        .unwrap();
        assert_eq!(missed, Output::Missed(183_304));
        assert_eq!(
            &missed.terminal()[..],
            b"\r\n[mo: you fell behind and missed 183304 bytes of output; continuing]\r\n"
        );
        let closed = view(ViewerEvent::Closed, "alice", "web01").unwrap();
        assert_eq!(closed, Output::Closed("web01 stopped".into()));
        assert_eq!(&closed.terminal()[..], b"\r\n[mo: web01 stopped]\r\n");
        let data = Output::Data(Bytes::from_static(b"x\r\n"));
        assert_eq!(data.notice_text(), None);
        assert_eq!(&data.terminal()[..], b"x\r\n");
    }
}
