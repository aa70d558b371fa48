//! Power status of many devices at once: most on outlets of a real snmpd PDU (APC pass script,
//! 8 outlets), the rest on Redfish systems of a real sushy-emulator (both started by
//! mo_testsupport, with the configurations in `tests/peers/`). Reports the wall time and
//! the number of requests sent. SNMP outlets are read in one batched GET per PDU; Redfish
//! devices are read in parallel, one GET each (after one service-root read per controller).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use mo_core::power::{PowerController, PowerState};
use mo_drivers::power::{RedfishController, SnmpOutlets};
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

    // PDU outlets: one controller per device, all on one shared PDU session.
    let v2 = DriverOptions::new().with_credentials(Credentials::new().with_snmp_auth("public"));
    let first = url::Url::parse(&format!("snmp://127.0.0.1:{snmp_port}/apc/1"))?;
    let pdu = Arc::clone(SnmpOutlets::from_url(&first, first.as_str(), &v2)?.pdu());
    let mut outlet_of = Vec::with_capacity(outlet_devices);
    for i in 0..outlet_devices {
        let text = format!("snmp://127.0.0.1:{snmp_port}/apc/{}", i % 8 + 1);
        let url = url::Url::parse(&text)?;
        let device = SnmpOutlets::from_url(&url, &text, &v2)?.on_pdu(Arc::clone(&pdu));
        outlet_of.push(device.outlets().to_vec());
    }

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
        bmcs.push(Arc::new(RedfishController::from_url(
            &url, &text, &rf_opts,
        )?));
    }

    for round in 1..=o.rounds.max(1) {
        let snmp_before = pdu.requests_sent();
        let rf_before: u64 = bmcs.iter().map(|b| b.requests_sent()).sum();
        let t0 = Instant::now();
        // Every distinct outlet in one batched read, then each device's state from it.
        let snmp = async {
            let mut distinct: Vec<String> = outlet_of.iter().flatten().cloned().collect();
            distinct.sort();
            distinct.dedup();
            let states = pdu.status_many(&distinct).await?;
            let by_outlet: BTreeMap<String, PowerState> =
                distinct.into_iter().zip(states).collect();
            anyhow::Ok(
                outlet_of
                    .iter()
                    .map(|outlets| {
                        mo_core::power::binding::combine_states(
                            outlets.iter().filter_map(|o| by_outlet.get(o).copied()),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let redfish = async {
            let mut tasks = tokio::task::JoinSet::new();
            for bmc in &bmcs {
                let bmc = Arc::clone(bmc);
                tasks.spawn(async move { bmc.status().await });
            }
            let mut states = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                states.push(joined??);
            }
            anyhow::Ok(states)
        };
        let (snmp_states, rf_states) = tokio::join!(snmp, redfish);
        let elapsed = t0.elapsed();
        let (snmp_states, rf_states) = (snmp_states?, rf_states?);
        let answered = snmp_states.len() + rf_states.len();
        let known = snmp_states
            .iter()
            .chain(&rf_states)
            .filter(|s| **s != PowerState::Unknown)
            .count();
        let snmp_requests = pdu.requests_sent() - snmp_before;
        let rf_requests: u64 = bmcs.iter().map(|b| b.requests_sent()).sum::<u64>() - rf_before;
        println!(
            "  round {round}: {} devices ({known} with a known state) in {:.3} s; requests: {} SNMP \
             + {} HTTP = {}{}",
            snmp_states.len() + rf_states.len(),
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
