//! Keystroke round trip through mod's SSH front door. The device is `cat` on a pty put in raw
//! mode without echo (`stty raw -echo`), so each keystroke comes back from the program, not from
//! the kernel's line discipline.

use crate::common::{free_port, quantile, sorted, start_daemon};
use crate::echo::{EchoConsole, host_key};

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
    let mut console =
        EchoConsole::open(port, &host_key(&data)?, "bench:echo", "bench-password").await?;
    let mut samples = Vec::with_capacity(o.keys);
    for i in 0..o.keys {
        samples.push(console.time_key(b'a' + (i % 26) as u8).await?);
    }
    console.check()?;
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
    console.close().await;
    Ok(())
}
