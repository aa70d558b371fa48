//! The tiny shell of the simulated machine (`NAME:~$ `) and its clock texts (`date`, `uptime`).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::flood::{self, Flood};
use super::machine::{Machine, Mode};
use super::script::{self, Script, Then};
use super::sh;

const KERNEL_RELEASE: &str = "6.1.0-13-amd64";
const KERNEL_VERSION: &str = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)";

const HELP: &[u8] = b"Commands of this simulated machine:\r\n\
  echo [-n] ARGS       print ARGS\r\n\
  sh -c COMMANDS       run COMMANDS (A; B, VAR=x, $VAR, $?, NAME() { ...; } work here)\r\n\
  true, false\r\n\
  hostname, date, uptime, whoami, uname [-asnrvmo]\r\n\
  seq [FIRST] LAST     print the numbers FIRST (default 1) to LAST, one a line\r\n\
  stty [size]          show the line settings or the window size\r\n\
  flood RATE [SECS]    print numbered lines at RATE bytes/s (500, 100k, 10M or max)\r\n\
                       for SECS seconds or until Ctrl-C\r\n\
  cat                  copy lines back until Ctrl-D\r\n\
  panic                crash the kernel (then only BREAK or a new connection helps)\r\n\
  reboot               restart the machine\r\n\
  exit, logout         log out (so does Ctrl-D)\r\n\
Send BREAK for the boot monitor.\r\n";

const MOTD: &str = "The programs included with the Debian GNU/Linux system are free software;\r\n\
the exact distribution terms for each program are described in the\r\n\
individual files in /usr/share/doc/*/copyright.\r\n\r\n\
Debian GNU/Linux comes with ABSOLUTELY NO WARRANTY, to the extent\r\n\
permitted by applicable law.\r\n\
This is mo's simulated machine {host}: type 'help' for its commands.\r\n";

/// The most lines one `seq` prints.
const SEQ_MAX: u64 = 10_000;

const FLOOD_USAGE: &[u8] =
    b"usage: flood RATE [SECONDS]   (RATE in bytes/s: 500, 100k, 10M, 1G or max)\r\n";

impl Machine {
    /// The banner after a successful login.
    pub(super) fn motd(&mut self, now: Instant) {
        self.out.extend_from_slice(b"Linux ");
        self.push_host();
        let _ = write!(
            self.out,
            " {KERNEL_RELEASE} {KERNEL_VERSION} x86_64\r\n\r\n"
        );
        script::expand(&mut self.out, MOTD, &self.dev);
        self.out.extend_from_slice(b"Last login: ");
        let wall = self.wall(now);
        push_date(
            &mut self.out,
            wall.checked_sub(Duration::from_secs(3600)).unwrap_or(wall),
        );
        self.out.extend_from_slice(b" on ttyS0\r\n");
    }

    /// Run a shell command line (a `;`-list, a function definition; see [`sh`]), then prompt
    /// unless a command took the machine out of its shell.
    pub(super) fn run_shell(&mut self, now: Instant, line: &[u8]) {
        let start = self.out.len();
        if self.run_list(now, line, &[], 0) && !self.page_from(start) {
            self.prompt();
        }
    }

    /// Run the commands of LINE with the positional parameters ARGS; `false` when one of them
    /// left the shell (logout, `cat`, `flood`, `panic`, `reboot`): the rest is not run.
    fn run_list(&mut self, now: Instant, line: &[u8], args: &[Vec<u8>], depth: u8) -> bool {
        if let Some((name, body)) = sh::function_definition(line) {
            self.sh.status = match self.sh.define(name, body) {
                Ok(()) => 0,
                Err(()) => {
                    self.out.extend_from_slice(b"sh: too many functions\r\n");
                    1
                }
            };
            return true;
        }
        for command in sh::split_list(line) {
            let words = sh::words(command, &self.sh, args);
            let assignments = words.iter().take_while(|w| w.assign.is_some()).count();
            let (assign, rest) = words.split_at(assignments);
            // Alone, assignments stay; before a command, they hold for that command only.
            let mut saved = Vec::new();
            let mut full = false;
            for word in assign {
                let n = word.assign.unwrap_or(0);
                match self.sh.set(&word.text[..n], &word.text[n + 1..]) {
                    Ok(old) => saved.push((word.text[..n].to_vec(), old)),
                    Err(()) => full = true,
                }
            }
            if full {
                self.out.extend_from_slice(b"sh: too many variables\r\n");
            }
            let go_on = if rest.is_empty() {
                self.sh.status = u8::from(full);
                true
            } else {
                let go_on = self.run_command(now, rest, depth);
                for (name, old) in saved.into_iter().rev() {
                    self.sh.restore(&name, old);
                }
                go_on
            };
            if !go_on {
                return false;
            }
        }
        true
    }

    /// Run one command (its words expanded); sets `$?`. `false` when it left the shell.
    fn run_command(&mut self, now: Instant, words: &[sh::Word], depth: u8) -> bool {
        let Some((command, args)) = words.split_first() else {
            return true;
        };
        let command = command.text.as_slice();
        let args: Vec<&[u8]> = args.iter().map(|w| w.text.as_slice()).collect();
        let mut status = 0;
        if let Some(body) = self.sh.function(command) {
            if depth >= sh::MAX_DEPTH {
                self.out
                    .extend_from_slice(b"sh: functions nest too deep\r\n");
                self.sh.status = 2;
                return true;
            }
            let positional: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
            return self.run_list(now, &body, &positional, depth + 1);
        }
        match command {
            b"echo" => {
                let (newline, args) = match args.split_first() {
                    Some((&b"-n", rest)) => (false, rest),
                    _ => (true, &args[..]),
                };
                self.out.extend_from_slice(&args.join(&b' '));
                if newline {
                    self.out.extend_from_slice(b"\r\n");
                }
            }
            b"sh" => match args.as_slice() {
                [b"-c", script, rest @ ..] => {
                    if depth >= sh::MAX_DEPTH {
                        self.out.extend_from_slice(b"sh: nested too deep\r\n");
                        self.sh.status = 2;
                        return true;
                    }
                    let positional: Vec<Vec<u8>> = rest.iter().map(|a| a.to_vec()).collect();
                    let script = script.to_vec();
                    return self.run_list(now, &script, &positional, depth + 1);
                }
                _ => {
                    self.out
                        .extend_from_slice(b"sh: only `sh -c COMMANDS` on this machine\r\n");
                    status = 2;
                }
            },
            b"true" | b":" => {}
            b"false" => status = 1,
            b"hostname" => {
                self.push_host();
                self.out.extend_from_slice(b"\r\n");
            }
            b"whoami" => {
                let Machine { out, user, .. } = self;
                out.extend_from_slice(user.as_deref().unwrap_or(b"root"));
                out.extend_from_slice(b"\r\n");
            }
            b"date" => {
                let wall = self.wall(now);
                push_date(&mut self.out, wall);
                self.out.extend_from_slice(b"\r\n");
            }
            b"uptime" => self.uptime_line(now),
            b"seq" => status = self.seq(&args),
            b"uname" => status = self.uname(&args),
            b"stty" => status = self.stty(&args),
            b"help" => self.out.extend_from_slice(HELP),
            b"exit" | b"logout" => {
                self.logout();
                return false;
            }
            b"cat" if args.is_empty() => {
                self.mode = Mode::Cat;
                return false;
            }
            b"cat" => {
                for file in args {
                    self.out.extend_from_slice(b"cat: ");
                    self.out.extend_from_slice(file);
                    self.out
                        .extend_from_slice(b": No such file or directory\r\n");
                }
                status = 1;
            }
            b"flood" => {
                let rate = args.first().and_then(|word| flood::parse_rate(word));
                let seconds = args.get(1).map(|word| flood::parse_seconds(word));
                match (rate, seconds, args.len()) {
                    (Some(rate), None, 1) => {
                        self.mode = Mode::Flood(Box::new(Flood::new(rate, None, now)));
                        return false;
                    }
                    (Some(rate), Some(Some(secs)), 2) => {
                        self.mode = Mode::Flood(Box::new(Flood::new(rate, Some(secs), now)));
                        return false;
                    }
                    _ => {
                        self.out.extend_from_slice(FLOOD_USAGE);
                        status = 2;
                    }
                }
            }
            b"panic" => {
                self.mode = Mode::Script(Script::new(script::KERNEL_PANIC, Then::Hung));
                return false;
            }
            b"reboot" => {
                self.start_boot(script::REBOOT);
                return false;
            }
            _ => {
                self.out.extend_from_slice(b"sh: ");
                self.out.extend_from_slice(command);
                self.out.extend_from_slice(b": command not found\r\n");
                status = 127;
            }
        }
        self.sh.status = status;
        true
    }

    /// ` 12:34:56 up 3 min,  1 user,  load average: 0.00, 0.01, 0.05`
    fn uptime_line(&mut self, now: Instant) {
        let (_, _, _, _, clock) = civil(self.wall(now));
        let up = self.uptime(now).as_secs();
        let (days, hours, mins) = (up / 86_400, up / 3600 % 24, up / 60 % 60);
        let _ = write!(self.out, " {clock} up ");
        if days > 0 {
            let plural = if days == 1 { "" } else { "s" };
            let _ = write!(self.out, "{days} day{plural}, ");
        }
        if hours > 0 {
            let _ = write!(self.out, "{hours:2}:{mins:02}");
        } else {
            let _ = write!(self.out, "{mins} min");
        }
        let load = self.dev.derived(4) % 20;
        let _ = write!(
            self.out,
            ",  1 user,  load average: 0.{load:02}, 0.{:02}, 0.{:02}\r\n",
            load / 2,
            load / 4
        );
    }

    /// `uname` with GNU's options; its exit status.
    fn uname(&mut self, args: &[&[u8]]) -> u8 {
        // s n r v m o, in the order uname prints them.
        let mut want = [false; 6];
        for arg in args {
            let Some(flags) = arg.strip_prefix(b"-").filter(|flags| !flags.is_empty()) else {
                self.out.extend_from_slice(b"uname: extra operand '");
                self.out.extend_from_slice(arg);
                self.out.extend_from_slice(b"'\r\n");
                return 1;
            };
            for &flag in flags {
                match flag {
                    b'a' => want = [true; 6],
                    b's' => want[0] = true,
                    b'n' => want[1] = true,
                    b'r' => want[2] = true,
                    b'v' => want[3] = true,
                    b'm' => want[4] = true,
                    b'o' => want[5] = true,
                    _ => {
                        self.out.extend_from_slice(b"uname: invalid option -- '");
                        self.out.push(flag);
                        self.out.extend_from_slice(b"'\r\n");
                        return 1;
                    }
                }
            }
        }
        if want == [false; 6] {
            want[0] = true;
        }
        let dev = Arc::clone(&self.dev);
        let fields: [&[u8]; 6] = [
            b"Linux",
            dev.name.as_bytes(),
            KERNEL_RELEASE.as_bytes(),
            KERNEL_VERSION.as_bytes(),
            b"x86_64",
            b"GNU/Linux",
        ];
        let chosen: Vec<&[u8]> = fields
            .iter()
            .zip(want)
            .filter_map(|(field, wanted)| wanted.then_some(*field))
            .collect();
        self.out.extend_from_slice(&chosen.join(&b' '));
        self.out.extend_from_slice(b"\r\n");
        0
    }

    /// `seq [FIRST] LAST`, at most [`SEQ_MAX`] lines; its exit status.
    fn seq(&mut self, args: &[&[u8]]) -> u8 {
        let number = |word: &[u8]| std::str::from_utf8(word).ok()?.parse::<u64>().ok();
        let (first, last) = match args {
            [last] => (Some(1), number(last)),
            [first, last] => (number(first), number(last)),
            _ => (None, None),
        };
        let (Some(first), Some(last)) = (first, last) else {
            self.out
                .extend_from_slice(b"usage: seq [FIRST] LAST   (whole numbers)\r\n");
            return 1;
        };
        if last >= first && last - first >= SEQ_MAX {
            let _ = write!(self.out, "seq: at most {SEQ_MAX} lines here\r\n");
            return 1;
        }
        for n in first..=last {
            let _ = write!(self.out, "{n}\r\n");
        }
        0
    }

    /// `stty` and `stty size`; its exit status.
    fn stty(&mut self, args: &[&[u8]]) -> u8 {
        let (cols, rows) = self.window;
        match args {
            [] => {
                let baud = self.dev.opts.baud.unwrap_or(115_200);
                let _ = write!(
                    self.out,
                    "speed {baud} baud; rows {rows}; columns {cols}; line = 0;\r\n"
                );
                0
            }
            [b"size"] => {
                let _ = write!(self.out, "{rows} {cols}\r\n");
                0
            }
            [other, ..] => {
                self.out.extend_from_slice(b"stty: invalid argument '");
                self.out.extend_from_slice(other);
                self.out.extend_from_slice(b"'\r\n");
                1
            }
        }
    }
}

/// Append `Tue Mar  5 12:34:56 UTC 2024`.
pub(super) fn push_date(out: &mut Vec<u8>, wall: SystemTime) {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, weekday, clock) = civil(wall);
    let _ = write!(
        out,
        "{} {} {day:2} {clock} UTC {year}",
        DAYS[weekday % 7],
        MONTHS[(month - 1) % 12]
    );
}

/// A time of day `HH:MM:SS`.
#[derive(Debug, PartialEq, Eq)]
struct Clock(u64);

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0;
        write!(
            f,
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// UTC year, month (1–12), day, weekday (0 = Sunday) and time of day (proleptic Gregorian calendar,
/// after Howard Hinnant's `civil_from_days`). Times before 1970 count as 1970.
fn civil(wall: SystemTime) -> (i64, usize, u32, usize, Clock) {
    let secs = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let weekday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month = usize::try_from(month).unwrap_or(1);
    (year, month, day, weekday, Clock(secs % 86_400))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn date(secs: u64) -> String {
        let mut out = Vec::new();
        push_date(&mut out, SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dates_are_formatted_like_date() {
        assert_eq!(date(0), "Thu Jan  1 00:00:00 UTC 1970");
        // 2000-02-29 (a leap day) 12:34:56
        assert_eq!(date(951_827_696), "Tue Feb 29 12:34:56 UTC 2000");
        // 2024-12-31 23:59:59
        assert_eq!(date(1_735_689_599), "Tue Dec 31 23:59:59 UTC 2024");
        // 2100-03-01 (2100 is no leap year)
        assert_eq!(date(4_107_542_400), "Mon Mar  1 00:00:00 UTC 2100");
    }
}
