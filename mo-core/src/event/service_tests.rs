#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The event service on embedded consoles: a console opened with scan patterns raises events
//! exactly as the daemon's do — kept by the sink, written into the console's timeline, acted on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use super::*;
use crate::console::{ConsoleConfig, LinkState, Mode, ViewerEvent};
use crate::event::{EventSource, RuleConfig, RulesConfig};
use crate::link::EchoConnector;
use crate::record::RecordKind;
use crate::scan::{Pattern, PatternBook, Severity};

/// A sink that remembers what it was told.
#[derive(Default)]
struct Recording {
    inserted: Mutex<Vec<Event>>,
    counts: Mutex<Vec<(u64, u64)>>,
    actions: Mutex<Vec<(String, u64)>>,
}

impl EventSink for Recording {
    fn insert(&self, event: &Event) {
        self.inserted.lock().unwrap().push(event.clone());
    }
    fn update_count(&self, id: u64, count: u64, _last_ns: i64) {
        self.counts.lock().unwrap().push((id, count));
    }
    fn get(&self, id: u64) -> Option<Event> {
        self.inserted
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.id == id)
            .cloned()
    }
    fn run_action(&self, action: &ActionRef, event: &Event) {
        self.actions
            .lock()
            .unwrap()
            .push((action.action.clone(), event.id));
    }
}

fn panic_patterns() -> PatternBook {
    PatternBook::for_every_device(vec![Pattern::new(
        "panic",
        "Kernel panic",
        Severity::Critical,
        "",
    )])
    .unwrap()
}

async fn next_from(raised: &mut broadcast::Receiver<Event>, source: EventSource) -> Event {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = raised.recv().await.unwrap();
            if event.source == source {
                return event;
            }
        }
    })
    .await
    .expect("no event within 10 s")
}

#[tokio::test]
async fn an_embedded_console_with_a_pattern_raises_an_event_into_sink_and_timeline() {
    let sink = Arc::new(Recording::default());
    let config = RulesConfig {
        rules: vec![RuleConfig {
            name: "page".into(),
            min_severity: Some("critical".into()),
            actions: vec!["pager".into()],
            after_ack: vec!["cycle".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let rules = Rules::from_config(&config).unwrap();
    let events = EventService::start(rules, panic_patterns(), sink.clone(), 7);
    let mut raised = events.subscribe();
    let console = events.spawn_console(ConsoleConfig::new("web01"), Arc::new(EchoConnector), None);
    let mut state = console.watch_state();
    state
        .wait_for(|s| matches!(s, LinkState::Up { .. }))
        .await
        .unwrap();
    let up = next_from(&mut raised, EventSource::Connection).await;
    assert_eq!(up.message, "link up");

    let mut alice = console
        .attach("alice", Mode::Attach, Some(0))
        .await
        .unwrap();
    alice.write(b"Kernel panic - not syncing\n").await.unwrap();
    let event = next_from(&mut raised, EventSource::Pattern).await;
    assert_eq!(event.device, "web01");
    assert_eq!(event.severity, Severity::Critical);
    assert_eq!(event.message, "Kernel panic - not syncing");
    assert!(event.id >= 7, "numbered from the given id: {}", event.id);
    assert!(
        sink.inserted
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.id == event.id)
    );
    assert_eq!(
        sink.actions.lock().unwrap().as_slice(),
        [("pager".to_string(), event.id)]
    );

    // The console's timeline shows the event (the record log gets it the same way).
    let shown = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let ViewerEvent::Chunk(c) = alice.recv().await
                && c.kind == RecordKind::Event
            {
                return String::from_utf8_lossy(&c.bytes).into_owned();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        shown,
        format!("event #{} [critical] Kernel panic - not syncing", event.id)
    );

    // The held action runs once the event is acknowledged.
    events.acknowledged(event.id);
    tokio::time::timeout(Duration::from_secs(10), async {
        while sink.actions.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        sink.actions.lock().unwrap()[1],
        ("cycle".to_string(), event.id)
    );
    console.shutdown().await;
}

#[tokio::test]
async fn patterns_apply_to_the_devices_their_globs_name() {
    let mut only_db = crate::scan::PatternConfig::new("db-panic", "Kernel panic", "critical");
    only_db.devices = vec!["db*".into()];
    let marker = crate::scan::PatternConfig::new("marker", "MARKER", "info");
    let book = PatternBook::from_config(&[only_db, marker]).unwrap();
    let events = EventService::start(Rules::default(), book, Arc::new(NoSink), 1);
    let mut raised = events.subscribe();
    let web = events.spawn_console(ConsoleConfig::new("web01"), Arc::new(EchoConnector), None);
    let db = events.spawn_console(ConsoleConfig::new("db01"), Arc::new(EchoConnector), None);
    for console in [&web, &db] {
        let mut state = console.watch_state();
        state
            .wait_for(|s| matches!(s, LinkState::Up { .. }))
            .await
            .unwrap();
        let me = console.attach("bob", Mode::Attach, Some(0)).await.unwrap();
        me.write(b"Kernel panic - not syncing\nMARKER\n")
            .await
            .unwrap();
    }
    // Each console's matches arrive in order: its marker comes after any panic it raised.
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|(_, m): &&(String, String)| m == "MARKER")
        .count()
        < 2
    {
        let event = next_from(&mut raised, EventSource::Pattern).await;
        seen.push((event.device, event.message));
    }
    let panics: Vec<&str> = seen
        .iter()
        .filter(|(_, m)| m != "MARKER")
        .map(|(d, _)| d.as_str())
        .collect();
    assert_eq!(panics, ["db01"], "{seen:?}");
    web.shutdown().await;
    db.shutdown().await;
}

#[tokio::test]
async fn candidates_offered_by_other_producers_are_recorded_on_their_device() {
    let events = EventService::start(Rules::default(), panic_patterns(), Arc::new(NoSink), 1);
    let mut raised = events.subscribe();
    let console = events.spawn_console(ConsoleConfig::new("pdu7"), Arc::new(EchoConnector), None);
    let mut viewer = console.attach("carol", Mode::Spy, Some(0)).await.unwrap();
    events.offer(Candidate::new(
        "pdu7",
        EventSource::Power,
        Severity::Notice,
        "power off by carol",
    ));
    let event = next_from(&mut raised, EventSource::Power).await;
    assert_eq!(event.message, "power off by carol");
    assert_eq!(events.dropped(), 0);
    let shown = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let ViewerEvent::Chunk(c) = viewer.recv().await
                && c.kind == RecordKind::Event
                && c.bytes.ends_with(b"power off by carol")
            {
                return String::from_utf8_lossy(&c.bytes).into_owned();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        shown,
        format!("event #{} [notice] power off by carol", event.id)
    );
    console.shutdown().await;
}

#[tokio::test]
async fn a_console_opened_with_open_local_and_an_event_service_raises_events() {
    use crate::facade::{LocalOptions, open_local};
    let events = EventService::start(Rules::default(), panic_patterns(), Arc::new(NoSink), 1);
    let mut raised = events.subscribe();
    let options = LocalOptions::default().user("dave").events(events.clone());
    let console = open_local("emb01", Arc::new(EchoConnector), options)
        .await
        .unwrap();
    console
        .send_line("Kernel panic - not syncing")
        .await
        .unwrap();
    let event = next_from(&mut raised, EventSource::Pattern).await;
    assert_eq!(event.device, "emb01");
    assert_eq!(event.severity, Severity::Critical);
    // The echo device returns the line with the `\r` send_line ends it with.
    assert!(
        event.message.starts_with("Kernel panic - not syncing"),
        "{}",
        event.message
    );
    console.close().await.unwrap();
}
