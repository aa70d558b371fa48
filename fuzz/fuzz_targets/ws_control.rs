//! Fuzz the WebSocket attach protocol's control messages (mo_core::door::ws::Control, text
//! frames from any client): never a panic; whatever parses writes back (`to_json`) to JSON that
//! parses to the same message; messages built from any field values (line signals included)
//! survive the round trip; an error names the known types.
//!
//! Input: the frame's text; its bytes also give field values.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_core::door::ws::{Control, LineSetting, LineWord};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Control::parse(&text) {
        Ok(msg) => {
            let json = msg.to_json();
            assert_eq!(
                Control::parse(&json).as_ref(),
                Ok(&msg),
                "{text:?} -> {json:?}"
            );
        }
        Err(e) => assert!(
            e.reason
                .contains("types: break, resize, who, mode, note, replay"),
            "{e}"
        ),
    }

    let mut u = Unstructured::new(data);
    let s: String = u.arbitrary().unwrap_or_default();
    let mut setting = || match u.arbitrary::<u8>().unwrap_or(0) % 6 {
        0 => None,
        1 => Some(LineSetting::Level(true)),
        2 => Some(LineSetting::Level(false)),
        3 => Some(LineSetting::Word(LineWord::On)),
        4 => Some(LineSetting::Word(LineWord::Off)),
        _ => Some(LineSetting::Word(LineWord::Toggle)),
    };
    let signal = Control::Signal {
        dtr: setting(),
        rts: setting(),
    };
    let msgs = [
        Control::Break {
            number: u.arbitrary().unwrap_or(0),
        },
        Control::Resize {
            cols: u.arbitrary().unwrap_or(0),
            rows: u.arbitrary().unwrap_or(0),
        },
        Control::Who,
        Control::Mode { mode: s.clone() },
        Control::Note { text: s },
        Control::Replay {
            lines: u.arbitrary().unwrap_or(0),
        },
        signal,
    ];
    for msg in msgs {
        let json = msg.to_json();
        assert_eq!(Control::parse(&json).as_ref(), Ok(&msg), "{json:?}");
    }
});
