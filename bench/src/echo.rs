//! A console that echoes every keystroke, reached through mod's SSH front door: what `rtt` and
//! `agent` time keystrokes on, through mo-bench's own SSH client (russh, [`EchoConsole`]) or the
//! stock OpenSSH client on a pty ([`OpenSshEcho`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mo_testsupport::{Login, SshClient, Tty};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};

use crate::pty::{self, Master};

struct Client {
    host_key: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.host_key.key_data()),
        )
    }
}

/// The two ends of a session with an echoing console: keystrokes go in, their echo comes out.
pub trait Terminal {
    /// Send `bytes` (keystrokes).
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = anyhow::Result<()>>;
    /// The next bytes that come back (possibly none, for a message that carries no output);
    /// `None` when the session has ended. Cancel-safe.
    fn recv(&mut self) -> impl Future<Output = anyhow::Result<Option<Vec<u8>>>>;
}

/// A session attached to an echoing console; keeps every keystroke sent and every byte echoed,
/// so that [`Echo::check`] can tell that each came back once, in order.
pub struct Echo<T> {
    io: T,
    sent: Vec<u8>,
    echoed: Vec<u8>,
}

/// An SSH session of mo-bench's own client (russh).
pub struct Russh {
    _handle: client::Handle<Client>,
    ch: russh::Channel<client::Msg>,
}

impl Terminal for Russh {
    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        Ok(self.ch.data_bytes(bytes.to_vec()).await?)
    }

    async fn recv(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.ch.wait().await.map(|msg| match msg {
            ChannelMsg::Data { data } => data.to_vec(),
            _ => Vec::new(),
        }))
    }
}

/// An echoing console through mo-bench's own SSH client.
pub type EchoConsole = Echo<Russh>;

/// The public host key of the daemon whose data directory is `data`.
pub fn host_key(data: &mo_store::DataDir) -> anyhow::Result<PublicKey> {
    Ok(russh::keys::load_secret_key(data.host_key_path(), None)?
        .public_key()
        .clone())
}

impl EchoConsole {
    /// Log in to mod on 127.0.0.1:`port` as `login` (`USER:DEVICE`) with `password`, and wait
    /// until the console echoes on a raw line (see [`Echo::wait_ready`]).
    pub async fn open(
        port: u16,
        host_key: &PublicKey,
        login: &str,
        password: &str,
    ) -> anyhow::Result<EchoConsole> {
        let config = Arc::new(client::Config {
            nodelay: true,
            ..Default::default()
        });
        let client = Client {
            host_key: host_key.clone(),
        };
        let mut handle = client::connect(config, ("127.0.0.1", port), client).await?;
        let auth = handle.authenticate_password(login, password).await?;
        if !auth.success() {
            bail!("login as {login} refused");
        }
        let ch = handle.channel_open_session().await?;
        ch.request_pty(true, "xterm", 80, 24, 0, 0, &[]).await?;
        ch.request_shell(true).await?;
        Echo::ready(
            Russh {
                _handle: handle,
                ch,
            },
            login,
        )
        .await
    }

    /// Close the channel.
    pub async fn close(self) {
        let _ = self.io.ch.close().await;
    }
}

/// The stock OpenSSH client (`ssh -t`) running on a pty this program holds: keystrokes are
/// written into the pty's master, as a terminal emulator would, and the echo read from it.
pub struct OpenSsh {
    master: Master,
    child: tokio::process::Child,
    buf: Vec<u8>,
}

impl Terminal for OpenSsh {
    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        Ok(self.master.write_all(bytes).await?)
    }

    async fn recv(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let n = self.master.read(&mut self.buf).await?;
        Ok((n > 0).then(|| self.buf.get(..n).unwrap_or_default().to_vec()))
    }
}

/// An echoing console through the stock OpenSSH client.
pub type OpenSshEcho = Echo<OpenSsh>;

impl OpenSshEcho {
    /// Run `ssh -t USER:DEVICE@127.0.0.1 -p PORT` (no config file, no known hosts, the password
    /// from an askpass script written into `dir`) on a new pty in raw mode, so that the local
    /// line discipline passes the keystrokes straight on (ssh sets its terminal raw too), and
    /// wait until the console echoes on a raw line (see [`Echo::wait_ready`]).
    pub async fn open(
        dir: &Path,
        port: u16,
        user: &str,
        device: &str,
        password: &str,
    ) -> anyhow::Result<OpenSshEcho> {
        let client = SshClient::with_password(dir, port, user, password)?;
        let argv = client.argv(Login::Attach(device), Tty::Yes, &[]);
        let (master, slave) = pty::open()?;
        pty::set_raw(&slave)?;
        let (program, args) = argv.split_first().context("empty ssh command")?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(client.env())
            .env_remove("SSH_AUTH_SOCK");
        let child = pty::spawn_on(command, slave)
            .context("cannot start ssh (apt-get install openssh-client)")?;
        let login = client.login_name(Login::Attach(device));
        Echo::ready(
            OpenSsh {
                master,
                child,
                buf: vec![0; 4096],
            },
            &login,
        )
        .await
    }

    /// End the client.
    pub async fn close(mut self) {
        let _ = self.io.child.kill().await;
    }
}

impl<T: Terminal> Echo<T> {
    /// Wait until the console on `io` echoes on a raw line: a ^A comes back as the byte itself
    /// only from a program echoing a raw line (a cooked line discipline would hold it until a
    /// newline and echo it as `^A`; without echo it sends nothing).
    async fn ready(io: T, login: &str) -> anyhow::Result<Echo<T>> {
        let mut echo = Echo {
            io,
            sent: Vec::new(),
            echoed: Vec::new(),
        };
        let ready = Instant::now();
        let mut seen = Vec::new();
        'ready: loop {
            if ready.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{login}: the console did not echo on a raw line: {:?}",
                    String::from_utf8_lossy(&seen)
                );
            }
            echo.io.send(b"\x01").await?;
            let deadline = Instant::now() + Duration::from_secs(1);
            while let Ok(got) = tokio::time::timeout_at(deadline.into(), echo.io.recv()).await {
                let Some(data) = got? else {
                    bail!(
                        "{login}: the session ended: {:?}",
                        String::from_utf8_lossy(&seen)
                    );
                };
                seen.extend_from_slice(&data);
                if data.contains(&1) {
                    break 'ready;
                }
            }
        }
        // Let late answers to the other probes arrive before timing.
        let settle = Instant::now() + Duration::from_millis(200);
        loop {
            match tokio::time::timeout_at(settle.into(), echo.io.recv()).await {
                Ok(Ok(Some(_))) => {}
                Ok(Err(e)) => return Err(e),
                Ok(Ok(None)) | Err(_) => break,
            }
        }
        Ok(echo)
    }

    /// Send `key` and wait for its echo: the round trip in milliseconds.
    pub async fn time_key(&mut self, key: u8) -> anyhow::Result<f64> {
        self.sent.push(key);
        let t = Instant::now();
        self.io.send(&[key]).await?;
        while self.echoed.len() < self.sent.len() {
            match tokio::time::timeout(Duration::from_secs(5), self.io.recv()).await {
                Ok(Ok(Some(data))) => self.echoed.extend_from_slice(&data),
                Ok(Ok(None)) => bail!("the session ended"),
                Ok(Err(e)) => return Err(e),
                Err(_) => bail!("no echo for keystroke {} within 5 s", self.sent.len()),
            }
        }
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    /// Every keystroke echoed once, in order, and nothing else (a cooked line would add its own).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.echoed != self.sent {
            let at = self
                .echoed
                .iter()
                .zip(&self.sent)
                .take_while(|(a, b)| a == b)
                .count();
            bail!(
                "echo differs from the keystrokes at byte {at} of {}: {:?}",
                self.sent.len(),
                String::from_utf8_lossy(
                    self.echoed
                        .get(at..self.echoed.len().min(at + 40))
                        .unwrap_or_default()
                )
            );
        }
        Ok(())
    }
}
