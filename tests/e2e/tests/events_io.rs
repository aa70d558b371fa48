//! Events in and out (issue 23 item 4): an event posted to `POST /api/v1/events` (with a real
//! HTTP client) and one raised with `mo events raise` go through the daemon's rules, and the
//! rule's `webhook` action reaches a real HTTP server process (a Python script on a free loopback
//! port) with the templated body and headers and an HMAC-SHA256 signature that Python's own
//! `hmac` module verifies. A user without `events.raise` is refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{Error, Peer, Result, WAIT, ensure, run_test};

/// A webhook receiver: answers 200 to every POST and appends one JSON line per request to
/// argv[2] (path, headers, body, and whether the signature matches argv[3] as HMAC key); writes
/// its port to argv[1] once it listens on 127.0.0.1 port 0.
const RECEIVER: &str = r#"
import hashlib, hmac, http.server, json, os, sys

port_file, out_file, secret = sys.argv[1], sys.argv[2], sys.argv[3].encode()

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "signed": hmac.compare_digest(expected, self.headers.get("X-Hook-Sig", "")),
        }
        with open(out_file, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
tmp = port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.rename(tmp, port_file)
server.serve_forever()
"#;

/// Start the receiver; returns it and its port.
fn start_receiver(dir: &Path, out: &Path, secret: &str) -> Result<(Peer, u16)> {
    let script = dir.join("receiver.py");
    std::fs::write(&script, RECEIVER).map_err(|e| Error::io("write receiver.py", e))?;
    let port_file = dir.join("receiver.port");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(&port_file)
        .arg(out)
        .arg(secret)
        .stdin(Stdio::null());
    let log = dir.join("receiver.log");
    let mut peer = Peer::spawn(
        "webhook receiver (python3; install python3)",
        cmd,
        Some(&log),
    )?;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let Ok(port) = text.trim().parse::<u16>()
        {
            return Ok((peer, port));
        }
        ensure!(
            peer.is_running() && Instant::now() < deadline,
            "the webhook receiver did not start (is python3 installed?):\n{}",
            peer.log_text()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The receiver's records so far.
fn received(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Wait until the receiver got a request whose body holds `needle`.
fn wait_hook(out: &Path, needle: &str) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = received(out)
            .into_iter()
            .find(|r| r["body"].as_str().is_some_and(|b| b.contains(needle)))
        {
            return Ok(r);
        }
        ensure!(
            Instant::now() < deadline,
            "the webhook never delivered {needle:?}; got {:?}",
            received(out)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn external_events_run_rules_and_webhooks_arrive_signed() {
    run_test("events-io", |w| {
        let secret = "s3cret-key";
        let out = w.dir().join("hooks.jsonl");
        let (_receiver, port) = start_receiver(w.dir(), &out, secret)?;
        let config = w.dir().join("events.toml");
        std::fs::write(
            &config,
            format!(
                r##"[rules]
dedup_window = "0s"
[[rules.rule]]
name = "outside"
sources = ["external", "manual"]
text = "UPS"
actions = ["hook"]

[actions.hook]
kind = "webhook"
url = "http://127.0.0.1:{port}/hook"
body = '{{{{"text": "{{device}} {{severity}} {{source}}: {{message}}"}}}}'
headers = {{ X-Device = "{{device}}", X-Event = "#{{id}}" }}
secret = "{secret}"
signature_header = "X-Hook-Sig"
retries = 5
"##
            ),
        )
        .map_err(|e| Error::io("write events.toml", e))?;
        w.add_echo_device("web1", &[])?;
        w.add_user("root1", "root-pw")?;
        w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let root = add_token(w, "root1", "all")?;
        let vera = add_token(w, "vera", "all")?;
        let config_arg = config.display().to_string();
        let api = start_daemon_with_http(w, &["--events", &config_arg])?;
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Check(format!("reqwest client: {e}")))?;
        let post = |token: &str, body: serde_json::Value| {
            client
                .post(api.url("/api/v1/events"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .map_err(|e| Error::Check(format!("POST /api/v1/events: {e}")))
        };

        // A viewer may not raise events; nothing reaches the receiver for it.
        let denied = post(
            &vera,
            serde_json::json!({"device": "web1", "severity": "critical", "message": "UPS vera"}),
        )?;
        ensure!(
            denied.status().as_u16() == 403,
            "a viewer raised an event: {}",
            denied.status()
        );
        // Bad input is refused with 400, naming the field.
        let bad = post(
            &root,
            serde_json::json!({"device": "web1", "severity": "critical", "message": "a\nb"}),
        )?;
        let status = bad.status().as_u16();
        let text = bad.text().unwrap_or_default();
        ensure!(status == 400 && text.contains("message"), "{status} {text}");

        // An external event with a quote in its message: the JSON body stays JSON.
        let accepted = post(
            &root,
            serde_json::json!({
                "device": "web1", "severity": "critical", "source": "external",
                "message": "UPS \"main\" on battery", "context": ["from nagios"],
            }),
        )?;
        ensure!(
            accepted.status().as_u16() == 202,
            "POST /api/v1/events: {}",
            accepted.status()
        );
        let hook = wait_hook(&out, "on battery")?;
        let body: serde_json::Value = serde_json::from_str(hook["body"].as_str().unwrap_or(""))
            .map_err(|e| Error::Check(format!("the templated body is not JSON: {e}: {hook}")))?;
        ensure!(
            body["text"] == "web1 critical external: UPS \"main\" on battery",
            "body: {hook}"
        );
        ensure!(
            hook["path"] == "/hook"
                && hook["headers"]["x-device"] == "web1"
                && hook["headers"]["x-event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with('#'))
                && hook["headers"]["content-type"] == "application/json",
            "headers: {hook}"
        );
        ensure!(
            hook["signed"] == true,
            "the HMAC-SHA256 signature did not verify: {hook}"
        );

        // The event is stored with its source, and the CLI raises one too (source manual).
        let server = api.base.clone();
        let raised = w.mo(
            &[
                "--server",
                &server,
                "--token",
                &root,
                "events",
                "raise",
                "web1",
                "--severity",
                "error",
                "--message",
                "UPS back on mains",
            ],
            None,
        )?;
        ensure!(raised.success(), "mo events raise:\n{}", raised.combined());
        let hook = wait_hook(&out, "back on mains")?;
        ensure!(
            hook["body"]
                .as_str()
                .is_some_and(|b| b.contains("web1 error manual: UPS back on mains"))
                && hook["signed"] == true,
            "{hook}"
        );
        let listed = w.mo_ok(&["events", "--device", "web1"], None)?;
        ensure!(
            listed
                .stdout
                .contains("critical external UPS \"main\" on battery")
                && listed.stdout.contains("error manual UPS back on mains"),
            "mo events:\n{}",
            listed.stdout
        );
        ensure!(
            !received(&out)
                .iter()
                .any(|r| r["body"].as_str().is_some_and(|b| b.contains("vera"))),
            "the refused event reached the webhook"
        );

        // Without --server, `mo events raise` says what it needs.
        let no_server = w.mo(
            &[
                "events",
                "raise",
                "web1",
                "--severity",
                "info",
                "--message",
                "x",
            ],
            None,
        )?;
        ensure!(
            !no_server.success() && no_server.combined().contains("--server"),
            "{}",
            no_server.combined()
        );
        Ok(())
    });
}
