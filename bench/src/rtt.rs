//! Keystroke round trip through mod's SSH front door. The device is `cat` on a pty put in raw
//! mode without echo (`stty raw -echo`), so each keystroke comes back from the program, not from
//! the kernel's line discipline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use russh::ChannelMsg;
use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use crate::common::{free_port, quantile, sorted, start_daemon};

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

/// The echoing device: the pty in raw mode without the kernel's echo, then `cat` echoes.
const DEVICE: &str = "exec:///bin/sh?arg=-c&arg=stty+raw+-echo%3B+exec+cat";

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let bin = match o.daemon {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("mod"),
    };
    let tmp = tempfile::tempdir()?;
    let data = mo_store::DataDir::open(tmp.path())?;
    let store = data.open_store()?;
    store.add_device(&mo_store::Device::new("echo", DEVICE))?;
    store.add_user("bench", Some("bench-password"))?;
    // Deny by default: the user needs a role on the device to attach.
    store.add_grant(&mo_core::policy::Grant::to_user("bench", "operator", "all"))?;
    drop(store);
    let port = free_port()?;
    let _daemon = start_daemon(
        &bin,
        tmp.path(),
        &["--ssh".into(), format!("127.0.0.1:{port}")],
    )?;
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
    // Wait until the console is attached and cat runs on a raw pty: a ^A comes back as the byte
    // itself only from cat in raw mode (the cooked line discipline would hold it until a newline
    // and echo it as `^A`; without echo it sends nothing).
    let ready = Instant::now();
    let mut seen = Vec::new();
    'ready: loop {
        if ready.elapsed() > Duration::from_secs(20) {
            bail!(
                "echo console did not answer on a raw pty: {:?}",
                String::from_utf8_lossy(&seen)
            );
        }
        ch.data_bytes(&b"\x01"[..]).await?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Ok(msg) = tokio::time::timeout_at(deadline.into(), ch.wait()).await {
            match msg {
                Some(ChannelMsg::Data { data }) => {
                    seen.extend_from_slice(&data);
                    if data.contains(&1) {
                        break 'ready;
                    }
                }
                Some(_) => {}
                None => bail!("channel closed"),
            }
        }
    }
    // Let late answers to the other probes arrive before timing.
    let settle = Instant::now() + Duration::from_millis(200);
    while let Ok(Some(_)) = tokio::time::timeout_at(settle.into(), ch.wait()).await {}
    let mut samples = Vec::with_capacity(o.keys);
    let mut sent = Vec::with_capacity(o.keys);
    let mut echoed = Vec::with_capacity(o.keys);
    for i in 0..o.keys {
        let key = b'a' + (i % 26) as u8;
        sent.push(key);
        let t = Instant::now();
        ch.data_bytes(vec![key]).await?;
        while echoed.len() < sent.len() {
            match tokio::time::timeout(Duration::from_secs(5), ch.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => echoed.extend_from_slice(&data),
                Ok(Some(_)) => {}
                Ok(None) => bail!("channel closed"),
                Err(_) => bail!("no echo for keystroke {i} within 5 s"),
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Every keystroke echoed once, in order, and nothing else (a cooked pty would add its own).
    if echoed != sent {
        let at = echoed.iter().zip(&sent).take_while(|(a, b)| a == b).count();
        bail!(
            "echo differs from the keystrokes at byte {at} of {}: {:?}",
            sent.len(),
            String::from_utf8_lossy(&echoed[at..echoed.len().min(at + 40)])
        );
    }
    let s = sorted(samples);
    println!(
        "rtt: keystroke -> SSH -> mod -> cat on a raw pty (stty raw -echo) echoes it -> SSH, {} keys",
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
