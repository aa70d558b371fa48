//! The schemas state the constraints of mo-api's constants, and the wire forms are the ones the
//! daemon has always written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mo_api::*;
use serde_json::{Value, json};
use utoipa::{IntoParams, PartialSchema};

fn schema<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap()
}

fn param<T: IntoParams>(name: &str) -> Value {
    let params = T::into_params(|| None);
    let p = params.into_iter().find(|p| p.name == name).unwrap();
    serde_json::to_value(p).unwrap()
}

#[test]
fn address_patterns_take_every_port_and_every_scheme() {
    let device = regex::Regex::new(DEVICE_URL_PATTERN).unwrap();
    let power = regex::Regex::new(POWER_URL_PATTERN).unwrap();
    for ok in [
        "tcp://127.0.0.1:57479",
        "ssh://admin@web01:22",
        "telnet://cs1:65535",
        "agent://cs1/ttyS3",
        "sim://demo",
        "serial:///dev/ttyS0?baud=115200",
    ] {
        assert!(device.is_match(ok), "{ok} refused");
    }
    for bad in [
        "tcp://h:65536",
        "tcp://h:99999",
        "tcp://h:123456",
        "gopher://h",
    ] {
        assert!(!device.is_match(bad), "{bad} accepted");
    }
    assert!(power.is_match("snmp://pdu1:16161/apc/3"));
    assert!(!power.is_match("snmp://pdu1:70000/apc/3"));
}

#[test]
fn patterns_in_schemas_are_the_constants() {
    let new_device = schema::<NewDevice>();
    assert_eq!(new_device["properties"]["name"]["pattern"], NAME_PATTERN);
    assert_eq!(
        new_device["properties"]["url"]["pattern"],
        DEVICE_URL_PATTERN
    );
    assert_eq!(
        new_device["properties"]["escape"]["pattern"],
        ESCAPE_PATTERN
    );
    assert_eq!(
        new_device["properties"]["description"]["pattern"],
        PLAIN_TEXT_PATTERN
    );
    assert_eq!(
        new_device["properties"]["power"]["items"]["pattern"],
        POWER_URL_PATTERN
    );
    assert_eq!(
        new_device["properties"]["break_sequences"]["additionalProperties"]["pattern"],
        BREAK_PATTERN
    );
    assert_eq!(new_device["additionalProperties"], false);
    let settings = schema::<SettingsInput>();
    assert_eq!(settings["properties"]["escape"]["pattern"], ESCAPE_PATTERN);
    assert_eq!(
        schema::<NewUser>()["properties"]["name"]["pattern"],
        USER_PATTERN
    );
    assert_eq!(
        param::<DevicePath>("name")["schema"]["pattern"],
        NAME_PATTERN
    );
    assert_eq!(
        param::<MacroPath>("name")["schema"]["pattern"],
        NAME_PATTERN
    );
    assert_eq!(
        param::<EventsQuery>("device")["schema"]["pattern"],
        NAME_PATTERN
    );
    assert_eq!(
        param::<StreamQuery>("device")["schema"]["pattern"],
        NAME_PATTERN
    );
    assert_eq!(param::<LogQuery>("tail")["schema"]["maximum"], MAX_TAIL);
    assert_eq!(
        param::<SearchQuery>("limit")["schema"]["maximum"],
        MAX_SEARCH_LIMIT
    );
    assert_eq!(
        param::<EventsQuery>("limit")["schema"]["maximum"],
        MAX_EVENTS_LIMIT
    );
    assert_eq!(
        param::<AttachQuery>("replay")["schema"]["maximum"],
        MAX_REPLAY
    );
    let since = param::<LogQuery>("since");
    assert_eq!(
        since["schema"]["anyOf"][1]["pattern"],
        RELATIVE_TIME_PATTERN
    );
    assert_eq!(param::<SearchQuery>("q")["required"], true);
}

#[test]
fn login_needs_user_adds_if_then() {
    let s = serde_json::to_value(schema::login_needs_user(NewDevice::schema())).unwrap();
    assert_eq!(s["if"]["required"], json!(["login"]));
    assert_eq!(s["then"]["properties"]["login_user"]["minLength"], 1);
}

#[test]
fn wire_forms() {
    let mut d = Device::new("web-1", "sim://web-1", DeviceState::Up);
    d.groups = vec!["all".into()];
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"name": "web-1", "url": "sim://web-1", "state": "up", "viewers": 0,
               "groups": ["all"], "description": null})
    );
    let v = Viewer::new(
        "alice",
        ViewerRole::Attach,
        "2026-01-01T00:00:00Z",
        "ssh 127.0.0.1",
    );
    assert_eq!(
        serde_json::to_value(SessionInfo::new("web-1", v)).unwrap(),
        json!({"device": "web-1", "user": "alice", "role": "attach",
               "since": "2026-01-01T00:00:00Z", "origin": "ssh 127.0.0.1"})
    );
    assert_eq!(
        serde_json::to_value(ServerFrame::notice("hi")).unwrap(),
        json!({"type": "notice", "text": "hi"})
    );
    assert_eq!(
        serde_json::to_value(ErrorBody::new(ErrorCode::NotFound, "no")).unwrap(),
        json!({"error": {"code": "not_found", "message": "no"}})
    );
    assert_eq!(
        serde_json::to_value(PowerRequest {
            action: PowerAction::SoftOff
        })
        .unwrap(),
        json!({"action": "soft-off"})
    );
    let plan: PlayReport =
        serde_json::from_value(json!({"macro": "m", "devices": ["a"], "plan": "p"})).unwrap();
    assert!(matches!(plan, PlayReport::Plan(_)));
    let played: PlayReport =
        serde_json::from_value(json!({"macro": "m", "ok": true, "results": []})).unwrap();
    assert!(matches!(played, PlayReport::Played(_)));
}

#[test]
fn new_device_top_level_fields_win() {
    let body: NewDevice = serde_json::from_value(json!({
        "name": "d", "url": "sim://d",
        "settings": {"on_demand": true, "description": "inner", "replay_lines": 5},
        "description": "outer"
    }))
    .unwrap();
    let s = body.merged_settings();
    assert_eq!(s.description.as_deref(), Some("outer"));
    assert_eq!(s.on_demand, Some(true));
    assert_eq!(s.replay_lines, Some(5));
    let unknown =
        serde_json::from_value::<NewDevice>(json!({"name": "d", "url": "sim://d", "x": 1}));
    assert!(unknown.is_err());
}

#[test]
fn names_round_trip() {
    for a in ["on", "off", "cycle", "reset", "soft-off", "status"] {
        assert_eq!(a.parse::<PowerAction>().unwrap().name(), a);
    }
    assert_eq!(
        "softoff".parse::<PowerAction>().unwrap(),
        PowerAction::SoftOff
    );
    assert_eq!("rw".parse::<ViewerMode>().unwrap(), ViewerMode::Attach);
    let e = "sideways".parse::<PowerAction>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown power action `sideways` (use on, off, cycle, reset, soft-off or status)"
    );
    for c in [
        ErrorCode::BadRequest,
        ErrorCode::TooManyRequests,
        ErrorCode::Timeout,
    ] {
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.name()));
    }
}

#[test]
fn time_spec_is_a_string_of_two_forms() {
    let since = param::<LogQuery>("since");
    assert_eq!(since["schema"]["type"], "string", "{since}");
    assert_eq!(
        since["schema"]["anyOf"][0],
        json!({"format": "date-time"}),
        "{since}"
    );
    assert_eq!(
        since["schema"]["anyOf"][1],
        json!({"pattern": RELATIVE_TIME_PATTERN}),
        "{since}"
    );
}
