//! `mo power verify NAME --yes` against a real snmpd PDU and the real daemon: a device whose
//! `exec://` console prints only while its PDU outlet is on. A correct binding is proven (the
//! console falls quiet while the outlet is off and prints again when on); a device bound to an
//! outlet that does not feed it is reported as a mismatch with a failing exit status. Without
//! --yes and without a terminal nothing is switched.

use mo_testsupport::{Snmpd, World, ensure, run_test};

/// Add device `name` whose console prints a line every 0.2 s while outlet `feeding` of the PDU is
/// on, with its power bound to outlet `bound`.
fn fed_console(
    w: &World,
    pdu: &Snmpd,
    name: &str,
    feeding: u32,
    bound: u32,
) -> mo_testsupport::Result<()> {
    let state = pdu.dir().join("outlets.json");
    let body = format!(
        "#!/bin/sh\nwhile :; do\n  if ! grep -q '\"{feeding}\": 2' '{}' 2>/dev/null; then \
         echo \"{name} running\"; fi\n  sleep 0.2\ndone\n",
        state.display()
    );
    let script = w.write_script(&format!("console-{name}.sh"), &body)?;
    w.add_device(
        name,
        &format!("exec://{}", script.display()),
        &["--power", &pdu.address(&bound.to_string())],
    )?;
    Ok(())
}

#[test]
fn verify_proves_a_right_binding_and_reports_a_wrong_one() {
    run_test("power-verify", |w| {
        let pdu = Snmpd::start(&w.dir().join("snmpd"))?;
        fed_console(w, &pdu, "web03", 1, 1)?;
        // web04 is fed by outlet 3 but bound to outlet 2.
        fed_console(w, &pdu, "web04", 3, 2)?;
        for name in ["web03", "web04"] {
            w.mo_ok(
                &["secret", "set", name, "snmp_auth", "--stdin"],
                Some("private\n"),
            )?;
        }

        // Without the daemon there is nothing watching the console.
        let nod = w.mo(&["power", "verify", "web03", "--yes"], None)?;
        ensure!(
            !nod.success() && nod.stderr.contains("no daemon records web03's console"),
            "{}",
            nod.combined()
        );
        w.start_daemon(&[])?;

        // No terminal and no --yes: refused, nothing switched.
        let refused = w.mo(&["power", "verify", "web03"], None)?;
        ensure!(
            !refused.success() && refused.stderr.contains("pass --yes"),
            "{}",
            refused.combined()
        );
        ensure!(
            !pdu.dir().join("outlets.json.log").exists(),
            "switched without --yes: {:?}",
            pdu.commands()
        );

        let good = w.mo(&["power", "verify", "web03", "--yes"], None)?;
        ensure!(
            good.success() && good.stdout.contains("feeds web03"),
            "{}",
            good.combined()
        );
        ensure!(
            pdu.commands().contains(&"outlet 1 cmd 2".to_owned())
                && pdu.commands().last().map(String::as_str) == Some("outlet 1 cmd 1")
                && pdu.commands().iter().all(|c| c.starts_with("outlet 1 ")),
            "commands: {:?}",
            pdu.commands()
        );

        // The console never falls quiet for 5 s: with `--wait 8` that is known after 8 s.
        let bad = w.mo(&["power", "verify", "web04", "--yes", "--wait", "8"], None)?;
        ensure!(
            !bad.success()
                && bad
                    .stdout
                    .contains("does not feed web04: its console kept printing"),
            "{}",
            bad.combined()
        );
        // The outlet is switched back on after the mismatch.
        ensure!(pdu.outlet(2) == 1, "outlet 2 left off");
        let audit = w.mo_ok(&["audit"], None)?;
        ensure!(
            audit.stdout.contains("power.verify"),
            "{}",
            audit.combined()
        );
        Ok(())
    });
}

/// A device whose power is its BMC (ipmi_sim) is verified through the BMC's power state, with no
/// daemon: it must read off after the switch off and on after the switch on.
#[test]
fn verify_reads_a_bmc_power_state() {
    run_test("power-verify-bmc", |w| {
        let bmc = mo_testsupport::IpmiSim::start_with(
            &w.dir().join("bmc"),
            "verify",
            mo_testsupport::Sol::None,
        )?;
        let address = bmc.address();
        w.add_device("srv9", &address, &["--power", &address])?;
        w.mo_ok(
            &["secret", "set", "srv9", "password", "--stdin"],
            Some(&format!("{}\n", mo_testsupport::IPMI_PASSWORD)),
        )?;
        let refused = w.mo(&["power", "verify", "srv9"], None)?;
        ensure!(
            !refused.success() && refused.stderr.contains("pass --yes"),
            "{}",
            refused.combined()
        );
        let verified = w.mo(&["power", "verify", "srv9", "--yes", "--wait", "60"], None)?;
        ensure!(
            verified.success()
                && verified.stdout.contains(
                    "switches srv9: its power status read off after switching off and on after \
                     switching on"
                ),
            "{}",
            verified.combined()
        );
        let status = w.mo_ok(&["power", "status", "srv9"], None)?;
        ensure!(status.stdout.contains("srv9: on"), "{}", status.combined());
        ensure!(bmc.power() == "1", "ipmi_sim's power: {}", bmc.power());
        Ok(())
    });
}
