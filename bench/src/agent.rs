//! `mo-bench agent` (issue 15): real `mo-agent` processes carrying flooding ports to a real `mod`.
//!
//! For each size in `--agents` (default: 1 agent, then 100 agents; `--ports` each, default 48) a
//! fresh `mod` starts; every agent enrolls with a one-time token (`mo agent add`'s, made with the
//! same store call) and offers its ports, each a device `agent://AGENT/PORT`. Every port is fed
//! numbered 88-byte lines at `--rate` (default 11,520 B/s: 115,200 baud, 8N1) by a paced writer
//! in this process, through a pty pair (`serial:///dev/pts/N`, as a UART's tty) or, when the
//! kernel has too few ptys, a Unix socket this process listens on (`unix://`). Measured:
//!
//! - CPU of `mod` and of each `mo-agent` from `/proc/PID/stat` (utime + stime) over `--seconds`
//!   after `--warmup`: per port per second, and per agent;
//! - bytes on the agents' TCP connections (`ss -tie` on the agent side of each, matched by
//!   socket inode to the agent processes): the SSH stream (TCP payload) per payload byte, each
//!   direction, and with 52 bytes of IPv4 + TCP header (with timestamps) per segment;
//! - keystroke round trip on a pty that echoes, attached through an agent port and directly
//!   (`serial://` on the daemon), alternating key by key: p50, p99 and the agent's extra p50.
//!
//! Afterwards every line of every port must be in its device's record log once, in order,
//! unchanged; anything lost fails the run.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mo_core::log::{ReadOptions, read};
use mo_core::record::RecordKind;
use mo_drivers::agent::{EnrollToken, host_key_fingerprint};

use crate::common::{free_port, quantile, raise_fd_limit, sorted, start_daemon};
use crate::echo::{EchoConsole, host_key};

/// Bytes per flood line, CR LF included.
const LINE_LEN: usize = 88;
/// IPv4 (20) + TCP (20) + the timestamp option (12) bytes per segment.
const TCP_IP_HEADER: u64 = 52;
/// Agents started at once (each batch connected before the next starts).
const START_BATCH: usize = 10;
/// The kernel's clock ticks per second in `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Options of `mo-bench agent`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Agents dialing the daemon at once; a comma-separated list runs each size in turn, each
    /// with a fresh daemon.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    agents: Vec<usize>,
    /// Ports per agent.
    #[arg(long, default_value_t = 48)]
    ports: usize,
    /// Seconds measured while every port floods (after --warmup).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds every port floods before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bytes per second each port prints (11520: 115,200 baud with 8N1 framing).
    #[arg(long, default_value_t = 11_520)]
    rate: u64,
    /// The paced writer's period in ms: each port gets rate × tick bytes at a time.
    #[arg(long, default_value_t = 50)]
    tick_ms: u64,
    /// What feeds a port: `pty` (a pty pair, the port `serial:///dev/pts/N`), `unix` (a Unix
    /// socket this process listens on) or `auto` (pty pairs when the kernel has enough ptys).
    #[arg(long, default_value = "auto", value_parser = ["auto", "pty", "unix"])]
    port_kind: String,
    /// Keystrokes timed on each echo console (through the agent and direct).
    #[arg(long, default_value_t = 2000)]
    keys: usize,
    /// The `mod` binary (default: next to this program).
    #[arg(long)]
    daemon: Option<PathBuf>,
    /// The `mo-agent` binary (default: next to this program).
    #[arg(long)]
    agent: Option<PathBuf>,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    raise_fd_limit();
    if o.ports == 0 || o.rate == 0 || o.tick_ms == 0 || o.seconds <= 0.0 {
        bail!("--ports, --rate, --tick-ms and --seconds must be above 0");
    }
    let me = std::env::current_exe()?;
    let bins = Bins {
        daemon: o.daemon.clone().unwrap_or_else(|| me.with_file_name("mod")),
        agent: o
            .agent
            .clone()
            .unwrap_or_else(|| me.with_file_name("mo-agent")),
    };
    for agents in &o.agents {
        scenario(&o, &bins, *agents).await?;
    }
    Ok(())
}

struct Bins {
    daemon: PathBuf,
    agent: PathBuf,
}

/// The name of agent `a` and of its port `p`, and the device for it.
fn agent_name(a: usize) -> String {
    format!("a{a:03}")
}
fn port_name(p: usize) -> String {
    format!("p{p:02}")
}
fn device_name(a: usize, p: usize) -> String {
    format!("{}-{}", agent_name(a), port_name(p))
}

/// Where a port's bytes come from.
enum Endpoint {
    /// A pty pair: this process writes the master; the agent opens the slave.
    Pty {
        master: File,
        /// Held open so the pair lives before and between the agent's opens.
        _slave: File,
        path: PathBuf,
    },
    /// A Unix socket the agent connects to.
    Unix {
        listener: tokio::net::UnixListener,
        path: PathBuf,
    },
}

impl Endpoint {
    fn url(&self) -> String {
        match self {
            Endpoint::Pty { path, .. } => format!("serial://{}", path.display()),
            Endpoint::Unix { path, .. } => format!("unix://{}", path.display()),
        }
    }
}

/// A pty pair; the master is non-blocking when `nonblocking`.
fn pty_pair(nonblocking: bool) -> anyhow::Result<(File, File, PathBuf)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let pty = nix::pty::openpty(None, None).context("openpty")?;
    let path = nix::unistd::ttyname(&pty.slave).context("ttyname")?;
    if nonblocking {
        fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    }
    Ok((File::from(pty.master), File::from(pty.slave), path))
}

/// Ptys this process may still open, as far as the kernel's limits say.
fn ptys_available() -> Option<usize> {
    let read = |name: &str| -> Option<usize> {
        std::fs::read_to_string(format!("/proc/sys/kernel/pty/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // Outside the initial devpts instance (a container) `reserve` of them are not ours.
    Some(
        read("max")?
            .saturating_sub(read("reserve").unwrap_or(0))
            .saturating_sub(read("nr")?),
    )
}

/// A pty that echoes what it is sent (a thread copies the master's input back); the slave's path
/// and the held slave. The thread ends when every slave is closed.
fn echo_pty() -> anyhow::Result<(PathBuf, File)> {
    let (mut master, slave, path) = pty_pair(false)?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || master.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    Ok((path, slave))
}

/// Line `n` (from 0) of port `id`: `ID NNNNNNNNNN ` (the number from 1), printable filler that
/// depends on the number, CR LF.
fn flood_line(id: &str, n: u64) -> [u8; LINE_LEN] {
    let mut line = [0u8; LINE_LEN];
    let head = format!("{id} {:010} ", n + 1);
    for (i, b) in line.iter_mut().enumerate() {
        *b = match head.as_bytes().get(i) {
            Some(h) => *h,
            None if i >= LINE_LEN - 2 => {
                if i == LINE_LEN - 2 {
                    b'\r'
                } else {
                    b'\n'
                }
            }
            None => b' ' + ((n + i as u64) % 95) as u8,
        };
    }
    line
}

/// The bytes of port `id`'s flood from byte `from` up to byte `to`, appended to `out`.
fn flood_bytes(id: &str, from: u64, to: u64, out: &mut Vec<u8>) {
    let len = LINE_LEN as u64;
    let mut at = from;
    while at < to {
        let line = flood_line(id, at / len);
        let off = (at % len) as usize;
        let take = (len - at % len).min(to - at) as usize;
        out.extend_from_slice(line.get(off..off + take).unwrap_or_default());
        at += take as u64;
    }
}

/// One port's paced writer.
struct Feed {
    id: String,
    out: Box<dyn std::io::Write + Send>,
    /// Bytes written so far.
    pos: u64,
    buf: Vec<u8>,
}

impl Feed {
    /// Write what is due up to byte `due` that the port takes now (its buffer may be full).
    fn pump(&mut self, due: u64) -> anyhow::Result<()> {
        if self.pos >= due {
            return Ok(());
        }
        self.buf.clear();
        flood_bytes(&self.id, self.pos, due, &mut self.buf);
        match self.out.write(&self.buf) {
            Ok(n) => self.pos += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).with_context(|| format!("writing port {}", self.id)),
        }
        Ok(())
    }
}

/// What one agent's writer did.
struct Written {
    /// Bytes each port got (whole lines).
    ports: Vec<(String, u64)>,
    /// The most any port was behind the clock when the flood's time was up.
    behind: u64,
}

/// Feed `feeds` at `rate` from `start` for `length`, every `tick`; then the rest of the last
/// line, waiting while a port's buffer is full. `written` counts the bytes as they go.
async fn write_ports(
    mut feeds: Vec<Feed>,
    start: Instant,
    length: Duration,
    rate: u64,
    tick: Duration,
    written: Arc<AtomicU64>,
) -> anyhow::Result<Written> {
    let len = LINE_LEN as u64;
    let total = (rate as f64 * length.as_secs_f64() / len as f64).ceil() as u64 * len;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let behind = loop {
        interval.tick().await;
        let t = start.elapsed();
        let due = if t >= length {
            total
        } else {
            ((rate as f64 * t.as_secs_f64()) as u64).min(total)
        };
        for f in &mut feeds {
            f.pump(due)?;
        }
        written.store(feeds.iter().map(|f| f.pos).sum(), Ordering::Relaxed);
        if t >= length {
            break feeds.iter().map(|f| total - f.pos).max().unwrap_or(0);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while feeds.iter().any(|f| f.pos < total) {
        if Instant::now() > deadline {
            bail!("ports still would not take their last lines 60 s after the flood");
        }
        tokio::time::sleep(tick).await;
        for f in &mut feeds {
            f.pump(total)?;
        }
    }
    written.store(feeds.iter().map(|f| f.pos).sum(), Ordering::Relaxed);
    Ok(Written {
        ports: feeds.into_iter().map(|f| (f.id, f.pos)).collect(),
        behind,
    })
}

/// Checks a port's flood as its device's record log holds it, byte by byte as it arrives.
struct FloodCheck {
    id: String,
    pos: u64,
    error: Option<String>,
}

impl FloodCheck {
    fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let mut want = Vec::with_capacity(bytes.len());
        flood_bytes(&self.id, self.pos, self.pos + bytes.len() as u64, &mut want);
        let same = want.iter().zip(bytes).take_while(|(a, b)| a == b).count();
        if same < bytes.len() {
            let at = self.pos + same as u64;
            let found = bytes.get(same..).unwrap_or_default();
            self.error = Some(format!(
                "line {} differs at its byte {} (the lines before it were all there, once, in \
                 order): found {:?}",
                at / LINE_LEN as u64 + 1,
                at % LINE_LEN as u64,
                String::from_utf8_lossy(found.get(..found.len().min(40)).unwrap_or_default())
            ));
            return;
        }
        self.pos += bytes.len() as u64;
    }
}

/// A device's record log, read as it grows.
struct LogWatch {
    dir: PathBuf,
    next_seq: u64,
    link_up: bool,
    /// The latest notice, for error messages.
    last_notice: String,
    check: FloodCheck,
}

impl LogWatch {
    fn new(logs: &Path, device: &str, id: &str) -> LogWatch {
        LogWatch {
            dir: logs.join(device),
            next_seq: 0,
            link_up: false,
            last_notice: String::new(),
            check: FloodCheck {
                id: id.to_owned(),
                pos: 0,
                error: None,
            },
        }
    }

    /// Read the records added since the last call.
    fn poll(&mut self) -> anyhow::Result<()> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        let opts = ReadOptions {
            from_seq: Some(self.next_seq),
            ..ReadOptions::default()
        };
        for r in read(&self.dir, &opts)? {
            let r = r?;
            if r.seq < self.next_seq {
                continue;
            }
            self.next_seq = r.seq + 1;
            match r.kind {
                RecordKind::Output => self.check.feed(&r.bytes),
                RecordKind::Notice => {
                    self.link_up |= r.bytes.starts_with(b"link up");
                    self.last_notice = String::from_utf8_lossy(&r.bytes).into_owned();
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `mo-agent` processes; killed when dropped.
struct Agents {
    children: Vec<(String, Child, PathBuf)>,
}

impl Agents {
    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, c, _)| c.id()).collect()
    }

    /// The last lines of agent `name`'s log, for error messages.
    fn log_tail(&self, name: &str) -> String {
        let Some((_, _, log)) = self.children.iter().find(|(n, _, _)| n == name) else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(12).collect();
        format!(
            "the log of mo-agent {name} ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Fail if an agent exited, with the end of its log.
    fn check_running(&mut self) -> anyhow::Result<()> {
        for (name, child, _) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let name = name.clone();
                bail!(
                    "mo-agent {name} exited ({status}); {}",
                    self.log_tail(&name)
                );
            }
        }
        Ok(())
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What starting an agent needs.
struct Launcher<'a> {
    bin: &'a Path,
    data: &'a mo_store::DataDir,
    store: &'a mo_store::Store,
    ssh_port: u16,
    /// Where keys, spools and the agents' logs go.
    dir: &'a Path,
}

impl Launcher<'_> {
    /// A fresh one-time token for agent `name`, as `mo agent add NAME` makes it.
    fn token(&self, name: &str) -> anyhow::Result<EnrollToken> {
        Ok(EnrollToken {
            secret: self.store.add_agent(name)?,
            host_key: host_key_fingerprint(&self.data.host_key_path())?,
        })
    }

    /// Start agent `name` enrolling with `token`, with `ports` (NAME=URL).
    fn start(
        &self,
        agents: &mut Agents,
        name: &str,
        token: &EnrollToken,
        ports: &[String],
    ) -> anyhow::Result<()> {
        let log = self.dir.join(format!("agent-{name}.log"));
        let out = File::create(&log)?;
        let mut cmd = Command::new(self.bin);
        cmd.arg("--enroll")
            .arg(token.to_string())
            .arg("--connect")
            .arg(format!("ssh://{name}@127.0.0.1:{}", self.ssh_port))
            .arg("--key")
            .arg(self.dir.join(format!("{name}.key")))
            .env(
                "MO_AGENT_LOG",
                std::env::var("MO_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for p in ports {
            cmd.arg("--port").arg(p);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        agents.children.push((name.to_owned(), child, log));
        Ok(())
    }
}

/// Wait until every agent in `names` is connected.
async fn wait_connected(
    store: &mo_store::Store,
    agents: &mut Agents,
    names: &HashSet<String>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let connected = store
            .agents()?
            .into_iter()
            .filter(|a| names.contains(&a.name) && a.connected_ns.is_some())
            .count();
        if connected == names.len() {
            return Ok(());
        }
        agents.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "only {connected} of {} agents connected within {timeout:?}",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Poll the logs until `done` holds for each; `what` names the wait in the error.
/// How often the record logs are read while the ports flood.
const LOG_POLL: Duration = Duration::from_secs(2);

async fn wait_logs(
    watches: &mut [LogWatch],
    agents: &mut Agents,
    timeout: Duration,
    what: &str,
    done: impl Fn(&LogWatch) -> bool,
) -> anyhow::Result<()> {
    let begin = Instant::now();
    let deadline = begin + timeout;
    let mut next_report = begin + Duration::from_secs(10);
    loop {
        if Instant::now() > next_report {
            next_report += Duration::from_secs(10);
            let logged: u64 = watches.iter().map(|w| w.check.pos).sum();
            let left = watches.iter().filter(|w| !done(w)).count();
            eprintln!(
                "  ({:.0} s: {left} device logs still without {what}; {logged} bytes of output \
                 logged in all)",
                begin.elapsed().as_secs_f64()
            );
        }
        let mut left = 0;
        for w in watches.iter_mut().filter(|w| !done(w)) {
            w.poll()?;
            if let Some(e) = &w.check.error {
                bail!("LOST OR DAMAGED: {}: {e}", w.check.id);
            }
            if !done(w) {
                left += 1;
            }
        }
        if left == 0 {
            return Ok(());
        }
        agents.check_running()?;
        if Instant::now() > deadline {
            let late: Vec<String> = watches
                .iter()
                .filter(|w| !done(w))
                .take(5)
                .map(|w| format!("{} (last notice: {:?})", w.check.id, w.last_notice))
                .collect();
            let first_agent = watches
                .iter()
                .find(|w| !done(w))
                .and_then(|w| w.check.id.split('-').next())
                .unwrap_or_default();
            let logged: u64 = watches.iter().map(|w| w.check.pos).sum();
            bail!(
                "{left} of {} device logs are still without {what} after {timeout:?} \
                 ({logged} bytes of output logged in all): {}\n{}",
                watches.len(),
                late.join(", "),
                agents.log_tail(first_agent)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// CPU seconds (user + system) process `pid` has used.
fn process_cpu(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// What a process has open: targets of its `/proc/PID/fd` links.
fn open_files(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect()
}

/// Counters of one TCP connection, from `ss -tie`.
#[derive(Debug, Default, Clone, Copy)]
struct TcpCounters {
    sent: u64,
    received: u64,
    segs_out: u64,
    segs_in: u64,
}

/// The agents' connections to `ssh_port`, by socket inode, as seen from the agents' side.
fn agent_connections(ssh_port: u16, pids: &[u32]) -> anyhow::Result<BTreeMap<u64, TcpCounters>> {
    let inodes: HashSet<u64> = pids
        .iter()
        .flat_map(|pid| open_files(*pid))
        .filter_map(|p| {
            p.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let out = Command::new("ss")
        .args(["-tinHe", "state", "established"])
        .arg(format!("( dport = :{ssh_port} )"))
        .output()
        .context("cannot run `ss` (iproute2) to count the agents' TCP bytes")?;
    if !out.status.success() {
        bail!("ss failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // A socket is a line at the start of the line, its details on indented lines after it.
    let mut sockets: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        if !line.starts_with([' ', '\t']) {
            sockets.push(Vec::new());
        }
        if let Some(s) = sockets.last_mut() {
            s.extend(line.split_whitespace());
        }
    }
    let mut found = BTreeMap::new();
    for tokens in sockets {
        let field = |key: &str| -> u64 {
            tokens
                .iter()
                .find_map(|t| t.strip_prefix(key)?.strip_prefix(':')?.parse().ok())
                .unwrap_or(0)
        };
        let ino = field("ino");
        if inodes.contains(&ino) {
            found.insert(
                ino,
                TcpCounters {
                    sent: field("bytes_sent"),
                    received: field("bytes_received"),
                    segs_out: field("segs_out"),
                    segs_in: field("segs_in"),
                },
            );
        }
    }
    Ok(found)
}

/// One size: `agents` agents with `o.ports` ports each.
async fn scenario(o: &Opts, bins: &Bins, agents: usize) -> anyhow::Result<()> {
    let ports = agents * o.ports;
    let tmp = tempfile::tempdir()?;
    let available = ptys_available();
    let use_pty = match o.port_kind.as_str() {
        "pty" => true,
        "unix" => false,
        _ => available.is_some_and(|n| n >= ports + 64),
    };
    let kind = if use_pty {
        "pty pairs (serial:///dev/pts/N), this process writing the masters".to_owned()
    } else {
        format!(
            "Unix sockets (unix://), this process writing each connection{}",
            if o.port_kind == "unix" {
                String::new()
            } else {
                format!(
                    ": {ports} pty pairs do not fit the kernel's pty limit ({} left)",
                    available.map_or("unknown".into(), |n| n.to_string())
                )
            }
        )
    };
    let chunk = o.rate * o.tick_ms / 1000;
    println!(
        "agent: {agents} agent(s) x {} ports = {ports} ports, each printing {} B/s in {chunk}-byte \
         pieces every {} ms; ports are {kind}",
        o.ports, o.rate, o.tick_ms
    );

    // Every port's endpoint.
    let sockets = tmp.path().join("s");
    std::fs::create_dir_all(&sockets)?;
    let mut endpoints: Vec<Vec<Endpoint>> = Vec::new();
    for a in 0..agents {
        let mut list = Vec::new();
        for p in 0..o.ports {
            list.push(if use_pty {
                let (master, slave, path) = pty_pair(true)?;
                Endpoint::Pty {
                    master,
                    _slave: slave,
                    path,
                }
            } else {
                let path = sockets.join(format!("{}.sock", device_name(a, p)));
                Endpoint::Unix {
                    listener: tokio::net::UnixListener::bind(&path)
                        .with_context(|| format!("cannot listen on {}", path.display()))?,
                    path,
                }
            });
        }
        endpoints.push(list);
    }
    let (direct_pty, _direct_slave) = echo_pty()?;
    let (agent_pty, _agent_slave) = echo_pty()?;

    let data_path = tmp.path().join("data");
    let data = mo_store::DataDir::open(&data_path)?;
    {
        let store = data.open_store()?;
        store.add_user("bench", Some("bench-password"))?;
        store.add_grant(&mo_core::policy::Grant::to_user("bench", "operator", "all"))?;
        for a in 0..agents {
            for p in 0..o.ports {
                store.add_device(&mo_store::Device::new(
                    device_name(a, p),
                    format!("agent://{}/{}", agent_name(a), port_name(p)),
                ))?;
            }
        }
        store.add_device(&mo_store::Device::new(
            "echo-direct",
            format!("serial://{}", direct_pty.display()),
        ))?;
        store.add_device(&mo_store::Device::new("echo-agent", "agent://echo/tty"))?;
    }
    let ssh_port = free_port()?;
    // Every agent dials from 127.0.0.1, at first twice (enrolling, then with its key): the
    // per-address limit (64 by default) must let them all in.
    let limit = (2 * agents + 16).to_string();
    let daemon = start_daemon(
        &bins.daemon,
        &data_path,
        &[
            "--ssh".into(),
            format!("127.0.0.1:{ssh_port}"),
            "--max-connections-per-address".into(),
            limit,
            "--max-connections".into(),
            (2 * agents + 16).max(512).to_string(),
        ],
    )?;
    let daemon_pid = daemon.pid();
    let store = data.open_store()?;
    let launcher = Launcher {
        bin: &bins.agent,
        data: &data,
        store: &store,
        ssh_port,
        dir: tmp.path(),
    };

    let setup = Instant::now();
    let mut procs = Agents {
        children: Vec::new(),
    };
    let mut names = HashSet::new();
    // Every token first (the store's writers do not race the daemon's enrollments), then the
    // agents in batches, each batch connected before the next starts: enrollments and logins
    // at a bounded rate, as console servers coming up over an hour would.
    let tokens: Vec<EnrollToken> = (0..agents)
        .map(|a| launcher.token(&agent_name(a)))
        .collect::<anyhow::Result<_>>()?;
    let timeout = Duration::from_secs(60 + 2 * agents as u64);
    let mut batch = HashSet::new();
    for (a, list) in endpoints.iter().enumerate() {
        let name = agent_name(a);
        let port_args: Vec<String> = list
            .iter()
            .enumerate()
            .map(|(p, e)| format!("{}={}", port_name(p), e.url()))
            .collect();
        launcher.start(&mut procs, &name, &tokens[a], &port_args)?;
        batch.insert(name.clone());
        names.insert(name);
        if batch.len() == START_BATCH || a + 1 == agents {
            wait_connected(&store, &mut procs, &batch, timeout).await?;
            batch.clear();
        }
    }
    wait_connected(&store, &mut procs, &names, timeout).await?;

    // Every port open at the agent before a byte is written.
    let mut feeds: Vec<Vec<Feed>> = Vec::new();
    let agent_pids = procs.pids();
    for (a, list) in endpoints.into_iter().enumerate() {
        let mut agent_feeds = Vec::new();
        for (p, e) in list.into_iter().enumerate() {
            let out: Box<dyn std::io::Write + Send> = match e {
                Endpoint::Pty {
                    master,
                    _slave,
                    path,
                } => {
                    let pid = agent_pids.get(a).copied().unwrap_or(0);
                    let deadline = Instant::now() + timeout;
                    while !open_files(pid).contains(&path) {
                        procs.check_running()?;
                        if Instant::now() > deadline {
                            bail!("agent {} did not open {}", agent_name(a), path.display());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Box::new(PtyOut { master, _slave })
                }
                Endpoint::Unix { listener, path } => {
                    let (stream, _) = tokio::time::timeout(timeout, listener.accept())
                        .await
                        .with_context(|| {
                            format!(
                                "agent {} did not connect to {}",
                                agent_name(a),
                                path.display()
                            )
                        })??;
                    let stream = stream.into_std()?;
                    stream.set_nonblocking(true)?;
                    Box::new(stream)
                }
            };
            agent_feeds.push(Feed {
                id: device_name(a, p),
                out,
                pos: 0,
                buf: Vec::new(),
            });
        }
        feeds.push(agent_feeds);
    }
    let logs = data.logs_dir();
    let mut watches: Vec<LogWatch> = (0..agents)
        .flat_map(|a| (0..o.ports).map(move |p| device_name(a, p)))
        .map(|d| LogWatch::new(&logs, &d, &d))
        .collect();
    wait_logs(&mut watches, &mut procs, timeout, "`link up`", |w| {
        w.link_up
    })
    .await?;
    println!(
        "  set up in {:.1} s: {agents} agent(s) enrolled and connected, {ports} consoles up",
        setup.elapsed().as_secs_f64()
    );

    // The flood.
    let wire0 = agent_connections(ssh_port, &agent_pids)?;
    if wire0.len() != agents {
        bail!(
            "found {} TCP connections of {agents} agent(s) to the daemon",
            wire0.len()
        );
    }
    let length = Duration::from_secs_f64(o.warmup + o.seconds);
    let daemon_before_flood = process_cpu(daemon_pid)?;
    let start = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    let mut counters = Vec::new();
    for agent_feeds in feeds {
        let written = Arc::new(AtomicU64::new(0));
        counters.push(written.clone());
        writers.spawn(write_ports(
            agent_feeds,
            start,
            length,
            o.rate,
            Duration::from_millis(o.tick_ms),
            written,
        ));
    }
    let total_written = || -> u64 { counters.iter().map(|c| c.load(Ordering::Relaxed)).sum() };
    let cpu_all = || -> anyhow::Result<(f64, Vec<f64>)> {
        Ok((
            process_cpu(daemon_pid)?,
            agent_pids
                .iter()
                .map(|p| process_cpu(*p))
                .collect::<anyhow::Result<_>>()?,
        ))
    };
    // The logs are read as they grow (as the drain below does), so that the time from the
    // flood's end until every log is complete is the daemon's lag, not this reader's backlog.
    let read_logs_until = |watches: &mut Vec<LogWatch>, until: Instant| {
        let watches = std::mem::take(watches);
        async move {
            let mut watches = watches;
            while Instant::now() < until {
                for w in watches.iter_mut() {
                    w.poll()?;
                }
                tokio::time::sleep_until(until.min(Instant::now() + LOG_POLL).into()).await;
            }
            anyhow::Ok(watches)
        }
    };
    watches = read_logs_until(&mut watches, start + Duration::from_secs_f64(o.warmup)).await?;
    let (daemon0, agents0) = cpu_all()?;
    let bytes0 = total_written();
    let t0 = Instant::now();
    watches = read_logs_until(&mut watches, start + length).await?;
    let (daemon1, agents1) = cpu_all()?;
    let bytes1 = total_written();
    let window = t0.elapsed().as_secs_f64();
    let mut sent = BTreeMap::new();
    let mut behind = 0;
    while let Some(r) = writers.join_next().await {
        let w = r??;
        behind = behind.max(w.behind);
        sent.extend(w.ports);
    }
    let flood_end = Instant::now();
    let drain_timeout = Duration::from_secs(120 + ports as u64 / 20);
    wait_logs(
        &mut watches,
        &mut procs,
        drain_timeout,
        "every line written",
        |w| w.check.error.is_some() || sent.get(&w.check.id).is_some_and(|n| w.check.pos >= *n),
    )
    .await?;
    let drained = flood_end.elapsed().as_secs_f64();
    let daemon_whole_flood = process_cpu(daemon_pid)? - daemon_before_flood;
    let mut lines = 0;
    for w in &watches {
        let want = sent.get(&w.check.id).copied().unwrap_or(0);
        if w.check.pos != want {
            bail!(
                "LOST OR DAMAGED: {}: the log holds {} bytes, {want} were written",
                w.check.id,
                w.check.pos
            );
        }
        lines += want / LINE_LEN as u64;
    }
    // Let the last acknowledgements cross before the wire is read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wire1 = agent_connections(ssh_port, &agent_pids)?;
    if wire1.keys().ne(wire0.keys()) {
        bail!("an agent reconnected during the flood: its TCP counters started again");
    }
    let mut wire = TcpCounters::default();
    for (ino, end) in &wire1 {
        let begin = wire0.get(ino).copied().unwrap_or_default();
        wire.sent += end.sent - begin.sent;
        wire.received += end.received - begin.received;
        wire.segs_out += end.segs_out - begin.segs_out;
        wire.segs_in += end.segs_in - begin.segs_in;
    }
    let payload: u64 = sent.values().sum();

    let measured = (bytes1 - bytes0) as f64;
    let daemon_cpu = (daemon1 - daemon0) / window;
    let agent_cpu: Vec<f64> = agents1
        .iter()
        .zip(&agents0)
        .map(|(b, a)| (b - a) / window)
        .collect();
    let agent_total: f64 = agent_cpu.iter().sum();
    let agent_max = agent_cpu.iter().copied().fold(0.0, f64::max);
    let per_port = |cpu: f64, n: usize| cpu / n.max(1) as f64 * 1e3;
    println!(
        "  measured {window:.1} s after {:.1} s of warm-up: {:.2} MB of payload ({:.2} MB/s, \
         {:.0} B/s per port)",
        o.warmup,
        measured / 1e6,
        measured / window / 1e6,
        measured / window / ports as f64
    );
    println!(
        "  daemon CPU:  {daemon_cpu:.3} s/s = {:.3} ms per port per second",
        per_port(daemon_cpu, ports)
    );
    // Over the whole flood, the warm-up and the drain included: what every payload byte cost
    // the daemon, whether or not it kept up during the measured window.
    let per_payload_ns = daemon_whole_flood / payload.max(1) as f64 * 1e9;
    println!(
        "  daemon CPU, whole flood until every log was complete: {daemon_whole_flood:.2} s for \
         {:.2} MB = {per_payload_ns:.1} ns per payload byte = {:.3} ms per port per second at \
         {} B/s",
        payload as f64 / 1e6,
        per_payload_ns * o.rate as f64 / 1e6,
        o.rate
    );
    println!(
        "  agent CPU:   {:.3} s/s per agent (mean; max {agent_max:.3}) = {:.3} ms per port per \
         second; all agents {agent_total:.3} s/s",
        agent_total / agents as f64,
        per_port(agent_total, ports)
    );
    let ratio = |n: u64| n as f64 / payload.max(1) as f64;
    let headers = (wire.segs_out + wire.segs_in) * TCP_IP_HEADER;
    println!(
        "  wire (agents' TCP connections, from `ss -tie`, whole flood {payload} payload bytes): \
         {:.3} bytes per payload byte (agent->daemon {:.3}, daemon->agent {:.3}); \
         with IPv4+TCP headers ({} segments x {TCP_IP_HEADER} B, as sent on loopback) {:.3}",
        ratio(wire.sent + wire.received),
        ratio(wire.sent),
        ratio(wire.received),
        wire.segs_out + wire.segs_in,
        ratio(wire.sent + wire.received + headers)
    );
    println!(
        "  writer behind the clock at the end: {behind} bytes on the worst port; every log \
         complete {drained:.1} s after the flood ended"
    );
    println!(
        "  lines checked: {lines} ({:.0} per port), every one in its device's record log once, \
         in order, unchanged",
        lines as f64 / ports as f64
    );

    // Keystroke round trip: an echoing pty through an agent port and attached directly.
    let token = launcher.token("echo")?;
    launcher.start(
        &mut procs,
        "echo",
        &token,
        &[format!("tty=serial://{}", agent_pty.display())],
    )?;
    let echo: HashSet<String> = ["echo".to_owned()].into();
    wait_connected(&store, &mut procs, &echo, timeout).await?;
    let host_key = host_key(&data)?;
    let mut direct =
        EchoConsole::open(ssh_port, &host_key, "bench:echo-direct", "bench-password").await?;
    let mut via_agent =
        EchoConsole::open(ssh_port, &host_key, "bench:echo-agent", "bench-password").await?;
    let mut direct_ms = Vec::with_capacity(o.keys);
    let mut agent_ms = Vec::with_capacity(o.keys);
    for i in 0..o.keys {
        let key = b'a' + (i % 26) as u8;
        direct_ms.push(direct.time_key(key).await?);
        agent_ms.push(via_agent.time_key(key).await?);
    }
    direct.check()?;
    via_agent.check()?;
    direct.close().await;
    via_agent.close().await;
    let (direct_ms, agent_ms) = (sorted(direct_ms), sorted(agent_ms));
    let extra = quantile(&agent_ms, 0.5) - quantile(&direct_ms, 0.5);
    println!(
        "  keystroke round trip (SSH -> mod -> echoing pty -> SSH, {} keys each, alternating, \
         the flood over):",
        o.keys
    );
    for (what, s) in [
        ("direct serial console", &direct_ms),
        ("through an agent port", &agent_ms),
    ] {
        println!(
            "    {what}: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            quantile(s, 0.5),
            quantile(s, 0.99),
            s.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "    the agent's extra p50: {extra:.3} ms   (target < 1 ms: {})",
        if extra < 1.0 { "met" } else { "MISSED" }
    );
    Ok(())
}

/// A pty master written by a port's feed, with its slave held open.
struct PtyOut {
    master: File,
    _slave: File,
}

impl std::io::Write for PtyOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.master.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.master.flush()
    }
}
