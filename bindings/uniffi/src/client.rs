//! Client mode: the [`Client`] object drives a running daemon (`mod --http ADDR`) over its HTTP
//! and WebSocket API ([`mo_client`]); [`Client::attach`] gives the same [`Console`] an embedded
//! console has.

use std::path::Path;
use std::sync::Arc;

use mo_client::types::{EventQuery, LogQuery};

use crate::console::{Console, parse_mode};
use crate::error::MoError;
use crate::runtime::{block, spawn};

/// A device the daemon serves (`mo device list`, `mo device show`).
#[derive(Debug, uniffi::Record)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its access URL.
    pub url: String,
    /// Link state: `up`, `down`, `connecting`, `idle`, …
    pub state: String,
    /// How many viewers are attached.
    pub viewers: u64,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its description.
    pub description: Option<String>,
    /// The last link error.
    pub error: Option<String>,
}

impl From<mo_client::Device> for Device {
    fn from(d: mo_client::Device) -> Self {
        Device {
            name: d.name,
            url: d.url,
            state: d.state.to_string(),
            viewers: d.viewers,
            groups: d.groups,
            description: d.description,
            error: d.error,
        }
    }
}

/// One viewer of a console on the daemon (`mo who`).
#[derive(Debug, uniffi::Record)]
pub struct Session {
    /// The device.
    pub device: String,
    /// The user.
    pub user: String,
    /// `rw`, `join` or `spy`.
    pub role: String,
    /// When it connected (RFC 3339).
    pub since: String,
    /// Where it came from (`ssh`, `api`, …).
    pub origin: String,
}

impl From<mo_client::SessionInfo> for Session {
    fn from(s: mo_client::SessionInfo) -> Self {
        Session {
            device: s.device,
            user: s.viewer.user,
            role: s.viewer.role.to_string(),
            since: s.viewer.since,
            origin: s.viewer.origin,
        }
    }
}

/// One power controller's answer.
#[derive(Debug, uniffi::Record)]
pub struct PowerResult {
    /// The controller.
    pub controller: String,
    /// The state it reports (`on`, `off`, …).
    pub state: String,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// The answer to `power` (`mo power`).
#[derive(Debug, uniffi::Record)]
pub struct PowerReport {
    /// The device.
    pub device: String,
    /// The action carried out.
    pub action: Option<String>,
    /// Whether every controller succeeded.
    pub ok: Option<bool>,
    /// A summary.
    pub message: Option<String>,
    /// Per controller.
    pub results: Vec<PowerResult>,
}

/// A stored event (`mo events list`): link down, panic seen, login failures, …
#[derive(Debug, uniffi::Record)]
pub struct MoEvent {
    /// Its id.
    pub id: u64,
    /// When (RFC 3339).
    pub time: String,
    /// The device.
    pub device: String,
    /// `info`, `notice`, `warning`, `error` or `critical`.
    pub severity: String,
    /// The event's name.
    pub name: String,
    /// What happened.
    pub text: String,
    /// How many times it repeated.
    pub count: u64,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
}

impl From<mo_client::Event> for MoEvent {
    fn from(e: mo_client::Event) -> Self {
        MoEvent {
            id: e.id,
            time: e.time,
            device: e.device,
            severity: e.severity.to_string(),
            name: e.name,
            text: e.text,
            count: e.count,
            acked_by: e.acked_by,
        }
    }
}

/// A client of one mo daemon, authenticated with an API token (`mo token add`). Every call has
/// a blocking form and an `_async` twin.
#[derive(uniffi::Object)]
pub struct Client {
    inner: mo_client::Client,
}

#[uniffi::export]
impl Client {
    /// A client of the daemon at `url` (`http://127.0.0.1:8022`, or `https://…`) using `token`
    /// (none: no token). For an `https://` daemon whose certificate the public web roots do not
    /// vouch for, give `ca` (a PEM CA bundle file) or `pin` (the certificate's SHA-256
    /// fingerprint, as `mod` prints it). Nothing is sent yet.
    #[uniffi::constructor(default(token = None, ca = None, pin = None))]
    pub fn new(
        url: String,
        token: Option<String>,
        ca: Option<String>,
        pin: Option<String>,
    ) -> Result<Arc<Client>, MoError> {
        let trust = mo_client::Trust::from_options(ca.as_deref().map(Path::new), pin.as_deref())?;
        let inner = mo_client::Client::with_trust(&url, token.unwrap_or_default(), trust)?;
        Ok(Arc::new(Client { inner }))
    }

    /// The daemon's base URL.
    pub fn url(&self) -> String {
        self.inner.base_url().to_string()
    }

    /// The devices this token may see (`mo device list`).
    pub fn devices(&self) -> Result<Vec<Device>, MoError> {
        block(devices(self.inner.clone()))
    }

    /// One device (`mo device show`; `NotFound` naming it).
    pub fn device(&self, name: String) -> Result<Device, MoError> {
        block(device(self.inner.clone(), name))
    }

    /// Who is on device `name`'s console (`mo who NAME`).
    pub fn who(&self, name: String) -> Result<Vec<Session>, MoError> {
        block(who(self.inner.clone(), name))
    }

    /// Everyone attached to any console (`mo who`).
    pub fn sessions(&self) -> Result<Vec<Session>, MoError> {
        block(sessions(self.inner.clone()))
    }

    /// Device `name`'s record log as text, one timestamped line per line (`mo log show`):
    /// only the last `tail` lines, from `since`, until `until` (RFC 3339, or `2h` for two hours
    /// ago).
    #[uniffi::method(default(tail = None, since = None, until = None))]
    pub fn log(
        &self,
        name: String,
        tail: Option<u32>,
        since: Option<String>,
        until: Option<String>,
    ) -> Result<String, MoError> {
        block(log(self.inner.clone(), name, tail, since, until))
    }

    /// Stored events, newest first (`mo events list`): only `device`'s, at most `limit`, only
    /// unacknowledged ones.
    #[uniffi::method(default(device = None, limit = None, unacked = false))]
    pub fn list_events(
        &self,
        device: Option<String>,
        limit: Option<u32>,
        unacked: bool,
    ) -> Result<Vec<MoEvent>, MoError> {
        block(list_events(self.inner.clone(), device, limit, unacked))
    }

    /// A power action on device `name` (`mo power`): `on`, `off`, `cycle`, `reset`, `soft-off`
    /// or `status`.
    pub fn power(&self, name: String, action: String) -> Result<PowerReport, MoError> {
        block(power(self.inner.clone(), name, action))
    }

    /// Attach to device `name`'s console on the daemon (WebSocket) in `mode` (`attach`, `spy`,
    /// `force`, `join`), replaying `replay` lines of recent output (default: the console's
    /// setting).
    #[uniffi::method(default(mode = None, replay = None))]
    pub fn attach(
        &self,
        name: String,
        mode: Option<String>,
        replay: Option<u32>,
    ) -> Result<Arc<Console>, MoError> {
        block(attach(self.inner.clone(), name, mode, replay))
    }
}

/// The async twins (Kotlin `suspend`, Swift `async`, Ruby waiting with the GVL released).
#[uniffi::export]
impl Client {
    /// [`Client::devices`], async.
    pub async fn devices_async(&self) -> Result<Vec<Device>, MoError> {
        spawn(devices(self.inner.clone())).await
    }

    /// [`Client::device`], async.
    pub async fn device_async(&self, name: String) -> Result<Device, MoError> {
        spawn(device(self.inner.clone(), name)).await
    }

    /// [`Client::who`], async.
    pub async fn who_async(&self, name: String) -> Result<Vec<Session>, MoError> {
        spawn(who(self.inner.clone(), name)).await
    }

    /// [`Client::sessions`], async.
    pub async fn sessions_async(&self) -> Result<Vec<Session>, MoError> {
        spawn(sessions(self.inner.clone())).await
    }

    /// [`Client::log`], async.
    #[uniffi::method(default(tail = None, since = None, until = None))]
    pub async fn log_async(
        &self,
        name: String,
        tail: Option<u32>,
        since: Option<String>,
        until: Option<String>,
    ) -> Result<String, MoError> {
        spawn(log(self.inner.clone(), name, tail, since, until)).await
    }

    /// [`Client::list_events`], async.
    #[uniffi::method(default(device = None, limit = None, unacked = false))]
    pub async fn list_events_async(
        &self,
        device: Option<String>,
        limit: Option<u32>,
        unacked: bool,
    ) -> Result<Vec<MoEvent>, MoError> {
        spawn(list_events(self.inner.clone(), device, limit, unacked)).await
    }

    /// [`Client::power`], async.
    pub async fn power_async(&self, name: String, action: String) -> Result<PowerReport, MoError> {
        spawn(power(self.inner.clone(), name, action)).await
    }

    /// [`Client::attach`], async.
    #[uniffi::method(default(mode = None, replay = None))]
    pub async fn attach_async(
        &self,
        name: String,
        mode: Option<String>,
        replay: Option<u32>,
    ) -> Result<Arc<Console>, MoError> {
        spawn(attach(self.inner.clone(), name, mode, replay)).await
    }
}

async fn devices(client: mo_client::Client) -> Result<Vec<Device>, MoError> {
    let list = client.devices().await?;
    Ok(list.into_iter().map(Device::from).collect())
}

async fn device(client: mo_client::Client, name: String) -> Result<Device, MoError> {
    Ok(client.device(&name).await?.into())
}

async fn who(client: mo_client::Client, name: String) -> Result<Vec<Session>, MoError> {
    let viewers = client.who(&name).await?;
    Ok(viewers
        .into_iter()
        .map(|v| mo_client::SessionInfo::new(&name, v).into())
        .collect())
}

async fn sessions(client: mo_client::Client) -> Result<Vec<Session>, MoError> {
    let all = client.sessions().await?;
    Ok(all.into_iter().map(Session::from).collect())
}

async fn log(
    client: mo_client::Client,
    name: String,
    tail: Option<u32>,
    since: Option<String>,
    until: Option<String>,
) -> Result<String, MoError> {
    let mut query = LogQuery::default();
    if let Some(n) = tail {
        query = query.limit(n as usize);
    }
    if let Some(s) = since {
        query = query.since(s);
    }
    if let Some(u) = until {
        query = query.until(u);
    }
    Ok(client.log(&name, &query).await?)
}

async fn list_events(
    client: mo_client::Client,
    device: Option<String>,
    limit: Option<u32>,
    unacked: bool,
) -> Result<Vec<MoEvent>, MoError> {
    let mut query = EventQuery::default().unacked(unacked);
    if let Some(d) = device {
        query = query.device(d);
    }
    if let Some(n) = limit {
        query = query.limit(n as usize);
    }
    let events = client.events(&query).await?;
    Ok(events.into_iter().map(MoEvent::from).collect())
}

async fn power(
    client: mo_client::Client,
    name: String,
    action: String,
) -> Result<PowerReport, MoError> {
    let action = mo_client::parse_power_action(&action)?;
    let r = client.power(&name, action).await?;
    Ok(PowerReport {
        device: r.device,
        action: r.action.map(|a| a.to_string()),
        ok: r.ok,
        message: r.message,
        results: r
            .results
            .into_iter()
            .map(|p| PowerResult {
                controller: p.controller,
                state: p.state.to_string(),
                error: p.error,
            })
            .collect(),
    })
}

async fn attach(
    client: mo_client::Client,
    name: String,
    mode: Option<String>,
    replay: Option<u32>,
) -> Result<Arc<Console>, MoError> {
    let mode = match mode {
        Some(mode) => parse_mode(&mode)?,
        None => mo_core::console::Mode::Attach,
    };
    let handle = client
        .attach(&name, mode, replay.map(|n| n as usize))
        .await?;
    Ok(Console::wrap(handle))
}
