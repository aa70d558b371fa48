//! Per-console TCP ports (`mo device add|set NAME --listen ADDR:PORT[/MODE]`, docs/listen-ports.md):
//! the port specification ([`ListenSpec`]) and the allowed source networks ([`Cidr`],
//! `--listen-allow`).
//!
//! ```
//! use mo_core::door::listen::{Cidr, ListenMode, ListenSpec};
//!
//! let spec: ListenSpec = "127.0.0.1:7001/rfc2217".parse().unwrap();
//! assert_eq!(spec.mode, ListenMode::Rfc2217);
//! assert_eq!(spec.to_string(), "127.0.0.1:7001/rfc2217");
//! assert_eq!("[::1]:7002".parse::<ListenSpec>().unwrap().mode, ListenMode::Raw);
//! let lab: Cidr = "10.1.0.0/16".parse().unwrap();
//! assert!(lab.contains("10.1.2.3".parse().unwrap()));
//! assert!(!lab.contains("10.2.0.1".parse().unwrap()));
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::BadInput;

/// What a per-console port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenMode {
    /// Bytes both ways, nothing else (the default; `socat`, `nc`).
    Raw,
    /// Telnet (RFC 854) without a login: the `telnet` command, in character mode.
    Telnet,
    /// Telnet, asking for a mo user and password first; input is logged as that user.
    TelnetLogin,
    /// Telnet with the COM-PORT option (RFC 2217): pyserial's `rfc2217://`, labgrid.
    Rfc2217,
}

impl ListenMode {
    /// The mode's name in a specification (`raw`, `telnet`, `telnet+login`, `rfc2217`).
    pub fn name(self) -> &'static str {
        match self {
            ListenMode::Raw => "raw",
            ListenMode::Telnet => "telnet",
            ListenMode::TelnetLogin => "telnet+login",
            ListenMode::Rfc2217 => "rfc2217",
        }
    }

    /// Whether the port asks for a mo login before showing the console.
    pub fn has_login(self) -> bool {
        self == ListenMode::TelnetLogin
    }

    /// Whether the port speaks telnet.
    pub fn is_telnet(self) -> bool {
        self != ListenMode::Raw
    }
}

/// One per-console port: where it listens and what it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenSpec {
    /// The address and port to bind.
    pub addr: SocketAddr,
    /// The protocol.
    pub mode: ListenMode,
    /// Connections only watch (`,spy`); without it a connection takes the write lock when it is
    /// free and spies otherwise.
    pub spy: bool,
}

fn bad(reason: String) -> BadInput {
    BadInput {
        what: "a --listen port",
        reason,
    }
}

impl FromStr for ListenSpec {
    type Err = BadInput;

    fn from_str(text: &str) -> Result<Self, BadInput> {
        let (addr, mode) = match text.rsplit_once('/') {
            Some((addr, mode)) => (addr, Some(mode)),
            None => (text, None),
        };
        let (mode, spy) = match mode.map(|m| m.split_once(',')) {
            Some(Some((mode, "spy"))) => (Some(mode), true),
            Some(Some((_, other))) => {
                return Err(bad(format!(
                    "`{}`: unknown option `{}`; the only option is `spy` (e.g. 127.0.0.1:7001/telnet,spy)",
                    text.escape_debug(),
                    other.escape_debug()
                )));
            }
            Some(None) => (mode, false),
            None => (None, false),
        };
        let mode = match mode {
            None | Some("raw") => ListenMode::Raw,
            Some("telnet") => ListenMode::Telnet,
            Some("telnet+login") => ListenMode::TelnetLogin,
            Some("rfc2217") => ListenMode::Rfc2217,
            Some(other) => {
                return Err(bad(format!(
                    "`{}`: unknown mode `{}`; use raw, telnet, telnet+login or rfc2217",
                    text.escape_debug(),
                    other.escape_debug()
                )));
            }
        };
        let addr: SocketAddr = addr.parse().map_err(|_| {
            bad(format!(
                "`{}`: `{}` is not ADDR:PORT (an IP address and a port, e.g. 127.0.0.1:7001 or [::1]:7001)",
                text.escape_debug(),
                addr.escape_debug()
            ))
        })?;
        if addr.port() == 0 {
            return Err(bad(format!(
                "`{}`: port 0 is not a port to listen on",
                text.escape_debug()
            )));
        }
        Ok(ListenSpec { addr, mode, spy })
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.mode.name())?;
        if self.spy {
            f.write_str(",spy")?;
        }
        Ok(())
    }
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network's address (host bits as written).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = BadInput;

    fn from_str(text: &str) -> Result<Self, BadInput> {
        let err = |why: &str| BadInput {
            what: "a --listen-allow network",
            reason: format!("`{}`: {why}", text.escape_debug()),
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| err("not an IP network (write e.g. 10.0.0.0/8 or 2001:db8::/32)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(err(&format!("the prefix length must be 0 to {max}"))),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Check a device's ports and allowed networks together: each parses, no address appears twice,
/// and a port without a login of its own (raw, telnet, rfc2217) binds a loopback address unless
/// `allow` names the networks that may connect. The error names the value at fault.
pub fn validate(
    ports: &[String],
    allow: &[String],
) -> Result<(Vec<ListenSpec>, Vec<Cidr>), BadInput> {
    let allow = allow
        .iter()
        .map(|a| a.parse::<Cidr>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut specs: Vec<ListenSpec> = Vec::new();
    for text in ports {
        let spec: ListenSpec = text.parse()?;
        if specs.iter().any(|s| s.addr == spec.addr) {
            return Err(bad(format!("`{}` is given twice", spec.addr)));
        }
        if !spec.mode.has_login() && !spec.addr.ip().is_loopback() && allow.is_empty() {
            return Err(bad(format!(
                "`{spec}` has no login and binds a non-loopback address: name the networks \
                 that may connect with --listen-allow CIDR, bind 127.0.0.1, or use /telnet+login"
            )));
        }
        specs.push(spec);
    }
    Ok((specs, allow))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print() {
        let s: ListenSpec = "0.0.0.0:7000/telnet+login".parse().unwrap();
        assert_eq!(s.mode, ListenMode::TelnetLogin);
        assert_eq!(s.to_string(), "0.0.0.0:7000/telnet+login");
        assert!("127.0.0.1:7000/ssh".parse::<ListenSpec>().is_err());
        let spy: ListenSpec = "127.0.0.1:7000/raw,spy".parse().unwrap();
        assert!(spy.spy && spy.mode == ListenMode::Raw);
        assert_eq!(spy.to_string(), "127.0.0.1:7000/raw,spy");
        assert!("127.0.0.1:7000/raw,rw".parse::<ListenSpec>().is_err());
        assert!("127.0.0.1/raw".parse::<ListenSpec>().is_err());
        assert!("127.0.0.1:0".parse::<ListenSpec>().is_err());
        assert!("host:70".parse::<ListenSpec>().is_err());
        assert_eq!(
            "[::1]:70/telnet".parse::<ListenSpec>().unwrap().to_string(),
            "[::1]:70/telnet"
        );
    }

    #[test]
    fn networks_match() {
        let one: Cidr = "127.0.0.3/32".parse().unwrap();
        assert!(one.contains("127.0.0.3".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(one.contains("::ffff:127.0.0.3".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0.0/", "x/8", "10.0.0.0/+8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loginless_ports_need_loopback_or_allow() {
        let ports = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(validate(&ports(&["127.0.0.1:7000"]), &[]).is_ok());
        assert!(validate(&ports(&["0.0.0.0:7000/rfc2217"]), &[]).is_err());
        assert!(validate(&ports(&["0.0.0.0:7000/telnet+login"]), &[]).is_ok());
        assert!(validate(&ports(&["0.0.0.0:7000"]), &ports(&["10.0.0.0/8"])).is_ok());
        assert!(validate(&ports(&["127.0.0.1:7000", "127.0.0.1:7000/telnet"]), &[]).is_err());
    }
}
