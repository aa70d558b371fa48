//! The libraries' Cargo features, checked with `cargo tree` (offline, nothing is compiled): a
//! program that embeds only serial, telnet, exec or sim consoles turns the default features off
//! and builds none of russh, reqwest, async-snmp, zstd or the IPMI ciphers (docs/sdk.md, "Cargo
//! features"). The same crates with their defaults do pull them in, so each check can fail.

use std::collections::BTreeSet;
use std::process::Command;

/// The heavy dependencies that only features bring in.
const HEAVY: &[&str] = &["russh", "reqwest", "async-snmp", "zstd"];

/// The ciphers the IPMI and SSH drivers (and async-snmp) use: gone without default features too.
const CIPHERS: &[&str] = &["hmac", "aes"];

/// The package names in the normal dependency tree of `package` with `features` (after
/// `--no-default-features` when `defaults` is false).
fn tree(package: &str, defaults: bool, features: &[&str]) -> Result<BTreeSet<String>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = mo_testsupport::workspace_root().join("Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
        .arg("--manifest-path")
        .arg(&manifest);
    if !defaults {
        cmd.arg("--no-default-features");
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("run `{cargo} tree`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo tree -p {package}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// Which of [`HEAVY`] `found` holds.
fn heavy(found: &BTreeSet<String>) -> Vec<&'static str> {
    HEAVY
        .iter()
        .copied()
        .filter(|h| found.contains(*h))
        .collect()
}

#[test]
fn without_default_features_the_libraries_build_none_of_the_heavy_dependencies()
-> Result<(), String> {
    for package in ["mo-core", "mo-drivers", "mo-store", "mo-api"] {
        let all = tree(package, false, &[])?;
        let mut found = heavy(&all);
        found.extend(CIPHERS.iter().filter(|c| all.contains(**c)));
        assert!(
            found.is_empty(),
            "{package} without default features still depends on {found:?}: a sibling mo crate \
             is named with its default features, or a dependency lost `optional = true`"
        );
    }
    Ok(())
}

#[test]
fn each_feature_brings_only_its_own_dependencies() -> Result<(), String> {
    for (package, feature, wanted) in [
        ("mo-drivers", "ssh", &["russh", "hmac", "aes"][..]),
        ("mo-drivers", "ipmi", &["hmac", "aes"][..]),
        ("mo-drivers", "redfish", &["reqwest"][..]),
        ("mo-drivers", "snmp", &["async-snmp"][..]),
        ("mo-drivers", "webhook", &["reqwest", "hmac"][..]),
        (
            "mo-drivers",
            "discover",
            &["async-snmp", "reqwest", "hmac", "aes"][..],
        ),
        ("mo-core", "compress", &["zstd"][..]),
        ("mo-store", "compress", &["zstd"][..]),
    ] {
        let found = heavy(&tree(package, false, &[feature])?);
        assert_eq!(
            found,
            HEAVY
                .iter()
                .copied()
                .filter(|h| wanted.contains(h))
                .collect::<Vec<_>>(),
            "{package} with only the `{feature}` feature"
        );
    }
    Ok(())
}

#[test]
fn the_default_features_keep_everything() -> Result<(), String> {
    let found = heavy(&tree("mo-drivers", true, &[])?);
    assert_eq!(found, ["russh", "reqwest", "async-snmp"]);
    assert_eq!(heavy(&tree("mo-core", true, &[])?), ["zstd"]);
    // The daemon, through the workspace's dependency table, gets every feature.
    assert_eq!(heavy(&tree("mo-daemon", true, &[])?), HEAVY);
    Ok(())
}
