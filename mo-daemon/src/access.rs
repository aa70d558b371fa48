//! Access control at the daemon's doors: every request is decided by the policy in the store
//! (deny by default) and every decision and every login lands in the append-only audit log.
//!
//! The policy is loaded once and reloaded when the store's policy change counter moves, so
//! `mo grant add …` applies to the next request without a restart.

use std::sync::{Arc, RwLock};

use mo_core::policy::{Permission, Policy};
use mo_store::{AuditEntry, Outcome, Store};

/// The daemon's policy cache and audit writer.
pub struct Access {
    store: Store,
    cache: RwLock<Option<(u64, Arc<Policy>)>>,
}

impl Access {
    /// Access decisions from `store`.
    pub fn new(store: Store) -> Self {
        Access {
            store,
            cache: RwLock::new(None),
        }
    }

    /// The policy in force (reloaded when it changed in the store). A store that cannot be
    /// read gives an empty policy: everything is denied, nothing is opened by accident.
    pub fn policy(&self) -> Arc<Policy> {
        let generation = self.store.policy_generation().ok();
        if let (Some(generation), Ok(cache)) = (generation, self.cache.read())
            && let Some((cached, policy)) = cache.as_ref()
            && *cached == generation
        {
            return policy.clone();
        }
        match self.store.load_policy() {
            Ok(policy) => {
                let policy = Arc::new(policy);
                if let (Some(generation), Ok(mut cache)) = (generation, self.cache.write()) {
                    *cache = Some((generation, policy.clone()));
                }
                policy
            }
            Err(e) => {
                tracing::error!("cannot load the access policy, denying everything: {e}");
                Arc::new(Policy::new())
            }
        }
    }

    /// Decide whether `user` may take `action` on `device`; the decision is audited. A denial
    /// is returned as the one-line reason to show.
    pub fn check(
        &self,
        user: &str,
        origin: &str,
        action: Permission,
        device: &str,
    ) -> Result<(), String> {
        let policy = self.policy();
        let decision = policy.decide(user, action, device);
        let allowed = decision.allowed();
        let entry = AuditEntry::from_decision(&decision, Some(origin));
        self.audit(entry);
        if allowed {
            Ok(())
        } else {
            Err(format!("denied: {}", decision.reason()))
        }
    }

    /// Decide and audit `action` by `user` over every device (users, roles, the daemon's host):
    /// only a grant on the built-in group `all` counts ([`Policy::decide_global`]). A denial is
    /// returned as the one-line reason to show.
    pub fn check_global(&self, user: &str, origin: &str, action: Permission) -> Result<(), String> {
        let policy = self.policy();
        let decision = policy.decide_global(user, action);
        let allowed = decision.allowed();
        self.audit(AuditEntry::from_decision(&decision, Some(origin)));
        if allowed {
            Ok(())
        } else {
            Err(format!("denied: {}", decision.reason()))
        }
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
        self.audit(entry);
    }

    fn audit(&self, entry: AuditEntry) {
        let written = self.store.append_audit(&entry);
        crate::opsmetrics::store_write(written.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::error!("cannot write the audit log: {e}; entry: {entry:?}");
        }
    }
}
