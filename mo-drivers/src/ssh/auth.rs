//! SSH user authentication for the `ssh` driver: public key, then password, then
//! keyboard-interactive answering the server's prompts with the password.
//!
//! Secrets come from [`Credentials`] only. Errors are [`Error::Auth`] naming the address and the
//! methods tried (with the public key's fingerprint, which is not secret), never a secret.

use std::sync::Arc;

use mo_core::{Error, Result};
use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{PrivateKeyWithHashAlg, decode_secret_key};

use super::known_hosts::fingerprint;
use crate::credentials::Credentials;

/// Keyboard-interactive rounds answered before giving up (a server may ask again and again).
const MAX_PROMPT_ROUNDS: usize = 4;

/// Log in as `user` with what `credentials` hold. `address` is named in errors.
pub async fn authenticate<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    user: &str,
    credentials: &Credentials,
    address: &str,
) -> Result<()> {
    let failed = |reason: String| Error::Auth {
        target: address.to_owned(),
        reason,
    };
    let lost = |e: russh::Error| Error::Connect {
        address: address.to_owned(),
        reason: format!("connection lost during authentication: {e}"),
    };
    // `none` first: some console servers need nothing more, and the answer lists the methods.
    let mut offered = match handle.authenticate_none(user).await.map_err(lost)? {
        AuthResult::Success => return Ok(()),
        AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods
            .iter()
            .map(<&'static str>::from)
            .collect::<Vec<_>>(),
    };
    let mut tried: Vec<String> = Vec::new();
    let allows = |offered: &[&str], method: &str| offered.is_empty() || offered.contains(&method);

    if let Some(text) = &credentials.private_key {
        let passphrase = credentials.key_passphrase.as_ref().map(|p| p.expose());
        let key = decode_secret_key(text.expose(), passphrase).map_err(|e| {
            failed(format!(
                "the private key in the device's credentials cannot be read: {e}"
            ))
        })?;
        let described = format!(
            "publickey ({} {})",
            key.algorithm().as_str(),
            fingerprint(key.public_key())
        );
        if allows(&offered, "publickey") {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            match handle
                .authenticate_publickey(user, key)
                .await
                .map_err(lost)?
            {
                AuthResult::Success => return Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => offered = names(&remaining_methods),
            }
            tried.push(described);
        } else {
            tried.push(format!("{described}: not offered by the server"));
        }
    }

    if let Some(password) = &credentials.password {
        if allows(&offered, "password") {
            match handle
                .authenticate_password(user, password.expose())
                .await
                .map_err(lost)?
            {
                AuthResult::Success => return Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => offered = names(&remaining_methods),
            }
            tried.push("password".into());
        }
        if allows(&offered, "keyboard-interactive") {
            if keyboard_interactive(handle, user, password.expose())
                .await
                .map_err(lost)?
            {
                return Ok(());
            }
            tried.push("keyboard-interactive".into());
        }
    }

    let offered = if offered.is_empty() {
        "none listed".to_owned()
    } else {
        offered.join(", ")
    };
    let reason = if tried.is_empty() {
        format!(
            "user `{user}`: no usable credentials (the device has neither a private key nor a \
             password the server accepts; the server offers: {offered})"
        )
    } else {
        format!(
            "user `{user}`: refused {} (the server offers: {offered})",
            tried.join(", ")
        )
    };
    Err(failed(reason))
}

/// The method names of a set.
fn names(methods: &russh::MethodSet) -> Vec<&'static str> {
    methods.iter().map(<&'static str>::from).collect()
}

/// Answer keyboard-interactive prompts: hidden prompts get the password, echoed ones nothing.
/// Returns whether the server accepted.
async fn keyboard_interactive<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    user: &str,
    password: &str,
) -> std::result::Result<bool, russh::Error> {
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    for _ in 0..MAX_PROMPT_ROUNDS {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            String::new()
                        } else {
                            password.to_owned()
                        }
                    })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(matches!(reply, KeyboardInteractiveAuthResponse::Success))
}
