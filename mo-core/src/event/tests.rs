#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

fn rules(toml_text: &str) -> Rules {
    let config: RulesConfig = toml::from_str(toml_text).unwrap();
    Rules::from_config(&config).unwrap()
}

fn load_error(toml_text: &str) -> String {
    let config: RulesConfig = toml::from_str(toml_text).unwrap();
    Rules::from_config(&config).unwrap_err().to_string()
}

fn alert(device: &str, severity: Severity, message: &str) -> Candidate {
    Candidate::new(device, EventSource::Pattern, severity, message)
}

fn action_names(d: &Verdict) -> Vec<&str> {
    d.actions.iter().map(|a| a.action.as_str()).collect()
}

const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC); // a Monday

#[test]
fn a_flood_of_identical_lines_is_one_event_with_a_count() {
    let mut m = EventManager::new(rules(
        r#"
        [[rule]]
        name = "all"
        actions = ["hook"]
        "#,
    ))
    .with_next_id(42);
    let mut inserts = Vec::new();
    let mut last_count = 1;
    let mut actions = 0;
    for i in 0..10_000i64 {
        let d = m.offer(
            alert("web1", Severity::Error, "disk error"),
            T0 + Duration::microseconds(i * 10),
        );
        actions += d.actions.len();
        match d.store {
            StoreOp::Insert(e) => inserts.push(e),
            StoreOp::UpdateCount { id, count, .. } => {
                assert_eq!(id, 42);
                assert_eq!(count, last_count + 1);
                last_count = count;
            }
        }
    }
    assert_eq!(inserts.len(), 1);
    assert_eq!(inserts[0].id, 42);
    assert_eq!(last_count, 10_000);
    assert_eq!(actions, 1, "actions run once for the whole flood");
    assert_eq!(m.next_id(), 43);
}

#[test]
fn dedup_distinguishes_device_severity_message_and_expires() {
    let mut m = EventManager::new(rules("dedup_window = \"10s\""));
    let first = m.offer(alert("a", Severity::Error, "x"), T0);
    assert!(matches!(first.store, StoreOp::Insert(ref e) if e.id == 1));
    for other in [
        alert("b", Severity::Error, "x"),
        alert("a", Severity::Warning, "x"),
        alert("a", Severity::Error, "y"),
        Candidate::new("a", EventSource::Power, Severity::Error, "x"),
    ] {
        assert!(matches!(m.offer(other, T0).store, StoreOp::Insert(_)));
    }
    // Within 10 s of the last occurrence: folded, and the window slides.
    let d = m.offer(alert("a", Severity::Error, "x"), T0 + Duration::seconds(10));
    assert!(matches!(
        d.store,
        StoreOp::UpdateCount {
            id: 1,
            count: 2,
            ..
        }
    ));
    let d = m.offer(alert("a", Severity::Error, "x"), T0 + Duration::seconds(19));
    assert!(matches!(
        d.store,
        StoreOp::UpdateCount {
            id: 1,
            count: 3,
            ..
        }
    ));
    // Quiet for longer than the window: a new event.
    let d = m.offer(alert("a", Severity::Error, "x"), T0 + Duration::seconds(30));
    assert!(matches!(d.store, StoreOp::Insert(ref e) if e.id == 6 && e.count == 1));

    let mut off = EventManager::new(rules("dedup_window = \"0s\""));
    off.offer(alert("a", Severity::Error, "x"), T0);
    assert!(matches!(
        off.offer(alert("a", Severity::Error, "x"), T0).store,
        StoreOp::Insert(_)
    ));
    assert_eq!(off.open_events(), 0);
}

#[test]
fn rules_match_on_source_device_group_severity_and_text() {
    let m = rules(
        r#"
        [groups]
        web = ["web*"]

        [[rule]]
        name = "web-critical"
        groups = ["web"]
        min_severity = "critical"
        actions = ["page"]

        [[rule]]
        name = "power"
        sources = ["power"]
        actions = ["log-power"]

        [[rule]]
        name = "db-disk"
        devices = ["db?"]
        text = "(?i)disk"
        actions = ["ticket"]
        stop = true

        [[rule]]
        name = "everything"
        actions = ["archive"]
        "#,
    );
    let mut m = EventManager::new(m).with_next_id(1);
    let cases: Vec<(Candidate, Vec<&str>)> = vec![
        (
            alert("web3", Severity::Critical, "panic"),
            vec!["page", "archive"],
        ),
        (alert("web3", Severity::Error, "oops"), vec!["archive"]),
        (
            Candidate::new("db1", EventSource::Power, Severity::Info, "off"),
            vec!["log-power", "archive"],
        ),
        (alert("db1", Severity::Info, "DISK full"), vec!["ticket"]),
        (alert("db12", Severity::Info, "disk full"), vec!["archive"]),
        (
            Candidate {
                groups: vec!["web".into()],
                ..alert("frontend", Severity::Critical, "down")
            },
            vec!["page", "archive"],
        ),
    ];
    for (candidate, want) in cases {
        let shown = format!("{candidate:?}");
        let d = m.offer(candidate, T0);
        assert_eq!(action_names(&d), want, "{shown}");
    }
}

#[test]
fn maintenance_window_suppresses_actions_but_still_stores() {
    let r = rules(
        r#"
        [groups]
        racks = ["r1-*"]

        [[rule]]
        name = "all"
        actions = ["hook"]
        after_ack = ["power-cycle"]

        [[maintenance]]
        name = "rack 1 upgrade"
        groups = ["racks"]
        start = "2026-11-23T09:00:00Z"
        end = "2026-11-23T11:00:00Z"
        "#,
    );
    let mut m = EventManager::new(r);
    let d = m.offer(alert("r1-n1", Severity::Critical, "panic"), T0);
    assert!(d.suppressed);
    assert_eq!(d.maintenance.as_deref(), Some("rack 1 upgrade"));
    assert!(d.actions.is_empty());
    assert_eq!(d.held_for_ack, 0);
    assert_eq!(d.rules, vec!["all"]);
    let StoreOp::Insert(event) = d.store else {
        panic!("not stored")
    };
    assert!(event.suppressed);
    // Another device, or after the window: actions run.
    let d = m.offer(alert("r2-n1", Severity::Critical, "panic"), T0);
    assert!(!d.suppressed);
    assert_eq!(action_names(&d), ["hook"]);
    let d = m.offer(
        alert("r1-n1", Severity::Critical, "other"),
        T0 + Duration::hours(1),
    );
    assert!(!d.suppressed);

    // A window added at run time, then removed.
    let window = MaintenanceWindow::between(
        "adhoc",
        vec!["r2-*".into()],
        vec![],
        T0,
        T0 + Duration::minutes(5),
    )
    .unwrap();
    m.add_maintenance(window);
    assert!(
        m.offer(
            alert("r2-n9", Severity::Info, "m"),
            T0 + Duration::minutes(1)
        )
        .suppressed
    );
    // A reload of the rules keeps it (and drops the file's windows the new rules lack).
    m.set_rules(rules("[[rule]]\nname = \"all\"\nactions = [\"hook\"]\n"));
    assert!(
        m.offer(
            alert("r2-n9", Severity::Info, "m2"),
            T0 + Duration::minutes(2)
        )
        .suppressed
    );
    assert!(
        !m.offer(
            alert("r1-n1", Severity::Info, "m3"),
            T0 + Duration::minutes(2)
        )
        .suppressed
    );
    assert!(m.remove_maintenance("adhoc"));
    assert!(
        !m.offer(
            alert("r2-n9", Severity::Info, "n"),
            T0 + Duration::minutes(1)
        )
        .suppressed
    );
    assert!(
        MaintenanceWindow::between("bad", vec![], vec![], T0, T0 + Duration::hours(1)).is_err()
    );
}

#[test]
fn schedules_gate_rules_by_day_and_time_of_day() {
    let r = rules(
        r#"
        [schedules.office]
        days = ["mon", "tue", "wed", "thu", "friday"]
        hours = ["08:00-18:00"]

        [schedules.night]
        hours = ["22:00-06:00"]
        utc = true

        [[rule]]
        name = "office"
        schedule = "office"
        actions = ["call-desk"]

        [[rule]]
        name = "night"
        schedule = "night"
        actions = ["page"]
        "#,
    );
    let mut m = EventManager::new(r).with_next_id(1);
    let cases = [
        (datetime!(2026-11-23 08:00 UTC), vec!["call-desk"]), // Monday morning
        (datetime!(2026-11-23 17:59 UTC), vec!["call-desk"]),
        (datetime!(2026-11-23 18:00 UTC), vec![]),
        (datetime!(2026-11-23 23:30 UTC), vec!["page"]),
        (datetime!(2026-11-24 05:59 UTC), vec!["page"]),
        (datetime!(2026-11-24 06:00 UTC), vec![]),
        (datetime!(2026-11-28 10:00 UTC), vec![]), // Saturday
        // Local time 09:00 at +02:00 is 07:00 UTC: the office schedule uses the offset given,
        // the night schedule UTC.
        (datetime!(2026-11-23 09:00 +2), vec!["call-desk"]),
        (datetime!(2026-11-23 00:30 +2), vec!["page"]),
        // 07:30 at +09:00 is Sunday 22:30 UTC: night, and before office hours locally.
        (datetime!(2026-11-23 07:30 +9), vec!["page"]),
        (datetime!(2026-11-23 12:00 +9), vec!["call-desk", "page"]),
    ];
    for (i, (now, want)) in cases.into_iter().enumerate() {
        let d = m.offer(alert("a", Severity::Info, &format!("m{i}")), now);
        assert_eq!(action_names(&d), want, "{now}");
    }
}

#[test]
fn rate_limit_drops_actions_per_rule_and_device() {
    let r = rules(
        r#"
        [[rule]]
        name = "limited"
        actions = ["hook"]
        rate_limit = { count = 2, per = "1m" }
        "#,
    );
    let mut m = EventManager::new(r);
    let mut runs = Vec::new();
    for i in 0..5 {
        let d = m.offer(
            alert("a", Severity::Error, &format!("e{i}")),
            T0 + Duration::seconds(i),
        );
        runs.push((d.actions.len(), d.rate_limited.clone()));
    }
    assert_eq!(runs[0], (1, vec![]));
    assert_eq!(runs[1], (1, vec![]));
    assert_eq!(runs[2], (0, vec!["limited".to_owned()]));
    // Another device has its own budget.
    assert_eq!(
        m.offer(alert("b", Severity::Error, "e"), T0).actions.len(),
        1
    );
    // A minute after the first run, one slot is free again.
    let d = m.offer(
        alert("a", Severity::Error, "late"),
        T0 + Duration::seconds(60),
    );
    assert_eq!(d.actions.len(), 1);
    let d = m.offer(
        alert("a", Severity::Error, "later"),
        T0 + Duration::seconds(60),
    );
    assert!(d.actions.is_empty());
    m.prune(T0 + Duration::hours(1));
    assert_eq!(
        m.offer(alert("a", Severity::Error, "x"), T0 + Duration::hours(1))
            .actions
            .len(),
        1
    );
}

#[test]
fn acknowledgement_releases_held_actions_and_closes_the_event() {
    let r = rules(
        r#"
        [[rule]]
        name = "panic"
        min_severity = "critical"
        actions = ["hook"]
        after_ack = ["power-cycle", "macro-collect"]
        "#,
    );
    let mut m = EventManager::new(r).with_next_id(7);
    let d = m.offer(alert("a", Severity::Critical, "panic"), T0);
    assert_eq!(action_names(&d), ["hook"]);
    assert_eq!(d.held_for_ack, 2);
    assert_eq!(m.held_actions(7).len(), 2);
    let released = m.ack(7);
    let names: Vec<_> = released.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["power-cycle", "macro-collect"]);
    assert!(released.iter().all(|a| a.rule == "panic"));
    assert!(m.ack(7).is_empty(), "released once");
    assert!(m.ack(999).is_empty());
    // After the ack the same alert is a new event.
    let d = m.offer(
        alert("a", Severity::Critical, "panic"),
        T0 + Duration::seconds(1),
    );
    assert!(matches!(d.store, StoreOp::Insert(ref e) if e.id == 8));
    // Held actions expire.
    m.prune(T0 + Duration::days(2));
    assert!(m.held_actions(8).is_empty());
}

#[test]
fn bad_configuration_is_refused_at_load_time_naming_rule_and_field() {
    let cases = [
        (
            "[[rule]]\nname = \"r1\"\ntext = \"(unclosed\"",
            "r1",
            "text",
        ),
        (
            "[[rule]]\nname = \"r2\"\nmin_severity = \"loud\"",
            "r2",
            "min_severity",
        ),
        (
            "[[rule]]\nname = \"r3\"\nsources = [\"pager\"]",
            "r3",
            "sources",
        ),
        (
            "[[rule]]\nname = \"r4\"\nschedule = \"nope\"",
            "r4",
            "schedule",
        ),
        (
            "[[rule]]\nname = \"r5\"\nrate_limit = { count = 0, per = \"1m\" }",
            "r5",
            "rate_limit.count",
        ),
        (
            "[[rule]]\nname = \"r6\"\nrate_limit = { count = 1, per = \"soon\" }",
            "r6",
            "rate_limit.per",
        ),
        (
            "[[rule]]\nname = \"d\"\n[[rule]]\nname = \"d\"",
            "d",
            "name",
        ),
        ("dedup_window = \"forever\"", "top level", "dedup_window"),
        ("[schedules.s]\nhours = [\"8-18\"]", "s", "hours"),
        ("[schedules.s]\ndays = [\"someday\"]", "s", "days"),
        (
            "[[maintenance]]\nname = \"m\"\ndevices = [\"a\"]",
            "m",
            "start",
        ),
        (
            "[[maintenance]]\nname = \"m\"\nstart = \"2026-01-01T00:00:00Z\"\nend = \"2026-01-02T00:00:00Z\"",
            "m",
            "devices",
        ),
        (
            "[[maintenance]]\nname = \"m\"\ndevices = [\"a\"]\nstart = \"tomorrow\"\nend = \"2026-01-02T00:00:00Z\"",
            "m",
            "start",
        ),
    ];
    for (text, name, field) in cases {
        let err = load_error(text);
        assert!(err.contains(&format!("`{name}`")), "{err}");
        assert!(err.contains(&format!("field `{field}`")), "{err}");
    }
    // Unknown keys are refused by serde itself.
    assert!(toml::from_str::<RulesConfig>("[[rule]]\nname = \"x\"\nactoins = []").is_err());
}

#[test]
fn candidate_from_a_scanner_match() {
    let found = crate::scan::Match {
        pattern: "panic".into(),
        severity: Severity::Critical,
        message: "panic on web1".into(),
        line: "Kernel panic".into(),
        context: vec!["before".into()],
        partial: false,
    };
    let c = Candidate::from_match("web1", &found, 5);
    assert_eq!(c.context, ["before", "Kernel panic"]);
    assert_eq!(c.source, EventSource::Pattern);
    let mut m = EventManager::new(Rules::default());
    let StoreOp::Insert(e) = m.offer(c, T0).store else {
        panic!("not inserted")
    };
    assert_eq!(
        (e.time_ns, e.message.as_str(), e.count),
        (5, "panic on web1", 1)
    );
    for s in EventSource::ALL {
        assert_eq!(s.as_str().parse::<EventSource>().unwrap(), s);
    }
}

#[test]
fn escalation_fires_each_step_once_unless_acknowledged() {
    let r = rules(
        r#"
        [[rule]]
        name = "panic"
        min_severity = "critical"
        actions = ["mail"]
        escalate = [{ after = "15m", actions = ["pager"] }, { after = "1h", actions = ["phone", "sms"] }]
        "#,
    );
    assert!(r.action_names().contains("phone"));
    let mut m = EventManager::new(r);
    let d = m.offer(alert("a", Severity::Critical, "panic"), T0);
    assert_eq!(action_names(&d), ["mail"]);
    assert_eq!(m.pending_escalations(), 2);
    let due_ns = m.next_escalation().unwrap();
    assert_eq!(due_ns, rules::unix_ns(T0 + Duration::minutes(15)));
    assert!(m.due_escalations(T0 + Duration::minutes(14)).is_empty());
    let due = m.due_escalations(T0 + Duration::minutes(15));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0, 1);
    assert_eq!(due[0].1[0].action, "pager");
    assert!(
        m.due_escalations(T0 + Duration::minutes(16)).is_empty(),
        "once"
    );
    let due = m.due_escalations(T0 + Duration::hours(2));
    let names: Vec<_> = due[0].1.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["phone", "sms"]);
    assert_eq!(m.next_escalation(), None);

    // An acknowledgement cancels the steps not yet due.
    let d = m.offer(alert("b", Severity::Critical, "panic"), T0);
    let StoreOp::Insert(e) = d.store else {
        panic!()
    };
    assert_eq!(m.pending_escalations(), 2);
    m.ack(e.id);
    assert_eq!(m.pending_escalations(), 0);
    assert!(m.due_escalations(T0 + Duration::days(1)).is_empty());

    // Bad steps are refused naming the field.
    let err =
        load_error("[[rule]]\nname = \"r\"\nescalate = [{ after = \"0s\", actions = [\"p\"] }]\n");
    assert!(err.contains("escalate[0].after"), "{err}");
    let err = load_error("[[rule]]\nname = \"r\"\nescalate = [{ after = \"1m\", actions = [] }]\n");
    assert!(err.contains("escalate[0].actions"), "{err}");
}

#[test]
fn pending_escalations_can_be_kept_and_restored_in_a_new_manager() {
    let text = r#"
        [[rule]]
        name = "panic"
        min_severity = "critical"
        escalate = [{ after = "15m", actions = ["pager"] }]
        "#;
    let mut m = EventManager::new(rules(text));
    let v0 = m.escalations_version();
    m.offer(alert("a", Severity::Critical, "panic"), T0);
    assert_ne!(
        m.escalations_version(),
        v0,
        "a new step changes the version"
    );
    let kept = m.pending();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].event, 1);
    assert_eq!(kept[0].actions[0].action, "pager");
    // Through JSON, as the daemon keeps them, into a manager after a restart.
    let json = serde_json::to_string(&kept).unwrap();
    let back: Vec<super::PendingEscalation> = serde_json::from_str(&json).unwrap();
    let mut restarted = EventManager::new(rules(text)).with_next_id(2);
    restarted.restore(back);
    assert!(
        restarted
            .due_escalations(T0 + Duration::minutes(14))
            .is_empty()
    );
    let due = restarted.due_escalations(T0 + Duration::minutes(15));
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].0, due[0].1[0].action.as_str()), (1, "pager"));
    assert!(restarted.pending().is_empty());
    // An acknowledgement drops the steps and changes the version; acking again does not.
    let v = m.escalations_version();
    m.ack(1);
    assert!(m.pending().is_empty());
    let v2 = m.escalations_version();
    assert_ne!(v2, v);
    m.ack(1);
    assert_eq!(m.escalations_version(), v2);
}
