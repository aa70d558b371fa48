//! Redfish power against a real sushy-emulator (fake driver, plain HTTP). Power changes land
//! after a random 1–11 s delay, so the tests are few and run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use anyhow::Result;
use mo_core::power::{PowerAction, PowerState};
use mo_drivers::power::power_controller_for;
use mo_drivers::{Credentials, DriverOptions};
use mo_testsupport::{NODE1, NODE2, Sushy};

fn password(p: &str) -> DriverOptions {
    DriverOptions::new().with_credentials(Credentials::new().with_password(p))
}

#[tokio::test]
async fn reset_types_switch_and_polling_waits_for_the_state() -> Result<()> {
    let bmc = Sushy::start_temp()?;
    let node1 = power_controller_for(&bmc.address(NODE1), &password("password"))?;
    let node2 = power_controller_for(&bmc.address(NODE2), &password("password"))?;
    assert_eq!(node1.status().await?, PowerState::Off);
    assert_eq!(node2.status().await?, PowerState::On);
    // Both at once: On for node1, ForceOff for node2; each returns once the state is reached.
    let (a, b) = tokio::join!(
        node1.perform(PowerAction::On),
        node2.perform(PowerAction::Off)
    );
    a?;
    b?;
    assert_eq!(node1.status().await?, PowerState::On);
    assert_eq!(node2.status().await?, PowerState::Off);
    assert_eq!(bmc.reset_types(NODE1), ["On"], "{}", bmc.log());
    assert_eq!(bmc.reset_types(NODE2), ["ForceOff"], "{}", bmc.log());
    // Reset (ForceRestart) keeps node1 on, soft-off (GracefulShutdown) turns it off; meanwhile
    // node2 goes on and is cycled: sushy offers no PowerCycle, so a cycle is ForceOff, then On.
    let node1_steps = async {
        node1.perform(PowerAction::Reset).await?;
        assert_eq!(node1.status().await?, PowerState::On);
        node1.perform(PowerAction::SoftOff).await?;
        assert_eq!(node1.status().await?, PowerState::Off);
        Ok::<(), mo_core::Error>(())
    };
    let node2_steps = async {
        node2.perform(PowerAction::On).await?;
        node2.perform(PowerAction::Cycle).await?;
        assert_eq!(node2.status().await?, PowerState::On);
        Ok::<(), mo_core::Error>(())
    };
    let (a, b) = tokio::join!(node1_steps, node2_steps);
    a?;
    b?;
    // The end states alone cannot tell a reset from nothing, or a cycle from an On: sushy's
    // request log says which ResetType each action POSTed.
    assert_eq!(
        bmc.reset_types(NODE1),
        ["On", "ForceRestart", "GracefulShutdown"],
        "{}",
        bmc.log()
    );
    assert_eq!(
        bmc.reset_types(NODE2),
        ["ForceOff", "On", "ForceOff", "On"],
        "{}",
        bmc.log()
    );
    Ok(())
}

#[tokio::test]
async fn bad_credentials_unknown_system_and_unreachable_bmc() -> Result<()> {
    let bmc = Sushy::start_temp()?;
    let wrong = power_controller_for(&bmc.address(NODE1), &password("nope"))?;
    let err = wrong.status().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, mo_core::Error::Auth { .. }), "{text}");
    assert!(
        text.contains("refused user admin") && text.contains(&format!("127.0.0.1:{}", bmc.port())),
        "{text}"
    );

    let missing = power_controller_for(&bmc.address("nosuch"), &password("password"))?;
    let err = missing.status().await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("/Systems/nosuch"), "{err}");

    let err = power_controller_for("redfish://admin@bmc/Managers/1", &password("p")).unwrap_err();
    assert!(err.to_string().contains("/Systems/ID"), "{err}");
    let err = power_controller_for("redfish://admin@bmc/Systems/1", &DriverOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no password for Redfish user admin"),
        "{err}"
    );
    let err = power_controller_for(
        "redfish://admin@bmc/Systems/1?fingerprint=zz",
        &password("p"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("64 hex digits"), "{err}");

    // Nobody listening: a connection error naming the BMC, fast.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let gone = power_controller_for(
        &format!("redfish://admin@127.0.0.1:{dead}/Systems/1?tls=0&timeout=2s"),
        &password("password"),
    )?;
    let started = Instant::now();
    let err = gone.status().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, mo_core::Error::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{dead}")),
        "{err}"
    );

    // TLS pinned to the wrong certificate against a plain-HTTP server fails cleanly too.
    let pinned = power_controller_for(
        &format!(
            "redfish://admin@127.0.0.1:{}/Systems/{NODE1}?timeout=3s&fingerprint={}",
            bmc.port(),
            "ab".repeat(32)
        ),
        &password("password"),
    )?;
    let err = pinned.status().await.unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{}", bmc.port())), "{err}");
    Ok(())
}
