//! Profiles: `mo login URL` asks for a user and password, makes an API token through the daemon
//! (`POST /api/v1/tokens` with the password) and stores it with the server's address in
//! `$XDG_CONFIG_HOME/mo/config.toml` (else `~/.config/mo/config.toml`, mode 0600) under a
//! profile name; `mo --profile NAME` (`MO_PROFILE`) uses it; `mo logout` revokes the token and
//! forgets the profile.
//!
//! ```toml
//! [profiles.default]
//! server = "https://cs1:8443"
//! token = "mo_…"
//! user = "alice"
//! pin = "AB:CD:…"     # or ca = "/path/ca.pem", as given to mo login
//! ```

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::cli::Cli;

/// The profile name `mo login` uses when none is given.
pub const DEFAULT_PROFILE: &str = "default";

/// One stored server login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The daemon's API (`--server`).
    pub server: String,
    /// The API token (`--token`).
    pub token: String,
    /// The user the token acts as (for listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `--ca FILE` given at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// `--pin SHA256` given at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// `~/.config/mo/config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Options of `mo login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The daemon's API, as for --server (`https://cs1:8443`).
    pub url: String,
    /// The mo user (asked for when left out).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
    /// Store the login under this profile name (default `default`).
    #[arg(long = "profile", value_name = "NAME", default_value = DEFAULT_PROFILE)]
    pub name: String,
    /// When the token expires: a duration from now (`30d`, `12h`, `1w`); default never.
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
}

/// Options of `mo logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The profile to forget (default: `--profile`/`MO_PROFILE`, else `default`).
    #[arg(long = "profile", value_name = "NAME")]
    pub name: Option<String>,
}

/// The configuration file: `$XDG_CONFIG_HOME/mo/config.toml`, else `~/.config/mo/config.toml`.
pub fn config_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("no configuration directory: neither $XDG_CONFIG_HOME nor $HOME is set"),
        },
    };
    Ok(base.join("mo").join("config.toml"))
}

/// The configuration at `path` (empty when there is no file).
pub fn load(path: &Path) -> Result<Config> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("bad configuration file {}", path.display()))
}

/// Write `config` to `path` with mode 0600 (the directory 0700), replacing it atomically.
pub fn save(path: &Path, config: &Config) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let text = toml::to_string(config).context("cannot write the configuration as TOML")?;
    let tmp = dir.join(".config.toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// With `--profile NAME` (or `MO_PROFILE`): fill in --server, --token, --ca and --pin from the
/// stored profile where the command line and environment did not give them.
pub fn apply(cli: &mut Cli) -> Result<()> {
    let Some(name) = cli.profile.clone().filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    let path = config_path()?;
    let config = load(&path)?;
    let Some(p) = config.profiles.get(&name) else {
        bail!(
            "no profile `{name}` in {} (`mo login URL --profile {name}` makes it)",
            path.display()
        );
    };
    if cli.server.as_deref().is_none_or(str::is_empty) {
        cli.server = Some(p.server.clone());
        if cli.token.is_none() {
            cli.token = Some(p.token.clone());
        }
        if cli.ca.is_none() && cli.pin.is_none() {
            cli.ca.clone_from(&p.ca);
            cli.pin.clone_from(&p.pin);
        }
    }
    Ok(())
}

/// A line from standard input, with a prompt on the terminal; `secret`: not echoed.
fn ask(prompt: &str, secret: bool, stdin: &mut dyn BufRead) -> Result<String> {
    let tty = io::stdin().is_terminal();
    if tty {
        eprint!("{prompt}");
        io::stderr().flush()?;
    }
    let saved = if tty && secret {
        let fd = io::stdin();
        rustix::termios::tcgetattr(&fd).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_modes &= !rustix::termios::LocalModes::ECHO;
            let _ = rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &quiet);
        })
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(t) = saved {
        let _ = rustix::termios::tcsetattr(io::stdin(), rustix::termios::OptionalActions::Now, &t);
        eprintln!();
    }
    read.context("cannot read standard input")?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        bail!(
            "nothing given for `{}`",
            prompt.trim_end_matches([':', ' '])
        );
    }
    Ok(line)
}

/// `mo login URL`: make a token with the user's password and store it as a profile.
pub fn login(
    cli: &Cli,
    args: &LoginArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<()> {
    let user = match &args.user {
        Some(u) => u.clone(),
        None => ask("user: ", false, stdin)?,
    };
    let password = if args.password_stdin {
        crate::user::read_password(stdin)?
    } else if io::stdin().is_terminal() {
        ask("password: ", true, stdin)?
    } else {
        bail!("no terminal to ask the password on: give it with --password-stdin");
    };
    let trust = mo_client::Trust::from_options(cli.ca.as_deref(), cli.pin.as_deref())?;
    let client =
        mo_client::Client::with_trust(&args.url, "", trust)?.with_password(&user, &password);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let created = rt.block_on(client.add_token(None, None, args.expires.as_deref()))?;
    let path = config_path()?;
    let mut config = load(&path)?;
    config.profiles.insert(
        args.name.clone(),
        Profile {
            server: args.url.clone(),
            token: created.token,
            user: Some(user.clone()),
            ca: cli.ca.clone(),
            pin: cli.pin.clone(),
        },
    );
    save(&path, &config)?;
    writeln!(
        out,
        "logged in to {} as `{user}`: token {} stored as profile `{}` in {} (use it with \
         `mo --profile {}` or MO_PROFILE={})",
        args.url,
        created.info.id,
        args.name,
        path.display(),
        args.name,
        args.name
    )?;
    Ok(())
}

/// `mo logout`: revoke the profile's token on its daemon (or the --server/--token in use) and
/// forget the profile.
pub fn logout(cli: &Cli, args: &LogoutArgs, out: &mut dyn Write) -> Result<()> {
    let path = config_path()?;
    let mut config = load(&path)?;
    let name = args
        .name
        .clone()
        .or_else(|| cli.profile.clone())
        .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    let stored = config.profiles.get(&name).cloned();
    let (server, token, ca, pin) = match (&stored, &cli.server, &cli.token) {
        (Some(p), _, _) => (
            p.server.clone(),
            p.token.clone(),
            p.ca.clone(),
            p.pin.clone(),
        ),
        (None, Some(s), Some(t)) if !s.is_empty() => {
            (s.clone(), t.clone(), cli.ca.clone(), cli.pin.clone())
        }
        _ => bail!(
            "no profile `{name}` in {} and no --server with --token: nothing to log out of",
            path.display()
        ),
    };
    let id = token
        .strip_prefix(mo_store::TOKEN_PREFIX)
        .and_then(|rest| rest.split('_').next())
        .unwrap_or_default()
        .to_string();
    let trust = mo_client::Trust::from_options(ca.as_deref(), pin.as_deref())?;
    let client = mo_client::Client::with_trust(&server, token, trust)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let revoked = rt.block_on(client.revoke_token(&id));
    if stored.is_some() {
        config.profiles.remove(&name);
        save(&path, &config)?;
    }
    match revoked {
        Ok(()) => writeln!(out, "logged out of {server}: token {id} revoked")?,
        Err(e) if stored.is_some() => writeln!(
            out,
            "forgot profile `{name}`; the token could not be revoked: {e}"
        )?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn profiles_round_trip_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mo").join("config.toml");
        assert_eq!(load(&path).unwrap(), Config::default());
        let mut config = Config::default();
        config.profiles.insert(
            "lab".into(),
            Profile {
                server: "http://127.0.0.1:8022".into(),
                token: "mo_0123456789abcdef_00".into(),
                user: Some("alice".into()),
                ..Profile::default()
            },
        );
        save(&path, &config).unwrap();
        assert_eq!(load(&path).unwrap(), config);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "[profiles.x]\nserver = 1\n").unwrap();
        let e = load(&path).unwrap_err();
        assert!(format!("{e:#}").contains("config.toml"), "{e:#}");
    }
}
