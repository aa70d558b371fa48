//! Every console kind through the daemon, end to end, against real peers: telnet, raw TCP and
//! RFC 2217 to ser2net, a `cs://` console-server profile resolved to ser2net's telnet port, and
//! IPMI SOL to ipmi_sim. For each, the device is added with `mo device add NAME URL`; what the
//! machine prints (written by the test into the pty behind the peer) lands in the device's record
//! log, and a line a user types through mod's SSH front door (the OpenSSH client in tmux) reaches
//! the pty and is logged as that user's input.
//!
//! The telnet bulk test sends binary data — every byte value, runs of 0xFF (telnet's IAC), CR NUL,
//! CR LF, lone CRs, bytes that look like telnet commands — both ways between ser2net's telnet port
//! (a telnet implementation that is not mo's) and a WebSocket viewer, and checks it byte-exact in
//! the record log and at the pty.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use mo_core::log::{ReadOptions, read};
use mo_core::record::RecordKind;
use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{
    Error, IPMI_PASSWORD, IpmiSim, Login, Result, Ser2net, SocatPty, WAIT, World, ensure, find,
    run_test,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a console may take to come up: ser2net now and then hangs up on a fresh connection,
/// and the console actor retries with backoff.
const UP: Duration = Duration::from_secs(60);

/// A token no earlier run left in any log.
fn token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}x{nanos:08x}", std::process::id())
}

/// The payloads of `device`'s records of `kind` (by `user`, when given), concatenated, read from
/// `DATA/logs/DEVICE` with mo's own log reader (checksums and sequence checked on the way).
fn logged(w: &World, device: &str, kind: RecordKind, user: Option<&str>) -> Result<Vec<u8>> {
    let dir = w.data_dir().join("logs").join(device);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let records = read(&dir, &ReadOptions::default())
        .map_err(|e| Error::Check(format!("reading the record log {}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for record in records {
        let record = record
            .map_err(|e| Error::Check(format!("reading the record log {}: {e}", dir.display())))?;
        if record.kind == kind && user.is_none_or(|u| record.user == u) {
            out.extend_from_slice(&record.bytes);
        }
    }
    Ok(out)
}

/// Poll the record log until the output of `device` holds `needle`.
fn wait_logged_output(w: &World, device: &str, needle: &[u8], limit: Duration) -> Result<Vec<u8>> {
    let deadline = Instant::now() + limit;
    loop {
        let out = logged(w, device, RecordKind::Output, None)?;
        if find(&out, needle).is_some() {
            return Ok(out);
        }
        ensure!(
            Instant::now() < deadline,
            "{:?} never reached the record log of {device} within {limit:?}; its output ends \
             with:\n{}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&out[out.len().saturating_sub(2000)..])
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Write numbered marker lines into the pty until one reaches the record log: the console is up
/// and passes bytes from the machine (a console still connecting, or an IPMI SOL session that
/// has not started passing bytes yet, drops what comes before).
fn wait_output_flows(w: &World, device: &str, pty: &mut SocatPty) -> Result<()> {
    let deadline = Instant::now() + UP;
    for n in 1.. {
        let marker = format!("{device}-up-{n}");
        pty.write_peer(format!("{marker}\r\n").as_bytes())?;
        let step = Instant::now() + Duration::from_millis(700);
        while Instant::now() < step {
            if find(
                &logged(w, device, RecordKind::Output, None)?,
                marker.as_bytes(),
            )
            .is_some()
            {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        ensure!(
            Instant::now() < deadline,
            "no marker written into {} reached the record log of {device} within {UP:?} ({n} \
             sent); the daemon log says why",
            pty.peer_path().display()
        );
    }
    Ok(())
}

/// The check every console kind passes: output into the log, typing to the device.
fn output_and_typing(w: &mut World, device: &str, pty: &mut SocatPty) -> Result<()> {
    let alice = w.add_user("alice", "alice-pw")?;
    w.start_daemon(&[])?;
    wait_output_flows(w, device, pty)?;

    // The machine prints a line: it is in the record log, as mo log show renders it.
    let tag = token();
    let said = format!("machine-says-{tag}");
    pty.write_peer(format!("{said}\r\n").as_bytes())?;
    wait_logged_output(w, device, said.as_bytes(), WAIT)?;
    let shown = w.mo_ok(&["log", "show", device], None)?;
    ensure!(
        shown.stdout.lines().any(|l| l.contains(&said)),
        "`mo log show {device}` lacks {said:?}:\n{}",
        shown.combined()
    );

    // alice types through the SSH front door; the line reaches the machine. Over IPMI SOL the
    // first keystrokes of a session can be dropped by the BMC: numbered lines until one arrives.
    let pane = w.terminal("alice", &alice, Login::Attach(device), &[])?;
    pane.wait_for("attached read-write", WAIT)?;
    pane.wait_for(&said, WAIT)?;
    let deadline = Instant::now() + UP;
    let mut typed = String::new();
    for n in 1.. {
        typed = format!("typed-{tag}-{n}");
        pane.send_line(&typed)?;
        let arrived = pty.received().wait_for(
            "the device's pty",
            &format!("{typed}\r"),
            Duration::from_secs(2),
        );
        if arrived.is_ok() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "nothing alice typed reached {} within {UP:?}; it got:\n{}",
            pty.peer_path().display(),
            pty.peer_text()
        );
    }
    // ... and it is in the log as alice's input.
    let deadline = Instant::now() + WAIT;
    loop {
        let input = logged(w, device, RecordKind::Input, Some("alice"))?;
        if find(&input, format!("{typed}\r").as_bytes()).is_some() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{typed:?} is not in the log as alice's input; her input:\n{}",
            String::from_utf8_lossy(&input)
        );
        thread::sleep(Duration::from_millis(100));
    }
    let shown = w.mo_ok(&["log", "show", device, "--kind", "input"], None)?;
    ensure!(
        shown
            .stdout
            .lines()
            .any(|l| l.contains("<alice>") && l.contains(&typed)),
        "`mo log show {device} --kind input` has no line by <alice> with {typed:?}:\n{}",
        shown.combined()
    );
    Ok(())
}

#[test]
fn telnet_console_to_ser2net() {
    run_test("kind-telnet", |w| {
        let mut peer = Ser2net::start(w.dir(), "telnet")?;
        let url = format!("telnet://127.0.0.1:{}", peer.telnet_port());
        w.add_device("tel1", &url, &[])?;
        output_and_typing(w, "tel1", peer.pty())
            .map_err(|e| Error::Check(format!("{e}\nser2net: {}", peer.log_text())))
    });
}

#[test]
fn raw_tcp_console_to_ser2net() {
    run_test("kind-tcp", |w| {
        let mut peer = Ser2net::start(w.dir(), "raw")?;
        let url = format!("tcp://127.0.0.1:{}", peer.raw_port());
        w.add_device("raw1", &url, &[])?;
        output_and_typing(w, "raw1", peer.pty())
            .map_err(|e| Error::Check(format!("{e}\nser2net: {}", peer.log_text())))
    });
}

#[test]
fn rfc2217_console_to_ser2net() {
    run_test("kind-rfc2217", |w| {
        let mut peer = Ser2net::start(w.dir(), "rfc2217")?;
        let url = format!("rfc2217://127.0.0.1:{}?baud=115200", peer.rfc2217_port());
        w.add_device("com1", &url, &[])?;
        output_and_typing(w, "com1", peer.pty())
            .map_err(|e| Error::Check(format!("{e}\nser2net: {}", peer.log_text())))
    });
}

#[test]
fn console_server_profile_to_ser2net() {
    run_test("kind-cs", |w| {
        let mut peer = Ser2net::start(w.dir(), "cs")?;
        // Port 1 of a ser2net console server whose telnet ports start at BASE + 1.
        let base = peer.telnet_port() - 1;
        let url = format!("cs://127.0.0.1/1?profile=ser2net&base={base}");
        w.add_device("cs1port1", &url, &[])?;
        let shown = w.mo_ok(&["device", "show", "cs1port1"], None)?;
        ensure!(
            shown.stdout.contains(&url),
            "`mo device show` does not give the cs:// address:\n{}",
            shown.combined()
        );
        output_and_typing(w, "cs1port1", peer.pty())
            .map_err(|e| Error::Check(format!("{e}\nser2net: {}", peer.log_text())))
    });
}

#[test]
fn ipmi_sol_console_to_ipmi_sim() {
    run_test("kind-ipmi", |w| {
        let mut sim = IpmiSim::start(w.dir(), "sol")?;
        w.add_device("bmc1", &sim.address(), &[])?;
        w.mo_ok(
            &["secret", "set", "bmc1", "password", "--stdin"],
            Some(&format!("{IPMI_PASSWORD}\n")),
        )?;
        let result = output_and_typing(w, "bmc1", sim.pty()?);
        sim.check_alive()?;
        result.map_err(|e| Error::Check(format!("{e}\nipmi_sim: {}", sim.log_text())))
    });
}

/// Binary data that stresses a telnet implementation: every byte value, runs of IAC (0xFF) of
/// many lengths, IAC followed by each command byte, CR NUL, CR LF, lone CRs at the end of a
/// chunk, then pseudo-random bytes with extra weight on 0xFF, 0x0D and 0x00.
fn telnet_torture(seed: u64, len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = (0..=255u8).collect();
    for run in 1..=9 {
        out.extend(std::iter::repeat_n(0xFF, run));
        out.push(b'x');
    }
    for command in 0xF0..=0xFFu8 {
        out.extend_from_slice(&[0xFF, command, 0x01]);
    }
    out.extend_from_slice(b"\r\0\r\n\r\r\0\0\n\r");
    let mut state = seed | 1;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(match state % 8 {
            0 => 0xFF,
            1 => b'\r',
            2 => 0,
            _ => (state >> 32) as u8,
        });
    }
    out
}

/// The bytes between `begin` and `end` in `hay` (after the first `begin`).
fn between<'a>(hay: &'a [u8], begin: &[u8], end: &[u8]) -> Option<&'a [u8]> {
    let start = find(hay, begin)? + begin.len();
    let stop = find(&hay[start..], end)?;
    Some(&hay[start..start + stop])
}

/// Where two byte strings first differ, for messages.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    let at = at.unwrap_or(a.len().min(b.len()));
    let show = |s: &[u8]| {
        format!(
            "{:02x?}",
            &s[at.saturating_sub(8).min(s.len())..(at + 8).min(s.len())]
        )
    };
    format!(
        "lengths {} and {}, first difference at byte {at}: {} vs {}",
        a.len(),
        b.len(),
        show(a),
        show(b)
    )
}

#[test]
fn telnet_bulk_binary_with_iac_both_ways_through_ser2net() {
    run_test("kind-telnet-bulk", |w| {
        let mut peer = Ser2net::start(w.dir(), "bulk")?;
        let url = format!("telnet://127.0.0.1:{}", peer.telnet_port());
        w.add_device("tel2", &url, &[])?;
        w.add_user("alice", "alice-pw")?;
        let alice_token = add_token(w, "alice", "all")?;
        let http = start_daemon_with_http(w, &[])?;
        let pty = peer.pty();
        wait_output_flows(w, "tel2", pty)?;

        // Machine to log: 64 KiB framed by markers, written in pieces of odd sizes.
        let tag = token();
        let out_payload = telnet_torture(0x5EED_0001, 64 * 1024);
        let (out_begin, out_end) = (format!("<out-{tag}>"), format!("</out-{tag}>"));
        pty.write_peer(out_begin.as_bytes())?;
        for piece in out_payload.chunks(1021) {
            pty.write_peer(piece)?;
        }
        pty.write_peer(out_end.as_bytes())?;
        let log = wait_logged_output(w, "tel2", out_end.as_bytes(), UP)?;
        let got = between(&log, out_begin.as_bytes(), out_end.as_bytes())
            .ok_or_else(|| Error::Check("the output markers are not in the log".into()))?;
        ensure!(
            got == out_payload.as_slice(),
            "the machine's binary output is not byte-exact in the record log: {}",
            first_difference(&out_payload, got)
        );

        // WebSocket viewer to machine: 64 KiB of keystrokes in frames of odd sizes.
        let in_payload = telnet_torture(0x5EED_0002, 64 * 1024);
        let (in_begin, in_end) = (format!("<in-{tag}>"), format!("</in-{tag}>"));
        let mut typed = in_begin.as_bytes().to_vec();
        typed.extend_from_slice(&in_payload);
        typed.extend_from_slice(in_end.as_bytes());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("start a tokio runtime", e))?;
        let ws_url = http.ws_url("/api/v1/devices/tel2/attach?mode=attach");
        let frames: Vec<Vec<u8>> = typed.chunks(997).map(<[u8]>::to_vec).collect();
        let ws = rt.block_on(async {
            let mut req = ws_url
                .into_client_request()
                .map_err(|e| Error::Check(format!("WebSocket request: {e}")))?;
            let bearer = format!("Bearer {alice_token}")
                .parse()
                .map_err(|e| Error::Check(format!("authorization header: {e}")))?;
            req.headers_mut().insert("authorization", bearer);
            let (mut ws, _) = tokio_tungstenite::connect_async(req)
                .await
                .map_err(|e| Error::Check(format!("WebSocket attach: {e}")))?;
            // The hello says alice holds the write lock before she types.
            let hello = tokio::time::timeout(WAIT, async {
                while let Some(frame) = ws.next().await {
                    if let Ok(Message::Text(t)) = frame
                        && t.as_str().contains("\"hello\"")
                    {
                        return Some(t.as_str().to_owned());
                    }
                }
                None
            })
            .await
            .ok()
            .flatten()
            .ok_or_else(|| Error::Check("no hello frame on the attach WebSocket".into()))?;
            ensure!(hello.contains("\"role\":\"attach\""), "{hello}");
            for frame in frames {
                ws.send(Message::binary(frame))
                    .await
                    .map_err(|e| Error::Check(format!("WebSocket send: {e}")))?;
            }
            Ok::<_, Error>(ws)
        })?;
        pty.received().wait_for("the device's pty", &in_end, UP)?;
        let at_pty = pty.received().bytes();
        let got = between(&at_pty, in_begin.as_bytes(), in_end.as_bytes())
            .ok_or_else(|| Error::Check("the input markers did not reach the pty".into()))?;
        ensure!(
            got == in_payload.as_slice(),
            "the typed binary data is not byte-exact at the pty: {}",
            first_difference(&in_payload, got)
        );
        // The log holds alice's input byte-exact too.
        let input = logged(w, "tel2", RecordKind::Input, Some("alice"))?;
        let logged_in = between(&input, in_begin.as_bytes(), in_end.as_bytes())
            .ok_or_else(|| Error::Check("alice's input markers are not in the log".into()))?;
        ensure!(
            logged_in == in_payload.as_slice(),
            "alice's binary input is not byte-exact in the record log: {}",
            first_difference(&in_payload, logged_in)
        );
        drop(ws);
        let verify = w.mo(&["log", "verify", "tel2"], None)?;
        ensure!(
            verify.success(),
            "`mo log verify tel2` failed:\n{}",
            verify.combined()
        );
        Ok(())
    });
}
