//! Power by device name from the SSH shell (issue 4 item 9): `power status|on|off|cycle NAME…`
//! drives each device's bound controllers (here the `exec` power controller, a real program
//! keeping a state file per outlet; a device with two supplies switches both), and every action
//! lands in the device's record log as a `power` record.

use mo_testsupport::{Login, ensure, run_test};

const PDU: &str = r#"#!/bin/sh
# pdu.sh ACTION OUTLET — a fake PDU keeping outlet states in files beside this script.
state="$(dirname "$0")/outlet-$2"
case "$1" in
  status) cat "$state" 2>/dev/null || echo off ;;
  on|off) echo "$1" >"$state" ;;
  cycle|reset) echo on >"$state" ;;
  soft-off) echo off >"$state" ;;
  *) echo "unknown action $1" >&2; exit 3 ;;
esac
"#;

#[test]
fn power_commands_switch_every_supply_and_are_logged() {
    run_test("power-shell", |w| {
        let pdu = w.write_script("pdu.sh", PDU)?;
        let outlet = |n: u32| format!("exec://{}?arg={{action}}&arg={n}", pdu.display());
        w.add_echo_device("web01", &["--power", &outlet(1), "--power", &outlet(2)])?;
        w.add_echo_device("web02", &["--power", &outlet(3)])?;
        w.add_echo_device("nopower", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        w.start_daemon(&[])?;

        let status = alice
            .run(Login::Shell, &["power", "status", "web*"], None)?
            .ok()?;
        ensure!(
            status.stdout.contains("web01: off") && status.stdout.contains("web02: off"),
            "status before:\n{}",
            status.combined()
        );
        let on = alice
            .run(Login::Shell, &["power", "on", "web*"], None)?
            .ok()?;
        ensure!(
            on.stdout.contains("web01: on done"),
            "on:\n{}",
            on.combined()
        );
        for n in [1, 2, 3] {
            let state = std::fs::read_to_string(w.dir().join(format!("outlet-{n}")))
                .map_err(|e| mo_testsupport::Error::io("read outlet state", e))?;
            ensure!(
                state.trim() == "on",
                "outlet {n} is {state:?} after `power on`"
            );
        }
        let status = alice
            .run(Login::Shell, &["power", "status", "web01"], None)?
            .ok()?;
        ensure!(
            status.stdout.contains("web01: on"),
            "status after:\n{}",
            status.combined()
        );

        // A device without a controller, an unknown device, a bad action: clear errors, exit 1/2.
        let none = alice.run(Login::Shell, &["power", "off", "nopower"], None)?;
        ensure!(
            !none.status.success() && none.stdout.contains("no power controller"),
            "nopower:\n{}",
            none.combined()
        );
        let unknown = alice.run(Login::Shell, &["power", "off", "ghost"], None)?;
        ensure!(
            unknown.stdout.contains("unknown device `ghost`"),
            "{}",
            unknown.combined()
        );
        let bad = alice.run(Login::Shell, &["power", "explode", "web01"], None)?;
        ensure!(
            bad.stdout.contains("bad power action"),
            "{}",
            bad.combined()
        );

        // The record log holds the action with who did it.
        let log = w.mo_ok(&["log", "show", "web01", "--kind", "power"], None)?;
        ensure!(
            log.stdout.contains("power on by alice") && log.stdout.contains("done"),
            "web01 log:\n{}",
            log.combined()
        );
        Ok(())
    });
}
