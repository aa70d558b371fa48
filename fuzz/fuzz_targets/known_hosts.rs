//! Fuzz the OpenSSH known_hosts reader (mo_drivers::ssh::known_hosts): any file gives a verdict
//! for any host, never a panic; and a key recorded for a host under a hashed name (`|1|SALT|HASH`)
//! is found again whatever else the file holds (unless the file revokes it).
//!
//! Input: two bytes of port, one byte of name length, the host name, then the file's text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_drivers::ssh::known_hosts::{KnownHosts, Verdict, hash_host_name, host_name};
use russh::keys::PublicKey;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIF5OFF3ceJhgBs2XZBYjd0YUZOlRifdCYhvq7fcYstN";

fuzz_target!(|data: &[u8]| {
    let Ok(key) = PublicKey::from_openssh(KEY) else {
        return;
    };
    let (port, name_len, rest) = match data {
        [hi, lo, len, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), usize::from(*len), rest),
        _ => (22, 0, data),
    };
    let name_len = name_len.min(rest.len());
    let host = String::from_utf8_lossy(&rest[..name_len]).into_owned();
    let text = String::from_utf8_lossy(&rest[name_len..]).into_owned();

    let file = KnownHosts::parse(&text);
    let _ = file.check(&host, port, &key);
    let _ = file.check("cs1", 22, &key);
    let _ = file.check("cs1", 2222, &key);

    // Host names in known_hosts have no blanks or commas; such names cannot be recorded.
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == ',' || c == '#') {
        return;
    }
    let salt: Vec<u8> = (0..20u8).map(|i| i ^ data.len() as u8).collect();
    let Some(hashed) = hash_host_name(&host_name(&host.to_ascii_lowercase(), port), &salt) else {
        return;
    };
    let file = KnownHosts::parse(&format!("{text}\n{hashed} {KEY}\n"));
    let verdict = file.check(&host, port, &key);
    assert!(
        matches!(verdict, Verdict::Known | Verdict::Revoked),
        "{hashed} for {host}:{port} gave {verdict:?}"
    );
});
