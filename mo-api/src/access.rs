//! Device groups and grants: `GET`/`POST /api/v1/groups`, `DELETE /api/v1/groups/{name}`,
//! `GET`/`POST`/`DELETE /api/v1/grants`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A device group: the devices named in it and the name patterns that take a device in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceGroup {
    /// The name.
    pub name: String,
    /// Devices named explicitly.
    pub members: Vec<String>,
    /// Globs (`web*`) and regexes written `re:…`, as written.
    pub patterns: Vec<String>,
    /// True only for the built-in `all`: every device is in it.
    #[serde(default)]
    #[schema(required = false)]
    pub every_device: bool,
}

/// The body of `POST /api/v1/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceGroup {
    /// The name (`all` is built in).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
    /// Devices in the group (they need not exist yet).
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::device_names)]
    pub members: Vec<String>,
    /// Globs (`web*`, `rack3-??`) or regexes written `re:…`. A regex that does not compile or
    /// a glob with an unclosed `[` is a 400.
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::name_patterns)]
    pub patterns: Vec<String>,
}

/// A grant: a role on a device group for a user or a user group. The body of
/// `POST /api/v1/grants`, and one entry of `GET /api/v1/grants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A user, or `@GROUP` for a user group.
    #[schema(
        min_length = 1,
        max_length = 65,
        pattern = "^([a-z_][a-z0-9_.-]{0,31}|@[A-Za-z0-9_][A-Za-z0-9._-]{0,63})$"
    )]
    pub subject: String,
    /// The role.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub role: String,
    /// The device group (`all`: every device).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub device_group: String,
}

/// The query of `DELETE /api/v1/grants`: the grant to take back, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// A user, or `@GROUP` for a user group.
    #[param(
        min_length = 1,
        max_length = 65,
        pattern = "^([a-z_][a-z0-9_.-]{0,31}|@[A-Za-z0-9_][A-Za-z0-9._-]{0,63})$"
    )]
    pub subject: String,
    /// The role.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub role: String,
    /// The device group.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub device_group: String,
}

/// The path of `DELETE /api/v1/groups/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// The device group.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
}
