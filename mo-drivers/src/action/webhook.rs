//! The `webhook` action: the event POSTed, retried with exponential backoff.
//!
//! By default the body is one JSON object: `id`, `time` (RFC 3339 UTC), `time_ns`, `device`,
//! `source`, `severity`, `message`, `context` (array of lines), `count`, `suppressed`. A `body`
//! template replaces it (so Slack-, PagerDuty- or Alertmanager-style receivers need no adapter):
//! the fields of [`super::Template`] are filled in, JSON-escaped when the content type is JSON
//! (`{"text": "{device}: {message}"}` stays valid JSON whatever the message holds). `headers` are
//! templates too (control characters in a value become spaces). With a `secret`, the
//! `X-Mo-Signature` header (or `signature_header`) carries `sha256=HEX`, the HMAC-SHA256 of the
//! body with the secret as key, as the receiver recomputes it.
//!
//! A 2xx answer is success; a connection failure, a timeout, 408, 429 or 5xx is retried (after
//! `backoff`, then twice that, and so on, at most [`MAX_BACKOFF`]); any other status fails at
//! once.

use std::time::Duration;

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use mo_core::event::Event;
use mo_core::{Error, Result};
use reqwest::StatusCode;
use reqwest::header::{HeaderName, HeaderValue};
use sha2::Sha256;

use super::ActionOutcome;
use super::template::Template;

/// Retries after the first attempt by default.
pub const DEFAULT_RETRIES: u32 = 3;
/// The delay before the first retry by default.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Each attempt's timeout by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The header carrying the HMAC signature by default.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Mo-Signature";

/// What a webhook sends: its body and headers (templates) and how it signs them. Its `Debug`
/// does not show the secret.
#[derive(Clone)]
pub struct WebhookPayload {
    body: Option<Template>,
    content_type: HeaderValue,
    json: bool,
    headers: Vec<(HeaderName, Template)>,
    secret: Option<Vec<u8>>,
    signature_header: HeaderName,
}

impl std::fmt::Debug for WebhookPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookPayload")
            .field("body", &self.body)
            .field("content_type", &self.content_type)
            .field("headers", &self.headers)
            .field("signed", &self.secret.is_some())
            .field("signature_header", &self.signature_header)
            .finish()
    }
}

impl Default for WebhookPayload {
    /// The event as JSON, unsigned.
    fn default() -> Self {
        WebhookPayload {
            body: None,
            content_type: HeaderValue::from_static("application/json"),
            json: true,
            headers: Vec::new(),
            secret: None,
            signature_header: HeaderName::from_static("x-mo-signature"),
        }
    }
}

impl WebhookPayload {
    /// Check the configured parts; the error names the field and what is wrong with it.
    pub fn new(
        body: Option<&str>,
        content_type: Option<&str>,
        headers: &BTreeMap<String, String>,
        secret: Option<&str>,
        signature_header: Option<&str>,
    ) -> std::result::Result<Self, (&'static str, String)> {
        let mut payload = WebhookPayload::default();
        if let Some(body) = body {
            payload.body = Some(Template::parse(body).map_err(|e| ("body", e.to_string()))?);
        }
        if let Some(kind) = content_type {
            payload.content_type = HeaderValue::from_str(kind)
                .map_err(|_| ("content_type", format!("`{kind}` is not a header value")))?;
            let essence = kind.split(';').next().unwrap_or_default().trim();
            payload.json = essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json");
        }
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ("headers", format!("`{name}` is not a header name")))?;
            if header == reqwest::header::CONTENT_TYPE {
                return Err(("headers", "set the content type with `content_type`".into()));
            }
            let template =
                Template::parse(value).map_err(|e| ("headers", format!("`{name}`: {e}")))?;
            payload.headers.push((header, template));
        }
        if let Some(secret) = secret {
            if secret.is_empty() {
                return Err(("secret", "the secret is empty".into()));
            }
            payload.secret = Some(secret.as_bytes().to_vec());
        }
        if let Some(name) = signature_header {
            payload.signature_header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ("signature_header", format!("`{name}` is not a header name")))?;
        }
        Ok(payload)
    }

    /// The body sent for `event`.
    pub fn render_body(&self, event: &Event) -> Vec<u8> {
        match &self.body {
            None => serde_json::to_vec(&WebhookAction::body(event)).unwrap_or_default(),
            Some(t) if self.json => t.render_with(event, json_escape).into_bytes(),
            Some(t) => t.render(event).into_bytes(),
        }
    }

    /// The headers sent with `body` for `event`: the configured ones, then the signature.
    pub fn render_headers(&self, event: &Event, body: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(self.headers.len() + 1);
        for (name, template) in &self.headers {
            let value: String = template
                .render(event)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if let Ok(value) = HeaderValue::from_str(&value) {
                out.push((name.clone(), value));
            }
        }
        if let Some(secret) = &self.secret
            && let Ok(value) = HeaderValue::from_str(&signature(secret, body))
        {
            out.push((self.signature_header.clone(), value));
        }
        out
    }
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` keyed with `secret`, lowercase hex.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Append `value` escaped as the inside of a JSON string.
fn json_escape(value: &str, out: &mut String) {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    out.push_str(
        quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or_default(),
    );
}

/// A webhook to POST events to.
#[derive(Debug, Clone)]
pub struct WebhookAction {
    url: reqwest::Url,
    retries: u32,
    backoff: Duration,
    client: reqwest::Client,
    payload: WebhookPayload,
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
            payload: WebhookPayload::default(),
        })
    }

    /// The same webhook sending `payload` (a templated body and headers, a signature).
    pub fn with_payload(mut self, payload: WebhookPayload) -> Self {
        self.payload = payload;
        self
    }

    /// The JSON body sent for an event when no `body` template is configured.
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
        let body = self.payload.render_body(event);
        let headers = self.payload.render_headers(event, &body);
        let mut delay = self.backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut request = self.client.post(self.url.clone()).header(
                reqwest::header::CONTENT_TYPE,
                self.payload.content_type.clone(),
            );
            for (name, value) in &headers {
                request = request.header(name.clone(), value.clone());
            }
            let result = request.body(body.clone()).send().await;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mo_core::event::EventSource;
    use mo_core::scan::Severity;

    use super::*;

    fn event() -> Event {
        Event {
            id: 7,
            time_ns: 0,
            last_ns: 0,
            device: "web1".into(),
            source: EventSource::External,
            severity: Severity::Critical,
            message: "disk \"sda\" failed\r\nX-Evil: 1".into(),
            context: vec![],
            count: 1,
            suppressed: false,
            acked_by: None,
            acked_ns: None,
            node: None,
        }
    }

    #[test]
    fn a_json_template_stays_json_and_headers_stay_one_line() {
        let headers = BTreeMap::from([("X-Title".to_owned(), "{device}: {message}".to_owned())]);
        let payload = WebhookPayload::new(
            Some(r#"{{"text": "{device} {severity}: {message}"}}"#),
            None,
            &headers,
            Some("s3cret"),
            None,
        )
        .unwrap();
        let body = payload.render_body(&event());
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value["text"],
            "web1 critical: disk \"sda\" failed\r\nX-Evil: 1"
        );
        let headers = payload.render_headers(&event(), &body);
        assert_eq!(headers[0].1, "web1: disk \"sda\" failed  X-Evil: 1");
        assert_eq!(headers[1].0, "x-mo-signature");
        assert_eq!(headers[1].1.to_str().unwrap(), signature(b"s3cret", &body));
        assert!(!format!("{payload:?}").contains("s3cret"));
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bad_parts_name_their_field() {
        let none = BTreeMap::new();
        let bad = |b, c, h: &BTreeMap<String, String>, s, n| {
            WebhookPayload::new(b, c, h, s, n).unwrap_err().0
        };
        assert_eq!(bad(Some("{nope}"), None, &none, None, None), "body");
        assert_eq!(bad(None, Some("a\nb"), &none, None, None), "content_type");
        let h = BTreeMap::from([("bad name".to_owned(), "x".to_owned())]);
        assert_eq!(bad(None, None, &h, None, None), "headers");
        assert_eq!(bad(None, None, &none, Some(""), None), "secret");
        assert_eq!(
            bad(None, None, &none, None, Some("a b")),
            "signature_header"
        );
        let plain =
            WebhookPayload::new(Some("{message}"), Some("text/plain"), &none, None, None).unwrap();
        assert_eq!(plain.render_body(&event()), event().message.into_bytes());
    }
}
