//! `mo-bench search`: `mo log search` over a large record log with 3 lines of context, against
//! `grep -C 3` over the same log rendered to a text file, in the same run.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use mo_core::log::{LogOptions, LogWriter, SearchOptions, ShowOptions, search, show};
use mo_core::record::{Chunk, RecordKind, RecordSink};

/// Options of `mo-bench search`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Size of the record log to search, in MB of payload.
    #[arg(long, default_value_t = 1024)]
    size_mb: u64,
    /// Lines of context (both -B and -A).
    #[arg(long, default_value_t = 3)]
    context: usize,
    /// Where the log and the rendered text go (a temporary directory by default; removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Realistic console lines: boot messages, service chatter, prompts.
const LINES: &[&str] = &[
    "[    2.345678] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    "[  OK  ] Started Journal Service.",
    "[  OK  ] Reached target Local File Systems.",
    "Nov 22 10:00:01 web01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 51234",
    "Nov 22 10:00:02 web01 CRON[2345]: (root) CMD (run-parts /etc/cron.hourly)",
    "\x1b[32mINFO\x1b[0m worker-7 processed 1532 jobs in 4.21s (363 jobs/s)",
    "eth0: link up, 1000 Mbps, full-duplex, lpa 0xC5E1",
    "web01 login: ",
    "root@web01:~# tail -f /var/log/syslog",
    "kernel: EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)",
];
const NEEDLE: &str = "Kernel panic - not syncing: Fatal exception in interrupt";
/// One needle line per this many bytes of log.
const NEEDLE_EVERY: u64 = 8 * 1024 * 1024;
const PATTERN: &str = r"Kernel panic - not syncing";

pub async fn run(o: Opts) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(o)).await?
}

fn run_blocking(o: Opts) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let base = o.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let log = base.join("logs/web01");
    let target = o.size_mb * 1_000_000;
    println!(
        "search: {} MB record log, /{PATTERN}/ with {} lines of context",
        o.size_mb, o.context
    );

    let t = Instant::now();
    let (mut w, _) = LogWriter::open(&log, LogOptions::default())?;
    let mut written = 0u64;
    let mut needles = 0u64;
    let mut next_needle = NEEDLE_EVERY / 2;
    let mut time_ns = 1_795_341_600_000_000_000u64;
    let mut i = 0usize;
    let mut rec = Vec::with_capacity(8192);
    while written < target {
        rec.clear();
        // Records of ~4 KiB, cut mid-line the way reads from a serial port are.
        while rec.len() < 4000 {
            if written + rec.len() as u64 >= next_needle {
                rec.extend_from_slice(NEEDLE.as_bytes());
                rec.extend_from_slice(b"\r\n");
                needles += 1;
                next_needle += NEEDLE_EVERY;
            }
            rec.extend_from_slice(LINES[i % LINES.len()].as_bytes());
            rec.extend_from_slice(b"\r\n");
            i += 1;
        }
        let cut = 3000 + (i * 37) % 1000;
        for part in [&rec[..cut], &rec[cut..]] {
            time_ns += 1_000_000;
            let seq = w.next_seq();
            w.append(&Chunk {
                seq,
                time_ns,
                kind: RecordKind::Output,
                user: "".into(),
                offset: 0,
                bytes: part.to_vec().into(),
            })?;
        }
        written += rec.len() as u64;
    }
    drop(w);
    println!(
        "  wrote {:.0} MB in {:.1}s ({needles} needle lines)",
        written as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let text = base.join("web01.txt");
    let t = Instant::now();
    {
        let file = std::fs::File::create(&text).context("create rendered text")?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        show(&log, &ShowOptions::default(), &mut file)?;
    }
    let text_len = std::fs::metadata(&text)?.len();
    println!(
        "  rendered to {} ({:.0} MB) in {:.1}s",
        text.display(),
        text_len as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let opts = SearchOptions {
        pattern: PATTERN.into(),
        before: o.context,
        after: o.context,
        ..SearchOptions::default()
    };
    let mut ours = Vec::new();
    let t = Instant::now();
    let stats = search(&log, &opts, &mut ours)?;
    let ours_s = t.elapsed().as_secs_f64();
    println!(
        "  mo log search: {ours_s:.2}s ({:.0} MB/s of log; {} records, {} lines, {} matches; target < 3 s)",
        written as f64 / 1e6 / ours_s,
        stats.records,
        stats.lines,
        stats.matches
    );

    let t = Instant::now();
    let grep = Command::new("grep")
        .arg("-C")
        .arg(o.context.to_string())
        .arg("-e")
        .arg(PATTERN)
        .arg(&text)
        .env("LC_ALL", "C")
        .output()
        .context("run grep")?;
    let grep_s = t.elapsed().as_secs_f64();
    if !grep.status.success() {
        bail!("grep failed: {}", grep.status);
    }
    println!(
        "  grep -C {}:     {grep_s:.2}s over the rendered text ({:.1}x mo's time)",
        o.context,
        grep_s / ours_s
    );
    if grep.stdout != ours {
        bail!(
            "results differ: mo printed {} bytes, grep {} bytes",
            ours.len(),
            grep.stdout.len()
        );
    }
    println!("  identical output ({} bytes)", ours.len());
    if stats.matches != needles {
        bail!(
            "mo log search found {} matching lines, the log holds {needles} needle lines",
            stats.matches
        );
    }
    Ok(())
}
