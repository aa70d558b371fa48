//! Control messages of the WebSocket attach protocol: text frames holding one JSON object with a
//! `type` (docs/api.md): `break`, `resize`, `who`, `mode`, `note`, `replay`.

use super::BadInput;
use serde::{Deserialize, Serialize};

/// A control message from the client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Control {
    /// Send break sequence `number` (0: the plain BREAK, sequence 1).
    Break {
        /// The sequence's number.
        #[serde(default)]
        number: u8,
    },
    /// The client's terminal size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Who is on the console.
    Who,
    /// Change the viewer's mode (by name: attach, spy, force, join).
    Mode {
        /// The mode's name, as written.
        mode: String,
    },
    /// Write a note into the record log.
    Note {
        /// The note.
        text: String,
    },
    /// Replay the last `lines` lines.
    Replay {
        /// How many.
        lines: usize,
    },
}

impl Control {
    /// Parse one text frame. The error is the message for the client.
    pub fn parse(raw: &str) -> Result<Control, BadInput> {
        Self::parse_text(raw).map_err(|reason| BadInput {
            what: "a WebSocket control message",
            reason,
        })
    }

    fn parse_text(raw: &str) -> Result<Control, String> {
        serde_json::from_str(raw).map_err(|e| {
            format!("bad control message: {e} (types: break, resize, who, mode, note, replay)")
        })
    }

    /// The message as a text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            Control::parse(r#"{"type":"break"}"#),
            Ok(Control::Break { number: 0 })
        );
        assert_eq!(
            Control::parse(r#"{"type":"resize","cols":80,"rows":24}"#),
            Ok(Control::Resize { cols: 80, rows: 24 })
        );
        assert!(Control::parse(r#"{"type":"resize","cols":-1,"rows":24}"#).is_err());
        assert!(
            Control::parse(r#"{"type":"nap"}"#).is_err_and(|e| e.reason.contains("types: break"))
        );
        let note = Control::Note {
            text: "a \"b\"\n".into(),
        };
        assert_eq!(Control::parse(&note.to_json()), Ok(note));
    }
}
