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

/// A user's SSH public key (`GET /api/v1/users/{name}/keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SshKey {
    /// The key type (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …).
    #[serde(rename = "type")]
    pub key_type: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The comment of the key's line (may be empty).
    pub comment: String,
}

/// The body of `POST /api/v1/users/{name}/keys`: one OpenSSH public-key line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSshKey {
    /// `TYPE BASE64 [COMMENT]`, as in `authorized_keys`; a line that is not a key OpenSSH knows
    /// is a 400.
    #[schema(min_length = 1, max_length = 16384)]
    pub key: String,
}

/// The query of `DELETE /api/v1/users/{name}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SshKeyQuery {
    /// The key's fingerprint (`SHA256:…`, as listed).
    #[param(
        min_length = 50,
        max_length = 50,
        pattern = "^SHA256:[A-Za-z0-9+/]{43}$"
    )]
    pub fingerprint: String,
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
