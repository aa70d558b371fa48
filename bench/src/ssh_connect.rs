//! N SSH consoles to one OpenSSH sshd on loopback: time until every link is logged in with a
//! shell, and until every shell has answered. Issue target: 100 consoles in < 3 s.
//!
//! The benchmark starts its own sshd (`/usr/sbin/sshd -D`) on a free loopback port with keys
//! made by `ssh-keygen` in a temporary directory, and logs in as the user running it (key
//! authentication; root is allowed `prohibit-password`). It stops exactly the sshd it started.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mo_core::link::{Connector, Link};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Debian installs sshd.
const SSHD: &str = "/usr/sbin/sshd";

/// Options of `mo-bench ssh-connect`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// SSH consoles to connect at once.
    #[arg(long, default_value_t = 100)]
    pub consoles: usize,
}

/// Connect `o.consoles` SSH consoles to a fresh sshd at once and print the figures.
pub async fn run(o: Opts) -> anyhow::Result<()> {
    if !Path::new(SSHD).exists() {
        bail!("{SSHD} is missing: apt-get install openssh-server");
    }
    let tmp = tempfile::Builder::new().prefix("mo-bench-ssh-").tempdir()?;
    let dir = tmp.path();
    // sshd reads authorized_keys as the user logging in.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::create_dir_all("/run/sshd").context("creating /run/sshd (sshd needs it)")?;
    let user = whoami()?;
    keygen(&dir.join("host_key"))?;
    let client_key = keygen(&dir.join("client_key"))?;
    std::fs::create_dir_all(dir.join("authorized_keys"))?;
    std::fs::copy(
        dir.join("client_key.pub"),
        dir.join("authorized_keys").join(&user),
    )?;
    let port = free_port()?;
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys/%u\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nAllowUsers {user}\n\
             MaxStartups 1000:30:1000\nUseDNS no\nPrintMotd no\nPrintLastLog no\nLogLevel ERROR\n",
            d = dir.display()
        ),
    )?;
    let mut sshd = tokio::process::Command::new(SSHD)
        .arg("-D")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting sshd")?;
    let result = measure(&o, dir, port, &user, client_key).await;
    if let Some(pid) = sshd.id() {
        // Only the sshd started above; sessions end when the links are dropped.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), sshd.wait()).await;
    if result.is_err() {
        let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        eprintln!("sshd log:\n{log}");
    }
    result
}

async fn measure(
    o: &Opts,
    dir: &Path,
    port: u16,
    user: &str,
    client_key: String,
) -> anyhow::Result<()> {
    wait_for_port(port).await?;
    let host_key = std::fs::read_to_string(dir.join("host_key.pub"))?;
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{port} {}\n", host_key.trim()),
    )?;
    let opts = DriverOptions::new()
        .with_known_hosts(&known_hosts)
        .with_credentials(Credentials::new().with_private_key(client_key));
    let connector: Arc<dyn Connector> =
        connector_for(&format!("ssh://{user}@127.0.0.1:{port}"), &opts)?;
    println!(
        "ssh-connect: {} SSH consoles to one sshd on 127.0.0.1:{port} (key login, pty + shell)",
        o.consoles
    );

    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(o.consoles);
    for _ in 0..o.consoles {
        let connector = Arc::clone(&connector);
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let link = connector.connect().await;
            (link, start.elapsed())
        }));
    }
    let mut links = Vec::with_capacity(o.consoles);
    let mut each = Vec::with_capacity(o.consoles);
    let mut failures = Vec::new();
    for task in tasks {
        let (link, took) = task.await?;
        match link {
            Ok(link) => {
                links.push(link);
                each.push(took.as_secs_f64());
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let all_connected = t0.elapsed();

    // Every shell answers: bytes go both ways on every link.
    let connected = links.len();
    let mut asks = Vec::with_capacity(connected);
    for (i, mut link) in links.into_iter().enumerate() {
        asks.push(tokio::spawn(async move {
            let outcome = ask(&mut link, i).await;
            (link, outcome)
        }));
    }
    let mut links = Vec::with_capacity(connected);
    let mut answered = 0;
    let mut unanswered = Vec::new();
    for task in asks {
        let (link, outcome) = task.await?;
        match outcome {
            Ok(()) => answered += 1,
            Err(why) => unanswered.push(why),
        }
        links.push(link);
    }
    let all_answered = t0.elapsed();

    each.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let idx = ((each.len().saturating_sub(1)) as f64 * p).round() as usize;
        each.get(idx).copied().unwrap_or(0.0) * 1000.0
    };
    println!(
        "  all {} connected in {:.2} s (target < 3 s); per connect p50 {:.0} ms, p95 {:.0} ms, \
         max {:.0} ms",
        links.len(),
        all_connected.as_secs_f64(),
        q(0.5),
        q(0.95),
        q(1.0)
    );
    println!(
        "  all shells answered `echo` after {:.2} s ({} of {} answered)",
        all_answered.as_secs_f64(),
        answered,
        links.len()
    );
    if !failures.is_empty() {
        failures.sort();
        failures.dedup();
        bail!(
            "{} of {} connects failed: {}",
            o.consoles - links.len(),
            o.consoles,
            failures.join("; ")
        );
    }
    if let Some(first) = unanswered.first() {
        bail!(
            "{} shells did not answer; the first: {first}",
            unanswered.len()
        );
    }
    Ok(())
}

/// How long one shell may take to show its prompt and answer (100 login shells starting at once
/// on a busy two-core machine take seconds each).
const ANSWER_LIMIT: Duration = Duration::from_secs(60);
/// Type the probe again when no answer came within this long (a login script may have read and
/// dropped type-ahead).
const RETYPE_AFTER: Duration = Duration::from_secs(5);

/// Wait for the shell's first output (its prompt), type `echo mo-N-$((N+1))` and wait for the
/// computed answer, typing it again now and then. The error says what the shell showed.
async fn ask(link: &mut Link, n: usize) -> Result<(), String> {
    let want = format!("mo-{n}-{}", n + 1);
    let line = format!("echo mo-{n}-$(({n}+1))\n");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + ANSWER_LIMIT;
    let shown = |seen: &[u8]| {
        let tail = seen.len().saturating_sub(200);
        String::from_utf8_lossy(seen.get(tail..).unwrap_or_default()).into_owned()
    };
    // The prompt first: typing into a shell that is still starting races its login scripts.
    match tokio::time::timeout_at(deadline, link.reader.read(&mut buf)).await {
        Ok(Ok(got)) if got > 0 => seen.extend_from_slice(buf.get(..got).unwrap_or_default()),
        Ok(Ok(_)) => return Err(format!("console {n}: the session ended before any output")),
        Ok(Err(e)) => return Err(format!("console {n}: read failed before any output: {e}")),
        Err(_) => return Err(format!("console {n}: no prompt within {ANSWER_LIMIT:?}")),
    }
    let mut typed_at = None;
    while !String::from_utf8_lossy(&seen).contains(&want) {
        let now = tokio::time::Instant::now();
        if typed_at.is_none_or(|at| now >= at + RETYPE_AFTER) {
            // Links buffer like any AsyncWrite: flush, as the console actor does.
            let written = match link.writer.write_all(line.as_bytes()).await {
                Ok(()) => link.writer.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                return Err(format!("console {n}: write failed: {e}"));
            }
            typed_at = Some(now);
        }
        let wake = typed_at.map_or(deadline, |at| (at + RETYPE_AFTER).min(deadline));
        match tokio::time::timeout_at(wake, link.reader.read(&mut buf)).await {
            Ok(Ok(got)) if got > 0 => seen.extend_from_slice(buf.get(..got).unwrap_or_default()),
            Ok(Ok(_)) => {
                return Err(format!(
                    "console {n}: the session ended; it showed {:?}",
                    shown(&seen)
                ));
            }
            Ok(Err(e)) => return Err(format!("console {n}: read failed: {e}")),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "console {n}: no answer within {ANSWER_LIMIT:?}; it showed {:?}",
                    shown(&seen)
                ));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// The user running the benchmark.
fn whoami() -> anyhow::Result<String> {
    let out = std::process::Command::new("id").arg("-un").output()?;
    let name = String::from_utf8(out.stdout)?.trim().to_owned();
    if name.is_empty() {
        bail!("`id -un` gave no user name");
    }
    Ok(name)
}

/// `ssh-keygen -t ed25519` without a passphrase; returns the private key text.
fn keygen(path: &Path) -> anyhow::Result<String> {
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "mo-bench", "-f"])
        .arg(path)
        .status()
        .context("running ssh-keygen (apt-get install openssh-client)")?;
    if !status.success() {
        bail!("ssh-keygen failed: {status}");
    }
    Ok(std::fs::read_to_string(path)?)
}

/// A loopback port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Wait until sshd accepts connections.
async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("sshd did not start listening on 127.0.0.1:{port}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
