//! Signed checkpoints of record-log chain heads (issue 14 item 5): every few seconds each
//! sharing node writes the head of each of its copies of a console's log — last sequence number
//! and chain value — signed with its SSH host key (an SSH signature, as `ssh-keygen -Y sign`
//! makes, namespace [`NAMESPACE`]) into the KV bucket [`HEADS_BUCKET`]. Each node's public key is
//! in [`KEYS_BUCKET`], written once (the first key a node name brings stays). A copy whose chain
//! value at a checkpoint's record differs from the checkpoint — even one whose records were
//! rewritten with checksums and chain recomputed — is named by `mo log verify --replicas` on any
//! node.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;
use mo_core::log::format::decode_record_ending_at;
use mo_core::log::segment_file_name;
use russh::keys::ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use serde::{Deserialize, Serialize};

use super::NodeLog;
use super::directory::key_of;
use crate::registry::Registry;

/// The KV bucket of signed chain heads: key `<device key>.<node>`, value a [`Checkpoint`].
pub const HEADS_BUCKET: &str = "mo_log_heads";

/// The KV bucket of node public keys: key = node name, value = its OpenSSH public key.
pub const KEYS_BUCKET: &str = "mo_node_keys";

/// The SSH signature namespace of checkpoints.
pub const NAMESPACE: &str = "mo-log-head";

/// How often a node checkpoints the heads that moved.
const EVERY: Duration = Duration::from_secs(5);

/// A node's signed statement: its copy of `device`'s log had chain value `chain` at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The node that signed.
    pub node: String,
    /// The device.
    pub device: String,
    /// The record's sequence number.
    pub seq: u64,
    /// The record's chain value (hex).
    pub chain: String,
    /// When it was signed (ms since the Unix epoch).
    pub time_ms: u64,
    /// The SSH signature (PEM) over [`Checkpoint::message`].
    pub sig: String,
}

impl Checkpoint {
    /// What is signed.
    fn message(&self) -> Vec<u8> {
        format!(
            "mo log head v1\n{}\n{}\n{}\n{}\n{}\n",
            self.node, self.device, self.seq, self.chain, self.time_ms
        )
        .into_bytes()
    }

    /// A checkpoint signed with `key`.
    pub fn sign(
        key: &PrivateKey,
        node: &str,
        device: &str,
        (seq, chain): (u64, String),
        time_ms: u64,
    ) -> anyhow::Result<Checkpoint> {
        let mut c = Checkpoint {
            node: node.to_owned(),
            device: device.to_owned(),
            seq,
            chain,
            time_ms,
            sig: String::new(),
        };
        c.sig = key
            .sign(NAMESPACE, HashAlg::Sha512, &c.message())?
            .to_pem(LineEnding::LF)?;
        Ok(c)
    }

    /// Whether `key` signed it.
    pub fn verify(&self, key: &PublicKey) -> anyhow::Result<()> {
        let sig = SshSig::from_pem(&self.sig).context("not an SSH signature")?;
        key.verify(NAMESPACE, &self.message(), &sig)
            .context("the signature does not match")
    }
}

/// The head of what the stream holds of the log in `dir` (as far as its cursor says): the last
/// such record's sequence number and chain value (hex). Records not acknowledged by the stream
/// are left out: a new owner may number others the same after this node's death.
pub fn head(dir: &Path) -> Option<(u64, String)> {
    let (segment, len) = super::replica::stream_end(dir)?;
    let mut file = std::fs::File::open(dir.join(segment_file_name(segment))).ok()?;
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::Start(len.checked_sub(8)?)).ok()?;
    file.read_exact(&mut tail).ok()?;
    let rec = u64::from(u32::from_le_bytes(tail[..4].try_into().ok()?));
    let start = len.checked_sub(rec)?;
    let mut buf = vec![0u8; usize::try_from(rec).ok()?];
    file.seek(SeekFrom::Start(start)).ok()?;
    file.read_exact(&mut buf).ok()?;
    let (_, r) = decode_record_ending_at(&buf)?;
    Some((r.seq, super::replica::hex(&r.chain)))
}

/// Register this node's key, then checkpoint the heads of its copies every few seconds.
pub async fn run(node: String, key: PrivateKey, js: jetstream::Context, registry: Weak<Registry>) {
    let (heads, keys) = loop {
        let opened = async {
            let heads = super::open_kv(&js, HEADS_BUCKET, "mo: signed record-log heads", 1).await?;
            let keys = super::open_kv(&js, KEYS_BUCKET, "mo: node public keys", 1).await?;
            anyhow::Ok((heads, keys))
        };
        match tokio::time::timeout(super::REQUEST_TIMEOUT, opened).await {
            Ok(Ok(buckets)) => break buckets,
            Ok(Err(e)) => tracing::warn!("cluster: log checkpoints: {e:#}"),
            Err(_) => tracing::warn!("cluster: log checkpoints: NATS does not answer"),
        }
        tokio::time::sleep(super::MAX_RETRY).await;
    };
    let public = key.public_key().to_openssh().unwrap_or_default();
    let mut registered = false;
    let mut done: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !registered {
            registered = register(&keys, &node, &public).await;
        }
        let Some(reg) = registry.upgrade() else {
            return;
        };
        let dirs: Vec<(String, std::path::PathBuf)> = reg
            .list()
            .into_iter()
            .filter_map(|e| Some((e.device.name.clone(), reg.log_dir(&e.device.name)?)))
            .collect();
        drop(reg);
        let heads_now = tokio::task::spawn_blocking(move || {
            dirs.into_iter()
                .filter_map(|(name, dir)| Some((name, head(&dir)?)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (device, at) in heads_now {
            if done.get(&device) == Some(&at) {
                continue;
            }
            let time_ms = mo_core::record::now_ns() / 1_000_000;
            let signed = match Checkpoint::sign(&key, &node, &device, at.clone(), time_ms) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("cluster: cannot sign a log checkpoint: {e:#}");
                    continue;
                }
            };
            let value = serde_json::to_vec(&signed).unwrap_or_default();
            let put = heads.put(format!("{}.{node}", key_of(&device)), value.into());
            if let Ok(Ok(_)) = tokio::time::timeout(super::REQUEST_TIMEOUT, put).await {
                done.insert(device, at);
            }
        }
    }
}

/// Put this node's public key in the keys bucket unless one is there; say so if another is.
async fn register(keys: &kv::Store, node: &str, public: &str) -> bool {
    match keys.create(node, public.as_bytes().to_vec().into()).await {
        Ok(_) => true,
        Err(_) => match keys.get(node).await {
            Ok(Some(known)) => {
                if known != public.as_bytes() {
                    tracing::error!(
                        "cluster: the site knows another key for node {node} (bucket \
                         {KEYS_BUCKET}); this node's log checkpoints will not verify. If its \
                         host key was replaced on purpose, delete the old one: nats kv del \
                         {KEYS_BUCKET} {node}"
                    );
                }
                true
            }
            _ => false,
        },
    }
}

/// The checkpoints of `device` whose signatures verify, and a problem line for each that does
/// not (or whose node has no key).
pub async fn read(
    js: &jetstream::Context,
    device: &str,
) -> anyhow::Result<(Vec<Checkpoint>, Vec<String>)> {
    let heads = js.get_key_value(HEADS_BUCKET).await?;
    let keys = js.get_key_value(KEYS_BUCKET).await?;
    let mut watch = heads
        .watch_with_history(format!("{}.*", key_of(device)))
        .await?;
    let mut found = Vec::new();
    while let Ok(Some(entry)) = tokio::time::timeout(Duration::from_millis(500), watch.next()).await
    {
        let entry = entry?;
        let last = entry.delta == 0;
        if matches!(entry.operation, kv::Operation::Put)
            && let Ok(c) = serde_json::from_slice::<Checkpoint>(&entry.value)
        {
            found.push(c);
        }
        if last {
            break;
        }
    }
    let (mut good, mut problems) = (Vec::new(), Vec::new());
    for c in found {
        let checked = match keys.get(&c.node).await? {
            Some(k) => PublicKey::from_openssh(&String::from_utf8_lossy(&k))
                .context("a bad key in the bucket")
                .and_then(|k| c.verify(&k)),
            None => Err(anyhow::anyhow!(
                "no key of node {} in {KEYS_BUCKET}",
                c.node
            )),
        };
        match checked {
            Ok(()) => good.push(c),
            Err(e) => problems.push(format!(
                "node {}: device {device}: its checkpoint at record {} does not verify: {e:#}",
                c.node, c.seq
            )),
        }
    }
    Ok((good, problems))
}

/// A problem for each copy whose chain value at a checkpointed record differs from the
/// checkpoint.
pub fn compare(device: &str, checkpoints: &[Checkpoint], logs: &[NodeLog]) -> Vec<String> {
    let mut problems = Vec::new();
    for log in logs {
        let at: BTreeMap<u64, &str> = log.at.iter().map(|(s, c)| (*s, c.as_str())).collect();
        if let Some(c) = checkpoints
            .iter()
            .filter(|c| at.get(&c.seq).is_some_and(|chain| *chain != c.chain))
            .min_by_key(|c| c.seq)
        {
            problems.push(format!(
                "node {}: device {device}: record {} differs from the checkpoint node {} signed \
                 (the hash chain was rewritten up to there)",
                log.node, c.seq, c.node
            ));
        }
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    #[test]
    fn checkpoints_are_signed_and_a_rewritten_copy_is_named() {
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
        let other = PrivateKey::from(Ed25519Keypair::from_seed(&[8; 32]));
        let c = Checkpoint::sign(&key, "a", "web01", (40, "aa".repeat(32)), 1).unwrap();
        c.verify(key.public_key()).unwrap();
        assert!(c.verify(other.public_key()).is_err());
        let mut forged = c.clone();
        forged.seq = 41;
        assert!(forged.verify(key.public_key()).is_err());

        let copy = |node: &str, chain: &str| NodeLog {
            node: node.into(),
            present: true,
            at: vec![(40, chain.into())],
            ..NodeLog::default()
        };
        let logs = [copy("a", &"aa".repeat(32)), copy("b", &"bb".repeat(32))];
        let problems = compare("web01", std::slice::from_ref(&c), &logs);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("node b: device web01: record 40 differs"),
            "{problems:?}"
        );
        assert!(compare("web01", &[c], &logs[..1]).is_empty());
    }
}
