//! The running consoles, kept in step with the devices in the store.
//!
//! The store is the source of truth. A reconcile task polls its change counter and, when it moves,
//! starts consoles for new devices, stops removed ones and restarts changed ones — leaving every
//! other console (and its viewers) alone. That poll is for changes other processes make (`mo` on
//! the data directory); the daemon's own writers (the HTTP API) call [`Registry::apply`] after a
//! store write, so the change is in force before they answer (read-your-writes).
//!
//! Every reconcile — the poll's and `apply`'s — runs under one gate and reads the store inside it,
//! so a poll holding an older list of devices can never undo a change `apply` just made.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mo_core::console::{Console, ConsoleConfig, ConsumerFeed, Consumers, LoginScript};
use mo_core::escape::EscapeConfig;
use mo_core::event::EventService;
use mo_core::link::{Capabilities, Connector, Link};
use mo_core::log::{LogLock, LogOptions, ReopeningLog};
use mo_core::power::{PowerBinding, PowerController};
use mo_core::secret::Secret;
use mo_drivers::power::power_controller_for;
use mo_drivers::{Credentials, DriverOptions, connector_for};
use mo_store::{DataDir, Device, SecretKey, SecretKind, Store};

/// A device's secrets in clear, by kind.
pub type DeviceSecrets = BTreeMap<SecretKind, Secret>;

/// One device as the daemon runs it.
#[derive(Clone)]
pub struct Entry {
    /// The device as stored.
    pub device: Device,
    /// Its console, unless it could not be started.
    pub console: Option<Console>,
    /// Why it could not be started.
    pub error: Option<String>,
    /// The escape sequence viewers of this console use.
    pub escape: EscapeConfig,
    /// The power controllers feeding the device, bound together (`None` without any, or when
    /// they could not be set up — see `power_error`).
    pub power: Option<Arc<PowerBinding>>,
    /// Why the power binding could not be set up.
    pub power_error: Option<String>,
    /// Output bytes the console's scanner skipped because it fell behind (the log has them).
    pub scan_skipped: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The device's open TCP ports (`--listen`), closed when the console stops (in a site, also
    /// those of a console another node holds).
    pub ports: Option<Arc<crate::listen::Ports>>,
    /// Why some of its ports could not be opened.
    pub listen_error: Option<String>,
    /// The secrets the console was started with (a change restarts it).
    secrets: Arc<DeviceSecrets>,
    /// Held while the console runs so `mo log note` does not write into a log the daemon owns.
    _lock: Option<Arc<LogLock>>,
    /// Why this daemon does not run the console, when another node of the site holds it (or
    /// none does yet): see [`Placement`].
    placed_elsewhere: Option<String>,
}

impl Entry {
    /// Why this daemon does not run the console because of where the site placed it (`held by
    /// node B`), or `None` when it is this daemon's to run.
    pub fn placed_elsewhere(&self) -> Option<&str> {
        self.placed_elsewhere.as_deref()
    }
}

/// Which consoles this daemon runs, in a site where each console has one owner
/// (`mod --cluster … --share-devices`): `Ok` to run the device's console here, else why not.
pub type Placement = Arc<dyn Fn(&Device) -> Result<(), String> + Send + Sync>;

/// Called with each console the registry starts and the feed of its scanner: a bounded consumer
/// of every output chunk, in order; when its reader (the event scanner) falls behind, chunks are
/// skipped and counted, never the record log.
pub type OnStart = Box<dyn Fn(&str, &Console, ConsumerFeed) + Send + Sync>;

/// Opens the TCP ports (`--listen`) of a device whose console started: the open ports and why
/// some could not be opened.
pub type OnListen =
    Box<dyn Fn(&Device) -> (Option<Arc<crate::listen::Ports>>, Option<String>) + Send + Sync>;

/// All consoles of the daemon, by device name.
pub struct Registry {
    on_start: RwLock<Option<OnStart>>,
    on_listen: RwLock<Option<OnListen>>,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// The devices on each agent port (`agent://AGENT/PORT`), by agent and port: the agent's
    /// per-port checks look their few devices up here instead of scanning every device.
    on_agent_port: RwLock<BTreeMap<(String, String), BTreeSet<String>>>,
    data: DataDir,
    drivers: DriverOptions,
    log: LogOptions,
    store: Store,
    key: SecretKey,
    /// Serializes reconciles: each reads the store and changes `entries` while holding it.
    gate: tokio::sync::Mutex<()>,
    /// The connected agents, whose ports `agent://` devices reach.
    agents: Arc<crate::agents::Agents>,
    /// Which consoles to run here (`None`: all of them).
    placement: RwLock<Option<Placement>>,
}

impl Registry {
    /// An empty registry writing record logs under `data`, reading device secrets from `store`
    /// with `key`.
    pub fn new(data: DataDir, log: LogOptions, store: Store, key: SecretKey) -> Self {
        let agents = Arc::new(crate::agents::Agents::new(store.clone()));
        let drivers = DriverOptions::new()
            .with_known_hosts(data.path().join("known_hosts"))
            .with_agents(mo_drivers::agent::AgentDirectory::new(agents.clone()));
        Registry {
            agents,
            on_start: RwLock::new(None),
            on_listen: RwLock::new(None),
            entries: RwLock::new(BTreeMap::new()),
            on_agent_port: RwLock::new(BTreeMap::new()),
            data,
            drivers,
            log,
            store,
            key,
            gate: tokio::sync::Mutex::new(()),
            placement: RwLock::new(None),
        }
    }

    /// Run only the consoles `placement` allows (before the first reconcile, so that no console
    /// starts here that another node holds); the others are listed with the reason as their
    /// error. Call [`Registry::sync_from_store`] with `None` after its answers change.
    pub fn set_placement(&self, placement: Placement) {
        if let Ok(mut slot) = self.placement.write() {
            *slot = Some(placement);
        }
    }

    /// Why `device`'s console is not to run here, if it is not.
    fn placed(&self, device: &Device) -> Option<String> {
        let slot = self.placement.read().ok()?;
        slot.as_ref().and_then(|p| p(device).err())
    }

    /// The connected agents (`mo-agent`) and their ports.
    pub fn agents(&self) -> &Arc<crate::agents::Agents> {
        &self.agents
    }

    /// Call `hook` with every console started from now on.
    pub fn set_on_start(&self, hook: OnStart) {
        if let Ok(mut slot) = self.on_start.write() {
            *slot = Some(hook);
        }
    }

    /// Open the TCP ports of every device with `hook`, now (for the consoles already running)
    /// and whenever a console starts; they close when it stops.
    pub async fn set_on_listen(&self, hook: OnListen) {
        let _gate = self.gate.lock().await;
        if let Ok(mut slot) = self.on_listen.write() {
            *slot = Some(hook);
        }
        let names: Vec<String> = self
            .list()
            .into_iter()
            .filter(|e| (e.console.is_some() || e.placed_elsewhere.is_some()) && e.ports.is_none())
            .map(|e| e.device.name)
            .collect();
        for name in names {
            let Some(mut entry) = self.get(&name) else {
                continue;
            };
            self.open_ports(&mut entry);
            if let Ok(mut m) = self.entries.write() {
                m.insert(name, entry);
            }
        }
    }

    fn open_ports(&self, entry: &mut Entry) {
        if entry.device.settings.listen.is_empty() {
            return;
        }
        if let Ok(hook) = self.on_listen.read()
            && let Some(hook) = hook.as_ref()
        {
            (entry.ports, entry.listen_error) = hook(&entry.device);
        }
    }

    /// A device's secrets in clear (empty when it has none or they cannot be read).
    pub fn secrets_of(&self, device: &str) -> DeviceSecrets {
        match self.store.device_credentials(&self.key, device) {
            Ok(secrets) => secrets,
            Err(e) => {
                tracing::error!(device, "cannot read the device's secrets: {e}");
                DeviceSecrets::new()
            }
        }
    }

    /// Driver options for `device`: its secrets and host-key trust.
    fn options_for(&self, device: &Device, secrets: &DeviceSecrets) -> DriverOptions {
        let mut creds = Credentials::new();
        let get = |kind| secrets.get(&kind).cloned();
        creds.password = get(SecretKind::Password);
        creds.private_key = get(SecretKind::PrivateKey);
        creds.key_passphrase = get(SecretKind::KeyPassphrase);
        creds.bmc_key = get(SecretKind::BmcKey);
        creds.snmp_auth = get(SecretKind::SnmpAuth);
        creds.snmp_privacy = get(SecretKind::SnmpPrivacy);
        self.drivers
            .clone()
            .with_credentials(creds)
            .with_trust_on_first_use(device.settings.trust_host_key)
    }

    /// The entry for a device.
    pub fn get(&self, name: &str) -> Option<Entry> {
        self.entries.read().ok()?.get(name).cloned()
    }

    /// The daemon's SSH host key file (also its key as a node of a site).
    pub fn host_key_path(&self) -> std::path::PathBuf {
        self.data.host_key_path()
    }

    /// The record-log directory of `device` (`DIR/logs/NAME`), if the name is a valid device
    /// name. The directory may not exist.
    pub fn log_dir(&self, device: &str) -> Option<std::path::PathBuf> {
        self.data.device_log_dir(device).ok()
    }

    /// Every entry, sorted by name.
    pub fn list(&self) -> Vec<Entry> {
        self.entries
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The entries of the devices on `agent://AGENT/PORT`, sorted by name (an index lookup: the
    /// other devices are neither scanned nor copied).
    pub fn on_agent_port(&self, agent: &str, port: &str) -> Vec<Entry> {
        let names: Vec<String> = match self.on_agent_port.read() {
            Ok(index) => index
                .get(&(agent.to_string(), port.to_string()))
                .map(|names| names.iter().cloned().collect())
                .unwrap_or_default(),
            Err(_) => return Vec::new(),
        };
        if names.is_empty() {
            return Vec::new();
        }
        let Ok(map) = self.entries.read() else {
            return Vec::new();
        };
        names.iter().filter_map(|n| map.get(n).cloned()).collect()
    }

    /// Put `device` into (or, with `add` false, take it out of) the agent-port index.
    fn index_agent_port(&self, device: &Device, add: bool) {
        let Some((agent, port)) = agent_port_of(&device.url) else {
            return;
        };
        let Ok(mut index) = self.on_agent_port.write() else {
            return;
        };
        let key = (agent.to_string(), port.to_string());
        if add {
            index.entry(key).or_default().insert(device.name.clone());
        } else if let Some(names) = index.get_mut(&key) {
            names.remove(&device.name);
            if names.is_empty() {
                index.remove(&key);
            }
        }
    }

    /// Set up `device`'s entry. Its console, if any, holds its first connection until the
    /// returned gate opens: [`Self::start_entry`] opens it once the entry is in the registry, so
    /// what the link says on connecting (an agent's notices) finds the device it is about.
    fn start(&self, device: &Device, secrets: Arc<DeviceSecrets>) -> (Entry, Option<ConnectGate>) {
        let mut entry = Entry {
            device: device.clone(),
            console: None,
            error: None,
            escape: EscapeConfig::default(),
            power: None,
            power_error: None,
            scan_skipped: None,
            ports: None,
            listen_error: None,
            secrets,
            _lock: None,
            placed_elsewhere: self.placed(device),
        };
        match self.power_binding(device, &entry.secrets) {
            Ok(binding) => entry.power = binding,
            Err(e) => {
                tracing::error!(device = %device.name, "cannot set up power control: {e}");
                entry.power_error = Some(e);
            }
        }
        if let Some(why) = &entry.placed_elsewhere {
            entry.error = Some(why.clone());
            // Its ports are served here too: a connection attaches through the node holding it.
            self.open_ports(&mut entry);
            return (entry, None);
        }
        let mut gate = None;
        match self.try_start(device, &mut entry) {
            Ok((console, feed, opened)) => {
                gate = Some(opened);
                entry.console = Some(console.clone());
                entry.scan_skipped = Some(feed.skipped_counter());
                if let Ok(hook) = self.on_start.read()
                    && let Some(hook) = hook.as_ref()
                {
                    hook(&device.name, &console, feed);
                }
                self.open_ports(&mut entry);
            }
            Err(e) => {
                tracing::error!(device = %device.name, "cannot start console: {e}");
                entry.error = Some(e);
            }
        }
        (entry, gate)
    }

    fn power_binding(
        &self,
        device: &Device,
        secrets: &DeviceSecrets,
    ) -> Result<Option<Arc<PowerBinding>>, String> {
        if device.settings.power.is_empty() {
            return Ok(None);
        }
        let opts = self.options_for(device, secrets);
        let controllers = device
            .settings
            .power
            .iter()
            .map(|url| power_controller_for(url, &opts))
            .collect::<Result<Vec<Arc<dyn PowerController>>, _>>()
            .map_err(|e| e.to_string())?;
        PowerBinding::new(device.name.clone(), controllers)
            .map(|b| Some(Arc::new(b)))
            .map_err(|e| e.to_string())
    }

    fn try_start(
        &self,
        device: &Device,
        entry: &mut Entry,
    ) -> Result<(Console, ConsumerFeed, ConnectGate), String> {
        let opts = self.options_for(device, &entry.secrets);
        let (gate, connector) =
            GatedConnector::wrap(connector_for(&device.url, &opts).map_err(|e| e.to_string())?);
        if let Some(bytes) = device.escape_bytes().map_err(|e| e.to_string())? {
            entry.escape = EscapeConfig::new(bytes);
        }
        let mut cfg = ConsoleConfig::new(device.name.clone());
        cfg.on_demand = device.settings.on_demand;
        cfg.replay_lines = device.settings.replay_lines as usize;
        cfg.allow_join = device.settings.allow_join;
        cfg.break_sequences = device.break_sequences().map_err(|e| e.to_string())?;
        cfg.log_policy = device.settings.log_policy.unwrap_or_default();
        cfg.log_secrets = device.settings.log_secrets;
        if let Some(login) = &device.settings.login {
            let user = device.settings.login_user.as_deref().unwrap_or_default();
            let password = entry.secrets.get(&SecretKind::Password).cloned();
            let script = if login.contains('\n') || login.contains(' ') {
                LoginScript::parse(login, user, password)
            } else {
                LoginScript::profile(login, user, password)
            }
            .map_err(|e| format!("auto-login: {e}"))?;
            cfg.login = Some(Arc::new(script));
        }
        let dir = self
            .data
            .create_device_log_dir(&device.name)
            .map_err(|e| e.to_string())?;
        let lock = LogLock::try_acquire(&dir).map_err(|e| e.to_string())?;
        entry._lock = Some(Arc::new(lock));
        // A log that cannot be opened (a read-only or full file system, a damaged live segment)
        // does not keep the console down: it starts degraded and the log retries every second.
        let (writer, recovery) = ReopeningLog::open(&dir, self.log_options_for(device));
        match (&recovery, writer.open_error()) {
            (Some(r), _) if r.torn => {
                tracing::warn!(device = %device.name, "record log recovered after a crash: {r:?}");
            }
            (_, Some(e)) => {
                tracing::error!(device = %device.name, "record log cannot be opened; the console starts with its log degraded: {e}");
            }
            _ => {}
        }
        // The console's consumers: its record log and the event scanner's bounded feed.
        let (scanner, feed) = EventService::scanner_consumer();
        let consumers = Consumers::new().log(Box::new(writer)).bounded(scanner);
        Ok((Console::spawn_with(cfg, connector, consumers), feed, gate))
    }

    /// The record-log options of `device`: the daemon's, with the device's own retention limits
    /// (`mo device set --retain-days/--retain-gib`) where it has them. Opening the log applies
    /// them, so a restart or a changed setting takes effect at once.
    fn log_options_for(&self, device: &Device) -> LogOptions {
        let defaults = mo_core::log::Retention {
            max_bytes: self.log.retain_max_bytes,
            max_age: self.log.retain_max_age,
        };
        let retention = device.retention(defaults);
        LogOptions {
            retain_max_bytes: retention.max_bytes,
            retain_max_age: retention.max_age,
            ..self.log.clone()
        }
    }

    /// Bring the running consoles in line with `devices`. Returns (started, stopped) counts.
    pub async fn reconcile(&self, devices: Vec<Device>) -> (usize, usize) {
        let _gate = self.gate.lock().await;
        self.reconcile_locked(devices).await
    }

    /// Read the devices from the store and reconcile, unless the store's change counter is still
    /// `last`. Returns the counter read and the (started, stopped) counts (`None` when nothing
    /// changed).
    pub async fn sync_from_store(
        &self,
        last: Option<u64>,
    ) -> Result<(u64, Option<(usize, usize)>), String> {
        let _gate = self.gate.lock().await;
        let s = self.store.clone();
        let polled = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let generation = s.generation().map_err(|e| e.to_string())?;
            if Some(generation) == last {
                return Ok((generation, None));
            }
            Ok((
                generation,
                Some(s.list_devices().map_err(|e| e.to_string())?),
            ))
        })
        .await
        .map_err(|e| format!("store poll failed: {e}"))??;
        match polled {
            (generation, None) => Ok((generation, None)),
            (generation, Some(devices)) => {
                Ok((generation, Some(self.reconcile_locked(devices).await)))
            }
        }
    }

    /// Put one device's change in force now: read `name` from the store and start, restart or
    /// stop its console to match (a device no longer in the store is stopped). The HTTP API calls
    /// it after each device write so the writer's next request sees the change. A store that
    /// cannot be read is an error and changes nothing (the store poll retries).
    pub async fn apply(&self, name: &str) -> Result<(), String> {
        let _gate = self.gate.lock().await;
        let (store, key, n) = (self.store.clone(), self.key.clone(), name.to_owned());
        let wanted = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let Some(device) = store.get_device(&n).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let secrets = match store.device_credentials(&key, &n) {
                Ok(secrets) => secrets,
                Err(e) => {
                    tracing::error!(device = %n, "cannot read the device's secrets: {e}");
                    DeviceSecrets::new()
                }
            };
            Ok(Some((device, Arc::new(secrets))))
        })
        .await
        .map_err(|e| format!("store read of device `{name}` failed: {e}"))?
        .map_err(|e| format!("cannot read device `{name}` from the store: {e}"))?;
        let current = self.get(name);
        match (current, wanted) {
            (None, None) => {}
            (Some(_), None) => self.stop(name).await,
            (None, Some((d, secrets))) => self.start_entry(d, secrets),
            (Some(entry), Some((d, secrets))) => {
                if d != entry.device
                    || secrets != entry.secrets
                    || self.placed(&d) != entry.placed_elsewhere
                {
                    self.stop(name).await;
                    self.start_entry(d, secrets);
                }
            }
        }
        Ok(())
    }

    async fn reconcile_locked(&self, devices: Vec<Device>) -> (usize, usize) {
        let wanted: BTreeMap<String, (Device, Arc<DeviceSecrets>)> = devices
            .into_iter()
            .map(|d| {
                let secrets = Arc::new(self.secrets_of(&d.name));
                (d.name.clone(), (d, secrets))
            })
            .collect();
        let mut stop = Vec::new();
        let mut start = Vec::new();
        if let Ok(map) = self.entries.read() {
            for (name, entry) in map.iter() {
                match wanted.get(name) {
                    None => stop.push(name.clone()),
                    Some((d, secrets))
                        if *d != entry.device
                            || *secrets != entry.secrets
                            || self.placed(d) != entry.placed_elsewhere =>
                    {
                        stop.push(name.clone());
                        start.push((d.clone(), secrets.clone()));
                    }
                    Some(_) => {}
                }
            }
            for (name, (d, secrets)) in &wanted {
                if !map.contains_key(name) {
                    start.push((d.clone(), secrets.clone()));
                }
            }
        }
        let stopped = stop.len();
        for name in stop {
            self.stop(&name).await;
        }
        let started = start.len();
        for (d, secrets) in start {
            self.start_entry(d, secrets);
        }
        (started, stopped)
    }

    /// Stop `name`'s console and forget it; waits (up to 5 s) until the actor closed its log, so
    /// a console started next for the same device can open it.
    async fn stop(&self, name: &str) {
        let old = self.entries.write().ok().and_then(|mut m| m.remove(name));
        if let Some(old) = &old {
            self.index_agent_port(&old.device, false);
        }
        if let Some(ports) = old.as_ref().and_then(|e| e.ports.clone()) {
            ports.close().await;
        }
        if let Some(console) = old.and_then(|e| e.console) {
            tracing::info!(device = %name, "stopping console");
            console.shutdown().await;
            let mut state = console.watch_state();
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                state.wait_for(|s| *s == mo_core::console::LinkState::Stopped),
            )
            .await;
        }
    }

    fn start_entry(&self, d: Device, secrets: Arc<DeviceSecrets>) {
        if self.placed(&d).is_none() {
            tracing::info!(device = %d.name, url = %d.url, "starting console");
        }
        let (entry, gate) = self.start(&d, secrets);
        if let Ok(mut m) = self.entries.write() {
            m.insert(d.name.clone(), entry);
        }
        self.index_agent_port(&d, true);
        if let Some(gate) = gate {
            gate.open();
        }
    }

    /// Stop every console, then record where agent ports resume.
    pub async fn shutdown(&self) {
        self.reconcile(Vec::new()).await;
        self.agents.persist_resume_points().await;
    }
}

/// Opens a [`GatedConnector`]'s first connection. Dropping it unopened opens it too, so a
/// console is never held back for good.
struct ConnectGate(tokio::sync::watch::Sender<bool>);

impl ConnectGate {
    fn open(self) {
        self.0.send_replace(true);
    }
}

/// A connector whose connections wait until its [`ConnectGate`] opens (or is dropped).
#[derive(Debug)]
struct GatedConnector {
    inner: Arc<dyn Connector>,
    opened: tokio::sync::watch::Receiver<bool>,
}

impl GatedConnector {
    fn wrap(inner: Arc<dyn Connector>) -> (ConnectGate, Arc<dyn Connector>) {
        let (tx, opened) = tokio::sync::watch::channel(false);
        (ConnectGate(tx), Arc::new(GatedConnector { inner, opened }))
    }
}

#[async_trait::async_trait]
impl Connector for GatedConnector {
    async fn connect(&self) -> mo_core::Result<Link> {
        // Err: the gate was dropped, which opens it as well.
        let _ = self.opened.clone().wait_for(|open| *open).await;
        self.inner.connect().await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn address(&self) -> String {
        self.inner.address()
    }
}

/// The agent and port of an `agent://AGENT/PORT[?…]` address.
pub(crate) fn agent_port_of(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("agent://")?;
    let rest = rest.split(['?', '#']).next()?;
    rest.split_once('/')
}

/// Poll the store for device changes every `every` and reconcile. Runs until the registry is
/// dropped by everyone else.
pub async fn watch_store(registry: Arc<Registry>, every: Duration) {
    let mut last: Option<u64> = None;
    loop {
        match registry.sync_from_store(last).await {
            Ok((generation, changed)) => {
                if let Some((started, stopped)) = changed
                    && last.is_some()
                    && (started > 0 || stopped > 0)
                {
                    tracing::info!(started, stopped, "devices changed");
                }
                last = Some(generation);
            }
            Err(e) => tracing::error!("cannot read devices from the store: {e}"),
        }
        if Arc::strong_count(&registry) == 1 {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(entries: Vec<Entry>) -> Vec<String> {
        entries.into_iter().map(|e| e.device.name).collect()
    }

    /// The per-port index follows devices as they are added, moved to another port and removed;
    /// two devices on one port (settings in the address) are both found, others are not.
    #[tokio::test]
    async fn the_agent_port_index_follows_the_devices() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let store = data.open_store().unwrap();
        let key = data.secret_key().unwrap();
        let registry = Registry::new(data, LogOptions::default(), store, key);
        let dev = |name: &str, url: &str| Device::new(name, url);
        registry
            .reconcile(vec![
                dev("a", "agent://cs1/ttyS0"),
                dev("b", "agent://cs1/ttyS0?baud=9600"),
                dev("c", "agent://cs1/ttyS1"),
                dev("d", "agent://cs2/ttyS0"),
                dev("e", "sim://e"),
            ])
            .await;
        assert_eq!(names(registry.on_agent_port("cs1", "ttyS0")), ["a", "b"]);
        assert_eq!(names(registry.on_agent_port("cs1", "ttyS1")), ["c"]);
        assert_eq!(names(registry.on_agent_port("cs2", "ttyS0")), ["d"]);
        assert!(registry.on_agent_port("cs2", "ttyS1").is_empty());
        assert!(registry.on_agent_port("sim:", "e").is_empty());

        registry
            .reconcile(vec![
                dev("a", "agent://cs1/ttyS1"),
                dev("c", "agent://cs1/ttyS1"),
                dev("e", "agent://cs2/ttyS0"),
            ])
            .await;
        assert!(registry.on_agent_port("cs1", "ttyS0").is_empty());
        assert_eq!(names(registry.on_agent_port("cs1", "ttyS1")), ["a", "c"]);
        assert_eq!(names(registry.on_agent_port("cs2", "ttyS0")), ["e"]);

        registry.reconcile(Vec::new()).await;
        assert!(registry.on_agent_port("cs1", "ttyS1").is_empty());
        assert!(registry.on_agent_port("cs2", "ttyS0").is_empty());
        assert!(registry.on_agent_port.read().unwrap().is_empty());
    }

    /// A console does not connect before its entry is in the registry: what the link says on
    /// connecting (an agent's "line settings applied" notice) is written through the entry, and
    /// was lost when the connection came first. The start hook sleeps to widen the window the
    /// old order left open (seen in CI with an agent's port).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_console_connects_only_once_its_entry_is_registered() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let store = data.open_store().unwrap();
        let key = data.secret_key().unwrap();
        let registry = Arc::new(Registry::new(data, LogOptions::default(), store, key));
        registry.set_on_start(Box::new(|_, _, _| {
            // Another task spawned here (as opening ports does) moves the console's task out of
            // this worker's LIFO slot, where the other worker can take it.
            tokio::spawn(async {});
            std::thread::sleep(Duration::from_millis(400));
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("tcp://{}", listener.local_addr().unwrap());
        let starting = {
            let registry = registry.clone();
            tokio::spawn(async move { registry.reconcile(vec![Device::new("gated", &url)]).await })
        };
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        assert!(accepted.is_ok(), "the console did not connect within 10 s");
        assert!(
            registry.get("gated").is_some(),
            "the console connected before its entry was in the registry"
        );
        assert_eq!(starting.await.unwrap(), (1, 0));
        registry.reconcile(Vec::new()).await;
    }
}
