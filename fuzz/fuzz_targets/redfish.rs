//! Fuzz what a Redfish BMC answers (mo_drivers::power::redfish::json): never a panic on any
//! bytes; a body that is not JSON reads as `Null`; the power state is `On`/`Off` only when the
//! answer says so; a session link is used only beside a `SessionService`; the reset action's
//! allowed values are strings of the answer; and a system built from any values (power state,
//! reset target, allowed types, ActionInfo link) reads back to them, whatever else it holds.
//!
//! Input: the answer's bytes (also read as field values).

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_core::power::PowerState;
use mo_drivers::power::redfish::json;
use serde_json::{Value, json as j};

fuzz_target!(|data: &[u8]| {
    let answer = json::body(data);
    match serde_json::from_slice::<Value>(data) {
        Ok(v) if !data.is_empty() => assert_eq!(answer, v),
        _ => assert_eq!(answer, Value::Null),
    }
    let state = json::power_state(&answer);
    let said = answer.get("PowerState").and_then(Value::as_str);
    assert_eq!(state == PowerState::On, said == Some("On"));
    assert_eq!(state == PowerState::Off, said == Some("Off"));
    if json::session_path(&answer).is_some() {
        assert!(answer.get("SessionService").is_some());
    }
    let _ = json::error_message(&answer);
    if let Some(action) = json::reset_action(&answer, "/redfish/v1/Systems/1") {
        assert!(!action.target.is_empty());
        let listed = answer
            .pointer("/Actions/#ComputerSystem.Reset/ResetType@Redfish.AllowableValues")
            .and_then(Value::as_array);
        for a in &action.allowed {
            assert!(listed.is_some_and(|l| l.contains(&Value::String(a.clone()))));
        }
    }
    let _ = json::action_info_reset_types(&answer);

    // A system built from the input's values, with the answer as noise beside them.
    let mut u = Unstructured::new(data);
    let power: String = u.arbitrary().unwrap_or_default();
    let target: Option<String> = u.arbitrary().unwrap_or_default();
    let allowed: Vec<String> = u.arbitrary().unwrap_or_default();
    let info: String = u.arbitrary().unwrap_or_default();
    let mut reset =
        j!({ "ResetType@Redfish.AllowableValues": allowed, "@Redfish.ActionInfo": info });
    if let Some(t) = &target {
        reset["target"] = Value::String(t.clone());
    }
    let system = j!({
        "PowerState": power,
        "Oem": answer,
        "Actions": { "#ComputerSystem.Reset": reset },
    });
    let text = system.to_string();
    // (An answer nested deeper than serde_json reads stays a value.)
    let system = match json::body(text.as_bytes()) {
        Value::Null => system,
        read => read,
    };
    assert_eq!(
        json::power_state(&system),
        mo_drivers::power::redfish::parse_power_state(&power)
    );
    let action = json::reset_action(&system, "/S");
    assert_eq!(
        action,
        Some(json::ResetAction {
            target: target.unwrap_or_else(|| "/S/Actions/ComputerSystem.Reset".to_string()),
            allowed: allowed.clone(),
            action_info: Some(info),
        })
    );
    let doc = j!({ "Parameters": [ { "Name": "X", "AllowableValues": ["no"] },
                                  { "Name": "ResetType", "AllowableValues": allowed } ] });
    assert_eq!(json::action_info_reset_types(&doc), allowed);
});
