//! Device groups and grants (`/api/v1/groups`, `/api/v1/grants`; every call needs `admin` on
//! the built-in group `all`).

use mo_api::{DeviceGroup, Grant, NewDeviceGroup};
use mo_core::Result;
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
        let segments = ["api", "v1", "groups", name];
        let mut req = Self::get(&segments, None);
        req.method = Method::DELETE;
        self.send(req).await.map(|_| ())
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
}
