//! The `mo` binary, run as a user would, on a temporary data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Mo {
    _tmp: tempfile::TempDir,
    data: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        assert!(self.stderr.is_empty(), "stderr: {}", self.stderr);
        self
    }

    /// A failure: exit status `code`, one line on stderr starting with `mo: ` and containing `want`.
    fn fails(self, code: i32, want: &str) -> Run {
        assert_eq!(
            self.code, code,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.starts_with("mo: "), "stderr: {}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "one line: {}", self.stderr);
        assert!(
            self.stderr.contains(want),
            "want {want:?} in {}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

impl Mo {
    fn new() -> Mo {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        Mo { _tmp: tmp, data }
    }

    fn dir(&self) -> &Path {
        self._tmp.path()
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mo"))
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env_remove("MO_DATA_DIR")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    fn keygen(&self, name: &str) -> PathBuf {
        let path = self.dir().join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path.with_extension("pub")
    }
}

#[test]
fn devices_add_list_show_set_rm() {
    let mo = Mo::new();
    mo.run(&["device", "list"]).fails(1, "does not exist");

    let r = mo
        .run(&[
            "device",
            "add",
            "web01",
            "serial:///dev/ttyS0?baud=115200",
            "--description",
            "front",
        ])
        .ok();
    assert!(r.stdout.contains("added device `web01`"), "{}", r.stdout);
    mo.run(&[
        "device",
        "add",
        "lab",
        "sim://lab",
        "--on-demand",
        "--replay-lines",
        "100",
        "--no-join",
        "--escape",
        "^]q",
        "--break",
        "3=#.",
        "--break",
        "5=\\r~^b",
    ])
    .ok();

    let list = mo.run(&["device", "list"]).ok().stdout;
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert!(
        lines[1].starts_with("lab ") && lines[1].contains("sim://lab") && lines[1].contains("100"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("web01 ") && lines[2].contains("front"),
        "{list}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&mo.run(&["device", "list", "--json"]).ok().stdout).unwrap();
    assert_eq!(json[0]["name"], "lab");
    assert_eq!(json[0]["settings"]["on_demand"], true);
    assert_eq!(json[0]["settings"]["allow_join"], false);
    assert_eq!(json[0]["settings"]["escape"], "^]q");
    assert_eq!(json[0]["settings"]["break_sequences"]["5"], "\\r~^b");
    assert_eq!(json[1]["settings"]["replay_lines"], 20);

    let show = mo.run(&["device", "show", "lab"]).ok().stdout;
    assert!(show.contains("on demand"), "{show}");
    assert!(show.contains("^]q (Ctrl-] q)"), "{show}");
    assert!(
        show.contains("break 1:") && show.contains("\\z (default)"),
        "{show}"
    );
    let break3 = show
        .lines()
        .find(|l| l.starts_with("break 3:"))
        .unwrap_or_default();
    assert_eq!(break3.trim_start_matches("break 3:").trim(), "#.", "{show}");
    assert!(show.contains("logs/lab"), "{show}");

    mo.run(&[
        "device",
        "set",
        "lab",
        "--url",
        "unix:///run/lab.sock",
        "--always-connected",
        "--join",
        "--default-escape",
        "--clear-break",
        "3",
        "--description",
        "moved",
    ])
    .ok();
    let json: serde_json::Value =
        serde_json::from_str(&mo.run(&["device", "show", "lab", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["url"], "unix:///run/lab.sock");
    assert_eq!(json["settings"]["on_demand"], false);
    assert_eq!(json["settings"]["allow_join"], true);
    assert_eq!(json["settings"]["escape"], serde_json::Value::Null);
    assert_eq!(
        json["settings"]["break_sequences"],
        serde_json::json!({"5": "\\r~^b"})
    );
    assert_eq!(json["settings"]["description"], "moved");
    assert_eq!(
        json["settings"]["replay_lines"], 100,
        "untouched settings stay"
    );

    mo.run(&["device", "rm", "lab"]).ok();
    mo.run(&["device", "rm", "lab"])
        .fails(1, "unknown device `lab`");
    mo.run(&["device", "show", "lab"])
        .fails(1, "unknown device `lab`");
    mo.run(&["device", "set", "lab", "--on-demand"])
        .fails(1, "unknown device `lab`");
    let list = mo.run(&["device", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn device_errors_are_one_clear_line() {
    let mo = Mo::new();
    mo.run(&["device", "add", "web01", "sim://web01"]).ok();
    mo.run(&["device", "add", "web01", "sim://other"])
        .fails(1, "device `web01` already exists");
    mo.run(&["device", "add", "web/01", "sim://x"])
        .fails(1, "bad device name `web/01`: contains `/`");
    mo.run(&["device", "add", "-x", "sim://x"])
        .fails(2, "unexpected argument");
    mo.run(&["device", "add", "web02", "/dev/ttyS0"])
        .fails(1, "bad URL `/dev/ttyS0` for device `web02`: not a URL");
    mo.run(&["device", "add", "web02", "telnot://cs1:7001"])
        .fails(
            1,
            "device `web02`: bad address `telnot://cs1:7001`: unknown scheme `telnot`",
        );
    mo.run(&["device", "add", "web02", "serial:///dev/ttyS0?baud=fast"])
        .fails(1, "baud");
    mo.run(&["device", "add", "web02", "tcp://[::1"])
        .fails(1, "bad URL `tcp://[::1` for device `web02`");
    mo.run(&["device", "add", "web02", "sim://x", "--escape", "^E"])
        .fails(1, "bad escape `^E` for device `web02`");
    mo.run(&["device", "add", "web02", "sim://x", "--break", "12=x"])
        .fails(2, "must be 1 to 9");
    mo.run(&["device", "add", "web02", "sim://x", "--break", "1=\\q"])
        .fails(2, "unknown escape");
    mo.run(&["device", "add", "web02", "sim://x", "--replay-lines", "-1"])
        .fails(2, "unexpected argument '-1'");
    mo.run(&["device", "set", "web01", "--url", "nope"])
        .fails(1, "bad URL `nope` for device `web01`");
    let list = mo.run(&["device", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "only web01: {list}");
    assert!(list.contains("sim://web01"), "{list}");
}

#[test]
fn users_with_password_and_keys() {
    let mo = Mo::new();
    let alice_key = mo.keygen("alice");
    let bob_key = mo.keygen("bob");

    mo.run(&["user", "add", "alice"])
        .fails(1, "would have no way to log in");
    let r = mo
        .run_with_stdin(
            &[
                "user",
                "add",
                "alice",
                "--password-stdin",
                "--ssh-key",
                alice_key.to_str().unwrap(),
            ],
            "s3cret\nignored\n",
        )
        .ok();
    assert!(
        r.stdout
            .contains("added user `alice` with a password and 1 SSH key"),
        "{}",
        r.stdout
    );
    mo.run_with_stdin(&["user", "add", "alice", "--password-stdin"], "x\n")
        .fails(1, "user `alice` already exists");

    // The same key again, for another user: refused, naming the owner; nothing is added.
    mo.run(&[
        "user",
        "add",
        "bob",
        "--ssh-key",
        alice_key.to_str().unwrap(),
    ])
    .fails(1, "is already registered for user `alice`");
    mo.run(&["user", "add", "bob", "--ssh-key", "/nonexistent.pub"])
        .fails(1, "cannot read SSH key file /nonexistent.pub");
    let private = bob_key.with_extension("");
    mo.run(&["user", "add", "bob", "--ssh-key", private.to_str().unwrap()])
        .fails(1, "private key");
    mo.run_with_stdin(&["user", "add", "bob", "--password-stdin"], "\n")
        .fails(1, "no password on standard input");
    mo.run_with_stdin(&["user", "add", "Bob", "--password-stdin"], "pw\n")
        .fails(1, "bad user name `Bob`");
    mo.run(&["user", "add", "bob", "--ssh-key", bob_key.to_str().unwrap()])
        .ok();

    let list = mo.run(&["user", "list"]).ok().stdout;
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[1].starts_with("alice") && lines[1].contains("yes"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("bob") && lines[2].contains("no"),
        "{list}"
    );

    // The stored credentials work, through the library the daemon uses.
    let store = mo_store::Store::open(mo.data.join("mo.db")).unwrap();
    assert!(store.verify_password("alice", "s3cret").unwrap());
    assert!(!store.verify_password("alice", "s3cret\nignored").unwrap());
    let key = mo_store::SshPublicKey::parse(&std::fs::read_to_string(&bob_key).unwrap()).unwrap();
    assert_eq!(
        store
            .find_user_by_key(key.key_type(), key.blob_base64())
            .unwrap()
            .as_deref(),
        Some("bob")
    );

    mo.run_with_stdin(&["user", "passwd", "bob", "--password-stdin"], "n3w\r\n")
        .ok();
    assert!(store.verify_password("bob", "n3w").unwrap());
    mo.run(&["user", "passwd", "bob"])
        .fails(1, "--password-stdin");
    mo.run_with_stdin(&["user", "passwd", "carol", "--password-stdin"], "x\n")
        .fails(1, "unknown user `carol`");

    // Keys: add from stdin, list, remove.
    let extra = mo.keygen("extra");
    let text = std::fs::read_to_string(&extra).unwrap();
    mo.run_with_stdin(&["user", "key", "add", "bob", "-"], &text)
        .ok();
    mo.run_with_stdin(&["user", "key", "add", "bob", "-"], &text)
        .fails(1, "already registered for user `bob`");
    let keys = mo.run(&["user", "key", "list", "bob"]).ok().stdout;
    assert_eq!(keys.lines().count(), 3, "{keys}");
    let fingerprint = mo_store::SshPublicKey::parse(&text)
        .unwrap()
        .fingerprint()
        .to_string();
    assert!(
        keys.contains(&fingerprint) && keys.contains("extra"),
        "{keys}"
    );
    mo.run(&["user", "key", "rm", "bob", &fingerprint]).ok();
    assert_eq!(
        mo.run(&["user", "key", "list", "bob"])
            .ok()
            .stdout
            .lines()
            .count(),
        2
    );
    mo.run_with_stdin(
        &["user", "key", "add", "bob", "-"],
        "ssh-ed25519 AAAAgarbage\n",
    )
    .fails(1, "bad SSH public key (standard input line 1)");

    mo.run(&["user", "rm", "bob"]).ok();
    mo.run(&["user", "rm", "bob"])
        .fails(1, "unknown user `bob`");
    assert_eq!(
        store
            .find_user_by_key(key.key_type(), key.blob_base64())
            .unwrap(),
        None
    );
}

#[test]
fn help_is_complete() {
    let mo = Mo::new();
    let help = mo.run(&["--help"]).ok().stdout;
    for word in [
        "device",
        "user",
        "log",
        "--data-dir",
        "MO_DATA_DIR",
        "Examples:",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let help = mo.run(&["device", "add", "--help"]).ok().stdout;
    for word in [
        "--on-demand",
        "--replay-lines",
        "--no-join",
        "--escape",
        "--break",
        "--description",
        "Examples:",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let help = mo.run(&["user", "add", "--help"]).ok().stdout;
    assert!(
        help.contains("--password-stdin") && help.contains("--ssh-key"),
        "{help}"
    );
}

#[test]
fn data_dir_from_environment() {
    let mo = Mo::new();
    let env_dir = mo.dir().join("from-env");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mo"))
            .args(args)
            .env("MO_DATA_DIR", &env_dir)
            .output()
            .unwrap()
    };
    assert!(run(&["device", "add", "a", "sim://a"]).status.success());
    assert!(env_dir.join("mo.db").is_file());
    let out = run(&["device", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sim://a"));
}

#[test]
fn data_dir_defaults_to_the_daemons() {
    // Without --data-dir or MO_DATA_DIR, `mo` works where `mod` keeps its data for a user.
    let mo = Mo::new();
    let xdg = mo.dir().join("xdg");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mo"))
            .args(args)
            .env_remove("MO_DATA_DIR")
            .env_remove("STATE_DIRECTORY")
            .env_remove("INVOCATION_ID")
            .env("XDG_DATA_HOME", &xdg)
            .current_dir(mo.dir())
            .output()
            .unwrap()
    };
    let out = run(&["device", "add", "b", "sim://b"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        xdg.join("mo").join("mo.db").is_file(),
        "the store is in $XDG_DATA_HOME/mo"
    );
    assert!(
        !mo.dir().join("mo-data").exists(),
        "nothing in the working directory"
    );
    let out = run(&["device", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sim://b"));
}

/// 2026-01-01T00:00:00Z in ns.
const JAN1: u64 = 1_767_225_600_000_000_000;
const DAY: u64 = 86_400_000_000_000;

fn chunk(
    seq: u64,
    time_ns: u64,
    kind: mo_core::record::RecordKind,
    user: &str,
    bytes: &'static str,
) -> mo_core::record::Chunk {
    mo_core::record::Chunk {
        seq,
        time_ns,
        kind,
        user: user.into(),
        offset: 0,
        bytes: bytes.into(),
    }
}

/// A log for `web01` written through the real writer: a login on Jan 1, a command on Jan 2.
fn write_log(mo: &Mo) -> (PathBuf, mo_core::log::LogWriter) {
    use mo_core::log::{LogOptions, LogWriter};
    use mo_core::record::{RecordKind, RecordSink};
    let dir = mo_store::DataDir::open(&mo.data)
        .unwrap()
        .create_device_log_dir("web01")
        .unwrap();
    let (mut writer, _) = LogWriter::open(&dir, LogOptions::default()).unwrap();
    let records = [
        (JAN1, RecordKind::Output, "", "login: "),
        (JAN1 + 1_000_000_000, RecordKind::Input, "alice", "root\r"),
        (
            JAN1 + 2_000_000_000,
            RecordKind::Output,
            "",
            "root\r\nwelcome to web01\r\n# ",
        ),
        (JAN1 + DAY, RecordKind::Notice, "bob", "attached read-write"),
        (
            JAN1 + DAY + 1_000_000_000,
            RecordKind::Input,
            "bob",
            "uptime\r",
        ),
        (
            JAN1 + DAY + 2_000_000_000,
            RecordKind::Output,
            "",
            "uptime\r\n up 3 days\r\n# ",
        ),
    ];
    for (time, kind, user, bytes) in records {
        let seq = writer.next_seq();
        writer.append(&chunk(seq, time, kind, user, bytes)).unwrap();
    }
    writer.flush().unwrap();
    (dir, writer)
}

#[test]
fn log_show_tail_and_filters() {
    let mo = Mo::new();
    let (_dir, _writer) = write_log(&mo);

    let all = mo.run(&["log", "show", "web01"]).ok().stdout;
    assert!(
        all.contains("2026-01-01T00:00:00.000Z login: root"),
        "{all}"
    );
    assert!(
        all.contains("2026-01-01T00:00:01.000Z <alice> root"),
        "{all}"
    );
    assert!(all.contains("welcome to web01"), "{all}");
    assert!(
        all.contains("2026-01-02T00:00:00.000Z [notice bob] attached read-write"),
        "{all}"
    );
    assert!(all.contains("<bob> uptime"), "{all}");
    assert!(
        all.lines().all(|l| l.starts_with("2026-01-0")),
        "every line has a timestamp: {all}"
    );

    let day2 = mo
        .run(&["log", "show", "web01", "--since", "2026-01-02"])
        .ok()
        .stdout;
    assert!(
        !day2.contains("alice") && day2.contains("up 3 days"),
        "{day2}"
    );
    let day1 = mo
        .run(&["log", "show", "web01", "--until", "2026-01-02T00:00:00Z"])
        .ok()
        .stdout;
    assert!(day1.contains("alice") && !day1.contains("bob"), "{day1}");
    let input = mo
        .run(&["log", "show", "web01", "--kind", "input"])
        .ok()
        .stdout;
    assert_eq!(input.lines().count(), 2, "{input}");
    assert!(
        input.contains("<alice> root") && input.contains("<bob> uptime"),
        "{input}"
    );

    let tail = mo.run(&["log", "tail", "web01", "-n", "1"]).ok().stdout;
    assert!(
        tail.contains("up 3 days") && !tail.contains("bob"),
        "{tail}"
    );

    mo.run(&["log", "show", "web01", "--since", "yesterday-ish"])
        .fails(1, "bad time `yesterday-ish`");
    mo.run(&["log", "show", "web01", "--kind", "typing"])
        .fails(1, "unknown record kind `typing`");
    mo.run(&["log", "show", "web01", "--since", "1h", "--until", "2h"])
        .fails(1, "--until must be later");
    mo.run(&["log", "show", "db01"])
        .fails(1, "no record log for device `db01`");
    mo.run(&["log", "show", "../x"])
        .fails(1, "bad device name `../x`");
}

#[test]
fn log_verify_reports_tampering() {
    let mo = Mo::new();
    let (dir, writer) = write_log(&mo);
    drop(writer);
    let r = mo.run(&["log", "verify", "web01"]).ok();
    assert!(
        r.stdout.contains("OK") && r.stdout.contains("6 records"),
        "{}",
        r.stdout
    );

    // A crash mid-record (a torn tail) is only a warning.
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mlog"))
        .max()
        .unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let r = mo.run(&["log", "verify", "web01"]).ok();
    assert!(
        r.stdout.contains("OK") && r.stdout.contains("torn"),
        "{}",
        r.stdout
    );

    // Change one byte of recorded output (the records span two days, so there are two segments).
    let segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mlog"))
        .collect();
    assert!(!segments.is_empty());
    let mut changed = false;
    for segment in segments {
        let mut data = std::fs::read(&segment).unwrap();
        if let Some(at) = data.windows(7).position(|w| w == b"welcome") {
            data[at] = b'W';
            std::fs::write(&segment, data).unwrap();
            changed = true;
        }
    }
    assert!(changed, "the payload is in a segment file");

    let r = mo.run(&["log", "verify", "web01"]);
    assert_eq!(r.code, 1, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("DAMAGED") && r.stdout.contains("problem:"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn log_follow_prints_new_records() {
    use mo_core::record::{RecordKind, RecordSink};
    use std::io::{BufRead, BufReader};
    let mo = Mo::new();
    let (_dir, mut writer) = write_log(&mo);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mo"))
        .arg("--data-dir")
        .arg(&mo.data)
        .args(["log", "tail", "web01", "-n", "1", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The last record is "uptime\r\n up 3 days\r\n# ": several lines.
    let first = lines.next().unwrap().unwrap();
    assert!(first.ends_with(" uptime"), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("up 3 days"), "{second}");

    let seq = writer.next_seq();
    writer
        .append(&chunk(
            seq,
            JAN1 + 2 * DAY,
            RecordKind::Note,
            "carol",
            "rebooting for firmware",
        ))
        .unwrap();
    writer.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            let done = line.contains("[note carol] rebooting for firmware");
            seen.push(line);
            if done {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter()
            .any(|l| l.contains("2026-01-03T00:00:00.000Z [note carol] rebooting for firmware")),
        "{seen:?}"
    );
}

#[test]
fn config_export_carries_sealed_secrets_to_a_data_dir_with_the_same_key() {
    let old = Mo::new();
    old.run(&["device", "add", "bmc1", "ipmi://admin@bmc1"])
        .ok();
    old.run_with_stdin(
        &["secret", "set", "bmc1", "password", "--stdin"],
        "hunter2\n",
    )
    .ok();
    let site = old.dir().join("site.toml");
    old.run(&["config", "export", "-o", site.to_str().unwrap()])
        .ok();
    let text = std::fs::read_to_string(&site).unwrap();
    assert!(
        text.contains("[[secret]]") && !text.contains("hunter2"),
        "{text}"
    );

    // A data directory with another key refuses the whole import, naming the secret.
    let stranger = Mo::new();
    stranger.run(&["device", "list"]).fails(1, "does not exist");
    std::fs::create_dir_all(&stranger.data).unwrap();
    stranger
        .run(&["config", "import", site.to_str().unwrap()])
        .fails(1, "bmc1");
    // (the import created the store; the device did not land)
    assert!(!stranger.run(&["device", "list"]).stdout.contains("bmc1"));

    // With the old key copied along, the secret arrives; a second import changes nothing.
    let new = Mo::new();
    std::fs::create_dir_all(&new.data).unwrap();
    std::fs::copy(old.data.join("secret.key"), new.data.join("secret.key")).unwrap();
    let r = new.run(&["config", "import", site.to_str().unwrap()]).ok();
    assert!(
        r.stdout
            .contains("~ secret password of device bmc1 (sealed)"),
        "{}",
        r.stdout
    );
    let kinds = new.run(&["secret", "list", "bmc1"]).ok();
    assert!(kinds.stdout.contains("password"), "{}", kinds.stdout);
    let again = new.run(&["config", "import", site.to_str().unwrap()]).ok();
    assert!(again.stdout.contains("no changes"), "{}", again.stdout);
}

#[test]
fn device_log_policy_and_retention_settings() {
    let mo = Mo::new();
    mo.run(&[
        "device",
        "add",
        "web01",
        "sim://web01",
        "--log-policy",
        "strict",
        "--retain-days",
        "30",
        "--retain-gib",
        "0.5",
    ])
    .ok();
    let json: serde_json::Value =
        serde_json::from_str(&mo.run(&["device", "show", "web01", "--json"]).ok().stdout).unwrap();
    let s = &json["settings"];
    assert_eq!(s["log_policy"], "strict");
    assert_eq!(s["retain_days"], 30);
    assert_eq!(s["retain_gib"], 0.5);
    let text = mo.run(&["device", "show", "web01"]).ok().stdout;
    assert!(
        text.contains("log policy:") && text.contains("strict"),
        "{text}"
    );
    assert!(text.contains("30 days, 512 MiB"), "{text}");

    // Cleared with `none`; MiB for small limits; other settings stay.
    mo.run(&[
        "device",
        "set",
        "web01",
        "--retain-days",
        "none",
        "--retain-mib",
        "2",
        "--log-policy",
        "degrade",
    ])
    .ok();
    let list: serde_json::Value =
        serde_json::from_str(&mo.run(&["device", "list", "--json"]).ok().stdout).unwrap();
    let s = &list[0]["settings"];
    assert_eq!(s["log_policy"], "degrade");
    assert!(s["retain_days"].is_null(), "{s}");
    assert_eq!(s["retain_gib"], 2.0 / 1024.0);
    let text = mo.run(&["device", "show", "web01"]).ok().stdout;
    assert!(text.contains("the daemon's --retain-days, 2 MiB"), "{text}");

    // Bad values: usage errors naming the flag; nothing changes.
    for (args, flag) in [
        (&["--retain-days", "0"][..], "--retain-days"),
        (&["--retain-days", "many"][..], "--retain-days"),
        (&["--retain-gib", "lots"][..], "--retain-gib"),
        (&["--retain-gib", "0"][..], "--retain-gib"),
        (&["--log-policy", "lax"][..], "--log-policy"),
        (
            &["--retain-gib", "1", "--retain-mib", "5"][..],
            "--retain-mib",
        ),
    ] {
        let mut all = vec!["device", "set", "web01"];
        all.extend_from_slice(args);
        let r = mo.run(&all).fails(2, flag);
        assert!(!r.stderr.contains("panicked"));
    }
    mo.run(&["device", "add", "x", "sim://x", "--log-policy", "maybe"])
        .fails(2, "--log-policy");

    // Export carries the settings; importing the export again changes nothing.
    mo.run(&["device", "set", "web01", "--retain-days", "7"])
        .ok();
    let site = mo.dir().join("site.toml");
    mo.run(&["config", "export", "-o", site.to_str().unwrap()])
        .ok();
    let text = std::fs::read_to_string(&site).unwrap();
    for line in [
        "log_policy = \"degrade\"",
        "retain_days = 7",
        "retain_gib = 0.001953125",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let again = mo.run(&["config", "import", site.to_str().unwrap()]).ok();
    assert!(again.stdout.contains("no changes"), "{}", again.stdout);
    let other = Mo::new();
    other
        .run(&["config", "import", site.to_str().unwrap()])
        .ok();
    assert_eq!(
        other
            .run(&["device", "show", "web01", "--json"])
            .ok()
            .stdout,
        mo.run(&["device", "show", "web01", "--json"]).ok().stdout
    );
}

#[test]
fn log_usage_shows_bytes_and_what_retention_would_remove() {
    use mo_core::log::{LogOptions, LogWriter};
    use mo_core::record::{RecordKind, RecordSink, now_ns};
    let mo = Mo::new();
    mo.run(&["device", "add", "web01", "sim://web01"]).ok();
    let log = mo_store::DataDir::open(&mo.data)
        .unwrap()
        .create_device_log_dir("web01")
        .unwrap();
    // Ten segments: one record a day, from ten days ago to yesterday.
    let opts = LogOptions {
        segment_max_age: std::time::Duration::from_secs(3600),
        ..LogOptions::default()
    };
    let (mut writer, _) = LogWriter::open(&log, opts).unwrap();
    let start = now_ns() - 10 * DAY;
    for i in 0..10 {
        let seq = writer.next_seq();
        writer
            .append(&chunk(
                seq,
                start + i * DAY,
                RecordKind::Output,
                "",
                "boot\r\n",
            ))
            .unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    let files = || std::fs::read_dir(&log).unwrap().count();
    let before = files();
    let usage = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["log", "usage", "--json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&mo.run(&all).ok().stdout).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
        v[0].clone()
    };
    let on_disk: u64 = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>();
    let u = usage(&["web01"]);
    assert_eq!(u["device"], "web01");
    assert_eq!(u["segments"], 10);
    assert!(u["bytes"].as_u64().unwrap() <= on_disk, "{u}");
    assert!(u["bytes"].as_u64().unwrap() > 0, "{u}");
    assert_eq!(u["oldest_ns"], start);
    assert_eq!(u["newest_ns"], start + 9 * DAY);
    assert_eq!(u["remove"]["segments"], 0, "no retention: {u}");

    // As if the daemon ran with --retain-days 5: segment i (written i days after `start`, ten
    // days ago) goes when the next one's first record is more than 5 days old: 9 - i >= 5 (a
    // moment has passed since `start + 10 days`), so i <= 4.
    let u = usage(&["--retain-days", "5"]);
    assert_eq!(u["remove"]["segments"], 5, "{u}");
    assert!(u["remove"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(u["retention"]["max_age_secs"], 5.0 * 86_400.0);
    // The device's own setting wins over the daemon default: 9 - i >= 2, so i <= 7.
    mo.run(&["device", "set", "web01", "--retain-days", "2"])
        .ok();
    let u = usage(&["--retain-days", "5"]);
    assert_eq!(u["remove"]["segments"], 8, "{u}");
    // A size limit of one MiB keeps this small log whole.
    let u = usage(&["--retain-mib", "1"]);
    assert_eq!(u["retention"]["max_bytes"], 1024 * 1024);
    assert_eq!(u["remove"]["segments"], 8, "{u}");
    assert_eq!(files(), before, "usage deletes nothing");

    let table = mo.run(&["log", "usage"]).ok().stdout;
    assert!(table.contains("WOULD REMOVE"), "{table}");
    assert!(
        table.contains("web01") && table.contains("8 segments"),
        "{table}"
    );
    mo.run(&["log", "usage", "nosuch"]).fails(1, "nosuch");
}
