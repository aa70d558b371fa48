//! The site's devices (`mod --cluster … --share-devices`, issue 14 item 2, first step): the KV
//! bucket [`DEVICES_BUCKET`] holds every device of the site (key: the name, value: the stored
//! [`Device`] as JSON, without secrets), and each node's SQLite store is its local replica.
//!
//! One task per node keeps the two in step, by KV revision:
//! - a change in the bucket (the watch) is written into the local store, unless the store
//!   already holds exactly that;
//! - a change in the local store (`mo` on the data directory, the API; seen by a poll) is
//!   written into the bucket with compare-and-set on the revision this node last saw, so two
//!   nodes editing one device at once cannot overwrite each other silently: the loser's write is
//!   refused, logged as a conflict, and the winner's version replaces its local one.
//!
//! When a node joins, the site's version of a device wins over its local one; local devices the
//! site lacks are added to the site.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::kv;
use futures_util::StreamExt as _;
use mo_store::{Device, Store};

/// The KV bucket of the site's devices.
pub const DEVICES_BUCKET: &str = "mo_devices";

/// How often the local store is compared with what was last agreed.
const POLL: Duration = Duration::from_millis(500);

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

/// A device read from the bucket (bytes from the network: never panics).
fn decode(key: &str, value: &[u8]) -> Result<Device, String> {
    let name = name_of(key).ok_or_else(|| format!("key `{key}` names no device"))?;
    mo_store::validate_device_name(&name).map_err(|e| e.to_string())?;
    let device: Device =
        serde_json::from_slice(value).map_err(|e| format!("device `{name}`: not a device: {e}"))?;
    if device.name != name {
        return Err(format!("key `{key}` holds device `{}`", device.name));
    }
    Ok(device)
}

fn encode(device: &Device) -> bytes::Bytes {
    serde_json::to_vec(device).unwrap_or_default().into()
}

/// Run a store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> mo_store::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = store.clone();
    Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
}

/// The sync task's state: what the store and the bucket last agreed on, with its revision.
struct Sync {
    store: Store,
    kv: kv::Store,
    agreed: BTreeMap<String, (Device, u64)>,
}

impl Sync {
    /// Write `device` into the local store (added or changed).
    async fn apply(&self, device: Device) -> anyhow::Result<()> {
        let name = device.name.clone();
        blocking(&self.store, move |s| match s.get_device(&device.name)? {
            Some(old) if old == device => Ok(()),
            Some(_) => s.update_device(&device),
            None => s.add_device(&device),
        })
        .await
        .with_context(|| format!("cannot write the site's device `{name}` into the store"))
    }

    /// Remove `name` from the local store, if there.
    async fn remove(&self, name: &str) -> anyhow::Result<()> {
        let n = name.to_string();
        blocking(&self.store, move |s| {
            if s.get_device(&n)?.is_some() {
                s.remove_device(&n)?;
            }
            Ok(())
        })
        .await
        .with_context(|| format!("cannot remove device `{name}` from the store"))
    }

    /// A change of the bucket.
    async fn heard(&mut self, entry: kv::Entry) {
        let Some(name) = name_of(&entry.key) else {
            tracing::warn!("cluster: {DEVICES_BUCKET}: key `{}` ignored", entry.key);
            return;
        };
        if self
            .agreed
            .get(&name)
            .is_some_and(|(_, rev)| *rev >= entry.revision)
        {
            return;
        }
        if !matches!(entry.operation, kv::Operation::Put) {
            self.agreed.remove(&name);
            if let Err(e) = self.remove(&name).await {
                tracing::error!("cluster: {e:#}");
            }
            return;
        }
        match decode(&entry.key, &entry.value) {
            Ok(device) => match self.apply(device.clone()).await {
                Ok(()) => {
                    self.agreed.insert(name, (device, entry.revision));
                }
                Err(e) => tracing::error!("cluster: {e:#}"),
            },
            Err(e) => tracing::warn!("cluster: {DEVICES_BUCKET}: {e}"),
        }
    }

    /// Send local changes since the last agreement to the bucket.
    async fn push_local(&mut self) -> anyhow::Result<()> {
        let local = blocking(&self.store, |s| s.list_devices()).await?;
        let mut seen = std::collections::BTreeSet::new();
        for device in local {
            seen.insert(device.name.clone());
            let key = key_of(&device.name);
            let written = match self.agreed.get(&device.name) {
                Some((agreed, _)) if *agreed == device => continue,
                Some((_, rev)) => self
                    .kv
                    .update(&key, encode(&device), *rev)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .kv
                    .create(&key, encode(&device))
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(rev) => {
                    self.agreed.insert(device.name.clone(), (device, rev));
                }
                Err(e) => {
                    // Another node changed it first: its version comes through the watch and
                    // replaces this one.
                    tracing::warn!(
                        "cluster: conflict on device `{}`: the site has another version ({e}); \
                         the site's version wins",
                        device.name
                    );
                }
            }
        }
        let gone: Vec<(String, u64)> = self
            .agreed
            .iter()
            .filter(|(name, _)| !seen.contains(*name))
            .map(|(name, (_, rev))| (name.clone(), *rev))
            .collect();
        for (name, rev) in gone {
            match self
                .kv
                .delete_expect_revision(key_of(&name), Some(rev))
                .await
            {
                Ok(()) => {
                    self.agreed.remove(&name);
                }
                Err(e) => tracing::warn!(
                    "cluster: conflict removing device `{name}`: the site changed it ({e}); \
                     the site's version wins"
                ),
            }
        }
        Ok(())
    }
}

/// The devices bucket, made if missing.
pub async fn open_bucket(js: &async_nats::jetstream::Context) -> anyhow::Result<kv::Store> {
    if let Ok(store) = js.get_key_value(DEVICES_BUCKET).await {
        return Ok(store);
    }
    let config = kv::Config {
        bucket: DEVICES_BUCKET.into(),
        description: "mo: the site's devices (mod --cluster --share-devices)".into(),
        history: 5,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        Err(create) => js
            .get_key_value(DEVICES_BUCKET)
            .await
            .with_context(|| format!("cannot create the KV bucket {DEVICES_BUCKET}: {create}")),
    }
}

/// Keep the local store and the bucket in step, for ever (again after any interruption).
pub async fn run(kv: kv::Store, store: Store) {
    let mut sync = Sync {
        store,
        kv,
        agreed: BTreeMap::new(),
    };
    loop {
        let mut changes = match sync.kv.watch_with_history(">").await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!("cluster: cannot watch {DEVICES_BUCKET}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // The site's devices first (its version wins), then this node's own.
        let mut caught_up = false;
        let mut last_generation = None;
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(Ok(entry)) => {
                        caught_up |= entry.delta == 0;
                        sync.heard(entry).await;
                    }
                    Some(Err(e)) => {
                        tracing::warn!("cluster: watching {DEVICES_BUCKET}: {e}");
                        break;
                    }
                    None => break,
                },
                _ = ticks.tick() => {
                    if !caught_up {
                        // An empty bucket sends nothing: caught up once it says so.
                        caught_up = matches!(sync.kv.status().await, Ok(s) if s.values() == 0);
                        if !caught_up {
                            continue;
                        }
                    }
                    // Only when the store changed (`mo`, the API, or this task's own writes).
                    let generation = blocking(&sync.store, |s| s.generation()).await.ok();
                    if generation.is_some() && generation == last_generation {
                        continue;
                    }
                    match sync.push_local().await {
                        Ok(()) => last_generation = generation,
                        Err(e) => tracing::warn!("cluster: sharing devices: {e:#}"),
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
        let d = Device::new("web01", "sim://web01");
        assert_eq!(decode("web01", &encode(&d)).unwrap(), d);
        assert!(decode("web02", &encode(&d)).is_err());
        assert!(decode("web01", b"{").is_err());
        assert!(decode("=2e", &encode(&d)).is_err());
    }
}
