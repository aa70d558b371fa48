//! `--json` on the listings and reports that lacked it (issue 21 item 5): `group show`,
//! `usergroup show`, `role show`, `user key list`, `macro check` and `maintenance list`, on the
//! data directory and — where the API serves them — through `--server`; each output is parsed.

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{Error, Result, World, ensure, run_test};
use serde_json::Value;

/// A real ed25519 public key.
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFG5OTdOrp2Venb0BEZpQqrRSUEm2bplw8iOUz8Hj6FH json@mo";
/// Its fingerprint (`ssh-keygen -lf`).
const KEY_FINGERPRINT: &str = "SHA256:sZ6VOZDUoebgIK9Od3o+q/mB9RIVBLDLNO40omiUF30";

/// Run `mo ARGS` (which must succeed) and parse its standard output as JSON.
fn json(w: &World, args: &[&str]) -> Result<Value> {
    let out = w.mo_ok(args, None)?;
    serde_json::from_str(&out.stdout)
        .map_err(|e| Error::Check(format!("mo {args:?}: not JSON ({e}):\n{}", out.stdout)))
}

#[test]
fn shows_and_reports_print_json() {
    run_test("json-reports", |w| {
        w.add_device("web1", "sim://web1", &[])?;
        w.add_user("alice", "alice-pw")?;
        let key = w.dir().join("alice.pub");
        std::fs::write(&key, format!("{KEY}\n")).map_err(|e| Error::io("write key", e))?;
        w.mo_ok(
            &["user", "key", "add", "alice", &key.display().to_string()],
            None,
        )?;
        w.mo_ok(
            &["group", "add", "g1", "--member", "web1", "--pattern", "db*"],
            None,
        )?;
        w.mo_ok(&["usergroup", "add", "ops", "--member", "alice"], None)?;
        w.mo_ok(&["role", "add", "lister", "--allow", "list"], None)?;
        let good = w.dir().join("good.macro");
        std::fs::write(
            &good,
            "param user root\nexpect /login: $/ timeout=30s\nsendline ${user}\n",
        )
        .map_err(|e| Error::io("write macro", e))?;
        let bad = w.dir().join("bad.macro");
        std::fs::write(&bad, "expect /login: $/\nfrobnicate now\n")
            .map_err(|e| Error::io("write macro", e))?;
        w.mo_ok(
            &[
                "maintenance",
                "start",
                "web1",
                "--for",
                "1h",
                "--reason",
                "json test",
            ],
            None,
        )?;

        let g = json(w, &["group", "show", "g1", "--json"])?;
        ensure!(
            g["name"] == "g1"
                && g["members"] == serde_json::json!(["web1"])
                && g["patterns"] == serde_json::json!(["db*"])
                && g["devices"] == serde_json::json!(["web1"]),
            "group show --json: {g}"
        );
        let u = json(w, &["usergroup", "show", "ops", "--json"])?;
        ensure!(
            u["name"] == "ops" && u["members"] == serde_json::json!(["alice"]),
            "usergroup show --json: {u}"
        );
        let r = json(w, &["role", "show", "lister", "--json"])?;
        ensure!(
            r["name"] == "lister"
                && r["actions"] == serde_json::json!(["list"])
                && r["builtin"] == false,
            "role show --json: {r}"
        );
        let keys = json(w, &["user", "key", "list", "alice", "--json"])?;
        ensure!(
            keys[0]["fingerprint"] == KEY_FINGERPRINT
                && keys[0]["type"] == "ssh-ed25519"
                && keys[0]["comment"] == "json@mo",
            "user key list --json: {keys}"
        );
        let m = json(
            w,
            &["macro", "check", &good.display().to_string(), "--json"],
        )?;
        ensure!(
            m["ok"] == true && m["steps"] == 2 && m["parameters"][0]["name"] == "user",
            "macro check --json: {m}"
        );
        let failed = w.mo(
            &["macro", "check", &bad.display().to_string(), "--json"],
            None,
        )?;
        let report: Value = serde_json::from_str(&failed.stdout)
            .map_err(|e| Error::Check(format!("bad macro check --json: {e}: {}", failed.stdout)))?;
        ensure!(
            failed.status.code() == Some(1)
                && report["ok"] == false
                && report["errors"][0]
                    .as_str()
                    .is_some_and(|e| e.contains("line 2")),
            "macro check --json of a bad macro: {}",
            failed.combined()
        );
        let windows = json(w, &["maintenance", "list", "--json"])?;
        ensure!(
            windows[0]["target"] == "web1" && windows[0]["reason"] == "json test",
            "maintenance list --json: {windows}"
        );

        // Through the API: the same JSON.
        let api = start_daemon_with_http(w, &[])?;
        let token = add_token(w, "alice", "all")?;
        let server = |args: &[&str]| {
            let mut all = vec!["--server", api.base.as_str(), "--token", token.as_str()];
            all.extend_from_slice(args);
            json(w, &all)
        };
        let remote = server(&["maintenance", "list", "--json"])?;
        ensure!(
            remote[0]["target"] == "web1" && remote[0]["name"] == windows[0]["name"],
            "--server maintenance list --json: {remote}"
        );
        let remote = server(&["user", "key", "list", "alice", "--json"])?;
        ensure!(remote == keys, "--server user key list --json: {remote}");
        Ok(())
    });
}
