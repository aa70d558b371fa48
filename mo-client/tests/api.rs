//! mo-client against a real `mod --http` with exec and sim devices: typed REST answers, API errors
//! as mo_core::Error variants, remote console handles (attach, expect, who, spy refusals), the
//! event stream, and the `mo --server` commands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::StreamExt as _;
use mo_client::{Client, EventQuery, LogQuery, PowerAction};
use mo_core::Error;
use mo_core::automation::ExpectPattern;
use mo_core::console::Mode;
use mo_core::facade::Output;
use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{ensure, run_test};
use serde_json::json;

const PDU: &str = "#!/bin/sh\ncase \"$1\" in status) echo on ;; *) exit 0 ;; esac\n";
const LONG: Duration = Duration::from_secs(60);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn rest_methods_return_typed_answers_and_map_errors() {
    run_test("client-rest", |w| {
        let pdu = w.write_script("pdu.sh", PDU)?;
        let power = format!("exec://{}?arg={{action}}", pdu.display());
        w.add_echo_device("ex1", &["--power", &power])?;
        w.add_device("sim-a", "sim://sim-a?boot=fast", &[])?;
        w.add_user("root1", "root-pw")?;
        w.add_user_with_role("nemo", "nemo-pw", None)?;
        let root_t = add_token(w, "root1", "all")?;
        let nemo_t = add_token(w, "nemo", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        rt().block_on(async {
            let root = Client::new(&api.base, root_t.as_str()).unwrap();
            let nemo = Client::new(&api.base, nemo_t.as_str()).unwrap();
            let nobody = Client::new(&api.base, "mo_not_a_token").unwrap();

            assert_eq!(
                root.health().await.unwrap().status,
                mo_client::HealthStatus::Ok
            );
            let names: Vec<String> = root
                .devices()
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.name)
                .collect();
            assert!(names.contains(&"ex1".to_string()) && names.contains(&"sim-a".to_string()));
            let one = root.device("sim-a").await.unwrap();
            assert_eq!(one.url, "sim://sim-a?boot=fast");
            assert!(one.settings.is_some(), "{one:?}");

            // Errors are typed.
            let e = root.device("nope").await.unwrap_err();
            assert!(
                matches!(e, Error::NotFound { what: ref m } if m.contains("nope")),
                "{e:?}"
            );
            let e = nobody.devices().await.unwrap_err();
            assert!(matches!(e, Error::Auth { .. }), "{e:?}");
            assert!(nemo.devices().await.unwrap().is_empty());
            let e = nemo.device("sim-a").await.unwrap_err();
            assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
            let e = nemo.users().await.unwrap_err();
            assert!(matches!(e, Error::Denied { .. }), "{e:?}");
            let e = root.power_status("sim-a").await.unwrap_err();
            assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");

            // Devices and users are added and removed.
            let d = root
                .add_device(
                    "new1",
                    "sim://new1?boot=fast",
                    json!({"description": "via client"}),
                )
                .await
                .unwrap();
            assert_eq!(
                (d.name.as_str(), d.description.as_deref()),
                ("new1", Some("via client"))
            );
            let e = root
                .add_device("new1", "sim://new1", serde_json::Value::Null)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
            root.remove_device("new1").await.unwrap();
            let e = root.device("new1").await.unwrap_err();
            assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
            let u = root.add_user("carol", Some("pw")).await.unwrap();
            assert!(u.has_password);
            assert!(
                root.users()
                    .await
                    .unwrap()
                    .iter()
                    .any(|u| u.name == "carol")
            );
            assert!(
                root.roles()
                    .await
                    .unwrap()
                    .iter()
                    .any(|r| r.name == "admin")
            );

            // Power.
            let p = root.power_status("ex1").await.unwrap();
            assert_eq!(p.device, "ex1");
            assert_eq!(p.results[0].state, mo_client::PowerState::On, "{p:?}");
            let p = root.power("ex1", PowerAction::Cycle).await.unwrap();
            assert_eq!(p.ok, Some(true), "{p:?}");
            // Globs and groups: ex1 switches, sim-a has no controller (a failed report).
            let many = root
                .power_many(&["ex*", "@all"], PowerAction::Status)
                .await
                .unwrap();
            let names: Vec<&str> = many.iter().map(|r| r.device.as_str()).collect();
            assert_eq!(&names[..2], ["ex1", "sim-a"], "{many:?}");
            assert_eq!(
                many[0].results[0].state,
                mo_client::PowerState::On,
                "{many:?}"
            );
            assert_eq!(many[1].ok, Some(false), "{many:?}");
            let e = root
                .power_many(&["nothing*"], PowerAction::Cycle)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

            // The record log: show, search, verify.
            let mut text = String::new();
            for _ in 0..120 {
                text = root.log("sim-a", &LogQuery::default()).await.unwrap();
                if text.contains("sim-a login:") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            assert!(text.contains("sim-a login:"), "{text}");
            let tail = root
                .log("sim-a", &LogQuery::default().limit(1))
                .await
                .unwrap();
            assert!(tail.lines().count() <= text.lines().count(), "{tail}");
            let hits = root
                .log_search("sim-a", "login:", &LogQuery::default())
                .await
                .unwrap();
            assert!(hits.iter().any(|h| h.line.contains("login:")), "{hits:?}");
            let e = root
                .log_search("sim-a", "(", &LogQuery::default())
                .await
                .unwrap_err();
            assert!(matches!(e, Error::BadSpec { .. }), "{e:?}");
            let v = root.log_verify("sim-a").await.unwrap();
            assert!(v.ok && v.records > 0, "{v:?}");

            // Notes, the asciicast, the caller, readiness.
            let note = root.add_note("sim-a", "checked by api.rs").await.unwrap();
            assert!(note.seq > 0, "{note:?}");
            let cast = root
                .log_asciicast("sim-a", &LogQuery::default())
                .await
                .unwrap();
            let header: serde_json::Value =
                serde_json::from_str(cast.lines().next().unwrap_or("")).unwrap();
            assert_eq!(header["version"], 2, "{cast}");
            assert!(cast.contains("login:"), "{cast}");
            let me = root.me().await.unwrap();
            assert_eq!(me.user, "root1");
            assert!(me.devices.contains_key("sim-a"), "{me:?}");
            assert!(nobody.ready().await.unwrap().ready);
            let raw = nobody
                .request("GET", &["api", "v1", "ready"], &[], None, None)
                .await
                .unwrap();
            assert_eq!(raw, json!({"ready": true}));

            // Every operation of the served OpenAPI document has its call (one table).
            let doc = root
                .request("get", &["api", "v1", "openapi.json"], &[], None, None)
                .await
                .unwrap();
            check_operation_table(&doc);

            // who / sessions answer (nobody attached).
            assert!(root.who("sim-a").await.unwrap().is_empty());
            root.sessions().await.unwrap();

            // Events: listed, acknowledged, streamed.
            let mut events = Vec::new();
            for _ in 0..120 {
                events = root
                    .list_events(&EventQuery::default().device("sim-a").limit(10))
                    .await
                    .unwrap();
                if !events.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let first = events.first().expect("an event for sim-a");
            assert_eq!(first.device, "sim-a");
            let acked = root.ack_event(first.id).await.unwrap();
            assert_eq!(acked.acked_by.as_deref(), Some("root1"));
            let mut stream = root.event_stream(None).await.unwrap();
            root.add_device("ev1", "sim://ev1?boot=fast", serde_json::Value::Null)
                .await
                .unwrap();
            let got = tokio::time::timeout(LONG, async {
                while let Some(e) = stream.next().await {
                    let e = e.unwrap();
                    if e.device == "ev1" {
                        return e;
                    }
                }
                panic!("event stream ended");
            })
            .await
            .expect("an event of ev1 on the stream");
            assert!(!got.name.is_empty(), "{got:?}");
        });
        Ok(())
    });
}

#[test]
fn remote_console_handles_attach_expect_who_and_refuse_spies() {
    run_test("client-attach", |w| {
        w.add_echo_device("ech1", &[])?;
        w.add_user("root1", "root-pw")?;
        w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        w.add_user_with_role("nemo", "nemo-pw", None)?;
        let root_t = add_token(w, "root1", "all")?;
        let vera_t = add_token(w, "vera", "all")?;
        let nemo_t = add_token(w, "nemo", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        rt().block_on(async {
            let root = Client::new(&api.base, root_t.as_str()).unwrap();
            let vera = Client::new(&api.base, vera_t.as_str()).unwrap();
            let nemo = Client::new(&api.base, nemo_t.as_str()).unwrap();

            let e = root.attach("nope", Mode::Attach, None).await.unwrap_err();
            assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
            let e = nemo.attach("ech1", Mode::Attach, None).await.unwrap_err();
            assert!(
                matches!(e, Error::NotFound { .. } | Error::Denied { .. }),
                "{e:?}"
            );

            // Gang and macros through the client.
            let g = root.gang(&["ech*"], "via-client").await.unwrap();
            assert!(
                g.outputs
                    .get("ech1")
                    .is_some_and(|o| o.contains("got: via-client")),
                "{g:?}"
            );
            let e = vera.gang(&["ech1"], "x").await.unwrap_err();
            assert!(matches!(e, Error::Denied { .. }), "{e:?}");
            assert!(root.macros().await.unwrap().is_empty());
            let e = root
                .play_macro("nope", &["ech1"], &[], false)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

            let h = root.attach("ech1", Mode::Attach, Some(50)).await.unwrap();
            assert_eq!(h.info().device, "ech1");
            assert_eq!(h.info().user, "root1");
            assert_eq!(h.info().role, "attach");
            // The device may still be starting: wait for its banner (replayed or live).
            h.expect(&[ExpectPattern::literal("console ready").unwrap()], LONG)
                .await
                .unwrap();
            h.send_line("hello there").await.unwrap();
            let m = h
                .expect(&[ExpectPattern::regex(r"got: (\w+) there").unwrap()], LONG)
                .await
                .unwrap();
            assert_eq!(m.captures, vec![Some("hello".to_string())]);
            let e = h
                .expect(
                    &[ExpectPattern::literal("never printed").unwrap()],
                    Duration::from_millis(500),
                )
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
            assert!(e.to_string().contains("ech1"), "{e}");

            // A spy is listed by who, and its keystrokes are refused with a notice.
            let spy = vera.attach("ech1", Mode::Attach, Some(0)).await.unwrap();
            assert_eq!(spy.info().role, "spy", "{:?}", spy.info());
            let who = h.who().await.unwrap();
            let mut users: Vec<(String, String)> = who
                .iter()
                .map(|v| (v.user.clone(), v.role.clone()))
                .collect();
            users.sort();
            assert_eq!(
                users,
                vec![
                    ("root1".to_string(), "attach".to_string()),
                    ("vera".to_string(), "spy".to_string())
                ]
            );
            let listed = root.who("ech1").await.unwrap();
            assert_eq!(listed.len(), 2, "{listed:?}");
            // Refused at once, as the embedded console refuses it (the server refuses it too,
            // with an error frame: tests/e2e/tests/http_api.rs).
            let refused = spy.write(b"sneaky\r").await.unwrap_err();
            assert!(
                matches!(refused, mo_core::Error::Denied { .. }),
                "{refused:?}"
            );
            assert!(refused.to_string().contains("spying"), "{refused}");
            spy.close().await.unwrap();
            assert!(matches!(spy.read().await, Output::Closed(_)));

            // Breaks and resizes are accepted; closing ends the handle.
            h.send_break(0).await.unwrap();
            h.resize(100, 30).await.unwrap();
            h.close().await.unwrap();
            assert!(matches!(h.read().await, Output::Closed(_)));
            let e = h.write(b"x").await.unwrap_err();
            assert!(matches!(e, Error::ConsoleGone { .. }), "{e:?}");
        });
        Ok(())
    });
}

#[test]
fn mo_server_commands_talk_to_the_api() {
    run_test("client-cli", |w| {
        let pdu = w.write_script("pdu.sh", PDU)?;
        let power = format!("exec://{}?arg={{action}}", pdu.display());
        w.add_echo_device("ex1", &["--power", &power])?;
        w.add_user("root1", "root-pw")?;
        let token = add_token(w, "root1", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        let base = api.base.clone();
        let with = |args: &[&str]| -> Vec<String> {
            let mut v = vec![
                "--server".to_string(),
                base.clone(),
                "--token".to_string(),
                token.clone(),
            ];
            v.extend(args.iter().map(|s| s.to_string()));
            v
        };
        let run = |args: &[&str]| {
            let args = with(args);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            w.mo(&refs, None)
        };
        let out = run(&["devices"])?;
        ensure!(
            out.success() && out.stdout.contains("ex1"),
            "{}",
            out.combined()
        );
        let out = run(&["device", "list", "--json"])?;
        ensure!(
            out.success() && out.stdout.contains("\"ex1\""),
            "{}",
            out.combined()
        );
        let out = run(&["power", "status", "ex1"])?;
        ensure!(
            out.success() && out.stdout.contains("ex1: ") && out.stdout.contains(" on"),
            "{}",
            out.combined()
        );
        let out = run(&["power", "bogus", "ex1"])?;
        ensure!(
            !out.success() && out.stderr.contains("bogus"),
            "{}",
            out.combined()
        );
        let out = run(&["who"])?;
        ensure!(
            out.success() && out.stdout.contains("USER"),
            "{}",
            out.combined()
        );
        let out = run(&["who", "nope"])?;
        ensure!(
            !out.success() && out.stderr.contains("nope"),
            "{}",
            out.combined()
        );
        let mut shown = String::new();
        for _ in 0..120 {
            let out = run(&["log", "show", "ex1", "--tail", "5"])?;
            shown = out.combined();
            if out.success() && shown.contains("console ready") {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        ensure!(shown.contains("console ready"), "{shown}");
        // Without --server the remote-only commands say what they need.
        let out = w.mo(&["who"], None)?;
        ensure!(
            !out.success() && out.stderr.contains("--server"),
            "{}",
            out.combined()
        );
        // `console` with input from a pipe: types the line, then leaves at end of input.
        let args = with(&["console", "ex1", "--replay", "0"]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = w.mo(&refs, Some("\x05cw"))?;
        ensure!(out.success(), "{}", out.combined());
        ensure!(
            out.stdout.contains("root1"),
            "who via ^Ecw: {}",
            out.combined()
        );
        Ok(())
    });
}

/// The Rust column of docs/sdk-operations.json names a method of `Client` for each entry, and
/// every method named here is in the table: referencing `Client::$name` makes a missing method a
/// compile error.
macro_rules! client_methods {
    ($($name:ident),* $(,)?) => {{
        $(let _ = Client::$name;)*
        vec![$(stringify!($name)),*]
    }};
}

/// Every operation of the OpenAPI document `doc` is in the table (a call or an exclusion with
/// its reason), every table entry is an operation of `doc`, and each call's Rust method exists.
fn check_operation_table(doc: &serde_json::Value) {
    let table: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/sdk-operations.json")).unwrap();
    let methods = client_methods![
        health,
        ready,
        cluster,
        me,
        devices,
        device,
        add_device,
        replace_device,
        remove_device,
        who,
        sessions,
        attach,
        log,
        log_search,
        log_verify,
        log_asciicast,
        add_note,
        power_status,
        power,
        set_signals,
        secrets,
        set_secret,
        remove_secret,
        list_events,
        event_stream,
        raise_event,
        ack_event,
        gang,
        macros,
        play_macro,
        discover,
        host_info,
        maintenance,
        start_maintenance,
        stop_maintenance,
        users,
        add_user,
        remove_user,
        set_password,
        ssh_keys,
        add_ssh_key,
        remove_ssh_key,
        tokens,
        add_token,
        revoke_token,
        roles,
        role,
        set_role,
        remove_role,
        grants,
        add_grant,
        remove_grant,
        groups,
        group,
        add_group,
        change_group,
        remove_group,
        user_groups,
        user_group,
        add_user_group,
        change_user_group,
        remove_user_group,
        power_many,
    ];
    let mut in_table = std::collections::BTreeSet::new();
    let mut rust = std::collections::BTreeSet::new();
    for entry in table["operations"].as_array().unwrap() {
        in_table.insert(entry["operation"].as_str().unwrap().to_string());
        rust.insert(entry["rust"].as_str().unwrap().to_string());
    }
    for entry in table["helpers"].as_array().unwrap() {
        rust.insert(entry["rust"].as_str().unwrap().to_string());
    }
    for entry in table["excluded"].as_array().unwrap() {
        assert!(
            !entry["reason"].as_str().unwrap_or("").is_empty(),
            "{entry}"
        );
        in_table.insert(entry["operation"].as_str().unwrap().to_string());
    }
    let listed: std::collections::BTreeSet<String> =
        methods.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        rust, listed,
        "docs/sdk-operations.json's Rust names and the methods checked here differ"
    );
    let mut served = std::collections::BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                served.insert(id.to_string());
            }
        }
    }
    let missing: Vec<_> = served.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/sdk-operations.json and the OpenAPI document differ: operations without a call \
         or an exclusion {missing:?}; table entries that are no operation {stale:?}"
    );
}
