//! Keystroke round trip through mod's SSH front door.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use russh::ChannelMsg;
use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use crate::common::{quantile, sorted};

/// Options of `mo-bench rtt`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Keystrokes to time.
    #[arg(long, default_value_t = 2000)]
    keys: usize,
    /// The `mod` binary (default: next to this program).
    #[arg(long)]
    daemon: Option<std::path::PathBuf>,
}

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

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_daemon(bin: &Path, dir: &Path, port: u16) -> anyhow::Result<Daemon> {
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .arg("--ssh")
        .arg(format!("127.0.0.1:{port}"))
        .env("MO_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let daemon = Daemon(child);
    for line in lines.by_ref() {
        if line?.contains("listening on") {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(daemon);
        }
    }
    bail!("mod exited before listening")
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let bin = match o.daemon {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("mod"),
    };
    let tmp = tempfile::tempdir()?;
    let data = mo_store::DataDir::open(tmp.path())?;
    let store = data.open_store()?;
    store.add_device(&mo_store::Device::new("echo", "exec:///bin/cat"))?;
    store.add_user("bench", Some("bench-password"))?;
    drop(store);
    let port = free_port()?;
    let _daemon = start_daemon(&bin, tmp.path(), port)?;
    let host_key = russh::keys::load_secret_key(data.host_key_path(), None)?
        .public_key()
        .clone();

    let config = Arc::new(client::Config {
        nodelay: true,
        ..Default::default()
    });
    let mut handle = client::connect(config, ("127.0.0.1", port), Client { host_key }).await?;
    let auth = handle
        .authenticate_password("bench:echo", "bench-password")
        .await?;
    if !auth.success() {
        bail!("login as bench:echo refused");
    }
    let mut ch = handle.channel_open_session().await?;
    ch.request_pty(true, "xterm", 80, 24, 0, 0, &[]).await?;
    ch.request_shell(true).await?;
    // Wait until the console is attached and cat is running.
    let mut seen = Vec::new();
    let ready = Instant::now();
    ch.data_bytes(&b"ready\r"[..]).await?;
    while !String::from_utf8_lossy(&seen).contains("ready\r\nready") {
        if ready.elapsed() > Duration::from_secs(20) {
            bail!(
                "echo console did not answer: {:?}",
                String::from_utf8_lossy(&seen)
            );
        }
        match tokio::time::timeout(Duration::from_secs(1), ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => seen.extend_from_slice(&data),
            Ok(None) => bail!("channel closed"),
            _ => {}
        }
    }
    let mut samples = Vec::with_capacity(o.keys);
    for i in 0..o.keys {
        let key = b'a' + (i % 26) as u8;
        let t = Instant::now();
        ch.data_bytes(vec![key]).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ch.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) if data.contains(&key) => break,
                Ok(Some(_)) => {}
                Ok(None) => bail!("channel closed"),
                Err(_) => bail!("no echo for keystroke {i} within 5 s"),
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        if i % 60 == 59 {
            // End the line (not timed) so cat's own output does not pile up in one line.
            ch.data_bytes(&b"\r"[..]).await?;
            let settle = Instant::now() + Duration::from_millis(20);
            while let Ok(Some(_)) = tokio::time::timeout_at(settle.into(), ch.wait()).await {}
        }
    }
    let s = sorted(samples);
    println!(
        "rtt: keystroke -> SSH -> mod -> exec:///bin/cat on a pty -> echo -> SSH, {} keys",
        s.len()
    );
    println!(
        "  p50 {:.3} ms (target < 1)   p99 {:.3} ms (target < 5)   max {:.3} ms",
        quantile(&s, 0.5),
        quantile(&s, 0.99),
        s.last().copied().unwrap_or(f64::NAN)
    );
    let _ = ch.close().await;
    Ok(())
}
