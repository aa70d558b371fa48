//! Operations signals of the real mod (issue 21 item 4): `--log-format json` writes one JSON
//! object per line with targets named `mod::…` (never `r#mod`), `/api/v1/ready` answers once the
//! doors are open, and `/metrics` has `mo_console_up{device}` and `mo_build_info`; `/api/v1/health`
//! has a status per part (`log`, `store`) and says `degraded` while a record log cannot write (a
//! tmpfs filled to ENOSPC: this test mounts it, so it needs root, as CI runs it); `/metrics`
//! counts logins and failures by door, power actions by result, record-log bytes and free disk.

use std::thread;
use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};
use std::process::Command;

use mo_testsupport::http::add_token;
use mo_testsupport::{Error, Login, Result, ensure, free_port, run_test, run_with_timeout};

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

/// A tmpfs the test mounted; lazily unmounted when dropped (the daemon may hold files there).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(at).map_err(|e| Error::Check(format!("mkdir {at:?}: {e}")))?;
        let mut cmd = Command::new("mount");
        cmd.args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at);
        let out = run_with_timeout(cmd, None, Duration::from_secs(30))?;
        ensure!(
            out.success(),
            "mounting a tmpfs at {at:?} failed (this test needs root):\n{}",
            out.combined()
        );
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn get_json(url: &str, token: Option<&str>) -> Result<serde_json::Value> {
    let mut req = reqwest::blocking::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send()
        .and_then(|r| r.json())
        .map_err(|e| Error::Check(format!("GET {url}: {e}")))
}

/// Poll `/metrics` until `check` accepts it.
fn wait_metrics(addr: &str, what: &str, check: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + LONG;
    loop {
        let (_, text) = get(&format!("http://{addr}/metrics"))?;
        if check(&text) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "{what} never in /metrics:\n{text}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

const PDU: &str = r#"#!/bin/sh
# pdu.sh ACTION OUTLET: a fake PDU keeping outlet states in files beside this script.
state="$(dirname "$0")/outlet-$2"
case "$1" in
  status) cat "$state" 2>/dev/null || echo off ;;
  on|off) echo "$1" >"$state" ;;
  cycle|reset) echo on >"$state" ;;
  *) echo "unknown action $1" >&2; exit 3 ;;
esac
"#;

/// A console printing a line every 50 ms, forever.
const TICKER: &str = "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done\n";

#[test]
fn health_parts_and_operations_metrics() {
    run_test("operations-health", |w| {
        let pdu = w.write_script("pdu.sh", PDU)?;
        w.add_echo_device(
            "box",
            &[
                "--power",
                &format!("exec://{}?arg={{action}}&arg=1", pdu.display()),
            ],
        )?;
        let ticker = w.write_script("ticker.sh", TICKER)?;
        w.add_device("ticker", &format!("exec://{}", ticker.display()), &[])?;
        let alice = w.add_user("alice", "alice-pw")?;
        let token = add_token(w, "alice", "all")?;
        // The ticker's record log lives on a small tmpfs of its own.
        let ticker_logs = w.data_dir().join("logs").join("ticker");
        let _tmpfs = Tmpfs::mount(&ticker_logs, "512k")?;
        let http = free_port()?;
        let addr = format!("127.0.0.1:{http}");
        w.start_daemon(&["--http", &addr, "--metrics-public"])?;

        // Healthy: every part ok.
        let health = get_json(&format!("http://{addr}/api/v1/health"), Some(&token))?;
        let parts = health["parts"].as_array().cloned().unwrap_or_default();
        for name in ["log", "store"] {
            ensure!(
                parts
                    .iter()
                    .any(|p| p["name"] == name && p["status"] == "ok"),
                "part {name} not ok: {health}"
            );
        }
        ensure!(health["status"] == "ok", "{health}");

        // A failed login, a login and a power action are counted.
        let wrong = w.client("alice", "not-her-password")?;
        let out = wrong.run(Login::Shell, &["list"], None)?;
        ensure!(
            !out.success(),
            "a wrong password logged in: {}",
            out.combined()
        );
        let out = alice.run(Login::Shell, &["power", "on", "box"], None)?;
        ensure!(out.success(), "power on box: {}", out.combined());
        let metrics = wait_metrics(&addr, "login and power counters", |m| {
            m.contains("mo_login_failures_total{door=\"ssh\"} ")
                && m.contains("mo_logins_total{door=\"ssh\"} ")
                && m.contains("mo_power_actions_total{action=\"on\",result=\"ok\"} 1")
        })?;
        ensure!(
            metrics.contains("# TYPE mo_data_dir_free_bytes gauge")
                && metrics.contains("mo_data_dir_free_bytes{dir=\"")
                && metrics.contains("# TYPE mo_log_bytes gauge"),
            "{metrics}"
        );
        // The ticker's log grows in the metrics.
        wait_metrics(&addr, "the ticker's log bytes", |m| {
            m.lines().any(|l| {
                l.strip_prefix("mo_log_bytes{device=\"ticker\"} ")
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })?;

        // Fill the ticker's tmpfs: its log cannot write, health says so.
        let mut filler = std::fs::File::create(ticker_logs.join("filler"))
            .map_err(|e| Error::Check(format!("create filler: {e}")))?;
        let block = vec![0u8; 4096];
        loop {
            use std::io::Write as _;
            match filler.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(Error::Check(format!("filling the tmpfs: {e}"))),
            }
        }
        let deadline = Instant::now() + LONG;
        let health = loop {
            let h = get_json(&format!("http://{addr}/api/v1/health"), Some(&token))?;
            if h["status"] == "degraded" {
                break h;
            }
            ensure!(Instant::now() < deadline, "health never degraded: {h}");
            thread::sleep(Duration::from_millis(200));
        };
        let parts = health["parts"].as_array().cloned().unwrap_or_default();
        ensure!(
            parts.iter().any(|p| p["name"] == "log"
                && p["status"] == "degraded"
                && p["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("cannot write"))),
            "{health}"
        );
        ensure!(
            parts
                .iter()
                .any(|p| p["name"] == "store" && p["status"] == "ok"),
            "{health}"
        );
        // Anyone sees the parts' status, not the details.
        let anonymous = get_json(&format!("http://{addr}/api/v1/health"), None)?;
        let parts = anonymous["parts"].as_array().cloned().unwrap_or_default();
        ensure!(
            parts
                .iter()
                .any(|p| p["name"] == "log" && p["status"] == "degraded" && p["detail"].is_null()),
            "{anonymous}"
        );
        drop(filler);
        let _ = std::fs::remove_file(ticker_logs.join("filler"));
        Ok(())
    });
}
