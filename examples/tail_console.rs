//! Tail a console: print its output as it comes, read-only.
//!
//! Embedded (no daemon; the console lives in this process):
//! `cargo run -p mo-examples --example tail-console -- sim://lab1 10`
//!
//! On a daemon (`MO_SERVER` and `MO_TOKEN` set, as `mod --demo` prints them):
//! `cargo run -p mo-examples --example tail-console -- sim-01 10`
//!
//! The second argument is how many seconds to tail (default 10).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use mo_core::console::Mode;
use mo_core::facade::{ConsoleHandle, LocalOptions, Output, open_local};
use mo_drivers::{DriverOptions, connector_for};

/// Spy on `target`: a device on the daemon named by `MO_SERVER`, or else an address opened here.
async fn open(target: &str) -> anyhow::Result<ConsoleHandle> {
    if let Ok(server) = std::env::var("MO_SERVER") {
        let client =
            mo_client::Client::new(&server, std::env::var("MO_TOKEN").unwrap_or_default())?;
        return Ok(client.attach(target, Mode::Spy, Some(20)).await?);
    }
    let connector = connector_for(target, &DriverOptions::default())?;
    let name = target.split("://").nth(1).unwrap_or("console");
    let name = name.split(['?', '/', ':']).next().unwrap_or("console");
    Ok(open_local(
        name,
        Arc::clone(&connector),
        LocalOptions::default().mode(Mode::Spy),
    )
    .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "sim://lab1".into());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let console = open(&target).await?;
    eprintln!(
        "tailing {} as {} for {seconds} s",
        console.device(),
        console.info().role
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut out = std::io::stdout();
    loop {
        let Ok(item) = tokio::time::timeout_at(deadline, console.read()).await else {
            break;
        };
        match item {
            Output::Data(bytes) => {
                out.write_all(&bytes)?;
                out.flush()?;
            }
            Output::Notice(text) => eprintln!("[{text}]"),
            Output::Missed(n) => eprintln!("[missed {n} bytes]"),
            Output::Closed(why) => {
                eprintln!("[closed: {why}]");
                break;
            }
            _ => {}
        }
    }
    console.close().await?;
    Ok(())
}
