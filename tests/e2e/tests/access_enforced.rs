//! Access control at every door (issue 5 item 2), with the real OpenSSH client: a user with the
//! built-in `viewer` role may list and spy but not attach (it spies instead), force, send a
//! BREAK or switch power; a user with no grant sees no devices at all; an admin may do
//! everything. Every attempt is in the audit log (`mo audit`).

use mo_testsupport::{Login, WAIT, ensure, run_test};

const PDU: &str = "#!/bin/sh\ncase \"$1\" in status) echo on ;; *) exit 0 ;; esac\n";

#[test]
fn spy_only_user_is_held_to_spying_and_every_attempt_is_audited() {
    run_test("access-enforced", |w| {
        let pdu = w.write_script("pdu.sh", PDU)?;
        let power = format!("exec://{}?arg={{action}}", pdu.display());
        w.add_echo_device("ex1", &["--power", &power])?;
        let admin = w.add_user("root1", "root-pw")?;
        let viewer = w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let nobody = w.add_user_with_role("nemo", "nemo-pw", None)?;
        w.start_daemon(&[])?;

        // The viewer sees the device, attaches as a spy, and is refused force and break.
        let list = viewer.run(Login::Shell, &["list"], None)?.ok()?;
        ensure!(
            list.stdout.contains("ex1"),
            "viewer list:\n{}",
            list.combined()
        );
        let v = w.terminal("vera", &viewer, Login::Shell, &["console", "ex1"])?;
        v.wait_for("spying instead", WAIT)?;
        v.send_keys(&["C-e", "c", "f"])?;
        v.wait_for("may not force ex1", WAIT)?;
        v.send_keys(&["C-e", "c", "l", "1"])?;
        v.wait_for("may not", WAIT)?;
        let force = viewer.run(Login::Shell, &["force", "ex1"], None)?;
        ensure!(
            !force.status.success() && force.stdout.contains("denied"),
            "viewer force:\n{}",
            force.combined()
        );
        let off = viewer.run(Login::Shell, &["power", "off", "ex1"], None)?;
        ensure!(
            !off.status.success() && off.stdout.contains("denied"),
            "viewer power off:\n{}",
            off.combined()
        );

        // No grant: nothing is visible, not even by name.
        let list = nobody.run(Login::Shell, &["list"], None)?.ok()?;
        ensure!(
            !list.stdout.contains("ex1"),
            "nemo sees ex1:\n{}",
            list.combined()
        );
        let spy = nobody.run(Login::Shell, &["spy", "ex1"], None)?;
        ensure!(
            spy.stdout.contains("unknown device `ex1`"),
            "{}",
            spy.combined()
        );

        // The admin may switch power.
        let status = admin
            .run(Login::Shell, &["power", "status", "ex1"], None)?
            .ok()?;
        ensure!(status.stdout.contains("ex1: on"), "{}", status.combined());
        let cycle = admin
            .run(Login::Shell, &["power", "cycle", "ex1"], None)?
            .ok()?;
        ensure!(cycle.stdout.contains("done"), "{}", cycle.combined());

        // The audit log holds the denials, the logins and the admin's power action.
        let denied = w.mo_ok(&["audit", "--user", "vera", "--denied"], None)?;
        for action in ["attach", "force", "break", "power.control"] {
            ensure!(
                denied.stdout.contains(action),
                "no denied {action} in the audit log:\n{}",
                denied.stdout
            );
        }
        let logins = w.mo_ok(&["audit", "--action", "login"], None)?;
        for user in ["vera", "nemo", "root1"] {
            ensure!(
                logins.stdout.contains(user),
                "no login of {user}:\n{}",
                logins.stdout
            );
        }
        let power = w.mo_ok(&["audit", "--user", "root1", "--device", "ex1"], None)?;
        ensure!(power.stdout.contains("power.cycle"), "{}", power.stdout);
        Ok(())
    });
}
