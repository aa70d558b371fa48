//! Two admins share one console of a simulated machine; every byte lands in the record log.
//!
//! `cargo run -p mo-examples --example shared-console`

use std::time::Duration;

use mo_core::console::{Console, ConsoleConfig, Mode, Session, ViewerEvent};
use mo_core::log::{LogOptions, LogWriter, ShowOptions, show};
use mo_drivers::{DriverOptions, connector_for};

/// Read output until `want` shows up.
async fn expect(s: &mut Session, want: &str) -> anyhow::Result<()> {
    let mut seen = String::from_utf8_lossy(&s.take_replay()).to_string();
    while !seen.contains(want) {
        match tokio::time::timeout(Duration::from_secs(10), s.recv()).await? {
            ViewerEvent::Chunk(c) if c.is_output() => {
                seen.push_str(&String::from_utf8_lossy(&c.bytes))
            }
            ViewerEvent::Chunk(c) => println!(
                "  {} sees {} by {}: {}",
                s.user(),
                c.kind.name(),
                c.user,
                String::from_utf8_lossy(&c.bytes)
            ),
            ViewerEvent::Missed { bytes, .. } => println!("  {} missed {bytes} bytes", s.user()),
            ViewerEvent::Closed => anyhow::bail!("console closed"),
            _ => {}
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (log, _) = LogWriter::open(dir.path(), LogOptions::default())?;
    let device = connector_for("sim://web01?boot=fast", &DriverOptions::default())?;
    let console = Console::spawn(ConsoleConfig::new("web01"), device, Some(Box::new(log)));

    let mut alice = console.attach("alice", Mode::Attach, None).await?;
    println!("alice: {}", alice.message());
    let bob = console.attach("bob", Mode::Attach, None).await?;
    println!("bob:   {}", bob.message());

    expect(&mut alice, "web01 login: ").await?;
    alice.write(b"root\r").await?;
    expect(&mut alice, "Password: ").await?;
    alice.write(b"secret\r").await?;
    expect(&mut alice, "web01:~$ ").await?;
    alice.write(b"uptime\r").await?;
    expect(&mut alice, "load average").await?;

    // bob takes over; alice is told.
    println!("bob:   {}", bob.set_mode(Mode::Force).await?);
    bob.write(b"echo bob was here\r").await?;
    expect(&mut alice, "bob was here\r\n").await?;
    for v in console.who().await? {
        println!("who:   {} {}", v.user, v.role.name());
    }
    drop((alice, bob));
    console.shutdown().await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    println!("\nthe record log, as `mo log show web01` prints it (last lines):");
    let mut out = Vec::new();
    show(dir.path(), &ShowOptions::default(), &mut out)?;
    let text = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines[lines.len().saturating_sub(12)..] {
        println!("{l}");
    }
    Ok(())
}
