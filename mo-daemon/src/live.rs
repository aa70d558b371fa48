//! Open sessions are re-checked when access changes.
//!
//! A watcher task ([`watch`]) polls the store every second for changes to the policy (grants,
//! roles, groups), the users and the API tokens, and publishes a fresh [`Snapshot`] when any
//! moved (and every [`REFRESH`] anyway, so tokens that expire are noticed). Every open session —
//! SSH shells and commands, SSH and WebSocket viewers, the WebSocket event stream — holds a
//! [`Watch`] and re-checks itself against each snapshot:
//!
//! * a removed user, a revoked or expired token: the session ends with a notice naming why;
//! * a viewer whose user may no longer see the console (`spy`, `attach`, `force`, `join` all
//!   gone) is disconnected with a notice;
//! * a viewer holding the write lock (or joined) whose user lost the right to write is demoted
//!   to spy with a notice.
//!
//! Each ending and demotion is audited (`session.revoked`, `session.demoted`).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use mo_core::console::ViewerRole;
use mo_core::policy::{Permission, Policy};
use mo_store::{Store, TokenScope};
use tokio::sync::watch;

/// A snapshot is published at least this often (token expiry).
pub const REFRESH: Duration = Duration::from_secs(5);

/// What a token looked like when the snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TokenState {
    expires_ns: Option<i64>,
    revoked: bool,
}

/// Users, tokens and policy at one moment.
pub struct Snapshot {
    /// `None` before the first read of the store: nothing is revoked on its account.
    users: Option<HashSet<String>>,
    tokens: HashMap<String, TokenState>,
    policy: Option<Arc<Policy>>,
}

/// Who holds a session: the user and, for API sessions, the token and its scope.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The mo user.
    pub user: String,
    /// The API token's id, when the session came in with one.
    pub token: Option<String>,
    /// The token's scope.
    pub scope: Option<TokenScope>,
    /// The browser session, for sessions the web console's cookie opened: its logout or
    /// expiry ends them.
    pub web: Option<crate::http::SessionUse>,
}

impl Holder {
    /// A session of `user` without a token (SSH, HTTP Basic).
    pub fn user(user: &str) -> Self {
        Holder {
            user: user.to_string(),
            token: None,
            scope: None,
            web: None,
        }
    }
}

/// What a viewer should become after a re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changes.
    Keep,
    /// Writing is no longer allowed: become a spy (the reason).
    Demote(String),
    /// The session must end (the reason).
    End(String),
}

impl Snapshot {
    fn empty() -> Self {
        Snapshot {
            users: None,
            tokens: HashMap::new(),
            policy: None,
        }
    }

    /// Why `holder` may no longer hold any session, if so.
    pub fn revoked(&self, holder: &Holder) -> Option<String> {
        if let Some(why) = holder.web.as_ref().and_then(|w| w.ended()) {
            return Some(why);
        }
        let users = self.users.as_ref()?;
        if !users.contains(&holder.user) {
            return Some(format!("user {} was removed", holder.user));
        }
        let id = holder.token.as_ref()?;
        match self.tokens.get(id) {
            None => Some(format!("API token {id} was removed")),
            Some(t) if t.revoked => Some(format!("API token {id} was revoked")),
            Some(t) if t.expires_ns.is_some_and(|e| e <= now_ns()) => {
                Some(format!("API token {id} has expired"))
            }
            Some(_) => None,
        }
    }

    fn allows(&self, holder: &Holder, action: Permission, device: &str) -> bool {
        let Some(policy) = &self.policy else {
            return true;
        };
        holder.scope.is_none_or(|s| s.permits(action))
            && policy.allows(&holder.user, action, device)
    }

    /// What a viewer of `device` with `role` should become.
    pub fn viewer(&self, holder: &Holder, device: &str, role: ViewerRole) -> Verdict {
        if let Some(why) = self.revoked(holder) {
            return Verdict::End(why);
        }
        let may = |a| self.allows(holder, a, device);
        if ![
            Permission::Spy,
            Permission::Attach,
            Permission::Force,
            Permission::Join,
        ]
        .into_iter()
        .any(may)
        {
            return Verdict::End(format!(
                "{} may no longer view {device} (access was revoked)",
                holder.user
            ));
        }
        let may_write = match role {
            ViewerRole::ReadWrite => may(Permission::Attach) || may(Permission::Force),
            ViewerRole::Joined => may(Permission::Join),
            _ => true,
        };
        if may_write {
            Verdict::Keep
        } else {
            Verdict::Demote(format!(
                "{} may no longer write to {device} (access was changed); you are spying now",
                holder.user
            ))
        }
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The published snapshots.
pub struct Live {
    tx: watch::Sender<Arc<Snapshot>>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    /// No snapshot read yet.
    pub fn new() -> Self {
        Live {
            tx: watch::Sender::new(Arc::new(Snapshot::empty())),
        }
    }

    /// A watch for one session of `holder`.
    pub fn watch(&self, holder: Holder) -> Watch {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        Watch { rx, holder }
    }

    /// Make every open session re-check itself against the latest snapshot now (a browser
    /// session ended: its WebSockets close without waiting for the next snapshot).
    pub fn nudge(&self) {
        self.tx.send_modify(|_| {});
    }

    /// Publish a fresh snapshot read from `store` with `policy`.
    fn publish(&self, snapshot: Snapshot) {
        self.tx.send_replace(Arc::new(snapshot));
    }
}

/// One session's view of the snapshots.
pub struct Watch {
    rx: watch::Receiver<Arc<Snapshot>>,
    holder: Holder,
}

impl Watch {
    /// Who holds the session.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The next snapshot (waits for one; pending forever once the watcher is gone).
    pub async fn next(&mut self) -> Arc<Snapshot> {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.rx.borrow_and_update().clone()
    }

    /// Wait until the holder may no longer hold any session; returns why.
    pub async fn revoked(&mut self) -> String {
        loop {
            let snapshot = self.next().await;
            if let Some(why) = snapshot.revoked(&self.holder) {
                return why;
            }
        }
    }
}

/// Read users, tokens and the policy; the fingerprint tells whether anything moved.
fn read(store: &Store, access: &crate::access::Access) -> mo_store::Result<(u64, Snapshot)> {
    let generation = store.policy_generation()?;
    let users: HashSet<String> = store.list_users()?.into_iter().map(|u| u.name).collect();
    let tokens: HashMap<String, TokenState> = store
        .list_tokens(None)?
        .into_iter()
        .map(|t| {
            (
                t.id,
                TokenState {
                    expires_ns: t.expires_ns,
                    revoked: t.revoked_ns.is_some(),
                },
            )
        })
        .collect();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    generation.hash(&mut h);
    let mut names: Vec<&String> = users.iter().collect();
    names.sort();
    names.hash(&mut h);
    let mut toks: Vec<(&String, &TokenState)> = tokens.iter().collect();
    toks.sort_by_key(|(id, _)| *id);
    toks.hash(&mut h);
    Ok((
        h.finish(),
        Snapshot {
            users: Some(users),
            tokens,
            policy: Some(access.policy()),
        },
    ))
}

/// Poll the store every `every` and publish a snapshot when users, tokens or the policy
/// changed (and at least every [`REFRESH`]). Ends when the context is the last one left.
pub async fn watch_store(ctx: Arc<crate::Ctx>, every: Duration) {
    let mut last: Option<u64> = None;
    let mut published = tokio::time::Instant::now();
    loop {
        let c = ctx.clone();
        let read = tokio::task::spawn_blocking(move || read(&c.store, &c.access)).await;
        match read {
            Ok(Ok((fingerprint, snapshot))) => {
                if last != Some(fingerprint) || published.elapsed() >= REFRESH {
                    if last.is_some() && last != Some(fingerprint) {
                        tracing::info!(
                            "users, tokens or grants changed: re-checking open sessions"
                        );
                    }
                    ctx.live.publish(snapshot);
                    last = Some(fingerprint);
                    published = tokio::time::Instant::now();
                }
            }
            Ok(Err(e)) => tracing::error!("cannot re-read users and tokens: {e}"),
            Err(e) => tracing::error!("the session re-check failed: {e}"),
        }
        if Arc::strong_count(&ctx) == 1 {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
