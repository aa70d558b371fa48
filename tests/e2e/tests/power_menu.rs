//! The escape-sequence power menu inside a console (issue 4 item 9) against a real ipmi_sim BMC:
//! `Ctrl-E c P` shows the state and the keys, `1` switches on at once, the destructive ones ask
//! for `yes`, the policy decides (an operator may look but not switch), and every action lands in
//! the device's record log, the audit log and the events (one timeline, item 8).

use std::time::Duration;

use mo_testsupport::{IpmiSim, Login, Sol, ensure, run_test};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn power_menu_switches_after_confirmation_and_is_logged() {
    run_test("power-menu", |w| {
        let bmc = IpmiSim::start_with(w.dir(), "power", Sol::None)?;
        w.add_echo_device("srv1", &["--power", &bmc.address()])?;
        w.mo_ok(
            &["secret", "set", "srv1", "password", "--stdin"],
            Some("password\n"),
        )?;
        let alice = w.add_user("alice", "alice-pw")?;
        let otto = w.add_user_with_role("otto", "otto-pw", Some(("operator", "all")))?;
        w.start_daemon(&[])?;

        let a = w.terminal("alice", &alice, Login::Attach("srv1"), &[])?;
        a.wait_for("attached read-write", WAIT)?;
        // The menu shows the state read from the BMC and the keys.
        a.send_keys(&["C-e", "c", "P"])?;
        a.wait_for("srv1: power is off (ipmi://admin@127.0.0.1", WAIT)?;
        a.wait_for("power: s status, 1 on, 0 off", WAIT)?;
        // On needs no confirmation.
        a.send_keys(&["1"])?;
        a.wait_for("power on by alice: done", WAIT)?;
        ensure!(bmc.power() == "1", "BMC power after on: {}", bmc.power());

        // A cycle not confirmed does nothing.
        let changes_before = bmc.power_log();
        a.send_keys(&["C-e", "c", "P"])?;
        a.wait_for_count("power: s status", 2, WAIT)?;
        a.send_keys(&["c"])?;
        a.wait_for("[power cycle: type yes to confirm:", WAIT)?;
        a.send_keys(&["n", "o", "Enter"])?;
        a.wait_for("not confirmed, nothing done", WAIT)?;
        ensure!(
            bmc.power_log() == changes_before,
            "an unconfirmed cycle reached the BMC:\n{}",
            bmc.power_log()
        );
        // Off confirmed with yes switches off; status through the menu says so.
        a.send_keys(&["C-e", "c", "P"])?;
        a.wait_for_count("power: s status", 3, WAIT)?;
        a.send_keys(&["0"])?;
        a.wait_for("[power off: type yes to confirm:", WAIT)?;
        a.send_text("yes")?;
        a.send_keys(&["Enter"])?;
        a.wait_for("power off by alice: done", WAIT)?;
        ensure!(bmc.power() == "0", "BMC power after off: {}", bmc.power());
        a.send_keys(&["C-e", "c", "P", "s"])?;
        a.wait_for_count("srv1: power is off", 2, WAIT)?;
        // The console still works after the menu.
        a.send_line("after-menu")?;
        a.wait_for("got: after-menu", WAIT)?;

        // An operator may see the state but not switch: denied, and the denial is in the log.
        let o = w.terminal("otto", &otto, Login::Attach("srv1"), &[])?;
        o.wait_for("srv1:", WAIT)?;
        o.send_keys(&["C-e", "c", "P"])?;
        o.wait_for("srv1: power is off", WAIT)?;
        o.send_keys(&["1"])?;
        o.wait_for("denied", WAIT)?;
        ensure!(bmc.power() == "0", "otto switched the BMC on");

        // One timeline: the record log, the audit log and the events all hold the actions.
        let log = w.mo_ok(&["log", "show", "srv1"], None)?;
        for needle in [
            "power on by alice via srv1 (ipmi://",
            "power on by alice: done",
            "power off by alice: done",
            "otto denied",
        ] {
            ensure!(
                log.stdout.contains(needle),
                "`{needle}` missing from the record log:\n{}",
                log.stdout
            );
        }
        let audit = w.mo_ok(&["audit"], None)?;
        ensure!(
            audit.stdout.contains("power.on") && audit.stdout.contains("power.off"),
            "audit:\n{}",
            audit.stdout
        );
        let events = w.mo_ok(&["events", "--device", "srv1"], None)?;
        ensure!(
            events.stdout.contains("power on by alice: done")
                && events.stdout.contains("power off by alice: done"),
            "events:\n{}",
            events.stdout
        );
        Ok(())
    });
}

#[test]
fn menu_without_power_control_closes_with_a_reason() {
    run_test("power-menu-none", |w| {
        w.add_echo_device("plain", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;
        let a = w.terminal("alice", &alice, Login::Attach("plain"), &[])?;
        a.wait_for("attached read-write", WAIT)?;
        a.send_keys(&["C-e", "c", "P"])?;
        a.wait_for("plain: no power controller", WAIT)?;
        // The menu is closed: the next key goes to the device.
        a.send_line("1-typed")?;
        a.wait_for("got: 1-typed", WAIT)?;
        Ok(())
    });
}

#[test]
fn poller_reports_changes_mo_did_not_make() {
    run_test("power-poll", |w| {
        let bmc = IpmiSim::start_with(w.dir(), "power", Sol::None)?;
        w.add_echo_device("srv2", &["--power", &bmc.address()])?;
        w.mo_ok(
            &["secret", "set", "srv2", "password", "--stdin"],
            Some("password\n"),
        )?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&["--power-poll", "1"])?;
        // A change through mo is not reported as unexpected.
        alice
            .run(Login::Shell, &["power", "on", "srv2"], None)?
            .ok()?;
        // Someone presses the button: the poller notices.
        std::thread::sleep(Duration::from_secs(3));
        bmc.set_power(false)?;
        let deadline = std::time::Instant::now() + WAIT;
        let events = loop {
            let events = w.mo_ok(&["events", "--device", "srv2"], None)?;
            if events.stdout.contains("without a mo action") {
                break events;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "no event for the change made behind mo's back:\n{}",
                events.stdout
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        ensure!(
            events
                .stdout
                .contains("power off (was on) without a mo action")
                && events.stdout.matches("without a mo action").count() == 1,
            "events:\n{}",
            events.stdout
        );
        let log = w.mo_ok(&["log", "show", "srv2", "--kind", "power"], None)?;
        ensure!(
            log.stdout
                .contains("observed: power off (was on) without a mo action")
                && log.stdout.contains("power on by alice: done"),
            "log:\n{}",
            log.stdout
        );
        Ok(())
    });
}
