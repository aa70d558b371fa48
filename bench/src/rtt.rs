//! Keystroke round trip through mod's SSH front door. The device is `cat` on a pty put in raw
//! mode without echo (`stty raw -echo`), so each keystroke comes back from the program, not from
//! the kernel's line discipline. Timed through mo-bench's own SSH client (russh) and through the
//! stock OpenSSH client (`ssh -t` on a raw pty this program holds, keystrokes written into its
//! master), one after the other in the same run against the same daemon.

use crate::common::{free_port, quantile, sorted, start_daemon};
use crate::echo::{Echo, EchoConsole, OpenSshEcho, Terminal, host_key};

/// Options of `mo-bench rtt`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Keystrokes to time (with each client).
    #[arg(long, default_value_t = 2000)]
    keys: usize,
    /// Which SSH client types: `russh` (mo-bench's own), `openssh` (the stock `ssh` on a pty), or
    /// `both`, one after the other.
    #[arg(long, value_enum, default_value_t = Client::Both)]
    client: Client,
    /// The `mod` binary (default: next to this program).
    #[arg(long)]
    daemon: Option<std::path::PathBuf>,
}

/// The clients of `--client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Client {
    /// mo-bench's own (russh).
    Russh,
    /// The stock `ssh` on a pty.
    Openssh,
    /// One after the other.
    Both,
}

/// The echoing device: the pty in raw mode without the kernel's echo, then `cat` echoes.
const DEVICE: &str = "exec:///bin/sh?arg=-c&arg=stty+raw+-echo%3B+exec+cat";
/// The user who types, and their password.
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let bin = match o.daemon {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("mod"),
    };
    let tmp = tempfile::tempdir()?;
    let data = mo_store::DataDir::open(tmp.path())?;
    let store = data.open_store()?;
    store.add_device(&mo_store::Device::new("echo", DEVICE))?;
    store.add_user(USER, Some(PASSWORD))?;
    // Deny by default: the user needs a role on the device to attach.
    store.add_grant(&mo_core::policy::Grant::to_user(USER, "operator", "all"))?;
    drop(store);
    let port = free_port()?;
    let _daemon = start_daemon(
        &bin,
        tmp.path(),
        &["--ssh".into(), format!("127.0.0.1:{port}")],
    )?;
    println!(
        "rtt: keystroke -> SSH -> mod -> cat on a raw pty (stty raw -echo) echoes it -> SSH, {} \
         keys per client",
        o.keys
    );
    if o.client != Client::Openssh {
        let login = format!("{USER}:echo");
        let mut console = EchoConsole::open(port, &host_key(&data)?, &login, PASSWORD).await?;
        let result = time_keys(&mut console, o.keys).await;
        console.close().await;
        report("russh (mo-bench's client)", &result?);
    }
    if o.client != Client::Russh {
        let mut console = OpenSshEcho::open(tmp.path(), port, USER, "echo", PASSWORD).await?;
        let result = time_keys(&mut console, o.keys).await;
        console.close().await;
        report(
            "OpenSSH client (ssh -t on a raw pty; keystroke into its master)",
            &result?,
        );
    }
    Ok(())
}

/// Time `keys` keystrokes, then check each came back once, in order. Returns the sorted
/// round trips in milliseconds.
async fn time_keys<T: Terminal>(console: &mut Echo<T>, keys: usize) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        samples.push(console.time_key(b'a' + (i % 26) as u8).await?);
    }
    console.check()?;
    Ok(sorted(samples))
}

fn report(client: &str, s: &[f64]) {
    println!("  {client}:");
    println!(
        "    p50 {:.3} ms (target <= 0.3)   p99 {:.3} ms (target <= 1)   max {:.3} ms",
        quantile(s, 0.5),
        quantile(s, 0.99),
        s.last().copied().unwrap_or(f64::NAN)
    );
}
