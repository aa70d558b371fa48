//! Console-server profiles: a device names a console server and a port number instead of a full
//! address, and the profile turns that into the URL each vendor's port convention needs.
//!
//! ```text
//! cs://[USER@]HOST/PORT?profile=NAME[&via=ssh|telnet|rfc2217|tcp][&base=N]
//! ```
//!
//! | profile    | ssh (default unless noted)        | telnet   | tcp (raw) | rfc2217  |
//! |------------|-----------------------------------|----------|-----------|----------|
//! | `opengear` | `ssh://USER:portNN@HOST` (NN = 2 digits) | 2000+N | 4000+N | 5000+N |
//! | `avocent`  | `ssh://USER:ttySN@HOST` (Avocent/Cyclades ACS) | 7000+N | —   | —        |
//! | `lantronix`| `ssh://USER@HOST:3000+N` (SLC)    | 2000+N   | 4000+N    | —        |
//! | `digi`     | — (default `telnet`)              | 2000+N   | 2100+N    | —        |
//! | `ser2net`  | — (default `telnet`)              | 2000+N   | 4000+N    | 5000+N   |
//!
//! `base=N` replaces the base port of the chosen access method (for sites that moved them).
//! Credentials stay apart from the address as for every driver.
//!
//! ```
//! use mo_drivers::profile::resolve;
//! assert_eq!(resolve("cs://admin@cs1/5?profile=opengear").unwrap(), "ssh://admin:port05@cs1");
//! assert_eq!(resolve("cs://cs1/5?profile=opengear&via=telnet").unwrap(), "telnet://cs1:2005");
//! assert_eq!(resolve("cs://cs1/3?profile=ser2net&via=rfc2217&base=7000").unwrap(), "rfc2217://cs1:7003");
//! assert!(resolve("cs://cs1/3?profile=cisco").unwrap_err().to_string().contains("unknown profile"));
//! ```

use mo_core::Result;
use url::Url;

use crate::address::{self, Query};

/// The profile names, as listed in messages.
pub const PROFILES: &[&str] = &["opengear", "avocent", "lantronix", "digi", "ser2net"];

/// How mo reaches a port on the console server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Ssh,
    Telnet,
    Tcp,
    Rfc2217,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Ssh => "ssh",
            Via::Telnet => "telnet",
            Via::Tcp => "tcp",
            Via::Rfc2217 => "rfc2217",
        }
    }
}

/// Each access method with its base port (`None` = the vendor has no such access, or SSH by
/// user-name convention).
type Ports = [(Via, Option<u32>); 4];

/// The default access method and the base port of each method for a profile.
fn profile_ports(profile: &str) -> Option<(Via, Ports)> {
    use Via::*;
    Some(match profile {
        "opengear" => (
            Ssh,
            [
                (Ssh, None),
                (Telnet, Some(2000)),
                (Tcp, Some(4000)),
                (Rfc2217, Some(5000)),
            ],
        ),
        "avocent" => (
            Ssh,
            [
                (Ssh, None),
                (Telnet, Some(7000)),
                (Tcp, None),
                (Rfc2217, None),
            ],
        ),
        "lantronix" => (
            Ssh,
            [
                (Ssh, Some(3000)),
                (Telnet, Some(2000)),
                (Tcp, Some(4000)),
                (Rfc2217, None),
            ],
        ),
        "digi" => (
            Telnet,
            [
                (Ssh, None),
                (Telnet, Some(2000)),
                (Tcp, Some(2100)),
                (Rfc2217, None),
            ],
        ),
        "ser2net" => (
            Telnet,
            [
                (Ssh, None),
                (Telnet, Some(2000)),
                (Tcp, Some(4000)),
                (Rfc2217, Some(5000)),
            ],
        ),
        _ => return None,
    })
}

/// Turn a `cs://` address into the driver address it stands for. Errors name the address and
/// what is wrong (unknown profile, a method the vendor lacks, a bad port number).
pub fn resolve(address: &str) -> Result<String> {
    let url = address::parse(address)?;
    resolve_url(&url, address)
}

pub(crate) fn resolve_url(url: &Url, address: &str) -> Result<String> {
    address::expect_no_fragment(url, address)?;
    if url.password().is_some() {
        return Err(address::bad(
            address,
            "no password in addresses: device secrets are stored apart (mo secret set)",
        ));
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        address::bad(address, "no console server; write cs://HOST/PORT?profile=…")
    })?;
    if url.port().is_some() {
        return Err(address::bad(
            address,
            "give the console-server port number as the path (cs://HOST/5), not a TCP port",
        ));
    }
    let number: u32 = url
        .path()
        .trim_start_matches('/')
        .parse()
        .ok()
        .filter(|n| (1..=999).contains(n))
        .ok_or_else(|| {
            address::bad(
                address,
                format!(
                    "`{}` is not a port number 1–999; write cs://HOST/PORT",
                    url.path().trim_start_matches('/')
                ),
            )
        })?;
    let query = Query::parse(url, address, &["profile", "via", "base"])?;
    let profile = query
        .single("profile")?
        .ok_or_else(|| {
            address::bad(
                address,
                format!("no profile; add ?profile= one of {}", PROFILES.join(", ")),
            )
        })?
        .to_ascii_lowercase();
    let Some((default_via, ports)) = profile_ports(&profile) else {
        return Err(address::bad(
            address,
            format!(
                "unknown profile `{profile}` (known: {})",
                PROFILES.join(", ")
            ),
        ));
    };
    let via = match query.single("via")? {
        None => default_via,
        Some("ssh") => Via::Ssh,
        Some("telnet") => Via::Telnet,
        Some("tcp" | "raw") => Via::Tcp,
        Some("rfc2217") => Via::Rfc2217,
        Some(other) => {
            return Err(address::bad(
                address,
                format!("unknown via `{other}` (known: ssh, telnet, rfc2217, tcp)"),
            ));
        }
    };
    let base =
        match query.single("base")? {
            None => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                address::bad(address, format!("base `{text}` is not a port number"))
            })?),
        };
    let user = url.username();
    // url gives IPv6 hosts in brackets already.
    let host = host.to_owned();
    let port_base = ports.iter().find(|(v, _)| *v == via).and_then(|(_, b)| *b);
    let tcp_port = |base: Option<u32>| -> Result<u16> {
        let base = base.ok_or_else(|| {
            address::bad(
                address,
                format!("profile `{profile}` has no {} access", via.name()),
            )
        })?;
        u16::try_from(base + number)
            .map_err(|_| address::bad(address, format!("port {base}+{number} is out of range")))
    };
    if via == Via::Ssh {
        if user.is_empty() {
            return Err(address::bad(
                address,
                "ssh access needs a user name: cs://USER@HOST/PORT",
            ));
        }
        return Ok(match (profile.as_str(), base.or(port_base)) {
            ("opengear", None) => format!("ssh://{user}:port{number:02}@{host}"),
            ("avocent", None) => format!("ssh://{user}:ttyS{number}@{host}"),
            (_, Some(b)) => format!("ssh://{user}@{host}:{}", tcp_port(Some(b))?),
            (_, None) => {
                return Err(address::bad(
                    address,
                    format!("profile `{profile}` has no ssh access"),
                ));
            }
        });
    }
    if !user.is_empty() {
        return Err(address::bad(
            address,
            format!("{} access takes no user name", via.name()),
        ));
    }
    let port = tcp_port(base.or(port_base))?;
    Ok(format!("{}://{host}:{port}", via.name()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_resolves_its_methods() {
        for (input, want) in [
            ("cs://root@og/12?profile=opengear", "ssh://root:port12@og"),
            ("cs://og/12?profile=opengear&via=tcp", "tcp://og:4012"),
            (
                "cs://og/12?profile=opengear&via=rfc2217",
                "rfc2217://og:5012",
            ),
            ("cs://admin@acs/3?profile=avocent", "ssh://admin:ttyS3@acs"),
            ("cs://acs/3?profile=avocent&via=telnet", "telnet://acs:7003"),
            (
                "cs://sysadmin@slc/7?profile=lantronix",
                "ssh://sysadmin@slc:3007",
            ),
            (
                "cs://slc/7?profile=lantronix&via=telnet",
                "telnet://slc:2007",
            ),
            ("cs://digi/1?profile=digi", "telnet://digi:2001"),
            ("cs://digi/1?profile=digi&via=raw", "tcp://digi:2101"),
            (
                "cs://[::1]/2?profile=ser2net&via=rfc2217&base=7000",
                "rfc2217://[::1]:7002",
            ),
        ] {
            assert_eq!(resolve(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn bad_addresses_say_why() {
        for (input, needle) in [
            ("cs://cs1/5", "no profile"),
            ("cs://cs1/5?profile=opengear", "needs a user name"),
            ("cs://u@cs1/5?profile=digi&via=ssh", "no ssh access"),
            (
                "cs://cs1/5?profile=avocent&via=rfc2217",
                "no rfc2217 access",
            ),
            ("cs://cs1/0?profile=digi", "not a port number"),
            ("cs://cs1/x?profile=digi", "not a port number"),
            ("cs://cs1:22/5?profile=digi", "not a TCP port"),
            ("cs://u:pw@cs1/5?profile=opengear", "no password"),
            ("cs://u@cs1/5?profile=digi", "takes no user name"),
            ("cs://cs1/5?profile=digi&via=pigeon", "unknown via"),
            ("cs://cs1/5?profile=digi&base=70000", "out of range"),
            ("cs:///5?profile=digi", "no console server"),
        ] {
            let err = resolve(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
