//! `mo user …`: users, passwords and SSH public keys.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use mo_store::{SshPublicKey, Store};

use crate::cli::{KeyCommand, UserCommand};
use crate::table::Table;

/// Run one `mo user` command. `stdin` supplies passwords and `-` key files.
pub fn run(
    store: &Store,
    command: UserCommand,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_stdin,
            ssh_key,
        } => {
            mo_store::validate_user_name(&name)?;
            if !password_stdin && ssh_key.is_empty() {
                bail!(
                    "user `{name}` would have no way to log in: give a password on standard input \
                     with --password-stdin (echo 'PASSWORD' | mo user add {name} --password-stdin) \
                     and/or a public key file with --ssh-key FILE"
                );
            }
            // Read every key first, so a bad file adds nothing.
            let mut keys = Vec::new();
            for file in &ssh_key {
                keys.extend(read_keys(file, stdin)?);
            }
            let password = if password_stdin {
                Some(read_password(stdin)?)
            } else {
                None
            };
            store.add_user_with_keys(&name, password.as_deref(), &keys)?;
            let what = match (password.is_some(), keys.len()) {
                (true, 0) => "a password".to_string(),
                (true, n) => format!("a password and {}", plural(n, "SSH key")),
                (false, n) => plural(n, "SSH key"),
            };
            writeln!(out, "added user `{name}` with {what}")?;
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            if !password_stdin {
                bail!(
                    "give the new password on standard input with --password-stdin \
                     (echo 'PASSWORD' | mo user passwd {name} --password-stdin)"
                );
            }
            let password = read_password(stdin)?;
            store.set_password(&name, &password)?;
            writeln!(out, "changed the password of user `{name}`")?;
        }
        UserCommand::Key(command) => key(store, command, stdin, out)?,
        UserCommand::List { json } => {
            let users = store.list_users()?;
            if json {
                let list: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "name": u.name,
                            "password": u.has_password,
                            "ssh_keys": u.ssh_keys,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else if users.is_empty() {
                writeln!(out, "no users (add one with `mo user add NAME`)")?;
            } else {
                let mut table = Table::new(&["NAME", "PASSWORD", "SSH KEYS"]);
                for u in users {
                    let password = if u.has_password { "yes" } else { "no" };
                    table.row(vec![u.name, password.into(), u.ssh_keys.to_string()]);
                }
                table.write(out)?;
            }
        }
        UserCommand::Rm { name } => {
            store.remove_user(&name)?;
            writeln!(out, "removed user `{name}`")?;
        }
    }
    Ok(())
}

fn key(
    store: &Store,
    command: KeyCommand,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        KeyCommand::Add { name, file } => {
            let keys = read_keys(&file, stdin)?;
            // Check the user before touching anything, so the error is about the user.
            store.user(&name)?;
            for key in &keys {
                store.add_parsed_ssh_key(&name, key)?;
                writeln!(
                    out,
                    "added {} {} to user `{name}`",
                    key.key_type(),
                    key.fingerprint()
                )?;
            }
        }
        KeyCommand::List { name, json } => {
            let keys: Vec<mo_client::SshKey> = store
                .ssh_key_details(&name)?
                .iter()
                .map(|k| mo_client::SshKey {
                    key_type: k.key_type().into(),
                    fingerprint: k.fingerprint().into(),
                    comment: k.comment().into(),
                })
                .collect();
            write_keys(&name, &keys, json, out)?;
        }
        KeyCommand::Rm { name, fingerprint } => {
            store.remove_ssh_key(&name, &fingerprint)?;
            writeln!(out, "removed key {fingerprint} from user `{name}`")?;
        }
    }
    Ok(())
}

/// `mo user key list NAME`: a table of the user's keys, or a JSON array.
pub fn write_keys(
    name: &str,
    keys: &[mo_client::SshKey],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(keys)?)?;
    } else if keys.is_empty() {
        writeln!(out, "user `{name}` has no SSH keys")?;
    } else {
        let mut table = Table::new(&["TYPE", "FINGERPRINT", "COMMENT"]);
        for k in keys {
            table.row(vec![
                k.key_type.clone(),
                k.fingerprint.clone(),
                k.comment.clone(),
            ]);
        }
        table.write(out)?;
    }
    Ok(())
}

/// Read the public keys of a file, or of standard input for `-`.
pub fn read_keys(file: &Path, stdin: &mut dyn BufRead) -> Result<Vec<SshPublicKey>> {
    let (text, source) = if file == Path::new("-") {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .context("cannot read SSH keys from standard input")?;
        (text, "standard input".to_string())
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read SSH key file {}", file.display()))?;
        (text, file.display().to_string())
    };
    Ok(SshPublicKey::parse_many(&text, &source)?)
}

/// The first line of standard input, without its line ending.
pub fn read_password(stdin: &mut dyn BufRead) -> Result<String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on standard input (the first line is empty)");
    }
    Ok(password.to_string())
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
