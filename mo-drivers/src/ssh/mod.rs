//! The `ssh` driver: an SSH server is the device (SSH-only gear, a console server's SSH ports).
//!
//! # Address
//!
//! ```text
//! ssh://admin@10.0.0.5              user admin, port 22, a login shell
//! ssh://admin@cs1:2222?term=vt100   another port and terminal type
//! ssh://admin:port5@cs1             console-server port selection: user name `admin:port5`
//! ssh://admin%3Aserial-a@cs1        any other user name with a colon: percent-encode it
//! ssh://root@bmc1?command=console   run a command (on a pty) instead of a shell
//! ```
//!
//! Console servers (Opengear, Avocent ACS, Lantronix SLC, Digi) pick the serial port from the
//! user name, written `user:portNN`. In an address that colon lands in the URL's password slot;
//! the driver takes it back into the user name when what follows is a port selector — digits,
//! `port` and digits, or `tty…` ending in digits (`ttyS5`, `ttyUSB0`). Anything else there would
//! be a password, and passwords never belong in addresses (they would end up in logs): such an
//! address is refused without repeating what was written. Secrets come from
//! [`DriverOptions::credentials`].
//!
//! Parameters: `term` (terminal type, default `xterm`), `keepalive` (seconds between SSH
//! keepalives when the server is silent, default 30, `0` for none; three unanswered ones end the
//! link), `command` (run this instead of a login shell). Unknown or repeated parameters are errors.
//!
//! # Behaviour
//!
//! Each connect opens a TCP connection (`TCP_NODELAY` on) and runs the SSH handshake with russh:
//!
//! - **Host key**: checked against the OpenSSH `known_hosts` file in
//!   [`DriverOptions::known_hosts`] (see [`known_hosts`]). An unknown key is refused with
//!   [`Error::HostKey`] giving its SHA256 fingerprint, unless
//!   [`DriverOptions::trust_on_first_use`] is set: then it is appended to the file and accepted.
//!   A key different from the recorded one is always refused ("changed! was …, now …").
//! - **Authentication**: `none` (which also lists the server's methods), then the private key of
//!   [`Credentials::private_key`](crate::Credentials::private_key) (OpenSSH text, with
//!   [`key_passphrase`](crate::Credentials::key_passphrase) if encrypted), then the password by
//!   `password` and by `keyboard-interactive` (hidden prompts get the password). When all fail:
//!   [`Error::Auth`] naming the address, the user and the methods tried, never a secret.
//! - **Session**: a pty (`term`, 80×24) with a shell or the command. Server-initiated channels
//!   (forwarded ports, X11, agent) are refused. When the remote shell ends, the link's reader
//!   reaches end of file, so the console reconnects.
//!
//! Capabilities: window size (sent as a `window-change` request). BREAK is **not** offered:
//! russh 0.65 (the version mo builds with) has no way to send the RFC 4335 `break` channel request, so
//! [`ControlOp::Break`] answers [`Error::Unsupported`]; use the console's break sequence.
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let port5 = connector_for("ssh://admin:port5@cs1", &DriverOptions::default()).unwrap();
//! assert_eq!(port5.address(), "ssh://admin:port5@cs1");
//! assert!(port5.capabilities().window_size && !port5.capabilities().send_break);
//! let err = connector_for("ssh://admin:hunter2@cs1", &DriverOptions::default()).unwrap_err();
//! assert!(!err.to_string().contains("hunter2"));
//! ```

mod auth;
// The known_hosts reader: public for its fuzz target and the integration tests, not a stable API.
#[doc(hidden)]
pub mod known_hosts;

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, ControlOp, Link, LinkControl};
use mo_core::{Error, Result};
use russh::client::{ChannelOpenHandle, Handle, Msg, Session};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;
use url::{Host, Url};

use crate::address::{self, DriverOptions, Query};
use crate::credentials::Credentials;
use crate::tcp::HostPort;
use known_hosts::{KnownHosts, Verdict, fingerprint};

/// The SSH port used when an address gives none.
pub const DEFAULT_PORT: u16 = 22;
/// The terminal type asked for when the address gives none.
pub const DEFAULT_TERM: &str = "xterm";
/// Seconds between keepalives when the address gives none.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
/// How long the SSH handshake, login and session setup may take after the TCP connect.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);
/// The pty size asked for at connect, before any viewer says otherwise (columns, rows).
pub const INITIAL_SIZE: (u32, u32) = (80, 24);

/// Bytes buffered between the session and the link's reader.
const PIPE_BYTES: usize = 64 * 1024;
/// The address parameters.
const PARAMETERS: &[&str] = &["term", "keepalive", "command"];

/// Where and how an `ssh` link logs in, read from its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The user name, including a console server's `:portNN` selector.
    pub user: String,
    /// Terminal type for the pty.
    pub term: String,
    /// Keepalive interval; `None` for no keepalives.
    pub keepalive: Option<Duration>,
    /// A command to run instead of the login shell.
    pub command: Option<String>,
}

impl SshTarget {
    /// Read an `ssh:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str) -> Result<Self> {
        // First, so that no other error repeats an address holding a password.
        let selector = match url.password() {
            Some(slot) => match decode(slot, &address::display(url), "port selector")? {
                selector if is_port_selector(&selector) => Some(selector),
                _ => {
                    return Err(address::bad(
                        &address::display(url),
                        "the address holds a password (`user:…@`), and secrets do not belong \
                         in addresses: give it in the device's credentials. For a \
                         console-server port write user:portN, user:N or user:ttySN; for \
                         another user name with a colon write the colon as %3A",
                    ));
                }
            },
            None => None,
        };
        address::expect_no_fragment(url, address)?;
        if !matches!(url.path(), "" | "/") {
            return Err(address::bad(
                address,
                format!(
                    "unexpected path `{}`; write ssh://USER@HOST[:PORT]",
                    url.path()
                ),
            ));
        }
        let query = Query::parse(url, address, PARAMETERS)?;
        let host = match url.host() {
            Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => {
                return Err(address::bad(
                    address,
                    "no host; write ssh://USER@HOST[:PORT]",
                ));
            }
        };
        let port = match url.port().unwrap_or(DEFAULT_PORT) {
            0 => return Err(address::bad(address, "port 0 is not a port to connect to")),
            port => port,
        };
        let mut user = decode(url.username(), address, "user name")?;
        if user.is_empty() {
            return Err(address::bad(
                address,
                "no user name; write ssh://USER@HOST[:PORT]",
            ));
        }
        if let Some(selector) = selector {
            user = format!("{user}:{selector}");
        }
        let term = query
            .parsed("term", |v| {
                if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) {
                    Ok(v.to_owned())
                } else {
                    Err("a terminal type such as xterm or vt100".into())
                }
            })?
            .unwrap_or_else(|| DEFAULT_TERM.to_owned());
        let keepalive = query
            .parsed("keepalive", |v| {
                v.parse::<u32>()
                    .map_err(|_| "a whole number of seconds (0 for none)".into())
            })?
            .map_or(Some(DEFAULT_KEEPALIVE), |secs| {
                (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
            });
        let command = query.parsed("command", |v| {
            if v.trim().is_empty() {
                Err("a command to run".into())
            } else {
                Ok(v.to_owned())
            }
        })?;
        Ok(Self {
            host,
            port,
            user,
            term,
            keepalive,
            command,
        })
    }
}

/// Percent-decode a part of the user-info.
fn decode(text: &str, address: &str, what: &str) -> Result<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| address::bad(address, format!("the {what} is not valid UTF-8")))
}

/// A console server's port selector: `N`, `portN`, or `tty…N` (`ttyS5`, `ttyUSB0`).
fn is_port_selector(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(text) {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    if let Some(n) = lower.strip_prefix("port") {
        return digits(n);
    }
    if let Some(rest) = lower.strip_prefix("tty") {
        let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
        let n = rest.get(letters.len()..).unwrap_or_default();
        return digits(n) && letters.len() <= 4 && letters.bytes().all(|b| b.is_ascii_alphabetic());
    }
    false
}

/// Opens `ssh` links.
#[derive(Debug, Clone)]
pub struct SshConnector {
    target: SshTarget,
    address: String,
    credentials: Credentials,
    known_hosts: Option<PathBuf>,
    trust_on_first_use: bool,
    config: Arc<russh::client::Config>,
}

impl SshConnector {
    /// A connector for `target`, with the secrets and host-key settings of `opts`.
    pub fn new(target: SshTarget, opts: &DriverOptions) -> Self {
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let address = format!("ssh://{}@{host}:{}", target.user, target.port);
        Self::with_address(target, address, opts)
    }

    /// A connector for an `ssh:` address (see the [module docs](self)).
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        let target = SshTarget::from_url(url, address)?;
        // The password slot, if any, holds a port selector (checked above), not a secret.
        Ok(Self::with_address(target, url.to_string(), opts))
    }

    fn with_address(target: SshTarget, address: String, opts: &DriverOptions) -> Self {
        let config = russh::client::Config {
            keepalive_interval: target.keepalive,
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Self {
            target,
            address,
            credentials: opts.credentials.clone(),
            known_hosts: opts.known_hosts.clone(),
            trust_on_first_use: opts.trust_on_first_use,
            config: Arc::new(config),
        }
    }

    /// Where and how this connector logs in.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Handshake, log in and start the session on a connected socket.
    async fn open(&self, stream: tokio::net::TcpStream) -> Result<Link> {
        let client = Client {
            host: self.target.host.clone(),
            port: self.target.port,
            known_hosts: self.known_hosts.clone(),
            trust_on_first_use: self.trust_on_first_use,
        };
        let mut handle = russh::client::connect_stream(Arc::clone(&self.config), stream, client)
            .await
            .map_err(|e| match e {
                ClientError::HostKey(reason) => Error::HostKey {
                    address: self.address.clone(),
                    reason,
                },
                ClientError::Ssh(e) => Error::Connect {
                    address: self.address.clone(),
                    reason: format!("SSH handshake failed: {e}"),
                },
            })?;
        auth::authenticate(
            &mut handle,
            &self.target.user,
            &self.credentials,
            &self.address,
        )
        .await?;
        let protocol = |what: &str, e: russh::Error| Error::Protocol {
            peer: self.address.clone(),
            reason: format!("{what}: {e}"),
        };
        let mut channel = handle
            .channel_open_session()
            .await
            .map_err(|e| protocol("opening a session channel", e))?;
        let (cols, rows) = INITIAL_SIZE;
        channel
            .request_pty(true, &self.target.term, cols, rows, 0, 0, &[])
            .await
            .map_err(|e| protocol("asking for a pty", e))?;
        let mut early = Vec::new();
        self.await_reply(&mut channel, &mut early, "pty").await?;
        match &self.target.command {
            Some(command) => channel
                .exec(true, command.as_bytes())
                .await
                .map_err(|e| protocol("starting the command", e))?,
            None => channel
                .request_shell(true)
                .await
                .map_err(|e| protocol("starting the shell", e))?,
        }
        let what = if self.target.command.is_some() {
            "command"
        } else {
            "shell"
        };
        self.await_reply(&mut channel, &mut early, what).await?;

        let (read_half, write_half) = channel.split();
        let writer = write_half.make_writer();
        let (link_reader, pipe) = tokio::io::duplex(PIPE_BYTES);
        let task = tokio::spawn(read_task(
            read_half,
            handle,
            early,
            pipe,
            self.address.clone(),
        ));
        Ok(Link {
            reader: Box::pin(SshReader {
                inner: link_reader,
                task,
            }),
            writer: Box::pin(writer),
            control: Arc::new(SshControl {
                channel: write_half,
                address: self.address.clone(),
            }),
        })
    }

    /// Wait for the server's answer to a channel request; data arriving meanwhile is kept.
    async fn await_reply(
        &self,
        channel: &mut Channel<Msg>,
        early: &mut Vec<u8>,
        what: &str,
    ) -> Result<()> {
        let refused = |reason: String| Error::Protocol {
            peer: self.address.clone(),
            reason,
        };
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) => {
                    return Err(refused(format!("the server refused the {what} request")));
                }
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    early.extend_from_slice(&data);
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    return Err(refused(format!(
                        "the server closed the session while starting the {what}"
                    )));
                }
                Some(_) => {}
            }
        }
    }
}

#[async_trait]
impl Connector for SshConnector {
    async fn connect(&self) -> Result<Link> {
        let target = HostPort {
            host: self.target.host.clone(),
            port: self.target.port,
        };
        let stream = target.connect(&self.address).await?;
        match tokio::time::timeout(LOGIN_TIMEOUT, self.open(stream)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                what: format!("SSH login to {}", self.address),
                after: LOGIN_TIMEOUT,
            }),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_window_size(true)
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

/// Why the handshake stopped.
#[derive(Debug)]
enum ClientError {
    /// The host key was not accepted (the reason has the fingerprints).
    HostKey(String),
    /// Any other SSH failure.
    Ssh(russh::Error),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

/// The russh client handler: checks the host key and refuses server-initiated channels.
struct Client {
    host: String,
    port: u16,
    known_hosts: Option<PathBuf>,
    trust_on_first_use: bool,
}

impl Client {
    /// Accept `key` or say why not, recording it on first use when allowed.
    fn verify(&self, key: &PublicKey) -> std::result::Result<(), String> {
        let seen = format!("{} ({})", fingerprint(key), key.algorithm().as_str());
        let Some(file) = &self.known_hosts else {
            return Err(format!(
                "unknown key {seen}: no known_hosts file is configured, so no key can be \
                 checked (or recorded on first use)"
            ));
        };
        let shown = file.display();
        let known = KnownHosts::load(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
        match known.check(&self.host, self.port, key) {
            Verdict::Known => Ok(()),
            Verdict::Revoked => Err(format!("the key {seen} is marked @revoked in {shown}")),
            Verdict::Changed { was } => Err(format!(
                "changed! was {}, now {seen}; if the device was really re-keyed, remove its \
                 old line from {shown}",
                was.join(", ")
            )),
            Verdict::Unknown if self.trust_on_first_use => {
                known_hosts::append(file, &self.host, self.port, key)
                    .map_err(|e| format!("unknown key {seen}: cannot record it in {shown}: {e}"))?;
                tracing::info!(
                    host = %self.host, port = self.port, key = %seen, file = %shown,
                    "SSH host key trusted on first use"
                );
                Ok(())
            }
            Verdict::Unknown => Err(format!(
                "unknown key {seen}, not in {shown}; add it (ssh-keyscan -p {} {} >> {shown}) \
                 or turn on trust on first use",
                self.port, self.host
            )),
        }
    }
}

/// Refuse a channel the server tried to open.
async fn refuse(reply: ChannelOpenHandle, host: &str, kind: &str) {
    tracing::warn!(%host, kind, "refused a server-initiated SSH channel");
    reply
        .reject(ChannelOpenFailure::AdministrativelyProhibited)
        .await;
}

impl russh::client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, ClientError> {
        match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                self.verify(key).map_err(ClientError::HostKey)?;
                Ok(true)
            }
            PublicKeyOrCertificate::Certificate(_) => Err(ClientError::HostKey(
                "the server presented a host certificate; mo checks plain host keys only".into(),
            )),
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "forwarded-tcpip").await;
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "forwarded-streamlocal").await;
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "agent").await;
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "session").await;
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "direct-tcpip").await;
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "direct-streamlocal").await;
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), ClientError> {
        refuse(reply, &self.host, "x11").await;
        Ok(())
    }
}

/// Carry the session's output into the link's pipe until the channel closes; owns the session
/// handle, so the connection lives as long as this task (or the link's writer and control).
async fn read_task(
    mut channel: ChannelReadHalf,
    handle: Handle<Client>,
    early: Vec<u8>,
    mut pipe: DuplexStream,
    address: String,
) {
    let mut open = early.is_empty() || pipe.write_all(&early).await.is_ok();
    while open {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                open = pipe.write_all(&data).await.is_ok();
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                tracing::debug!(%address, exit_status, "the remote session ended");
            }
            Some(ChannelMsg::Close) | None => open = false,
            Some(_) => {}
        }
    }
    let _ = pipe.shutdown().await;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
}

/// The link's reader: the session's output; ends the session task when dropped.
struct SshReader {
    inner: DuplexStream,
    task: JoinHandle<()>,
}

impl AsyncRead for SshReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Drop for SshReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Window size for an SSH link; BREAK is unsupported (see the module docs).
struct SshControl {
    channel: ChannelWriteHalf<Msg>,
    address: String,
}

#[async_trait]
impl LinkControl for SshControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::WindowSize { cols, rows } => self
                .channel
                .window_change(u32::from(cols), u32::from(rows), 0, 0)
                .await
                .map_err(|e| Error::Protocol {
                    peer: self.address.clone(),
                    reason: format!("sending the window size: {e}"),
                }),
            other => Err(Error::Unsupported {
                operation: other.name(),
                what: format!(
                    "{} (SSH: the RFC 4335 break request is not available; use the break \
                     sequence)",
                    self.address
                ),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(address: &str) -> Result<SshConnector> {
        SshConnector::from_url(&address::parse(address)?, address, &DriverOptions::new())
    }

    #[test]
    fn reads_addresses() {
        let c = read("ssh://admin@10.0.0.5").unwrap();
        assert_eq!(
            c.target(),
            &SshTarget {
                host: "10.0.0.5".into(),
                port: 22,
                user: "admin".into(),
                term: "xterm".into(),
                keepalive: Some(DEFAULT_KEEPALIVE),
                command: None,
            }
        );
        let c = read("ssh://admin:port5@cs1:2222/?term=vt100&keepalive=0&command=cat+-v").unwrap();
        let t = c.target();
        assert_eq!((t.user.as_str(), t.port), ("admin:port5", 2222));
        assert_eq!((t.term.as_str(), t.keepalive), ("vt100", None));
        assert_eq!(t.command.as_deref(), Some("cat -v"));
        assert_eq!(
            c.address(),
            "ssh://admin:port5@cs1:2222/?term=vt100&keepalive=0&command=cat+-v"
        );
        for (address, user) in [
            ("ssh://u:7@cs1", "u:7"),
            ("ssh://u:ttyS12@cs1", "u:ttyS12"),
            ("ssh://u:ttyUSB0@cs1", "u:ttyUSB0"),
            ("ssh://u:PORT03@cs1", "u:PORT03"),
            ("ssh://u%3Aserial-a@cs1", "u:serial-a"),
            ("ssh://j%C3%B6rg@cs1", "j\u{f6}rg"),
        ] {
            assert_eq!(read(address).unwrap().target().user, user, "{address}");
        }
        assert_eq!(read("ssh://u@[::1]:22").unwrap().target().host, "::1");
        let c = SshConnector::new(
            read("ssh://u@[::1]:2").unwrap().target.clone(),
            &DriverOptions::new(),
        );
        assert_eq!(c.address(), "ssh://u@[::1]:2");
        assert_eq!(
            read("ssh://u@h?keepalive=5").unwrap().target().keepalive,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn refuses_bad_addresses_without_echoing_passwords() {
        for (address, needle) in [
            ("ssh://cs1", "no user name"),
            ("ssh://u@cs1:0", "port 0"),
            ("ssh://u@cs1/x", "unexpected path `/x`"),
            ("ssh://u@cs1?baud=9600", "unknown parameter `baud`"),
            ("ssh://u@cs1?term=", "bad value"),
            ("ssh://u@cs1?term=a+b", "bad value"),
            ("ssh://u@cs1?keepalive=-1", "whole number"),
            ("ssh://u@cs1?command=+", "a command"),
            ("ssh://u@cs1?term=a&term=b", "term"),
            ("ssh://u@cs1#f", "fragment"),
            ("ssh://u@:22", "host"),
            ("ssh:", "no host"),
            ("ssh://u:s3cr3t-pw@cs1", "secrets do not belong"),
            (
                "ssh://u:s3cr3t-pw@cs1/x?bad=1#f",
                "`ssh://u@cs1/x?bad=1#f`: the address holds",
            ),
            ("ssh://u:port@cs1", "secrets do not belong"),
            ("ssh://u:tty@cs1", "secrets do not belong"),
            ("ssh://u:123456@cs1", "secrets do not belong"),
        ] {
            let err = read(address).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::BadAddress { .. }), "{address}: {text}");
            assert!(text.contains(needle), "{address}: {text}");
            assert!(!text.contains("s3cr3t"), "{text}");
        }
    }

    #[test]
    fn port_selectors() {
        for yes in [
            "5", "05", "port5", "Port12", "ttyS0", "ttyUSB3", "tty7", "99999",
        ] {
            assert!(is_port_selector(yes), "{yes}");
        }
        for no in [
            "",
            "port",
            "portx",
            "ttyS",
            "tty-1",
            "hunter2",
            "123456",
            "ttyABCDE1",
            "p5",
        ] {
            assert!(!is_port_selector(no), "{no}");
        }
    }

    #[test]
    fn break_is_unsupported_and_window_size_announced() {
        let c = read("ssh://u@cs1").unwrap();
        assert_eq!(c.capabilities(), Capabilities::NONE.with_window_size(true));
    }
}
