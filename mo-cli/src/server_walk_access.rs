//! With `MO_SERVER`: `mo group set|show`, `mo usergroup`, `mo role add|show|rm` and `mo secret`
//! go through the daemon's API (issue 21 item 5) — the same texts as on the daemon's host, the
//! change in the daemon's store and in force for the next request, a viewer denied every one,
//! and a secret's value nowhere but sealed in the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mo_testsupport::{ensure, run_test};

use crate::server_walk::{AccessSite, Remote, Sandbox, access_site};

/// A secret value that must appear nowhere but (sealed) in the store.
const SECRET: &str = "walk-s3cret-Qx7";

#[test]
fn access_and_secrets_go_through_the_api_and_apply_at_once() {
    run_test("server-access", |w| {
        let AccessSite {
            api,
            root_token,
            bob_token,
            carol_token,
        } = access_site(w)?;
        let sandbox = Sandbox::new("access-home")?;
        let remote = Remote {
            base: &api.base,
            home: sandbox.path(),
        };
        let ok_in = |token: &str, args: &[&str], stdin: &str| remote.ok_in(token, args, stdin);
        let ok = |token: &str, args: &[&str]| remote.ok(token, args);
        let fails = |token: &str, args: &[&str], why: &str| remote.fails(token, args, why);
        // What the data directory on the daemon's host says.
        let local =
            |args: &[&str]| -> mo_testsupport::Result<String> { Ok(w.mo_ok(args, None)?.stdout) };

        let viewer_role = local(&["role", "show", "viewer"])?;

        // Device groups: set and show.
        ok(&root_token, &["group", "add", "webs", "--member", "x1"])?;
        let out = ok(
            &root_token,
            &[
                "group",
                "set",
                "webs",
                "--add-member",
                "web1",
                "--rm-member",
                "x1",
                "--add-pattern",
                "sim-*",
            ],
        )?;
        ensure!(
            out.trim() == "changed device group `webs`",
            "group set: {out}"
        );
        let shown = ok(&root_token, &["group", "show", "webs"])?;
        ensure!(
            shown.contains("members:  web1\n")
                && shown.contains("patterns: sim-*\n")
                && shown.contains("devices:  sim-a web1\n"),
            "group show: {shown}"
        );
        ensure!(
            shown == local(&["group", "show", "webs"])?,
            "group show differs from the daemon's host"
        );
        fails(
            &root_token,
            &["group", "set", "webs", "--add-pattern", "re:("],
            "`re:(`",
        )?;
        fails(&root_token, &["group", "show", "nogroup"], "nogroup")?;

        // User groups: a grant to @ops is in force for Bob at once, and out of force as soon
        // as he leaves the group.
        let out = ok(&root_token, &["usergroup", "add", "ops", "--member", "bob"])?;
        ensure!(
            out.trim() == "added user group `ops`",
            "usergroup add: {out}"
        );
        let list: serde_json::Value =
            serde_json::from_str(&ok(&root_token, &["usergroup", "list", "--json"])?).unwrap();
        ensure!(
            list == serde_json::json!([{"name": "ops", "members": ["bob"]}]),
            "usergroup list --json: {list}"
        );
        let table = ok(&root_token, &["usergroup", "list"])?;
        ensure!(
            table == local(&["usergroup", "list"])?,
            "usergroup list differs from the daemon's host:\n{table}"
        );
        let shown = ok(&root_token, &["usergroup", "show", "ops"])?;
        ensure!(
            shown == "group:   ops\nmembers: bob\n",
            "usergroup show: {shown}"
        );
        fails(&bob_token, &["device", "show", "web1"], "web1")?;
        ok(&root_token, &["grant", "add", "@ops", "viewer", "webs"])?;
        ok(&bob_token, &["device", "show", "web1"])?;
        let out = ok(&root_token, &["usergroup", "set", "ops", "--rm", "bob"])?;
        ensure!(
            out.trim() == "changed user group `ops`",
            "usergroup set: {out}"
        );
        fails(&bob_token, &["device", "show", "web1"], "web1")?;
        ok(&root_token, &["usergroup", "set", "ops", "--add", "bob"])?;
        ok(&bob_token, &["device", "show", "web1"])?;
        fails(
            &root_token,
            &["usergroup", "set", "ops", "--add", "nobody"],
            "nobody",
        )?;
        fails(
            &root_token,
            &["usergroup", "rm", "ops"],
            "is used by 1 grant",
        )?;
        ok(&root_token, &["grant", "rm", "@ops", "viewer", "webs"])?;
        let out = ok(&root_token, &["usergroup", "rm", "ops"])?;
        ensure!(
            out.trim() == "removed user group `ops`",
            "usergroup rm: {out}"
        );
        fails(&root_token, &["usergroup", "show", "ops"], "ops")?;
        ensure!(
            !local(&["usergroup", "list"])?.contains("ops"),
            "ops is still in the store"
        );

        // Roles: a redefinition takes Bob's right away at once.
        let out = ok(
            &root_token,
            &[
                "role",
                "add",
                "peek",
                "--allow",
                "power.status",
                "--allow",
                "list",
            ],
        )?;
        ensure!(
            out.trim() == "role `peek` allows list,power.status",
            "role add: {out}"
        );
        let shown = ok(&root_token, &["role", "show", "peek"])?;
        ensure!(
            shown == local(&["role", "show", "peek"])?
                && shown == "role:    peek\nactions: list,power.status\n",
            "role show: {shown}"
        );
        ok(&root_token, &["grant", "add", "bob", "peek", "all"])?;
        ok(&bob_token, &["device", "show", "sim-a"])?;
        ok(
            &root_token,
            &["role", "add", "peek", "--allow", "power.status"],
        )?;
        fails(&bob_token, &["device", "show", "sim-a"], "sim-a")?;
        fails(&root_token, &["role", "rm", "peek"], "is used by 1 grant")?;
        fails(
            &root_token,
            &["role", "add", "bad", "--allow", "nope"],
            "nope",
        )?;
        fails(&root_token, &["role", "rm", "viewer"], "is built in")?;
        let shown = ok(&root_token, &["role", "show", "admin"])?;
        ensure!(
            shown.contains("(admin implies every action)"),
            "role show admin: {shown}"
        );
        ok(&root_token, &["grant", "rm", "bob", "peek", "all"])?;
        let out = ok(&root_token, &["role", "rm", "peek"])?;
        ensure!(out.trim() == "removed role `peek`", "role rm: {out}");
        fails(&root_token, &["role", "show", "peek"], "peek")?;

        // Secrets: set from standard input, listed by kind, sealed in the store.
        let out = ok_in(
            &root_token,
            &["secret", "set", "sim-a", "password", "--stdin"],
            &format!("{SECRET}\nsecond line\n"),
        )?;
        ensure!(
            out.trim() == "stored the password of device `sim-a` (encrypted)",
            "secret set: {out}"
        );
        let key = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n-----END OPENSSH PRIVATE KEY-----\n"
        );
        ok_in(
            &root_token,
            &["secret", "set", "sim-a", "private_key", "--stdin"],
            &key,
        )?;
        let listed = ok(&root_token, &["secret", "list", "sim-a"])?;
        ensure!(
            listed == "password\nprivate_key\n" && listed == local(&["secret", "list", "sim-a"])?,
            "secret list: {listed}"
        );
        let json = ok(&root_token, &["secret", "list", "sim-a", "--json"])?;
        ensure!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
                == serde_json::json!(["password", "private_key"]),
            "secret list --json: {json}"
        );
        let out = ok(&root_token, &["secret", "list", "web1"])?;
        ensure!(
            out.trim() == "device `web1` has no secrets",
            "secret list: {out}"
        );
        let dir = mo_store::DataDir::existing(w.data_dir()).unwrap();
        let store = dir.open_store().unwrap();
        let sealed_key = dir.secret_key().unwrap();
        let password = store
            .secret(&sealed_key, "sim-a", mo_store::SecretKind::Password)
            .unwrap();
        ensure!(
            password.as_ref().map(|s| s.expose()) == Some(SECRET),
            "the stored password is not the first line of standard input"
        );
        let private = store
            .secret(&sealed_key, "sim-a", mo_store::SecretKind::PrivateKey)
            .unwrap();
        ensure!(
            private.as_ref().map(|s| s.expose()) == Some(key.as_str()),
            "the stored private key is not all of standard input"
        );
        fails(
            &root_token,
            &["secret", "set", "sim-a", "password"],
            "--stdin",
        )?;
        fails(
            &root_token,
            &["secret", "set", "nodev", "password", "--stdin"],
            "nodev",
        )?;
        fails(&root_token, &["secret", "list", "nodev"], "nodev")?;
        let out = ok(&root_token, &["secret", "rm", "sim-a", "private_key"])?;
        ensure!(
            out.trim() == "removed the private_key of device `sim-a`",
            "secret rm: {out}"
        );
        fails(
            &root_token,
            &["secret", "rm", "sim-a", "private_key"],
            "sim-a/private_key",
        )?;

        // A viewer changes nothing, and reads none of it.
        for args in [
            &["group", "set", "webs", "--add-member", "x2"][..],
            &["group", "show", "webs"][..],
            &["usergroup", "add", "more"][..],
            &["usergroup", "set", "ops", "--add", "carol"][..],
            &["usergroup", "rm", "ops"][..],
            &["usergroup", "list"][..],
            &["usergroup", "show", "ops"][..],
            &["role", "add", "viewer", "--allow", "admin"][..],
            &["role", "rm", "admin"][..],
            &["role", "show", "viewer"][..],
            &["secret", "set", "sim-a", "password", "--stdin"][..],
            &["secret", "rm", "sim-a", "password"][..],
            &["secret", "list", "sim-a"][..],
        ] {
            fails(&carol_token, args, "denied")?;
        }
        ensure!(
            local(&["secret", "list", "sim-a"])? == "password\n"
                && local(&["role", "show", "viewer"])? == viewer_role,
            "a viewer changed a secret or a role"
        );
        ensure!(
            !local(&["group", "show", "webs"])?.contains("x2"),
            "a viewer changed a group"
        );

        let audit = local(&["audit", "--user", "root"])?;
        ensure!(
            [
                "group.set",
                "usergroup.add",
                "usergroup.set",
                "usergroup.rm",
                "role.add",
                "role.rm",
                "secret.set",
                "secret.rm",
            ]
            .iter()
            .all(|a| audit.contains(a)),
            "the changes are not in the audit log as root's:\n{audit}"
        );
        let everything = local(&["audit"])?;
        let log = w.daemon()?.log_text();
        ensure!(
            !everything.contains(SECRET) && !log.contains(SECRET),
            "the secret's value is in the audit log or the daemon's log"
        );
        ensure!(sandbox.unchanged(), "files appeared in the sandbox");
        Ok(())
    });
}

/// `mo --server device set` changes the device in the daemon's store and in force (a new
/// description, a console port that accepts connections) with the local command's text; ports
/// need a global admin, a viewer may change nothing, and the body may not rename the device.
#[test]
fn device_set_goes_through_the_api_and_ports_need_a_global_admin() {
    run_test("server-device-set", |w| {
        w.add_device("web1", "sim://web1", &[])?;
        w.add_user("root", "rootpw")?;
        w.add_user_with_role("carol", "carolpw", Some(("viewer", "all")))?;
        w.mo_ok(&["group", "add", "webs", "--member", "web1"], None)?;
        w.add_user_with_role("dave", "davepw", Some(("admin", "webs")))?;
        let root_token = mo_testsupport::http::add_token(w, "root", "all")?;
        let carol_token = mo_testsupport::http::add_token(w, "carol", "all")?;
        let dave_token = mo_testsupport::http::add_token(w, "dave", "all")?;
        let api = mo_testsupport::http::start_daemon_with_http(w, &[])?;
        let sandbox = Sandbox::new("device-set-home")?;
        let remote = Remote {
            base: &api.base,
            home: sandbox.path(),
        };
        let shown = |w: &mut mo_testsupport::World| -> mo_testsupport::Result<serde_json::Value> {
            let out = w.mo_ok(&["device", "show", "web1", "--json"], None)?.stdout;
            Ok(serde_json::from_str(&out).unwrap())
        };

        // An admin of the device's group changes what is not a port.
        let out = remote.ok(
            &dave_token,
            &[
                "device",
                "set",
                "web1",
                "--description",
                "rack 4",
                "--replay-lines",
                "7",
            ],
        )?;
        ensure!(out.trim() == "changed device `web1`", "device set: {out}");
        let stored = shown(w)?;
        ensure!(
            stored["settings"]["description"] == "rack 4"
                && stored["settings"]["replay_lines"] == 7
                && stored["url"] == "sim://web1",
            "device set did not reach the store: {stored}"
        );
        // Ports open listeners on the daemon's host: only a global admin sets them.
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let listen = format!("127.0.0.1:{port}/raw");
        remote.fails(
            &dave_token,
            &["device", "set", "web1", "--listen", &listen],
            "only `admin` on the built-in group `all` may set them",
        )?;
        ensure!(
            shown(w)?["settings"]["listen"] == serde_json::json!([]),
            "a refused port was stored"
        );
        remote.ok(&root_token, &["device", "set", "web1", "--listen", &listen])?;
        let stored = shown(w)?;
        ensure!(
            stored["settings"]["listen"] == serde_json::json!([listen])
                && stored["settings"]["description"] == "rack 4",
            "the port was not stored, or other settings were lost: {stored}"
        );
        // The console's new port is open (the daemon applies the change before it answers).
        ensure!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "the device's new port {port} does not accept connections"
        );
        remote.ok(&root_token, &["device", "set", "web1", "--no-listen"])?;
        ensure!(
            shown(w)?["settings"]["listen"] == serde_json::json!([]),
            "--no-listen did not reach the store"
        );
        // A viewer changes nothing; an unknown device and a bad setting are named.
        remote.fails(
            &carol_token,
            &["device", "set", "web1", "--description", "x"],
            "web1",
        )?;
        ensure!(
            shown(w)?["settings"]["description"] == "rack 4",
            "a viewer's change was stored"
        );
        remote.fails(
            &root_token,
            &["device", "set", "nodev", "--description", "x"],
            "nodev",
        )?;
        remote.fails(
            &root_token,
            &["device", "set", "web1", "--listen", "127.0.0.1:99999/raw"],
            "99999",
        )?;
        // The audit log has the change as dave's.
        let audit = w.mo_ok(&["audit", "--tail", "50"], None)?.stdout;
        ensure!(
            audit
                .lines()
                .any(|l| l.contains("dave") && l.contains("device.set")),
            "no device.set audit row for dave:\n{audit}"
        );
        Ok(())
    });
}
