//! Issue 13, authorization items 1, 2, 4 and 5 (docs/security.md), through the real doors:
//! reqwest against `mod --http`, the real OpenSSH client against the SSH front door.
//!
//! - Device admins cannot point the daemon at its own host: `exec:`, `unix:` and network
//!   addresses (console or power) need a global admin or a site `[[allow]]` entry; refusals are
//!   audited and name the missing entry. A group whose pattern matches every name is not `all`.
//! - Visibility before anything: `ack`, `log …` and denial notices do not reveal (or write into)
//!   devices the user may not list; macros are shown only to users who may run them; `/metrics`
//!   needs credentials unless `--metrics-public`; `^Ec i` shows the address only to admins.
//! - Macros have owners: recording over another user's, the site's or a scheduled macro is
//!   refused; the scheduler does not play a macro whose owner lost the grant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{Error, Login, Result, WAIT, World, ensure, run_test};
use serde_json::Value;

/// A console that prints a kernel panic line (an event) and then echoes.
const PANICKY: &str = "#!/bin/sh\necho 'Kernel panic - not syncing: planted for the test'\nwhile IFS= read -r line; do echo \"got: $line\"; done\n";

struct Api {
    http: HttpApi,
    client: reqwest::blocking::Client,
}

impl Api {
    fn new(http: HttpApi) -> Api {
        Api {
            http,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// `method path` with an optional bearer token and JSON body: (status, body as JSON, or as
    /// a JSON string when it is not JSON).
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m, self.http.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .map_err(|e| Error::Check(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_string)
}

/// Poll `mo ARGS` until its output holds `needle`; returns the output.
fn wait_mo(w: &World, args: &[&str], needle: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = w.mo_ok(args, None)?;
        if out.stdout.contains(needle) {
            return Ok(out.stdout);
        }
        ensure!(
            Instant::now() < deadline,
            "no {needle:?} in `mo {}`:\n{}",
            args.join(" "),
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn device_admins_cannot_reach_the_host_and_star_groups_are_not_all() {
    run_test("authz-reach", |w| {
        let wrap = w.write_script("wrap.sh", mo_testsupport::ECHO_CONSOLE)?;
        w.add_device("lab-0", "sim://lab-0", &[])?;
        w.mo_ok(&["group", "add", "lab", "--pattern", "lab-*"], None)?;
        w.mo_ok(&["group", "add", "everything", "--pattern", "*"], None)?;
        w.add_user("root1", "root-pw")?;
        let dana_ssh = w.add_user_with_role("dana", "dana-pw", Some(("admin", "lab")))?;
        w.add_user_with_role("star", "star-pw", Some(("admin", "everything")))?;
        let root = add_token(w, "root1", "all")?;
        let dana = add_token(w, "dana", "all")?;
        let star = add_token(w, "star", "all")?;
        let api = Api::new(start_daemon_with_http(w, &[])?);
        let site = w.data_dir().join("site.toml");
        let site_shown = site.display().to_string();

        // A device admin of `lab` is refused every address that reaches the host, and the
        // refusal names the [[allow]] entry that is missing and where it would go.
        let refused = [
            (
                serde_json::json!({"name": "lab-sh", "url": "exec:///bin/sh?arg=-i"}),
                "[[allow]] program = \"/bin/sh\" entry",
            ),
            (
                serde_json::json!({"name": "lab-dock", "url": "unix:///var/run/docker.sock"}),
                "[[allow]] path = \"/var/run/docker.sock\" entry",
            ),
            (
                serde_json::json!({"name": "lab-tcp", "url": "tcp://10.0.0.5:22"}),
                "[[allow]] host = \"10.0.0.5\" entry",
            ),
            (
                serde_json::json!({"name": "lab-cs", "url": "cs://192.0.2.7/3?profile=ser2net&via=rfc2217&base=7000"}),
                "[[allow]] host = \"192.0.2.7\" entry",
            ),
            (
                serde_json::json!({"name": "lab-pw", "url": "sim://lab-pw", "power": ["exec:///bin/sh?arg=-c&arg=id"]}),
                "[[allow]] program = \"/bin/sh\" entry",
            ),
        ];
        for (body, needle) in &refused {
            let name = body["name"].as_str().unwrap();
            let (status, reply) =
                api.call("POST", "/api/v1/devices", Some(&dana), Some(body.clone()))?;
            let msg = message(&reply);
            ensure!(
                status == 403 && msg.contains(needle) && msg.contains(&site_shown),
                "dana POST {body}: {status} {msg}"
            );
            ensure!(
                msg.contains("needs a global admin"),
                "{name}: the refusal does not say who may: {msg}"
            );
            let (status, _) =
                api.call("GET", &format!("/api/v1/devices/{name}"), Some(&root), None)?;
            ensure!(
                status == 404,
                "{name} was stored after the refusal ({status})"
            );
        }
        // What reaches nothing is fine for a device admin.
        let (status, reply) = api.call(
            "POST",
            "/api/v1/devices",
            Some(&dana),
            Some(serde_json::json!({"name": "lab-sim", "url": "sim://lab-sim"})),
        )?;
        ensure!(status == 201, "dana POST sim: {status} {reply}");

        // A group whose pattern matches every name is not the built-in `all`: star is admin of
        // every device by name, but no global admin (item 5).
        let (status, reply) = api.call(
            "POST",
            "/api/v1/devices",
            Some(&star),
            Some(serde_json::json!({"name": "star-sh", "url": "exec:///bin/sh"})),
        )?;
        ensure!(status == 403, "star POST exec: {status} {reply}");
        for path in ["/api/v1/users", "/api/v1/roles"] {
            let (status, reply) = api.call("GET", path, Some(&star), None)?;
            ensure!(
                status == 403 && message(&reply).contains("only a grant on the built-in group all"),
                "star GET {path}: {status} {reply}"
            );
        }
        let (status, reply) = api.call(
            "POST",
            "/api/v1/users",
            Some(&star),
            Some(serde_json::json!({"name": "mallory2", "password": "pw-pw-pw-pw"})),
        )?;
        ensure!(status == 403, "star POST user: {status} {reply}");

        // A global admin may; so may a device admin once the site file allows the program
        // (read again without a restart).
        let (status, reply) = api.call(
            "POST",
            "/api/v1/devices",
            Some(&root),
            Some(serde_json::json!({"name": "root-cat", "url": "exec:///bin/cat"})),
        )?;
        ensure!(status == 201, "root POST exec: {status} {reply}");
        std::fs::write(
            &site,
            format!(
                "[[allow]]\nprogram = \"{}\"\n\n[[allow]]\nhost = \"127.0.0.1\"\nports = \"7000-7999\"\n",
                wrap.display()
            ),
        )
        .map_err(|e| Error::io("writing site.toml", e))?;
        let (status, reply) = api.call(
            "POST",
            "/api/v1/devices",
            Some(&dana),
            Some(serde_json::json!({"name": "lab-wrap", "url": format!("exec://{}", wrap.display())})),
        )?;
        ensure!(status == 201, "dana POST allowed program: {status} {reply}");
        let (status, reply) = api.call(
            "POST",
            "/api/v1/devices",
            Some(&dana),
            Some(serde_json::json!({"name": "lab-t1", "url": "telnet://127.0.0.1:7001"})),
        )?;
        ensure!(status == 201, "dana POST allowed host: {status} {reply}");
        let (status, reply) = api.call(
            "POST",
            "/api/v1/devices",
            Some(&dana),
            Some(serde_json::json!({"name": "lab-t2", "url": "telnet://127.0.0.1"})),
        )?;
        ensure!(
            status == 403 && message(&reply).contains("ports including 23"),
            "dana POST host on a port outside the entry: {status} {reply}"
        );

        // The SSH shell has no command that adds devices.
        let out = dana_ssh.run(
            Login::Shell,
            &["device", "add", "lab-x", "exec:///bin/sh"],
            None,
        )?;
        ensure!(
            out.stdout.contains("unknown command `device`"),
            "{}",
            out.combined()
        );

        // Every refusal is in the audit log with the reason.
        let audit = w.mo_ok(&["audit", "--user", "dana", "--denied"], None)?;
        for (body, needle) in &refused {
            ensure!(
                audit.stdout.contains(body["name"].as_str().unwrap())
                    && audit.stdout.contains(needle),
                "no refusal of {} in the audit log:\n{}",
                body["name"],
                audit.stdout
            );
        }
        ensure!(audit.stdout.contains("device.add"), "{}", audit.stdout);
        Ok(())
    });
}

#[test]
fn the_doors_hide_devices_before_anything_else() {
    run_test("authz-visibility", |w| {
        let panicky = w.write_script("panicky.sh", PANICKY)?;
        w.add_device("secret1", &format!("exec://{}", panicky.display()), &[])?;
        w.add_echo_device("pub1", &[])?;
        w.mo_ok(&["group", "add", "mine", "--member", "pub1"], None)?;
        let root = w.add_user("root1", "root-pw")?;
        let eve = w.add_user_with_role("eve", "eve-pw", Some(("operator", "mine")))?;
        let macros = w.data_dir().join("macros");
        std::fs::create_dir_all(&macros)
            .and_then(|()| std::fs::write(macros.join("hello.macro"), "sendline hello\n"))
            .map_err(|e| Error::io("writing the macro", e))?;
        let root_t = add_token(w, "root1", "all")?;
        let eve_t = add_token(w, "eve", "all")?;
        let api = Api::new(start_daemon_with_http(w, &[])?);
        w.wait_listed(&eve, "pub1", true, WAIT)?;

        // An event of secret1 (the kernel panic line).
        let events = wait_mo(w, &["events", "--device", "secret1"], "Kernel panic")?;
        let id = events
            .lines()
            .find(|l| l.contains("Kernel panic"))
            .and_then(|l| l.strip_prefix('#'))
            .and_then(|l| l.split_whitespace().next())
            .ok_or_else(|| Error::Check(format!("no event id in:\n{events}")))?
            .to_string();

        // `ack` of another device's event looks like a missing event; `log` of a device eve may
        // not list is an unknown device — and neither writes anything into secret1's log.
        let out = eve.run(Login::Shell, &["ack", &id], None)?;
        ensure!(
            out.stdout.contains(&format!("no event #{id}")) && !out.stdout.contains("secret1"),
            "eve ack:\n{}",
            out.combined()
        );
        for args in [
            vec!["log", "note", "secret1", "planted-by-eve"],
            vec!["log", "show", "secret1"],
            vec!["log", "search", "secret1", "panic"],
        ] {
            let out = eve.run(Login::Shell, &args, None)?;
            ensure!(
                !out.status.success()
                    && out.stdout.contains("unknown device `secret1`")
                    && !out.stdout.contains("Kernel"),
                "eve {}:\n{}",
                args.join(" "),
                out.combined()
            );
        }
        let out = eve.run(Login::Shell, &["spy", "secret1"], None)?;
        ensure!(out.stdout.contains("unknown device"), "{}", out.combined());
        // Barrier: a note by root after eve's attempts; the log up to it holds nothing of eve.
        root.run(
            Login::Shell,
            &["log", "note", "secret1", "barrier-after-eve"],
            None,
        )?
        .ok()?;
        let log = wait_mo(w, &["log", "show", "secret1"], "barrier-after-eve")?;
        ensure!(
            !log.contains("eve denied") && !log.contains("planted-by-eve"),
            "eve's attempts left traces in secret1's log:\n{log}"
        );
        // A denial on a device eve may see is still written into its timeline.
        let out = eve.run(Login::Shell, &["force", "pub1"], None)?;
        ensure!(out.stdout.contains("denied"), "{}", out.combined());
        wait_mo(w, &["log", "show", "pub1"], "eve denied")?;

        // Macros: eve may run none, so sees none; root sees them.
        for args in [vec!["macro", "list"], vec!["macro", "show", "hello"]] {
            let out = eve.run(Login::Shell, &args, None)?;
            ensure!(
                out.stdout.contains("denied") && !out.stdout.contains("hello"),
                "eve {}:\n{}",
                args.join(" "),
                out.combined()
            );
        }
        let (status, body) = api.call("GET", "/api/v1/macros", Some(&eve_t), None)?;
        ensure!(status == 403, "eve GET macros: {status} {body}");
        let (status, body) = api.call("GET", "/api/v1/macros", Some(&root_t), None)?;
        ensure!(
            status == 200 && body.to_string().contains("hello"),
            "root GET macros: {status} {body}"
        );

        // /metrics needs credentials and shows only what the caller may list.
        let (status, body) = api.call("GET", "/metrics", None, None)?;
        ensure!(status == 401, "anonymous /metrics: {status} {body}");
        let (status, body) = api.call("GET", "/metrics", Some(&eve_t), None)?;
        let text = body.as_str().unwrap_or_default();
        ensure!(
            status == 200 && text.contains("device=\"pub1\"") && !text.contains("secret1"),
            "eve /metrics: {status}\n{text}"
        );
        let (_, body) = api.call("GET", "/metrics", Some(&root_t), None)?;
        ensure!(
            body.as_str()
                .unwrap_or_default()
                .contains("device=\"secret1\""),
            "root /metrics:\n{body}"
        );

        // ^Ec i: the address only for those who may change the device.
        let pane = w.terminal("eve-info", &eve, Login::Shell, &["console", "pub1"])?;
        pane.wait_for("attached", WAIT)?;
        pane.send_keys(&["C-e", "c", "i"])?;
        let shown = pane.wait_for("you are", WAIT)?;
        ensure!(
            !shown.contains("exec://") && !shown.contains("console-pub1.sh"),
            "eve sees the address:\n{shown}"
        );
        pane.send_keys(&["C-e", "c", "."])?;
        let pane = w.terminal("root-info", &root, Login::Shell, &["console", "pub1"])?;
        pane.wait_for("attached", WAIT)?;
        pane.send_keys(&["C-e", "c", "i"])?;
        let shown = pane.wait_for("you are", WAIT)?;
        ensure!(
            shown.contains("via exec://"),
            "root does not see the address:\n{shown}"
        );
        pane.send_keys(&["C-e", "c", "."])?;

        // --metrics-public serves every device to anyone.
        w.daemon()?.stop()?;
        let api = Api::new(start_daemon_with_http(w, &["--metrics-public"])?);
        let (status, body) = api.call("GET", "/metrics", None, None)?;
        ensure!(
            status == 200
                && body
                    .as_str()
                    .unwrap_or_default()
                    .contains("# TYPE mo_consoles "),
            "public /metrics: {status} {body}"
        );
        Ok(())
    });
}

#[test]
fn macros_have_owners_and_the_scheduler_checks_them() {
    run_test("authz-macro-owners", |w| {
        w.add_echo_device("m1", &[])?;
        w.mo_ok(&["group", "add", "g1", "--member", "m1"], None)?;
        let root = w.add_user("root1", "root-pw")?;
        let alice = w.add_user_with_role("alice", "alice-pw", Some(("admin", "g1")))?;
        let bob = w.add_user_with_role("bob", "bob-pw", Some(("admin", "g1")))?;
        let tick = w.write_script(
            "tick.macro",
            "sendline tick-${device}\nexpect /got: tick-/ timeout=5s\n",
        )?;
        w.mo_ok(&["macro", "add", "tick", &tick.display().to_string()], None)?;
        w.start_daemon(&[])?;
        w.wait_listed(&alice, "m1", true, WAIT)?;

        // alice records a macro: it is hers.
        let pane = w.terminal(
            "rec",
            &alice,
            Login::Shell,
            &["macro", "record", "alices", "m1"],
        )?;
        pane.wait_for("attached read-write", WAIT)?;
        pane.send_line("alice-step")?;
        pane.wait_for("got: alice-step", WAIT)?;
        pane.send_keys(&["C-e", "c", "."])?;
        pane.wait_for("macro alices written", WAIT)?;
        let owner = std::fs::read_to_string(w.data_dir().join("macros/alices.owner"))
            .map_err(|e| Error::io("reading alices.owner", e))?;
        ensure!(owner.trim() == "alice", "owner file: {owner:?}");

        // bob may not record over it, nor over the site's macro; root may try.
        let out = bob.run(Login::Shell, &["macro", "record", "alices", "m1"], None)?;
        ensure!(
            out.stdout.contains("macro `alices` belongs to alice"),
            "{}",
            out.combined()
        );
        let out = bob.run(Login::Shell, &["macro", "record", "tick", "m1"], None)?;
        ensure!(
            out.stdout.contains("belongs to the site"),
            "{}",
            out.combined()
        );
        let out = root.run(Login::Shell, &["macro", "record", "alices", "m1"], None)?;
        ensure!(!out.stdout.contains("denied"), "{}", out.combined());

        // alice loses her grant; the schedule plays her macro and the site's on m1.
        w.daemon()?.stop()?;
        w.mo_ok(&["grant", "rm", "alice", "admin", "g1"], None)?;
        let schedule = w.write_script(
            "schedule.toml",
            "[[schedule]]\ncron = \"* * * * * *\"\nmacro = \"alices\"\ntargets = [\"m1\"]\n\n\
             [[schedule]]\ncron = \"* * * * * *\"\nmacro = \"tick\"\ntargets = [\"m1\"]\n",
        )?;
        let schedule = schedule.display().to_string();
        w.start_daemon(&["--schedule", &schedule])?;
        // A scheduled name cannot be recorded by a non-admin, even after its file is gone.
        w.mo_ok(&["macro", "rm", "tick"], None)?;
        ensure!(
            !w.data_dir().join("macros/tick.macro").exists(),
            "tick.macro still there"
        );
        let out = bob.run(Login::Shell, &["macro", "record", "tick", "m1"], None)?;
        ensure!(
            out.stdout
                .contains("macro `tick` is played by the schedule"),
            "{}",
            out.combined()
        );
        ensure!(
            !w.data_dir().join("macros/tick.macro").exists(),
            "bob recorded the scheduled macro"
        );
        // The scheduler skipped alice's macro with a note; barrier: a later note by root.
        let log = wait_mo(w, &["log", "show", "m1"], "macro alices not played on m1")?;
        ensure!(
            log.contains("its owner alice may not run macros on m1"),
            "{log}"
        );
        root.run(Login::Shell, &["log", "note", "m1", "owner-barrier"], None)?
            .ok()?;
        let log = wait_mo(w, &["log", "show", "m1"], "owner-barrier")?;
        ensure!(
            !log.contains("schedule alices: m1: done") && !log.contains("macro alices: started"),
            "alice's macro ran without her grant:\n{log}"
        );
        let audit = w.mo_ok(&["audit", "--user", "schedule", "--denied"], None)?;
        ensure!(
            audit.stdout.contains("not played on m1"),
            "{}",
            audit.stdout
        );
        let audit = w.mo_ok(&["audit", "--user", "bob", "--denied"], None)?;
        ensure!(
            audit.stdout.contains("macro.record") && audit.stdout.contains("belongs to alice"),
            "{}",
            audit.stdout
        );
        Ok(())
    });
}
