//! `mo power …` on the data directory (no daemon, no --server) against a real snmpd PDU: status,
//! switching an outlet, the action in the device's record log and the audit log, and clear
//! errors (read-only community, unknown device, device without power control); mass power-off
//! needs --yes without a terminal.

use mo_testsupport::{Snmpd, ensure, run_test};

#[test]
fn local_power_commands_drive_the_pdu_and_are_logged() {
    run_test("power-cli", |w| {
        let pdu = Snmpd::start(&w.dir().join("snmpd"))?;
        w.add_echo_device("db1", &["--power", &pdu.address("3")])?;
        w.add_echo_device("db2", &["--power", &pdu.address("4")])?;
        w.add_echo_device("plain", &[])?;
        w.mo_ok(
            &["secret", "set", "db1", "snmp_auth", "--stdin"],
            Some("private\n"),
        )?;
        // db2 only has the read-only community.
        w.mo_ok(
            &["secret", "set", "db2", "snmp_auth", "--stdin"],
            Some("public\n"),
        )?;

        let status = w.mo_ok(&["power", "status", "db1"], None)?;
        ensure!(status.stdout.contains("db1: on"), "{}", status.combined());
        let off = w.mo_ok(&["power", "off", "db1"], None)?;
        ensure!(
            off.stdout.contains("db1: off done") && off.stdout.contains("summary: off: 1 done"),
            "{}",
            off.combined()
        );
        ensure!(
            pdu.outlet(3) == 2,
            "outlet 3 is {} after off",
            pdu.outlet(3)
        );
        let json = w.mo_ok(&["power", "status", "db*", "--json"], None)?;
        ensure!(
            json.stdout.contains("\"state\": \"off\"")
                && json.stdout.contains("\"device\": \"db2\""),
            "{}",
            json.combined()
        );

        // The record log and the audit log have it, with who did it.
        let log = w.mo_ok(&["log", "show", "db1", "--kind", "power"], None)?;
        ensure!(
            log.stdout.contains("power off by os:")
                && log.stdout.contains("(mo CLI) via db1 (snmp://")
                && log.stdout.contains("(mo CLI): done"),
            "log:\n{}",
            log.combined()
        );
        let audit = w.mo_ok(&["audit"], None)?;
        ensure!(audit.stdout.contains("power.off"), "{}", audit.combined());

        // Errors name the device and what was wrong; the exit status says it failed.
        let ro = w.mo(&["power", "off", "db2"], None)?;
        ensure!(
            !ro.success() && ro.stdout.contains("db2: off failed"),
            "read-only community:\n{}",
            ro.combined()
        );
        ensure!(
            pdu.outlet(4) == 1,
            "outlet 4 switched with the read-only community"
        );
        let none = w.mo(&["power", "on", "plain", "db1"], None)?;
        ensure!(
            !none.success()
                && none
                    .stdout
                    .contains("plain: failed: plain: no power controller")
                && none.stdout.contains("db1: on done"),
            "{}",
            none.combined()
        );
        ensure!(pdu.outlet(3) == 1, "outlet 3 is {} after on", pdu.outlet(3));

        // Mass power-off — a glob or @GROUP naming more than one device — is refused without a
        // terminal to ask on unless --yes; nothing is switched.
        w.mo_ok(
            &["group", "add", "dbs", "--member", "db1", "--member", "db2"],
            None,
        )?;
        for args in [["power", "off", "db*"], ["power", "soft-off", "@dbs"]] {
            let refused = w.mo(&args, None)?;
            ensure!(
                !refused.success()
                    && refused
                        .stderr
                        .contains("would switch off 2 devices (db1, db2)")
                    && refused.stderr.contains("give --yes"),
                "{args:?} without --yes:\n{}",
                refused.combined()
            );
            ensure!(
                pdu.outlet(3) == 1,
                "{args:?} switched outlet 3 without --yes"
            );
        }
        let yes = w.mo(&["power", "off", "db*", "--yes"], None)?;
        ensure!(
            yes.stdout.contains("db1: off done") && pdu.outlet(3) == 2,
            "power off db* --yes:\n{}",
            yes.combined()
        );
        w.mo_ok(&["power", "on", "db1"], None)?;
        let unknown = w.mo(&["power", "status", "ghost"], None)?;
        ensure!(
            !unknown.success() && unknown.stderr.contains("unknown device `ghost`"),
            "{}",
            unknown.combined()
        );
        let bad = w.mo(&["power", "explode", "db1"], None)?;
        ensure!(
            !bad.success() && bad.stderr.contains("bad power action `explode`"),
            "{}",
            bad.combined()
        );
        Ok(())
    });
}
