//! A rule's `snmp_trap` actions (issue 23 item 4) reach a real snmptrapd through the daemon, as
//! SNMPv2c and as SNMPv3 (SHA/AES user created with the engine ID of the action), and decode
//! with the shipped `docs/MO-EVENTS-MIB.txt` into the event's values; the passwords stay out of
//! the daemon's log.

use std::time::Duration;

use mo_testsupport::{Snmptrapd, TrapUser, ensure, run_test};

/// A console that panics once and then stays quiet.
const PANIC_ONCE: &str =
    "#!/bin/sh\necho \"Kernel panic - not syncing: Fatal exception on cpu 2\"\nexec sleep 600\n";

#[test]
fn a_rules_trap_actions_reach_snmptrapd_as_v2c_and_v3() {
    run_test("event-trap", |w| {
        let user = TrapUser {
            name: "mo-events".into(),
            engine_id: "80007ed9046d6f2d6532652d74657374".into(),
            auth_password: "auth-Secret-77".into(),
            priv_password: "priv-Secret-88".into(),
        };
        let trapd = Snmptrapd::start(&w.dir().join("snmptrapd"), std::slice::from_ref(&user))?;
        let script = w.write_script("console-trappy.sh", PANIC_ONCE)?;
        w.add_device("trappy", &format!("exec://{}", script.display()), &[])?;
        let config = w.write_script(
            "events.toml",
            &format!(
                r#"[[pattern]]
name = "panic"
regex = 'Kernel panic - not syncing'
severity = "critical"
message = "panic on {{device}}"

[[rules.rule]]
name = "traps"
min_severity = "critical"
actions = ["v2c", "v3"]

[actions.v2c]
kind = "snmp_trap"
address = "{addr}"
community = "public"

[actions.v3]
kind = "snmp_trap"
address = "{addr}"
version = "3"
user = "{name}"
auth = "sha"
auth_password = "{auth}"
privacy = "aes"
priv_password = "{privacy}"
engine_id = "{engine}"
"#,
                addr = trapd.address(),
                name = user.name,
                auth = user.auth_password,
                privacy = user.priv_password,
                engine = user.engine_id,
            ),
        )?;
        w.start_daemon(&["--events", &config.display().to_string()])?;

        let both = |text: &str| {
            text.contains("SNMP v2c, community public") && text.contains("SNMP v3, user mo-events")
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(150);
        while !both(&trapd.log_text()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = trapd.log_text();
        ensure!(
            both(&text),
            "snmptrapd did not get both traps:\n{text}\n{}",
            w.diagnostics()
        );
        for needle in [
            "MO-EVENTS-MIB::moEventTrap",
            "MO-EVENTS-MIB::moEventDevice = STRING: trappy",
            "MO-EVENTS-MIB::moEventSeverity = INTEGER: critical(5)",
            "MO-EVENTS-MIB::moEventMessage = STRING: panic on trappy",
            "MO-EVENTS-MIB::moEventSource = STRING: pattern",
            "MO-EVENTS-MIB::moEventPattern = STRING: panic",
            "MO-EVENTS-MIB::moEventCount = Gauge32: 1",
        ] {
            ensure!(
                text.matches(needle).count() == 2,
                "{needle:?} is not in both traps:\n{text}"
            );
        }
        // The event id in the traps is the stored event's.
        let events = w.mo_ok(&["events", "--device", "trappy"], None)?;
        let id = events
            .stdout
            .lines()
            .find(|l| l.contains("panic on trappy"))
            .and_then(|l| l.split_whitespace().next())
            .map(|id| id.trim_start_matches('#').to_owned())
            .unwrap_or_default();
        ensure!(
            !id.is_empty() && text.contains(&format!("MO-EVENTS-MIB::moEventId = STRING: {id}\n")),
            "event id {id:?} of `mo events` not in the traps:\n{}\n{text}",
            events.stdout
        );
        let log = w.daemon()?.log_text();
        ensure!(
            !log.contains("Secret-77") && !log.contains("Secret-88"),
            "a trap password is in the daemon's log:\n{log}"
        );
        Ok(())
    });
}
