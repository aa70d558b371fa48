//! Who holds which console (`mod --cluster … --share-devices`, issue 14 item 3): each console
//! of the site is run by exactly one node, its owner.
//!
//! Two KV buckets:
//! - [`LEASES_BUCKET`]: one key per node, its lease. The bucket's `max_age` is the lease TTL
//!   (`--lease-ttl` of the node that made the bucket): a node renews its key every fifth of it;
//!   a node that dies stops renewing and NATS drops the key when the TTL runs out. The value is
//!   the node's *epoch*, a random word chosen each time it (re)takes its lease.
//! - [`OWNERS_BUCKET`]: one key per device, its claim: the node and epoch that hold it. A claim
//!   counts only while that node's lease carries that epoch; any other claim is dead and may be
//!   taken over, with compare-and-set on its revision (so of two nodes that try, one wins).
//!
//! Placement: a device pinned to a node (`mo device set NAME --node NODE`) is only ever taken by
//! that node; any other goes to the live node that a rendezvous hash of (device, node) ranks
//! first, so a node joining or leaving moves only the consoles that hash to it. An owner that is
//! no longer the device's place while that place is live hands it over: it stops the console,
//! then deletes its claim.
//!
//! Fencing: a node that has not renewed its lease for half the TTL (NATS unreachable, a
//! partition) stops every console it holds before the lease can run out, so no other node can
//! connect to a console while it still does; when it renews again it takes a new epoch and
//! claims its consoles afresh.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;
use mo_store::Device;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::directory::{key_of, name_of};
use crate::registry::Registry;

/// The KV bucket of node leases: key = node name, value = its epoch; `max_age` = the TTL.
pub const LEASES_BUCKET: &str = "mo_leases";

/// The KV bucket of console claims: key = device ([`key_of`]), value = a [`Claim`] (JSON).
pub const OWNERS_BUCKET: &str = "mo_owners";

/// The shortest lease TTL `mod` takes (the NATS server checks expiry about once a second).
pub const MIN_TTL: Duration = Duration::from_secs(5);

/// Who holds a device: a node, in one epoch of its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    node: String,
    epoch: String,
}

/// This node's part in placing the site's consoles: [`Ownership::placement`] tells the
/// registry which consoles to run; [`run`] keeps the lease and the claims.
pub struct Ownership {
    node: String,
    state: RwLock<State>,
    /// Whether a held console may run yet (the replicated log caught up), else why not.
    gate: std::sync::OnceLock<Gate>,
    /// Run before a claim is given up (the console stopped): see [`Ownership::set_release`].
    release: std::sync::OnceLock<Release>,
}

/// See [`Ownership::set_release`].
pub type Release = Box<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// See [`Ownership::set_gate`].
pub type Gate = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

#[derive(Default)]
struct State {
    /// This node's epoch while its lease is valid.
    epoch: Option<String>,
    /// The devices this node holds (claimed in the current epoch).
    held: BTreeSet<String>,
    /// The claims in the bucket, by device name, with their revisions.
    claims: BTreeMap<String, (Claim, u64)>,
    /// The nodes whose lease is in the bucket, with their epochs.
    live: BTreeMap<String, String>,
}

impl Ownership {
    /// The ownership of node `node` (nothing held yet: every console waits for its lease).
    pub fn new(node: &str) -> Arc<Ownership> {
        Arc::new(Ownership {
            node: node.to_owned(),
            state: RwLock::new(State::default()),
            gate: std::sync::OnceLock::new(),
            release: std::sync::OnceLock::new(),
        })
    }

    /// Whether this node runs `device`'s console: `Ok` when it holds it, else why not (shown as
    /// the device's error: `held by node B`, `down: node B unreachable`).
    pub fn placement(&self, device: &Device) -> Result<(), String> {
        let Ok(state) = self.state.read() else {
            return Err("internal error: poisoned ownership state".into());
        };
        if state.held.contains(&device.name) {
            return self.gate.get().map_or(Ok(()), |gate| gate(&device.name));
        }
        if let Some(pin) = &device.settings.node
            && *pin != self.node
        {
            return Err(if state.live.contains_key(pin) {
                format!("held by node {pin}")
            } else {
                format!("down: node {pin} unreachable")
            });
        }
        match state.claims.get(&device.name) {
            Some((claim, _))
                if claim.node != self.node && state.live.get(&claim.node) == Some(&claim.epoch) =>
            {
                Err(format!("held by node {}", claim.node))
            }
            _ => Err("not held by any node yet (the site is placing it)".into()),
        }
    }

    /// The live node running `device`'s console (this one included), if any: the node it is
    /// pinned to, else the node whose live claim names it.
    pub fn holder(&self, device: &Device) -> Option<String> {
        let state = self.state.read().ok()?;
        if state.held.contains(&device.name) {
            return Some(self.node.clone());
        }
        if let Some(pin) = &device.settings.node {
            return state.live.contains_key(pin).then(|| pin.clone());
        }
        let (claim, _) = state.claims.get(&device.name)?;
        (state.live.get(&claim.node) == Some(&claim.epoch)).then(|| claim.node.clone())
    }

    /// Run a held console only once `gate` says so (the record log replication, which catches
    /// up first); set once.
    pub fn set_gate(&self, gate: Gate) {
        let _ = self.gate.set(gate);
    }

    /// Await `release(device)` before giving up the claim on a device whose console stopped
    /// here (handed over or removed): the record log replication publishes its last records.
    /// Set once.
    pub fn set_release(&self, release: Release) {
        let _ = self.release.set(release);
    }

    /// Whether this node holds `device` now.
    pub fn holds(&self, device: &str) -> bool {
        self.state.read().is_ok_and(|s| s.held.contains(device))
    }

    /// The live nodes, and the node whose live claim holds `device` (if any).
    pub fn view_of(&self, device: &str) -> (Vec<String>, Option<String>) {
        let Ok(s) = self.state.read() else {
            return (Vec::new(), None);
        };
        let owner = s
            .claims
            .get(device)
            .filter(|(c, _)| s.live.get(&c.node) == Some(&c.epoch))
            .map(|(c, _)| c.node.clone());
        (s.live.keys().cloned().collect(), owner)
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.write().ok().map(|mut s| f(&mut s))
    }
}

/// The node among `live` that ranks first for `device` (rendezvous hashing: stable, and a
/// node's arrival or departure moves only the devices it ranks first for).
fn place<'a>(device: &str, live: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    live.into_iter().max_by_key(|node| score(device, node))
}

/// The nodes among `live` in the order the placement ranks them for `device`, best first (the
/// replicas of a device's log are the next after its owner).
pub(super) fn rank<'a>(device: &str, live: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut nodes: Vec<&str> = live.into_iter().collect();
    nodes.sort_by_key(|node| std::cmp::Reverse(score(device, node)));
    nodes
}

fn score<'a>(device: &str, node: &'a str) -> (u64, &'a str) {
    let mut h = blake3::Hasher::new();
    h.update(device.as_bytes());
    h.update(&[0]);
    h.update(node.as_bytes());
    let bytes = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    (u64::from_be_bytes(first), node)
}

/// A bucket, made with `config` if missing (every node makes it alike, so a race is harmless).
async fn open(js: &jetstream::Context, config: kv::Config) -> anyhow::Result<kv::Store> {
    if let Ok(store) = js.get_key_value(&config.bucket).await {
        return Ok(store);
    }
    let bucket = config.bucket.clone();
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        Err(create) => js
            .get_key_value(&bucket)
            .await
            .with_context(|| format!("cannot create the KV bucket {bucket}: {create}")),
    }
}

/// The two buckets and the lease TTL in force (the leases bucket's `max_age`).
async fn open_buckets(
    js: &jetstream::Context,
    ttl: Duration,
) -> anyhow::Result<(kv::Store, kv::Store, Duration)> {
    let leases = open(
        js,
        kv::Config {
            bucket: LEASES_BUCKET.into(),
            description: "mo: one lease per node (mod --cluster --share-devices)".into(),
            history: 1,
            max_age: ttl,
            storage: jetstream::stream::StorageType::File,
            num_replicas: super::store_replicas(js),
            ..Default::default()
        },
    )
    .await?;
    let owners = open(
        js,
        kv::Config {
            bucket: OWNERS_BUCKET.into(),
            description: "mo: which node holds each console (mod --cluster --share-devices)".into(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: super::store_replicas(js),
            ..Default::default()
        },
    )
    .await?;
    let mut stream = leases.stream.clone();
    let in_force = match stream.info().await {
        Ok(info) if !info.config.max_age.is_zero() => info.config.max_age,
        _ => ttl,
    };
    Ok((leases, owners, in_force))
}

/// Follow the claims bucket into `own` (again after any interruption); `changed` is told of
/// each change.
async fn watch_claims(own: Arc<Ownership>, owners: kv::Store, changed: Arc<tokio::sync::Notify>) {
    loop {
        match owners.watch_with_history(">").await {
            Ok(mut changes) => {
                while let Some(change) = changes.next().await {
                    let entry = match change {
                        Ok(entry) => entry,
                        Err(e) => {
                            tracing::warn!("cluster: watching {OWNERS_BUCKET}: {e}");
                            break;
                        }
                    };
                    let Some(name) = name_of(&entry.key) else {
                        continue;
                    };
                    let claim = matches!(entry.operation, kv::Operation::Put)
                        .then(|| serde_json::from_slice::<Claim>(&entry.value).ok())
                        .flatten();
                    own.with_state(|s| match claim {
                        Some(claim) => {
                            s.claims.insert(name, (claim, entry.revision));
                        }
                        None => {
                            s.claims.remove(&name);
                        }
                    });
                    changed.notify_one();
                }
            }
            Err(e) => tracing::warn!("cluster: cannot watch {OWNERS_BUCKET}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The nodes whose lease is in the bucket, with their epochs.
async fn live_nodes(leases: &kv::Store) -> anyhow::Result<BTreeMap<String, String>> {
    let mut keys = leases.keys().await?;
    let mut names = Vec::new();
    while let Some(key) = keys.next().await {
        names.push(key?);
    }
    let mut live = BTreeMap::new();
    for name in names {
        if let Some(epoch) = leases.get(name.as_str()).await? {
            live.insert(name, String::from_utf8_lossy(&epoch).into_owned());
        }
    }
    Ok(live)
}

/// Stop every console this node holds (its lease is not renewed in time, or is gone): they may
/// be taken by another node as soon as the lease runs out.
fn fence(own: &Ownership, registry: &Weak<Registry>) {
    let dropped = own
        .with_state(|s| {
            s.epoch = None;
            std::mem::take(&mut s.held)
        })
        .unwrap_or_default();
    if dropped.is_empty() {
        return;
    }
    tracing::warn!(
        "cluster: this node's lease is not renewed; stopping the {} console(s) it held so that \
         no other node connects to them while it still does",
        dropped.len()
    );
    if let Some(registry) = registry.upgrade() {
        tokio::spawn(async move {
            let _ = registry.sync_from_store(None).await;
        });
    }
}

/// A renewal met a wrong revision. If an earlier renewal was stored though its answer was lost
/// (timed out), the lease still carries this node's `epoch`, at a later revision: renew on that
/// one (within `left`), and nothing was lost. `None` when the lease is gone or another's.
async fn renew_on_stored(
    node: &str,
    leases: &kv::Store,
    epoch: &str,
    left: Duration,
) -> Option<u64> {
    let deadline = Instant::now() + left;
    let entry = tokio::time::timeout_at(deadline, leases.entry(node))
        .await
        .ok()?
        .ok()??;
    if entry.operation != kv::Operation::Put || entry.value != epoch.as_bytes() {
        return None;
    }
    let revision = tokio::time::timeout_at(
        deadline,
        leases.update(node, epoch.to_owned().into(), entry.revision),
    )
    .await
    .ok()?
    .ok()?;
    tracing::info!(
        "cluster: a lease renewal was stored though its answer was lost; renewed on it \
         (revision {})",
        entry.revision
    );
    Some(revision)
}

/// Keep this node's lease: renew it every `step`; take a new one (a new epoch) when it is gone;
/// fence when half the TTL passed without a renewal. Never waits for anything but NATS, so the
/// fence comes on time.
async fn keep_lease(
    own: Arc<Ownership>,
    leases: kv::Store,
    ttl: Duration,
    registry: Weak<Registry>,
    placed: Arc<tokio::sync::Notify>,
) {
    let step = (ttl / 5).clamp(Duration::from_millis(200), Duration::from_secs(2));
    // After a renewal failed, the next try comes this soon: JetStream answers again as soon as
    // it has elected a new leader for the bucket (4-9 s after a server's death, measured), and
    // a try a whole step later could come after the fence (as in a CI run: leader elected 1.6 s
    // before the fence, next try due at it).
    let retry = (step / 4).max(Duration::from_millis(100));
    // Renewals that failed in a row (the first is warned of, then every tenth).
    let mut failed = 0u32;
    // (revision, until when the consoles may run without a renewal: half the TTL after the
    // renewal was sent, so the lease cannot have run out before)
    let mut lease: Option<(u64, Instant)> = None;
    loop {
        if registry.strong_count() == 0 {
            return;
        }
        let sent = Instant::now();
        let epoch = own.with_state(|s| s.epoch.clone()).flatten();
        let renewed = match (lease, epoch) {
            (Some((revision, valid_until)), Some(epoch)) => {
                let left = valid_until.saturating_duration_since(sent).min(step);
                match tokio::time::timeout(
                    left,
                    leases.update(own.node.as_str(), epoch.clone().into(), revision),
                )
                .await
                {
                    Ok(Ok(revision)) => Some(revision),
                    Ok(Err(e)) if matches!(e.kind(), kv::UpdateErrorKind::WrongLastRevision) => {
                        // Until the consoles may no longer run without a renewal.
                        let safe = valid_until.saturating_duration_since(Instant::now());
                        match renew_on_stored(&own.node, &leases, &epoch, safe).await {
                            Some(revision) => Some(revision),
                            None => {
                                tracing::warn!("cluster: cannot renew this node's lease: {e}");
                                // It ran out: what was held in that epoch may be another's now.
                                fence(&own, &registry);
                                lease = None;
                                None
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        if failed.is_multiple_of(10) {
                            tracing::warn!(
                                "cluster: cannot renew this node's lease: {e} (trying every {})",
                                humantime::format_duration(retry)
                            );
                        }
                        None
                    }
                    Err(_) => None,
                }
            }
            _ => {
                fence(&own, &registry);
                lease = None;
                let epoch = format!("{:016x}", rand::random::<u64>());
                match tokio::time::timeout(
                    step,
                    leases.put(own.node.as_str(), epoch.clone().into()),
                )
                .await
                {
                    Ok(Ok(revision)) => {
                        own.with_state(|s| s.epoch = Some(epoch));
                        placed.notify_one();
                        Some(revision)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("cluster: cannot take this node's lease: {e}");
                        None
                    }
                    Err(_) => None,
                }
            }
        };
        let next = if let Some(revision) = renewed {
            lease = Some((revision, sent + ttl / 2));
            failed = 0;
            sent + step
        } else if lease.is_some() {
            // Held but not renewed: try again soon, so that NATS answering again renews the
            // lease before the fence.
            failed = failed.saturating_add(1);
            sent + retry
        } else {
            sent + step
        };
        // Sleep until the next renewal, or until the lease stops being safe to hold.
        let deadline = lease.map(|(_, until)| until);
        tokio::time::sleep_until(deadline.map_or(next, |d| d.min(next))).await;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::warn!("cluster: this node's lease was not renewed in time");
            fence(&own, &registry);
            lease = None;
        }
    }
}

/// Keep this node's lease and claims, for ever: renew, fence, place, claim, hand over.
pub async fn run(
    own: Arc<Ownership>,
    js: jetstream::Context,
    registry: Weak<Registry>,
    requested_ttl: Duration,
) {
    let (leases, owners, ttl) = loop {
        match tokio::time::timeout(super::REQUEST_TIMEOUT, open_buckets(&js, requested_ttl)).await {
            Ok(Ok(buckets)) => break buckets,
            Ok(Err(e)) => tracing::warn!("cluster: console leases: {e:#}"),
            Err(_) => tracing::warn!("cluster: console leases: NATS does not answer"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if ttl != requested_ttl {
        tracing::info!(
            "cluster: the site's lease TTL is {} (the bucket {LEASES_BUCKET} says so), not \
             --lease-ttl {}",
            humantime::format_duration(ttl),
            humantime::format_duration(requested_ttl)
        );
    }
    let changed = Arc::new(tokio::sync::Notify::new());
    let watcher = tokio::spawn(watch_claims(own.clone(), owners.clone(), changed.clone()));
    let keeper = tokio::spawn(keep_lease(
        own.clone(),
        leases.clone(),
        ttl,
        registry.clone(),
        changed.clone(),
    ));
    let step = (ttl / 5).clamp(Duration::from_millis(200), Duration::from_secs(2));
    let timeout = step.min(super::REQUEST_TIMEOUT);
    loop {
        tokio::select! {
            () = tokio::time::sleep(step) => {}
            () = changed.notified() => {}
        }
        let Some(registry) = registry.upgrade() else {
            watcher.abort();
            keeper.abort();
            return;
        };
        let Some(epoch) = own.with_state(|s| s.epoch.clone()).flatten() else {
            continue;
        };
        // Who is live, and which devices the site has.
        let live = match tokio::time::timeout(timeout, live_nodes(&leases)).await {
            Ok(Ok(live)) => live,
            Ok(Err(e)) => {
                tracing::warn!("cluster: cannot read {LEASES_BUCKET}: {e:#}");
                continue;
            }
            Err(_) => continue,
        };
        let devices: Vec<Device> = registry.list().into_iter().map(|e| e.device).collect();
        own.with_state(|s| s.live = live.clone());
        let mine = Claim {
            node: own.node.clone(),
            epoch: epoch.clone(),
        };
        let claims = own.with_state(|s| s.claims.clone()).unwrap_or_default();
        let mut hand_over = Vec::new();
        let mut held = BTreeSet::new();
        for device in &devices {
            let name = &device.name;
            let wanted = match &device.settings.node {
                Some(pin) => live.contains_key(pin).then_some(pin.as_str()),
                None => place(name, live.keys().map(String::as_str)),
            };
            let claim = claims.get(name);
            if claim.is_some_and(|(c, _)| *c == mine) {
                match wanted {
                    Some(place) if place != own.node => hand_over.push(name.clone()),
                    _ => {
                        held.insert(name.clone());
                    }
                }
                continue;
            }
            if wanted != Some(own.node.as_str()) {
                continue;
            }
            // A claim counts while its node's lease carries its epoch; that node fenced itself
            // before its lease could run out.
            let dead = claim.is_none_or(|(c, _)| live.get(&c.node) != Some(&c.epoch));
            if !dead {
                continue;
            }
            let value: bytes::Bytes = serde_json::to_vec(&mine).unwrap_or_default().into();
            let key = key_of(name);
            let taken = match claim {
                Some((_, revision)) => {
                    tokio::time::timeout(timeout, owners.update(&key, value, *revision))
                        .await
                        .map(|r| r.map_err(|e| e.to_string()))
                }
                None => tokio::time::timeout(timeout, owners.create(&key, value))
                    .await
                    .map(|r| r.map_err(|e| e.to_string())),
            };
            match taken {
                Ok(Ok(revision)) => {
                    tracing::info!(device = %name, "cluster: this node now holds the console");
                    own.with_state(|s| s.claims.insert(name.clone(), (mine.clone(), revision)));
                    held.insert(name.clone());
                }
                // Another node took it first: the watch says which.
                Ok(Err(e)) => tracing::debug!(device = %name, "cluster: claim lost: {e}"),
                Err(_) => tracing::debug!(device = %name, "cluster: claim timed out"),
            }
        }
        // Run what is held, unless the lease was lost meanwhile (then nothing is).
        let changed_held = own
            .with_state(|s| {
                let now = if s.epoch.as_ref() == Some(&epoch) {
                    held
                } else {
                    BTreeSet::new()
                };
                let changed = s.held != now;
                s.held = now;
                changed
            })
            .unwrap_or(false);
        // Also when only the reason shown for a console run elsewhere changed (`held by node
        // B`, `down: node B unreachable`).
        let stale = changed_held
            || registry
                .list()
                .iter()
                .any(|e| e.placed_elsewhere().map(str::to_owned) != own.placement(&e.device).err());
        if stale {
            let _ = registry.sync_from_store(None).await;
        }
        // Hand over what belongs elsewhere (its console is stopped by now), and drop the claims
        // of devices the site no longer has.
        let known: BTreeSet<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        let drop: Vec<String> = claims
            .iter()
            .filter(|(name, (c, _))| *c == mine && !known.contains(name.as_str()))
            .map(|(name, _)| name.clone())
            .chain(hand_over)
            .collect();
        for name in drop {
            let Some((claim, revision)) =
                own.with_state(|s| s.claims.get(&name).cloned()).flatten()
            else {
                continue;
            };
            if claim != mine {
                continue;
            }
            // What its stopped console wrote last reaches the site before the next owner
            // catches up on it.
            if let Some(release) = own.release.get() {
                let _ = tokio::time::timeout(super::REQUEST_TIMEOUT, release(name.clone())).await;
            }
            let gone = tokio::time::timeout(
                timeout,
                owners.delete_expect_revision(key_of(&name), Some(revision)),
            )
            .await;
            if matches!(gone, Ok(Ok(()))) {
                tracing::info!(device = %name, "cluster: gave the console up (handed over or removed)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn placement_is_stable_and_moves_only_what_a_node_ranked_first() {
        let three = ["a", "b", "c"];
        let names: Vec<String> = (0..300).map(|i| format!("dev{i}")).collect();
        let before: Vec<&str> = names
            .iter()
            .map(|n| place(n, three.iter().copied()).unwrap_or_default())
            .collect();
        // Every node gets some, and the answer does not depend on the order of the nodes.
        for node in three {
            let count = before.iter().filter(|p| **p == node).count();
            assert!((50..=150).contains(&count), "{node}: {count} of 300");
        }
        for (n, p) in names.iter().zip(&before) {
            assert_eq!(place(n, ["c", "a", "b"]), Some(*p));
        }
        // Without `c`, only c's devices move.
        for (n, p) in names.iter().zip(&before) {
            let after = place(n, ["a", "b"]).unwrap_or_default();
            if *p != "c" {
                assert_eq!(after, *p, "{n} moved from {p}");
            }
        }
        assert_eq!(place("x", std::iter::empty()), None);
    }

    #[test]
    fn placement_says_why_a_console_is_not_run_here() {
        let own = Ownership::new("a");
        let mut pinned = Device::new("p", "sim://p");
        pinned.settings.node = Some("b".into());
        let free = Device::new("f", "sim://f");
        assert!(
            own.placement(&pinned)
                .unwrap_err()
                .contains("down: node b unreachable")
        );
        own.with_state(|s| {
            s.live.insert("b".into(), "e1".into());
            s.claims.insert(
                "f".into(),
                (
                    Claim {
                        node: "b".into(),
                        epoch: "e1".into(),
                    },
                    1,
                ),
            );
        });
        assert_eq!(own.placement(&pinned).unwrap_err(), "held by node b");
        assert_eq!(own.placement(&free).unwrap_err(), "held by node b");
        // A claim of an older epoch of b is dead.
        own.with_state(|s| s.live.insert("b".into(), "e2".into()));
        assert!(own.placement(&free).unwrap_err().contains("not held"));
        own.with_state(|s| s.held.insert("f".into()));
        assert_eq!(own.placement(&free), Ok(()));
    }
}
