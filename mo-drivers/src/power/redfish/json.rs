//! What the Redfish controller reads from a BMC's JSON answers, without I/O (so that it can be
//! fuzzed): the session service's link, error messages, the system's power state and its reset
//! action. Every function takes any JSON value and never panics; missing or mistyped fields read
//! as absent.

use mo_core::power::PowerState;
use serde_json::Value;

/// An answer's body as JSON: `Null` when it is empty or not JSON.
pub fn body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or(Value::Null)
    }
}

/// The sessions collection named by the service root (`Links.Sessions`), if the root also has a
/// `SessionService`.
pub fn session_path(root: &Value) -> Option<String> {
    root.pointer("/Links/Sessions/@odata.id")
        .and_then(Value::as_str)
        .filter(|_| root.get("SessionService").is_some())
        .map(str::to_owned)
}

/// The message of a Redfish error answer (`error.@Message.ExtendedInfo[0].Message`, else
/// `error.message`).
pub fn error_message(json: &Value) -> Option<&str> {
    json.pointer("/error/@Message.ExtendedInfo/0/Message")
        .or_else(|| json.pointer("/error/message"))
        .and_then(Value::as_str)
}

/// A ComputerSystem's `PowerState` (`Unknown` unless `On` or `Off`).
pub fn power_state(system: &Value) -> PowerState {
    system
        .get("PowerState")
        .and_then(Value::as_str)
        .map(super::parse_power_state)
        .unwrap_or(PowerState::Unknown)
}

/// A ComputerSystem's `#ComputerSystem.Reset` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetAction {
    /// Where to POST (`target`; `SYSTEM/Actions/ComputerSystem.Reset` when not given).
    pub target: String,
    /// `ResetType@Redfish.AllowableValues` (the strings among them), possibly empty.
    pub allowed: Vec<String>,
    /// `@Redfish.ActionInfo`: where the allowed values are listed instead, if given.
    pub action_info: Option<String>,
}

/// The system's reset action; `None` if it has none. `system_path` makes the default target.
pub fn reset_action(system: &Value, system_path: &str) -> Option<ResetAction> {
    let action = system.pointer("/Actions/#ComputerSystem.Reset")?;
    let target = action
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{system_path}/Actions/ComputerSystem.Reset"));
    let allowed = strings(action.get("ResetType@Redfish.AllowableValues"));
    let action_info = action
        .get("@Redfish.ActionInfo")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(ResetAction {
        target,
        allowed,
        action_info,
    })
}

/// The `AllowableValues` of the last `ResetType` parameter of an ActionInfo document; empty if
/// there is none.
pub fn action_info_reset_types(info: &Value) -> Vec<String> {
    let mut allowed = Vec::new();
    if let Some(params) = info.get("Parameters").and_then(Value::as_array) {
        for p in params {
            if p.get("Name").and_then(Value::as_str) == Some("ResetType")
                && let Some(values) = p.get("AllowableValues").and_then(Value::as_array)
            {
                allowed = values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
            }
        }
    }
    allowed
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let system = body(
            br##"{"PowerState":"On","Actions":{"#ComputerSystem.Reset":{
                "ResetType@Redfish.AllowableValues":["On",7,"ForceOff"]}}}"##,
        );
        assert_eq!(power_state(&system), PowerState::On);
        assert_eq!(
            reset_action(&system, "/redfish/v1/Systems/1"),
            Some(ResetAction {
                target: "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset".into(),
                allowed: vec!["On".into(), "ForceOff".into()],
                action_info: None,
            })
        );
        assert_eq!(body(b"{not json"), Value::Null);
        assert_eq!(power_state(&Value::Null), PowerState::Unknown);
        let root = body(br#"{"Links":{"Sessions":{"@odata.id":"/s"}}}"#);
        assert_eq!(session_path(&root), None);
        let err = body(br#"{"error":{"message":"no"}}"#);
        assert_eq!(error_message(&err), Some("no"));
        let info =
            body(br#"{"Parameters":[{"Name":"ResetType","AllowableValues":["A"]},{"Name":"X"}]}"#);
        assert_eq!(action_info_reset_types(&info), ["A"]);
    }
}
