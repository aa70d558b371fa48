//! The extension module `mo._mo`: a thin layer over [`mo_core::facade`].
//!
//! [`Console`] (asyncio) and [`SyncConsole`] (blocking) both wrap one [`Core`], which holds a
//! [`ConsoleHandle`] and delegates to it. Coroutines run on the tokio runtime of
//! `pyo3-async-runtimes`, completed through [`runtime`]'s gate so that no runtime thread touches
//! Python once the interpreter exits; blocking calls release the GIL and wait on the same runtime.
//! Errors become the exception classes of `mo/_errors.py` (see [`errors`]).
// A Python extension has no Rust API: these docs are for its maintainers, who read them with
// `cargo doc --document-private-items`, where the links to private modules resolve.
#![allow(rustdoc::private_intra_doc_links)]

mod auth;
mod client;
mod errors;
mod log;
mod runtime;
mod transcript;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use mo_core::automation::ExpectPattern;
use mo_core::console::Mode;
use mo_core::event::{Event as CoreEvent, EventService, NoSink, Rules};
use mo_core::facade::{ConsoleHandle, LocalOptions, Output, Viewer as CoreViewer, open_local};
use mo_core::scan::{PatternBook, PatternConfig};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tokio::sync::broadcast;

pub(crate) use errors::{raise, to_py};

/// At most this many bytes are gathered into one `read()` result.
const READ_MAX: usize = 256 * 1024;

/// A console handle and what the bindings keep beside it.
pub(crate) struct Core {
    handle: ConsoleHandle,
    /// A non-data item met while gathering output, given to the next read.
    pending: std::sync::Mutex<Option<Output>>,
    /// Output bytes that went by unseen because this reader fell behind.
    missed: AtomicU64,
    /// The events of an embedded console opened with scan patterns.
    events: Option<tokio::sync::Mutex<broadcast::Receiver<CoreEvent>>>,
}

impl Core {
    pub(crate) fn new(handle: ConsoleHandle) -> Arc<Core> {
        Core::with_events(handle, None)
    }

    fn with_events(
        handle: ConsoleHandle,
        events: Option<broadcast::Receiver<CoreEvent>>,
    ) -> Arc<Core> {
        Arc::new(Core {
            handle,
            pending: std::sync::Mutex::new(None),
            missed: AtomicU64::new(0),
            events: events.map(tokio::sync::Mutex::new),
        })
    }

    /// The console's next event, or `None` after `timeout` (`None`: wait as long as it takes).
    async fn next_event(&self, timeout: Option<Duration>) -> PyResult<Option<EventItem>> {
        let Some(events) = &self.events else {
            return Err(raise(
                "InvalidArgument",
                "this console raises no events: open it with scan=[...] patterns".into(),
            ));
        };
        let mut rx = events.lock().await;
        let next = async {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        let event = match timeout {
            Some(limit) => tokio::time::timeout(limit, next).await.ok().flatten(),
            None => next.await,
        };
        Ok(event.map(EventItem))
    }

    fn take_pending(&self) -> Option<Output> {
        self.pending.lock().ok().and_then(|mut p| p.take())
    }

    /// The next output bytes (everything already waiting, up to [`READ_MAX`]); `None` at the end.
    /// Notices are skipped; missed bytes are counted in `missed`.
    async fn read(&self) -> Option<Bytes> {
        loop {
            let item = match self.take_pending() {
                Some(item) => item,
                None => self.handle.read().await,
            };
            match item {
                Output::Data(first) => return Some(self.gather(first)),
                Output::Missed(n) => {
                    self.missed.fetch_add(n, Ordering::Relaxed);
                }
                Output::Closed(_) => return None,
                _ => {}
            }
        }
    }

    /// `first` and whatever data is ready without waiting.
    fn gather(&self, first: Bytes) -> Bytes {
        let mut more: Option<BytesMut> = None;
        let mut len = first.len();
        while len < READ_MAX {
            match self.handle.read().now_or_never() {
                Some(Output::Data(b)) => {
                    len += b.len();
                    more.get_or_insert_with(|| BytesMut::from(&first[..]))
                        .extend_from_slice(&b);
                }
                Some(other) => {
                    if let Ok(mut p) = self.pending.lock() {
                        *p = Some(other);
                    }
                    break;
                }
                None => break,
            }
        }
        more.map_or(first, BytesMut::freeze)
    }

    async fn expect(&self, patterns: Vec<ExpectPattern>, timeout: Duration) -> PyResult<Match> {
        let m = self
            .handle
            .expect(&patterns, timeout)
            .await
            .map_err(to_py)?;
        Ok(Match {
            index: m.index,
            matched: m.matched,
            before: m.before,
            captures: m.captures,
            missed: m.missed,
        })
    }

    async fn who(&self) -> PyResult<Vec<Viewer>> {
        let who = self.handle.who().await.map_err(to_py)?;
        Ok(who.iter().map(Viewer::from).collect())
    }
}

/// An event as Python gets it: a dict with the keys of the daemon's event stream (`id`, `time`,
/// `device`, `severity`, `name` — the source —, `text`, `count`) and `context`.
pub(crate) struct EventItem(CoreEvent);

impl<'py> IntoPyObject<'py> for EventItem {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let e = self.0;
        let d = PyDict::new(py);
        d.set_item("id", e.id)?;
        let time_ns = u64::try_from(e.time_ns).unwrap_or(0);
        d.set_item("time", mo_core::log::format_timestamp(time_ns))?;
        d.set_item("device", e.device)?;
        d.set_item("severity", e.severity.to_string())?;
        d.set_item("name", e.source.to_string())?;
        d.set_item("text", e.message)?;
        d.set_item("count", e.count)?;
        d.set_item("context", e.context)?;
        Ok(d.into_any())
    }
}

/// Scan patterns as Python gives them: `(name, regex)` or `(name, regex, severity)` tuples.
fn scan_patterns(arg: &Bound<'_, PyAny>) -> PyResult<Vec<PatternConfig>> {
    let mut out = Vec::new();
    for item in arg.try_iter()? {
        let item = item?;
        let config = if let Ok((name, regex)) = item.extract::<(String, String)>() {
            PatternConfig::new(&name, &regex, "warning")
        } else if let Ok((name, regex, severity)) = item.extract::<(String, String, String)>() {
            PatternConfig::new(&name, &regex, &severity)
        } else {
            return Err(raise(
                "InvalidArgument",
                format!(
                    "scan: each pattern is (name, regex) or (name, regex, severity), not {}",
                    item.repr()?
                ),
            ));
        };
        out.push(config);
    }
    if out.is_empty() {
        return Err(raise(
            "InvalidArgument",
            "scan: give at least one (name, regex) pattern".into(),
        ));
    }
    Ok(out)
}

/// Patterns as Python gives them: one regular expression or a list of them.
/// `expect`'s patterns: regular expressions, or literal strings with `literal`.
fn patterns(arg: &Bound<'_, PyAny>, literal: bool) -> PyResult<Vec<ExpectPattern>> {
    let sources: Vec<String> = if arg.is_instance_of::<PyString>() {
        vec![arg.extract()?]
    } else {
        arg.extract()?
    };
    if sources.is_empty() {
        return Err(raise("InvalidArgument", "expect: no patterns given".into()));
    }
    sources
        .iter()
        .map(|s| {
            if literal {
                ExpectPattern::literal(s)
            } else {
                ExpectPattern::regex(s)
            }
            .map_err(to_py)
        })
        .collect()
}

/// Seconds as a [`Duration`]; fails for negative, NaN or huge values.
pub(crate) fn seconds(what: &str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        raise(
            "InvalidArgument",
            format!("{what}: {secs} is not a number of seconds"),
        )
    })
}

/// Run `fut` on the runtime with the GIL released.
pub(crate) fn block<T: Send>(py: Python<'_>, fut: impl Future<Output = T> + Send) -> T {
    py.detach(|| pyo3_async_runtimes::tokio::get_runtime().block_on(fut))
}

/// What `expect` found.
#[pyclass(module = "mo._mo", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct Match {
    /// Which pattern matched (its index in the list given).
    pub index: usize,
    /// The text it matched.
    pub matched: String,
    /// The output before the match that no earlier match consumed.
    pub before: String,
    /// The capture groups (group 1 first), `None` for a group that did not take part.
    pub captures: Vec<Option<String>>,
    /// Output bytes lost while waiting because the reader fell behind.
    pub missed: u64,
}

#[pymethods]
impl Match {
    fn __repr__(&self) -> String {
        format!(
            "Match(index={}, matched={:?}, before={:?})",
            self.index, self.matched, self.before
        )
    }
}

/// One viewer of a console (an entry of `who`).
#[pyclass(module = "mo._mo", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user.
    pub user: String,
    /// `attach` (holds the write lock), `join` or `spy`.
    pub role: String,
    /// When it connected, in seconds since the Unix epoch.
    pub since: f64,
}

impl From<&CoreViewer> for Viewer {
    fn from(v: &CoreViewer) -> Self {
        Viewer {
            user: v.user.clone(),
            role: v.role.clone(),
            since: v
                .since
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

#[pymethods]
impl Viewer {
    fn __repr__(&self) -> String {
        format!("Viewer(user={:?}, role={:?})", self.user, self.role)
    }
}

/// Properties shared by both console classes.
macro_rules! info_getters {
    ($t:ty) => {
        #[pymethods]
        impl $t {
            /// The device name.
            #[getter]
            fn device(&self) -> &str {
                self.core.handle.device()
            }
            /// Who is attached.
            #[getter]
            fn user(&self) -> &str {
                &self.core.handle.info().user
            }
            /// The role granted at connect time.
            #[getter]
            fn role(&self) -> &str {
                &self.core.handle.info().role
            }
            /// The message mo gave this viewer when it connected.
            #[getter]
            fn message(&self) -> &str {
                &self.core.handle.info().message
            }
            /// Output bytes that went by unseen because this reader fell behind.
            #[getter]
            fn missed(&self) -> u64 {
                self.core.missed.load(Ordering::Relaxed)
            }
            fn __repr__(&self) -> String {
                format!(
                    "<{} {} user={:?} role={:?}>",
                    stringify!($t),
                    self.core.handle.device(),
                    self.core.handle.info().user,
                    self.core.handle.info().role
                )
            }
        }
    };
}

/// A console, for asyncio.
#[pyclass(module = "mo._mo", frozen)]
pub struct Console {
    core: Arc<Core>,
}

info_getters!(Console);

impl Console {
    pub(crate) fn new(core: Arc<Core>) -> Console {
        Console { core }
    }
}

/// `future_into_py` with the core cloned in.
macro_rules! aw {
    ($self:ident, $py:ident, |$c:ident| $body:expr) => {{
        let $c = $self.core.clone();
        crate::runtime::future_into_py($py, async move { $body })
    }};
}

// After `aw!`, which it uses.
mod command;

#[pymethods]
impl Console {
    /// The next output bytes; `b""` once the console has closed.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| Ok(c.read().await.unwrap_or_default()))
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c
            .read()
            .await
            .ok_or_else(|| PyStopAsyncIteration::new_err(())))
    }

    /// Type bytes into the console.
    fn write<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let data = Bytes::copy_from_slice(data);
        aw!(self, py, |c| c.handle.write(&data).await.map_err(to_py))
    }

    /// Type `text` and Enter.
    fn send_line<'py>(&self, py: Python<'py>, text: String) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.handle.send_line(&text).await.map_err(to_py))
    }

    /// Wait for one of `patterns` (regular expressions; literal strings with `literal=True`),
    /// at most `timeout` seconds (default 30, as in Node).
    #[pyo3(signature = (patterns, timeout = 30.0, *, literal = false))]
    fn expect<'py>(
        &self,
        py: Python<'py>,
        patterns: &Bound<'py, PyAny>,
        timeout: f64,
        literal: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let patterns = self::patterns(patterns, literal)?;
        let timeout = seconds("expect timeout", timeout)?;
        aw!(self, py, |c| c.expect(patterns, timeout).await)
    }

    /// The console's next event (a dict, as the daemon's event stream gives them), or `None`
    /// after `timeout` seconds (`None`: wait). Needs `open(..., scan=[...])`.
    #[pyo3(signature = (timeout = Some(5.0)), text_signature = "(self, /, timeout=5.0)")]
    fn next_event<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout
            .map(|t| seconds("next_event timeout", t))
            .transpose()?;
        aw!(self, py, |c| c.next_event(timeout).await)
    }

    /// Output read by `expect` and not consumed by a match.
    fn buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| Ok(c.handle.buffer().await))
    }

    /// Send break sequence `number` (0: plain BREAK); returns what was sent.
    #[pyo3(signature = (number = 0))]
    fn send_break<'py>(&self, py: Python<'py>, number: u8) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c
            .handle
            .send_break(number)
            .await
            .map_err(to_py))
    }

    /// Tell the console this viewer's window size.
    fn resize<'py>(&self, py: Python<'py>, cols: u16, rows: u16) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c
            .handle
            .resize(cols, rows)
            .await
            .map_err(to_py))
    }

    /// Change role: `attach`, `spy`, `force` or `join`.
    fn set_mode<'py>(&self, py: Python<'py>, mode: &str) -> PyResult<Bound<'py, PyAny>> {
        let mode = mode.parse::<Mode>().map_err(to_py)?;
        aw!(self, py, |c| c.handle.set_mode(mode).await.map_err(to_py))
    }

    /// Write a note into the console's record log.
    fn note<'py>(&self, py: Python<'py>, text: String) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.handle.note(&text).await.map_err(to_py))
    }

    /// Everyone on the console, the write-lock holder first.
    fn who<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.who().await)
    }

    /// Leave the console (an embedded console also stops).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.handle.close().await.map_err(to_py))
    }

    fn __aenter__<'py>(slf: Py<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::runtime::future_into_py(py, async move { Ok(slf) })
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _ty: Option<Bound<'py, PyAny>>,
        _value: Option<Bound<'py, PyAny>>,
        _tb: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        aw!(self, py, |c| c.handle.close().await.map_err(to_py))
    }
}

/// A console, for blocking code: the methods of [`Console`] without `await`.
#[pyclass(module = "mo._mo", frozen)]
pub struct SyncConsole {
    core: Arc<Core>,
}

info_getters!(SyncConsole);

impl SyncConsole {
    pub(crate) fn new(core: Arc<Core>) -> SyncConsole {
        SyncConsole { core }
    }
}

#[pymethods]
impl SyncConsole {
    /// The next output bytes; `b""` once the console has closed.
    fn read(&self, py: Python<'_>) -> Bytes {
        block(py, self.core.read()).unwrap_or_default()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Bytes> {
        block(py, self.core.read()).ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// Type bytes into the console.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        block(py, self.core.handle.write(data)).map_err(to_py)
    }

    /// Type `text` and Enter.
    fn send_line(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        block(py, self.core.handle.send_line(text)).map_err(to_py)
    }

    /// Wait for one of `patterns` (regular expressions; literal strings with `literal=True`),
    /// at most `timeout` seconds (default 30, as in Node).
    #[pyo3(signature = (patterns, timeout = 30.0, *, literal = false))]
    fn expect(
        &self,
        py: Python<'_>,
        patterns: &Bound<'_, PyAny>,
        timeout: f64,
        literal: bool,
    ) -> PyResult<Match> {
        let patterns = self::patterns(patterns, literal)?;
        let timeout = seconds("expect timeout", timeout)?;
        block(py, self.core.expect(patterns, timeout))
    }

    /// The console's next event (a dict, as the daemon's event stream gives them), or `None`
    /// after `timeout` seconds (`None`: wait). Needs `open_sync(..., scan=[...])`.
    #[pyo3(signature = (timeout = Some(5.0)), text_signature = "(self, /, timeout=5.0)")]
    fn next_event(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<EventItem>> {
        let timeout = timeout
            .map(|t| seconds("next_event timeout", t))
            .transpose()?;
        block(py, self.core.next_event(timeout))
    }

    /// Output read by `expect` and not consumed by a match.
    fn buffer(&self, py: Python<'_>) -> String {
        block(py, self.core.handle.buffer())
    }

    /// Send break sequence `number` (0: plain BREAK); returns what was sent.
    #[pyo3(signature = (number = 0))]
    fn send_break(&self, py: Python<'_>, number: u8) -> PyResult<String> {
        block(py, self.core.handle.send_break(number)).map_err(to_py)
    }

    /// Tell the console this viewer's window size.
    fn resize(&self, py: Python<'_>, cols: u16, rows: u16) -> PyResult<()> {
        block(py, self.core.handle.resize(cols, rows)).map_err(to_py)
    }

    /// Change role: `attach`, `spy`, `force` or `join`.
    fn set_mode(&self, py: Python<'_>, mode: &str) -> PyResult<String> {
        let mode = mode.parse::<Mode>().map_err(to_py)?;
        block(py, self.core.handle.set_mode(mode)).map_err(to_py)
    }

    /// Write a note into the console's record log.
    fn note(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        block(py, self.core.handle.note(text)).map_err(to_py)
    }

    /// Everyone on the console, the write-lock holder first.
    fn who(&self, py: Python<'_>) -> PyResult<Vec<Viewer>> {
        block(py, self.core.who())
    }

    /// Leave the console (an embedded console also stops).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block(py, self.core.handle.close()).map_err(to_py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _ty: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.close(py)
    }
}

/// The device name for an address: `sim://NAME` gives NAME, others their host or last path part.
fn device_name(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "console".into();
    };
    if let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) {
        return host.to_string();
    }
    parsed
        .path()
        .rsplit('/')
        .find(|p| !p.is_empty())
        .unwrap_or("console")
        .to_string()
}

/// Open a console from its address in this process (embedded mode).
/// With `scan`, the console's output is scanned as the daemon scans its consoles and its events
/// are kept for `next_event` (an event service of its own, no rules, nothing stored).
async fn open_core(
    url: String,
    name: Option<String>,
    mut options: LocalOptions,
    scan: Option<PatternBook>,
    driver: mo_drivers::DriverOptions,
    transcript: Option<Arc<dyn mo_core::facade::Transcript>>,
) -> PyResult<Arc<Core>> {
    let connector = mo_drivers::connector_for(&url, &driver).map_err(to_py)?;
    let name = name.unwrap_or_else(|| device_name(&url));
    let events = scan.map(|patterns| {
        let service = EventService::start(Rules::default(), patterns, Arc::new(NoSink), 1);
        let rx = service.subscribe();
        options = options.clone().events(service);
        rx
    });
    let opened = open_local(&name, connector, options).await.map_err(to_py)?;
    opened.set_transcript(transcript);
    Ok(Core::with_events(opened, events))
}

/// The patterns of `scan=`, checked (a bad regex or severity is refused here).
fn scan_book(scan: Option<&Bound<'_, PyAny>>) -> PyResult<Option<PatternBook>> {
    scan.filter(|s| !s.is_none())
        .map(|s| PatternBook::from_config(&scan_patterns(s)?).map_err(to_py))
        .transpose()
}

fn local_options(
    user: Option<String>,
    mode: &str,
    replay: Option<usize>,
    wait_up: Option<f64>,
    log_dir: Option<std::path::PathBuf>,
) -> PyResult<LocalOptions> {
    let mut options = LocalOptions::default()
        .mode(mode.parse::<Mode>().map_err(to_py)?)
        .wait_up(wait_up.map(|s| seconds("wait_up", s)).transpose()?);
    if let Some(user) = user {
        options = options.user(user);
    }
    if let Some(lines) = replay {
        options = options.replay(lines);
    }
    if let Some(dir) = log_dir {
        options = options.log_dir(dir);
    }
    Ok(options)
}

/// Open a console from its address in this process; an awaitable giving a [`Console`].
#[pyfunction]
#[pyo3(
    signature = (url, *, user = None, name = None, mode = "attach", replay = None, wait_up = Some(30.0), log_dir = None, scan = None, password = None, private_key = None, key_passphrase = None, known_hosts = None, trust_host_key = false, bmc_key = None, logfile = None, logfile_sent = false),
    text_signature = "(url, *, user=None, name=None, mode='attach', replay=None, wait_up=30.0, log_dir=None, scan=None, password=None, private_key=None, key_passphrase=None, known_hosts=None, trust_host_key=False, bmc_key=None, logfile=None, logfile_sent=False)"
)]
#[allow(clippy::too_many_arguments)]
fn open<'py>(
    py: Python<'py>,
    url: String,
    user: Option<String>,
    name: Option<String>,
    mode: &str,
    replay: Option<usize>,
    wait_up: Option<f64>,
    log_dir: Option<std::path::PathBuf>,
    scan: Option<&Bound<'py, PyAny>>,
    password: Option<String>,
    private_key: Option<String>,
    key_passphrase: Option<String>,
    known_hosts: Option<std::path::PathBuf>,
    trust_host_key: bool,
    bmc_key: Option<String>,
    logfile: Option<&Bound<'py, PyAny>>,
    logfile_sent: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let options = local_options(user, mode, replay, wait_up, log_dir)?;
    let scan = scan_book(scan)?;
    let transcript = transcript::transcript(logfile, logfile_sent)?;
    let driver = auth::Auth {
        password,
        private_key,
        key_passphrase,
        known_hosts,
        trust_host_key,
        bmc_key,
    }
    .driver_options()?;
    crate::runtime::future_into_py(py, async move {
        Ok(Console::new(
            open_core(url, name, options, scan, driver, transcript).await?,
        ))
    })
}

/// Open a console from its address in this process, blocking; gives a [`SyncConsole`].
#[pyfunction]
#[pyo3(
    signature = (url, *, user = None, name = None, mode = "attach", replay = None, wait_up = Some(30.0), log_dir = None, scan = None, password = None, private_key = None, key_passphrase = None, known_hosts = None, trust_host_key = false, bmc_key = None, logfile = None, logfile_sent = false),
    text_signature = "(url, *, user=None, name=None, mode='attach', replay=None, wait_up=30.0, log_dir=None, scan=None, password=None, private_key=None, key_passphrase=None, known_hosts=None, trust_host_key=False, bmc_key=None, logfile=None, logfile_sent=False)"
)]
#[allow(clippy::too_many_arguments)]
fn open_sync(
    py: Python<'_>,
    url: String,
    user: Option<String>,
    name: Option<String>,
    mode: &str,
    replay: Option<usize>,
    wait_up: Option<f64>,
    log_dir: Option<std::path::PathBuf>,
    scan: Option<&Bound<'_, PyAny>>,
    password: Option<String>,
    private_key: Option<String>,
    key_passphrase: Option<String>,
    known_hosts: Option<std::path::PathBuf>,
    trust_host_key: bool,
    bmc_key: Option<String>,
    logfile: Option<&Bound<'_, PyAny>>,
    logfile_sent: bool,
) -> PyResult<SyncConsole> {
    let options = local_options(user, mode, replay, wait_up, log_dir)?;
    let scan = scan_book(scan)?;
    let transcript = transcript::transcript(logfile, logfile_sent)?;
    let driver = auth::Auth {
        password,
        private_key,
        key_passphrase,
        known_hosts,
        trust_host_key,
        bmc_key,
    }
    .driver_options()?;
    Ok(SyncConsole::new(block(
        py,
        open_core(url, name, options, scan, driver, transcript),
    )?))
}

/// The extension module.
#[pymodule]
fn _mo(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Console>()?;
    m.add_class::<SyncConsole>()?;
    m.add_class::<Match>()?;
    m.add_class::<Viewer>()?;
    m.add_class::<log::Log>()?;
    m.add_class::<log::LogRecord>()?;
    m.add_class::<log::LogRecords>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(open_sync, m)?)?;
    client::register(m)?;
    runtime::register(m)?;
    Ok(())
}
