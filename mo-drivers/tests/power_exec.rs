//! The `exec` power controller with a real script, and group operations over exec controllers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/powerscript.rs"]
mod powerscript;

use std::time::{Duration, Instant};

use anyhow::Result;
use mo_core::power::{GroupOperation, PowerAction, PowerState};
use mo_drivers::DriverOptions;
use mo_drivers::power::power_controller_for;
use powerscript::controller;

#[tokio::test]
async fn exec_switches_and_reads_status() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let web = controller(dir.path(), "web1")?;
    assert_eq!(web.status().await?, PowerState::Off);
    web.perform(PowerAction::On).await?;
    assert_eq!(web.status().await?, PowerState::On);
    web.perform(PowerAction::SoftOff).await?;
    assert_eq!(web.status().await?, PowerState::Off);

    let broken = controller(dir.path(), "broken1")?;
    let err = broken
        .perform(PowerAction::On)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("on failed") && err.contains("exit status: 3") && err.contains("relay stuck"),
        "{err}"
    );
    assert!(err.contains("device=broken1"), "{err}");

    let slow = controller(dir.path(), "slow1")?;
    let started = Instant::now();
    let err = slow.perform(PowerAction::Off).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, mo_core::Error::Timeout { .. }), "{err}");

    let err = power_controller_for(
        "exec:///nonexistent/ctl?arg={action}",
        &DriverOptions::default(),
    )?
    .status()
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot start /nonexistent/ctl"), "{err}");
    Ok(())
}

#[tokio::test]
async fn group_runs_stages_in_order_with_delays_and_reports_failures() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = |name: &str| (name.to_owned(), controller(dir.path(), name).unwrap());
    let op = GroupOperation::new(PowerAction::On)
        .stage([dev("storage1"), dev("storage2")])
        .stage([dev("web1"), dev("broken1"), dev("web2")])
        .with_stage_delay(Duration::from_millis(600))
        .with_parallelism(2);
    let mut events = Vec::new();
    let report = op.run(|e| events.push(e.to_string())).await;
    let failed: Vec<&str> = report.not_done().map(|r| r.device.as_str()).collect();
    assert_eq!(failed, ["broken1"]);
    assert!(
        report.summary().contains("4 done, 1 failed (broken1:"),
        "{}",
        report.summary()
    );
    // Storage first; the web stage starts at least the delay after storage finished.
    let storage_end = report.results[..2]
        .iter()
        .map(|r| r.started_after.unwrap() + r.elapsed)
        .max()
        .unwrap();
    let web_start = report.results[2..]
        .iter()
        .map(|r| r.started_after.unwrap())
        .min()
        .unwrap();
    assert!(
        web_start >= storage_end + Duration::from_millis(600),
        "{storage_end:?} {web_start:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("log"))?;
    let order: Vec<&str> = log.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(
        order[..2].iter().all(|d| d.starts_with("storage")),
        "{order:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("waiting")),
        "{events:?}"
    );
    Ok(())
}
