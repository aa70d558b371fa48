//! SNMP PDU outlets against a real net-snmp snmpd with the APC pass script.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use mo_core::power::{PowerAction, PowerBinding, PowerController, PowerState};
use mo_drivers::power::{SnmpOutlets, power_controller_for};
use mo_drivers::{Credentials, DriverOptions};
use mo_testsupport::{Snmpd, free_udp_port};

fn community(c: &str) -> DriverOptions {
    DriverOptions::new().with_credentials(Credentials::new().with_snmp_auth(c))
}

fn v3(auth: &str, privacy: &str) -> DriverOptions {
    DriverOptions::new().with_credentials(
        Credentials::new()
            .with_snmp_auth(auth)
            .with_snmp_privacy(privacy),
    )
}

#[tokio::test]
async fn v2c_read_only_is_refused_read_write_and_v3_switch() -> Result<()> {
    let pdu = Snmpd::start_temp()?;
    let port = pdu.port();

    // Read-only community: status works, a set is refused with a clear error.
    let ro = power_controller_for(
        &format!("snmp://127.0.0.1:{port}/apc/3?timeout=6s"),
        &community("public"),
    )?;
    assert_eq!(ro.status().await?, PowerState::On);
    let err = ro.perform(PowerAction::Off).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, mo_core::Error::Auth { .. }), "{text}");
    assert!(text.contains("community refused to set"), "{text}");
    assert!(text.contains("(noAccess)"), "{text}");
    assert!(
        text.contains(&format!("snmp://127.0.0.1:{port}/apc/3?timeout=6s")),
        "{text}"
    );
    assert_eq!(pdu.outlet(3), 1);

    // Read-write community switches the outlet, seen by the PDU and by status.
    let rw = power_controller_for(
        &format!("snmp://127.0.0.1:{port}/apc/3?timeout=6s"),
        &community("private"),
    )?;
    rw.perform(PowerAction::Off).await?;
    assert_eq!(pdu.outlet(3), 2);
    assert_eq!(rw.status().await?, PowerState::Off);
    rw.perform(PowerAction::Cycle).await?;
    assert_eq!(rw.status().await?, PowerState::On);
    assert_eq!(pdu.commands(), ["outlet 3 cmd 2", "outlet 3 cmd 3"]);

    // v3 authPriv (SHA/AES) as admin.
    let v3c = power_controller_for(
        &format!("snmp://admin@127.0.0.1:{port}/apc/5?auth=sha&priv=aes&timeout=6s"),
        &v3("authpass123", "privpass123"),
    )?;
    v3c.perform(PowerAction::Off).await?;
    assert_eq!(pdu.outlet(5), 2);
    assert_eq!(v3c.status().await?, PowerState::Off);
    v3c.perform(PowerAction::On).await?;
    assert_eq!(pdu.outlet(5), 1);

    // Wrong v3 passphrase: an authentication error naming the target, quickly.
    let bad = power_controller_for(
        &format!("snmp://admin@127.0.0.1:{port}/apc/5?timeout=1s&retries=0"),
        &v3("wrongpass123", "privpass123"),
    )?;
    let started = Instant::now();
    let err = bad.status().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(
        err.contains(&format!("snmp://admin@127.0.0.1:{port}")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn dual_outlets_switch_together_and_status_is_batched() -> Result<()> {
    let pdu = Snmpd::start_temp()?;
    let port = pdu.port();
    let opts = community("private");

    // Two outlets in one address: one SET for both.
    let both = power_controller_for(
        &format!("snmp://127.0.0.1:{port}/auto/1,2?timeout=6s"),
        &opts,
    )?;
    both.perform(PowerAction::Off).await?;
    assert_eq!((pdu.outlet(1), pdu.outlet(2)), (2, 2));
    assert_eq!(both.status().await?, PowerState::Off);

    // A binding over two controllers: off = all off, on = all on.
    let a = power_controller_for(&format!("snmp://127.0.0.1:{port}/apc/6?timeout=6s"), &opts)?;
    let b = power_controller_for(&format!("snmp://127.0.0.1:{port}/apc/7?timeout=6s"), &opts)?;
    let server = PowerBinding::new("db1", vec![a, b])?.with_cycle_delay(Duration::from_millis(200));
    server.perform(PowerAction::Off).await?;
    assert_eq!((pdu.outlet(6), pdu.outlet(7)), (2, 2));
    assert_eq!(server.status().await?, PowerState::Off);
    server.perform(PowerAction::Cycle).await?;
    assert_eq!((pdu.outlet(6), pdu.outlet(7)), (1, 1));
    let log = pdu.commands();
    // 1,2 off in one SET; 6,7 off; the cycle: 6,7 off, then 6,7 on.
    assert_eq!(log.len(), 8, "{log:?}");
    assert!(log[..6].iter().all(|l| l.ends_with("cmd 2")), "{log:?}");
    assert!(log[6..].iter().all(|l| l.ends_with("cmd 1")), "{log:?}");

    // Status of all 8 outlets in one request.
    let url = mo_drivers::address::parse(&format!("snmp://127.0.0.1:{port}/apc/1?timeout=6s"))?;
    let one = SnmpOutlets::from_url(&url, url.as_str(), &community("public"))?;
    let pdu_session = Arc::clone(one.pdu());
    let outlets: Vec<String> = (1..=8).map(|n| n.to_string()).collect();
    let before = pdu_session.requests_sent();
    let states = pdu_session.status_many(&outlets).await?;
    assert_eq!(pdu_session.requests_sent() - before, 1);
    use PowerState::{Off, On};
    assert_eq!(states, [Off, Off, On, On, On, On, On, On]);
    Ok(())
}

#[tokio::test]
async fn devices_on_one_pdu_share_its_session_and_status_reads_together_in_one_get() -> Result<()> {
    let pdu = Snmpd::start_temp()?;
    let port = pdu.port();
    let opts = community("private");
    // As mod's registry: one controller per device from its address, then all read at once
    // (mo power status @group). 16 devices over 8 outlets, one of them on two outlets and one
    // on an outlet the PDU does not have.
    let mut addresses: Vec<String> = (0..16)
        .map(|i| format!("snmp://127.0.0.1:{port}/apc/{}?timeout=6s", i % 8 + 1))
        .collect();
    addresses.push(format!("snmp://127.0.0.1:{port}/apc/1,2?timeout=6s"));
    addresses.push(format!("snmp://127.0.0.1:{port}/apc/99?timeout=6s"));
    let controllers = addresses
        .iter()
        .map(|a| power_controller_for(a, &opts))
        .collect::<mo_core::Result<Vec<_>>>()?;
    controllers[3].perform(PowerAction::Off).await?;
    assert_eq!(pdu.outlet(4), 2);
    let url = mo_drivers::address::parse(&addresses[0])?;
    let session = Arc::clone(SnmpOutlets::from_url(&url, url.as_str(), &opts)?.pdu());
    // Another community is another session.
    let other = SnmpOutlets::from_url(&url, url.as_str(), &community("public"))?;
    assert!(!Arc::ptr_eq(&session, other.pdu()));

    let before = session.requests_sent();
    let states = futures_util::future::join_all(controllers.iter().map(|c| c.status())).await;
    assert_eq!(session.requests_sent() - before, 1, "one GET for the PDU");
    for (i, state) in states[..16].iter().enumerate() {
        let want = if i % 8 + 1 == 4 {
            PowerState::Off
        } else {
            PowerState::On
        };
        assert_eq!(state.as_ref().ok(), Some(&want), "device {i}");
    }
    assert_eq!(states[16].as_ref().ok(), Some(&PowerState::On));
    let missing = states[17].as_ref().unwrap_err().to_string();
    assert!(missing.contains("outlet 99 does not exist"), "{missing}");
    assert!(missing.contains("/apc/99"), "{missing}");
    Ok(())
}

#[tokio::test]
async fn bad_input_gives_clear_errors_in_bounded_time() -> Result<()> {
    let pdu = Snmpd::start_temp()?;
    let port = pdu.port();
    let opts = community("private");

    let err = power_controller_for(&format!("snmp://127.0.0.1:{port}/acme/1"), &opts).unwrap_err();
    assert!(
        err.to_string().contains("unknown PDU profile `acme`"),
        "{err}"
    );
    let err = power_controller_for(&format!("snmp://127.0.0.1:{port}/apc/x1"), &opts).unwrap_err();
    assert!(err.to_string().contains("bad outlet `x1`"), "{err}");
    let err = power_controller_for(&format!("snmp://127.0.0.1:{port}/apc/0"), &opts).unwrap_err();
    assert!(err.to_string().contains("start at 1"), "{err}");
    let err =
        power_controller_for("snmp://127.0.0.1/apc/1", &DriverOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no SNMP community"), "{err}");

    // An outlet the PDU does not have.
    let missing =
        power_controller_for(&format!("snmp://127.0.0.1:{port}/apc/99?timeout=6s"), &opts)?;
    let err = missing.status().await.unwrap_err().to_string();
    assert!(err.contains("outlet 99 does not exist"), "{err}");
    assert!(
        err.contains(&format!("snmp://127.0.0.1:{port}/apc/99?timeout=6s")),
        "{err}"
    );

    // Wrong community (snmpd stays silent) and nobody listening: timeouts naming the target.
    let dead = free_udp_port()?;
    for (address, c) in [
        (
            format!("snmp://127.0.0.1:{port}/apc/1?timeout=300ms&retries=1"),
            "nope",
        ),
        (
            format!("snmp://127.0.0.1:{dead}/apc/1?timeout=300ms&retries=0"),
            "private",
        ),
    ] {
        let controller = power_controller_for(&address, &community(c))?;
        let started = Instant::now();
        let err = controller.status().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{address}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains("127.0.0.1"), "{text}");
        assert!(
            matches!(
                err,
                mo_core::Error::Timeout { .. } | mo_core::Error::Connect { .. }
            ),
            "{text}"
        );
    }
    Ok(())
}
