//! Discovery: find and identify BMCs, Redfish services, SNMP PDUs, console servers and SSH gear
//! on the addresses given — and on no others.
//!
//! [`parse_targets`] turns `10.0.0.5`, `10.0.0.0/24` and `10.0.0.10-10.0.0.40` into addresses
//! (at most [`MAX_ADDRESSES`]); [`parse_ports`] reads what to probe on each (`ipmi`, `redfish:8443`,
//! `snmp`, `ssh:2222`, `telnet:7001`, `tcp:4001`, or a bare well-known port number); [`discover`]
//! runs the probes, at most `parallel` at a time, each bounded by the timeout, and reports what
//! answered per address. Probes only read: an RMCP presence ping and the IPMI pre-session
//! queries (Get Channel Authentication Capabilities, Get Channel Cipher Suites), Redfish GETs,
//! SNMP GETs and walks, and the first bytes of a TCP service (telnet option negotiation offers
//! COM-PORT-OPTION, RFC 2217, to tell serial servers apart). An address that answers garbage is
//! reported as such; an address that answers nothing is simply absent.
//!
//! ```
//! use mo_drivers::discover::{parse_ports, parse_targets, Service};
//! let addrs = parse_targets(&["127.0.0.2-127.0.0.4".into(), "127.0.1.0/30".into()]).unwrap();
//! assert_eq!(addrs.len(), 7);
//! let ports = parse_ports("ipmi,ssh:2222,443").unwrap();
//! assert_eq!(ports[1].port, 2222);
//! assert_eq!(ports[2].service, Service::Redfish);
//! ```

pub mod parse;
mod probe;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mo_core::secret::Secret;
use serde::Serialize;

pub use parse::RedfishSystem;

/// At most this many addresses in one discovery (a /16).
pub const MAX_ADDRESSES: usize = 65_536;

/// The default probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The default number of probes in flight.
pub const DEFAULT_PARALLEL: usize = 64;

/// A target that is not an address, a CIDR range or a `FIRST-LAST` range, or too many addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad target `{target}`: {reason}")]
pub struct TargetError {
    /// The target as given.
    pub target: String,
    /// What is wrong.
    pub reason: String,
}

/// The addresses `targets` name, in order, without duplicates.
pub fn parse_targets(targets: &[String]) -> Result<Vec<IpAddr>, TargetError> {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for target in targets {
        let bad = |reason: &str| TargetError {
            target: target.clone(),
            reason: reason.to_string(),
        };
        let t = target.trim();
        let (first, last): (u32, u32) = if let Some((net, bits)) = t.split_once('/') {
            let net: Ipv4Addr = net
                .parse()
                .map_err(|_| bad("the network is not an IPv4 address"))?;
            let bits: u32 = bits
                .parse()
                .ok()
                .filter(|b| *b <= 32)
                .ok_or_else(|| bad("the prefix length must be 0 to 32"))?;
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let base = u32::from(net) & mask;
            (base, base | !mask)
        } else if let Some((a, b)) = t.split_once('-') {
            let a: Ipv4Addr = a
                .trim()
                .parse()
                .map_err(|_| bad("the first address is not an IPv4 address"))?;
            let b = b.trim();
            let b: Ipv4Addr = match b.parse::<u8>() {
                // `10.0.0.10-40`: the last octet only.
                Ok(octet) => {
                    let o = a.octets();
                    Ipv4Addr::new(o[0], o[1], o[2], octet)
                }
                Err(_) => b
                    .parse()
                    .map_err(|_| bad("the last address is not an IPv4 address"))?,
            };
            if u32::from(b) < u32::from(a) {
                return Err(bad("the last address comes before the first"));
            }
            (u32::from(a), u32::from(b))
        } else {
            let addr: IpAddr = t
                .parse()
                .map_err(|_| bad("expected an address, ADDRESS/BITS or FIRST-LAST"))?;
            if seen.insert(addr) {
                out.push(addr);
            }
            continue;
        };
        let count = u64::from(last - first) + 1;
        if out.len() as u64 + count > MAX_ADDRESSES as u64 {
            return Err(bad(&format!(
                "more than {MAX_ADDRESSES} addresses in all; split the discovery"
            )));
        }
        for n in first..=last {
            let addr = IpAddr::V4(Ipv4Addr::from(n));
            if seen.insert(addr) {
                out.push(addr);
            }
        }
    }
    if out.len() > MAX_ADDRESSES {
        return Err(TargetError {
            target: targets.join(" "),
            reason: format!("more than {MAX_ADDRESSES} addresses in all"),
        });
    }
    Ok(out)
}

/// What a probe looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// IPMI over LAN (UDP): presence ping, authentication capabilities, cipher suites.
    Ipmi,
    /// A Redfish service root over HTTPS, else HTTP.
    Redfish,
    /// SNMP (UDP): sysDescr, sysObjectID, PDU outlets.
    Snmp,
    /// A TCP service identified by what it sends: SSH banner, telnet (RFC 2217 or not), text.
    /// Nothing is written to a port that stays silent.
    Tcp,
    /// As [`Service::Tcp`], but a silent port is offered telnet COM-PORT-OPTION (some telnet
    /// servers wait for the client to speak first).
    Telnet,
}

/// One thing to probe on every address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortSpec {
    /// The kind of probe.
    pub service: Service,
    /// The port.
    pub port: u16,
}

/// What is probed when no `--ports` list is given.
pub const DEFAULT_PORTS: &str = "ipmi,snmp,redfish:443,redfish:80,ssh,telnet";

/// Parse a comma-separated port list: `SERVICE`, `SERVICE:PORT` (services `ipmi`, `redfish`,
/// `snmp`, `ssh`, `telnet`, `tcp`) or a bare port number (623 ipmi, 161 snmp, 80/443/8000/8443
/// redfish, 23 telnet, anything else a TCP banner probe). `ssh` and `tcp` probes only read;
/// `telnet` probes offer COM-PORT-OPTION to a port that stays silent.
pub fn parse_ports(list: &str) -> Result<Vec<PortSpec>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, port) = match item.split_once(':') {
            Some((n, p)) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("bad port `{p}` in `{item}` (1–65535)"))?;
                (n, Some(port))
            }
            None => (item, None),
        };
        let spec = if let Ok(port) = name.parse::<u16>() {
            if port == 0 || item.contains(':') {
                return Err(format!("bad port list item `{item}`"));
            }
            let service = match port {
                623 => Service::Ipmi,
                161 => Service::Snmp,
                80 | 443 | 8000 | 8443 => Service::Redfish,
                23 => Service::Telnet,
                _ => Service::Tcp,
            };
            PortSpec { service, port }
        } else {
            let (service, default) = match name.to_ascii_lowercase().as_str() {
                "ipmi" => (Service::Ipmi, 623),
                "redfish" | "https" => (Service::Redfish, 443),
                "http" => (Service::Redfish, 80),
                "snmp" => (Service::Snmp, 161),
                "ssh" => (Service::Tcp, 22),
                "telnet" => (Service::Telnet, 23),
                "tcp" => match port {
                    Some(p) => (Service::Tcp, p),
                    None => return Err(format!("`tcp` needs a port: tcp:PORT (in `{item}`)")),
                },
                _ => {
                    return Err(format!(
                        "unknown service `{name}` (known: ipmi, redfish, snmp, ssh, telnet, tcp, \
                         or a port number)"
                    ));
                }
            };
            PortSpec {
                service,
                port: port.unwrap_or(default),
            }
        };
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    if out.is_empty() {
        return Err("the port list is empty".into());
    }
    Ok(out)
}

/// What the probes of one address may use: the ports, the timeout and the credentials given
/// for it.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// What to probe.
    pub ports: Vec<PortSpec>,
    /// The limit for each answer (a probe with several exchanges waits this long for each).
    pub timeout: Duration,
    /// SNMP v2c communities to try, in order (default `public`).
    pub communities: Vec<Secret>,
    /// A user name and password for Redfish (basic authentication), when given.
    pub http_login: Option<(String, Secret)>,
    /// SNMPv3 users to try after the communities, in order.
    pub snmp_users: Vec<SnmpUser>,
}

/// An SNMPv3 user: SHA-1 authentication, and AES-128 privacy when a privacy passphrase is
/// given (authPriv; else authNoPriv) — the defaults of mo's `snmp://USER@…` power addresses.
#[derive(Debug, Clone)]
pub struct SnmpUser {
    /// The user name.
    pub user: String,
    /// The authentication passphrase.
    pub auth: Secret,
    /// The privacy passphrase, for authPriv.
    pub privacy: Option<Secret>,
}

impl SnmpUser {
    /// The async-snmp settings, or `None` when the passphrases are not accepted (too short).
    pub(crate) fn auth(&self) -> Option<async_snmp::Auth> {
        let config = async_snmp::UsmConfig::new(self.user.clone().into_bytes());
        let config = match &self.privacy {
            Some(privacy) => config.auth_priv(
                async_snmp::AuthProtocol::Sha1,
                self.auth.expose(),
                async_snmp::PrivProtocol::Aes128,
                privacy.expose(),
            ),
            None => config.auth(async_snmp::AuthProtocol::Sha1, self.auth.expose()),
        };
        config.ok().map(Into::into)
    }
}

/// Something found on an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Found {
    /// An IPMI BMC.
    Ipmi {
        /// The UDP port.
        port: u16,
        /// It answered the ASF presence ping.
        ping: bool,
        /// It supports IPMI 2.0 (RMCP+) sessions, as SOL needs.
        ipmi20: bool,
        /// IPMI 1.5 authentication types offered.
        auth_types: Vec<String>,
        /// RMCP+ cipher suite IDs offered (empty when the BMC did not list them).
        cipher_suites: Vec<u8>,
    },
    /// A Redfish service.
    Redfish {
        /// The TCP port.
        port: u16,
        /// Whether it answered over HTTPS.
        tls: bool,
        /// The SHA-256 fingerprint of its certificate (for pinning), with TLS.
        fingerprint: Option<String>,
        /// The service root's vendor.
        vendor: String,
        /// The service root's product.
        product: String,
        /// The Redfish version.
        version: String,
        /// The computer systems it manages (empty when they need a login not given).
        systems: Vec<RedfishSystem>,
        /// Why systems could not be read, if they could not.
        note: Option<String>,
    },
    /// An SNMP agent (a PDU when `profile` is set).
    Snmp {
        /// The UDP port.
        port: u16,
        /// Which of the communities given answered (0-based; the value is never shown).
        community: usize,
        /// The SNMPv3 user that answered (then `community` means nothing).
        #[serde(skip_serializing_if = "Option::is_none")]
        v3_user: Option<String>,
        /// sysDescr.
        sys_descr: String,
        /// sysObjectID, dotted.
        sys_object_id: String,
        /// The mo PDU profile whose MIB answers, if any.
        profile: Option<String>,
        /// The outlet names, in outlet order (`Outlet N` where the PDU has no names).
        outlets: Vec<String>,
    },
    /// An SSH server.
    Ssh {
        /// The TCP port.
        port: u16,
        /// Its identification line.
        banner: String,
    },
    /// A telnet server.
    Telnet {
        /// The TCP port.
        port: u16,
        /// It accepted COM-PORT-OPTION (RFC 2217): a serial port behind a serial server.
        rfc2217: bool,
        /// The text it sent (login banner, prompt), cleaned.
        banner: String,
    },
    /// Something answered but was not recognised (garbage, another protocol, a silent port).
    Other {
        /// `udp` or `tcp`.
        transport: &'static str,
        /// The port.
        port: u16,
        /// What was seen.
        what: String,
    },
}

impl Found {
    /// The port the finding was made on.
    pub fn port(&self) -> u16 {
        match self {
            Found::Ipmi { port, .. }
            | Found::Redfish { port, .. }
            | Found::Snmp { port, .. }
            | Found::Ssh { port, .. }
            | Found::Telnet { port, .. }
            | Found::Other { port, .. } => *port,
        }
    }
}

/// What discovery has sent since the process started, counted as it goes (for `mo-bench
/// discover`): UDP datagrams (IPMI requests, SNMP requests — a walk counts one per row read),
/// TCP connection attempts (one SYN each; the handshake's other packets are not counted),
/// writes on open TCP connections (telnet negotiation), and HTTP requests (Redfish GETs, over
/// connections of their own).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sent {
    /// UDP datagrams.
    pub udp_datagrams: u64,
    /// TCP connection attempts.
    pub tcp_connects: u64,
    /// Writes on open TCP connections.
    pub tcp_writes: u64,
    /// HTTP requests.
    pub http_requests: u64,
}

impl Sent {
    /// Everything sent, as packets (each message one packet).
    pub fn packets(&self) -> u64 {
        self.udp_datagrams + self.tcp_connects + self.tcp_writes + self.http_requests
    }
}

/// The running counts behind [`sent`].
pub(crate) struct Counters {
    udp: AtomicU64,
    connects: AtomicU64,
    writes: AtomicU64,
    http: AtomicU64,
}

impl Counters {
    pub(crate) fn udp(&self) {
        self.udp.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn tcp_connect(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn tcp_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn http(&self) {
        self.http.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) static SENT: Counters = Counters {
    udp: AtomicU64::new(0),
    connects: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    http: AtomicU64::new(0),
};

/// What discovery has sent in this process so far (subtract two readings for one run).
pub fn sent() -> Sent {
    Sent {
        udp_datagrams: SENT.udp.load(Ordering::Relaxed),
        tcp_connects: SENT.connects.load(Ordering::Relaxed),
        tcp_writes: SENT.writes.load(Ordering::Relaxed),
        http_requests: SENT.http.load(Ordering::Relaxed),
    }
}

/// What one address answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    /// The address.
    pub address: IpAddr,
    /// What was found, in the order of the port list.
    pub found: Vec<Found>,
}

/// Probe every address in `addresses` with the options `options_for` gives it, at most
/// `parallel` probes (one address, one port) at a time. Only addresses where something answered
/// are returned, in the order given.
pub async fn discover<F>(addresses: &[IpAddr], parallel: usize, options_for: F) -> Vec<HostReport>
where
    F: Fn(IpAddr) -> ProbeOptions,
{
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (host_index, addr) in addresses.iter().enumerate() {
        let options = Arc::new(options_for(*addr));
        for (port_index, spec) in options.ports.iter().enumerate() {
            let (limit, options, spec, addr) = (limit.clone(), options.clone(), *spec, *addr);
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.ok();
                let found = probe::probe(addr, spec, &options).await;
                (host_index, port_index, found)
            });
        }
    }
    let mut results: Vec<(usize, usize, Found)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((h, p, Some(found))) = joined {
            results.push((h, p, found));
        }
    }
    results.sort_by_key(|(h, p, _)| (*h, *p));
    let mut reports: Vec<HostReport> = Vec::new();
    for (h, _, found) in results {
        let Some(&address) = addresses.get(h) else {
            continue;
        };
        match reports.last_mut() {
            Some(last) if last.address == address => last.found.push(found),
            _ => reports.push(HostReport {
                address,
                found: vec![found],
            }),
        }
    }
    reports
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |s: &[&str]| parse_targets(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&["10.0.0.1"]).unwrap().len(), 1);
        assert_eq!(t(&["10.0.0.0/24"]).unwrap().len(), 256);
        assert_eq!(t(&["10.0.0.10-20"]).unwrap().len(), 11);
        assert_eq!(t(&["10.0.0.1", "10.0.0.1-10.0.0.2"]).unwrap().len(), 2);
        assert_eq!(t(&["::1"]).unwrap().len(), 1);
        assert!(t(&["10.0.0.0/8"]).is_err());
        assert!(t(&["10.0.0.9-10.0.0.1"]).is_err());
        assert!(t(&["web01"]).is_err());
        assert!(t(&["10.0.0.0/33"]).is_err());
    }

    #[test]
    fn ports() {
        let p = parse_ports(DEFAULT_PORTS).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(
            parse_ports("telnet:7001,623").unwrap(),
            [
                PortSpec {
                    service: Service::Telnet,
                    port: 7001
                },
                PortSpec {
                    service: Service::Ipmi,
                    port: 623
                }
            ]
        );
        assert!(parse_ports("gopher").is_err());
        assert!(parse_ports("ssh:0").is_err());
        assert!(parse_ports("tcp").is_err());
        assert!(parse_ports("").is_err());
    }
}
