//! Client mode: the `Client` class drives a running daemon over its HTTP/WebSocket API
//! ([`mo_client`]); `attach` gives the same `Console` class an embedded console has.

use std::path::Path;
use std::sync::Arc;

use mo_client::types::{EventQuery, LogQuery};
use napi::Result;
use napi_derive::napi;
use tokio::sync::{Mutex, watch};

use crate::console::Console;
use crate::error::to_napi;
use mo_core::console::Mode;

/// A device the daemon serves.
#[napi(object)]
#[derive(Debug)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its access URL.
    pub url: String,
    /// Link state: `up`, `down`, `connecting`, `idle`, …
    pub state: String,
    /// How many viewers are attached.
    pub viewers: u32,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its description.
    pub description: Option<String>,
    /// The last link error.
    pub error: Option<String>,
}

/// One viewer of a console on the daemon.
#[napi(object)]
#[derive(Debug)]
pub struct Session {
    /// The device (in `sessions()`).
    pub device: Option<String>,
    /// The user.
    pub user: String,
    /// `rw`, `join` or `spy`.
    pub role: String,
    /// When it connected (RFC 3339).
    pub since: String,
    /// Where it came from (`ssh`, `api`, …).
    pub origin: Option<String>,
}

/// One power controller's answer.
#[napi(object)]
#[derive(Debug)]
pub struct PowerResult {
    /// The controller.
    pub controller: String,
    /// The state it reports (`on`, `off`, …).
    pub state: String,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// The answer to `power()`.
#[napi(object)]
#[derive(Debug)]
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

/// An event (link down, panic seen, login failures, …).
#[napi(object, js_name = "MoEvent")]
#[derive(Debug)]
pub struct MoEvent {
    /// Its id.
    pub id: i64,
    /// When (RFC 3339).
    pub time: String,
    /// The device.
    pub device: String,
    /// `info`, `warning`, `critical`, …
    pub severity: String,
    /// The event's name.
    pub name: String,
    /// What happened.
    pub text: String,
    /// How many times it repeated.
    pub count: Option<f64>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
}

impl From<mo_client::Event> for MoEvent {
    fn from(e: mo_client::Event) -> Self {
        MoEvent {
            id: i64::try_from(e.id).unwrap_or(i64::MAX),
            time: e.time,
            device: e.device,
            severity: e.severity.to_string(),
            name: e.name,
            text: e.text,
            count: Some(e.count as f64),
            acked_by: e.acked_by,
        }
    }
}

/// Options of `attach()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct AttachOptions {
    /// `attach` (default), `spy`, `force` or `join`.
    pub mode: Option<String>,
    /// Lines of recent output to replay first (default: the console's setting).
    pub replay: Option<u32>,
}

/// Options of `log()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct LogOptions {
    /// Only the last N lines.
    pub tail: Option<u32>,
    /// From this time (RFC 3339, or `2h` for two hours ago).
    pub since: Option<String>,
    /// Until this time.
    pub until: Option<String>,
}

/// Options of `listEvents()` and `events()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct EventOptions {
    /// Only this device's events.
    pub device: Option<String>,
    /// At most this many (listEvents).
    pub limit: Option<u32>,
    /// Only unacknowledged ones (listEvents).
    pub unacked: Option<bool>,
}

/// One device's part of a gang report: its answer, or why it was not reached.
#[napi(object)]
#[derive(Debug)]
pub struct GangEntry {
    /// The device.
    pub device: String,
    /// Its answer (`outputs`) or the reason (`failed`, `refused`).
    pub text: String,
}

/// What `gang()` found.
#[napi(object)]
#[derive(Debug)]
pub struct GangReport {
    /// Each device's answer.
    pub outputs: Vec<GangEntry>,
    /// The devices that answered like the majority.
    pub majority: Vec<String>,
    /// The devices that answered differently.
    pub divergent: Vec<String>,
    /// Devices the command could not be sent to.
    pub failed: Vec<GangEntry>,
    /// Devices left out (held by someone else, …).
    pub refused: Vec<GangEntry>,
}

/// One device's result of `playMacro()`.
#[napi(object)]
#[derive(Debug)]
pub struct MacroResult {
    /// The device.
    pub device: String,
    /// Whether every step succeeded.
    pub ok: bool,
    /// `web01: done (4 steps, 1.2 s)` or what failed where.
    pub result: String,
}

/// What `playMacro()` did (or, with `dryRun`, would do).
#[napi(object)]
#[derive(Debug)]
pub struct MacroReport {
    /// Whether it succeeded on every device (false for a dry run).
    pub ok: bool,
    /// One result per device (empty for a dry run).
    pub results: Vec<MacroResult>,
    /// The plan, for a dry run.
    pub plan: Option<String>,
}

/// Options of `playMacro()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct PlayOptions {
    /// The macro's parameters.
    pub args: Option<std::collections::HashMap<String, String>>,
    /// Only show the plan.
    pub dry_run: Option<bool>,
}

/// A device and why, as an entry.
fn entries(list: Vec<mo_client::types::DeviceReason>) -> Vec<GangEntry> {
    list.into_iter()
        .map(|i| GangEntry {
            device: i.device,
            text: i.reason,
        })
        .collect()
}

/// Which certificate an `https://` daemon may present, instead of one the public web roots
/// vouch for. Give one of the two.
#[napi(object)]
#[derive(Debug, Default)]
pub struct TlsOptions {
    /// A PEM CA bundle (a self-signed certificate may be its own CA); the URL's host must be
    /// named in the certificate.
    pub ca: Option<String>,
    /// The certificate's SHA-256 fingerprint (64 hex digits, colons allowed), as `mod` prints it
    /// at start.
    pub pin: Option<String>,
}

/// A client of one mo daemon (`mod --http ADDR`), authenticated with an API token.
#[napi]
pub struct Client {
    inner: mo_client::Client,
}

#[napi]
impl Client {
    /// A client of the daemon at `url` (`http://127.0.0.1:8022`, or `https://…`) using API
    /// `token` (`mo token add`; empty: none); `tls` trusts a CA bundle or pins a certificate.
    /// Nothing is sent yet.
    #[napi(constructor)]
    pub fn new(url: String, token: Option<String>, tls: Option<TlsOptions>) -> Result<Client> {
        let tls = tls.unwrap_or_default();
        let trust =
            mo_client::Trust::from_options(tls.ca.as_deref().map(Path::new), tls.pin.as_deref())
                .map_err(to_napi)?;
        let inner = mo_client::Client::with_trust(&url, token.unwrap_or_default(), trust)
            .map_err(to_napi)?;
        Ok(Client { inner })
    }

    /// The daemon's base URL.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.base_url().to_string()
    }

    /// The raw request under the generated calls (calls.js): `method` on the path of `segments`
    /// with `query` pairs and a JSON `body` text; the answer as JSON text (`null` when empty).
    /// Errors name `device`.
    #[napi(js_name = "_request")]
    pub async fn request(
        &self,
        method: String,
        segments: Vec<String>,
        query: Vec<Vec<String>>,
        body: Option<String>,
        device: Option<String>,
    ) -> Result<String> {
        let body = match body {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                napi::Error::from_reason(format!("the request body is not JSON: {e}"))
            })?),
            None => None,
        };
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query: Vec<(&str, String)> = query
            .iter()
            .filter_map(|pair| match pair.as_slice() {
                [k, v] => Some((k.as_str(), v.clone())),
                _ => None,
            })
            .collect();
        let answer = self
            .inner
            .request(&method, &segments, &query, body, device.as_deref())
            .await
            .map_err(to_napi)?;
        Ok(answer.to_string())
    }

    /// The devices this token may see.
    #[napi]
    pub async fn devices(&self) -> Result<Vec<Device>> {
        let devices = self.inner.devices().await.map_err(to_napi)?;
        Ok(devices.into_iter().map(device).collect())
    }

    /// One device (rejects with `NotFound`).
    #[napi]
    pub async fn device(&self, name: String) -> Result<Device> {
        self.inner.device(&name).await.map(device).map_err(to_napi)
    }

    /// Who is on device `name`'s console.
    #[napi]
    pub async fn who(&self, name: String) -> Result<Vec<Session>> {
        let who = self.inner.who(&name).await.map_err(to_napi)?;
        Ok(who
            .into_iter()
            .map(|viewer| session(mo_client::SessionInfo::new(&name, viewer)))
            .collect())
    }

    /// Everyone attached to any console.
    #[napi]
    pub async fn sessions(&self) -> Result<Vec<Session>> {
        let all = self.inner.sessions().await.map_err(to_napi)?;
        Ok(all.into_iter().map(session).collect())
    }

    /// One command to many consoles (names, globs, `@GROUP`s): each device's answer and the
    /// divergent devices.
    #[napi]
    pub async fn gang(&self, targets: Vec<String>, command: String) -> Result<GangReport> {
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        let r = self.inner.gang(&targets, &command).await.map_err(to_napi)?;
        let outputs = r
            .outputs
            .into_iter()
            .map(|(device, text)| GangEntry { device, text })
            .collect();
        Ok(GangReport {
            outputs,
            majority: r.majority,
            divergent: r.divergent,
            failed: entries(r.failed),
            refused: entries(r.refused),
        })
    }

    /// The names of the daemon's stored macros.
    #[napi]
    pub async fn macros(&self) -> Result<Vec<String>> {
        self.inner.macros().await.map_err(to_napi)
    }

    /// Play a stored macro on devices (or only show the plan with `dryRun`).
    #[napi]
    pub async fn play_macro(
        &self,
        name: String,
        targets: Vec<String>,
        options: Option<PlayOptions>,
    ) -> Result<MacroReport> {
        let options = options.unwrap_or_default();
        let args: Vec<(String, String)> = options.args.unwrap_or_default().into_iter().collect();
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        let r = self
            .inner
            .play_macro(&name, &targets, &args, options.dry_run.unwrap_or(false))
            .await
            .map_err(to_napi)?;
        Ok(match r {
            mo_client::PlayReport::Plan(plan) => MacroReport {
                ok: false,
                results: Vec::new(),
                plan: Some(plan.plan),
            },
            mo_client::PlayReport::Played(played) => MacroReport {
                ok: played.ok,
                results: played
                    .results
                    .into_iter()
                    .map(|i| MacroResult {
                        device: i.device,
                        ok: i.ok,
                        result: i.result,
                    })
                    .collect(),
                plan: None,
            },
        })
    }

    /// Power action on device `name`: `on`, `off`, `cycle`, `reset`, `soft-off` or `status`.
    #[napi]
    pub async fn power(&self, name: String, action: String) -> Result<PowerReport> {
        let action = mo_client::parse_power_action(&action).map_err(to_napi)?;
        let r = self.inner.power(&name, action).await.map_err(to_napi)?;
        Ok(power_report(r))
    }

    /// Power `action` (default `status`) on every device `targets` names (names, globs,
    /// `@GROUP`s), one after another: each device's report (a failed one has `ok` false and
    /// the error as `message`).
    #[napi]
    pub async fn power_many(
        &self,
        targets: Vec<String>,
        action: Option<String>,
    ) -> Result<Vec<PowerReport>> {
        let action = action.as_deref().unwrap_or("status");
        let action = mo_client::parse_power_action(action).map_err(to_napi)?;
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        let reports = self
            .inner
            .power_many(&targets, action)
            .await
            .map_err(to_napi)?;
        Ok(reports.into_iter().map(power_report).collect())
    }

    /// Device `name`'s record log as text, one timestamped line per line.
    #[napi]
    pub async fn log(&self, name: String, options: Option<LogOptions>) -> Result<String> {
        let options = options.unwrap_or_default();
        let mut query = LogQuery::default();
        if let Some(n) = options.tail {
            query = query.limit(n as usize);
        }
        if let Some(s) = options.since {
            query = query.since(s);
        }
        if let Some(u) = options.until {
            query = query.until(u);
        }
        self.inner.log(&name, &query).await.map_err(to_napi)
    }

    /// Stored events, newest first.
    #[napi]
    pub async fn list_events(&self, options: Option<EventOptions>) -> Result<Vec<MoEvent>> {
        let options = options.unwrap_or_default();
        let mut query = EventQuery::default();
        if let Some(d) = options.device {
            query = query.device(d);
        }
        if let Some(n) = options.limit {
            query = query.limit(n as usize);
        }
        query = query.unacked(options.unacked.unwrap_or(false));
        let events = self.inner.list_events(&query).await.map_err(to_napi)?;
        Ok(events.into_iter().map(MoEvent::from).collect())
    }

    /// New events as they occur: `for await (const ev of client.events())`. Connects on the
    /// first read; leaving the loop closes it.
    #[napi]
    pub fn events(&self, options: Option<EventOptions>) -> EventStream {
        let (closed, _) = watch::channel(false);
        EventStream {
            client: self.inner.clone(),
            device: options.and_then(|o| o.device),
            stream: Arc::new(Mutex::new(None)),
            closed,
        }
    }

    /// Attach to device `name`'s console on the daemon (WebSocket).
    #[napi]
    pub async fn attach(&self, name: String, options: Option<AttachOptions>) -> Result<Console> {
        let options = options.unwrap_or_default();
        let mode = match options.mode.as_deref() {
            Some(mode) => mode.parse::<Mode>().map_err(to_napi)?,
            None => Mode::Attach,
        };
        let replay = options.replay.map(|n| n as usize);
        let handle = self
            .inner
            .attach(&name, mode, replay)
            .await
            .map_err(to_napi)?;
        Ok(Console::wrap(handle))
    }
}

/// A live feed of the daemon's events (WebSocket), read with `for await`.
#[napi]
pub struct EventStream {
    client: mo_client::Client,
    device: Option<String>,
    stream: Arc<Mutex<Option<mo_client::EventStream>>>,
    closed: watch::Sender<bool>,
}

#[napi]
impl EventStream {
    /// The next event, or `null` once the stream is closed (by `close()` or the daemon).
    #[napi]
    pub async fn next_event(&self) -> Result<Option<MoEvent>> {
        let mut closed = self.closed.subscribe();
        if *closed.borrow() {
            return Ok(None);
        }
        let mut slot = self.stream.lock().await;
        if slot.is_none() {
            let opened = tokio::select! {
                s = self.client.event_stream(self.device.as_deref()) => s.map_err(to_napi)?,
                _ = closed.wait_for(|c| *c) => return Ok(None),
            };
            *slot = Some(opened);
        }
        let Some(stream) = slot.as_mut() else {
            return Ok(None);
        };
        tokio::select! {
            item = stream.next_event() => match item {
                Some(Ok(event)) => Ok(Some(event.into())),
                Some(Err(e)) => Err(to_napi(e)),
                None => {
                    *slot = None;
                    self.closed.send_replace(true);
                    Ok(None)
                }
            },
            _ = closed.wait_for(|c| *c) => Ok(None),
        }
    }

    /// Stop: a pending and every later `nextEvent()` gives `null`; the WebSocket is closed.
    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.closed.send_replace(true);
        self.stream.lock().await.take();
        Ok(())
    }
}

fn device(d: mo_client::Device) -> Device {
    Device {
        name: d.name,
        url: d.url,
        state: d.state.to_string(),
        viewers: u32::try_from(d.viewers).unwrap_or(u32::MAX),
        groups: d.groups,
        description: d.description,
        error: d.error,
    }
}

fn session(s: mo_client::SessionInfo) -> Session {
    Session {
        device: Some(s.device),
        user: s.viewer.user,
        role: s.viewer.role.to_string(),
        since: s.viewer.since,
        origin: Some(s.viewer.origin),
    }
}

/// A power report as JavaScript sees it.
fn power_report(r: mo_client::PowerReport) -> PowerReport {
    PowerReport {
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
    }
}
