//! N SSH consoles to one OpenSSH sshd on loopback: time until every link is logged in with a
//! shell, and until every shell has answered. Issue target: 100 consoles in < 3 s.
//!
//! The benchmark starts its own sshd (mo_testsupport's [`Sshd`], `/usr/sbin/sshd -D`) on a free
//! loopback port with keys made by `ssh-keygen` in a temporary directory, and logs in as the user
//! running it (key authentication; root is allowed `prohibit-password`). It stops exactly the
//! sshd it started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::link::{Connector, Link};
use mo_drivers::{Credentials, DriverOptions, connector_for};
use mo_testsupport::{Sshd, SshdConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Options of `mo-bench ssh-connect`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// SSH consoles to connect at once.
    #[arg(long, default_value_t = 100)]
    pub consoles: usize,
}

/// Connect `o.consoles` SSH consoles to a fresh sshd at once and print the figures.
pub async fn run(o: Opts) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("mo-bench-ssh-").tempdir()?;
    let user = whoami()?;
    let sshd = Sshd::start_with(tmp.path(), SshdConfig::key_only(&user))?;
    let result = measure(&o, &sshd).await;
    if result.is_err() {
        eprintln!("sshd log:\n{}", sshd.log());
    }
    // Only the sshd started above is stopped (by its pid, on drop); sessions ended with the links.
    result
}

async fn measure(o: &Opts, sshd: &Sshd) -> anyhow::Result<()> {
    let port = sshd.port();
    let opts = DriverOptions::new()
        .with_known_hosts(sshd.known_hosts("known_hosts")?)
        .with_credentials(Credentials::new().with_private_key(sshd.client_key().to_owned()));
    let connector: Arc<dyn Connector> = connector_for(&sshd.address(""), &opts)?;
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
