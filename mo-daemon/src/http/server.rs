//! The HTTP front door's connection loop: hyper's HTTP/1.1 server (WebSocket upgrades
//! included) with the limits `axum::serve` does not set.
//!
//! * A client must send a request's whole header within [`Options::header_timeout`]; the same
//!   timer closes a keep-alive connection that stays idle that long between requests. A client
//!   trickling a header byte by byte (slowloris) is cut off.
//! * Connections are capped in total and per source address ([`ConnLimits`]); a connection over
//!   the cap gets `503` and is closed. The permit travels with the socket, so an upgraded
//!   WebSocket keeps counting until it closes.
//! * Each request carries its peer address (`ConnectInfo`) and the allowed origins
//!   ([`AllowedOrigins`]) for the authentication extractor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tower::ServiceExt as _;

use super::auth::AllowedOrigins;
use crate::connlimit::{ConnLimits, Kill, Limited};

/// The HTTP door's limits and origins.
pub struct Options {
    /// Connection caps (total and per source address).
    pub conns: Arc<ConnLimits>,
    /// Time to send a request header; also the keep-alive idle limit.
    pub header_timeout: Duration,
    /// Origins besides the daemon's own that may open WebSockets (`--allowed-origin`).
    pub allowed_origins: Vec<String>,
}

/// Serve `router` on every connection `listener` accepts, until the task is dropped.
pub async fn run<L>(mut listener: L, router: Router, options: Options)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let origins = AllowedOrigins(Arc::new(options.allowed_origins));
    let header_timeout = options.header_timeout;
    loop {
        let (io, peer) = listener.accept().await;
        let permit = match options.conns.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                tracing::warn!("{why}");
                tokio::spawn(refuse(io));
                continue;
            }
        };
        let io = Limited::new(io, permit, Kill::new());
        let router = router.clone();
        let origins = origins.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(origins.clone());
                router.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        });
    }
}

/// Answer a connection over the cap with 503 and close it.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let body =
        r#"{"error":{"code":"unavailable","message":"too many connections; try again later"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = io.write_all(answer.as_bytes()).await;
        let _ = io.shutdown().await;
    })
    .await;
}
