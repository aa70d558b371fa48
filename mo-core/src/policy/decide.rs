//! The [`Policy`] and its [`Decision`]s.

use std::collections::HashMap;
use std::fmt;

use super::grant::{Grant, Role, Subject};
use super::groups::{ALL_DEVICES, CompiledGroup, DeviceGroup, EVERY_DEVICE, UserGroup};
use super::permission::Permission;
use crate::error::{Error, Result};

/// A grant with its role and groups resolved to indices.
#[derive(Debug, Clone)]
struct Resolved {
    grant: Grant,
    role: usize,
    device_group: usize,
}

/// Roles, device groups, user groups and grants, compiled for fast decisions.
///
/// A fresh policy ([`Policy::new`]) holds the built-in roles ([`Role::builtin`]) and the
/// built-in device group `all`, and grants nothing: everything is denied until granted. The
/// `add_*` methods check names and references (a grant naming an unknown role or group is an
/// error naming it); adding a role or group whose name exists replaces it, and grants naming it
/// follow the new definition. Users are not declared here (they live in the store): a user is
/// just a name that grants and user groups mention.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: Vec<Role>,
    role_index: HashMap<String, usize>,
    device_groups: Vec<CompiledGroup>,
    device_group_index: HashMap<String, usize>,
    user_groups: Vec<UserGroup>,
    user_group_index: HashMap<String, usize>,
    grants: Vec<Resolved>,
    /// User name → indices of grants made to that user directly.
    direct: HashMap<String, Vec<usize>>,
    /// User group index → indices of grants made to that group.
    group_grants: Vec<Vec<usize>>,
    /// User name → indices of the user groups it belongs to.
    memberships: HashMap<String, Vec<usize>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new()
    }
}

impl Policy {
    /// A policy with the built-in roles and the device group `all`, granting nothing.
    pub fn new() -> Self {
        let mut policy = Policy {
            roles: Vec::new(),
            role_index: HashMap::new(),
            device_groups: Vec::new(),
            device_group_index: HashMap::new(),
            user_groups: Vec::new(),
            user_group_index: HashMap::new(),
            grants: Vec::new(),
            direct: HashMap::new(),
            group_grants: Vec::new(),
            memberships: HashMap::new(),
        };
        for role in Role::builtin() {
            policy.insert_role(role);
        }
        policy
            .device_group_index
            .insert(ALL_DEVICES.to_string(), policy.device_groups.len());
        policy.device_groups.push(CompiledGroup::everything());
        policy
    }

    /// Adds a role, or redefines the role of that name.
    pub fn add_role(&mut self, role: Role) -> Result<&mut Self> {
        check_name("role", &role.name)?;
        self.insert_role(role);
        Ok(self)
    }

    fn insert_role(&mut self, role: Role) {
        match self.role_index.get(&role.name) {
            Some(&i) => self.roles[i] = role,
            None => {
                self.role_index.insert(role.name.clone(), self.roles.len());
                self.roles.push(role);
            }
        }
    }

    /// Adds a device group, or redefines the group of that name. The built-in group `all`
    /// cannot be redefined.
    pub fn add_device_group(&mut self, group: DeviceGroup) -> Result<&mut Self> {
        check_name("device group", &group.name)?;
        if group.name == ALL_DEVICES {
            return Err(Error::BadSpec {
                what: "device group",
                input: group.name,
                reason: "the built-in group `all` holds every device and cannot be redefined"
                    .to_string(),
            });
        }
        let compiled = CompiledGroup::new(group)?;
        match self.device_group_index.get(&compiled.group.name) {
            Some(&i) => self.device_groups[i] = compiled,
            None => {
                self.device_group_index
                    .insert(compiled.group.name.clone(), self.device_groups.len());
                self.device_groups.push(compiled);
            }
        }
        Ok(self)
    }

    /// Adds a user group, or redefines the group of that name (its members are replaced).
    pub fn add_user_group(&mut self, group: UserGroup) -> Result<&mut Self> {
        check_name("user group", &group.name)?;
        if let Some(bad) = group
            .members
            .iter()
            .find(|m| check_name("user", m).is_err())
        {
            return Err(Error::BadSpec {
                what: "user group",
                input: group.name,
                reason: format!("bad member name `{bad}`"),
            });
        }
        match self.user_group_index.get(&group.name) {
            Some(&i) => self.user_groups[i] = group,
            None => {
                self.user_group_index
                    .insert(group.name.clone(), self.user_groups.len());
                self.user_groups.push(group);
                self.group_grants.push(Vec::new());
            }
        }
        self.memberships.clear();
        for (i, group) in self.user_groups.iter().enumerate() {
            for member in &group.members {
                self.memberships.entry(member.clone()).or_default().push(i);
            }
        }
        Ok(self)
    }

    /// Adds a grant. Its role, device group and (for a group subject) user group must exist;
    /// the error names the one that does not. Adding a grant that exists changes nothing.
    pub fn add_grant(&mut self, grant: Grant) -> Result<&mut Self> {
        let unknown = |what: &str, name: &str| Error::BadSpec {
            what: "grant",
            input: grant.to_string(),
            reason: format!("unknown {what} `{name}`"),
        };
        let role = *self
            .role_index
            .get(&grant.role)
            .ok_or_else(|| unknown("role", &grant.role))?;
        let device_group = *self
            .device_group_index
            .get(&grant.device_group)
            .ok_or_else(|| unknown("device group", &grant.device_group))?;
        let user_group = match &grant.subject {
            Subject::User(user) => {
                check_name("user", user)?;
                None
            }
            Subject::Group(group) => Some(
                *self
                    .user_group_index
                    .get(group)
                    .ok_or_else(|| unknown("user group", group))?,
            ),
        };
        if self.grants.iter().any(|g| g.grant == grant) {
            return Ok(self);
        }
        let index = self.grants.len();
        match (user_group, &grant.subject) {
            (Some(g), _) => self.group_grants[g].push(index),
            (None, Subject::User(user)) => self.direct.entry(user.clone()).or_default().push(index),
            (None, Subject::Group(_)) => {}
        }
        self.grants.push(Resolved {
            grant,
            role,
            device_group,
        });
        Ok(self)
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.role_index.get(name).map(|&i| &self.roles[i])
    }

    /// The device group called `name` (`all` included).
    pub fn device_group(&self, name: &str) -> Option<&DeviceGroup> {
        self.device_group_index
            .get(name)
            .map(|&i| &self.device_groups[i].group)
    }

    /// The user group called `name`.
    pub fn user_group(&self, name: &str) -> Option<&UserGroup> {
        self.user_group_index
            .get(name)
            .map(|&i| &self.user_groups[i])
    }

    /// Every role, built-in ones first, in the order added.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter()
    }

    /// Every device group, `all` first, in the order added.
    pub fn device_groups(&self) -> impl Iterator<Item = &DeviceGroup> {
        self.device_groups.iter().map(|g| &g.group)
    }

    /// Every user group, in the order added.
    pub fn user_groups(&self) -> impl Iterator<Item = &UserGroup> {
        self.user_groups.iter()
    }

    /// Every grant, in the order added.
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().map(|g| &g.grant)
    }

    /// The device groups `device` is in (`all` included).
    pub fn groups_of<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a DeviceGroup> {
        self.device_groups
            .iter()
            .filter(move |g| g.contains(device))
            .map(|g| &g.group)
    }

    /// The grants that apply to `user`: direct ones first, then those of its user groups.
    fn grants_of<'a>(&'a self, user: &str) -> impl Iterator<Item = &'a Resolved> {
        let direct = self.direct.get(user).map(Vec::as_slice).unwrap_or(&[]);
        let groups = self.memberships.get(user).map(Vec::as_slice).unwrap_or(&[]);
        direct
            .iter()
            .chain(groups.iter().flat_map(|&g| self.group_grants[g].iter()))
            .map(|&i| &self.grants[i])
    }

    /// Decides whether `user` may take `action` on `device`. Denied unless a grant to the user
    /// (or to one of its user groups) gives a role allowing the action on a device group
    /// holding the device; any such grant allows. The decision allocates nothing; its
    /// [`reason`](Decision::reason) is built on demand.
    pub fn decide<'a>(
        &'a self,
        user: &'a str,
        action: Permission,
        device: &'a str,
    ) -> Decision<'a> {
        let mut outcome = Outcome::NoGrants;
        for resolved in self.grants_of(user) {
            let allows = self.roles[resolved.role].actions.allows(action);
            if allows || matches!(outcome, Outcome::NoGrants | Outcome::NotCovered) {
                if self.device_groups[resolved.device_group].contains(device) {
                    if allows {
                        outcome = Outcome::Allowed(resolved);
                        break;
                    }
                    outcome = Outcome::Lacks(resolved);
                } else if matches!(outcome, Outcome::NoGrants) {
                    outcome = Outcome::NotCovered;
                }
            }
        }
        Decision {
            policy: self,
            user,
            action,
            device,
            outcome,
            global: false,
        }
    }

    /// Decides whether `user` may take `action` over *every* device — site-wide things such as
    /// users, roles and programs on the daemon's host. Only a grant on the built-in group
    /// [`ALL_DEVICES`] (`all`) counts: a group whose patterns happen to match every name (`*`,
    /// `re:.`) does not, as its meaning depends on the names that exist today. The decision's
    /// [`device`](Decision::device) is [`EVERY_DEVICE`].
    ///
    /// ```
    /// use mo_core::policy::{Permission, DeviceGroup, Grant, Policy, Role};
    ///
    /// let mut policy = Policy::new();
    /// policy
    ///     .add_device_group(DeviceGroup::new("everything").pattern("*")?)?
    ///     .add_grant(Grant::to_user("mallory", Role::ADMIN, "everything"))?
    ///     .add_grant(Grant::to_user("root", Role::ADMIN, "all"))?;
    /// assert!(policy.allows("mallory", Permission::Admin, "web01"));
    /// let no = policy.decide_global("mallory", Permission::Admin);
    /// assert!(!no.allowed());
    /// assert_eq!(
    ///     no.reason(),
    ///     "mallory may not administer every device: only a grant on the built-in group all covers every device"
    /// );
    /// assert!(policy.decide_global("root", Permission::Admin).allowed());
    /// # Ok::<(), mo_core::Error>(())
    /// ```
    pub fn decide_global<'a>(&'a self, user: &'a str, action: Permission) -> Decision<'a> {
        let all = self.device_group_index.get(ALL_DEVICES).copied();
        let mut outcome = Outcome::NoGrants;
        for resolved in self.grants_of(user) {
            if Some(resolved.device_group) != all {
                if matches!(outcome, Outcome::NoGrants) {
                    outcome = Outcome::NotCovered;
                }
                continue;
            }
            if self.roles[resolved.role].actions.allows(action) {
                outcome = Outcome::Allowed(resolved);
                break;
            }
            if !matches!(outcome, Outcome::Lacks(_)) {
                outcome = Outcome::Lacks(resolved);
            }
        }
        Decision {
            policy: self,
            user,
            action,
            device: EVERY_DEVICE,
            outcome,
            global: true,
        }
    }

    /// Whether `user` may take `action` over every device (the answer of
    /// [`Policy::decide_global`]).
    pub fn allows_global(&self, user: &str, action: Permission) -> bool {
        self.decide_global(user, action).allowed()
    }

    /// Whether `user` may take `action` on at least one device (any grant whose role allows
    /// it), e.g. to see the list of macros before choosing where to play one.
    pub fn allows_somewhere(&self, user: &str, action: Permission) -> bool {
        self.grants_of(user)
            .any(|r| self.roles[r.role].actions.allows(action))
    }

    /// Whether `user` may take `action` on `device` (the answer of [`Policy::decide`]).
    pub fn allows(&self, user: &str, action: Permission, device: &str) -> bool {
        self.decide(user, action, device).allowed()
    }

    /// The devices among `devices` on which `user` may take `action`, in the given order (for
    /// `list`, pass [`Permission::List`]).
    pub fn allowed_devices<'d>(
        &self,
        user: &str,
        action: Permission,
        devices: &[&'d str],
    ) -> Vec<&'d str> {
        let mut groups: Vec<&CompiledGroup> = Vec::new();
        for resolved in self.grants_of(user) {
            let group = &self.device_groups[resolved.device_group];
            if self.roles[resolved.role].actions.allows(action)
                && !groups.iter().any(|g| std::ptr::eq(*g, group))
            {
                groups.push(group);
            }
        }
        devices
            .iter()
            .copied()
            .filter(|device| groups.iter().any(|g| g.contains(device)))
            .collect()
    }
}

/// Names of roles, groups and users: not empty, no whitespace or control characters.
fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty name"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "names cannot hold whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(Error::BadSpec {
        what,
        input: name.to_string(),
        reason: reason.to_string(),
    })
}

#[derive(Debug, Clone, Copy)]
enum Outcome<'a> {
    /// This grant allows it.
    Allowed(&'a Resolved),
    /// This grant covers the device, but its role lacks the action (and no grant allows it).
    Lacks(&'a Resolved),
    /// The user has grants, none covering the device.
    NotCovered,
    /// The user has no grants at all.
    NoGrants,
}

/// The answer of [`Policy::decide`]: allowed or not, and why.
///
/// It borrows the policy and costs nothing to make; [`Decision::reason`] (or [`fmt::Display`])
/// writes the one-line explanation only when asked, e.g.
/// `alice may attach web01: role operator on group rack3`,
/// `alice may not force web01: role operator on group rack3 lacks force`,
/// `alice may not spy on db1: no grant covers db1`.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    policy: &'a Policy,
    user: &'a str,
    action: Permission,
    device: &'a str,
    outcome: Outcome<'a>,
    /// Decided over every device ([`Policy::decide_global`]).
    global: bool,
}

impl<'a> Decision<'a> {
    /// Whether the action is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allowed(_))
    }

    /// The grant the decision rests on: the one that allows the action, or, for a denial, the
    /// most relevant one — the first grant covering the device whose role lacks the action.
    /// `None` when no grant applies.
    pub fn via(&self) -> Option<&'a Grant> {
        match self.outcome {
            Outcome::Allowed(r) | Outcome::Lacks(r) => Some(&r.grant),
            Outcome::NotCovered | Outcome::NoGrants => None,
        }
    }

    /// The user asked about.
    pub fn user(&self) -> &'a str {
        self.user
    }

    /// The action asked about.
    pub fn action(&self) -> Permission {
        self.action
    }

    /// The device asked about ([`EVERY_DEVICE`] for [`Policy::decide_global`]).
    pub fn device(&self) -> &'a str {
        self.device
    }

    /// The decision in one line, saying why.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// `Ok(())` if allowed, else [`Error::Denied`] carrying the [reason](Decision::reason).
    pub fn into_result(self) -> Result<()> {
        if self.allowed() {
            Ok(())
        } else {
            Err(Error::Denied {
                reason: self.reason(),
            })
        }
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (user, verb) = (self.user, self.action.verb());
        let device = if self.global {
            "every device"
        } else {
            self.device
        };
        let grant_line = |f: &mut fmt::Formatter<'_>, r: &Resolved| {
            let role = &self.policy.roles[r.role].name;
            let group = &self.policy.device_groups[r.device_group].group.name;
            write!(f, "role {role} on group {group}")
        };
        let through = |f: &mut fmt::Formatter<'_>, r: &Resolved| match &r.grant.subject {
            Subject::Group(group) => write!(f, " (through user group {group})"),
            Subject::User(_) => Ok(()),
        };
        match self.outcome {
            Outcome::Allowed(r) => {
                write!(f, "{user} may {verb} {device}: ")?;
                grant_line(f, r)?;
                through(f, r)
            }
            Outcome::Lacks(r) => {
                write!(f, "{user} may not {verb} {device}: ")?;
                grant_line(f, r)?;
                write!(f, " lacks {}", self.action)?;
                through(f, r)
            }
            Outcome::NotCovered | Outcome::NoGrants if self.global => write!(
                f,
                "{user} may not {verb} {device}: only a grant on the built-in group {ALL_DEVICES} covers every device"
            ),
            Outcome::NotCovered => {
                write!(
                    f,
                    "{user} may not {verb} {device}: no grant covers {device}"
                )
            }
            Outcome::NoGrants => write!(f, "{user} may not {verb} {device}: {user} has no grants"),
        }
    }
}
