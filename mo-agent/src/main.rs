//! `mo-agent`: holds the ports of a console server and carries them to mo's daemon over one
//! outbound, encrypted SSH connection (docs/agent.md).

mod backoff;
#[path = "../../mo-cli/src/generate.rs"]
mod generate;
mod port;
// `size` is for `mo console` only.
#[allow(dead_code)]
mod spool;
mod tty;
mod uplink;

use std::collections::BTreeSet;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use mo_drivers::agent::{WaterMarks, parse_high_mark, parse_low_mark};
use serde::Deserialize;

/// mo-agent: every port of a console server over one outbound SSH link to mo's daemon.
///
/// Enroll once with the token `mo agent add NAME` printed (creates the key if missing and pins
/// the daemon's host key):
///
///   mo-agent --enroll TOKEN --connect ssh://cs1@mo.example:2222 --key /etc/mo-agent/key
///
/// Then run with the ports to offer:
///
///   mo-agent --connect ssh://cs1@mo.example:2222 --key /etc/mo-agent/key \
///       --port ttyS0=serial:///dev/ttyS0?baud=115200 --discover-serial
///
/// The ports become devices on the daemon with `mo device add web01 agent://cs1/ttyS0`. While
/// the link is down the agent keeps reading every port into a bounded spool on disk
/// (--spool-mib, --spool-dir; kept across restarts) and replays it, in order, with the time
/// each byte was read, when the link is back.
///
/// On the console server itself, `mo-agent tty PORT` attaches the terminal to a port through the
/// running agent (local access, also while the link to the daemon is down).
#[derive(Debug, Parser)]
#[command(name = "mo-agent", version, verbatim_doc_comment)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The local access socket `mo-agent tty` connects to (mode 0660: the agent's user and
    /// group may use it; default: SPOOL_DIR/tty.sock).
    #[arg(long, value_name = "FILE", env = "MO_AGENT_TTY_SOCKET", global = true)]
    tty_socket: Option<PathBuf>,
    /// The daemon's SSH door and this agent's name: ssh://AGENT@HOST[:PORT] (port 2222 if
    /// left out).
    // The comment is the `--help` text, written for a terminal: `[:PORT]` is not a doc link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "URL")]
    connect: Option<String>,
    /// The agent's private key (OpenSSH format). --enroll creates it (Ed25519, mode 0600) if
    /// missing.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Where the daemon's host key is pinned at enrollment (default: KEY.daemon.pub).
    #[arg(long, value_name = "FILE")]
    host_key: Option<PathBuf>,
    /// Enroll with this one-time token (from `mo agent add NAME`): register the key and pin the
    /// daemon's host key. Without ports the agent then exits; with ports it goes on running.
    #[arg(long, value_name = "TOKEN")]
    enroll: Option<String>,
    /// A port to offer: NAME=URL, any mo-drivers address (serial:///dev/ttyS0?baud=115200,
    /// rfc2217://host:port, exec:///path, unix:///path). Repeatable.
    #[arg(long = "port", value_name = "NAME=URL")]
    ports: Vec<String>,
    /// Also offer every /dev/ttyS*, /dev/ttyUSB* and /dev/ttyACM* that opens (named after the
    /// device: ttyUSB0).
    #[arg(long)]
    discover_serial: bool,
    /// A TOML file: connect, key, host_key, spool_mib, spool_dir, discover_serial, high_mark,
    /// low_mark, tty_socket and [[port]] tables (name, url, and the port's own high, low).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Spool per port on disk while the link is down, in MiB; the oldest records go first when
    /// it is full (counted and reported to the daemon).
    #[arg(long, value_name = "MIB")]
    spool_mib: Option<f64>,
    /// Where the spools live (one directory per port, kept across restarts; default:
    /// KEY.spool).
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// The high water mark of every port (bytes per second over 10 s; 0: off): a device on a
    /// port printing faster raises an event. A device address's `high=` still wins; without
    /// either the daemon's default (8192) holds.
    #[arg(long, value_name = "BYTES_PER_S")]
    high_mark: Option<String>,
    /// The low water mark of every port (30s, 5m; 0: off): a device on a port silent for that
    /// long raises an event. A device address's `low=` still wins; without either it is off.
    #[arg(long, value_name = "DURATION")]
    low_mark: Option<String>,
    /// Log filter for the agent's own diagnostics (tracing syntax).
    #[arg(long, env = "MO_AGENT_LOG", default_value = "info")]
    log: String,
}

/// What else `mo-agent` does than running.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Attach this terminal to a port of the agent running on this machine (local access).
    ///
    /// The agent must be running; you reach it through its local access socket (--tty-socket,
    /// or the one --config names; the socket's mode is 0660, so use the agent's user or group).
    /// You are `local:USER@AGENT`: the daemon lists you in `who` of the port's devices and logs
    /// what you type as your input. Your keystrokes go to the port through the agent even while
    /// the link to the daemon is down (they are then logged when it is back).
    ///
    /// Escapes are mo's: ^Ec . leaves, ^Ec w shows who is on the port, ^Ec i tells about
    /// the port, ^Ec l1 sends a BREAK, ^Ec ? lists them.
    #[command(verbatim_doc_comment)]
    Tty {
        /// The port's name on the agent (as in `--port NAME=URL`).
        port: String,
    },
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    connect: Option<String>,
    key: Option<PathBuf>,
    host_key: Option<PathBuf>,
    spool_mib: Option<f64>,
    spool_dir: Option<PathBuf>,
    #[serde(default)]
    discover_serial: bool,
    high_mark: Option<Mark>,
    low_mark: Option<Mark>,
    tty_socket: Option<PathBuf>,
    #[serde(default)]
    port: Vec<FilePort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePort {
    name: String,
    url: String,
    high: Option<Mark>,
    low: Option<Mark>,
}

/// A water mark in the TOML file: `high = 2000` or `low = "5m"` (`0`: off).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Mark {
    Number(u64),
    Text(String),
}

impl Mark {
    fn text(&self) -> String {
        match self {
            Mark::Number(n) => n.to_string(),
            Mark::Text(t) => t.clone(),
        }
    }
}

/// Water marks as the agent sets them: the agent-wide ones (flags over the file's) under each
/// port's own (`[[port]]` `high`/`low`); `None` per port where nothing is set, so the daemon's
/// built-in marks hold.
fn port_marks(
    args: &Args,
    file: &FileConfig,
    ports: &[(String, String)],
) -> anyhow::Result<Vec<Option<WaterMarks>>> {
    let high = |text: Option<String>, what: &str| -> anyhow::Result<Option<Option<u64>>> {
        text.map(|t| parse_high_mark(&t).map_err(|e| anyhow!("{what}: {e}")))
            .transpose()
    };
    let low = |text: Option<String>, what: &str| -> anyhow::Result<Option<Option<Duration>>> {
        text.map(|t| parse_low_mark(&t).map_err(|e| anyhow!("{what}: {e}")))
            .transpose()
    };
    let agent_high = high(
        args.high_mark
            .clone()
            .or(file.high_mark.as_ref().map(Mark::text)),
        "--high-mark",
    )?;
    let agent_low = low(
        args.low_mark
            .clone()
            .or(file.low_mark.as_ref().map(Mark::text)),
        "--low-mark",
    )?;
    let builtin = WaterMarks::default();
    ports
        .iter()
        .map(|(name, _)| {
            let own = file.port.iter().find(|p| &p.name == name);
            let what = format!("port `{name}`");
            let own_high = high(own.and_then(|p| p.high.as_ref().map(Mark::text)), &what)?;
            let own_low = low(own.and_then(|p| p.low.as_ref().map(Mark::text)), &what)?;
            let high = own_high.or(agent_high);
            let low = own_low.or(agent_low);
            Ok((high.is_some() || low.is_some()).then(|| WaterMarks {
                high: high.unwrap_or(builtin.high),
                low: low.unwrap_or(builtin.low),
            }))
        })
        .collect()
}

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = generate::intercept(&argv, <Args as clap::CommandFactory>::command) {
        return std::process::ExitCode::from(u8::try_from(status).unwrap_or(1));
    }
    let args = Args::parse_from(argv);
    if let Some(Sub::Tty { port }) = &args.command {
        let attached = read_config(&args).and_then(|file| {
            let socket = tty_socket(&args, &file).context(
                "give the agent's local access socket: --tty-socket FILE, or the agent's --config",
            )?;
            tty::attach(&socket, port)
        });
        return match attached {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mo-agent tty: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mo-agent: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mo-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A port name: what `agent://AGENT/PORT` can hold.
fn check_port_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        bail!("port name `{name}`: use 1-64 letters, digits, `-`, `_` or `.`");
    }
    Ok(())
}

/// The ports to offer: --config's, then --port's, then discovered ones; names unique.
fn declared_ports(args: &Args, file: &FileConfig) -> anyhow::Result<Vec<(String, String)>> {
    let mut ports = Vec::new();
    for p in &file.port {
        ports.push((p.name.clone(), p.url.clone()));
    }
    for spec in &args.ports {
        let Some((name, url)) = spec.split_once('=') else {
            bail!("--port `{spec}`: write NAME=URL");
        };
        ports.push((name.trim().to_owned(), url.trim().to_owned()));
    }
    let mut seen = BTreeSet::new();
    for (name, _) in &ports {
        check_port_name(name)?;
        if !seen.insert(name.clone()) {
            bail!("port `{name}` declared twice");
        }
    }
    Ok(ports)
}

/// Every /dev/ttyS*, ttyUSB*, ttyACM* that opens and takes settings (a ttyS without a UART
/// fails with an I/O error).
async fn discover_serial(taken: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/dev") else {
        return found;
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            ["ttyS", "ttyUSB", "ttyACM"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    names.sort();
    for name in names {
        if taken.contains(&name) {
            continue;
        }
        let url = format!("serial:///dev/{name}");
        let Ok(connector) = mo_drivers::connector_for(&url, &mo_drivers::DriverOptions::default())
        else {
            continue;
        };
        let opened = tokio::time::timeout(Duration::from_secs(2), connector.connect()).await;
        if let Ok(Ok(link)) = opened {
            drop(link);
            tracing::info!("discovered serial port {name}");
            found.push((name, url));
        }
    }
    found
}

fn default_pin(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".daemon.pub");
    PathBuf::from(p)
}

fn default_spool_dir(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".spool");
    PathBuf::from(p)
}

fn read_config(args: &Args) -> anyhow::Result<FileConfig> {
    Ok(match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --config {}", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("--config {}", path.display()))?
        }
        None => FileConfig::default(),
    })
}

/// The local access socket: the flag's, the file's, or `tty.sock` in the spool directory (the
/// flag's or file's, or the one beside the key).
fn tty_socket(args: &Args, file: &FileConfig) -> Option<PathBuf> {
    let spool_dir = || {
        args.spool_dir
            .clone()
            .or(file.spool_dir.clone())
            .or_else(|| {
                args.key
                    .clone()
                    .or(file.key.clone())
                    .map(|k| default_spool_dir(&k))
            })
    };
    args.tty_socket
        .clone()
        .or(file.tty_socket.clone())
        .or_else(|| spool_dir().map(|d| tty::default_socket(&d)))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let file = read_config(&args)?;
    let connect = args
        .connect
        .clone()
        .or(file.connect.clone())
        .context("give the daemon to connect to: --connect ssh://AGENT@HOST:PORT")?;
    let target = uplink::Target::parse(&connect)?;
    let key_path = args
        .key
        .clone()
        .or(file.key.clone())
        .context("give the agent's key file: --key FILE")?;
    let pin_path = args
        .host_key
        .clone()
        .or(file.host_key.clone())
        .unwrap_or_else(|| default_pin(&key_path));
    let spool_mib = args.spool_mib.or(file.spool_mib).unwrap_or(16.0);
    if !(spool_mib > 0.0 && spool_mib <= 65536.0) {
        bail!("--spool-mib {spool_mib}: give a size above 0 and at most 65536");
    }
    let spool_bytes = (spool_mib * 1024.0 * 1024.0) as usize;
    let spool_dir = args
        .spool_dir
        .clone()
        .or(file.spool_dir.clone())
        .unwrap_or_else(|| default_spool_dir(&key_path));
    let mut ports = declared_ports(&args, &file)?;
    if args.discover_serial || file.discover_serial {
        let taken: BTreeSet<String> = ports.iter().map(|(n, _)| n.clone()).collect();
        ports.extend(discover_serial(&taken).await);
    }

    if let Some(token) = &args.enroll {
        let key = uplink::load_key(&key_path, true)?;
        let said = uplink::enroll(&target, token, &key, &pin_path).await?;
        println!("{said}");
        if ports.is_empty() {
            return Ok(());
        }
    }
    if ports.is_empty() {
        bail!("no ports to offer: give --port NAME=URL, --discover-serial or [[port]] in --config");
    }
    let key = uplink::load_key(&key_path, false)?;
    let pin = uplink::load_pin(&pin_path)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&spool_dir)
        .with_context(|| format!("cannot create the spool directory {}", spool_dir.display()))?;
    let marks = port_marks(&args, &file, &ports)?;
    let mut held = Vec::new();
    for ((name, url), marks) in ports.iter().zip(marks) {
        let mut port = port::start(name, url, &spool_dir, spool_bytes)?;
        port.marks = marks;
        held.push(port);
    }
    tracing::info!(
        "holding {} port(s): {}",
        held.len(),
        ports
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let held = Arc::new(held);
    if let Some(socket) = tty_socket(&args, &file) {
        let chosen = args.tty_socket.is_some() || file.tty_socket.is_some();
        match tty::listen(&socket, &target.agent, held.clone()) {
            Ok(()) => {}
            Err(e) if chosen => return Err(e),
            // The default place (in the spool directory) may not take a socket (a path too
            // long for one): the agent runs on without local access.
            Err(e) => tracing::warn!("no local access (mo-agent tty): {e:#}"),
        }
    }
    let link = uplink::run(target, key, (pin, pin_path), held);
    tokio::select! {
        r = link => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate() => Ok(()),
    }
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_file_and_the_flags_with_unique_names() {
        let args = Args::parse_from([
            "mo-agent",
            "--port",
            "a=exec:///bin/cat",
            "--port",
            "b = unix:///run/x.sock",
        ]);
        let file: FileConfig =
            toml::from_str("[[port]]\nname = \"c\"\nurl = \"serial:///dev/ttyS0\"\n").unwrap();
        let ports = declared_ports(&args, &file).unwrap();
        assert_eq!(
            ports.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["c", "a", "b"]
        );
        assert_eq!(ports[2].1, "unix:///run/x.sock");
        let twice = Args::parse_from(["mo-agent", "--port", "a=x:", "--port", "a=y:"]);
        let e = declared_ports(&twice, &FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let bad = Args::parse_from(["mo-agent", "--port", "a/b=x:"]);
        assert!(declared_ports(&bad, &FileConfig::default()).is_err());
        let bad = Args::parse_from(["mo-agent", "--port", "nourl"]);
        assert!(declared_ports(&bad, &FileConfig::default()).is_err());
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
    }

    #[test]
    fn water_marks_come_from_the_flags_the_file_and_the_port() {
        let file: FileConfig = toml::from_str(
            "high_mark = 3000\nlow_mark = \"1m\"\n\
             [[port]]\nname = \"a\"\nurl = \"exec:///bin/cat\"\nlow = \"0\"\n\
             [[port]]\nname = \"b\"\nurl = \"exec:///bin/cat\"\nhigh = 0\n",
        )
        .unwrap();
        let args = Args::parse_from(["mo-agent", "--port", "c=exec:///bin/cat"]);
        let ports = declared_ports(&args, &file).unwrap();
        let marks = port_marks(&args, &file, &ports).unwrap();
        let m = |high, low: Option<u64>| {
            Some(WaterMarks {
                high,
                low: low.map(Duration::from_secs),
            })
        };
        assert_eq!(
            marks,
            [
                m(Some(3000), None),
                m(None, Some(60)),
                m(Some(3000), Some(60))
            ]
        );
        // The flags win over the file; nothing set anywhere: the daemon's built-in marks.
        let args = Args::parse_from(["mo-agent", "--low-mark", "10s", "--port", "c=x:"]);
        let marks = port_marks(&args, &file, &ports).unwrap();
        assert_eq!(marks[2], m(Some(3000), Some(10)));
        let bare = Args::parse_from(["mo-agent", "--port", "c=x:"]);
        let none = port_marks(&bare, &FileConfig::default(), &[("c".into(), "x:".into())]);
        assert_eq!(none.unwrap(), [None]);
        let bad = Args::parse_from(["mo-agent", "--low-mark", "soon"]);
        let e = port_marks(&bad, &FileConfig::default(), &[]).unwrap_err();
        assert!(e.to_string().contains("--low-mark: low mark `soon`"), "{e}");
        let bad = Args::parse_from(["mo-agent", "--high-mark=-1"]);
        assert!(port_marks(&bad, &FileConfig::default(), &[]).is_err());
    }

    #[test]
    fn the_tty_socket_comes_from_the_flag_the_file_or_the_spool() {
        let args = Args::parse_from(["mo-agent", "tty", "p0", "--tty-socket", "/run/t.sock"]);
        assert!(matches!(&args.command, Some(Sub::Tty { port }) if port == "p0"));
        let file: FileConfig =
            toml::from_str("tty_socket = \"/run/f.sock\"\nkey = \"/k\"").unwrap();
        assert_eq!(tty_socket(&args, &file), Some(PathBuf::from("/run/t.sock")));
        let bare = Args::parse_from(["mo-agent", "tty", "p0"]);
        assert_eq!(tty_socket(&bare, &file), Some(PathBuf::from("/run/f.sock")));
        let file: FileConfig = toml::from_str("key = \"/etc/k\"").unwrap();
        assert_eq!(
            tty_socket(&bare, &file),
            Some(PathBuf::from("/etc/k.spool/tty.sock"))
        );
        assert_eq!(tty_socket(&bare, &FileConfig::default()), None);
    }

    #[test]
    fn connect_addresses_name_agent_host_and_port() {
        let t = uplink::Target::parse("ssh://cs1@127.0.0.1:2200").unwrap();
        assert_eq!(
            (t.agent.as_str(), t.host.as_str(), t.port),
            ("cs1", "127.0.0.1", 2200)
        );
        assert_eq!(uplink::Target::parse("ssh://cs1@h").unwrap().port, 2222);
        for bad in ["ssh://h:1", "http://a@h", "ssh://a:pw@h", "nonsense"] {
            assert!(uplink::Target::parse(bad).is_err(), "{bad}");
        }
    }
}
