//! The event stream: `GET /api/v1/events/stream` as an async [`Stream`] of [`Event`]s.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use mo_core::{Error, Result};
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use crate::Client;
use crate::attach::{Ws, connect};
use crate::types::Event;

/// Events as the daemon stores them, one per item. Dropping the stream closes the WebSocket.
/// The stream ends when the server closes; a frame that is not an event is an
/// [`Error::Protocol`] item.
pub struct EventStream {
    ws: Ws,
    server: String,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn open(client: &Client, url: Url) -> Result<EventStream> {
    let ws = connect(client, url, None).await?;
    Ok(EventStream {
        ws,
        server: client.server(),
    })
}

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next_event(&mut self) -> Option<Result<Event>> {
        self.next().await
    }
}

impl Stream for EventStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let msg = match self.ws.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(Error::Connect {
                        address: self.server.clone(),
                        reason: format!("event stream: {e}"),
                    })));
                }
                Poll::Ready(Some(Ok(msg))) => msg,
            };
            match msg {
                Message::Text(t) => {
                    return Poll::Ready(Some(parse_event(&self.server, t.as_str())));
                }
                Message::Close(_) => return Poll::Ready(None),
                _ => continue,
            }
        }
    }
}

/// Parse a text frame of the event stream from `server`: an event, or an [`Error::Protocol`]
/// naming the server and the frame. Not a stable API (public for the fuzz targets).
#[doc(hidden)]
pub fn parse_event(server: &str, text: &str) -> Result<Event> {
    serde_json::from_str::<Event>(text).map_err(|e| Error::Protocol {
        peer: server.to_string(),
        reason: format!("event stream: not an event ({e}): {text}"),
    })
}
