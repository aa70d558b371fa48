#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::power::testing::Recorder;

fn target(name: &str, controller: Arc<dyn PowerController>) -> PowerTarget {
    PowerTarget {
        device: name.to_string(),
        controller: Ok(controller),
        console: None,
    }
}

fn collecting(service: &PowerService) -> Arc<Mutex<Vec<Candidate>>> {
    let raised = Arc::new(Mutex::new(Vec::new()));
    let sink = raised.clone();
    assert!(service.raise_events_with(move |c| sink.lock().unwrap().push(c)));
    assert!(!service.raise_events_with(|_| {}), "set twice");
    raised
}

#[tokio::test]
async fn actions_raise_outcomes_and_move_the_activity() {
    let service = PowerService::new();
    let raised = collecting(&service);
    let log = Recorder::log();
    let good = Recorder::new("good", &log, PowerCapabilities::ALL);
    let bad = Recorder::new("bad", &log, PowerCapabilities::ALL);
    bad.fail_with("outlet stuck");
    let none = PowerTarget {
        device: "none".into(),
        controller: Err(Unavailable::new("none: no power controller")),
        console: None,
    };
    let plan = PowerPlan::single(vec![target("good", good), target("bad", bad), none]);
    let mut steps = Vec::new();
    let outcome = service
        .perform(&plan, PowerAction::Off, "alice", |s| steps.push(s))
        .await;
    assert!(!outcome.all_ok());
    let lines: Vec<&str> = outcome.results.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(lines[0], "none: failed: none: no power controller");
    assert!(lines[1].starts_with("good: off done ("), "{lines:?}");
    assert!(lines[2].starts_with("bad: off failed: "), "{lines:?}");
    assert!(
        outcome.summary.ends_with(", 1 without power control"),
        "{}",
        outcome.summary
    );
    assert!(!steps.is_empty());
    let raised = raised.lock().unwrap();
    assert_eq!(raised.len(), 3);
    assert!(raised.iter().all(|c| c.source == EventSource::Power));
    let good_event = raised.iter().find(|c| c.device == "good").unwrap();
    assert_eq!(good_event.severity, Severity::Info);
    assert!(good_event.message.starts_with("power off by alice: done"));
    let bad_event = raised.iter().find(|c| c.device == "bad").unwrap();
    assert_eq!(bad_event.severity, Severity::Warning);
    assert!(
        bad_event.message.contains("outlet stuck"),
        "{}",
        bad_event.message
    );
    // Started and ended: two moves each; a device never switched did not move.
    assert_eq!(service.shared.activity_of("good"), 2);
    assert_eq!(service.shared.activity_of("bad"), 2);
    assert_eq!(service.shared.activity_of("none"), 0);
}

#[tokio::test]
async fn a_slow_device_times_out_and_is_logged() {
    let service = PowerService::new().with_device_timeout(Duration::from_millis(50));
    let raised = collecting(&service);
    let log = Recorder::log();
    let slow = Recorder::new("slow", &log, PowerCapabilities::ALL);
    slow.take(Duration::from_secs(30));
    let outcome = service
        .perform(
            &PowerPlan::single(vec![target("slow", slow)]),
            PowerAction::On,
            "bob",
            |_| {},
        )
        .await;
    assert!(!outcome.all_ok());
    let raised = raised.lock().unwrap();
    assert_eq!(raised.len(), 1);
    assert!(
        raised[0].message.contains("failed"),
        "{}",
        raised[0].message
    );
}

#[tokio::test]
async fn the_poller_reports_only_changes_nobody_made_through_mo() {
    let service = PowerService::new();
    let raised = collecting(&service);
    let log = Recorder::log();
    let pressed = Recorder::new("pressed", &log, PowerCapabilities::ALL);
    let switched = Recorder::new("switched", &log, PowerCapabilities::ALL);
    let unbound = PowerTarget {
        device: "unbound".into(),
        controller: Err(Unavailable::new("unbound: no power controller")),
        console: None,
    };
    let targets = vec![
        target("pressed", pressed.clone()),
        target("switched", switched.clone()),
        unbound,
    ];
    let mut round = 0;
    let shared = service.shared.clone();
    service
        .poll(Duration::from_millis(5), || {
            round += 1;
            match round {
                // Between the first and the second reading: someone presses a button on one,
                // mo switches the other.
                2 => {
                    pressed.set_state(PowerState::On);
                    shared.bump_activity("switched");
                    switched.set_state(PowerState::On);
                    shared.bump_activity("switched");
                }
                4 => return None,
                _ => {}
            }
            Some(targets.clone())
        })
        .await;
    assert_eq!(round, 4);
    let raised = raised.lock().unwrap();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].device, "pressed");
    assert_eq!(raised[0].message, "power on (was off) without a mo action");
    assert_eq!(raised[0].severity, Severity::Warning);
}

#[tokio::test]
async fn states_come_back_in_order_with_typed_errors() {
    let log = Recorder::log();
    let on = Recorder::new("on", &log, PowerCapabilities::ALL);
    on.set_state(PowerState::On);
    let slow = Recorder::new("slow", &log, PowerCapabilities::ALL);
    let targets = vec![
        PowerTarget {
            device: "x".into(),
            controller: Err(Unavailable::new("x: broken")),
            console: None,
        },
        target("on", on),
        target("slow", slow),
    ];
    let states = read_states(&targets, Duration::from_secs(5)).await;
    let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x", "on", "slow"]);
    assert!(matches!(&states[0].1, Err(StatusError::Unavailable(u)) if u.reason == "x: broken"));
    assert_eq!(states[1].1.as_ref().unwrap(), &PowerState::On);
    assert_eq!(states[2].1.as_ref().unwrap(), &PowerState::Off);
}
