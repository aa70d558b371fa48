//! Power status of many devices at once: most on outlets of a real snmpd PDU (APC pass script,
//! 8 outlets), the rest on Redfish systems of a real sushy-emulator (both started by
//! mo_testsupport, with the configurations in `tests/peers/`). Reports the wall time and
//! the number of requests sent. The path is the daemon's: each device's controller built from
//! its address by `power_controller_for` and bound as mod's registry binds it, all read by
//! `mo_core::power::read_states` (what `mo power status @group` and the API run), which reads
//! every device at once; the SNMP outlets of one PDU share its session and are answered by one
//! GET; Redfish devices one GET each (after one service-root read per controller).

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use mo_core::power::{PowerBinding, PowerController, PowerState, PowerTarget, read_states};
use mo_drivers::power::{RedfishController, SnmpOutlets, power_controller_for};
use mo_drivers::{Credentials, DriverOptions};
use mo_testsupport::{NODE1, NODE2, Snmpd, Sushy};

/// Options of `mo-bench power-status`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Devices in all.
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// How many of them are Redfish systems (the rest are PDU outlets).
    #[arg(long, default_value_t = 20)]
    redfish: usize,
    /// Rounds to measure (the first one also opens the sessions).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let snmpd = Snmpd::start(&tmp.path().join("snmpd"))?;
    let sushy = Sushy::start(&tmp.path().join("sushy"))?;
    let (snmp_port, redfish_port) = (snmpd.port(), sushy.port());
    let outlet_devices = o.devices.saturating_sub(o.redfish);
    println!(
        "power-status: {} devices: {outlet_devices} on outlets of one snmpd PDU (8 outlets), {} on \
         sushy Redfish systems",
        o.devices, o.redfish
    );

    // PDU outlets: one controller per device from its address, as mod's registry makes them.
    let v2 = DriverOptions::new().with_credentials(Credentials::new().with_snmp_auth("public"));
    let mut targets = Vec::with_capacity(o.devices);
    for i in 0..outlet_devices {
        let text = format!("snmp://127.0.0.1:{snmp_port}/apc/{}", i % 8 + 1);
        targets.push(target(
            format!("pdu-{i}"),
            power_controller_for(&text, &v2)?,
        )?);
    }
    // The PDU's session, shared by every address on it: its request counter.
    let first = url::Url::parse(&format!("snmp://127.0.0.1:{snmp_port}/apc/1"))?;
    let pdu = Arc::clone(SnmpOutlets::from_url(&first, first.as_str(), &v2)?.pdu());

    // Redfish: one controller per device (as if each had its own BMC), over the two systems.
    let rf_opts =
        DriverOptions::new().with_credentials(Credentials::new().with_password("password"));
    let systems = [NODE1, NODE2];
    let mut bmcs = Vec::with_capacity(o.redfish);
    for i in 0..o.redfish {
        let text = format!(
            "redfish://admin@127.0.0.1:{redfish_port}/Systems/{}?tls=0",
            systems[i % systems.len()]
        );
        let url = url::Url::parse(&text)?;
        let bmc = Arc::new(RedfishController::from_url(&url, &text, &rf_opts)?);
        targets.push(target(format!("bmc-{i}"), bmc.clone())?);
        bmcs.push(bmc);
    }

    for round in 1..=o.rounds.max(1) {
        let snmp_before = pdu.requests_sent();
        let rf_before: u64 = bmcs.iter().map(|b| b.requests_sent()).sum();
        let t0 = Instant::now();
        let states = read_states(&targets, mo_core::power::service::DEVICE_TIMEOUT).await;
        let elapsed = t0.elapsed();
        let failed: Vec<String> = states
            .iter()
            .filter_map(|(name, s)| s.as_ref().err().map(|e| format!("{name}: {e}")))
            .collect();
        if let Some(first) = failed.first() {
            bail!(
                "round {round}: {} devices failed, first {first}",
                failed.len()
            );
        }
        let states: Vec<PowerState> = states.into_iter().filter_map(|(_, s)| s.ok()).collect();
        let answered = states.len();
        let known = states.iter().filter(|s| **s != PowerState::Unknown).count();
        let snmp_requests = pdu.requests_sent() - snmp_before;
        let rf_requests: u64 = bmcs.iter().map(|b| b.requests_sent()).sum::<u64>() - rf_before;
        println!(
            "  round {round}: {} devices ({known} with a known state) in {:.3} s; requests: {} SNMP \
             + {} HTTP = {}{}",
            answered,
            elapsed.as_secs_f64(),
            snmp_requests,
            rf_requests,
            snmp_requests + rf_requests,
            if round == 1 {
                " (first round opens sessions)"
            } else {
                ""
            }
        );
        if outlet_devices > 0 && snmp_requests == 0 {
            bail!("round {round}: the outlets were not read on the PDU's shared session");
        }
        if known != o.devices || answered != o.devices {
            bail!(
                "round {round}: {known} of {answered} answers are a known power state \
                 (expected all {} devices)",
                o.devices
            );
        }
    }
    println!("  target: < 2 s for 200 devices");
    Ok(())
}

/// A device as mod's registry binds it and its power service reads it (no console).
fn target(device: String, controller: Arc<dyn PowerController>) -> anyhow::Result<PowerTarget> {
    let binding: Arc<dyn PowerController> =
        Arc::new(PowerBinding::new(device.clone(), vec![controller])?);
    Ok(PowerTarget {
        device,
        controller: Ok(binding),
        console: None,
    })
}
