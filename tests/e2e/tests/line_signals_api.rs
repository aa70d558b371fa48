//! Line signals from the API and the CLI (issue 23 item 6): `POST /api/v1/devices/{name}/signals`,
//! `mo --server … device signal`, the `^EcD`/`^EcR` escapes of `mo console` (over the WebSocket
//! attach protocol), and the modem state in `mo device show` / `mo device list` and the API's
//! device answer. The peer is pyserial's RFC 2217 server on a `loop://` port, whose loop wires DTR
//! to DSR and RTS to CTS, so a line mo sets comes back as the modem state it reports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{
    Error, PyserialRfc2217, Result, WAIT, World, bin_path, ensure, run_test, wait_log_count,
    wait_until,
};
use serde_json::Value;

/// Wait until `mo ARGS` prints `needle`.
fn wait_mo(w: &World, args: &[&str], needle: &str) -> Result<String> {
    wait_until(
        &format!("`{needle}` in mo {}", args.join(" ")),
        WAIT,
        || {
            let out = w.mo(args, None)?;
            Ok(if out.stdout.contains(needle) {
                Ok(out.stdout)
            } else {
                Err(out.combined())
            })
        },
    )
}

/// `POST /api/v1/devices/NAME/signals` with `body` as `token`: the status and the JSON body.
fn post_signals(api: &HttpApi, device: &str, token: &str, body: &str) -> Result<(u16, Value)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Check(format!("http client: {e}")))?;
    let resp = client
        .post(api.url(&format!("/api/v1/devices/{device}/signals")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .map_err(|e| Error::Check(format!("POST signals of {device}: {e}")))?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .map_err(|e| Error::Check(format!("POST signals of {device}: reading: {e}")))?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// `GET /api/v1/devices/NAME` as `token`.
fn get_device(api: &HttpApi, device: &str, token: &str) -> Result<Value> {
    let resp = reqwest::blocking::Client::new()
        .get(api.url(&format!("/api/v1/devices/{device}")))
        .bearer_auth(token)
        .send()
        .map_err(|e| Error::Check(format!("GET {device}: {e}")))?;
    resp.json()
        .map_err(|e| Error::Check(format!("GET {device}: not JSON: {e}")))
}

#[test]
fn rest_and_cli_set_lines_and_show_the_modem_state() {
    run_test("line-signals-api", |w| {
        let server = PyserialRfc2217::start(w.dir())?;
        w.add_device("lab", &format!("rfc2217://127.0.0.1:{}", server.port), &[])?;
        w.add_device("plain", "sim://plain?boot=fast", &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user_with_role("otto", "otto-pw", Some(("viewer", "all")))?;
        let alice = add_token(w, "alice", "all")?;
        let otto = add_token(w, "otto", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        wait_log_count(w, "lab", "modem: DCD up, DSR up, CTS up", 1)?;

        // The record log's last word on the lines, without asking the daemon.
        let show = wait_mo(w, &["device", "show", "lab"], "DSR up")?;
        ensure!(show.contains("modem:"), "{show}");

        // DTR dropped through the API: recorded with the user, answered by DSR.
        let (status, body) = post_signals(&api, "lab", &alice, r#"{"dtr": false}"#)?;
        ensure!(status == 200, "POST dtr false: {status} {body}");
        ensure!(
            body["done"][0] == "DTR dropped by alice" && body["lines"]["dtr"] == false,
            "{body}"
        );
        ensure!(body["lines"]["dtr_changed"].is_string(), "{body}");
        wait_log_count(w, "lab", "DSR down (was up)", 1)?;
        let device = wait_until("DSR down in the API", WAIT, || {
            let d = get_device(&api, "lab", &alice)?;
            Ok(if d["modem"]["dsr"] == false {
                Ok(d)
            } else {
                Err(d.to_string())
            })
        })?;
        ensure!(
            device["lines"]["dtr"] == false && device["lines"]["modem_changed"].is_string(),
            "{device}"
        );

        // `mo device show` and `mo device list` on the data directory say so.
        let show = wait_mo(w, &["device", "show", "lab"], "DSR down")?;
        ensure!(show.contains("set by alice"), "{show}");
        let list = wait_mo(w, &["device", "list"], "DSR-")?;
        ensure!(list.contains("MODEM"), "{list}");
        let json = w.mo_ok(&["device", "list", "--json"], None)?.stdout;
        let json: Value = serde_json::from_str(&json)
            .map_err(|e| Error::Check(format!("device list --json: {e}: {json}")))?;
        let lab = json
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == "lab"))
            .cloned()
            .unwrap_or_default();
        ensure!(lab["modem"]["dsr"] == false, "{json}");

        // A viewer may not: 403, nothing changes.
        let (status, body) = post_signals(&api, "lab", &otto, r#"{"dtr": "toggle"}"#)?;
        ensure!(
            status == 403 && body["error"]["code"] == "forbidden",
            "{status} {body}"
        );
        // Bad bodies and a link without modem lines.
        for bad in ["{}", r#"{"dtr": "maybe"}"#, r#"{"dcd": true}"#] {
            let (status, body) = post_signals(&api, "lab", &alice, bad)?;
            ensure!(status == 400, "{bad}: {status} {body}");
        }
        let (status, body) = post_signals(&api, "plain", &alice, r#"{"rts": true}"#)?;
        ensure!(
            status == 422 && body["error"]["code"] == "unsupported",
            "{status} {body}"
        );
        let log = w.mo_ok(&["log", "show", "lab"], None)?.stdout;
        ensure!(
            log.matches("DTR ").count() == 1 && !log.contains("by otto"),
            "only alice's change:\n{log}"
        );

        // The CLI through the API: toggle raises DTR again, DSR follows.
        let out = w.mo(
            &[
                "--server", &api.base, "--token", &alice, "device", "signal", "lab", "--dtr",
                "toggle",
            ],
            None,
        )?;
        ensure!(
            out.status.success() && out.stdout.contains("lab: DTR raised by alice"),
            "{}",
            out.combined()
        );
        wait_log_count(w, "lab", "DSR up (was down)", 1)?;
        wait_mo(w, &["device", "show", "lab"], "DSR up")?;
        let list = w.mo_ok(
            &["--server", &api.base, "--token", &alice, "device", "list"],
            None,
        )?;
        ensure!(
            list.stdout.contains("MODEM") && list.stdout.contains("DSR+"),
            "{}",
            list.stdout
        );
        // `mo --server device show`: the live state and DTR as set, with when.
        let show = w.mo_ok(
            &[
                "--server", &api.base, "--token", &alice, "device", "show", "lab",
            ],
            None,
        )?;
        ensure!(
            show.stdout
                .contains("modem: DCD up, DSR up, CTS up, RI off (since ")
                && show.stdout.contains("DTR: up (set "),
            "{}",
            show.stdout
        );
        // Without --server it says what it needs.
        let out = w.mo(&["device", "signal", "lab", "--dtr", "off"], None)?;
        ensure!(
            !out.status.success() && out.stderr.contains("--server"),
            "{}",
            out.combined()
        );
        Ok(())
    });
}

#[test]
fn mo_console_escapes_set_lines_and_the_write_lock_rules_the_api() {
    run_test("line-signals-console", |w| {
        let server = PyserialRfc2217::start(w.dir())?;
        w.add_device("lab", &format!("rfc2217://127.0.0.1:{}", server.port), &[])?;
        w.add_user("alice", "alice-pw")?;
        w.add_user("bob", "bob-pw")?;
        let alice = add_token(w, "alice", "all")?;
        let bob = add_token(w, "bob", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        wait_log_count(w, "lab", "modem: DCD up, DSR up, CTS up", 1)?;

        // alice attaches with `mo console` (WebSocket) and holds the write lock.
        let mo = bin_path("mo")?.display().to_string();
        let argv: Vec<String> = [
            mo.as_str(),
            "--server",
            &api.base,
            "--token",
            &alice,
            "console",
            "lab",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let env = vec![("TERM".to_string(), "xterm".to_string())];
        let pane = w.tmux("alice-console", &argv, &env)?;
        pane.wait_for("attached read-write", WAIT)?;

        // The escapes reach the line; the daemon's notices come back.
        pane.send_keys(&["C-e", "c", "R", "0"])?;
        pane.wait_for("RTS dropped by alice", WAIT)?;
        pane.wait_for("CTS down (was up)", WAIT)?;
        pane.send_keys(&["C-e", "c", "D", "t"])?;
        pane.wait_for("DTR dropped by alice", WAIT)?;
        pane.wait_for("DSR down (was up)", WAIT)?;

        // bob may not set lines of a console alice holds: 409 naming her.
        let (status, body) = post_signals(&api, "lab", &bob, r#"{"dtr": true}"#)?;
        ensure!(
            status == 409
                && body["error"]["code"] == "conflict"
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("held by alice")),
            "{status} {body}"
        );
        // alice may, from the API, while she holds the lock in her console.
        let (status, body) = post_signals(&api, "lab", &alice, r#"{"dtr": "on", "rts": true}"#)?;
        ensure!(status == 200, "{status} {body}");
        ensure!(
            body["done"][0] == "DTR raised by alice" && body["done"][1] == "RTS raised by alice",
            "{body}"
        );
        pane.wait_for("DSR up (was down)", WAIT)?;
        wait_log_count(w, "lab", "CTS up (was down)", 1)?;
        let log = w.mo_ok(&["log", "show", "lab"], None)?.stdout;
        ensure!(!log.contains("by bob"), "bob changed a line:\n{log}");
        Ok(())
    });
}
