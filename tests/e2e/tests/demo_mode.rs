//! `mod --demo`: five simulated devices and the user demo/demo, reachable with a stock client;
//! a BREAK sent through the escape reaches a simulated machine.

use std::time::Duration;

use mo_testsupport::{Login, WAIT, ensure, run_test};

#[test]
fn demo_has_five_sim_devices_with_login_prompts() {
    run_test("demo", |w| {
        let port = w.port();
        w.start_daemon(&["--demo"])?;
        let log = w.daemon()?.log_text();
        ensure!(
            log.contains("demo") && log.contains(&port.to_string()),
            "the demo should print how to connect (user demo, port {port}):\n{log}"
        );

        let demo = w.client("demo", "demo")?;
        let list = demo.run(Login::Shell, &["list"], None)?.ok()?;
        for n in 1..=5 {
            let name = format!("sim-0{n}");
            ensure!(
                list.stdout.split_whitespace().any(|word| word == name),
                "`list` should show {name}:\n{}",
                list.combined()
            );
        }
        let wrong = w.client("demo", "not-demo")?;
        let out = wrong.run(Login::Shell, &["list"], None)?;
        ensure!(
            !out.success(),
            "demo with a wrong password was let in:\n{}",
            out.combined()
        );

        // The simulated machine boots to a login prompt.
        let pane = w.terminal("demo", &demo, Login::Shell, &["console", "sim-01"])?;
        pane.wait_for("attached read-write", WAIT)?;
        pane.wait_for("login:", Duration::from_secs(60))?;

        // BREAK through the escape (`l1`, break sequence 1) reaches the simulated machine as a
        // control operation: it drops into its boot monitor.
        pane.send_keys(&["C-e", "c", "l", "1"])?;
        pane.wait_for("SimBoot monitor", WAIT)?;
        Ok(())
    });
}
