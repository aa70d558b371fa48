//! Redfish power: `ComputerSystem.Reset` with a ResetType the system advertises, then polling
//! `PowerState` until the target state or a timeout (BMCs, and sushy-tools, lag seconds).
//!
//! Address: `redfish://USER@BMC[:PORT]/Systems/ID[?PARAMS]` (the path may also be written
//! `/redfish/v1/Systems/ID`). HTTPS by default; `tls=0` speaks plain HTTP (sushy-emulator in
//! tests). BMC certificates are usually self-signed: `fingerprint=SHA256HEX` pins the server
//! certificate (colons allowed), `ca=/path/bundle.pem` trusts a CA bundle instead of the public
//! roots. `wait=60s` bounds the polling, `poll=1s` its interval, `timeout=10s` each HTTP request.
//! The password is `credentials.password`. A session (`X-Auth-Token`) is opened through the
//! SessionService when the service root links one; otherwise basic authentication is used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mo_core::power::{PowerAction, PowerCapabilities, PowerController, PowerState};
use mo_core::{Error, Result};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::address::{self, DriverOptions, Query};

/// The JSON answers, read without I/O (public for the fuzz target).
#[doc(hidden)]
pub mod json;

const PARAMETERS: &[&str] = &["tls", "fingerprint", "ca", "wait", "poll", "timeout"];

/// A Redfish ComputerSystem's power.
#[derive(Debug)]
pub struct RedfishController {
    address: String,
    base: Url,
    system_path: String,
    user: String,
    password: Option<mo_core::secret::Secret>,
    http: reqwest::Client,
    wait: Duration,
    poll: Duration,
    timeout: Duration,
    /// `None`: not yet decided; `Some(None)`: basic auth; `Some(Some(token))`: a session.
    session: Mutex<Option<Option<String>>>,
    requests: AtomicU64,
}

/// What the ResetTypes mean, in order of preference for each action.
fn reset_types(action: PowerAction) -> &'static [&'static str] {
    match action {
        PowerAction::On => &["On", "ForceOn"],
        PowerAction::Off => &["ForceOff"],
        PowerAction::SoftOff => &["GracefulShutdown"],
        PowerAction::Reset => &["ForceRestart", "GracefulRestart", "PowerCycle"],
        PowerAction::Cycle => &["PowerCycle"],
    }
}

/// `PowerState` text to a state (public for the fuzz target).
#[doc(hidden)]
pub fn parse_power_state(text: &str) -> PowerState {
    match text {
        "On" => PowerState::On,
        "Off" => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

impl RedfishController {
    /// Read a `redfish:` address (see the module docs).
    pub fn from_url(url: &Url, text: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_no_fragment(url, text)?;
        let query = Query::parse(url, text, PARAMETERS)?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            address::bad(text, "no BMC host; write redfish://USER@BMC/Systems/ID")
        })?;
        if url.password().is_some() {
            return Err(address::bad(
                text,
                "no passwords in addresses; secrets go in the credentials",
            ));
        }
        let path = url.path().trim_end_matches('/');
        let rest = path.strip_prefix("/redfish/v1").unwrap_or(path);
        let id = rest
            .strip_prefix("/Systems/")
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| address::bad(text, "the path must be /Systems/ID"))?;
        let tls = query
            .parsed("tls", |v| match v {
                "1" | "yes" | "true" => Ok(true),
                "0" | "no" | "false" => Ok(false),
                _ => Err("0 or 1".to_owned()),
            })?
            .unwrap_or(true);
        let scheme = if tls { "https" } else { "http" };
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let base = Url::parse(&format!("{scheme}://{host}{port}/"))
            .map_err(|e| address::bad(text, format!("bad BMC host: {e}")))?;
        let timeout = query
            .parsed("timeout", super::parse_duration)?
            .unwrap_or(Duration::from_secs(10));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        let fingerprint = query.single("fingerprint")?;
        let ca = query.single("ca")?;
        if let Some(fp) = fingerprint {
            if ca.is_some() {
                return Err(address::bad(text, "give `fingerprint` or `ca`, not both"));
            }
            let pin = parse_fingerprint(fp).ok_or_else(|| {
                address::bad(
                    text,
                    "`fingerprint` must be 64 hex digits (SHA-256 of the certificate)",
                )
            })?;
            let tls = mo_core::tls::pinned_config(pin)
                .map_err(|e| address::bad(text, format!("cannot set up TLS: {e}")))?;
            builder = builder.use_preconfigured_tls(tls);
        } else if let Some(ca) = ca {
            let path = address::resolve(ca.into(), text, opts)?;
            let pem = std::fs::read(&path).map_err(|e| {
                Error::io(
                    format!("reading CA bundle {} for {text}", path.display()),
                    e,
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                address::bad(text, format!("bad CA bundle {}: {e}", path.display()))
            })?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| address::bad(text, format!("cannot set up HTTP: {e}")))?;
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        if !user.is_empty() && opts.credentials.password.is_none() {
            return Err(address::bad(
                text,
                format!("no password for Redfish user {user}"),
            ));
        }
        Ok(Self {
            address: address::display(url),
            base,
            system_path: format!("/redfish/v1/Systems/{id}"),
            user,
            password: opts.credentials.password.clone(),
            http,
            wait: query
                .parsed("wait", super::parse_duration)?
                .unwrap_or(Duration::from_secs(60)),
            poll: query
                .parsed("poll", super::parse_duration)?
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(50)),
            timeout,
            session: Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// How many HTTP requests this controller has sent.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| Error::Protocol {
            peer: self.address.clone(),
            reason: format!("bad link `{path}`: {e}"),
        })
    }

    fn http_error(&self, e: reqwest::Error, what: &str) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                what: format!("{what} from {}", self.address),
                after: self.timeout,
            }
        } else if e.is_connect() {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = format!("{reason}: {s}");
                source = s.source();
            }
            Error::Connect {
                address: self.address.clone(),
                reason,
            }
        } else {
            Error::Protocol {
                peer: self.address.clone(),
                reason: format!("{what}: {e}"),
            }
        }
    }

    /// Decide between a session and basic authentication (once).
    async fn auth(&self) -> Result<Option<String>> {
        let mut session = self.session.lock().await;
        if let Some(decided) = session.as_ref() {
            return Ok(decided.clone());
        }
        let mut token = None;
        if !self.user.is_empty() {
            let root: Value = self.send(Method::GET, "/redfish/v1/", None, None).await?.1;
            if let Some(path) = json::session_path(&root) {
                let body = serde_json::json!({
                    "UserName": self.user,
                    "Password": self.password.as_ref().map(|p| p.expose()).unwrap_or_default(),
                });
                self.requests.fetch_add(1, Ordering::Relaxed);
                let response = self
                    .http
                    .post(self.url(&path)?)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| self.http_error(e, "opening a session"))?;
                match response.status() {
                    s if s.is_success() => {
                        token = response
                            .headers()
                            .get("X-Auth-Token")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                    }
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        return Err(self.refused());
                    }
                    // Sessions not usable here: basic authentication it is.
                    _ => {}
                }
            }
        }
        *session = Some(token.clone());
        Ok(token)
    }

    fn refused(&self) -> Error {
        Error::Auth {
            target: self.address.clone(),
            reason: format!(
                "the BMC refused user {}",
                if self.user.is_empty() {
                    "(none)"
                } else {
                    &self.user
                }
            ),
        }
    }

    /// One request; the status and the JSON body (Null when empty).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self.http.request(method.clone(), self.url(path)?);
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        } else if !self.user.is_empty() {
            request = request.basic_auth(&self.user, self.password.as_ref().map(|p| p.expose()));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let what = format!("{method} {path}");
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|e| self.http_error(e, &what))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.http_error(e, &what))?;
        let json = json::body(&bytes);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.refused());
        }
        if !status.is_success() {
            let message = json::error_message(&json)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Err(Error::Protocol {
                peer: self.address.clone(),
                reason: format!("{what} answered {status}{message}"),
            });
        }
        Ok((status, json))
    }

    /// An authenticated request; a session that expired is renewed once. A read (GET) that a BMC
    /// answers with a transient server error (500, 502, 503, 504 — BMCs, and sushy-tools with its
    /// "database is locked", do that under concurrent requests) is tried again twice, after
    /// 200 ms and 600 ms; actions are never repeated.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let mut delays = [Duration::from_millis(200), Duration::from_millis(600)].into_iter();
        loop {
            match self.call_once(method.clone(), path, body).await {
                Err(Error::Protocol { reason, .. })
                    if method == Method::GET && is_transient(&reason) =>
                {
                    match delays.next() {
                        Some(d) => {
                            tracing::debug!(peer = %self.address, "{reason}; trying again");
                            tokio::time::sleep(d).await;
                        }
                        None => {
                            return Err(Error::Protocol {
                                peer: self.address.clone(),
                                reason: format!("{reason} (three times)"),
                            });
                        }
                    }
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let token = self.auth().await?;
        match self
            .send(method.clone(), path, body, token.as_deref())
            .await
        {
            Err(Error::Auth { .. }) if token.is_some() => {
                *self.session.lock().await = None;
                let token = self.auth().await?;
                Ok(self.send(method, path, body, token.as_deref()).await?.1)
            }
            other => Ok(other?.1),
        }
    }

    async fn system(&self) -> Result<Value> {
        self.call(Method::GET, &self.system_path, None).await
    }

    /// The reset target and the ResetTypes the system allows.
    async fn reset_info(&self, system: &Value) -> Result<(String, Vec<String>)> {
        let json::ResetAction {
            target,
            mut allowed,
            action_info,
        } = json::reset_action(system, &self.system_path).ok_or_else(|| Error::Unsupported {
            operation: "ComputerSystem.Reset",
            what: self.address.clone(),
        })?;
        if allowed.is_empty()
            && let Some(info) = action_info
        {
            let info = self.call(Method::GET, &info, None).await?;
            allowed = json::action_info_reset_types(&info);
        }
        if allowed.is_empty() {
            allowed = ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
                .map(str::to_owned)
                .to_vec();
        }
        Ok((target, allowed))
    }

    async fn reset(&self, target: &str, reset_type: &str) -> Result<()> {
        let body = serde_json::json!({ "ResetType": reset_type });
        self.call(Method::POST, target, Some(&body))
            .await
            .map(|_| ())
    }

    /// Poll until `want` or the wait runs out.
    async fn wait_for(&self, want: PowerState, action: PowerAction) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            if self.status().await? == want {
                return Ok(());
            }
            if tokio::time::Instant::now() + self.poll > deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "{} to reach power state {want} after {action}",
                        self.address
                    ),
                    after: self.wait,
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

/// 64 hex digits (colons and spaces ignored) to 32 bytes: [`mo_core::tls::parse_fingerprint`],
/// the notation every pin of mo uses.
pub use mo_core::tls::parse_fingerprint;

#[async_trait]
impl PowerController for RedfishController {
    fn address(&self) -> &str {
        &self.address
    }

    fn capabilities(&self) -> PowerCapabilities {
        PowerCapabilities::ALL
    }

    async fn status(&self) -> Result<PowerState> {
        let system = self.system().await?;
        Ok(json::power_state(&system))
    }

    async fn perform(&self, action: PowerAction) -> Result<()> {
        let system = self.system().await?;
        let now = json::power_state(&system);
        let (target, allowed) = self.reset_info(&system).await?;
        let pick = |action| {
            reset_types(action)
                .iter()
                .find(|t| allowed.iter().any(|a| a == *t))
                .copied()
        };
        let unsupported = |action: PowerAction| Error::Unsupported {
            operation: action.name(),
            what: format!(
                "{} (allowed ResetTypes: {})",
                self.address,
                allowed.join(", ")
            ),
        };
        match action {
            PowerAction::On | PowerAction::Off | PowerAction::SoftOff => {
                let want = action.target_state().unwrap_or(PowerState::Unknown);
                if now == want {
                    return Ok(());
                }
                let kind = pick(action).ok_or_else(|| unsupported(action))?;
                self.reset(&target, kind).await?;
                self.wait_for(want, action).await
            }
            PowerAction::Reset => {
                let kind = pick(action).ok_or_else(|| unsupported(action))?;
                self.reset(&target, kind).await?;
                self.wait_for(PowerState::On, action).await
            }
            PowerAction::Cycle => {
                if let Some(kind) = pick(PowerAction::Cycle).filter(|_| now == PowerState::On) {
                    self.reset(&target, kind).await?;
                    return self.wait_for(PowerState::On, action).await;
                }
                if now != PowerState::Off {
                    let off = pick(PowerAction::Off).ok_or_else(|| unsupported(action))?;
                    self.reset(&target, off).await?;
                    self.wait_for(PowerState::Off, action).await?;
                }
                let on = pick(PowerAction::On).ok_or_else(|| unsupported(action))?;
                self.reset(&target, on).await?;
                self.wait_for(PowerState::On, action).await
            }
        }
    }
}

/// Whether an error text from [`RedfishController::send`] names a transient server error.
fn is_transient(reason: &str) -> bool {
    [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT,
    ]
    .iter()
    .any(|code| reason.contains(&format!(" answered {code}")))
}

#[cfg(test)]
mod transient_tests {
    use super::is_transient;

    #[test]
    fn only_server_errors_that_pass_are_transient() {
        assert!(is_transient(
            "GET /redfish/v1/Systems/1 answered 500 Internal Server Error: database is locked"
        ));
        assert!(is_transient("GET /x answered 503 Service Unavailable"));
        assert!(!is_transient("GET /x answered 404 Not Found"));
        assert!(!is_transient(
            "GET /x answered 400 Bad Request: answered 500"
        ));
    }
}
