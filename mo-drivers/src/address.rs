//! Access addresses: parsing the URLs that name a device's link.
//!
//! Every driver is reached through a URL whose scheme names the driver (DESIGN.md §9). This module
//! holds what the drivers share: [`DriverOptions`] (how relative paths resolve), checks that an
//! address carries no parts its driver ignores (a host where only a path makes sense, a fragment),
//! local path decoding, and a strict query reader that rejects unknown and repeated parameters so a
//! typo (`bad=9600` for `baud=9600`) is an error, not a silent default.
//!
//! Paths in addresses are percent-decoded (`%20` is a space). Query values are decoded as HTML
//! forms are: `+` and `%20` are spaces, `%2B` is a plus, `%26` an ampersand.
//!
//! ```
//! use mo_drivers::address::{parse, Query};
//!
//! let url = parse("serial:///dev/ttyS0?baud=115200").unwrap();
//! let query = Query::parse(&url, "serial:///dev/ttyS0?baud=115200", &["baud", "parity"]).unwrap();
//! assert_eq!(query.single("baud").unwrap(), Some("115200"));
//! assert!(Query::parse(&url, "…", &["parity"]).is_err());
//! ```

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use mo_core::{Error, Result};
use url::Url;

use crate::credentials::Credentials;

/// Settings that apply to every driver, passed to [`crate::connector_for`].
///
/// ```
/// use mo_drivers::DriverOptions;
/// let opts = DriverOptions::new().with_base_dir("/var/lib/mo");
/// assert_eq!(opts.base_dir.as_deref(), Some(std::path::Path::new("/var/lib/mo")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverOptions {
    /// The directory that relative paths in addresses resolve against (`unix:run/x.sock`,
    /// `exec:bin/console.sh`, `serial:ttyDEV`). Without it, relative paths are an error.
    pub base_dir: Option<PathBuf>,
    /// The device's secrets (never part of its address).
    pub credentials: Credentials,
    /// An OpenSSH-format `known_hosts` file holding the host keys of SSH devices. Without it
    /// every host key is unknown.
    pub known_hosts: Option<PathBuf>,
    /// Accept (and record in [`DriverOptions::known_hosts`]) the key of an SSH device seen for
    /// the first time. A *changed* key is refused regardless.
    pub trust_on_first_use: bool,
    /// How `agent://` links reach the agents (the daemon's connections); empty elsewhere.
    pub agents: crate::agent::AgentDirectory,
}

impl DriverOptions {
    /// Options with nothing set (same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`DriverOptions::base_dir`].
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Set [`DriverOptions::credentials`].
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Set [`DriverOptions::known_hosts`].
    pub fn with_known_hosts(mut self, file: impl Into<PathBuf>) -> Self {
        self.known_hosts = Some(file.into());
        self
    }

    /// Set [`DriverOptions::agents`].
    pub fn with_agents(mut self, agents: crate::agent::AgentDirectory) -> Self {
        self.agents = agents;
        self
    }

    /// Set [`DriverOptions::trust_on_first_use`].
    pub fn with_trust_on_first_use(mut self, yes: bool) -> Self {
        self.trust_on_first_use = yes;
        self
    }
}

/// An [`Error::BadAddress`] for `address` saying `reason`.
pub fn bad(address: &str, reason: impl Into<String>) -> Error {
    Error::BadAddress {
        address: address.to_owned(),
        reason: reason.into(),
    }
}

/// Parse `address` as a URL, with an error that names the address and what is wrong.
pub fn parse(address: &str) -> Result<Url> {
    Url::parse(address).map_err(|e| bad(address, format!("not a URL: {e}")))
}

/// Parse `address` as a URL whose scheme picks a driver. An address without a scheme gets an
/// error listing `schemes` and showing `example`.
pub fn parse_schemed(address: &str, schemes: &[&str], example: &str) -> Result<Url> {
    match Url::parse(address) {
        Ok(parsed) => Ok(parsed),
        Err(url::ParseError::RelativeUrlWithoutBase) => Err(bad(
            address,
            format!(
                "no scheme; write SCHEME:… with one of {} (for example {example})",
                schemes.join(", ")
            ),
        )),
        Err(e) => Err(bad(address, format!("not a URL: {e}"))),
    }
}

/// The address of `url` fit for messages: any password is removed.
pub fn display(url: &Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        // Only fails for URLs that cannot have a password, and this one has one.
        if shown.set_password(None).is_ok() {
            return shown.to_string();
        }
    }
    url.to_string()
}

/// Reject the parts of a URL that a local (path-only) driver does not use: host, user, password,
/// port and fragment. `scheme` is named in the messages.
pub fn expect_local(url: &Url, address: &str) -> Result<()> {
    let scheme = url.scheme();
    if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
        return Err(bad(
            address,
            format!(
                "`{scheme}` addresses name a local path, not a host (found host `{host}`); \
                 write {scheme}:///absolute/path"
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            address,
            format!("`{scheme}` addresses take no user name or password"),
        ));
    }
    if url.port().is_some() {
        return Err(bad(address, format!("`{scheme}` addresses take no port")));
    }
    expect_no_fragment(url, address)
}

/// Reject a `#fragment`, which would otherwise silently cut off the rest of an address (write
/// `%23` for a `#` inside a value).
pub fn expect_no_fragment(url: &Url, address: &str) -> Result<()> {
    match url.fragment() {
        Some(fragment) => Err(bad(
            address,
            format!("unexpected fragment `#{fragment}` (write %23 for a `#` inside a value)"),
        )),
        None => Ok(()),
    }
}

/// The percent-decoded path of `url`, as written (relative or absolute). Errors when it is empty.
pub fn raw_path(url: &Url, address: &str) -> Result<PathBuf> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(url.path()).collect();
    if decoded.is_empty() || decoded == b"/" {
        return Err(bad(
            address,
            format!("no path in this `{}` address", url.scheme()),
        ));
    }
    if decoded.contains(&0) {
        return Err(bad(address, "the path contains a NUL byte"));
    }
    Ok(PathBuf::from(OsString::from_vec(decoded)))
}

/// The local path named by `url`, made absolute against [`DriverOptions::base_dir`] when relative.
pub fn local_path(url: &Url, address: &str, opts: &DriverOptions) -> Result<PathBuf> {
    let path = raw_path(url, address)?;
    resolve(path, address, opts)
}

/// Make `path` absolute against [`DriverOptions::base_dir`]; a relative path without a base
/// directory is an error.
pub fn resolve(path: PathBuf, address: &str, opts: &DriverOptions) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    match &opts.base_dir {
        Some(base) => Ok(base.join(path)),
        None => Err(bad(
            address,
            format!(
                "relative path `{}` but no base directory is configured; write an absolute path",
                path.display()
            ),
        )),
    }
}

/// The query parameters of an address, checked against the names a driver knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    address: String,
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Read the query of `url`. Every parameter name must be one of `known`; the error for an
    /// unknown one lists the known names.
    pub fn parse(url: &Url, address: &str, known: &[&str]) -> Result<Self> {
        let mut pairs = Vec::new();
        for (key, value) in url.query_pairs() {
            if !known.contains(&key.as_ref()) {
                let known = if known.is_empty() {
                    "this kind of address takes none".to_owned()
                } else {
                    format!("known: {}", known.join(", "))
                };
                return Err(bad(address, format!("unknown parameter `{key}` ({known})")));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Self {
            address: address.to_owned(),
            pairs,
        })
    }

    /// The value of a parameter that may appear at most once.
    pub fn single(&self, key: &str) -> Result<Option<&str>> {
        let values = self.all(key);
        let first = values.first().copied();
        if values.len() > 1 {
            return Err(bad(
                &self.address,
                format!("parameter `{key}` is given more than once"),
            ));
        }
        Ok(first)
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `key` parsed by `parse`, which says what it expected on failure; `None` when
    /// the parameter is absent.
    pub fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, String>,
    ) -> Result<Option<T>> {
        match self.single(key)? {
            None => Ok(None),
            Some(value) => parse(value).map(Some).map_err(|expected| {
                bad(
                    &self.address,
                    format!("bad value `{value}` for `{key}`: expected {expected}"),
                )
            }),
        }
    }
}

/// Whether `path` names a program to look up in `PATH` (a bare name without any `/`).
pub fn is_bare_name(path: &Path) -> bool {
    !path.as_os_str().is_empty() && !path.as_os_str().as_encoded_bytes().contains(&b'/')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn local_path_rules() {
        let opts = DriverOptions::new();
        let url = parse("unix:///run/x%20y.sock").unwrap();
        assert_eq!(
            local_path(&url, "a", &opts).unwrap(),
            PathBuf::from("/run/x y.sock")
        );
        let rel = parse("unix:run/x.sock").unwrap();
        let err = local_path(&rel, "unix:run/x.sock", &opts).unwrap_err();
        assert!(
            err.to_string().contains("relative path `run/x.sock`"),
            "{err}"
        );
        let based = DriverOptions::new().with_base_dir("/srv");
        assert_eq!(
            local_path(&rel, "a", &based).unwrap(),
            PathBuf::from("/srv/run/x.sock")
        );
        let empty = parse("unix://").unwrap();
        assert!(local_path(&empty, "unix://", &opts).is_err());
        let nul = parse("unix:///a%00b").unwrap();
        assert!(local_path(&nul, "x", &opts).is_err());
    }

    #[test]
    fn local_rejects_host_user_fragment() {
        for address in [
            "unix://host/x.sock",
            "unix://me@h/x.sock",
            "unix:///x.sock#frag",
            "exec://h:22/bin/sh",
        ] {
            let url = parse(address).unwrap();
            let err = expect_local(&url, address).unwrap_err();
            assert!(err.to_string().contains(address), "{err}");
        }
        expect_local(&parse("unix:///x.sock").unwrap(), "x").unwrap();
    }

    #[test]
    fn query_rules() {
        let address = "serial:///dev/ttyS0?baud=9600&baud=1200&parity=odd&x=1";
        let url = parse(address).unwrap();
        let err = Query::parse(&url, address, &["baud", "parity"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown parameter `x` (known: baud, parity)"),
            "{err}"
        );
        let q = Query::parse(&url, address, &["baud", "parity", "x"]).unwrap();
        assert!(q.single("baud").is_err());
        assert_eq!(q.single("parity").unwrap(), Some("odd"));
        assert_eq!(q.single("data").unwrap(), None);
        assert_eq!(q.all("baud"), ["9600", "1200"]);
        let n = q.parsed("x", |v| v.parse::<u8>().map_err(|_| "a number".into()));
        assert_eq!(n.unwrap(), Some(1));
        let err = q
            .parsed("parity", |v| v.parse::<u8>().map_err(|_| "a number".into()))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("bad value `odd` for `parity`: expected a number"),
            "{err}"
        );
        let plus = parse("exec:///bin/sh?arg=a+b%2Bc%26d").unwrap();
        let q = Query::parse(&plus, "x", &["arg"]).unwrap();
        assert_eq!(q.single("arg").unwrap(), Some("a b+c&d"));
    }

    #[test]
    fn display_hides_password() {
        let url = parse("ssh://admin:secret@10.0.0.5").unwrap();
        assert_eq!(display(&url), "ssh://admin@10.0.0.5");
        let url = parse("unix:///x").unwrap();
        assert_eq!(display(&url), "unix:///x");
    }

    #[test]
    fn bare_names() {
        assert!(is_bare_name(Path::new("cat")));
        assert!(!is_bare_name(Path::new("bin/cat")));
        assert!(!is_bare_name(Path::new("/bin/cat")));
        assert!(!is_bare_name(Path::new("")));
    }
}
