//! Measuring helpers shared by the benchmarks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mo_core::console::{Session, ViewerEvent};
use mo_drivers::sim::{SimConnector, SimOptions};

/// CPU seconds (user + system) this process has used.
pub fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// Resident memory of this process in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// Resident memory in bytes (VmRSS) of the process `pid` (a number, or `self`); 0 if gone.
pub fn rss_of(pid: &str) -> u64 {
    status_bytes(pid, "VmRSS:")
}

/// A memory figure of `/proc/PID/status` (`VmRSS:`, `RssFile:`, …) in bytes; 0 if absent.
pub fn status_bytes(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Turns `perf record` on or off for the measured window of the run `arm` (`mo`, or `bare` for
/// the bare reader): with `MO_BENCH_PERF_CTL` naming the control FIFO of `perf record -D -1
/// --control fifo:CTL[,ACK]`, writes `enable` or `disable` to it, so a profile holds only what a
/// benchmark's clock measures. `MO_BENCH_PERF_ARM` names the arm profiled (default `mo`). Does
/// nothing without `MO_BENCH_PERF_CTL`.
pub fn perf_window(arm: &str, on: bool) {
    let wanted = std::env::var("MO_BENCH_PERF_ARM").unwrap_or_else(|_| "mo".to_string());
    if wanted != arm {
        return;
    }
    if let Some(ctl) = std::env::var_os("MO_BENCH_PERF_CTL") {
        use std::io::Write as _;
        let word: &[u8] = if on { b"enable\n" } else { b"disable\n" };
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&ctl)
            .and_then(|mut f| f.write_all(word));
        if let Err(e) = written {
            eprintln!("MO_BENCH_PERF_CTL {}: {e}", ctl.to_string_lossy());
        }
    }
}

/// Raise the open-files limit to the hard limit (thousands of logs are open at once).
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A sim device connector (`sim://NAME?QUERY`).
pub fn sim(name: &str, query: &str) -> anyhow::Result<Arc<SimConnector>> {
    let url = url::Url::parse(&format!("sim://{name}?{query}"))?;
    Ok(Arc::new(SimConnector::new(
        name,
        SimOptions::from_query(&url)?,
    )))
}

/// Read the session's output until `want` appears.
pub async fn wait_for(session: &mut Session, want: &str, timeout: Duration) -> anyhow::Result<()> {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !seen.contains(want) {
        match tokio::time::timeout_at(deadline, session.recv()).await {
            Err(_) => bail!("`{want}` did not appear within {timeout:?}; saw {seen:?}"),
            Ok(ViewerEvent::Chunk(c)) if c.is_output() => {
                seen.push_str(&String::from_utf8_lossy(&c.bytes));
                if seen.len() > 8192 {
                    seen.drain(..seen.len() - 4096);
                }
            }
            Ok(ViewerEvent::Closed) => bail!("console closed while waiting for `{want}`"),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Log in to a sim console at its `login:` prompt and wait for the shell prompt.
pub async fn sim_login(session: &mut Session, name: &str) -> anyhow::Result<()> {
    let t = Duration::from_secs(60);
    let replay = String::from_utf8_lossy(&session.take_replay()).to_string();
    if !replay.contains("login: ") {
        wait_for(session, "login: ", t)
            .await
            .context("login prompt")?;
    }
    session.write(b"bench\r").await?;
    wait_for(session, "Password: ", t).await?;
    session.write(b"bench\r").await?;
    wait_for(session, &format!("{name}:~$ "), t).await?;
    Ok(())
}

/// The value at quantile `q` (0–1) of sorted samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sort samples for [`quantile`].
pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// A `mod` started by a benchmark; killed when dropped.
pub struct Daemon(std::process::Child);

impl Daemon {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on loopback, never the same twice in this process (mo_testsupport's).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(mo_testsupport::free_port()?)
}

/// Start `bin --data-dir DIR ARGS…` and wait until it says it is listening.
pub fn start_daemon(
    bin: &std::path::Path,
    dir: &std::path::Path,
    args: &[String],
) -> anyhow::Result<Daemon> {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("MO_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let daemon = Daemon(child);
    for line in lines.by_ref() {
        if line?.contains("listening on") {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(daemon);
        }
    }
    anyhow::bail!("mod exited before listening")
}

/// Stop every console and wait until each actor has ended (its final log sync done, its writer
/// closed); two minutes at most.
pub async fn stop_consoles<'a>(
    consoles: impl IntoIterator<Item = &'a mo_core::console::Console>,
) -> anyhow::Result<()> {
    let mut ended = tokio::task::JoinSet::new();
    for c in consoles {
        let mut state = c.watch_state();
        c.shutdown().await;
        ended.spawn(async move { while state.changed().await.is_ok() {} });
    }
    let all_ended = async {
        while let Some(r) = ended.join_next().await {
            r?;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all_ended)
        .await
        .map_err(|_| anyhow::anyhow!("console actors did not stop within 120 s"))?
}
