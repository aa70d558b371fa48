//! Login throttling shared by both front doors (SSH and HTTP).
//!
//! * **Per source address**: the first [`Limits::free_failures`] failed logins from an address
//!   cost nothing more than the (slow) check; each further one locks the address out for
//!   `base × 2^(n − free)` (1 s, 2 s, 4 s, … up to [`Limits::max_lockout`]). While an address is
//!   locked out its attempts are refused at once, without a password check. A successful login
//!   clears the address; an address quiet for [`Limits::forget_after`] starts over. Lockouts are
//!   audited (`login.lockout`, visible in `mo audit`).
//! * **Password checks** (argon2, tens of milliseconds of CPU each) run at most
//!   [`Limits::concurrent_checks`] at a time; callers wait in a bounded queue and are refused
//!   (HTTP 503, SSH rejection) when it is full or the wait is too long.
//! * **Failed-login audit rows** are rate-limited (a token bucket for the whole daemon), so a
//!   flood cannot fill the disk; the next row written says how many were left out.
//!
//! The table of addresses is bounded ([`Limits::max_addresses`]): when full, addresses that are
//! not locked out are forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mo_store::{AuditEntry, Outcome, Store};
use tokio::sync::Semaphore;

/// Make glibc give large blocks (argon2's 19 MiB working memory) back to the system when they
/// are freed. By default glibc raises its mmap threshold after the first such block is freed,
/// and from then on keeps every freed one in a per-thread arena: a burst of password checks on
/// the blocking pool's threads would leave the daemon hundreds of MiB larger. Call once at start.
#[allow(unsafe_code)]
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
        let ok = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 1024 * 1024) };
        if ok != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused");
        }
    }
}

/// The throttle's knobs (defaults in [`Limits::default`]).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Failed logins from one address before lockouts start.
    pub free_failures: u32,
    /// The first lockout; each further failure doubles it.
    pub base_lockout: Duration,
    /// The longest lockout.
    pub max_lockout: Duration,
    /// An address with no failure for this long starts over.
    pub forget_after: Duration,
    /// Addresses remembered at most.
    pub max_addresses: usize,
    /// Password checks (argon2) running at once.
    pub concurrent_checks: usize,
    /// Callers waiting for a password check at most; more are refused at once.
    pub max_waiting_checks: usize,
    /// How long a caller waits for a password check before it is refused.
    pub check_wait: Duration,
    /// Failed-login audit rows written in a burst.
    pub audit_burst: u32,
    /// Failed-login audit rows per second after the burst.
    pub audit_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            free_failures: 5,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_addresses: 100_000,
            concurrent_checks: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_waiting_checks: 64,
            check_wait: Duration::from_secs(5),
            audit_burst: 100,
            audit_per_second: 1,
        }
    }
}

/// What the throttle says about an attempt before its credentials are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the credentials.
    Check,
    /// The address is locked out for this much longer: refuse without checking.
    LockedOut(Duration),
}

/// Why a password could not be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// Too many password checks are queued or the wait was too long (HTTP 503).
    Busy,
    /// The store could not be read.
    Store(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Busy => f.write_str("too many logins are being checked; try again shortly"),
            CheckError::Store(e) => write!(f, "cannot check the password: {e}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct AddressState {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

/// The daemon's login throttle (one for both doors).
pub struct Throttle {
    limits: Limits,
    store: Store,
    addresses: Mutex<HashMap<IpAddr, AddressState>>,
    checks: Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    bucket: Mutex<Bucket>,
}

impl Throttle {
    /// A throttle writing its audit rows to `store`.
    pub fn new(store: Store, limits: Limits) -> Self {
        Throttle {
            checks: Semaphore::new(limits.concurrent_checks.max(1)),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(limits.audit_burst),
                refilled: Instant::now(),
                suppressed: 0,
            }),
            limits,
            store,
            addresses: Mutex::new(HashMap::new()),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Whether an attempt from `addr` may be checked now.
    pub fn admit(&self, addr: IpAddr) -> Admission {
        let now = Instant::now();
        let Ok(map) = self.addresses.lock() else {
            return Admission::Check;
        };
        match map.get(&addr).and_then(|s| s.locked_until) {
            Some(until) if until > now => Admission::LockedOut(until - now),
            _ => Admission::Check,
        }
    }

    /// A login from `addr` succeeded: forget its failures.
    pub fn succeeded(&self, addr: IpAddr) {
        if let Ok(mut map) = self.addresses.lock() {
            map.remove(&addr);
        }
    }

    /// A login from `addr` failed (`user` as given, `origin` for the audit row, `why` the
    /// reason). Writes the failed-login row (rate-limited) and, when this failure starts a
    /// lockout, a `login.lockout` row. Returns the lockout, if one started.
    pub fn failed(&self, addr: IpAddr, user: &str, origin: &str, why: &str) -> Option<Duration> {
        crate::opsmetrics::login(origin, false);
        let now = Instant::now();
        let (failures, lockout) = {
            let Ok(mut map) = self.addresses.lock() else {
                return None;
            };
            if map.len() >= self.limits.max_addresses && !map.contains_key(&addr) {
                self.evict(&mut map, now);
            }
            let state = map.entry(addr).or_insert(AddressState {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if now.duration_since(state.last_failure) > self.limits.forget_after {
                state.failures = 0;
            }
            state.failures = state.failures.saturating_add(1);
            state.last_failure = now;
            let lockout = self.lockout_for(state.failures);
            if let Some(d) = lockout {
                state.locked_until = Some(now + d);
            }
            (state.failures, lockout)
        };
        if let Some(suppressed) = self.take_audit_token() {
            let detail = if suppressed > 0 {
                format!("{why} ({suppressed} earlier failed logins were not audited one by one)")
            } else {
                why.to_string()
            };
            self.audit(
                AuditEntry::new(Some(user), "login", Outcome::Denied)
                    .source(Some(origin))
                    .detail(detail),
            );
        }
        if let Some(d) = lockout {
            tracing::warn!(%addr, failures, "login lockout for {d:?}");
            // Lockouts double, so there are few of these rows: always written.
            self.audit(
                AuditEntry::new(Some(user), "login.lockout", Outcome::Denied)
                    .source(Some(origin))
                    .detail(format!(
                        "{failures} failed logins from {addr}: locked out for {}",
                        humantime::format_duration(d)
                    )),
            );
        }
        lockout
    }

    /// An attempt refused during a lockout: counted into the audit rate limit only.
    pub fn refused_locked(&self) {
        if let Ok(mut b) = self.bucket.lock() {
            b.suppressed += 1;
        }
    }

    /// Check `user`'s `password` with at most [`Limits::concurrent_checks`] checks at once.
    pub async fn verify_password(&self, user: &str, password: &str) -> Result<bool, CheckError> {
        use std::sync::atomic::Ordering;
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = if waiting >= self.limits.max_waiting_checks {
            None
        } else {
            tokio::time::timeout(self.limits.check_wait, self.checks.acquire())
                .await
                .ok()
                .and_then(Result::ok)
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Some(permit) = permit else {
            return Err(CheckError::Busy);
        };
        let store = self.store.clone();
        let (user, password) = (user.to_string(), password.to_string());
        let result = tokio::task::spawn_blocking(move || store.verify_password(&user, &password))
            .await
            .map_err(|e| CheckError::Store(e.to_string()))?
            .map_err(|e| CheckError::Store(e.to_string()));
        drop(permit);
        result
    }

    fn lockout_for(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.limits.free_failures)?;
        if over == 0 {
            return None;
        }
        let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
        Some(
            self.limits
                .base_lockout
                .saturating_mul(factor)
                .min(self.limits.max_lockout),
        )
    }

    /// Make room: forget addresses that are not locked out (quiet ones first), then the
    /// oldest ones.
    fn evict(&self, map: &mut HashMap<IpAddr, AddressState>, now: Instant) {
        map.retain(|_, s| {
            s.locked_until.is_some_and(|t| t > now)
                && now.duration_since(s.last_failure) <= self.limits.forget_after
        });
        if map.len() >= self.limits.max_addresses {
            let mut by_age: Vec<(Instant, IpAddr)> =
                map.iter().map(|(a, s)| (s.last_failure, *a)).collect();
            by_age.sort();
            let drop = map.len() + 1 - self.limits.max_addresses / 2;
            for (_, a) in by_age.into_iter().take(drop) {
                map.remove(&a);
            }
        }
    }

    /// A token for one failed-login row, and how many rows were left out before it.
    fn take_audit_token(&self) -> Option<u64> {
        let Ok(mut b) = self.bucket.lock() else {
            return Some(0);
        };
        let now = Instant::now();
        let refill =
            now.duration_since(b.refilled).as_secs_f64() * f64::from(self.limits.audit_per_second);
        b.tokens = (b.tokens + refill).min(f64::from(self.limits.audit_burst));
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.suppressed))
        } else {
            b.suppressed += 1;
            None
        }
    }

    fn audit(&self, entry: AuditEntry) {
        if let Err(e) = self.store.append_audit(&entry) {
            tracing::error!("cannot write the audit log: {e}; entry: {entry:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn throttle(limits: Limits) -> (tempfile::TempDir, Throttle) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mo.db")).unwrap();
        (dir, Throttle::new(store, limits))
    }

    #[test]
    fn lockouts_double_after_the_free_failures_and_success_clears() {
        let (_d, t) = throttle(Limits::default());
        let a: IpAddr = "127.0.0.9".parse().unwrap();
        let b: IpAddr = "127.0.0.10".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(t.admit(a), Admission::Check);
            assert_eq!(t.failed(a, "x", "test", "wrong"), None);
        }
        assert_eq!(
            t.failed(a, "x", "test", "wrong"),
            Some(Duration::from_secs(1))
        );
        assert!(matches!(t.admit(a), Admission::LockedOut(_)));
        assert_eq!(
            t.admit(b),
            Admission::Check,
            "other addresses are not locked"
        );
        assert_eq!(
            t.failed(a, "x", "test", "wrong"),
            Some(Duration::from_secs(2))
        );
        for _ in 0..40 {
            t.failed(a, "x", "test", "wrong");
        }
        assert_eq!(
            t.failed(a, "x", "test", "wrong"),
            Some(Duration::from_secs(15 * 60)),
            "capped"
        );
        t.succeeded(a);
        assert_eq!(t.admit(a), Admission::Check);
        let rows = t
            .store
            .query_audit(&mo_store::AuditFilter::default())
            .unwrap();
        assert!(rows.iter().any(|r| r.action == "login.lockout"));
    }

    #[test]
    fn the_address_table_stays_bounded() {
        let (_d, t) = throttle(Limits {
            max_addresses: 100,
            audit_burst: 0,
            ..Limits::default()
        });
        for i in 0..1000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failed(a, "x", "test", "wrong");
        }
        assert!(t.addresses.lock().unwrap().len() <= 100);
    }

    #[test]
    fn failed_login_rows_are_rate_limited() {
        let (_d, t) = throttle(Limits {
            audit_burst: 3,
            audit_per_second: 0,
            free_failures: u32::MAX,
            ..Limits::default()
        });
        let a: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..50 {
            t.failed(a, "x", "test", "wrong");
        }
        let rows = t
            .store
            .query_audit(&mo_store::AuditFilter::default())
            .unwrap();
        assert_eq!(rows.iter().filter(|r| r.action == "login").count(), 3);
    }
}
