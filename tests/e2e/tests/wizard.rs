//! `mo wizard bmc|console-server|pdu` against real peers, each on its own loopback address
//! (127.0.2.x, apart from discover.rs's hosts): ipmi_sim with sushy-emulator managing one system
//! named `web07` on 127.0.2.2, a second ipmi_sim alone on 127.0.2.3, snmpd as an APC PDU on
//! 127.0.2.4, ser2net as a console server with labelled ports on 127.0.2.5. Each wizard prints
//! its plan in `mo config import`'s format and changes nothing; `--apply` adds it (power status
//! answers through what it bound), and a second run changes nothing. Probes wait 10 s for an
//! answer: the peers (snmpd's pass script above all) are slow on a loaded machine.

use mo_testsupport::{
    IPMI_PASSWORD, IPMI_USER, IpmiSim, LabelledPorts, PeerEnd, Snmpd, Sol, ensure, lan_host,
    run_test, sushy_on, write_credentials,
};

#[test]
fn wizard_bmc_names_bmcs_after_their_systems() {
    run_test("wizard-bmc", |w| {
        let d = w.dir().to_path_buf();
        let (a, b) = (lan_host(2, 2), lan_host(2, 3));
        let bmc = IpmiSim::start_on(&d, "wa", Sol::Pty(PeerEnd::Held), a)?;
        let redfish = sushy_on(&d.join("sushy"), a, "web07")?;
        let lone = IpmiSim::start_on(&d, "wb", Sol::Pty(PeerEnd::Held), b)?;
        let creds = write_credentials(
            &d.join("creds.toml"),
            &[(
                "127.0.2.2-3",
                &format!("user = \"{IPMI_USER}\"\npassword = \"{IPMI_PASSWORD}\""),
            )],
        )?;
        let ports = format!(
            "ipmi:{},ipmi:{},redfish:{}",
            bmc.port(),
            lone.port(),
            redfish.port()
        );
        let creds = creds.display().to_string();
        let args = [
            "wizard",
            "bmc",
            "127.0.2.2-127.0.2.3",
            "--ports",
            &ports,
            "--timeout",
            "10s",
            "--credentials",
            &creds,
        ];
        let out = w.mo_ok(&args, None)?;
        let all = out.combined();
        let lone_name = format!("bmc-127-0-2-3-{}", lone.port());
        for line in [
            format!(
                "+ device web07 (ipmi://{IPMI_USER}@127.0.2.2:{})",
                bmc.port()
            ),
            format!(
                "+ device {lone_name} (ipmi://{IPMI_USER}@127.0.2.3:{})",
                lone.port()
            ),
            "~ secret password of device web07 (sealed)".to_string(),
            "nothing changed (--apply adds this)".to_string(),
        ] {
            ensure!(out.stdout.contains(&line), "missing `{line}`:\n{all}");
        }
        ensure!(
            out.stdout.lines().any(|l| l.starts_with("127.0.2.2")
                && l.contains("IPMI 2.0, Redfish")
                && l.contains("web07")),
            "{all}"
        );
        let list = w.mo(&["device", "list"], None)?;
        ensure!(!list.stdout.contains("web07"), "{}", list.combined());

        let mut apply = args.to_vec();
        apply.push("--yes");
        let applied = w.mo_ok(&apply, None)?;
        ensure!(
            applied.stdout.contains("applied: "),
            "{}",
            applied.combined()
        );
        let status = w.mo_ok(&["power", "status", "web07", &lone_name], None)?;
        ensure!(
            status.stdout.contains("web07: off")
                && status.stdout.contains(&format!("{lone_name}: off")),
            "{}",
            status.combined()
        );
        let again = w.mo_ok(&apply, None)?;
        ensure!(
            again.stdout.contains("no changes") && !again.stdout.contains("applied: "),
            "{}",
            again.combined()
        );
        Ok(())
    });
}

#[test]
fn wizard_console_server_names_ports_after_their_labels() {
    run_test("wizard-cs", |w| {
        let d = w.dir().to_path_buf();
        let host = lan_host(2, 5);
        // Port 4 is not served: nothing answers there.
        let cs = LabelledPorts::start(&d, host, &[Some("web05"), Some("db07"), None])?;
        let base = cs.base().to_string();
        let args = [
            "wizard",
            "console-server",
            "127.0.2.5",
            "--profile",
            "ser2net",
            "--base",
            &base,
            "--ports",
            "1-4",
            "--timeout",
            "10s",
        ];
        let out = w.mo_ok(&args, None)?;
        let all = format!("{}\n(config {})", out.combined(), cs.config().display());
        let url = |n: u32| format!("cs://127.0.2.5/{n}?profile=ser2net&base={base}");
        for line in [
            format!("+ device web05 ({})", url(1)),
            format!("+ device db07 ({})", url(2)),
            format!("+ device 127.0.2.5-p3 ({})", url(3)),
            format!(
                "port 4 (telnet://127.0.2.5:{}): nothing answered",
                cs.base() + 4
            ),
        ] {
            ensure!(out.stdout.contains(&line), "missing `{line}`:\n{all}");
        }
        ensure!(!out.stdout.contains("-p4"), "{all}");

        let mut apply = args.to_vec();
        apply.push("--apply");
        let applied = w.mo_ok(&apply, None)?;
        ensure!(
            applied.stdout.contains("applied: "),
            "{}",
            applied.combined()
        );
        let list = w.mo_ok(&["device", "list"], None)?;
        ensure!(
            list.stdout.contains("web05") && list.stdout.contains(&url(2)),
            "{}",
            list.combined()
        );
        let again = w.mo_ok(&apply, None)?;
        ensure!(again.stdout.contains("no changes"), "{}", again.combined());
        Ok(())
    });
}

#[test]
fn wizard_pdu_binds_outlets_to_devices_of_their_names() {
    run_test("wizard-pdu", |w| {
        let d = w.dir().to_path_buf();
        let pdu = Snmpd::start_on(&d.join("snmpd"), lan_host(2, 4))?;
        w.add_echo_device("outlet-3", &[])?;
        w.add_echo_device("OUTLET-6", &[])?;
        let creds = write_credentials(
            &d.join("creds.toml"),
            &[("127.0.2.4", "communities = [\"nobody\", \"private\"]")],
        )?;
        let creds = creds.display().to_string();
        let port = pdu.port().to_string();
        let args = [
            "wizard",
            "pdu",
            "127.0.2.4",
            "--port",
            &port,
            "--credentials",
            &creds,
            "--timeout",
            "10s",
        ];
        let out = w.mo_ok(&args, None)?;
        let all = out.combined();
        let outlet = |n: u32| format!("snmp://127.0.2.4:{port}/apc/{n}");
        for line in [
            format!("~ device outlet-3: power `[]` → `[\"{}\"]`", outlet(3)),
            format!("~ device OUTLET-6: power `[]` → `[\"{}\"]`", outlet(6)),
            "~ secret snmp_auth of device outlet-3 (sealed)".to_string(),
            "outlets with no device of their name: 1 outlet-1, 2 outlet-2, 4 outlet-4".to_string(),
        ] {
            ensure!(out.stdout.contains(&line), "missing `{line}`:\n{all}");
        }
        // The outlet table: number, name, device.
        ensure!(
            out.stdout.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells == ["3", "outlet-3", "outlet-3"]
            }) && out.stdout.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells == ["8", "outlet-8", "-"]
            }),
            "{all}"
        );
        ensure!(!out.stdout.contains("private"), "{all}");

        let mut apply = args.to_vec();
        apply.push("--apply");
        let applied = w.mo_ok(&apply, None)?;
        ensure!(
            applied.stdout.contains("applied: "),
            "{}",
            applied.combined()
        );
        let status = w.mo_ok(&["power", "status", "outlet-3", "OUTLET-6"], None)?;
        ensure!(
            status.stdout.contains("outlet-3: on") && status.stdout.contains("OUTLET-6: on"),
            "{}",
            status.combined()
        );
        let again = w.mo_ok(&apply, None)?;
        ensure!(again.stdout.contains("no changes"), "{}", again.combined());
        Ok(())
    });
}

/// A PDU that answers only SNMPv3 (no community given matches): the user from --credentials
/// answers, and the bindings name it with its passphrases as sealed secrets.
#[test]
fn wizard_pdu_binds_outlets_over_snmp_v3() {
    run_test("wizard-pdu-v3", |w| {
        let d = w.dir().to_path_buf();
        let pdu = Snmpd::start_on(&d.join("snmpd"), lan_host(2, 6))?;
        w.add_echo_device("outlet-2", &[])?;
        let creds = write_credentials(
            &d.join("creds.toml"),
            &[(
                "127.0.2.6",
                "communities = [\"nobody\"]\nsnmp_user = \"admin\"\n\
                 snmp_auth = \"authpass123\"\nsnmp_privacy = \"privpass123\"",
            )],
        )?;
        let creds = creds.display().to_string();
        let port = pdu.port().to_string();
        let args = [
            "wizard",
            "pdu",
            "127.0.2.6",
            "--port",
            &port,
            "--credentials",
            &creds,
            "--timeout",
            "10s",
        ];
        let out = w.mo_ok(&args, None)?;
        let all = out.combined();
        for line in [
            format!("~ device outlet-2: power `[]` → `[\"snmp://admin@127.0.2.6:{port}/apc/2\"]`"),
            "~ secret snmp_auth of device outlet-2 (sealed)".to_string(),
            "~ secret snmp_privacy of device outlet-2 (sealed)".to_string(),
        ] {
            ensure!(out.stdout.contains(&line), "missing `{line}`:\n{all}");
        }
        ensure!(
            !out.stdout.contains("authpass123") && !out.stdout.contains("privpass123"),
            "{all}"
        );
        let mut apply = args.to_vec();
        apply.push("--apply");
        let applied = w.mo_ok(&apply, None)?;
        ensure!(
            applied.stdout.contains("applied: "),
            "{}",
            applied.combined()
        );
        let status = w.mo_ok(&["power", "status", "outlet-2"], None)?;
        ensure!(
            status.stdout.contains("outlet-2: on"),
            "{}",
            status.combined()
        );
        Ok(())
    });
}
