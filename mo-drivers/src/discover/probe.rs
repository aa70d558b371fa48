//! The probes: one address, one port, bounded by the timeout. Each returns what answered, or
//! `None` when nothing did.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_snmp::{Auth, Client, Oid, Retry, Value};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

use super::parse::{self, Banner};
use super::{Found, PortSpec, ProbeOptions, SENT, Service};
use crate::power::snmp_profiles::{self, PduProfile};
use crate::telnet::codec::{COM_PORT_OPTION, DO, DONT, TelnetCodec, WILL, WONT};

/// At most this many bytes are read from a TCP service.
const MAX_BANNER: usize = 8192;
/// At most this many Redfish systems are read.
const MAX_SYSTEMS: usize = 16;
/// At most this many outlets are listed.
const MAX_OUTLETS: usize = 256;
/// Once a peer has said something, this long without more ends the wait: a banner comes in one
/// go, and a UDP service answers a request with one datagram. Without it a port that answers
/// with a few bytes that are neither a whole banner line nor the expected datagram held the
/// probe for the whole timeout (three times over for IPMI's three exchanges).
const QUIET: Duration = Duration::from_millis(300);

pub(super) async fn probe(addr: IpAddr, spec: PortSpec, options: &ProbeOptions) -> Option<Found> {
    let target = SocketAddr::new(addr, spec.port);
    let t = options.timeout;
    // A hard bound on the whole probe, whatever its exchanges.
    let overall = t * 24 + Duration::from_secs(1);
    let work = async {
        match spec.service {
            Service::Ipmi => ipmi(target, t).await,
            Service::Redfish => redfish(target, t, options).await,
            Service::Snmp => snmp(target, t, options).await,
            Service::Tcp => tcp(target, t, false).await,
            Service::Telnet => tcp(target, t, true).await,
        }
    };
    timeout(overall, work).await.ok().flatten()
}

async fn udp_socket(target: SocketAddr) -> Option<UdpSocket> {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect(target).await.ok()?;
    Some(socket)
}

/// Receive datagrams until `accept` takes one or `deadline` passes. `Err(garbage)` collects
/// what was received but not accepted (for the report); after garbage only a [`QUIET`] spell
/// is waited for a real answer. `Err` with an empty reason is a stale answer to an earlier
/// request: ignored, the wait goes on.
async fn exchange<T>(
    socket: &UdpSocket,
    request: &[u8],
    wait: Duration,
    garbage: &mut Option<String>,
    mut accept: impl FnMut(&[u8]) -> Result<T, String>,
) -> Option<T> {
    SENT.udp();
    socket.send(request).await.ok()?;
    let mut deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 2048];
    loop {
        let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            // Refused (ICMP port unreachable), other errors, or the deadline.
            _ => return None,
        };
        match accept(buf.get(..n).unwrap_or_default()) {
            Ok(v) => return Some(v),
            Err(reason) if reason.is_empty() => {}
            Err(reason) => {
                deadline = deadline.min(Instant::now() + QUIET);
                if garbage.is_none() {
                    *garbage = Some(reason);
                }
            }
        }
    }
}

async fn ipmi(target: SocketAddr, t: Duration) -> Option<Found> {
    let socket = udp_socket(target).await?;
    let mut garbage = None;
    let tag = 0x4D;
    let ping = exchange(
        &socket,
        &crate::ipmi::rmcp::encode_ping(tag),
        t,
        &mut garbage,
        |d| {
            if parse::is_pong(d, tag) {
                Ok(())
            } else {
                parse::parse_auth_caps(d)
                    .map(|_| ())
                    .map_err(|e| format!("not an RMCP answer: {e}"))
            }
        },
    )
    .await
    .is_some();
    let mut caps = None;
    for (seq, v2) in [(1u8, true), (2, false)] {
        let answer = exchange(
            &socket,
            &parse::encode_auth_caps_request(seq, v2),
            t,
            &mut garbage,
            |d| {
                if parse::is_pong(d, tag) {
                    return Err(String::new());
                }
                parse::parse_auth_caps(d).map_err(|e| format!("not an RMCP answer: {e}"))
            },
        )
        .await;
        match answer {
            Some(Ok(c)) => {
                caps = Some(c);
                break;
            }
            Some(Err(code)) if v2 && code == parse::CC_INVALID_DATA => continue,
            _ => break,
        }
    }
    let garbage = garbage.filter(|g| !g.is_empty());
    let Some(caps) = caps else {
        if ping {
            return Some(Found::Ipmi {
                port: target.port(),
                ping,
                ipmi20: false,
                auth_types: Vec::new(),
                cipher_suites: Vec::new(),
            });
        }
        return garbage.map(|what| Found::Other {
            transport: "udp",
            port: target.port(),
            what,
        });
    };
    let mut records = Vec::new();
    if caps.ipmi20 {
        for index in 0u8..8 {
            let block = exchange(
                &socket,
                &parse::encode_cipher_suites_request(3 + index, index),
                t,
                &mut None,
                |d| parse::parse_cipher_suites_block(d).map_err(|e| e.to_string()),
            )
            .await;
            match block {
                Some(Ok(bytes)) => {
                    let last = bytes.len() < 16;
                    records.extend_from_slice(&bytes);
                    if last {
                        break;
                    }
                }
                _ => break,
            }
        }
    }
    Some(Found::Ipmi {
        port: target.port(),
        ping,
        ipmi20: caps.ipmi20,
        auth_types: caps.auth_types.iter().map(|s| s.to_string()).collect(),
        cipher_suites: parse::cipher_suite_ids(&records),
    })
}

async fn connects(target: SocketAddr, t: Duration) -> Option<TcpStream> {
    SENT.tcp_connect();
    timeout(t, TcpStream::connect(target)).await.ok()?.ok()
}

async fn redfish(target: SocketAddr, t: Duration, options: &ProbeOptions) -> Option<Found> {
    drop(connects(target, t).await?);
    let host = match target.ip() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(t)
        .timeout(t * 2)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .ok()?;
    let get = |url: String| {
        let mut request = client.get(url).header("Accept", "application/json");
        if let Some((user, password)) = &options.http_login {
            request = request.basic_auth(user, Some(password.expose()));
        }
        SENT.http();
        request.send()
    };
    let mut last_error = String::new();
    for tls in [true, false] {
        let scheme = if tls { "https" } else { "http" };
        let base = format!("{scheme}://{host}:{}", target.port());
        let response = match get(format!("{base}/redfish/v1/")).await {
            Ok(r) => r,
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        let fingerprint = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .map(|der| {
                mo_core::tls::format_fingerprint(&mo_core::tls::certificate_fingerprint(der))
            });
        let status = response.status();
        let body = read_limited(response).await.unwrap_or_default();
        let root = match parse::parse_service_root(&body) {
            Ok(root) if status.is_success() => root,
            Ok(_) | Err(_) => {
                return Some(Found::Other {
                    transport: "tcp",
                    port: target.port(),
                    what: format!("{scheme} answered {status}, not a Redfish service root"),
                });
            }
        };
        let mut systems = Vec::new();
        let mut note = None;
        if let Some(path) = &root.systems {
            match get(format!("{base}{path}")).await {
                Ok(r) if r.status().is_success() => {
                    let body = read_limited(r).await.unwrap_or_default();
                    for member in parse::parse_collection(&body, MAX_SYSTEMS) {
                        let Ok(r) = get(format!("{base}{member}")).await else {
                            continue;
                        };
                        let body = read_limited(r).await.unwrap_or_default();
                        if let Some(system) = parse::parse_system(&member, &body) {
                            systems.push(system);
                        }
                    }
                }
                Ok(r) => {
                    note = Some(format!(
                        "{path} answered {} (give a login with --credentials)",
                        r.status()
                    ))
                }
                Err(e) => note = Some(format!("{path}: {e}")),
            }
        }
        return Some(Found::Redfish {
            port: target.port(),
            tls,
            fingerprint,
            vendor: root.vendor,
            product: root.product,
            version: root.version,
            systems,
            note,
        });
    }
    Some(Found::Other {
        transport: "tcp",
        port: target.port(),
        what: format!(
            "open, no HTTP(S) answer: {}",
            parse::clean_text(last_error.as_bytes(), 80)
        ),
    })
}

/// A response body, at most 1 MiB.
async fn read_limited(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 1 << 20 {
            return None;
        }
    }
    Some(body)
}

const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];

/// The outlet-name column of a profile, where its MIB has one.
fn outlet_name_column(profile: &str) -> Option<Vec<u32>> {
    let text = match profile {
        // rPDUOutletControlOutletName
        "apc" => "1.3.6.1.4.1.318.1.1.12.3.3.1.1.2",
        // rPDU2OutletSwitchedConfigName
        "apc-rpdu2" => "1.3.6.1.4.1.318.1.1.26.9.2.1.1.3",
        _ => return None,
    };
    snmp_profiles::parse_oid(text)
}

async fn walk(client: &Client, column: &[u32], t: Duration) -> Vec<(Vec<u32>, Value)> {
    let base = Oid::from_slice(column);
    let Ok(stream) = client.walk(base.clone()) else {
        return Vec::new();
    };
    let Ok(Ok(varbinds)) = timeout(t * 4, stream.collect()).await else {
        // At least the first request of the walk went out.
        SENT.udp();
        return Vec::new();
    };
    // One request per row, and the one that ran past the column.
    for _ in 0..=varbinds.len() {
        SENT.udp();
    }
    varbinds
        .into_iter()
        .filter(|vb| vb.oid.starts_with(&base))
        .take(MAX_OUTLETS)
        .map(|vb| {
            let index = vb
                .oid
                .arcs()
                .get(column.len()..)
                .unwrap_or_default()
                .to_vec();
            (index, vb.value)
        })
        .collect()
}

async fn snmp(target: SocketAddr, t: Duration, options: &ProbeOptions) -> Option<Found> {
    let default = [mo_core::secret::Secret::new("public")];
    let communities: &[mo_core::secret::Secret] = if options.communities.is_empty() {
        &default
    } else {
        &options.communities
    };
    // v2c with each community, then v3 with each user.
    let mut tries: Vec<(Auth, usize, Option<String>)> = communities
        .iter()
        .enumerate()
        .map(|(i, c)| (Auth::v2c(c.expose()), i, None))
        .collect();
    for user in &options.snmp_users {
        if let Some(auth) = user.auth() {
            tries.push((auth, 0, Some(user.user.clone())));
        }
    }
    // Every community and user at once: an SNMP agent does not answer a wrong v2c community at
    // all, so trying them one after another cost the whole timeout per wrong one. The answer of
    // the earliest try in the list wins among those in within [`QUIET`] of the first one.
    let oids = [Oid::from_slice(&SYS_DESCR), Oid::from_slice(&SYS_OBJECT_ID)];
    let oids = &oids;
    let mut pending: FuturesUnordered<_> = tries
        .into_iter()
        .enumerate()
        .map(|(order, (auth, index, v3_user))| async move {
            let retry = Retry::fixed(0, Duration::ZERO).ok()?;
            let connect = Client::builder(target.to_string(), auth)
                .request_timeout(t)
                .retry(retry)
                .construction_timeout(t)
                .connect();
            // Unreachable, or (v3) engine discovery failed or the user is unknown.
            let client = timeout(t + Duration::from_secs(1), connect)
                .await
                .ok()?
                .ok()?;
            SENT.udp();
            // No answer: unreachable, or a wrong community.
            let response = timeout(t + Duration::from_secs(1), client.get_many(oids))
                .await
                .ok()?
                .ok()?;
            Some((order, index, v3_user, client, response))
        })
        .collect();
    let mut best = None;
    let mut settle = None;
    loop {
        let next = match settle {
            None => pending.next().await,
            Some(until) => match timeout_at(until, pending.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let Some(done) = next else { break };
        let Some(answer) = done else { continue };
        settle.get_or_insert_with(|| Instant::now() + QUIET);
        if best
            .as_ref()
            .is_none_or(|b: &(usize, _, _, _, _)| answer.0 < b.0)
        {
            best = Some(answer);
        }
    }
    drop(pending);
    let (_, index, v3_user, client, response) = best?;
    let value = |oid: &Oid| {
        response
            .varbinds
            .iter()
            .find(|vb| &vb.oid == oid)
            .map(|vb| vb.value.clone())
    };
    let sys_descr = value(&oids[0])
        .and_then(|v| v.as_bytes().map(|b| parse::clean_text(b, 120)))
        .unwrap_or_default();
    let object_id: Vec<u32> = value(&oids[1])
        .and_then(|v| v.as_oid().map(|o| o.arcs().to_vec()))
        .unwrap_or_default();
    let mut profile = None;
    let mut outlets = Vec::new();
    for name in snmp_profiles::candidates(&object_id, &sys_descr) {
        let Some(p) = PduProfile::builtin(name) else {
            continue;
        };
        let mut column = p.status_column.clone();
        column.extend_from_slice(&p.index_prefix);
        let states = walk(&client, &column, t).await;
        if states.is_empty() {
            continue;
        }
        let names = match outlet_name_column(&p.name) {
            Some(mut c) => {
                c.extend_from_slice(&p.index_prefix);
                walk(&client, &c, t).await
            }
            None => Vec::new(),
        };
        for (index, _) in &states {
            let number = index
                .iter()
                .take(index.len().saturating_sub(p.status_suffix.len()))
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".");
            let label = names
                .iter()
                .find(|(i, _)| i.starts_with(index) || index.starts_with(i))
                .and_then(|(_, v)| v.as_bytes().map(|b| parse::clean_text(b, 60)))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("Outlet {number}"));
            outlets.push(label);
        }
        profile = Some(p.name.clone());
        break;
    }
    Some(Found::Snmp {
        port: target.port(),
        community: index,
        v3_user,
        sys_descr,
        sys_object_id: object_id
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("."),
        profile,
        outlets,
    })
}

/// Read into `raw` until `deadline`, `done` says enough, the peer closes, or (once it has sent
/// something) it is quiet for [`QUIET`].
async fn read_until(
    stream: &mut TcpStream,
    raw: &mut Vec<u8>,
    deadline: Instant,
    mut done: impl FnMut(&[u8]) -> bool,
) {
    let mut buf = [0u8; 1024];
    let mut until = deadline;
    while raw.len() < MAX_BANNER && !done(raw) {
        match timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                raw.extend_from_slice(buf.get(..n).unwrap_or_default());
                until = deadline.min(Instant::now() + QUIET);
            }
            _ => return,
        }
    }
}

async fn tcp(target: SocketAddr, t: Duration, telnet: bool) -> Option<Found> {
    let mut stream = connects(target, t).await?;
    let port = target.port();
    let mut raw = Vec::new();
    // Wait for the first bytes: SSH and telnet servers speak first.
    read_until(&mut stream, &mut raw, Instant::now() + t, |r| {
        !r.is_empty() && (r.contains(&b'\n') || r.len() >= 64 || r.contains(&0xFF))
    })
    .await;
    match parse::classify_banner(&raw) {
        Banner::Ssh(banner) => return Some(Found::Ssh { port, banner }),
        Banner::Text(text) if !text.is_empty() && !raw.contains(&0xFF) => {
            return Some(Found::Other {
                transport: "tcp",
                port,
                what: format!("text banner: {text}"),
            });
        }
        Banner::Binary => {
            return Some(Found::Other {
                transport: "tcp",
                port,
                what: format!("{} bytes that are neither SSH nor telnet", raw.len()),
            });
        }
        Banner::Empty if !telnet => {
            return Some(Found::Other {
                transport: "tcp",
                port,
                what: "open, silent (a raw TCP port?)".into(),
            });
        }
        Banner::Telnet | Banner::Empty | Banner::Text(_) => {}
    }
    // Telnet: offer COM-PORT-OPTION (RFC 2217) and answer the server's options as mo would.
    let mut codec = TelnetCodec::com_port_client();
    let (mut data, mut reply) = (Vec::new(), Vec::new());
    codec.start(&mut reply);
    let mut fed = 0;
    let deadline = Instant::now() + t;
    loop {
        codec.feed(raw.get(fed..).unwrap_or_default(), &mut data, &mut reply);
        fed = raw.len();
        if !reply.is_empty() {
            SENT.tcp_write();
            if stream.write_all(&reply).await.is_err() {
                break;
            }
            reply.clear();
        }
        let answered = [DO, DONT, WILL, WONT]
            .iter()
            .any(|v| parse::has_command(&raw, *v, COM_PORT_OPTION));
        // Once the option is answered, a short quiet spell ends the probe (the login banner
        // usually follows the negotiation at once).
        let until = if answered {
            deadline.min(Instant::now() + Duration::from_millis(300))
        } else {
            deadline
        };
        let before = raw.len();
        read_until(&mut stream, &mut raw, until, |r| r.len() > before).await;
        if raw.len() == before {
            break;
        }
    }
    let telnet = raw.contains(&0xFF);
    if !telnet {
        let text = parse::clean_text(&raw, 80);
        return Some(Found::Other {
            transport: "tcp",
            port,
            what: if text.is_empty() {
                "open, silent (a raw TCP port?)".to_string()
            } else {
                format!("text banner: {text}")
            },
        });
    }
    Some(Found::Telnet {
        port,
        rfc2217: codec.local_enabled(COM_PORT_OPTION)
            || parse::has_command(&raw, DO, COM_PORT_OPTION),
        banner: parse::clean_text(&data, 120),
    })
}
