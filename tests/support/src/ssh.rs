//! The OpenSSH client pointed at mo's front door: password logins through an `SSH_ASKPASS`
//! script, key logins with a generated ed25519 key, never touching the user's own ssh config.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{CmdOutput, Peer, run_with_timeout};

/// An ed25519 key pair made with `ssh-keygen -t ed25519 -N ''`.
#[derive(Debug, Clone)]
pub struct SshKey {
    /// The private key file.
    pub private: PathBuf,
    /// The public key file (`<private>.pub`).
    pub public: PathBuf,
}

impl SshKey {
    /// Generate `DIR/NAME` and `DIR/NAME.pub`.
    pub fn generate(dir: &Path, name: &str) -> Result<SshKey> {
        let private = dir.join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private);
        run_with_timeout(cmd, None, Duration::from_secs(30))?.ok()?;
        let public = dir.join(format!("{name}.pub"));
        Ok(SshKey { private, public })
    }
}

/// How the client proves who it is.
#[derive(Debug, Clone)]
enum Auth {
    /// Password given by the askpass script at this path.
    Password(PathBuf),
    /// Only this key.
    Key(PathBuf),
}

/// Which front-door target to log in to.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// `user@host`: the command shell (or a remote command).
    Shell,
    /// `user:NAME@host`: attach to console NAME directly.
    Attach(&'a str),
    /// `user:NAME:spy@host`: spy on console NAME directly.
    Spy(&'a str),
}

/// Whether the client asks for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tty {
    /// `-t`: ask for a pty (inside tmux, where there is a terminal).
    Yes,
    /// `-T`: no pty; plain pipes.
    No,
}

/// Credentials for one user at one front door (`127.0.0.1:port`).
#[derive(Debug, Clone)]
pub struct SshClient {
    port: u16,
    user: String,
    auth: Auth,
    /// Source address to connect from (`ssh -b`), e.g. `127.0.0.2`.
    bind: Option<String>,
}

impl SshClient {
    /// How long a non-interactive `ssh` run may take.
    pub const TIMEOUT: Duration = Duration::from_secs(60);

    /// Log in as `user` with `password`, supplied by an askpass script written into `dir`.
    pub fn with_password(dir: &Path, port: u16, user: &str, password: &str) -> Result<SshClient> {
        static SCRIPTS: AtomicU32 = AtomicU32::new(0);
        let n = SCRIPTS.fetch_add(1, Ordering::Relaxed);
        let clean: String = user.chars().filter(char::is_ascii_alphanumeric).collect();
        let script = dir.join(format!("askpass-{clean}-{n}.sh"));
        let body = format!("#!/bin/sh\nprintf '%s\\n' {}\n", shell_quote(password));
        std::fs::write(&script, body)
            .and_then(|()| {
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| Error::io(format!("write askpass script {}", script.display()), e))?;
        Ok(SshClient {
            port,
            user: user.to_string(),
            auth: Auth::Password(script),
            bind: None,
        })
    }

    /// Log in as `user` with the private key `key` only (no password fallback).
    pub fn with_key(port: u16, user: &str, key: &SshKey) -> SshClient {
        SshClient {
            port,
            user: user.to_string(),
            auth: Auth::Key(key.private.clone()),
            bind: None,
        }
    }

    /// The same client, connecting from source address `ip` (a loopback alias such as
    /// `127.0.0.2` looks like another host to the daemon).
    pub fn from_address(mut self, ip: &str) -> SshClient {
        self.bind = Some(ip.to_string());
        self
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The front door's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login part before `@` for `login`.
    pub fn login_name(&self, login: Login<'_>) -> String {
        match login {
            Login::Shell => self.user.clone(),
            Login::Attach(name) => format!("{}:{name}", self.user),
            Login::Spy(name) => format!("{}:{name}:spy", self.user),
        }
    }

    /// Environment the client needs (askpass settings for password logins).
    pub fn env(&self) -> Vec<(String, String)> {
        match &self.auth {
            Auth::Password(script) => vec![
                ("SSH_ASKPASS".into(), script.display().to_string()),
                ("SSH_ASKPASS_REQUIRE".into(), "force".into()),
                ("DISPLAY".into(), "none".into()),
            ],
            Auth::Key(_) => Vec::new(),
        }
    }

    /// The full argv: `ssh [options] -p PORT LOGIN@127.0.0.1 [remote...]`.
    pub fn argv(&self, login: Login<'_>, tty: Tty, remote: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = ["ssh", "-F", "/dev/null", "-e", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut opt = |o: &str| {
            argv.push("-o".into());
            argv.push(o.into());
        };
        opt("StrictHostKeyChecking=no");
        opt("UserKnownHostsFile=/dev/null");
        opt("GlobalKnownHostsFile=/dev/null");
        opt("LogLevel=ERROR");
        opt("ConnectTimeout=20");
        opt("NumberOfPasswordPrompts=1");
        if let Some(ip) = &self.bind {
            opt(&format!("BindAddress={ip}"));
        }
        match &self.auth {
            Auth::Password(_) => {
                opt("PubkeyAuthentication=no");
                opt("PreferredAuthentications=password,keyboard-interactive");
            }
            Auth::Key(key) => {
                opt("PasswordAuthentication=no");
                opt("KbdInteractiveAuthentication=no");
                opt("PreferredAuthentications=publickey");
                opt("IdentitiesOnly=yes");
                opt("BatchMode=yes");
                opt(&format!("IdentityFile={}", key.display()));
            }
        }
        argv.push(match tty {
            Tty::Yes => "-t".into(),
            Tty::No => "-T".into(),
        });
        argv.push("-p".into());
        argv.push(self.port.to_string());
        argv.push(format!("{}@127.0.0.1", self.login_name(login)));
        argv.extend(remote.iter().map(|s| s.to_string()));
        argv
    }

    /// A ready-to-run `ssh` command (no terminal, `-T`).
    pub fn command(&self, login: Login<'_>, remote: &[&str]) -> Command {
        let argv = self.argv(login, Tty::No, remote);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).envs(self.env());
        cmd.env_remove("SSH_AUTH_SOCK");
        cmd
    }

    /// Run `ssh -T ... LOGIN@127.0.0.1 REMOTE...` to completion with `stdin` as input.
    pub fn run(&self, login: Login<'_>, remote: &[&str], stdin: Option<&str>) -> Result<CmdOutput> {
        run_with_timeout(
            self.command(login, remote),
            stdin.map(str::as_bytes),
            Self::TIMEOUT,
        )
    }

    /// Start `ssh -T ...` with piped stdin and stdout (stderr to `log`), for a test that feeds
    /// and reads (or deliberately never reads) the session.
    pub fn spawn(&self, login: Login<'_>, remote: &[&str], log: &Path) -> Result<Peer> {
        let mut cmd = self.command(login, remote);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let err = crate::process::append_file(log)?;
        cmd.stderr(err);
        Peer::spawn(&format!("ssh {}", self.login_name(login)), cmd, None)
    }
}

/// Quote `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn askpass_script_prints_the_password() -> Result<()> {
        let dir = crate::ports::temp_dir("askpass")?;
        let c = SshClient::with_password(dir.path(), 2222, "alice", "it's s3cret")?;
        let Auth::Password(script) = &c.auth else {
            return Err(Error::Check("password client without askpass".into()));
        };
        let out = run_with_timeout(Command::new(script), None, Duration::from_secs(5))?.ok()?;
        assert_eq!(out.stdout, "it's s3cret\n");
        Ok(())
    }

    #[test]
    fn logins_name_the_console() -> Result<()> {
        let dir = crate::ports::temp_dir("login")?;
        let c = SshClient::with_password(dir.path(), 2222, "bob", "x")?;
        let argv = c.argv(Login::Spy("web01"), Tty::No, &["who"]);
        assert_eq!(argv[argv.len() - 2], "bob:web01:spy@127.0.0.1");
        assert_eq!(argv[argv.len() - 1], "who");
        assert!(argv.contains(&"-T".to_string()));
        Ok(())
    }

    #[test]
    fn keygen_makes_a_pair() -> Result<()> {
        let dir = crate::ports::temp_dir("keygen")?;
        let key = SshKey::generate(dir.path(), "carol")?;
        let public = std::fs::read_to_string(&key.public).map_err(|e| Error::io("read pub", e))?;
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        Ok(())
    }
}
