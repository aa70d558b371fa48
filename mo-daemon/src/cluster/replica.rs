//! Replicated, verifiable record logs (`mod --cluster … --share-devices`, issue 14 item 5).
//!
//! The owner of a console publishes the bytes its record log writer put in the segment files to
//! the JetStream stream [`RECORDS_STREAM`], one subject per device (`mo.rec.<key>`, the key of
//! [`key_of`]). A message is a run of whole records (the segment header with the first one) with
//! the segment it belongs to and its byte offset in headers; it is read back from the files, so
//! the local log stays the source of truth and publishing never slows the console's logging.
//! Each publish names the last stream sequence of its subject it expects
//! (`Nats-Expected-Last-Subject-Sequence`): the stream holds one linear history per device.
//!
//! The replica nodes of a device (the `--replicas` live nodes that the placement's rendezvous
//! hash ranks next after its owner) write the same bytes at the same offsets of the same files in
//! their own data directory: byte-identical segments, the same sequence numbers and hash chain,
//! readable by `mo log` there. A node that is about to run a console first catches up from the
//! stream, so it continues the chain where the last owner stopped.
//!
//! A per-device cursor in the log directory ([`CURSOR_FILE`]) says how far the stream holds the
//! local files (segment, byte offset, stream sequence): records written while NATS was away are
//! published when it returns; a message that continues the stream where the local files hold
//! other, never-published bytes (another node ran the console meanwhile) sets those bytes aside
//! in `diverged-…/` and follows the stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use mo_core::log::format::{HEADER_LEN, RECORD_TRAILER_LEN, peek_record_len};
use mo_core::log::{list_segments, parse_segment_file_name, segment_file_name, verify};
use serde::{Deserialize, Serialize};

mod recover;

use super::Ownership;
use super::directory::{key_of, name_of};
use crate::registry::Registry;

/// The stream of every console's records: subjects `mo.rec.<device key>`.
pub const RECORDS_STREAM: &str = "mo_records";

/// The subject prefix of the records of one device.
const SUBJECT_PREFIX: &str = "mo.rec.";

/// The subject every replicating node answers `mo log verify --replicas` requests on.
const VERIFY_SUBJECT: &str = "mo.logverify";

/// The file in a device's log directory that says how far the stream holds its log.
pub const CURSOR_FILE: &str = ".mo-stream";

/// The most bytes of records one message carries (NATS's default `max_payload` is 1 MiB).
const MAX_BATCH: usize = 256 * 1024;

/// How often the publisher looks for new records.
const TICK: Duration = Duration::from_millis(200);

/// How long the stream keeps records (a node that lacks older ones cannot catch up on them).
const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Message headers: the segment (its first sequence number) and the byte offset in it.
const H_SEGMENT: &str = "Mo-Segment";
const H_OFFSET: &str = "Mo-Offset";
const H_NODE: &str = "Mo-Node";

/// How far the stream holds a device's local log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The segment (first sequence number; 0 before any).
    segment: u64,
    /// Bytes of that segment the stream holds.
    offset: u64,
    /// The stream sequence of the device's last message (0: none).
    stream_seq: u64,
}

fn read_cursor(dir: &Path) -> Cursor {
    std::fs::read(dir.join(CURSOR_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The segment and byte length of the log in `dir` that the stream holds, once it holds some.
pub(super) fn stream_end(dir: &Path) -> Option<(u64, u64)> {
    let c = read_cursor(dir);
    (c.segment > 0 && c.offset > 0).then_some((c.segment, c.offset))
}

fn write_cursor(dir: &Path, cursor: &Cursor) -> std::io::Result<()> {
    let tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(cursor).unwrap_or_default())?;
    std::fs::rename(&tmp, dir.join(CURSOR_FILE))
}

/// The replication of this node: publisher, replica writer and verification answers.
pub struct Replication {
    node: String,
    replicas: usize,
    own: Arc<Ownership>,
    registry: Weak<Registry>,
    js: jetstream::Context,
    client: async_nats::Client,
    /// One lock per device: the publisher, the replica writer and catch-up take turns.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The devices this node holds and has caught up on: only these consoles may run here.
    ready: RwLock<BTreeSet<String>>,
    /// Held while this node appends a recovered run (one at a time).
    recovering: tokio::sync::Mutex<()>,
}

/// What one node says about its copy of a device's log (`mo log verify NAME --replicas`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeLog {
    /// The node.
    pub node: String,
    /// Whether it has a log of the device at all.
    pub present: bool,
    /// Records checked.
    pub records: u64,
    /// Last sequence number.
    pub last_seq: Option<u64>,
    /// The local verification's first problem, with the record it is in.
    pub problem: Option<String>,
    /// The sequence number of the record with the problem.
    pub problem_seq: Option<u64>,
    /// Per segment: first seq, last seq, chain value of its last record (hex).
    pub ends: Vec<(u64, u64, String)>,
    /// Whether this node runs the console.
    pub owner: bool,
    /// The chain value of the records asked about (signed checkpoints' sequence numbers).
    #[serde(default)]
    pub at: Vec<(u64, String)>,
    /// Whether this node is one of the console's replicas now (else its copy is an old one,
    /// from when it was a replica or the owner, and may be behind).
    pub replica: bool,
}

impl Replication {
    /// Start replicating for node `node` (with `replicas` copies besides the owner's).
    pub fn start(
        node: &str,
        replicas: usize,
        own: Arc<Ownership>,
        registry: Weak<Registry>,
        client: async_nats::Client,
    ) -> (Arc<Replication>, Vec<tokio::task::JoinHandle<()>>) {
        let rep = Arc::new(Replication {
            node: node.to_owned(),
            replicas,
            own: own.clone(),
            registry,
            js: jetstream::new(client.clone()),
            client,
            locks: Mutex::new(HashMap::new()),
            ready: RwLock::new(BTreeSet::new()),
            recovering: tokio::sync::Mutex::new(()),
        });
        let gate = Arc::downgrade(&rep);
        own.set_gate(Box::new(move |name| match gate.upgrade() {
            Some(rep) if rep.is_ready(name) => Ok(()),
            Some(_) => Err("catching up its record log from the site".into()),
            None => Ok(()),
        }));
        let release = Arc::downgrade(&rep);
        own.set_release(Box::new(move |name| {
            let rep = release.clone();
            Box::pin(async move {
                if let Some(rep) = rep.upgrade()
                    && let Err(e) = rep.publish(&name).await
                {
                    tracing::warn!(device = %name, "cluster: cannot publish the last records before handing the console over: {e:#}");
                }
            })
        }));
        let mut tasks = Vec::new();
        if let Some(registry) = rep.registry.upgrade() {
            match crate::ssh::host_key(&registry.host_key_path()) {
                Ok(key) => tasks.push(tokio::spawn(super::checkpoint::run(
                    rep.node.clone(),
                    key,
                    rep.js.clone(),
                    rep.registry.clone(),
                ))),
                Err(e) => tracing::error!("cluster: no node key, no signed log checkpoints: {e:#}"),
            }
        }
        tasks.extend([
            tokio::spawn(rep.clone().run()),
            tokio::spawn(rep.clone().follow()),
            tokio::spawn(rep.clone().answer_verify()),
            tokio::spawn(rep.clone().answer_recover()),
            tokio::spawn(rep.clone().recover_diverged()),
        ]);
        (rep, tasks)
    }

    fn is_ready(&self, name: &str) -> bool {
        self.ready.read().is_ok_and(|r| r.contains(name))
    }

    fn lock_of(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.locks.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        locks.entry(name.to_owned()).or_default().clone()
    }

    fn log_dir(&self, name: &str) -> Option<PathBuf> {
        self.registry.upgrade()?.log_dir(name)
    }

    /// Whether this node keeps a replica of `name`: among the live nodes other than its owner,
    /// the first `--replicas` in the placement's rank order.
    fn is_replica(&self, name: &str) -> bool {
        let (live, owner) = self.own.view_of(name);
        super::lease::rank(name, live.iter().map(String::as_str))
            .into_iter()
            .filter(|n| Some(*n) != owner.as_deref())
            .take(self.replicas)
            .any(|n| n == self.node)
    }

    /// The stream, made if missing.
    async fn stream(&self) -> anyhow::Result<stream::Stream> {
        let config = stream::Config {
            name: RECORDS_STREAM.into(),
            description: Some("mo: every console's record log (mod --cluster)".into()),
            subjects: vec![format!("{SUBJECT_PREFIX}>")],
            storage: stream::StorageType::File,
            max_age: STREAM_MAX_AGE,
            max_message_size: i32::try_from(MAX_BATCH + 4096).unwrap_or(i32::MAX),
            duplicate_window: Duration::from_secs(120),
            num_replicas: super::store_replicas(&self.js),
            ..Default::default()
        };
        Ok(self.js.get_or_create_stream(config).await?)
    }

    /// Publish what the held consoles wrote, and catch up on consoles newly held.
    async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u64 = 0;
        loop {
            ticks.tick().await;
            round += 1;
            // Consoles not held here are looked at once a second.
            let slow_round = round.is_multiple_of(5);
            let Some(registry) = self.registry.upgrade() else {
                return;
            };
            let names: Vec<String> = registry.list().into_iter().map(|e| e.device.name).collect();
            drop(registry);
            // Consoles newly held here catch up first, all at once, and start together.
            let (held, others): (Vec<String>, Vec<String>) =
                names.into_iter().partition(|n| self.own.holds(n));
            if let Ok(mut r) = self.ready.write() {
                for name in &others {
                    r.remove(name);
                }
            }
            let waiting: Vec<&String> = held.iter().filter(|n| !self.is_ready(n)).collect();
            let me: &Replication = &self;
            let caught = futures_util::future::join_all(
                waiting
                    .iter()
                    .map(|n| async move { (*n, me.catch_up(n).await) }),
            )
            .await;
            let mut newly_ready = false;
            for (name, result) in caught {
                match result {
                    Ok(()) => {
                        if let Ok(mut r) = self.ready.write() {
                            r.insert(name.clone());
                        }
                        newly_ready = true;
                    }
                    Err(e) => {
                        tracing::warn!(device = %name, "cluster: cannot catch up on the record log: {e:#}");
                    }
                }
            }
            if newly_ready && let Some(registry) = self.registry.upgrade() {
                let _ = registry.sync_from_store(None).await;
            }
            for name in held.iter().filter(|n| self.is_ready(n)) {
                if let Err(e) = self.publish(name).await {
                    tracing::warn!(device = %name, "cluster: cannot publish records: {e:#}");
                }
            }
            // Records written here while NATS was away, before the lease ran out (a copy of
            // another owner's log is never behind its cursor: nothing to send).
            if slow_round {
                for name in &others {
                    let _ = self.publish(name).await;
                }
            }
        }
    }

    /// Publish the records of `name` the stream does not hold yet.
    async fn publish(&self, name: &str) -> anyhow::Result<()> {
        let Some(dir) = self.log_dir(name) else {
            return Ok(());
        };
        if !dir.is_dir() {
            return Ok(());
        }
        let lock = self.lock_of(name);
        let _turn = lock.lock().await;
        let subject = format!("{SUBJECT_PREFIX}{}", key_of(name));
        for _ in 0..16 {
            let mut cursor = read_cursor(&dir);
            let Some((segment, offset, bytes)) = next_unpublished(&dir, &cursor)? else {
                return Ok(());
            };
            let mut headers = HeaderMap::new();
            headers.insert(H_SEGMENT, segment.to_string().as_str());
            headers.insert(H_OFFSET, offset.to_string().as_str());
            headers.insert(H_NODE, self.node.as_str());
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{subject}:{segment}:{offset}").as_str(),
            );
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                cursor.stream_seq.to_string().as_str(),
            );
            let len = bytes.len() as u64;
            let ack = tokio::time::timeout(super::REQUEST_TIMEOUT, async {
                self.js
                    .publish_with_headers(subject.clone(), headers, bytes.into())
                    .await?
                    .await
            })
            .await
            .context("NATS does not answer")?;
            let ack = match ack {
                Ok(ack) => ack,
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                    // The stream holds a message of this console after the last one this node
                    // heard acknowledged: its own publish whose ack was lost (sent again after
                    // the duplicate window, or to a server that checks the expected sequence
                    // before the message id, as a lone nats-server does), or another node's
                    // that ran the console meanwhile. Following the stream sorts it out: a
                    // message with the local bytes moves the cursor past them ([`apply`]),
                    // another's sets the local ones aside (and says so).
                    tracing::warn!(
                        device = %name,
                        "cluster: the site's log of this console holds more than this node \
                         heard acknowledged (from segment {segment} byte {offset}); following \
                         the site's"
                    );
                    drop(_turn);
                    return self.catch_up(name).await;
                }
                Err(e) => return Err(e.into()),
            };
            // A publish whose ack was lost may have been stored all the same: sent again with
            // the same message id (and by now perhaps more records) it is answered as a
            // duplicate of the stored message (by a clustered stream, within the duplicate
            // window), and the copy goes on where *that* one ends.
            let len = if ack.duplicate {
                let stored = self.stored_len(ack.sequence, segment, offset).await?;
                tracing::info!(
                    device = %name,
                    "cluster: records of segment {segment} from byte {offset} were stored though \
                     the ack was lost (stream message {}, {stored} bytes; {len} sent again): \
                     publishing on after them",
                    ack.sequence
                );
                stored
            } else {
                len
            };
            cursor = Cursor {
                segment,
                offset: offset + len,
                stream_seq: ack.sequence,
            };
            write_cursor(&dir, &cursor)?;
        }
        Ok(())
    }

    /// The payload length of stream message `seq`, which must be the one published for
    /// `segment` byte `offset`.
    async fn stored_len(&self, seq: u64, segment: u64, offset: u64) -> anyhow::Result<u64> {
        let stored = self
            .stream()
            .await?
            .get_raw_message(seq)
            .await
            .with_context(|| format!("read back stream message {seq} (a duplicate)"))?;
        let header = |name: &str| {
            stored
                .headers
                .get(name)
                .and_then(|v| v.as_str().parse::<u64>().ok())
        };
        if header(H_SEGMENT) != Some(segment) || header(H_OFFSET) != Some(offset) {
            bail!(
                "stream message {seq}, answered as a duplicate of segment {segment} byte \
                 {offset}, holds segment {:?} byte {:?}",
                header(H_SEGMENT),
                header(H_OFFSET)
            );
        }
        Ok(stored.payload.len() as u64)
    }

    /// Apply every message of `name` the stream holds beyond the local cursor.
    async fn catch_up(&self, name: &str) -> anyhow::Result<()> {
        let Some(dir) = self.log_dir(name) else {
            return Ok(());
        };
        let stream = self.stream().await?;
        let subject = format!("{SUBJECT_PREFIX}{}", key_of(name));
        let last = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let lock = self.lock_of(name);
        let _turn = lock.lock().await;
        let start = read_cursor(&dir).stream_seq;
        if start >= last {
            return Ok(());
        }
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy: if start == 0 {
                    consumer::DeliverPolicy::All
                } else {
                    consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start + 1,
                    }
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        loop {
            let next = tokio::time::timeout(super::REQUEST_TIMEOUT, messages.next())
                .await
                .context("the stream stopped answering")?;
            let Some(message) = next else {
                bail!("the stream ended early");
            };
            let message = message?;
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            apply(&dir, seq, &message.headers, &message.payload)?;
            if seq >= last {
                return Ok(());
            }
        }
    }

    /// Write what owners publish into the replicas this node keeps, as it comes.
    async fn follow(self: Arc<Self>) {
        const FIRST_PAUSE: Duration = Duration::from_millis(200);
        let mut pause = FIRST_PAUSE;
        loop {
            let began = tokio::time::Instant::now();
            if let Err(e) = self.follow_once().await {
                tracing::warn!("cluster: following the records stream: {e:#}");
            }
            // A follow that ran a while worked: the next interruption starts the back-off
            // again, so a replica catches up soon after an outage however many came before.
            if began.elapsed() > super::MAX_RETRY * 4 {
                pause = FIRST_PAUSE;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(super::MAX_RETRY);
        }
    }

    async fn follow_once(&self) -> anyhow::Result<()> {
        let stream = self.stream().await?;
        // Replicas first catch up on what they missed while away.
        if let Some(registry) = self.registry.upgrade() {
            let names: Vec<String> = registry.list().into_iter().map(|e| e.device.name).collect();
            drop(registry);
            for name in names.iter().filter(|n| self.is_replica(n)) {
                if let Err(e) = self.catch_up(name).await {
                    tracing::warn!(device = %name, "cluster: replica catch-up: {e:#}");
                }
            }
        }
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("{SUBJECT_PREFIX}>"),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let Some(name) = message
                .subject
                .strip_prefix(SUBJECT_PREFIX)
                .and_then(name_of)
            else {
                continue;
            };
            if self.own.holds(&name) || !self.is_replica(&name) {
                continue;
            }
            let Some(dir) = self.log_dir(&name) else {
                continue;
            };
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            let lock = self.lock_of(&name);
            let turn = lock.lock().await;
            let applied = apply(&dir, seq, &message.headers, &message.payload);
            drop(turn);
            if let Err(e) = applied {
                tracing::info!(device = %name, "cluster: replica: {e:#}; catching up");
                if let Err(e) = self.catch_up(&name).await {
                    tracing::warn!(device = %name, "cluster: replica catch-up: {e:#}");
                }
            }
        }
        bail!("the records stream ended")
    }

    /// Answer `mo log verify --replicas` requests: this node's view of a device's log.
    async fn answer_verify(self: Arc<Self>) {
        loop {
            match self.client.subscribe(VERIFY_SUBJECT).await {
                Ok(mut requests) => {
                    while let Some(request) = requests.next().await {
                        let Some(reply) = request.reply else {
                            continue;
                        };
                        let Ok(ask) = serde_json::from_slice::<Ask>(&request.payload) else {
                            continue;
                        };
                        let report = self.local_report(&ask.device, ask.seqs).await;
                        let body = serde_json::to_vec(&report).unwrap_or_default();
                        let _ = self.client.publish(reply, body.into()).await;
                    }
                }
                Err(e) => tracing::warn!("cluster: cannot answer log verification: {e}"),
            }
            tokio::time::sleep(super::MAX_RETRY).await;
        }
    }

    /// This node's report on its copy of `name`'s log.
    pub async fn local_report(&self, name: &str, seqs: BTreeSet<u64>) -> NodeLog {
        let owner = self.own.holds(name);
        let replica = self.is_replica(name);
        let node = self.node.clone();
        let Some(dir) = self.log_dir(name) else {
            return NodeLog {
                node,
                owner,
                ..NodeLog::default()
            };
        };
        let lock = self.lock_of(name);
        let _turn = lock.lock().await;
        let mut log = tokio::task::spawn_blocking(move || node_log(&dir, node, owner, &seqs))
            .await
            .unwrap_or_default();
        log.replica = replica;
        log
    }

    /// The JetStream context (for the checkpoint buckets).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Ask every live node for its copy of `name`'s log; the answers that came within a few
    /// seconds, this node's first.
    pub async fn gather(&self, name: &str, seqs: BTreeSet<u64>) -> anyhow::Result<Vec<NodeLog>> {
        let (live, _) = self.own.view_of(name);
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await?;
        let ask = serde_json::to_vec(&Ask {
            device: name.to_owned(),
            seqs,
        })?;
        self.client
            .publish_with_reply(VERIFY_SUBJECT, inbox, ask.into())
            .await?;
        let mut got: BTreeMap<String, NodeLog> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while live.iter().any(|n| !got.contains_key(n)) {
            match tokio::time::timeout_at(deadline, replies.next()).await {
                Ok(Some(m)) => {
                    if let Ok(log) = serde_json::from_slice::<NodeLog>(&m.payload) {
                        got.insert(log.node.clone(), log);
                    }
                }
                _ => break,
            }
        }
        let mut logs: Vec<NodeLog> = got.into_values().collect();
        logs.sort_by_key(|l| l.node != self.node);
        Ok(logs)
    }
}

/// A verification request: the device, and the records whose chain values to report.
#[derive(Debug, Serialize, Deserialize)]
struct Ask {
    device: String,
    seqs: BTreeSet<u64>,
}

/// Compare the nodes' copies: one line per divergence (node, device, record), and one per
/// node that is behind (not a divergence).
pub fn compare(device: &str, logs: &[NodeLog]) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for log in logs.iter().filter(|l| l.present) {
        if let Some(p) = &log.problem {
            let at = log
                .problem_seq
                .map_or_else(String::new, |s| format!(" record {s}:"));
            problems.push(format!("node {}: device {device}:{at} {p}", log.node));
        }
    }
    // The reference: the owner's copy if it is intact, else the longest intact one.
    let intact: Vec<&NodeLog> = logs
        .iter()
        .filter(|l| l.present && l.problem.is_none())
        .collect();
    let reference = intact
        .iter()
        .find(|l| l.owner)
        .or_else(|| intact.iter().max_by_key(|l| l.last_seq))
        .copied();
    if let Some(reference) = reference {
        let ends: BTreeMap<u64, (u64, &str)> = reference
            .ends
            .iter()
            .map(|(f, l, c)| (*f, (*l, c.as_str())))
            .collect();
        for log in logs
            .iter()
            .filter(|l| l.present && l.node != reference.node)
        {
            for (first, last, chain) in &log.ends {
                match ends.get(first) {
                    Some((l, c)) if l == last && c != chain => {
                        problems.push(format!(
                            "node {}: device {device}: records {first}..{last} differ from \
                             node {}'s (the hash chain diverges in that segment)",
                            log.node, reference.node
                        ));
                        break;
                    }
                    _ => {}
                }
            }
            if log.last_seq < reference.last_seq && (log.replica || log.owner) {
                warnings.push(format!(
                    "node {}: device {device}: holds records up to {} of {} (behind)",
                    log.node,
                    log.last_seq.unwrap_or(0),
                    reference.last_seq.unwrap_or(0)
                ));
            }
        }
    }
    if logs.iter().filter(|l| l.present).count() < 2 {
        warnings.push(format!(
            "device {device}: no other node holds a copy of its log"
        ));
    }
    (problems, warnings)
}

/// The bytes after `cursor` of the first segment that has some: whole records only (a record
/// longer than [`MAX_BATCH`] goes in pieces once all of it is written).
fn next_unpublished(dir: &Path, cursor: &Cursor) -> anyhow::Result<Option<(u64, u64, Vec<u8>)>> {
    let segments = list_segments(dir)?;
    for seg in segments.iter().filter(|s| s.first_seq >= cursor.segment) {
        if seg.is_compressed() {
            // Compressed before it was published: publishing it needs its plain form.
            continue;
        }
        let offset = if seg.first_seq == cursor.segment {
            cursor.offset
        } else {
            0
        };
        let mut file = std::fs::File::open(&seg.path)?;
        let len = file.metadata()?.len();
        if len <= offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let want = usize::try_from(len - offset)
            .unwrap_or(usize::MAX)
            .min(MAX_BATCH);
        let mut buf = vec![0u8; want];
        file.read_exact(&mut buf)?;
        let mut pos = if offset == 0 { HEADER_LEN } else { 0 };
        let start = pos;
        while let Some(rec) = buf.get(pos..).and_then(peek_record_len) {
            let rec = rec as usize;
            if rec < RECORD_TRAILER_LEN || pos + rec > buf.len() {
                break;
            }
            pos += rec;
        }
        if pos == start {
            // The first record does not fit in a batch: send a piece once it is all written.
            let whole = buf.get(start..).and_then(peek_record_len).map(|l| l as u64);
            match whole {
                Some(l) if l as usize > MAX_BATCH - start && offset + start as u64 + l <= len => {
                    return Ok(Some((seg.first_seq, offset, buf)));
                }
                _ => return Ok(None),
            }
        }
        buf.truncate(pos);
        return Ok(Some((seg.first_seq, offset, buf)));
    }
    Ok(None)
}

/// Write one message of the stream into the local copy in `dir` (stream sequence `seq`).
fn apply(dir: &Path, seq: u64, headers: &Option<HeaderMap>, payload: &[u8]) -> anyhow::Result<()> {
    let header = |name: &str| -> anyhow::Result<u64> {
        headers
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.as_str().parse().ok())
            .with_context(|| format!("message {seq} lacks header {name}"))
    };
    let (segment, offset) = (header(H_SEGMENT)?, header(H_OFFSET)?);
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let cursor = read_cursor(dir);
    if seq <= cursor.stream_seq {
        return Ok(());
    }
    let continues = (segment == cursor.segment && offset == cursor.offset)
        || (offset == 0 && segment > cursor.segment);
    if !continues {
        bail!(
            "message {seq} (segment {segment} byte {offset}) does not continue the copy \
             (segment {} byte {})",
            cursor.segment,
            cursor.offset
        );
    }
    let path = dir.join(segment_file_name(segment));
    let local_len = std::fs::metadata(&path).map_or(0, |m| m.len());
    let later = list_segments(dir)?
        .into_iter()
        .any(|s| s.first_seq > segment.max(cursor.segment));
    if local_len != offset || later {
        let mine = local_len > offset && {
            // Our own bytes, published by us but not yet noted (a crash between ack and cursor).
            let mut same = vec![0u8; payload.len()];
            std::fs::File::open(&path)
                .and_then(|mut f| {
                    f.seek(SeekFrom::Start(offset))?;
                    f.read_exact(&mut same)
                })
                .is_ok()
                && same == payload
        };
        if !mine {
            set_aside(dir, &cursor)?;
        }
    }
    let local_len = std::fs::metadata(&path).map_or(0, |m| m.len());
    if local_len == offset {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(payload)?;
    }
    write_cursor(
        dir,
        &Cursor {
            segment,
            offset: offset + payload.len() as u64,
            stream_seq: seq,
        },
    )?;
    Ok(())
}

/// Move the local bytes the stream does not hold (beyond `cursor`) into `diverged-<time>/`,
/// with the first record the stream lacks in its state file: this node sends them to the
/// console's owner from there ([`recover`]).
fn set_aside(dir: &Path, cursor: &Cursor) -> anyhow::Result<()> {
    let stamp = mo_core::record::now_ns() / 1_000_000_000;
    let mut aside = dir.join(format!("{}{stamp}", recover::DIVERGED));
    let mut n = 1;
    while aside.exists() || aside.with_file_name(format!("recovered-{stamp}")).exists() {
        n += 1;
        aside = dir.join(format!("{}{stamp}-{n}", recover::DIVERGED));
    }
    std::fs::create_dir_all(&aside)?;
    let from_seq = if cursor.segment > 0 {
        seq_at(
            &dir.join(segment_file_name(cursor.segment)),
            cursor.segment,
            cursor.offset,
        )
        .unwrap_or(0)
    } else {
        0
    };
    for seg in list_segments(dir)? {
        let name = seg.name();
        if seg.first_seq > cursor.segment {
            std::fs::rename(&seg.path, aside.join(&name))?;
        } else if seg.first_seq == cursor.segment {
            std::fs::copy(&seg.path, aside.join(&name))?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&seg.path)?
                .set_len(cursor.offset)?;
        }
    }
    recover::write_state(
        &aside,
        &recover::State {
            from_seq,
            ..recover::State::default()
        },
    )?;
    recover::note_pending();
    tracing::error!(
        dir = %dir.display(),
        "cluster: records written here that the site's log does not hold were moved to {}; \
         they are sent to the console's owner, which appends them to the site's log",
        aside.display()
    );
    Ok(())
}

/// This node's copy of the log in `dir`: local verification and each segment's chain end.
fn node_log(dir: &Path, node: String, owner: bool, wanted: &BTreeSet<u64>) -> NodeLog {
    let mut log = NodeLog {
        node,
        owner,
        ..NodeLog::default()
    };
    let Ok(segments) = list_segments(dir) else {
        return log;
    };
    if segments.is_empty() {
        return log;
    }
    log.present = true;
    match verify(dir) {
        Ok(report) => {
            log.records = report.records;
            log.last_seq = report.last_seq;
            if let Some(p) = &report.problem {
                log.problem_seq = parse_segment_file_name(&p.segment)
                    .and_then(|first| seq_at(&dir.join(&p.segment), first, p.offset));
                log.problem = Some(p.to_string());
            }
        }
        Err(e) => log.problem = Some(e.to_string()),
    }
    for seg in segments.iter().filter(|s| !s.is_compressed()) {
        let Ok(bytes) = std::fs::read(&seg.path) else {
            continue;
        };
        let mut pos = HEADER_LEN;
        let mut last = None;
        while let Some(len) = bytes.get(pos..).and_then(peek_record_len) {
            let len = len as usize;
            let Some(rec) = bytes.get(pos..pos + len).filter(|_| len >= 64) else {
                break;
            };
            let seq = rec
                .get(4..12)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes);
            let chain = rec.get(len - RECORD_TRAILER_LEN..len - 8);
            if let (Some(seq), Some(chain)) = (seq, chain) {
                if wanted.contains(&seq) {
                    log.at.push((seq, hex(chain)));
                }
                last = Some((seq, hex(chain)));
            }
            pos += len;
        }
        if let Some((seq, chain)) = last {
            log.ends.push((seg.first_seq, seq, chain));
        }
    }
    log
}

/// The sequence number of the record at or around byte `offset` of a plain segment.
fn seq_at(path: &Path, first_seq: u64, offset: u64) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut pos = HEADER_LEN as u64;
    let mut seq = first_seq;
    while pos < offset {
        let len = u64::from(
            bytes
                .get(usize::try_from(pos).ok()?..)
                .and_then(peek_record_len)?,
        );
        if len == 0 || pos + len > offset {
            break;
        }
        pos += len;
        seq += 1;
    }
    Some(seq)
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use mo_core::log::{LogOptions, LogWriter};
    use mo_core::record::{Chunk, RecordKind, RecordSink};

    pub(super) fn write(dir: &Path, n: u64, tag: &str) {
        let (mut w, _) = LogWriter::open(
            dir,
            LogOptions {
                segment_max_bytes: 600,
                ..LogOptions::default()
            },
        )
        .unwrap();
        for _ in 0..n {
            let seq = w.next_seq();
            w.append(&Chunk {
                seq,
                time_ns: 1_795_341_600_000_000_000 + seq,
                kind: RecordKind::Output,
                user: "".into(),
                offset: 0,
                bytes: format!("{tag} line {seq}\r\n").repeat(4).into(),
            })
            .unwrap();
        }
    }

    /// Publishing reads whole records from the files; applying them elsewhere makes identical
    /// files, however they were cut into messages.
    #[test]
    fn applied_messages_make_byte_identical_segments() {
        let base = std::env::temp_dir().join(format!("mo-replica-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        let _ = std::fs::remove_dir_all(&base);
        write(&a, 5, "a");
        let mut cursor = Cursor::default();
        let mut seq = 0;
        let mut copy = |cursor: &mut Cursor| {
            while let Some((segment, offset, bytes)) = next_unpublished(&a, cursor).unwrap() {
                seq += 1;
                let mut h = HeaderMap::new();
                h.insert(H_SEGMENT, segment.to_string().as_str());
                h.insert(H_OFFSET, offset.to_string().as_str());
                apply(&b, seq, &Some(h), &bytes).unwrap();
                *cursor = Cursor {
                    segment,
                    offset: offset + bytes.len() as u64,
                    stream_seq: seq,
                };
            }
        };
        copy(&mut cursor);
        write(&a, 20, "a");
        copy(&mut cursor);
        let segs = list_segments(&a).unwrap();
        assert!(segs.len() > 2, "rotated: {segs:?}");
        for s in &segs {
            let theirs = std::fs::read(b.join(s.name())).unwrap();
            assert_eq!(std::fs::read(&s.path).unwrap(), theirs, "{}", s.name());
        }
        assert!(verify(&b).unwrap().is_ok());
        let (la, lb) = (
            node_log(&a, "a".into(), true, &BTreeSet::new()),
            node_log(&b, "b".into(), false, &BTreeSet::new()),
        );
        assert_eq!(la.ends, lb.ends);
        assert_eq!(lb.last_seq, Some(25));
        let (problems, _) = compare("d", &[la.clone(), lb]);
        assert!(problems.is_empty(), "{problems:?}");

        // One byte changed in a closed segment of b: named with its node and record.
        let first = &segs[0];
        let path = b.join(first.name());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 50;
        bytes[at] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let lb = node_log(&b, "b".into(), false, &BTreeSet::new());
        let (problems, _) = compare("d", &[la, lb]);
        let last_of_first = segs[1].first_seq - 1;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("node b: device d: record {last_of_first}:"))),
            "{problems:?}"
        );
        std::fs::remove_dir_all(&base).ok();
    }

    /// A publish stored though its ack was lost, sent again after the duplicate window (more
    /// records by then): the stream answers "wrong last sequence", and the publisher follows
    /// the stream over its own message. The cursor moves past exactly the stored bytes, nothing
    /// is set aside, and publishing on gives a copy with every byte once.
    #[test]
    fn own_message_whose_ack_was_lost_is_followed_not_set_aside() {
        let base = std::env::temp_dir().join(format!("mo-replica-lost-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        let _ = std::fs::remove_dir_all(&base);
        let headers = |segment: u64, offset: u64| {
            let mut h = HeaderMap::new();
            h.insert(H_SEGMENT, segment.to_string().as_str());
            h.insert(H_OFFSET, offset.to_string().as_str());
            Some(h)
        };
        write(&a, 2, "a");
        // Stream message 1, stored; a never hears its ack and writes on (a new segment too).
        let (segment, offset, stored) = next_unpublished(&a, &Cursor::default()).unwrap().unwrap();
        apply(&b, 1, &headers(segment, offset), &stored).unwrap();
        write(&a, 20, "a");
        let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            list_segments(dir)
                .unwrap()
                .iter()
                .map(|s| (s.name(), std::fs::read(&s.path).unwrap()))
                .collect()
        };
        let before = files(&a);
        assert!(before.len() > 1, "rotated: {before:?}");
        let resent = next_unpublished(&a, &Cursor::default()).unwrap().unwrap();
        assert!(resent.2.len() > stored.len(), "more records by the retry");

        // Following the stream: message 1 holds a's own bytes.
        apply(&a, 1, &headers(segment, offset), &stored).unwrap();
        assert_eq!(files(&a), before, "a's files untouched");
        assert!(
            !std::fs::read_dir(&a)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with("diverged-")),
            "nothing set aside"
        );
        let mut cursor = read_cursor(&a);
        assert_eq!(
            cursor,
            Cursor {
                segment,
                offset: offset + stored.len() as u64,
                stream_seq: 1
            }
        );

        // Publishing on from there: b's copy is a's, byte for byte.
        while let Some((segment, offset, bytes)) = next_unpublished(&a, &cursor).unwrap() {
            let seq = cursor.stream_seq + 1;
            apply(&b, seq, &headers(segment, offset), &bytes).unwrap();
            cursor = Cursor {
                segment,
                offset: offset + bytes.len() as u64,
                stream_seq: seq,
            };
        }
        assert_eq!(files(&b), before);
        assert!(verify(&b).unwrap().is_ok());
        std::fs::remove_dir_all(&base).ok();
    }

    /// A message that continues the stream where this node holds other bytes: those are set
    /// aside, the copy follows the stream.
    #[test]
    fn local_bytes_the_stream_lacks_are_set_aside() {
        let base = std::env::temp_dir().join(format!("mo-replica-aside-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        let _ = std::fs::remove_dir_all(&base);
        write(&a, 2, "a");
        write(&b, 3, "b");
        let (segment, offset, bytes) = next_unpublished(&a, &Cursor::default()).unwrap().unwrap();
        let mut h = HeaderMap::new();
        h.insert(H_SEGMENT, segment.to_string().as_str());
        h.insert(H_OFFSET, offset.to_string().as_str());
        apply(&b, 1, &Some(h), &bytes).unwrap();
        let seg = list_segments(&a).unwrap().remove(0);
        assert_eq!(
            std::fs::read(&seg.path).unwrap(),
            std::fs::read(b.join(seg.name())).unwrap()
        );
        let aside: Vec<_> = std::fs::read_dir(&b)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("diverged-"))
            .collect();
        assert_eq!(aside.len(), 1);
        std::fs::remove_dir_all(&base).ok();
    }
}
