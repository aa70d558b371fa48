//! `open()` and the `Console` class: one attachment to one console, local or on a daemon.

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::FutureExt as _;
use mo_core::automation::ExpectPattern;
use mo_core::console::Mode;
use mo_core::event::{Event, EventService, NoSink, Rules};
use mo_core::facade::{ConsoleHandle, FileTranscript, LocalOptions, Output};
use mo_core::scan::{PatternBook, PatternConfig};
use mo_drivers::{Credentials, DriverOptions};
use napi::Result;
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;
use tokio::sync::broadcast;

use crate::error::{bad_request, to_napi};

/// At most this many bytes are joined into one `read()` result.
const READ_BATCH: usize = 256 * 1024;

/// Options of `open()`.
// No `Debug`: it holds secrets.
#[napi(object)]
#[derive(Default)]
pub struct OpenOptions {
    /// Who types (default: the OS user).
    pub user: Option<String>,
    /// The device name (default: taken from the URL: the host of `sim://NAME`, else the last
    /// path segment).
    pub name: Option<String>,
    /// `attach` (default), `spy`, `force` or `join`.
    pub mode: Option<String>,
    /// Lines of recent output to replay first.
    pub replay: Option<u32>,
    /// Wait at most this long for the link to come up (default 30000; 0: do not wait).
    pub wait_up_ms: Option<f64>,
    /// Keep a record log in this directory.
    pub log_dir: Option<String>,
    /// The directory relative paths in the URL resolve against.
    pub base_dir: Option<String>,
    /// What `sendLine` appends (default `"\r"`).
    pub line_end: Option<String>,
    /// Patterns to watch the output for, as the daemon watches its consoles: each match (and
    /// each link change) is an event, read with `nextEvent()`.
    pub scan: Option<Vec<ScanPattern>>,
    /// `ssh://` and `ipmi://`: the password (SSH password, IPMI user password). Never printed.
    pub password: Option<String>,
    /// `ssh://`: a private key, as its OpenSSH/PEM text (holding `-----BEGIN`) or the path of
    /// the key file. Never printed.
    pub private_key: Option<String>,
    /// `ssh://`: the passphrase of an encrypted `privateKey`. Never printed.
    pub key_passphrase: Option<String>,
    /// `ssh://`: an OpenSSH `known_hosts` file holding the device's host key (without it every
    /// host key is unknown and refused).
    pub known_hosts: Option<String>,
    /// `ssh://`: accept a host key seen for the first time and record it in `knownHosts` (a
    /// changed key is always refused). Default `false`.
    pub trust_host_key: Option<bool>,
    /// `ipmi://`: the BMC key (K_g). Never printed.
    pub bmc_key: Option<String>,
    /// A transcript of every byte read (pexpect's `logfile`): a file path, appended to, or (in
    /// `index.js`) a writable stream.
    #[napi(ts_type = "string | NodeJS.WritableStream")]
    pub logfile: Option<String>,
    /// Put what is sent into the `logfile` too. Default `false`.
    pub logfile_sent: Option<bool>,
}

impl OpenOptions {
    /// The driver options: `baseDir`, the secrets and the host-key policy.
    fn driver_options(&self) -> Result<DriverOptions> {
        let mut creds = Credentials::new();
        creds.password = self.password.as_deref().map(Into::into);
        creds.private_key = self
            .private_key
            .as_deref()
            .map(read_key)
            .transpose()?
            .map(Into::into);
        creds.key_passphrase = self.key_passphrase.as_deref().map(Into::into);
        creds.bmc_key = self.bmc_key.as_deref().map(Into::into);
        let trust = self.trust_host_key.unwrap_or(false);
        if trust && self.known_hosts.is_none() {
            return Err(bad_request(
                "trustHostKey: true needs knownHosts (the file the new host key is recorded in)",
            ));
        }
        let mut driver = DriverOptions::new()
            .with_credentials(creds)
            .with_trust_on_first_use(trust);
        driver.base_dir = self.base_dir.as_ref().map(Into::into);
        driver.known_hosts = self.known_hosts.as_ref().map(Into::into);
        Ok(driver)
    }
}

/// A private key given as text (it holds `-----BEGIN`) or as the path of a key file. Errors name
/// the path, never the key.
fn read_key(key: &str) -> Result<String> {
    if key.contains("-----BEGIN") {
        return Ok(key.to_owned());
    }
    std::fs::read_to_string(key).map_err(|e| {
        bad_request(format!(
            "privateKey: cannot read the key file {key}: {e} (give a file path or the key's \
             PEM/OpenSSH text)"
        ))
    })
}

/// A pattern of `open(url, { scan })`.
#[napi(object)]
#[derive(Debug)]
pub struct ScanPattern {
    /// Its name, unique.
    pub name: String,
    /// A regular expression, matched against ANSI-stripped lines (and a prompt after a quiet
    /// period).
    pub regex: String,
    /// `info`, `notice`, `warning` (default), `error` or `critical`.
    pub severity: Option<String>,
}

/// An event of an embedded console (`nextEvent()`), with the keys of the daemon's event stream.
#[napi(object)]
#[derive(Debug)]
pub struct ConsoleEvent {
    /// Its number.
    pub id: f64,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// The device.
    pub device: String,
    /// `info`, `notice`, `warning`, `error` or `critical`.
    pub severity: String,
    /// Where it came from: `pattern`, `connection`, `log`, …
    pub name: String,
    /// What happened.
    pub text: String,
    /// How many times it happened.
    pub count: f64,
    /// Output lines before it (for a pattern: ending with the matching line).
    pub context: Vec<String>,
}

impl From<Event> for ConsoleEvent {
    fn from(e: Event) -> Self {
        ConsoleEvent {
            id: e.id as f64,
            time: mo_core::log::format_timestamp(u64::try_from(e.time_ns).unwrap_or(0)),
            device: e.device,
            severity: e.severity.to_string(),
            name: e.source.to_string(),
            text: e.message,
            count: e.count as f64,
            context: e.context,
        }
    }
}

/// What `expect` found.
#[napi(object)]
#[derive(Debug)]
pub struct ExpectMatch {
    /// Which pattern matched (index into the array given).
    pub index: u32,
    /// The matched text.
    pub matched: String,
    /// The text before the match, not consumed by an earlier match.
    pub before: String,
    /// The capture groups of a regex (`null` for a group that did not take part).
    pub captures: Vec<Option<String>>,
    /// Output bytes lost (reader too slow) while waiting.
    pub missed: f64,
}

/// One viewer of a console (`who()`).
#[napi(object)]
#[derive(Debug)]
pub struct Viewer {
    /// The user.
    pub user: String,
    /// `rw`, `join` or `spy`.
    pub role: String,
    /// When it connected, in milliseconds since the Unix epoch.
    pub since_ms: f64,
}

/// A regular expression as JavaScript has it: a `RegExp` object fits.
#[napi(object)]
#[derive(Debug)]
pub struct RegexSource {
    /// The pattern.
    pub source: String,
    /// Its flags (`i`, `m` and `s` are honoured).
    pub flags: String,
}

/// Options of `expect()`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct ExpectOptions {
    /// Match string patterns literally instead of as regular expressions (RegExp objects are
    /// unaffected). Default `false`.
    pub literal: Option<bool>,
}

/// One output item of `readOutput()`.
#[napi(object)]
pub struct OutputItem {
    /// `data`, `notice`, `missed` or `closed`.
    pub kind: String,
    /// The bytes, for `data`.
    pub data: Option<Buffer>,
    /// The message, for `notice` and `closed`.
    pub text: Option<String>,
    /// How many bytes went by unseen, for `missed`.
    pub bytes: Option<f64>,
}

/// A console: read its output, type into it, wait for text with `expect`.
#[napi]
pub struct Console {
    pub(crate) inner: Arc<ConsoleHandle>,
    /// A non-data item met while joining data for `read()`, given out next.
    pending: Mutex<Option<Output>>,
    /// Bytes lost (reader too slow) as seen by `read()`.
    missed: Mutex<u64>,
    /// The events of an embedded console opened with `scan`.
    events: Option<tokio::sync::Mutex<broadcast::Receiver<Event>>>,
}

impl Console {
    /// Wrap a handle.
    pub(crate) fn wrap(handle: ConsoleHandle) -> Console {
        Console::with_events(handle, None)
    }

    fn with_events(handle: ConsoleHandle, events: Option<broadcast::Receiver<Event>>) -> Console {
        Console {
            inner: Arc::new(handle),
            pending: Mutex::new(None),
            missed: Mutex::new(0),
            events: events.map(tokio::sync::Mutex::new),
        }
    }

    async fn next_item(&self) -> Output {
        let pending = self.pending.lock().ok().and_then(|mut p| p.take());
        match pending {
            Some(item) => item,
            None => self.inner.read().await,
        }
    }

    fn count_missed(&self, bytes: u64) {
        if let Ok(mut m) = self.missed.lock() {
            *m += bytes;
        }
    }
}

#[napi]
impl Console {
    /// The device name.
    #[napi(getter)]
    pub fn device(&self) -> String {
        self.inner.device().to_string()
    }

    /// The user this console was opened as.
    #[napi(getter)]
    pub fn user(&self) -> String {
        self.inner.info().user.clone()
    }

    /// The role granted when attaching: `attach` (holds the write lock), `join` or `spy`.
    #[napi(getter)]
    pub fn role(&self) -> String {
        self.inner.info().role.clone()
    }

    /// The message given when attaching (e.g. who else holds the write lock).
    #[napi(getter)]
    pub fn message(&self) -> String {
        self.inner.info().message.clone()
    }

    /// Output bytes `read()` and the iterator lost because they were read too slowly.
    #[napi(getter)]
    pub fn missed(&self) -> f64 {
        self.missed.lock().map(|m| *m as f64).unwrap_or(0.0)
    }

    /// The next output: a Buffer of what the device sent (everything already waiting, joined),
    /// or `null` once the console is closed. Notices are skipped.
    #[napi]
    pub async fn read(&self) -> Result<Option<Buffer>> {
        let mut data = loop {
            match self.next_item().await {
                Output::Data(bytes) => break bytes.to_vec(),
                Output::Missed(bytes) => self.count_missed(bytes),
                Output::Closed(why) => {
                    if let Ok(mut p) = self.pending.lock() {
                        *p = Some(Output::Closed(why));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        };
        while data.len() < READ_BATCH {
            match self.inner.read().now_or_never() {
                Some(Output::Data(bytes)) => data.extend_from_slice(&bytes),
                Some(Output::Missed(bytes)) => self.count_missed(bytes),
                Some(other) => {
                    if let Ok(mut p) = self.pending.lock() {
                        *p = Some(other);
                    }
                    break;
                }
                None => break,
            }
        }
        Ok(Some(data.into()))
    }

    /// The next output item as it is: data, a notice from mo, missed bytes, or closed.
    #[napi]
    pub async fn read_output(&self) -> Result<OutputItem> {
        let item = self.next_item().await;
        let mut out = OutputItem {
            kind: String::new(),
            data: None,
            text: None,
            bytes: None,
        };
        match item {
            Output::Data(bytes) => {
                out.kind = "data".into();
                out.data = Some(bytes.to_vec().into());
            }
            Output::Notice(text) => {
                out.kind = "notice".into();
                out.text = Some(text);
            }
            Output::Missed(bytes) => {
                self.count_missed(bytes);
                out.kind = "missed".into();
                out.bytes = Some(bytes as f64);
            }
            Output::Closed(why) => {
                out.kind = "closed".into();
                out.text = Some(why);
            }
            _ => out.kind = "notice".into(),
        }
        Ok(out)
    }

    /// Type bytes (a Buffer, or a string sent as UTF-8).
    #[napi(ts_args_type = "data: Buffer | Uint8Array | string")]
    pub async fn write(&self, data: Either<String, Buffer>) -> Result<()> {
        let bytes: &[u8] = match &data {
            Either::A(text) => text.as_bytes(),
            Either::B(buf) => buf,
        };
        self.inner.write(bytes).await.map_err(to_napi)
    }

    /// Type `line` and the line end (`\r` unless `lineEnd` was given to `open`).
    #[napi]
    pub async fn send_line(&self, line: String) -> Result<()> {
        self.inner.send_line(&line).await.map_err(to_napi)
    }

    /// Wait up to `timeoutMs` (default 30000) for any of `patterns` in the output with ANSI
    /// codes removed: RegExp objects, or strings, which are regular expressions too (Rust `regex`
    /// syntax, as in Python) unless `{ literal: true }` is given. The earliest match wins.
    /// Rejects with `TimeoutError` (naming the patterns and the last output) or `MoError`
    /// (`closed`, `bad_request` for a bad regex).
    #[napi(
        ts_args_type = "patterns: Array<RegExp | string> | RegExp | string, timeoutMs?: number, options?: ExpectOptions"
    )]
    pub async fn expect(
        &self,
        patterns: Either<Vec<Either<String, RegexSource>>, Either<String, RegexSource>>,
        timeout_ms: Option<f64>,
        options: Option<ExpectOptions>,
    ) -> Result<ExpectMatch> {
        let list = match patterns {
            Either::A(list) => list,
            Either::B(one) => vec![one],
        };
        let literal = options.and_then(|o| o.literal).unwrap_or(false);
        let patterns = list
            .iter()
            .map(|p| pattern(p, literal))
            .collect::<Result<Vec<_>>>()?;
        if patterns.is_empty() {
            return Err(bad_request("expect: give at least one pattern"));
        }
        let timeout = duration_ms(timeout_ms.unwrap_or(30_000.0), "expect timeoutMs")?;
        let m = self
            .inner
            .expect(&patterns, timeout)
            .await
            .map_err(to_napi)?;
        Ok(ExpectMatch {
            index: u32::try_from(m.index).unwrap_or(u32::MAX),
            matched: m.matched,
            before: m.before,
            captures: m.captures,
            missed: m.missed as f64,
        })
    }

    /// The output `expect` has read and no match has consumed yet.
    #[napi]
    pub async fn buffer(&self) -> Result<String> {
        Ok(self.inner.buffer().await)
    }

    /// Send break sequence `number` (default 0: the console's plain BREAK). Resolves to a
    /// description of what was sent.
    #[napi]
    pub async fn send_break(&self, number: Option<u32>) -> Result<String> {
        let number = u8::try_from(number.unwrap_or(0))
            .ok()
            .filter(|n| *n <= 9)
            .ok_or_else(|| bad_request("sendBreak: number must be 0 to 9"))?;
        self.inner.send_break(number).await.map_err(to_napi)
    }

    /// Tell the console this viewer's window size.
    #[napi]
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<()> {
        let size = |v: u32, what: &str| {
            u16::try_from(v).map_err(|_| bad_request(format!("resize: {what} {v} is too large")))
        };
        let (cols, rows) = (size(cols, "cols")?, size(rows, "rows")?);
        self.inner.resize(cols, rows).await.map_err(to_napi)
    }

    /// Change role: `attach`, `spy`, `force` or `join`. Resolves to a message.
    #[napi]
    pub async fn set_mode(&self, mode: String) -> Result<String> {
        let mode = mode.parse::<Mode>().map_err(to_napi)?;
        self.inner.set_mode(mode).await.map_err(to_napi)
    }

    /// Write a note into the console's record log.
    #[napi]
    pub async fn note(&self, text: String) -> Result<()> {
        self.inner.note(&text).await.map_err(to_napi)
    }

    /// Everyone on the console, the write-lock holder first.
    #[napi]
    pub async fn who(&self) -> Result<Vec<Viewer>> {
        let viewers = self.inner.who().await.map_err(to_napi)?;
        Ok(viewers
            .into_iter()
            .map(|v| Viewer {
                user: v.user,
                role: v.role,
                since_ms: v
                    .since
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .unwrap_or(0.0),
            })
            .collect())
    }

    /// Leave the console (an embedded console stops). Later reads give `null`.
    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.inner.close().await.map_err(to_napi)
    }

    /// The console's next event, or `null` after `timeoutMs` (default 5000). Needs
    /// `open(url, { scan })`.
    #[napi]
    pub async fn next_event(&self, timeout_ms: Option<f64>) -> Result<Option<ConsoleEvent>> {
        let Some(events) = &self.events else {
            return Err(bad_request(
                "this console raises no events: open it with the scan option",
            ));
        };
        let limit = duration_ms(timeout_ms.unwrap_or(5000.0), "timeoutMs")?;
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
        let event = tokio::time::timeout(limit, next).await.ok().flatten();
        Ok(event.map(ConsoleEvent::from))
    }
}

/// Open the console of the device at `url` in this process (no daemon): `sim://web01`,
/// `serial:///dev/ttyUSB0?baud=115200`, `ssh://…`, `telnet://…`, `exec:…`, … Waits until the link
/// is up (rejects with `ConnectError` if it fails, `TimeoutError` after `waitUpMs`).
#[napi]
pub async fn open(url: String, options: Option<OpenOptions>) -> Result<Console> {
    let options = options.unwrap_or_default();
    let name = match &options.name {
        Some(name) => name.clone(),
        None => name_from_url(&url),
    };
    let driver = options.driver_options()?;
    let connector = mo_drivers::connector_for(&url, &driver).map_err(to_napi)?;
    let mut local = LocalOptions::default();
    if let Some(user) = &options.user {
        local = local.user(user.as_str());
    }
    if let Some(mode) = &options.mode {
        local = local.mode(mode.parse::<Mode>().map_err(to_napi)?);
    }
    if let Some(lines) = options.replay {
        local = local.replay(lines as usize);
    }
    if let Some(ms) = options.wait_up_ms {
        let wait = duration_ms(ms, "waitUpMs")?;
        local = local.wait_up((!wait.is_zero()).then_some(wait));
    }
    if let Some(dir) = &options.log_dir {
        local = local.log_dir(dir);
    }
    let mut events = None;
    if let Some(scan) = &options.scan {
        let configs: Vec<PatternConfig> = scan
            .iter()
            .map(|p| {
                let severity = p.severity.as_deref().unwrap_or("warning");
                PatternConfig::new(&p.name, &p.regex, severity)
            })
            .collect();
        if configs.is_empty() {
            return Err(bad_request("scan: give at least one pattern"));
        }
        let patterns = PatternBook::from_config(&configs).map_err(to_napi)?;
        // An event service of this console's own: no rules, nothing stored.
        let service = EventService::start(Rules::default(), patterns, Arc::new(NoSink), 1);
        events = Some(service.subscribe());
        local = local.events(service);
    }
    let mut handle = mo_core::facade::open_local(&name, connector, local)
        .await
        .map_err(to_napi)?;
    if let Some(path) = &options.logfile {
        let sent = options.logfile_sent.unwrap_or(false);
        let file = FileTranscript::append(std::path::Path::new(path), sent).map_err(to_napi)?;
        handle.set_transcript(Some(Arc::new(file)));
    }
    if let Some(end) = &options.line_end {
        handle = handle.with_line_end(end.as_bytes());
    }
    Ok(Console::with_events(handle, events))
}

/// Milliseconds from JavaScript as a duration; negative, NaN and huge values are refused.
pub(crate) fn duration_ms(ms: f64, what: &str) -> Result<Duration> {
    if !(0.0..=1e12).contains(&ms) {
        return Err(bad_request(format!(
            "{what} must be a number of milliseconds from 0 to 1e12, not {ms}"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// A JavaScript pattern as mo's: strings as regular expressions (literally with `literal`),
/// RegExps with their `i`, `m`, `s` flags.
pub(crate) fn pattern(p: &Either<String, RegexSource>, literal: bool) -> Result<ExpectPattern> {
    match p {
        Either::A(text) if literal => ExpectPattern::literal(text).map_err(to_napi),
        Either::A(text) => ExpectPattern::regex(text).map_err(to_napi),
        Either::B(re) => {
            let flags: String = re.flags.chars().filter(|c| "ims".contains(*c)).collect();
            let source = if flags.is_empty() {
                re.source.clone()
            } else {
                format!("(?{flags}){}", re.source)
            };
            ExpectPattern::regex(&source).map_err(to_napi)
        }
    }
}

/// The device name a URL implies: the host of `sim://NAME`, else the last path segment, else the
/// host, else `console`.
fn name_from_url(url: &str) -> String {
    let rest = url.split_once(':').map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (host, path) = match rest.strip_prefix("//") {
        Some(r) => r.split_once('/').unwrap_or((r, "")),
        None => ("", rest),
    };
    let host = host.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if url.starts_with("sim:") && !host.is_empty() {
        return host.to_string();
    }
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .or(Some(host).filter(|h| !h.is_empty()))
        .unwrap_or("console")
        .to_string()
}
