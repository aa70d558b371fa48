//! Power-cycle a device while its console stays open, and capture the boot from the first byte
//! until the login prompt. Needs a daemon whose device has a power controller:
//!
//! `MO_SERVER=http://127.0.0.1:8022 MO_TOKEN=… cargo run -p mo-examples --example power-cycle-capture -- web01`

use std::time::Duration;

use mo_client::{Client, PowerAction};
use mo_core::automation::ExpectPattern;
use mo_core::console::Mode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let device = std::env::args().nth(1).unwrap_or_else(|| "web01".into());
    let server = std::env::var("MO_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8022".into());
    let client = Client::new(&server, std::env::var("MO_TOKEN").unwrap_or_default())?;

    // Spy first, so nothing of the boot is missed; then switch the power.
    let console = client.attach(&device, Mode::Spy, Some(0)).await?;
    let report = client.power(&device, PowerAction::Cycle).await?;
    println!("power cycle of {device}: {report:?}");

    let boot = console
        .expect(
            &[ExpectPattern::regex(r"login: ?$")?],
            Duration::from_secs(300),
        )
        .await?;
    println!(
        "captured {} bytes of boot output before `{}` ({} bytes missed):\n{}",
        boot.before.len(),
        boot.matched,
        boot.missed,
        boot.before
    );
    console.close().await?;
    Ok(())
}
