//! mo-client: the client of mo's HTTP/WebSocket API (`mod --http ADDR`).
//!
//! [`Client`] has one typed method per API route (devices, who and sessions, power, the record
//! log, events, users) and [`Client::attach`], which opens a console over the WebSocket attach
//! endpoint and returns the same [`mo_core::facade::ConsoleHandle`] an embedded console gives, so
//! programs and bindings drive local and remote consoles alike (`read`, `write`, `send_line`,
//! `expect`, `send_break`, `who`, `close`).
//!
//! Errors are [`mo_core::Error`]s: the API's error codes map to variants (see [`mod@error`]), so
//! `not_found` is [`mo_core::Error::NotFound`], `forbidden` is [`mo_core::Error::Denied`], and so
//! on.
//!
//! ```no_run
//! use std::time::Duration;
//! use mo_client::{Client, ExpectPattern, Mode};
//!
//! # async fn demo() -> mo_client::Result<()> {
//! let client = Client::new("http://127.0.0.1:8022", "mo_TOKEN")?;
//! for d in client.devices().await? {
//!     println!("{} {} ({} viewers)", d.name, d.state, d.viewers);
//! }
//! let console = client.attach("web01", Mode::Attach, Some(0)).await?;
//! console.send_line("uname -a").await?;
//! let m = console.expect(&[ExpectPattern::regex(r"\$ $")?], Duration::from_secs(10)).await?;
//! println!("{}", m.before);
//! console.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The same console in this process, without a daemon, is `mo_core::open_local` (mo-core's and
//! mo-drivers' crate docs start with it); both give a [`ConsoleHandle`].
//!
//! The types a program needs are at the root: [`Client`], the API's types ([`Device`], [`Event`],
//! [`PowerAction`], …) and, from mo-core, [`ConsoleHandle`], [`Mode`], [`ExpectPattern`],
//! [`Error`] and [`Result`].

mod access;
mod attach;
pub mod error;
mod events;
mod extra;
mod tokens;
mod trust;
pub mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

pub use attach::RemoteAttachment;
// What `Client::attach` returns and how to expect on it, from mo-core, so one import serves.
pub use mo_core::automation::{ExpectMatch, ExpectPattern};
pub use mo_core::console::Mode;
pub use mo_core::facade::{ConsoleHandle, Output};
pub use mo_core::{Error, Result};
// The parsers of what the daemon sends, public for the fuzz targets (`fuzz/`); not a stable API.
#[doc(hidden)]
pub use attach::{Frame, WireViewer, parse_frame};
pub use events::EventStream;
#[doc(hidden)]
pub use events::parse_event;
pub use mo_api::{Me, NoteCreated, Ready};
/// The JSON value type (device settings given as JSON).
pub use serde_json::Value;
pub use trust::Trust;
pub use types::{ClusterConsole, ClusterNode, ClusterStatus, NodeState};
pub use types::{DAEMON_HOST, HostInfo, HostInfoKind};
pub use types::{
    Device, DeviceState, Event, EventQuery, GangReport, Health, HealthStatus, LogQuery, PlayReport,
    PowerAction, PowerReport, PowerResult, PowerState, RoleInfo, SearchHit, SessionInfo, Settings,
    Severity, User, VerifyReport, Viewer, ViewerRole, parse_power_action,
};
pub use types::{
    DeviceGroup, DeviceGroupChange, DeviceGroupDetail, Grant, Maintenance, SshKey, UserGroup,
};
pub use types::{DiscoverCredential, DiscoverReport, DiscoverRequest, DiscoveredHost};
pub use types::{LineSetting, LineWord, Lines, Modem, SignalReport, SignalRequest};

/// How long a REST call may take by default (power actions and log searches can be slow).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one mo daemon's API. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    /// A user and password (HTTP Basic) instead of the token ([`Client::with_password`]).
    password: Option<(String, String)>,
    http: reqwest::Client,
    /// The TLS configuration of `https://` servers trusted by a CA bundle or a pin, shared by
    /// REST calls and WebSockets; `None`: the public web roots.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("custom_tls", &self.tls.is_some())
            .finish()
    }
}

/// What a request is about, for error messages.
struct Req<'a> {
    method: Method,
    segments: &'a [&'a str],
    query: Vec<(&'a str, String)>,
    body: Option<Value>,
    device: Option<&'a str>,
}

impl Client {
    /// A client of the daemon at `base_url` (`http://host:port`, or `https://…`) using API token
    /// `token` (from `mo token add`; empty: no credentials, enough for `health`). An `https://`
    /// server must have a certificate the public web roots vouch for; see [`Client::with_trust`]
    /// for a daemon's own CA or a pinned certificate.
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<Client> {
        Client::with_trust(base_url, token, Trust::PublicRoots)
    }

    /// A client of the daemon at `base_url` that trusts `https://` servers as `trust` says: the
    /// public web roots, a CA bundle (`--ca FILE`) or one certificate by its SHA-256 fingerprint
    /// (`--pin SHA256`, as `mod --tls-self-signed` prints it). The same trust covers the
    /// WebSockets (`wss://`) of [`Client::attach`] and [`Client::event_stream`]. A CA or a pin with
    /// an `http://` address is refused: there is no certificate to check.
    pub fn with_trust(base_url: &str, token: impl Into<String>, trust: Trust) -> Result<Client> {
        let base = Url::parse(base_url).map_err(|e| Error::BadAddress {
            address: base_url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::BadAddress {
                address: base_url.to_string(),
                reason: "the server address must be http://HOST:PORT or https://HOST:PORT".into(),
            });
        }
        let tls = trust.client_config()?.map(Arc::new);
        if tls.is_some() && base.scheme() != "https" {
            return Err(Error::BadAddress {
                address: base_url.to_string(),
                reason: format!(
                    "{} is for https:// servers; this address is plain http",
                    trust.describe()
                ),
            });
        }
        let mut builder = reqwest::Client::builder().timeout(DEFAULT_TIMEOUT);
        if let Some(config) = &tls {
            builder = builder.use_preconfigured_tls(rustls::ClientConfig::clone(config));
        }
        let http = builder.build().map_err(|e| Error::Connect {
            address: base_url.to_string(),
            reason: format!("cannot set up the HTTP client: {e}"),
        })?;
        let token = token.into();
        Ok(Client {
            base,
            token: (!token.is_empty()).then_some(token),
            password: None,
            http,
            tls,
        })
    }

    /// The same client authenticating REST calls with `user`'s password (HTTP Basic) instead
    /// of a token: what [`Client::add_token`] needs to make a user's first token (`mo login`).
    pub fn with_password(mut self, user: &str, password: &str) -> Client {
        self.password = Some((user.to_string(), password.to_string()));
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `base` + `/seg/seg/...` (each segment percent-encoded).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    async fn send(&self, req: Req<'_>) -> Result<reqwest::Response> {
        let url = self.url(req.segments);
        let what = format!("{} {}", req.method, url.path());
        let mut rb = self.http.request(req.method.clone(), url);
        if let Some((user, password)) = &self.password {
            rb = rb.basic_auth(user, Some(password));
        } else if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }
        let started = Instant::now();
        let server = self.server();
        let resp = rb
            .send()
            .await
            .map_err(|e| error::transport(&server, &what, &e, started.elapsed()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(error::from_answer(
            &server,
            &what,
            req.device,
            status.as_u16(),
            &body,
            started.elapsed(),
        ))
    }

    async fn json<T: DeserializeOwned>(&self, req: Req<'_>) -> Result<T> {
        let what = format!("{} /{}", req.method, req.segments.join("/"));
        let server = self.server();
        let resp = self.send(req).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| error::transport(&server, &what, &e, Duration::ZERO))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            peer: server,
            reason: format!("{what}: the answer is not the JSON expected: {e}"),
        })
    }

    fn get<'a>(segments: &'a [&'a str], device: Option<&'a str>) -> Req<'a> {
        Req {
            method: Method::GET,
            segments,
            query: Vec::new(),
            body: None,
            device,
        }
    }

    fn post<'a>(segments: &'a [&'a str], body: Value, device: Option<&'a str>) -> Req<'a> {
        Req {
            method: Method::POST,
            segments,
            query: Vec::new(),
            body: Some(body),
            device,
        }
    }

    /// `GET /api/v1/health` (no credentials needed).
    pub async fn health(&self) -> Result<Health> {
        self.json(Self::get(&["api", "v1", "health"], None)).await
    }

    /// `GET /api/v1/cluster`: the nodes of the daemon's site (`mod --cluster`), their consoles
    /// and when each was last heard (`enabled: false` when the daemon is not in a cluster).
    pub async fn cluster(&self) -> Result<ClusterStatus> {
        self.json(Self::get(&["api", "v1", "cluster"], None)).await
    }

    /// The devices the caller may see.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        self.json(Self::get(&["api", "v1", "devices"], None)).await
    }

    /// One device, with its settings. [`Error::NotFound`] if it does not exist or is not visible.
    pub async fn device(&self, name: &str) -> Result<Device> {
        self.json(Self::get(&["api", "v1", "devices", name], Some(name)))
            .await
    }

    /// Add a device. `settings` is a JSON object of `mo device add` options (`on_demand`,
    /// `description`, `power`, …, the fields of [`mo_api::NewDevice`]; `Value::Null` for none).
    /// An object that is no such body (an unknown option, a wrong type) is an
    /// [`Error::BadSpec`] before anything is sent.
    pub async fn add_device(&self, name: &str, url: &str, settings: Value) -> Result<Device> {
        let mut body = match settings {
            Value::Object(map) => Value::Object(map),
            _ => json!({}),
        };
        body["name"] = json!(name);
        body["url"] = json!(url);
        let device: mo_api::NewDevice =
            serde_json::from_value(body.clone()).map_err(|e| Error::BadSpec {
                what: "device settings",
                input: body.to_string(),
                reason: e.to_string(),
            })?;
        self.add(&device).await
    }

    /// Add a device described by `device` (name, address, settings).
    pub async fn add(&self, device: &mo_api::NewDevice) -> Result<Device> {
        let body = to_json(device)?;
        self.json(Self::post(
            &["api", "v1", "devices"],
            body,
            Some(&device.name),
        ))
        .await
    }

    /// Replace a device's address and settings (`mo device set`): `device` is the whole
    /// device, as for [`Client::add`]; settings left out take their defaults.
    pub async fn replace_device(&self, device: &mo_api::NewDevice) -> Result<Device> {
        let body = to_json(device)?;
        let segments = ["api", "v1", "devices", device.name.as_str()];
        let mut req = Self::post(&segments, body, Some(&device.name));
        req.method = Method::PUT;
        self.json(req).await
    }

    /// Remove a device.
    pub async fn remove_device(&self, name: &str) -> Result<()> {
        let segments = ["api", "v1", "devices", name];
        let mut req = Self::get(&segments, Some(name));
        req.method = Method::DELETE;
        self.send(req).await.map(|_| ())
    }

    /// Who is on a console.
    pub async fn who(&self, name: &str) -> Result<Vec<Viewer>> {
        self.json(Self::get(
            &["api", "v1", "devices", name, "who"],
            Some(name),
        ))
        .await
    }

    /// Every viewer of every device the caller may see.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        self.json(Self::get(&["api", "v1", "sessions"], None)).await
    }

    /// A host's CPUs, memory, file systems or processes as a table: `name` is
    /// [`DAEMON_HOST`] (`mod`, the daemon's own host) or an agent's name. Needs `host.show`.
    pub async fn host_info(&self, name: &str, what: HostInfoKind) -> Result<HostInfo> {
        self.json(Self::get(
            &["api", "v1", "hosts", name, what.name()],
            Some(name),
        ))
        .await
    }

    /// The power state of a device (each controller).
    pub async fn power_status(&self, name: &str) -> Result<PowerReport> {
        self.json(Self::get(
            &["api", "v1", "devices", name, "power"],
            Some(name),
        ))
        .await
    }

    /// Switch a device's power; the report says each controller's state afterwards.
    pub async fn power(&self, name: &str, action: PowerAction) -> Result<PowerReport> {
        let body = to_json(&mo_api::PowerRequest { action })?;
        self.json(Self::post(
            &["api", "v1", "devices", name, "power"],
            body,
            Some(name),
        ))
        .await
    }

    /// Raise, drop or toggle DTR and/or RTS of a device's link (`POST
    /// /api/v1/devices/{name}/signals`; needs `break`, and the write lock free or the caller's).
    pub async fn set_signals(&self, name: &str, request: &SignalRequest) -> Result<SignalReport> {
        let body = to_json(request)?;
        self.json(Self::post(
            &["api", "v1", "devices", name, "signals"],
            body,
            Some(name),
        ))
        .await
    }

    /// The rendered record log (a timestamp per line). [`LogQuery::limit`] is the tail length.
    pub async fn log(&self, name: &str, query: &LogQuery) -> Result<String> {
        let segments = ["api", "v1", "devices", name, "log"];
        let mut req = Self::get(&segments, Some(name));
        push_range(&mut req.query, query);
        if let Some(n) = query.limit {
            req.query.push(("tail", n.to_string()));
        }
        self.text(req).await
    }

    /// The answer to `req` as text.
    async fn text(&self, req: Req<'_>) -> Result<String> {
        let what = format!("{} /{}", req.method, req.segments.join("/"));
        let server = self.server();
        let resp = self.send(req).await?;
        resp.text()
            .await
            .map_err(|e| error::transport(&server, &what, &e, Duration::ZERO))
    }

    /// Lines of the record log matching `regex`. [`LogQuery::limit`] caps the hits.
    pub async fn log_search(
        &self,
        name: &str,
        regex: &str,
        query: &LogQuery,
    ) -> Result<Vec<SearchHit>> {
        let segments = ["api", "v1", "devices", name, "log", "search"];
        let mut req = Self::get(&segments, Some(name));
        req.query.push(("q", regex.to_string()));
        push_range(&mut req.query, query);
        if let Some(n) = query.limit {
            req.query.push(("limit", n.to_string()));
        }
        self.json(req).await
    }

    /// Check the record log's hash chain and framing.
    pub async fn log_verify(&self, name: &str) -> Result<VerifyReport> {
        self.json(Self::post(
            &["api", "v1", "devices", name, "log", "verify"],
            json!({}),
            Some(name),
        ))
        .await
    }

    /// Compare the record log's copies on every node of the daemon's site (`mod --cluster …
    /// --share-devices`): each divergence is a problem naming the node, device and record.
    pub async fn log_verify_replicas(&self, name: &str) -> Result<VerifyReport> {
        let segments = ["api", "v1", "devices", name, "log", "verify"];
        let mut req = Self::post(&segments, json!({}), Some(name));
        req.query.push(("replicas", "true".to_string()));
        self.json(req).await
    }

    /// Recent events, oldest first.
    pub async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let mut req = Self::get(&["api", "v1", "events"], query.device.as_deref());
        if let Some(d) = &query.device {
            req.query.push(("device", d.clone()));
        }
        if let Some(n) = query.limit {
            req.query.push(("limit", n.to_string()));
        }
        if query.unacked {
            req.query.push(("unacked", "true".into()));
        }
        self.json(req).await
    }

    /// The former name of [`Client::list_events`] (the same call), kept for existing code.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        self.list_events(query).await
    }

    /// Raise an event from outside (`POST /api/v1/events`, needs `events.raise` on the device):
    /// it goes through the daemon's rules like its own events. `source` is `manual` or
    /// `external`; returns once the daemon's event manager has it.
    pub async fn raise_event(
        &self,
        device: &str,
        severity: &str,
        message: &str,
        source: &str,
        context: &[String],
    ) -> Result<()> {
        let _: Value = self
            .json(Self::post(
                &["api", "v1", "events"],
                json!({
                    "device": device,
                    "severity": severity,
                    "message": message,
                    "source": source,
                    "context": context,
                }),
                Some(device),
            ))
            .await?;
        Ok(())
    }

    /// Acknowledge an event; returns it as it is now.
    pub async fn ack_event(&self, id: u64) -> Result<Event> {
        let id = id.to_string();
        self.json(Self::post(
            &["api", "v1", "events", &id, "ack"],
            json!({}),
            None,
        ))
        .await
    }

    /// Events as they occur (of `device`, or of every device the caller may see). Dropping the
    /// stream closes the WebSocket.
    pub async fn event_stream(&self, device: Option<&str>) -> Result<EventStream> {
        let mut url = self.url(&["api", "v1", "events", "stream"]);
        if let Some(d) = device {
            url.query_pairs_mut().append_pair("device", d);
        }
        events::open(self, url).await
    }

    /// The users (needs `admin`).
    pub async fn users(&self) -> Result<Vec<User>> {
        self.json(Self::get(&["api", "v1", "users"], None)).await
    }

    /// Add a user, with a password or none (needs `admin`).
    pub async fn add_user(&self, name: &str, password: Option<&str>) -> Result<User> {
        let body = to_json(&mo_api::NewUser {
            name: name.to_string(),
            password: password.map(str::to_string),
        })?;
        self.json(Self::post(&["api", "v1", "users"], body, None))
            .await
    }

    /// Remove a user (needs `admin`).
    pub async fn remove_user(&self, name: &str) -> Result<()> {
        let segments = ["api", "v1", "users", name];
        let mut req = Self::get(&segments, None);
        req.method = Method::DELETE;
        self.send(req).await.map(|_| ())
    }

    /// Set a user's password (needs `admin`).
    pub async fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let body = to_json(&mo_api::NewPassword {
            password: password.to_string(),
        })?;
        let segments = ["api", "v1", "users", name, "password"];
        let mut req = Self::post(&segments, body, None);
        req.method = Method::PUT;
        self.send(req).await.map(|_| ())
    }

    /// A user's SSH keys (needs `admin`).
    pub async fn ssh_keys(&self, name: &str) -> Result<Vec<mo_api::SshKey>> {
        self.json(Self::get(&["api", "v1", "users", name, "keys"], None))
            .await
    }

    /// Add an SSH public key (an OpenSSH line) to a user (needs `admin`).
    pub async fn add_ssh_key(&self, name: &str, openssh_line: &str) -> Result<mo_api::SshKey> {
        let body = to_json(&mo_api::NewSshKey {
            key: openssh_line.to_string(),
        })?;
        self.json(Self::post(
            &["api", "v1", "users", name, "keys"],
            body,
            None,
        ))
        .await
    }

    /// Remove a user's SSH key by fingerprint (`SHA256:…`; needs `admin`).
    pub async fn remove_ssh_key(&self, name: &str, fingerprint: &str) -> Result<()> {
        let segments = ["api", "v1", "users", name, "keys"];
        let mut req = Self::get(&segments, None);
        req.method = Method::DELETE;
        req.query.push(("fingerprint", fingerprint.to_string()));
        self.send(req).await.map(|_| ())
    }

    /// The roles (needs `admin`).
    pub async fn roles(&self) -> Result<Vec<RoleInfo>> {
        self.json(Self::get(&["api", "v1", "roles"], None)).await
    }

    /// Send one command to many consoles (names, globs, `@GROUP`s; needs `gang` and each
    /// write lock): each device's answer, the majority and the divergent devices.
    pub async fn gang(&self, targets: &[&str], command: &str) -> Result<GangReport> {
        let body = to_json(&mo_api::GangRequest {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            command: command.to_string(),
        })?;
        self.json(Self::post(&["api", "v1", "gang"], body, None))
            .await
    }

    /// Discover from the daemon's host (`POST /api/v1/discover`, needs `admin` on the group
    /// `all`): what answered, the silent addresses and the plan, applied when `request.apply`.
    pub async fn discover(
        &self,
        request: &mo_api::DiscoverRequest,
    ) -> Result<mo_api::DiscoverReport> {
        let body = to_json(request)?;
        self.json(Self::post(&["api", "v1", "discover"], body, None))
            .await
    }

    /// The maintenance windows started at run time and not yet ended (of devices the caller
    /// sees).
    pub async fn maintenance(&self) -> Result<Vec<mo_api::Maintenance>> {
        self.json(Self::get(&["api", "v1", "maintenance"], None))
            .await
    }

    /// Start a maintenance window on `target` (a name, a glob or `@GROUP`) for `duration`
    /// (`30m`, `2h`; the daemon's default `1h` when `None`), named `name` (default: the target);
    /// needs `events.ack` on every device it covers.
    pub async fn start_maintenance(
        &self,
        target: &str,
        duration: Option<&str>,
        reason: &str,
        name: Option<&str>,
    ) -> Result<mo_api::Maintenance> {
        let start = mo_api::StartMaintenance {
            target: target.to_owned(),
            duration: duration.map(str::to_owned),
            reason: reason.to_owned(),
            name: name.map(str::to_owned),
        };
        let body = serde_json::to_value(&start).map_err(|e| Error::BadSpec {
            what: "maintenance window",
            input: target.to_owned(),
            reason: e.to_string(),
        })?;
        self.json(Self::post(&["api", "v1", "maintenance"], body, None))
            .await
    }

    /// End maintenance window `name`; returns it as it was.
    pub async fn stop_maintenance(&self, name: &str) -> Result<mo_api::Maintenance> {
        let segments = ["api", "v1", "maintenance", name];
        let mut req = Self::get(&segments, None);
        req.method = Method::DELETE;
        self.json(req).await
    }

    /// The names of the daemon's stored macros.
    pub async fn macros(&self) -> Result<Vec<String>> {
        self.json(Self::get(&["api", "v1", "macros"], None)).await
    }

    /// Play the stored macro `name` on `targets` with `args` (needs `macro.run` on each), or
    /// with `dry_run` only show the plan ([`PlayReport::Plan`]); otherwise `ok` and one result
    /// per device ([`PlayReport::Played`]).
    pub async fn play_macro(
        &self,
        name: &str,
        targets: &[&str],
        args: &[(&str, &str)],
        dry_run: bool,
    ) -> Result<PlayReport> {
        let mut request = mo_api::PlayRequest::new(targets.iter().map(|t| t.to_string()).collect());
        request.args = args
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        request.dry_run = dry_run;
        let body = to_json(&request)?;
        self.json(Self::post(
            &["api", "v1", "macros", name, "play"],
            body,
            None,
        ))
        .await
    }

    /// Attach to a console over the WebSocket API. `replay` is the number of recent lines to
    /// replay first (`None`: the console's default). Returns once the server said hello; fails
    /// with the API's error (unknown device, denied, …) otherwise.
    pub async fn attach(
        &self,
        name: &str,
        mode: mo_core::console::Mode,
        replay: Option<usize>,
    ) -> Result<mo_core::facade::ConsoleHandle> {
        let attachment = attach::open(self, name, mode, replay).await?;
        Ok(mo_core::facade::ConsoleHandle::new(Box::new(attachment)))
    }
}

/// A request body as JSON.
fn to_json<T: serde::Serialize>(body: &T) -> Result<Value> {
    serde_json::to_value(body).map_err(|e| Error::BadSpec {
        what: "request",
        input: String::new(),
        reason: format!("cannot write the request body: {e}"),
    })
}

fn push_range(q: &mut Vec<(&str, String)>, query: &LogQuery) {
    if let Some(s) = &query.since {
        q.push(("since", s.clone()));
    }
    if let Some(u) = &query.until {
        q.push(("until", u.clone()));
    }
}
