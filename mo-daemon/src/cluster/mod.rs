//! Joining a site (`mod --cluster nats://HOST:PORT[,…] --node NAME`, docs/cluster.md): the
//! daemon connects to NATS with JetStream (the `async-nats` crate) and announces itself every
//! `--heartbeat` in the KV bucket [`NODES_BUCKET`] — its name, version, consoles and their link
//! states ([`beat::Beat`]). It watches the same bucket, so it knows every node of the site and
//! when each was last heard; `GET /api/v1/cluster` answers from that ([`Cluster::status`]).
//!
//! Without `--cluster` none of this runs. NATS being away never stops the daemon: it starts
//! without it, keeps serving its consoles, retries, and shows what it heard last.

mod audit;
mod beat;
mod checkpoint;
mod directory;
mod events;
mod lease;
mod remote;
mod replica;
mod wire;

pub use directory::Written;
pub use lease::Ownership;
pub use remote::RemoteSession;
pub use replica::NodeLog;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, kv};
use async_nats::{ConnectOptions, ServerAddr};
use futures_util::StreamExt as _;
use mo_api::{ClusterStatus, NODE_PATTERN};
use tokio::task::JoinHandle;

use mo_store::{Store, valid_node_name};

use crate::registry::Registry;
use beat::{Beat, BeatConsole};

/// The KV bucket of heartbeats: key = node name, value = its last [`Beat`] (JSON).
pub const NODES_BUCKET: &str = "mo_nodes";

/// How long one NATS request (a heartbeat put, the bucket lookup) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between two tries to reach the bucket or to watch it again.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// `mod`'s options for joining a site.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Join a site: its NATS servers (JetStream enabled), comma-separated, e.g.
    /// `nats://10.0.0.5:4222,nats://10.0.0.6:4222` (`tls://` for TLS; `nats://USER:PASS@HOST`
    /// for a password). Needs --node. Without it the daemon is alone and speaks no NATS.
    #[arg(
        long,
        value_name = "URL[,URL…]",
        value_delimiter = ',',
        requires = "node"
    )]
    pub cluster: Vec<String>,
    /// This daemon's name in the site (--cluster): a letter or digit, then letters, digits, `_`
    /// and `-`, at most 64; unique in the site.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node: Option<String>,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed) for the --cluster connection.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub nats_creds: Option<PathBuf>,
    /// Trust NATS servers whose TLS certificate this PEM CA bundle issued (and require TLS).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub nats_ca: Option<PathBuf>,
    /// How often this node announces itself to the site (--cluster).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,
    /// A node not heard for this many of its heartbeat intervals shows as `lost`.
    #[arg(long, value_name = "N", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub lost_after: u32,
    /// Share this node's directory with the site (issue 14 item 2; `--share-devices` is its old
    /// name): devices (KV bucket `mo_devices`), users with their SSH keys, user and device
    /// groups, roles, grants, API tokens and sealed secrets (bucket `mo_directory`) are the
    /// site's and this node's store is its replica: a change on any node is on every node within
    /// a second or two; when two nodes change one entry at once, one wins and the other logs and
    /// audits the conflict. Sealed secrets need the same secret.key on every node. Each console
    /// is run by one sharing node: the one it is pinned to (`mo device set NAME --node NODE`),
    /// else a live node chosen by a stable hash; it moves when that node dies.
    #[arg(
        long = "share-directory",
        visible_alias = "share-devices",
        requires = "cluster"
    )]
    pub share_devices: bool,
    /// How long a node's lease on its consoles lasts without a renewal (--share-directory): a
    /// dead node's consoles move this long (plus about a second) after its last renewal; a node
    /// that cannot renew for half of it stops its consoles. The first node of a site sets it
    /// for all (the KV bucket `mo_leases`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_ttl)]
    pub lease_ttl: Duration,
    /// How many nodes besides a console's owner keep a byte-identical copy of its record log
    /// (--share-devices): the live nodes the placement ranks next (docs/cluster.md).
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(0..=16))]
    pub replicas: u32,
    /// Open the devices' per-console ports (`--listen`) on this address instead of the one each
    /// device names, keeping its port number: for several nodes of a site on one host (each on
    /// an address of its own), or to serve them on one interface of this host only.
    #[arg(long, value_name = "IP", requires = "cluster")]
    pub listen_address: Option<std::net::IpAddr>,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl < lease::MIN_TTL {
        return Err(format!(
            "at least {} (NATS checks expiry about once a second)",
            humantime::format_duration(lease::MIN_TTL)
        ));
    }
    Ok(ttl)
}

impl ClusterArgs {
    /// This node's part in placing the site's consoles, when it shares devices: give its
    /// placement to the registry before the first console starts, then to [`Cluster::start`].
    pub fn ownership(&self) -> Option<Arc<Ownership>> {
        let node = self.node.as_deref()?;
        (self.share_devices && !self.cluster.is_empty()).then(|| Ownership::new(node))
    }
}

/// This daemon's membership of a site: cheap to clone; [`Cluster::leave`] ends it.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    instance: String,
    heartbeat: Duration,
    lost_after: u32,
    client: async_nats::Client,
    /// What this node has heard, and its last trouble with NATS. Never held across `.await`.
    view: RwLock<View>,
    /// The bucket, once reached.
    kv: tokio::sync::OnceCell<kv::Store>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Remote attach (`--share-devices`): this node's viewers of other nodes' consoles, and
    /// the other nodes' viewers of this node's.
    remote: Option<Arc<remote::Remote>>,
    /// The record log replication (with --share-devices).
    replication: Option<Arc<replica::Replication>>,
    /// The API's writes of the directory, sent to the site before they are answered.
    through: Arc<directory::WriteThrough>,
}

#[derive(Default)]
struct View {
    nodes: BTreeMap<String, Heard>,
    error: Option<String>,
}

struct Heard {
    beat: Beat,
    at: SystemTime,
}

/// The servers as given, without any password, for messages.
fn describe_servers(servers: &[ServerAddr]) -> String {
    servers
        .iter()
        .map(|s| {
            let mut url = s.clone().into_inner();
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.to_string().trim_end_matches('/').to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Cluster {
    /// Join the site `args` names, announcing the consoles of `registry`; `None` without
    /// `--cluster`. Fails only on what is wrong locally (a bad URL or node name, an unreadable
    /// credentials file); an unreachable NATS is retried in the background.
    pub async fn start(
        args: &ClusterArgs,
        registry: &Arc<Registry>,
        store: &Store,
        ownership: Option<Arc<Ownership>>,
        events: &Arc<crate::events::Events>,
    ) -> anyhow::Result<Option<Cluster>> {
        if args.cluster.is_empty() {
            return Ok(None);
        }
        let Some(node) = args.node.clone() else {
            bail!("--cluster needs --node NAME (this daemon's name in the site)");
        };
        if !valid_node_name(&node) {
            bail!("bad --node `{node}`: use {NODE_PATTERN} (letters, digits, `_`, `-`)");
        }
        if args.heartbeat.is_zero() {
            bail!("--heartbeat must be longer than 0");
        }
        let servers = args
            .cluster
            .iter()
            .map(|u| {
                u.trim()
                    .parse::<ServerAddr>()
                    .with_context(|| format!("bad --cluster URL `{}`", u.trim()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        LISTED_SERVERS.store(servers.len(), std::sync::atomic::Ordering::Relaxed);
        let shown = describe_servers(&servers);
        let mut options = ConnectOptions::new()
            .name(format!("mod {node}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(REQUEST_TIMEOUT);
        if let Some(creds) = &args.nats_creds {
            options = options
                .credentials_file(creds)
                .await
                .with_context(|| format!("cannot read --nats-creds {}", creds.display()))?;
        }
        if let Some(ca) = &args.nats_ca {
            if !ca.is_file() {
                bail!("--nats-ca {}: no such file", ca.display());
            }
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = options
            .connect(servers)
            .await
            .with_context(|| format!("cannot connect to NATS at {shown}"))?;
        let remote = ownership.as_ref().map(|own| {
            let own = own.clone();
            let registry = Arc::downgrade(registry);
            let lookup = registry.clone();
            remote::Remote::new(
                &node,
                client.clone(),
                registry,
                Box::new(move |device| {
                    let entry = lookup.upgrade()?.get(device)?;
                    own.holder(&entry.device)
                }),
            )
        });
        let replication = ownership.as_ref().map(|own| {
            replica::Replication::start(
                &node,
                args.replicas as usize,
                own.clone(),
                Arc::downgrade(registry),
                client.clone(),
            )
        });
        let (replication, replication_tasks) = match replication {
            Some((r, tasks)) => (Some(r), tasks),
            None => (None, Vec::new()),
        };
        let inner = Arc::new(Inner {
            replication,
            instance: format!("{:016x}", rand::random::<u64>()),
            node,
            heartbeat: args.heartbeat,
            lost_after: args.lost_after,
            client,
            view: RwLock::new(View::default()),
            kv: tokio::sync::OnceCell::new(),
            tasks: std::sync::Mutex::new(Vec::new()),
            remote,
            through: directory::WriteThrough::new(),
        });
        if let Some(remote) = &inner.remote {
            inner.push_task(tokio::spawn(remote.clone().serve()));
        }
        for task in replication_tasks {
            inner.push_task(task);
        }
        let devices = args.share_devices.then(|| store.clone());
        let task = tokio::spawn(run(
            inner.clone(),
            Arc::downgrade(registry),
            devices,
            shown.clone(),
        ));
        inner.push_task(task);
        if args.share_devices
            && let Some(changed) = events.share_with_site()
        {
            let js = jetstream::new(inner.client.clone());
            let shared = events::share(inner.clone(), js, shown.clone(), events.clone(), changed);
            inner.push_task(tokio::spawn(shared));
            let js = jetstream::new(inner.client.clone());
            let shared = audit::share(inner.clone(), js, shown.clone(), store.clone());
            inner.push_task(tokio::spawn(shared));
        }
        if let Some(own) = ownership {
            let js = jetstream::new(inner.client.clone());
            let task = tokio::spawn(lease::run(
                own,
                js,
                Arc::downgrade(registry),
                args.lease_ttl,
            ));
            inner.push_task(task);
        }
        tracing::info!(node = %inner.node, "joining the site at {shown}");
        eprintln!(
            "mod: cluster node {} joining the site at {shown}",
            inner.node
        );
        Ok(Some(Cluster { inner }))
    }

    /// This node's name in the site.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Remote attach, when this node shares devices (`--share-devices`).
    pub fn remote(&self) -> Option<Arc<remote::Remote>> {
        self.inner.remote.clone()
    }

    /// Whether this node is connected to NATS now.
    pub fn connected(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Write the directory through to the site (with --share-directory): `None` when this node
    /// does not share it.
    pub fn write_through(&self) -> Option<Arc<directory::WriteThrough>> {
        self.inner
            .remote
            .is_some()
            .then(|| self.inner.through.clone())
    }

    /// The link state word of `device` in the last heartbeat of `node` (`None` when that beat
    /// does not list it).
    pub fn console_state(&self, node: &str, device: &str) -> Option<String> {
        let view = self.inner.view.read().ok()?;
        let heard = view.nodes.get(node)?;
        heard
            .beat
            .consoles
            .iter()
            .find(|c| c.name == device)
            .map(|c| c.state.clone())
    }

    /// The site as this node sees it: every node heard of, with the consoles for which
    /// `visible` is true.
    pub fn status(&self, visible: &dyn Fn(&str) -> bool) -> ClusterStatus {
        let inner = &self.inner;
        let now = SystemTime::now();
        let connected = inner.client.connection_state() == async_nats::connection::State::Connected;
        let (nodes, error) = match inner.view.read() {
            Ok(view) => (
                view.nodes
                    .iter()
                    .map(|(name, h)| {
                        let this = *name == inner.node;
                        h.beat.to_node(h.at, now, inner.lost_after, this, visible)
                    })
                    .collect(),
                view.error.clone(),
            ),
            Err(_) => (Vec::new(), Some("internal error: poisoned view".into())),
        };
        let error = match (connected, error) {
            (false, None) => Some("not connected to NATS (retrying)".into()),
            (_, e) => e,
        };
        ClusterStatus {
            enabled: true,
            node: Some(inner.node.clone()),
            connected,
            error,
            lost_after: inner.lost_after,
            nodes,
        }
    }

    /// Every node's copy of `device`'s record log, compared (`mo log verify NAME --replicas`):
    /// the divergences (node, device, record), the warnings (a node behind) and the copies.
    /// Fails when this node does not replicate logs (no --share-devices) or NATS is away.
    pub async fn verify_replicas(
        &self,
        device: &str,
    ) -> anyhow::Result<(Vec<String>, Vec<String>, Vec<NodeLog>)> {
        let Some(replication) = &self.inner.replication else {
            bail!("this node does not replicate record logs (start it with --share-devices)");
        };
        let (checkpoints, mut problems, mut warnings) =
            match checkpoint::read(replication.jetstream(), device).await {
                Ok((good, bad)) => (good, bad, Vec::new()),
                Err(e) => (
                    Vec::new(),
                    Vec::new(),
                    vec![format!("cannot read the signed checkpoints: {e:#}")],
                ),
            };
        let seqs = checkpoints.iter().map(|c| c.seq).collect();
        let logs = replication.gather(device, seqs).await?;
        let (copies, behind) = replica::compare(device, &logs);
        problems.extend(copies);
        problems.extend(checkpoint::compare(device, &checkpoints, &logs));
        warnings.extend(behind);
        if !checkpoints.is_empty() {
            warnings.push(format!(
                "{} signed checkpoint(s) checked (nodes {})",
                checkpoints.len(),
                checkpoints
                    .iter()
                    .map(|c| c.node.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok((problems, warnings, logs))
    }

    /// Stop announcing; tell the site this node leaves (one last beat, if NATS is there).
    pub async fn leave(&self) {
        let inner = &self.inner;
        if let Ok(mut tasks) = inner.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        if let Some(kv) = inner.kv.get() {
            let mut beat = inner.beat(None);
            beat.leaving = true;
            let put = kv.put(inner.node.as_str(), beat.encode().into());
            match tokio::time::timeout(REQUEST_TIMEOUT, put).await {
                Ok(Ok(_)) => tracing::info!(node = %inner.node, "left the site"),
                Ok(Err(e)) => tracing::warn!("cannot tell the site this node leaves: {e}"),
                Err(_) => tracing::warn!("cannot tell the site this node leaves: NATS timed out"),
            }
        }
    }
}

impl Inner {
    fn push_task(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    /// This node's heartbeat now.
    fn beat(&self, registry: Option<&Registry>) -> Beat {
        let consoles = registry
            .map(|r| {
                r.list()
                    .into_iter()
                    .filter(|e| e.placed_elsewhere().is_none())
                    .map(|e| BeatConsole {
                        state: e
                            .console
                            .as_ref()
                            .map_or("down", |c| c.state().word())
                            .into(),
                        name: e.device.name,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Beat {
            node: self.node.clone(),
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            heartbeat_ms: u64::try_from(self.heartbeat.as_millis()).unwrap_or(u64::MAX),
            leaving: false,
            consoles,
        }
    }

    /// Note trouble (logged when it first appears), or its end.
    fn set_error(&self, error: Option<String>) {
        let Ok(mut view) = self.view.write() else {
            return;
        };
        if view.error == error {
            return;
        }
        match &error {
            Some(e) => tracing::warn!(node = %self.node, "cluster: {e}"),
            None => tracing::info!(node = %self.node, "cluster: NATS reachable again"),
        }
        view.error = error;
    }

    /// A change of the heartbeat bucket.
    fn heard(&self, entry: kv::Entry) {
        let Ok(mut view) = self.view.write() else {
            return;
        };
        if !matches!(entry.operation, kv::Operation::Put) {
            view.nodes.remove(&entry.key);
            return;
        }
        match Beat::decode(&entry.key, &entry.value) {
            Ok(beat) => {
                if beat.node == self.node && beat.instance != self.instance && !beat.leaving {
                    tracing::error!(
                        "another daemon also calls itself --node {} in this site; \
                         give each daemon its own name",
                        self.node
                    );
                }
                let at = SystemTime::from(entry.created);
                view.nodes.insert(entry.key, Heard { beat, at });
            }
            Err(e) => tracing::warn!("cluster: {e}"),
        }
    }
}

/// Reach the bucket (creating it if this is the site's first node), then beat and watch.
async fn run(inner: Arc<Inner>, registry: Weak<Registry>, devices: Option<Store>, servers: String) {
    let js = jetstream::new(inner.client.clone());
    let mut pause = Duration::from_millis(200);
    let store = loop {
        match tokio::time::timeout(REQUEST_TIMEOUT, open_bucket(&js)).await {
            Ok(Ok(store)) => break store,
            Ok(Err(e)) => inner.set_error(Some(format!("NATS at {servers}: {e:#}"))),
            Err(_) => inner.set_error(Some(format!(
                "NATS at {servers} does not answer (is it running, with JetStream?)"
            ))),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY);
    };
    let store = inner.kv.get_or_init(|| async { store }).await.clone();
    inner.set_error(None);
    inner.push_task(tokio::spawn(watch(inner.clone(), store.clone())));
    if let Some(local) = devices {
        for shelf in directory::shelves() {
            let (me, js, servers) = (inner.clone(), js.clone(), servers.clone());
            let through = inner.through.clone();
            let task = tokio::spawn(directory::share(
                me,
                js,
                servers,
                local.clone(),
                shelf,
                through,
            ));
            inner.push_task(task);
        }
    }
    let mut ticks = tokio::time::interval(inner.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let beat = inner.beat(Some(&registry));
        drop(registry);
        let put = store.put(inner.node.as_str(), beat.encode().into());
        match tokio::time::timeout(REQUEST_TIMEOUT, put).await {
            Ok(Ok(_)) => inner.set_error(None),
            Ok(Err(e)) => inner.set_error(Some(format!("cannot announce this node: {e}"))),
            Err(_) => inner.set_error(Some(format!(
                "cannot announce this node: NATS at {servers} does not answer"
            ))),
        }
    }
}

/// The heartbeat bucket, made if missing (every node makes it alike, so a race is harmless).
async fn open_bucket(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    open_kv(
        js,
        NODES_BUCKET,
        "mo: one heartbeat per node (mod --cluster)",
        1,
    )
    .await
}

/// How many NATS servers `--cluster` lists.
static LISTED_SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The JetStream replicas of the buckets and streams this node makes: 3 when NATS runs as a
/// cluster of three or more servers (the servers it reached say so, or `--cluster` lists three),
/// so that one server's death stops nothing; else 1.
pub(crate) fn store_replicas(js: &jetstream::Context) -> usize {
    let known = js
        .client()
        .server_info()
        .connect_urls
        .len()
        .max(LISTED_SERVERS.load(std::sync::atomic::Ordering::Relaxed));
    if known >= 3 { 3 } else { 1 }
}

/// KV bucket `bucket`, made (file storage, `history` versions per key) if missing: every node
/// makes it alike, so a race is harmless.
async fn open_kv(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
    history: i64,
) -> anyhow::Result<kv::Store> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let config = kv::Config {
        bucket: bucket.into(),
        description: description.into(),
        history,
        storage: jetstream::stream::StorageType::File,
        num_replicas: store_replicas(js),
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        Err(create) => js
            .get_key_value(bucket)
            .await
            .with_context(|| format!("cannot create the KV bucket {bucket}: {create}")),
    }
}

/// [`open_kv`], tried again (trouble shown in `mo cluster status`) until NATS answers.
async fn reach_kv(
    inner: &Inner,
    js: &jetstream::Context,
    servers: &str,
    bucket: &str,
    description: &str,
    history: i64,
) -> kv::Store {
    let mut pause = Duration::from_millis(200);
    loop {
        let open = open_kv(js, bucket, description, history);
        match tokio::time::timeout(REQUEST_TIMEOUT, open).await {
            Ok(Ok(store)) => return store,
            Ok(Err(e)) => inner.set_error(Some(format!("NATS at {servers}: {e:#}"))),
            Err(_) => inner.set_error(Some(format!("NATS at {servers} does not answer"))),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY);
    }
}

/// Follow the heartbeat bucket (last beat of every node first, then each new one), again after
/// any interruption.
async fn watch(inner: Arc<Inner>, store: kv::Store) {
    let mut pause = Duration::from_millis(200);
    loop {
        match store.watch_with_history(">").await {
            Ok(mut changes) => {
                while let Some(change) = changes.next().await {
                    match change {
                        Ok(entry) => {
                            pause = Duration::from_millis(200);
                            inner.heard(entry);
                        }
                        Err(e) => {
                            tracing::warn!("cluster: watching {NODES_BUCKET}: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("cluster: cannot watch {NODES_BUCKET}: {e}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_follow_the_pattern() {
        for good in ["a", "node-1", "A_b-9", &"x".repeat(64)] {
            assert!(valid_node_name(good), "{good}");
        }
        for bad in ["", "-a", "_a", "a.b", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(!valid_node_name(bad), "{bad}");
        }
    }

    #[test]
    fn servers_are_shown_without_passwords() {
        let servers: Vec<ServerAddr> = ["nats://u:secret@10.0.0.5:4222", "tls://h:4443"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let shown = describe_servers(&servers);
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("10.0.0.5:4222") && shown.contains("tls://h:4443"),
            "{shown}"
        );
    }
}
