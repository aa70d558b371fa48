//! Control messages of the WebSocket attach protocol: text frames holding one JSON object with a
//! `type` (docs/api.md): `break`, `resize`, `who`, `mode`, `note`, `replay`, `signal`.

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
    /// Set DTR and/or RTS (`{"type":"signal","dtr":false}`); a line left out is not touched.
    Signal {
        /// What to do with DTR.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dtr: Option<LineSetting>,
        /// What to do with RTS.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rts: Option<LineSetting>,
    },
}

/// What to do with a modem control line: `true` or `"on"` raises it, `false` or `"off"` drops
/// it, `"toggle"` toggles it (from the level mo last set).
// Also the HTTP API's type: mo-api re-exports it, its OpenAPI schema from the `schema` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum LineSetting {
    /// `true` raises, `false` drops.
    Level(bool),
    /// `on`, `off` or `toggle`.
    Word(LineWord),
}

/// A line setting by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LineWord {
    /// Raise.
    On,
    /// Drop.
    Off,
    /// Toggle.
    Toggle,
}

impl LineSetting {
    /// Raise (`Some(true)`), drop (`Some(false)`) or toggle (`None`).
    pub fn to(self) -> Option<bool> {
        match self {
            LineSetting::Level(b) => Some(b),
            LineSetting::Word(LineWord::On) => Some(true),
            LineSetting::Word(LineWord::Off) => Some(false),
            LineSetting::Word(LineWord::Toggle) => None,
        }
    }

    /// The setting for raise (`Some(true)`), drop (`Some(false)`) or toggle (`None`).
    pub fn from_to(to: Option<bool>) -> Self {
        match to {
            Some(true) => LineSetting::Word(LineWord::On),
            Some(false) => LineSetting::Word(LineWord::Off),
            None => LineSetting::Word(LineWord::Toggle),
        }
    }
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
            format!(
                "bad control message: {e} (types: break, resize, who, mode, note, replay, signal)"
            )
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

    #[test]
    fn signal_messages() {
        assert_eq!(
            Control::parse(r#"{"type":"signal","dtr":false,"rts":"toggle"}"#),
            Ok(Control::Signal {
                dtr: Some(LineSetting::Level(false)),
                rts: Some(LineSetting::Word(LineWord::Toggle)),
            })
        );
        let on = Control::Signal {
            dtr: Some(LineSetting::from_to(Some(true))),
            rts: None,
        };
        assert_eq!(on.to_json(), r#"{"type":"signal","dtr":"on"}"#);
        assert_eq!(Control::parse(&on.to_json()), Ok(on));
        assert_eq!(LineSetting::from_to(None).to(), None);
        assert_eq!(LineSetting::Level(true).to(), Some(true));
        assert!(Control::parse(r#"{"type":"signal","dtr":"maybe"}"#).is_err());
        assert!(Control::parse(r#"{"type":"signal","dtr":1}"#).is_err());
    }
}
