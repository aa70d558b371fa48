//! Operations signals of the real mod (issue 21 item 4): `--log-format json` writes one JSON
//! object per line with targets named `mod::…` (never `r#mod`), `/api/v1/ready` answers once the
//! doors are open, and `/metrics` has `mo_console_up{device}` and `mo_build_info`.

use std::thread;
use std::time::{Duration, Instant};

use mo_testsupport::{Error, Result, ensure, free_port, run_test};

/// Generous: the machine is shared and may be loaded.
const LONG: Duration = Duration::from_secs(60);

fn get(url: &str) -> Result<(u16, String)> {
    let resp = reqwest::blocking::get(url).map_err(|e| Error::Check(format!("GET {url}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .map_err(|e| Error::Check(format!("GET {url}: body: {e}")))?;
    Ok((status, body))
}

#[test]
fn json_logs_readiness_and_console_metrics() {
    run_test("operations", |w| {
        w.add_echo_device("box", &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let http = free_port()?;
        let addr = format!("127.0.0.1:{http}");
        w.start_daemon(&[
            "--http",
            &addr,
            "--metrics-public",
            "--log-format",
            "json",
            "--log",
            "info,mod::ssh=debug",
        ])?;

        // Ready once started.
        let (status, body) = get(&format!("http://{addr}/api/v1/ready"))?;
        ensure!(
            status == 200 && body.contains("\"ready\":true"),
            "{status} {body}"
        );

        // The console's link shows in the metrics, with the build.
        let deadline = Instant::now() + LONG;
        let metrics = loop {
            let (_, text) = get(&format!("http://{addr}/metrics"))?;
            if text.contains("mo_console_up{device=\"box\"} 1") {
                break text;
            }
            ensure!(
                Instant::now() < deadline,
                "box never up in /metrics:\n{text}"
            );
            thread::sleep(Duration::from_millis(200));
        };
        ensure!(
            metrics.contains("# TYPE mo_console_up gauge")
                && metrics.contains("mo_build_info{version=\"")
                && metrics.contains("\"} 1"),
            "{metrics}"
        );

        // A login logs through the `mod::ssh` target, in JSON.
        alice
            .run(mo_testsupport::Login::Shell, &["list"], None)?
            .ok()?;
        w.daemon()?.wait_log("password login", LONG)?;
        let log = w.daemon()?.log_text();
        ensure!(!log.contains("r#mod"), "raw crate name in the log:\n{log}");
        let records: Vec<serde_json::Value> = log
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                serde_json::from_str(l).map_err(|e| Error::Check(format!("not JSON: {l}: {e}")))
            })
            .collect::<Result<_>>()?;
        ensure!(
            records.iter().any(|r| r["target"] == "mod::ssh"
                && r["level"] == "INFO"
                && r["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("password login"))
                && r["fields"]["user"] == "alice"),
            "no JSON login record:\n{log}"
        );
        ensure!(
            records
                .iter()
                .all(|r| r["timestamp"].is_string() && r["target"].is_string()),
            "{log}"
        );
        Ok(())
    });
}
