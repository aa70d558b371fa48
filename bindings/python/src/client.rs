//! Client mode: `Client` and `SyncClient` over [`mo_client::Client`] (a running daemon's
//! HTTP/WebSocket API). Attaching gives the same console classes as embedded mode.

use std::sync::Arc;

use mo_client::{EventQuery, LogQuery, PowerAction};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::{Console, Core, SyncConsole, block, raise, to_py};
use mo_core::console::Mode;

/// A JSON value on its way to Python (dicts, lists, str, int, float, bool, None).
pub(crate) struct Json(serde_json::Value);

fn json<T: Serialize>(value: &T) -> PyResult<Json> {
    serde_json::to_value(value).map(Json).map_err(|e| {
        raise(
            "ProtocolError",
            format!("cannot represent an API answer: {e}"),
        )
    })
}

fn value<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, value(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        value(py, &self.0)
    }
}

/// What both client classes share.
struct Inner {
    client: mo_client::Client,
}

impl Inner {
    async fn devices(&self) -> PyResult<Json> {
        json(&self.client.devices().await.map_err(to_py)?)
    }
    async fn device(&self, name: &str) -> PyResult<Json> {
        json(&self.client.device(name).await.map_err(to_py)?)
    }
    async fn who(&self, name: &str) -> PyResult<Json> {
        json(&self.client.who(name).await.map_err(to_py)?)
    }
    async fn sessions(&self) -> PyResult<Json> {
        json(&self.client.sessions().await.map_err(to_py)?)
    }
    async fn power(&self, name: &str, action: PowerAction) -> PyResult<Json> {
        json(&self.client.power(name, action).await.map_err(to_py)?)
    }
    async fn power_many(&self, targets: Vec<String>, action: PowerAction) -> PyResult<Json> {
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        json(
            &self
                .client
                .power_many(&targets, action)
                .await
                .map_err(to_py)?,
        )
    }
    async fn log(&self, name: &str, query: LogQuery) -> PyResult<String> {
        self.client.log(name, &query).await.map_err(to_py)
    }
    async fn recent_events(&self, query: EventQuery) -> PyResult<Json> {
        json(&self.client.list_events(&query).await.map_err(to_py)?)
    }
    async fn gang(&self, targets: Vec<String>, command: String) -> PyResult<Json> {
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        json(&self.client.gang(&targets, &command).await.map_err(to_py)?)
    }
    async fn macros(&self) -> PyResult<Json> {
        json(&self.client.macros().await.map_err(to_py)?)
    }
    async fn play_macro(
        &self,
        name: String,
        targets: Vec<String>,
        args: Vec<(String, String)>,
        dry_run: bool,
    ) -> PyResult<Json> {
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        json(
            &self
                .client
                .play_macro(&name, &targets, &args, dry_run)
                .await
                .map_err(to_py)?,
        )
    }
    /// The raw request under the generated calls (mo/_api.py): `body` is JSON text.
    async fn request(&self, call: RawCall) -> PyResult<Json> {
        let RawCall(method, segments, query, body, device) = call;
        let body = match body {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "the request body is not JSON: {e}"
                ))
            })?),
            None => None,
        };
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let answer = self
            .client
            .request(&method, &segments, &query, body, device.as_deref())
            .await
            .map_err(to_py)?;
        Ok(Json(answer))
    }
    async fn attach(
        &self,
        name: &str,
        mode: mo_core::console::Mode,
        replay: Option<usize>,
    ) -> PyResult<Arc<Core>> {
        let handle = self
            .client
            .attach(name, mode, replay)
            .await
            .map_err(to_py)?;
        Ok(Core::new(handle))
    }
}

/// One raw request of a generated call, as `mo/_request.py` passes it (a tuple): method, path
/// segments, query pairs, JSON body text and the device named in errors.
#[derive(FromPyObject)]
pub(crate) struct RawCall(
    String,
    Vec<String>,
    Vec<(String, String)>,
    Option<String>,
    Option<String>,
);

/// The client of `url`; `ca` (a PEM CA bundle) or `pin` (a SHA-256 fingerprint) say which
/// `https://` certificate to trust instead of the public web roots.
fn new_inner(
    url: &str,
    token: String,
    ca: Option<std::path::PathBuf>,
    pin: Option<String>,
) -> PyResult<Arc<Inner>> {
    let trust = mo_client::Trust::from_options(ca.as_deref(), pin.as_deref()).map_err(to_py)?;
    let client = mo_client::Client::with_trust(url, token, trust).map_err(to_py)?;
    Ok(Arc::new(Inner { client }))
}

fn log_query(tail: Option<usize>, since: Option<String>, until: Option<String>) -> LogQuery {
    let mut q = LogQuery::default();
    if let Some(n) = tail {
        q = q.limit(n);
    }
    if let Some(s) = since {
        q = q.since(s);
    }
    if let Some(u) = until {
        q = q.until(u);
    }
    q
}

fn event_query(device: Option<String>, limit: Option<usize>, unacked: bool) -> EventQuery {
    let mut q = EventQuery::default().unacked(unacked);
    if let Some(d) = device {
        q = q.device(d);
    }
    if let Some(n) = limit {
        q = q.limit(n);
    }
    q
}

fn power_action(action: &str) -> PyResult<PowerAction> {
    mo_client::parse_power_action(action).map_err(to_py)
}

/// `future_into_py` with the client cloned in.
macro_rules! aw {
    ($self:ident, $py:ident, |$c:ident| $body:expr) => {{
        let $c = $self.inner.clone();
        crate::runtime::future_into_py($py, async move { $body })
    }};
}

/// A client of a running `mod` daemon, for asyncio. An `https://` daemon's certificate is
/// checked against the public web roots, or `ca` (a PEM CA bundle), or `pin` (its SHA-256
/// fingerprint, as `mod --tls-self-signed` prints it).
#[pyclass(module = "mo._mo", frozen, subclass)]
pub struct Client {
    inner: Arc<Inner>,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (url, token, *, ca = None, pin = None))]
    fn new(
        url: &str,
        token: String,
        ca: Option<std::path::PathBuf>,
        pin: Option<String>,
    ) -> PyResult<Client> {
        Ok(Client {
            inner: new_inner(url, token, ca, pin)?,
        })
    }

    /// The daemon's base URL.
    #[getter]
    fn url(&self) -> &str {
        self.inner.client.base_url()
    }

    /// Every device the token may see.
    fn devices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.devices().await)
    }

    /// One device, with its settings.
    fn device<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.device(&name).await)
    }

    /// The viewers of a console.
    fn who<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.who(&name).await)
    }

    /// Every viewer of every console.
    fn sessions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.sessions().await)
    }

    /// Power `on`, `off`, `cycle`, `reset`, `soft-off` or `status`.
    #[pyo3(signature = (name, action = "status"))]
    fn power<'py>(
        &self,
        py: Python<'py>,
        name: String,
        action: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action = power_action(action)?;
        aw!(self, py, |c| c.power(&name, action).await)
    }

    /// Power `action` on every device `targets` names (names, globs, `@GROUP`s), one after
    /// another: each device's report (a failed one has `ok` false and the error as `message`).
    #[pyo3(signature = (targets, action = "status"))]
    fn power_many<'py>(
        &self,
        py: Python<'py>,
        targets: Vec<String>,
        action: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action = power_action(action)?;
        aw!(self, py, |c| c.power_many(targets, action).await)
    }

    /// The rendered record log (the last `tail` lines, between `since` and `until`).
    #[pyo3(signature = (name, tail = None, since = None, until = None))]
    fn log<'py>(
        &self,
        py: Python<'py>,
        name: String,
        tail: Option<usize>,
        since: Option<String>,
        until: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let q = log_query(tail, since, until);
        aw!(self, py, |c| c.log(&name, q).await)
    }

    /// Stored events, oldest first.
    #[pyo3(signature = (device = None, limit = None, unacked = false))]
    fn recent_events<'py>(
        &self,
        py: Python<'py>,
        device: Option<String>,
        limit: Option<usize>,
        unacked: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let q = event_query(device, limit, unacked);
        aw!(self, py, |c| c.recent_events(q).await)
    }

    /// One command to many consoles (names, globs, `@GROUP`s): each device's answer and the
    /// divergent devices.
    fn gang<'py>(
        &self,
        py: Python<'py>,
        targets: Vec<String>,
        command: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.gang(targets, command).await)
    }

    /// The names of the daemon's stored macros.
    fn macros<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.macros().await)
    }

    /// Play a stored macro on devices (or only show the plan with `dry_run`).
    #[pyo3(signature = (name, targets, args = None, dry_run = false))]
    fn play_macro<'py>(
        &self,
        py: Python<'py>,
        name: String,
        targets: Vec<String>,
        args: Option<std::collections::BTreeMap<String, String>>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args: Vec<(String, String)> = args.unwrap_or_default().into_iter().collect();
        aw!(self, py, |c| c
            .play_macro(name, targets, args, dry_run)
            .await)
    }

    /// The raw request under the generated calls (`mo._api.AsyncCalls`): the answer's JSON.
    #[pyo3(name = "_request")]
    fn request<'py>(&self, py: Python<'py>, call: RawCall) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.request(call).await)
    }

    /// Events as they occur: an async iterator (connects on the first `__anext__`).
    #[pyo3(signature = (device = None))]
    fn events(&self, device: Option<String>) -> EventStream {
        EventStream {
            inner: self.inner.clone(),
            device,
            stream: Arc::new(Mutex::new(Feed::Idle)),
            closing: Arc::default(),
        }
    }

    /// Attach to a console: an awaitable giving a `Console`.
    #[pyo3(signature = (name, mode = "attach", replay = None))]
    fn attach<'py>(
        &self,
        py: Python<'py>,
        name: String,
        mode: &str,
        replay: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mode = mode.parse::<Mode>().map_err(to_py)?;
        aw!(self, py, |c| Ok(Console::new(
            c.attach(&name, mode, replay).await?
        )))
    }
}

/// Where an [`EventStream`] is.
enum Feed {
    /// Not connected yet (connects on the first read).
    Idle,
    /// Connected.
    Open(Box<mo_client::EventStream>),
    /// Closed by `close()` or by the server; iteration has ended.
    Done,
}

type SharedFeed = Arc<Mutex<Feed>>;

/// A daemon's events as they occur. Dropping it closes the WebSocket.
#[pyclass(module = "mo._mo", frozen)]
pub struct EventStream {
    inner: Arc<Inner>,
    device: Option<String>,
    stream: SharedFeed,
    /// Wakes a pending read when `close()` is called.
    closing: Arc<Closing>,
}

/// The close signal of an [`EventStream`].
#[derive(Default)]
struct Closing {
    closed: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl EventStream {
    fn parts(&self) -> (Arc<Inner>, Option<String>, SharedFeed, Arc<Closing>) {
        (
            self.inner.clone(),
            self.device.clone(),
            self.stream.clone(),
            self.closing.clone(),
        )
    }

    async fn next(
        (inner, device, stream, closing): (Arc<Inner>, Option<String>, SharedFeed, Arc<Closing>),
    ) -> PyResult<Option<Json>> {
        let mut guard = stream.lock().await;
        let woken = closing.notify.notified();
        if closing.closed.load(std::sync::atomic::Ordering::SeqCst) {
            *guard = Feed::Done;
        }
        if matches!(*guard, Feed::Idle) {
            let opened = inner
                .client
                .event_stream(device.as_deref())
                .await
                .map_err(to_py)?;
            *guard = Feed::Open(Box::new(opened));
        }
        let Feed::Open(s) = &mut *guard else {
            return Ok(None);
        };
        let next = tokio::select! {
            next = s.next_event() => next,
            () = woken => None,
        };
        match next {
            Some(Ok(event)) => Ok(Some(json(&event)?)),
            Some(Err(e)) => Err(to_py(e)),
            None => {
                *guard = Feed::Done;
                Ok(None)
            }
        }
    }
}

#[pymethods]
impl EventStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let parts = self.parts();
        crate::runtime::future_into_py(py, async move {
            EventStream::next(parts)
                .await?
                .ok_or_else(|| PyStopAsyncIteration::new_err(()))
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Json> {
        block(py, EventStream::next(self.parts()))?.ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// Close the WebSocket; iteration ends (a pending read gives its end at once).
    fn close(&self) {
        self.closing
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.closing.notify.notify_waiters();
        if let Ok(mut feed) = self.stream.try_lock() {
            *feed = Feed::Done;
        }
    }
}

/// A client of a running `mod` daemon, for blocking code (`ca` and `pin` as for `Client`).
#[pyclass(module = "mo._mo", frozen, subclass)]
pub struct SyncClient {
    inner: Arc<Inner>,
}

#[pymethods]
impl SyncClient {
    #[new]
    #[pyo3(signature = (url, token, *, ca = None, pin = None))]
    fn new(
        url: &str,
        token: String,
        ca: Option<std::path::PathBuf>,
        pin: Option<String>,
    ) -> PyResult<SyncClient> {
        Ok(SyncClient {
            inner: new_inner(url, token, ca, pin)?,
        })
    }

    /// The daemon's base URL.
    #[getter]
    fn url(&self) -> &str {
        self.inner.client.base_url()
    }

    /// Every device the token may see.
    fn devices(&self, py: Python<'_>) -> PyResult<Json> {
        block(py, self.inner.devices())
    }

    /// One device, with its settings.
    fn device(&self, py: Python<'_>, name: &str) -> PyResult<Json> {
        block(py, self.inner.device(name))
    }

    /// The viewers of a console.
    fn who(&self, py: Python<'_>, name: &str) -> PyResult<Json> {
        block(py, self.inner.who(name))
    }

    /// Every viewer of every console.
    fn sessions(&self, py: Python<'_>) -> PyResult<Json> {
        block(py, self.inner.sessions())
    }

    /// One command to many consoles: each device's answer and the divergent devices.
    fn gang(&self, py: Python<'_>, targets: Vec<String>, command: String) -> PyResult<Json> {
        block(py, self.inner.gang(targets, command))
    }

    /// The names of the daemon's stored macros.
    fn macros(&self, py: Python<'_>) -> PyResult<Json> {
        block(py, self.inner.macros())
    }

    /// Play a stored macro on devices (or only show the plan with `dry_run`).
    #[pyo3(signature = (name, targets, args = None, dry_run = false))]
    fn play_macro(
        &self,
        py: Python<'_>,
        name: String,
        targets: Vec<String>,
        args: Option<std::collections::BTreeMap<String, String>>,
        dry_run: bool,
    ) -> PyResult<Json> {
        let args: Vec<(String, String)> = args.unwrap_or_default().into_iter().collect();
        block(py, self.inner.play_macro(name, targets, args, dry_run))
    }

    /// Power `on`, `off`, `cycle`, `reset`, `soft-off` or `status`.
    #[pyo3(signature = (name, action = "status"))]
    fn power(&self, py: Python<'_>, name: &str, action: &str) -> PyResult<Json> {
        block(py, self.inner.power(name, power_action(action)?))
    }

    /// Power `action` on every device `targets` names (names, globs, `@GROUP`s).
    #[pyo3(signature = (targets, action = "status"))]
    fn power_many(&self, py: Python<'_>, targets: Vec<String>, action: &str) -> PyResult<Json> {
        block(py, self.inner.power_many(targets, power_action(action)?))
    }

    /// The rendered record log.
    #[pyo3(signature = (name, tail = None, since = None, until = None))]
    fn log(
        &self,
        py: Python<'_>,
        name: &str,
        tail: Option<usize>,
        since: Option<String>,
        until: Option<String>,
    ) -> PyResult<String> {
        block(py, self.inner.log(name, log_query(tail, since, until)))
    }

    /// Stored events, oldest first.
    #[pyo3(signature = (device = None, limit = None, unacked = false))]
    fn recent_events(
        &self,
        py: Python<'_>,
        device: Option<String>,
        limit: Option<usize>,
        unacked: bool,
    ) -> PyResult<Json> {
        block(
            py,
            self.inner
                .recent_events(event_query(device, limit, unacked)),
        )
    }

    /// The raw request under the generated calls (`mo._api.SyncCalls`): the answer's JSON.
    #[pyo3(name = "_request")]
    fn request(&self, py: Python<'_>, call: RawCall) -> PyResult<Json> {
        block(py, self.inner.request(call))
    }

    /// Events as they occur: an iterator.
    #[pyo3(signature = (device = None))]
    fn events(&self, device: Option<String>) -> EventStream {
        EventStream {
            inner: self.inner.clone(),
            device,
            stream: Arc::new(Mutex::new(Feed::Idle)),
            closing: Arc::default(),
        }
    }

    /// Attach to a console (use it as `with`).
    #[pyo3(signature = (name, mode = "attach", replay = None))]
    fn attach(
        &self,
        py: Python<'_>,
        name: &str,
        mode: &str,
        replay: Option<usize>,
    ) -> PyResult<SyncConsole> {
        let mode = mode.parse::<Mode>().map_err(to_py)?;
        Ok(SyncConsole::new(block(
            py,
            self.inner.attach(name, mode, replay),
        )?))
    }
}

/// Add the client classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()?;
    m.add_class::<SyncClient>()?;
    m.add_class::<EventStream>()?;
    Ok(())
}
