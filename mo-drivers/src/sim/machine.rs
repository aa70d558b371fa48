//! The simulated machine as a sans-I/O state machine: bytes typed in ([`Machine::input`]), bytes
//! printed out on demand ([`Machine::produce`]), BREAK ([`Machine::brk`]). Time is passed in; the
//! machine has no clock, no task and no timer of its own.
//!
//! Output waits in a small buffer (echo, prompts, one rendered line of a script) or is generated
//! straight into the reader's buffer (flood). Input is taken only while that buffer is below
//! [`OUT_HIGH`], so a machine nobody reads holds a bounded amount of memory, and typing at it
//! eventually blocks like a serial line under flow control.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::flood::{Flood, FloodStep};
use super::script::{self, Script, ScriptStep, Stage, Then};
use super::{BootSpeed, Device};

/// Input is taken only while less than this much output is waiting.
pub(super) const OUT_HIGH: usize = 1024;
/// Longest input line; further characters ring the bell.
pub(super) const MAX_LINE: usize = 512;

/// What [`Machine::produce`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Produced {
    /// This many bytes were written (0 only for an empty buffer).
    Bytes(usize),
    /// Nothing to send before this moment (unless input or BREAK arrives).
    WaitUntil(Instant),
    /// Nothing to send until input or BREAK arrives.
    Idle,
}

/// What the machine is doing.
#[derive(Debug)]
pub(super) enum Mode {
    /// Printing a script (boot, shutdown, panic); input is ignored.
    Script(Script),
    /// At `login:`.
    Login,
    /// At `Password:`, for the user in [`Machine::user`].
    Password,
    /// At the shell prompt.
    Shell,
    /// Running `cat`.
    Cat,
    /// At the pager's `--More--`, with the rest of a command's output.
    More(Vec<u8>),
    /// Running `flood`.
    Flood(Box<Flood>),
    /// Crashed: ignores everything but BREAK.
    Hung,
    /// In the boot monitor.
    Monitor,
}

/// Where an escape sequence being typed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// After ESC [ or ESC O, until the final byte.
    Sequence,
}

/// The simulated machine.
#[derive(Debug)]
pub(super) struct Machine {
    pub(super) dev: Arc<Device>,
    pub(super) mode: Mode,
    /// What BREAK interrupted, for the monitor's `go`.
    pub(super) suspended: Option<Box<Mode>>,
    /// Output waiting to be read, from `out_pos` on.
    pub(super) out: Vec<u8>,
    out_pos: usize,
    /// The input line being edited.
    line: Vec<u8>,
    /// The user logging in or logged in.
    pub(super) user: Option<Box<[u8]>>,
    /// The shell's variables, functions and `$?` (forgotten at logout).
    pub(super) sh: super::sh::Sh,
    esc: Esc,
    last_cr: bool,
    /// The viewer's window: columns, rows.
    pub(super) window: (u16, u16),
    /// When the kernel started (uptime counts from here).
    pub(super) boot_at: Instant,
    /// One moment on both clocks, for the wall-clock time.
    clock: (Instant, SystemTime),
    pacer: Pacer,
}

impl Machine {
    /// Power on: the machine starts booting (or sits at `login:` with `boot=none`).
    pub(super) fn new(dev: Arc<Device>, now: Instant, wall: SystemTime) -> Self {
        let pacer = Pacer::new(dev.opts.baud);
        let mut machine = Machine {
            dev,
            mode: Mode::Hung,
            suspended: None,
            out: Vec::new(),
            out_pos: 0,
            line: Vec::new(),
            user: None,
            sh: super::sh::Sh::default(),
            esc: Esc::None,
            last_cr: false,
            window: (80, 24),
            boot_at: now,
            clock: (now, wall),
            pacer,
        };
        machine.start_boot(script::POWER_ON);
        machine
    }

    /// Bytes of output waiting in the machine.
    pub(super) fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// The wall-clock time at `now`.
    pub(super) fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    /// How long the machine has been up at `now`.
    pub(super) fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.boot_at)
    }

    /// Take typed bytes while there is room for their output; returns how many were taken
    /// (0 means: read some output first).
    pub(super) fn input(&mut self, now: Instant, data: &[u8]) -> usize {
        let mut taken = 0;
        for &byte in data {
            if self.pending() >= OUT_HIGH {
                break;
            }
            self.input_byte(now, byte);
            taken += 1;
        }
        taken
    }

    /// Drop all waiting output (nobody will read it).
    pub(super) fn discard_output(&mut self) {
        self.out = Vec::new();
        self.out_pos = 0;
    }

    /// BREAK: enter the boot monitor.
    pub(super) fn brk(&mut self) {
        self.line.clear();
        self.esc = Esc::None;
        let in_monitor = matches!(self.mode, Mode::Monitor);
        if !in_monitor {
            let interrupted = std::mem::replace(&mut self.mode, Mode::Monitor);
            self.suspended = Some(Box::new(interrupted));
        }
        if self.pending() >= OUT_HIGH {
            // Nobody reads: like an overflowing UART, drop the banner rather than grow.
            return;
        }
        if in_monitor {
            self.out.extend_from_slice(b"\r\nok ");
            return;
        }
        self.out
            .extend_from_slice(b"\r\n\r\nSimBoot monitor 1.4 on ");
        self.push_host();
        self.out.extend_from_slice(
            b": BREAK received.\r\nType 'go' to resume, 'boot' to boot, 'help' for commands.\r\nok ",
        );
    }

    /// Write output into `dst`: what is waiting first, then whatever the mode produces.
    pub(super) fn produce(&mut self, now: Instant, dst: &mut [u8]) -> Produced {
        if dst.is_empty() {
            return Produced::Bytes(0);
        }
        let limit = match self.pacer.limit(now) {
            Ok(limit) => limit.min(dst.len()),
            Err(at) => return Produced::WaitUntil(at),
        };
        let dst = &mut dst[..limit];
        let mut n = 0;
        let mut blocked = Produced::Idle;
        while n < dst.len() {
            if self.out_pos < self.out.len() {
                let take = (self.out.len() - self.out_pos).min(dst.len() - n);
                dst[n..n + take].copy_from_slice(&self.out[self.out_pos..self.out_pos + take]);
                self.out_pos += take;
                n += take;
                continue;
            }
            match self.step(now, &mut dst[n..]) {
                Step::More => {}
                Step::Direct(k) => n += k,
                Step::Wait(at) => {
                    blocked = Produced::WaitUntil(at);
                    break;
                }
                Step::Idle => break,
            }
        }
        if self.out_pos == self.out.len() {
            // Give the buffer back: an idle machine holds no output memory.
            self.discard_output();
        }
        if n == 0 {
            return blocked;
        }
        self.pacer.sent(now, n);
        Produced::Bytes(n)
    }

    /// Let the current mode produce something: into `out` (then `More`) or into `dst`.
    fn step(&mut self, now: Instant, dst: &mut [u8]) -> Step {
        match &mut self.mode {
            Mode::Script(script) => {
                let speed = self.dev.opts.boot;
                match script.step(now, speed, &self.dev, &mut self.boot_at, &mut self.out) {
                    ScriptStep::Rendered => Step::More,
                    ScriptStep::Wait(at) => Step::Wait(at),
                    ScriptStep::Done(Then::Login) => {
                        self.show_login();
                        Step::More
                    }
                    ScriptStep::Done(Then::Hung) => {
                        self.mode = Mode::Hung;
                        Step::Idle
                    }
                }
            }
            Mode::Flood(flood) => match flood.step(now, dst) {
                FloodStep::Direct(n) => Step::Direct(n),
                FloodStep::Wait(at) => Step::Wait(at),
                FloodStep::Finished => {
                    flood.summary(now, &mut self.out);
                    self.mode = Mode::Shell;
                    self.prompt();
                    Step::More
                }
            },
            Mode::Login
            | Mode::Password
            | Mode::Shell
            | Mode::Cat
            | Mode::More(_)
            | Mode::Hung
            | Mode::Monitor => Step::Idle,
        }
    }

    /// Start a boot through these stages, or go straight to `login:` with `boot=none`.
    pub(super) fn start_boot(&mut self, stages: &'static [Stage]) {
        self.user = None;
        self.suspended = None;
        if self.dev.opts.boot == BootSpeed::None {
            self.show_login();
        } else {
            self.mode = Mode::Script(Script::new(stages, Then::Login));
        }
    }

    /// Show `NAME login: `.
    pub(super) fn show_login(&mut self) {
        self.user = None;
        self.mode = Mode::Login;
        self.push_host();
        self.out.extend_from_slice(b" login: ");
    }

    /// Log out: back to the getty banner and `login:`.
    pub(super) fn logout(&mut self) {
        self.sh.reset();
        self.out
            .extend_from_slice(b"logout\r\n\r\nDebian GNU/Linux 12 ");
        self.push_host();
        self.out.extend_from_slice(b" ttyS0\r\n\r\n");
        self.show_login();
    }

    /// Show the shell prompt `NAME:~$ `.
    pub(super) fn prompt(&mut self) {
        self.push_host();
        self.out.extend_from_slice(b":~$ ");
    }

    pub(super) fn push_host(&mut self) {
        let Machine { out, dev, .. } = self;
        out.extend_from_slice(dev.name.as_bytes());
    }

    fn input_byte(&mut self, now: Instant, byte: u8) {
        match &self.mode {
            Mode::Script(_) | Mode::Hung => {}
            Mode::More(_) => self.more_key(byte),
            Mode::Flood(_) => {
                if byte == CTRL_C {
                    self.out.extend_from_slice(b"^C\r\n");
                    self.mode = Mode::Shell;
                    self.prompt();
                }
            }
            Mode::Login | Mode::Password | Mode::Shell | Mode::Cat | Mode::Monitor => {
                self.edit(now, byte);
            }
        }
    }

    /// The line discipline of an interactive mode.
    fn edit(&mut self, now: Instant, byte: u8) {
        match self.esc {
            Esc::Start => {
                self.esc = if matches!(byte, b'[' | b'O') {
                    Esc::Sequence
                } else {
                    Esc::None
                };
                return;
            }
            Esc::Sequence => {
                if (0x40..=0x7e).contains(&byte) {
                    self.esc = Esc::None;
                }
                return;
            }
            Esc::None => {}
        }
        // CR LF (and CR NUL, from telnet) is one Enter.
        let after_cr = std::mem::replace(&mut self.last_cr, byte == b'\r');
        if after_cr && matches!(byte, b'\n' | 0) {
            return;
        }
        let echo = !matches!(self.mode, Mode::Password);
        match byte {
            b'\r' | b'\n' => {
                if echo {
                    self.out.extend_from_slice(b"\r\n");
                }
                let line = std::mem::take(&mut self.line);
                self.enter(now, &line);
            }
            0x08 | 0x7f => {
                if self.erase_char() && echo {
                    self.out.extend_from_slice(b"\x08 \x08");
                }
            }
            CTRL_U => {
                while self.erase_char() {
                    if echo {
                        self.out.extend_from_slice(b"\x08 \x08");
                    }
                }
            }
            CTRL_C => {
                self.line.clear();
                self.interrupt();
            }
            CTRL_D => {
                if self.line.is_empty() {
                    self.end_of_input();
                }
            }
            0x1b => self.esc = Esc::Start,
            0..=0x1f => {}
            _ => {
                if self.line.len() < MAX_LINE {
                    self.line.push(byte);
                    if echo {
                        self.out.push(byte);
                    }
                } else if echo {
                    self.out.push(0x07);
                }
            }
        }
    }

    /// Remove the last character (all bytes of a UTF-8 one); false if the line was empty.
    fn erase_char(&mut self) -> bool {
        if self.line.is_empty() {
            return false;
        }
        while let Some(byte) = self.line.pop() {
            if byte & 0xc0 != 0x80 {
                break;
            }
        }
        true
    }

    /// Ctrl-C in an interactive mode.
    fn interrupt(&mut self) {
        match self.mode {
            Mode::Login => {
                self.out.extend_from_slice(b"^C\r\n");
                self.show_login();
            }
            Mode::Password => {
                self.out.extend_from_slice(b"\r\n");
                self.show_login();
            }
            Mode::Shell | Mode::Cat => {
                self.out.extend_from_slice(b"^C\r\n");
                self.mode = Mode::Shell;
                self.prompt();
            }
            Mode::Monitor => self.out.extend_from_slice(b"^C\r\nok "),
            Mode::Script(_) | Mode::Flood(_) | Mode::More(_) | Mode::Hung => {}
        }
    }

    /// Ctrl-D on an empty line.
    fn end_of_input(&mut self) {
        match self.mode {
            Mode::Shell => self.logout(),
            Mode::Cat => {
                self.mode = Mode::Shell;
                self.prompt();
            }
            Mode::Login
            | Mode::Password
            | Mode::Monitor
            | Mode::Script(_)
            | Mode::Flood(_)
            | Mode::More(_)
            | Mode::Hung => {}
        }
    }

    /// Enter: act on the line.
    fn enter(&mut self, now: Instant, line: &[u8]) {
        match self.mode {
            Mode::Login => {
                let user = line.trim_ascii();
                if user.is_empty() {
                    self.show_login();
                } else {
                    self.user = Some(user.into());
                    self.mode = Mode::Password;
                    self.out.extend_from_slice(b"Password: ");
                }
            }
            Mode::Password => {
                self.out.extend_from_slice(b"\r\n");
                let opts = &self.dev.opts;
                let user_ok = opts
                    .login
                    .as_ref()
                    .is_none_or(|want| self.user.as_deref() == Some(want.as_bytes()));
                let password_ok = opts
                    .password
                    .as_ref()
                    .is_none_or(|want| want.as_bytes() == line);
                if user_ok && password_ok {
                    self.mode = Mode::Shell;
                    self.motd(now);
                    self.prompt();
                } else {
                    self.out.extend_from_slice(b"\r\nLogin incorrect\r\n");
                    self.show_login();
                }
            }
            Mode::Shell => self.run_shell(now, line),
            Mode::Cat => {
                self.out.extend_from_slice(line);
                self.out.extend_from_slice(b"\r\n");
            }
            Mode::Monitor => self.run_monitor(line),
            Mode::Script(_) | Mode::Flood(_) | Mode::More(_) | Mode::Hung => {}
        }
    }
}

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;

/// What [`Machine::step`] did.
enum Step {
    /// Output was appended to `out`; go on.
    More,
    /// This many bytes were written straight to the reader's buffer.
    Direct(usize),
    /// Nothing before this moment.
    Wait(Instant),
    /// Nothing until input arrives.
    Idle,
}

/// Paces output to a baud rate (10 bits per byte), like a real serial line.
#[derive(Debug)]
struct Pacer {
    /// Bytes per second; 0 for no limit.
    rate: u64,
    /// The line is busy until then.
    busy_until: Option<Instant>,
}

impl Pacer {
    fn new(baud: Option<u32>) -> Self {
        Pacer {
            rate: baud.map_or(0, |baud| u64::from(baud / 10).max(1)),
            busy_until: None,
        }
    }

    /// How many bytes may go now (a 1/50 s slice), or when the line is free again.
    fn limit(&self, now: Instant) -> Result<usize, Instant> {
        if self.rate == 0 {
            return Ok(usize::MAX);
        }
        match self.busy_until {
            Some(until) if until > now => Err(until),
            _ => Ok(usize::try_from((self.rate / 50).max(1)).unwrap_or(usize::MAX)),
        }
    }

    fn sent(&mut self, now: Instant, bytes: usize) {
        if self.rate == 0 {
            return;
        }
        let from = self.busy_until.filter(|until| *until > now).unwrap_or(now);
        let nanos = bytes as u128 * 1_000_000_000 / u128::from(self.rate);
        let busy = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.busy_until = from.checked_add(busy).or(Some(from));
    }
}
