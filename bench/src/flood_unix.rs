//! `mo-bench flood-unix` and `mo-bench flood-pty`: N consoles, each flooding numbered 88-byte
//! lines from a separate producer process (its CPU is not counted), read twice in one run:
//!
//! 1. by a **bare reader** — read into a buffer, append the raw bytes to one file per console —
//!    the machine's ceiling;
//! 2. by **mo's path**, wired as the daemon wires a console (`mo-daemon/src/registry.rs`): a
//!    [`Console`] whose consumers are its record log ([`ReopeningLog`]: records, timestamps, CRC,
//!    hash chain, `--fsync` as the daemon's default) and the event scanner's bounded feed,
//!    watched by an [`EventService`] with the default patterns (or 100).
//!
//! `flood-unix` carries the lines over Unix sockets (one producer process serves them all, a
//! `unix://` link each); `flood-pty` over ptys (one producer process per console on its pty's
//! slave side, an `exec://` link each: see [`crate::flood_pty`]).
//!
//! For each: MB per CPU-second of this process (getrusage RUSAGE_SELF: the producers, even when
//! they are its children, are not counted), wall time until every log is complete, peak RSS
//! (VmHWM, reset before each). Afterwards every line of every log is checked present once and in
//! order (the logs must hold exactly the bytes sent); a failing check fails the run.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use mo_core::console::{Console, ConsoleConfig, Consumers};
use mo_core::event::{EventService, NoSink, Rules};
use mo_core::log::{Fsync, LogOptions, ReadOptions, ReopeningLog, read, verify};
use mo_core::record::{Chunk, RecordKind, RecordSink as _, now_ns};
use mo_core::scan::{PatternBook, PatternConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{
    cpu_seconds, perf_window, raise_fd_limit, rss_bytes, status_bytes, stop_consoles,
};
use crate::flood_pty::{BarePty, PtyFlood};

/// Bytes per flood line, CR LF included.
pub const LINE_LEN: usize = 88;
/// Digits of the line number at the start of each line.
const NUM_LEN: usize = 10;
/// Bytes the bare reader reads at once.
const BARE_READ: usize = 64 * 1024;

/// Options of `mo-bench flood-unix` and `mo-bench flood-pty`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Consoles flooding at once.
    #[arg(long, default_value_t = 200)]
    consoles: usize,
    /// Numbered 88-byte lines each console sends.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) lines: u64,
    /// Patterns mo's scanner evaluates: `default` (the daemon's built-in set), `100` (the
    /// hundred patterns of `mo-bench scan`) or `none` (no scanner at all: the log path alone,
    /// to split mo's cost between logging and scanning).
    #[arg(long, value_enum, default_value_t = Patterns::Default)]
    patterns: Patterns,
    /// When mo's record logs are forced to disk, as `mod --fsync` (the daemon's default).
    #[arg(long, default_value = "interval=1s")]
    fsync: Fsync,
    /// Where the logs go (a temporary directory by default; removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Pacing (`--rate`, `--chunk-min`, `--chunk-max`).
    #[command(flatten)]
    pub(crate) pace: Pace,
}

/// The patterns of `--patterns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Patterns {
    /// The daemon's built-in set.
    Default,
    /// The hundred patterns of `mo-bench scan`.
    #[value(name = "100")]
    Hundred,
    /// No scanner at all.
    None,
}

/// What carries the flood from the producers to the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// Unix sockets: `unix://` consoles, one producer process serving every socket.
    Unix,
    /// Ptys: `exec://` consoles, one producer process per console on its pty.
    Pty,
}

/// Options of the producer process `mo-bench flood-unix` starts (not for use by hand).
#[derive(Debug, clap::Args)]
pub struct ProducerOpts {
    /// Directory holding `bare/` and `mo/`, one socket per console in each.
    #[arg(long)]
    sockets: PathBuf,
    #[arg(long)]
    consoles: usize,
    #[arg(long)]
    lines: u64,
    #[command(flatten)]
    pace: Pace,
}

/// How the producer sends: all at once, or paced in chunks.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Pace {
    /// Bytes per second each console sends (0: as fast as the reader takes them). With a rate,
    /// the producer writes chunks of `--chunk-min`..=`--chunk-max` bytes, each its own write,
    /// as a serial port's FIFO delivers them (issue 17's small-record case: 11520 = 115,200
    /// baud 8N1, 1,000 consoles, chunks of 16–64 bytes); the report adds records per
    /// CPU-second, CPU per record and the share of one core.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Smallest chunk with `--rate`.
    #[arg(long, default_value_t = 16)]
    chunk_min: usize,
    /// Largest chunk with `--rate`.
    #[arg(long, default_value_t = 64)]
    chunk_max: usize,
}

impl Pace {
    /// The options that give a producer this pacing.
    pub(crate) fn args(self) -> Vec<String> {
        vec![
            "--rate".to_owned(),
            self.rate.to_string(),
            "--chunk-min".to_owned(),
            self.chunk_min.to_string(),
            "--chunk-max".to_owned(),
            self.chunk_max.to_string(),
        ]
    }

    /// Send `text` on `stream`: in one write, or chunk by chunk at the rate (chunk sizes from
    /// a generator seeded by `seed`, so consoles differ).
    pub(crate) async fn send(
        self,
        stream: &mut (impl tokio::io::AsyncWrite + Unpin),
        text: &[u8],
        seed: u64,
    ) -> std::io::Result<()> {
        if self.rate == 0 {
            return stream.write_all(text).await;
        }
        let start = tokio::time::Instant::now();
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let span = self.chunk_max.saturating_sub(self.chunk_min) as u64 + 1;
        let mut sent = 0usize;
        while sent < text.len() {
            // xorshift64: the next chunk's size.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (self.chunk_min.max(1) + (state % span) as usize).min(text.len() - sent);
            let due = start + Duration::from_secs_f64(sent as f64 / self.rate as f64);
            tokio::time::sleep_until(due).await;
            stream
                .write_all(text.get(sent..sent + len).unwrap_or_default())
                .await?;
            sent += len;
        }
        Ok(())
    }
}

/// The `lines` numbered lines every console sends: `NNNNNNNNNN ` then 75 printable bytes (a
/// rotation that depends on the number) then CR LF.
pub fn flood_text(lines: u64) -> Vec<u8> {
    let text_len = LINE_LEN - NUM_LEN - 3;
    let mut out = Vec::with_capacity(lines as usize * LINE_LEN);
    for n in 1..=lines {
        out.extend_from_slice(format!("{n:0NUM_LEN$} ").as_bytes());
        let offset = (n - 1) % 95;
        out.extend((0..text_len as u64).map(|i| b' ' + ((offset + i) % 95) as u8));
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn socket_path(sockets: &Path, phase: &str, i: usize) -> PathBuf {
    sockets.join(phase).join(format!("c{i:05}.sock"))
}

/// The producer: listens on every socket and sends the flood to each client. A `bare` socket
/// serves any number of clients one after the other, closing each connection after the flood;
/// a `mo` socket serves its first client only and holds the connection open (a console would
/// reconnect) until the client goes. Prints `ready` once all listen; exits when its stdin closes.
pub async fn produce(o: ProducerOpts) -> anyhow::Result<()> {
    let text: Arc<[u8]> = flood_text(o.lines).into();
    let pace = o.pace;
    for (phase, hold) in [
        ("bare-warm", false),
        ("bare", false),
        ("mo-warm", true),
        ("mo", true),
    ] {
        std::fs::create_dir_all(o.sockets.join(phase))?;
        for i in 0..o.consoles {
            let path = socket_path(&o.sockets, phase, i);
            let listener = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            let text = text.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    if pace.send(&mut stream, &text, i as u64).await.is_err() {
                        continue;
                    }
                    if hold {
                        let mut sink = [0u8; 1024];
                        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                        return;
                    }
                }
            });
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
    })
    .await?;
    Ok(())
}

/// The producer process; killed if still running when dropped.
struct Producer {
    child: Child,
}

impl Producer {
    fn start(sockets: &Path, o: &Opts) -> anyhow::Result<Producer> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("flood-unix-producer")
            .arg("--sockets")
            .arg(sockets)
            .args([
                "--consoles",
                &o.consoles.to_string(),
                "--lines",
                &o.lines.to_string(),
            ])
            .args(o.pace.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the producer process")?;
        let stdout = child.stdout.take().context("producer stdout")?;
        let producer = Producer { child };
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("the producer process did not start (it said {line:?})");
        }
        Ok(producer)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one reader measured.
struct Figures {
    mb: f64,
    cpu: f64,
    wall: f64,
    peak_rss: u64,
    /// Resident memory when the clock started (what the process held before this arm: the peak
    /// less this is what the arm added).
    start_rss: u64,
    /// Of `start_rss`, what was file-backed (the program's code and libraries, mapped files).
    start_file: u64,
    /// Reads (bare reader) or output records (mo) the bytes came in.
    records: u64,
}

impl Figures {
    fn per_cpu_second(&self) -> f64 {
        self.mb / self.cpu.max(1e-9)
    }
}

/// Where the readers get each console's flood.
enum Source<'a> {
    /// The producer process's sockets in this directory.
    Unix(&'a Path),
    /// A producer on a pty per console.
    Pty(&'a PtyFlood),
}

impl Source<'_> {
    /// The address of console `i` in mo's run `phase`.
    fn address(&self, phase: &str, i: usize) -> String {
        match self {
            Source::Unix(sockets) => format!("unix://{}", socket_path(sockets, phase, i).display()),
            Source::Pty(pty) => pty.address(i),
        }
    }

    /// Console `i`'s stream for the bare reader's run `phase`.
    async fn open_bare(&self, phase: &str, i: usize) -> anyhow::Result<BareStream> {
        Ok(match self {
            Source::Unix(sockets) => {
                let path = socket_path(sockets, phase, i);
                BareStream::Unix(
                    tokio::net::UnixStream::connect(&path)
                        .await
                        .with_context(|| format!("cannot connect to {}", path.display()))?,
                )
            }
            Source::Pty(pty) => BareStream::Pty(pty.spawn_bare(i)?),
        })
    }
}

/// What the bare reader reads one console from.
enum BareStream {
    Unix(tokio::net::UnixStream),
    Pty(BarePty),
}

impl BareStream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BareStream::Unix(s) => s.read(buf).await,
            BareStream::Pty(p) => p.read(buf).await,
        }
    }

    /// After the end of the stream: reap the producer (ptys).
    async fn finish(self) -> anyhow::Result<()> {
        match self {
            BareStream::Unix(_) => Ok(()),
            BareStream::Pty(p) => p.finish().await,
        }
    }
}

/// Run `flood-unix` (`carrier` Unix) or `flood-pty` (`carrier` Pty).
pub async fn run(o: Opts, carrier: Carrier) -> anyhow::Result<()> {
    raise_fd_limit();
    if o.consoles == 0 || o.lines == 0 {
        bail!("--consoles and --lines must be at least 1");
    }
    let tmp = tempfile::tempdir()?;
    let base = o.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    // Socket paths must stay short (108 bytes): always in a fresh temporary directory.
    let sockets = tempfile::tempdir()?;
    let expected = flood_text(o.lines);
    let mb_sent = expected.len() as f64 * o.consoles as f64 / 1e6;
    let (name, consoles, producers) = match carrier {
        Carrier::Unix => (
            "flood-unix",
            "unix-socket",
            "a producer process (its CPU not counted)",
        ),
        Carrier::Pty => (
            "flood-pty",
            "exec:// pty",
            "a producer process on each pty, which it sets raw (their CPU not counted)",
        ),
    };
    println!(
        "{name}: {} {consoles} consoles, {} lines of {LINE_LEN} bytes each ({mb_sent:.1} MB in \
         all) from {producers}",
        o.consoles, o.lines
    );
    if o.pace.rate > 0 {
        if o.pace.chunk_min == 0 || o.pace.chunk_max < o.pace.chunk_min {
            bail!("--chunk-min must be at least 1 and --chunk-max at least --chunk-min");
        }
        println!(
            "  paced: {} bytes per second per console in chunks of {}..={} bytes, each its own \
             write ({:.1} s of output per console)",
            o.pace.rate,
            o.pace.chunk_min,
            o.pace.chunk_max,
            expected.len() as f64 / o.pace.rate as f64
        );
    }
    let pty = PtyFlood::new(o.lines, o.pace)?;
    let (_producer, source) = match carrier {
        Carrier::Unix => (
            Some(Producer::start(sockets.path(), &o)?),
            Source::Unix(sockets.path()),
        ),
        Carrier::Pty => (None, Source::Pty(&pty)),
    };

    let bare_dir = base.join("bare");
    // The first flood in a process costs more than later ones (memory, page cache): a warm-up
    // run of the bare reader, not counted, keeps that out of the comparison.
    // Its files are emptied, not removed: new files created right after as many were deleted
    // send ext4's inode allocator past every recently deleted inode (`recently_deleted`), a
    // cost that grew with the number of files and fell on the measured run.
    let warm_bare = base.join("bare-warm");
    std::fs::create_dir_all(&warm_bare)?;
    bare_reader(&o, &source, "bare-warm", &warm_bare).await?;
    empty_files(&warm_bare)?;
    std::fs::create_dir_all(&bare_dir)?;
    let bare = bare_reader(&o, &source, "bare", &bare_dir).await?;
    let mut problems = Vec::new();
    for i in 0..o.consoles {
        let path = bare_dir.join(format!("c{i:05}.log"));
        let mut check = Check::new(&expected);
        let mut file = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            check.feed(buf.get(..n).unwrap_or_default());
        }
        if let Err(e) = check.finish() {
            problems.push(format!("bare reader, console {i}: {e}"));
        }
    }
    report("bare reader (raw bytes appended to files)", &bare, None);

    // mo's path gets the same warm-up as the bare reader: measured first, it wrote into page
    // cache the VM had not backed yet and its page-cache copies cost 6 times the bare reader's
    // per byte.
    let warm_mo = base.join("mo-warm");
    mo_path(&o, &source, "mo-warm", &warm_mo).await?;
    empty_files(&warm_mo)?;
    let mo_dir = base.join("mo");
    let (mut mo, skipped) = mo_path(&o, &source, "mo", &mo_dir).await?;
    for i in 0..o.consoles {
        let log = mo_dir.join(format!("c{i:05}"));
        match check_log(&log, &expected) {
            Ok(records) => mo.records += records,
            Err(e) => problems.push(format!("mo, console {i}: {e}")),
        }
    }
    report(
        &format!(
            "mo (record logs, --fsync {}, {})",
            o.fsync,
            match o.patterns {
                Patterns::None => "no scanner",
                Patterns::Default => "scanner with default patterns",
                Patterns::Hundred => "scanner with 100 patterns",
            }
        ),
        &mo,
        Some(&bare),
    );
    if o.pace.rate > 0 {
        println!(
            "  scanner skipped {skipped} bytes (fell behind; the logs have them); targets (1,000 \
             consoles at 11520 B/s, 16-64-byte chunks): <= 2 µs of CPU per record, <= 40 % of \
             one core"
        );
    } else if carrier == Carrier::Pty {
        println!(
            "  scanner skipped {skipped} bytes (fell behind; the logs have them); target: mo >= \
             90 % of the bare pty reader"
        );
    } else {
        println!(
            "  scanner skipped {skipped} bytes (fell behind; the logs have them); targets: mo >= \
             70 % of the bare reader with the default patterns, >= 50 % with 100"
        );
    }
    if o.dir.is_none() {
        for d in [&warm_bare, &bare_dir, &warm_mo, &mo_dir] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    if let Some(first) = problems.first() {
        for p in problems.iter().take(20) {
            eprintln!("  LOST OR DAMAGED: {p}");
        }
        bail!(
            "{} logs failed the line check (the first: {first})",
            problems.len()
        );
    }
    println!(
        "  lines checked: {} per console in both runs, each once and in order",
        o.lines
    );
    Ok(())
}

fn report(what: &str, f: &Figures, bare: Option<&Figures>) {
    println!("  {what}:");
    println!(
        "    {:>7.0} MB per CPU-second{}   ({:.1} MB, {:.2} CPU-s)",
        f.per_cpu_second(),
        bare.map_or(String::new(), |b| format!(
            " = {:.0} % of the bare reader",
            100.0 * f.per_cpu_second() / b.per_cpu_second().max(1e-9)
        )),
        f.mb,
        f.cpu
    );
    println!(
        "    {:>7.2} s wall until every log is complete, peak RSS {:.1} MiB ({:.1} MiB when the \
         clock started, {:.1} of it file-backed: the program's code)",
        f.wall,
        f.peak_rss as f64 / f64::from(1 << 20),
        f.start_rss as f64 / f64::from(1 << 20),
        f.start_file as f64 / f64::from(1 << 20)
    );
    if f.records > 0 {
        println!(
            "    {} records ({:.1} bytes each): {:.0} records per CPU-second = {:.2} µs of CPU per \
             record; {:.1} % of one core over the wall time",
            f.records,
            f.mb * 1e6 / f.records as f64,
            f.records as f64 / f.cpu.max(1e-9),
            f.cpu * 1e6 / f.records as f64,
            100.0 * f.cpu / f.wall.max(1e-9)
        );
    }
}

/// Reset this process's peak RSS (VmHWM), so the next reading is this phase's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since the last reset, in bytes (VmHWM).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Empty every file under `dir` (its page cache freed for the next run; the files stay).
fn empty_files(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            empty_files(&path)?;
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(0))
                .with_context(|| format!("cannot empty {}", path.display()))?;
        }
    }
    Ok(())
}

/// The bare reader: one task per socket or pty reading into a buffer and appending to a file,
/// until the producer closes the connection or exits.
async fn bare_reader(
    o: &Opts,
    source: &Source<'_>,
    phase: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    // The files exist before the clock starts, as the record logs' directories do in mo's run
    // (a daemon opens its logs when its consoles start, not when a flood begins).
    let mut files = Vec::new();
    for i in 0..o.consoles {
        let file = dir.join(format!("c{i:05}.log"));
        files.push(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .with_context(|| format!("cannot create {}", file.display()))?,
        );
    }
    // What earlier runs freed goes back first: the peak is then this run's.
    mo_core::memory::trim();
    reset_peak_rss();
    let start_rss = rss_bytes();
    let start_file = status_bytes("self", "RssFile:");
    // A profile (`MO_BENCH_PERF_CTL`, `MO_BENCH_PERF_ARM=bare`) holds the measured run only.
    let profiled = phase == "bare";
    if profiled {
        perf_window("bare", true);
    }
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut out) in files.into_iter().enumerate() {
        let mut stream = source.open_bare(phase, i).await?;
        tasks.spawn(async move {
            let mut buf = vec![0u8; BARE_READ];
            let mut total = 0u64;
            let mut reads = 0u64;
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                out.write_all(buf.get(..n).unwrap_or_default())?;
                total += n as u64;
                reads += 1;
            }
            stream.finish().await?;
            anyhow::Ok((total, reads))
        });
    }
    let mut bytes = 0u64;
    let mut records = 0u64;
    while let Some(r) = tasks.join_next().await {
        let (b, n) = r??;
        bytes += b;
        records += n;
    }
    let cpu = cpu_seconds() - cpu0;
    if profiled {
        perf_window("bare", false);
    }
    Ok(Figures {
        mb: bytes as f64 / 1e6,
        cpu,
        wall: wall0.elapsed().as_secs_f64(),
        peak_rss: peak_rss(),
        start_rss,
        start_file,
        records,
    })
}

/// mo's path: consoles on `unix://` or `exec://` links with record logs and the event scanner,
/// wired as the daemon's registry does. Returns the figures and the bytes the scanners skipped.
async fn mo_path(
    o: &Opts,
    source: &Source<'_>,
    phase: &str,
    dir: &Path,
) -> anyhow::Result<(Figures, u64)> {
    let book = match o.patterns {
        Patterns::Hundred => {
            let configs: Vec<PatternConfig> = crate::scan::patterns()
                .into_iter()
                .map(|p| PatternConfig::new(&p.name, &p.regex, p.severity.as_str()))
                .collect();
            PatternBook::from_config(&configs)?
        }
        Patterns::Default | Patterns::None => PatternBook::from_config(&[])?,
    };
    let log_opts = LogOptions {
        fsync: o.fsync,
        ..LogOptions::default()
    };
    let expected_bytes = (o.lines as usize * LINE_LEN) as u64;
    // The logs are opened before the clock starts, as the bare reader's files are created: their
    // directories made, and their first segments too (a log creates its segment with its first
    // record, so one notice is written and synced). A daemon pays that once per console and
    // 64 MiB segment, not per flood; inside the clock it cost mo 10-15 % of its CPU here, most
    // of it ext4 looking for a free inode among the warm-up run's deleted files.
    let mut writers = Vec::new();
    for i in 0..o.consoles {
        let name = format!("c{i:05}");
        let (mut writer, _) = ReopeningLog::open(&dir.join(&name), log_opts.clone());
        if let Some(e) = writer.open_error() {
            bail!("{name}: the record log cannot be opened: {e}");
        }
        let opened = Chunk {
            seq: writer.next_seq(),
            time_ns: now_ns(),
            kind: RecordKind::Notice,
            user: Arc::from(""),
            offset: 0,
            bytes: Bytes::from_static(b"mo-bench: log opened before the clock starts"),
        };
        writer
            .append(&opened)
            .and_then(|()| writer.sync())
            .with_context(|| format!("{name}: the record log's first record"))?;
        writers.push((name, writer));
    }
    // What earlier runs freed goes back first: the peak is then this run's.
    mo_core::memory::trim();
    reset_peak_rss();
    let start_rss = rss_bytes();
    let start_file = status_bytes("self", "RssFile:");
    // A profile (`MO_BENCH_PERF_CTL`) holds the measured run only, not its warm-up.
    let profiled = phase == "mo";
    if profiled {
        perf_window("mo", true);
    }
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let events = EventService::start(Rules::default(), book, Arc::new(NoSink), 1);
    let mut consoles = Vec::new();
    let mut skipped = Vec::new();
    for (i, (name, writer)) in writers.into_iter().enumerate() {
        let url = source.address(phase, i);
        let connector = mo_drivers::connector_for(&url, &mo_drivers::DriverOptions::default())?;
        // As Registry::try_start and the daemon's on-start hook: log + bounded scanner feed.
        let consumers = Consumers::new().log(Box::new(writer));
        if o.patterns == Patterns::None {
            consoles.push(Console::spawn_with(
                ConsoleConfig::new(name),
                connector,
                consumers,
            ));
            continue;
        }
        let (scanner, feed) = EventService::scanner_consumer();
        skipped.push(feed.skipped_counter());
        let console = Console::spawn_with(
            ConsoleConfig::new(name),
            connector,
            consumers.bounded(scanner),
        );
        events.watch(&console, feed);
        consoles.push(console);
    }
    // Complete when each console has given its log the whole flood (its output offset, read
    // without asking the console; the logs' content is checked after the clock).
    let deadline =
        Instant::now() + Duration::from_secs(60 + expected_bytes * o.consoles as u64 / 5_000_000);
    let mut done = vec![false; consoles.len()];
    loop {
        for (c, done) in consoles.iter().zip(done.iter_mut()) {
            if !*done {
                *done = c.output_offset() >= expected_bytes;
            }
        }
        let finished = done.iter().filter(|d| **d).count();
        if finished == consoles.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {finished} of {} consoles got their whole flood",
                consoles.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = wall0.elapsed().as_secs_f64();
    // Stop every actor and wait until each has ended (its final log sync done).
    stop_consoles(&consoles).await?;
    let cpu = cpu_seconds() - cpu0;
    if profiled {
        perf_window("mo", false);
    }
    let peak = peak_rss();
    drop(events);
    let skipped = skipped.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    Ok((
        Figures {
            mb: (expected_bytes * o.consoles as u64) as f64 / 1e6,
            cpu,
            wall,
            peak_rss: peak,
            start_rss,
            start_file,
            records: 0,
        },
        skipped,
    ))
}

/// Checks a console's record log: it verifies, its records are numbered without a gap, and its
/// output is exactly the flood. Returns how many output records hold it.
pub(crate) fn check_log(log: &Path, expected: &[u8]) -> anyhow::Result<u64> {
    let report = verify(log)?;
    if !report.is_ok() {
        bail!("verify: {report}");
    }
    let mut check = Check::new(expected);
    let mut next = 1u64;
    let mut outputs = 0u64;
    for r in read(log, &ReadOptions::default())? {
        let r = r?;
        if r.seq != next {
            bail!("record {next} missing (the next is {})", r.seq);
        }
        next = r.seq + 1;
        if r.kind == RecordKind::Output {
            check.feed(&r.bytes);
            outputs += 1;
        }
    }
    check.finish().map_err(anyhow::Error::msg)?;
    Ok(outputs)
}

/// A byte-for-byte comparison of what a log holds with the flood, naming the first line that
/// is lost, repeated or garbled.
struct Check<'a> {
    expected: &'a [u8],
    pos: usize,
    error: Option<String>,
}

impl<'a> Check<'a> {
    fn new(expected: &'a [u8]) -> Self {
        Check {
            expected,
            pos: 0,
            error: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let want = self.expected.get(self.pos..).unwrap_or_default();
        let same = want.iter().zip(bytes).take_while(|(a, b)| a == b).count();
        if same < bytes.len() {
            let at = self.pos + same;
            let line = at / LINE_LEN + 1;
            let found = bytes.get(same..).unwrap_or_default();
            let found =
                String::from_utf8_lossy(found.get(..found.len().min(40)).unwrap_or_default());
            self.error = Some(if at >= self.expected.len() {
                format!(
                    "more than the {} lines sent: then {found:?}",
                    self.expected.len() / LINE_LEN
                )
            } else {
                format!(
                    "line {line} differs at its byte {}: found {found:?} (lines before it were all there, once, in order)",
                    at % LINE_LEN
                )
            });
            return;
        }
        self.pos += bytes.len();
    }

    fn finish(self) -> Result<(), String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.pos < self.expected.len() {
            return Err(format!(
                "the log ends in line {} of {}: the rest is lost",
                self.pos / LINE_LEN + 1,
                self.expected.len() / LINE_LEN
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_88_bytes_of_plain_text() {
        let text = flood_text(200);
        assert_eq!(text.len(), 200 * LINE_LEN);
        for (n, line) in text.chunks(LINE_LEN).enumerate() {
            assert_eq!(&line[..NUM_LEN + 1], format!("{:010} ", n + 1).as_bytes());
            assert!(line.ends_with(b"\r\n"));
            assert!(
                line[..LINE_LEN - 2]
                    .iter()
                    .all(|b| (0x20..0x7f).contains(b))
            );
        }
    }

    #[test]
    fn the_check_passes_the_whole_flood_however_split_and_names_the_first_fault() {
        let text = flood_text(300);
        for piece in [1, 87, 88, 89, 4096, text.len()] {
            let mut c = Check::new(&text);
            text.chunks(piece).for_each(|p| c.feed(p));
            assert_eq!(c.finish(), Ok(()), "pieces of {piece}");
        }
        let mut lost = text.clone();
        lost.drain(41 * LINE_LEN..42 * LINE_LEN);
        let mut c = Check::new(&text);
        c.feed(&lost);
        let e = c.finish().unwrap_err();
        assert!(e.contains("line 42 differs at its byte 9"), "{e}");
        let mut c = Check::new(&text);
        c.feed(&text[..text.len() - 1]);
        assert!(c.finish().unwrap_err().contains("ends in line 300 of 300"));
        let mut c = Check::new(&text);
        c.feed(&text);
        c.feed(b"x");
        assert!(c.finish().unwrap_err().contains("more than the 300 lines"));
    }
}
