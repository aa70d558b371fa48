//! `mo-bench scan`: scanner throughput with 100 patterns on realistic console output (boot logs,
//! kernel messages, service chatter, prompts, ANSI colours), fed in read-sized pieces the way the
//! daemon feeds it. Reports MB/s per core (targets: ≥ 1.5 GB/s on plain text, ≥ 500 MB/s on
//! ANSI-heavy output, ≥ 300 MB/s on the mixed default).

use std::time::Instant;

use anyhow::bail;
use mo_core::scan::{Pattern, PatternSet, ScanConfig, Scanner, Severity};
use nix::sys::resource::{UsageWho, getrusage};

/// Options of `mo-bench scan`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// MB of console output to scan (per thread).
    #[arg(long, default_value_t = 256)]
    size_mb: u64,
    /// Bytes per `feed` call (one read from the device).
    #[arg(long, default_value_t = 4096)]
    chunk: usize,
    /// Scanners running at once, one per thread (each its own device, sharing the pattern set).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The output: `mixed` (boot and syslog lines, some with ANSI colours), `plain` (the same
    /// lines without escape sequences) or `ansi` (every word of every line coloured).
    #[arg(long, default_value = "mixed", value_parser = ["mixed", "plain", "ansi"])]
    text: String,
}

/// Console output as it comes off serial consoles: a boot, then a running system.
const LINES: &[&str] = &[
    "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC",
    "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=4f1c0e4e ro console=ttyS0,115200n8",
    "[    0.004000] x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'",
    "[    0.120512] ACPI: RSDP 0x00000000000F05B0 000024 (v02 BOCHS )",
    "[    1.234567] pci 0000:00:1f.2: [8086:2922] type 00 class 0x010601",
    "[    2.345678] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    "[    2.501122] sd 0:0:0:0: [sda] 976773168 512-byte logical blocks: (500 GB/466 GiB)",
    "[    2.611020] EXT4-fs (sda1): mounted filesystem with ordered data mode. Quota mode: none.",
    "[    3.001234] e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "\x1b[0;32m[  OK  ]\x1b[0m Started \x1b[0;1;39mJournal Service\x1b[0m.",
    "\x1b[0;32m[  OK  ]\x1b[0m Reached target \x1b[0;1;39mLocal File Systems\x1b[0m.",
    "\x1b[0;32m[  OK  ]\x1b[0m Started \x1b[0;1;39mOpenBSD Secure Shell server\x1b[0m.",
    "         Starting \x1b[0;1;39mPostfix Mail Transport Agent\x1b[0m...",
    "Debian GNU/Linux 12 web01 ttyS0",
    "",
    "web01 login: root",
    "Password: ******** accepted",
    "Last login: Sat Nov 21 09:12:44 UTC 2026 on ttyS0",
    "root@web01:~# uptime",
    " 10:00:01 up 12 days,  3:04,  1 user,  load average: 0.08, 0.12, 0.10",
    "root@web01:~# tail -f /var/log/syslog",
    "Nov 22 10:00:01 web01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 51234 ssh2: ED25519 SHA256:abc",
    "Nov 22 10:00:02 web01 CRON[2345]: (root) CMD (run-parts /etc/cron.hourly)",
    "Nov 22 10:00:03 web01 systemd[1]: Started Session 42 of User deploy.",
    "Nov 22 10:00:04 web01 kernel: [1045233.123456] TCP: request_sock_TCP: 443 accepted 8123 connections",
    "Nov 22 10:00:05 web01 nginx[3456]: 10.1.2.3 - - \"GET /healthz HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.28\"",
    "\x1b[32mINFO\x1b[0m worker-7 processed 1532 jobs in 4.21s (363 jobs/s)",
    "\x1b[33mWARN\x1b[0m worker-3 queue depth 812 above soft limit 800",
    "U-Boot 2023.04 (Apr 05 2023 - 10:00:00 +0000)",
    "DRAM:  2 GiB",
    "Autoboot in 0 seconds",
];

/// Lines that patterns should find, mixed in rarely (one per `RARE_EVERY` lines).
const RARE: &[&str] = &[
    "[1045300.000001] Kernel panic - not syncing: Fatal exception in interrupt",
    "[1045300.000002] end_request: I/O error, dev sda, sector 123456",
    "[1045300.000003] Out of memory: Killed process 4242 (java) total-vm:8123456kB",
    "Nov 22 10:00:09 web01 systemd[1]: nginx.service: Failed with result 'exit-code'.",
    "[1045300.000004] e1000e 0000:00:19.0 eth0: NIC Link is Down",
    "Nov 22 10:00:04 web01 kernel: TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
    "Hit any key to stop autoboot:  0",
];
const RARE_EVERY: usize = 5000;

/// 100 patterns such as a site configures: the usual kernel trouble, prompts, per-service
/// failures, per-driver resets and timeouts, hardware alarms.
pub(crate) fn patterns() -> Vec<Pattern> {
    let mut list: Vec<(String, String, Severity)> = [
        (
            "kernel-panic",
            r"Kernel panic - not syncing: (.*)",
            Severity::Critical,
        ),
        ("kernel-oops", r"\b(Oops|BUG): ", Severity::Error),
        (
            "soft-lockup",
            r"watchdog: BUG: soft lockup - CPU#(\d+)",
            Severity::Error,
        ),
        (
            "hard-lockup",
            r"NMI watchdog: Watchdog detected hard LOCKUP",
            Severity::Critical,
        ),
        (
            "rcu-stall",
            r"rcu: INFO: rcu_(sched|preempt) self-detected stall",
            Severity::Error,
        ),
        (
            "hung-task",
            r"INFO: task (\S+):(\d+) blocked for more than (\d+) seconds",
            Severity::Warning,
        ),
        (
            "oom-kill",
            r"Out of memory: Killed process (\d+) \((\S+)\)",
            Severity::Error,
        ),
        ("io-error", r"\bI/O error\b.*dev (\w+)", Severity::Warning),
        (
            "segfault",
            r"(\S+)\[(\d+)\]: segfault at ([0-9a-f]+)",
            Severity::Warning,
        ),
        ("mce", r"mce: \[Hardware Error\]", Severity::Critical),
        ("edac", r"EDAC (MC\d+): (\d+) (CE|UE) ", Severity::Error),
        (
            "thermal",
            r"CPU(\d+): (Core|Package) temperature above threshold",
            Severity::Warning,
        ),
        (
            "ext4-error",
            r"EXT4-fs error \(device (\w+)\)",
            Severity::Error,
        ),
        (
            "xfs-error",
            r"XFS \((\w+)\): (Corruption|metadata I/O error)",
            Severity::Error,
        ),
        (
            "btrfs-error",
            r"BTRFS (error|critical) \(device (\w+)\)",
            Severity::Error,
        ),
        (
            "readonly-remount",
            r"Remounting filesystem read-only",
            Severity::Error,
        ),
        (
            "md-degraded",
            r"md/raid\d*:(\w+): (Disk failure|not enough operational)",
            Severity::Error,
        ),
        (
            "scsi-timeout",
            r"sd \d+:\d+:\d+:\d+: (timing out command|\[\w+\] tag#\d+ FAILED)",
            Severity::Warning,
        ),
        (
            "ata-error",
            r"ata(\d+)(\.\d+)?: (exception Emask|failed command|hard resetting link)",
            Severity::Warning,
        ),
        (
            "nvme-timeout",
            r"nvme nvme(\d+): I/O (\d+) QID (\d+) timeout",
            Severity::Warning,
        ),
        ("link-down", r"(\w+): NIC Link is Down", Severity::Warning),
        (
            "link-flap",
            r"(\w+): link (down|up), .* lpa",
            Severity::Info,
        ),
        (
            "bond-failover",
            r"bond\d+: (making interface|link status definitely down)",
            Severity::Warning,
        ),
        (
            "syn-flood",
            r"Possible SYN flooding on port (\d+)",
            Severity::Notice,
        ),
        (
            "conntrack-full",
            r"nf_conntrack: table full, dropping packet",
            Severity::Warning,
        ),
        (
            "sshd-fail",
            r"sshd\[\d+\]: Failed password for (invalid user )?(\S+) from (\S+)",
            Severity::Notice,
        ),
        (
            "sudo-fail",
            r"sudo: .*authentication failure",
            Severity::Notice,
        ),
        ("login-prompt", r"\blogin: $", Severity::Info),
        ("password-prompt", r"^Password: $", Severity::Info),
        ("uboot-prompt", r"^=> $", Severity::Notice),
        ("bsd-boot-prompt", r"^boot> $", Severity::Notice),
        ("grub-rescue", r"^grub rescue> ", Severity::Error),
        ("initramfs", r"^\(initramfs\) ", Severity::Error),
        (
            "emergency-mode",
            r"You are in emergency mode",
            Severity::Error,
        ),
        (
            "fsck-needed",
            r"UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY",
            Severity::Error,
        ),
        (
            "autoboot-stop",
            r"Hit any key to stop autoboot",
            Severity::Info,
        ),
        (
            "bios-post-error",
            r"(?i)post error|memory test fail",
            Severity::Error,
        ),
        (
            "ipmi-sel",
            r"ipmi.*(Critical|Non-recoverable) (going high|going low)",
            Severity::Critical,
        ),
        (
            "psu-fail",
            r"(?i)power supply \d+ (failure|lost)",
            Severity::Critical,
        ),
        (
            "fan-fail",
            r"(?i)fan \d+ (failure|speed low)",
            Severity::Error,
        ),
    ]
    .into_iter()
    .map(|(n, r, s)| (n.to_owned(), r.to_owned(), s))
    .collect();
    let services = [
        "nginx",
        "apache2",
        "postgresql",
        "mysql",
        "redis-server",
        "memcached",
        "haproxy",
        "keepalived",
        "sshd",
        "cron",
        "rsyslog",
        "chronyd",
        "ntpd",
        "docker",
        "containerd",
        "kubelet",
        "etcd",
        "consul",
        "vault",
        "nomad",
        "prometheus",
        "node-exporter",
        "grafana",
        "postfix",
        "dovecot",
        "bind9",
        "named",
        "dhcpd",
        "slapd",
        "zfs-import-cache",
    ];
    for svc in services {
        list.push((
            format!("svc-{svc}"),
            format!(
                r"{}\.service: (Failed with result '([\w-]+)'|Main process exited, code=(\w+))",
                regex_escape(svc)
            ),
            Severity::Error,
        ));
    }
    let drivers = [
        "e1000e",
        "igb",
        "ixgbe",
        "i40e",
        "ice",
        "mlx5_core",
        "bnxt_en",
        "tg3",
        "r8169",
        "virtio_net",
        "megaraid_sas",
        "mpt3sas",
        "aacraid",
        "hpsa",
        "smartpqi",
        "ahci",
        "nvme",
        "xhci_hcd",
        "ehci-pci",
        "amdgpu",
        "i915",
        "nouveau",
        "iwlwifi",
        "ath10k_pci",
        "qla2xxx",
        "lpfc",
        "be2net",
        "cxgb4",
        "sfc",
        "ena",
    ];
    for drv in drivers {
        list.push((
            format!("drv-{drv}"),
            format!(
                r"\b{} [0-9a-f:.]+:? .*(timeout|reset adapter|firmware error|hang)",
                regex_escape(drv)
            ),
            Severity::Warning,
        ));
    }
    list.truncate(100);
    list.into_iter()
        .map(|(name, regex, severity)| Pattern::new(name, regex, severity, ""))
        .collect()
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// A line as `--text` wants it: `mixed` as is, `plain` without its escape sequences, `ansi` with
/// every word in a colour (a bold or coloured `ls`, a TUI).
fn styled(line: &str, text: &str) -> Vec<u8> {
    match text {
        "plain" => mo_core::scan::AnsiStripper::new().strip(line.as_bytes()),
        "ansi" => {
            let plain = mo_core::scan::AnsiStripper::new().strip(line.as_bytes());
            let mut out = Vec::with_capacity(plain.len() * 3);
            for (n, word) in plain.split(|&b| b == b' ').enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(format!("\x1b[{};{}m", n % 2, 31 + n % 7).as_bytes());
                out.extend_from_slice(word);
                out.extend_from_slice(b"\x1b[0m");
            }
            out
        }
        _ => line.as_bytes().to_vec(),
    }
}

/// About `size` bytes of console output in the style `text` (`mixed`, `plain`, `ansi`), CR LF
/// line ends, prompts without a newline now and then.
fn console_text(size: usize, text: &str) -> Vec<u8> {
    let lines: Vec<Vec<u8>> = LINES.iter().map(|l| styled(l, text)).collect();
    let rare: Vec<Vec<u8>> = RARE.iter().map(|l| styled(l, text)).collect();
    let mut out = Vec::with_capacity(size + 256);
    let mut i = 0usize;
    while out.len() < size {
        if i % RARE_EVERY == RARE_EVERY - 1 {
            out.extend_from_slice(&rare[(i / RARE_EVERY) % rare.len()]);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&lines[i % lines.len()]);
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out
}

fn cpu_seconds() -> f64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

pub fn run(o: Opts) -> anyhow::Result<()> {
    let patterns = patterns();
    if patterns.len() != 100 {
        bail!("expected 100 patterns, built {}", patterns.len());
    }
    let set = PatternSet::new(&patterns)?;
    // Output of 1 MiB, fed round and round: the scanner sees a steady stream, the cache stays warm
    // as it would for a busy console (a larger buffer changes nothing but memory).
    let text = console_text(1 << 20, &o.text);
    let total = o.size_mb * 1_000_000;
    let chunk = o.chunk.max(1);
    let escapes = text.iter().filter(|&&b| b == 0x1b).count();
    println!(
        "scan: {} patterns, {} MB of {} console output ({:.1} escape sequences per 100 bytes) per \
         thread in {chunk}-byte reads, {} thread(s)",
        set.len(),
        o.size_mb,
        o.text,
        escapes as f64 * 100.0 / text.len().max(1) as f64,
        o.threads
    );
    match set.prefilter_literals() {
        Some(n) => println!("  prefilter: {n} literals; lines with none are not matched further"),
        None => println!("  no prefilter: some pattern has no literal every match contains"),
    }
    // Warm up (page in, DFA caches) and check that the patterns find what they should.
    let mut warm = Scanner::with_set("warm", set.clone(), ScanConfig::default());
    let found = warm.feed(&text, Instant::now());
    let names: std::collections::BTreeSet<&str> =
        found.iter().map(|m| m.pattern.as_str()).collect();
    println!(
        "  warm-up: {} matches in 1 MiB ({})",
        found.len(),
        names.into_iter().collect::<Vec<_>>().join(", ")
    );
    if found.is_empty() {
        bail!("the patterns found nothing in the sample output");
    }

    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let results: Vec<(u64, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..o.threads.max(1))
            .map(|n| {
                let set = set.clone();
                let text = &text;
                scope.spawn(move || {
                    let mut scanner =
                        Scanner::with_set(format!("web{n:02}"), set, ScanConfig::default());
                    let mut fed = 0u64;
                    let mut matches = 0usize;
                    while fed < total {
                        for piece in text.chunks(chunk) {
                            matches += scanner.feed(piece, Instant::now()).len();
                            fed += piece.len() as u64;
                        }
                    }
                    (fed, matches)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let bytes: u64 = results.iter().map(|r| r.0).sum();
    let matches: usize = results.iter().map(|r| r.1).sum();
    let mb = bytes as f64 / 1e6;
    println!("  scanned {mb:.0} MB in {wall:.2}s wall, {cpu:.2}s CPU; {matches} matches");
    println!(
        "  throughput: {:.0} MB/s per core (CPU time), {:.0} MB/s total (wall); target >= {} MB/s per core",
        mb / cpu.max(1e-9),
        mb / wall.max(1e-9),
        match o.text.as_str() {
            "plain" => 1500,
            "ansi" => 500,
            _ => 300,
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_compile_and_find_the_rare_lines() -> anyhow::Result<()> {
        let patterns = patterns();
        assert_eq!(patterns.len(), 100);
        let set = PatternSet::new(&patterns)?;
        let mut scanner = Scanner::with_set("t", set, ScanConfig::default());
        let text = console_text(RARE_EVERY * RARE.len() * 120, "mixed");
        let found = scanner.feed(&text, Instant::now());
        for want in [
            "kernel-panic",
            "io-error",
            "oom-kill",
            "svc-nginx",
            "link-down",
        ] {
            assert!(found.iter().any(|m| m.pattern == want), "{want} not found");
        }
        Ok(())
    }
}
