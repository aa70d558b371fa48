//! Device groups, user groups, roles and grants: `/api/v1/groups`, `/api/v1/groups/{name}`,
//! `/api/v1/usergroups`, `/api/v1/usergroups/{name}`, `/api/v1/roles/{name}`, `/api/v1/grants`.

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

/// The path of `/api/v1/groups/{name}`, `/api/v1/usergroups/{name}` and `/api/v1/roles/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccessPath {
    /// The device group, user group or role (names follow the device-name rule).
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
}

/// One device group with the stored devices in it (`GET /api/v1/groups/{name}`, and the answer
/// of `PATCH /api/v1/groups/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceGroupDetail {
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
    /// The stored devices in the group now, by name.
    pub devices: Vec<String>,
}

/// The body of `PATCH /api/v1/groups/{name}`: what to add and take away (as `mo group set`).
/// Adding what is there or taking away what is not changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceGroupChange {
    /// Devices to add (they need not exist yet).
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::device_names)]
    pub add_members: Vec<String>,
    /// Devices to take out.
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::device_names)]
    pub rm_members: Vec<String>,
    /// Globs or `re:` regexes to add; a regex that does not compile is a 400.
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::name_patterns)]
    pub add_patterns: Vec<String>,
    /// Patterns to take out, as written.
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::name_patterns)]
    pub rm_patterns: Vec<String>,
}

/// A user group: a name for some users, to make grants to (`@NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserGroup {
    /// The name.
    pub name: String,
    /// Its users, by name.
    pub members: Vec<String>,
}

/// The body of `POST /api/v1/usergroups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserGroup {
    /// The name.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
    /// Users in the group (each must exist).
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::user_names)]
    pub members: Vec<String>,
}

/// The body of `PATCH /api/v1/usergroups/{name}` (as `mo usergroup set`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserGroupChange {
    /// Users to add (each must exist).
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::user_names)]
    pub add: Vec<String>,
    /// Users to take out.
    #[serde(default)]
    #[schema(required = false, schema_with = crate::schema::user_names)]
    pub rm: Vec<String>,
}

/// The body of `PUT /api/v1/roles/{name}`: the actions the role allows (as `mo role add
/// --allow`). It defines the role, or redefines it (built-in ones too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleActions {
    /// The actions (`list`, `spy`, `attach`, … `admin`; `admin` implies every action).
    #[schema(schema_with = crate::schema::role_actions)]
    pub actions: Vec<String>,
}
