//! A console over the WebSocket attach endpoint: the remote [`Attachment`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use mo_api::{ClientFrame, ViewerMode};
use mo_core::console::{Mode, ViewerRole};
use mo_core::facade::{AttachInfo, Attachment, Output, Viewer};
use mo_core::{Error, Result};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::{Client, error};

/// A WebSocket to the daemon.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Output items queued between the socket reader and the handle's reader.
const QUEUE: usize = 64;
/// How long `who` waits for the server's answer.
const WHO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the handshake and hello may take.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Open a WebSocket to `url` (http(s) turned into ws(s)) with the client's token.
pub(crate) async fn connect(client: &Client, mut url: Url, device: Option<&str>) -> Result<Ws> {
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    let _ = url.set_scheme(scheme);
    let server = client.server();
    let what = format!("GET {}", url.path());
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::BadAddress {
            address: url.to_string(),
            reason: e.to_string(),
        })?;
    if let Some(token) = &client.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::Auth {
            target: server.clone(),
            reason: "the token holds characters not allowed in an HTTP header".into(),
        })?;
        request.headers_mut().insert("authorization", value);
    }
    let started = Instant::now();
    let connector = client.tls.clone().map(tokio_tungstenite::Connector::Rustls);
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector);
    let (ws, _) = match tokio::time::timeout(HELLO_TIMEOUT, connecting).await {
        Err(_) => {
            return Err(Error::Timeout {
                what: format!("{what} on {server}: WebSocket handshake"),
                after: HELLO_TIMEOUT,
            });
        }
        Ok(Ok(ok)) => ok,
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            return Err(error::from_answer(
                &server,
                &what,
                device,
                status,
                &body,
                started.elapsed(),
            ));
        }
        Ok(Err(e)) => {
            return Err(Error::Connect {
                address: server,
                reason: format!("{what}: {e}"),
            });
        }
    };
    Ok(ws)
}

/// A frame of the attach protocol from the server (text frames). Public only for the fuzz targets
/// (`fuzz/`), with [`parse_frame`]; not a stable API.
#[doc(hidden)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame {
    Hello {
        #[serde(default)]
        device: String,
        #[serde(default)]
        user: String,
        #[serde(default)]
        role: String,
        #[serde(default)]
        message: String,
    },
    Notice {
        #[serde(default)]
        text: String,
    },
    Missed {
        #[serde(default)]
        bytes: u64,
    },
    State {
        #[serde(default)]
        state: String,
    },
    Who {
        #[serde(default)]
        viewers: Vec<WireViewer>,
    },
    Error {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    },
    Closed {
        #[serde(default)]
        reason: String,
    },
    #[serde(other)]
    Other,
}

/// A viewer in a `who` frame; [`Viewer::from`] reads its time. Not a stable API.
#[doc(hidden)]
#[derive(Debug, Deserialize)]
pub struct WireViewer {
    user: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    since: String,
}

impl From<WireViewer> for Viewer {
    fn from(v: WireViewer) -> Viewer {
        let since = parse_time(&v.since).unwrap_or(SystemTime::UNIX_EPOCH);
        Viewer {
            user: v.user,
            role: v.role,
            since,
        }
    }
}

/// Parse a text frame from the server, as the client does for every one it receives. Not a
/// stable API (public for the fuzz targets).
#[doc(hidden)]
pub fn parse_frame(text: &str) -> serde_json::Result<Frame> {
    serde_json::from_str(text)
}

/// RFC 3339 → SystemTime (what mo's own log time parser accepts).
fn parse_time(text: &str) -> Option<SystemTime> {
    let ns = mo_core::log::parse_time_spec(text, mo_core::record::now_ns()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns))
}

type Waiters = Arc<StdMutex<VecDeque<oneshot::Sender<Vec<Viewer>>>>>;

/// A viewer of a console in a daemon, over the WebSocket attach endpoint. A reader task moves
/// frames into a small queue; when the queue is full it stops reading the socket, and the server
/// treats this viewer as fallen behind (it reports [`Output::Missed`]) — the console never waits.
///
/// Refusals of keystrokes, breaks and mode changes arrive asynchronously as
/// [`Output::Notice`]s (`error: …`); the calls themselves only fail if the connection is gone.
pub struct RemoteAttachment {
    info: AttachInfo,
    server: String,
    sink: Mutex<SplitSink<Ws, Message>>,
    out: Mutex<mpsc::Receiver<Output>>,
    waiters: Waiters,
    closed: StdMutex<Option<String>>,
    /// Whether this viewer is spying (from the hello, then from the last mode asked for), so a
    /// keystroke is refused here as the embedded console refuses it, not silently dropped.
    spying: StdMutex<bool>,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RemoteAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAttachment")
            .field("server", &self.server)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Connect to the attach endpoint of `name` and wait for the server's hello.
pub(crate) async fn open(
    client: &Client,
    name: &str,
    mode: Mode,
    replay: Option<usize>,
) -> Result<RemoteAttachment> {
    let mut url = client.url(&["api", "v1", "devices", name, "attach"]);
    url.query_pairs_mut().append_pair("mode", mode.name());
    if let Some(n) = replay {
        url.query_pairs_mut().append_pair("replay", &n.to_string());
    }
    let server = client.server();
    let ws = connect(client, url, Some(name)).await?;
    let (sink, mut stream) = ws.split();
    // Output before hello (there should be none) is kept for the reader.
    let mut early = Vec::new();
    let started = Instant::now();
    let info = loop {
        let next = tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await;
        let msg = match next {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("attach to {name} on {server}: waiting for hello"),
                    after: HELLO_TIMEOUT,
                });
            }
            Ok(None) => {
                return Err(Error::Protocol {
                    peer: server,
                    reason: format!("attach to {name}: the server closed before saying hello"),
                });
            }
            Ok(Some(Err(e))) => {
                return Err(Error::Connect {
                    address: server,
                    reason: format!("attach to {name}: {e}"),
                });
            }
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Binary(b) => early.push(Output::Data(b)),
            Message::Text(t) => match parse_frame(t.as_str()) {
                Ok(Frame::Hello {
                    device,
                    user,
                    role,
                    message,
                }) => {
                    break AttachInfo {
                        device: if device.is_empty() {
                            name.to_string()
                        } else {
                            device
                        },
                        user,
                        role,
                        message,
                    };
                }
                Ok(Frame::Error { code, message }) => {
                    let what = format!("attach to {name}");
                    return Err(error::from_code(
                        &server,
                        &what,
                        Some(name),
                        &code,
                        message,
                        started.elapsed(),
                    ));
                }
                Ok(Frame::Closed { reason }) => {
                    return Err(Error::ConsoleGone {
                        device: format!("{name} ({reason})"),
                    });
                }
                Ok(Frame::Notice { text }) => early.push(Output::Notice(text)),
                _ => {}
            },
            Message::Close(frame) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(Error::Protocol {
                    peer: server,
                    reason: format!("attach to {name}: closed before hello: {why}"),
                });
            }
            _ => {}
        }
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let waiters: Waiters = Arc::default();
    let reader = tokio::spawn(read_frames(
        stream,
        early,
        tx,
        waiters.clone(),
        info.device.clone(),
    ));
    Ok(RemoteAttachment {
        spying: StdMutex::new(ViewerRole::by_name(&info.role) == Some(ViewerRole::Spy)),
        info,
        server,
        sink: Mutex::new(sink),
        out: Mutex::new(rx),
        waiters,
        closed: StdMutex::new(None),
        reader,
    })
}

async fn read_frames(
    mut stream: SplitStream<Ws>,
    early: Vec<Output>,
    tx: mpsc::Sender<Output>,
    waiters: Waiters,
    device: String,
) {
    for item in early {
        if tx.send(item).await.is_err() {
            return;
        }
    }
    let reason = loop {
        let msg = match stream.next().await {
            None => break "the server closed the connection".to_string(),
            Some(Err(e)) => break format!("connection lost: {e}"),
            Some(Ok(msg)) => msg,
        };
        let item = match msg {
            Message::Binary(b) => Output::Data(b),
            Message::Text(t) => match parse_frame(t.as_str()) {
                Ok(Frame::Notice { text }) => Output::Notice(text),
                Ok(Frame::Missed { bytes }) => Output::Missed(bytes),
                Ok(Frame::State { state }) => Output::Notice(format!("{device} is {state}")),
                Ok(Frame::Error { code, message }) => {
                    Output::Notice(format!("error ({code}): {message}"))
                }
                Ok(Frame::Who { viewers }) => {
                    let viewers: Vec<Viewer> = viewers.into_iter().map(Viewer::from).collect();
                    let waiter = waiters.lock().ok().and_then(|mut w| w.pop_front());
                    if let Some(w) = waiter {
                        let _ = w.send(viewers);
                    }
                    continue;
                }
                Ok(Frame::Closed { reason }) => break reason,
                Ok(Frame::Hello { .. } | Frame::Other) => continue,
                Err(e) => {
                    tracing::debug!(%device, "attach: unreadable text frame: {e}");
                    continue;
                }
            },
            Message::Close(frame) => {
                break frame
                    .map(|f| f.reason.to_string())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "the server closed the connection".into());
            }
            _ => continue,
        };
        if tx.send(item).await.is_err() {
            return;
        }
    };
    let _ = tx.send(Output::Closed(reason)).await;
}

impl RemoteAttachment {
    fn gone(&self) -> Error {
        Error::ConsoleGone {
            device: self.info.device.clone(),
        }
    }

    async fn send(&self, msg: Message) -> Result<()> {
        let mut sink = self.sink.lock().await;
        sink.send(msg).await.map_err(|e| {
            tracing::debug!(device = %self.info.device, "attach: send failed: {e}");
            self.gone()
        })
    }

    /// Send a control message ([`ClientFrame`]).
    async fn send_frame(&self, frame: ClientFrame) -> Result<()> {
        let text = serde_json::to_string(&frame).map_err(|e| Error::Protocol {
            peer: self.server.clone(),
            reason: format!("cannot write a control message: {e}"),
        })?;
        self.send(Message::text(text)).await
    }
}

#[async_trait]
impl Attachment for RemoteAttachment {
    fn info(&self) -> &AttachInfo {
        &self.info
    }

    async fn next(&self) -> Output {
        if let Ok(closed) = self.closed.lock()
            && let Some(why) = closed.as_ref()
        {
            return Output::Closed(why.clone());
        }
        let item = {
            let mut out = self.out.lock().await;
            out.recv()
                .await
                .unwrap_or_else(|| Output::Closed("closed".into()))
        };
        if let Output::Closed(why) = &item
            && let Ok(mut closed) = self.closed.lock()
        {
            closed.get_or_insert_with(|| why.clone());
        }
        item
    }

    async fn write(&self, bytes: &[u8]) -> Result<()> {
        if *self.spying.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(Error::Denied {
                reason: format!(
                    "you are spying on {}: typing needs read-write; attach or force first",
                    self.info.device
                ),
            });
        }
        self.send(Message::binary(Bytes::copy_from_slice(bytes)))
            .await
    }

    async fn send_break(&self, number: u8) -> Result<String> {
        self.send_frame(ClientFrame::Break { number }).await?;
        Ok(format!("break {number} requested"))
    }

    async fn set_signal(&self, line: mo_core::link::Signal, to: Option<bool>) -> Result<String> {
        let set = Some(mo_api::LineSetting::from_to(to));
        let frame = match line {
            mo_core::link::Signal::Dtr => ClientFrame::Signal {
                dtr: set,
                rts: None,
            },
            mo_core::link::Signal::Rts => ClientFrame::Signal {
                dtr: None,
                rts: set,
            },
        };
        // The change comes back through the timeline (`DTR dropped by alice`), a refusal as an
        // error frame.
        self.send_frame(frame).await?;
        Ok(format!(
            "{} {} requested",
            line.name(),
            match to {
                Some(true) => "on",
                Some(false) => "off",
                None => "toggle",
            }
        ))
    }

    async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        self.send_frame(ClientFrame::Resize { cols, rows }).await
    }

    async fn set_mode(&self, mode: Mode) -> Result<String> {
        let wire: ViewerMode = mode.name().parse().map_err(|_| Error::BadSpec {
            what: "mode",
            input: mode.name().to_string(),
            reason: "the API has no such mode".into(),
        })?;
        self.send_frame(ClientFrame::Mode { mode: wire }).await?;
        *self.spying.lock().unwrap_or_else(|e| e.into_inner()) = mode == Mode::Spy;
        Ok(format!("{mode} requested"))
    }

    async fn note(&self, text: &str) -> Result<()> {
        self.send_frame(ClientFrame::Note {
            text: text.to_string(),
        })
        .await
    }

    async fn who(&self) -> Result<Vec<Viewer>> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.push_back(tx);
        }
        self.send_frame(ClientFrame::Who).await?;
        match tokio::time::timeout(WHO_TIMEOUT, rx).await {
            Ok(Ok(viewers)) => Ok(viewers),
            Ok(Err(_)) => Err(self.gone()),
            Err(_) => Err(Error::Timeout {
                what: format!(
                    "who on {} at {} (is the handle being read?)",
                    self.info.device, self.server
                ),
                after: WHO_TIMEOUT,
            }),
        }
    }

    async fn close(&self) -> Result<()> {
        {
            let mut sink = self.sink.lock().await;
            let _ = sink.send(Message::Close(None)).await;
            let _ = sink.close().await;
        }
        if let Ok(mut closed) = self.closed.lock() {
            closed.get_or_insert_with(|| "closed".into());
        }
        self.reader.abort();
        Ok(())
    }
}

impl Drop for RemoteAttachment {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
