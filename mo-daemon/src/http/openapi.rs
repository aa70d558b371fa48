//! The OpenAPI 3.1 document of the API, built from [`super::ROUTES`] (every route the router
//! serves is described; a test checks both lists agree).

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{ROUTES, Route};

/// A device (and macro) name: letters, digits, `.`, `_`, `-`, 1 to 64, not starting with `.` or
/// `-` (`mo_store::validate_device_name`).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$";
/// A user name: lower-case letters, digits, `_`, `.`, `-`, starting with a letter or `_`, at most
/// 32 characters (`mo_store::validate_user_name`).
pub const USER_PATTERN: &str = "^[a-z_][a-z0-9_.-]{0,31}$";
/// A device address the API takes: a scheme mo has a driver for, `://`, an optional
/// `user@`, a host (may be empty: `serial:///dev/ttyS0`), an optional port, a path and a query
/// of URL-safe characters. (`mo device add` on the data directory takes any absolute URL.)
pub const DEVICE_URL_PATTERN: &str = "^(exec|serial|unix|telnet|rfc2217|tcp|ssh|ipmi|sim|cs)://(([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9._-]{1,253}(:[0-9]{1,4})?)?(/[A-Za-z0-9._~%+-]{0,255}){0,32}([?][A-Za-z0-9._~%+=&,:-]{0,1024})?$";
/// A power controller address the API takes (same shape, the power schemes).
pub const POWER_URL_PATTERN: &str = "^(ipmi|redfish|snmp|exec)://(([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9._-]{1,253}(:[0-9]{1,4})?)?(/[A-Za-z0-9._~%+-]{0,255}){0,32}([?][A-Za-z0-9._~%+=&,:-]{0,1024})?$";
/// One character of the escape notation that may come first (not CR or LF), then one that may
/// come second: a printable ASCII character other than `^` and `\`, `^X` for a control
/// character, or `\ooo` (octal).
pub const ESCAPE_PATTERN: &str = "^([ -\\[\\]_-~]|\\^[?@A-IK-LN-Za-ik-ln-z\\[\\\\\\]^_]|\\\\(0[02-7][0-7]|01[0-13-46-7]|[1-3][0-7][0-7]))([ -\\[\\]_-~]|\\^[?@A-Za-z\\[\\\\\\]^_]|\\\\[0-3][0-7][0-7])$";
/// A break sequence (`mo_core::breakseq`): text, `\\z` (break), `\\d` (delay), `\\r \\n \\t
/// \\\\ \\^`, `\\ooo` and `^X`; not empty.
pub const BREAK_PATTERN: &str =
    "^([^\\\\^]|\\\\[zdrnt\\\\^]|\\\\[0-3][0-7][0-7]|\\^[?@A-Za-z\\[\\\\\\]^_])+$";
/// Text without control characters (a description).
pub const PLAIN_TEXT_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A relative time: `now`, or up to three number+unit pairs (`90s`, `1h30m`, `2d`), optionally
/// followed by `ago`.
pub const RELATIVE_TIME_PATTERN: &str = "^(now|([0-9]{1,4}[smhdw]){1,3}( ?ago)?)$";
/// The most lines `GET …/log?tail=` takes.
pub const MAX_TAIL: u64 = 1_000_000_000;
/// The most hits `GET …/log/search?limit=` takes.
pub const MAX_SEARCH_LIMIT: u64 = 100_000;
/// The most events `GET /api/v1/events?limit=` takes.
pub const MAX_EVENTS_LIMIT: u64 = 10_000;

fn name_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": NAME_PATTERN})
}

fn time_schema() -> Value {
    json!({"type": "string", "anyOf": [
        {"format": "date-time"},
        {"pattern": RELATIVE_TIME_PATTERN}
    ]})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array_of(name: &str) -> Value {
    json!({"type": "array", "items": schema_ref(name)})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema,
    })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema,
    })
}

fn bounded(min: u64, max: u64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

/// What one operation looks like: summary, parameters, body, success status and schema.
struct Op {
    id: &'static str,
    summary: &'static str,
    params: Vec<Value>,
    body: Option<Value>,
    status: &'static str,
    response: Option<Value>,
    public: bool,
}

fn op(route: &Route) -> Op {
    let device = || path_param("name", "The device name.", name_schema());
    let since = || {
        query_param(
            "since",
            "Start time: RFC 3339, `now`, or a duration ago like `1h30m` (times before 1970 \
             mean the start of the log). A range whose end is not after its start is empty.",
            time_schema(),
        )
    };
    let until = || {
        query_param(
            "until",
            "End time (exclusive), in the same forms as `since`.",
            time_schema(),
        )
    };
    let mk = |id, summary, status, response| Op {
        id,
        summary,
        params: Vec::new(),
        body: None,
        status,
        response,
        public: false,
    };
    match (route.method, route.path) {
        ("GET", "/api/v1/health") => Op {
            public: true,
            ..mk(
                "health",
                "Liveness, version and degraded parts (status `degraded` while a record log cannot write).",
                "200",
                Some(schema_ref("Health")),
            )
        },
        ("GET", "/api/v1/devices") => mk(
            "listDevices",
            "The devices the caller may see.",
            "200",
            Some(array_of("Device")),
        ),
        ("POST", "/api/v1/devices") => Op {
            body: Some(schema_ref("NewDevice")),
            ..mk(
                "addDevice",
                "Add a device (needs `admin` on its name; an address that runs a program, opens a \
                 local path or reaches a host also needs a global admin or a site [[allow]] entry, \
                 docs/security.md).",
                "201",
                Some(schema_ref("DeviceDetail")),
            )
        },
        ("GET", "/api/v1/devices/{name}") => Op {
            params: vec![device()],
            ..mk(
                "getDevice",
                "One device with its settings.",
                "200",
                Some(schema_ref("DeviceDetail")),
            )
        },
        ("DELETE", "/api/v1/devices/{name}") => Op {
            params: vec![device()],
            ..mk(
                "removeDevice",
                "Remove a device (needs `admin`); its log stays.",
                "204",
                None,
            )
        },
        ("GET", "/api/v1/devices/{name}/who") => Op {
            params: vec![device()],
            ..mk(
                "who",
                "Who is on the console.",
                "200",
                Some(array_of("Viewer")),
            )
        },
        ("GET", "/api/v1/sessions") => mk(
            "sessions",
            "Every viewer of every visible console.",
            "200",
            Some(array_of("Session")),
        ),
        ("GET", "/api/v1/devices/{name}/power") => Op {
            params: vec![device()],
            ..mk(
                "powerStatus",
                "Power state of each controller.",
                "200",
                Some(schema_ref("Power")),
            )
        },
        ("POST", "/api/v1/devices/{name}/power") => Op {
            params: vec![device()],
            body: Some(schema_ref("PowerRequest")),
            ..mk(
                "powerAction",
                "Switch power (all controllers together).",
                "200",
                Some(schema_ref("Power")),
            )
        },
        ("GET", "/api/v1/devices/{name}/log") => Op {
            params: vec![
                device(),
                since(),
                until(),
                query_param("tail", "Only the last N records.", bounded(0, MAX_TAIL)),
            ],
            ..mk(
                "logShow",
                "The rendered record log (text/plain, a timestamp per line).",
                "200",
                None,
            )
        },
        ("GET", "/api/v1/devices/{name}/log/search") => Op {
            params: vec![
                device(),
                json!({"name": "q", "in": "query", "required": true,
                       "description": "Regular expression (Rust `regex` syntax: no look-around \
                                       or back-references).",
                       "schema": {"type": "string", "minLength": 1, "format": "regex"}}),
                since(),
                until(),
                query_param(
                    "limit",
                    "At most this many hits (default 1000).",
                    bounded(1, MAX_SEARCH_LIMIT),
                ),
            ],
            ..mk(
                "logSearch",
                "Search the log.",
                "200",
                Some(array_of("SearchHit")),
            )
        },
        ("POST", "/api/v1/devices/{name}/log/verify") => Op {
            params: vec![device()],
            ..mk(
                "logVerify",
                "Verify the log's checksums and hash chain.",
                "200",
                Some(schema_ref("Verify")),
            )
        },
        ("GET", "/api/v1/devices/{name}/attach") => Op {
            params: vec![
                device(),
                json!({"name": "mode", "in": "query", "required": false,
                       "description": "attach (default), spy, force or join.",
                       "schema": {"type": "string", "enum": ["attach", "spy", "force", "join"]}}),
                query_param(
                    "replay",
                    "Lines of recent output to replay first.",
                    bounded(0, 100_000),
                ),
                query_param(
                    "token",
                    "API token (instead of the Authorization header).",
                    json!({"type": "string"}),
                ),
            ],
            ..mk(
                "attach",
                "WebSocket: attach to the console. Binary frames carry console bytes both ways; \
                 text frames carry JSON (hello, notice, missed, state, who, error, closed; from \
                 the client: break, resize, who, mode, note, replay).",
                "101",
                None,
            )
        },
        ("GET", "/api/v1/events") => Op {
            params: vec![
                query_param("device", "Only this device.", name_schema()),
                query_param(
                    "limit",
                    "At most this many, the newest (default 100).",
                    bounded(1, MAX_EVENTS_LIMIT),
                ),
                query_param(
                    "unacked",
                    "Only unacknowledged events.",
                    json!({"type": "boolean"}),
                ),
            ],
            ..mk(
                "listEvents",
                "Stored events, oldest first.",
                "200",
                Some(array_of("Event")),
            )
        },
        ("POST", "/api/v1/events/{id}/ack") => Op {
            params: vec![path_param(
                "id",
                "The event id.",
                bounded(0, i64::MAX as u64),
            )],
            ..mk(
                "ackEvent",
                "Acknowledge an event.",
                "200",
                Some(schema_ref("Event")),
            )
        },
        ("GET", "/api/v1/events/stream") => Op {
            params: vec![
                query_param("device", "Only this device.", name_schema()),
                query_param(
                    "token",
                    "API token (instead of the Authorization header).",
                    json!({"type": "string"}),
                ),
            ],
            ..mk(
                "eventStream",
                "WebSocket: one JSON event per text frame as they occur.",
                "101",
                None,
            )
        },
        ("GET", "/api/v1/users") => mk(
            "listUsers",
            "Users (needs `admin` on the built-in group `all`).",
            "200",
            Some(array_of("User")),
        ),
        ("POST", "/api/v1/users") => Op {
            body: Some(schema_ref("NewUser")),
            ..mk(
                "addUser",
                "Add a user (needs `admin` on the built-in group `all`).",
                "201",
                Some(schema_ref("User")),
            )
        },
        ("GET", "/api/v1/roles") => mk(
            "listRoles",
            "Roles and their actions (needs `admin` on the built-in group `all`).",
            "200",
            Some(array_of("Role")),
        ),
        ("GET", "/api/v1/openapi.json") => Op {
            public: true,
            ..mk(
                "openapi",
                "This document.",
                "200",
                Some(json!({"type": "object"})),
            )
        },
        ("GET", "/metrics") => mk(
            "metrics",
            "Prometheus metrics (text exposition) of the devices the caller may list (needs a \
             token or password whose scope has `list`, unless `mod --metrics-public`).",
            "200",
            None,
        ),
        ("POST", "/api/v1/gang") => Op {
            body: Some(json!({
                "type": "object",
                "required": ["targets", "command"],
                "additionalProperties": false,
                "properties": {
                    "targets": {"type": "array", "minItems": 1, "items": {"type": "string"},
                                "description": "Device names, globs or @GROUPs."},
                    "command": {"type": "string"}
                }
            })),
            ..mk(
                "gang",
                "Send one command to many consoles (each needs gang and its write lock); each \
                 device's answer, the majority and the divergent devices.",
                "200",
                Some(json!({"type": "object"})),
            )
        },
        ("GET", "/api/v1/macros") => mk(
            "macros",
            "The names of the stored macros (needs `macro.run` on some device).",
            "200",
            Some(json!({"type": "array", "items": {"type": "string"}})),
        ),
        ("POST", "/api/v1/macros/{name}/play") => Op {
            params: vec![path_param("name", "The macro name.", name_schema())],
            body: Some(json!({
                "type": "object",
                "required": ["targets"],
                "additionalProperties": false,
                "properties": {
                    "targets": {"type": "array", "minItems": 1, "items": {"type": "string"},
                                "description": "Device names, globs or @GROUPs."},
                    "args": {"type": "object", "additionalProperties": {"type": "string"}},
                    "parallel": {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "description": "Devices played at once (default 16)."},
                    "continue": {"type": "boolean"},
                    "dry_run": {"type": "boolean"}
                }
            })),
            ..mk(
                "macroPlay",
                "Play a stored macro on devices (macro.run on each), or show its plan with dry_run.",
                "200",
                Some(json!({"type": "object"})),
            )
        },
        _ => mk("unknown", "Undocumented.", "200", None),
    }
}

fn operation(route: &Route) -> Value {
    let op = op(route);
    let mut responses = Map::new();
    let description = match op.status {
        "101" => "Switching to WebSocket.",
        "201" => "Created.",
        "204" => "Done; no content.",
        _ => "OK.",
    };
    let mut ok = json!({"description": description});
    if let Some(schema) = op.response {
        ok["content"] = json_content(schema);
    } else if route.path.ends_with("/log") || route.path == "/metrics" {
        ok["content"] = json!({"text/plain": {"schema": {"type": "string"}}});
    }
    responses.insert(op.status.into(), ok);
    let error =
        |what: &str| json!({"description": what, "content": json_content(schema_ref("Error"))});
    if !op.public {
        responses.insert("400".into(), error("Bad request (code bad_request)."));
        responses.insert(
            "401".into(),
            error("No or wrong credentials (code unauthorized)."),
        );
        responses.insert(
            "403".into(),
            error("Denied by the policy (code forbidden)."),
        );
        responses.insert(
            "404".into(),
            error("Unknown device, event or user (code not_found)."),
        );
    }
    if let Some(what) = forbidden(op.id) {
        responses.insert("403".into(), error(what));
    }
    for (status, what) in extra_statuses(op.id) {
        responses.insert(status.into(), error(what));
    }
    responses.insert("500".into(), error("The daemon failed (code internal)."));
    if let Some(links) = links(op.id)
        && let Some(ok) = responses.get_mut(op.status)
    {
        ok["links"] = links;
    }
    let mut o = json!({
        "operationId": op.id,
        "summary": op.summary,
        "responses": responses,
    });
    if !op.params.is_empty() {
        o["parameters"] = Value::Array(op.params);
    }
    if let Some(body) = op.body {
        o["requestBody"] = json!({"required": true, "content": json_content(body)});
    }
    if op.public {
        o["security"] = json!([]);
    }
    o
}

/// The settings a client may send, with every constraint the store checks (nullable: `null` is
/// the default).
fn settings_input_properties() -> Value {
    let mut props = setting_constraints(true);
    props["on_demand"] = json!({"type": "boolean"});
    props["allow_join"] = json!({"type": "boolean"});
    props["trust_host_key"] = json!({"type": "boolean"});
    props["log_secrets"] = json!({"type": "boolean", "description": LOG_SECRETS});
    props["replay_lines"] = json!({"type": "integer", "minimum": 0, "maximum": 100_000});
    props["break_sequences"] = json!({
        "type": "object",
        "propertyNames": {"pattern": "^[1-9]$"},
        "additionalProperties": {"type": "string", "pattern": BREAK_PATTERN},
        "description": "Break sequences 1 to 9 in conserver notation (`\\\\z` break, `\\\\d` delay)."
    });
    props["power"] =
        json!({"type": "array", "items": {"type": "string", "pattern": POWER_URL_PATTERN}});
    props
}

/// The body of `POST /api/v1/devices`: the name, the address, `settings`, and each setting as a
/// top-level field (`null` meaning "as in `settings`").
fn new_device_properties() -> Value {
    let mut props = setting_constraints(true);
    let nullable = |t: &str| json!([t, "null"]);
    props["name"] = name_schema();
    props["url"] = json!({"type": "string", "pattern": DEVICE_URL_PATTERN,
        "description": "The console's address, e.g. `sim://web-1`, `telnet://cs1:7001`, \
                        `serial:///dev/ttyS0?baud=115200`, `ssh://admin@10.0.0.5`."});
    props["settings"] = schema_ref("SettingsInput");
    props["on_demand"] = json!({"type": nullable("boolean")});
    props["allow_join"] = json!({"type": nullable("boolean")});
    props["trust_host_key"] = json!({"type": nullable("boolean")});
    props["log_secrets"] = json!({"type": nullable("boolean"), "description": LOG_SECRETS});
    props["replay_lines"] = json!({"type": nullable("integer"), "minimum": 0, "maximum": 100_000});
    props["break_sequences"] = json!({
        "type": nullable("object"),
        "propertyNames": {"pattern": "^[1-9]$"},
        "additionalProperties": {"type": "string", "pattern": BREAK_PATTERN}
    });
    props["power"] = json!({"type": nullable("array"),
        "items": {"type": "string", "pattern": POWER_URL_PATTERN}});
    props
}

/// What `log_secrets` means.
const LOG_SECRETS: &str =
    "Record input typed at password prompts as typed; false (default) records `<redacted N bytes>`";

/// The string and number settings with their constraints.
fn setting_constraints(nullable: bool) -> Value {
    let t = |t: &str| {
        if nullable {
            json!([t, "null"])
        } else {
            json!(t)
        }
    };
    json!({
        "escape": {"type": t("string"), "pattern": ESCAPE_PATTERN,
                   "description": "The escape sequence, two characters in conserver notation (`^Ec`)."},
        "description": {"type": t("string"), "maxLength": 1024, "pattern": PLAIN_TEXT_PATTERN},
        "login": {"type": t("string"), "enum": if nullable { json!(["linux", "cli", null]) } else { json!(["linux", "cli"]) },
                  "description": "Auto-login profile (needs `login_user`). `mo device set` also takes a script of expect/send lines."},
        "login_user": {"type": t("string"), "description": "The user name auto-login types."},
        "log_policy": {
            "type": t("string"),
            "enum": if nullable { json!(["degrade", "strict", null]) } else { json!(["degrade", "strict"]) },
            "description": "While the record log cannot write: degrade (default) lets input through and records the gap; strict refuses input"
        },
        "retain_days": {
            "type": t("integer"),
            "minimum": 1,
            "maximum": 100_000,
            "description": "Keep closed log segments this many days (null: the daemon's --retain-days)"
        },
        "retain_gib": {
            "type": t("number"),
            "minimum": 0.00048828125,
            "maximum": 1_073_741_824,
            "description": "Keep at most this many GiB of log, rounded to whole MiB, at least 1 MiB (null: the daemon's --retain-gib)"
        }
    })
}

/// What a 403 of an operation means, where it is more than the device policy
/// (docs/security.md).
fn forbidden(id: &str) -> Option<&'static str> {
    Some(match id {
        "addDevice" => {
            "Denied (code forbidden): no `admin` on the name, or the address (console or power) \
             runs a program, opens a local path or reaches a host, and the caller is no global \
             admin and no site [[allow]] entry covers it; the message names the missing entry."
        }
        "listUsers" | "addUser" | "listRoles" => {
            "Denied (code forbidden): only `admin` on the built-in group `all` counts (a group \
             that matches every name does not)."
        }
        "macros" | "macroPlay" => {
            "Denied (code forbidden): the caller may run macros on no device, or on not every \
             target."
        }
        "metrics" => "Denied (code forbidden): the token's scope lacks `list`.",
        _ => return None,
    })
}

/// The error answers an operation has beyond 400/401/403/404/500.
fn extra_statuses(id: &str) -> Vec<(&'static str, &'static str)> {
    const CONFLICT: (&str, &str) = ("409", "It exists already (code conflict).");
    const UNSUPPORTED: (&str, &str) = (
        "422",
        "The device has no (working) power controller (code unsupported).",
    );
    const UPGRADE: (&str, &str) = (
        "426",
        "Asked without the WebSocket upgrade (code upgrade_required).",
    );
    const UNAVAILABLE: (&str, &str) = (
        "503",
        "The console, its link or its record log is not available now (code unavailable).",
    );
    const TIMEOUT: (&str, &str) = (
        "504",
        "A device or power controller did not answer in time (code timeout).",
    );
    match id {
        "addDevice" | "addUser" => vec![CONFLICT],
        "powerStatus" | "powerAction" => vec![UNSUPPORTED, UNAVAILABLE, TIMEOUT],
        "attach" => vec![UPGRADE, UNAVAILABLE],
        "eventStream" => vec![UPGRADE],
        "who" | "logShow" | "logSearch" | "logVerify" => vec![UNAVAILABLE],
        "gang" | "macroPlay" => vec![UNAVAILABLE, TIMEOUT],
        _ => Vec::new(),
    }
}

/// OpenAPI links from an operation's success answer to the operations that use what it names.
fn links(id: &str) -> Option<Value> {
    let by_name = |from: &str, targets: &[&str]| {
        let mut out = Map::new();
        for target in targets {
            out.insert(
                (*target).to_string(),
                json!({"operationId": target, "parameters": {"name": from}}),
            );
        }
        Value::Object(out)
    };
    let device_ops = [
        "getDevice",
        "removeDevice",
        "who",
        "powerStatus",
        "powerAction",
        "logShow",
        "logSearch",
        "logVerify",
        "attach",
    ];
    match id {
        "addDevice" | "getDevice" => Some(by_name("$response.body#/name", &device_ops)),
        "listDevices" => Some(by_name("$response.body#/0/name", &device_ops)),
        "macros" => Some(by_name("$response.body#/0", &["macroPlay"])),
        "listEvents" => Some(json!({"ackEvent": {
            "operationId": "ackEvent",
            "parameters": {"id": "$response.body#/0/id"}
        }})),
        _ => None,
    }
}

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": ["bad_request", "unauthorized", "forbidden",
                        "not_found", "method_not_allowed", "conflict", "unsupported",
                        "upgrade_required", "timeout", "unavailable", "internal"]},
                    "message": {"type": "string"}
                }
            }}
        },
        "Health": {
            "type": "object",
            "required": ["status", "version", "log_degraded"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "version": {"type": "string"},
                "log_degraded": {"type": "integer", "minimum": 0, "description": "Consoles whose record log cannot write."},
                "degraded": {
                    "type": "array",
                    "description": "Only for an authenticated caller: the degraded parts of the devices it may list.",
                    "items": {
                        "type": "object",
                        "required": ["device", "part", "error", "since", "lost_records", "lost_bytes"],
                        "properties": {
                            "device": {"type": "string"},
                            "part": {"type": "string", "enum": ["log"]},
                            "error": {"type": "string"},
                            "since": {"type": "string", "format": "date-time"},
                            "lost_records": {"type": "integer", "minimum": 0},
                            "lost_bytes": {"type": "integer", "minimum": 0}
                        }
                    }
                }
            }
        },
        "Device": {
            "type": "object",
            "required": ["name", "url", "state", "viewers", "groups"],
            "properties": {
                "name": {"type": "string"},
                "url": {"type": "string"},
                "state": {"type": "string", "enum": ["up", "down", "connecting", "idle", "stopped"]},
                "viewers": {"type": "integer"},
                "groups": {"type": "array", "items": {"type": "string"}},
                "description": {"type": ["string", "null"]},
                "error": {"type": "string"},
                "modem": {
                    "type": "object",
                    "description": "The modem lines while the link is up and reports them (rfc2217)",
                    "required": ["dcd", "dsr", "cts", "ri"],
                    "properties": {
                        "dcd": {"type": "boolean"},
                        "dsr": {"type": "boolean"},
                        "cts": {"type": "boolean"},
                        "ri": {"type": "boolean"}
                    }
                }
            }
        },
        "DeviceDetail": {
            "allOf": [schema_ref("Device"), {
                "type": "object",
                "properties": {"settings": schema_ref("Settings")}
            }]
        },
        "Settings": {
            "type": "object",
            "properties": {
                "on_demand": {"type": "boolean"},
                "replay_lines": {"type": "integer"},
                "allow_join": {"type": "boolean"},
                "escape": {"type": ["string", "null"]},
                "break_sequences": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": {"type": ["string", "null"]},
                "login": {"type": ["string", "null"]},
                "login_user": {"type": ["string", "null"]},
                "trust_host_key": {"type": "boolean"},
                "power": {"type": "array", "items": {"type": "string"}},
                "log_secrets": {"type": "boolean", "description": LOG_SECRETS},
                "log_policy": {
                    "type": ["string", "null"],
                    "enum": ["degrade", "strict", null],
                    "description": "While the record log cannot write: degrade (default) lets input through and records the gap; strict refuses input"
                },
                "retain_days": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "Keep closed log segments this many days (null: the daemon's --retain-days)"
                },
                "retain_gib": {
                    "type": ["number", "null"],
                    "exclusiveMinimum": 0,
                    "description": "Keep at most this many GiB of log, whole MiB (null: the daemon's --retain-gib)"
                }
            }
        },
        "NewDevice": {
            "type": "object",
            "description": "A device: name, address and settings, either as the `settings` object \
                `GET` shows or as top-level fields like `mo device add` options (these win).",
            "required": ["name", "url"],
            "additionalProperties": false,
            "properties": new_device_properties(),
            "if": {"required": ["login"], "properties": {"login": {"type": "string"}}},
            "then": {"required": ["login_user"], "properties": {"login_user": {"type": "string", "minLength": 1}}}
        },
        "SettingsInput": {
            "type": "object",
            "description": "Settings of a new device; fields left out take their defaults.",
            "properties": settings_input_properties(),
            "if": {"required": ["login"], "properties": {"login": {"type": "string"}}},
            "then": {"required": ["login_user"], "properties": {"login_user": {"type": "string", "minLength": 1}}}
        },
        "Viewer": {
            "type": "object",
            "required": ["user", "role", "since"],
            "properties": {
                "user": {"type": "string"},
                "role": {"type": "string", "enum": ["attach", "spy", "join"]},
                "since": {"type": "string", "format": "date-time"},
                "origin": {"type": "string"}
            }
        },
        "Session": {
            "allOf": [schema_ref("Viewer"), {
                "type": "object",
                "required": ["device"],
                "properties": {"device": {"type": "string"}}
            }]
        },
        "PowerRequest": {
            "type": "object",
            "required": ["action"],
            "additionalProperties": false,
            "properties": {"action": {"type": "string",
                "enum": ["on", "off", "cycle", "reset", "soft-off", "status"]}}
        },
        "Power": {
            "type": "object",
            "required": ["device", "results"],
            "properties": {
                "device": {"type": "string"},
                "action": {"type": "string"},
                "ok": {"type": "boolean"},
                "message": {"type": "string"},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["controller", "state"],
                    "properties": {
                        "controller": {"type": "string"},
                        "state": {"type": "string", "enum": ["on", "off", "unknown"]},
                        "error": {"type": "string"}
                    }
                }}
            }
        },
        "SearchHit": {
            "type": "object",
            "required": ["time", "line"],
            "properties": {
                "time": {"type": "string", "format": "date-time"},
                "line": {"type": "string"},
                "user": {"type": "string"}
            }
        },
        "Verify": {
            "type": "object",
            "required": ["ok", "records", "problems"],
            "properties": {
                "ok": {"type": "boolean"},
                "records": {"type": "integer"},
                "segments": {"type": "integer"},
                "problems": {"type": "array", "items": {"type": "string"}},
                "warnings": {"type": "array", "items": {"type": "string"}}
            }
        },
        "Event": {
            "type": "object",
            "required": ["id", "time", "device", "severity", "name", "text"],
            "properties": {
                "id": {"type": "integer"},
                "time": {"type": "string", "format": "date-time"},
                "device": {"type": "string"},
                "severity": {"type": "string", "enum": ["info", "notice", "warning", "error", "critical"]},
                "name": {"type": "string"},
                "text": {"type": "string"},
                "count": {"type": "integer"},
                "acked_by": {"type": "string"}
            }
        },
        "User": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "has_password": {"type": "boolean"},
                "ssh_keys": {"type": "integer"}
            }
        },
        "NewUser": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 32, "pattern": USER_PATTERN},
                "password": {"type": ["string", "null"], "minLength": 1,
                             "description": "Left out or null: the user logs in with SSH keys only."}
            }
        },
        "Role": {
            "type": "object",
            "required": ["name", "actions"],
            "properties": {
                "name": {"type": "string"},
                "actions": {"type": "array", "items": {"type": "string"}},
                "builtin": {"type": "boolean"}
            }
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mo console server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Shared persistent consoles: devices, console attach over WebSocket, \
                record logs, events, power. Errors are {\"error\":{\"code\",\"message\"}}."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token made with `mo token add USER`."},
                "basic": {"type": "http", "scheme": "basic",
                          "description": "A mo user's name and password."}
            },
            "schemas": schemas()
        }
    })
}

/// `GET /api/v1/openapi.json` (no authentication).
pub async fn serve() -> Response {
    axum::Json(document()).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_own_operation() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for route in ROUTES {
            let o = &paths[route.path][route.method.to_ascii_lowercase()];
            let id = o["operationId"].as_str().unwrap();
            assert_ne!(id, "unknown", "{route:?} has no description in openapi.rs");
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            for segment in route.path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    let declared = o["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["name"] == name && p["in"] == "path")
                    });
                    assert!(declared, "{route:?}: path parameter {name} not declared");
                }
            }
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len());
    }
}
