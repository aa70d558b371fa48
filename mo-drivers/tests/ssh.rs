//! The `ssh` driver against a real OpenSSH sshd on 127.0.0.1 (PEERS.md): key and password
//! logins, bytes both ways through the remote shell, window size, refused credentials, host-key
//! checking (unknown, trust on first use, changed), the shell exiting, and sshd restarting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/net.rs"]
mod net;
mod peers;
#[path = "peers/sshd.rs"]
mod sshd;

use anyhow::{Context, Result, bail, ensure};
use mo_core::Error;
use mo_core::link::{ControlOp, Link};
use mo_drivers::ssh::known_hosts::fingerprint;
use mo_drivers::{Credentials, DriverOptions, connector_for};
use mo_testsupport::{SSHD_PASSWORD as PASSWORD, Sshd, keygen};
use peers::{STEP, read_until, read_until_down};
use sshd::key_options;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// Connect to `address` with `opts`.
async fn connect(address: &str, opts: &DriverOptions) -> Result<Link, Error> {
    let connector = connector_for(address, opts)?;
    match timeout(STEP, connector.connect()).await {
        Ok(result) => result,
        Err(_) => panic!("connecting to {address} timed out"),
    }
}

/// Run `line` in the remote shell and wait for `expect` in its output.
async fn run(link: &mut Link, line: &str, expect: &str) -> Result<String> {
    link.writer
        .write_all(format!("{line}\n").as_bytes())
        .await?;
    link.writer.flush().await?;
    let seen = read_until(&mut link.reader, expect.as_bytes()).await?;
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

fn fingerprint_of(line: &str) -> String {
    fingerprint(&russh::keys::PublicKey::from_openssh(line).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_login_carries_bytes_and_window_size() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sshd = Sshd::start(dir.path())?;
    let mut link = connect(&sshd.address(""), &key_options(&sshd)?)
        .await
        .with_context(|| sshd.log_tail())?;
    // The shell computes the answer, so seeing it proves the bytes went there and back.
    run(&mut link, "echo mo-$((6*7))-ok", "mo-42-ok").await?;
    run(&mut link, "stty size", "24 80").await?;
    link.control
        .control(ControlOp::WindowSize {
            cols: 132,
            rows: 43,
        })
        .await?;
    run(&mut link, "stty size", "43 132").await?;
    let err = link
        .control
        .control(ControlOp::Break {
            duration: std::time::Duration::from_millis(100),
        })
        .await
        .unwrap_err();
    ensure!(
        matches!(
            err,
            Error::Unsupported {
                operation: "break",
                ..
            }
        ),
        "{err}"
    );
    run(&mut link, "echo $TERM", "xterm").await?;
    // The remote shell ends: the reader reports the link down.
    link.writer.write_all(b"exit\n").await?;
    read_until_down(&mut link.reader).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn term_and_command_parameters_reach_the_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sshd = Sshd::start(dir.path())?;
    let address = sshd.address("term=vt100&command=echo+term+is+%24TERM%3B+stty+size");
    let mut link = connect(&address, &key_options(&sshd)?).await?;
    let seen = read_until(&mut link.reader, b"24 80").await?;
    ensure!(
        String::from_utf8_lossy(&seen).contains("term is vt100"),
        "{seen:?}"
    );
    // The command ends, and so does the link.
    read_until_down(&mut link.reader).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sshd = Sshd::start(dir.path())?;
    let opts = DriverOptions::new()
        .with_known_hosts(sshd.known_hosts("known_hosts")?)
        .with_credentials(Credentials::new().with_password(PASSWORD));
    let mut link = connect(&sshd.address(""), &opts)
        .await
        .with_context(|| sshd.log_tail())?;
    run(&mut link, "echo pw-$((2+3))", "pw-5").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_an_auth_error_without_secrets() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sshd = Sshd::start(dir.path())?;
    let known = sshd.known_hosts("known_hosts")?;
    let other_key = keygen(&dir.path().join("stranger"))?;
    let wrong_password = "not-the-Pw-99";
    for (label, credentials) in [
        (
            "key",
            Credentials::new().with_private_key(other_key.clone()),
        ),
        ("password", Credentials::new().with_password(wrong_password)),
        (
            "both",
            Credentials::new()
                .with_private_key(other_key.clone())
                .with_password(wrong_password),
        ),
        ("nothing", Credentials::new()),
    ] {
        let opts = DriverOptions::new()
            .with_known_hosts(&known)
            .with_credentials(credentials);
        let address = sshd.address("");
        let err = connect(&address, &opts).await.err().context(label)?;
        let text = err.to_string();
        ensure!(matches!(err, Error::Auth { .. }), "{label}: {text}");
        ensure!(text.contains(&address), "{label}: {text}");
        ensure!(!text.contains(wrong_password), "{label}: {text}");
        ensure!(!text.contains("PRIVATE KEY"), "{label}: {text}");
        match label {
            "key" => ensure!(
                text.contains("refused publickey (ssh-ed25519 SHA256:"),
                "{text}"
            ),
            "password" => ensure!(text.contains("refused password"), "{text}"),
            "both" => ensure!(
                text.contains("publickey") && text.contains("password"),
                "{text}"
            ),
            _ => ensure!(text.contains("no usable credentials"), "{text}"),
        }
    }
    // A key that is not a key at all.
    let opts = DriverOptions::new()
        .with_known_hosts(&known)
        .with_credentials(Credentials::new().with_private_key("not a key"));
    let err = connect(&sshd.address(""), &opts)
        .await
        .err()
        .context("bad key")?;
    ensure!(matches!(err, Error::Auth { .. }), "{err}");
    ensure!(err.to_string().contains("cannot be read"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keys_unknown_tofu_changed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut sshd = Sshd::start(dir.path())?;
    let address = sshd.address("");
    let creds = Credentials::new().with_private_key(sshd.client_key().to_owned());
    let first = fingerprint_of(&sshd.host_key()?);

    // No file, and an empty file: unknown, refused, with the fingerprint.
    for opts in [
        DriverOptions::new().with_credentials(creds.clone()),
        DriverOptions::new()
            .with_credentials(creds.clone())
            .with_known_hosts(dir.path().join("missing")),
    ] {
        let err = connect(&address, &opts)
            .await
            .err()
            .context("unknown key")?;
        let text = err.to_string();
        ensure!(matches!(err, Error::HostKey { .. }), "{text}");
        ensure!(text.contains(&first) && text.contains(&address), "{text}");
        ensure!(text.contains("unknown key"), "{text}");
    }
    ensure!(!dir.path().join("missing").exists());

    // Trust on first use records the key, then a strict connect accepts it.
    let file = dir.path().join("tofu/known_hosts");
    let tofu = DriverOptions::new()
        .with_credentials(creds.clone())
        .with_known_hosts(&file)
        .with_trust_on_first_use(true);
    let mut link = connect(&address, &tofu).await?;
    run(&mut link, "echo tofu-$((1+1))", "tofu-2").await?;
    drop(link);
    let text = std::fs::read_to_string(&file)?;
    ensure!(
        text.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port()))
            && text.lines().count() == 1,
        "{text}"
    );
    let strict = DriverOptions::new()
        .with_credentials(creds.clone())
        .with_known_hosts(&file);
    connect(&address, &strict).await?;
    connect(&address, &tofu).await?;
    ensure!(
        std::fs::read_to_string(&file)? == text,
        "a known key was recorded again"
    );

    // The server gets a new key: refused, with or without trust on first use.
    sshd.stop()?;
    sshd.rekey()?;
    sshd.restart()?;
    let second = fingerprint_of(&sshd.host_key()?);
    for opts in [&strict, &tofu] {
        let err = connect(&address, opts).await.err().context("changed key")?;
        let text = err.to_string();
        ensure!(matches!(err, Error::HostKey { .. }), "{text}");
        ensure!(
            text.contains(&format!("changed! was {first}, now {second}")),
            "{text}"
        );
    }
    ensure!(
        std::fs::read_to_string(&file)? == text,
        "a changed key was recorded"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_restart_then_connect_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut sshd = Sshd::start(dir.path())?;
    let address = sshd.address("");
    let opts = key_options(&sshd)?;
    let mut link = connect(&address, &opts).await?;
    run(&mut link, "echo before-$((1*9))", "before-9").await?;
    sshd.stop()?;
    match connect(&address, &opts).await {
        Ok(_) => bail!("connected while sshd is stopped"),
        Err(e) => ensure!(
            matches!(&e, Error::Connect { address: a, .. } if a == &address),
            "{e}"
        ),
    }
    sshd.restart()?;
    let mut again = connect(&address, &opts).await?;
    run(&mut again, "echo after-$((2*9))", "after-18").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_server_user_names_reach_the_server() -> Result<()> {
    // OpenSSH reads `user:style` as a user and a BSD-auth style and logs in `consoletest`; its
    // debug log shows the whole name arrived (as a user name, not a password).
    let dir = tempfile::tempdir()?;
    let sshd = Sshd::start(dir.path())?;
    let address = format!("ssh://consoletest:port5@127.0.0.1:{}", sshd.port());
    let mut link = connect(&address, &key_options(&sshd)?).await?;
    run(
        &mut link,
        "echo port-$((5))-$(id -un)",
        "port-5-consoletest",
    )
    .await?;
    let needle = "userauth-request for user consoletest:port5 service ssh-connection";
    let deadline = tokio::time::Instant::now() + STEP;
    while !sshd.log().contains(needle) {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{}",
            sshd.log_tail()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Hash the known_hosts file at `path` in place with the real `ssh-keygen -H` (OpenSSH's
/// `HashKnownHosts` format, Debian's default) and return the new text.
fn hash_with_ssh_keygen(path: &std::path::Path) -> Result<String> {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(path)
        .output()
        .context("running ssh-keygen -H (apt-get install openssh-client)")?;
    ensure!(
        out.status.success(),
        "ssh-keygen -H failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(std::fs::read_to_string(path)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_known_hosts_accept_the_key_and_refuse_another() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sshd = Sshd::start(dir.path())?;
    let address = sshd.address("");
    let creds = Credentials::new().with_private_key(sshd.client_key().to_owned());

    // The server's key, present only hashed (`[127.0.0.1]:PORT`, the port is not 22).
    let known = sshd.known_hosts("known_hosts")?;
    let text = hash_with_ssh_keygen(&known)?;
    ensure!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "ssh-keygen left the name in clear:\n{text}"
    );
    let opts = DriverOptions::new()
        .with_credentials(creds.clone())
        .with_known_hosts(&known);
    let mut link = connect(&address, &opts)
        .await
        .with_context(|| sshd.log_tail())?;
    run(&mut link, "echo hashed-$((3*4))", "hashed-12").await?;
    drop(link);

    // Another key recorded hashed for this host: refused as a changed key, and even trust on
    // first use records nothing.
    let stranger = dir.path().join("stranger");
    keygen(&stranger)?;
    let wrong = dir.path().join("wrong_known_hosts");
    let stranger_pub = std::fs::read_to_string(stranger.with_extension("pub"))?;
    std::fs::write(
        &wrong,
        format!("[127.0.0.1]:{} {}\n", sshd.port(), stranger_pub.trim()),
    )?;
    let wrong_text = hash_with_ssh_keygen(&wrong)?;
    ensure!(!wrong_text.contains("127.0.0.1"), "{wrong_text}");
    let presented = fingerprint_of(&sshd.host_key()?);
    let recorded = fingerprint_of(stranger_pub.trim());
    for tofu in [false, true] {
        let opts = DriverOptions::new()
            .with_credentials(creds.clone())
            .with_known_hosts(&wrong)
            .with_trust_on_first_use(tofu);
        let err = connect(&address, &opts)
            .await
            .err()
            .context("a wrong hashed key was accepted")?;
        let text = err.to_string();
        ensure!(matches!(err, Error::HostKey { .. }), "{text}");
        ensure!(
            text.contains(&format!("changed! was {recorded}, now {presented}")),
            "{text}"
        );
    }
    ensure!(
        std::fs::read_to_string(&wrong)? == wrong_text,
        "a refused key was recorded"
    );
    Ok(())
}
