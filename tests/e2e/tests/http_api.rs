//! The HTTP + WebSocket API of `mod --http` (docs/api.md), with a real HTTP client (reqwest) and
//! a real WebSocket client (tokio-tungstenite) against a running daemon with sim devices.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{Error, Result, ensure, run_test};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const PDU: &str = "#!/bin/sh\ncase \"$1\" in status) echo on ;; *) exit 0 ;; esac\n";

/// Every route the daemon serves (method, path as in openapi.json); each is exercised below or in
/// the file named beside it.
const SERVED: &[(&str, &str)] = &[
    ("get", "/api/v1/health"),
    ("get", "/api/v1/cluster"),
    ("get", "/api/v1/devices"),
    ("post", "/api/v1/devices"),
    ("get", "/api/v1/devices/{name}"),
    ("delete", "/api/v1/devices/{name}"),
    ("get", "/api/v1/devices/{name}/who"),
    ("get", "/api/v1/sessions"),
    // agent.rs (host info of the daemon's host and of an agent's).
    ("get", "/api/v1/hosts/{name}/{what}"),
    ("get", "/api/v1/devices/{name}/power"),
    ("post", "/api/v1/devices/{name}/power"),
    ("get", "/api/v1/devices/{name}/log"),
    ("get", "/api/v1/devices/{name}/log/search"),
    ("post", "/api/v1/devices/{name}/log/verify"),
    ("get", "/api/v1/devices/{name}/attach"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/events/{id}/ack"),
    ("get", "/api/v1/events/stream"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/roles"),
    // Users, keys, groups and grants through the API: tests in mo-cli/src/server_walk.rs.
    ("delete", "/api/v1/users/{name}"),
    ("put", "/api/v1/users/{name}/password"),
    ("get", "/api/v1/users/{name}/keys"),
    ("post", "/api/v1/users/{name}/keys"),
    ("delete", "/api/v1/users/{name}/keys"),
    ("get", "/api/v1/groups"),
    ("post", "/api/v1/groups"),
    ("delete", "/api/v1/groups/{name}"),
    ("get", "/api/v1/grants"),
    ("post", "/api/v1/grants"),
    ("delete", "/api/v1/grants"),
    // API tokens (mo login, mo token with --server): tests in mo-cli/src/server_walk.rs.
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("post", "/api/v1/gang"),
    // discover_api.rs (discovery through the daemon, `mo discover --server`).
    ("post", "/api/v1/discover"),
    ("get", "/api/v1/macros"),
    ("post", "/api/v1/macros/{name}/play"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/metrics"),
    // The web console (tests/e2e/tests/web_session.rs exercises these).
    ("get", "/api/v1/devices/{name}/log/asciicast"),
    ("post", "/api/v1/devices/{name}/notes"),
    ("post", "/api/v1/login"),
    ("post", "/api/v1/logout"),
    ("get", "/api/v1/me"),
    ("get", "/"),
    ("get", "/assets/{file}"),
    // Exercised in their own files: events_io.rs (raising events), maintenance.rs (through
    // `mo --server maintenance …`), operations.rs (readiness).
    ("post", "/api/v1/events"),
    ("get", "/api/v1/maintenance"),
    ("post", "/api/v1/maintenance"),
    ("delete", "/api/v1/maintenance/{name}"),
    ("get", "/api/v1/ready"),
    // line_signals_api.rs (DTR/RTS through the API, the CLI and `mo console`).
    ("post", "/api/v1/devices/{name}/signals"),
    // mo-cli/src/server_walk_access.rs (mo --server device set, group set|show, usergroup,
    // role, secret through the API).
    ("put", "/api/v1/devices/{name}"),
    ("get", "/api/v1/groups/{name}"),
    ("patch", "/api/v1/groups/{name}"),
    ("get", "/api/v1/usergroups"),
    ("post", "/api/v1/usergroups"),
    ("get", "/api/v1/usergroups/{name}"),
    ("patch", "/api/v1/usergroups/{name}"),
    ("delete", "/api/v1/usergroups/{name}"),
    ("get", "/api/v1/roles/{name}"),
    ("put", "/api/v1/roles/{name}"),
    ("delete", "/api/v1/roles/{name}"),
    ("get", "/api/v1/devices/{name}/secrets"),
    ("put", "/api/v1/devices/{name}/secrets/{kind}"),
    ("delete", "/api/v1/devices/{name}/secrets/{kind}"),
];

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Token(&'a str),
    Basic(&'a str, &'a str),
}

struct Api {
    http: HttpApi,
    client: reqwest::blocking::Client,
}

/// A response: status, and the body as JSON (or as a JSON string when it is not JSON).
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    fn new(http: HttpApi) -> Api {
        Api {
            http,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    fn call(&self, method: &str, path: &str, auth: Auth<'_>, body: Option<&str>) -> Result<Reply> {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self.client.request(method.clone(), self.http.url(path));
        req = match auth {
            Auth::None => req,
            Auth::Token(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req
            .send()
            .map_err(|e| Error::Check(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .map_err(|e| Error::Check(format!("{method} {path}: reading the body: {e}")))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }

    fn get(&self, path: &str, auth: Auth<'_>) -> Result<Reply> {
        self.call("get", path, auth, None)
    }

    /// `method path` must answer `status`; returns the body.
    fn expect(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<&str>,
        status: u16,
    ) -> Result<Value> {
        let r = self.call(method, path, auth, body)?;
        ensure!(
            r.status == status,
            "{method} {path}: expected {status}, got {}: {}",
            r.status,
            r.body
        );
        Ok(r.body)
    }

    /// Poll `GET path` until `check` accepts the body.
    fn wait_get(
        &self,
        path: &str,
        auth: Auth<'_>,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(path, auth)?;
            if r.status == 200 && check(&r.body) {
                return Ok(r.body);
            }
            if Instant::now() > deadline {
                return Err(Error::Check(format!(
                    "GET {path}: no {what} within 60s; last answer {}: {}",
                    r.status, r.body
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rest_api_answers_every_route_enforces_auth_and_policy() {
    run_test("http-rest", |w| {
        let pdu = w.write_script("pdu.sh", PDU)?;
        let power = format!("exec://{}?arg={{action}}", pdu.display());
        w.add_echo_device("ex1", &["--power", &power])?;
        w.add_device("sim-a", "sim://sim-a?boot=fast", &[])?;
        w.add_user("root1", "root-pw")?;
        w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        w.add_user_with_role("nemo", "nemo-pw", None)?;
        let root_t = add_token(w, "root1", "all")?;
        let vera_t = add_token(w, "vera", "all")?;
        let nemo_t = add_token(w, "nemo", "all")?;
        let macros = w.data_dir().join("macros");
        std::fs::create_dir_all(&macros)
            .and_then(|()| {
                std::fs::write(
                    macros.join("hello.macro"),
                    "param who\nsendline hello-${who}\nexpect /got: hello-${who}/ timeout=10s\n",
                )
            })
            .map_err(|e| mo_testsupport::Error::io("writing the macro", e))?;
        let api = Api::new(start_daemon_with_http(w, &[])?);
        let root = Auth::Token(&root_t);
        let vera = Auth::Token(&vera_t);
        let nemo = Auth::Token(&nemo_t);

        // Public endpoints.
        let health = api.expect("get", "/api/v1/health", Auth::None, None, 200)?;
        ensure!(
            health["status"] == "ok" && health["version"].is_string(),
            "{health}"
        );

        // 401 without credentials, with a bad token, with a wrong password.
        for auth in [
            Auth::None,
            Auth::Token(
                "mo_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
            ),
            Auth::Token("garbage"),
            Auth::Basic("root1", "wrong"),
        ] {
            let r = api.get("/api/v1/devices", auth)?;
            ensure!(
                r.status == 401 && r.code() == "unauthorized",
                "{} {}",
                r.status,
                r.body
            );
        }
        // HTTP Basic with the right password works.
        let list = api.expect(
            "get",
            "/api/v1/devices",
            Auth::Basic("root1", "root-pw"),
            None,
            200,
        )?;
        ensure!(names(&list).contains(&"ex1".to_string()), "{list}");

        // Listing shows only visible devices.
        let list = api.expect("get", "/api/v1/devices", root, None, 200)?;
        let n = names(&list);
        ensure!(
            n.contains(&"ex1".into()) && n.contains(&"sim-a".into()),
            "{list}"
        );
        ensure!(
            list[0]["groups"].is_array() && list[0]["viewers"].is_number(),
            "{list}"
        );
        let list = api.expect("get", "/api/v1/devices", nemo, None, 200)?;
        ensure!(
            list.as_array().is_some_and(Vec::is_empty),
            "nemo sees {list}"
        );
        let r = api.get("/api/v1/devices/ex1", nemo)?;
        ensure!(r.status == 404 && r.code() == "not_found", "{}", r.body);
        let one = api.expect("get", "/api/v1/devices/sim-a", root, None, 200)?;
        ensure!(
            one["url"] == "sim://sim-a?boot=fast" && one["settings"]["replay_lines"] == 20,
            "{one}"
        );

        // 404 for an unknown device, with the stable code.
        let r = api.get("/api/v1/devices/nope", root)?;
        ensure!(r.status == 404 && r.code() == "not_found", "{}", r.body);
        ensure!(
            r.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("nope"),
            "{}",
            r.body
        );

        // 403: no grant (global admin routes), viewer switching power.
        let r = api.get("/api/v1/users", nemo)?;
        ensure!(r.status == 403 && r.code() == "forbidden", "{}", r.body);
        let r = api.call(
            "post",
            "/api/v1/devices/ex1/power",
            vera,
            Some(r#"{"action":"off"}"#),
        )?;
        ensure!(r.status == 403 && r.code() == "forbidden", "{}", r.body);
        // A token scope narrows further than the policy.
        let narrow = add_token(w, "root1", "list")?;
        let r = api.get("/api/v1/devices/ex1/power", Auth::Token(&narrow))?;
        ensure!(r.status == 403 && r.code() == "forbidden", "{}", r.body);

        // 400 for bad JSON and bad values.
        for body in [
            "{not json",
            r#"{"name":"x"}"#,
            r#"{"name":"x","url":"sim://x","bogus":1}"#,
        ] {
            let r = api.call("post", "/api/v1/devices", root, Some(body))?;
            ensure!(
                r.status == 400 && r.code() == "bad_request",
                "{body}: {} {}",
                r.status,
                r.body
            );
        }
        let r = api.call(
            "post",
            "/api/v1/devices",
            root,
            Some(r#"{"name":"bad name","url":"sim://x"}"#),
        )?;
        ensure!(r.status == 400 && r.code() == "bad_request", "{}", r.body);
        let r = api.call(
            "post",
            "/api/v1/devices/ex1/power",
            root,
            Some(r#"{"action":"explode"}"#),
        )?;
        ensure!(r.status == 400 && r.code() == "bad_request", "{}", r.body);

        // Devices: add, conflict, remove.
        let made = api.expect(
            "post",
            "/api/v1/devices",
            root,
            Some(r#"{"name":"new1","url":"sim://new1?boot=fast","description":"made over HTTP"}"#),
            201,
        )?;
        ensure!(
            made["name"] == "new1" && made["settings"]["description"] == "made over HTTP",
            "{made}"
        );
        let r = api.call(
            "post",
            "/api/v1/devices",
            root,
            Some(r#"{"name":"new1","url":"sim://new1"}"#),
        )?;
        ensure!(r.status == 409 && r.code() == "conflict", "{}", r.body);
        api.wait_get("/api/v1/devices", root, "new1 in the list", |l| {
            names(l).contains(&"new1".to_string())
        })?;
        let out = w.mo_ok(&["device", "list"], None)?;
        ensure!(out.stdout.contains("new1"), "{}", out.stdout);
        api.expect("delete", "/api/v1/devices/new1", root, None, 204)?;
        let r = api.call("delete", "/api/v1/devices/new1", root, None)?;
        ensure!(r.status == 404 && r.code() == "not_found", "{}", r.body);

        // who / sessions.
        let who = api.expect("get", "/api/v1/devices/sim-a/who", root, None, 200)?;
        ensure!(who.is_array(), "{who}");
        let sessions = api.expect("get", "/api/v1/sessions", root, None, 200)?;
        ensure!(sessions.is_array(), "{sessions}");

        // Power.
        let p = api.expect("get", "/api/v1/devices/ex1/power", root, None, 200)?;
        ensure!(
            p["device"] == "ex1" && p["results"][0]["state"] == "on",
            "{p}"
        );
        ensure!(p["results"][0]["controller"].is_string(), "{p}");
        let p = api.expect(
            "post",
            "/api/v1/devices/ex1/power",
            root,
            Some(r#"{"action":"cycle"}"#),
            200,
        )?;
        ensure!(p["ok"] == true && p["results"][0]["state"] == "on", "{p}");
        let p = api.expect(
            "post",
            "/api/v1/devices/ex1/power",
            root,
            Some(r#"{"action":"status"}"#),
            200,
        )?;
        ensure!(p["results"][0]["state"] == "on", "{p}");
        let r = api.get("/api/v1/devices/sim-a/power", root)?;
        ensure!(r.status == 422 && r.code() == "unsupported", "{}", r.body);

        // The record log: rendered text, search, verify.
        let log = api.wait_get(
            "/api/v1/devices/sim-a/log",
            root,
            "login prompt in the log",
            |b| b.as_str().is_some_and(|t| t.contains("sim-a login:")),
        )?;
        let text = log.as_str().unwrap_or_default();
        ensure!(
            text.lines()
                .any(|l| l.starts_with("20") && l.contains('T') && l.contains("Z ")),
            "no timestamps:\n{text}"
        );
        let tail = api.expect("get", "/api/v1/devices/sim-a/log?tail=2", root, None, 200)?;
        ensure!(
            tail.as_str().is_some_and(|t| t.len() < text.len()),
            "tail: {tail}"
        );
        let hits = api.expect(
            "get",
            "/api/v1/devices/sim-a/log/search?q=login%3A&limit=5",
            root,
            None,
            200,
        )?;
        let hits = hits.as_array().cloned().unwrap_or_default();
        ensure!(!hits.is_empty() && hits.len() <= 5, "{hits:?}");
        ensure!(
            hits[0]["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{hits:?}"
        );
        ensure!(
            hits[0]["line"]
                .as_str()
                .is_some_and(|t| t.contains("login:")),
            "{hits:?}"
        );
        let r = api.get("/api/v1/devices/sim-a/log/search?q=(", root)?;
        ensure!(r.status == 400 && r.code() == "bad_request", "{}", r.body);
        let r = api.get("/api/v1/devices/sim-a/log/search", root)?;
        ensure!(r.status == 400 && r.code() == "bad_request", "{}", r.body);
        let v = api.expect("post", "/api/v1/devices/sim-a/log/verify", root, None, 200)?;
        ensure!(
            v["ok"] == true && v["records"].as_u64().unwrap_or(0) > 0,
            "{v}"
        );
        let r = api.call("post", "/api/v1/devices/sim-a/log/verify", nemo, None)?;
        ensure!(
            r.status == 404,
            "nemo verifies an invisible log: {}",
            r.body
        );

        // Events: the link-up event of sim-a, acknowledged.
        let events = api.wait_get(
            "/api/v1/events?device=sim-a&limit=10",
            root,
            "an event for sim-a",
            |b| b.as_array().is_some_and(|a| !a.is_empty()),
        )?;
        let id = events[0]["id"].as_u64().unwrap();
        ensure!(
            events[0]["device"] == "sim-a" && events[0]["severity"].is_string(),
            "{events}"
        );
        let r = api.call("post", &format!("/api/v1/events/{id}/ack"), vera, None)?;
        ensure!(r.status == 403 && r.code() == "forbidden", "{}", r.body);
        let acked = api.expect("post", &format!("/api/v1/events/{id}/ack"), root, None, 200)?;
        ensure!(acked["acked_by"] == "root1", "{acked}");
        let unacked = api.expect(
            "get",
            "/api/v1/events?device=sim-a&unacked=true",
            root,
            None,
            200,
        )?;
        ensure!(
            unacked
                .as_array()
                .is_some_and(|a| a.iter().all(|e| e["id"] != id)),
            "{unacked}"
        );
        let r = api.call("post", "/api/v1/events/999999/ack", root, None)?;
        ensure!(r.status == 404 && r.code() == "not_found", "{}", r.body);
        let r = api.call("post", "/api/v1/events/abc/ack", root, None)?;
        ensure!(r.status == 400 && r.code() == "bad_request", "{}", r.body);

        // Users and roles.
        let users = api.expect("get", "/api/v1/users", root, None, 200)?;
        ensure!(names(&users).contains(&"vera".into()), "{users}");
        let u = api.expect(
            "post",
            "/api/v1/users",
            root,
            Some(r#"{"name":"hugo","password":"hugo-pw"}"#),
            201,
        )?;
        ensure!(u["name"] == "hugo", "{u}");
        let r = api.call("post", "/api/v1/users", root, Some(r#"{"name":"hugo"}"#))?;
        ensure!(r.status == 409 && r.code() == "conflict", "{}", r.body);
        api.expect(
            "get",
            "/api/v1/devices",
            Auth::Basic("hugo", "hugo-pw"),
            None,
            200,
        )?;
        let roles = api.expect("get", "/api/v1/roles", root, None, 200)?;
        ensure!(names(&roles).contains(&"admin".into()), "{roles}");

        // Gang and macros.
        let g = api.expect(
            "post",
            "/api/v1/gang",
            root,
            Some(r#"{"targets":["ex*"],"command":"hello-gang"}"#),
            200,
        )?;
        ensure!(
            g["outputs"]["ex1"]
                .as_str()
                .unwrap_or_default()
                .contains("got: hello-gang")
                && g["divergent"].as_array().is_some_and(Vec::is_empty),
            "{g}"
        );
        let r = api.call(
            "post",
            "/api/v1/gang",
            vera,
            Some(r#"{"targets":["ex1"],"command":"x"}"#),
        )?;
        ensure!(r.status == 403 && r.code() == "forbidden", "{}", r.body);
        let r = api.call(
            "post",
            "/api/v1/gang",
            root,
            Some(r#"{"targets":[],"command":"x"}"#),
        )?;
        ensure!(r.status == 400 && r.code() == "bad_request", "{}", r.body);
        let m = api.expect("get", "/api/v1/macros", root, None, 200)?;
        ensure!(m == serde_json::json!(["hello"]), "{m}");
        let dry = api.expect(
            "post",
            "/api/v1/macros/hello/play",
            root,
            Some(r#"{"targets":["ex1"],"args":{"who":"api"},"dry_run":true}"#),
            200,
        )?;
        ensure!(
            dry["plan"]
                .as_str()
                .unwrap_or_default()
                .contains("hello-api"),
            "{dry}"
        );
        let played = api.expect(
            "post",
            "/api/v1/macros/hello/play",
            root,
            Some(r#"{"targets":["ex1"],"args":{"who":"api"}}"#),
            200,
        )?;
        ensure!(
            played["ok"] == true && played["results"][0]["device"] == "ex1",
            "{played}"
        );
        let r = api.call(
            "post",
            "/api/v1/macros/hello/play",
            root,
            Some(r#"{"targets":["ex1"]}"#),
        )?;
        ensure!(
            r.status == 400 && r.body.to_string().contains("who"),
            "a missing parameter is named: {}",
            r.body
        );
        let r = api.call(
            "post",
            "/api/v1/macros/nope/play",
            root,
            Some(r#"{"targets":["ex1"]}"#),
        )?;
        ensure!(r.status == 404 && r.code() == "not_found", "{}", r.body);
        let r = api.call(
            "post",
            "/api/v1/macros/hello/play",
            vera,
            Some(r#"{"targets":["ex1"],"args":{"who":"x"}}"#),
        )?;
        ensure!(r.status == 403, "{}", r.body);

        // WebSocket routes refuse plain HTTP with JSON errors: 426 Upgrade Required.
        let r = api.get("/api/v1/devices/sim-a/attach", root)?;
        ensure!(
            r.status == 426 && r.code() == "upgrade_required",
            "{}",
            r.body
        );
        let r = api.get("/api/v1/events/stream", root)?;
        ensure!(
            r.status == 426 && r.code() == "upgrade_required",
            "{}",
            r.body
        );
        // A known path asked with a method it does not take: 405 with `Allow`.
        let resp = reqwest::blocking::Client::new()
            .request(
                reqwest::Method::PATCH,
                api.http.url("/api/v1/devices/sim-a"),
            )
            .bearer_auth(&root_t)
            .send()
            .map_err(|e| Error::Check(format!("PATCH /api/v1/devices/sim-a: {e}")))?;
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        ensure!(
            resp.status().as_u16() == 405 && allow == "GET, PUT, DELETE",
            "PATCH on a device: {} Allow: {allow:?}",
            resp.status()
        );

        // Metrics need credentials (issue 13 item 2): bytes of sim-a's boot output.
        api.expect("get", "/metrics", Auth::None, None, 401)?;
        let metrics = api.expect("get", "/metrics", root, None, 200)?;
        let metrics = metrics.as_str().unwrap_or_default().to_string();
        for family in [
            "mo_consoles_up",
            "mo_bytes_out_total",
            "mo_viewers",
            "mo_events_total",
            "mo_link_errors_total",
        ] {
            ensure!(
                metrics.contains(&format!("# TYPE {family} ")),
                "no {family}:\n{metrics}"
            );
        }
        ensure!(
            metric(&metrics, "mo_bytes_in_total{device=\"sim-a\"}") > 100.0,
            "{metrics}"
        );
        ensure!(metric(&metrics, "mo_consoles_up") >= 1.0, "{metrics}");
        ensure!(metric(&metrics, "mo_events_total") >= 1.0, "{metrics}");

        // The OpenAPI document lists exactly the served routes, and the router answers each.
        let doc = api.expect("get", "/api/v1/openapi.json", Auth::None, None, 200)?;
        ensure!(doc["openapi"] == "3.1.0", "{doc}");
        let documented = documented_routes(&doc);
        let served: BTreeSet<(String, String)> = SERVED
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        ensure!(
            documented == served,
            "openapi.json and the served routes differ:\n only documented: {:?}\n only served: {:?}",
            documented.difference(&served).collect::<Vec<_>>(),
            served.difference(&documented).collect::<Vec<_>>()
        );
        for (method, path) in &documented {
            let concrete = path
                .replace("{name}", "sim-a")
                .replace("{id}", &id.to_string());
            let r = api.call(method, &concrete, Auth::None, None)?;
            let message = r.body["error"]["message"].as_str().unwrap_or("");
            ensure!(
                !message.contains("no such API route") && !message.contains("is not allowed on"),
                "{method} {concrete} is documented but not routed: {} {}",
                r.status,
                r.body
            );
        }
        let r = api.get("/api/v1/nothing-here", root)?;
        ensure!(r.status == 404 && r.code() == "not_found", "{}", r.body);

        // Every call was audited like the SSH door: denials and the admin's power action.
        let denied = w.mo_ok(&["audit", "--user", "vera", "--denied"], None)?;
        ensure!(denied.stdout.contains("power.control"), "{}", denied.stdout);
        let power = w.mo_ok(&["audit", "--user", "root1", "--device", "ex1"], None)?;
        ensure!(power.stdout.contains("power.cycle"), "{}", power.stdout);
        Ok(())
    });
}

/// The value of the sample named exactly `series` (name with labels) in a Prometheus text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1.0)
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in item
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                out.insert((method, path.clone()));
            }
        }
    }
    out
}

#[test]
fn openapi_document_passes_openapi_spec_validator() {
    run_test("http-openapi", |w| {
        let validator =
            mo_testsupport::workspace_root().join("target/peers-venv/bin/openapi-spec-validator");
        ensure!(
            validator.exists(),
            "{} is missing: run ./scripts/setup.sh (it installs openapi-spec-validator into the \
             peers venv); this test does not pass without validating the document",
            validator.display()
        );
        let api = Api::new(start_daemon_with_http(w, &[])?);
        let r = api.get("/api/v1/openapi.json", Auth::None)?;
        ensure!(r.status == 200, "{}", r.body);
        let file = w.dir().join("openapi.json");
        std::fs::write(&file, serde_json::to_string_pretty(&r.body).unwrap())
            .map_err(|e| Error::io("write openapi.json", e))?;
        let out = std::process::Command::new(&validator)
            .arg(&file)
            .output()
            .map_err(|e| Error::io(format!("run {}", validator.display()), e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            out.status.success(),
            "openapi-spec-validator rejects the document:\n{text}"
        );
        ensure!(text.contains("OK"), "validator output: {text}");
        Ok(())
    });
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(api: &HttpApi, path: &str, token: Option<&str>) -> Ws {
    connect_with(api, path, token, None).await
}

/// Connect, optionally with a small receive buffer (so a client that stops reading fills its
/// socket quickly).
async fn connect_with(api: &HttpApi, path: &str, token: Option<&str>, rcvbuf: Option<u32>) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let stream = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], api.port)))
        .await
        .unwrap();
    let mut req = api.ws_url(path).into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap_or_else(|e| panic!("WebSocket {path}: {e}"));
    ws
}

/// What a client saw: console bytes (as text) and JSON frames.
#[derive(Default)]
struct Seen {
    output: String,
    frames: Vec<Value>,
}

impl Seen {
    fn frame(&self, kind: &str) -> Option<&Value> {
        self.frames.iter().find(|f| f["type"] == kind)
    }
}

/// More output than the daemon may hold for one WebSocket viewer that reads nothing: the console
/// hub's 256 chunks (ConsoleConfig::hub_capacity) and the bridge's 64 queued frames
/// (mo-daemon/src/http/ws.rs OUT_QUEUE), each at most one 64 KiB read (mo-core's READ_MAX), the
/// socket's send buffer (at most net.ipv4.tcp_wmem's maximum) and 1 MiB for the client's receive
/// buffer and WebSocket framing.
fn stalled_viewer_bound() -> u64 {
    let wmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|t| t.split_whitespace().nth(2)?.parse::<u64>().ok())
        .unwrap_or(4 << 20);
    (256 + 64 + 1) * 64 * 1024 + wmem_max + (1 << 20)
}

/// The byte count of the last `flood: N lines, B bytes in S s` summary in `output`.
fn flood_bytes(output: &str) -> u64 {
    output
        .rsplit_once("flood: ")
        .and_then(|(_, rest)| rest.split_once(" lines, "))
        .and_then(|(_, rest)| rest.split_once(" bytes"))
        .and_then(|(bytes, _)| bytes.trim().parse().ok())
        .unwrap_or_else(|| panic!("no flood summary in {output:?}"))
}

/// How long a WebSocket client waits for what it expects (a debug build on a busy machine
/// moving megabytes through two viewers).
const WS_WAIT: Duration = Duration::from_secs(90);

/// Read frames until `done` holds (panics with what was seen after [`WS_WAIT`]).
async fn read_until(ws: &mut Ws, seen: &mut Seen, what: &str, done: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + WS_WAIT;
    while !done(seen) {
        let next = tokio::time::timeout_at(deadline, ws.next()).await;
        match next {
            Ok(Some(Ok(Message::Binary(b)))) => {
                seen.output.push_str(&String::from_utf8_lossy(&b));
                // Only recent output matters: keep the checks cheap during a flood.
                if seen.output.len() > 64 * 1024 {
                    let mut cut = seen.output.len() - 32 * 1024;
                    while !seen.output.is_char_boundary(cut) {
                        cut += 1;
                    }
                    seen.output.drain(..cut);
                }
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                seen.frames
                    .push(serde_json::from_str(t.as_str()).unwrap_or(json!({"raw": t.as_str()})));
            }
            Ok(Some(Ok(_))) => {}
            other => {
                let out = &seen.output;
                let tail = out.get(out.len().saturating_sub(2000)..).unwrap_or(out);
                let frames = &seen.frames[seen.frames.len().saturating_sub(20)..];
                panic!(
                    "waiting for {what}: {other:?}\nend of the output:\n{tail}\nlast frames: {frames:?}"
                )
            }
        }
    }
}

#[test]
fn websocket_attach_echoes_spies_and_slow_viewers_do_not_stall() {
    run_test("http-ws", |w| {
        w.add_device("sim-w", "sim://sim-w?boot=fast", &[])?;
        w.add_user("root1", "root-pw")?;
        w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let root_t = add_token(w, "root1", "all")?;
        let vera_t = add_token(w, "vera", "all")?;
        let http = start_daemon_with_http(w, &[])?;
        let api = Api::new(http.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let missed_seen = rt.block_on(async {
            // The writer attaches read-write and logs in to the simulated machine.
            let mut root = connect(
                &http,
                "/api/v1/devices/sim-w/attach?mode=attach&replay=50",
                Some(&root_t),
            )
            .await;
            let mut rs = Seen::default();
            read_until(&mut root, &mut rs, "hello", |s| s.frame("hello").is_some()).await;
            let hello = rs.frame("hello").unwrap().clone();
            assert_eq!(hello["role"], "attach", "{hello}");
            assert_eq!(hello["device"], "sim-w", "{hello}");
            assert_eq!(hello["user"], "root1", "{hello}");
            read_until(&mut root, &mut rs, "login prompt", |s| {
                s.output.contains("login:")
            })
            .await;
            root.send(Message::binary(b"root\r".to_vec()))
                .await
                .unwrap();
            read_until(&mut root, &mut rs, "password prompt", |s| {
                s.output.contains("Password:")
            })
            .await;
            root.send(Message::binary(b"pw\r".to_vec())).await.unwrap();
            read_until(&mut root, &mut rs, "shell prompt", |s| {
                s.output.contains("sim-w:~$")
            })
            .await;

            // A spy (token in the query) sees the writer's output and cannot type.
            let mut spy = connect(
                &http,
                &format!("/api/v1/devices/sim-w/attach?mode=spy&token={vera_t}"),
                None,
            )
            .await;
            let mut ss = Seen::default();
            read_until(&mut spy, &mut ss, "spy hello", |s| {
                s.frame("hello").is_some()
            })
            .await;
            assert_eq!(ss.frame("hello").unwrap()["role"], "spy");
            spy.send(Message::binary(b"echo from-the-spy\r".to_vec()))
                .await
                .unwrap();
            read_until(&mut spy, &mut ss, "error frame", |s| {
                s.frame("error").is_some()
            })
            .await;
            assert_eq!(
                ss.frame("error").unwrap()["code"],
                "forbidden",
                "{:?}",
                ss.frames
            );

            // Keystrokes echo back to the writer and reach the spy.
            root.send(Message::binary(b"echo hello-ws\r".to_vec()))
                .await
                .unwrap();
            read_until(&mut root, &mut rs, "echo", |s| {
                s.output.contains("\nhello-ws")
            })
            .await;
            read_until(&mut spy, &mut ss, "writer's output at the spy", |s| {
                s.output.contains("\nhello-ws")
            })
            .await;
            assert!(
                !ss.output.contains("from-the-spy"),
                "the spy's keys reached the device"
            );

            // who over the control channel.
            root.send(Message::text(r#"{"type":"who"}"#)).await.unwrap();
            read_until(&mut root, &mut rs, "who", |s| s.frame("who").is_some()).await;
            let viewers = rs.frame("who").unwrap()["viewers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                viewers
                    .iter()
                    .any(|v| v["user"] == "vera" && v["role"] == "spy"),
                "{viewers:?}"
            );
            // A bad control message is answered with an error frame.
            root.send(Message::text("{oops")).await.unwrap();
            let before = rs.frames.len();
            read_until(&mut root, &mut rs, "bad_request error", |s| {
                s.frames[before..]
                    .iter()
                    .any(|f| f["type"] == "error" && f["code"] == "bad_request")
            })
            .await;

            // A viewer-only user asking to attach is let in as a spy, with a notice.
            let mut vera_attach = connect(
                &http,
                "/api/v1/devices/sim-w/attach?mode=attach",
                Some(&vera_t),
            )
            .await;
            let mut vs = Seen::default();
            read_until(&mut vera_attach, &mut vs, "fallback", |s| {
                s.frame("hello").is_some() && s.frame("notice").is_some()
            })
            .await;
            assert_eq!(vs.frame("hello").unwrap()["role"], "spy");
            drop(vera_attach);

            // A viewer that stops reading: it never reads again while the console floods.
            let mut stalled = connect_with(
                &http,
                "/api/v1/devices/sim-w/attach?mode=spy&replay=0",
                Some(&root_t),
                Some(4096),
            )
            .await;
            let mut sts = Seen::default();
            read_until(&mut stalled, &mut sts, "stalled hello", |s| {
                s.frame("hello").is_some()
            })
            .await;
            // The spy keeps reading on its own task while the writer floods the console.
            let spy_task = tokio::spawn(async move {
                read_until(&mut spy, &mut ss, "marker at the spy", |s| {
                    s.output.contains("\nafter-flood")
                })
                .await;
                spy
            });
            // Flood until more output was produced than the daemon may legitimately hold for one
            // viewer, so a stalled viewer that still "got everything" was buffered without bound.
            let bound = stalled_viewer_bound();
            let mut flooded = 0u64;
            let mut rounds = 0;
            while flooded <= bound {
                rounds += 1;
                root.send(Message::binary(b"flood 20M 2\r".to_vec()))
                    .await
                    .unwrap();
                rs.output.clear();
                read_until(&mut root, &mut rs, "end of the flood", |s| {
                    s.output
                        .split_once("flood: ")
                        .is_some_and(|(_, rest)| rest.contains("sim-w:~$"))
                })
                .await;
                flooded += flood_bytes(&rs.output);
                assert!(rounds < 20, "20 floods made only {flooded} bytes");
            }
            root.send(Message::binary(b"echo after-flood\r".to_vec()))
                .await
                .unwrap();
            // The active viewers get everything through to the marker while the stalled one
            // reads nothing: it stalls nobody.
            read_until(&mut root, &mut rs, "marker after the flood", |s| {
                s.output.contains("\nafter-flood")
            })
            .await;
            let _spy = spy_task.await.unwrap();
            // Now the stalled one reads. The daemon resyncs a viewer that fell behind with a
            // `missed` frame counting the output bytes it skipped (and then goes on live), or
            // drops a client whose socket took nothing for SEND_STALL (30 s).
            let (mut received, mut missed, mut missed_frames) = (0u64, 0u64, 0);
            let deadline = tokio::time::Instant::now() + WS_WAIT;
            let outcome = loop {
                match tokio::time::timeout_at(deadline, stalled.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let frame: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                        if frame["type"] == "missed" {
                            let bytes = frame["bytes"].as_u64().unwrap_or(0);
                            assert!(bytes > 0, "a missed frame that missed nothing: {frame}");
                            missed += bytes;
                            missed_frames += 1;
                        }
                    }
                    Ok(Some(Ok(Message::Binary(b)))) => {
                        received += b.len() as u64;
                        let keep = sts.output.len().saturating_sub(64);
                        let keep = (keep..=sts.output.len())
                            .find(|&i| sts.output.is_char_boundary(i))
                            .unwrap_or(0);
                        sts.output.drain(..keep);
                        sts.output.push_str(&String::from_utf8_lossy(&b));
                        if sts.output.contains("\nafter-flood") {
                            break "resynced";
                        }
                    }
                    Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => break "dropped",
                    Ok(Some(Ok(_))) => {}
                    Err(_) => panic!(
                        "the stalled viewer got neither the marker nor a close in {WS_WAIT:?} \
                         ({received} bytes, {missed_frames} missed frames for {missed} bytes)"
                    ),
                }
            };
            eprintln!(
                "the stalled viewer: {outcome} after {rounds} flood(s) of {flooded} bytes in all: \
                 {received} bytes received, {missed_frames} missed frame(s) for {missed} bytes"
            );
            // It read nothing during the flood, so it can have received only what the daemon
            // held for it (plus the few bytes after the flood), never the whole flood.
            assert!(
                received < flooded && received <= bound + 64 * 1024,
                "the stalled viewer received {received} bytes of a {flooded}-byte flood \
                 although it read nothing meanwhile (at most {bound} may be held for it): it \
                 was buffered without bound"
            );
            if outcome == "resynced" {
                // Told what it missed, to the byte: what it received and what it was told it
                // missed add up to the flood plus the few bytes of echo and prompts around it.
                assert!(missed_frames > 0, "resynced without a missed frame");
                let accounted = received + missed;
                assert!(
                    (flooded..=flooded + 16 * 1024).contains(&accounted),
                    "received {received} + missed {missed} = {accounted} bytes, but the \
                     console produced {flooded} flood bytes (plus a little echo) meanwhile"
                );
            }
            outcome
        });
        if missed_seen == "dropped" {
            // Dropped, not forgotten: the daemon says why in the audit log.
            let audit = w.mo_ok(&["audit", "--user", "root1", "--device", "sim-w"], None)?;
            ensure!(
                audit.stdout.contains("client stopped reading"),
                "the stalled viewer was cut off without the reason in the audit:\n{}",
                audit.stdout
            );
        }

        // Metrics count the flood and the keystrokes.
        let metrics = api.expect("get", "/metrics", Auth::Token(&root_t), None, 200)?;
        let metrics = metrics.as_str().unwrap_or_default().to_string();
        ensure!(
            metric(&metrics, "mo_bytes_in_total{device=\"sim-w\"}") > 200_000.0,
            "{metrics}"
        );
        ensure!(
            metric(&metrics, "mo_bytes_out_total{device=\"sim-w\"}") > 10.0,
            "{metrics}"
        );

        // The event stream delivers a kernel panic as it happens.
        rt.block_on(async {
            let mut events = connect(&http, "/api/v1/events/stream", Some(&root_t)).await;
            let mut root = connect(
                &http,
                "/api/v1/devices/sim-w/attach?mode=force",
                Some(&root_t),
            )
            .await;
            let mut rs = Seen::default();
            read_until(&mut root, &mut rs, "hello", |s| s.frame("hello").is_some()).await;
            root.send(Message::binary(b"\rpanic\r".to_vec()))
                .await
                .unwrap();
            let mut es = Seen::default();
            read_until(&mut events, &mut es, "panic event", |s| {
                s.frames
                    .iter()
                    .any(|e| e["device"] == "sim-w" && e["severity"] == "critical")
            })
            .await;
            let e = es
                .frames
                .iter()
                .find(|e| e["severity"] == "critical")
                .unwrap();
            assert!(
                e["id"].is_u64() && e["time"].is_string() && e["name"] == "pattern",
                "{e}"
            );
        });
        // The attach and detach were audited.
        let audit = w.mo_ok(&["audit", "--user", "root1", "--device", "sim-w"], None)?;
        ensure!(
            audit.stdout.contains("attach") && audit.stdout.contains("detach"),
            "{}",
            audit.stdout
        );
        Ok(())
    });
}
