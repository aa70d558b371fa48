//! Device groups, user groups, roles, grants and device secrets (`/api/v1/groups`,
//! `/api/v1/usergroups`, `/api/v1/roles`, `/api/v1/grants`, `/api/v1/devices/{name}/secrets`;
//! every call needs `admin` on the built-in group `all`).

use mo_api::{
    DeviceGroup, DeviceGroupChange, DeviceGroupDetail, Grant, NewDeviceGroup, NewSecret,
    NewUserGroup, Role, RoleActions, UserGroup, UserGroupChange,
};
use mo_core::Result;
use mo_core::secret::Secret;
use reqwest::Method;

use crate::{Client, to_json};

impl Client {
    /// The device groups, the built-in `all` first.
    pub async fn groups(&self) -> Result<Vec<DeviceGroup>> {
        self.json(Self::get(&["api", "v1", "groups"], None)).await
    }

    /// Add a device group of explicit `members` and name `patterns` (globs, `re:` regexes).
    pub async fn add_group(
        &self,
        name: &str,
        members: &[String],
        patterns: &[String],
    ) -> Result<DeviceGroup> {
        let body = to_json(&NewDeviceGroup {
            name: name.to_string(),
            members: members.to_vec(),
            patterns: patterns.to_vec(),
        })?;
        self.json(Self::post(&["api", "v1", "groups"], body, None))
            .await
    }

    /// Remove a device group (refused while grants name it, and for `all`).
    pub async fn remove_group(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "groups", name]).await
    }

    /// The grants, in the order made.
    pub async fn grants(&self) -> Result<Vec<Grant>> {
        self.json(Self::get(&["api", "v1", "grants"], None)).await
    }

    /// Give `role` on `device_group` to `subject` (a user, or `@GROUP`); in force for the
    /// next request.
    pub async fn add_grant(&self, subject: &str, role: &str, device_group: &str) -> Result<Grant> {
        let body = to_json(&Grant {
            subject: subject.to_string(),
            role: role.to_string(),
            device_group: device_group.to_string(),
        })?;
        self.json(Self::post(&["api", "v1", "grants"], body, None))
            .await
    }

    /// Take a grant back.
    pub async fn remove_grant(&self, subject: &str, role: &str, device_group: &str) -> Result<()> {
        let mut req = Self::get(&["api", "v1", "grants"], None);
        req.method = Method::DELETE;
        req.query.push(("subject", subject.to_string()));
        req.query.push(("role", role.to_string()));
        req.query.push(("device_group", device_group.to_string()));
        self.send(req).await.map(|_| ())
    }

    /// One device group and the stored devices in it.
    pub async fn group(&self, name: &str) -> Result<DeviceGroupDetail> {
        self.json(Self::get(&["api", "v1", "groups", name], None))
            .await
    }

    /// Add members and patterns to a device group and take others out; the group as it is now.
    pub async fn change_group(
        &self,
        name: &str,
        change: &DeviceGroupChange,
    ) -> Result<DeviceGroupDetail> {
        let segments = ["api", "v1", "groups", name];
        let mut req = Self::post(&segments, to_json(change)?, None);
        req.method = Method::PATCH;
        self.json(req).await
    }

    /// The user groups, by name.
    pub async fn user_groups(&self) -> Result<Vec<UserGroup>> {
        self.json(Self::get(&["api", "v1", "usergroups"], None))
            .await
    }

    /// One user group.
    pub async fn user_group(&self, name: &str) -> Result<UserGroup> {
        self.json(Self::get(&["api", "v1", "usergroups", name], None))
            .await
    }

    /// Add a user group of existing users.
    pub async fn add_user_group(&self, name: &str, members: &[String]) -> Result<UserGroup> {
        let body = to_json(&NewUserGroup {
            name: name.to_string(),
            members: members.to_vec(),
        })?;
        self.json(Self::post(&["api", "v1", "usergroups"], body, None))
            .await
    }

    /// Add users to a user group and take others out; the group as it is now.
    pub async fn change_user_group(
        &self,
        name: &str,
        add: &[String],
        rm: &[String],
    ) -> Result<UserGroup> {
        let body = to_json(&UserGroupChange {
            add: add.to_vec(),
            rm: rm.to_vec(),
        })?;
        let segments = ["api", "v1", "usergroups", name];
        let mut req = Self::post(&segments, body, None);
        req.method = Method::PATCH;
        self.json(req).await
    }

    /// Remove a user group (refused while grants are made to it).
    pub async fn remove_user_group(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "usergroups", name]).await
    }

    /// One role and its actions.
    pub async fn role(&self, name: &str) -> Result<Role> {
        self.json(Self::get(&["api", "v1", "roles", name], None))
            .await
    }

    /// Define or redefine a role allowing `actions` (`list`, `power.control`, …).
    pub async fn set_role(&self, name: &str, actions: &[String]) -> Result<Role> {
        let body = to_json(&RoleActions {
            actions: actions.to_vec(),
        })?;
        let segments = ["api", "v1", "roles", name];
        let mut req = Self::post(&segments, body, None);
        req.method = Method::PUT;
        self.json(req).await
    }

    /// Remove a role (a redefined built-in one goes back to its built-in actions).
    pub async fn remove_role(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "roles", name]).await
    }

    /// The kinds of secret a device has (never their values).
    pub async fn secrets(&self, device: &str) -> Result<Vec<String>> {
        self.json(Self::get(
            &["api", "v1", "devices", device, "secrets"],
            None,
        ))
        .await
    }

    /// Store (or replace) a device secret of `kind` (`password`, `private_key`, …); the daemon
    /// seals it with its secret key.
    pub async fn set_secret(&self, device: &str, kind: &str, value: &Secret) -> Result<()> {
        let body = to_json(&NewSecret {
            value: value.expose().to_string(),
        })?;
        let segments = ["api", "v1", "devices", device, "secrets", kind];
        let mut req = Self::post(&segments, body, None);
        req.method = Method::PUT;
        self.send(req).await.map(|_| ())
    }

    /// Remove a device secret.
    pub async fn remove_secret(&self, device: &str, kind: &str) -> Result<()> {
        self.delete(&["api", "v1", "devices", device, "secrets", kind])
            .await
    }

    /// `DELETE` the resource at `segments`.
    async fn delete(&self, segments: &[&str]) -> Result<()> {
        let mut req = Self::get(segments, None);
        req.method = Method::DELETE;
        self.send(req).await.map(|_| ())
    }
}
