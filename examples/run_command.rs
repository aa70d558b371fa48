//! Run a command on a device and capture its output with expect: log in to a simulated machine,
//! run `uptime`, print what it answered.
//!
//! `cargo run -p mo-examples --example run-command -- 'sim://web01?boot=fast' uptime`

use std::time::Duration;

use mo_core::automation::ExpectPattern;
use mo_core::facade::{LocalOptions, open_local};
use mo_drivers::{DriverOptions, connector_for};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sim://web01?boot=fast".into());
    let command = args.next().unwrap_or_else(|| "uptime".into());
    let connector = connector_for(&url, &DriverOptions::default())?;
    let console = open_local("web01", connector, LocalOptions::default().user("example")).await?;

    let wait = Duration::from_secs(30);
    let prompt = ExpectPattern::regex(r"[\w-]+:~\$ ")?;
    console
        .expect(&[ExpectPattern::literal("login: ")?], wait)
        .await?;
    console.send_line("root").await?;
    console
        .expect(&[ExpectPattern::literal("Password: ")?], wait)
        .await?;
    console.send_line("pw").await?;
    console.expect(std::slice::from_ref(&prompt), wait).await?;

    console.send_line(&command).await?;
    // Everything before the next prompt is the command's echo and its output.
    let answer = console.expect(&[prompt], wait).await?;
    let output: Vec<&str> = answer.before.lines().skip(1).collect();
    println!("{command} on {}:\n{}", console.device(), output.join("\n"));
    console.close().await?;
    Ok(())
}
