//! `mo group`, `mo usergroup`, `mo role`, `mo grant`, `mo token`, `mo secret`: access control,
//! API tokens and device secrets.
//!
//! Every change is written to the audit log as done by the invoking OS user (`os:NAME`, from
//! the effective uid's entry in /etc/passwd, else `uid:N`) with source `cli`; failed changes are
//! recorded as `failed` with the error.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mo_core::policy::{DeviceGroup, Grant, NamePattern, Permission, PermissionSet};
use mo_core::secret::Secret;
use mo_store::{AuditEntry, DataDir, Outcome, SecretKind, Store, TokenScope};

use crate::table::Table;

/// `mo group …` (device groups)
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add a device group of explicit members and name patterns.
    #[command(after_help = "Examples:\n  \
        mo group add rack3 --pattern 'rack3-*' --member web01\n  \
        mo group add dbs --pattern 're:^db[0-9]+$'")]
    Add {
        /// Group name (letters, digits, `.`, `_`, `-`; `all` is built in).
        name: String,
        /// A device in the group; repeatable.
        #[arg(long, value_name = "DEVICE")]
        member: Vec<String>,
        /// A glob (`web*`, `rack3-??`) or a regex written `re:…`; repeatable.
        #[arg(long, value_name = "PATTERN")]
        pattern: Vec<String>,
    },
    /// Add or remove members and patterns of a device group.
    Set {
        /// The group.
        name: String,
        /// Add a member; repeatable.
        #[arg(long, value_name = "DEVICE")]
        add_member: Vec<String>,
        /// Remove a member; repeatable.
        #[arg(long, value_name = "DEVICE")]
        rm_member: Vec<String>,
        /// Add a pattern; repeatable.
        #[arg(long, value_name = "PATTERN")]
        add_pattern: Vec<String>,
        /// Remove a pattern (as written); repeatable.
        #[arg(long, value_name = "PATTERN")]
        rm_pattern: Vec<String>,
    },
    /// Remove a device group (refused while grants name it).
    #[command(alias = "remove")]
    Rm {
        /// The group.
        name: String,
    },
    /// List device groups.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a device group and which of the stored devices are in it.
    Show {
        /// The group.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `mo usergroup …`
#[derive(Debug, Subcommand)]
pub enum UserGroupCommand {
    /// Add a user group.
    #[command(after_help = "Example:\n  mo usergroup add ops --member alice --member bob")]
    Add {
        /// Group name.
        name: String,
        /// A user in the group (must exist); repeatable.
        #[arg(long, value_name = "USER")]
        member: Vec<String>,
    },
    /// Add or remove members.
    Set {
        /// The group.
        name: String,
        /// Add a user; repeatable.
        #[arg(long, value_name = "USER")]
        add: Vec<String>,
        /// Remove a user; repeatable.
        #[arg(long, value_name = "USER")]
        rm: Vec<String>,
    },
    /// Remove a user group (refused while grants are made to it).
    #[command(alias = "remove")]
    Rm {
        /// The group.
        name: String,
    },
    /// List user groups.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a user group's members.
    Show {
        /// The group.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `mo role …`
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Define a role, or redefine one (built-in ones too).
    #[command(after_help = "Examples:\n  \
        mo role add powerops --allow power.status --allow power.control\n  \
        mo role add viewer --allow list,spy")]
    Add {
        /// Role name.
        name: String,
        /// Actions (list, spy, attach, force, join, break, log.read, log.note, power.status,
        /// power.control, macro.run, gang, events.ack, events.raise, admin); repeatable or
        /// comma-separated.
        #[arg(long, value_name = "ACTION", required = true)]
        allow: Vec<String>,
    },
    /// List roles.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a role's actions.
    Show {
        /// The role.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a role (a redefined built-in role goes back to its built-in actions).
    #[command(alias = "remove")]
    Rm {
        /// The role.
        name: String,
    },
}

/// `mo grant …`
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Give a role on a device group to a user, or to a user group written `@GROUP`.
    #[command(after_help = "Examples:\n  \
        mo grant add alice operator rack3\n  \
        mo grant add @ops viewer all")]
    Add {
        /// A user, or `@GROUP` for a user group.
        subject: String,
        /// The role.
        role: String,
        /// The device group (`all` for every device).
        device_group: String,
    },
    /// Take a grant back.
    #[command(alias = "remove")]
    Rm {
        /// A user, or `@GROUP`.
        subject: String,
        /// The role.
        role: String,
        /// The device group.
        device_group: String,
    },
    /// List grants.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `mo token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token for a user; it is printed once and cannot be shown again.
    #[command(after_help = "Examples:\n  \
        mo token add alice --expires 30d\n  \
        mo token add ci --scope list,spy,log.read --expires 2027-01-01")]
    Add {
        /// The user the token acts as.
        user: String,
        /// When it expires: a duration from now (`30d`, `12h`, `1w`) or a date/time.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// `all`, or the actions it may take (comma-separated); the user's grants still apply.
        #[arg(long, value_name = "ACTIONS", default_value = "all")]
        scope: String,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's tokens.
        user: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id (as listed); `revoke` is the old name of this command.
    #[command(alias = "remove", alias = "revoke")]
    Rm {
        /// The token id.
        id: String,
    },
}

/// `mo secret …`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a device secret, read from standard input, encrypted with DIR/secret.key.
    ///
    /// KIND: password, private_key, key_passphrase, bmc_key, snmp_auth, snmp_privacy. A
    /// private_key takes all of standard input; the others take its first line.
    #[command(after_help = "Examples:\n  \
        echo 's3cret' | mo secret set web01 password --stdin\n  \
        mo secret set web01 private_key --stdin < id_ed25519")]
    Set {
        /// The device.
        device: String,
        /// The kind of secret.
        kind: String,
        /// Read the value from standard input (required: secrets never go on the command line).
        #[arg(long)]
        stdin: bool,
    },
    /// Remove a device secret.
    #[command(alias = "remove")]
    Rm {
        /// The device.
        device: String,
        /// The kind of secret.
        kind: String,
    },
    /// List the kinds of secret a device has (never their values).
    List {
        /// The device.
        device: String,
        /// Print a JSON array of kinds.
        #[arg(long)]
        json: bool,
    },
}

/// Who runs this command, for the audit log: `os:NAME` (or `os:uid:N`).
pub fn invoking_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let _ = f.next()?;
            (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
    });
    match (name, uid) {
        (Some(name), _) => format!("os:{name}"),
        (None, Some(uid)) => format!("os:uid:{uid}"),
        (None, None) => "os:unknown".to_string(),
    }
}

/// Run `change`, then record it in the audit log as `ok` or `failed`.
fn audited<T>(
    store: &Store,
    action: &str,
    device: Option<&str>,
    detail: String,
    change: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let result = change();
    let (outcome, detail) = match &result {
        Ok(_) => (Outcome::Ok, detail),
        Err(e) => (Outcome::Failed, format!("{detail}: {e}")),
    };
    let entry = AuditEntry::new(Some(&invoking_user()), action, outcome)
        .source(Some("cli"))
        .device(device)
        .detail(detail);
    let recorded = store.append_audit(&entry);
    let value = result?;
    recorded.context("the change was made but could not be written to the audit log")?;
    Ok(value)
}

fn patterns(texts: &[String]) -> Result<Vec<NamePattern>> {
    Ok(texts
        .iter()
        .map(|t| NamePattern::parse(t))
        .collect::<mo_core::Result<_>>()?)
}

/// Run one `mo group` command.
pub fn group(store: &Store, command: GroupCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        GroupCommand::Add {
            name,
            member,
            pattern,
        } => {
            let mut group = DeviceGroup::new(&name);
            group.members.extend(member);
            group.patterns = patterns(&pattern)?;
            let detail = describe_group(&group);
            audited(store, "group.add", None, detail, || {
                Ok(store.add_device_group(&group)?)
            })?;
            writeln!(out, "added device group `{name}`")?;
        }
        GroupCommand::Set {
            name,
            add_member,
            rm_member,
            add_pattern,
            rm_pattern,
        } => {
            let add = patterns(&add_pattern)?;
            let detail = format!(
                "{name}: +members {add_member:?} -members {rm_member:?} +patterns {add_pattern:?} \
                 -patterns {rm_pattern:?}"
            );
            audited(store, "group.set", None, detail, || {
                Ok(store.change_device_group(&name, &add_member, &add, &rm_member, &rm_pattern)?)
            })?;
            writeln!(out, "changed device group `{name}`")?;
        }
        GroupCommand::Rm { name } => {
            audited(store, "group.rm", None, name.clone(), || {
                Ok(store.remove_device_group(&name)?)
            })?;
            writeln!(out, "removed device group `{name}`")?;
        }
        GroupCommand::List { json } => {
            let list: Vec<mo_client::DeviceGroup> = store
                .list_device_groups()?
                .into_iter()
                .map(|g| mo_client::DeviceGroup {
                    name: g.name,
                    members: g.members.into_iter().collect(),
                    patterns: g.patterns.iter().map(|p| p.as_str().to_string()).collect(),
                    every_device: false,
                })
                .collect();
            let all = mo_client::DeviceGroup {
                name: mo_core::policy::ALL_DEVICES.into(),
                members: Vec::new(),
                patterns: Vec::new(),
                every_device: true,
            };
            write_groups(&[vec![all], list].concat(), json, out)?;
        }
        GroupCommand::Show { name, json } => {
            let group = store.device_group(&name)?;
            let devices = store.devices_in_group(&group)?;
            let members: Vec<String> = group.members.iter().cloned().collect();
            let pats: Vec<String> = group.patterns.iter().map(|p| p.as_str().into()).collect();
            write_group(&group.name, &members, &pats, &devices, json, out)?;
        }
    }
    Ok(())
}

fn describe_group(group: &DeviceGroup) -> String {
    let members: Vec<&str> = group.members.iter().map(String::as_str).collect();
    let pats: Vec<&str> = group.patterns.iter().map(NamePattern::as_str).collect();
    format!(
        "{} members [{}] patterns [{}]",
        group.name,
        members.join(" "),
        pats.join(" ")
    )
}

/// Run one `mo usergroup` command.
pub fn user_group(store: &Store, command: UserGroupCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        UserGroupCommand::Add { name, member } => {
            let detail = format!("{name} members [{}]", member.join(" "));
            audited(store, "usergroup.add", None, detail, || {
                Ok(store.add_user_group(&name, &member)?)
            })?;
            writeln!(out, "added user group `{name}`")?;
        }
        UserGroupCommand::Set { name, add, rm } => {
            let detail = format!("{name}: +[{}] -[{}]", add.join(" "), rm.join(" "));
            audited(store, "usergroup.set", None, detail, || {
                Ok(store.change_user_group(&name, &add, &rm)?)
            })?;
            writeln!(out, "changed user group `{name}`")?;
        }
        UserGroupCommand::Rm { name } => {
            audited(store, "usergroup.rm", None, name.clone(), || {
                Ok(store.remove_user_group(&name)?)
            })?;
            writeln!(out, "removed user group `{name}`")?;
        }
        UserGroupCommand::List { json } => {
            let list: Vec<mo_client::UserGroup> = store
                .list_user_groups()?
                .into_iter()
                .map(api_user_group)
                .collect();
            write_user_groups(&list, json, out)?;
        }
        UserGroupCommand::Show { name, json } => {
            write_user_group(&api_user_group(store.user_group(&name)?), json, out)?;
        }
    }
    Ok(())
}

/// A role as `mo role list|show --json` print it: name, actions, whether built in and redefined.
fn role_json(r: &mo_store::RoleInfo) -> serde_json::Value {
    let actions: Vec<String> = r
        .role
        .actions
        .to_string()
        .split(',')
        .map(str::to_string)
        .collect();
    serde_json::json!({"name": r.role.name, "actions": actions,
        "builtin": r.builtin, "redefined": r.builtin && r.stored})
}

/// Run one `mo role` command.
pub fn role(store: &Store, command: RoleCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        RoleCommand::Add { name, allow } => {
            let actions = parse_actions(&allow)?;
            let detail = format!("{name} = {actions}");
            audited(store, "role.add", None, detail, || {
                Ok(store.set_role(&name, actions)?)
            })?;
            write_role_set(&name, &actions.to_string(), out)?;
        }
        RoleCommand::List { json: true } => {
            let list: Vec<_> = store.list_roles()?.iter().map(role_json).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        }
        RoleCommand::List { json: false } => {
            let mut table = Table::new(&["NAME", "ACTIONS", "KIND"]);
            for r in store.list_roles()? {
                let kind = match (r.builtin, r.stored) {
                    (true, false) => "built-in",
                    (true, true) => "built-in, redefined",
                    _ => "site",
                };
                table.row(vec![r.role.name, r.role.actions.to_string(), kind.into()]);
            }
            table.write(out)?;
        }
        RoleCommand::Show { name, json: true } => {
            let shown = role_json(&store.role(&name)?);
            writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
        }
        RoleCommand::Show { name, json: false } => {
            let r = store.role(&name)?;
            let actions: Vec<&str> = r.role.actions.iter().map(Permission::name).collect();
            write_role(&r.role.name, &actions, out)?;
        }
        RoleCommand::Rm { name } => {
            audited(store, "role.rm", None, name.clone(), || {
                Ok(store.remove_role(&name)?)
            })?;
            writeln!(out, "removed role `{name}`")?;
        }
    }
    Ok(())
}

/// The actions of `mo role add --allow` (repeatable, comma-separated).
pub fn parse_actions(allow: &[String]) -> Result<PermissionSet> {
    let mut actions = PermissionSet::empty();
    for text in allow {
        actions = actions.union(text.parse::<PermissionSet>()?);
    }
    Ok(actions)
}

/// `alice` is a user, `@ops` a user group.
pub fn make_grant(subject: &str, role: String, device_group: String) -> Result<Grant> {
    match subject.strip_prefix('@') {
        Some("") => bail!("`@` needs a user group name after it (`@ops`)"),
        Some(group) => Ok(Grant::to_group(group, role, device_group)),
        None => Ok(Grant::to_user(subject, role, device_group)),
    }
}

/// Run one `mo grant` command.
pub fn grant(store: &Store, command: GrantCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        GrantCommand::Add {
            subject,
            role,
            device_group,
        } => {
            let grant = make_grant(&subject, role, device_group)?;
            audited(store, "grant.add", None, grant.to_string(), || {
                Ok(store.add_grant(&grant)?)
            })?;
            writeln!(out, "granted {grant}")?;
        }
        GrantCommand::Rm {
            subject,
            role,
            device_group,
        } => {
            let grant = make_grant(&subject, role, device_group)?;
            audited(store, "grant.rm", None, grant.to_string(), || {
                Ok(store.remove_grant(&grant)?)
            })?;
            writeln!(out, "removed {grant}")?;
        }
        GrantCommand::List { json } => {
            let list: Vec<mo_client::Grant> = store
                .list_grants()?
                .into_iter()
                .map(|g| mo_client::Grant {
                    subject: match g.subject {
                        mo_core::policy::Subject::User(u) => u,
                        mo_core::policy::Subject::Group(g) => format!("@{g}"),
                    },
                    role: g.role,
                    device_group: g.device_group,
                })
                .collect();
            write_grants(&list, json, out)?;
        }
    }
    Ok(())
}

/// `list` as pretty JSON with `json`, else as the table `table` makes of it.
fn json_or_table<T: serde::Serialize>(
    list: &[T],
    json: bool,
    out: &mut dyn Write,
    table: impl FnOnce(&[T]) -> Table,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(list)?)?;
    } else {
        table(list).write(out)?;
    }
    Ok(())
}

/// `mo group list`: a table (`all` shown as every device), or `--json`; the same for the data
/// directory and `--server`.
pub fn write_groups(
    list: &[mo_client::DeviceGroup],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    json_or_table(list, json, out, |list| {
        let mut table = Table::new(&["NAME", "MEMBERS", "PATTERNS"]);
        for g in list {
            let members = if g.every_device {
                "(every device)".to_string()
            } else {
                g.members.join(",")
            };
            table.row(vec![g.name.clone(), members, g.patterns.join(" ")]);
        }
        table
    })
}

/// `mo grant list`: a table or `--json`; the same for the data directory and `--server`.
pub fn write_grants(list: &[mo_client::Grant], json: bool, out: &mut dyn Write) -> Result<()> {
    json_or_table(list, json, out, |list| {
        let mut table = Table::new(&["SUBJECT", "ROLE", "DEVICE GROUP"]);
        for g in list {
            table.row(vec![
                g.subject.clone(),
                g.role.clone(),
                g.device_group.clone(),
            ]);
        }
        table
    })
}

/// Expiry as ns since the epoch: a duration from now (`30d`) or an absolute time.
fn parse_expiry(text: &str, now: u64) -> Result<i64> {
    let at = mo_core::log::parse_time_spec(text, now)?;
    let relative = mo_core::log::parse_time_spec(text, now.saturating_add(1))? != at;
    let at = if relative {
        now.saturating_add(now - at)
    } else {
        at
    };
    if at <= now {
        bail!("expiry `{text}` is not in the future");
    }
    Ok(i64::try_from(at).unwrap_or(i64::MAX))
}

fn time_or(ns: Option<i64>, none: &str) -> String {
    ns.map_or_else(
        || none.to_string(),
        |t| mo_core::log::format_timestamp(u64::try_from(t).unwrap_or(0)),
    )
}

/// Run one `mo token` command.
pub fn token(store: &Store, command: TokenCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        TokenCommand::Add {
            user,
            expires,
            scope,
        } => {
            let now = mo_core::record::now_ns();
            let expires = expires.map(|e| parse_expiry(&e, now)).transpose()?;
            let scope = TokenScope::parse(&scope)?;
            let detail = format!(
                "for {user}, scope {scope}, expires {}",
                time_or(expires, "never")
            );
            let new = audited(store, "token.add", None, detail, || {
                Ok(store.add_token(&user, scope, expires)?)
            })?;
            writeln!(out, "{}", new.token.expose())?;
            writeln!(
                out,
                "token {} for `{user}` (scope {scope}, expires {}); store it now, it is not shown again",
                new.info.id,
                time_or(expires, "never")
            )?;
        }
        TokenCommand::List { user, json } => {
            let mut table = Table::new(&["ID", "USER", "SCOPE", "EXPIRES", "LAST USED", "STATE"]);
            let mut list = Vec::new();
            let now = i64::try_from(mo_core::record::now_ns()).unwrap_or(i64::MAX);
            for t in store.list_tokens(user.as_deref())? {
                let state = if t.revoked_ns.is_some() {
                    "revoked"
                } else if t.expires_ns.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                list.push(serde_json::json!({"id": t.id, "user": t.user,
                    "scope": t.scope.to_string(), "expires": t.expires_ns.map(|_| time_or(t.expires_ns, "")),
                    "last_used": t.last_used_ns.map(|_| time_or(t.last_used_ns, "")), "state": state}));
                table.row(vec![
                    t.id,
                    t.user,
                    t.scope.to_string(),
                    time_or(t.expires_ns, "never"),
                    time_or(t.last_used_ns, "never"),
                    state.into(),
                ]);
            }
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                table.write(out)?;
            }
        }
        TokenCommand::Rm { id } => {
            audited(store, "token.revoke", None, id.clone(), || {
                Ok(store.revoke_token(&id)?)
            })?;
            writeln!(out, "revoked token {id}")?;
        }
    }
    Ok(())
}

/// Run one `mo secret` command.
pub fn secret(
    dir: &DataDir,
    store: &Store,
    command: SecretCommand,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        SecretCommand::Set {
            device,
            kind,
            stdin: from_stdin,
        } => {
            let kind: SecretKind = kind.parse()?;
            let value = read_secret(&device, kind, from_stdin, stdin)?;
            let key = dir.secret_key()?;
            audited(store, "secret.set", Some(&device), kind.to_string(), || {
                Ok(store.set_secret(&key, &device, kind, &value)?)
            })?;
            writeln!(out, "{}", secret_stored(&device, kind))?;
        }
        SecretCommand::Rm { device, kind } => {
            let kind: SecretKind = kind.parse()?;
            audited(store, "secret.rm", Some(&device), kind.to_string(), || {
                Ok(store.remove_secret(&device, kind)?)
            })?;
            writeln!(out, "removed the {kind} of device `{device}`")?;
        }
        SecretCommand::List { device, json } => {
            store.device(&device)?;
            let kinds: Vec<String> = store
                .secret_kinds(&device)?
                .iter()
                .map(ToString::to_string)
                .collect();
            write_secret_kinds(&device, &kinds, json, out)?;
        }
    }
    Ok(())
}

/// `mo secret set … --stdin`: the value from standard input — all of it for a private_key,
/// the first line for the other kinds; the same for the data directory and `--server`.
pub fn read_secret(
    device: &str,
    kind: SecretKind,
    from_stdin: bool,
    stdin: &mut dyn BufRead,
) -> Result<Secret> {
    if !from_stdin {
        bail!(
            "give the value on standard input with --stdin \
             (echo 'VALUE' | mo secret set {device} {kind} --stdin)"
        );
    }
    let mut text = String::new();
    if kind == SecretKind::PrivateKey {
        stdin
            .read_to_string(&mut text)
            .context("cannot read the secret from standard input")?;
    } else {
        stdin
            .read_line(&mut text)
            .context("cannot read the secret from standard input")?;
        let trimmed = text.trim_end_matches(['\n', '\r']).len();
        text.truncate(trimmed);
    }
    if text.trim().is_empty() {
        bail!("no secret on standard input");
    }
    Ok(Secret::new(text))
}

/// What `mo secret set` prints when the secret is stored.
pub fn secret_stored(device: &str, kind: SecretKind) -> String {
    format!("stored the {kind} of device `{device}` (encrypted)")
}

/// `mo secret list`: the kinds, one a line, or `--json`; the same for the data directory and
/// `--server`.
pub fn write_secret_kinds(
    device: &str,
    kinds: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(kinds)?)?;
        return Ok(());
    }
    if kinds.is_empty() {
        writeln!(out, "device `{device}` has no secrets")?;
    }
    for kind in kinds {
        writeln!(out, "{kind}")?;
    }
    Ok(())
}

/// `mo group show`: the group's members and patterns, and the stored devices in it; the same
/// for the data directory and `--server`.
pub fn write_group(
    name: &str,
    members: &[String],
    patterns: &[String],
    devices: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        let shown = serde_json::json!({"name": name, "members": members,
            "patterns": patterns, "devices": devices});
        writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
        return Ok(());
    }
    writeln!(out, "group:    {name}")?;
    writeln!(out, "members:  {}", members.join(" "))?;
    writeln!(out, "patterns: {}", patterns.join(" "))?;
    writeln!(out, "devices:  {}", devices.join(" "))?;
    Ok(())
}

fn api_user_group(g: mo_core::policy::UserGroup) -> mo_client::UserGroup {
    mo_client::UserGroup {
        name: g.name,
        members: g.members.into_iter().collect(),
    }
}

/// `mo usergroup list`: a table or `--json`; the same for the data directory and `--server`.
pub fn write_user_groups(
    list: &[mo_client::UserGroup],
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    json_or_table(list, json, out, |list| {
        let mut table = Table::new(&["NAME", "MEMBERS"]);
        for g in list {
            table.row(vec![g.name.clone(), g.members.join(",")]);
        }
        table
    })
}

/// `mo usergroup show`; the same for the data directory and `--server`.
pub fn write_user_group(
    group: &mo_client::UserGroup,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(group)?)?;
        return Ok(());
    }
    writeln!(out, "group:   {}", group.name)?;
    writeln!(out, "members: {}", group.members.join(" "))?;
    Ok(())
}

/// What `mo role add` prints: the role and its actions (`list,spy`).
pub fn write_role_set(name: &str, actions: &str, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "role `{name}` allows {actions}")?;
    Ok(())
}

/// `mo role show`; the same for the data directory and `--server`.
pub fn write_role(name: &str, actions: &[&str], out: &mut dyn Write) -> Result<()> {
    writeln!(out, "role:    {name}")?;
    writeln!(out, "actions: {}", actions.join(","))?;
    if actions.contains(&Permission::Admin.name()) {
        writeln!(out, "         (admin implies every action)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn expiry_is_relative_or_absolute() {
        let now = 1_000_000_000_000_000_000u64;
        let day = 86_400_000_000_000i64;
        assert_eq!(parse_expiry("1d", now).unwrap(), now as i64 + day);
        assert_eq!(
            parse_expiry("2100-01-01", now).unwrap(),
            4_102_444_800_000_000_000
        );
        assert!(parse_expiry("2000-01-01", now).is_err());
        assert!(parse_expiry("soon", now).is_err());
    }

    #[test]
    fn grant_subjects() {
        let g = make_grant("@ops", "viewer".into(), "all".into()).unwrap();
        assert_eq!(g, Grant::to_group("ops", "viewer", "all"));
        let g = make_grant("alice", "viewer".into(), "all".into()).unwrap();
        assert_eq!(g, Grant::to_user("alice", "viewer", "all"));
        assert!(make_grant("@", "viewer".into(), "all".into()).is_err());
    }
}
