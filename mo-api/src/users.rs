//! Users and roles: `GET/POST /api/v1/users`, `DELETE /api/v1/users/{name}`,
//! `PUT /api/v1/users/{name}/password`, `GET /api/v1/roles`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The name.
    pub name: String,
    /// Whether a password is set.
    #[serde(default)]
    #[schema(required = false)]
    pub has_password: bool,
    /// How many SSH keys are registered.
    #[serde(default)]
    #[schema(required = false)]
    pub ssh_keys: u64,
}

impl User {
    /// A user `name`.
    pub fn new(name: impl Into<String>, has_password: bool, ssh_keys: u64) -> Self {
        User {
            name: name.into(),
            has_password,
            ssh_keys,
        }
    }
}

/// The body of `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user name.
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z_][a-z0-9_.-]{0,31}$")]
    pub name: String,
    /// Left out or null: the user logs in with SSH keys only.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub password: Option<String>,
}

/// The path of `/api/v1/users/{name}` and what is under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user name.
    #[param(min_length = 1, max_length = 32, pattern = "^[a-z_][a-z0-9_.-]{0,31}$")]
    pub name: String,
}

/// The body of `PUT /api/v1/users/{name}/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The new password (not empty).
    #[schema(min_length = 1)]
    pub password: String,
}

/// A role: a named set of actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    /// The name.
    pub name: String,
    /// The actions it grants (`list`, `attach`, `power.control`, …).
    pub actions: Vec<String>,
    /// Whether it is built in.
    #[serde(default)]
    #[schema(required = false)]
    pub builtin: bool,
}

impl Role {
    /// A role `name` granting `actions`.
    pub fn new(name: impl Into<String>, actions: Vec<String>, builtin: bool) -> Self {
        Role {
            name: name.into(),
            actions,
            builtin,
        }
    }
}
