//! Fuzz what mo-client parses from the network, with the functions the client itself calls: the
//! attach endpoint's text frames (`mo_client::parse_frame`, and the `who` viewers' times through
//! `Viewer::from`), event-stream frames (`mo_client::parse_event`), and API error answers
//! (`mo_client::error::from_answer`, `from_code` for error frames). None may panic; an event
//! that parses serializes and parses back to itself, an error envelope maps like its code, and
//! frames built from arbitrary field values (mode 3) parse back to exactly those values.
//!
//! Input layout: a mode byte, then (modes 0–2) the text of one frame or answer body (bytes that
//! are not UTF-8 are replaced, as a WebSocket text frame is always UTF-8), or (mode 3) the field
//! values of a frame or event that is serialized as the daemon would send it.

#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use mo_client::error::{from_answer, from_code};
use mo_client::{Frame, parse_event, parse_frame};
use mo_core::facade::Viewer;
use mo_core::log::format_timestamp;
use serde_json::json;

const SERVER: &str = "http://mo.example:8080";
const WHAT: &str = "GET /api/v1/devices/web01/attach";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => frame(&String::from_utf8_lossy(rest)),
        1 => event(&String::from_utf8_lossy(rest)),
        2 => {
            let (status, body) = match rest {
                [a, b, body @ ..] => (u16::from_le_bytes([*a, *b]), body),
                _ => (500, rest),
            };
            answer(status, &String::from_utf8_lossy(body));
        }
        _ => {
            let _ = structured(&mut Unstructured::new(rest));
        }
    }
});

/// An attach text frame, handled as the client handles it.
fn frame(text: &str) {
    let Ok(frame) = parse_frame(text) else {
        return;
    };
    let again = parse_frame(text).map(|f| format!("{f:?}"));
    assert_eq!(again.ok(), Some(format!("{frame:?}")));
    match frame {
        Frame::Who { viewers } => {
            for v in viewers {
                let _ = Viewer::from(v);
            }
        }
        Frame::Error { code, message } => {
            let e = from_code(
                SERVER,
                WHAT,
                Some("web01"),
                &code,
                message,
                Duration::from_secs(1),
            );
            assert!(!e.to_string().is_empty());
        }
        _ => {}
    }
}

/// An event-stream text frame.
fn event(text: &str) {
    match parse_event(SERVER, text) {
        Ok(ev) => {
            let json = serde_json::to_string(&ev).expect("an event serializes");
            let back = parse_event(SERVER, &json).expect("a serialized event parses");
            assert_eq!(back, ev);
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("event stream") && text.contains("mo.example"),
                "{text}"
            );
        }
    }
}

/// An API error answer: the envelope's code and message, or a fallback from the status.
fn answer(status: u16, body: &str) {
    let waited = Duration::from_millis(1500);
    let e = from_answer(SERVER, WHAT, Some("web01"), status, body, waited);
    let text = e.to_string();
    assert!(!text.is_empty());
    let envelope = serde_json::from_str::<serde_json::Value>(body).ok();
    let error = envelope.as_ref().and_then(|v| v.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(|c| c.as_str());
    let message = error.and_then(|e| e.get("message"));
    if let (Some(code), Some(serde_json::Value::String(message))) = (code, message) {
        let direct = from_code(SERVER, WHAT, Some("web01"), code, message.clone(), waited);
        assert_eq!(text, direct.to_string());
    }
}

/// A frame or event built from arbitrary field values parses back to them.
fn structured(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let a: String = u.arbitrary()?;
    let b: String = u.arbitrary()?;
    let kind = u.int_in_range(0..=8)?;
    let missed: u64 = u.arbitrary()?;
    let value = match kind {
        0 => json!({"type": "hello", "device": a, "user": b, "role": "spy", "message": a}),
        1 => json!({"type": "notice", "text": a}),
        2 => json!({"type": "missed", "bytes": missed}),
        3 => json!({"type": "state", "state": a}),
        4 => json!({"type": "error", "code": a, "message": b}),
        5 => json!({"type": "closed", "reason": a}),
        6 => {
            let mut viewers = Vec::new();
            let mut times = Vec::new();
            for _ in 0..u.int_in_range(0..=4)? {
                let ns = u.int_in_range(0..=4_000_000_000_000_000_000u64)?;
                times.push(ns);
                let user: String = u.arbitrary()?;
                viewers.push(json!({"user": user, "role": "join", "since": format_timestamp(ns)}));
            }
            let text = json!({"type": "who", "viewers": viewers, "extra": b}).to_string();
            let Ok(Frame::Who { viewers }) = parse_frame(&text) else {
                panic!("not a who frame: {text}");
            };
            assert_eq!(viewers.len(), times.len());
            for (v, ns) in viewers.into_iter().zip(times) {
                let v = Viewer::from(v);
                assert_eq!(v.role, "join");
                // The wire time has millisecond precision.
                let want = SystemTime::UNIX_EPOCH + Duration::from_millis(ns / 1_000_000);
                assert_eq!(v.since, want, "{text}");
            }
            return Ok(());
        }
        7 => {
            let id: u64 = u.arbitrary()?;
            let count: u64 = u.arbitrary()?;
            let acked: Option<String> = u.arbitrary()?;
            let text = json!({
                "id": id, "time": a, "device": b, "severity": "warning", "name": b, "text": a,
                "count": count, "acked_by": acked,
            })
            .to_string();
            let ev = parse_event(SERVER, &text).expect("a well-formed event parses");
            assert_eq!(
                (ev.id, &ev.time, &ev.device, &ev.name, &ev.text),
                (id, &a, &b, &b, &a)
            );
            assert_eq!((ev.count, ev.acked_by), (count, acked));
            return Ok(());
        }
        _ => json!({"type": a, "text": b}),
    };
    let text = value.to_string();
    let frame = parse_frame(&text);
    match (kind, frame) {
        (
            0,
            Ok(Frame::Hello {
                device,
                user,
                role,
                message,
            }),
        ) => assert_eq!(
            (device, user, role, message),
            (a.clone(), b, "spy".into(), a)
        ),
        (1, Ok(Frame::Notice { text })) => assert_eq!(text, a),
        (2, Ok(Frame::Missed { bytes })) => assert_eq!(bytes, missed),
        (3, Ok(Frame::State { state })) => assert_eq!(state, a),
        (4, Ok(Frame::Error { code, message })) => assert_eq!((code, message), (a, b)),
        (5, Ok(Frame::Closed { reason })) => assert_eq!(reason, a),
        // An unknown type is ignored, a known one with other fields takes its defaults.
        (_, Ok(_)) if kind == 8 => {}
        (_, other) => panic!("{text} parsed as {other:?}"),
    }
    Ok(())
}
