//! The `ipmi://` console driver: Serial over LAN (IPMI 2.0 §15, §24).
//!
//! [`IpmiConnector::connect`] opens an RMCP+ session, activates the SOL payload (encrypted and
//! authenticated) and hands the session to a background task. The link's reader gets the
//! characters the BMC sends; bytes written to the link go out as SOL packets, one in flight at a
//! time, resent until the BMC acknowledges them and trimmed to the character count it accepted.
//! BREAK is the SOL "generate break" operation (the BMC chooses its length). A keepalive (Get
//! Payload Instance Info, which also tells whether SOL is still ours) runs every `keepalive`
//! seconds; three intervals without any answer, or SOL taken over by another session, take the
//! link down. Dropping the link deactivates the payload and closes the session.
//!
//! A BMC answering Activate Payload with "already active" (completion code 0x80, usually a stale
//! session of a crashed client) gives a [`Error::Connect`] saying so; with `?steal=1` in the
//! address the driver deactivates the other client's payload and activates its own.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, ControlOp, Link, LinkControl};
use mo_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use super::IpmiConfig;
use super::rmcp::{PayloadType, SOL_BREAK, SOL_DEACTIVATING, SOL_NACK, SolPacket, next_sol_seq};
use super::session::{Inbound, NETFN_APP, RmcpSession};
use crate::address::DriverOptions;

const CMD_GET_PAYLOAD_INSTANCE_INFO: u8 = 0x4B;
const CMD_ACTIVATE_PAYLOAD: u8 = 0x48;
const CMD_DEACTIVATE_PAYLOAD: u8 = 0x49;
/// Payload type SOL, instance 1.
const SOL_PAYLOAD: [u8; 2] = [0x01, 0x01];
/// Activate Payload auxiliary data: encryption and authentication on.
const AUX_ENCRYPT_AUTH: u8 = 0xC0;
/// Completion code: payload already active on another session.
const CC_ALREADY_ACTIVE: u8 = 0x80;
/// Bytes buffered between the link and the task.
const PIPE: usize = 64 * 1024;
/// How many times an unacknowledged SOL packet is sent before the link is given up.
const SOL_TRIES: u32 = 8;

/// What Activate Payload told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolParams {
    /// Largest SOL payload the BMC accepts (header included).
    pub inbound_size: u16,
    /// Largest SOL payload the BMC sends.
    pub outbound_size: u16,
    /// The UDP port the BMC uses for SOL.
    pub port: u16,
}

impl SolParams {
    /// Decode the Activate Payload response data.
    pub fn decode(data: &[u8]) -> Option<Self> {
        let field = |i: usize| Some(u16::from_le_bytes([*data.get(i)?, *data.get(i + 1)?]));
        Some(SolParams {
            inbound_size: field(4)?,
            outbound_size: field(6)?,
            port: field(8)?,
        })
    }

    /// Most characters per packet we send.
    pub fn max_chunk(&self) -> usize {
        match usize::from(self.inbound_size).saturating_sub(4) {
            0 => 64,
            n => n.min(255),
        }
    }
}

/// Activate SOL in `session`; with `config.steal`, take over a payload active elsewhere.
pub async fn activate(session: &mut RmcpSession, config: &IpmiConfig) -> Result<SolParams> {
    let mut request = SOL_PAYLOAD.to_vec();
    request.extend_from_slice(&[AUX_ENCRYPT_AUTH, 0, 0, 0]);
    let mut stole = false;
    loop {
        let reply = session
            .request(NETFN_APP, CMD_ACTIVATE_PAYLOAD, &request)
            .await?;
        let reason = match reply.completion {
            0 => {
                return SolParams::decode(&reply.data).ok_or_else(|| Error::Protocol {
                    peer: config.display.clone(),
                    reason: format!(
                        "Activate Payload answer of {} bytes is too short",
                        reply.data.len()
                    ),
                });
            }
            CC_ALREADY_ACTIVE if config.steal && !stole => {
                tracing::warn!(
                    bmc = %config.display,
                    "SOL is already active for another client; deactivating it (steal=1)"
                );
                deactivate(session).await?;
                stole = true;
                continue;
            }
            CC_ALREADY_ACTIVE if stole => {
                "SOL is still active for another client after deactivating it".to_owned()
            }
            CC_ALREADY_ACTIVE => "SOL is already active for another client (often a stale \
                                  session of a crashed client); add ?steal=1 to the address to \
                                  deactivate it and take over"
                .to_owned(),
            0x81 => "SOL is disabled on the BMC".to_owned(),
            0x82 => "the BMC's SOL activation limit is reached".to_owned(),
            0x83 => "the BMC cannot activate SOL with encryption".to_owned(),
            0x84 => "the BMC requires SOL without encryption".to_owned(),
            0xD4 => format!(
                "insufficient privilege for SOL at level {}",
                config.privilege.name()
            ),
            code => format!("Activate Payload failed with completion code {code:#04x}"),
        };
        return Err(Error::Connect {
            address: config.display.clone(),
            reason,
        });
    }
}

/// Deactivate SOL instance 1. "Not active" (0x80) counts as done.
pub async fn deactivate(session: &mut RmcpSession) -> Result<()> {
    let mut request = SOL_PAYLOAD.to_vec();
    request.extend_from_slice(&[0, 0, 0, 0]);
    let reply = session
        .request(NETFN_APP, CMD_DEACTIVATE_PAYLOAD, &request)
        .await?;
    match reply.completion {
        0 | 0x80 => Ok(()),
        code => Err(Error::Protocol {
            peer: session.target().to_owned(),
            reason: format!("Deactivate Payload failed with completion code {code:#04x}"),
        }),
    }
}

/// Opens SOL consoles on one BMC.
#[derive(Debug, Clone)]
pub struct IpmiConnector {
    config: IpmiConfig,
}

impl IpmiConnector {
    /// A connector for the BMC of `config`.
    pub fn new(config: IpmiConfig) -> Self {
        IpmiConnector { config }
    }

    /// A connector for an `ipmi://` URL (see [`super`] for the parameters).
    pub fn from_url(url: &url::Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        Ok(Self::new(IpmiConfig::from_url(url, address, opts)?))
    }

    /// The configuration in use.
    pub fn config(&self) -> &IpmiConfig {
        &self.config
    }
}

#[async_trait]
impl Connector for IpmiConnector {
    async fn connect(&self) -> Result<Link> {
        let mut session = RmcpSession::open(&self.config).await?;
        let params = match activate(&mut session, &self.config).await {
            Ok(params) => params,
            Err(e) => {
                session.close().await;
                return Err(e);
            }
        };
        if params.port != 0 && params.port != session.peer().port() {
            tracing::warn!(
                bmc = %self.config.display,
                port = params.port,
                "the BMC names another UDP port for SOL; staying on the session's port"
            );
        }
        let (ours, theirs) = tokio::io::duplex(PIPE);
        let (commands, command_rx) = mpsc::channel(8);
        let (from_link, to_link) = tokio::io::split(theirs);
        let task = SolTask {
            session,
            display: self.config.display.clone(),
            retransmit: self.config.timeout,
            keepalive: self.config.keepalive,
            max_chunk: params.max_chunk(),
            seq: 0,
            inflight: None,
            outq: VecDeque::new(),
            breaks: VecDeque::new(),
            last_in_seq: 0,
            last_heard: Instant::now(),
        };
        tokio::spawn(task.run(from_link, to_link, command_rx));
        let (reader, writer) = tokio::io::split(ours);
        Ok(Link {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            control: Arc::new(SolControl {
                commands,
                display: self.config.display.clone(),
                patience: self.config.timeout * (SOL_TRIES + 1),
            }),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_break(true)
    }

    fn address(&self) -> String {
        self.config.display.clone()
    }
}

/// A request from the link's control to the task.
#[derive(Debug)]
enum Command {
    Break(oneshot::Sender<Result<()>>),
}

/// BREAK through the background task.
struct SolControl {
    commands: mpsc::Sender<Command>,
    display: String,
    patience: Duration,
}

#[async_trait]
impl LinkControl for SolControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::Break { .. } => {
                let gone = || Error::Connect {
                    address: self.display.clone(),
                    reason: "the SOL session has ended".to_owned(),
                };
                let (tx, rx) = oneshot::channel();
                self.commands
                    .send(Command::Break(tx))
                    .await
                    .map_err(|_| gone())?;
                match tokio::time::timeout(self.patience, rx).await {
                    Err(_) => Err(Error::Timeout {
                        what: format!("SOL break acknowledgement from {}", self.display),
                        after: self.patience,
                    }),
                    Ok(Err(_)) => Err(gone()),
                    Ok(Ok(result)) => result,
                }
            }
            other => Err(Error::Unsupported {
                operation: other.name(),
                what: self.display.clone(),
            }),
        }
    }
}

/// A SOL packet sent and not yet acknowledged.
struct Inflight {
    packet: SolPacket,
    sent_at: Instant,
    tries: u32,
    done: Option<oneshot::Sender<Result<()>>>,
}

/// The background task that owns the session of one SOL link.
struct SolTask {
    session: RmcpSession,
    display: String,
    retransmit: Duration,
    keepalive: Duration,
    max_chunk: usize,
    seq: u8,
    inflight: Option<Inflight>,
    outq: VecDeque<u8>,
    breaks: VecDeque<oneshot::Sender<Result<()>>>,
    last_in_seq: u8,
    last_heard: Instant,
}

/// What woke the task.
enum Event {
    Datagram(std::io::Result<usize>),
    FromLink(std::io::Result<usize>),
    Command(Option<Command>),
    Retransmit,
    Keepalive,
}

/// Why the task ended.
enum End {
    /// The link was dropped: deactivate and close politely.
    LinkClosed,
    /// The BMC went away or ended SOL: nothing to say to it.
    PeerGone(String),
}

impl SolTask {
    async fn run(
        mut self,
        mut from_link: ReadHalf<DuplexStream>,
        mut to_link: WriteHalf<DuplexStream>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let end = self
            .serve(&mut from_link, &mut to_link, &mut commands)
            .await;
        let reason = match &end {
            End::LinkClosed => "the link was closed".to_owned(),
            End::PeerGone(why) => why.clone(),
        };
        for waiter in self
            .breaks
            .drain(..)
            .chain(self.inflight.take().and_then(|f| f.done))
        {
            let _ = waiter.send(Err(Error::Connect {
                address: self.display.clone(),
                reason: reason.clone(),
            }));
        }
        drop(to_link);
        match end {
            End::LinkClosed => {
                self.session
                    .set_patience(self.retransmit.min(Duration::from_millis(500)), 2);
                let _ = deactivate(&mut self.session).await;
                self.session.close().await;
            }
            End::PeerGone(why) => {
                tracing::info!(bmc = %self.display, "SOL link down: {why}");
            }
        }
    }

    async fn serve(
        &mut self,
        from_link: &mut ReadHalf<DuplexStream>,
        to_link: &mut WriteHalf<DuplexStream>,
        commands: &mut mpsc::Receiver<Command>,
    ) -> End {
        let mut datagram = vec![0u8; 2048];
        let mut chunk = vec![0u8; 4096];
        let mut keepalive_at = Instant::now() + self.keepalive;
        let mut commands_open = true;
        loop {
            while let Some(inbound) = self.session.take_pending() {
                if let Err(end) = self.handle(inbound, to_link).await {
                    return end;
                }
            }
            if let Err(end) = self.send_next().await {
                return end;
            }
            let retransmit_at = self.inflight.as_ref().map(|f| f.sent_at + self.retransmit);
            let want_bytes = self.outq.len() < PIPE;
            let event = tokio::select! {
                r = self.session.socket().recv(&mut datagram) => Event::Datagram(r),
                r = from_link.read(&mut chunk), if want_bytes => Event::FromLink(r),
                c = commands.recv(), if commands_open => Event::Command(c),
                _ = sleep_until(retransmit_at.unwrap_or(keepalive_at)), if retransmit_at.is_some() => Event::Retransmit,
                _ = sleep_until(keepalive_at) => Event::Keepalive,
            };
            let step = match event {
                Event::Datagram(Ok(n)) => {
                    match self.session.accept(datagram.get(..n).unwrap_or_default()) {
                        Some(inbound) => self.handle(inbound, to_link).await,
                        None => Ok(()),
                    }
                }
                // ICMP port unreachable: the BMC is gone; the keepalive decides when to give up.
                Event::Datagram(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Ok(())
                }
                Event::Datagram(Err(e)) => Err(End::PeerGone(format!("receive failed: {e}"))),
                Event::FromLink(Ok(0)) | Event::FromLink(Err(_)) => Err(End::LinkClosed),
                Event::FromLink(Ok(n)) => {
                    self.outq.extend(chunk.get(..n).unwrap_or_default());
                    Ok(())
                }
                Event::Command(Some(Command::Break(done))) => {
                    self.breaks.push_back(done);
                    Ok(())
                }
                Event::Command(None) => {
                    commands_open = false;
                    Ok(())
                }
                Event::Retransmit => self.retransmit().await,
                Event::Keepalive => {
                    keepalive_at = Instant::now() + self.keepalive;
                    self.keepalive().await
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn send(&mut self, packet: &SolPacket) -> Result<(), End> {
        self.session
            .send(PayloadType::Sol, &packet.encode())
            .await
            .map_err(|e| End::PeerGone(e.to_string()))
    }

    /// With nothing in flight, send the next BREAK or the next chunk of queued bytes.
    async fn send_next(&mut self) -> Result<(), End> {
        if self.inflight.is_some() {
            return Ok(());
        }
        let (status, done) = match self.breaks.pop_front() {
            Some(done) => (SOL_BREAK, Some(done)),
            None if self.outq.is_empty() => return Ok(()),
            None => (0, None),
        };
        let take = if done.is_some() {
            0
        } else {
            self.outq.len().min(self.max_chunk)
        };
        self.seq = next_sol_seq(self.seq);
        let packet = SolPacket {
            seq: self.seq,
            ack_seq: 0,
            accepted: 0,
            status,
            data: self.outq.drain(..take).collect(),
        };
        self.send(&packet).await?;
        self.inflight = Some(Inflight {
            packet,
            sent_at: Instant::now(),
            tries: 1,
            done,
        });
        Ok(())
    }

    async fn retransmit(&mut self) -> Result<(), End> {
        let Some(mut flight) = self.inflight.take() else {
            return Ok(());
        };
        if flight.tries >= SOL_TRIES {
            return Err(End::PeerGone(format!(
                "SOL packet not acknowledged after {SOL_TRIES} tries"
            )));
        }
        flight.tries += 1;
        flight.sent_at = Instant::now();
        let packet = flight.packet.clone();
        self.inflight = Some(flight);
        self.send(&packet).await
    }

    async fn keepalive(&mut self) -> Result<(), End> {
        if self.last_heard.elapsed() > self.keepalive * 3 {
            return Err(End::PeerGone(format!(
                "no answer from the BMC for {} s",
                self.last_heard.elapsed().as_secs()
            )));
        }
        self.session
            .send_request(NETFN_APP, CMD_GET_PAYLOAD_INSTANCE_INFO, &SOL_PAYLOAD)
            .await
            .map_err(|e| End::PeerGone(e.to_string()))
    }

    async fn handle(
        &mut self,
        inbound: Inbound,
        to_link: &mut WriteHalf<DuplexStream>,
    ) -> Result<(), End> {
        self.last_heard = Instant::now();
        let payload = match inbound {
            Inbound::Response(r) => {
                // Get Payload Instance Info names the session that holds SOL (0: nobody).
                if r.cmd == CMD_GET_PAYLOAD_INSTANCE_INFO
                    && r.completion == 0
                    && let Some(holder) = r.data.get(..4)
                {
                    let holder = u32::from_le_bytes([holder[0], holder[1], holder[2], holder[3]]);
                    if holder != self.session.bmc_session_id() {
                        return Err(End::PeerGone(
                            "SOL was deactivated or taken over by another session".to_owned(),
                        ));
                    }
                }
                return Ok(());
            }
            Inbound::Sol(payload) => payload,
        };
        let Ok(packet) = SolPacket::decode(&payload) else {
            return Ok(());
        };
        if packet.ack_seq != 0 {
            self.acknowledged(&packet);
        }
        if packet.seq != 0 {
            let accepted = packet.data.len().min(255) as u8;
            if packet.seq != self.last_in_seq {
                self.last_in_seq = packet.seq;
                if !packet.data.is_empty() && to_link.write_all(&packet.data).await.is_err() {
                    return Err(End::LinkClosed);
                }
            }
            let ack = SolPacket {
                seq: 0,
                ack_seq: packet.seq,
                accepted,
                status: 0,
                data: Vec::new(),
            };
            self.send(&ack).await?;
        }
        if packet.status & SOL_DEACTIVATING != 0 {
            return Err(End::PeerGone("the BMC deactivated SOL".to_owned()));
        }
        Ok(())
    }

    /// The BMC acknowledged (or refused) a packet of ours.
    fn acknowledged(&mut self, packet: &SolPacket) {
        let Some(flight) = self.inflight.as_mut() else {
            return;
        };
        if flight.packet.seq != packet.ack_seq {
            return;
        }
        let sent = flight.packet.data.len();
        let accepted = usize::from(packet.accepted).min(sent);
        if packet.status & SOL_NACK != 0 && accepted == 0 && sent > 0 {
            // The BMC cannot take characters now: try again after the retransmit interval.
            flight.sent_at = Instant::now();
            return;
        }
        let Some(flight) = self.inflight.take() else {
            return;
        };
        // Characters the BMC did not accept go out again, first.
        for byte in flight
            .packet
            .data
            .get(accepted..)
            .unwrap_or_default()
            .iter()
            .rev()
        {
            self.outq.push_front(*byte);
        }
        if let Some(done) = flight.done {
            let _ = done.send(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_answers_decode() {
        let data = [0, 0, 0, 0, 0x00, 0x01, 0x80, 0x00, 0x6f, 0x02, 0xff, 0xff];
        let p = SolParams::decode(&data);
        assert_eq!(
            p,
            Some(SolParams {
                inbound_size: 256,
                outbound_size: 128,
                port: 623
            })
        );
        assert_eq!(p.map(|p| p.max_chunk()), Some(252));
        assert_eq!(SolParams::decode(&data[..9]), None);
        let tiny = SolParams {
            inbound_size: 2,
            outbound_size: 0,
            port: 0,
        };
        assert_eq!(tiny.max_chunk(), 64);
    }
}
