//! OpenSSH `known_hosts` files: which host keys an SSH device may present.
//!
//! Each line is `[@marker] PATTERNS KEYTYPE BASE64 [COMMENT]`. PATTERNS is a comma-separated list
//! of host names as OpenSSH writes them — `host` for port 22, `[host]:port` otherwise — with `*`
//! and `?` wildcards and `!` negation. Hashed names (`|1|salt|hash`, written by `ssh-keygen -H`)
//! and `@cert-authority` lines are skipped: mo does not match them, so a device listed only that
//! way counts as unknown. `@revoked` lines are honoured: a revoked key is always refused. Lines that
//! cannot be read are skipped, as OpenSSH does.
//!
//! ```
//! use mo_drivers::ssh::known_hosts::{KnownHosts, Verdict};
//! let key = russh::keys::PublicKey::from_openssh(
//!     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIF5OFF3ceJhgBs2XZBYjd0YUZOlRifdCYhvq7fcYstN",
//! ).unwrap();
//! let file = KnownHosts::parse(
//!     "[cs1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIF5OFF3ceJhgBs2XZBYjd0YUZOlRifdCYhvq7fcYstN\n",
//! );
//! assert_eq!(file.check("cs1", 2222, &key), Verdict::Known);
//! assert_eq!(file.check("cs1", 22, &key), Verdict::Unknown);
//! ```

use std::io::Write;
use std::path::Path;

use russh::keys::{HashAlg, PublicKey};

/// What a `known_hosts` file says about the key a host presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for this host.
    Known,
    /// Nothing is recorded for this host.
    Unknown,
    /// Other keys are recorded for this host: their SHA256 fingerprints.
    Changed {
        /// Fingerprints of the keys on record.
        was: Vec<String>,
    },
    /// The key is marked `@revoked`.
    Revoked,
}

/// A line's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
}

/// One usable line.
#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    patterns: Vec<String>,
    key: PublicKey,
}

/// The usable lines of a `known_hosts` file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// The name a host is recorded under: `host` for port 22, `[host]:port` otherwise.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The SHA256 fingerprint of `key` as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl KnownHosts {
    /// Read the text of a `known_hosts` file; unreadable lines are skipped.
    pub fn parse(text: &str) -> Self {
        let entries = text.lines().filter_map(parse_line).collect();
        Self { entries }
    }

    /// Read `path`; a missing file has no entries.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// What the file says about `key` presented by `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_name(host, port);
        let mut was = Vec::new();
        let mut known = false;
        for entry in self
            .entries
            .iter()
            .filter(|e| matches_host(&e.patterns, &name))
        {
            let same = entry.key.key_data() == key.key_data();
            match entry.marker {
                Marker::Revoked if same => return Verdict::Revoked,
                Marker::Revoked => {}
                Marker::None if same => known = true,
                Marker::None => was.push(fingerprint(&entry.key)),
            }
        }
        if known {
            Verdict::Known
        } else if was.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Changed { was }
        }
    }
}

/// Append `key` for `host:port` to the file at `path` (created, with its directory, if missing).
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    let bare = PublicKey::new(key.key_data().clone(), "");
    let text = bare
        .to_openssh()
        .map_err(|e| std::io::Error::other(format!("encoding the host key: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let line = format!("{} {}\n", host_name(host, port), text.trim());
    // One write with O_APPEND: concurrent connects never interleave inside a line.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// One line, or `None` for comments, blank, hashed, `@cert-authority` and unreadable lines.
fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (marker, rest) = match line.strip_prefix('@') {
        Some(marked) => {
            let (word, rest) = marked.split_once(char::is_whitespace)?;
            match word {
                "revoked" => (Marker::Revoked, rest.trim_start()),
                _ => return None,
            }
        }
        None => (Marker::None, line),
    };
    let (hosts, key) = rest.split_once(char::is_whitespace)?;
    if hosts.starts_with('|') {
        return None;
    }
    let key = PublicKey::from_openssh(key.trim()).ok()?;
    let patterns = hosts.split(',').map(str::to_owned).collect();
    Some(Entry {
        marker,
        patterns,
        key,
    })
}

/// OpenSSH's rule: some positive pattern matches and no negated one does.
fn matches_host(patterns: &[String], name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(pattern.as_bytes(), name.as_bytes()),
        }
    }
    matched
}

/// `*` and `?` wildcards, ASCII case-insensitive (host names are).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || text.get(t).is_some_and(|x| x.eq_ignore_ascii_case(&c)) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIF5OFF3ceJhgBs2XZBYjd0YUZOlRifdCYhvq7fcYstN";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPOHIeaM3s1Iv5E5XpYLjzAO3ISXRRqcgH4mZwWqlApO";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    #[test]
    fn known_unknown_changed_revoked() {
        let file = KnownHosts::parse(&format!(
            "# comment\n\ncs1,cs2 {A} some comment\n[cs1]:2222 {B}\n|1|abc=|def= {A}\n\
             @cert-authority *.lab {A}\n@revoked bad {A}\nbad {A}\ngarbage line\n"
        ));
        assert_eq!(file.check("cs1", 22, &key(A)), Verdict::Known);
        assert_eq!(file.check("CS2", 22, &key(A)), Verdict::Known);
        assert_eq!(file.check("cs1", 2222, &key(B)), Verdict::Known);
        assert_eq!(file.check("cs3", 22, &key(A)), Verdict::Unknown);
        assert_eq!(file.check("x.lab", 22, &key(A)), Verdict::Unknown);
        assert_eq!(file.check("bad", 22, &key(A)), Verdict::Revoked);
        assert_eq!(
            file.check("cs1", 2222, &key(A)),
            Verdict::Changed {
                was: vec![fingerprint(&key(B))]
            }
        );
        assert!(fingerprint(&key(A)).starts_with("SHA256:"));
    }

    #[test]
    fn patterns() {
        let p = |list: &[&str], name| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            matches_host(&list, name)
        };
        assert!(p(&["*.lab"], "cs1.lab"));
        assert!(!p(&["*.lab", "!cs9.lab"], "cs9.lab"));
        assert!(p(&["cs?"], "cs7"));
        assert!(!p(&["cs?"], "cs17"));
        assert!(p(&["[10.0.0.*]:2222"], "[10.0.0.5]:2222"));
        assert!(!p(&["[10.0.0.*]:2222"], "10.0.0.5"));
        assert!(p(&["**a*"], "bab"));
        assert!(!p(&["!x"], "y"));
    }

    #[test]
    fn append_then_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        assert_eq!(
            KnownHosts::load(&path).unwrap().check("h", 2222, &key(A)),
            Verdict::Unknown
        );
        append(&path, "h", 2222, &key(A)).unwrap();
        append(&path, "h", 22, &key(B)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("[h]:2222 {A}\nh {B}\n")),
            "{text}"
        );
        let file = KnownHosts::load(&path).unwrap();
        assert_eq!(file.check("h", 2222, &key(A)), Verdict::Known);
        assert_eq!(file.check("h", 22, &key(B)), Verdict::Known);
    }

    /// known_hosts files are outside input: no content may panic the reader.
    #[test]
    fn random_files_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x55_4b_48);
        let pieces = [
            "@revoked ",
            "@",
            "|1|",
            "[",
            "]:",
            "*",
            "?",
            "!",
            ",",
            " ",
            "\n",
            "#",
            "cs1",
            "ssh-ed25519 ",
            "AAAAC3NzaC1lZDI1NTE5AAAA",
            A,
            "\u{e9}",
            "\t",
            "\r",
        ];
        let k = key(A);
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..rng.random_range(0..12) {
                text.push_str(pieces[rng.random_range(0..pieces.len())]);
            }
            let file = KnownHosts::parse(&text);
            let _ = file.check("cs1", 22, &k);
            let _ = file.check("cs1", 2222, &k);
        }
    }
}
