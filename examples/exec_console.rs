//! A program on a pty as a console: the link comes back by itself when the program dies.
//!
//! `cargo run -p mo-examples --example exec-console`

use std::time::Duration;

use mo_core::console::{Console, ConsoleConfig, Mode, ViewerEvent};
use mo_drivers::{DriverOptions, connector_for};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A tiny "device": prints a banner, echoes lines, exits on `die`.
    let url = "exec:///bin/sh?arg=-c&arg=echo%20device%20ready;%20while%20read%20l;%20do%20[%20%22$l%22%20=%20die%20]%20%26%26%20exit;%20echo%20got:$l;%20done";
    let device = connector_for(url, &DriverOptions::default())?;
    let mut cfg = ConsoleConfig::new("dev1");
    cfg.backoff_initial = Duration::from_millis(200);
    let console = Console::spawn(cfg, device, None);
    let mut me = console.attach("admin", Mode::Attach, None).await?;
    let mut ups = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), me.recv()).await? {
            ViewerEvent::Chunk(c) => {
                let text = String::from_utf8_lossy(&c.bytes).to_string();
                println!("{:>7}: {}", c.kind.name(), text.trim_end());
                if text.contains("device ready") {
                    ups += 1;
                    if ups == 1 {
                        me.write(b"hello\r").await?;
                        me.write(b"die\r").await?;
                    } else {
                        break;
                    }
                }
            }
            ViewerEvent::Missed { bytes, .. } => println!("missed {bytes} bytes"),
            ViewerEvent::Closed => break,
            _ => {}
        }
    }
    println!(
        "the device died and came back; state: {}",
        console.state().word()
    );
    Ok(())
}
