//! The site's directory (`mod --cluster … --share-directory`, issue 14 item 2): devices, users
//! with their SSH keys, user and device groups, roles, grants, API tokens and sealed device
//! secrets live in JetStream KV, and each node's SQLite store is its local replica.
//!
//! Two buckets, one [`Shelf`] each: [`DEVICES_BUCKET`] holds the devices (key: the name, value:
//! the stored [`Device`] as JSON, without secrets), [`DIRECTORY_BUCKET`] everything else, under
//! kind-prefixed keys (`user.alice`, `grant.user.alice.operator.all`; value: the entry as
//! [`mo_store::SHARED_KINDS`] reads it). One bucket for the rest keeps a user ahead of the
//! tokens and group memberships that name it: a watch delivers a bucket in write order.
//!
//! One task per shelf keeps the store and the bucket in step, generically over its [`Kind`]s, by
//! KV revision:
//! - a change in the bucket (the watch) is written into the local store, unless the store
//!   already holds exactly that; an entry that cannot be written yet (its user or device has not
//!   arrived) is tried again on every poll;
//! - a change in the local store (`mo` on the data directory, the API, an import; seen by a poll
//!   of the shelf's change counter) is written into the bucket with compare-and-set on the
//!   revision this node last saw, so two nodes editing one entry at once cannot overwrite each
//!   other silently: the loser's write is refused, reported as a conflict (log and audit
//!   `cluster.conflict`), and the winner's version replaces its local one. The same holds when
//!   the site's change arrives before this node sent its own.
//!
//! When a node joins, the site's version of an entry wins over its local one; local entries the
//! site lacks are added to the site.
//!
//! A write through the API is written through ([`WriteThrough`]): the handler asks every shelf
//! to send the store's changes now, and answers the conflicts they met as its error.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::kv;
use futures_util::StreamExt as _;
use mo_store::{AuditEntry, Device, Outcome, SharedKind, Store};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The KV bucket of the site's devices.
pub const DEVICES_BUCKET: &str = "mo_devices";

/// The KV bucket of the rest of the site's directory.
pub const DIRECTORY_BUCKET: &str = "mo_directory";

/// How often the local store's change counters are looked at.
const POLL: Duration = Duration::from_millis(250);

/// A device name as a KV key: letters, digits, `_` and `-` as they are; any other byte as
/// `=XX` (hex), so dots never reach the subject.
pub fn key_of(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            key.push(char::from(b));
        } else {
            key.push_str(&format!("={b:02x}"));
        }
    }
    key
}

/// The device name of a KV key ([`key_of`] reversed); `None` for a key no name makes.
pub fn name_of(key: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(key.len());
    let mut rest = key.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'=' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    (key_of(&name) == key).then_some(name)
}

/// One kind of entry a [`Shelf`] holds, and how the local store reads and writes it. Keys are
/// lists of names; values are JSON.
pub trait Kind: Send + Sync {
    /// What the logs call an entry of this kind (`device`, `user`).
    fn label(&self) -> &'static str;
    /// How many names a key has.
    fn key_len(&self) -> usize;
    /// Every entry in the store, by key.
    fn list(&self, store: &Store) -> mo_store::Result<BTreeMap<Vec<String>, Value>>;
    /// The entry named `key`, if in the store.
    fn get(&self, store: &Store, key: &[String]) -> mo_store::Result<Option<Value>>;
    /// Make the store hold `value` under `key` (bytes from the network: checked, never panics).
    fn put(&self, store: &Store, key: &[String], value: &Value) -> mo_store::Result<()>;
    /// Remove the entry named `key`, if there.
    fn remove(&self, store: &Store, key: &[String]) -> mo_store::Result<()>;
}

/// Devices, as [`Device`] JSON without secrets.
struct Devices;

fn not_json(what: &str, e: impl std::fmt::Display) -> mo_store::Error {
    mo_store::Error::BadValue {
        what: what.to_string(),
        value: String::new(),
        reason: e.to_string(),
    }
}

fn device_json(device: &Device) -> mo_store::Result<Value> {
    serde_json::to_value(device).map_err(|e| not_json("device", e))
}

impl Kind for Devices {
    fn label(&self) -> &'static str {
        "device"
    }

    fn key_len(&self) -> usize {
        1
    }

    fn list(&self, store: &Store) -> mo_store::Result<BTreeMap<Vec<String>, Value>> {
        store
            .list_devices()?
            .iter()
            .map(|d| Ok((vec![d.name.clone()], device_json(d)?)))
            .collect()
    }

    fn get(&self, store: &Store, key: &[String]) -> mo_store::Result<Option<Value>> {
        let [name] = key else { return Ok(None) };
        store
            .get_device(name)?
            .as_ref()
            .map(device_json)
            .transpose()
    }

    fn put(&self, store: &Store, key: &[String], value: &Value) -> mo_store::Result<()> {
        let [name] = key else {
            return Err(not_json("device key", "one name expected"));
        };
        mo_store::validate_device_name(name)?;
        let device: Device = serde_json::from_value(value.clone())
            .map_err(|e| not_json(&format!("device `{name}`"), e))?;
        if device.name != *name {
            return Err(not_json(
                &format!("device `{name}`"),
                format!("the key holds device `{}`", device.name),
            ));
        }
        match store.get_device(name)? {
            Some(old) if old == device => Ok(()),
            Some(_) => store.update_device(&device),
            None => store.add_device(&device),
        }
    }

    fn remove(&self, store: &Store, key: &[String]) -> mo_store::Result<()> {
        let [name] = key else { return Ok(()) };
        if store.get_device(name)?.is_some() {
            store.remove_device(name)?;
        }
        Ok(())
    }
}

/// A kind the store shares generically, table by table ([`mo_store::SHARED_KINDS`]).
struct Table(&'static SharedKind);

impl Kind for Table {
    fn label(&self) -> &'static str {
        self.0.name
    }

    fn key_len(&self) -> usize {
        self.0.key_len()
    }

    fn list(&self, store: &Store) -> mo_store::Result<BTreeMap<Vec<String>, Value>> {
        store.shared_entries(self.0)
    }

    fn get(&self, store: &Store, key: &[String]) -> mo_store::Result<Option<Value>> {
        store.shared_entry(self.0, key)
    }

    fn put(&self, store: &Store, key: &[String], value: &Value) -> mo_store::Result<()> {
        store.put_shared(self.0, key, value)
    }

    fn remove(&self, store: &Store, key: &[String]) -> mo_store::Result<()> {
        store.remove_shared(self.0, key)
    }
}

/// A KV bucket and the kinds of entry it holds, under which key prefix.
pub struct Shelf {
    bucket: &'static str,
    description: &'static str,
    /// Each kind with its key prefix (empty in a bucket of one kind).
    kinds: Vec<(&'static str, Arc<dyn Kind>)>,
    /// The store's change counter for these kinds.
    generation: fn(&Store) -> mo_store::Result<u64>,
}

/// What a node sharing its directory keeps in step with the site: the devices, and the rest.
pub fn shelves() -> Vec<Shelf> {
    vec![
        Shelf {
            bucket: DEVICES_BUCKET,
            description: "mo: the site's devices (mod --cluster --share-directory)",
            kinds: vec![("", Arc::new(Devices))],
            generation: Store::generation,
        },
        Shelf {
            bucket: DIRECTORY_BUCKET,
            description: "mo: the site's users, groups, roles, grants, tokens and secrets",
            kinds: mo_store::SHARED_KINDS
                .iter()
                .map(|k| (k.name, Arc::new(Table(k)) as Arc<dyn Kind>))
                .collect(),
            generation: Store::directory_generation,
        },
    ]
}

impl Shelf {
    /// The KV key of the entry `key` of the kind with `prefix`.
    fn kv_key(prefix: &str, key: &[String]) -> String {
        let names: Vec<String> = key.iter().map(|k| key_of(k)).collect();
        if prefix.is_empty() {
            names.join(".")
        } else {
            format!("{prefix}.{}", names.join("."))
        }
    }

    /// The kind (its index) and key of a KV key; `None` for a key no entry makes.
    fn parse(&self, kv_key: &str) -> Option<(usize, Vec<String>)> {
        let (i, rest) = match self.kinds.iter().position(|(p, _)| p.is_empty()) {
            Some(i) => (i, kv_key),
            None => {
                let (prefix, rest) = kv_key.split_once('.')?;
                (self.kinds.iter().position(|(p, _)| *p == prefix)?, rest)
            }
        };
        let key: Vec<String> = rest.split('.').map(name_of).collect::<Option<_>>()?;
        (key.len() == self.kinds.get(i)?.1.key_len()).then_some((i, key))
    }

    /// How the logs name the entry of a KV key: `user `alice``.
    fn shown(&self, kv_key: &str) -> String {
        match self.parse(kv_key) {
            Some((i, key)) => format!("{} `{}`", self.kinds[i].1.label(), key.join(" ")),
            None => format!("`{kv_key}` of {}", self.bucket),
        }
    }
}

/// How many conflicts [`WriteThrough`] remembers for the writes waiting on it.
const REMEMBERED_CONFLICTS: usize = 256;

/// How long a write through waits for the site before the local write stands alone.
pub const WRITE_THROUGH_WAIT: Duration = Duration::from_secs(5);

/// One request to a shelf's task: send the store's changes now and say when done (`Err`: the
/// site could not be reached or read; the changes are sent later).
struct Flush {
    done: oneshot::Sender<Result<(), String>>,
}

/// Writing the directory through to the site before a write is answered: the conflicts this
/// node's shelves met, numbered, and a way to make every shelf send its changes now.
#[derive(Default)]
pub struct WriteThrough {
    next: AtomicU64,
    recent: Mutex<VecDeque<(u64, String)>>,
    shelves: Mutex<Vec<mpsc::Sender<Flush>>>,
}

/// How a write through ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// The site holds the node's changes.
    Sent,
    /// The site could not be asked in time (NATS away, the node still joining): the local
    /// write stands and is sent later.
    Later(String),
    /// The site refused these entries (one line each): another node changed them first, and
    /// this node now holds the site's version.
    Refused(Vec<String>),
}

impl WriteThrough {
    /// A new write through, shelves to come ([`share`] registers each).
    pub fn new() -> Arc<WriteThrough> {
        Arc::new(WriteThrough::default())
    }

    /// The number of the next conflict: take it before writing the store, give it to
    /// [`WriteThrough::send`] after.
    pub fn mark(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    fn conflict(&self, text: String) {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut recent) = self.recent.lock() {
            recent.push_back((n, text));
            while recent.len() > REMEMBERED_CONFLICTS {
                recent.pop_front();
            }
        }
    }

    fn register(&self) -> mpsc::Receiver<Flush> {
        let (tx, rx) = mpsc::channel(16);
        if let Ok(mut shelves) = self.shelves.lock() {
            shelves.push(tx);
        }
        rx
    }

    /// Have every shelf send the store's changes now (within [`WRITE_THROUGH_WAIT`]); the
    /// conflicts met since `mark` are the write's.
    pub async fn send(&self, mark: u64) -> Written {
        let shelves = self.shelves.lock().map(|s| s.clone()).unwrap_or_default();
        if shelves.is_empty() {
            return Written::Later("the site's directory is not reached yet".into());
        }
        let mut waits = Vec::new();
        for shelf in shelves {
            let (done, wait) = oneshot::channel();
            if shelf.try_send(Flush { done }).is_ok() {
                waits.push(wait);
            }
        }
        let all = futures_util::future::join_all(waits);
        let later = match tokio::time::timeout(WRITE_THROUGH_WAIT, all).await {
            Err(_) => Some("the site did not answer in time".to_string()),
            Ok(answers) => answers.into_iter().find_map(|a| match a {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(why),
                Err(_) => Some("the directory's task stopped".to_string()),
            }),
        };
        let refused: Vec<String> = self
            .recent
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(n, _)| *n >= mark)
                    .map(|(_, t)| t.clone())
                    .collect()
            })
            .unwrap_or_default();
        match (refused.is_empty(), later) {
            (false, _) => Written::Refused(refused),
            (true, Some(why)) => Written::Later(why),
            (true, None) => Written::Sent,
        }
    }
}

/// Run a store call off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> mo_store::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = store.clone();
    Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
}

/// A shelf's replica task state: what the store and the bucket last agreed on (by KV key), with
/// its revision.
struct Replica {
    store: Store,
    kv: kv::Store,
    shelf: Shelf,
    agreed: BTreeMap<String, (Value, u64)>,
    /// The site's changes that the store refused so far (a user or device not there yet).
    pending: BTreeMap<String, kv::Entry>,
    /// Keys whose conflict was reported and whose site version has not arrived yet.
    conflicted: BTreeSet<String>,
    /// Whether this node has read the whole bucket once (until then, the site's version of an
    /// entry replaces the local one without a conflict).
    joined: bool,
    /// Where the API's writes learn of conflicts.
    through: Arc<WriteThrough>,
}

impl Replica {
    /// Say that the local version of `kv_key` lost against the site's: in the log and the
    /// audit log (`cluster.conflict`).
    async fn conflict(&mut self, kv_key: &str, why: &str) {
        let text = format!(
            "conflict on {}: {why}; the site's version wins",
            self.shelf.shown(kv_key)
        );
        tracing::warn!("cluster: {text}");
        self.through.conflict(format!(
            "{} changed on another node first ({why}); this node now has the site's version",
            self.shelf.shown(kv_key)
        ));
        let entry = AuditEntry::new(None, "cluster.conflict", Outcome::Failed).detail(text);
        if let Err(e) = blocking(&self.store, move |s| s.append_audit(&entry)).await {
            tracing::error!("cluster: cannot audit a conflict: {e:#}");
        }
        self.conflicted.insert(kv_key.to_string());
    }

    /// A change of the bucket, written into the store; `Err` when the store refuses it.
    async fn heard(&mut self, entry: &kv::Entry) -> anyhow::Result<()> {
        if self
            .agreed
            .get(&entry.key)
            .is_some_and(|(_, rev)| *rev >= entry.revision)
        {
            return Ok(());
        }
        let Some((i, key)) = self.shelf.parse(&entry.key) else {
            tracing::warn!(
                "cluster: {}: key `{}` ignored",
                self.shelf.bucket,
                entry.key
            );
            return Ok(());
        };
        let site = match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<Value>(&entry.value) {
                Ok(value) => Some(value),
                Err(e) => {
                    let shown = self.shelf.shown(&entry.key);
                    tracing::warn!("cluster: {}: {shown} ignored: {e}", self.shelf.bucket);
                    return Ok(());
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        let kind = self.shelf.kinds[i].1.clone();
        let local = {
            let (kind, key) = (kind.clone(), key.clone());
            blocking(&self.store, move |s| kind.get(s, &key)).await?
        };
        if local != site {
            let unsent = match self.agreed.get(&entry.key) {
                Some((agreed, _)) => local.as_ref() != Some(agreed),
                // Made here and not sent yet; before joining, the site's version simply wins.
                None => self.joined && local.is_some(),
            };
            if unsent && !self.conflicted.contains(&entry.key) {
                self.conflict(&entry.key, "it changed here and on another node at once")
                    .await;
            } else if !self.joined && local.is_some() {
                tracing::info!(
                    "cluster: joining the site: the site's {} replaces this node's",
                    self.shelf.shown(&entry.key)
                );
            }
            let write = site.clone();
            blocking(&self.store, move |s| match &write {
                Some(value) => kind.put(s, &key, value),
                None => kind.remove(s, &key),
            })
            .await
            .with_context(|| {
                format!(
                    "cannot write the site's {} into the store",
                    self.shelf.shown(&entry.key)
                )
            })?;
        }
        self.conflicted.remove(&entry.key);
        match site {
            Some(value) => {
                self.agreed
                    .insert(entry.key.clone(), (value, entry.revision));
            }
            None => {
                self.agreed.remove(&entry.key);
            }
        }
        Ok(())
    }

    /// Take a change of the bucket; one the store refuses waits and is tried again.
    async fn take(&mut self, entry: kv::Entry) {
        let again = self.pending.remove(&entry.key).is_some();
        if let Err(e) = self.heard(&entry).await {
            if !again {
                tracing::warn!("cluster: {e:#} (tried again while the store changes)");
            }
            self.pending.insert(entry.key.clone(), entry);
        }
    }

    /// Try the site's changes the store refused so far again.
    async fn retry_pending(&mut self) {
        let waiting: Vec<kv::Entry> = self.pending.values().cloned().collect();
        for entry in waiting {
            self.take(entry).await;
        }
    }

    /// A write of `kv_key` the bucket refused: nothing to do when the site holds what this
    /// node holds, else a conflict (the site's version comes through the watch). `Err` when the
    /// bucket cannot be read (try again later).
    async fn refused(
        &mut self,
        kv_key: &str,
        local: Option<Value>,
        why: &str,
    ) -> anyhow::Result<()> {
        let site = self
            .kv
            .entry(kv_key)
            .await
            .with_context(|| format!("cannot send {}: {why}", self.shelf.shown(kv_key)))?;
        let (site_value, revision) = match &site {
            Some(e) if matches!(e.operation, kv::Operation::Put) => {
                (serde_json::from_slice::<Value>(&e.value).ok(), e.revision)
            }
            _ => (None, 0),
        };
        if site_value == local {
            match local {
                Some(value) => {
                    self.agreed.insert(kv_key.to_string(), (value, revision));
                }
                None => {
                    self.agreed.remove(kv_key);
                }
            }
        } else if !self.conflicted.contains(kv_key) {
            self.conflict(kv_key, &format!("another node changed it first ({why})"))
                .await;
        }
        Ok(())
    }

    /// Send local changes since the last agreement to the bucket.
    async fn push_local(&mut self) -> anyhow::Result<()> {
        let mut seen = BTreeSet::new();
        let mut trouble = Ok(());
        for i in 0..self.shelf.kinds.len() {
            let (prefix, kind) = (self.shelf.kinds[i].0, self.shelf.kinds[i].1.clone());
            let local = blocking(&self.store, move |s| kind.list(s)).await?;
            for (key, value) in local {
                let kv_key = Shelf::kv_key(prefix, &key);
                seen.insert(kv_key.clone());
                if self.pending.contains_key(&kv_key) {
                    continue;
                }
                let bytes: bytes::Bytes = serde_json::to_vec(&value).unwrap_or_default().into();
                let written = match self.agreed.get(&kv_key) {
                    Some((agreed, _)) if *agreed == value => continue,
                    Some((_, rev)) => self
                        .kv
                        .update(&kv_key, bytes, *rev)
                        .await
                        .map_err(|e| e.to_string()),
                    None => self
                        .kv
                        .create(&kv_key, bytes)
                        .await
                        .map_err(|e| e.to_string()),
                };
                match written {
                    Ok(rev) => {
                        self.agreed.insert(kv_key, (value, rev));
                    }
                    Err(e) => {
                        if let Err(e) = self.refused(&kv_key, Some(value), &e).await {
                            trouble = Err(e);
                        }
                    }
                }
            }
        }
        let gone: Vec<(String, u64)> = self
            .agreed
            .iter()
            .filter(|(k, _)| !seen.contains(*k) && !self.pending.contains_key(*k))
            .map(|(k, (_, rev))| (k.clone(), *rev))
            .collect();
        for (kv_key, rev) in gone {
            match self.kv.delete_expect_revision(&kv_key, Some(rev)).await {
                Ok(()) => {
                    self.agreed.remove(&kv_key);
                }
                Err(e) => {
                    if let Err(e) = self.refused(&kv_key, None, &e.to_string()).await {
                        trouble = Err(e);
                    }
                }
            }
        }
        trouble
    }
}

/// Reach the shelf's bucket (creating it if this is the site's first node; trouble shows in
/// `mo cluster status`), then [`run`].
pub(super) async fn share(
    inner: Arc<super::Inner>,
    js: async_nats::jetstream::Context,
    servers: String,
    local: Store,
    shelf: Shelf,
    through: Arc<WriteThrough>,
) {
    let bucket = super::reach_kv(&inner, &js, &servers, shelf.bucket, shelf.description, 5).await;
    run(bucket, local, shelf, through).await;
}

/// Keep the local store and the shelf's bucket in step, for ever (again after any
/// interruption; what was agreed is kept, so only what changed meanwhile travels).
pub async fn run(kv: kv::Store, store: Store, shelf: Shelf, through: Arc<WriteThrough>) {
    let bucket = shelf.bucket;
    let mut flushes = through.register();
    let mut sync = Replica {
        through,
        store,
        kv,
        shelf,
        agreed: BTreeMap::new(),
        pending: BTreeMap::new(),
        conflicted: BTreeSet::new(),
        joined: false,
    };
    loop {
        let mut changes = match sync.kv.watch_with_history(">").await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!("cluster: cannot watch {bucket}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // The site's entries first (its version wins), then this node's own.
        let mut caught_up = false;
        let mut last_generation = None;
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(Ok(entry)) => {
                        caught_up |= entry.delta == 0;
                        sync.take(entry).await;
                        sync.joined |= caught_up;
                    }
                    Some(Err(e)) => {
                        tracing::warn!("cluster: watching {bucket}: {e}");
                        break;
                    }
                    None => break,
                },
                Some(flush) = flushes.recv() => {
                    // A write through the API: send now, whatever the counters say.
                    let answer = if caught_up {
                        sync.retry_pending().await;
                        let count = sync.shelf.generation;
                        let generation = blocking(&sync.store, count).await.ok();
                        match sync.push_local().await {
                            Ok(()) => {
                                last_generation = generation;
                                Ok(())
                            }
                            Err(e) => Err(format!("{e:#}")),
                        }
                    } else {
                        Err(format!("{bucket} is still being read"))
                    };
                    let _ = flush.done.send(answer);
                }
                _ = ticks.tick() => {
                    if !caught_up {
                        // An empty bucket sends nothing: caught up once it says so.
                        caught_up = matches!(sync.kv.status().await, Ok(s) if s.values() == 0);
                        if !caught_up {
                            continue;
                        }
                    }
                    sync.joined = true;
                    sync.retry_pending().await;
                    // Only when the store changed (`mo`, the API, or this task's own writes).
                    let count = sync.shelf.generation;
                    let generation = blocking(&sync.store, count).await.ok();
                    if generation.is_some() && generation == last_generation {
                        continue;
                    }
                    match sync.push_local().await {
                        Ok(()) => last_generation = generation,
                        Err(e) => tracing::warn!("cluster: sharing {bucket}: {e:#}"),
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_round_trip_through_keys() {
        for name in ["web01", "a.b", "x_y-z", "rack1.pdu.2", "_x"] {
            let key = key_of(name);
            assert!(!key.contains('.'), "{key}");
            assert_eq!(name_of(&key).as_deref(), Some(name), "{key}");
        }
        for bad in ["=", "=2", "=zz", "a=2E", "=ff"] {
            assert_eq!(name_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_value_must_be_the_device_its_key_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mo.db")).unwrap();
        let d = Device::new("web01", "sim://web01");
        let value = serde_json::to_value(&d).unwrap();
        let name = |n: &str| vec![n.to_string()];
        assert!(Devices.put(&store, &name("web02"), &value).is_err());
        assert!(
            Devices
                .put(&store, &name("web01"), &Value::from("{"))
                .is_err()
        );
        assert!(Devices.put(&store, &name("."), &value).is_err());
        assert!(store.list_devices().unwrap().is_empty());
        Devices.put(&store, &name("web01"), &value).unwrap();
        assert_eq!(Devices.get(&store, &name("web01")).unwrap(), Some(value));
    }

    #[test]
    fn kv_keys_name_their_kind_and_entry() {
        let shelves = shelves();
        let (devices, directory) = (&shelves[0], &shelves[1]);
        let grant: Vec<String> = ["user", "a.b", "operator", "all"].map(String::from).into();
        let key = Shelf::kv_key("grant", &grant);
        assert_eq!(key, "grant.user.a=2eb.operator.all");
        let (i, back) = directory.parse(&key).unwrap();
        assert_eq!((directory.kinds[i].1.label(), back), ("grant", grant));
        assert_eq!(directory.shown("user.alice"), "user `alice`");
        // A key with too few names, an unknown kind, or a dot in a device key: no entry.
        assert!(directory.parse("grant.user.alice").is_none());
        assert!(directory.parse("nothing.x").is_none());
        assert!(directory.parse("alice").is_none());
        assert!(devices.parse("a.b").is_none());
        assert_eq!(devices.parse("rack1=2epdu").unwrap().1, vec!["rack1.pdu"]);
    }
}
