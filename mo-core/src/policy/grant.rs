//! Roles (named sets of actions) and grants (role × device group, to a user or a user group).

use std::fmt;

use super::permission::{Permission, PermissionSet};

/// A named set of actions. Built in: [`Role::VIEWER`], [`Role::OPERATOR`] and [`Role::ADMIN`]
/// (see [`Role::builtin`]); a site may redefine them or add its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The role's name.
    pub name: String,
    /// What the role allows. A role holding [`Permission::Admin`] allows every action.
    pub actions: PermissionSet,
}

impl Role {
    /// Name of the built-in read-only role: `list`, `spy`, `log.read`.
    pub const VIEWER: &'static str = "viewer";
    /// Name of the built-in working role: viewer plus `attach`, `join`, `break`,
    /// `log.read_input`, `log.note`, `power.status`, `host.show`.
    pub const OPERATOR: &'static str = "operator";
    /// Name of the built-in role allowing everything.
    pub const ADMIN: &'static str = "admin";

    /// A role called `name` allowing `actions`.
    pub fn new(name: impl Into<String>, actions: impl IntoIterator<Item = Permission>) -> Self {
        Role {
            name: name.into(),
            actions: actions.into_iter().collect(),
        }
    }

    /// The built-in roles, as a fresh [`Policy`](super::Policy) holds them.
    pub fn builtin() -> [Role; 3] {
        let viewer: PermissionSet = [Permission::List, Permission::Spy, Permission::LogRead]
            .into_iter()
            .collect();
        let operator = viewer
            .with(Permission::Attach)
            .with(Permission::Join)
            .with(Permission::Break)
            .with(Permission::LogReadInput)
            .with(Permission::LogNote)
            .with(Permission::PowerStatus)
            .with(Permission::HostShow);
        [
            Role {
                name: Role::VIEWER.to_string(),
                actions: viewer,
            },
            Role {
                name: Role::OPERATOR.to_string(),
                actions: operator,
            },
            Role {
                name: Role::ADMIN.to_string(),
                actions: PermissionSet::all(),
            },
        ]
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One user, by name.
    User(String),
    /// Every member of a user group, by the group's name.
    Group(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(name) => write!(f, "user {name}"),
            Subject::Group(name) => write!(f, "user group {name}"),
        }
    }
}

/// A role on a device group, given to a user or a user group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Who receives the role.
    pub subject: Subject,
    /// The role's name.
    pub role: String,
    /// The device group's name.
    pub device_group: String,
}

impl Grant {
    /// `role` on `device_group` for the user `user`.
    pub fn to_user(
        user: impl Into<String>,
        role: impl Into<String>,
        device_group: impl Into<String>,
    ) -> Self {
        Grant {
            subject: Subject::User(user.into()),
            role: role.into(),
            device_group: device_group.into(),
        }
    }

    /// `role` on `device_group` for every member of the user group `group`.
    pub fn to_group(
        group: impl Into<String>,
        role: impl Into<String>,
        device_group: impl Into<String>,
    ) -> Self {
        Grant {
            subject: Subject::Group(group.into()),
            role: role.into(),
            device_group: device_group.into(),
        }
    }
}

impl fmt::Display for Grant {
    /// `role operator on group rack3 for user group ops`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "role {} on group {} for {}",
            self.role, self.device_group, self.subject
        )
    }
}
