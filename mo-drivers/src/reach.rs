//! What an address reaches from the daemon's host: a program it runs, a local path it opens, a
//! host it connects to — so a site can decide who may point the daemon there.
//!
//! A console or power address runs as the daemon's user. `exec:///bin/sh`, `unix:///var/run/
//! docker.sock` or a `tcp://` to an internal address is a shell (or a network hop) on the
//! daemon's host for whoever may add devices. [`console_reach`] and [`power_reach`] read an
//! address without opening anything and say what it would touch; the daemon compares that with
//! its site allowlist. A `cs://` profile address reaches the host of the address it resolves to.
//!
//! ```
//! use mo_drivers::reach::{Reach, console_reach, power_reach};
//!
//! assert_eq!(console_reach("sim://web01").unwrap(), Reach::Nothing);
//! assert_eq!(
//!     console_reach("exec:///bin/sh?arg=-i").unwrap(),
//!     Reach::Program { program: "/bin/sh".into(), sets_env: false }
//! );
//! assert_eq!(
//!     console_reach("unix:///var/run/docker.sock").unwrap(),
//!     Reach::Path { path: "/var/run/docker.sock".into() }
//! );
//! assert_eq!(
//!     console_reach("cs://admin@cs1/5?profile=opengear").unwrap(),
//!     Reach::Host { scheme: "ssh".into(), host: "cs1".into(), port: 22 }
//! );
//! assert_eq!(
//!     power_reach("snmp://pdu1/apc/3").unwrap(),
//!     Reach::Host { scheme: "snmp".into(), host: "pdu1".into(), port: 161 }
//! );
//! ```

use std::path::PathBuf;

use mo_core::Result;
use url::Url;

use crate::address::{self, DriverOptions, Query};

/// What one address reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reach {
    /// Nothing outside the daemon (a simulated device).
    Nothing,
    /// A program the daemon runs (`exec:` consoles and power controllers).
    Program {
        /// The program: an absolute path, or a bare name looked up in `PATH`.
        program: PathBuf,
        /// Whether the address also sets environment variables (`env=`), which can change what
        /// any program does (`LD_PRELOAD`, `PATH`).
        sets_env: bool,
    },
    /// A local path the daemon opens: a Unix socket or a serial device.
    Path {
        /// The absolute path.
        path: PathBuf,
    },
    /// A host the daemon connects to.
    Host {
        /// The scheme that connects (`tcp`, `telnet`, `rfc2217`, `ssh`, `ipmi`, `redfish`, `snmp`).
        scheme: String,
        /// The host as written in the address (a name or an address, no brackets); no DNS
        /// lookup is made.
        host: String,
        /// The port written, or the scheme's default.
        port: u16,
    },
}

/// What the console address `address` reaches (see the [module docs](self)). An address that
/// cannot be read is an error naming it.
pub fn console_reach(address: &str) -> Result<Reach> {
    let url = address::parse(address)?;
    match url.scheme() {
        "sim" => Ok(Reach::Nothing),
        "exec" => {
            let spec = crate::exec::ExecSpec::from_url(&url, address, &DriverOptions::default())?;
            Ok(Reach::Program {
                program: spec.program,
                sets_env: !spec.env.is_empty(),
            })
        }
        "unix" | "serial" => local(&url, address),
        "cs" => console_reach(&crate::profile::resolve_url(&url, address)?),
        "telnet" => host(&url, address, Some(23)),
        "ssh" => host(&url, address, Some(22)),
        "ipmi" => host(&url, address, Some(623)),
        "tcp" | "rfc2217" => host(&url, address, None),
        other => Err(address::bad(
            address,
            format!(
                "unknown scheme `{other}` (known: {})",
                crate::schemes().join(", ")
            ),
        )),
    }
}

/// What the power address `address` reaches (see the [module docs](self)).
pub fn power_reach(address: &str) -> Result<Reach> {
    let url = address::parse(address)?;
    match url.scheme() {
        "exec" => {
            address::expect_local(&url, address)?;
            let program = address::raw_path(&url, address)?;
            if !program.is_absolute() && !address::is_bare_name(&program) {
                return Err(address::bad(
                    address,
                    "relative program path; write an absolute path",
                ));
            }
            let sets_env = url.query_pairs().any(|(k, _)| k == "env");
            Ok(Reach::Program { program, sets_env })
        }
        "ipmi" => host(&url, address, Some(623)),
        "snmp" => host(&url, address, Some(161)),
        "redfish" => {
            let query = Query::parse(
                &url,
                address,
                &["tls", "fingerprint", "ca", "wait", "poll", "timeout"],
            )?;
            let plain = matches!(query.single("tls")?, Some("0" | "no" | "false"));
            host(&url, address, Some(if plain { 80 } else { 443 }))
        }
        other => Err(address::bad(
            address,
            format!(
                "unknown power scheme `{other}` (known: {})",
                crate::power::power_schemes().join(", ")
            ),
        )),
    }
}

fn local(url: &Url, address: &str) -> Result<Reach> {
    address::expect_local(url, address)?;
    let path = address::local_path(url, address, &DriverOptions::default())?;
    Ok(Reach::Path { path })
}

fn host(url: &Url, address: &str, default_port: Option<u16>) -> Result<Reach> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| address::bad(address, "no host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = url
        .port()
        .or(default_port)
        .ok_or_else(|| address::bad(address, "no port; write HOST:PORT"))?;
    Ok(Reach::Host {
        scheme: url.scheme().to_owned(),
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn host_of(reach: Reach) -> (String, u16) {
        match reach {
            Reach::Host { host, port, .. } => (host, port),
            other => panic!("not a host: {other:?}"),
        }
    }

    #[test]
    fn every_scheme_says_what_it_reaches() {
        for (address, host, port) in [
            ("tcp://10.0.0.5:22", "10.0.0.5", 22),
            ("telnet://cs1", "cs1", 23),
            ("telnet://cs1:7002", "cs1", 7002),
            ("rfc2217://cs1:7001?baud=9600", "cs1", 7001),
            ("ssh://admin@[::1]:2200", "::1", 2200),
            ("ipmi://admin@bmc1", "bmc1", 623),
            (
                "cs://cs9/3?profile=ser2net&via=rfc2217&base=7000",
                "cs9",
                7003,
            ),
        ] {
            assert_eq!(
                host_of(console_reach(address).unwrap()),
                (host.to_owned(), port),
                "{address}"
            );
        }
        for (address, host, port) in [
            ("redfish://admin@bmc1/Systems/1", "bmc1", 443),
            ("redfish://admin@bmc1:8000/Systems/1?tls=0", "bmc1", 8000),
            ("redfish://admin@bmc1/Systems/1?tls=0", "bmc1", 80),
            ("ipmi://admin@bmc2:9623", "bmc2", 9623),
        ] {
            assert_eq!(
                host_of(power_reach(address).unwrap()),
                (host.to_owned(), port),
                "{address}"
            );
        }
        assert_eq!(
            console_reach("exec:///bin/sh?env=LD_PRELOAD%3D/tmp/x.so").unwrap(),
            Reach::Program {
                program: "/bin/sh".into(),
                sets_env: true
            }
        );
        assert_eq!(
            console_reach("exec:sh").unwrap(),
            Reach::Program {
                program: "sh".into(),
                sets_env: false
            }
        );
        assert_eq!(
            power_reach("exec:///usr/bin/pdu?arg={action}&env=A%3Db").unwrap(),
            Reach::Program {
                program: "/usr/bin/pdu".into(),
                sets_env: true
            }
        );
        assert_eq!(
            console_reach("serial:///dev/ttyS0?baud=9600").unwrap(),
            Reach::Path {
                path: "/dev/ttyS0".into()
            }
        );
    }

    #[test]
    fn unreadable_addresses_are_errors() {
        for address in [
            "tcp://cs1",
            "exec:bin/sh",
            "unix:run/x.sock",
            "telnot://x",
            "cs://cs1/3?profile=cisco",
        ] {
            assert!(console_reach(address).is_err(), "{address}");
        }
        for address in ["exec:bin/pdu", "http://x", "exec://host/bin/x"] {
            assert!(power_reach(address).is_err(), "{address}");
        }
    }
}
