//! `mo group|usergroup|role|grant|token|secret|audit` on a data directory: changes land, bad
//! references are refused with one clear line, secrets never show, and every change is audited.

use std::path::Path;

use mo_testsupport::{Cli, Result, ensure, run_test};

fn check(dir: &Path) -> Result<()> {
    let ok = |args: &[&str], stdin: Option<&str>| Cli::run_ok(dir, args, stdin);
    ok(&["device", "add", "web01", "sim://web01"], None)?;
    ok(&["device", "add", "rack3-01", "sim://rack3-01"], None)?;
    ok(&["user", "add", "alice", "--password-stdin"], Some("pw\n"))?;
    ok(
        &[
            "group",
            "add",
            "rack3",
            "--pattern",
            "rack3-*",
            "--member",
            "web01",
        ],
        None,
    )?;
    let show = ok(&["group", "show", "rack3"], None)?;
    ensure!(
        show.stdout.contains("devices:  rack3-01 web01"),
        "group show:\n{}",
        show.combined()
    );
    ok(&["usergroup", "add", "ops", "--member", "alice"], None)?;
    ok(
        &[
            "role",
            "add",
            "powerops",
            "--allow",
            "power.status,power.control",
        ],
        None,
    )?;
    ok(&["grant", "add", "@ops", "operator", "rack3"], None)?;
    let list = ok(&["grant", "list"], None)?;
    ensure!(
        list.stdout.contains("@ops") && list.stdout.contains("operator"),
        "grant list:\n{}",
        list.combined()
    );

    let bad = Cli::run(dir, &["grant", "add", "alice", "nosuch", "rack3"], None)?;
    ensure!(
        !bad.success() && bad.stderr.trim() == "mo: unknown role `nosuch`",
        "bad grant:\n{}",
        bad.combined()
    );
    let in_use = Cli::run(dir, &["group", "rm", "rack3"], None)?;
    ensure!(
        !in_use.success() && in_use.stderr.contains("is used by 1 grant"),
        "group rm while granted:\n{}",
        in_use.combined()
    );

    ok(
        &["secret", "set", "web01", "password", "--stdin"],
        Some("hunter2\n"),
    )?;
    let kinds = ok(&["secret", "list", "web01"], None)?;
    ensure!(
        kinds.stdout.trim() == "password",
        "secret list:\n{}",
        kinds.combined()
    );
    let key = std::fs::metadata(dir.join("secret.key"))
        .map_err(|e| mo_testsupport::Error::Check(format!("secret.key: {e}")))?;
    use std::os::unix::fs::PermissionsExt;
    ensure!(key.permissions().mode() & 0o777 == 0o600, "secret.key mode");

    let token = ok(
        &[
            "token",
            "add",
            "alice",
            "--expires",
            "30d",
            "--scope",
            "list,spy",
        ],
        None,
    )?;
    let line = token.stdout.lines().next().unwrap_or_default().to_string();
    ensure!(
        line.starts_with("mo_") && line.len() == 3 + 16 + 1 + 64,
        "token: {line}"
    );
    let tokens = ok(&["token", "list"], None)?;
    ensure!(
        tokens.stdout.contains("active") && !tokens.stdout.contains(&line[20..]),
        "token list shows the secret or no active token:\n{}",
        tokens.combined()
    );

    let audit = ok(&["audit", "--json"], None)?;
    for action in [
        "group.add",
        "usergroup.add",
        "role.add",
        "grant.add",
        "secret.set",
        "token.add",
    ] {
        ensure!(
            audit.stdout.contains(&format!("\"action\": \"{action}\"")),
            "{action} not audited:\n{}",
            audit.stdout
        );
    }
    ensure!(
        !audit.stdout.contains("hunter2"),
        "the audit log holds a secret"
    );
    let failed = ok(&["audit", "--outcome", "failed"], None)?;
    ensure!(
        failed.stdout.contains("unknown role `nosuch`") && failed.stdout.contains("group.rm"),
        "failed changes not audited:\n{}",
        failed.stdout
    );
    Ok(())
}

#[test]
fn access_commands_change_the_store_and_are_audited() {
    run_test("access-cli", |w| check(w.data_dir()));
}
