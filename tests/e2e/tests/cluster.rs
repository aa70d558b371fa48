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
    Cli, Daemon, Error, Login, Nats, Result, Signal, SshClient, WAIT, World, bin_path, ensure,
    free_port, run_test, run_with_timeout,
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

/// An admin user with an API token in data directory `dir`: the token.
fn admin_token(dir: &std::path::Path) -> Result<String> {
    Cli::run_ok(
        dir,
        &["user", "add", "root1", "--password-stdin"],
        Some("root-pw\n"),
    )?;
    Cli::run_ok(dir, &["grant", "add", "root1", "admin", "all"], None)?;
    token_for(dir, "root1")
}

/// Start node `name` of the site at NATS `url` on data directory `dir`, sharing devices
/// (heartbeat 500 ms, lease TTL 5 s), with `extra` options: the daemon and its HTTP base URL.
fn sharing_node(
    dir: &std::path::Path,
    url: &str,
    name: &str,
    extra: &[&str],
) -> Result<(Daemon, String)> {
    sharing_node_ttl(dir, url, name, "5s", extra)
}

/// [`sharing_node`] with `--lease-ttl ttl`.
fn sharing_node_ttl(
    dir: &std::path::Path,
    url: &str,
    name: &str,
    ttl: &str,
    extra: &[&str],
) -> Result<(Daemon, String)> {
    let http = format!("127.0.0.1:{}", free_port()?);
    let mut args = sharing_args_ttl(url, name, ttl);
    args.extend(["--http".to_string(), http.clone()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start(dir, free_port()?, &args)?;
    Ok((daemon, format!("http://{http}")))
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
    mo_testsupport::wait_until(what, DEADLINE, || {
        let seen = status(w, base, token)?;
        Ok(if ok(&seen) {
            Ok(seen)
        } else {
            Err(format!("{seen:#}"))
        })
    })
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
        let mut beta_args = vec!["--cluster", url.as_str(), "--node", "beta"];
        beta_args.extend(beat);
        let mut beta = Daemon::start(&beta_dir, free_port()?, &beta_args)?;

        let both = |s: &Value| {
            node_is(s, "alpha", "up", "alpha-sim") && node_is(s, "beta", "up", "beta-sim")
        };
        let seen = wait_status(w, &http.base, &token, "both nodes up", |s| {
            both(s) && s["connected"] == true
        })?;
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
        // Polled too: on a loaded machine a heartbeat may come late for a moment.
        let api = reqwest::blocking::Client::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let body: Value = api
                .get(http.url("/api/v1/cluster"))
                .bearer_auth(&token)
                .timeout(Duration::from_secs(30))
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.json())
                .map_err(|e| Error::Check(format!("GET /api/v1/cluster: {e}")))?;
            if both(&body) {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "GET /api/v1/cluster: not both up within {DEADLINE:?}: {body:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        // Killed: alpha stops hearing beta.
        beta.kill9()?;
        wait_status(w, &http.base, &token, "beta lost, alpha up", |s| {
            node(s, "beta").is_some_and(|n| n["state"] == "lost")
                && node_is(s, "alpha", "up", "alpha-sim")
        })?;

        // Back on the same data directory: up again.
        // (on a fresh port: the old one may have been taken meanwhile)
        let mut beta = Daemon::start(&beta_dir, free_port()?, &beta_args)?;
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

/// The device names in `mo device list --json` on `dir`.
fn devices_on(dir: &std::path::Path) -> Result<Vec<String>> {
    let out = Cli::run_ok(dir, &["device", "list", "--json"], None)?;
    let list: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| Error::Check(format!("device list --json: {e}:\n{}", out.stdout)))?;
    Ok(list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// `mo device show NAME --json` on `dir`, if the device is there.
fn device_on(dir: &std::path::Path, name: &str) -> Result<Option<Value>> {
    if !devices_on(dir)?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let out = Cli::run_ok(dir, &["device", "show", name, "--json"], None)?;
    serde_json::from_str(&out.stdout)
        .map(Some)
        .map_err(|e| Error::Check(format!("device show --json: {e}:\n{}", out.stdout)))
}

/// Poll `check` until it holds.
fn wait_until(what: &str, check: impl Fn() -> Result<bool>) -> Result<()> {
    mo_testsupport::wait_until(what, DEADLINE, || {
        Ok(if check()? {
            Ok(())
        } else {
            Err("not yet".to_owned())
        })
    })
}

#[test]
fn with_share_devices_a_device_added_changed_or_removed_on_one_node_follows_on_the_other() {
    run_test("cluster-devices", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        w.mo_ok(
            &["device", "add", "alpha-sim", "sim://alpha-sim?boot=fast"],
            None,
        )?;
        let common = ["--heartbeat", "500ms", "--share-devices"];
        let mut alpha_args = vec!["--cluster", url.as_str(), "--node", "alpha"];
        alpha_args.extend(common);
        w.start_daemon(&alpha_args)?;
        let beta_dir = w.dir().join("beta");
        Cli::run_ok(
            &beta_dir,
            &["device", "add", "beta-sim", "sim://beta-sim?boot=fast"],
            None,
        )?;
        let mut beta_args = vec!["--cluster", url.as_str(), "--node", "beta"];
        beta_args.extend(common);
        let _beta = Daemon::start(&beta_dir, free_port()?, &beta_args)?;
        let alpha_dir = w.data_dir().to_path_buf();

        // Each node's own device reaches the other.
        wait_until("alpha-sim on beta and beta-sim on alpha", || {
            Ok(devices_on(&beta_dir)?.contains(&"alpha-sim".to_string())
                && devices_on(&alpha_dir)?.contains(&"beta-sim".to_string()))
        })?;

        // Added on beta (with `mo` on its data directory): on alpha.
        Cli::run_ok(
            &beta_dir,
            &[
                "device",
                "add",
                "late.sim",
                "sim://late?boot=fast",
                "--description",
                "one",
            ],
            None,
        )?;
        wait_until("late.sim on alpha", || {
            Ok(device_on(&alpha_dir, "late.sim")?
                .is_some_and(|d| d.to_string().contains("\"one\"")))
        })?;

        // Changed on alpha: on beta.
        w.mo_ok(&["device", "set", "late.sim", "--description", "two"], None)?;
        wait_until("late.sim changed on beta", || {
            Ok(
                device_on(&beta_dir, "late.sim")?
                    .is_some_and(|d| d.to_string().contains("\"two\"")),
            )
        })?;

        // Removed on alpha: gone from beta, and nothing else went with it.
        w.mo_ok(&["device", "rm", "late.sim"], None)?;
        wait_until("late.sim gone from beta", || {
            Ok(!devices_on(&beta_dir)?.contains(&"late.sim".to_string()))
        })?;
        let left = devices_on(&beta_dir)?;
        ensure!(
            left == ["alpha-sim", "beta-sim"],
            "beta's devices after the removal: {left:?}"
        );
        drop(nats);
        Ok(())
    });
}

/// The actions of role `name` in `mo role list --json` on `dir` (`list,spy`), if defined.
fn role_on(dir: &std::path::Path, name: &str) -> Result<Option<String>> {
    let out = Cli::run_ok(dir, &["role", "list", "--json"], None)?;
    let roles: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| Error::Check(format!("role list --json: {e}:\n{}", out.stdout)))?;
    Ok(roles.as_array().and_then(|rs| {
        rs.iter().find(|r| r["name"] == name).map(|r| {
            r["actions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        })
    }))
}

/// Whether `mo grant list` on `dir` has a grant for `user`.
fn granted_on(dir: &std::path::Path, user: &str) -> Result<bool> {
    let out = Cli::run_ok(dir, &["grant", "list"], None)?;
    Ok(out
        .stdout
        .lines()
        .any(|l| l.split_whitespace().next() == Some(user)))
}

#[test]
fn with_share_directory_users_grants_and_conflicts_travel_between_nodes() {
    run_test("cluster-directory", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        // alpha (the world's daemon) runs the console, pinned to it.
        w.add_echo_device("ex1", &["--node", "alpha"])?;
        let common = ["--heartbeat", "500ms", "--share-directory"];
        let mut alpha_args = vec!["--cluster", url.as_str(), "--node", "alpha"];
        alpha_args.extend(common);
        w.start_daemon(&alpha_args)?;
        let alpha_dir = w.data_dir().to_path_buf();
        // A sealed secret: beta gets alpha's secret key before it starts, gamma makes its own.
        w.mo_ok(
            &["secret", "set", "ex1", "password", "--stdin"],
            Some("s3cret\n"),
        )?;
        // beta reaches NATS through a relay that can hold back what NATS sends it, and
        // serves the API.
        let relay = mo_testsupport::HoldProxy::start(nats.port())?;
        let relay_url = format!("nats://127.0.0.1:{}", relay.port());
        let beta_http = free_port()?;
        let beta_http_arg = format!("127.0.0.1:{beta_http}");
        let mut others = Vec::new();
        for name in ["beta", "gamma"] {
            let dir = w.dir().join(name);
            let mut args = vec!["--node", name];
            if name == "beta" {
                std::fs::create_dir_all(&dir)
                    .and_then(|()| {
                        std::fs::copy(alpha_dir.join("secret.key"), dir.join("secret.key"))
                    })
                    .map_err(|e| Error::io("copy alpha's secret.key to beta", e))?;
                args.extend(["--cluster", relay_url.as_str(), "--http", &beta_http_arg]);
            } else {
                args.extend(["--cluster", url.as_str()]);
            }
            let port = free_port()?;
            args.extend(common);
            others.push((dir.clone(), port, Daemon::start(&dir, port, &args)?));
        }
        let (beta_dir, gamma_dir) = (others[0].0.clone(), others[1].0.clone());
        let gamma_port = others[1].1;
        wait_until("ex1 on beta and gamma", || {
            Ok(devices_on(&beta_dir)?.contains(&"ex1".to_string())
                && devices_on(&gamma_dir)?.contains(&"ex1".to_string()))
        })?;

        // The sealed secret opens on beta (same key), so beta takes it; gamma (another key)
        // refuses it and says why.
        let secrets_on = |dir: &std::path::Path| -> Result<String> {
            Ok(Cli::run_ok(dir, &["secret", "list", "ex1"], None)?.stdout)
        };
        wait_until("ex1's password on beta", || {
            Ok(secrets_on(&beta_dir)?.contains("password"))
        })?;
        others[1]
            .2
            .wait_log("every node of a site needs the same secret key file", WAIT)?;
        ensure!(
            !secrets_on(&gamma_dir)?.contains("password"),
            "gamma took a secret sealed with another key"
        );

        // A user (with an SSH key and a grant) added on alpha is on gamma within 2 s, and logs
        // in there with the stock OpenSSH client.
        let (alice, key) = w.add_user_with_key("alice", "alice-pw")?;
        let added = Instant::now();
        wait_until("alice's grant on gamma", || granted_on(&gamma_dir, "alice"))?;
        let took = added.elapsed();
        eprintln!("alice and her grant reached gamma {took:?} after they were added on alpha");
        ensure!(
            took <= Duration::from_secs(2),
            "alice reached gamma only after {took:?}"
        );
        let on_gamma = SshClient::with_key(gamma_port, "alice", &key);
        let out = on_gamma.run(Login::Shell, &["help"], None)?;
        ensure!(
            out.success(),
            "alice's key login on gamma failed:\n{}",
            out.combined()
        );
        // gamma's daemon lists ex1 to her once its own store poll has taken the device in.
        mo_testsupport::wait_until("ex1 listed to alice on gamma", DEADLINE, || {
            let out = on_gamma.run(Login::Shell, &["list"], None)?;
            Ok(if out.success() && out.stdout.contains("ex1") {
                Ok(())
            } else {
                Err(out.combined())
            })
        })?;

        // Her grant revoked on beta ends her session on alpha.
        let pane = w.terminal("alice", &alice, Login::Attach("ex1"), &[])?;
        pane.wait_for("attached read-write", WAIT)?;
        wait_until("alice's grant on beta", || granted_on(&beta_dir, "alice"))?;
        Cli::run_ok(&beta_dir, &["grant", "rm", "alice", "admin", "all"], None)?;
        pane.wait_for(
            "disconnected: alice may no longer view ex1",
            Duration::from_secs(10),
        )?;

        // beta and gamma redefine one role at once (both paused, edited, resumed): one wins,
        // the other reports the conflict, and every node ends with the winner's version.
        w.mo_ok(&["role", "add", "ops", "--allow", "list"], None)?;
        wait_until("ops on beta and gamma", || {
            Ok(role_on(&beta_dir, "ops")?.as_deref() == Some("list")
                && role_on(&gamma_dir, "ops")?.as_deref() == Some("list"))
        })?;
        for (_, _, daemon) in &mut others {
            daemon.signal(Signal::SIGSTOP)?;
        }
        Cli::run_ok(
            &beta_dir,
            &["role", "add", "ops", "--allow", "list,spy"],
            None,
        )?;
        Cli::run_ok(
            &gamma_dir,
            &["role", "add", "ops", "--allow", "list,attach"],
            None,
        )?;
        // And both make a user group of one name, each with other members: a conflict too.
        Cli::run_ok(&beta_dir, &["usergroup", "add", "night"], None)?;
        Cli::run_ok(
            &gamma_dir,
            &["usergroup", "add", "night", "--member", "alice"],
            None,
        )?;
        for (_, _, daemon) in &mut others {
            daemon.signal(Signal::SIGCONT)?;
        }
        let night = |dir: &std::path::Path| -> Result<Option<bool>> {
            let out = Cli::run_ok(dir, &["usergroup", "list"], None)?;
            Ok(out
                .stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some("night"))
                .map(|l| l.contains("alice")))
        };
        wait_until("one user group `night` everywhere", || {
            let (a, b, g) = (night(&alpha_dir)?, night(&beta_dir)?, night(&gamma_dir)?);
            let reported = others
                .iter()
                .filter(|(_, _, d)| d.log_text().contains("conflict on user-group `night`"))
                .count();
            Ok(a.is_some() && a == b && b == g && reported == 1)
        })?;
        let needle = "conflict on role `ops`";
        wait_until("one conflict, then one version everywhere", || {
            let (b, g, a) = (
                role_on(&beta_dir, "ops")?,
                role_on(&gamma_dir, "ops")?,
                role_on(&alpha_dir, "ops")?,
            );
            let reported = others
                .iter()
                .filter(|(_, _, d)| d.log_text().contains(needle))
                .count();
            Ok(reported >= 1 && b == g && g == a && b.as_deref() != Some("list"))
        })?;
        let losers: Vec<&std::path::Path> = others
            .iter()
            .filter(|(_, _, d)| d.log_text().contains(needle))
            .map(|(dir, _, _)| dir.as_path())
            .collect();
        ensure!(losers.len() == 1, "conflict reported by {losers:?}");
        let winner = role_on(&alpha_dir, "ops")?;
        let loser_wanted = if losers[0] == beta_dir {
            "list,spy"
        } else {
            "list,attach"
        };
        ensure!(
            winner.as_deref() != Some(loser_wanted),
            "the loser's version {loser_wanted} won"
        );
        let audit = Cli::run_ok(losers[0], &["audit", "--action", "cluster.conflict"], None)?;
        ensure!(
            audit.stdout.contains("ops"),
            "no cluster.conflict audit entry on the loser:\n{}",
            audit.stdout
        );

        // Through beta's API a directory write is on the site before it is answered. One that
        // lost a race is answered 409: alpha redefines `audit` while beta cannot hear it yet
        // (the relay holds what NATS sends beta), beta's API redefines it from the old
        // version; the site refuses beta's write, the caller is told, beta takes alpha's.
        w.mo_ok(&["role", "add", "audit", "--allow", "list"], None)?;
        wait_until("audit on beta", || {
            Ok(role_on(&beta_dir, "audit")?.as_deref() == Some("list"))
        })?;
        let token = admin_token(&beta_dir)?;
        let set_audit = move |actions: &'static [&'static str]| {
            let token = token.clone();
            std::thread::spawn(move || {
                let r = reqwest::blocking::Client::new()
                    .put(format!("http://127.0.0.1:{beta_http}/api/v1/roles/audit"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "actions": actions }))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .map_err(|e| Error::Check(format!("PUT /api/v1/roles/audit on beta: {e}")))?;
                let status = r.status().as_u16();
                Ok::<_, Error>((status, r.text().unwrap_or_default()))
            })
        };
        let answer = |put: std::thread::JoinHandle<Result<(u16, String)>>| {
            put.join()
                .map_err(|_| Error::Check("the PUT thread panicked".into()))?
        };
        relay.hold();
        w.mo_ok(&["role", "add", "audit", "--allow", "list,spy"], None)?;
        wait_until("alpha's audit on the site (gamma has it)", || {
            Ok(role_on(&gamma_dir, "audit")?.as_deref() == Some("list,spy"))
        })?;
        let raced = Instant::now();
        let put = set_audit(&["list", "attach"]);
        std::thread::sleep(Duration::from_millis(700));
        relay.release();
        let (status, body) = answer(put)?;
        eprintln!(
            "beta's API answered the lost race {status} after {:?}",
            raced.elapsed()
        );
        ensure!(
            status == 409 && body.contains("\"conflict\"") && body.contains("role `audit`"),
            "PUT /api/v1/roles/audit on beta after alpha's change: {status} {body}"
        );
        wait_until("beta holds the site's audit", || {
            Ok(role_on(&beta_dir, "audit")?.as_deref() == Some("list,spy"))
        })?;
        // Without a race: 200, and every node gets it.
        let (status, body) = answer(set_audit(&["list", "attach"]))?;
        ensure!(
            status == 200,
            "PUT /api/v1/roles/audit on beta: {status} {body}"
        );
        wait_until("beta's audit on alpha", || {
            Ok(role_on(&alpha_dir, "audit")?.as_deref() == Some("list,attach"))
        })?;

        // alice, in a group with a token, removed on gamma: gone everywhere, with her group
        // membership and token; every node made those follow-on changes itself, and agreeing
        // on them is no conflict.
        w.mo_ok(&["usergroup", "add", "ops-team", "--member", "alice"], None)?;
        w.mo_ok(&["token", "add", "alice"], None)?;
        let listed = |dir: &std::path::Path, what: &str| -> Result<bool> {
            Ok(Cli::run_ok(dir, &[what, "list"], None)?
                .stdout
                .contains("alice"))
        };
        wait_until("alice's group and token on gamma", || {
            Ok(listed(&gamma_dir, "usergroup")? && listed(&gamma_dir, "token")?)
        })?;
        Cli::run_ok(&gamma_dir, &["user", "rm", "alice"], None)?;
        wait_until(
            "alice, her membership and her token gone from alpha and beta",
            || {
                let mut gone = true;
                for dir in [&alpha_dir, &beta_dir] {
                    for what in ["user", "usergroup", "token"] {
                        gone &= !listed(dir, what)?;
                    }
                }
                Ok(gone)
            },
        )?;
        std::thread::sleep(Duration::from_secs(1));
        let logs = [
            w.daemon()?.log_text(),
            others[0].2.log_text(),
            others[1].2.log_text(),
        ];
        let conflicts = logs
            .iter()
            .map(|l| l.matches("conflict on").count())
            .sum::<usize>();
        ensure!(conflicts == 3, "{conflicts} conflicts logged, 3 expected");
        drop(nats);
        Ok(())
    });
}

/// A TCP console endpoint that counts its connections: how many are open now, the most ever
/// open at once, and how many were accepted.
struct CountingConsole {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingConsole {
    /// A console that greets, then reads until its connection closes.
    fn start() -> Result<CountingConsole> {
        Self::serving(|mut stream, _| {
            use std::io::Write as _;
            let _ = stream.write_all(b"counted console\r\n");
        })
    }

    /// A console that runs `serve` on each connection (in a thread of its own, with a flag that
    /// is set once the other side closed it), counting the connections: one is open from its
    /// accept until the other side closes it (a read seeing its end, at once).
    fn serving(
        serve: impl Fn(std::net::TcpStream, &std::sync::atomic::AtomicBool) + Send + Sync + 'static,
    ) -> Result<CountingConsole> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let io = |source| Error::Io {
            what: "listen on 127.0.0.1 for the counted console".into(),
            source,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
        let port = listener.local_addr().map_err(io)?.port();
        let (open, most, accepted) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (o, m, a) = (open.clone(), most.clone(), accepted.clone());
        let serve = Arc::new(serve);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let closed = Arc::new(AtomicBool::new(false));
                if let Ok(writer) = stream.try_clone() {
                    let (serve, closed) = (serve.clone(), closed.clone());
                    std::thread::spawn(move || serve(writer, &closed));
                }
                let o = o.clone();
                std::thread::spawn(move || {
                    use std::io::Read as _;
                    let mut buf = [0u8; 256];
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    o.fetch_sub(1, Ordering::SeqCst);
                    closed.store(true, Ordering::SeqCst);
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Ok(CountingConsole {
            port,
            open,
            most,
            accepted,
        })
    }

    fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// `Ok` when there was never more than one connection at once.
    fn never_shared(&self) -> Result<()> {
        ensure!(
            self.most() == 1,
            "the counted console saw {} connections at once",
            self.most()
        );
        Ok(())
    }
    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The node whose heartbeat lists `console` as running, in a status.
fn holder(status: &Value, console: &str) -> Vec<String> {
    status["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter(|n| n["state"] == "up")
                .filter(|n| {
                    n["consoles"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["name"] == console))
                })
                .filter_map(|n| n["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /api/v1/devices/{name}` on `base`.
fn device_api(base: &str, token: &str, name: &str) -> Result<Value> {
    reqwest::blocking::Client::new()
        .get(format!("{base}/api/v1/devices/{name}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| Error::Check(format!("GET /api/v1/devices/{name} on {base}: {e}")))
}

/// Three nodes sharing devices: every console runs on exactly one of them (a pinned one on its
/// node), the device side never sees two connections at once, and when the owner of a console
/// is killed with SIGKILL another node connects to it; a pinned console of a dead node shows
/// `down: node NAME unreachable` on the others.
#[test]
fn each_console_has_one_owner_and_moves_when_its_owner_dies() {
    run_test("cluster-owners", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        let counted = CountingConsole::start()?;
        let tcp_url = format!("tcp://127.0.0.1:{}", counted.port);
        w.mo_ok(&["device", "add", "counted", &tcp_url], None)?;
        for i in 0..6 {
            let name = format!("sim{i}");
            w.mo_ok(
                &["device", "add", &name, &format!("sim://{name}?boot=fast")],
                None,
            )?;
        }
        w.mo_ok(
            &[
                "device",
                "add",
                "pinned",
                "sim://pinned?boot=fast",
                "--node",
                "gamma",
            ],
            None,
        )?;
        let shown = w.mo_ok(&["device", "show", "pinned"], None)?.stdout;
        ensure!(shown.contains("gamma (pinned)"), "device show: {shown}");
        let refused = w.mo(&["device", "set", "pinned", "--node", "a.b"], None)?;
        ensure!(
            !refused.success() && refused.stderr.contains("`a.b` is not a node name"),
            "a bad --node: {}",
            refused.combined()
        );

        let names = ["alpha", "beta", "gamma"];
        let mut nodes: Vec<(String, std::path::PathBuf, Daemon, String, String)> = Vec::new();
        for name in names {
            let dir = w.dir().join(name);
            let token = admin_token(&dir)?;
            if name == "alpha" {
                // alpha brings the devices: a copy of the test's store.
                for d in [
                    "counted", "sim0", "sim1", "sim2", "sim3", "sim4", "sim5", "pinned",
                ] {
                    let json = w.mo_ok(&["device", "show", d, "--json"], None)?.stdout;
                    let v: Value = serde_json::from_str(&json).unwrap();
                    let url = v["url"].as_str().unwrap_or_default().to_string();
                    let mut args = vec!["device", "add", d, url.as_str()];
                    if d == "pinned" {
                        args.extend(["--node", "gamma"]);
                    }
                    Cli::run_ok(&dir, &args, None)?;
                }
            }
            let (daemon, base) = sharing_node(&dir, &url, name, &[])?;
            nodes.push((name.to_string(), dir, daemon, base, token));
        }
        let all = [
            "counted", "sim0", "sim1", "sim2", "sim3", "sim4", "sim5", "pinned",
        ];

        // Every console on exactly one node; the pinned one on gamma.
        let (base, token) = (nodes[0].3.clone(), nodes[0].4.clone());
        let seen = wait_status(w, &base, &token, "every console on one node", |s| {
            all.iter().all(|c| holder(s, c).len() == 1) && holder(s, "pinned") == ["gamma"]
        })?;
        wait_until("the counted console connected", || Ok(counted.open() == 1))?;
        let owner = holder(&seen, "counted").remove(0);
        let at_first = counted.accepted();

        // On the other nodes the device says who holds it.
        let other = nodes.iter().find(|n| n.0 != owner).unwrap();
        let d = device_api(&other.3, &other.4, "counted")?;
        ensure!(
            d["error"] == format!("held by node {owner}"),
            "counted on {}: {d:#}",
            other.0
        );

        // The owner dies: another node connects within the lease TTL (and a heartbeat or two).
        let killed_at = Instant::now();
        let idx = nodes.iter().position(|n| n.0 == owner).unwrap();
        nodes[idx].2.kill9()?;
        wait_until("another node connected to the counted console", || {
            Ok(counted.accepted() > at_first && counted.open() == 1)
        })?;
        eprintln!(
            "failover of `counted` from {owner}: a new connection after {:?}",
            killed_at.elapsed()
        );
        let (alive_base, alive_token) = {
            let n = nodes.iter().find(|n| n.0 != owner).unwrap();
            (n.3.clone(), n.4.clone())
        };
        wait_status(
            w,
            &alive_base,
            &alive_token,
            "the counted console moved",
            |s| {
                let h = holder(s, "counted");
                h.len() == 1 && h[0] != owner
            },
        )?;
        // The others move too (each new owner first catches up on the console's record log,
        // and its next heartbeat tells).
        wait_status(
            w,
            &alive_base,
            &alive_token,
            "after the failover every console that can run runs once",
            |s| {
                all.iter()
                    .filter(|c| **c != "pinned" || owner != "gamma")
                    .all(|c| holder(s, c).len() == 1)
            },
        )?;

        // gamma dead (now, if it was not the owner): its pinned console is down everywhere.
        if owner != "gamma" {
            let g = nodes.iter().position(|n| n.0 == "gamma").unwrap();
            nodes[g].2.kill9()?;
        }
        let survivor = nodes
            .iter()
            .find(|n| n.0 != owner && n.0 != "gamma")
            .unwrap();
        mo_testsupport::wait_until("pinned shows its node unreachable", DEADLINE, || {
            let d = device_api(&survivor.3, &survivor.4, "pinned")?;
            Ok(if d["error"] == "down: node gamma unreachable" {
                Ok(())
            } else {
                Err(format!("{d:#}"))
            })
        })?;
        drop(nats);
        counted.never_shared()
    });
}

/// Fencing: a node that cannot renew its lease (NATS gone) stops the consoles it holds before
/// the lease could run out; when NATS is back it takes them again — one connection at a time.
/// A lease renewal NATS stored but whose answer was lost: the next renewal meets a wrong
/// revision, finds the lease still carrying this node's epoch and renews on it. The node does
/// not fence itself: its console keeps its one connection.
#[test]
fn a_lease_renewal_whose_answer_is_lost_does_not_stop_the_consoles() {
    run_test("cluster-lease-ack", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let relay = mo_testsupport::HoldProxy::start(nats.port())?;
        let url = format!("nats://127.0.0.1:{}", relay.port());
        let counted = CountingConsole::start()?;
        let dir = w.dir().join("alpha");
        let tcp_url = format!("tcp://127.0.0.1:{}", counted.port);
        Cli::run_ok(&dir, &["device", "add", "counted", &tcp_url], None)?;
        let (alpha, _) = sharing_node(&dir, &url, "alpha", &[])?;
        wait_until("alpha connects to its console", || Ok(counted.open() == 1))?;
        // The next answer to a write of the leases bucket (a renewal: --lease-ttl 5s renews
        // every second and gives up on an answer after a second) is kept back.
        relay.hold_one("\"stream\":\"KV_mo_leases\"");
        wait_until("a lease renewal's answer held back", || Ok(relay.caught()))?;
        alpha.wait_log("renewed on it", DEADLINE)?;
        relay.release();
        // Two more renewals, then: still the one connection, never fenced.
        std::thread::sleep(Duration::from_secs(2));
        let log = alpha.log_text();
        ensure!(
            !log.contains("stopping the") && !log.contains("lease was not renewed in time"),
            "alpha fenced itself after a lost renewal answer:\n{log}"
        );
        ensure!(
            counted.accepted() == 1 && counted.open() == 1,
            "the console was reconnected ({} connections accepted, {} open):\n{log}",
            counted.accepted(),
            counted.open()
        );
        Ok(())
    });
}

#[test]
fn a_node_cut_off_from_nats_stops_its_consoles_and_takes_them_again() {
    run_test("cluster-fence", |w| {
        let nats_dir = w.dir().join("nats");
        let nats = Nats::start(&nats_dir)?;
        let (url, port) = (nats.url(), nats.port());
        let counted = CountingConsole::start()?;
        let tcp_url = format!("tcp://127.0.0.1:{}", counted.port);
        w.mo_ok(&["device", "add", "counted", &tcp_url], None)?;
        w.start_daemon(&[
            "--cluster",
            url.as_str(),
            "--node",
            "alpha",
            "--share-devices",
            "--heartbeat",
            "500ms",
            "--lease-ttl",
            "5s",
        ])?;
        wait_until("the node holds the counted console", || {
            Ok(counted.open() == 1)
        })?;

        drop(nats);
        let cut = Instant::now();
        wait_until("the console stopped (fenced)", || Ok(counted.open() == 0))?;
        eprintln!("fenced {:?} after NATS went away", cut.elapsed());

        let before = counted.accepted();
        let nats = Nats::start_on(&nats_dir, port)?;
        wait_until("the console held again", || {
            Ok(counted.accepted() > before && counted.open() == 1)
        })?;
        drop(nats);
        counted.never_shared()
    });
}

/// `mod` options of node `name` sharing devices on the site at `url` (fast beats, short leases).
fn sharing_args(url: &str, name: &str) -> Vec<String> {
    sharing_args_ttl(url, name, "5s")
}

/// [`sharing_args`] with `--lease-ttl ttl`.
fn sharing_args_ttl(url: &str, name: &str, ttl: &str) -> Vec<String> {
    [
        "--cluster",
        url,
        "--node",
        name,
        "--share-devices",
        "--heartbeat",
        "500ms",
        "--lease-ttl",
        ttl,
    ]
    .map(str::to_string)
    .to_vec()
}

/// `mo token add USER --scope all` on the data directory `dir`: the token.
fn token_for(dir: &std::path::Path, user: &str) -> Result<String> {
    let out = Cli::run_ok(dir, &["token", "add", user, "--scope", "all"], None)?;
    let token = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    ensure!(
        token.starts_with("mo_"),
        "token add {user} on {}: {}",
        dir.display(),
        out.stdout
    );
    Ok(token)
}

/// A WebSocket spy (`GET /api/v1/devices/NAME/attach?mode=spy`) gathering every frame as text.
struct WsSpy {
    _rt: tokio::runtime::Runtime,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl WsSpy {
    fn attach(http_port: u16, device: &str, token: &str) -> Result<WsSpy> {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::Check(format!("runtime: {e}")))?;
        let url =
            format!("ws://127.0.0.1:{http_port}/api/v1/devices/{device}/attach?mode=spy&replay=0");
        let mut req = url
            .into_client_request()
            .map_err(|e| Error::Check(format!("ws request: {e}")))?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|e| Error::Check(format!("header: {e}")))?;
        req.headers_mut().insert("authorization", bearer);
        let (mut ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(req))
            .map_err(|e| Error::Check(format!("WebSocket attach to {device}: {e}")))?;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        rt.spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let text = match msg {
                    Message::Text(t) => t.as_str().to_string(),
                    Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                    _ => continue,
                };
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&text);
                }
            }
        });
        Ok(WsSpy { _rt: rt, seen })
    }

    fn text(&self) -> String {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether `needle` arrives within [`DEADLINE`].
    fn wait_for(&self, needle: &str) -> Result<bool> {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if self.text().contains(needle) {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }
}

/// Write `text` to the stdin of an ssh client.
fn type_into(peer: &mut mo_testsupport::Peer, text: &str) -> Result<()> {
    use std::io::Write as _;
    let name = peer.name().to_string();
    let stdin = peer
        .stdin()
        .ok_or_else(|| Error::Check(format!("{name} has no stdin")))?;
    stdin
        .write_all(text.as_bytes())
        .and_then(|()| stdin.flush())
        .map_err(|e| Error::io(format!("write to {name}"), e))
}

/// Keystroke round trips of `peer` (its output in `seen`): `n` lines typed one at a time, each
/// timed until the device's echo of it comes back. Returns (p50, p99).
fn round_trips(
    peer: &mut mo_testsupport::Peer,
    seen: &mo_testsupport::Collector,
    tag: &str,
    n: usize,
) -> Result<(Duration, Duration)> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let at = seen.len();
        let t0 = Instant::now();
        type_into(peer, &format!("{tag}-{i}\n"))?;
        seen.wait_for_from(tag, at, &format!("got: {tag}-{i}"), DEADLINE)?;
        times.push(t0.elapsed());
    }
    times.sort();
    Ok((times[n / 2], times[(n * 99 / 100).min(n - 1)]))
}

/// Any door, any console (issue 14 item 4): a console pinned to alpha; alice attaches through
/// beta's SSH door with the stock OpenSSH client and types, bob spies through gamma. Both see
/// the device's output; `who` on any node lists both with the node each came through; alice's
/// line is in alpha's log as her input. Also times the keystroke round trip through beta
/// against the same through alpha (printed; docs/cluster.md has the figures). When alpha is
/// killed, bob is told and reattached where the console runs next. A WebSocket spy through beta sees alice's output.
#[test]
fn a_console_held_by_one_node_is_attached_and_spied_through_the_others() {
    run_test("cluster-remote-attach", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        let script = w.write_script("console-echo.sh", mo_testsupport::ECHO_CONSOLE)?;
        let device_url = format!("exec://{}", script.display());
        let names = ["alpha", "beta", "gamma"];
        // ex1's raw console port: every node serves it, each on a loopback address of its own
        // (--listen-address); beta also has the conserver door.
        let raw_port = free_port()?;
        let raw_spy_port = free_port()?;
        let conserver_port = free_port()?;
        let mut nodes = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let dir = w.dir().join(name);
            if name == "alpha" {
                // The users travel to beta and gamma through the shared directory.
                for (user, pw) in [("alice", "alice-pw\n"), ("bob", "bob-pw\n")] {
                    Cli::run_ok(&dir, &["user", "add", user, "--password-stdin"], Some(pw))?;
                    Cli::run_ok(&dir, &["grant", "add", user, "admin", "all"], None)?;
                }
                let listen = format!("127.0.0.1:{raw_port}/raw");
                let spy_listen = format!("127.0.0.1:{raw_spy_port}/raw,spy");
                Cli::run_ok(
                    &dir,
                    &[
                        "device",
                        "add",
                        "ex1",
                        &device_url,
                        "--node",
                        "alpha",
                        "--listen",
                        &listen,
                        "--listen",
                        &spy_listen,
                    ],
                    None,
                )?;
            }
            let ssh_port = free_port()?;
            let http_port = free_port()?;
            let mut args = sharing_args(&url, name);
            args.extend(["--http".to_string(), format!("127.0.0.1:{http_port}")]);
            args.extend(["--listen-address".to_string(), format!("127.0.0.{}", i + 1)]);
            if name == "beta" {
                args.extend([
                    "--conserver".to_string(),
                    format!("127.0.0.1:{conserver_port}"),
                ]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let daemon = Daemon::start(&dir, ssh_port, &args)?;
            nodes.push((dir, daemon, ssh_port, http_port));
        }
        let wdir = w.dir().to_path_buf();
        let client = |node: usize, user: &str| {
            mo_testsupport::SshClient::with_password(
                &wdir,
                nodes[node].2,
                user,
                &format!("{user}-pw"),
            )
        };
        let alice_b = client(1, "alice")?;
        let bob_c = client(2, "bob")?;
        let log = w.dir().join("ssh-clients.log");

        // The console runs on alpha; beta and gamma learn where (directory and leases), and
        // learn alice and bob from the directory.
        wait_until("beta and gamma know alpha holds ex1", || {
            Ok([1, 2].iter().all(|&i| {
                devices_on(&nodes[i].0).is_ok_and(|d| d.iter().any(|n| n == "ex1"))
                    && client(i, "alice")
                        .and_then(|c| c.run(mo_testsupport::Login::Shell, &["who", "ex1"], None))
                        .is_ok_and(|o| o.success() && o.stdout.contains("ex1: nobody"))
            }))
        })?;

        // The console-server doors of beta reach ex1 on alpha too: a program on ex1's raw port
        // of beta types (named after its address), `who` shows it came through beta ...
        let raw = raw_through(("127.0.0.2", raw_port), "raw-from-beta")?;
        let out = client(0, "alice")?
            .run(mo_testsupport::Login::Shell, &["who", "ex1"], None)?
            .ok()?;
        ensure!(
            out.stdout.contains("node beta: tcp:127.0.0.1:"),
            "`who ex1` on alpha lacks the raw port's viewer through beta:\n{}",
            out.stdout
        );
        drop(raw);
        wait_until("the raw port's viewer gone from ex1", || {
            let out = client(0, "alice")?
                .run(mo_testsupport::Login::Shell, &["who", "ex1"], None)?
                .ok()?;
            Ok(!out.stdout.contains("tcp:"))
        })?;
        // ... and alice attaches with conserver's stock client through beta's conserver door.
        let cons = w.conserver_client("alice", conserver_port, "alice", "alice-pw", &["ex1"])?;
        cons.wait_for("[attached]", DEADLINE)?;
        cons.send_line("hello-from-conserver")?;
        cons.wait_for("got: hello-from-conserver", DEADLINE)?;
        cons.send_keys(&["C-e", "c", "w"])?;
        cons.wait_after("[who ex1]", &["alice@127.0.0.1", "attach"], DEADLINE)?;
        cons.send_keys(&["C-e", "c", "."])?;
        cons.wait_dead(DEADLINE)?;

        let mut bob = bob_c.spawn(mo_testsupport::Login::Spy("ex1"), &[], &log)?;
        let bob_seen = mo_testsupport::Collector::start(bob.take_stdout());
        bob_seen.wait_for("bob's spy through gamma", "spying", DEADLINE)?;
        let mut alice = alice_b.spawn(mo_testsupport::Login::Attach("ex1"), &[], &log)?;
        let alice_seen = mo_testsupport::Collector::start(alice.take_stdout());
        alice_seen.wait_for(
            "alice's session through beta",
            "attached read-write",
            DEADLINE,
        )?;

        type_into(&mut alice, "hello-from-beta\n")?;
        alice_seen.wait_for("alice's session", "got: hello-from-beta", DEADLINE)?;
        bob_seen.wait_for("bob's spy", "got: hello-from-beta", DEADLINE)?;
        // bob may not type: the owner refuses a spy's input.
        type_into(&mut bob, "bob-typed\n")?;
        bob_seen.wait_for("bob's spy", "you are spying on", DEADLINE)?;

        // `who` on every node: both viewers, each with the node they came through.
        for (i, name) in names.iter().enumerate() {
            let out = client(i, "alice")?
                .run(mo_testsupport::Login::Shell, &["who", "ex1"], None)?
                .ok()?;
            let line = |user: &str, node: &str| {
                out.stdout
                    .lines()
                    .any(|l| l.contains(user) && l.contains(&format!("node {node}: ssh")))
            };
            ensure!(
                line("alice", "beta") && line("bob", "gamma"),
                "`who ex1` on {name}:\n{}",
                out.stdout
            );
        }

        // The API's `who` of gamma asks the owner too.
        let gamma_token = token_for(&nodes[2].0, "alice")?;
        let who: Value = reqwest::blocking::Client::new()
            .get(format!(
                "http://127.0.0.1:{}/api/v1/devices/ex1/who",
                nodes[2].3
            ))
            .bearer_auth(&gamma_token)
            .timeout(Duration::from_secs(30))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| Error::Check(format!("GET /api/v1/devices/ex1/who on gamma: {e}")))?;
        let origins: Vec<&str> = who
            .as_array()
            .map(|a| a.iter().filter_map(|v| v["origin"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            origins.iter().any(|o| o.starts_with("node beta: ssh"))
                && origins.iter().any(|o| o.starts_with("node gamma: ssh")),
            "GET /api/v1/devices/ex1/who on gamma: {who:#}"
        );

        // The typed line is alice's input in alpha's log (not bob's: his was refused).
        wait_until("alice's line in alpha's log", || {
            let shown = Cli::run_ok(
                &nodes[0].0,
                &["log", "show", "ex1", "--kind", "input"],
                None,
            )?;
            Ok(shown
                .stdout
                .lines()
                .any(|l| l.contains("<alice>") && l.contains("hello-from-beta")))
        })?;
        let shown = Cli::run_ok(
            &nodes[0].0,
            &["log", "show", "ex1", "--kind", "input"],
            None,
        )?;
        let typed = |user: &str, text: &str| {
            shown
                .stdout
                .lines()
                .any(|l| l.contains(user) && l.contains(text))
        };
        ensure!(
            typed("<tcp:127.0.0.1:", "raw-from-beta") && typed("<alice>", "hello-from-conserver"),
            "the console-server doors' input is not in alpha's log as its users':\n{}",
            shown.stdout
        );
        ensure!(
            !shown.stdout.contains("bob-typed"),
            "a spy's input reached alpha's log:\n{}",
            shown.stdout
        );
        ensure!(
            shown.stdout.matches("hello-from-beta").count() == 1,
            "alice's line is not in alpha's log exactly once:\n{}",
            shown.stdout
        );
        // beta and gamma log nothing of their own for ex1: the one copy there is the replica
        // of alpha's log (--replicas 1), byte for byte.
        let bytes = |dir: &std::path::Path| -> Vec<(std::ffi::OsString, Vec<u8>)> {
            segments(dir, "ex1")
                .into_iter()
                .map(|p| {
                    (
                        p.file_name().unwrap_or_default().to_owned(),
                        std::fs::read(&p).unwrap_or_default(),
                    )
                })
                .collect()
        };
        wait_until(
            "one replica of ex1's log, byte-identical to alpha's",
            || {
                let owner = bytes(&nodes[0].0);
                let copies: Vec<_> = [1, 2]
                    .iter()
                    .map(|&i| bytes(&nodes[i].0))
                    .filter(|c| !c.is_empty())
                    .collect();
                Ok(copies.len() == 1 && copies.iter().all(|c| *c == owner))
            },
        )?;

        // The WebSocket door of beta too: bob spies there and sees what alice types.
        let token = token_for(&nodes[1].0, "bob")?;
        let spy = WsSpy::attach(nodes[1].3, "ex1", &token)?;
        ensure!(
            spy.wait_for("\"role\":\"spy\"")? && spy.wait_for("\"state\":\"up\"")?,
            "no spy hello and link state on beta's WebSocket: {}",
            spy.text()
        );
        type_into(&mut alice, "seen-on-websocket\n")?;
        ensure!(
            spy.wait_for("got: seen-on-websocket")?,
            "beta's WebSocket spy did not see the output: {}",
            spy.text()
        );
        drop(spy);

        // Keystroke round trips: through beta, then (alice leaving beta) through alpha itself.
        let (remote50, remote99) = round_trips(&mut alice, &alice_seen, "rb", 200)?;
        alice.close_stdin();
        alice.wait_timeout(Duration::from_secs(10))?;
        let mut local =
            client(0, "alice")?.spawn(mo_testsupport::Login::Attach("ex1"), &[], &log)?;
        let local_seen = mo_testsupport::Collector::start(local.take_stdout());
        local_seen.wait_for("alice through alpha", "attached read-write", DEADLINE)?;
        let (local50, local99) = round_trips(&mut local, &local_seen, "ra", 200)?;
        println!(
            "keystroke round trip through the owner: p50 {local50:?} p99 {local99:?}; \
             through another node: p50 {remote50:?} p99 {remote99:?}"
        );
        ensure!(
            remote50 < local50 + Duration::from_millis(20),
            "a remote keystroke took p50 {remote50:?} against {local50:?} locally"
        );
        local.close_stdin();
        local.wait_timeout(Duration::from_secs(10))?;

        // Two more viewers through the console-server doors: a program on ex1's raw spy port of
        // gamma, and alice's stock conserver client spying through beta (`console -s`).
        let raw_spy = {
            let addr = ("127.0.0.3", raw_spy_port);
            let deadline = Instant::now() + DEADLINE;
            loop {
                match std::net::TcpStream::connect(addr) {
                    Ok(conn) => break conn,
                    Err(e) if Instant::now() > deadline => {
                        return Err(Error::io(format!("connect to {addr:?}"), e));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        };
        let raw_seen = mo_testsupport::Collector::start(Some(raw_spy));
        let cons_spy = w.conserver_client(
            "alice-spy",
            conserver_port,
            "alice",
            "alice-pw",
            &["-s", "ex1"],
        )?;
        wait_until("the raw spy and the conserver spy on ex1", || {
            let out = client(0, "alice")?
                .run(mo_testsupport::Login::Shell, &["who", "ex1"], None)?
                .ok()?;
            Ok(out.stdout.contains("node gamma: tcp:")
                && out.stdout.contains("node beta: conserver"))
        })?;

        // The owner dies (the console unpinned first, so that it may move): bob, spying
        // through gamma, is told, and his door reattaches him where the console runs next; so
        // do the raw port's and the conserver door's.
        Cli::run_ok(
            &nodes[1].0,
            &["device", "set", "ex1", "--node", "none"],
            None,
        )?;
        let killed_at = Instant::now();
        nodes[0].1.kill9()?;
        let told = bob_seen.wait_for("bob's spy", "waiting up to", DEADLINE)?;
        bob_seen.wait_for_from("bob's spy", told, "reattached to ex1", DEADLINE)?;
        println!(
            "bob was reattached {:?} after the owner died",
            killed_at.elapsed()
        );
        // The raw port's and the conserver client's doors reattach on their own schedule (no
        // replay: what the console printed before is not sent again).
        wait_until(
            "the raw spy and the conserver spy reattached to ex1",
            || {
                let out = alice_b
                    .run(mo_testsupport::Login::Shell, &["who", "ex1"], None)?
                    .ok()?;
                Ok(out.stdout.contains("node gamma: tcp:") && out.stdout.contains("conserver"))
            },
        )?;
        let mut alice = alice_b.spawn(mo_testsupport::Login::Attach("ex1"), &[], &log)?;
        let alice_seen = mo_testsupport::Collector::start(alice.take_stdout());
        alice_seen.wait_for("alice through beta again", "attached read-write", DEADLINE)?;
        type_into(&mut alice, "after-failover\n")?;
        bob_seen.wait_for("bob's spy", "got: after-failover", DEADLINE)?;
        raw_seen.wait_for(
            "the raw spy port through gamma",
            "got: after-failover",
            DEADLINE,
        )?;
        ensure!(
            !raw_seen.text().contains("waiting up to"),
            "a program on a raw port was sent a notice: {:?}",
            raw_seen.text()
        );
        cons_spy.wait_after("reattached to ex1", &["got: after-failover"], DEADLINE)?;
        alice.close_stdin();
        bob.close_stdin();
        alice.wait_timeout(Duration::from_secs(10))?;
        bob.wait_timeout(Duration::from_secs(10))?;
        Ok(())
    });
}

/// A program on a raw console port at `addr`: types `line`, waits for the device's echo of it
/// (`got: LINE`) and returns the open connection.
fn raw_through(addr: (&str, u16), line: &str) -> Result<std::net::TcpStream> {
    use std::io::{Read as _, Write as _};
    let deadline = Instant::now() + DEADLINE;
    let mut conn = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(conn) => break conn,
            Err(e) if Instant::now() > deadline => {
                return Err(Error::io(format!("connect to {addr:?}"), e));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let io = |e| Error::io(format!("raw port {addr:?}"), e);
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io)?;
    conn.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let want = format!("got: {line}");
    while !String::from_utf8_lossy(&seen).contains(&want) {
        ensure!(
            Instant::now() < deadline,
            "no `{want}` on the raw port {addr:?}: {:?}",
            String::from_utf8_lossy(&seen)
        );
        match conn.read(&mut buf) {
            Ok(0) => {
                return Err(Error::Check(format!(
                    "the raw port {addr:?} closed: {:?}",
                    String::from_utf8_lossy(&seen)
                )));
            }
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(conn)
}

/// A console that prints numbered lines quickly, with short pauses (about 250 kB/s).
const STEADY_FLOOD: &str = r#"#!/bin/sh
i=0
while :; do
  i=$((i+1))
  echo "replicated line $i padding padding padding padding padding padding"
  if [ $((i % 200)) = 0 ]; then sleep 0.05; fi
done
"#;

/// The segment files of `device`'s log in data directory `dir`, sorted by name.
fn segments(dir: &std::path::Path, device: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("logs").join(device))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "mlog"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `mo --server BASE --token TOKEN log verify NAME --replicas`.
fn verify_replicas(w: &World, base: &str, token: &str, name: &str) -> Result<(bool, String)> {
    let out = w.mo(
        &[
            "--server",
            base,
            "--token",
            token,
            "log",
            "verify",
            name,
            "--replicas",
        ],
        None,
    )?;
    Ok((out.success(), out.combined()))
}

/// Replicated logs (issue 14 item 5): the records of a console owned by one node are
/// byte-identical in the data directory of its replica; a byte changed in a closed segment of a
/// copy is named (node, device, record) by `mo log verify --replicas`; when the owner is killed
/// during output, the new owner continues the same chain (the first segment stays the dead
/// owner's, byte for byte) and the survivors' copies verify.
#[test]
fn console_logs_are_replicated_byte_identical_and_continue_across_owners() {
    run_test("cluster-replicas", |w| {
        let started = Instant::now();
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        let script = w.write_script("steady.sh", STEADY_FLOOD)?;
        let flood_url = format!("exec://{}", script.display());
        let mut nodes: Vec<(String, std::path::PathBuf, Daemon, String, String)> = Vec::new();
        for name in ["alpha", "beta", "gamma"] {
            let dir = w.dir().join(name);
            let token = admin_token(&dir)?;
            if name == "alpha" {
                Cli::run_ok(&dir, &["device", "add", "flood", &flood_url], None)?;
            }
            let extra = ["--replicas", "1", "--segment-mib", "1"];
            let (daemon, base) = sharing_node(&dir, &url, name, &extra)?;
            nodes.push((name.into(), dir, daemon, base, token));
        }
        let (base, token) = (nodes[0].3.clone(), nodes[0].4.clone());
        wait_status(w, &base, &token, "three nodes, flood held by one", |s| {
            ["alpha", "beta", "gamma"]
                .iter()
                .all(|n| node(s, n).is_some_and(|n| n["state"] == "up"))
                && holder(s, "flood").len() == 1
        })?;
        // The console may have moved once while the nodes came up: take the owner once a
        // segment is closed.
        wait_until("a segment closed", || {
            Ok(nodes.iter().any(|n| segments(&n.1, "flood").len() >= 2))
        })?;
        let seen = wait_status(w, &base, &token, "flood held", |s| {
            holder(s, "flood").len() == 1
        })?;
        let owner = holder(&seen, "flood").remove(0);
        let o = nodes.iter().position(|n| n.0 == owner).unwrap();
        let owner_dir = nodes[o].1.clone();
        wait_until("the owner closed a segment", || {
            Ok(segments(&owner_dir, "flood").len() >= 2)
        })?;
        let first = segments(&owner_dir, "flood").remove(0);
        let first_name = first.file_name().unwrap().to_owned();
        let owners_first = std::fs::read(&first).unwrap();

        // A replica holds the closed segment byte for byte.
        let mut replica = None;
        mo_testsupport::wait_until("a byte-identical copy on another node", DEADLINE, || {
            for (i, n) in nodes.iter().enumerate().filter(|(i, _)| *i != o) {
                let copy = n.1.join("logs").join("flood").join(&first_name);
                if std::fs::read(&copy).is_ok_and(|b| b == owners_first) {
                    replica = Some(i);
                    return Ok(Ok(()));
                }
            }
            Ok(Err(format!(
                "no copy of {first_name:?} equal to the owner's yet"
            )))
        })?;
        let r = replica.unwrap();
        let replica_name = nodes[r].0.clone();
        let (ok, text) = verify_replicas(w, &base, &token, "flood")?;
        ensure!(ok, "verify --replicas of intact copies: {text}");
        ensure!(
            text.contains(&format!("{owner} (owner)"))
                && text.contains(&format!("{replica_name} (replica)")),
            "both copies compared: {text}"
        );

        // One byte changed in the replica's closed segment: named with node, device, record.
        let copy = nodes[r].1.join("logs").join("flood").join(&first_name);
        let mut bytes = std::fs::read(&copy).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(&copy, &bytes).unwrap();
        let (ok, text) = verify_replicas(w, &base, &token, "flood")?;
        ensure!(
            !ok && text.contains(&format!("node {replica_name}: device flood: record ")),
            "verify --replicas after tampering on {replica_name}: {text}"
        );
        bytes[at] ^= 0x20;
        std::fs::write(&copy, &bytes).unwrap();

        // The owner dies during output: the new owner continues the chain.
        let copied_at_kill = {
            let v = Cli::run_ok(&nodes[r].1, &["log", "verify", "flood", "--json"], None)?;
            let v: Value = serde_json::from_str(&v.stdout).unwrap();
            v["records"].as_u64().unwrap_or(0)
        };
        nodes[o].2.kill9()?;
        let survivor = nodes.iter().position(|n| n.0 != owner).unwrap();
        let (sbase, stoken) = (nodes[survivor].3.clone(), nodes[survivor].4.clone());
        let seen = wait_status(w, &sbase, &stoken, "flood held by a survivor", |s| {
            let h = holder(s, "flood");
            h.len() == 1 && h[0] != owner
        })?;
        let new_owner = holder(&seen, "flood").remove(0);
        let n = nodes.iter().position(|x| x.0 == new_owner).unwrap();
        let new_dir = nodes[n].1.clone();
        wait_until("the new owner logs beyond what was copied", || {
            let v = Cli::run_ok(&new_dir, &["log", "verify", "flood", "--json"], None)?;
            let v: Value = serde_json::from_str(&v.stdout).unwrap();
            ensure!(v["ok"] == true, "the new owner's log: {v:#}");
            Ok(v["records"].as_u64().unwrap_or(0) > copied_at_kill + 1000)
        })?;
        ensure!(
            std::fs::read(new_dir.join("logs").join("flood").join(&first_name)).ok()
                == Some(owners_first),
            "the new owner's first segment is the dead owner's"
        );
        mo_testsupport::wait_until("the survivors' copies verify", DEADLINE, || {
            let (ok, text) = verify_replicas(w, &sbase, &stoken, "flood")?;
            let both = nodes
                .iter()
                .filter(|x| x.0 != owner)
                .all(|x| text.contains(x.0.as_str()));
            Ok(
                if ok && both && !text.contains("behind") && text.contains("signed checkpoint") {
                    Ok(())
                } else {
                    Err(text)
                },
            )
        })?;
        eprintln!("replication test took {:?}", started.elapsed());
        drop(nats);
        Ok(())
    });
}

/// A publish whose ack comes too late, and records written while NATS was away (before the
/// owner fenced itself), reach the replica: its copy (the site's) ends byte-identical to the
/// owner's and the copies verify.
///
/// NATS is a cluster of three servers (the stream has three replicas). The owner reaches them
/// through relays, one of which holds back one ack of the records stream past the owner's 5 s ack
/// timeout while the message is stored; the owner sends it again (same message id, more records
/// by then), is answered "duplicate" (a clustered stream checks the message id before the
/// expected last sequence), and must go on where the stored message ends, not where the resent
/// one would have.
#[test]
fn records_written_while_cut_off_are_replicated_when_nats_returns() {
    run_test("cluster-replica-catchup", |w| {
        let started = Instant::now();
        let mut nats = mo_testsupport::NatsCluster::start(&w.dir().join("nats"))?;
        let url = nats.urls();
        let script = w.write_script("steady.sh", STEADY_FLOOD)?;
        let flood_url = format!("exec://{}", script.display());
        let (alpha, beta) = (w.dir().join("alpha"), w.dir().join("beta"));
        let token = admin_token(&alpha)?;
        Cli::run_ok(
            &alpha,
            &["device", "add", "flood", &flood_url, "--node", "alpha"],
            None,
        )?;
        let extra = ["--replicas", "1", "--segment-mib", "1"];
        // alpha reaches each NATS server through a relay that can hold back what it sends.
        let relays = (0..mo_testsupport::CLUSTER_SIZE)
            .map(|i| mo_testsupport::HoldProxy::start(nats.port(i).unwrap()))
            .collect::<Result<Vec<_>>>()?;
        let relay_url = relays
            .iter()
            .map(|r| format!("nats://127.0.0.1:{}", r.port()))
            .collect::<Vec<_>>()
            .join(",");
        let (a, base) = sharing_node(&alpha, &relay_url, "alpha", &extra)?;
        let (_b, _) = sharing_node(&beta, &url, "beta", &extra)?;
        wait_status(w, &base, &token, "flood held by alpha", |s| {
            holder(s, "flood") == ["alpha"]
        })?;
        let records = |dir: &std::path::Path| -> Result<u64> {
            let v = Cli::run_ok(dir, &["log", "verify", "flood", "--json"], None)?;
            let v: Value = serde_json::from_str(&v.stdout)
                .map_err(|e| Error::Check(format!("verify --json: {e}")))?;
            ensure!(v["ok"] == true, "log verify: {v:#}");
            Ok(v["records"].as_u64().unwrap_or(0))
        };
        // (beta makes its copy once the first records reach it)
        wait_until("beta copies records", || {
            Ok(records(&beta).unwrap_or(0) > 100)
        })?;
        let alphas = || -> Vec<(std::ffi::OsString, Vec<u8>)> {
            segments(&alpha, "flood")
                .iter()
                .map(|p| (p.file_name().unwrap().to_owned(), std::fs::read(p).unwrap()))
                .collect()
        };
        // beta's copy holds `files` (alpha's, as read once) byte for byte: every byte once.
        let beta_holds = |files: &[(std::ffi::OsString, Vec<u8>)]| {
            files.iter().all(|(name, bytes)| {
                std::fs::read(beta.join("logs").join("flood").join(name))
                    .is_ok_and(|b| b.len() >= bytes.len() && b[..bytes.len()] == bytes[..])
            })
        };

        // One ack of the records stream comes after alpha's ack timeout; the message is stored.
        let lost_at = Instant::now();
        for relay in &relays {
            relay.hold_one("\"stream\":\"mo_records\"");
        }
        wait_until("an ack of the records stream held back", || {
            Ok(relays.iter().any(|r| r.caught()))
        })?;
        a.wait_log("were stored though the ack was lost", DEADLINE)?;
        for relay in &relays {
            relay.release();
        }
        let sent = alphas();
        wait_until(
            "beta holds what alpha wrote before and after the lost ack",
            || Ok(beta_holds(&sent)),
        )?;
        eprintln!(
            "a lost ack: alpha published on, beta's copy whole {:?} later",
            lost_at.elapsed()
        );

        // NATS away: alpha logs on until it fences itself; those records are not on beta.
        nats.stop_all();
        wait_until("alpha stopped its console (fenced)", || {
            let before = records(&alpha)?;
            std::thread::sleep(Duration::from_millis(700));
            Ok(records(&alpha)? == before)
        })?;
        let (at_fence, copied) = (records(&alpha)?, records(&beta)?);
        ensure!(
            copied < at_fence,
            "beta has {copied} of alpha's {at_fence} records while NATS is away"
        );
        let fenced = alphas();

        // NATS back: beta gets the records written meanwhile, byte for byte.
        nats.start_all()?;
        wait_until("beta holds what alpha wrote while cut off", || {
            Ok(beta_holds(&fenced))
        })?;
        mo_testsupport::wait_until("the copies verify", DEADLINE, || {
            let (ok, text) = verify_replicas(w, &base, &token, "flood")?;
            Ok(
                if ok && text.contains("beta (replica)") && !text.contains("behind") {
                    Ok(())
                } else {
                    Err(text)
                },
            )
        })?;
        eprintln!("catch-up test took {:?}", started.elapsed());
        drop(nats);
        Ok(())
    });
}

/// A TCP console endpoint that prints numbered lines (`numbered line 00000042 …`) on its
/// connection, about 250 kB/s, with one count over all connections (a number is printed once),
/// and counts its connections: open now, the most ever open at once.
struct NumberedConsole {
    counted: CountingConsole,
    printed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl NumberedConsole {
    /// 20 lines every 4 ms (about 250 kB/s).
    fn start() -> Result<NumberedConsole> {
        Self::start_with(20)
    }

    /// `burst` lines every 4 ms.
    fn start_with(burst: usize) -> Result<NumberedConsole> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let printed = Arc::new(AtomicU64::new(0));
        let paused = Arc::new(AtomicBool::new(false));
        let (p, z) = (printed.clone(), paused.clone());
        let counted = CountingConsole::serving(move |mut stream, closed| {
            use std::io::Write as _;
            while !closed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(4));
                if z.load(Ordering::SeqCst) {
                    continue;
                }
                for _ in 0..burst {
                    let n = p.fetch_add(1, Ordering::SeqCst) + 1;
                    let line = format!("numbered line {n:08} padding padding padding\r\n");
                    if stream.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                }
            }
        })?;
        Ok(NumberedConsole {
            counted,
            printed,
            paused,
        })
    }

    /// Stop printing (`true`) or go on (`false`); a paused console holds its connections.
    fn pause(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.counted.port)
    }
    fn open(&self) -> usize {
        self.counted.open()
    }
    /// `Ok` when there was never more than one connection at once.
    fn never_shared(&self) -> Result<()> {
        self.counted.never_shared()
    }
    fn printed(&self) -> u64 {
        self.printed.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn accepted(&self) -> usize {
        self.counted.accepted()
    }
}

/// The records of `device`'s log in data directory `dir` (checked: checksums, no gap in the
/// sequence numbers).
fn records_of(dir: &std::path::Path, device: &str) -> Result<Vec<mo_core::log::Record>> {
    let path = dir.join("logs").join(device);
    mo_core::log::read(&path, &mo_core::log::ReadOptions::default())
        .and_then(|r| r.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Check(format!("read {}: {e}", path.display())))
}

/// The line numbers in `bytes` (`numbered line NNNNNNNN`), in order.
fn line_numbers(bytes: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(bytes);
    text.split("numbered line ")
        .skip(1)
        .filter_map(|rest| rest.get(..8).and_then(|n| n.parse().ok()))
        .collect()
}

/// The ranges of numbers from 1 to the largest of `seen` that `seen` lacks.
fn missing_runs(seen: &std::collections::BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let last = seen.iter().next_back().copied().unwrap_or(0);
    for n in 1..=last {
        if seen.contains(&n) {
            continue;
        }
        match runs.last_mut() {
            Some(r) if r.1 + 1 == n => r.1 = n,
            _ => runs.push((n, n)),
        }
    }
    runs
}

/// Issue 14 item 5, no lost record and no reused number: the owner of a console is killed with
/// SIGKILL during a flood, after it wrote records the stream does not hold yet; the other node
/// takes the console over and continues the chain (and keeps it: pinned there); when the killed
/// node returns, it sends the records only it had to the survivor, which appends them to the
/// site's chain (after a `recovered:` notice) with fresh sequence numbers. Every record the dead owner wrote is then in the site's chain exactly
/// once, no line the device printed is in it twice, and the copies verify on both nodes.
#[test]
fn records_a_killed_owner_wrote_reach_the_sites_chain_when_it_returns() {
    run_test("cluster-recover", |w| {
        let started = Instant::now();
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        let device = NumberedConsole::start()?;
        let extra = ["--replicas", "1", "--segment-mib", "1"];
        let devices = [("flood", device.url())];
        let (dirs, tokens, mut nodes) = two_nodes(w, &url, "5s", &extra, &devices)?;
        let seen = wait_status(w, &nodes[0].1, &tokens[0], "flood held by one node", |s| {
            holder(s, "flood").len() == 1 && node(s, "beta").is_some()
        })?;
        let owner = holder(&seen, "flood").remove(0);
        let (o, s) = if owner == "alpha" { (0, 1) } else { (1, 0) };
        wait_until("the other node copies records", || {
            Ok(records_of(&dirs[s], "flood").map_or(0, |r| r.len()) > 2000)
        })?;

        // SIGKILL during the flood: what the owner wrote after the stream's last message is
        // only in its files.
        nodes[o].0.kill9()?;
        let killed: Vec<mo_core::log::Record> = records_of(&dirs[o], "flood")?
            .into_iter()
            .filter(|r| r.kind == mo_core::record::RecordKind::Output)
            .collect();
        let key = |r: &mo_core::log::Record| (r.time_ns, r.bytes.clone());
        let survivor = node_name(s);
        wait_status(
            w,
            &nodes[s].1,
            &tokens[s],
            "flood held by the survivor",
            |st| holder(st, "flood") == [survivor],
        )?;
        wait_until("the survivor logs on", || {
            Ok(device.open() == 1 && records_of(&dirs[s], "flood")?.len() > killed.len() + 500)
        })?;
        let held: std::collections::HashSet<_> =
            records_of(&dirs[s], "flood")?.iter().map(key).collect();
        let lost = killed.iter().filter(|r| !held.contains(&key(r))).count();
        eprintln!(
            "the killed owner wrote {} output records, {lost} of them not in the stream",
            killed.len()
        );
        ensure!(
            lost > 0,
            "the kill left no record behind the stream: nothing to test"
        );

        // The console stays on the survivor (pinned there), so the killed node sends its
        // records over NATS to another node when it returns.
        Cli::run_ok(
            &dirs[s],
            &["device", "set", "flood", "--node", survivor],
            None,
        )?;

        // The killed node returns: its records are appended to the site's chain.
        let name = node_name(o);
        nodes[o] = sharing_node(&dirs[o], &url, name, &extra)?;
        let aside = dirs[o].join("logs").join("flood");
        wait_until("the returned node says its records are recovered", || {
            Ok(std::fs::read_dir(&aside).is_ok_and(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().starts_with("recovered-"))
            }))
        })?;
        let recovered_at = started.elapsed();
        device.pause(true);
        mo_testsupport::wait_until("both copies verify on both nodes", DEADLINE, || {
            for (i, (_, base)) in nodes.iter().enumerate() {
                let (ok, text) = verify_replicas(w, base, &tokens[i], "flood")?;
                if !ok
                    || text.contains("behind")
                    || !text.contains("alpha")
                    || !text.contains("beta")
                {
                    return Ok(Err(format!("through {}: {text}", node_name(i))));
                }
            }
            Ok(Ok(()))
        })?;
        let seen = status(w, &nodes[0].1, &tokens[0])?;
        ensure!(
            holder(&seen, "flood") == [survivor],
            "flood held by {:?}, not {survivor}",
            holder(&seen, "flood")
        );
        let chain = records_of(&dirs[s], "flood")?;
        let notices: Vec<String> = chain
            .iter()
            .filter(|r| r.kind == mo_core::record::RecordKind::Notice)
            .map(|r| String::from_utf8_lossy(&r.bytes).into_owned())
            .filter(|t| t.starts_with("recovered: "))
            .collect();
        ensure!(
            !notices.is_empty()
                && notices
                    .iter()
                    .all(|t| t.contains(&format!("written on node {name} between "))),
            "recovered notices: {notices:?}"
        );
        let mut count: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
        for r in &chain {
            *count.entry(key(r)).or_default() += 1;
        }
        let wrong: Vec<u64> = killed
            .iter()
            .filter(|r| count.get(&key(r)) != Some(&1))
            .map(|r| r.seq)
            .collect();
        ensure!(
            wrong.is_empty(),
            "records of the killed owner not in the chain exactly once (its seqs): {wrong:?}"
        );
        // Lines: the dead owner's records in its order, the others in the chain's.
        let theirs: std::collections::HashSet<_> = killed.iter().map(key).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for r in chain
            .iter()
            .filter(|r| r.kind == mo_core::record::RecordKind::Output)
        {
            let to = if theirs.contains(&key(r)) {
                &mut a
            } else {
                &mut b
            };
            to.extend_from_slice(&r.bytes);
        }
        let mut numbers = line_numbers(&a);
        numbers.extend(line_numbers(&b));
        let distinct: std::collections::BTreeSet<u64> = numbers.iter().copied().collect();
        ensure!(
            distinct.len() == numbers.len(),
            "{} lines are in the chain more than once",
            numbers.len() - distinct.len()
        );
        // Lines lost on the wire: those in the killed owner's socket (and in the survivor's if
        // the pinning restarted the console).
        let gaps = missing_runs(&distinct);
        ensure!(gaps.len() <= 2, "lines missing from the chain: {gaps:?}");
        eprintln!(
            "{} lines of {} printed in the chain, missing {gaps:?}; {} recovered notices; \
             recovered {recovered_at:?} in, test took {:?}",
            distinct.len(),
            device.printed(),
            notices.len(),
            started.elapsed()
        );
        device.never_shared()?;
        drop(nats);
        Ok(())
    });
}

/// How long the NATS outage of [`consoles_log_on_through_a_nats_cluster_outage`] lasts.
const OUTAGE: Duration = Duration::from_secs(30);

/// The NATS outage of issue 14: the whole three-server NATS cluster is killed for 30 s. With a
/// lease TTL longer than twice the outage (`--lease-ttl 90s`: a node fences itself after half of
/// it), every node keeps its consoles and logs them throughout; when NATS is back the replicas
/// catch up and the copies verify through either node, no line is logged twice, and no console
/// ever had two connections (nor a second one at all: none was closed).
#[test]
fn consoles_log_on_through_a_nats_cluster_outage() {
    run_test("cluster-nats-outage", |w| {
        let started = Instant::now();
        let mut nats = mo_testsupport::NatsCluster::start(&w.dir().join("nats"))?;
        let url = nats.urls();
        let consoles = [
            NumberedConsole::start_with(2)?,
            NumberedConsole::start_with(2)?,
        ];
        let names = ["one", "two"];
        let devices = [(names[0], consoles[0].url()), (names[1], consoles[1].url())];
        let (dirs, tokens, nodes) = two_nodes(w, &url, "90s", &["--replicas", "1"], &devices)?;
        let seen = wait_status(w, &nodes[0].1, &tokens[0], "both consoles held", |s| {
            node(s, "beta").is_some_and(|n| n["state"] == "up")
                && names.iter().all(|n| holder(s, n).len() == 1)
                && consoles.iter().all(|c| c.open() == 1)
        })?;
        let holders_in = |s: &Value| -> Vec<usize> {
            names
                .iter()
                .map(|n| usize::from(holder(s, n) == ["beta"]))
                .collect()
        };
        let accepted_now =
            || -> Vec<usize> { consoles.iter().map(NumberedConsole::accepted).collect() };
        // The placement settles first (a node whose lease came late takes its console over, as
        // beta did 6 s in, once): the holders are those that stay for 3 s, each console
        // connected. A handover while the replicas catch up starts it over (seen once: alpha
        // gave `two` up, and beta had not connected it yet when NATS went away).
        let mut holders = holders_in(&seen);
        let mut accepted = accepted_now();
        let settle = Instant::now() + Duration::from_secs(90);
        let printed_when_settled = loop {
            std::thread::sleep(Duration::from_secs(3));
            let now = holders_in(&status(w, &nodes[0].1, &tokens[0])?);
            let acc = accepted_now();
            let steady =
                now == holders && acc == accepted && consoles.iter().all(|c| c.open() == 1);
            ensure!(
                Instant::now() < settle,
                "the placement did not settle within 90 s: holders {now:?}, connections {acc:?}"
            );
            (holders, accepted) = (now, acc);
            if !steady {
                continue;
            }
            // A console handed over while the placement settled loses what it printed into the
            // connection being closed (a line or so): gaps up to here are those.
            let printed: Vec<u64> = consoles.iter().map(NumberedConsole::printed).collect();
            let count = |i: usize, name: &str| records_of(&dirs[i], name).map_or(0, |r| r.len());
            wait_until("the replicas copy records", || {
                Ok(names
                    .iter()
                    .zip(&holders)
                    .all(|(n, &h)| count(1 - h, n) > 50))
            })?;
            let now = holders_in(&status(w, &nodes[0].1, &tokens[0])?);
            if now == holders
                && accepted_now() == accepted
                && consoles.iter().all(|c| c.open() == 1)
            {
                break printed;
            }
        };

        // NATS gone: the holders keep their consoles and log on.
        let cut_ns = mo_core::record::now_ns();
        nats.stop_all();
        let cut = Instant::now();
        std::thread::sleep(OUTAGE);
        let back_ns = mo_core::record::now_ns();
        nats.start_all()?;
        let back = Instant::now();
        for (c, name) in consoles.iter().zip(names) {
            ensure!(
                c.open() == 1
                    && c.accepted() == accepted[names.iter().position(|n| *n == name).unwrap()],
                "{name} was closed or connected again during the outage"
            );
        }
        for (name, &h) in names.iter().zip(&holders) {
            let during: Vec<u64> = records_of(&dirs[h], name)?
                .iter()
                .filter(|r| r.kind == mo_core::record::RecordKind::Output)
                .filter(|r| r.time_ns > cut_ns && r.time_ns < back_ns)
                .map(|r| r.time_ns)
                .collect();
            let last = during
                .last()
                .map_or(0, |t| t.saturating_sub(cut_ns) / 1_000_000);
            ensure!(
                during.len() > 100 && last + 2000 > OUTAGE.as_millis() as u64,
                "{name} on {}: {} output records during the outage, the last {last} ms into it",
                node_name(h),
                during.len()
            );
        }
        eprintln!("NATS away {:?}; consoles logged on throughout", back - cut);

        // NATS back: the replicas catch up, the copies verify.
        for c in &consoles {
            c.pause(true);
        }
        mo_testsupport::wait_until("the copies verify through both nodes", DEADLINE, || {
            for name in names {
                for (i, (_, base)) in nodes.iter().enumerate() {
                    let (ok, text) = verify_replicas(w, base, &tokens[i], name)?;
                    if !ok
                        || text.contains("behind")
                        || !text.contains("alpha")
                        || !text.contains("beta")
                    {
                        return Ok(Err(format!("{name} through {}: {text}", node_name(i))));
                    }
                }
            }
            Ok(Ok(()))
        })?;
        let caught_up = back.elapsed();
        for (i, (c, (name, &h))) in consoles.iter().zip(names.iter().zip(&holders)).enumerate() {
            c.never_shared()?;
            let mut lines = Vec::new();
            for r in records_of(&dirs[h], name)? {
                if r.kind == mo_core::record::RecordKind::Output {
                    lines.extend_from_slice(&r.bytes);
                }
            }
            let numbers = line_numbers(&lines);
            let distinct: std::collections::BTreeSet<u64> = numbers.iter().copied().collect();
            let gaps = missing_runs(&distinct);
            // At most one gap per handover, all before the placement settled.
            let handovers = accepted[i].saturating_sub(1);
            ensure!(
                distinct.len() == numbers.len()
                    && gaps.len() <= handovers
                    && gaps.iter().all(|g| g.1 <= printed_when_settled[i]),
                "{name}: {} lines, {} distinct, missing {gaps:?} ({handovers} handovers, {} \
                 lines printed when the placement settled)",
                numbers.len(),
                distinct.len(),
                printed_when_settled[i]
            );
        }
        eprintln!(
            "replicas verified {caught_up:?} after NATS came back; test took {:?}",
            started.elapsed()
        );
        drop(nats);
        Ok(())
    });
}

/// One NATS server of three dies (each in turn, for 5 s): nothing stops. The site's buckets and
/// streams have three replicas on a NATS cluster of three, the nodes go on through the other two
/// servers once JetStream elected new leaders (about 4 s when the dead server led: the lease TTL
/// is 20 s, a node fences after 10 s), the console stays on its one connection and is logged
/// throughout, and the copies verify afterwards.
#[test]
fn one_nats_server_of_three_dies_and_nothing_stops() {
    run_test("cluster-nats-one-down", |w| {
        let started = Instant::now();
        let mut nats = mo_testsupport::NatsCluster::start(&w.dir().join("nats"))?;
        let url = nats.urls();
        let console = NumberedConsole::start_with(2)?;
        let devices = [("flood", console.url())];
        let (dirs, tokens, nodes) = two_nodes(w, &url, "20s", &["--replicas", "1"], &devices)?;
        let seen = wait_status(w, &nodes[0].1, &tokens[0], "flood held", |s| {
            node(s, "beta").is_some_and(|n| n["state"] == "up")
                && holder(s, "flood").len() == 1
                && console.open() == 1
        })?;
        // The placement settles (a node whose lease came late takes its console over).
        let mut h = usize::from(holder(&seen, "flood") == ["beta"]);
        let mut accepted = console.accepted();
        loop {
            std::thread::sleep(Duration::from_secs(3));
            let seen = status(w, &nodes[0].1, &tokens[0])?;
            let now = usize::from(holder(&seen, "flood") == ["beta"]);
            if now == h && console.accepted() == accepted && console.open() == 1 {
                break;
            }
            (h, accepted) = (now, console.accepted());
        }
        for i in 0..mo_testsupport::CLUSTER_SIZE {
            // One server down means the other two hold a current copy of every stream: the
            // streams made at the start, or the server started last, have caught up first.
            nats.wait_healthy(DEADLINE)?;
            nats.stop(i);
            let before = records_of(&dirs[h], "flood").map_or(0, |r| r.len());
            std::thread::sleep(Duration::from_secs(5));
            let after = records_of(&dirs[h], "flood").map_or(0, |r| r.len());
            ensure!(
                console.open() == 1 && console.accepted() == accepted && after > before + 100,
                "with NATS server {} down: {} connection(s) open, {} accepted (was {accepted}), \
                 {before} -> {after} records",
                i + 1,
                console.open(),
                console.accepted()
            );
            nats.start_all()?;
            // The server rejoins and catches up before the next one dies (else two are out):
            // its `/healthz` can say so before JetStream has elected leaders for the streams
            // the killed server led, so some time passes as well.
            std::thread::sleep(Duration::from_secs(4));
        }
        nats.wait_healthy(DEADLINE)?;
        console.pause(true);
        mo_testsupport::wait_until("the copies verify", DEADLINE, || {
            let (ok, text) = verify_replicas(w, &nodes[0].1, &tokens[0], "flood")?;
            Ok(
                if ok && !text.contains("behind") && text.contains("alpha") && text.contains("beta")
                {
                    Ok(())
                } else {
                    Err(text)
                },
            )
        })?;
        console.never_shared()?;
        eprintln!("one-server-down test took {:?}", started.elapsed());
        drop(nats);
        Ok(())
    });
}

/// Nodes alpha and beta of the site at `url` ([`sharing_node_ttl`] with `ttl` and `extra`), each
/// with an admin token, `devices` (name, URL) added on alpha first: their data directories,
/// tokens, and daemons with their HTTP base URLs.
#[allow(clippy::type_complexity)]
fn two_nodes(
    w: &World,
    url: &str,
    ttl: &str,
    extra: &[&str],
    devices: &[(&str, String)],
) -> Result<([std::path::PathBuf; 2], [String; 2], Vec<(Daemon, String)>)> {
    let dirs = [w.dir().join("alpha"), w.dir().join("beta")];
    let tokens = [admin_token(&dirs[0])?, admin_token(&dirs[1])?];
    for (name, device_url) in devices {
        Cli::run_ok(&dirs[0], &["device", "add", name, device_url], None)?;
    }
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(sharing_node_ttl(dir, url, node_name(i), ttl, extra)?);
    }
    Ok((dirs, tokens, nodes))
}

/// The node name of index `i` of the two-node tests.
fn node_name(i: usize) -> &'static str {
    ["alpha", "beta"][i]
}

/// `GET /api/v1/events` on `base`.
fn events_api(base: &str, token: &str) -> Result<Vec<Value>> {
    reqwest::blocking::Client::new()
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| Error::Check(format!("GET /api/v1/events on {base}: {e}")))
}

/// The panic event of device `panicky` as `base` lists it, once it does.
fn panic_event(base: &str, token: &str) -> Result<Option<Value>> {
    Ok(events_api(base, token)?.into_iter().find(|e| {
        e["device"] == "panicky"
            && e["text"]
                .as_str()
                .is_some_and(|t| t.contains("Kernel panic"))
    }))
}

/// Events and audit are the site's (issue 14 item 6): a console pinned to alpha prints a panic;
/// the event is listed on beta and gamma naming alpha, an acknowledgement on gamma shows on alpha
/// and beta, and the rule's actions (at once and after the acknowledgement) ran exactly once, on
/// alpha; an audit entry made on beta is listed by `mo audit` on alpha, naming beta.
#[test]
fn events_and_audit_entries_of_one_node_are_the_sites_and_actions_run_once() {
    run_test("cluster-events", |w| {
        let nats = Nats::start(&w.dir().join("nats"))?;
        let url = nats.url();
        let record = w.dir().join("actions.out");
        let action = w.write_script(
            "action.sh",
            &format!("#!/bin/sh\necho \"$1 $2 $PPID\" >>{}\n", record.display()),
        )?;
        let mark = w.dir().join("panicked");
        let trigger = w.dir().join("oops-now");
        let console = w.write_script(
            "console.sh",
            &format!(
                "#!/bin/sh\nif [ ! -e {m} ]; then : > {m}; echo \"Kernel panic - not syncing: boom\"; fi\n\
                 while [ ! -e {t} ]; do sleep 0.1; done\necho \"Oops: again\"\nexec sleep 600\n",
                m = mark.display(),
                t = trigger.display()
            ),
        )?;
        let config = w.write_script(
            "events.toml",
            &format!(
                r#"[[pattern]]
name = "panic"
regex = 'Kernel panic - not syncing'
severity = "critical"

[[pattern]]
name = "oops"
regex = 'Oops: again'
severity = "warning"

[[rules.rule]]
name = "page"
min_severity = "critical"
actions = ["note"]
after_ack = ["acked"]

[actions.note]
kind = "exec"
argv = ["{action}", "raised", "{{device}}"]

[actions.acked]
kind = "exec"
argv = ["{action}", "acked", "{{device}}"]
"#,
                action = action.display()
            ),
        )?;
        let config = config.display().to_string();
        let events = ["--events", config.as_str()];
        let mut nodes = Vec::new();
        for name in ["alpha", "beta", "gamma"] {
            let dir = w.dir().join(name);
            if name == "alpha" {
                let url = format!("exec://{}", console.display());
                Cli::run_ok(
                    &dir,
                    &["device", "add", "panicky", &url, "--node", "alpha"],
                    None,
                )?;
            }
            let token = admin_token(&dir)?;
            let (daemon, base) = sharing_node(&dir, &url, name, &events)?;
            nodes.push((name, dir, daemon, base, token));
        }
        let started = Instant::now();
        let on = |i: usize| -> (&str, &str) { (nodes[i].3.as_str(), nodes[i].4.as_str()) };

        // The event reaches beta and gamma, naming alpha; alpha lists it as its own.
        wait_until("the panic event on beta and gamma", || {
            let (b, g) = (
                panic_event(on(1).0, on(1).1)?,
                panic_event(on(2).0, on(2).1)?,
            );
            Ok([b, g]
                .iter()
                .all(|e| e.as_ref().is_some_and(|e| e["node"] == "alpha")))
        })?;
        let gamma_id = panic_event(on(2).0, on(2).1)?
            .and_then(|e| e["id"].as_u64())
            .unwrap_or(0);
        let own = panic_event(on(0).0, on(0).1)?;
        ensure!(
            own.as_ref().is_some_and(|e| e.get("node").is_none()),
            "alpha's own event names no node: {own:?}"
        );
        let listed = Cli::run_ok(&nodes[1].1, &["events", "--device", "panicky"], None)?.stdout;
        ensure!(
            listed.contains("panicky@alpha"),
            "mo events on beta: {listed}"
        );

        // Acknowledged on gamma: acknowledged everywhere.
        let ack = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/events/{gamma_id}/ack", on(2).0))
            .bearer_auth(on(2).1)
            .timeout(Duration::from_secs(30))
            .send()
            .map_err(|e| Error::Check(format!("ack on gamma: {e}")))?;
        ensure!(ack.status().is_success(), "ack on gamma: {}", ack.status());
        wait_until("the acknowledgement on alpha and beta", || {
            let (a, b) = (
                panic_event(on(0).0, on(0).1)?,
                panic_event(on(1).0, on(1).1)?,
            );
            Ok([a, b]
                .iter()
                .all(|e| e.as_ref().is_some_and(|e| e["acked_by"] == "root1")))
        })?;

        // Each action ran once, from alpha (its pid), and no other node ran one.
        let alpha_pid = nodes[0].2.pid().to_string();
        wait_until("the after-acknowledgement action", || {
            Ok(std::fs::read_to_string(&record)
                .unwrap_or_default()
                .contains("acked panicky"))
        })?;
        std::thread::sleep(Duration::from_secs(2));
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        ensure!(
            lines.len() == 2
                && lines.contains(&format!("raised panicky {alpha_pid}").as_str())
                && lines.contains(&format!("acked panicky {alpha_pid}").as_str()),
            "the actions must run once each, on alpha (pid {alpha_pid}):\n{text}"
        );

        // The live feed on beta (`mo --server … events --follow`, the event WebSocket) carries
        // an event alpha raises while it runs, naming alpha.
        let mut follow = std::process::Command::new(mo_testsupport::bin_path("mo")?)
            .args(["--server", on(1).0, "--token", on(1).1])
            .args(["events", "--follow", "--json", "--device", "panicky"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Error::Check(format!("mo events --follow on beta: {e}")))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = follow.stdout.take();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            if let Some(out) = stdout {
                for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        });
        // The follower is connected once its WebSocket is up; give it a moment, then print.
        std::thread::sleep(Duration::from_secs(1));
        std::fs::write(&trigger, b"")
            .map_err(|e| Error::Check(format!("write {}: {e}", trigger.display())))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        let live = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("Oops: again") {
                        break Some(serde_json::from_str::<Value>(&line).unwrap_or_default());
                    }
                    seen.push(line);
                }
                Err(_) => break None,
            }
        };
        let _ = follow.kill();
        let _ = follow.wait();
        ensure!(
            live.as_ref().is_some_and(|v| v["node"] == "alpha"),
            "beta's live event feed did not carry alpha's new event within 20 s: {live:?}, \
             other lines: {seen:?}"
        );

        // An audit entry made on beta is readable on alpha, naming beta.
        Cli::run_ok(
            &nodes[1].1,
            &["group", "add", "audited-on-beta", "--pattern", "x*"],
            None,
        )?;
        wait_until("beta's audit entry on alpha", || {
            let out = Cli::run_ok(
                &nodes[0].1,
                &["audit", "--action", "group.add", "--json"],
                None,
            )?;
            let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap_or_default();
            Ok(list.iter().any(|e| {
                e["node"] == "beta"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("audited-on-beta"))
            }))
        })?;
        let table = Cli::run_ok(&nodes[0].1, &["audit", "--action", "group.add"], None)?.stdout;
        ensure!(
            table.contains("NODE") && table.contains("beta"),
            "mo audit on alpha names beta's entry's node:\n{table}"
        );
        eprintln!("site events and audit checked in {:?}", started.elapsed());
        Ok(())
    });
}
