//! Access control: who may do what to which device. Pure: no I/O, no store, no clock.
//!
//! - An [`Permission`] is one thing a user can do (`spy`, `force`, `power.control`, …); `admin`
//!   implies every action.
//! - A [`Role`] is a named [`PermissionSet`]. Built in, and redefinable: `viewer` (list, spy,
//!   log.read), `operator` (viewer + attach, join, break, log.read_input, log.note, power.status,
//!   host.show), `admin` (everything).
//! - A [`DeviceGroup`] holds devices named explicitly and devices whose names match its
//!   [`NamePattern`]s — globs such as `web*` or `rack3-??`, or regexes written
//!   `re:^db[0-9]+$`. A device may be in many groups; the group `all` is built in.
//! - A [`UserGroup`] names users; a [`Grant`] gives a role on a device group to a user or a
//!   user group.
//! - [`Policy::decide`] denies by default and allows when any grant allows. Patterns are
//!   compiled once, when a group is added; a decision allocates nothing, and its
//!   [reason](Decision::reason) — one line saying why — is written only when asked for.
//!
//! ```
//! use mo_core::policy::{Permission, DeviceGroup, Grant, Policy, Role, UserGroup};
//!
//! let mut policy = Policy::new();
//! policy
//!     .add_device_group(DeviceGroup::new("rack3").member("web01").pattern("rack3-??")?)?
//!     .add_user_group(UserGroup::new("ops").member("alice"))?
//!     .add_grant(Grant::to_group("ops", Role::OPERATOR, "rack3"))?;
//!
//! let yes = policy.decide("alice", Permission::Attach, "web01");
//! assert!(yes.allowed());
//! assert_eq!(
//!     yes.reason(),
//!     "alice may attach web01: role operator on group rack3 (through user group ops)"
//! );
//! let no = policy.decide("alice", Permission::Force, "rack3-17");
//! assert!(!no.allowed());
//! assert_eq!(
//!     no.reason(),
//!     "alice may not force rack3-17: role operator on group rack3 lacks force (through user group ops)"
//! );
//! assert_eq!(
//!     policy.allowed_devices("alice", Permission::List, &["web01", "db1", "rack3-02"]),
//!     ["web01", "rack3-02"]
//! );
//! # Ok::<(), mo_core::Error>(())
//! ```

mod decide;
mod grant;
mod groups;
mod permission;
#[cfg(test)]
mod tests;

pub use decide::{Decision, Policy};
pub use grant::{Grant, Role, Subject};
pub use groups::{ALL_DEVICES, DeviceGroup, EVERY_DEVICE, NamePattern, UserGroup};
pub use permission::{Permission, PermissionSet};
