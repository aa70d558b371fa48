//! The boot monitor (`ok ` prompt, after OpenBoot) that BREAK drops the simulated machine into.

use super::machine::{Machine, Mode};
use super::script;

const HELP: &[u8] = b"Commands of the boot monitor:\r\n\
  boot        boot the operating system\r\n\
  reset       reset the machine (self test, then boot)\r\n\
  go          resume what BREAK interrupted\r\n\
  printenv    show the firmware variables\r\n\
  help        this list\r\n";

const ENV: &str = "auto-boot?=true\r\n\
boot-device=disk net\r\n\
diag-switch?=false\r\n\
input-device=ttya\r\n\
output-device=ttya\r\n\
hostname={host}\r\n\
local-mac-address={mac}\r\n";

impl Machine {
    /// Run a monitor command line.
    pub(super) fn run_monitor(&mut self, line: &[u8]) {
        let command = line
            .split(u8::is_ascii_whitespace)
            .find(|word| !word.is_empty());
        match command {
            None => {}
            Some(b"help") => self.out.extend_from_slice(HELP),
            Some(b"printenv") => {
                script::expand(&mut self.out, ENV, &self.dev);
                let baud = self.dev.opts.baud.unwrap_or(115_200);
                self.out
                    .extend_from_slice(format!("ttya-mode={baud},8,n,1,-\r\n").as_bytes());
            }
            Some(b"boot") => {
                self.out
                    .extend_from_slice(b"Boot device: disk  File and args:\r\n");
                self.start_boot(script::MONITOR_BOOT);
                return;
            }
            Some(b"reset" | b"reset-all") => {
                self.out.extend_from_slice(b"Resetting ...\r\n\r\n");
                self.start_boot(script::POWER_ON);
                return;
            }
            Some(b"go") => {
                if self.resume() {
                    return;
                }
                self.out
                    .extend_from_slice(b"Error: nothing to resume; use 'boot'.\r\n");
            }
            Some(other) => {
                self.out.extend_from_slice(b"Error: unknown command '");
                self.out.extend_from_slice(other);
                self.out
                    .extend_from_slice(b"'; type 'help' for the commands.\r\n");
            }
        }
        self.out.extend_from_slice(b"ok ");
    }

    /// `go`: back to what BREAK interrupted, with its prompt shown again.
    fn resume(&mut self) -> bool {
        let Some(mode) = self.suspended.take() else {
            return false;
        };
        self.mode = *mode;
        match self.mode {
            Mode::Login => self.show_login(),
            Mode::Password => self.out.extend_from_slice(b"Password: "),
            Mode::Shell => self.prompt(),
            Mode::More(_) => self.out.extend_from_slice(super::more::PROMPT),
            Mode::Cat | Mode::Flood(_) | Mode::Script(_) | Mode::Hung | Mode::Monitor => {}
        }
        true
    }
}
