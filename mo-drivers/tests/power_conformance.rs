//! One conformance suite every power controller runs against its real peer: exec (a script),
//! SNMP (snmpd + APC pass script), Redfish (sushy-emulator), IPMI chassis control (ipmi_sim).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/powerscript.rs"]
mod powerscript;

use std::sync::Arc;

use anyhow::{Result, ensure};
use mo_core::power::{PowerAction, PowerController, PowerState};
use mo_drivers::power::power_controller_for;
use mo_drivers::{Credentials, DriverOptions};
use mo_testsupport::{IPMI_PASSWORD, IpmiSim, Snmpd, Sol, Sushy};

/// What every controller must do.
async fn conformance(c: Arc<dyn PowerController>, secret: &str) -> Result<()> {
    let name = c.address().to_owned();
    ensure!(!name.is_empty(), "empty address");
    ensure!(
        !name.contains(secret) && !format!("{c:?}").contains(secret),
        "{name}: secret shown"
    );
    let caps = c.capabilities();
    ensure!(caps.status && caps.on_off, "{name}: no status or on/off");
    c.perform(PowerAction::Off).await?;
    ensure!(
        c.status().await? == PowerState::Off,
        "{name}: not off after off"
    );
    c.perform(PowerAction::Off).await?; // idempotent
    c.perform(PowerAction::On).await?;
    ensure!(
        c.status().await? == PowerState::On,
        "{name}: not on after on"
    );
    if caps.cycle {
        c.perform(PowerAction::Cycle).await?;
        // A BMC may accept the cycle and finish it a few seconds later (IPMI): poll.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while c.status().await? != PowerState::On {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{name}: not on within 20 s after cycle"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    for action in PowerAction::ALL {
        if !caps.supports(action) {
            let err = c.perform(action).await.unwrap_err();
            ensure!(
                matches!(err, mo_core::Error::Unsupported { .. }),
                "{name}: {action}: {err}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn exec_conforms() -> Result<()> {
    let dir = tempfile::tempdir()?;
    conformance(powerscript::controller(dir.path(), "web1")?, "\u{0}").await
}

#[tokio::test]
async fn snmp_v2c_and_v3_conform() -> Result<()> {
    let pdu = Snmpd::start_temp()?;
    let v2 = DriverOptions::new().with_credentials(Credentials::new().with_snmp_auth("private"));
    conformance(
        power_controller_for(
            &format!("snmp://127.0.0.1:{}/apc/4?timeout=6s", pdu.port()),
            &v2,
        )?,
        "private",
    )
    .await?;
    let v3 = DriverOptions::new().with_credentials(
        Credentials::new()
            .with_snmp_auth("authpass123")
            .with_snmp_privacy("privpass123"),
    );
    conformance(
        power_controller_for(
            &format!("snmp://admin@127.0.0.1:{}/auto/8?timeout=6s", pdu.port()),
            &v3,
        )?,
        "authpass123",
    )
    .await
}

#[tokio::test]
async fn redfish_conforms() -> Result<()> {
    let bmc = Sushy::start_temp()?;
    let opts = DriverOptions::new().with_credentials(Credentials::new().with_password("password"));
    let c = power_controller_for(&bmc.address("22222222-2222-2222-2222-222222222222"), &opts)?;
    // The secret must not appear as a value (the field name `password` may).
    conformance(c, "\"password\"").await
}

#[tokio::test]
async fn ipmi_conforms() -> Result<()> {
    let mut bmc = IpmiSim::start_temp("power", Sol::None)?;
    let opts =
        DriverOptions::new().with_credentials(Credentials::new().with_password(IPMI_PASSWORD));
    let c = power_controller_for(&bmc.address(), &opts)?;
    // The secret must not appear as a value (the field name `password` may).
    conformance(c, "\"password\"").await?;
    bmc.check_alive()?;
    Ok(())
}
