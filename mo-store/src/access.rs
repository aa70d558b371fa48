//! Access control in the store: user groups, device groups (explicit members and name
//! patterns), roles (named action sets) and grants, and [`Store::load_policy`], which turns them
//! into a [`mo_core::policy::Policy`] that decides.
//!
//! Names of groups and roles follow the device-name rule (`[A-Za-z0-9._-]`, 1 to 64
//! characters, not starting with `.` or `-`), so `@ops` can denote a user group in a grant.
//! The device group `all` is built in; the roles `viewer`, `operator` and `admin` are built in
//! ([`Role::builtin`]) and may be redefined, and removing a redefinition restores the built-in
//! one. Every change moves [`Store::policy_generation`], so a daemon can reload the policy when
//! it moves.

use std::collections::BTreeMap;

use mo_core::policy::{ALL_DEVICES, DeviceGroup, Grant, NamePattern, PermissionSet, Policy, Role};
use mo_core::policy::{Subject, UserGroup};
use rusqlite::{Connection, OptionalExtension, params};

use crate::device::now_ns;
use crate::error::{Error, Result};
use crate::names::{MAX_DEVICE_NAME, validate_device_name, validate_user_name};
use crate::store::{Store, is_unique_violation};

/// A role as stored: its actions, and whether it is a built-in one (possibly redefined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// The role.
    pub role: Role,
    /// Whether the name is one of the built-in roles.
    pub builtin: bool,
    /// Whether the store holds a definition (false: the unchanged built-in one).
    pub stored: bool,
}

/// Check the name of a device group, user group or role (`what` names which).
pub fn validate_access_name(what: &'static str, name: &str) -> Result<()> {
    validate_device_name(name).map_err(|e| match e {
        Error::BadName { name, reason, .. } => Error::BadName { what, name, reason },
        other => other,
    })?;
    debug_assert!(name.len() <= MAX_DEVICE_NAME);
    Ok(())
}

fn is_builtin_role(name: &str) -> bool {
    Role::builtin().iter().any(|r| r.name == name)
}

fn sql<T>(store: &Store, what: &str, r: rusqlite::Result<T>) -> Result<T> {
    r.map_err(|e| store.sql_error(what, e))
}

fn exists(conn: &Connection, table: &str, name: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            &format!("SELECT 1 FROM {table} WHERE name = ?1"),
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn count_grants(conn: &Connection, column: &str, extra: &str, name: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        &format!("SELECT COUNT(*) FROM grants WHERE {column} = ?1 {extra}"),
        [name],
        |r| r.get(0),
    )
}

impl Store {
    /// The policy change counter: it moves with every change to groups, roles or grants (also
    /// when a removed user takes grants or memberships along), in any process.
    pub fn policy_generation(&self) -> Result<u64> {
        let value: i64 = self.read("read the policy generation", |c| {
            // Asked before every access decision: the statement is prepared once.
            c.prepare_cached("SELECT value FROM meta WHERE key = 'policy_generation'")?
                .query_row([], |r| r.get(0))
        })?;
        u64::try_from(value)
            .map_err(|_| self.corrupt("meta.policy_generation", format!("negative value {value}")))
    }

    // ---- device groups ----

    /// Add a device group with explicit members and name patterns (globs such as `web*`, or
    /// `re:` regexes; see [`NamePattern`]). [`Error::NameExists`] if it exists; `all` is
    /// reserved.
    pub fn add_device_group(&self, group: &DeviceGroup) -> Result<()> {
        validate_access_name("device group", &group.name)?;
        if group.name == ALL_DEVICES {
            return Err(Error::NameExists {
                what: "device group",
                name: group.name.clone(),
            });
        }
        for member in &group.members {
            validate_device_name(member)?;
        }
        let mut conn = self.conn();
        let what = format!("add device group `{}`", group.name);
        let tx = sql(self, &what, conn.savepoint())?;
        match tx.execute(
            "INSERT INTO device_groups (name, created_ns) VALUES (?1, ?2)",
            params![group.name, now_ns()],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::NameExists {
                    what: "device group",
                    name: group.name.clone(),
                });
            }
            Err(e) => return Err(self.sql_error(&what, e)),
        }
        for member in &group.members {
            sql(
                self,
                &what,
                tx.execute(
                    "INSERT OR IGNORE INTO device_group_members (grp, device) VALUES (?1, ?2)",
                    params![group.name, member],
                ),
            )?;
        }
        for pattern in &group.patterns {
            sql(
                self,
                &what,
                tx.execute(
                    "INSERT OR IGNORE INTO device_group_patterns (grp, pattern) VALUES (?1, ?2)",
                    params![group.name, pattern.as_str()],
                ),
            )?;
        }
        sql(self, &what, tx.commit())
    }

    /// Add members and patterns to an existing device group, and remove others. Adding what is
    /// there or removing what is not changes nothing.
    pub fn change_device_group(
        &self,
        name: &str,
        add_members: &[String],
        add_patterns: &[NamePattern],
        remove_members: &[String],
        remove_patterns: &[String],
    ) -> Result<()> {
        for member in add_members {
            validate_device_name(member)?;
        }
        let mut conn = self.conn();
        let what = format!("change device group `{name}`");
        let tx = sql(self, &what, conn.savepoint())?;
        if !sql(self, &what, exists(&tx, "device_groups", name))? {
            return Err(unknown_device_group(name));
        }
        for m in add_members {
            sql(
                self,
                &what,
                tx.execute(
                    "INSERT OR IGNORE INTO device_group_members (grp, device) VALUES (?1, ?2)",
                    params![name, m],
                ),
            )?;
        }
        for p in add_patterns {
            sql(
                self,
                &what,
                tx.execute(
                    "INSERT OR IGNORE INTO device_group_patterns (grp, pattern) VALUES (?1, ?2)",
                    params![name, p.as_str()],
                ),
            )?;
        }
        for m in remove_members {
            sql(
                self,
                &what,
                tx.execute(
                    "DELETE FROM device_group_members WHERE grp = ?1 AND device = ?2",
                    params![name, m],
                ),
            )?;
        }
        for p in remove_patterns {
            sql(
                self,
                &what,
                tx.execute(
                    "DELETE FROM device_group_patterns WHERE grp = ?1 AND pattern = ?2",
                    params![name, p],
                ),
            )?;
        }
        sql(self, &what, tx.commit())
    }

    /// Remove a device group. [`Error::InUse`] while grants name it, and for the built-in `all`.
    pub fn remove_device_group(&self, name: &str) -> Result<()> {
        if name == ALL_DEVICES {
            return Err(Error::InUse {
                what: "device group",
                name: name.to_string(),
                reason: "is built in (every device) and cannot be removed".into(),
            });
        }
        let what = format!("remove device group `{name}`");
        let conn = self.conn();
        let used = sql(self, &what, count_grants(&conn, "device_group", "", name))?;
        if used > 0 {
            return Err(in_use("device group", name, used));
        }
        let changed = sql(
            self,
            &what,
            conn.execute("DELETE FROM device_groups WHERE name = ?1", [name]),
        )?;
        if changed == 0 {
            return Err(unknown_device_group(name));
        }
        Ok(())
    }

    /// The device group called `name` (`all` included, with no members or patterns).
    pub fn device_group(&self, name: &str) -> Result<DeviceGroup> {
        if name == ALL_DEVICES {
            return Ok(DeviceGroup::new(ALL_DEVICES));
        }
        self.list_device_groups()?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| unknown_device_group(name))
    }

    /// The stored devices in `group` now (members, pattern matches; every device for `all`),
    /// by name: what `mo group show` lists.
    pub fn devices_in_group(&self, group: &DeviceGroup) -> Result<Vec<String>> {
        Ok(self
            .list_devices()?
            .into_iter()
            .map(|d| d.name)
            .filter(|d| group.contains(d))
            .collect())
    }

    /// Every stored device group, sorted by name (the built-in `all` is not listed).
    pub fn list_device_groups(&self) -> Result<Vec<DeviceGroup>> {
        self.device_groups_in(&self.conn())
    }

    fn device_groups_in(&self, conn: &Connection) -> Result<Vec<DeviceGroup>> {
        let read = |c: &Connection| {
            let names: Vec<String> = c
                .prepare("SELECT name FROM device_groups ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let members: Vec<(String, String)> = c
                .prepare("SELECT grp, device FROM device_group_members")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let patterns: Vec<(String, String)> = c
                .prepare("SELECT grp, pattern FROM device_group_patterns ORDER BY rowid")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((names, members, patterns))
        };
        let (names, members, patterns) = sql(self, "list device groups", read(conn))?;
        let mut groups: BTreeMap<String, DeviceGroup> = names
            .into_iter()
            .map(|n| (n.clone(), DeviceGroup::new(n)))
            .collect();
        for (grp, device) in members {
            if let Some(g) = groups.get_mut(&grp) {
                g.members.insert(device);
            }
        }
        for (grp, text) in patterns {
            let pattern = NamePattern::parse(&text).map_err(|e| {
                self.corrupt(format!("pattern of device group `{grp}`"), e.to_string())
            })?;
            if let Some(g) = groups.get_mut(&grp) {
                g.patterns.push(pattern);
            }
        }
        Ok(groups.into_values().collect())
    }

    // ---- user groups ----

    /// Add a user group; every member must be an existing user.
    pub fn add_user_group(&self, name: &str, members: &[String]) -> Result<()> {
        validate_access_name("user group", name)?;
        let mut conn = self.conn();
        let what = format!("add user group `{name}`");
        let tx = sql(self, &what, conn.savepoint())?;
        match tx.execute(
            "INSERT INTO user_groups (name, created_ns) VALUES (?1, ?2)",
            params![name, now_ns()],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::NameExists {
                    what: "user group",
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(self.sql_error(&what, e)),
        }
        self.insert_user_members(&tx, name, members, &what)?;
        sql(self, &what, tx.commit())
    }

    fn insert_user_members(
        &self,
        conn: &Connection,
        group: &str,
        members: &[String],
        what: &str,
    ) -> Result<()> {
        for member in members {
            validate_user_name(member)?;
            if !sql(self, what, exists(conn, "users", member))? {
                return Err(Error::UnknownUser(member.clone()));
            }
            sql(
                self,
                what,
                conn.execute(
                    "INSERT OR IGNORE INTO user_group_members (grp, user) VALUES (?1, ?2)",
                    params![group, member],
                ),
            )?;
        }
        Ok(())
    }

    /// Add users to a user group and remove others.
    pub fn change_user_group(&self, name: &str, add: &[String], remove: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let what = format!("change user group `{name}`");
        let tx = sql(self, &what, conn.savepoint())?;
        if !sql(self, &what, exists(&tx, "user_groups", name))? {
            return Err(unknown_user_group(name));
        }
        self.insert_user_members(&tx, name, add, &what)?;
        for member in remove {
            sql(
                self,
                &what,
                tx.execute(
                    "DELETE FROM user_group_members WHERE grp = ?1 AND user = ?2",
                    params![name, member],
                ),
            )?;
        }
        sql(self, &what, tx.commit())
    }

    /// Remove a user group. [`Error::InUse`] while grants are made to it.
    pub fn remove_user_group(&self, name: &str) -> Result<()> {
        let what = format!("remove user group `{name}`");
        let conn = self.conn();
        let used = sql(
            self,
            &what,
            count_grants(&conn, "subject", "AND subject_kind = 'group'", name),
        )?;
        if used > 0 {
            return Err(in_use("user group", name, used));
        }
        let changed = sql(
            self,
            &what,
            conn.execute("DELETE FROM user_groups WHERE name = ?1", [name]),
        )?;
        if changed == 0 {
            return Err(unknown_user_group(name));
        }
        Ok(())
    }

    /// The user group called `name`.
    pub fn user_group(&self, name: &str) -> Result<UserGroup> {
        self.list_user_groups()?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| unknown_user_group(name))
    }

    /// Every user group, sorted by name.
    pub fn list_user_groups(&self) -> Result<Vec<UserGroup>> {
        self.user_groups_in(&self.conn())
    }

    fn user_groups_in(&self, conn: &Connection) -> Result<Vec<UserGroup>> {
        let read = |c: &Connection| {
            let names: Vec<String> = c
                .prepare("SELECT name FROM user_groups ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let members: Vec<(String, String)> = c
                .prepare("SELECT grp, user FROM user_group_members")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((names, members))
        };
        let (names, members) = sql(self, "list user groups", read(conn))?;
        let mut groups: BTreeMap<String, UserGroup> = names
            .into_iter()
            .map(|n| (n.clone(), UserGroup::new(n)))
            .collect();
        for (grp, user) in members {
            if let Some(g) = groups.get_mut(&grp) {
                g.members.insert(user);
            }
        }
        Ok(groups.into_values().collect())
    }

    // ---- roles ----

    /// Define a role, or redefine one (built-in ones included). An empty action set is
    /// refused: such a role could never allow anything.
    pub fn set_role(&self, name: &str, actions: PermissionSet) -> Result<()> {
        validate_access_name("role", name)?;
        if actions.is_empty() {
            return Err(Error::BadValue {
                what: format!("action list of role `{name}`"),
                value: String::new(),
                reason: "a role needs at least one action".into(),
            });
        }
        let what = format!("set role `{name}`");
        sql(
            self,
            &what,
            self.conn().execute(
                "INSERT INTO roles (name, actions, created_ns) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET actions = excluded.actions",
                params![name, actions.to_string(), now_ns()],
            ),
        )?;
        Ok(())
    }

    /// Remove a role. A redefined built-in role goes back to its built-in actions; an
    /// unchanged built-in role cannot be removed. [`Error::InUse`] while grants name a
    /// site-defined role.
    pub fn remove_role(&self, name: &str) -> Result<()> {
        let what = format!("remove role `{name}`");
        let conn = self.conn();
        let builtin = is_builtin_role(name);
        if !builtin {
            let used = sql(self, &what, count_grants(&conn, "role", "", name))?;
            if used > 0 {
                return Err(in_use("role", name, used));
            }
        }
        let changed = sql(
            self,
            &what,
            conn.execute("DELETE FROM roles WHERE name = ?1", [name]),
        )?;
        match (changed, builtin) {
            (0, true) => Err(Error::InUse {
                what: "role",
                name: name.to_string(),
                reason: "is built in and cannot be removed (redefine it with `mo role add`)".into(),
            }),
            (0, false) => Err(unknown_role(name)),
            _ => Ok(()),
        }
    }

    /// The role called `name` (built-in ones as redefined, if they are).
    pub fn role(&self, name: &str) -> Result<RoleInfo> {
        self.list_roles()?
            .into_iter()
            .find(|r| r.role.name == name)
            .ok_or_else(|| unknown_role(name))
    }

    /// Every role: the built-in ones first (as redefined, if they are), then the others by name.
    pub fn list_roles(&self) -> Result<Vec<RoleInfo>> {
        self.roles_in(&self.conn())
    }

    fn roles_in(&self, conn: &Connection) -> Result<Vec<RoleInfo>> {
        let stored: Vec<(String, String)> = sql(
            self,
            "list roles",
            conn.prepare("SELECT name, actions FROM roles ORDER BY name")
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()),
        )?;
        let mut parsed = Vec::with_capacity(stored.len());
        for (name, text) in stored {
            let actions: PermissionSet = text.parse().map_err(|e: mo_core::Error| {
                self.corrupt(format!("role `{name}`"), e.to_string())
            })?;
            parsed.push(Role { name, actions });
        }
        let mut roles: Vec<RoleInfo> = Role::builtin()
            .into_iter()
            .map(
                |builtin| match parsed.iter().find(|r| r.name == builtin.name) {
                    Some(stored) => RoleInfo {
                        role: stored.clone(),
                        builtin: true,
                        stored: true,
                    },
                    None => RoleInfo {
                        role: builtin,
                        builtin: true,
                        stored: false,
                    },
                },
            )
            .collect();
        roles.extend(
            parsed
                .into_iter()
                .filter(|r| !is_builtin_role(&r.name))
                .map(|role| RoleInfo {
                    role,
                    builtin: false,
                    stored: true,
                }),
        );
        Ok(roles)
    }

    // ---- grants ----

    /// Add a grant. The user (or user group), the role and the device group must exist; the
    /// error names the one that does not. [`Error::NameExists`] if the same grant exists.
    pub fn add_grant(&self, grant: &Grant) -> Result<()> {
        let what = format!("add grant {grant}");
        let conn = self.conn();
        let (kind, subject) = subject_columns(&grant.subject);
        match &grant.subject {
            Subject::User(user) => {
                if !sql(self, &what, exists(&conn, "users", user))? {
                    return Err(Error::UnknownUser(user.clone()));
                }
            }
            Subject::Group(group) => {
                if !sql(self, &what, exists(&conn, "user_groups", group))? {
                    return Err(unknown_user_group(group));
                }
            }
        }
        if !is_builtin_role(&grant.role) && !sql(self, &what, exists(&conn, "roles", &grant.role))?
        {
            return Err(unknown_role(&grant.role));
        }
        if grant.device_group != ALL_DEVICES
            && !sql(
                self,
                &what,
                exists(&conn, "device_groups", &grant.device_group),
            )?
        {
            return Err(unknown_device_group(&grant.device_group));
        }
        match conn.execute(
            "INSERT INTO grants (subject_kind, subject, role, device_group, created_ns) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, subject, grant.role, grant.device_group, now_ns()],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::NameExists {
                what: "grant",
                name: grant.to_string(),
            }),
            Err(e) => Err(self.sql_error(&what, e)),
        }
    }

    /// Remove a grant. [`Error::UnknownName`] if there is no such grant.
    pub fn remove_grant(&self, grant: &Grant) -> Result<()> {
        let (kind, subject) = subject_columns(&grant.subject);
        let changed = sql(
            self,
            &format!("remove grant {grant}"),
            self.conn().execute(
                "DELETE FROM grants WHERE subject_kind = ?1 AND subject = ?2 AND role = ?3 \
                 AND device_group = ?4",
                params![kind, subject, grant.role, grant.device_group],
            ),
        )?;
        if changed == 0 {
            return Err(Error::UnknownName {
                what: "grant",
                name: grant.to_string(),
            });
        }
        Ok(())
    }

    /// Every grant, in the order made.
    pub fn list_grants(&self) -> Result<Vec<Grant>> {
        self.grants_in(&self.conn())
    }

    fn grants_in(&self, conn: &Connection) -> Result<Vec<Grant>> {
        let rows: Vec<(String, String, String, String)> = sql(
            self,
            "list grants",
            conn.prepare(
                "SELECT subject_kind, subject, role, device_group FROM grants ORDER BY id",
            )
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            }),
        )?;
        Ok(rows
            .into_iter()
            .map(|(kind, subject, role, device_group)| {
                if kind == "group" {
                    Grant::to_group(subject, role, device_group)
                } else {
                    Grant::to_user(subject, role, device_group)
                }
            })
            .collect())
    }

    /// Everything needed to decide: roles (built-in ones as possibly redefined), device groups,
    /// user groups and grants, compiled into a [`Policy`]. Read in one transaction, so it is a
    /// consistent snapshot even while another process changes it.
    pub fn load_policy(&self) -> Result<Policy> {
        let (roles, device_groups, user_groups, grants) = {
            let mut conn = self.conn();
            let tx = sql(self, "read the policy", conn.transaction())?;
            let read = (
                self.roles_in(&tx)?,
                self.device_groups_in(&tx)?,
                self.user_groups_in(&tx)?,
                self.grants_in(&tx)?,
            );
            sql(self, "read the policy", tx.commit())?;
            read
        };
        let corrupt = |what: String, e: mo_core::Error| self.corrupt(what, e.to_string());
        let mut policy = Policy::new();
        for info in roles {
            let name = info.role.name.clone();
            policy
                .add_role(info.role)
                .map_err(|e| corrupt(format!("role `{name}`"), e))?;
        }
        for group in device_groups {
            let name = group.name.clone();
            policy
                .add_device_group(group)
                .map_err(|e| corrupt(format!("device group `{name}`"), e))?;
        }
        for group in user_groups {
            let name = group.name.clone();
            policy
                .add_user_group(group)
                .map_err(|e| corrupt(format!("user group `{name}`"), e))?;
        }
        for grant in grants {
            let shown = grant.to_string();
            policy
                .add_grant(grant)
                .map_err(|e| corrupt(format!("grant {shown}"), e))?;
        }
        Ok(policy)
    }
}

fn subject_columns(subject: &Subject) -> (&'static str, &str) {
    match subject {
        Subject::User(u) => ("user", u.as_str()),
        Subject::Group(g) => ("group", g.as_str()),
    }
}

fn in_use(what: &'static str, name: &str, grants: i64) -> Error {
    let noun = if grants == 1 { "grant" } else { "grants" };
    Error::InUse {
        what,
        name: name.to_string(),
        reason: format!(
            "is used by {grants} {noun}; remove them first (`mo grant list` shows them)"
        ),
    }
}

fn unknown_role(name: &str) -> Error {
    Error::UnknownName {
        what: "role",
        name: name.to_string(),
    }
}

fn unknown_device_group(name: &str) -> Error {
    Error::UnknownName {
        what: "device group",
        name: name.to_string(),
    }
}

fn unknown_user_group(name: &str) -> Error {
    Error::UnknownName {
        what: "user group",
        name: name.to_string(),
    }
}
