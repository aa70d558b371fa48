//! With `--server` (`MO_SERVER`): the administration commands the daemon's API serves —
//! `device add|show|rm`, `user add|list|rm|passwd|key`, `role`, `group`, `usergroup`, `grant`,
//! `secret`, `token add|list|rm`, `events` (list, `--follow`, `ack`), `macro list|play`, `gang`,
//! `log search|verify` — and, for every other command, a clear refusal naming it.
//! Group, role, grant and secret changes go through the same store calls as on the daemon's
//! host, are audited there as the API caller, and access changes are in force for the next
//! request.
//! Nothing here opens or creates a local data directory.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use mo_client::{Client, LogQuery, Value};
use serde_json::json;

use crate::access::{
    GrantCommand, GroupCommand, RoleCommand, SecretCommand, TokenCommand, UserGroupCommand,
};
use crate::cli::{AddSettings, Cli, Command, DeviceCommand, KeyCommand, LogCommand, UserCommand};
use crate::events::EventsCommand;
use crate::macros::MacroCommand;
use crate::table::Table;

/// The command's words (`device set`, `grant add`; aliases as their command's name), from this
/// process's command line.
pub fn command_path() -> String {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let Ok(matches) = Cli::command().try_get_matches_from(argv) else {
        return "this command".into();
    };
    let mut words = Vec::new();
    let mut current = &matches;
    while let Some((name, sub)) = current.subcommand() {
        words.push(name.to_string());
        current = sub;
    }
    if words.is_empty() {
        "this command".into()
    } else {
        words.join(" ")
    }
}

/// The refusal for a command that needs the data directory.
pub fn refusal(path: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "mo {path} does not work with --server: it needs the data directory; run it on the \
         daemon's host (without --server and MO_SERVER)"
    )
}

/// True if `command` goes through the daemon's API here.
fn served(command: &Command) -> bool {
    match command {
        Command::Device(c) => matches!(
            c,
            DeviceCommand::Add { .. }
                | DeviceCommand::Set { .. }
                | DeviceCommand::Show { .. }
                | DeviceCommand::Rm { .. }
        ),
        Command::User(c) => matches!(
            c,
            UserCommand::Add { .. }
                | UserCommand::List { .. }
                | UserCommand::Rm { .. }
                | UserCommand::Passwd { .. }
                | UserCommand::Key(_)
        ),
        Command::Role(_)
        | Command::Group(_)
        | Command::UserGroup(_)
        | Command::Grant(_)
        | Command::Secret(_) => true,
        Command::Token(_) => true,
        Command::Events(args) => !matches!(args.command, Some(EventsCommand::Raise(_))),
        Command::Macro(c) => matches!(c, MacroCommand::List { .. } | MacroCommand::Play { .. }),
        Command::Gang(_) => true,
        Command::Log(c) => matches!(c, LogCommand::Search { .. } | LogCommand::Verify { .. }),
        _ => false,
    }
}

/// Run `command` through the API at `server`, or refuse it naming it.
pub fn run(
    server: &str,
    token: Option<&str>,
    trust: mo_client::Trust,
    command: &Command,
    stdin: &mut dyn BufRead,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    if !served(command) {
        return Err(refusal(&command_path()));
    }
    // Refusals that need no daemon come first, before anything is read or sent.
    if let Command::User(UserCommand::Add { ssh_key, .. }) = command
        && !ssh_key.is_empty()
    {
        bail!(
            "mo user add --ssh-key does not work with --server: the API takes a password only; \
             add the user with --password-stdin, then its keys with `mo user key add`"
        );
    }
    let client = Client::with_trust(server, token.unwrap_or_default(), trust)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(&client, command, stdin, out))
}

async fn run_async(
    client: &Client,
    command: &Command,
    stdin: &mut dyn BufRead,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode> {
    match command {
        Command::Device(DeviceCommand::Add {
            name,
            url,
            settings,
        }) => {
            let body = device_settings(settings)?;
            let device = client.add_device(name, url, body).await?;
            writeln!(out, "added device `{}` ({})", device.name, device.url)?;
        }
        Command::Device(DeviceCommand::Set { name, settings }) => {
            set_device(client, name, settings).await?;
            writeln!(out, "changed device `{name}`")?;
        }
        Command::Device(DeviceCommand::Show { name, json }) => {
            let device = client.device(name).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&device)?)?;
            } else {
                show_device(&device, out)?;
            }
        }
        Command::Device(DeviceCommand::Rm { name }) => {
            client.remove_device(name).await?;
            writeln!(
                out,
                "removed device `{name}` (its record log stays on disk)"
            )?;
        }
        Command::User(UserCommand::Add {
            name,
            password_stdin,
            ..
        }) => {
            if !password_stdin {
                bail!(
                    "user `{name}` would have no way to log in: give a password on standard \
                     input with --password-stdin (echo 'PASSWORD' | mo user add {name} \
                     --password-stdin)"
                );
            }
            let password = crate::user::read_password(stdin)?;
            client.add_user(name, Some(&password)).await?;
            writeln!(out, "added user `{name}` with a password")?;
        }
        Command::User(UserCommand::Rm { name }) => {
            client.remove_user(name).await?;
            writeln!(out, "removed user `{name}`")?;
        }
        Command::User(UserCommand::Passwd {
            name,
            password_stdin,
        }) => {
            if !password_stdin {
                bail!(
                    "give the new password on standard input with --password-stdin \
                     (echo 'PASSWORD' | mo user passwd {name} --password-stdin)"
                );
            }
            let password = crate::user::read_password(stdin)?;
            client.set_password(name, &password).await?;
            writeln!(out, "changed the password of user `{name}`")?;
        }
        Command::User(UserCommand::Key(KeyCommand::Add { name, file })) => {
            for key in crate::user::read_keys(file, stdin)? {
                let added = client.add_ssh_key(name, &key.to_openssh()).await?;
                writeln!(
                    out,
                    "added {} {} to user `{name}`",
                    added.key_type, added.fingerprint
                )?;
            }
        }
        Command::User(UserCommand::Key(KeyCommand::List { name, json })) => {
            crate::user::write_keys(name, &client.ssh_keys(name).await?, *json, out)?;
        }
        Command::User(UserCommand::Key(KeyCommand::Rm { name, fingerprint })) => {
            client.remove_ssh_key(name, fingerprint).await?;
            writeln!(out, "removed key {fingerprint} from user `{name}`")?;
        }
        Command::User(UserCommand::List { json }) => {
            let users = client.users().await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&users)?)?;
            } else {
                let mut table = Table::new(&["NAME", "PASSWORD", "SSH KEYS"]);
                for u in &users {
                    let password = if u.has_password { "yes" } else { "no" };
                    table.row(vec![
                        u.name.clone(),
                        password.into(),
                        u.ssh_keys.to_string(),
                    ]);
                }
                table.write(out)?;
            }
        }
        Command::Role(RoleCommand::List { json }) => {
            let roles = client.roles().await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&roles)?)?;
            } else {
                let mut table = Table::new(&["ROLE", "ACTIONS", "BUILT IN"]);
                for r in &roles {
                    let builtin = if r.builtin { "yes" } else { "no" };
                    table.row(vec![r.name.clone(), r.actions.join(" "), builtin.into()]);
                }
                table.write(out)?;
            }
        }
        Command::Group(GroupCommand::Add {
            name,
            member,
            pattern,
        }) => {
            client.add_group(name, member, pattern).await?;
            writeln!(out, "added device group `{name}`")?;
        }
        Command::Group(GroupCommand::Rm { name }) => {
            client.remove_group(name).await?;
            writeln!(out, "removed device group `{name}`")?;
        }
        Command::Group(GroupCommand::List { json }) => {
            crate::access::write_groups(&client.groups().await?, *json, out)?;
        }
        Command::Group(GroupCommand::Set {
            name,
            add_member,
            rm_member,
            add_pattern,
            rm_pattern,
        }) => {
            let change = mo_client::DeviceGroupChange {
                add_members: add_member.clone(),
                rm_members: rm_member.clone(),
                add_patterns: add_pattern.clone(),
                rm_patterns: rm_pattern.clone(),
            };
            client.change_group(name, &change).await?;
            writeln!(out, "changed device group `{name}`")?;
        }
        Command::Group(GroupCommand::Show { name, json }) => {
            let g = client.group(name).await?;
            crate::access::write_group(&g.name, &g.members, &g.patterns, &g.devices, *json, out)?;
        }
        Command::UserGroup(command) => user_group(client, command, out).await?,
        Command::Role(RoleCommand::Add { name, allow }) => {
            let actions = crate::access::parse_actions(allow)?;
            let names: Vec<String> = actions.iter().map(|a| a.name().to_string()).collect();
            let role = client.set_role(name, &names).await?;
            crate::access::write_role_set(name, &role.actions.join(","), out)?;
        }
        Command::Role(RoleCommand::Show { name, json: true }) => {
            let role = client.role(name).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&role)?)?;
        }
        Command::Role(RoleCommand::Show { name, json: false }) => {
            let role = client.role(name).await?;
            let actions: Vec<&str> = role.actions.iter().map(String::as_str).collect();
            crate::access::write_role(&role.name, &actions, out)?;
        }
        Command::Role(RoleCommand::Rm { name }) => {
            client.remove_role(name).await?;
            writeln!(out, "removed role `{name}`")?;
        }
        Command::Secret(command) => secret(client, command, stdin, out).await?,
        Command::Grant(GrantCommand::Add {
            subject,
            role,
            device_group,
        }) => {
            let grant = crate::access::make_grant(subject, role.clone(), device_group.clone())?;
            client.add_grant(subject, role, device_group).await?;
            writeln!(out, "granted {grant}")?;
        }
        Command::Grant(GrantCommand::Rm {
            subject,
            role,
            device_group,
        }) => {
            let grant = crate::access::make_grant(subject, role.clone(), device_group.clone())?;
            client.remove_grant(subject, role, device_group).await?;
            writeln!(out, "removed {grant}")?;
        }
        Command::Grant(GrantCommand::List { json }) => {
            crate::access::write_grants(&client.grants().await?, *json, out)?;
        }
        Command::Events(args) => return crate::events_remote::run(client, args, out).await,
        Command::Token(TokenCommand::Add {
            user,
            expires,
            scope,
        }) => {
            let new = client
                .add_token(Some(user), Some(scope), expires.as_deref())
                .await?;
            writeln!(out, "{}", new.token)?;
            writeln!(
                out,
                "token {} for `{user}` (scope {}, expires {}); store it now, it is not shown again",
                new.info.id,
                new.info.scope,
                new.info.expires_at.as_deref().unwrap_or("never")
            )?;
        }
        Command::Token(TokenCommand::List { user, json }) => {
            let list = client.tokens(user.as_deref()).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                let mut table =
                    Table::new(&["ID", "USER", "SCOPE", "EXPIRES", "LAST USED", "STATE"]);
                for t in list {
                    table.row(vec![
                        t.id,
                        t.user,
                        t.scope,
                        t.expires_at.unwrap_or_else(|| "never".into()),
                        t.last_used_at.unwrap_or_else(|| "never".into()),
                        t.state,
                    ]);
                }
                table.write(out)?;
            }
        }
        Command::Token(TokenCommand::Rm { id }) => {
            client.revoke_token(id).await?;
            writeln!(out, "revoked token {id}")?;
        }
        Command::Gang(args) => return crate::automation_cli::gang(client, args, out).await,
        Command::Macro(MacroCommand::Play {
            name,
            targets,
            args,
            dry_run,
            json,
        }) => {
            return crate::automation_cli::play(client, name, targets, args, *dry_run, *json, out)
                .await;
        }
        Command::Macro(MacroCommand::List { json }) => {
            let names = client.macros().await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&names)?)?;
            } else if names.is_empty() {
                writeln!(out, "no macros")?;
            } else {
                for name in &names {
                    writeln!(out, "{name}")?;
                }
            }
        }
        Command::Log(LogCommand::Search {
            name,
            regex,
            since,
            until,
            json,
            ..
        }) => {
            let mut query = LogQuery::default();
            query.since = since.clone();
            query.until = until.clone();
            let hits = client.log_search(name, regex, &query).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&hits)?)?;
            } else {
                for hit in &hits {
                    writeln!(out, "{} {}", hit.time, hit.line)?;
                }
            }
            if hits.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Log(LogCommand::Verify {
            name,
            json,
            replicas,
        }) => {
            let report = if *replicas {
                client.log_verify_replicas(name).await?
            } else {
                client.log_verify(name).await?
            };
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                writeln!(
                    out,
                    "{name}: {} records in {} segments: {}",
                    report.records,
                    report.segments,
                    if report.ok { "intact" } else { "PROBLEMS" }
                )?;
                for p in &report.problems {
                    writeln!(out, "  problem: {p}")?;
                }
                for w in &report.warnings {
                    writeln!(out, "  warning: {w}")?;
                }
            }
            if !report.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        _ => bail!("internal error: a command the API does not serve reached it"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `mo usergroup …` through the API, with the local command's texts.
async fn user_group(
    client: &Client,
    command: &UserGroupCommand,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    match command {
        UserGroupCommand::Add { name, member } => {
            client.add_user_group(name, member).await?;
            writeln!(out, "added user group `{name}`")?;
        }
        UserGroupCommand::Set { name, add, rm } => {
            client.change_user_group(name, add, rm).await?;
            writeln!(out, "changed user group `{name}`")?;
        }
        UserGroupCommand::Rm { name } => {
            client.remove_user_group(name).await?;
            writeln!(out, "removed user group `{name}`")?;
        }
        UserGroupCommand::List { json } => {
            crate::access::write_user_groups(&client.user_groups().await?, *json, out)?;
        }
        UserGroupCommand::Show { name, json } => {
            crate::access::write_user_group(&client.user_group(name).await?, *json, out)?;
        }
    }
    Ok(())
}

/// `mo secret …` through the API, with the local command's texts: the value is read from
/// standard input as on the daemon's host, and sent once, over the API's transport.
async fn secret(
    client: &Client,
    command: &SecretCommand,
    stdin: &mut dyn BufRead,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    match command {
        SecretCommand::Set {
            device,
            kind,
            stdin: from_stdin,
        } => {
            let kind: mo_store::SecretKind = kind.parse()?;
            let value = crate::access::read_secret(device, kind, *from_stdin, stdin)?;
            client.set_secret(device, kind.name(), &value).await?;
            writeln!(out, "{}", crate::access::secret_stored(device, kind))?;
        }
        SecretCommand::Rm { device, kind } => {
            let kind: mo_store::SecretKind = kind.parse()?;
            client.remove_secret(device, kind.name()).await?;
            writeln!(out, "removed the {kind} of device `{device}`")?;
        }
        SecretCommand::List { device, json } => {
            let kinds = client.secrets(device).await?;
            crate::access::write_secret_kinds(device, &kinds, *json, out)?;
        }
    }
    Ok(())
}

/// `mo device show` as text, from the API's answer.
fn show_device(device: &mo_client::Device, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "name: {}", device.name)?;
    writeln!(out, "url: {}", device.url)?;
    writeln!(out, "state: {}", device.state)?;
    writeln!(out, "viewers: {}", device.viewers)?;
    if !device.groups.is_empty() {
        writeln!(out, "groups: {}", device.groups.join(" "))?;
    }
    if let Some(d) = &device.description {
        writeln!(out, "description: {d}")?;
    }
    if let Some(e) = &device.error {
        writeln!(out, "error: {e}")?;
    }
    for (key, value) in crate::signal::api_rows(device) {
        writeln!(out, "{key}: {value}")?;
    }
    if let Some(settings) = &device.settings
        && let Value::Object(map) = serde_json::to_value(settings)?
    {
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            writeln!(out, "{key}: {text}")?;
        }
    }
    Ok(())
}

/// The body of `POST /api/v1/devices` for `mo device add` options.
fn device_settings(s: &AddSettings) -> Result<Value> {
    let mut body = json!({
        "on_demand": s.on_demand,
        "replay_lines": s.replay_lines,
        "allow_join": !s.no_join,
        "trust_host_key": s.trust_host_key,
        "log_secrets": s.log_secrets,
    });
    if let Some(escape) = &s.escape {
        body["escape"] = json!(escape);
    }
    if !s.breaks.is_empty() {
        let map: serde_json::Map<String, Value> = s
            .breaks
            .iter()
            .map(|(n, seq)| (n.to_string(), json!(seq)))
            .collect();
        body["break_sequences"] = Value::Object(map);
    }
    if let Some(d) = &s.description {
        body["description"] = json!(d);
    }
    if let Some(login) = &s.login {
        if login.starts_with('@') {
            bail!(
                "--login @FILE does not work with --server: the API takes a login profile \
                 (linux, cli) only; add the device on the daemon's host for a script"
            );
        }
        body["login"] = json!(login);
    }
    if let Some(u) = &s.login_user {
        body["login_user"] = json!(u);
    }
    if !s.power.is_empty() {
        body["power"] = json!(s.power);
    }
    if let Some(p) = s.log_policy {
        body["log_policy"] = json!(p.to_string());
    }
    if let Some(days) = s.retain_days {
        body["retain_days"] = json!(days);
    }
    if let Some(size) = s.retain_gib.or(s.retain_mib) {
        body["retain_gib"] = json!(size.gib());
    }
    if !s.listen.is_empty() {
        body["listen"] = json!(s.listen);
    }
    if !s.listen_allow.is_empty() {
        body["listen_allow"] = json!(s.listen_allow);
    }
    if let Some(node) = &s.node {
        body["node"] = json!(node);
    }
    Ok(body)
}

/// `mo device set` through the API: the device as the daemon has it, changed as on the daemon's
/// host, sent back whole (`PUT /api/v1/devices/{name}`).
async fn set_device(client: &Client, name: &str, settings: &crate::cli::SetSettings) -> Result<()> {
    if settings
        .login
        .as_deref()
        .is_some_and(|l| l.starts_with('@'))
    {
        bail!(
            "--login @FILE does not work with --server: the API takes a login profile (linux, \
             cli) only; set a script on the daemon's host"
        );
    }
    let current = client.device(name).await?;
    let shown = current
        .settings
        .ok_or_else(|| anyhow::anyhow!("the daemon sent device `{name}` without its settings"))?;
    let stored: mo_store::DeviceSettings = serde_json::from_value(serde_json::to_value(&shown)?)
        .context("the daemon's settings of the device do not read as mo's")?;
    let mut device = mo_store::Device {
        name: name.to_owned(),
        url: current.url,
        settings: stored,
    };
    crate::device::apply(&mut device, settings.clone())?;
    device.validate()?;
    crate::device::check_address(&device)?;
    let input: mo_client::types::SettingsInput =
        serde_json::from_value(serde_json::to_value(&device.settings)?)
            .context("the device's settings do not read as the API's")?;
    client
        .replace_device(&mo_client::types::NewDevice::new(name, device.url, input))
        .await?;
    Ok(())
}
