//! A console that echoes every keystroke, reached through mod's SSH front door: what `rtt` and
//! `agent` time keystrokes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};

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

/// An SSH session attached to an echoing console; keeps every keystroke sent and every byte
/// echoed, so that [`EchoConsole::check`] can tell that each came back once, in order.
pub struct EchoConsole {
    _handle: client::Handle<Client>,
    ch: russh::Channel<client::Msg>,
    sent: Vec<u8>,
    echoed: Vec<u8>,
}

/// The public host key of the daemon whose data directory is `data`.
pub fn host_key(data: &mo_store::DataDir) -> anyhow::Result<PublicKey> {
    Ok(russh::keys::load_secret_key(data.host_key_path(), None)?
        .public_key()
        .clone())
}

impl EchoConsole {
    /// Log in to mod on 127.0.0.1:`port` as `login` (`USER:DEVICE`) with `password`, and wait
    /// until the console echoes on a raw line: a ^A comes back as the byte itself only from a
    /// program echoing a raw line (a cooked line discipline would hold it until a newline and
    /// echo it as `^A`; without echo it sends nothing).
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
        let mut console = EchoConsole {
            _handle: handle,
            ch,
            sent: Vec::new(),
            echoed: Vec::new(),
        };
        console.wait_ready(login).await?;
        Ok(console)
    }

    async fn wait_ready(&mut self, login: &str) -> anyhow::Result<()> {
        let ready = Instant::now();
        let mut seen = Vec::new();
        'ready: loop {
            if ready.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{login}: the console did not echo on a raw line: {:?}",
                    String::from_utf8_lossy(&seen)
                );
            }
            self.ch.data_bytes(&b"\x01"[..]).await?;
            let deadline = Instant::now() + Duration::from_secs(1);
            while let Ok(msg) = tokio::time::timeout_at(deadline.into(), self.ch.wait()).await {
                match msg {
                    Some(ChannelMsg::Data { data }) => {
                        seen.extend_from_slice(&data);
                        if data.contains(&1) {
                            break 'ready;
                        }
                    }
                    Some(_) => {}
                    None => bail!("{login}: channel closed"),
                }
            }
        }
        // Let late answers to the other probes arrive before timing.
        let settle = Instant::now() + Duration::from_millis(200);
        while let Ok(Some(_)) = tokio::time::timeout_at(settle.into(), self.ch.wait()).await {}
        Ok(())
    }

    /// Send `key` and wait for its echo: the round trip in milliseconds.
    pub async fn time_key(&mut self, key: u8) -> anyhow::Result<f64> {
        self.sent.push(key);
        let t = Instant::now();
        self.ch.data_bytes(vec![key]).await?;
        while self.echoed.len() < self.sent.len() {
            match tokio::time::timeout(Duration::from_secs(5), self.ch.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => self.echoed.extend_from_slice(&data),
                Ok(Some(_)) => {}
                Ok(None) => bail!("channel closed"),
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
                String::from_utf8_lossy(&self.echoed[at..self.echoed.len().min(at + 40)])
            );
        }
        Ok(())
    }

    /// Close the channel.
    pub async fn close(self) {
        let _ = self.ch.close().await;
    }
}
