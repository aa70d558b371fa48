//! Tests of the simulated machine through its link, as a console actor would drive it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use mo_core::link::{Connector, ControlOp, Link};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use url::Url;

use super::flood::{LINE_LEN, check_lines};
use super::machine::{MAX_LINE, Machine, OUT_HIGH, Produced};
use super::{BootSpeed, Device, SimConnector, SimOptions, link};

const WAIT: Duration = Duration::from_secs(10);

fn connector(url: &str) -> SimConnector {
    let url = Url::parse(url).unwrap();
    SimConnector::new(
        url.host_str().unwrap(),
        SimOptions::from_query(&url).unwrap(),
    )
}

/// A terminal on a sim link: reads into `seen` until what a test waits for shows up.
struct Term {
    link: Link,
    seen: Vec<u8>,
}

impl Term {
    async fn open(url: &str) -> Term {
        Term {
            link: connector(url).connect().await.unwrap(),
            seen: Vec::new(),
        }
    }

    /// Everything up to and including the first `want`.
    async fn until(&mut self, want: &str) -> String {
        let want = want.as_bytes();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if let Some(at) = self.seen.windows(want.len()).position(|w| w == want) {
                let rest = self.seen.split_off(at + want.len());
                let text = std::mem::replace(&mut self.seen, rest);
                return String::from_utf8_lossy(&text).into_owned();
            }
            match timeout(WAIT, self.link.reader.read(&mut buf)).await {
                Ok(Ok(n)) => {
                    assert!(n > 0, "the sim link ended");
                    self.seen.extend_from_slice(&buf[..n]);
                }
                Ok(Err(e)) => panic!("reading: {e}"),
                Err(_) => panic!(
                    "no {:?} after {WAIT:?}; seen {:?}",
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// What arrives within `period`.
    async fn quiet(&mut self, period: Duration) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let end = Instant::now() + period;
        while let Ok(read) = tokio::time::timeout_at(end, self.link.reader.read(&mut buf)).await {
            let n = read.unwrap();
            self.seen.extend_from_slice(&buf[..n]);
        }
        std::mem::take(&mut self.seen)
    }

    async fn send(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.link.writer.write_all(bytes))
            .await
            .expect("writing blocked")
            .unwrap();
    }

    async fn login(&mut self) {
        self.until("web01 login: ").await;
        self.send(b"root\r").await;
        self.until("Password: ").await;
        self.send(b"secret\r").await;
        self.until("web01:~$ ").await;
    }

    async fn brk(&self) {
        let op = ControlOp::Break {
            duration: Duration::from_millis(250),
        };
        self.link.control.control(op).await.unwrap();
    }
}

#[tokio::test]
async fn fast_boot_reaches_the_login_prompt() {
    let start = Instant::now();
    let mut term = Term::open("sim://web01?boot=fast").await;
    let text = term.until("web01 login: ").await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    for want in [
        "SimBIOS 2.17.1",
        "Memory Test:  8388608K OK",
        "GNU GRUB  version 2.06",
        "executed automatically in 0s.",
        "[    0.000000] Linux version 6.1.0-13-amd64",
        "] systemd[1]: Hostname set to <web01>.",
        "[  OK  ] Started ssh.service - OpenBSD Secure Shell server.",
        "Debian GNU/Linux 12 web01 ttyS0\r\n\r\nweb01 login: ",
    ] {
        assert!(text.contains(want), "no {want:?} in {text}");
    }
    // Nothing more comes until someone types.
    assert!(term.quiet(Duration::from_millis(100)).await.is_empty());
}

#[tokio::test]
async fn normal_boot_takes_seconds() {
    let start = Instant::now();
    let mut term = Term::open("sim://web01").await;
    term.until("GNU GRUB").await;
    term.until("web01 login: ").await;
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn no_boot_goes_straight_to_login() {
    let mut term = Term::open("sim://web01?boot=none").await;
    assert_eq!(term.until("login: ").await, "web01 login: ");
}

#[tokio::test]
async fn wrong_password_is_refused_and_right_one_accepted() {
    let mut term = Term::open("sim://web01?boot=none&password=secret").await;
    term.until("web01 login: ").await;
    term.send(b"root\r").await;
    assert_eq!(term.until("Password: ").await, "root\r\nPassword: ");
    term.send(b"guess\r").await;
    let text = term.until("web01 login: ").await;
    assert_eq!(text, "\r\n\r\nLogin incorrect\r\nweb01 login: ");
    term.send(b"root\rsecret\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(!text.contains("secret"), "password echoed: {text}");
    assert!(text.contains("Linux web01 6.1.0-13-amd64"), "{text}");
    assert!(text.contains("Last login: "), "{text}");
}

#[tokio::test]
async fn login_parameter_restricts_the_user() {
    let mut term = Term::open("sim://web01?boot=none&login=admin").await;
    term.until("login: ").await;
    term.send(b"root\ranything\r").await;
    term.until("Login incorrect").await;
    term.send(b"admin\ranything\r").await;
    term.until("web01:~$ ").await;
    term.send(b"whoami\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "whoami\r\nadmin\r\nweb01:~$ "
    );
}

#[tokio::test]
async fn shell_echoes_edits_and_runs_commands() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    term.send(b"echo  hello   world\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "echo  hello   world\r\nhello world\r\nweb01:~$ "
    );
    // Backspace and DEL erase, arrow keys are ignored.
    term.send(b"echx\x7fo a\x08b\x1b[A\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "echx\x08 \x08o a\x08 \x08b\r\nb\r\nweb01:~$ "
    );
    term.send(b"junk\x15hostname\r").await;
    assert!(
        term.until("web01:~$ ")
            .await
            .ends_with("hostname\r\nweb01\r\nweb01:~$ ")
    );
    term.send(b"abc\x03").await;
    assert_eq!(term.until("web01:~$ ").await, "abc^C\r\nweb01:~$ ");
    term.send(b"frobnicate now\r").await;
    assert!(
        term.until("web01:~$ ")
            .await
            .contains("\r\nsh: frobnicate: command not found\r\n")
    );
    term.send(b"uname -a\r").await;
    assert!(term.until("web01:~$ ").await.contains(
        "\r\nLinux web01 6.1.0-13-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29) \
         x86_64 GNU/Linux\r\n"
    ));
    term.send(b"uptime\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(
        text.contains(" up 0 min,  1 user,  load average: "),
        "{text}"
    );
    term.send(b"date\r").await;
    assert!(term.until("web01:~$ ").await.contains(" UTC 20"));
    term.send(b"help\r").await;
    assert!(term.until("web01:~$ ").await.contains("flood RATE [SECS]"));
    term.send(b"cat\rline one\r\x04").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "cat\r\nline one\r\nline one\r\nweb01:~$ "
    );
}

/// The grammar labgrid's `ShellDriver` relies on: it defines `run()` and calls it with a marker
/// in a variable; the marker, the command's output and its exit status come back between markers.
#[tokio::test]
async fn shell_runs_lists_variables_and_functions_like_labgrids_driver_needs() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    term.send(b"run() { echo -n \"$MARKER\"; sh -c \"$@\"; echo \"$MARKER $?\"; }\r")
        .await;
    term.until("web01:~$ ").await;
    term.send(b"MARKER='ABCD''EFGH' run 'uname -s'\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(
        text.ends_with("\r\nABCDEFGHLinux\r\nABCDEFGH 0\r\nweb01:~$ "),
        "{text:?}"
    );
    term.send(b"MARKER=XY run 'nosuch; echo $?'\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(
        text.ends_with("\r\nXYsh: nosuch: command not found\r\n127\r\nXY 0\r\nweb01:~$ "),
        "{text:?}"
    );
    // The temporary assignment is gone; a plain one stays until logout.
    term.send(b"echo \"[$MARKER]\"; A=1; echo $A${A}'$A' \"\" end\r")
        .await;
    let text = term.until("web01:~$ ").await;
    assert!(
        text.ends_with("\r\n[]\r\n11$A  end\r\nweb01:~$ "),
        "{text:?}"
    );
    term.send(b"false; echo $?; true; echo $?\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(text.ends_with("\r\n1\r\n0\r\nweb01:~$ "), "{text:?}");
    // A function that calls itself stops at the nesting limit, and the shell goes on.
    term.send(b"f() { f; }\r").await;
    term.until("web01:~$ ").await;
    term.send(b"f; echo still-here\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(
        text.contains("nest too deep") && text.ends_with("still-here\r\nweb01:~$ "),
        "{text:?}"
    );
    // Logging out forgets the functions and variables.
    term.send(b"exit\r").await;
    term.login().await;
    term.send(b"echo [$A]; run x\r").await;
    let text = term.until("web01:~$ ").await;
    assert!(
        text.contains("[]\r\nsh: run: command not found"),
        "{text:?}"
    );
}

#[tokio::test]
async fn ctrl_d_and_exit_log_out() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    term.send(b"\x04").await;
    assert!(
        term.until("web01 login: ")
            .await
            .starts_with("logout\r\n\r\nDebian GNU/Linux 12 web01 ttyS0")
    );
    term.send(b"root\rx\r").await;
    term.until("web01:~$ ").await;
    term.send(b"exit\r").await;
    term.until("logout\r\n").await;
    term.until("web01 login: ").await;
}

#[tokio::test]
async fn window_size_is_remembered() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    let op = ControlOp::WindowSize {
        cols: 132,
        rows: 50,
    };
    term.link.control.control(op).await.unwrap();
    term.send(b"stty size\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "stty size\r\n50 132\r\nweb01:~$ "
    );
}

/// The transcript of a session typed in `chunks`, read concurrently.
async fn transcript(chunks: Vec<Vec<u8>>) -> Vec<u8> {
    let mut link = connector("sim://web01?boot=none&password=pw")
        .connect()
        .await
        .unwrap();
    let end = b"echo end\r\nend\r\nweb01:~$ ";
    let writing = async {
        for chunk in chunks {
            link.writer.write_all(&chunk).await.unwrap();
        }
    };
    let reading = async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 100];
        while !seen.ends_with(end) {
            let n = link.reader.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    };
    let ((), seen) = timeout(WAIT, async { tokio::join!(writing, reading) })
        .await
        .expect("session stuck");
    seen
}

#[tokio::test]
async fn input_split_anywhere_gives_the_same_session() {
    let input: &[u8] =
        b"root\r\nwrong\rroot\rpw\r\0echo one  two\rcat\rabc\r\x04ec\xc3\xa9\x7fho x\x7fy\r\
          foo\r\x03\x1b[Decho \xe2\x82\xac\r\x04root\rpw\recho end\r";
    let whole = transcript(vec![input.to_vec()]).await;
    let text = String::from_utf8_lossy(&whole);
    assert!(text.contains("\r\none two\r\n"), "{text}");
    assert!(text.contains("\r\nabc\r\nabc\r\n"), "{text}");
    assert!(text.contains("\r\ny\r\n"), "{text}");
    assert!(text.contains("\r\n\u{20ac}\r\n"), "{text}");
    assert!(text.contains("Login incorrect"), "{text}");
    assert!(text.contains("logout"), "{text}");

    let bytes = input.iter().map(|b| vec![*b]).collect();
    assert_eq!(transcript(bytes).await, whole);
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20 {
        let mut chunks = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rng.random_range(1..=rest.len().min(9)));
            chunks.push(chunk.to_vec());
            rest = tail;
        }
        assert_eq!(transcript(chunks).await, whole);
    }
}

#[tokio::test]
async fn flood_delivers_about_the_rate() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    term.send(b"flood 200k 1\r").await;
    term.until("flood 200k 1\r\n").await;
    let start = Instant::now();
    let text = term.until("web01:~$ ").await;
    let elapsed = start.elapsed();
    let lines_end = text.find("flood: ").expect("no summary");
    let lines = &text.as_bytes()[..lines_end];
    let count = check_lines(lines, 1).unwrap();
    let bytes = count * LINE_LEN as u64;
    assert!((100_000..=300_000).contains(&bytes), "{bytes} bytes");
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed <= Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(text[lines_end..].starts_with(&format!("flood: {count} lines, {bytes} bytes in ")));
}

#[tokio::test]
async fn ctrl_c_stops_a_flood() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    term.send(b"flood max\r").await;
    term.until("flood max\r\n").await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = std::mem::take(&mut term.seen);
    while lines.len() < 1_000_000 {
        let n = term.link.reader.read(&mut buf).await.unwrap();
        lines.extend_from_slice(&buf[..n]);
    }
    term.send(b"\x03").await;
    let text = term.until("^C\r\nweb01:~$ ").await;
    lines.extend_from_slice(&text.as_bytes()[..text.len() - "^C\r\nweb01:~$ ".len()]);
    let whole = lines.len() - lines.len() % LINE_LEN;
    assert!(check_lines(&lines[..whole], 1).unwrap() > 15_000);
    // The flood is over: the next output is the echo of what we type.
    term.send(b"echo after\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "echo after\r\nafter\r\nweb01:~$ "
    );
}

#[tokio::test]
async fn panic_hangs_until_break_then_boot_boots_again() {
    let mut term = Term::open("sim://web01?boot=fast").await;
    term.login().await;
    term.send(b"panic\r").await;
    let text = term
        .until("---[ end Kernel panic - not syncing: sysrq triggered crash ]---\r\n")
        .await;
    for want in [
        "] sysrq: Trigger a crash\r\n",
        "] Kernel panic - not syncing: sysrq triggered crash\r\n",
        "] Call Trace:\r\n",
        "]  panic+0x118/0x2ed\r\n",
        "]  entry_SYSCALL_64_after_hwframe+0x64/0xce\r\n",
        "] Kernel Offset: ",
    ] {
        assert!(text.contains(want), "no {want:?} in {text}");
    }
    // Hung: typing does nothing.
    term.send(b"echo hello\r\x03\x04").await;
    assert!(term.quiet(Duration::from_millis(200)).await.is_empty());
    term.brk().await;
    let text = term.until("ok ").await;
    assert!(
        text.contains("SimBoot monitor 1.4 on web01: BREAK received."),
        "{text}"
    );
    term.send(b"boot\r").await;
    let text = term.until("web01 login: ").await;
    assert!(text.contains("GNU GRUB"), "{text}");
    assert!(text.contains("[    0.000000] Linux version"), "{text}");
    term.send(b"root\rsecret\r").await;
    term.until("web01:~$ ").await;
}

#[tokio::test]
async fn break_enters_the_monitor_whose_commands_work() {
    let mut term = Term::open("sim://web01?boot=none&baud=9600").await;
    term.login().await;
    term.brk().await;
    term.until("ok ").await;
    term.send(b"printenv\r").await;
    let text = term.until("ok ").await;
    assert!(text.contains("hostname=web01\r\n"), "{text}");
    assert!(text.contains("ttya-mode=9600,8,n,1,-\r\n"), "{text}");
    term.send(b"help\r").await;
    assert!(term.until("ok ").await.contains("reset "));
    term.send(b"frob\r").await;
    assert!(
        term.until("ok ")
            .await
            .contains("Error: unknown command 'frob'; type 'help' for the commands.\r\n")
    );
    // BREAK again: still in the monitor.
    term.brk().await;
    term.until("\r\nok ").await;
    term.send(b"go\r").await;
    assert_eq!(term.until("web01:~$ ").await, "go\r\nweb01:~$ ");
    term.send(b"echo back\r").await;
    assert!(term.until("web01:~$ ").await.contains("\r\nback\r\n"));
    term.brk().await;
    term.until("ok ").await;
    term.send(b"reset\r").await;
    // boot=none: straight back to login.
    term.until("Resetting ...\r\n\r\nweb01 login: ").await;
}

#[tokio::test]
async fn break_during_boot_and_go_resumes_the_boot() {
    let mut term = Term::open("sim://web01?boot=fast").await;
    term.brk().await;
    let text = term.until("ok ").await;
    assert!(!text.contains("login:"), "{text}");
    term.send(b"go\r").await;
    let text = term.until("web01 login: ").await;
    assert!(text.contains("[  OK  ] Started"), "{text}");
}

#[tokio::test]
async fn reboot_boots_again() {
    let mut term = Term::open("sim://web01?boot=fast").await;
    term.login().await;
    term.send(b"reboot\r").await;
    let text = term.until("web01 login: ").await;
    assert!(
        text.contains("[  OK  ] Reached target reboot.target"),
        "{text}"
    );
    assert!(text.contains("] reboot: Restarting system\r\n"), "{text}");
    assert!(text.contains("SimBIOS"), "{text}");
    assert!(text.contains("[    0.000000] Linux version"), "{text}");
}

#[tokio::test]
async fn baud_rate_paces_output() {
    let mut term = Term::open("sim://web01?boot=none&baud=9600").await;
    term.login().await;
    let start = Instant::now();
    term.send(b"help\r").await;
    let text = term.until("web01:~$ ").await;
    // About 570 bytes at 960 bytes per second.
    assert!(text.len() > 500, "{}", text.len());
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_reader_that_stops_does_not_make_memory_grow() {
    let dev = Arc::new(Device::new(
        "web01",
        SimOptions::from_query(&Url::parse("sim://web01?boot=none").unwrap()).unwrap(),
    ));
    let (mut link, shared) = link::open(dev);
    let mut buf = [0u8; 64];
    let _ = link.reader.read(&mut buf).await.unwrap();
    link.writer.write_all(b"root\rpw\r").await.unwrap();
    // A flood nobody reads generates nothing.
    link.writer.write_all(b"flood max\r").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(shared.pending() < OUT_HIGH, "{}", shared.pending());
    link.writer.write_all(b"\x03").await.unwrap();
    // Typing at a machine nobody reads blocks once its small buffer is full.
    let line = [b"echo ".as_slice(), &[b'x'; 200], b"\r"].concat();
    let mut typed = 0;
    let blocked = loop {
        match timeout(Duration::from_millis(100), link.writer.write(&line)).await {
            Ok(n) => typed += n.unwrap(),
            Err(_) => break true,
        }
        if typed > 1_000_000 {
            break false;
        }
    };
    assert!(blocked, "wrote {typed} bytes without anyone reading");
    let bound = OUT_HIGH + 2 * MAX_LINE + 64;
    assert!(shared.pending() <= bound, "{} > {bound}", shared.pending());
    // Reading makes room again.
    let writing = async {
        for _ in 0..100 {
            link.writer.write_all(&line).await.unwrap();
        }
        link.writer.write_all(b"echo done\r").await.unwrap();
    };
    let reading = async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1000];
        while !seen.ends_with(b"done\r\nweb01:~$ ") {
            let n = link.reader.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
    };
    timeout(WAIT, async { tokio::join!(writing, reading) })
        .await
        .expect("stuck after reading resumed");
}

#[tokio::test]
async fn a_dropped_reader_does_not_block_the_writer() {
    let mut link = connector("sim://web01?boot=none").connect().await.unwrap();
    drop(std::mem::replace(
        &mut link.reader,
        Box::pin(tokio::io::empty()),
    ));
    let input = b"root\rx\recho hello there\r".repeat(20_000);
    timeout(WAIT, link.writer.write_all(&input))
        .await
        .expect("writer blocked")
        .unwrap();
}

#[test]
fn capabilities_and_address() {
    let sim = connector("sim://web01?boot=fast&password=s3cret&seed=5");
    let caps = sim.capabilities();
    assert!(caps.send_break && caps.window_size);
    assert!(!caps.line_settings && !caps.modem_lines);
    assert_eq!(sim.address(), "sim://web01?boot=fast&seed=5&password=***");
    assert_eq!(sim.name(), "web01");
    assert!(!format!("{sim:?}").contains("s3cret"));
    assert_eq!(connector("sim://db").address(), "sim://db");
}

#[tokio::test]
async fn seq_prints_numbers() {
    let mut term = Term::open("sim://web01?boot=none").await;
    term.login().await;
    term.send(b"seq 3\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "seq 3\r\n1\r\n2\r\n3\r\nweb01:~$ "
    );
    term.send(b"seq 9 10\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "seq 9 10\r\n9\r\n10\r\nweb01:~$ "
    );
    term.send(b"seq x\r").await;
    assert!(term.until("web01:~$ ").await.contains("usage: seq"));
    term.send(b"seq 1 20000\r").await;
    assert!(
        term.until("web01:~$ ")
            .await
            .contains("at most 10000 lines")
    );
}

#[tokio::test]
async fn the_pager_stops_long_output_at_more() {
    let mut term = Term::open("sim://web01?boot=none&pager=3").await;
    term.login().await;
    // A page or less: no pager.
    term.send(b"seq 2\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "seq 2\r\n1\r\n2\r\nweb01:~$ "
    );
    term.send(b"seq 8\r").await;
    assert_eq!(
        term.until("--More--").await,
        "seq 8\r\n1\r\n2\r\n3\r\n--More--"
    );
    assert!(term.quiet(Duration::from_millis(50)).await.is_empty());
    // Space: the next page; Enter: one line; other keys: the bell.
    term.send(b" ").await;
    assert_eq!(
        term.until("--More--").await,
        "\r        \r4\r\n5\r\n6\r\n--More--"
    );
    term.send(b"x\r").await;
    assert_eq!(
        term.until("--More--").await,
        "\x07\r        \r7\r\n--More--"
    );
    term.send(b" ").await;
    assert_eq!(term.until("web01:~$ ").await, "\r        \r8\r\nweb01:~$ ");
    // q drops the rest.
    term.send(b"seq 100\r").await;
    term.until("--More--").await;
    term.send(b"q").await;
    assert_eq!(term.until("web01:~$ ").await, "\r        \rweb01:~$ ");
    term.send(b"echo done\r").await;
    assert_eq!(
        term.until("web01:~$ ").await,
        "echo done\r\ndone\r\nweb01:~$ "
    );
}

#[test]
fn options_parse_and_errors_name_the_parameter() {
    let url = Url::parse("sim://x?boot=none&baud=9600&seed=42&login=admin&password=a%20b").unwrap();
    let opts = SimOptions::from_query(&url).unwrap();
    assert_eq!(opts.boot, BootSpeed::None);
    assert_eq!(opts.baud, Some(9600));
    assert_eq!(opts.seed, Some(42));
    assert_eq!(opts.login.as_deref(), Some("admin"));
    assert_eq!(opts.password.as_deref(), Some("a b"));
    assert_eq!(
        SimOptions::from_query(&Url::parse("sim://x").unwrap()).unwrap(),
        SimOptions::default()
    );
    for (query, needle) in [
        (
            "boot=slow",
            "parameter `boot` must be normal, fast or none, not `slow`",
        ),
        (
            "baud=fast",
            "parameter `baud` must be a whole number from 50 to 4000000",
        ),
        ("baud=0", "parameter `baud`"),
        ("seed=-1", "parameter `seed` must be a whole number"),
        ("login=", "parameter `login`"),
        ("login=a%20b", "parameter `login`"),
        ("boot=fast&boot=none", "parameter `boot` is given twice"),
        (
            "colour=red",
            "unknown parameter `colour` (known: boot, baud, seed, login, password, pager)",
        ),
        ("password=hunter2&x=1", "unknown parameter `x`"),
        (
            "pager=0",
            "parameter `pager` must be a number of lines from 1 to 1000",
        ),
        ("pager=1001", "parameter `pager`"),
    ] {
        let url = Url::parse(&format!("sim://x?{query}")).unwrap();
        let err = SimOptions::from_query(&url).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, mo_core::Error::BadAddress { .. }), "{text}");
        assert!(text.contains(needle), "{query}: {text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

/// Random typing, BREAKs, window changes and reads of random sizes at random moments never panic
/// the machine, never end the stream, and never let its buffer grow.
#[test]
fn random_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0005);
    let words: &[&[u8]] = &[
        b"root\r",
        b"pw\r",
        b"echo hi\r",
        b"flood max 0.05\r",
        b"flood 1M\r",
        b"panic\r",
        b"reboot\r",
        b"cat\r",
        b"go\r",
        b"boot\r",
        b"reset\r",
        b"printenv\r",
        b"help\r",
        b"uptime\r",
        b"date\r",
        b"uname -snx\r",
        b"stty size\r",
        b"exit\r",
        b"\x03",
        b"\x04",
        b"\x1b[A",
        b"\x7f",
        b"\r\n",
        b"\xff\xfe",
    ];
    let bound = OUT_HIGH + 2 * MAX_LINE + 1024;
    let mut produced_total = 0u64;
    for round in 0..60 {
        let opts = SimOptions {
            boot: [BootSpeed::Fast, BootSpeed::None][round % 2],
            baud: (round % 5 == 0).then_some(115_200),
            seed: Some(rng.random()),
            login: None,
            password: (round % 3 == 0).then(|| "pw".to_string()),
            pager: (round % 4 == 0).then_some(3),
        };
        let start = Instant::now();
        let mut now = start;
        let mut machine = Machine::new(
            Arc::new(Device::new("r", opts)),
            now,
            std::time::SystemTime::now(),
        );
        for _ in 0..1500 {
            match rng.random_range(0..10) {
                0..=2 => {
                    let mut data = vec![0u8; rng.random_range(0..40)];
                    rng.fill(&mut data[..]);
                    machine.input(now, &data);
                }
                3..=4 => {
                    let word = words[rng.random_range(0..words.len())];
                    machine.input(now, word);
                }
                5 => machine.brk(),
                6 => machine.window = (rng.random(), rng.random()),
                _ => {
                    let mut dst = vec![0u8; rng.random_range(0..20_000)];
                    match machine.produce(now, &mut dst) {
                        Produced::Bytes(n) => {
                            assert!(n <= dst.len());
                            assert!(n > 0 || dst.is_empty(), "end of stream");
                            produced_total += n as u64;
                        }
                        Produced::WaitUntil(at) => assert!(at > now),
                        Produced::Idle => {}
                    }
                }
            }
            assert!(machine.pending() <= bound, "{} pending", machine.pending());
            now += Duration::from_micros(rng.random_range(0..20_000));
        }
    }
    assert!(produced_total > 1_000_000, "{produced_total}");
}
