//! Events of a site (issue 14 item 6, `--share-directory`): every node publishes the events it
//! raises — and each later change: a count going up, an acknowledgement — to the KV bucket
//! [`EVENTS_BUCKET`], key `NODE.ID` (the raising node and its event id), and keeps a copy of
//! every other node's events in its own store (named by node), so `mo events` and
//! `GET /api/v1/events` on any node list the site's events.
//!
//! An acknowledgement made on any node is written to the event's key, so it reaches every node,
//! and the raising node applies it as its own (its after-acknowledgement actions run there).
//! Writes are compare-and-set on the key's revision and merge what the site already has: counts
//! and last occurrences only rise, and the first acknowledgement written to the site wins (a
//! node whose own acknowledgement lost keeps the site's instead).
//!
//! Actions run once: only the raising node's event manager sees the event; copies go straight
//! into the store and never reach a manager. Changes made while NATS is away wait in this
//! node's queue and are published when it is back (the queue lives in memory: what a daemon
//! raised and had not published when it stopped stays local).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;
use mo_core::event::Event;
use mo_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::directory::blocking;
use crate::events::Events;

/// The KV bucket of the site's events: key `NODE.ID`, value a [`SiteEvent`] (JSON).
pub const EVENTS_BUCKET: &str = "mo_events";

/// An event as the site keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SiteEvent {
    /// The node that raised it.
    node: String,
    /// Its id on that node.
    id: u64,
    time_ns: i64,
    last_ns: i64,
    device: String,
    source: String,
    severity: String,
    message: String,
    context: Vec<String>,
    count: u64,
    suppressed: bool,
    acked_by: Option<String>,
    acked_ns: Option<i64>,
}

impl SiteEvent {
    fn new(node: String, id: u64, e: &Event) -> SiteEvent {
        SiteEvent {
            node,
            id,
            time_ns: e.time_ns,
            last_ns: e.last_ns,
            device: e.device.clone(),
            source: e.source.as_str().to_owned(),
            severity: e.severity.as_str().to_owned(),
            message: e.message.clone(),
            context: e.context.clone(),
            count: e.count,
            suppressed: e.suppressed,
            acked_by: e.acked_by.clone(),
            acked_ns: e.acked_ns,
        }
    }

    fn key(&self) -> String {
        format!("{}.{}", self.node, self.id)
    }

    /// The event (id 0, no node), or why the entry is not one.
    fn event(&self) -> anyhow::Result<Event> {
        Ok(Event {
            id: 0,
            time_ns: self.time_ns,
            last_ns: self.last_ns,
            device: self.device.clone(),
            source: self.source.parse()?,
            severity: self.severity.parse()?,
            message: self.message.clone(),
            context: self.context.clone(),
            count: self.count,
            suppressed: self.suppressed,
            acked_by: self.acked_by.clone(),
            acked_ns: self.acked_ns,
            node: None,
        })
    }

    /// This node's version written over the site's `site`: counts and last occurrence only
    /// rise, the site's acknowledgement (the first written) wins, the raising node's context.
    fn merged(&self, site: &SiteEvent, me: &str) -> SiteEvent {
        let mut out = site.clone();
        out.count = self.count.max(site.count);
        out.last_ns = self.last_ns.max(site.last_ns);
        if site.acked_by.is_none() {
            out.acked_by.clone_from(&self.acked_by);
            out.acked_ns = self.acked_ns;
        }
        if self.node == me {
            out.context.clone_from(&self.context);
        }
        out
    }
}

/// Share this node's events with the site and keep the site's: reach the bucket, then publish
/// what `changed` names (local event ids) and follow the bucket, for ever.
pub(super) async fn share(
    inner: Arc<super::Inner>,
    js: jetstream::Context,
    servers: String,
    events: Arc<Events>,
    changed: mpsc::UnboundedReceiver<u64>,
) {
    let description = "mo: the site's events, key NODE.ID (mod --cluster --share-directory)";
    let kv = super::reach_kv(&inner, &js, &servers, EVENTS_BUCKET, description, 1).await;
    let me = inner.node.clone();
    let follow = tokio::spawn(follow(kv.clone(), me.clone(), events.clone()));
    inner.push_task(follow);
    publish_all(kv, me, events.store().clone(), changed).await;
}

/// Publish each changed event; what cannot be published waits and is tried again.
async fn publish_all(
    kv: kv::Store,
    me: String,
    store: Store,
    mut changed: mpsc::UnboundedReceiver<u64>,
) {
    let mut queue = BTreeSet::new();
    let mut pause = Duration::from_millis(200);
    let mut failing = false;
    loop {
        if queue.is_empty() {
            match changed.recv().await {
                Some(id) => queue.insert(id),
                None => return,
            };
        }
        while let Ok(id) = changed.try_recv() {
            queue.insert(id);
        }
        while let Some(&id) = queue.first() {
            let published = publish(&kv, &me, &store, id);
            match tokio::time::timeout(super::REQUEST_TIMEOUT, published).await {
                Ok(Ok(())) => {
                    queue.remove(&id);
                    pause = Duration::from_millis(200);
                    if failing {
                        tracing::info!("cluster: publishing events to {EVENTS_BUCKET} again");
                        failing = false;
                    }
                }
                Ok(Err(e)) => {
                    if !failing {
                        tracing::warn!(
                            "cluster: cannot publish event {id} to {EVENTS_BUCKET} \
                             ({} waiting): {e:#}",
                            queue.len()
                        );
                    }
                    failing = true;
                    break;
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!(
                            "cluster: NATS does not answer; {} events wait to be published",
                            queue.len()
                        );
                    }
                    failing = true;
                    break;
                }
            }
        }
        if failing {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(super::MAX_RETRY);
        }
    }
}

/// Write local event `id` to its key: created, or merged into the site's version by
/// compare-and-set (again if another node wrote in between).
async fn publish(kv: &kv::Store, me: &str, store: &Store, id: u64) -> anyhow::Result<()> {
    let Some(event) = blocking(store, move |s| s.event(id)).await? else {
        return Ok(());
    };
    let (node, origin) = blocking(store, move |s| s.event_origin(id))
        .await?
        .unwrap_or_else(|| (me.to_owned(), id));
    let mine = SiteEvent::new(node, origin, &event);
    let key = mine.key();
    for _ in 0..10 {
        let written = match kv.entry(&key).await? {
            Some(entry) if matches!(entry.operation, kv::Operation::Put) => {
                let site: SiteEvent = serde_json::from_slice(&entry.value)?;
                let merged = mine.merged(&site, me);
                if merged == site {
                    return Ok(());
                }
                let bytes = serde_json::to_vec(&merged)?.into();
                kv.update(&key, bytes, entry.revision)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
                    .err()
            }
            _ => {
                let bytes = serde_json::to_vec(&mine)?.into();
                kv.create(&key, bytes)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
                    .err()
            }
        };
        match written {
            None => return Ok(()),
            // Another node wrote the key meanwhile: merge with its version.
            Some(e) => tracing::debug!("cluster: {key} changed meanwhile ({e}); merging again"),
        }
    }
    anyhow::bail!("{key} keeps changing under this node's writes")
}

/// Follow the bucket (every entry first, then each change), again after any interruption.
async fn follow(kv: kv::Store, me: String, events: Arc<Events>) {
    loop {
        match kv.watch_with_history(">").await {
            Ok(mut changes) => {
                while let Some(change) = changes.next().await {
                    match change {
                        Ok(entry) => {
                            if let Err(e) = take(&entry, &me, &events).await {
                                tracing::warn!("cluster: {EVENTS_BUCKET} {}: {e:#}", entry.key);
                            }
                        }
                        Err(e) => {
                            tracing::warn!("cluster: watching {EVENTS_BUCKET}: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("cluster: cannot watch {EVENTS_BUCKET}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One entry of the bucket: another node's event is kept (never acted on); an
/// acknowledgement of one of this node's events made elsewhere is applied here.
async fn take(entry: &kv::Entry, me: &str, events: &Arc<Events>) -> anyhow::Result<()> {
    if !matches!(entry.operation, kv::Operation::Put) {
        return Ok(());
    }
    let site: SiteEvent = serde_json::from_slice(&entry.value)?;
    let event = site.event()?;
    let events = events.clone();
    if site.node == me {
        let (Some(by), Some(at)) = (site.acked_by, site.acked_ns) else {
            return Ok(());
        };
        let id = site.id;
        tokio::task::spawn_blocking(move || events.ack_at(id, &by, at)).await??;
        return Ok(());
    }
    tokio::task::spawn_blocking(move || events.keep_site_event(&site.node, site.id, &event))
        .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(node: &str, count: u64, acked: Option<&str>) -> SiteEvent {
        SiteEvent {
            node: node.into(),
            id: 4,
            time_ns: 1,
            last_ns: 1 + i64::try_from(count).unwrap_or(0),
            device: "db".into(),
            source: "pattern".into(),
            severity: "critical".into(),
            message: "boom".into(),
            context: vec![format!("ctx {count}")],
            count,
            suppressed: false,
            acked_by: acked.map(str::to_owned),
            acked_ns: acked.map(|_| 9),
        }
    }

    #[test]
    fn merging_keeps_the_first_ack_and_raises_counts() {
        // The owner's count update does not undo an acknowledgement made elsewhere.
        let merged = site("alpha", 5, None).merged(&site("alpha", 3, Some("carol")), "alpha");
        assert_eq!(merged.count, 5);
        assert_eq!(merged.last_ns, 6);
        assert_eq!(merged.acked_by.as_deref(), Some("carol"));
        assert_eq!(merged.context, vec!["ctx 5".to_string()]);
        // A copy's late acknowledgement loses against the first one.
        let merged =
            site("alpha", 3, Some("dave")).merged(&site("alpha", 3, Some("carol")), "gamma");
        assert_eq!(merged.acked_by.as_deref(), Some("carol"));
        // A copy's acknowledgement is taken when the site has none, with the owner's context.
        let merged = site("alpha", 1, Some("dave")).merged(&site("alpha", 3, None), "gamma");
        assert_eq!(
            (merged.count, merged.acked_by.as_deref()),
            (3, Some("dave"))
        );
        assert_eq!(merged.context, vec!["ctx 3".to_string()]);
        assert_eq!(merged.key(), "alpha.4");
        let event = merged.event().map(|e| e.severity.as_str());
        assert_eq!(event.ok(), Some("critical"));
    }
}
