//! Joining a site (issue 14, item 1): two `mod` daemons with `--cluster` on one real nats-server
//! (JetStream), each on its own data directory with its own console. Both nodes, their consoles
//! and their link states show in `mo cluster status` and `GET /api/v1/cluster` of either; a node
//! killed with SIGKILL becomes `lost`, comes back `up` when restarted, and shows `left` after a
//! clean stop. Without `--cluster` the daemon says it is not in one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{
    Cli, Daemon, Error, Nats, Result, World, bin_path, ensure, free_port, run_test,
    run_with_timeout,
};
use serde_json::Value;

/// How long a cluster change may take to show (heartbeats every 500 ms; a busy machine).
const DEADLINE: Duration = Duration::from_secs(60);

/// `mo --server BASE --token TOKEN cluster status --json`.
fn status(w: &World, base: &str, token: &str) -> Result<Value> {
    let out = w.mo_ok(
        &[
            "--server", base, "--token", token, "cluster", "status", "--json",
        ],
        None,
    )?;
    serde_json::from_str(&out.stdout)
        .map_err(|e| Error::Check(format!("cluster status --json: {e}:\n{}", out.stdout)))
}

/// The node `name` of a status, if listed.
fn node<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["name"] == name)
}

/// Whether node `name` is in `state` and lists console `console` with link state `up`.
fn node_is(status: &Value, name: &str, state: &str, console: &str) -> bool {
    node(status, name).is_some_and(|n| {
        n["state"] == state
            && n["consoles"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["name"] == console && c["state"] == "up")
            })
    })
}

/// Poll the status until `ok` holds; the error shows the last status seen.
fn wait_status(
    w: &World,
    base: &str,
    token: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = status(w, base, token)?;
        if ok(&seen) {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(Error::Check(format!(
                "{what}: not within {DEADLINE:?}; last status:\n{seen:#}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_nodes_see_each_other_and_a_killed_node_becomes_lost() {
    run_test("cluster-two", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        w.mo_ok(
            &["device", "add", "alpha-sim", "sim://alpha-sim?boot=fast"],
            None,
        )?;
        w.add_user("root1", "root-pw")?;
        let token = add_token(w, "root1", "all")?;
        let beat = ["--heartbeat", "500ms"];
        let mut alpha_args = vec!["--cluster", url.as_str(), "--node", "alpha"];
        alpha_args.extend(beat);
        let http = start_daemon_with_http(w, &alpha_args)?;
        let beta_dir = w.dir().join("beta");
        Cli::run_ok(
            &beta_dir,
            &["device", "add", "beta-sim", "sim://beta-sim?boot=fast"],
            None,
        )?;
        let beta_port = free_port()?;
        let mut beta_args = vec!["--cluster", url.as_str(), "--node", "beta"];
        beta_args.extend(beat);
        let mut beta = Daemon::start(&beta_dir, beta_port, &beta_args)?;

        let both = |s: &Value| {
            node_is(s, "alpha", "up", "alpha-sim") && node_is(s, "beta", "up", "beta-sim")
        };
        let seen = wait_status(w, &http.base, &token, "both nodes up", both)?;
        ensure!(
            seen["enabled"] == true && seen["node"] == "alpha" && seen["connected"] == true,
            "alpha's own view: {seen:#}"
        );
        ensure!(
            node(&seen, "alpha").is_some_and(|n| n["this_node"] == true)
                && node(&seen, "beta").is_some_and(|n| n["this_node"] == false),
            "this_node flags: {seen:#}"
        );

        // The table, and the API itself.
        let table = w.mo_ok(
            &[
                "--server", &http.base, "--token", &token, "cluster", "status",
            ],
            None,
        )?;
        for needle in [
            "node alpha, connected to NATS",
            "alpha (this)",
            "beta",
            "beta-sim",
        ] {
            ensure!(
                table.stdout.contains(needle),
                "`mo cluster status` lacks {needle:?}:\n{}",
                table.stdout
            );
        }
        let body: Value = reqwest::blocking::Client::new()
            .get(http.url("/api/v1/cluster"))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(30))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| Error::Check(format!("GET /api/v1/cluster: {e}")))?;
        ensure!(both(&body), "GET /api/v1/cluster: {body:#}");

        // Killed: alpha stops hearing beta.
        beta.kill9()?;
        wait_status(w, &http.base, &token, "beta lost, alpha up", |s| {
            node(s, "beta").is_some_and(|n| n["state"] == "lost")
                && node_is(s, "alpha", "up", "alpha-sim")
        })?;

        // Back on the same data directory: up again.
        let mut beta = Daemon::start(&beta_dir, beta_port, &beta_args)?;
        wait_status(w, &http.base, &token, "beta up again", both)?;

        // A clean stop says goodbye.
        beta.stop()?;
        wait_status(w, &http.base, &token, "beta left", |s| {
            node(s, "beta").is_some_and(|n| n["state"] == "left")
        })?;
        drop(nats);
        Ok(())
    });
}

#[test]
fn a_daemon_without_cluster_says_so_and_bad_cluster_flags_are_refused() {
    run_test("cluster-off", |w| {
        w.add_user("root1", "root-pw")?;
        let token = add_token(w, "root1", "all")?;
        let http = start_daemon_with_http(w, &[])?;
        let seen = status(w, &http.base, &token)?;
        ensure!(
            seen["enabled"] == false && seen["nodes"].as_array().is_some_and(Vec::is_empty),
            "a daemon without --cluster: {seen:#}"
        );
        let out = w.mo(
            &[
                "--server", &http.base, "--token", &token, "cluster", "status",
            ],
            None,
        )?;
        ensure!(
            !out.success() && out.stderr.contains("is not in a cluster"),
            "`mo cluster status` against a lone daemon:\n{}",
            out.combined()
        );

        let mod_bin = bin_path("mod")?;
        let dir = w.dir().join("bad");
        let refused = |args: &[&str], needle: &str| -> Result<()> {
            let mut cmd = Command::new(&mod_bin);
            cmd.arg("--data-dir")
                .arg(&dir)
                .args(["--ssh", "127.0.0.1:0"])
                .args(args);
            let out = run_with_timeout(cmd, None, Duration::from_secs(60))?;
            ensure!(
                !out.success() && out.stderr.contains(needle),
                "mod {args:?} should fail naming {needle:?}:\n{}",
                out.combined()
            );
            Ok(())
        };
        refused(
            &["--cluster", "http://127.0.0.1:4222", "--node", "a"],
            "bad --cluster URL `http://127.0.0.1:4222`",
        )?;
        refused(
            &["--cluster", "nats://127.0.0.1:4222", "--node", "a.b"],
            "bad --node `a.b`",
        )?;
        refused(&["--cluster", "nats://127.0.0.1:4222"], "--node")?;
        refused(&["--node", "a"], "--cluster")?;
        Ok(())
    });
}
