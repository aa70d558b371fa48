//! A sequenced group power operation from the SSH shell across all three kinds of real peer
//! (issue 4 items 7 and 9): web servers on Redfish (sushy-emulator) and IPMI (ipmi_sim) go off in
//! the first stage, storage on a dual-outlet SNMP PDU (snmpd) last, after a delay; a device whose
//! BMC is unreachable fails without hiding the others' results, and the summary says so.

use mo_testsupport::{IpmiSim, Login, NODE2, Snmpd, Sol, Sushy, ensure, run_test};

#[test]
fn staged_power_off_across_ipmi_redfish_and_snmp_reports_partial_failure() {
    run_test("power-group", |w| {
        let pdu = Snmpd::start(&w.dir().join("snmpd"))?;
        let redfish = Sushy::start(&w.dir().join("sushy"))?;
        let ipmi = IpmiSim::start_with(w.dir(), "power", Sol::None)?;
        ipmi.set_power(true)?;
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| mo_testsupport::Error::io("free port", e))?
            .port();

        // stor-1 has two supplies on outlets 1 and 2 of the PDU.
        w.add_echo_device(
            "stor-1",
            &["--power", &pdu.address("1"), "--power", &pdu.address("2")],
        )?;
        w.add_echo_device("web-1", &["--power", &redfish.address(NODE2)])?;
        w.add_echo_device("web-2", &["--power", &ipmi.address()])?;
        let unreachable =
            format!("redfish://admin@127.0.0.1:{dead}/Systems/1?tls=0&timeout=2s&wait=5s");
        w.add_echo_device("web-3", &["--power", &unreachable])?;
        for (device, kind, secret) in [
            ("stor-1", "snmp_auth", "private"),
            ("web-1", "password", "password"),
            ("web-2", "password", "password"),
            ("web-3", "password", "password"),
        ] {
            w.mo_ok(
                &["secret", "set", device, kind, "--stdin"],
                Some(&format!("{secret}\n")),
            )?;
        }
        w.mo_ok(&["group", "add", "storage", "--pattern", "stor-*"], None)?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let out = alice.run(
            Login::Shell,
            &[
                "power",
                "off",
                "--order",
                "'web-*,@storage'",
                "--delay",
                "1s",
                "--parallel",
                "2",
                "@storage",
                "web-*",
            ],
            None,
        )?;
        let text = out.stdout.replace('\r', "");
        ensure!(!out.status.success(), "partial failure exited 0:\n{text}");
        for needle in [
            "plan: off of 4 device(s) in 2 stage(s), 2 at once",
            "stage 1: web-1, web-2, web-3",
            "stage 2: stor-1",
            "waiting 1s before stage 2",
            "web-1: off done",
            "web-2: off done",
            "stor-1: off done",
            "web-3: off failed",
            &format!("127.0.0.1:{dead}"),
            "summary: off: 3 done, 1 failed (web-3:",
        ] {
            ensure!(text.contains(needle), "`{needle}` missing from:\n{text}");
        }
        // Storage went down after the web stage had finished.
        let stage2 = text.find("\nstage 2: stor-1").unwrap_or(0);
        for web in ["web-1: done in", "web-2: done in", "web-3: FAILED"] {
            let at = text.find(web).unwrap_or(usize::MAX);
            ensure!(at < stage2, "`{web}` not before stage 2:\n{text}");
        }
        // The peers saw it: the BMCs' own records say which action each got, not only the
        // end state (sushy's log names the ResetType: a hard ForceOff, nothing else).
        ensure!(ipmi.power() == "0", "ipmi_sim power: {}", ipmi.power());
        let posted = redfish.reset_types(NODE2);
        ensure!(
            posted == ["ForceOff"],
            "web-1's BMC got the ResetTypes {posted:?}, expected [\"ForceOff\"]"
        );
        ensure!(
            pdu.outlet(1) == 2 && pdu.outlet(2) == 2,
            "PDU outlets: {} {}",
            pdu.outlet(1),
            pdu.outlet(2)
        );
        let status = alice.run(Login::Shell, &["power", "status", "web-1", "stor-1"], None)?;
        ensure!(
            status.stdout.contains("web-1: off") && status.stdout.contains("stor-1: off"),
            "status:\n{}",
            status.combined()
        );
        // Each device's log has its own action; the failure is in web-3's with the reason.
        let log = w.mo_ok(&["log", "show", "web-3", "--kind", "power"], None)?;
        ensure!(
            log.stdout.contains("power off by alice: failed"),
            "web-3 log:\n{}",
            log.stdout
        );
        // Bad options are refused with a clear message.
        let bad = alice.run(
            Login::Shell,
            &["power", "off", "--parallel", "0", "web-1"],
            None,
        )?;
        ensure!(
            bad.stdout
                .contains("--parallel needs a number from 1 to 1000"),
            "{}",
            bad.combined()
        );
        let nogroup = alice.run(Login::Shell, &["power", "off", "@nosuch"], None)?;
        ensure!(
            !nogroup.status.success() && nogroup.stdout.contains("nosuch"),
            "{}",
            nogroup.combined()
        );
        Ok(())
    });
}
