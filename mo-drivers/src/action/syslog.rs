//! The `syslog` action: an RFC 5424 message over UDP (one datagram) or TCP (RFC 6587 octet
//! counting: `LEN SP MESSAGE`).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [mo@32473 id=".." device=".." count=".."]
//! MESSAGE`, where PRI is facility × 8 + severity (mo's info, notice, warning, error and
//! critical are syslog severities 6, 5, 4, 3 and 2), MSGID is the event's source and the
//! structured data uses the documentation enterprise number 32473 (RFC 5612). The message is
//! UTF-8, preceded by a BOM as RFC 5424 asks.

use std::time::Duration;

use mo_core::event::Event;
use mo_core::scan::Severity;
use mo_core::{Error, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use super::ActionOutcome;

/// How long connecting and writing may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest message sent over UDP; longer messages are cut (at a character boundary).
pub const MAX_UDP_MESSAGE: usize = 2048;

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram per message.
    Udp,
    /// A TCP connection per message, octet-counting framing.
    Tcp,
}

/// A syslog collector to send events to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogAction {
    /// `host:port` of the collector.
    pub address: String,
    /// UDP or TCP.
    pub transport: SyslogTransport,
    /// The facility code (0–23).
    pub facility: u8,
    /// The HOSTNAME field.
    pub hostname: String,
    /// The APP-NAME field.
    pub app_name: String,
}

/// The syslog severity of an event severity.
pub fn syslog_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 6,
        Severity::Notice => 5,
        Severity::Warning => 4,
        Severity::Error => 3,
        Severity::Critical => 2,
    }
}

/// A syslog facility name that is not one of RFC 5424's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown facility `{name}` (kern, user, daemon, local0 … local7, …)")]
pub struct UnknownFacility {
    /// The name as written.
    pub name: String,
}

/// The code of a facility name (`kern`, `user`, `daemon`, `auth`, `local0` … `local7`, …).
pub fn facility_code(name: &str) -> std::result::Result<u8, UnknownFacility> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|p| u8::try_from(p).ok())
        .ok_or_else(|| UnknownFacility {
            name: name.to_owned(),
        })
}

/// This machine's host name, or `-` (RFC 5424's nil value) if it has none.
pub fn local_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    header_field(name.trim(), 255)
}

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` characters,
/// `-` if empty.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// A structured-data parameter value, with `"`, `\` and `]` escaped.
fn param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl SyslogAction {
    /// The RFC 5424 message for an event (without transport framing).
    pub fn format(&self, event: &Event) -> Vec<u8> {
        let pri = u16::from(self.facility) * 8 + u16::from(syslog_severity(event.severity));
        let header = format!(
            "<{pri}>1 {} {} {} {} {} [mo@32473 id=\"{}\" device=\"{}\" count=\"{}\"] ",
            super::rfc3339(event.time_ns),
            header_field(&self.hostname, 255),
            header_field(&self.app_name, 48),
            std::process::id(),
            header_field(event.source.as_str(), 32),
            event.id,
            param_value(&event.device),
            event.count,
        );
        let mut out = header.into_bytes();
        out.extend_from_slice(b"\xef\xbb\xbf");
        out.extend_from_slice(event.message.as_bytes());
        out
    }

    /// Send the event.
    pub async fn send(&self, event: &Event) -> Result<ActionOutcome> {
        let mut message = self.format(event);
        let peer = format!("syslog {}", self.address);
        let io = |what: &str, e: std::io::Error| Error::io(format!("{peer}: {what}"), e);
        let work = async {
            match self.transport {
                SyslogTransport::Udp => {
                    if message.len() > MAX_UDP_MESSAGE {
                        let mut end = MAX_UDP_MESSAGE;
                        // Do not cut a UTF-8 character in half.
                        while end > 0 && message.get(end).is_some_and(|b| b & 0xc0 == 0x80) {
                            end -= 1;
                        }
                        message.truncate(end);
                    }
                    let socket = UdpSocket::bind(local_any(&self.address))
                        .await
                        .map_err(|e| io("cannot open a UDP socket", e))?;
                    socket
                        .connect(&self.address)
                        .await
                        .map_err(|e| io("cannot reach the collector", e))?;
                    socket
                        .send(&message)
                        .await
                        .map_err(|e| io("cannot send", e))?;
                }
                SyslogTransport::Tcp => {
                    let mut stream = TcpStream::connect(&self.address)
                        .await
                        .map_err(|e| io("cannot connect", e))?;
                    let mut framed = format!("{} ", message.len()).into_bytes();
                    framed.extend_from_slice(&message);
                    stream
                        .write_all(&framed)
                        .await
                        .map_err(|e| io("cannot send", e))?;
                    stream.shutdown().await.map_err(|e| io("cannot close", e))?;
                }
            }
            Ok(ActionOutcome::Delivered { attempts: 1 })
        };
        tokio::time::timeout(SEND_TIMEOUT, work)
            .await
            .map_err(|_| Error::Timeout {
                what: peer.clone(),
                after: SEND_TIMEOUT,
            })?
    }
}

/// The wildcard local address of the same family as `address` (IPv6 if it looks like one).
pub(crate) fn local_any(address: &str) -> &'static str {
    if address.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
}
