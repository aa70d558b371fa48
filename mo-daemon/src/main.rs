//! `mod`, the mo daemon: holds every device console open, shares it among many admins through an
//! SSH front door, and logs every byte with who and when.

mod access;
mod agents;
mod automation;
mod cluster;
mod config;
mod connlimit;
mod conserver;
mod event_macro;
mod events;
#[path = "../../mo-cli/src/generate.rs"]
mod generate;
mod http;
mod listen;
mod live;
mod logging;
mod maintenance;
mod notify;
mod opsmetrics;
mod power;
mod registry;
mod reload;
mod retention;
mod site;
mod ssh;
mod throttle;
mod viewer;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use mo_core::log::LogOptions;
use mo_store::{DataDir, Device, Store};

use registry::Registry;

/// mo daemon: shared persistent consoles with an SSH front door.
///
/// Every device console in the data directory's store is held open by one persistent connection
/// that many admins share. Admins connect with any OpenSSH client:
///
///   ssh -p 2222 alice@host              command shell (list, console NAME, spy NAME, who)
///   ssh -t -p 2222 alice@host console web01
///   ssh -p 2222 alice:web01@host        attach directly (alice:web01:spy@host to spy)
///
/// Devices and users are managed with `mo` on the same data directory; changes apply without a
/// restart.
///
/// Every flag is also a key of the --config file (TOML, the flag without its dashes:
/// `ssh = "0.0.0.0:2222"`); a flag wins over its environment variable, which wins over the
/// file (docs/config.md). SIGHUP re-reads the file, the events, schedule and TLS files.
#[derive(Debug, Parser)]
#[command(name = "mod", version, verbatim_doc_comment)]
struct Args {
    /// Configuration file (TOML): every flag is also a key, named like the flag without its
    /// dashes (docs/config.md). Flags and environment variables win over the file.
    #[arg(long, env = "MOD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (the --config file, the events, schedule and site files), print
    /// the effective configuration as TOML (secrets redacted, each value's source in a comment)
    /// and exit: 0 when it is good, 1 with the error otherwise.
    #[arg(long)]
    check_config: bool,
    /// Data directory: store (mo.db), record logs (logs/DEVICE/), SSH host key. Default: as a
    /// systemd service $STATE_DIRECTORY (else /var/lib/mo), for a user $XDG_DATA_HOME/mo (else
    /// ~/.local/share/mo).
    #[arg(long, env = "MO_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the SSH front door.
    #[arg(long, default_value = "127.0.0.1:2222")]
    ssh: SocketAddr,
    /// Demo mode: add five simulated devices (sim-01 … sim-05) and the user `demo` (password
    /// `demo`) if missing. Listens on loopback only.
    #[arg(long)]
    demo: bool,
    /// Address of the HTTP + WebSocket API (docs/api.md), e.g. 127.0.0.1:8080; off when absent
    /// (with --demo: 127.0.0.1:8022).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Address of the conserver door (docs/conserver.md), e.g. 127.0.0.1:3109: conserver 8.2's
    /// stock `console` client attaches, spies and lists with mo's users and policy
    /// (`console -U -M HOST -p PORT NAME`); its consoles are on a second port beside it. No
    /// TLS: the client needs -U or -E. Off when absent.
    #[arg(long, value_name = "ADDR")]
    conserver: Option<SocketAddr>,
    /// HTTPS for the API: --tls-cert/--tls-key, --tls-self-signed, --insecure-http.
    #[command(flatten)]
    tls: http::tls::TlsArgs,
    /// Log filter for the daemon's own diagnostics (tracing syntax, e.g. `info`,
    /// `info,mod::ssh=debug`; the daemon's targets are `mod::…`).
    #[arg(long, env = "MO_LOG", default_value = "info")]
    log: String,
    /// How diagnostics are written on stderr: `text` (a line per record) or `json` (a JSON
    /// object per line: timestamp, level, target, spans, fields).
    #[arg(long, env = "MO_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: logging::LogFormat,
    /// Event configuration (TOML: patterns, rules, actions; see docs/events.md). Without it the
    /// built-in patterns (kernel panic, oops, OOM kill, I/O errors, …) raise events.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Rotate a device's record-log segment when it reaches this many MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// When record logs are forced to disk: `never` (only on rotation and shutdown), `always`
    /// (after every record) or `interval=DURATION` (at most that long after a record was
    /// written). Under every policy but `never`, notes, marks, power and gap records are on disk
    /// before they are acknowledged (docs/log-format.md, "Durability").
    #[arg(long, value_name = "POLICY", default_value = "interval=1s")]
    fsync: mo_core::log::Fsync,
    /// Compress closed record-log segments with zstd (`….mlog.zst`) in the background after each
    /// rotation; every reader reads both forms.
    #[arg(long)]
    compress_segments: bool,
    /// Read the power state of every device with a power controller every SECS seconds and
    /// report changes no mo action made (log record and `power` event). Off by default.
    #[arg(long, value_name = "SECS")]
    power_poll: Option<u64>,
    /// Scheduled macros (TOML `[[schedule]]` entries: cron, macro, targets, args; see
    /// docs/automation.md). Macros are the files DATA_DIR/macros/NAME.macro.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// The site allowlist (TOML `[[allow]]` entries: programs, socket and serial paths, host
    /// patterns) that lets device admins who are not global admins use `exec:`, `unix:`,
    /// `serial:` and network addresses (docs/security.md). Default: DATA_DIR/site.toml if present.
    #[arg(long, value_name = "FILE")]
    site: Option<PathBuf>,
    /// Serve `/metrics` without authentication (default: it needs a token or password, and
    /// shows only the devices the caller may list).
    #[arg(long)]
    metrics_public: bool,
    /// Connections each front door (SSH, HTTP) holds open at most; more are refused at once.
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_connections: usize,
    /// Connections one source address may hold open at each front door.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_connections_per_address: usize,
    /// Channels (sessions) one SSH connection may have open at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_ssh_channels: usize,
    /// Time an SSH client has from connecting to being logged in; then it is disconnected.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    login_grace: Duration,
    /// Time an HTTP client has to send a request's header; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    http_header_timeout: Duration,
    /// An origin (`https://consoles.example.com`) whose web pages may open the API's WebSockets
    /// (repeatable). The daemon's own origin (the request's Host) is always allowed, and so are
    /// clients that send no Origin (programs, not browsers).
    #[arg(long = "allowed-origin", value_name = "URL")]
    allowed_origins: Vec<String>,
    /// The web console (`/` on the --http listener, docs/web.md): a browser session that sends
    /// no request for this long ends (an open console or event stream keeps it in use).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    web_idle_timeout: Duration,
    /// The web console: a browser session ends this long after its login in any case.
    #[arg(long, value_name = "DURATION", default_value = "12h", value_parser = humantime::parse_duration)]
    web_session_lifetime: Duration,
    /// Keep record-log segments for N days (fractions allowed: 0.5 = 12 h), for every device
    /// without its own `mo device set --retain-days`. Whole closed segments go, oldest first;
    /// the live segment stays. Off by default (keep everything).
    #[arg(long, value_name = "N", value_parser = retention::parse_days)]
    retain_days: Option<Duration>,
    /// Keep at most this many GiB of record log per device (fractions allowed, or a unit:
    /// `512MiB`), for every device without its own `mo device set --retain-gib`. Off by default.
    #[arg(long, value_name = "GIB", value_parser = retention::parse_size)]
    retain_gib: Option<mo_store::RetainSize>,
    /// How often retention runs (besides at start and on every segment rotation): record logs,
    /// and events and audit when their retention is set.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    retain_check: Duration,
    /// Delete events older than N days (fractions allowed). Off by default.
    #[arg(long, value_name = "N", value_parser = retention::parse_days)]
    events_retain_days: Option<Duration>,
    /// Move audit entries older than N days (fractions allowed) out of the store: they are first
    /// written to DATA_DIR/audit-archive/audit-FROM-TO-LASTID.jsonl (with a SHA-256 digest line,
    /// fsynced), then deleted; check a file with `mo audit verify-archive FILE`. Off by default.
    #[arg(long, value_name = "N", value_parser = retention::parse_days)]
    audit_retain_days: Option<Duration>,
    /// Joining a site over NATS: --cluster, --node, --nats-creds, --nats-ca, --heartbeat,
    /// --lost-after (docs/cluster.md).
    #[command(flatten)]
    cluster: cluster::ClusterArgs,
}

/// What every front door needs.
pub struct Ctx {
    /// The store.
    pub store: Store,
    /// The running consoles.
    pub registry: Arc<Registry>,
    /// Policy decisions and the audit log.
    pub access: access::Access,
    /// Power actions and their timeline (records, events, the poller's activity counters).
    pub power: Arc<mo_core::power::PowerService>,
    /// The event manager.
    pub events: Arc<events::Events>,
    /// The site allowlist for addresses that reach the daemon's host (`mod --site`).
    pub site: site::Site,
    /// The stored macros (`DATA_DIR/macros`).
    pub macros: mo_store::MacroStore,
    /// The macros the `--schedule` file plays (recording over them needs a global admin).
    pub scheduled_macros: std::sync::RwLock<Vec<String>>,
    /// Failed-login throttling and the limit on concurrent password checks (both doors).
    pub throttle: Arc<throttle::Throttle>,
    /// Snapshots of users, tokens and policy that open sessions re-check themselves against.
    pub live: live::Live,
    /// Every front door listens and the store's consoles were started (`/api/v1/ready`).
    pub ready: std::sync::atomic::AtomicBool,
    /// This daemon's membership of a site (`mod --cluster`), if any.
    pub cluster: Option<cluster::Cluster>,
}

impl Ctx {
    /// The registry entries `user` may see (`list` permission), sorted by name. The policy is
    /// loaded once for the whole list.
    pub fn visible(&self, user: &str) -> Vec<registry::Entry> {
        let policy = self.access.policy();
        self.registry
            .list()
            .into_iter()
            .filter(|e| policy.allows(user, mo_core::policy::Permission::List, &e.device.name))
            .collect()
    }

    /// Decide and audit `action` by `user` on `device`; a denial is also written into the
    /// device's record log (as a notice), so the console's timeline shows the attempt — but
    /// only when `user` may see (`list`) the device: others cannot plant notices in its log.
    pub async fn check(
        &self,
        user: &str,
        origin: &str,
        action: mo_core::policy::Permission,
        device: &str,
    ) -> Result<(), String> {
        let result = self.access.check(user, origin, action, device);
        if let Err(why) = &result
            && self
                .access
                .allows(user, mo_core::policy::Permission::List, device)
            && let Some(console) = self.registry.get(device).and_then(|e| e.console)
        {
            let _ = console
                .record(
                    mo_core::record::RecordKind::Notice,
                    user,
                    format!("{user} {why}"),
                )
                .await;
        }
        result
    }
}

/// Parse the command line, the environment and the --config file (exits on a bad one).
fn parse_args(cmd: &clap::Command, argv: &[std::ffi::OsString]) -> (Args, config::Loaded) {
    let loaded = match config::load(cmd, argv) {
        Ok(loaded) => loaded,
        Err(config::LoadError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("mod: {e}");
            std::process::exit(1);
        }
    };
    match Args::from_arg_matches(&loaded.matches) {
        Ok(args) => (args, loaded),
        Err(e) => e.exit(),
    }
}

fn main() {
    throttle::return_large_blocks();
    let cmd = Args::command();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = generate::intercept(&argv, || cmd.clone()) {
        std::process::exit(status);
    }
    let (mut args, loaded) = parse_args(&cmd, &argv);
    let data_dir = match &args.data_dir {
        Some(dir) => (dir.clone(), "given"),
        None => match config::default_data_dir(|name| std::env::var_os(name)) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("mod: {e:#}");
                std::process::exit(1);
            }
        },
    };
    if args.check_config {
        match check_config(&args, &data_dir.0) {
            Ok(()) => {
                print!("{}", config::effective(&cmd, &loaded, &data_dir));
                eprintln!("mod: configuration OK");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("mod: {e:#}");
                std::process::exit(1);
            }
        }
    }
    args.data_dir = Some(data_dir.0);
    logging::init(&args.log, args.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mod: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let started = Started { cmd, argv, loaded };
    if let Err(e) = rt.block_on(run(args, started)) {
        eprintln!("mod: {e:#}");
        std::process::exit(1);
    }
}

/// Thousands of consoles hold thousands of descriptors: raise the soft limit to the hard one.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the process. The daemon
/// must instead see the write fail (EFBIG) and degrade that one log: tokio's handler for the
/// signal replaces the default action for the life of the process.
fn ignore_file_size_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let stream = signal(SignalKind::from_raw(nix::libc::SIGXFSZ))
        .context("cannot take over SIGXFSZ (file size limit)")?;
    // The handler stays installed after the stream is gone; keep the stream anyway.
    std::mem::forget(stream);
    Ok(())
}

fn seed_demo(store: &Store) -> anyhow::Result<()> {
    for i in 1..=5 {
        let name = format!("sim-{i:02}");
        if store.get_device(&name)?.is_none() {
            let mut d = Device::new(&name, format!("sim://{name}?boot=normal"));
            d.settings.description = Some(format!("simulated server {i}"));
            store.add_device(&d)?;
        }
    }
    if store.list_users()?.iter().all(|u| u.name != "demo") {
        store.add_user("demo", Some("demo"))?;
    }
    let admin = mo_core::policy::Grant::to_user("demo", "admin", "all");
    if !store.list_grants()?.contains(&admin) {
        store.add_grant(&admin)?;
    }
    Ok(())
}

/// Where `--demo` serves the HTTP API unless `--http` says otherwise.
const DEMO_HTTP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8022);

/// How long the API token `--demo` prints stays valid.
const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The demo's password is public: outside demo mode, refuse to listen beyond loopback while
/// any user still has the password `demo` (each user with a password is checked once, at
/// start, only when a door is not on loopback).
async fn refuse_public_demo(store: &Store, args: &Args) -> anyhow::Result<()> {
    let public: Vec<String> = std::iter::once(("--ssh", args.ssh))
        .chain(args.http.map(|a| ("--http", a)))
        .chain(args.conserver.map(|a| ("--conserver", a)))
        .filter(|(_, a)| !a.ip().is_loopback())
        .map(|(flag, a)| format!("{flag} {a}"))
        .collect();
    if public.is_empty() {
        return Ok(());
    }
    let s = store.clone();
    let found = tokio::task::spawn_blocking(move || -> mo_store::Result<Vec<String>> {
        let mut found = Vec::new();
        for user in s.list_users()? {
            if s.verify_password(&user.name, "demo")? {
                found.push(user.name);
            }
        }
        Ok(found)
    })
    .await??;
    if let Some(first) = found.first() {
        bail!(
            "refusing to listen on {} (not loopback): {} {} {} the public demo password `demo`. \
             Remove the user (`mo user rm {first}`), give it another password \
             (`mo user passwd {first} --password-stdin`), or listen on loopback only",
            public.join(" and "),
            if found.len() == 1 { "user" } else { "users" },
            found.join(", "),
            if found.len() == 1 { "has" } else { "have" },
        );
    }
    Ok(())
}

/// A fresh API token for the demo user (stored like `mo token add demo` ones).
fn demo_token(store: &Store) -> anyhow::Result<String> {
    let expires = std::time::SystemTime::now() + DEMO_TOKEN_LIFETIME;
    let expires_ns = expires
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    let new = store.add_token("demo", mo_store::TokenScope::All, expires_ns)?;
    Ok(new.token.expose().to_string())
}

/// `--check-config`: what can be checked without starting (the files the flags name, the
/// address rules); nothing is created.
fn check_config(args: &Args, data_dir: &std::path::Path) -> anyhow::Result<()> {
    check_addresses(args)?;
    events::EventConfig::load(args.events.as_deref())?;
    if let Some(path) = &args.schedule {
        let macros = mo_store::MacroStore::new(data_dir.join("macros"));
        mo_store::config::ScheduleConfig::load(path, &macros).context("bad --schedule file")?;
    }
    site::Site::load(args.site.as_deref(), data_dir)?;
    for path in [&args.tls.tls_cert, &args.tls.tls_key]
        .into_iter()
        .flatten()
    {
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    if args.retain_check.is_zero() {
        bail!("--retain-check must be longer than 0");
    }
    Ok(())
}

/// The demo listens on loopback only.
fn check_addresses(args: &Args) -> anyhow::Result<()> {
    if args.demo && !args.ssh.ip().is_loopback() {
        bail!(
            "--demo listens on loopback only (the demo password is public); got --ssh {}",
            args.ssh
        );
    }
    if let Some(addr) = args.http.filter(|a| args.demo && !a.ip().is_loopback()) {
        bail!("--demo listens on loopback only (the demo token is printed); got --http {addr}");
    }
    if let Some(addr) = args
        .conserver
        .filter(|a| args.demo && !a.ip().is_loopback())
    {
        bail!(
            "--demo listens on loopback only (the demo password is public); got --conserver {addr}"
        );
    }
    Ok(())
}

/// How the daemon was started, for SIGHUP to read the configuration again the same way.
struct Started {
    cmd: clap::Command,
    argv: Vec<std::ffi::OsString>,
    loaded: config::Loaded,
}

async fn run(args: Args, started: Started) -> anyhow::Result<()> {
    check_addresses(&args)?;
    raise_fd_limit();
    ignore_file_size_signal()?;
    let data_dir = args.data_dir.clone().context("no data directory")?;
    let data = DataDir::open(&data_dir)
        .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
    let store = data.open_store()?;
    if !args.demo {
        refuse_public_demo(&store, &args).await?;
    }
    if args.demo {
        seed_demo(&store).context("cannot set up the demo devices")?;
    }
    let host_key = ssh::host_key(&data.host_key_path())?;
    let log = LogOptions {
        segment_max_bytes: args.segment_mib.max(1) * 1024 * 1024,
        compress_level: args.compress_segments.then_some(3),
        fsync: args.fsync,
        retain_max_bytes: args.retain_gib.map(mo_store::RetainSize::bytes),
        retain_max_age: args.retain_days,
        ..LogOptions::default()
    };
    let key = data
        .secret_key()
        .context("cannot open the device-secret key")?;
    let event_config = events::EventConfig::load(args.events.as_deref())?;
    let macros = data.macros();
    let schedule_config = match &args.schedule {
        Some(path) => {
            mo_store::config::ScheduleConfig::load(path, &macros).context("bad --schedule file")?
        }
        None => mo_store::config::ScheduleConfig::default(),
    };
    let registry = Arc::new(Registry::new(data.clone(), log, store.clone(), key));
    // In a site sharing devices, a console runs only on the node holding it: decided before the
    // first console starts.
    let ownership = args.cluster.ownership();
    if let Some(own) = &ownership {
        let own = own.clone();
        registry.set_placement(Arc::new(move |device| own.placement(device)));
    }
    let power = Arc::new(mo_core::power::PowerService::new());
    let events =
        events::Events::start(event_config, store.clone(), registry.clone(), power.clone())?;
    {
        let events = events.clone();
        power.raise_events_with(move |candidate| events.offer(candidate));
    }
    let http_addr = args.http.or(args.demo.then_some(DEMO_HTTP));
    let metrics = Arc::new(http::Metrics::new().with_public(args.metrics_public));
    {
        let events = events.clone();
        let metrics = http_addr.is_some().then(|| metrics.clone());
        registry.set_on_start(Box::new(move |name, console, tap| {
            if let Some(metrics) = &metrics {
                metrics.watch(name, console);
            }
            events.watch(console, tap);
        }));
    }
    let devices = {
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.list_devices()).await??
    };
    registry.reconcile(devices).await;
    let watcher = tokio::spawn(registry::watch_store(
        registry.clone(),
        Duration::from_secs(1),
    ));
    let poller = args.power_poll.filter(|secs| *secs > 0).map(|secs| {
        power::start_poller(
            power.clone(),
            Arc::downgrade(&registry),
            Duration::from_secs(secs),
        )
    });
    let cluster =
        cluster::Cluster::start(&args.cluster, &registry, &store, ownership, &events).await?;
    let throttle = Arc::new(throttle::Throttle::new(
        store.clone(),
        throttle::Limits::default(),
    ));
    let ctx = Arc::new(Ctx {
        throttle,
        power,
        events,
        access: access::Access::new(store.clone())?,
        site: site::Site::load(args.site.as_deref(), data.path())?,
        scheduled_macros: std::sync::RwLock::new(schedule_config.macro_names()),
        macros,
        store,
        registry: registry.clone(),
        live: live::Live::new(),
        ready: std::sync::atomic::AtomicBool::new(false),
        cluster,
    });
    ctx.events.set_ctx(&ctx);
    {
        let weak = Arc::downgrade(&ctx);
        let options = Arc::new(listen::Options {
            conns: connlimit::ConnLimits::new(
                "console port",
                args.max_connections,
                args.max_connections_per_address,
            ),
            login_grace: args.login_grace,
            address: args.cluster.listen_address,
        });
        registry
            .set_on_listen(Box::new(move |device| {
                listen::open(&weak, &options, device)
            }))
            .await;
    }
    let _maintenance = maintenance::start(ctx.clone());
    let scheduler = Arc::new(std::sync::Mutex::new(automation::start(
        ctx.clone(),
        schedule_config,
        data.schedule_state(),
    )));
    reload::Reloader {
        running: reload::settings(&started.cmd, &started.loaded.matches),
        cmd: started.cmd,
        argv: started.argv,
        ctx: ctx.clone(),
        data: data.clone(),
        scheduler: scheduler.clone(),
        schedule: args.schedule.clone(),
    }
    .spawn()?;
    let live_watcher = tokio::spawn(live::watch_store(ctx.clone(), Duration::from_secs(1)));
    if args.retain_check.is_zero() {
        bail!("--retain-check must be longer than 0");
    }
    let retainer = retention::start(
        registry.clone(),
        ctx.store.clone(),
        retention::RetentionTask {
            every: args.retain_check,
            events_max_age: args.events_retain_days,
            audit_max_age: args.audit_retain_days,
            archive_dir: data.path().join(retention::AUDIT_ARCHIVE_DIR),
        },
    );
    let tls = args.tls.setup(data.path(), http_addr)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let http_server = match http_addr {
        Some(addr) => {
            let state = http::AppState {
                ctx: ctx.clone(),
                data: data.clone(),
                metrics,
                web: Arc::new(http::WebSessions::new(http::WebOptions {
                    idle_timeout: args.web_idle_timeout,
                    lifetime: args.web_session_lifetime,
                    secure: tls.is_some(),
                })),
            };
            let options = http::Options {
                conns: connlimit::ConnLimits::new(
                    "HTTP",
                    args.max_connections,
                    args.max_connections_per_address,
                ),
                header_timeout: args.http_header_timeout,
                allowed_origins: args.allowed_origins.clone(),
            };
            match http::serve(state, addr, tls, options).await {
                Ok((bound, task)) => {
                    tracing::info!("listening on {bound} ({scheme})");
                    eprintln!("mod: listening on {bound} (HTTP API, {scheme}://{bound}/api/v1/)");
                    Some((bound, task))
                }
                // The demo's default port may be taken; the demo still works over SSH.
                Err(e) if args.demo && args.http.is_none() => {
                    eprintln!("mod: demo mode: no HTTP API: {e:#}");
                    None
                }
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let (addr, server) = ssh::serve(
        ctx.clone(),
        args.ssh,
        host_key,
        ssh::Options {
            conns: connlimit::ConnLimits::new(
                "SSH",
                args.max_connections,
                args.max_connections_per_address,
            ),
            max_channels: args.max_ssh_channels,
            login_grace: args.login_grace,
        },
    )
    .await?;
    tracing::info!(
        "listening on {addr} (SSH), data directory {}",
        data_dir.display()
    );
    eprintln!(
        "mod: listening on {addr} (SSH); data directory {}",
        data_dir.display()
    );
    let conserver_task = match args.conserver {
        Some(at) => {
            let options = conserver::Options {
                conns: connlimit::ConnLimits::new(
                    "conserver",
                    args.max_connections,
                    args.max_connections_per_address,
                ),
                login_grace: args.login_grace,
            };
            let (bound, task) = conserver::serve(ctx.clone(), at, options).await?;
            tracing::info!("listening on {} (conserver)", bound.master);
            eprintln!(
                "mod: listening on {} (conserver clients: console -U -M {} -p {} NAME; consoles on port {})",
                bound.master,
                bound.master.ip(),
                bound.master.port(),
                bound.group.port()
            );
            Some(task)
        }
        None => None,
    };
    if args.demo {
        let port = addr.port();
        eprintln!(
            "mod: demo mode: devices sim-01 … sim-05, user `demo`, password `demo`\n\
             \x20 shell:   ssh -p {port} demo@{ip}\n\
             \x20 attach:  ssh -p {port} demo:sim-01@{ip}     (leave with Ctrl-E c .)\n\
             \x20 logs:    mo --data-dir {dir} log show sim-01",
            ip = addr.ip(),
            dir = data_dir.display()
        );
        if let Some((bound, _)) = &http_server {
            eprintln!("\x20 web:     {scheme}://{bound}/  (web console, user demo, password demo)");
            match demo_token(&ctx.store) {
                Ok(token) => eprintln!(
                    "\x20 api:     {scheme}://{bound}/api/v1/  (token of user demo below)\n\
                     export MO_TOKEN={token}"
                ),
                Err(e) => eprintln!("mod: demo mode: cannot make an API token: {e}"),
            }
        }
    }
    ctx.ready.store(true, std::sync::atomic::Ordering::Release);
    notify::notify(&format!("READY=1\nSTATUS=listening on {addr} (SSH)"));
    let http_task = async {
        match http_server {
            Some((_, task)) => {
                let _ = task.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = terminate() => tracing::info!("terminated; stopping"),
        _ = server => tracing::error!("SSH server ended"),
        _ = http_task => tracing::error!("HTTP server ended"),
    }
    ctx.ready.store(false, std::sync::atomic::Ordering::Release);
    notify::notify("STOPPING=1");
    watcher.abort();
    live_watcher.abort();
    if let Some(task) = conserver_task {
        task.abort();
    }
    retainer.abort();
    if let Some(poller) = poller {
        poller.abort();
    }
    if let Some(scheduler) = scheduler
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        scheduler.abort();
    }
    if let Some(cluster) = &ctx.cluster {
        cluster.leave().await;
    }
    registry.shutdown().await;
    // Last: the doors and consoles above may still have audited something.
    ctx.access.shutdown();
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
