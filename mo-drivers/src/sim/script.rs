//! The texts the simulated machine prints by itself — firmware POST, boot menu, kernel log, systemd,
//! shutdown and kernel panic — and the [`Script`] player that prints them line by line with delays.
//!
//! Texts are static tables; a line is rendered only when the reader wants it, so a booting machine
//! holds no more than one line of text. `{host}`, `{mac}`, `{serial}` and `{pid}` in a line are
//! replaced by the device's values.

use std::io::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use super::{BootSpeed, Device};

/// How a line is printed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// The text, then `\r\n`.
    Plain,
    /// The text as it is (it carries its own `\r` / `\r\n`).
    Raw,
    /// A kernel log line: `[    1.234567] ` (this many microseconds into the stage's clock), the
    /// text, then `\r\n`.
    Kernel(u32),
}

/// One line of a text, with the pause before it.
#[derive(Debug)]
pub(super) struct Line {
    delay_ms: u16,
    kind: Kind,
    text: &'static str,
}

const fn p(delay_ms: u16, text: &'static str) -> Line {
    Line {
        delay_ms,
        kind: Kind::Plain,
        text,
    }
}

const fn r(delay_ms: u16, text: &'static str) -> Line {
    Line {
        delay_ms,
        kind: Kind::Raw,
        text,
    }
}

/// A kernel line; its delay is half the time since the previous kernel line of the stage.
const fn k(ts_us: u32, text: &'static str) -> Line {
    Line {
        delay_ms: 0,
        kind: Kind::Kernel(ts_us),
        text,
    }
}

/// A part of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// systemd stopping services, then `reboot: Restarting system`.
    Shutdown,
    /// The firmware's power-on self test.
    Post,
    /// The GRUB menu with its countdown.
    Grub,
    /// The kernel log; the machine's uptime starts here.
    Kernel,
    /// systemd starting services, and the getty banner.
    Systemd,
    /// A kernel panic.
    Panic,
}

impl Stage {
    fn lines(self) -> &'static [Line] {
        match self {
            Stage::Shutdown => SHUTDOWN,
            Stage::Post => POST,
            Stage::Grub => GRUB,
            Stage::Kernel => KERNEL,
            Stage::Systemd => SYSTEMD,
            Stage::Panic => PANIC,
        }
    }
}

/// Power on: firmware, boot loader, kernel, services.
pub(super) const POWER_ON: &[Stage] = &[Stage::Post, Stage::Grub, Stage::Kernel, Stage::Systemd];
/// `reboot` from the shell.
pub(super) const REBOOT: &[Stage] = &[
    Stage::Shutdown,
    Stage::Post,
    Stage::Grub,
    Stage::Kernel,
    Stage::Systemd,
];
/// `boot` from the monitor: the firmware is already up.
pub(super) const MONITOR_BOOT: &[Stage] = &[Stage::Grub, Stage::Kernel, Stage::Systemd];
/// The `panic` command.
pub(super) const KERNEL_PANIC: &[Stage] = &[Stage::Panic];

/// What the machine does when a script has been printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Show the login prompt.
    Login,
    /// Hang (after a panic): only BREAK or a new connection helps.
    Hung,
}

/// What [`Script::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ScriptStep {
    /// A line was appended to the output.
    Rendered,
    /// The next line is due at this moment.
    Wait(Instant),
    /// The script is over.
    Done(Then),
}

/// A script being printed.
#[derive(Debug)]
pub(super) struct Script {
    stages: &'static [Stage],
    stage: usize,
    line: usize,
    /// When the next line is due (computed when the previous one was taken).
    due: Option<Instant>,
    /// `boot=fast`: scaled delays not yet slept, in microseconds.
    debt_us: u32,
    /// Timestamp of the previous kernel line of this stage.
    prev_ts: u32,
    /// Microseconds of uptime where this stage's kernel clock starts.
    base_us: u64,
    then: Then,
}

impl Script {
    /// A script of these stages, then `then`.
    pub(super) fn new(stages: &'static [Stage], then: Then) -> Self {
        Script {
            stages,
            stage: 0,
            line: 0,
            due: None,
            debt_us: 0,
            prev_ts: 0,
            base_us: 0,
            then,
        }
    }

    /// Render the next line into `out` if it is due. `boot_at` is the moment the machine's kernel
    /// started; a [`Stage::Kernel`] resets it.
    pub(super) fn step(
        &mut self,
        now: Instant,
        speed: BootSpeed,
        dev: &Device,
        boot_at: &mut Instant,
        out: &mut Vec<u8>,
    ) -> ScriptStep {
        let (stage, line) = loop {
            let Some(&stage) = self.stages.get(self.stage) else {
                return ScriptStep::Done(self.then);
            };
            match stage.lines().get(self.line) {
                Some(line) => break (stage, line),
                None => {
                    self.stage += 1;
                    self.line = 0;
                    self.prev_ts = 0;
                }
            }
        };
        let due = match self.due {
            Some(due) => due,
            None => {
                let delay_us = match line.kind {
                    Kind::Kernel(ts) => ts.saturating_sub(self.prev_ts) / 2,
                    Kind::Plain | Kind::Raw => u32::from(line.delay_ms) * 1000,
                };
                let wait = self.scale(delay_us, speed);
                let due = now + wait;
                self.due = Some(due);
                due
            }
        };
        if now < due {
            return ScriptStep::Wait(due);
        }
        self.due = None;
        if self.line == 0 {
            match stage {
                Stage::Kernel => *boot_at = now,
                Stage::Shutdown | Stage::Panic => {
                    let up = now.saturating_duration_since(*boot_at).as_micros();
                    self.base_us = u64::try_from(up).unwrap_or(u64::MAX);
                }
                Stage::Post | Stage::Grub | Stage::Systemd => {}
            }
        }
        match line.kind {
            Kind::Plain => {
                expand(out, line.text, dev);
                out.extend_from_slice(b"\r\n");
            }
            Kind::Raw => expand(out, line.text, dev),
            Kind::Kernel(ts) => {
                self.prev_ts = ts;
                let us = if stage == Stage::Kernel {
                    // Each machine's clock runs a little differently.
                    u64::from(ts) * u64::from(dev.speed_permille()) / 1000
                } else {
                    self.base_us.saturating_add(u64::from(ts))
                };
                kernel_timestamp(out, us);
                expand(out, line.text, dev);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.line += 1;
        ScriptStep::Rendered
    }

    /// The pause before a line of `delay_us` at this boot speed.
    fn scale(&mut self, delay_us: u32, speed: BootSpeed) -> Duration {
        match speed {
            BootSpeed::Normal => Duration::from_micros(u64::from(delay_us)),
            BootSpeed::Fast => {
                // A thousand times faster; sleep only once a whole millisecond has gathered, so a
                // fast boot takes a few timer ticks, not one per line.
                self.debt_us = self.debt_us.saturating_add(delay_us / 1000);
                if self.debt_us >= 1000 {
                    let wait = Duration::from_micros(u64::from(self.debt_us));
                    self.debt_us = 0;
                    wait
                } else {
                    Duration::ZERO
                }
            }
            BootSpeed::None => Duration::ZERO,
        }
    }
}

/// Append `[    1.234567] ` for this many microseconds.
pub(super) fn kernel_timestamp(out: &mut Vec<u8>, us: u64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "[{:5}.{:06}] ", us / 1_000_000, us % 1_000_000);
}

/// Append `text` with `{host}`, `{mac}`, `{serial}` and `{pid}` replaced.
pub(super) fn expand(out: &mut Vec<u8>, text: &str, dev: &Device) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..open]);
        let after = &rest[open..];
        let (key, len) = ["{host}", "{mac}", "{serial}", "{pid}"]
            .iter()
            .find(|key| after.starts_with(**key))
            .map_or(("", 1), |key| (*key, key.len()));
        match key {
            "{host}" => out.extend_from_slice(dev.name.as_bytes()),
            "{mac}" => {
                let m = dev.mac();
                let _ = write!(
                    out,
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                );
            }
            "{serial}" => {
                let _ = write!(out, "SIM{:08X}", dev.derived(2) as u32);
            }
            "{pid}" => {
                let _ = write!(out, "{}", 1000 + dev.derived(3) % 30000);
            }
            _ => out.push(b'{'),
        }
        rest = &after[len..];
    }
    out.extend_from_slice(rest.as_bytes());
}

static POST: &[Line] = &[
    p(80, ""),
    p(0, "SimBIOS 2.17.1  (C) 2024 mo simulated systems"),
    p(0, "Board: SIM-1 rev B   Serial: {serial}"),
    p(60, ""),
    p(0, "CPU: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz, 4 cores"),
    r(60, "Memory Test:  1048576K"),
    r(80, "\rMemory Test:  4194304K"),
    r(80, "\rMemory Test:  8388608K OK\r\n"),
    p(40, ""),
    p(0, "Detecting SATA devices..."),
    p(60, "  SATA port 0: SIMDISK 64G              ATA  64.0 GB"),
    p(20, "  SATA port 1: None"),
    p(20, "Network boot ROM: PXE 2.1 Build 083   MAC {mac}"),
    p(0, ""),
    p(0, "Press DEL to enter SETUP, F12 for the boot menu"),
    p(80, "Booting from Hard Disk..."),
];

static GRUB: &[Line] = &[
    p(100, ""),
    p(
        0,
        "                             GNU GRUB  version 2.06-13+deb12u1",
    ),
    p(0, ""),
    p(
        0,
        " +----------------------------------------------------------------------------+",
    ),
    p(
        0,
        " |*Debian GNU/Linux                                                           |",
    ),
    p(
        0,
        " | Advanced options for Debian GNU/Linux                                      |",
    ),
    p(
        0,
        " | Memory test (memtest86+x64.bin)                                            |",
    ),
    p(
        0,
        " +----------------------------------------------------------------------------+",
    ),
    p(0, ""),
    p(
        0,
        "      Use the ^ and v keys to select which entry is highlighted.",
    ),
    p(
        0,
        "      Press enter to boot the selected OS, `e' to edit the commands",
    ),
    p(0, "      before booting or `c' for a command-line."),
    r(
        0,
        "   The highlighted entry will be executed automatically in 3s. ",
    ),
    r(
        250,
        "\r   The highlighted entry will be executed automatically in 2s. ",
    ),
    r(
        250,
        "\r   The highlighted entry will be executed automatically in 1s. ",
    ),
    r(
        250,
        "\r   The highlighted entry will be executed automatically in 0s. \r\n",
    ),
    p(40, "Loading Linux 6.1.0-13-amd64 ..."),
    p(60, "Loading initial ramdisk ..."),
];

static KERNEL: &[Line] = &[
    k(
        0,
        "Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) \
         12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 \
         (2023-09-29)",
    ),
    k(
        0,
        "Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro \
         console=ttyS0,115200n8",
    ),
    k(0, "BIOS-provided physical RAM map:"),
    k(
        0,
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
    ),
    k(
        0,
        "BIOS-e820: [mem 0x0000000000100000-0x00000000bffdffff] usable",
    ),
    k(
        0,
        "BIOS-e820: [mem 0x0000000100000000-0x000000023fffffff] usable",
    ),
    k(0, "NX (Execute Disable) protection: active"),
    k(0, "SMBIOS 2.8 present."),
    k(
        0,
        "DMI: mo Simulated Machine SIM-1/SIM-1, BIOS 2.17.1 01/01/2024",
    ),
    k(0, "tsc: Fast TSC calibration using PIT"),
    k(0, "tsc: Detected 2399.998 MHz processor"),
    k(
        4_012,
        "Memory: 8123456K/8388088K available (14336K kernel code, 2512K rwdata, 9304K rodata, \
         2800K init, 17380K bss, 264372K reserved, 0K cma-reserved)",
    ),
    k(12_345, "Console: colour dummy device 80x25"),
    k(12_890, "printk: console [ttyS0] enabled"),
    k(
        104_512,
        "Calibrating delay loop (skipped), value calculated using timer frequency.. 4799.99 \
         BogoMIPS (lpj=9599996)",
    ),
    k(
        108_761,
        "smpboot: CPU0: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz (family: 0x6, model: 0x4f, \
         stepping: 0x1)",
    ),
    k(120_033, "smp: Bringing up secondary CPUs ..."),
    k(121_877, "x86: Booting SMP configuration:"),
    k(121_880, ".... node  #0, CPUs:      #1 #2 #3"),
    k(130_301, "smp: Brought up 1 node, 4 CPUs"),
    k(131_122, "devtmpfs: initialized"),
    k(152_004, "PCI: Using configuration type 1 for base access"),
    k(201_337, "ACPI: Interpreter enabled"),
    k(
        250_011,
        "pci 0000:00:00.0: [8086:1237] type 00 class 0x060000",
    ),
    k(
        390_553,
        "Serial: 8250/16550 driver, 4 ports, IRQ sharing enabled",
    ),
    k(
        391_004,
        "00:04: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
    ),
    k(
        502_344,
        "Freeing unused kernel image (initmem) memory: 2800K",
    ),
    k(
        502_390,
        "Write protecting the kernel read-only data: 26624k",
    ),
    k(510_221, "Run /init as init process"),
    k(
        798_113,
        "e1000e 0000:00:19.0 eth0: (PCI Express:2.5GT/s:Width x1) {mac}",
    ),
    k(812_003, "e1000e 0000:00:19.0 enp0s25: renamed from eth0"),
    k(
        905_114,
        "ata1: SATA link up 6.0 Gbps (SStatus 133 SControl 300)",
    ),
    k(
        906_223,
        "scsi 0:0:0:0: Direct-Access     ATA      SIMDISK 64G      2.5+ PQ: 0 ANSI: 5",
    ),
    k(
        907_001,
        "sd 0:0:0:0: [sda] 134217728 512-byte logical blocks: (68.7 GB/64.0 GiB)",
    ),
    k(907_120, " sda: sda1 sda2 < sda5 >"),
    k(
        1_201_444,
        "EXT4-fs (sda1): mounted filesystem with ordered data mode. Quota mode: none.",
    ),
    k(
        1_402_552,
        "systemd[1]: systemd 252.17-1~deb12u1 running in system mode (+PAM +AUDIT +SELINUX \
         +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS)",
    ),
    k(1_402_700, "systemd[1]: Detected virtualization kvm."),
    k(1_402_744, "systemd[1]: Detected architecture x86-64."),
    k(1_410_036, "systemd[1]: Hostname set to <{host}>."),
];

static SYSTEMD: &[Line] = &[
    p(40, ""),
    p(0, "Welcome to Debian GNU/Linux 12 (bookworm)!"),
    p(0, ""),
    p(
        40,
        "[  OK  ] Created slice system-getty.slice - Slice /system/getty.",
    ),
    p(
        40,
        "[  OK  ] Created slice system-serial\\x2dgetty.slice - Slice /system/serial-getty.",
    ),
    p(
        40,
        "[  OK  ] Started systemd-journald.service - Journal Service.",
    ),
    p(
        40,
        "[  OK  ] Finished systemd-remount-fs.service - Remount Root and Kernel File Systems.",
    ),
    p(
        40,
        "[  OK  ] Started systemd-udevd.service - Rule-based Manager for Device Events and Files.",
    ),
    p(
        40,
        "[  OK  ] Reached target local-fs.target - Local File Systems.",
    ),
    p(
        40,
        "[  OK  ] Started systemd-networkd.service - Network Configuration.",
    ),
    p(40, "[  OK  ] Reached target network.target - Network."),
    p(
        40,
        "[  OK  ] Started cron.service - Regular background program processing daemon.",
    ),
    p(
        40,
        "[  OK  ] Started ssh.service - OpenBSD Secure Shell server.",
    ),
    p(
        40,
        "[  OK  ] Started serial-getty@ttyS0.service - Serial Getty on ttyS0.",
    ),
    p(40, "[  OK  ] Reached target getty.target - Login Prompts."),
    p(
        40,
        "[  OK  ] Reached target multi-user.target - Multi-User System.",
    ),
    p(
        20,
        "         Starting systemd-update-utmp-runlevel.service - Record Runlevel Change in UTMP...",
    ),
    p(
        40,
        "[  OK  ] Finished systemd-update-utmp-runlevel.service - Record Runlevel Change in UTMP.",
    ),
    p(60, ""),
    p(0, "Debian GNU/Linux 12 {host} ttyS0"),
    p(0, ""),
];

static SHUTDOWN: &[Line] = &[
    p(
        0,
        "         Stopping user@1000.service - User Manager for UID 1000...",
    ),
    p(
        60,
        "[  OK  ] Stopped target multi-user.target - Multi-User System.",
    ),
    p(
        40,
        "[  OK  ] Stopped cron.service - Regular background program processing daemon.",
    ),
    p(
        40,
        "[  OK  ] Stopped ssh.service - OpenBSD Secure Shell server.",
    ),
    p(
        40,
        "[  OK  ] Stopped serial-getty@ttyS0.service - Serial Getty on ttyS0.",
    ),
    p(
        40,
        "[  OK  ] Stopped systemd-networkd.service - Network Configuration.",
    ),
    p(
        40,
        "[  OK  ] Reached target shutdown.target - System Shutdown.",
    ),
    p(
        40,
        "[  OK  ] Finished systemd-reboot.service - System Reboot.",
    ),
    p(40, "[  OK  ] Reached target reboot.target - System Reboot."),
    k(180_000, "reboot: Restarting system"),
];

static PANIC: &[Line] = &[
    k(0, "sysrq: Trigger a crash"),
    k(9, "Kernel panic - not syncing: sysrq triggered crash"),
    k(
        52,
        "CPU: 2 PID: {pid} Comm: sh Not tainted 6.1.0-13-amd64 #1  Debian 6.1.55-1",
    ),
    k(
        61,
        "Hardware name: mo Simulated Machine SIM-1/SIM-1, BIOS 2.17.1 01/01/2024",
    ),
    k(75, "Call Trace:"),
    k(75, " <TASK>"),
    k(77, " dump_stack_lvl+0x44/0x5c"),
    k(80, " panic+0x118/0x2ed"),
    k(84, " sysrq_handle_crash+0x16/0x20"),
    k(86, " __handle_sysrq.cold+0x43/0x11b"),
    k(90, " write_sysrq_trigger+0x24/0x40"),
    k(93, " proc_reg_write+0x55/0xa0"),
    k(96, " vfs_write+0xcb/0x3f0"),
    k(99, " ksys_write+0x6b/0xf0"),
    k(103, " do_syscall_64+0x58/0xc0"),
    k(106, " ? exit_to_user_mode_prepare+0x40/0x1e0"),
    k(110, " entry_SYSCALL_64_after_hwframe+0x64/0xce"),
    k(114, "RIP: 0033:0x7f3c2b6f1f33"),
    k(
        118,
        "Code: 8b 15 b1 ee 0c 00 f7 d8 64 89 02 48 c7 c0 ff ff ff ff eb b7 0f 1f 00 64 8b 04 25 18 \
         00 00 00 85 c0 75 14 b8 01 00 00 00 0f 05 <48> 3d 00 f0 ff ff 77 55 c3 0f 1f 40 00 48 83",
    ),
    k(
        122,
        "RSP: 002b:00007ffd4c0d1a18 EFLAGS: 00000246 ORIG_RAX: 0000000000000001",
    ),
    k(
        125,
        "RAX: ffffffffffffffda RBX: 0000000000000002 RCX: 00007f3c2b6f1f33",
    ),
    k(
        128,
        "RDX: 0000000000000002 RSI: 000055d0e4a1c2a0 RDI: 0000000000000001",
    ),
    k(
        131,
        "RBP: 000055d0e4a1c2a0 R08: 0000000000000000 R09: 0000000000000000",
    ),
    k(
        134,
        "R10: 0000000000000000 R11: 0000000000000246 R12: 0000000000000002",
    ),
    k(
        137,
        "R13: 00007f3c2b7d3760 R14: 0000000000000002 R15: 00007f3c2b7cea00",
    ),
    k(140, " </TASK>"),
    k(
        150,
        "Kernel Offset: 0x1e000000 from 0xffffffff81000000 (relocation range: \
         0xffffffff80000000-0xffffffffbfffffff)",
    ),
    k(
        160,
        "---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
    ),
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::sim::SimOptions;

    fn device() -> Device {
        Device::new("web01", SimOptions::default())
    }

    #[test]
    fn expand_replaces_known_keys_and_keeps_other_braces() {
        let dev = device();
        let mut out = Vec::new();
        expand(&mut out, "<{host}> {mac} {x} {", &dev);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("<web01> 52:54:00:"), "{text}");
        assert!(text.ends_with(" {x} {"), "{text}");
    }

    #[test]
    fn kernel_timestamps_are_formatted_like_dmesg() {
        let mut out = Vec::new();
        kernel_timestamp(&mut out, 0);
        kernel_timestamp(&mut out, 1_402_552);
        assert_eq!(out, b"[    0.000000] [    1.402552] ");
    }

    #[test]
    fn fast_boot_sleeps_a_few_times_only() {
        let dev = device();
        let start = Instant::now();
        let mut now = start;
        let mut boot_at = start;
        let mut script = Script::new(POWER_ON, Then::Login);
        let mut out = Vec::new();
        let mut waits = 0;
        let mut lines = 0;
        loop {
            match script.step(now, BootSpeed::Fast, &dev, &mut boot_at, &mut out) {
                ScriptStep::Rendered => lines += 1,
                ScriptStep::Wait(due) => {
                    waits += 1;
                    now = due;
                }
                ScriptStep::Done(then) => {
                    assert_eq!(then, Then::Login);
                    break;
                }
            }
        }
        assert!(lines > 80, "{lines} lines");
        assert!((1..=5).contains(&waits), "{waits} waits");
        let total = now - start;
        assert!(total < Duration::from_millis(10), "{total:?}");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("[    0.000000] Linux version"));
        assert!(text.contains("Hostname set to <web01>."));
    }

    #[test]
    fn normal_boot_takes_two_to_three_seconds() {
        let dev = device();
        let start = Instant::now();
        let mut now = start;
        let mut boot_at = start;
        let mut script = Script::new(POWER_ON, Then::Login);
        let mut out = Vec::new();
        loop {
            match script.step(now, BootSpeed::Normal, &dev, &mut boot_at, &mut out) {
                ScriptStep::Rendered => {}
                ScriptStep::Wait(due) => now = due,
                ScriptStep::Done(_) => break,
            }
        }
        let total = now - start;
        assert!(
            total >= Duration::from_secs(2) && total <= Duration::from_secs(3),
            "{total:?}"
        );
        // The kernel clock started at the kernel stage.
        assert!(boot_at > start);
    }
}
