//! Audit entries of a site (issue 14 item 6, `--share-directory`): every node publishes the
//! entries of its audit log to the JetStream stream [`AUDIT_STREAM`], subject `mo.audit.NODE`
//! (message id `NODE.ID`, so a repeat is dropped by the server), and keeps a copy of every
//! other node's entries in its own audit log, naming the node: `mo audit` on any node reads the
//! site's entries.
//!
//! A node resumes publishing after the last entry the stream holds from it, so entries made
//! while NATS was away (or the daemon stopped) are published when it is back.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use mo_store::{AuditEntry, AuditFilter, Store};
use serde::{Deserialize, Serialize};

use super::directory::blocking;

/// The stream of the site's audit entries: one subject per node, `mo.audit.NODE`.
pub const AUDIT_STREAM: &str = "mo_audit";

/// How often a node looks for new entries of its own to publish.
const POLL: Duration = Duration::from_secs(1);

/// An audit entry as the site keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SiteAudit {
    node: String,
    id: i64,
    time_ns: i64,
    user: Option<String>,
    source: Option<String>,
    action: String,
    device: Option<String>,
    outcome: String,
    detail: String,
}

impl SiteAudit {
    fn new(node: &str, e: &AuditEntry) -> SiteAudit {
        SiteAudit {
            node: node.to_owned(),
            id: e.id,
            time_ns: e.time_ns,
            user: e.user.clone(),
            source: e.source.clone(),
            action: e.action.clone(),
            device: e.device.clone(),
            outcome: e.outcome.name().to_owned(),
            detail: e.detail.clone(),
        }
    }

    fn entry(&self) -> anyhow::Result<AuditEntry> {
        let mut entry = AuditEntry::new(
            self.user.as_deref(),
            self.action.clone(),
            self.outcome.parse()?,
        )
        .source(self.source.as_deref())
        .device(self.device.as_deref())
        .detail(self.detail.clone());
        entry.id = self.id;
        entry.time_ns = self.time_ns;
        Ok(entry)
    }
}

fn subject(node: &str) -> String {
    format!("mo.audit.{node}")
}

/// The stream, made if missing.
async fn open_stream(js: &jetstream::Context) -> anyhow::Result<stream::Stream> {
    Ok(js
        .get_or_create_stream(stream::Config {
            name: AUDIT_STREAM.into(),
            description: Some("mo: the site's audit entries, subject mo.audit.NODE".into()),
            subjects: vec!["mo.audit.>".into()],
            storage: stream::StorageType::File,
            num_replicas: super::store_replicas(js),
            ..Default::default()
        })
        .await?)
}

/// Reach the stream, then publish this node's entries and keep the others', for ever.
pub(super) async fn share(
    inner: Arc<super::Inner>,
    js: jetstream::Context,
    servers: String,
    store: Store,
) {
    let mut pause = Duration::from_millis(200);
    let stream = loop {
        match tokio::time::timeout(super::REQUEST_TIMEOUT, open_stream(&js)).await {
            Ok(Ok(stream)) => break stream,
            Ok(Err(e)) => inner.set_error(Some(format!("NATS at {servers}: {e:#}"))),
            Err(_) => inner.set_error(Some(format!("NATS at {servers} does not answer"))),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(super::MAX_RETRY);
    };
    let me = inner.node.clone();
    let follow = tokio::spawn(follow(stream.clone(), me.clone(), store.clone()));
    inner.push_task(follow);
    publish_all(&js, &stream, &me, &store).await;
}

/// Publish this node's new entries every [`POLL`], from after the last one the stream holds.
async fn publish_all(js: &jetstream::Context, stream: &stream::Stream, me: &str, store: &Store) {
    let mut last = None;
    let mut failing = false;
    loop {
        match publish_new(js, stream, me, store, &mut last).await {
            Ok(()) if failing => {
                tracing::info!("cluster: publishing audit entries to {AUDIT_STREAM} again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!("cluster: cannot publish audit entries (they wait): {e:#}");
                }
                failing = true;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One round: learn where the stream is (the first time), then publish what is newer.
async fn publish_new(
    js: &jetstream::Context,
    stream: &stream::Stream,
    me: &str,
    store: &Store,
    last: &mut Option<i64>,
) -> anyhow::Result<()> {
    let after = match *last {
        Some(id) => id,
        None => {
            let id = match stream.get_last_raw_message_by_subject(&subject(me)).await {
                Ok(message) => serde_json::from_slice::<SiteAudit>(&message.payload)?.id,
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => 0,
                Err(e) => return Err(e.into()),
            };
            *last = Some(id);
            id
        }
    };
    let filter = AuditFilter {
        own_after_id: Some(after),
        ..AuditFilter::default()
    };
    let entries = blocking(store, move |s| s.query_audit(&filter)).await?;
    for entry in entries {
        let site = SiteAudit::new(me, &entry);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{me}.{}", entry.id).as_str());
        let payload = serde_json::to_vec(&site)?.into();
        let ack = js
            .publish_with_headers(subject(me), headers, payload)
            .await?;
        tokio::time::timeout(super::REQUEST_TIMEOUT, ack).await??;
        *last = Some(entry.id);
    }
    Ok(())
}

/// Keep every other node's entries (the whole stream, then each new one), again after any
/// interruption (copies already kept are skipped).
async fn follow(stream: stream::Stream, me: String, store: Store) {
    loop {
        let config = consumer::pull::OrderedConfig {
            filter_subject: "mo.audit.>".into(),
            ..Default::default()
        };
        match stream.create_consumer(config).await {
            Ok(consumer) => match consumer.messages().await {
                Ok(mut messages) => {
                    while let Some(message) = messages.next().await {
                        let message = match message {
                            Ok(message) => message,
                            Err(e) => {
                                tracing::warn!("cluster: reading {AUDIT_STREAM}: {e}");
                                break;
                            }
                        };
                        if let Err(e) = keep(&message.payload, &me, &store).await {
                            tracing::warn!("cluster: {AUDIT_STREAM} {}: {e:#}", message.subject);
                        }
                    }
                }
                Err(e) => tracing::warn!("cluster: cannot read {AUDIT_STREAM}: {e}"),
            },
            Err(e) => tracing::warn!("cluster: cannot read {AUDIT_STREAM}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One message of the stream: another node's entry is kept (once).
async fn keep(payload: &[u8], me: &str, store: &Store) -> anyhow::Result<()> {
    let site: SiteAudit = serde_json::from_slice(payload)?;
    if site.node == me {
        return Ok(());
    }
    let entry = site.entry()?;
    blocking(store, move |s| s.keep_site_audit(&site.node, &entry)).await?;
    Ok(())
}
