//! Sans-I/O encoders and parsers for discovery answers: IPMI pre-session requests (Get Channel
//! Authentication Capabilities, Get Channel Cipher Suites) and their replies, ASF presence
//! pongs, SSH and telnet banners, and the Redfish service root. No function here does I/O or
//! panics, whatever the bytes (fuzz target `discover`).

use crate::ipmi::rmcp::{self, CodecError, Packet};

/// IPMI network function Application.
const NETFN_APP: u8 = 0x06;
/// Get Channel Authentication Capabilities.
const CMD_AUTH_CAPS: u8 = 0x38;
/// Get Channel Cipher Suites.
const CMD_CIPHER_SUITES: u8 = 0x54;
/// Completion code: invalid data field in request (a BMC without IPMI 2.0 extended data).
pub const CC_INVALID_DATA: u8 = 0xCC;

/// An IPMI 1.5 session-less packet (authentication type none, session 0) carrying `message`,
/// as BMCs accept pre-session requests.
fn session_less(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0x06, 0x00, 0xFF, 0x07, 0x00];
    out.extend_from_slice(&[0; 8]);
    out.push(u8::try_from(message.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(message);
    out
}

/// Get Channel Authentication Capabilities for the current channel at privilege admin;
/// `v2` asks for the IPMI 2.0 extended data (a BMC that only speaks 1.5 answers
/// [`CC_INVALID_DATA`]; ask again without).
pub fn encode_auth_caps_request(rq_seq: u8, v2: bool) -> Vec<u8> {
    let channel = if v2 { 0x8E } else { 0x0E };
    session_less(&rmcp::encode_request(
        NETFN_APP,
        CMD_AUTH_CAPS,
        rq_seq,
        &[channel, 0x04],
    ))
}

/// Get Channel Cipher Suites (IPMI payload, list by cipher suite) for record block `index`
/// (0–63; each answer holds up to 16 bytes of the list).
pub fn encode_cipher_suites_request(rq_seq: u8, index: u8) -> Vec<u8> {
    session_less(&rmcp::encode_request(
        NETFN_APP,
        CMD_CIPHER_SUITES,
        rq_seq,
        &[0x0E, 0x00, 0x80 | (index & 0x3F)],
    ))
}

/// What Get Channel Authentication Capabilities says about a BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCaps {
    /// The channel number answered for.
    pub channel: u8,
    /// The BMC supports IPMI 2.0 (RMCP+) sessions.
    pub ipmi20: bool,
    /// The BMC supports IPMI 1.5 sessions.
    pub ipmi15: bool,
    /// IPMI 1.5 authentication types offered (`none`, `md2`, `md5`, `straight` (password in
    /// clear), `oem`).
    pub auth_types: Vec<&'static str>,
    /// Anonymous (null user) login is enabled.
    pub anonymous: bool,
}

/// The IPMI response carried by a datagram: from an IPMI 1.5 packet, or the clear payload of
/// an unauthenticated RMCP+ packet.
pub fn response_of(datagram: &[u8]) -> Result<rmcp::Response, CodecError> {
    match rmcp::decode_packet(datagram, None)? {
        Packet::V15 { payload, .. } => rmcp::decode_response(&payload),
        Packet::Session(p) => rmcp::decode_response(&p.payload),
        Packet::Pong { .. } => Err(CodecError::new("a presence pong, not an IPMI response")),
    }
}

/// Parse a Get Channel Authentication Capabilities reply datagram. `Ok(Err(code))` is a
/// well-formed reply with a non-zero completion code.
pub fn parse_auth_caps(datagram: &[u8]) -> Result<Result<AuthCaps, u8>, CodecError> {
    let response = response_of(datagram)?;
    if response.cmd != CMD_AUTH_CAPS {
        return Err(CodecError::new(format!(
            "reply to command {:#04x}, not Get Channel Authentication Capabilities",
            response.cmd
        )));
    }
    if response.completion != 0 {
        return Ok(Err(response.completion));
    }
    let d = &response.data;
    let (Some(&channel), Some(&types), Some(&status)) = (d.first(), d.get(1), d.get(2)) else {
        return Err(CodecError::new(format!(
            "authentication capabilities of {} bytes are too short",
            d.len()
        )));
    };
    let extended = types & 0x80 != 0;
    let ext = d.get(3).copied().unwrap_or(0);
    let names = [
        (0x01, "none"),
        (0x02, "md2"),
        (0x04, "md5"),
        (0x10, "straight"),
        (0x20, "oem"),
    ];
    Ok(Ok(AuthCaps {
        channel: channel & 0x0F,
        ipmi20: extended && ext & 0x02 != 0,
        ipmi15: !extended || ext & 0x01 != 0,
        auth_types: names
            .iter()
            .filter(|(bit, _)| types & bit != 0)
            .map(|(_, n)| *n)
            .collect(),
        anonymous: status & 0x01 != 0,
    }))
}

/// Parse one Get Channel Cipher Suites reply: the (up to 16) bytes of the record list it holds,
/// or `Ok(Err(code))` for a non-zero completion code.
pub fn parse_cipher_suites_block(datagram: &[u8]) -> Result<Result<Vec<u8>, u8>, CodecError> {
    let response = response_of(datagram)?;
    if response.cmd != CMD_CIPHER_SUITES {
        return Err(CodecError::new(format!(
            "reply to command {:#04x}, not Get Channel Cipher Suites",
            response.cmd
        )));
    }
    if response.completion != 0 {
        return Ok(Err(response.completion));
    }
    // The first byte is the channel number.
    Ok(Ok(response.data.get(1..).unwrap_or_default().to_vec()))
}

/// The cipher suite IDs in a concatenated cipher suite record list (IPMI 2.0 §22.15): a
/// standard record starts `0xC0 ID`, an OEM record `0xC1 ID IANA(3)`; algorithm bytes follow.
pub fn cipher_suite_ids(records: &[u8]) -> Vec<u8> {
    let mut ids = Vec::new();
    let mut i = 0;
    while let Some(&b) = records.get(i) {
        match b {
            0xC0 | 0xC1 => {
                if let Some(&id) = records.get(i + 1)
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
                i += if b == 0xC0 { 2 } else { 5 };
            }
            _ => i += 1,
        }
    }
    ids
}

/// Whether `datagram` is an ASF presence pong answering the ping with `tag`.
pub fn is_pong(datagram: &[u8], tag: u8) -> bool {
    matches!(rmcp::decode_packet(datagram, None), Ok(Packet::Pong { tag: t }) if t == tag)
}

/// What the first bytes a TCP service sent say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Banner {
    /// `SSH-2.0-OpenSSH_9.6p1 …`: the identification line (protocol version and software).
    Ssh(String),
    /// Telnet option negotiation (IAC commands) came first.
    Telnet,
    /// Printable text: its first line, cleaned.
    Text(String),
    /// Bytes that are neither.
    Binary,
    /// Nothing yet.
    Empty,
}

/// Classify the first bytes received from a TCP port.
pub fn classify_banner(bytes: &[u8]) -> Banner {
    if bytes.is_empty() {
        return Banner::Empty;
    }
    if bytes.starts_with(b"SSH-") {
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        return Banner::Ssh(clean_text(line, 120));
    }
    if bytes.first() == Some(&0xFF)
        || bytes
            .windows(2)
            .take(64)
            .any(|w| w[0] == 0xFF && (0xF0..=0xFE).contains(&w[1]))
    {
        return Banner::Telnet;
    }
    let printable = bytes
        .iter()
        .take(256)
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    if printable * 10 >= bytes.len().min(256) * 9 {
        let text = clean_text(bytes, 120);
        if text.is_empty() {
            Banner::Binary
        } else {
            Banner::Text(text)
        }
    } else {
        Banner::Binary
    }
}

/// The printable text in `bytes` (lossy UTF-8, control characters and escape sequences left
/// out, lines joined with ` / `), at most `max` characters.
pub fn clean_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<String> = Vec::new();
    for line in text.split(['\n', '\r']) {
        let mut clean = String::new();
        let mut in_escape = false;
        for c in line.chars() {
            if in_escape {
                if c.is_ascii_alphabetic() {
                    in_escape = false;
                }
                continue;
            }
            if c == '\u{1b}' {
                in_escape = true;
            } else if !c.is_control() && c != '\u{fffd}' {
                clean.push(c);
            }
        }
        let clean = clean.trim();
        if !clean.is_empty() {
            lines.push(clean.to_string());
        }
    }
    lines.join(" / ").chars().take(max).collect()
}

/// Whether a telnet stream contains `IAC verb option` (the server answered the option).
pub fn has_command(stream: &[u8], verb: u8, option: u8) -> bool {
    stream
        .windows(3)
        .any(|w| w[0] == 0xFF && w[1] == verb && w[2] == option)
}

/// The parts of a Redfish service root discovery shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRoot {
    /// `Vendor` (Redfish 1.5+), else `Oem` key or empty.
    pub vendor: String,
    /// `Product`.
    pub product: String,
    /// `RedfishVersion`.
    pub version: String,
    /// The link to the systems collection (`/redfish/v1/Systems`).
    pub systems: Option<String>,
}

/// Parse a Redfish service root (JSON). An error says why it is not one.
pub fn parse_service_root(body: &[u8]) -> Result<ServiceRoot, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let version = text("RedfishVersion").to_string();
    let odata_type = text("@odata.type");
    if version.is_empty() && !odata_type.contains("ServiceRoot") {
        return Err("JSON without RedfishVersion or a ServiceRoot @odata.type".into());
    }
    let mut vendor = text("Vendor").to_string();
    if vendor.is_empty()
        && let Some(oem) = json.get("Oem").and_then(|v| v.as_object())
    {
        vendor = oem.keys().next().cloned().unwrap_or_default();
    }
    Ok(ServiceRoot {
        vendor: clean_text(vendor.as_bytes(), 60),
        product: clean_text(text("Product").as_bytes(), 60),
        version: clean_text(version.as_bytes(), 20),
        systems: odata_id(json.get("Systems")),
    })
}

fn odata_id(value: Option<&serde_json::Value>) -> Option<String> {
    value?
        .get("@odata.id")?
        .as_str()
        .filter(|s| s.starts_with('/') && s.len() < 512)
        .map(str::to_string)
}

/// The member links of a Redfish collection (at most `limit`).
pub fn parse_collection(body: &[u8], limit: usize) -> Vec<String> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    json.get("Members")
        .and_then(|m| m.as_array())
        .map(|members| {
            members
                .iter()
                .filter_map(|m| odata_id(Some(m)))
                .take(limit)
                .collect()
        })
        .unwrap_or_default()
}

/// A computer system as its Redfish resource describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedfishSystem {
    /// The resource path (`/redfish/v1/Systems/1`).
    pub path: String,
    /// `Id`.
    pub id: String,
    /// `Name`.
    pub name: String,
    /// `HostName`, when set.
    pub host_name: String,
    /// `PowerState` (`On`, `Off`, …).
    pub power_state: String,
}

/// Parse a Redfish ComputerSystem resource found at `path`.
pub fn parse_system(path: &str, body: &[u8]) -> Option<RedfishSystem> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| {
        clean_text(
            json.get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .as_bytes(),
            60,
        )
    };
    let id = text("Id");
    let id = if id.is_empty() {
        path.rsplit('/').next().unwrap_or_default().to_string()
    } else {
        id
    };
    Some(RedfishSystem {
        path: path.to_string(),
        id,
        name: text("Name"),
        host_name: text("HostName"),
        power_state: text("PowerState"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn auth_caps_round_trip() {
        // A reply as ipmi_sim sends it, built with the codec.
        let mut message: Vec<u8> = vec![0x81, 0x07 << 2];
        message.push(0u8.wrapping_sub(message[0].wrapping_add(message[1])));
        let body = [
            0x20,
            0x00,
            CMD_AUTH_CAPS,
            0x00,
            0x01,
            0x96,
            0x14,
            0x02,
            0,
            0,
            0,
            0,
        ];
        message.extend_from_slice(&body);
        let sum = body
            .iter()
            .fold(0u8, |a, b| a.wrapping_add(*b))
            .wrapping_neg();
        message.push(sum);
        let caps = parse_auth_caps(&session_less(&message)).unwrap().unwrap();
        assert!(caps.ipmi20);
        assert_eq!(caps.auth_types, ["md2", "md5", "straight"]);
        assert!(parse_auth_caps(b"\x06\x00\xff\x07garbage").is_err());
        assert!(parse_auth_caps(&[]).is_err());
    }

    #[test]
    fn cipher_suite_records() {
        let list = [
            0xC0, 0x00, 0x00, 0x40, 0x80, 0xC0, 0x03, 0x01, 0x41, 0x81, 0xC1, 0x11, 1, 2, 3,
        ];
        assert_eq!(cipher_suite_ids(&list), [0, 3, 0x11]);
        assert_eq!(cipher_suite_ids(&[0xC0]), Vec::<u8>::new());
    }

    #[test]
    fn banners() {
        assert_eq!(
            classify_banner(b"SSH-2.0-OpenSSH_9.6\r\n"),
            Banner::Ssh("SSH-2.0-OpenSSH_9.6".into())
        );
        assert_eq!(classify_banner(&[0xFF, 0xFB, 0x01]), Banner::Telnet);
        assert_eq!(
            classify_banner(b"\x1b[2Jhello\r\nworld\r\n"),
            Banner::Text("hello / world".into())
        );
        assert_eq!(classify_banner(&[0, 1, 2, 3, 0x80]), Banner::Binary);
        assert!(has_command(&[1, 0xFF, 0xFD, 44], 0xFD, 44));
    }

    #[test]
    fn service_root() {
        let root = br#"{"RedfishVersion":"1.5.0","Vendor":"Acme","Systems":{"@odata.id":"/redfish/v1/Systems"}}"#;
        let r = parse_service_root(root).unwrap();
        assert_eq!(r.systems.as_deref(), Some("/redfish/v1/Systems"));
        assert!(parse_service_root(b"{}").is_err());
        assert!(parse_service_root(b"<html>").is_err());
        let members = br#"{"Members":[{"@odata.id":"/redfish/v1/Systems/a"},{"x":1}]}"#;
        assert_eq!(parse_collection(members, 8), ["/redfish/v1/Systems/a"]);
    }
}
