//! Redfish over HTTPS against a real sushy-emulator serving a self-signed certificate made here
//! with openssl: the controller pinned to the certificate's SHA-256 fingerprint works, a wrong
//! pin is refused with an error naming the BMC and the mismatch, and without pin or CA the
//! self-signed certificate is not trusted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};
use mo_core::power::PowerState;
use mo_drivers::power::power_controller_for;
use mo_drivers::{Credentials, DriverOptions};
use mo_testsupport::{NODE2, Sushy};

/// A self-signed certificate for 127.0.0.1 in `dir`; returns its SHA-256 fingerprint as
/// openssl prints it (`AB:CD:…`).
fn self_signed(dir: &Path) -> Result<String> {
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()?;
    if !made.status.success() {
        bail!("openssl req: {}", String::from_utf8_lossy(&made.stderr));
    }
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(dir.join("cert.pem"))
        .output()?;
    let text = String::from_utf8_lossy(&fp.stdout).to_string();
    match text.trim().split_once('=') {
        Some((_, hex)) => Ok(hex.to_owned()),
        None => bail!("no fingerprint in {text:?}"),
    }
}

fn password() -> DriverOptions {
    DriverOptions::new().with_credentials(Credentials::new().with_password("password"))
}

#[tokio::test]
async fn pinned_fingerprint_is_trusted_and_a_wrong_pin_is_refused() -> Result<()> {
    let certs = tempfile::tempdir()?;
    let pin = self_signed(certs.path())?;
    let c = certs.path().to_path_buf();
    let bmc = Sushy::start_temp_with(move |_| {
        format!(
            "\nSUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
            c.join("cert.pem").display(),
            c.join("key.pem").display()
        )
    })?;
    let base = format!("redfish://admin@127.0.0.1:{}/Systems/{NODE2}", bmc.port());

    // The right pin (as openssl prints it, with colons): HTTPS works.
    let pinned =
        power_controller_for(&format!("{base}?timeout=5s&fingerprint={pin}"), &password())?;
    assert_eq!(pinned.status().await?, PowerState::On, "{}", bmc.log());

    // A wrong pin: refused, naming the BMC and the mismatch.
    let wrong_pin = "ab".repeat(32);
    let wrong = power_controller_for(
        &format!("{base}?timeout=5s&fingerprint={wrong_pin}"),
        &password(),
    )?;
    let err = wrong.status().await.unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{}", bmc.port())), "{err}");
    assert!(
        err.contains("does not match the pinned one"),
        "the error should say the certificate is not the pinned one: {err}"
    );

    // Neither pin nor CA: the self-signed certificate is not trusted.
    let unpinned = power_controller_for(&format!("{base}?timeout=5s"), &password())?;
    let err = unpinned.status().await.unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{}", bmc.port())), "{err}");
    Ok(())
}
