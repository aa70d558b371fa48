//! HTTPS and WSS on `mod --http` (docs/security.md, "TLS"): a certificate from a CA made here with
//! openssl, checked by curl (`--cacert`, a wrong CA refused), OpenSSL's `s_client` (protocol,
//! chain, verification), the mo CLI (`--ca`, `--pin`, wrong ones refused) and mo-client
//! attaching over WSS; the pair reloaded on SIGHUP while an attach stays open; the
//! `--tls-self-signed` pair kept across restarts with the fingerprint printed; plain HTTP beyond
//! loopback refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mo_client::{Client, Trust};
use mo_core::automation::ExpectPattern;
use mo_core::console::Mode;
use mo_testsupport::http::add_token;
use mo_testsupport::{
    CmdOutput, Error, Result, Signal, WAIT, World, ensure, free_port, run_test, run_with_timeout,
};

fn run(program: &str, args: &[&str]) -> Result<CmdOutput> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_with_timeout(cmd, None, Duration::from_secs(60))
}

fn run_ok(program: &str, args: &[&str]) -> Result<CmdOutput> {
    let out = run(program, args)?;
    ensure!(
        out.status.success(),
        "{} failed (is openssl/curl installed? apt-get install openssl curl):\n{}",
        out.command,
        out.combined()
    );
    Ok(out)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A CA (`NAME-ca.pem`) and a server certificate for 127.0.0.1 it signed (`NAME.pem`,
/// `NAME.key`), all in `dir`; returns (ca, cert, key).
fn ca_and_server(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let ca_key = dir.join(format!("{name}-ca.key"));
    let ca = dir.join(format!("{name}-ca.pem"));
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.pem"));
    let ext = dir.join(format!("{name}.ext"));
    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=test CA {name}"),
            "-keyout",
            s(&ca_key),
            "-out",
            s(&ca),
        ],
    )?;
    run_ok(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            s(&key),
            "-out",
            s(&csr),
        ],
    )?;
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        .map_err(|e| Error::io("write ext", e))?;
    run_ok(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            s(&csr),
            "-CA",
            s(&ca),
            "-CAkey",
            s(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            s(&ext),
            "-out",
            s(&cert),
        ],
    )?;
    Ok((ca, cert, key))
}

/// `AB:CD:…` as openssl prints a certificate's SHA-256.
fn fingerprint(cert: &Path) -> Result<String> {
    let out = run_ok(
        "openssl",
        &["x509", "-noout", "-fingerprint", "-sha256", "-in", s(cert)],
    )?;
    out.stdout
        .trim()
        .split_once('=')
        .map(|(_, fp)| fp.to_owned())
        .ok_or_else(|| Error::Check(format!("no fingerprint in {}", out.stdout)))
}

/// Start the world's daemon with HTTPS on a free port; returns `https://127.0.0.1:PORT`.
fn start_https(w: &mut World, tls: &[&str]) -> Result<String> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--http", addr.as_str()];
    args.extend_from_slice(tls);
    let daemon = w.start_daemon(&args)?;
    daemon.wait_log(
        &format!("listening on {addr} (HTTP API, https://{addr}/api/v1/)"),
        WAIT,
    )?;
    Ok(format!("https://{addr}"))
}

fn curl(args: &[&str]) -> Result<CmdOutput> {
    let mut all = vec!["-sS", "--max-time", "20"];
    all.extend_from_slice(args);
    run("curl", &all)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn check<T>(r: mo_core::Result<T>, what: &str) -> Result<T> {
    r.map_err(|e| Error::Check(format!("{what}: {e}")))
}

/// Attach over WSS and prove the console answers through it.
async fn echo_through(console: &mo_core::facade::ConsoleHandle, word: &str) -> Result<()> {
    check(console.send_line(word).await, "send over WSS")?;
    let want = ExpectPattern::literal(&format!("got: {word}")).unwrap();
    check(
        console.expect(&[want], Duration::from_secs(20)).await,
        &format!("the echo of {word} over WSS"),
    )?;
    Ok(())
}

#[test]
fn https_with_a_ca_signed_certificate_curl_openssl_cli_and_wss() {
    run_test("https-ca", |w| {
        let (ca, cert, key) = ca_and_server(w.dir(), "good")?;
        let (wrong_ca, _, _) = ca_and_server(w.dir(), "other")?;
        w.add_user("alice", "alice-password")?;
        w.add_echo_device("echo1", &[])?;
        let base = start_https(w, &["--tls-cert", s(&cert), "--tls-key", s(&key)])?;
        let token = add_token(w, "alice", "all")?;
        let health = format!("{base}/api/v1/health");

        // The daemon prints the fingerprint of the certificate it serves.
        let pin = fingerprint(&cert)?;
        let log = w.daemon()?.log_text();
        ensure!(log.contains(&format!("SHA-256 fingerprint {pin}")), "{log}");

        // curl: the right CA is trusted, another CA and the system roots are not.
        let ok = curl(&["--cacert", s(&ca), &health])?;
        ensure!(
            ok.status.success() && ok.stdout.contains("\"status\":\"ok\""),
            "curl --cacert: {}",
            ok.combined()
        );
        let wrong = curl(&["--cacert", s(&wrong_ca), &health])?;
        ensure!(
            wrong.status.code() == Some(60) && wrong.stdout.is_empty(),
            "curl with the wrong CA must fail certificate verification (exit 60): {}",
            wrong.combined()
        );
        let plain = curl(&[&health.replace("https://", "http://")])?;
        ensure!(
            !plain.status.success(),
            "plain HTTP to the HTTPS port must not be answered: {}",
            plain.combined()
        );

        // OpenSSL's client: TLS 1.3 by default, TLS 1.2 still offered, the chain verifies.
        let connect = base.trim_start_matches("https://");
        let s13 = run(
            "openssl",
            &[
                "s_client",
                "-connect",
                connect,
                "-CAfile",
                s(&ca),
                "-verify_return_error",
                "-servername",
                "localhost",
                "-alpn",
                "http/1.1",
            ],
        )?;
        let text = s13.combined();
        ensure!(s13.status.success(), "s_client: {text}");
        ensure!(
            text.contains("Protocol  : TLSv1.3") || text.contains("TLSv1.3"),
            "{text}"
        );
        ensure!(text.contains("Verify return code: 0 (ok)"), "{text}");
        ensure!(
            text.contains("CN = 127.0.0.1") || text.contains("CN=127.0.0.1"),
            "{text}"
        );
        ensure!(text.contains("ALPN protocol: http/1.1"), "{text}");
        let s12 = run(
            "openssl",
            &[
                "s_client",
                "-connect",
                connect,
                "-CAfile",
                s(&ca),
                "-tls1_2",
            ],
        )?;
        ensure!(
            s12.status.success() && s12.combined().contains("TLSv1.2"),
            "s_client -tls1_2: {}",
            s12.combined()
        );
        let s11 = run("openssl", &["s_client", "-connect", connect, "-tls1_1"])?;
        ensure!(
            !s11.status.success(),
            "TLS 1.1 must be refused: {}",
            s11.combined()
        );
        let bad = run(
            "openssl",
            &[
                "s_client",
                "-connect",
                connect,
                "-CAfile",
                s(&wrong_ca),
                "-verify_return_error",
            ],
        )?;
        ensure!(
            !bad.status.success(),
            "s_client with the wrong CA: {}",
            bad.combined()
        );

        // The mo CLI: --ca and --pin are trusted, wrong ones refused with the reason.
        let devices = |trust: &[&str]| {
            let mut args = vec!["--server", base.as_str(), "--token", token.as_str()];
            args.extend_from_slice(trust);
            args.push("devices");
            w.mo(&args, None)
        };
        for trust in [["--ca", s(&ca)], ["--pin", pin.as_str()]] {
            let out = devices(&trust)?;
            ensure!(
                out.status.success() && out.stdout.contains("echo1"),
                "mo {trust:?} devices: {}",
                out.combined()
            );
        }
        let lower = pin.replace(':', "").to_lowercase();
        let out = devices(&["--pin", &lower])?;
        ensure!(
            out.status.success(),
            "a pin without colons: {}",
            out.combined()
        );
        let out = devices(&["--ca", s(&wrong_ca)])?;
        ensure!(
            !out.status.success() && out.stderr.to_lowercase().contains("certificate"),
            "mo --ca WRONG must be refused naming the certificate: {}",
            out.combined()
        );
        let wrong_pin = "ab".repeat(32);
        let out = devices(&["--pin", &wrong_pin])?;
        ensure!(
            !out.status.success() && out.stderr.contains("does not match the pinned one"),
            "mo --pin WRONG must be refused: {}",
            out.combined()
        );
        let out = devices(&[])?;
        ensure!(
            !out.status.success() && out.stderr.to_lowercase().contains("certificate"),
            "without --ca or --pin the test CA is not trusted: {}",
            out.combined()
        );

        // mo-client: attach over WSS with either trust; a wrong pin cannot attach.
        let rt = rt();
        rt.block_on(async {
            for trust in [
                Trust::CaFile(ca.clone()),
                Trust::from_options(None, Some(&pin)).unwrap(),
            ] {
                let client = check(Client::with_trust(&base, token.as_str(), trust), "client")?;
                let console = check(
                    client.attach("echo1", Mode::Attach, Some(0)).await,
                    "WSS attach",
                )?;
                echo_through(&console, "over-wss").await?;
                check(console.close().await, "close")?;
            }
            let wrong = check(
                Client::with_trust(&base, token.as_str(), Trust::Pin([0xab; 32])),
                "client",
            )?;
            let err = wrong
                .attach("echo1", Mode::Spy, Some(0))
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            ensure!(
                err.contains("does not match the pinned one"),
                "a WSS attach with a wrong pin must be refused: {err:?}"
            );
            Ok(())
        })
    });
}

#[test]
fn sighup_reloads_the_pair_and_open_connections_keep_theirs() {
    run_test("https-reload", |w| {
        let (_, cert_a, key_a) = ca_and_server(w.dir(), "a")?;
        let (_, cert_b, key_b) = ca_and_server(w.dir(), "b")?;
        let (cert, key) = (w.dir().join("live.pem"), w.dir().join("live.key"));
        let copy = |from: &Path, to: &Path| {
            std::fs::copy(from, to).map_err(|e| Error::io(format!("copy {}", from.display()), e))
        };
        copy(&cert_a, &cert)?;
        copy(&key_a, &key)?;
        w.add_user("alice", "alice-password")?;
        w.add_echo_device("echo1", &[])?;
        let base = start_https(w, &["--tls-cert", s(&cert), "--tls-key", s(&key)])?;
        let token = add_token(w, "alice", "all")?;
        let (pin_a, pin_b) = (fingerprint(&cert_a)?, fingerprint(&cert_b)?);
        let pinned = |pin: &str| {
            Client::with_trust(
                &base,
                token.as_str(),
                Trust::from_options(None, Some(pin)).unwrap(),
            )
            .unwrap()
        };
        let rt = rt();
        let old = rt.block_on(async {
            let console = check(
                pinned(&pin_a).attach("echo1", Mode::Attach, Some(0)).await,
                "attach with pair A",
            )?;
            echo_through(&console, "before-reload").await?;
            Ok::<_, Error>(console)
        })?;

        // A broken pair on SIGHUP: refused, the old pair stays.
        std::fs::write(&key, "not a key").map_err(|e| Error::io("write key", e))?;
        w.daemon()?.signal(Signal::SIGHUP)?;
        w.daemon()?
            .wait_log("TLS certificate not reloaded, old one kept", WAIT)?;
        rt.block_on(async { check(pinned(&pin_a).health().await, "pair A after a bad reload") })?;

        copy(&cert_b, &cert)?;
        copy(&key_b, &key)?;
        w.daemon()?.signal(Signal::SIGHUP)?;
        w.daemon()?
            .wait_log(&format!("TLS certificate reloaded, SHA-256 {pin_b}"), WAIT)?;
        rt.block_on(async {
            check(pinned(&pin_b).health().await, "new handshakes get pair B")?;
            let err = pinned(&pin_a).health().await.err().map(|e| e.to_string());
            ensure!(
                err.as_deref()
                    .is_some_and(|e| e.contains("does not match the pinned one")),
                "pair A must be gone for new handshakes: {err:?}"
            );
            // The attach made under pair A is still open and still works.
            echo_through(&old, "after-reload").await?;
            check(old.close().await, "close")?;
            Ok(())
        })
    });
}

#[test]
fn self_signed_pair_is_made_once_kept_and_its_fingerprint_printed() {
    run_test("https-self-signed", |w| {
        let base = start_https(w, &["--tls-self-signed"])?;
        let cert = w.data_dir().join("tls/self-signed.crt");
        let key = w.data_dir().join("tls/self-signed.key");
        let pin = fingerprint(&cert)?;
        let log = w.daemon()?.log_text();
        ensure!(log.contains("made a self-signed TLS certificate"), "{log}");
        ensure!(log.contains(&format!("mo --pin {pin}")), "{log}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key)
            .map_err(|e| Error::io("stat key", e))?
            .permissions()
            .mode();
        ensure!(mode & 0o077 == 0, "the key must be private, mode {mode:o}");
        // It names 127.0.0.1 and localhost: curl trusts it as its own CA.
        for host in ["127.0.0.1", "localhost"] {
            let url = base.replace("127.0.0.1", host) + "/api/v1/health";
            let out = curl(&["--cacert", s(&cert), &url])?;
            ensure!(out.status.success(), "curl {url}: {}", out.combined());
        }

        // A restart reuses it: the same fingerprint, so pins stay valid.
        w.daemon()?.stop()?;
        let base = start_https(w, &["--tls-self-signed"])?;
        ensure!(fingerprint(&cert)? == pin, "the pair changed on restart");
        let log = w.daemon()?.log_text();
        ensure!(
            log.contains("using the self-signed TLS certificate"),
            "{log}"
        );
        let out = w.mo(&["--server", &base, "--pin", &pin, "devices"], None)?;
        // No token: the TLS part passed when the daemon answers with its own refusal.
        ensure!(
            out.stderr.contains("no credentials"),
            "mo --pin against the restarted daemon: {}",
            out.combined()
        );
        Ok(())
    });
}

#[test]
fn plain_http_beyond_loopback_is_refused_with_the_fix() {
    run_test("https-insecure", |w| {
        // Refused before anything listens: no socket is opened beyond loopback.
        let addr = format!("0.0.0.0:{}", free_port()?);
        let err = w.start_daemon(&["--http", &addr]).unwrap_err().to_string();
        for fix in [
            "--tls-cert FILE --tls-key FILE",
            "--tls-self-signed",
            "--insecure-http",
        ] {
            ensure!(err.contains(fix), "the refusal should name {fix}: {err}");
        }
        // TLS options without an API to serve are a mistake too.
        let err = w
            .start_daemon(&["--tls-self-signed"])
            .unwrap_err()
            .to_string();
        ensure!(err.contains("give --http ADDR"), "{err}");
        // Loopback stays plain HTTP without ceremony.
        let api = mo_testsupport::http::start_daemon_with_http(w, &[])?;
        let out = curl(&[&api.url("/api/v1/health")])?;
        ensure!(out.status.success(), "{}", out.combined());
        Ok(())
    });
}

#[test]
fn silent_handshakes_from_one_address_hold_no_one_else_up() {
    run_test("https-silent", |w| {
        use std::io::Read as _;
        let base = start_https(w, &["--tls-self-signed"])?;
        let cert = w.data_dir().join("tls/self-signed.crt");
        let addr = base.trim_start_matches("https://").to_owned();
        let connect = || {
            std::net::TcpStream::connect(&addr).map_err(|e| Error::io(format!("connect {addr}"), e))
        };
        // 16 sockets from 127.0.0.1 that never say hello fill that address's handshake slots
        // (the backlog is accepted in order, so the 17th is seen after them). The 17th must be
        // closed well before the daemon's 10 s handshake timeout would close it anyway.
        let silent = (0..16).map(|_| connect()).collect::<Result<Vec<_>>>()?;
        let mut extra = connect()?;
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| Error::io("set timeout", e))?;
        let mut buf = [0u8; 1];
        let got = extra.read(&mut buf);
        ensure!(
            matches!(got, Ok(0))
                || got.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the 17th silent connection from one address must be closed at once"
        );
        // Another address is served meanwhile.
        let url = format!("{base}/api/v1/health");
        let out = curl(&["--interface", "127.0.0.2", "--cacert", s(&cert), &url])?;
        ensure!(
            out.status.success() && out.stdout.contains("\"status\":\"ok\""),
            "a client from 127.0.0.2 while 127.0.0.1 holds its slots: {}",
            out.combined()
        );
        let log = w.daemon()?.log_text();
        ensure!(
            log.contains("TLS handshakes from 127.0.0.1 under way"),
            "{log}"
        );
        drop(silent);
        Ok(())
    });
}
