//! Fuzz SSH public keys as users upload them (mo_store::SshPublicKey: `mo user key add`, the
//! API, config import): never a panic; a key that parses writes back (`to_openssh`) to a line
//! that parses to the same key; its fingerprint is `SHA256:` and 43 base64 characters; a file
//! of keys parses line by line to the keys of its lines, or fails naming a line.
//!
//! Input: one byte of mode, then the rest. Mode 0: the rest is the line (or file). Otherwise a
//! real key (ed25519, ECDSA P-256 or RSA by mode) whose decoded blob is damaged at a place and
//! with bytes the input gives, with the rest as its comment.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use mo_store::SshPublicKey;

const KEYS: [&str; 3] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAshkIpU/5NLzeIZ5wv1WPHQXJG0g9PcSZlzVyaO/36+nB5pqbmQLZjOvaYl3X0bbh6q+K8nO10rpAp+OzKLplg=",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCwJKJ1aL50b+CeSqZ6eM7QPc9hZZTDlVGIfZgxedf8OfMzM5mFz7V7qM58f/m/MPc5MKU6RMBqWPJhKYd1HkpvG08P6e5yclbfyf16qF0lzXUtcBkZVpwLFs7UDkv1dZawpDSbRZbUYQeeIK4BLRRzANKZfb53W/Dv2/Bw02Yz7Q==",
];

fn line_of(data: &[u8]) -> String {
    let Some((&mode, rest)) = data.split_first() else {
        return String::new();
    };
    if mode == 0 {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let (kind, b64) = KEYS[usize::from(mode) % KEYS.len()]
        .split_once(' ')
        .unwrap_or_default();
    let mut blob = STANDARD.decode(b64).unwrap_or_default();
    let mut u = Unstructured::new(rest);
    // Damage: overwrite, cut or grow the blob.
    let op: u8 = u.arbitrary().unwrap_or(0);
    let at = u
        .choose_index(blob.len().max(1))
        .unwrap_or(0)
        .min(blob.len());
    let bytes: Vec<u8> = u.arbitrary().unwrap_or_default();
    match op % 4 {
        0 => {
            for (i, b) in bytes.iter().enumerate() {
                if let Some(dst) = blob.get_mut(at + i) {
                    *dst = *b;
                }
            }
        }
        1 => blob.truncate(at),
        2 => {
            blob.splice(at..at, bytes);
        }
        _ => {}
    }
    let comment = String::from_utf8_lossy(u.take_rest());
    format!("{kind} {} {comment}", STANDARD.encode(&blob))
}

fuzz_target!(|data: &[u8]| {
    let line = line_of(data);
    if let Ok(key) = SshPublicKey::parse(&line) {
        let fingerprint = key.fingerprint();
        assert!(fingerprint.starts_with("SHA256:") && fingerprint.len() == 7 + 43);
        let written = key.to_openssh();
        let back = SshPublicKey::parse(&written);
        assert_eq!(back.as_ref().ok(), Some(&key), "{line:?} wrote {written:?}");
    }

    match SshPublicKey::parse_many(&line, "keys.pub") {
        Ok(keys) => {
            let lines: Vec<&str> = line
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            assert_eq!(keys.len(), lines.len());
            for (key, l) in keys.iter().zip(lines) {
                assert_eq!(SshPublicKey::parse(l).ok().as_ref(), Some(key));
            }
        }
        Err(e) => assert!(e.to_string().contains("keys.pub"), "{e}"),
    }
});
