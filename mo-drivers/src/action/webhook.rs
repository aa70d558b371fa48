//! The `webhook` action: the event POSTed as JSON, retried with exponential backoff.
//!
//! The body is one JSON object: `id`, `time` (RFC 3339 UTC), `time_ns`, `device`, `source`,
//! `severity`, `message`, `context` (array of lines), `count`, `suppressed`. A 2xx answer is
//! success; a connection failure, a timeout, 408, 429 or 5xx is retried (after `backoff`, then
//! twice that, and so on, at most [`MAX_BACKOFF`]); any other status fails at once.

use std::time::Duration;

use mo_core::event::Event;
use mo_core::{Error, Result};
use reqwest::StatusCode;

use super::ActionOutcome;

/// Retries after the first attempt by default.
pub const DEFAULT_RETRIES: u32 = 3;
/// The delay before the first retry by default.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Each attempt's timeout by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A webhook to POST events to.
#[derive(Debug, Clone)]
pub struct WebhookAction {
    url: reqwest::Url,
    retries: u32,
    backoff: Duration,
    client: reqwest::Client,
}

impl WebhookAction {
    /// A webhook; fails if the URL is not `http` or `https` or the HTTP client cannot be built.
    pub fn new(
        url: &str,
        retries: u32,
        backoff: Duration,
        timeout: Duration,
    ) -> std::result::Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("`{url}`: expected an http or https URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("mo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(WebhookAction {
            url: parsed,
            retries,
            backoff,
            client,
        })
    }

    /// The JSON body sent for an event.
    pub fn body(event: &Event) -> serde_json::Value {
        serde_json::json!({
            "id": event.id,
            "time": super::rfc3339(event.time_ns),
            "time_ns": event.time_ns,
            "device": event.device,
            "source": event.source.as_str(),
            "severity": event.severity.as_str(),
            "message": event.message,
            "context": event.context,
            "count": event.count,
            "suppressed": event.suppressed,
        })
    }

    /// POST the event, retrying as described in the module documentation.
    pub async fn send(&self, event: &Event) -> Result<ActionOutcome> {
        let body = serde_json::to_vec(&Self::body(event)).map_err(|e| Error::Protocol {
            peer: self.shown(),
            reason: format!("cannot encode the event: {e}"),
        })?;
        let mut delay = self.backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (retry, reason) = match result {
                Ok(answer) if answer.status().is_success() => {
                    return Ok(ActionOutcome::Delivered { attempts: attempt });
                }
                Ok(answer) => {
                    let status = answer.status();
                    let retry = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT;
                    (retry, format!("answered {status}"))
                }
                Err(e) => (true, without_url(e)),
            };
            if !retry || attempt > self.retries {
                return Err(Error::Protocol {
                    peer: self.shown(),
                    reason: format!("{reason} (attempt {attempt} of {})", self.retries + 1),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// The URL without credentials or query (which may hold tokens), for messages.
    fn shown(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        format!("webhook {url}")
    }
}

/// A reqwest error's message without the URL (it is shown, cleaned, elsewhere).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    if let Some(source) = std::error::Error::source(&e) {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    text
}
