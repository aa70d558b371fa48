//! Follow the events of a daemon as they are raised (patterns, link up/down, power, files).
//!
//! `MO_SERVER=http://127.0.0.1:8022 MO_TOKEN=… cargo run -p mo-examples --example follow-events -- [DEVICE]`

use futures_util::StreamExt as _;
use mo_client::Client;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let device = std::env::args().nth(1);
    let server = std::env::var("MO_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8022".into());
    let client = Client::new(&server, std::env::var("MO_TOKEN").unwrap_or_default())?;
    let mut events = client.event_stream(device.as_deref()).await?;
    while let Some(event) = events.next().await {
        let e = event?;
        println!(
            "{} #{} {} {} [{}] {}",
            e.time, e.id, e.severity, e.device, e.name, e.text
        );
    }
    Ok(())
}
