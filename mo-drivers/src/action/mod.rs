//! Event actions: what the event manager's rules ask for when an event happens.
//!
//! An [`EventAction`] is built once from its configuration ([`EventAction::from_config`], which refuses
//! mistakes at load time, naming the action and the field) and run per event with
//! [`run_action`]:
//!
//! | kind        | what it does | module |
//! |-------------|--------------|--------|
//! | `exec`      | runs a program with an argv template, no shell, with a timeout | [`exec`] |
//! | `webhook`   | POSTs the event (JSON or a template, HMAC-signed), retried with backoff | [`webhook`] |
//! | `syslog`    | sends an RFC 5424 message over UDP or TCP (octet counting) | [`syslog`] |
//! | `snmp_trap` | sends an SNMPv2c or SNMPv3 trap (async-snmp; MIB in `docs/MO-EVENTS-MIB.txt`) | [`trap`] |
//! | `power`     | a power action on the device — only after an acknowledgement | handed back |
//! | `macro`     | a named macro on the device, as the rule's `user` | handed back |
//!
//! Power and macro actions need the console and power controllers the daemon owns:
//! [`run_action`] does not run them but answers [`ActionOutcome::HandedBack`]. Put power actions
//! in a rule's `after_ack` list, so that they wait for an operator; a macro that only collects
//! diagnostics may run at once (the daemon checks the rule's `user` may run it).
//!
//! Templates (exec arguments, webhook bodies and headers) know `{device}`, `{severity}`,
//! `{message}`, `{source}`, `{time}` (RFC 3339, UTC), `{id}` and `{count}`; `{{` and `}}` are
//! literal braces.
//!
//! ```
//! use mo_drivers::action::{EventAction, ActionConfig, ActionOutcome, run_action};
//! use mo_core::event::{Event, EventSource};
//! use mo_core::scan::Severity;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mo_core::Result<()> {
//! let config: ActionConfig = serde_json::from_str(
//!     r#"{"kind": "exec", "argv": ["/bin/sh", "-c", "test \"$0\" = web1", "{device}"]}"#,
//! ).map_err(|e| mo_core::Error::BadSpec { what: "action", input: "doc".into(), reason: e.to_string() })?;
//! let action = EventAction::from_config("check", &config)?;
//! let event = Event {
//!     id: 1, time_ns: 0, last_ns: 0, device: "web1".into(), source: EventSource::Pattern,
//!     severity: Severity::Critical, message: "panic".into(), context: vec![], count: 1,
//!     suppressed: false, acked_by: None, acked_ns: None, node: None,
//! };
//! assert!(matches!(run_action(&action, &event).await?, ActionOutcome::Exited { code: 0, .. }));
//! # Ok(())
//! # }
//! ```

pub mod exec;
pub mod syslog;
pub mod template;
#[cfg(feature = "snmp")]
pub mod trap;
#[cfg(feature = "webhook")]
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use mo_core::event::Event;
use mo_core::power::PowerAction;
use mo_core::{Error, Result};
use serde::{Deserialize, Serialize};

pub use exec::ExecAction;
pub use syslog::UnknownFacility;
pub use syslog::{SyslogAction, SyslogTransport};
pub use template::{Template, TemplateError};
#[cfg(feature = "snmp")]
pub use trap::{MO_ENTERPRISE_OID, TrapAction};
#[cfg(feature = "webhook")]
pub use webhook::{WebhookAction, WebhookPayload};

/// An action's configuration as written (TOML `[actions.NAME]` tables, tagged by `kind`).
/// Durations are human (`10s`, `500ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ActionConfig {
    /// Run a program.
    Exec {
        /// The program and its arguments, each a template.
        argv: Vec<String>,
        /// How long it may run (default 30s); then it is killed.
        #[serde(default)]
        timeout: Option<String>,
    },
    /// POST the event (as JSON, or a templated body).
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// A body template (default: the event as a JSON object; see [`webhook`]).
        #[serde(default)]
        body: Option<String>,
        /// The body's content type (default `application/json`; JSON types escape the fields).
        #[serde(default)]
        content_type: Option<String>,
        /// Extra headers, each value a template.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// Sign the body with HMAC-SHA256 under this key.
        #[serde(default)]
        secret: Option<String>,
        /// The signature's header (default `X-Mo-Signature`).
        #[serde(default)]
        signature_header: Option<String>,
        /// Retries after the first attempt (default 3).
        #[serde(default)]
        retries: Option<u32>,
        /// Delay before the first retry, doubled each time (default 500ms).
        #[serde(default)]
        backoff: Option<String>,
        /// Timeout of each attempt (default 10s).
        #[serde(default)]
        timeout: Option<String>,
    },
    /// Send an RFC 5424 syslog message.
    Syslog {
        /// `host:port` of the collector.
        address: String,
        /// `udp` (default) or `tcp`.
        #[serde(default)]
        transport: Option<String>,
        /// The facility name (`local0` … `local7`, `daemon`, `user`, …; default `local0`).
        #[serde(default)]
        facility: Option<String>,
        /// The HOSTNAME field (default: this machine's name).
        #[serde(default)]
        hostname: Option<String>,
        /// The APP-NAME field (default `mo`).
        #[serde(default)]
        app_name: Option<String>,
    },
    /// Send an SNMPv2c or SNMPv3 trap.
    SnmpTrap {
        /// `host:port` of the trap receiver (port 162 usually).
        address: String,
        /// `2c` (default) or `3`.
        #[serde(default)]
        version: Option<String>,
        /// The v2c community (default `public`).
        #[serde(default)]
        community: Option<String>,
        /// The SNMPv3 USM user (version 3 only).
        #[serde(default)]
        user: Option<String>,
        /// The v3 authentication protocol: `md5`, `sha` (default), `sha224` … `sha512`.
        #[serde(default)]
        auth: Option<String>,
        /// The v3 authentication password (none: noAuthNoPriv).
        #[serde(default)]
        auth_password: Option<String>,
        /// The v3 privacy protocol: `aes` (AES-128, default) or `des`.
        #[serde(default)]
        privacy: Option<String>,
        /// The v3 privacy password (none: authNoPriv).
        #[serde(default)]
        priv_password: Option<String>,
        /// The v3 engine ID mo sends as, in hex (default: see [`trap::default_engine_id`]).
        #[serde(default)]
        engine_id: Option<String>,
    },
    /// A power action on the event's device, run by the caller after an acknowledgement.
    Power {
        /// `on`, `off`, `cycle`, `reset` or `soft-off`.
        operation: String,
    },
    /// A named macro run by the caller on the event's device, or on the devices `targets` name.
    Macro {
        /// The macro's name.
        name: String,
        /// Device names, globs and `@GROUP`s (store device groups) to play it on instead of the
        /// event's device, resolved when the macro runs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        targets: Vec<String>,
    },
}

/// A checked, ready-to-run action.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventAction {
    /// Run a program ([`exec`]).
    Exec(ExecAction),
    /// POST JSON ([`webhook`]).
    #[cfg(feature = "webhook")]
    Webhook(WebhookAction),
    /// Send syslog ([`syslog`]).
    Syslog(SyslogAction),
    /// Send an SNMP trap ([`trap`]).
    #[cfg(feature = "snmp")]
    SnmpTrap(TrapAction),
    /// A power action on the event's device, for the caller to run after acknowledgement.
    Power(PowerAction),
    /// A macro by name on the event's device (or its targets), for the caller to run.
    Macro(MacroAction),
}

/// A `macro` action: which macro, and where it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroAction {
    /// The stored macro's name.
    pub name: String,
    /// Device names, globs and `@GROUP`s to play on; empty: the event's device.
    pub targets: Vec<String>,
}

/// What running an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionOutcome {
    /// The program ran and exited with status 0 (other statuses are errors).
    Exited {
        /// The exit status (0).
        code: i32,
        /// Its standard output, at most [`exec::MAX_OUTPUT`] bytes.
        stdout: Vec<u8>,
    },
    /// The message reached the receiver (the webhook answered 2xx; the syslog or trap datagram
    /// or stream write was accepted).
    Delivered {
        /// Attempts it took (1 unless the webhook retried).
        attempts: u32,
    },
    /// A power or macro action: the caller runs it, after an operator's acknowledgement.
    HandedBack,
}

impl EventAction {
    /// Check a configuration and build the action; `name` appears in errors.
    pub fn from_config(name: &str, config: &ActionConfig) -> Result<EventAction> {
        let bad = |field: &str, reason: String| config_error(name, field, reason);
        Ok(match config {
            ActionConfig::Exec { argv, timeout } => EventAction::Exec(
                ExecAction::new(
                    argv.iter()
                        .map(|a| Template::parse(a).map_err(|e| bad("argv", e.to_string())))
                        .collect::<Result<Vec<_>>>()?,
                    duration(name, "timeout", timeout, exec::DEFAULT_TIMEOUT)?,
                )
                .ok_or_else(|| {
                    bad(
                        "argv",
                        "the argv is empty: name at least the program".into(),
                    )
                })?,
            ),
            #[cfg(not(feature = "webhook"))]
            ActionConfig::Webhook { .. } => return Err(bad("kind", not_built("webhook"))),
            #[cfg(feature = "webhook")]
            ActionConfig::Webhook {
                url,
                body,
                content_type,
                headers,
                secret,
                signature_header,
                retries,
                backoff,
                timeout,
            } => {
                let payload = WebhookPayload::new(
                    body.as_deref(),
                    content_type.as_deref(),
                    headers,
                    secret.as_deref(),
                    signature_header.as_deref(),
                )
                .map_err(|(field, reason)| bad(field, reason))?;
                EventAction::Webhook(
                    WebhookAction::new(
                        url,
                        retries.unwrap_or(webhook::DEFAULT_RETRIES),
                        duration(name, "backoff", backoff, webhook::DEFAULT_BACKOFF)?,
                        duration(name, "timeout", timeout, webhook::DEFAULT_TIMEOUT)?,
                    )
                    .map_err(|e| bad("url", e))?
                    .with_payload(payload),
                )
            }
            ActionConfig::Syslog {
                address,
                transport,
                facility,
                hostname,
                app_name,
            } => {
                let transport = match transport.as_deref().unwrap_or("udp") {
                    "udp" => SyslogTransport::Udp,
                    "tcp" => SyslogTransport::Tcp,
                    other => {
                        return Err(bad("transport", format!("`{other}`: expected udp or tcp")));
                    }
                };
                let facility = syslog::facility_code(facility.as_deref().unwrap_or("local0"))
                    .map_err(|e| bad("facility", e.to_string()))?;
                EventAction::Syslog(SyslogAction {
                    address: address.clone(),
                    transport,
                    facility,
                    hostname: hostname.clone().unwrap_or_else(syslog::local_hostname),
                    app_name: app_name.clone().unwrap_or_else(|| "mo".to_owned()),
                })
            }
            #[cfg(not(feature = "snmp"))]
            ActionConfig::SnmpTrap { .. } => return Err(bad("kind", not_built("snmp"))),
            #[cfg(feature = "snmp")]
            ActionConfig::SnmpTrap {
                address,
                version,
                community,
                user,
                auth,
                auth_password,
                privacy,
                priv_password,
                engine_id,
            } => {
                let v3_only = [
                    ("user", user.is_some()),
                    ("auth", auth.is_some()),
                    ("auth_password", auth_password.is_some()),
                    ("privacy", privacy.is_some()),
                    ("priv_password", priv_password.is_some()),
                    ("engine_id", engine_id.is_some()),
                ];
                match version.as_deref().map(str::trim).unwrap_or("2c") {
                    "2c" | "v2c" => {
                        if let Some((field, _)) = v3_only.iter().find(|(_, set)| *set) {
                            return Err(bad(
                                field,
                                "an SNMPv3 setting: add version = \"3\" (or remove it)".into(),
                            ));
                        }
                        EventAction::SnmpTrap(TrapAction::v2c(
                            address,
                            community.as_deref().unwrap_or("public"),
                        ))
                    }
                    "3" | "v3" => {
                        if community.is_some() {
                            return Err(bad(
                                "community",
                                "SNMPv3 has no community: give `user` (and passwords)".into(),
                            ));
                        }
                        let settings = trap::UsmSettings {
                            user: user.as_deref().unwrap_or(""),
                            auth: auth.as_deref(),
                            auth_password: auth_password.as_deref(),
                            privacy: privacy.as_deref(),
                            priv_password: priv_password.as_deref(),
                            engine_id: engine_id.as_deref(),
                        };
                        EventAction::SnmpTrap(
                            TrapAction::v3(address, &settings)
                                .map_err(|(field, reason)| bad(field, reason))?,
                        )
                    }
                    other => {
                        return Err(bad("version", format!("`{other}`: expected 2c or 3")));
                    }
                }
            }
            ActionConfig::Power { operation } => EventAction::Power(
                operation
                    .parse()
                    .map_err(|e: Error| bad("operation", e.to_string()))?,
            ),
            ActionConfig::Macro {
                name: macro_name,
                targets,
            } => {
                if macro_name.trim().is_empty() {
                    return Err(bad("name", "the macro name is empty".to_owned()));
                }
                if let Some(t) = targets.iter().find(|t| {
                    let t = t.trim();
                    t.is_empty() || t == "@"
                }) {
                    return Err(bad(
                        "targets",
                        format!("`{t}`: give a device name, a glob or @GROUP"),
                    ));
                }
                EventAction::Macro(MacroAction {
                    name: macro_name.clone(),
                    targets: targets.iter().map(|t| t.trim().to_owned()).collect(),
                })
            }
        })
    }

    /// Whether the action must wait for an operator's acknowledgement (power and macro
    /// actions), and is run by the caller rather than by [`run_action`].
    pub fn requires_ack(&self) -> bool {
        matches!(self, EventAction::Power(_) | EventAction::Macro(_))
    }
}

/// Run `action` for `event`. Power and macro actions are not run here: they answer
/// [`ActionOutcome::HandedBack`].
pub async fn run_action(action: &EventAction, event: &Event) -> Result<ActionOutcome> {
    run_action_for(action, event, None).await
}

/// [`run_action`] knowing the name of the pattern that raised the event (sent in traps).
pub async fn run_action_for(
    action: &EventAction,
    event: &Event,
    pattern: Option<&str>,
) -> Result<ActionOutcome> {
    #[cfg(not(feature = "snmp"))]
    let _ = pattern; // Only traps send it.
    match action {
        EventAction::Exec(a) => a.run(event).await,
        #[cfg(feature = "webhook")]
        EventAction::Webhook(a) => a.send(event).await,
        EventAction::Syslog(a) => a.send(event).await,
        #[cfg(feature = "snmp")]
        EventAction::SnmpTrap(a) => a.send(event, pattern).await,
        EventAction::Power(_) | EventAction::Macro(_) => Ok(ActionOutcome::HandedBack),
    }
}

/// Why an action kind whose Cargo feature is off cannot be configured.
#[cfg(not(all(feature = "webhook", feature = "snmp")))]
fn not_built(feature: &str) -> String {
    format!(
        "this program was built without this action kind (mo-drivers' Cargo feature `{feature}` is off)"
    )
}

fn config_error(name: &str, field: &str, reason: String) -> Error {
    Error::BadSpec {
        what: "action",
        input: name.to_owned(),
        reason: format!("field `{field}`: {reason}"),
    }
}

fn duration(
    name: &str,
    field: &str,
    value: &Option<String>,
    default: Duration,
) -> Result<Duration> {
    match value {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|e| config_error(name, field, format!("`{text}`: {e}"))),
    }
}

/// The event's time as RFC 3339 UTC with microseconds (`2026-11-22T03:00:00.000000Z`).
pub(crate) fn rfc3339(time_ns: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ns))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
}
