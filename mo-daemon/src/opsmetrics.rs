//! Daemon-wide operations counters that belong to no console (issue 21 item 4): logins and
//! failed logins by front door, power actions by action and result, and the last store error.
//! `/metrics` prints them ([`render`]); `/api/v1/health` reads [`store_error`].
//!
//! They live in process-wide statics because the doors that count them (SSH, conserver, HTTP,
//! console ports) share nothing else that reaches `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Logins by (door, succeeded).
static LOGINS: Mutex<BTreeMap<(String, bool), u64>> = Mutex::new(BTreeMap::new());
/// Power actions by (action, result).
static POWER: Mutex<BTreeMap<(String, &'static str), u64>> = Mutex::new(BTreeMap::new());
/// The last failed store write and when (ns since the Unix epoch); cleared by a later success.
static STORE_ERROR: Mutex<Option<(String, u64)>> = Mutex::new(None);

/// The front door of an audit origin (`ssh 1.2.3.4:5` → `ssh`, `http … web login` → `web`):
/// its first word, `web` for the web console, `other` for anything unexpected.
pub fn door_of(origin: &str) -> String {
    let first = origin.split_whitespace().next().unwrap_or("");
    if first == "http" && origin.split_whitespace().any(|w| w == "web") {
        return "web".into();
    }
    if !first.is_empty()
        && first.len() <= 32
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        first.to_string()
    } else {
        "other".into()
    }
}

/// Count a login through the door of `origin`: `ok` for a success, else a failure.
pub fn login(origin: &str, ok: bool) {
    if let Ok(mut map) = LOGINS.lock() {
        *map.entry((door_of(origin), ok)).or_default() += 1;
    }
}

/// Count a power action's result on one device.
pub fn power(action: &str, ok: bool) {
    if let Ok(mut map) = POWER.lock() {
        let result = if ok { "ok" } else { "failed" };
        *map.entry((action.to_string(), result)).or_default() += 1;
    }
}

/// Note the outcome of a store write: an error is kept (with the time) until a write succeeds.
pub fn store_write(result: Result<(), String>) {
    if let Ok(mut last) = STORE_ERROR.lock() {
        match result {
            Ok(()) => *last = None,
            Err(e) => *last = Some((e, mo_core::record::now_ns())),
        }
    }
}

/// The last store write error and when it happened, while no write has succeeded since.
pub fn store_error() -> Option<(String, u64)> {
    STORE_ERROR.lock().ok().and_then(|last| last.clone())
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Append the login and power families to a `/metrics` page.
pub fn render(out: &mut String) {
    let logins = LOGINS.lock().map(|m| m.clone()).unwrap_or_default();
    for (name, ok, help) in [
        (
            "mo_logins_total",
            true,
            "Successful logins by front door (ssh, conserver, http, web, ...).",
        ),
        (
            "mo_login_failures_total",
            false,
            "Failed logins (wrong password, unknown user) by front door.",
        ),
    ] {
        family(out, name, "counter", help);
        for ((door, _), n) in logins.iter().filter(|((_, k), _)| *k == ok) {
            let _ = writeln!(out, "{name}{{door=\"{door}\"}} {n}");
        }
    }
    family(
        out,
        "mo_power_actions_total",
        "counter",
        "Power actions per device, by action (on, off, cycle, reset, ...) and result (ok, failed).",
    );
    let power = POWER.lock().map(|m| m.clone()).unwrap_or_default();
    for ((action, result), n) in &power {
        let _ = writeln!(
            out,
            "mo_power_actions_total{{action=\"{action}\",result=\"{result}\"}} {n}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doors_from_origins() {
        assert_eq!(door_of("ssh 127.0.0.1:4022"), "ssh");
        assert_eq!(door_of("ssh"), "ssh");
        assert_eq!(door_of("http 127.0.0.1:1 web login"), "web");
        assert_eq!(door_of("http 127.0.0.1:1"), "http");
        assert_eq!(door_of("conserver 10.0.0.1:7"), "conserver");
        assert_eq!(door_of("we\"ird x"), "other");
        assert_eq!(door_of(""), "other");
    }
}
