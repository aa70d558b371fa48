//! Where a device is: firmware, boot loader, boot monitor, login, password, shell or pager.
//!
//! [`Classifier::classify`] looks at a device's recent output (ANSI-stripped, as kept by
//! [`super::Expecter::recent`]). The last non-empty line — usually a prompt without a newline —
//! decides first ([`PROMPT_PATTERNS`]); if it is no known prompt, the last lines are searched for
//! signs of a stage of booting ([`STAGE_PATTERNS`]), the latest sign winning.
//!
//! ```
//! use mo_core::automation::classify::{classify, Location};
//!
//! assert_eq!(classify("Debian GNU/Linux 12\n\nweb01 login: "), Location::Login);
//! assert_eq!(classify("Hit any key to stop autoboot:  0\n=> "), Location::Bootloader);
//! assert_eq!(classify("alice@web01:~$ "), Location::Shell);
//! ```

use regex::Regex;

use crate::error::{Error, Result};

/// Where a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// Firmware / BIOS / UEFI: power-on self test or setup.
    Firmware,
    /// A boot loader: GRUB, U-Boot (`=> `), OpenBoot (`ok `), a boot menu.
    Bootloader,
    /// A boot monitor entered on BREAK.
    BootMonitor,
    /// The operating system is booting (kernel log, service start-up).
    Booting,
    /// A login prompt.
    Login,
    /// A password prompt.
    Password,
    /// A shell prompt (`$ `, `# `, `> `).
    Shell,
    /// A pager waiting for a key (`--More--`, `(END)`).
    Pager,
    /// A kernel panic or crash.
    Crashed,
    /// Nothing recognised.
    Unknown,
}

impl Location {
    /// A short word: `firmware`, `bootloader`, `monitor`, `booting`, `login`, `password`,
    /// `shell`, `pager`, `crashed`, `unknown`.
    pub fn word(self) -> &'static str {
        match self {
            Location::Firmware => "firmware",
            Location::Bootloader => "bootloader",
            Location::BootMonitor => "monitor",
            Location::Booting => "booting",
            Location::Login => "login",
            Location::Password => "password",
            Location::Shell => "shell",
            Location::Pager => "pager",
            Location::Crashed => "crashed",
            Location::Unknown => "unknown",
        }
    }

    /// Whether the device waits for input at a prompt (login, password, shell, boot loader,
    /// monitor, pager).
    pub fn is_prompt(self) -> bool {
        matches!(
            self,
            Location::Bootloader
                | Location::BootMonitor
                | Location::Login
                | Location::Password
                | Location::Shell
                | Location::Pager
        )
    }
}

/// A ready-made pattern: a regular expression and the location it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyPattern {
    /// What the pattern recognises.
    pub name: &'static str,
    /// The location it means.
    pub location: Location,
    /// The expression (matched case-sensitively unless it says `(?i)`).
    pub regex: &'static str,
}

const fn rp(name: &'static str, location: Location, regex: &'static str) -> ReadyPattern {
    ReadyPattern {
        name,
        location,
        regex,
    }
}

/// Prompts, matched against the last non-empty line (in this order; the first match decides).
/// Usable as `expect` patterns too.
pub const PROMPT_PATTERNS: &[ReadyPattern] = &[
    rp(
        "password",
        Location::Password,
        r"(?i)pass(word|phrase)[^:]*:\s*$",
    ),
    rp("login", Location::Login, r"(?i)(login|username):\s*$"),
    rp(
        "pager",
        Location::Pager,
        r"--More--|\(END\)\s*$|^:\s*$|lines \d+-\d+",
    ),
    rp(
        "u-boot",
        Location::Bootloader,
        r"^(=>|U-Boot>|Marvell>>)\s*$",
    ),
    rp("grub", Location::Bootloader, r"^grub(rescue)?>\s*$"),
    rp(
        "boot-menu",
        Location::Bootloader,
        r"(?i)boot:\s*$|Press enter to boot|highlighted entry will be executed automatically",
    ),
    rp("openboot", Location::Bootloader, r"^(\{\d+\} )?ok\s*$"),
    rp(
        "monitor",
        Location::BootMonitor,
        r"^(boot>|ROMMON( \d+)?>|rommon \d+ >|>>)\s*$",
    ),
    rp(
        "setup",
        Location::Firmware,
        r"(?i)(Press|Hit) .*(F2|F10|F12|DEL|ESC)\b.*(setup|boot menu)|Shell>\s*$",
    ),
    rp("shell", Location::Shell, r"[$#%>]\s?$"),
];

/// Signs of a stage, searched in the last lines when the last line is no prompt.
pub const STAGE_PATTERNS: &[ReadyPattern] = &[
    rp(
        "panic",
        Location::Crashed,
        r"Kernel panic|Oops:|BUG: |end Kernel panic|---\[ end trace",
    ),
    rp(
        "post",
        Location::Firmware,
        r"(?i)\bBIOS\b|UEFI|POST|Memory (test|size)|Press F\d|self[- ]test",
    ),
    rp(
        "grub",
        Location::Bootloader,
        r"GNU GRUB|Booting `|Loading Linux|Loading initial ramdisk",
    ),
    rp(
        "u-boot",
        Location::Bootloader,
        r"U-Boot \d|Hit any key to stop autoboot",
    ),
    rp("openboot", Location::Bootloader, r"OpenBoot|Open Firmware"),
    rp(
        "monitor",
        Location::BootMonitor,
        r"(?i)BREAK received|boot monitor",
    ),
    rp(
        "kernel",
        Location::Booting,
        r"^\[\s*\d+\.\d+\]|Linux version|Starting kernel",
    ),
    rp(
        "systemd",
        Location::Booting,
        r"\[\s+OK\s+\]|Starting .*\.\.\.|Reached target",
    ),
];

/// How many trailing lines [`Classifier::classify`] searches for stage signs.
pub const STAGE_LINES: usize = 8;

/// Classifies recent output (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct Classifier {
    prompts: Vec<(Location, Regex)>,
    stages: Vec<(Location, Regex)>,
}

fn compile(list: &[ReadyPattern]) -> Result<Vec<(Location, Regex)>> {
    list.iter()
        .map(|p| {
            Regex::new(p.regex)
                .map(|r| (p.location, r))
                .map_err(|e| Error::BadSpec {
                    what: "classifier pattern",
                    input: p.regex.to_string(),
                    reason: format!("{} ({})", e, p.name),
                })
        })
        .collect()
}

impl Classifier {
    /// The ready patterns. (They are constants known to compile; an error names the one that
    /// does not.)
    pub fn standard() -> Result<Classifier> {
        Classifier::with_patterns(PROMPT_PATTERNS, STAGE_PATTERNS)
    }

    /// Own prompt and stage patterns, in priority order.
    pub fn with_patterns(prompts: &[ReadyPattern], stages: &[ReadyPattern]) -> Result<Classifier> {
        Ok(Classifier {
            prompts: compile(prompts)?,
            stages: compile(stages)?,
        })
    }

    /// Where the device whose recent output is `recent_text` is.
    pub fn classify(&self, recent_text: &str) -> Location {
        let mut lines = recent_text
            .split(['\n', '\r'])
            .filter(|l| !l.trim().is_empty());
        let Some(last) = lines.next_back() else {
            return Location::Unknown;
        };
        let mut tail: Vec<&str> = lines.rev().take(STAGE_LINES - 1).collect();
        tail.reverse();
        tail.push(last);
        if let Some((loc, _)) = self.prompts.iter().find(|(_, r)| r.is_match(last)) {
            // A boot loader prompt after "BREAK received" is the boot monitor's.
            if *loc == Location::Bootloader && self.tail_says(&tail, Location::BootMonitor) {
                return Location::BootMonitor;
            }
            // A shell-looking `>` or `#` at the end of a firmware or kernel line is no prompt.
            if *loc != Location::Shell || !self.is_stage_line(last) {
                return *loc;
            }
        }
        for line in tail.iter().rev() {
            if let Some((loc, _)) = self.stages.iter().find(|(_, r)| r.is_match(line)) {
                return *loc;
            }
        }
        Location::Unknown
    }

    fn tail_says(&self, tail: &[&str], want: Location) -> bool {
        tail.iter().any(|l| {
            self.stages
                .iter()
                .any(|(loc, r)| *loc == want && r.is_match(l))
        })
    }

    fn is_stage_line(&self, line: &str) -> bool {
        self.stages.iter().any(|(_, r)| r.is_match(line))
    }
}

/// [`Classifier::classify`] with the ready patterns (compiles them on each call: keep a
/// [`Classifier`] to classify often).
pub fn classify(recent_text: &str) -> Location {
    Classifier::standard().map_or(Location::Unknown, |c| c.classify(recent_text))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn every_location() {
        let c = Classifier::standard().unwrap();
        let cases = [
            ("web01 login: ", Location::Login),
            ("Username:", Location::Login),
            ("root\nPassword: ", Location::Password),
            ("Enter passphrase for key: ", Location::Password),
            ("web01:~$ ", Location::Shell),
            ("root@web01:/# ", Location::Shell),
            ("switch> ", Location::Shell),
            ("line 1\n--More--", Location::Pager),
            (
                "U-Boot 2023.04\nHit any key to stop autoboot:  0\n=> ",
                Location::Bootloader,
            ),
            ("grub> ", Location::Bootloader),
            ("ok ", Location::Bootloader),
            (
                "SimBoot monitor 1.4 on web01: BREAK received.\nType 'go'\nok ",
                Location::BootMonitor,
            ),
            (
                "Phoenix BIOS 4.0\nMemory test: 16384M OK",
                Location::Firmware,
            ),
            ("Press F2 to enter setup", Location::Firmware),
            (
                "GNU GRUB  version 2.06\n  *Debian GNU/Linux",
                Location::Bootloader,
            ),
            ("[    0.000000] Linux version 6.1.0", Location::Booting),
            ("[  OK  ] Started Journal Service.", Location::Booting),
            ("Kernel panic - not syncing: VFS", Location::Crashed),
            ("", Location::Unknown),
            ("just some text", Location::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(c.classify(text), want, "{text:?}");
        }
        assert_eq!(classify("x login: "), Location::Login);
        assert!(Location::Shell.is_prompt());
        assert!(!Location::Booting.is_prompt());
    }

    #[test]
    fn random_text_never_panics() {
        let c = Classifier::standard().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        for _ in 0..2000 {
            let len = rng.random_range(0..200);
            let text: String = (0..len)
                .map(|_| char::from(rng.random_range(0u8..128)))
                .collect();
            let _ = c.classify(&text);
        }
    }
}
