//! Access control at the daemon's doors: every request is decided by the policy in the store
//! (deny by default) and every decision and every login lands in the append-only audit log.
//!
//! The path is [`mo_store::AccessGate`]: the policy is cached and reloaded when the store's
//! policy generation moves, so `mo grant add …` applies to the next request without a restart;
//! audit rows go through one background writer that commits them in batches, and is flushed at
//! shutdown.

use mo_core::policy::Permission;
use mo_store::{AccessGate, AuditEntry, Outcome, Store};

/// The daemon's policy cache and audit writer.
pub struct Access {
    gate: AccessGate,
}

impl Access {
    /// Access decisions from `store`; fails only if the audit writer thread cannot start.
    pub fn new(store: Store) -> std::io::Result<Self> {
        let hook = Box::new(crate::opsmetrics::store_write);
        Ok(Access {
            gate: AccessGate::new(store, hook)?,
        })
    }

    /// Whether `user` may take `action` over every device (a grant on the built-in group
    /// `all`), without auditing.
    pub fn allows_global(&self, user: &str, action: Permission) -> bool {
        self.policy().allows_global(user, action)
    }

    /// Whether `user` may take `action` on `device`, without auditing (for filtering lists).
    pub fn allows(&self, user: &str, action: Permission, device: &str) -> bool {
        self.policy().allows(user, action, device)
    }

    /// Record something that happened (a login, a detach, a power result).
    pub fn record(
        &self,
        user: &str,
        origin: &str,
        action: &str,
        device: Option<&str>,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        if action == "login" {
            crate::opsmetrics::login(origin, outcome == Outcome::Ok);
        }
        let entry = AuditEntry::new(Some(user), action, outcome)
            .source(Some(origin))
            .device(device)
            .detail(detail);
        self.gate.audit(entry);
        // Logins, administrative changes and refusals are rare: committed before the caller
        // answers, as when every row was written in place (decisions that allow go through the
        // writer alone: AccessGate::check).
        self.gate.flush();
    }
}

/// The gate's own calls: [`AccessGate::check`], [`AccessGate::check_global`],
/// [`AccessGate::policy`], and [`AccessGate::shutdown`] at the daemon's end.
impl std::ops::Deref for Access {
    type Target = AccessGate;

    fn deref(&self) -> &AccessGate {
        &self.gate
    }
}
