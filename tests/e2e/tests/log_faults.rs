//! Real faults under the record log, through a running `mod`: a data directory on a small tmpfs
//! filled to ENOSPC, RLIMIT_FSIZE on the daemon, a log directory made read-only, and torn tails.
//! For each fault: the console keeps serving its viewer, the viewer gets a notice, the health
//! endpoint and the metrics say `degraded`, an `error` event with source `log` is stored; once
//! the fault is gone logging resumes by itself, a `gap` record says what was lost, and `mo log
//! verify` passes.
//!
//! These tests mount file systems and change the daemon's resource limits: they need root (CI
//! runs them as root). Without it they fail and say so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{Error, Result, WAIT, World, ensure, run_test, run_with_timeout};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// A device that prints numbered ~1 KB lines as fast as `sh` can while the file `GO` exists,
/// and nothing otherwise: the test decides when the log has something to write.
fn gated_flood(go: &Path) -> String {
    format!(
        "#!/bin/sh\ni=0\npad=$(printf '%0900d' 0)\nwhile :; do\n  if [ -e '{}' ]; then i=$((i+1)); echo \"line $i $pad\"; else sleep 0.05; fi\ndone\n",
        go.display()
    )
}

fn sh(what: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(what);
    cmd.args(args);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30))?;
    ensure!(
        out.success(),
        "`{what} {}` failed (these tests need root: they mount file systems and set rlimits):\n{}",
        args.join(" "),
        out.combined()
    );
    Ok(out.stdout)
}

/// A mount the test made; lazily unmounted when dropped (the daemon may still hold files).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Result<Mount> {
        std::fs::create_dir_all(at).map_err(|e| Error::Check(format!("mkdir {at:?}: {e}")))?;
        let at_s = at.display().to_string();
        sh(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &at_s],
        )?;
        Ok(Mount(at.to_path_buf()))
    }

    /// A read-only bind mount of `at` over itself: files opened before stay writable, nothing
    /// new can be created there.
    fn read_only(at: &Path) -> Result<Mount> {
        let at_s = at.display().to_string();
        sh("mount", &["--bind", &at_s, &at_s])?;
        let m = Mount(at.to_path_buf());
        sh("mount", &["-o", "remount,bind,ro", &at_s])?;
        Ok(m)
    }

    fn unmount(self) -> Result<()> {
        let at = self.0.display().to_string();
        std::mem::forget(self);
        sh("umount", &[&at]).map(|_| ())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn get_json(api: &HttpApi, path: &str, token: Option<&str>) -> Result<Value> {
    let client = reqwest::blocking::Client::new();
    let mut req = client.get(api.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .map_err(|e| Error::Check(format!("GET {path}: {e}")))?;
    resp.json()
        .map_err(|e| Error::Check(format!("GET {path}: not JSON: {e}")))
}

fn get_text(api: &HttpApi, path: &str, token: &str) -> Result<String> {
    reqwest::blocking::Client::new()
        .get(api.url(path))
        .bearer_auth(token)
        .send()
        .and_then(|r| r.text())
        .map_err(|e| Error::Check(format!("GET {path}: {e}")))
}

/// Poll `what` until it returns `Some`, for at most [`WAIT`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A WebSocket viewer on its own runtime, collecting notices.
struct Viewer {
    /// Keeps the reader task running while the test waits.
    _rt: tokio::runtime::Runtime,
    notices: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Viewer {
    fn attach(api: &HttpApi, device: &str, token: &str) -> Result<Viewer> {
        // Its own worker thread keeps reading while the test waits.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::Check(format!("runtime: {e}")))?;
        let mut req = api
            .ws_url(&format!(
                "/api/v1/devices/{device}/attach?mode=spy&replay=0"
            ))
            .into_client_request()
            .map_err(|e| Error::Check(format!("ws request: {e}")))?;
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|e| Error::Check(format!("header: {e}")))?,
        );
        let (mut ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(req))
            .map_err(|e| Error::Check(format!("WebSocket attach to {device}: {e}")))?;
        let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = notices.clone();
        rt.spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(t) = msg
                    && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                    && v["type"] == "notice"
                    && let (Some(text), Ok(mut n)) = (v["text"].as_str(), sink.lock())
                {
                    n.push(text.to_string());
                }
            }
        });
        Ok(Viewer { _rt: rt, notices })
    }

    fn wait_notice(&self, needle: &str) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if let Ok(n) = self.notices.lock()
                && let Some(hit) = n.iter().find(|t| t.contains(needle))
            {
                return Ok(hit.clone());
            }
            let seen = self
                .notices
                .lock()
                .map(|n| n.join("\n"))
                .unwrap_or_default();
            ensure!(
                Instant::now() < deadline,
                "the viewer got no notice containing {needle:?}; notices:\n{seen}"
            );
        }
    }
}

/// The daemon with one gated flooding device `name`, an admin `root1` with a token, and a
/// spying WebSocket viewer.
struct Rig {
    api: HttpApi,
    token: String,
    go: PathBuf,
    viewer: Viewer,
}

fn rig(
    w: &mut World,
    name: &str,
    daemon_args: &[&str],
    before_start: impl FnOnce(&World) -> Result<()>,
) -> Result<Rig> {
    let go = w.dir().join(format!("{name}.go"));
    let script = w.write_script(&format!("{name}.sh"), &gated_flood(&go))?;
    w.add_device(name, &format!("exec://{}", script.display()), &[])?;
    w.add_user("root1", "root-pw")?;
    let token = add_token(w, "root1", "all")?;
    before_start(w)?;
    let api = start_daemon_with_http(w, daemon_args)?;
    let viewer = Viewer::attach(&api, name, &token)?;
    Ok(Rig {
        api,
        token,
        go,
        viewer,
    })
}

/// Output lines `line N` found in `text`, in order.
fn line_numbers(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| {
            let at = l.find("line ")?;
            l[at + 5..].split(' ').next()?.parse().ok()
        })
        .collect()
}

/// Everything the fault tests check once the fault is on, then once it is gone.
fn degrade_then_recover(
    w: &mut World,
    r: &Rig,
    device: &str,
    error_text: &str,
    make_fault: impl FnOnce() -> Result<()>,
    clear_fault: impl FnOnce() -> Result<()>,
) -> Result<()> {
    // The fault first, so that not even the gap record fits until it is cleared; then print.
    make_fault()?;
    std::fs::write(&r.go, b"").map_err(|e| Error::Check(format!("go file: {e}")))?;
    let notice = r.viewer.wait_notice("log: degraded")?;
    ensure!(
        notice.contains(error_text),
        "the degraded notice does not name the error {error_text:?}: {notice}"
    );
    std::fs::remove_file(&r.go).map_err(|e| Error::Check(format!("go file: {e}")))?;

    // The health endpoint, the metrics and the event say so.
    let health = get_json(&r.api, "/api/v1/health", None)?;
    ensure!(
        health["status"] == "degraded" && health["log_degraded"] == 1,
        "health while the log cannot write: {health}"
    );
    ensure!(
        health.get("degraded").is_none(),
        "an anonymous caller must not learn device names: {health}"
    );
    let health = get_json(&r.api, "/api/v1/health", Some(&r.token))?;
    ensure!(
        health["degraded"][0]["device"] == device
            && health["degraded"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains(error_text)),
        "health for an admin names the device and the error: {health}"
    );
    let metrics = get_text(&r.api, "/metrics", &r.token)?;
    let errors_line = format!("mo_log_write_errors_total{{device=\"{device}\"}} ");
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&errors_line))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::Check(format!("no {errors_line} in /metrics:\n{metrics}")))?;
    ensure!(errors >= 1, "write errors not counted: {errors}");
    ensure!(
        metrics.contains(&format!("mo_log_degraded{{device=\"{device}\"}} 1")),
        "mo_log_degraded is not 1:\n{metrics}"
    );
    wait_for("an error event with source log", || {
        let out = w.mo(&["events", "--device", device], None)?;
        Ok(out.stdout.contains("record log cannot write").then_some(()))
    })?;

    // The fault goes away: logging resumes by itself, with a gap record.
    clear_fault()?;
    let gap = r.viewer.wait_notice("gap: ")?;
    ensure!(
        gap.contains("were not recorded") && gap.contains(error_text),
        "gap notice: {gap}"
    );
    r.viewer.wait_notice("log: recording again")?;
    wait_for("health back to ok", || {
        let h = get_json(&r.api, "/api/v1/health", None)?;
        Ok((h["status"] == "ok").then_some(()))
    })?;
    // New output is logged again.
    std::fs::write(&r.go, b"").map_err(|e| Error::Check(format!("go file: {e}")))?;
    std::thread::sleep(Duration::from_millis(200));
    std::fs::remove_file(&r.go).map_err(|e| Error::Check(format!("go file: {e}")))?;
    let shown = w.mo_ok(&["log", "show", device], None)?.stdout;
    let gap_at = shown
        .find("[gap] gap: ")
        .ok_or_else(|| Error::Check("no [gap] record in `mo log show`".into()))?;
    let before = line_numbers(&shown[..gap_at]);
    let after = line_numbers(&shown[gap_at..]);
    ensure!(
        !before.is_empty() && !after.is_empty(),
        "output before and after the gap is in the log ({} / {} lines)",
        before.len(),
        after.len()
    );
    // Lines are in order; what the gap lost is the lines between.
    ensure!(
        before.windows(2).all(|p| p[1] == p[0] + 1) && after.windows(2).all(|p| p[1] == p[0] + 1),
        "lines out of order or missing outside the gap"
    );
    let verify = w.mo(&["log", "verify", device], None)?;
    ensure!(
        verify.success(),
        "`mo log verify {device}` after the fault:\n{}",
        verify.combined()
    );
    Ok(())
}

#[test]
fn a_full_disk_degrades_the_log_and_freeing_space_resumes_it() {
    run_test("log-enospc", |w| {
        let logs = w.data_dir().join("logs");
        let filler = logs.join("filler");
        let mount = std::cell::RefCell::new(None);
        let r = rig(w, "full1", &[], |w| {
            *mount.borrow_mut() = Some(Mount::tmpfs(&w.data_dir().join("logs"), "4m")?);
            Ok(())
        })?;
        let fill = || {
            // Take every free block, so no record fits.
            let mut f =
                std::fs::File::create(&filler).map_err(|e| Error::Check(format!("filler: {e}")))?;
            let block = vec![0u8; 64 * 1024];
            let mut small = vec![0u8; 512];
            loop {
                if let Err(e) = std::io::Write::write_all(&mut f, &block) {
                    ensure!(e.raw_os_error() == Some(28), "filling the tmpfs: {e}");
                    break;
                }
            }
            while std::io::Write::write_all(&mut f, &small).is_ok() {}
            small.clear();
            Ok(())
        };
        degrade_then_recover(w, &r, "full1", "No space left on device", fill, || {
            std::fs::remove_file(&filler).map_err(|e| Error::Check(format!("rm filler: {e}")))
        })?;
        w.daemon()?.stop()?;
        if let Some(m) = mount.into_inner() {
            m.unmount()?;
        }
        Ok(())
    });
}

#[test]
fn a_file_size_limit_degrades_the_log_and_lifting_it_resumes_it() {
    run_test("log-fsize", |w| {
        let r = rig(w, "big1", &[], |_| Ok(()))?;
        let pid = w.daemon()?.pid().to_string();
        // A live segment well larger than the store's files (the limit holds for every file the
        // daemon writes), then a soft limit at exactly its size: no record fits, not even a gap.
        std::fs::write(&r.go, b"").map_err(|e| Error::Check(format!("go: {e}")))?;
        let dir = w.data_dir().join("logs").join("big1");
        wait_for("a live segment of 12 MB", || {
            Ok((mo_testsupport::dir_size(&dir) > 12_000_000).then_some(()))
        })?;
        std::fs::remove_file(&r.go).map_err(|e| Error::Check(format!("go: {e}")))?;
        let segment = wait_for("the flood to stop", || {
            let a = segments(&dir)?;
            let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let before = a.last().map(size);
            std::thread::sleep(Duration::from_millis(300));
            Ok((before == segments(&dir)?.last().map(size))
                .then_some(a.last().cloned())
                .flatten())
        })?;
        let set_limit = || {
            let size = std::fs::metadata(&segment)
                .map_err(|e| Error::Check(format!("{segment:?}: {e}")))?
                .len()
                .to_string();
            // Only the soft limit: raising a hard limit again needs a privilege the test may lack.
            sh(
                "prlimit",
                &["--pid", &pid, &format!("--fsize={size}:unlimited")],
            )
            .map(|_| ())
        };
        degrade_then_recover(w, &r, "big1", "File too large", set_limit, || {
            sh("prlimit", &["--pid", &pid, "--fsize=unlimited:unlimited"]).map(|_| ())
        })?;
        ensure!(
            w.daemon()?.is_running(),
            "the daemon died of SIGXFSZ instead of degrading the log"
        );
        Ok(())
    });
}

#[test]
fn a_read_only_log_directory_degrades_the_log_until_it_is_writable() {
    run_test("log-readonly", |w| {
        // Small segments: the flood soon needs a new segment file, which a read-only directory
        // refuses (the open live segment itself stays writable).
        let r = rig(w, "ro1", &["--segment-mib", "1"], |_| Ok(()))?;
        let dir = w.data_dir().join("logs").join("ro1");
        std::fs::write(&r.go, b"").map_err(|e| Error::Check(format!("go: {e}")))?;
        wait_for("a first segment", || {
            Ok((mo_testsupport::dir_size(&dir) > 0).then_some(()))
        })?;
        std::fs::remove_file(&r.go).map_err(|e| Error::Check(format!("go: {e}")))?;
        let ro = std::cell::RefCell::new(None);
        degrade_then_recover(
            w,
            &r,
            "ro1",
            "Read-only file system",
            || {
                *ro.borrow_mut() = Some(Mount::read_only(&dir)?);
                Ok(())
            },
            || match ro.borrow_mut().take() {
                Some(m) => m.unmount(),
                None => Ok(()),
            },
        )?;
        Ok(())
    });
}

/// The segment files of a device, oldest first.
fn segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Check(format!("read {dir:?}: {e}")))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mlog"))
        .collect();
    v.sort();
    Ok(v)
}

fn record_count(w: &World, device: &str) -> Result<u64> {
    let out = w.mo_ok(&["log", "verify", device], None)?;
    // "… N records …"
    out.stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find_map(|p| {
            (p[1].starts_with("record"))
                .then(|| p[0].parse().ok())
                .flatten()
        })
        .ok_or_else(|| Error::Check(format!("no record count in:\n{}", out.stdout)))
}

#[test]
fn a_torn_tail_cut_while_stopped_loses_only_the_torn_record() {
    run_test("log-torn", |w| {
        let r = rig(w, "torn1", &[], |_| Ok(()))?;
        std::fs::write(&r.go, b"").map_err(|e| Error::Check(format!("go: {e}")))?;
        let dir = w.data_dir().join("logs").join("torn1");
        wait_for("200 KB of log", || {
            Ok((mo_testsupport::dir_size(&dir) > 200_000).then_some(()))
        })?;
        std::fs::remove_file(&r.go).map_err(|e| Error::Check(format!("go: {e}")))?;
        w.daemon()?.stop()?;
        let before = record_count(w, "torn1")?;
        // Cut the live segment in the middle of its last record (its last 40 bytes are the
        // trailer: cut 20 bytes, which leaves a record without its checksum).
        let live = segments(&dir)?
            .pop()
            .ok_or_else(|| Error::Check("no segment".into()))?;
        let len = std::fs::metadata(&live)
            .map_err(|e| Error::Check(e.to_string()))?
            .len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&live)
            .map_err(|e| Error::Check(e.to_string()))?;
        f.set_len(len - 20)
            .map_err(|e| Error::Check(e.to_string()))?;
        drop(f);
        // Before the restart, verify sees the torn record and every record before it.
        let out = w.mo(&["log", "verify", "torn1"], None)?;
        ensure!(
            out.combined().contains("torn final record"),
            "verify does not report the torn tail:\n{}",
            out.combined()
        );
        let intact = record_count(w, "torn1")?;
        ensure!(
            intact == before - 1,
            "only the torn record may be missing: {before} records before the cut, {intact} after"
        );
        w.start_daemon(&[])?;
        w.daemon()?.wait_log("recovered after a crash", WAIT)?;
        w.daemon()?.stop()?;
        let out = w.mo_ok(&["log", "verify", "torn1"], None)?;
        ensure!(
            !out.combined().contains("torn final record"),
            "the restarted writer cut the torn record:\n{}",
            out.combined()
        );
        ensure!(
            record_count(w, "torn1")? > intact,
            "the restarted daemon logs again after the intact records"
        );
        let shown = w.mo_ok(&["log", "show", "torn1"], None)?.stdout;
        let numbers = line_numbers(&shown);
        ensure!(
            !numbers.is_empty() && numbers.windows(2).all(|p| p[1] == p[0] + 1),
            "lines before the torn record are all there, in order"
        );
        Ok(())
    });
}

#[test]
fn kill_9_during_a_flood_of_large_records_leaves_a_verifiable_log() {
    run_test("log-kill9-large", |w| {
        let r = rig(w, "k1", &[], |_| Ok(()))?;
        let dir = w.data_dir().join("logs").join("k1");
        std::fs::write(&r.go, b"").map_err(|e| Error::Check(format!("go: {e}")))?;
        // 1 KB lines as fast as sh prints them: reads of many KB, records larger than a page.
        wait_for("2 MB of log", || {
            Ok((mo_testsupport::dir_size(&dir) > 2_000_000).then_some(()))
        })?;
        w.daemon()?.kill9()?;
        std::fs::remove_file(&r.go).map_err(|e| Error::Check(format!("go: {e}")))?;
        let verify = w.mo(&["log", "verify", "k1"], None)?;
        ensure!(
            verify.success(),
            "verify right after kill -9 (a torn final record is tolerated):\n{}",
            verify.combined()
        );
        w.start_daemon(&[])?;
        w.daemon()?.stop()?;
        let verify = w.mo(&["log", "verify", "k1"], None)?;
        ensure!(
            verify.success(),
            "verify after restart:\n{}",
            verify.combined()
        );
        let shown = w.mo_ok(&["log", "show", "k1"], None)?.stdout;
        let numbers = line_numbers(&shown);
        ensure!(
            numbers.len() > 1000 && numbers.windows(2).all(|p| p[1] == p[0] + 1),
            "every line up to the crash is there once, in order ({} lines)",
            numbers.len()
        );
        Ok(())
    });
}
