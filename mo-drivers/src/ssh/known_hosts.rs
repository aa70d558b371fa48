//! OpenSSH `known_hosts` files: which host keys an SSH device may present.
//!
//! Each line is `[@marker] PATTERNS KEYTYPE BASE64 [COMMENT]`. PATTERNS is a comma-separated list
//! of host names as OpenSSH writes them — `host` for port 22, `[host]:port` otherwise — with `*`
//! and `?` wildcards and `!` negation. A hashed name (`|1|SALT|HASH`, written by `ssh-keygen -H`
//! and by `ssh` under `HashKnownHosts yes`, Debian's default) stands for the one host name whose
//! HMAC-SHA1 keyed with the base64 SALT is the base64 HASH; it is matched by hashing the name
//! being checked (`host` or `[host]:port`, as above). `@cert-authority` lines are skipped: mo does
//! not match them, so a device listed only that way counts as unknown. `@revoked` lines are
//! honoured: a revoked key is always refused. Lines that cannot be read (including hashed names
//! with bad base64 or a hash that is not 20 bytes) are skipped, as OpenSSH does.
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

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

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

/// The host part of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// Comma-separated patterns in clear.
    Patterns(Vec<String>),
    /// One hashed name: `|1|SALT|HASH`, HASH = HMAC-SHA1(key = SALT, name); SALT is 20 bytes.
    Hashed {
        /// The HMAC key.
        salt: Vec<u8>,
        /// The 20-byte HMAC of the name.
        hash: [u8; HASH_LEN],
    },
}

/// The length of an HMAC-SHA1.
const HASH_LEN: usize = 20;

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Patterns(patterns) => matches_host(patterns, name),
            // ssh hashes the name it looks up in lower case; a name hashed as written (ssh-keygen
            // -H on a hand-edited file) matches too.
            Hosts::Hashed { salt, hash } => {
                let lower = name.to_ascii_lowercase();
                hmac_sha1(salt, lower.as_bytes()).is_some_and(|h| h == *hash)
                    || (lower != name
                        && hmac_sha1(salt, name.as_bytes()).is_some_and(|h| h == *hash))
            }
        }
    }
}

/// One usable line.
#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
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
        for entry in self.entries.iter().filter(|e| e.hosts.matches(&name)) {
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

/// One line, or `None` for comments, blank, `@cert-authority` and unreadable lines.
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
    let hosts = match hosts.strip_prefix('|') {
        Some(hashed) => parse_hashed(hashed)?,
        None => Hosts::Patterns(hosts.split(',').map(str::to_owned).collect()),
    };
    let key = PublicKey::from_openssh(key.trim()).ok()?;
    Some(Entry { marker, hosts, key })
}

/// `1|SALT|HASH` (the text after the leading `|`), or `None` if it is not a hashed name OpenSSH
/// would read (another magic than `1`, bad base64, a salt or hash that is not 20 bytes).
fn parse_hashed(text: &str) -> Option<Hosts> {
    let rest = text.strip_prefix("1|")?;
    let (salt, hash) = rest.split_once('|')?;
    let salt = Base64::decode_vec(salt)
        .ok()
        .filter(|s| s.len() == HASH_LEN)?;
    let hash = <[u8; HASH_LEN]>::try_from(Base64::decode_vec(hash).ok()?).ok()?;
    Some(Hosts::Hashed { salt, hash })
}

/// HMAC-SHA1 of `message` keyed with `key` (any key length is valid for HMAC; `None` never
/// happens in practice but keeps this free of panics).
fn hmac_sha1(key: &[u8], message: &[u8]) -> Option<[u8; HASH_LEN]> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(message);
    <[u8; HASH_LEN]>::try_from(mac.finalize().into_bytes().as_slice()).ok()
}

/// `name` (as [`host_name`] gives it) hashed as `ssh-keygen -H` writes it, with `salt`:
/// `|1|SALT|HASH`. For tests and for tools that write hashed files.
pub fn hash_host_name(name: &str, salt: &[u8]) -> Option<String> {
    let hash = hmac_sha1(salt, name.as_bytes())?;
    Some(format!(
        "|1|{}|{}",
        Base64::encode_string(salt),
        Base64::encode_string(&hash)
    ))
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

/// `*` and `?` wildcards, ASCII case-insensitive (host names are): OpenSSH's pattern syntax,
/// not mo's globs (`mo_core::glob`), since `[` here is literal (`[host]:port`).
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

    /// Run the real `ssh-keygen -H` on a file holding `text`; returns the hashed file.
    fn hashed_by_ssh_keygen(dir: &Path, text: &str) -> String {
        let path = dir.join("known_hosts");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("running ssh-keygen -H (apt-get install openssh-client)");
        assert!(
            out.status.success(),
            "ssh-keygen -H failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&path).unwrap()
    }

    /// Whether the real `ssh-keygen -F NAME` finds `name` in the file at `path`.
    fn ssh_keygen_finds(path: &Path, name: &str) -> bool {
        let out = std::process::Command::new("ssh-keygen")
            .arg("-F")
            .arg(name)
            .arg("-f")
            .arg(path)
            .output()
            .expect("running ssh-keygen -F (apt-get install openssh-client)");
        out.status.success() && !out.stdout.is_empty()
    }

    #[test]
    fn hashed_entries_written_by_ssh_keygen_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let clear = format!(
            "cs1 {A}\n[cs1]:2222 {B}\n10.0.0.5,Web01 {A}\n@revoked bad {A}\n[10.0.0.9]:830 {B}\n"
        );
        let hashed = hashed_by_ssh_keygen(dir.path(), &clear);
        // Every name is hashed (a comma list becomes one line per name); @revoked stays clear.
        assert_eq!(
            hashed.lines().filter(|l| l.starts_with("|1|")).count(),
            5,
            "{hashed}"
        );
        for name in ["cs1", "10.0.0.5", "Web01", "web01", "10.0.0.9"] {
            assert!(!hashed.contains(name), "{name} left in clear:\n{hashed}");
        }
        let file = KnownHosts::parse(&hashed);
        assert_eq!(file.check("cs1", 22, &key(A)), Verdict::Known);
        assert_eq!(file.check("cs1", 2222, &key(B)), Verdict::Known);
        assert_eq!(file.check("10.0.0.5", 22, &key(A)), Verdict::Known);
        assert_eq!(file.check("10.0.0.9", 830, &key(B)), Verdict::Known);
        // ssh-keygen hashes names in lower case; so does the check.
        assert_eq!(file.check("web01", 22, &key(A)), Verdict::Known);
        assert_eq!(file.check("WEB01", 22, &key(A)), Verdict::Known);
        // A wrong key for a hashed host is a changed key, with the recorded fingerprint.
        assert_eq!(
            file.check("cs1", 2222, &key(A)),
            Verdict::Changed {
                was: vec![fingerprint(&key(B))]
            }
        );
        assert_eq!(
            file.check("cs1", 22, &key(B)),
            Verdict::Changed {
                was: vec![fingerprint(&key(A))]
            }
        );
        // Other names and other ports stay unknown.
        assert_eq!(file.check("cs2", 22, &key(A)), Verdict::Unknown);
        assert_eq!(file.check("cs1", 2223, &key(A)), Verdict::Unknown);
        assert_eq!(file.check("10.0.0.9", 22, &key(B)), Verdict::Unknown);
        assert_eq!(file.check("bad", 22, &key(A)), Verdict::Revoked);
    }

    #[test]
    fn hash_host_name_agrees_with_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        // The salt ssh-keygen chose reproduces its hash.
        let hashed = hashed_by_ssh_keygen(dir.path(), &format!("[cs1]:2222 {B}\n"));
        let field = hashed.split_whitespace().next().unwrap();
        let salt = Base64::decode_vec(field.split('|').nth(2).unwrap()).unwrap();
        assert_eq!(hash_host_name("[cs1]:2222", &salt).unwrap(), field);
        // And ssh-keygen -F finds a name mo hashed.
        let path = dir.path().join("ours");
        let ours = format!(
            "{} {A}\n",
            hash_host_name(&host_name("h", 2222), &[7u8; HASH_LEN]).unwrap()
        );
        std::fs::write(&path, &ours).unwrap();
        assert!(ssh_keygen_finds(&path, "[h]:2222"), "{ours}");
        assert!(!ssh_keygen_finds(&path, "h"), "{ours}");
        assert_eq!(
            KnownHosts::parse(&ours).check("h", 2222, &key(A)),
            Verdict::Known
        );
    }

    #[test]
    fn malformed_hashed_names_are_skipped() {
        let good = hash_host_name("cs1", &[1u8; HASH_LEN]).unwrap();
        let short_salt = hash_host_name("cs1", &[1u8; 8]).unwrap();
        let (_, hash) = good.rsplit_once('|').unwrap();
        for line in [
            format!("{short_salt} {A}"),
            format!("|2|{} {A}", &good[3..]),
            format!("|1|{hash} {A}"),
            format!("|1|!!!!|{hash} {A}"),
            format!("|1|{}|AAAA {A}", &good[3..31]),
            format!("|1|| {A}"),
            format!("| {A}"),
        ] {
            let file = KnownHosts::parse(&line);
            assert!(file.entries.is_empty(), "read {line:?}");
            assert_eq!(file.check("cs1", 22, &key(A)), Verdict::Unknown, "{line}");
        }
        let file = KnownHosts::parse(&format!("{good} {A}\n"));
        assert_eq!(file.check("cs1", 22, &key(A)), Verdict::Known);
    }

    /// known_hosts files are outside input: no content may panic the reader.
    #[test]
    fn random_files_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x55_4b_48);
        let pieces = [
            "@revoked ",
            "@",
            "|1|",
            "|1|HH9tgBC1Q4tZnEKVfAE3gP4Vmt8=|ghlKt9SfHeFCsexsDeDjeMVjo/A= ",
            "|1|HH9tgBC1Q4tZnEKVfAE3gP4Vmt8=|",
            "=",
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
