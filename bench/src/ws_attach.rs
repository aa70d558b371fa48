//! Attach-to-first-byte latency over the HTTP API's WebSocket: connect, upgrade, hello, and the
//! first bytes of the replayed output of a running console.

use std::time::{Duration, Instant};

use anyhow::bail;
use mo_core::console::Mode;
use mo_core::facade::Output;

use crate::common::{free_port, quantile, sorted, start_daemon};

/// Options of `mo-bench ws-attach`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Attaches to time (one after another).
    #[arg(long, default_value_t = 300)]
    attaches: usize,
    /// The `mod` binary (default: next to this program).
    #[arg(long)]
    daemon: Option<std::path::PathBuf>,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let bin = match o.daemon {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("mod"),
    };
    let tmp = tempfile::tempdir()?;
    let data = mo_store::DataDir::open(tmp.path())?;
    let store = data.open_store()?;
    store.add_device(&mo_store::Device::new("web01", "sim://web01?boot=fast"))?;
    store.add_user("bench", Some("bench-password"))?;
    store.add_grant(&mo_core::policy::Grant::to_user("bench", "admin", "all"))?;
    let token = store.add_token("bench", mo_store::TokenScope::All, None)?;
    drop(store);
    let (ssh, http) = (free_port()?, free_port()?);
    let _daemon = start_daemon(
        &bin,
        tmp.path(),
        &[
            "--ssh".into(),
            format!("127.0.0.1:{ssh}"),
            "--http".into(),
            format!("127.0.0.1:{http}"),
        ],
    )?;
    let client = mo_client::Client::new(&format!("http://127.0.0.1:{http}"), token.token.expose())?;

    // Wait until the sim is at its login prompt, so every attach has output to replay.
    let warm = Instant::now();
    loop {
        let con = client.attach("web01", Mode::Spy, Some(5)).await?;
        let mut seen = String::new();
        while let Ok(Output::Data(b)) =
            tokio::time::timeout(Duration::from_millis(300), con.read()).await
        {
            seen.push_str(&String::from_utf8_lossy(&b));
        }
        con.close().await?;
        if seen.contains("login:") {
            break;
        }
        if warm.elapsed() > Duration::from_secs(30) {
            bail!("web01 did not reach its login prompt: {seen:?}");
        }
    }

    let mut samples = Vec::with_capacity(o.attaches);
    for i in 0..o.attaches {
        let t = Instant::now();
        let con = client.attach("web01", Mode::Spy, Some(5)).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), con.read()).await {
                Ok(Output::Data(_)) => break,
                Ok(Output::Closed(why)) => bail!("attach {i}: closed: {why}"),
                Ok(_) => {}
                Err(_) => bail!("attach {i}: no output within 5 s"),
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        con.close().await?;
    }
    let s = sorted(samples);
    println!(
        "ws-attach: WebSocket connect + upgrade + hello + first replayed byte, {} attaches",
        s.len()
    );
    println!(
        "  p50 {:.3} ms   p99 {:.3} ms   max {:.3} ms",
        quantile(&s, 0.5),
        quantile(&s, 0.99),
        s.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
