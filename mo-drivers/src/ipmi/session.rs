//! An RMCP+ session over a tokio UDP socket: Open Session, RAKP 1–4, Set Session Privilege
//! Level, IPMI requests with retransmission, and Close Session.
//!
//! Errors: a refused user name or password is [`Error::Auth`] naming the BMC, silence is
//! [`Error::Timeout`], a malformed or unexpected reply is [`Error::Protocol`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use mo_core::{Error, Result};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::crypto::{Rakp, SessionKeys, codes_equal};
use super::rmcp::{self, Packet, PayloadType, Response, SessionPacket};
use super::{IpmiConfig, Privilege};

/// IPMI network function: application.
pub const NETFN_APP: u8 = 0x06;
/// IPMI network function: chassis.
pub const NETFN_CHASSIS: u8 = 0x00;
const CMD_SET_PRIVILEGE: u8 = 0x3B;
const CMD_CLOSE_SESSION: u8 = 0x3C;
/// Requested role bit: look the user up by name only.
const NAME_ONLY_LOOKUP: u8 = 0x10;
/// The largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// What an established session received that was not the answer being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// An IPMI response.
    Response(Response),
    /// A SOL payload.
    Sol(Vec<u8>),
}

/// An established RMCP+ session.
#[derive(Debug)]
pub struct RmcpSession {
    socket: UdpSocket,
    peer: SocketAddr,
    target: String,
    keys: SessionKeys,
    bmc_sid: u32,
    console_sid: u32,
    out_seq: u32,
    rq_seq: u8,
    per_try: Duration,
    tries: u32,
    pending: VecDeque<Inbound>,
    /// The BMC's session sequence numbers seen: replays and strangers are dropped.
    inbound: rmcp::SeqWindow,
}

/// The socket address of the BMC named by `config`.
async fn resolve(config: &IpmiConfig) -> Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host((config.host.as_str(), config.port))
        .await
        .map_err(|e| Error::Connect {
            address: config.display.clone(),
            reason: format!("cannot resolve `{}`: {e}", config.host),
        })?;
    addrs.next().ok_or_else(|| Error::Connect {
        address: config.display.clone(),
        reason: format!("`{}` has no address", config.host),
    })
}

fn protocol(target: &str, reason: impl Into<String>) -> Error {
    Error::Protocol {
        peer: target.to_owned(),
        reason: reason.into(),
    }
}

impl RmcpSession {
    /// Open a session to the BMC of `config`: RMCP+ Open Session, RAKP 1–4, then Set Session
    /// Privilege Level to the configured privilege.
    pub async fn open(config: &IpmiConfig) -> Result<RmcpSession> {
        let peer = resolve(config).await?;
        let bind: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| Error::io(format!("binding a UDP socket for {}", config.display), e))?;
        socket
            .connect(peer)
            .await
            .map_err(|e| Error::io(format!("connecting UDP to {}", config.display), e))?;
        let target = config.display.clone();
        let suite = config.cipher;
        let console_sid: u32 = rand::random::<u32>() | 1;
        let tag: u8 = rand::random();

        // Open Session.
        let request = rmcp::encode_open_session(tag, config.privilege.code(), console_sid, suite);
        let open = setup_exchange(
            &socket,
            &target,
            config,
            PayloadType::OpenSessionRequest,
            &request,
            PayloadType::OpenSessionResponse,
            "Open Session",
        )
        .await?;
        let open = rmcp::OpenSessionResponse::decode(&open)
            .map_err(|e| protocol(&target, e.to_string()))?;
        if open.status != 0 {
            return Err(setup_refused(
                &target,
                "Open Session",
                open.status,
                suite.id(),
            ));
        }
        if open.console_sid != console_sid {
            return Err(protocol(
                &target,
                "Open Session Response is for another session",
            ));
        }

        // RAKP 1 and 2.
        let console_random: [u8; 16] = rand::random();
        let role = config.privilege.code() | NAME_ONLY_LOOKUP;
        let user = config.user.as_bytes();
        let rakp1 = rmcp::encode_rakp1(tag, open.bmc_sid, &console_random, role, user);
        let rakp2 = setup_exchange(
            &socket,
            &target,
            config,
            PayloadType::Rakp1,
            &rakp1,
            PayloadType::Rakp2,
            "RAKP 1",
        )
        .await?;
        let rakp2 = rmcp::Rakp2::decode(&rakp2).map_err(|e| protocol(&target, e.to_string()))?;
        if rakp2.status != 0 {
            return Err(setup_refused(&target, "RAKP 2", rakp2.status, suite.id()));
        }
        let rakp = Rakp {
            suite,
            console_sid,
            bmc_sid: open.bmc_sid,
            console_random,
            bmc_random: rakp2.bmc_random,
            bmc_guid: rakp2.bmc_guid,
            role,
            user,
        };
        let kuid = config.password.expose().as_bytes();
        if !codes_equal(&rakp.rakp2_code(kuid), &rakp2.auth_code) {
            // Tell the BMC so it frees the half-open session; its answer does not matter.
            let rakp3 = rmcp::encode_rakp3(tag, 0x0F, open.bmc_sid, &[]);
            let wire = rmcp::encode_packet(None, PayloadType::Rakp3, 0, 0, &rakp3, [0; 16]);
            let _ = socket.send(&wire).await;
            return Err(Error::Auth {
                target,
                reason: format!("the BMC refused the password of user `{}`", config.user),
            });
        }

        // RAKP 3 and 4.
        let rakp3 = rmcp::encode_rakp3(tag, 0, open.bmc_sid, &rakp.rakp3_code(kuid));
        let rakp4 = setup_exchange(
            &socket,
            &target,
            config,
            PayloadType::Rakp3,
            &rakp3,
            PayloadType::Rakp4,
            "RAKP 3",
        )
        .await?;
        let rakp4 = rmcp::Rakp4::decode(&rakp4).map_err(|e| protocol(&target, e.to_string()))?;
        if rakp4.status != 0 {
            return Err(setup_refused(&target, "RAKP 4", rakp4.status, suite.id()));
        }
        let kg_bytes = config.kg();
        let kg = kg_bytes.as_deref().unwrap_or(kuid);
        let sik = rakp.sik(kg);
        if !codes_equal(&rakp.rakp4_code(&sik), &rakp4.icv) {
            return Err(Error::Auth {
                target,
                reason: "RAKP 4 integrity check failed (wrong BMC key K_g?)".to_owned(),
            });
        }

        let mut session = RmcpSession {
            socket,
            peer,
            target,
            keys: SessionKeys::derive(suite, &sik),
            bmc_sid: open.bmc_sid,
            console_sid,
            out_seq: 0,
            rq_seq: 0,
            per_try: config.timeout,
            tries: config.retries.max(1),
            pending: VecDeque::new(),
            inbound: rmcp::SeqWindow::new(),
        };
        let privilege = config.privilege;
        let reply = session
            .request(NETFN_APP, CMD_SET_PRIVILEGE, &[privilege.code()])
            .await?;
        if reply.completion != 0 {
            let reason = format!(
                "Set Session Privilege Level {} refused (completion code {:#04x})",
                privilege.name(),
                reply.completion
            );
            session.close().await;
            return Err(Error::Auth {
                target: config.display.clone(),
                reason,
            });
        }
        Ok(session)
    }

    /// The BMC's address, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The BMC's ID of this session.
    pub fn bmc_session_id(&self) -> u32 {
        self.bmc_sid
    }

    /// The BMC's socket address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket, to wait for datagrams on (decode them with [`RmcpSession::accept`]).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Send one payload in the session (encrypted and signed).
    pub async fn send(&mut self, payload_type: PayloadType, payload: &[u8]) -> Result<()> {
        self.out_seq = self.out_seq.wrapping_add(1).max(1);
        let wire = rmcp::encode_packet(
            Some(&self.keys),
            payload_type,
            self.bmc_sid,
            self.out_seq,
            payload,
            rand::random(),
        );
        self.socket
            .send(&wire)
            .await
            .map_err(|e| Error::io(format!("sending to {}", self.target), e))?;
        Ok(())
    }

    /// Decode a datagram received on [`RmcpSession::socket`]. Packets of other sessions, setup
    /// messages, packets failing the integrity check, and replayed or out-of-window session
    /// sequence numbers ([`rmcp::SeqWindow`]) are dropped (`None`).
    pub fn accept(&mut self, datagram: &[u8]) -> Option<Inbound> {
        let Ok(Packet::Session(SessionPacket {
            payload_type,
            authenticated: true,
            session_id,
            seq,
            payload,
            ..
        })) = rmcp::decode_packet(datagram, Some(&self.keys))
        else {
            return None;
        };
        // Only a packet that passed the integrity check moves the window.
        if session_id != self.console_sid || !self.inbound.accept(seq) {
            return None;
        }
        match payload_type {
            PayloadType::Ipmi => rmcp::decode_response(&payload).ok().map(Inbound::Response),
            PayloadType::Sol => Some(Inbound::Sol(payload)),
            _ => None,
        }
    }

    /// Inbound packets that arrived while [`RmcpSession::request`] waited for its answer.
    pub fn take_pending(&mut self) -> Option<Inbound> {
        self.pending.pop_front()
    }

    /// Send an IPMI request without waiting for the answer (keepalives); the response arrives
    /// through [`RmcpSession::accept`].
    pub async fn send_request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<()> {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        let message = rmcp::encode_request(netfn, cmd, self.rq_seq, data);
        self.send(PayloadType::Ipmi, &message).await
    }

    /// Change how long each try of [`RmcpSession::request`] waits, and how many tries it makes.
    pub fn set_patience(&mut self, per_try: Duration, tries: u32) {
        self.per_try = per_try;
        self.tries = tries.max(1);
    }

    /// Send an IPMI request and wait for its response, retransmitting on silence. Other packets
    /// that arrive meanwhile are kept for [`RmcpSession::take_pending`].
    pub async fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Response> {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        let rq_seq = self.rq_seq;
        let message = rmcp::encode_request(netfn, cmd, rq_seq, data);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for _ in 0..self.tries {
            self.send(PayloadType::Ipmi, &message).await?;
            let deadline = Instant::now() + self.per_try;
            loop {
                let n = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                    Err(_) => break,
                    // ICMP "port unreachable": nobody listens (yet); keep waiting, then time out.
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Ok(Err(e)) => return Err(self.recv_error(e)),
                    Ok(Ok(n)) => n,
                };
                match self.accept(buf.get(..n).unwrap_or_default()) {
                    Some(Inbound::Response(r))
                        if r.cmd == cmd && r.rq_seq == rq_seq && r.netfn == netfn + 1 =>
                    {
                        return Ok(r);
                    }
                    Some(Inbound::Response(_)) | None => {}
                    Some(other) => self.pending.push_back(other),
                }
            }
        }
        Err(Error::Timeout {
            what: format!("IPMI command {netfn:#04x}/{cmd:#04x} to {}", self.target),
            after: self.per_try * self.tries,
        })
    }

    /// The error for a failed receive.
    pub fn recv_error(&self, e: std::io::Error) -> Error {
        Error::io(format!("receiving from {}", self.target), e)
    }

    /// Close the session (best effort: one Close Session request, a short wait for the answer).
    pub async fn close(mut self) {
        self.tries = 1;
        self.per_try = self.per_try.min(Duration::from_millis(500));
        let sid = self.bmc_sid.to_le_bytes();
        let _ = self.request(NETFN_APP, CMD_CLOSE_SESSION, &sid).await;
    }
}

/// A setup step answered with a non-zero RMCP+ status.
fn setup_refused(target: &str, step: &str, status: u8, suite: u8) -> Error {
    let text = rmcp::status_text(status);
    match status {
        0x0D | 0x0F | 0x09 | 0x0A => Error::Auth {
            target: target.to_owned(),
            reason: format!("{step}: {text} (status {status:#04x})"),
        },
        0x04..=0x07 | 0x10 | 0x11 => protocol(
            target,
            format!(
                "{step}: {text} (status {status:#04x}); the BMC does not offer cipher suite {suite}, try ?cipher=3"
            ),
        ),
        _ => protocol(target, format!("{step}: {text} (status {status:#04x})")),
    }
}

/// Send a clear setup message outside any session and wait for the answer of type `expect`.
async fn setup_exchange(
    socket: &UdpSocket,
    target: &str,
    config: &IpmiConfig,
    kind: PayloadType,
    payload: &[u8],
    expect: PayloadType,
    step: &str,
) -> Result<Vec<u8>> {
    let wire = rmcp::encode_packet(None, kind, 0, 0, payload, [0; 16]);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let tries = config.retries.max(1);
    for _ in 0..tries {
        socket
            .send(&wire)
            .await
            .map_err(|e| Error::io(format!("sending to {target}"), e))?;
        let deadline = Instant::now() + config.timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP "port unreachable": nobody listens (yet); keep waiting, then time out.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Ok(Err(e)) => return Err(Error::io(format!("receiving from {target}"), e)),
                Ok(Ok(n)) => n,
            };
            match rmcp::decode_packet(buf.get(..n).unwrap_or_default(), None) {
                Ok(Packet::Session(p)) if p.payload_type == expect => return Ok(p.payload),
                // Stray datagrams (a late answer to an earlier try, another session) are skipped.
                _ => {}
            }
        }
    }
    Err(Error::Timeout {
        what: format!("{step} to BMC {target}"),
        after: config.timeout * tries,
    })
}

impl Privilege {
    /// The IPMI privilege level code.
    pub fn code(self) -> u8 {
        match self {
            Privilege::User => 2,
            Privilege::Operator => 3,
            Privilege::Admin => 4,
        }
    }
}
