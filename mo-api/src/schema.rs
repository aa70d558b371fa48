//! The constraints the API states and enforces: name and address patterns, limits, and the few
//! schemas a derive cannot express (a time that is RFC 3339 or relative, break-sequence maps).

use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};

/// A device (and macro) name: letters, digits, `.`, `_`, `-`, 1 to 64, not starting with `.` or
/// `-` (`mo_store::validate_device_name`).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$";
/// A user name: lower-case letters, digits, `_`, `.`, `-`, starting with a letter or `_`, at most
/// 32 characters (`mo_store::validate_user_name`).
pub const USER_PATTERN: &str = "^[a-z_][a-z0-9_.-]{0,31}$";
/// A device address the API takes: a scheme mo has a driver for, `://`, an optional `user@`, a
/// host (may be empty: `serial:///dev/ttyS0`), an optional port, a path and a query of URL-safe
/// characters. (`mo device add` on the data directory takes any absolute URL.)
pub const DEVICE_URL_PATTERN: &str = "^(exec|serial|unix|telnet|rfc2217|tcp|ssh|ipmi|sim|cs|agent)://(([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9._-]{1,253}(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?)?(/[A-Za-z0-9._~%+-]{0,255}){0,32}([?][A-Za-z0-9._~%+=&,:-]{0,1024})?$";
/// A power controller address the API takes (same shape, the power schemes).
pub const POWER_URL_PATTERN: &str = "^(ipmi|redfish|snmp|exec)://(([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9._-]{1,253}(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?)?(/[A-Za-z0-9._~%+-]{0,255}){0,32}([?][A-Za-z0-9._~%+=&,:-]{0,1024})?$";
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
/// The most lines an attach (`?replay=`) or a `replay` message replays.
pub const MAX_REPLAY: u64 = 100_000;

/// A time parameter (`since`, `until`): RFC 3339, or a relative time ([`RELATIVE_TIME_PATTERN`]).
pub fn time_spec() -> Schema {
    AnyOfBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .pattern(Some(RELATIVE_TIME_PATTERN)),
        )
        .build()
        .into()
}

/// The schema of a break-sequence map: keys `1` to `9`, values in conserver notation
/// ([`BREAK_PATTERN`]); `nullable` for request fields that may be `null`.
fn break_map(nullable: bool) -> Schema {
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::Type(Type::Object)
    };
    let mut object = ObjectBuilder::new()
        .schema_type(schema_type)
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(BREAK_PATTERN)),
        ))
        .description(Some(
            "Break sequences 1 to 9 in conserver notation (`\\\\z` break, `\\\\d` delay).",
        ))
        .build();
    object.property_names = Some(Box::new(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[1-9]$"))
            .into(),
    ));
    Schema::Object(object)
}

/// The schema of a request's break sequences: keys `1` to `9`, values in conserver notation;
/// `null` keeps the default.
pub fn break_sequences() -> Schema {
    break_map(true)
}

/// The settings' stored break sequences as `GET` shows them (any key the store holds).
pub fn break_sequences_shown() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .into()
}

/// JSON Schema's `if`/`then` for an object: when `login` is a string, `login_user` must be a
/// non-empty string (the store refuses an auto-login without a user). utoipa has no field for
/// these keywords, so they ride in the schema's extension map, which is written out flat.
pub fn login_needs_user(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = schema else {
        return schema;
    };
    let login = ObjectBuilder::new()
        .required("login")
        .property("login", ObjectBuilder::new().schema_type(Type::String))
        .build();
    let user = ObjectBuilder::new()
        .required("login_user")
        .property(
            "login_user",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        )
        .build();
    let extensions = object.extensions.get_or_insert_with(Default::default);
    if let (Ok(login), Ok(user)) = (serde_json::to_value(login), serde_json::to_value(user)) {
        extensions.insert("if".into(), login);
        extensions.insert("then".into(), user);
    }
    RefOr::T(Schema::Object(object))
}

/// An array of strings of 1 to `max` characters matching `pattern`.
fn strings(max: usize, pattern: &str) -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(max))
                .pattern(Some(pattern)),
        )
        .into()
}

/// Device names ([`NAME_PATTERN`]): the members of a device group.
pub fn device_names() -> Schema {
    strings(64, NAME_PATTERN)
}

/// User names ([`USER_PATTERN`]): the members of a user group.
pub fn user_names() -> Schema {
    strings(32, USER_PATTERN)
}

/// The actions of a role: one or more of [`crate::TOKEN_ACTIONS`] (every action there is).
pub fn role_actions() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(crate::TOKEN_ACTIONS.iter().copied())),
        )
        .min_items(Some(1))
        .into()
}

/// Name patterns of a device group: globs or `re:` regexes, 1 to 1024 bytes without control
/// characters (whether a regex compiles, JSON Schema cannot say).
pub fn name_patterns() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(1024))
                .pattern(Some("^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
        )
        .into()
}

/// A device's own TCP ports ([`LISTEN_PORT_PATTERN`]), or `null` (none).
pub fn listen_ports() -> Schema {
    string_list(LISTEN_PORT_PATTERN)
}

/// The networks that may connect to a device's ports: a list of CIDR blocks, or `null`.
pub fn listen_allow() -> Schema {
    string_list(r"^[0-9A-Fa-f.:]{2,39}(/[0-9]{1,3})?$")
}

/// A nullable list of strings matching `pattern`.
fn string_list(pattern: &str) -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .max_items(Some(16))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
        )
        .into()
}

/// A device's own TCP port as the API takes it: `ADDR:PORT[/MODE][,spy]` (docs/listen-ports.md).
pub const LISTEN_PORT_PATTERN: &str = r"^([0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}(/(raw|telnet|telnet\+login|rfc2217))?(,spy)?$";

/// Power controller addresses ([`POWER_URL_PATTERN`]), or `null` (none).
pub fn power_urls() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(POWER_URL_PATTERN)),
        )
        .into()
}
