//! Recovering the records a node wrote while it was cut off (issue 14 item 5: "the records it
//! wrote locally while cut off are published then").
//!
//! When the site's log of a console went on without records this node wrote (it was killed or
//! cut off before it published them, and another node ran the console meanwhile), catching up
//! moves them aside into `logs/NAME/diverged-<time>/` with a state file ([`STATE_FILE`]: the
//! first record the site lacks). This node then sends them, in runs of at most 256 KiB, to the
//! console's current owner on the core subject `mo.recover.<device key>`; the owner appends them
//! to the console's log after a notice naming the node, the times and the run's first record
//! (`[recovery NODE/diverged-T/SEQ]`): the site's chain gets them with fresh sequence numbers,
//! their own times, kinds and users, exactly once (the owner looks for that notice before it
//! appends, and answers only once the stream holds them). When every run is in, the directory
//! is renamed `recovered-<time>/` and kept as evidence of what this node had written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt as _;
use mo_core::log::format::{Decoded, RecordFields, decode_record, encode_record};
use mo_core::log::{ReadOptions, Record, format_timestamp, read, segment_file_name};
use mo_core::record::RecordKind;
use serde::{Deserialize, Serialize};

use super::{MAX_BATCH, Replication, read_cursor, seq_at};
use crate::cluster::directory::{key_of, name_of};

/// The subject prefix of recovered runs: `mo.recover.<device key>`.
const RECOVER_PREFIX: &str = "mo.recover.";

/// The state of a directory of diverged records.
pub(super) const STATE_FILE: &str = ".mo-diverged";

/// A diverged directory's name starts with this until every run of it is in the site's log.
pub(super) const DIVERGED: &str = "diverged-";

/// Headers of a recovered run: the node that wrote it, and the run's id.
const H_NODE: &str = "Mo-Node";
const H_RECOVERY: &str = "Mo-Recovery";

/// How long this node waits for the owner to append a run and publish it.
const RECOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// How often this node looks for diverged records to recover.
const RECOVER_EVERY: Duration = Duration::from_secs(1);

/// Whether a diverged directory may wait somewhere: at start, after records were set aside, and
/// while one could not be recovered yet (else the devices' directories are not looked at).
static PENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Note that records were set aside (the recovery looks for them at its next round).
pub(super) fn note_pending() {
    PENDING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// What is left to recover of a diverged directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct State {
    /// The first record the site's log lacks (0: all of them).
    pub from_seq: u64,
    /// The next record to send (0: none sent yet).
    #[serde(default)]
    pub next: u64,
    /// The site's records the runs sent so far became (first, last).
    #[serde(default)]
    pub site: Vec<(u64, u64)>,
}

/// The owner's answer to a recovered run.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    /// The site's sequence numbers of the notice and of the run's last record.
    first: u64,
    last: u64,
    /// Why the run was not taken.
    error: Option<String>,
}

fn read_state(aside: &Path) -> Option<State> {
    serde_json::from_slice(&std::fs::read(aside.join(STATE_FILE)).ok()?).ok()
}

pub(super) fn write_state(aside: &Path, state: &State) -> std::io::Result<()> {
    let tmp = aside.join(format!("{STATE_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(state).unwrap_or_default())?;
    std::fs::rename(&tmp, aside.join(STATE_FILE))
}

/// The directories of `dir` holding diverged records not yet recovered.
fn diverged_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(DIVERGED))
                .map(|e| e.path())
                .filter(|p| p.join(STATE_FILE).is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// One run of records of a diverged directory, encoded as the log encodes them.
struct Run {
    first: u64,
    last: u64,
    first_ns: u64,
    last_ns: u64,
    records: usize,
    bytes: Vec<u8>,
}

/// The records of `aside` from `from` on, at most [`MAX_BATCH`] bytes of them (at least one).
fn next_run(aside: &Path, from: u64) -> anyhow::Result<Option<Run>> {
    let records = read(
        aside,
        &ReadOptions {
            from_seq: Some(from),
            ..ReadOptions::default()
        },
    )?;
    let mut run: Option<Run> = None;
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(dir = %aside.display(), "cluster: diverged records end at a damaged one: {e}");
                break;
            }
        };
        if record.seq < from {
            continue;
        }
        let fields = RecordFields {
            seq: record.seq,
            time_ns: record.time_ns,
            kind: record.kind,
            user: &record.user,
            bytes: &record.bytes,
        };
        let len = fields.encoded_len()?;
        if run
            .as_ref()
            .is_some_and(|r| r.bytes.len() + len > MAX_BATCH)
        {
            break;
        }
        let r = run.get_or_insert_with(|| Run {
            first: record.seq,
            last: record.seq,
            first_ns: record.time_ns,
            last_ns: record.time_ns,
            records: 0,
            bytes: Vec::new(),
        });
        encode_record(&mut r.bytes, &[0; 32], &fields)?;
        r.last = record.seq;
        r.first_ns = r.first_ns.min(record.time_ns);
        r.last_ns = r.last_ns.max(record.time_ns);
        r.records += 1;
    }
    Ok(run)
}

/// The records a run carries.
fn decode_run(mut bytes: &[u8]) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        match decode_record(bytes) {
            Decoded::Record(r) => {
                records.push(r.to_record());
                bytes = bytes.get(r.len()..).unwrap_or_default();
            }
            Decoded::Incomplete { .. } => bail!("a recovered run ends inside a record"),
            Decoded::Damaged(d) => bail!("a recovered run holds a damaged record: {d}"),
        }
    }
    Ok(records)
}

/// The notice that starts a recovered run in the site's log.
fn notice(origin: &str, id: &str, records: &[Record]) -> String {
    let first = records.first().map_or(0, |r| r.seq);
    let last = records.last().map_or(0, |r| r.seq);
    let t1 = records.iter().map(|r| r.time_ns).min().unwrap_or(0);
    let t2 = records.iter().map(|r| r.time_ns).max().unwrap_or(0);
    format!(
        "recovered: {} records written on node {origin} between {} and {} (its records \
         {first}..{last}) while it was cut off from the site follow [recovery {id}]",
        records.len(),
        format_timestamp(t1),
        format_timestamp(t2),
    )
}

/// The sequence number of the notice in `dir`'s log since `since_ns` carrying `tag`.
fn find_notice(dir: &Path, since_ns: u64, tag: &str) -> Option<u64> {
    let records = read(
        dir,
        &ReadOptions {
            since: Some(since_ns),
            ..ReadOptions::default()
        },
    )
    .ok()?;
    let tag = tag.as_bytes();
    records
        .map_while(Result::ok)
        .find(|r| r.kind == RecordKind::Notice && r.bytes.windows(tag.len()).any(|w| w == tag))
        .map(|r| r.seq)
}

/// The first record of `dir`'s log the stream does not hold yet.
fn first_unpublished(dir: &Path) -> u64 {
    let c = read_cursor(dir);
    if c.segment == 0 {
        return 0;
    }
    seq_at(&dir.join(segment_file_name(c.segment)), c.segment, c.offset).unwrap_or(0)
}

impl Replication {
    /// Send this node's diverged records to the owners of their consoles, once a second.
    pub(super) async fn recover_diverged(self: std::sync::Arc<Self>) {
        let mut ticks = tokio::time::interval(RECOVER_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !PENDING.swap(false, std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let Some(registry) = self.registry.upgrade() else {
                return;
            };
            let names: Vec<String> = registry.list().into_iter().map(|e| e.device.name).collect();
            drop(registry);
            for name in names {
                let Some(dir) = self.log_dir(&name) else {
                    continue;
                };
                for aside in diverged_dirs(&dir) {
                    if let Err(e) = self.recover_one(&name, &aside).await {
                        note_pending();
                        tracing::info!(device = %name, dir = %aside.display(), "cluster: cannot recover the records written here while cut off yet: {e:#}");
                        break;
                    }
                }
            }
        }
    }

    /// Send the runs of one diverged directory; rename it `recovered-…` when all are in.
    async fn recover_one(&self, name: &str, aside: &Path) -> anyhow::Result<()> {
        let dir_name = aside
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        loop {
            let mut state = read_state(aside).context("unreadable state file")?;
            let from = state.from_seq.max(state.next);
            let path = aside.to_owned();
            let run = tokio::task::spawn_blocking(move || next_run(&path, from)).await??;
            let Some(run) = run else {
                if state.site.is_empty() {
                    // Nothing the site lacks: only a copy of records it holds.
                    std::fs::remove_dir_all(aside)?;
                    return Ok(());
                }
                let done = aside.with_file_name(dir_name.replacen(DIVERGED, "recovered-", 1));
                std::fs::rename(aside, &done)?;
                let sent: Vec<String> = state
                    .site
                    .iter()
                    .map(|(f, l)| format!("{f}..{l}"))
                    .collect();
                tracing::warn!(
                    device = %name,
                    "cluster: the records written here while cut off are in the site's log now, \
                     as its records {}; this node's copy is kept in {}",
                    sent.join(", "),
                    done.display()
                );
                return Ok(());
            };
            let id = format!("{}/{dir_name}/{}", self.node, run.first);
            let mut headers = HeaderMap::new();
            headers.insert(H_NODE, self.node.as_str());
            headers.insert(H_RECOVERY, id.as_str());
            let request = async_nats::Request::new()
                .headers(headers)
                .payload(Bytes::from(run.bytes))
                .timeout(Some(RECOVER_TIMEOUT));
            let subject = format!("{RECOVER_PREFIX}{}", key_of(name));
            let reply = self
                .client
                .send_request(subject, request)
                .await
                .map_err(|e| match e.kind() {
                    async_nats::RequestErrorKind::NoResponders => {
                        anyhow::anyhow!("no node runs the console now")
                    }
                    _ => anyhow::anyhow!("{e}"),
                })?;
            let answer: Answer = serde_json::from_slice(&reply.payload)?;
            if let Some(e) = answer.error {
                bail!("the owner refused records {}..{}: {e}", run.first, run.last);
            }
            tracing::info!(
                device = %name,
                "cluster: {} records written here between {} and {} (records {}..{}) are in the \
                 site's log as its records {}..{}",
                run.records,
                format_timestamp(run.first_ns),
                format_timestamp(run.last_ns),
                run.first,
                run.last,
                answer.first,
                answer.last
            );
            state.next = run.last + 1;
            state.site.push((answer.first, answer.last));
            write_state(aside, &state)?;
        }
    }

    /// Take the recovered runs other nodes send for consoles this node runs.
    pub(super) async fn answer_recover(self: std::sync::Arc<Self>) {
        loop {
            match self.client.subscribe(format!("{RECOVER_PREFIX}>")).await {
                Ok(mut runs) => {
                    while let Some(run) = runs.next().await {
                        let Some(reply) = run.reply.clone() else {
                            continue;
                        };
                        let Some(name) = run.subject.strip_prefix(RECOVER_PREFIX).and_then(name_of)
                        else {
                            continue;
                        };
                        // Only the console's owner, once it caught up, answers.
                        if !self.own.holds(&name) || !self.is_ready(&name) {
                            continue;
                        }
                        let answer = match self.take_run(&name, &run).await {
                            Ok((first, last)) => Answer {
                                first,
                                last,
                                error: None,
                            },
                            Err(e) => Answer {
                                first: 0,
                                last: 0,
                                error: Some(format!("{e:#}")),
                            },
                        };
                        let body = serde_json::to_vec(&answer).unwrap_or_default();
                        let _ = self.client.publish(reply, body.into()).await;
                    }
                }
                Err(e) => tracing::warn!("cluster: cannot take recovered records: {e}"),
            }
            tokio::time::sleep(super::super::MAX_RETRY).await;
        }
    }

    /// Append one recovered run to the console's log (unless it is there already) and publish
    /// it: the site's sequence numbers of its notice and its last record.
    async fn take_run(&self, name: &str, run: &async_nats::Message) -> anyhow::Result<(u64, u64)> {
        let header = |h: &str| {
            run.headers
                .as_ref()
                .and_then(|m| m.get(h))
                .map(|v| v.as_str().to_owned())
                .with_context(|| format!("the run lacks header {h}"))
        };
        let (origin, id) = (header(H_NODE)?, header(H_RECOVERY)?);
        let records = decode_run(&run.payload)?;
        let since = records
            .iter()
            .map(|r| r.time_ns)
            .min()
            .context("an empty run")?;
        let dir = self.log_dir(name).context("no log directory")?;
        let _one = self.recovering.lock().await;
        let tag = format!("[recovery {id}]");
        let (d, t) = (dir.clone(), tag.clone());
        let (first, last) = match tokio::task::spawn_blocking(move || find_notice(&d, since, &t))
            .await?
        {
            Some(seq) => (seq, seq + records.len() as u64),
            None => {
                let console = self
                    .registry
                    .upgrade()
                    .and_then(|r| r.get(name))
                    .and_then(|e| e.console)
                    .context("the console is not running here")?;
                let text = notice(&origin, &id, &records);
                let appended = console.append_recovered(text, records).await?;
                tracing::warn!(device = %name, "cluster: appended the records node {origin} wrote while cut off ({id}) as records {}..{}", appended.0, appended.1);
                appended
            }
        };
        // Answer once the stream holds them.
        let deadline = tokio::time::Instant::now() + RECOVER_TIMEOUT - Duration::from_secs(5);
        loop {
            self.publish(name).await?;
            if first_unpublished(&dir) > last {
                return Ok((first, last));
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("records {first}..{last} are not in the stream yet");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A run encodes whole records and decodes to the same records.
    #[test]
    fn a_run_decodes_to_the_records_read() {
        let base = std::env::temp_dir().join(format!("mo-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        super::super::tests::write(&base, 30, "x");
        let run = next_run(&base, 7).unwrap().unwrap();
        assert_eq!((run.first, run.last, run.records), (7, 30, 24));
        let records = decode_run(&run.bytes).unwrap();
        let read_back: Vec<Record> = read(&base, &ReadOptions::default())
            .unwrap()
            .map(Result::unwrap)
            .filter(|r| r.seq >= 7)
            .collect();
        assert_eq!(records, read_back);
        let text = notice("alpha", "alpha/diverged-1/7", &records);
        assert!(
            text.starts_with("recovered: 24 records written on node alpha between ")
                && text.ends_with("[recovery alpha/diverged-1/7]"),
            "{text}"
        );
        assert!(next_run(&base, 31).unwrap().is_none());
        std::fs::remove_dir_all(&base).ok();
    }
}
