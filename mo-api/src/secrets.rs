//! Device secrets: `GET /api/v1/devices/{name}/secrets` (the kinds a device has, never values),
//! `PUT` and `DELETE /api/v1/devices/{name}/secrets/{kind}`.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The kinds of device secret, as written (`mo secret set DEVICE KIND`).
pub const SECRET_KINDS: [&str; 6] = [
    "password",
    "private_key",
    "key_passphrase",
    "bmc_key",
    "snmp_auth",
    "snmp_privacy",
];

/// The longest secret value the API takes, in characters (a private key is a few thousand).
pub const MAX_SECRET_CHARS: usize = 65536;

/// The path of `/api/v1/devices/{name}/secrets/{kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SecretPath {
    /// The device name.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
    /// The kind of secret.
    #[param(pattern = "^(password|private_key|key_passphrase|bmc_key|snmp_auth|snmp_privacy)$")]
    pub kind: String,
}

/// The body of `PUT /api/v1/devices/{name}/secrets/{kind}`: the value in clear, sealed by the
/// daemon with its secret key. It is never returned, logged or printed (`Debug` hides it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// The value: a password or passphrase (one line), or a whole OpenSSH private key. Only
    /// white space is a 400.
    #[schema(min_length = 1, max_length = 65536)] // MAX_SECRET_CHARS
    pub value: String,
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewSecret { value: *** }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_never_prints() {
        let body = NewSecret {
            value: "hunter2".into(),
        };
        assert!(!format!("{body:?}").contains("hunter2"));
    }
}
