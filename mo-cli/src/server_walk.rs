//! Every `mo` command with `MO_SERVER` set either reaches the daemon or refuses clearly, and
//! none creates a data directory (issue 21 item 5). The test walks the whole clap command tree,
//! so a new command is covered without touching it; it runs the real `mo` against a real `mod`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::CommandFactory;
use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{CmdOutput, World, bin_path, ensure, run_test, run_with_timeout, temp_dir};

use crate::cli::Cli;

/// A real ed25519 public key (its fingerprint is [`WALK_KEY_FINGERPRINT`]).
const WALK_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFG5OTdOrp2Venb0BEZpQqrRSUEm2bplw8iOUz8Hj6FH walk@mo";
/// `ssh-keygen -lf` of [`WALK_KEY`].
const WALK_KEY_FINGERPRINT: &str = "SHA256:sZ6VOZDUoebgIK9Od3o+q/mB9RIVBLDLNO40omiUF30";

/// Commands the API serves since issue 21 item 5 was finished: the walk asserts they reach the
/// daemon (the walker has no grants, so each is answered `denied`) and are not refused.
const SERVED_LATE: &[&str] = &[
    "group set",
    "group show",
    "usergroup add",
    "usergroup set",
    "usergroup rm",
    "usergroup list",
    "usergroup show",
    "role add",
    "role show",
    "role rm",
    "secret set",
    "secret rm",
    "secret list",
];

/// A leaf command: its words and its clap definition.
type Leaf = (Vec<String>, clap::Command);

/// Every command that can run: leaves, and commands whose subcommand is optional.
fn leaves(cmd: &clap::Command, path: &[String], out: &mut Vec<Leaf>) {
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .collect();
    if !path.is_empty() && (subs.is_empty() || !cmd.is_subcommand_required_set()) {
        out.push((path.to_vec(), cmd.clone()));
    }
    for sub in subs {
        let mut p = path.to_vec();
        p.push(sub.get_name().to_string());
        leaves(sub, &p, out);
    }
}

/// A plausible value for the argument `id`.
fn value_for(id: &str, input: &Path) -> String {
    match id {
        "url" => "sim://walk".into(),
        "file" | "what" | "files" | "source" | "path" | "input" => input.display().to_string(),
        "id" | "ids" => "1".into(),
        "regex" | "pattern" => "x".into(),
        "action" => "status".into(),
        "info" => "mem".into(),
        "kind" => "password".into(),
        "role" => "viewer".into(),
        "device_group" => "all".into(),
        "subject" | "user" => "walker".into(),
        "text" | "message" => "hello".into(),
        "severity" => "info".into(),
        "allow" => "list".into(),
        "command" => "uptime".into(),
        _ => "sim-a".into(),
    }
}

/// Minimal plausible arguments of a leaf: its required positionals and required options (and
/// with `every_positional` its optional positionals too, for a positional that is required
/// unless an option is given).
fn minimal_args(
    words: &[String],
    cmd: &clap::Command,
    input: &Path,
    every_positional: bool,
) -> Vec<String> {
    let mut args = words.to_vec();
    let mut positionals = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let wanted = arg.is_required_set() || (every_positional && arg.is_positional());
        if !wanted || matches!(id, "help" | "version") {
            continue;
        }
        if arg.is_positional() {
            positionals.push(value_for(id, input));
        } else if let Some(long) = arg.get_long() {
            args.push(format!("--{long}"));
            if arg.get_action().takes_values() {
                args.push(value_for(id, input));
            }
        }
    }
    // In declaration order, which is the command line's.
    args.extend(positionals);
    // Options a command needs that clap cannot mark as required.
    let extra: &[&str] = match words.join(" ").as_str() {
        // A wrong password (standard input): the daemon refuses it, nothing is stored.
        "login" => &["--user", "walker", "--password-stdin"],
        "user add" | "user passwd" => &["--password-stdin"],
        "secret set" => &["--stdin"],
        "device signal" => &["--dtr", "on"],
        _ => &[],
    };
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// Every path under `root`, to see that nothing was created.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            seen.insert(path);
        }
    }
    seen
}

/// Run `mo ARGS` with only `env` and a home in `home`, from `cwd`.
fn mo(home: &Path, cwd: &Path, env: &[(&str, &str)], args: &[String]) -> CmdOutput {
    mo_with_input(home, cwd, env, args, "walk-password\n")
}

/// [`mo`] with `stdin` as standard input.
fn mo_with_input(
    home: &Path,
    cwd: &Path,
    env: &[(&str, &str)],
    args: &[String],
    stdin: &str,
) -> CmdOutput {
    let mut cmd = Process::new(bin_path("mo").expect("the mo binary"));
    cmd.args(args).current_dir(cwd);
    for var in [
        "MO_DATA_DIR",
        "MO_SERVER",
        "MO_TOKEN",
        "MO_PROFILE",
        "MO_CA",
        "MO_PIN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home.join("home"))
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_STATE_HOME", home.join("xdg-state"))
        .env("XDG_CACHE_HOME", home.join("xdg-cache"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, Some(stdin.as_bytes()), Duration::from_secs(60))
        .expect("run mo within 60 s")
}

/// A sandbox home for `mo` (with `cwd` in it), and what was in it at the start.
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
    before: BTreeSet<PathBuf>,
}

impl Sandbox {
    /// A fresh sandbox named after `label`.
    pub fn new(label: &str) -> mo_testsupport::Result<Sandbox> {
        let dir = temp_dir(label)?;
        std::fs::create_dir_all(dir.path().join("cwd")).unwrap();
        let before = tree(dir.path());
        Ok(Sandbox { dir, before })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Whether nothing appeared in it (or went) since it was made.
    pub fn unchanged(&self) -> bool {
        tree(self.path()) == self.before
    }
}

/// `mo` with `MO_SERVER` set to a daemon at `base`, from a sandbox `home` (its `cwd` below),
/// as the holder of a token.
pub(crate) struct Remote<'a> {
    /// The daemon's base URL.
    pub base: &'a str,
    /// The sandbox (see [`mo`]).
    pub home: &'a Path,
}

impl Remote<'_> {
    /// `mo ARGS` with `TOKEN`, `stdin` as its standard input.
    pub fn run(&self, token: &str, args: &[&str], stdin: &str) -> CmdOutput {
        let env = [("MO_SERVER", self.base), ("MO_TOKEN", token)];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        mo_with_input(self.home, &self.home.join("cwd"), &env, &args, stdin)
    }

    /// [`Remote::run`] with `stdin`, which must succeed: its standard output.
    pub fn ok_in(&self, token: &str, args: &[&str], stdin: &str) -> mo_testsupport::Result<String> {
        let out = self.run(token, args, stdin);
        ensure!(
            out.status.success(),
            "`mo {}` failed:\n{}",
            args.join(" "),
            out.stderr
        );
        Ok(out.stdout)
    }

    /// [`Remote::ok_in`] with the default standard input of [`mo`].
    pub fn ok(&self, token: &str, args: &[&str]) -> mo_testsupport::Result<String> {
        self.ok_in(token, args, "walk-password\n")
    }

    /// [`Remote::run`], which must fail saying `why`.
    pub fn fails(&self, token: &str, args: &[&str], why: &str) -> mo_testsupport::Result<()> {
        let out = self.run(token, args, "walk-password\n");
        ensure!(
            !out.status.success() && out.stderr.contains(why),
            "`mo {}` should fail with `{why}` (exit {:?}):\n{}{}",
            args.join(" "),
            out.status.code(),
            out.stdout,
            out.stderr
        );
        Ok(())
    }
}

/// The site of the access tests: devices `sim-a` and `web1`; `root` (an admin), `bob` (no
/// grant) and `carol` (`viewer` on `all`) with a token each; the daemon serving HTTP.
pub(crate) struct AccessSite {
    /// The daemon's API.
    pub api: HttpApi,
    /// A token of `root`.
    pub root_token: String,
    /// A token of `bob`.
    pub bob_token: String,
    /// A token of `carol`.
    pub carol_token: String,
}

/// Set up [`AccessSite`] in `w`.
pub(crate) fn access_site(w: &mut World) -> mo_testsupport::Result<AccessSite> {
    w.add_device("sim-a", "sim://sim-a", &[])?;
    w.add_device("web1", "sim://web1", &[])?;
    w.add_user("root", "rootpw")?;
    w.add_user_with_role("bob", "bobpw", None)?;
    w.add_user_with_role("carol", "carolpw", Some(("viewer", "all")))?;
    Ok(AccessSite {
        root_token: add_token(w, "root", "all")?,
        bob_token: add_token(w, "bob", "all")?,
        carol_token: add_token(w, "carol", "all")?,
        api: start_daemon_with_http(w, &[])?,
    })
}

/// A TCP relay in front of the daemon that counts the connections it relays: a command
/// "reached the daemon" when the count grew while it ran (it only gets an answer through here).
struct Relay {
    addr: std::net::SocketAddr,
    count: Arc<AtomicUsize>,
}

impl Relay {
    fn start(daemon: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        let daemon = daemon.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&daemon) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    pipe(c, server);
                    pipe(s, client);
                }
            }
        });
        Relay { addr, count }
    }

    fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

#[test]
fn every_command_reaches_the_daemon_or_refuses_and_no_data_dir_appears() {
    run_test("server-walk", |w| {
        w.add_device("sim-a", "sim://sim-a", &[])?;
        let api = start_daemon_with_http(w, &[])?;
        let sandbox = temp_dir("walk-home")?;
        let root = sandbox.path();
        for d in [
            "home",
            "xdg-data",
            "xdg-config",
            "xdg-state",
            "xdg-cache",
            "cwd",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let input = root.join("input.txt");
        std::fs::write(&input, "walk\n").unwrap();
        let key_file = root.join("walk.pub");
        std::fs::write(&key_file, format!("{WALK_KEY}\n")).unwrap();
        let before = tree(root);
        let mut all = Vec::new();
        leaves(&Cli::command(), &[], &mut all);
        ensure!(
            all.len() > 40,
            "only {} commands found in the tree",
            all.len()
        );
        // A user without grants: every request is authenticated (no failed-login throttling)
        // and nothing is allowed (no console attaches, nothing changes).
        w.mo_ok(
            &["user", "add", "walker", "--password-stdin"],
            Some("walkpw\n"),
        )?;
        let token = add_token(w, "walker", "all")?;
        let relay = Relay::start(&format!("127.0.0.1:{}", api.port));
        let server = format!("http://{}", relay.addr);
        let env = [("MO_SERVER", server.as_str()), ("MO_TOKEN", token.as_str())];
        let mut served_late = 0;
        for (words, cmd) in &all {
            let mut args = minimal_args(words, cmd, &input, false);
            // `mo user key add` reads a real public key (a bad one is refused before sending).
            if words == &["user", "key", "add"] {
                args.iter_mut()
                    .filter(|a| **a == input.display().to_string())
                    .for_each(|a| *a = key_file.display().to_string());
            }
            // `mo login URL` logs in to the daemon under test.
            if words == &["login"] {
                args.iter_mut()
                    .filter(|a| *a == "sim://walk")
                    .for_each(|a| a.clone_from(&server));
            }
            let mut seen = relay.connections();
            let mut out = mo(root, &root.join("cwd"), &env, &args);
            if out.status.code() == Some(2) {
                args = minimal_args(words, cmd, &input, true);
                seen = relay.connections();
                out = mo(root, &root.join("cwd"), &env, &args);
            }
            let reached = relay.connections() > seen;
            let code = out.status.code();
            ensure!(
                code != Some(2),
                "`mo {}`: the test's arguments are wrong (usage error):\n{}",
                args.join(" "),
                out.stderr
            );
            // A refusal names --server and says where the command works instead.
            let refused =
                out.stderr.contains("--server") && out.stderr.contains("the daemon's host");
            ensure!(
                reached || refused,
                "`mo {}` with MO_SERVER neither reached the daemon nor refused clearly \
                 (exit {code:?}):\nstdout: {}\nstderr: {}",
                args.join(" "),
                out.stdout,
                out.stderr
            );
            if SERVED_LATE.contains(&words.join(" ").as_str()) {
                ensure!(
                    reached && !refused && out.stderr.contains("denied"),
                    "`mo {}` with MO_SERVER should be served by the API (and denied to a user \
                     without grants), not refused (exit {code:?}):\n{}",
                    args.join(" "),
                    out.stderr
                );
                served_late += 1;
            }
            let after = tree(root);
            ensure!(
                after == before,
                "`mo {}` with MO_SERVER created files: {:?}",
                args.join(" "),
                after.difference(&before).collect::<Vec<_>>()
            );
        }
        ensure!(
            served_late == SERVED_LATE.len(),
            "the walk met {served_late} of the {} commands in SERVED_LATE",
            SERVED_LATE.len()
        );
        Ok(())
    });
}

#[test]
fn admin_commands_go_through_the_api() {
    run_test("server-admin", |w| {
        w.add_device("sim-a", "sim://sim-a", &[])?;
        w.add_user("root", "rootpw")?;
        let token = add_token(w, "root", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        let sandbox = Sandbox::new("admin-home")?;
        let root = sandbox.path();
        let remote = Remote {
            base: &api.base,
            home: root,
        };
        let run = |args: &[&str]| remote.run(&token, args, "walk-password\n");
        let ok = |args: &[&str]| remote.ok(&token, args);
        ok(&[
            "device",
            "add",
            "walk1",
            "sim://walk1",
            "--description",
            "from the API",
        ])?;
        let shown = ok(&["device", "show", "walk1", "--json"])?;
        ensure!(shown.contains("from the API"), "device show: {shown}");
        // The daemon's store has it: the data directory sees it.
        let local = w.mo_ok(&["device", "list"], None)?;
        ensure!(
            local.stdout.contains("walk1"),
            "not in the store:\n{}",
            local.stdout
        );
        ok(&["device", "rm", "walk1"])?;
        let local = w.mo_ok(&["device", "list"], None)?;
        ensure!(
            !local.stdout.contains("walk1"),
            "still in the store:\n{}",
            local.stdout
        );
        ok(&["user", "add", "bob", "--password-stdin"])?;
        let users = ok(&["user", "list", "--json"])?;
        ensure!(users.contains("\"bob\""), "user list: {users}");
        let out = ok(&["user", "passwd", "bob", "--password-stdin"])?;
        ensure!(
            out.trim() == "changed the password of user `bob`",
            "user passwd: {out}"
        );
        let key_file = root.join("bob.pub");
        std::fs::write(&key_file, format!("{WALK_KEY}\n")).unwrap();
        let out = ok(&["user", "key", "add", "bob", &key_file.display().to_string()])?;
        ensure!(
            out.trim() == format!("added ssh-ed25519 {WALK_KEY_FINGERPRINT} to user `bob`"),
            "user key add: {out}"
        );
        let again = run(&["user", "key", "add", "bob", &key_file.display().to_string()]);
        ensure!(
            !again.status.success() && again.stderr.contains("already registered"),
            "a key added twice: {}",
            again.stderr
        );
        let out = ok(&["user", "key", "list", "bob"])?;
        ensure!(
            out.contains(WALK_KEY_FINGERPRINT) && out.contains("walk@mo"),
            "user key list: {out}"
        );
        let local = w.mo_ok(&["user", "key", "list", "bob"], None)?;
        ensure!(
            local.stdout.contains(WALK_KEY_FINGERPRINT),
            "not in the store:\n{}",
            local.stdout
        );
        let out = ok(&["user", "key", "rm", "bob", WALK_KEY_FINGERPRINT])?;
        ensure!(
            out.trim() == format!("removed key {WALK_KEY_FINGERPRINT} from user `bob`"),
            "user key rm: {out}"
        );
        let out = ok(&["user", "key", "list", "bob"])?;
        ensure!(
            out.trim() == "user `bob` has no SSH keys",
            "user key list: {out}"
        );
        let missing = run(&["user", "key", "rm", "bob", WALK_KEY_FINGERPRINT]);
        ensure!(
            !missing.status.success() && missing.stderr.contains("unknown SSH key"),
            "rm of a missing key: {}",
            missing.stderr
        );
        std::fs::remove_file(&key_file).unwrap();
        let out = ok(&["user", "rm", "bob"])?;
        ensure!(out.trim() == "removed user `bob`", "user rm: {out}");
        let users = ok(&["user", "list", "--json"])?;
        ensure!(!users.contains("\"bob\""), "user list after rm: {users}");
        let missing = run(&["user", "rm", "bob"]);
        ensure!(
            !missing.status.success() && missing.stderr.contains("bob"),
            "user rm of a missing user: {}",
            missing.stderr
        );
        ok(&["user", "add", "bob", "--password-stdin"])?;
        let audit = w.mo_ok(&["audit", "--user", "root"], None)?.stdout;
        ensure!(
            audit.contains("user.passwd") && audit.contains("user.rm"),
            "user changes not audited as root's:\n{audit}"
        );
        let roles = ok(&["role", "list", "--json"])?;
        ensure!(roles.contains("\"operator\""), "role list: {roles}");
        let events = ok(&["events", "--json"])?;
        ensure!(
            events.trim_start().starts_with('['),
            "events --json: {events}"
        );
        ok(&["macro", "list", "--json"])?;
        let script = w.write_script("hello.macro", "sendline echo hello\n")?;
        w.mo_ok(
            &["macro", "add", "hello", &script.display().to_string()],
            None,
        )?;
        let plan = ok(&["macro", "play", "hello", "sim-*", "--dry-run"])?;
        ensure!(plan.contains("sim-a"), "macro play --dry-run: {plan}");
        let refused = run(&["audit"]);
        ensure!(
            refused
                .stderr
                .contains("mo audit does not work with --server"),
            "audit: {}",
            refused.stderr
        );
        let missing = run(&["events", "ack", "999999"]);
        ensure!(!missing.status.success(), "acked a missing event");
        ensure!(sandbox.unchanged(), "files appeared in the sandbox");
        Ok(())
    });
}

#[test]
fn groups_and_grants_go_through_the_api_and_apply_at_once() {
    run_test("server-grants", |w| {
        let AccessSite {
            api,
            root_token,
            bob_token,
            carol_token,
        } = access_site(w)?;
        let sandbox = Sandbox::new("grants-home")?;
        let remote = Remote {
            base: &api.base,
            home: sandbox.path(),
        };
        let ok = |token: &str, args: &[&str]| remote.ok(token, args);
        let fails = |token: &str, args: &[&str], why: &str| remote.fails(token, args, why);
        // Bob has no grant: he sees nothing.
        fails(&bob_token, &["device", "show", "web1"], "web1")?;
        let out = ok(
            &root_token,
            &[
                "group",
                "add",
                "webs",
                "--pattern",
                "web*",
                "--member",
                "x1",
            ],
        )?;
        ensure!(
            out.trim() == "added device group `webs`",
            "group add: {out}"
        );
        let groups: serde_json::Value =
            serde_json::from_str(&ok(&root_token, &["group", "list", "--json"])?).unwrap();
        ensure!(
            groups[0]["name"] == "all"
                && groups[0]["every_device"] == true
                && groups[1]["name"] == "webs"
                && groups[1]["patterns"] == serde_json::json!(["web*"])
                && groups[1]["members"] == serde_json::json!(["x1"]),
            "group list --json: {groups}"
        );
        let table = ok(&root_token, &["group", "list"])?;
        ensure!(
            table.contains("(every device)") && table.contains("web*"),
            "group list: {table}"
        );
        let out = ok(&root_token, &["grant", "add", "bob", "viewer", "webs"])?;
        ensure!(
            out.trim() == "granted role viewer on group webs for user bob",
            "grant add: {out}"
        );
        let grants: serde_json::Value =
            serde_json::from_str(&ok(&root_token, &["grant", "list", "--json"])?).unwrap();
        ensure!(
            grants.as_array().is_some_and(|l| l.contains(
                &serde_json::json!({"subject": "bob", "role": "viewer", "device_group": "webs"})
            )),
            "grant list --json: {grants}"
        );
        // In force for Bob's next request: web1 is his to see, sim-a still is not.
        let shown = ok(&bob_token, &["device", "show", "web1", "--json"])?;
        ensure!(shown.contains("sim://web1"), "device show as bob: {shown}");
        fails(&bob_token, &["device", "show", "sim-a"], "sim-a")?;
        // The daemon's store has them: the data directory sees them, and audited the change.
        let local = w.mo_ok(&["grant", "list"], None)?;
        ensure!(
            local.stdout.contains("webs"),
            "not in the store:\n{}",
            local.stdout
        );
        // A viewer changes nothing.
        for args in [
            &["group", "add", "more", "--pattern", "x*"][..],
            &["group", "rm", "webs"][..],
            &["grant", "add", "carol", "admin", "all"][..],
            &["grant", "rm", "bob", "viewer", "webs"][..],
            &["group", "list"][..],
            &["grant", "list"][..],
            &["user", "rm", "bob"][..],
            &["user", "passwd", "bob", "--password-stdin"][..],
            &["user", "key", "list", "bob"][..],
            &["user", "key", "rm", "bob", WALK_KEY_FINGERPRINT][..],
        ] {
            fails(&carol_token, args, "denied")?;
        }
        fails(&root_token, &["group", "rm", "webs"], "is used by 1 grant")?;
        fails(&root_token, &["group", "rm", "all"], "is built in")?;
        fails(&root_token, &["group", "add", "all"], "already exists")?;
        fails(
            &root_token,
            &["grant", "add", "nobody", "viewer", "webs"],
            "nobody",
        )?;
        fails(
            &root_token,
            &["group", "add", "bad", "--pattern", "re:("],
            "`re:(`",
        )?;
        let out = ok(&root_token, &["grant", "rm", "bob", "viewer", "webs"])?;
        ensure!(
            out.trim() == "removed role viewer on group webs for user bob",
            "grant rm: {out}"
        );
        fails(&bob_token, &["device", "show", "web1"], "web1")?;
        let out = ok(&root_token, &["group", "rm", "webs"])?;
        ensure!(
            out.trim() == "removed device group `webs`",
            "group rm: {out}"
        );
        let groups = ok(&root_token, &["group", "list", "--json"])?;
        ensure!(!groups.contains("webs"), "group list after rm: {groups}");
        let audit = w.mo_ok(&["audit", "--user", "root"], None)?.stdout;
        ensure!(
            ["group.add", "grant.add", "grant.rm", "group.rm"]
                .iter()
                .all(|a| audit.contains(a)),
            "the changes are not in the audit log as root's:\n{audit}"
        );
        ensure!(sandbox.unchanged(), "files appeared in the sandbox");
        Ok(())
    });
}

#[test]
fn login_stores_a_profile_that_profile_selects_and_logout_revokes() {
    run_test("cli-login", |w| {
        w.add_device("sim-a", "sim://sim-a", &[])?;
        w.add_user("alice", "alicepw")?;
        let api = start_daemon_with_http(w, &[])?;
        let sandbox = temp_dir("login-home")?;
        let root = sandbox.path();
        std::fs::create_dir_all(root.join("cwd")).unwrap();
        let cwd = root.join("cwd");
        let run = |env: &[(&str, &str)], args: &[&str], stdin: &str| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            mo_with_input(root, &cwd, env, &args, stdin)
        };
        let out = run(
            &[],
            &[
                "login",
                &api.base,
                "--user",
                "alice",
                "--password-stdin",
                "--profile",
                "lab",
            ],
            "alicepw\n",
        );
        ensure!(out.status.success(), "mo login: {}", out.stderr);
        let config = root.join("xdg-config/mo/config.toml");
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        ensure!(
            text.contains("[profiles.lab]") && text.contains(&api.base),
            "config.toml after login:\n{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        ensure!(mode == 0o600, "config.toml has mode {mode:o}");
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("token = \""))
            .map(|t| t.trim_end_matches('"').to_string())
            .unwrap_or_default();
        ensure!(token.starts_with("mo_"), "no token in config.toml:\n{text}");
        // --profile and MO_PROFILE select it; no data directory is involved.
        let devices = run(&[], &["--profile", "lab", "devices"], "");
        ensure!(
            devices.status.success() && devices.stdout.contains("sim-a"),
            "mo --profile lab devices: {}{}",
            devices.stdout,
            devices.stderr
        );
        let tokens = run(&[("MO_PROFILE", "lab")], &["token", "list", "--json"], "");
        ensure!(
            tokens.status.success() && tokens.stdout.contains("\"alice\""),
            "MO_PROFILE=lab mo token list: {}{}",
            tokens.stdout,
            tokens.stderr
        );
        let wrong = run(
            &[],
            &["login", &api.base, "--user", "alice", "--password-stdin"],
            "nope\n",
        );
        ensure!(
            !wrong.status.success() && wrong.stderr.contains("authentication"),
            "a wrong password: {}",
            wrong.stderr
        );
        let out = run(&[], &["--profile", "lab", "logout"], "");
        ensure!(out.status.success(), "mo logout: {}", out.stderr);
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        ensure!(!text.contains("[profiles.lab]"), "still there:\n{text}");
        let gone = run(&[], &["--profile", "lab", "devices"], "");
        ensure!(
            !gone.status.success() && gone.stderr.contains("no profile `lab`"),
            "after logout: {}",
            gone.stderr
        );
        let revoked = run(
            &[
                ("MO_SERVER", api.base.as_str()),
                ("MO_TOKEN", token.as_str()),
            ],
            &["devices"],
            "",
        );
        ensure!(
            !revoked.status.success() && revoked.stderr.contains("authentication"),
            "the logged-out token still works: {}{}",
            revoked.stdout,
            revoked.stderr
        );
        ensure!(
            !root.join("xdg-data").exists() && !cwd.join("mo-data").exists(),
            "a data directory appeared"
        );
        Ok(())
    });
}

#[test]
fn config_import_prints_its_plan_as_json() {
    run_test("import-json", |w| {
        w.add_device("sim-a", "sim://sim-a", &[])?;
        let file = w.dir().join("site.toml");
        let path = file.display().to_string();
        w.mo_ok(&["config", "export", "-o", &path], None)?;
        w.mo_ok(&["device", "rm", "sim-a"], None)?;
        let out = w.mo_ok(&["config", "import", &path, "--dry-run", "--json"], None)?;
        let report: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| {
            mo_testsupport::Error::Check(format!("not JSON ({e}):\n{}", out.stdout))
        })?;
        ensure!(
            report["adds"] == 1 && report["dry_run"] == true && report["applied"] == false,
            "import --dry-run --json: {report}"
        );
        ensure!(
            report["plan"].as_array().is_some_and(|l| l
                .iter()
                .any(|l| l.as_str().is_some_and(|t| t.contains("sim-a")))),
            "the plan does not name sim-a: {report}"
        );
        let out = w.mo_ok(&["config", "import", &path, "--json"], None)?;
        ensure!(
            out.stdout.contains("\"applied\": true"),
            "import --json: {}",
            out.stdout
        );
        Ok(())
    });
}
