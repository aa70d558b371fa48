//! [`open`] and the [`Console`] object: one attachment to one console, embedded in this process
//! or on a daemon ([`crate::Client::attach`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use mo_core::automation::ExpectPattern;
use mo_core::console::Mode;
use mo_core::facade::{ConsoleHandle, FileTranscript, LocalOptions, Output};
use mo_drivers::{Credentials, DriverOptions};

use crate::error::{MoError, invalid};
use crate::runtime::{block, spawn};

/// The default timeout of `expect`, in seconds (the same in every binding, docs/sdk.md).
pub const EXPECT_TIMEOUT_SECS: f64 = 30.0;
/// At most this many bytes are joined into one `read()` result.
const READ_BATCH: usize = 256 * 1024;

/// Options of [`open`]; every field may be left out. The secrets (`password`, `private_key`,
/// `key_passphrase`, `bmc_key`) are never printed nor put in an error message.
// No `Debug`: it holds secrets.
#[derive(Default, uniffi::Record)]
pub struct OpenOptions {
    /// Who types (default: the OS user).
    #[uniffi(default)]
    pub user: Option<String>,
    /// The device name (default: the host of `sim://NAME`, else the URL's last path segment,
    /// else its host).
    #[uniffi(default)]
    pub name: Option<String>,
    /// `attach` (default), `spy`, `force` or `join`.
    #[uniffi(default)]
    pub mode: Option<String>,
    /// Lines of recent output to replay first.
    #[uniffi(default)]
    pub replay: Option<u32>,
    /// Wait at most this many seconds for the link to come up (default 30; 0: do not wait).
    #[uniffi(default)]
    pub wait_up: Option<f64>,
    /// Keep a record log in this directory.
    #[uniffi(default)]
    pub log_dir: Option<String>,
    /// The directory relative paths in the URL resolve against.
    #[uniffi(default)]
    pub base_dir: Option<String>,
    /// What `send_line` appends (default `"\r"`).
    #[uniffi(default)]
    pub line_end: Option<String>,
    /// `ssh://` password, `ipmi://` user password.
    #[uniffi(default)]
    pub password: Option<String>,
    /// `ssh://` private key: its OpenSSH/PEM text (holding `-----BEGIN`), else the path of the
    /// key file.
    #[uniffi(default)]
    pub private_key: Option<String>,
    /// The passphrase of an encrypted `private_key`.
    #[uniffi(default)]
    pub key_passphrase: Option<String>,
    /// An OpenSSH `known_hosts` file holding the device's host key (without it every host key is
    /// unknown and refused).
    #[uniffi(default)]
    pub known_hosts: Option<String>,
    /// Accept a host key seen for the first time and record it in `known_hosts` (which must be
    /// given); a changed key is always refused. Default `false`.
    #[uniffi(default)]
    pub trust_host_key: Option<bool>,
    /// `ipmi://` BMC key (K_g).
    #[uniffi(default)]
    pub bmc_key: Option<String>,
    /// A transcript of every byte read (pexpect's `logfile`): a file path, appended to.
    #[uniffi(default)]
    pub logfile: Option<String>,
    /// Put what is sent into the `logfile` too. Default `false`.
    #[uniffi(default)]
    pub logfile_sent: Option<bool>,
}

impl OpenOptions {
    /// The driver options: `base_dir`, the secrets and the host-key policy.
    fn driver_options(&self) -> Result<DriverOptions, MoError> {
        let mut creds = Credentials::new();
        creds.password = self.password.as_deref().map(Into::into);
        if let Some(key) = &self.private_key {
            let text = if key.contains("-----BEGIN") {
                key.clone()
            } else {
                std::fs::read_to_string(key).map_err(|e| {
                    invalid(format!(
                        "private_key: cannot read the key file {key}: {e} (give a file path or \
                         the key's PEM/OpenSSH text)"
                    ))
                })?
            };
            creds.private_key = Some(text.into());
        }
        creds.key_passphrase = self.key_passphrase.as_deref().map(Into::into);
        creds.bmc_key = self.bmc_key.as_deref().map(Into::into);
        let trust = self.trust_host_key.unwrap_or(false);
        if trust && self.known_hosts.is_none() {
            return Err(invalid(
                "trust_host_key needs known_hosts (the file the new host key is recorded in)",
            ));
        }
        let mut driver = DriverOptions::new()
            .with_credentials(creds)
            .with_trust_on_first_use(trust);
        driver.base_dir = self.base_dir.as_ref().map(Into::into);
        driver.known_hosts = self.known_hosts.as_ref().map(Into::into);
        Ok(driver)
    }

    /// The facade's options: user, mode, replay, link wait and record log.
    fn local_options(&self) -> Result<LocalOptions, MoError> {
        let mut local = LocalOptions::default();
        if let Some(user) = &self.user {
            local = local.user(user.as_str());
        }
        if let Some(mode) = &self.mode {
            local = local.mode(parse_mode(mode)?);
        }
        if let Some(lines) = self.replay {
            local = local.replay(lines as usize);
        }
        if let Some(secs) = self.wait_up {
            let wait = seconds(secs, "wait_up")?;
            local = local.wait_up((!wait.is_zero()).then_some(wait));
        }
        if let Some(dir) = &self.log_dir {
            local = local.log_dir(dir);
        }
        Ok(local)
    }
}

/// What `expect` found.
#[derive(Debug, uniffi::Record)]
pub struct ExpectMatch {
    /// Which pattern matched (its index in the list given).
    pub index: u32,
    /// The matched text.
    pub matched: String,
    /// The text before the match, not consumed by an earlier match.
    pub before: String,
    /// The capture groups (none for a group that did not take part).
    pub captures: Vec<Option<String>>,
    /// Output bytes lost (reader too slow) while waiting.
    pub missed: u64,
}

/// One viewer of a console (`who`).
#[derive(Debug, uniffi::Record)]
pub struct Viewer {
    /// The user.
    pub user: String,
    /// `attach` (holds the write lock), `join` or `spy`.
    pub role: String,
    /// When it connected.
    pub since: SystemTime,
}

/// A console: read its output, type into it, wait for text with `expect`. Every method has a
/// blocking form (`read`, `expect`, …) and an async twin (`read_async`, `expect_async`, …: a
/// Kotlin `suspend fun`, a Swift `async func`, a Ruby method that releases the GVL).
#[derive(uniffi::Object)]
pub struct Console {
    handle: ConsoleHandle,
    /// A non-data item met while joining data for `read`, given out next.
    pending: Mutex<Option<Output>>,
}

impl Console {
    /// Wrap a facade handle.
    pub(crate) fn wrap(handle: ConsoleHandle) -> Arc<Console> {
        Arc::new(Console {
            handle,
            pending: Mutex::new(None),
        })
    }

    fn take_pending(&self) -> Option<Output> {
        self.pending.lock().ok().and_then(|mut p| p.take())
    }

    fn keep_pending(&self, item: Output) {
        if let Ok(mut p) = self.pending.lock() {
            *p = Some(item);
        }
    }

    async fn do_read(&self) -> Result<Option<Vec<u8>>, MoError> {
        let mut data = loop {
            let item = match self.take_pending() {
                Some(item) => item,
                None => self.handle.read().await,
            };
            match item {
                Output::Data(bytes) => break bytes.to_vec(),
                closed @ Output::Closed(_) => {
                    self.keep_pending(closed);
                    return Ok(None);
                }
                _ => {}
            }
        };
        while data.len() < READ_BATCH {
            match self.handle.read().now_or_never() {
                Some(Output::Data(bytes)) => data.extend_from_slice(&bytes),
                Some(Output::Missed(_)) => {}
                Some(other) => {
                    self.keep_pending(other);
                    break;
                }
                None => break,
            }
        }
        Ok(Some(data))
    }

    async fn do_expect(
        &self,
        patterns: Vec<String>,
        timeout: f64,
        literal: bool,
    ) -> Result<ExpectMatch, MoError> {
        if patterns.is_empty() {
            return Err(invalid("expect: give at least one pattern"));
        }
        let patterns = patterns
            .iter()
            .map(|p| {
                if literal {
                    ExpectPattern::literal(p)
                } else {
                    ExpectPattern::regex(p)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = seconds(timeout, "expect timeout")?;
        let m = self.handle.expect(&patterns, timeout).await?;
        Ok(ExpectMatch {
            index: u32::try_from(m.index).unwrap_or(u32::MAX),
            matched: m.matched,
            before: m.before,
            captures: m.captures,
            missed: m.missed,
        })
    }

    async fn do_send_break(&self, number: u8) -> Result<String, MoError> {
        if number > 9 {
            return Err(invalid(format!(
                "send_break: number must be 0 to 9, not {number}"
            )));
        }
        Ok(self.handle.send_break(number).await?)
    }

    async fn do_set_mode(&self, mode: String) -> Result<String, MoError> {
        Ok(self.handle.set_mode(parse_mode(&mode)?).await?)
    }

    async fn do_who(&self) -> Result<Vec<Viewer>, MoError> {
        let viewers = self.handle.who().await?;
        Ok(viewers
            .into_iter()
            .map(|v| Viewer {
                user: v.user,
                role: v.role,
                since: v.since,
            })
            .collect())
    }
}

/// The blocking methods (every language).
#[uniffi::export]
impl Console {
    /// The device name.
    pub fn device(&self) -> String {
        self.handle.device().to_string()
    }

    /// The user this console was opened as.
    pub fn user(&self) -> String {
        self.handle.info().user.clone()
    }

    /// The role granted when attaching: `attach` (holds the write lock), `join` or `spy`.
    pub fn role(&self) -> String {
        self.handle.info().role.clone()
    }

    /// The message given when attaching (e.g. who else holds the write lock).
    pub fn message(&self) -> String {
        self.handle.info().message.clone()
    }

    /// The next output: the bytes the device sent (everything already waiting, joined), or none
    /// once the console is closed. Waits until there is some.
    pub fn read(&self) -> Result<Option<Vec<u8>>, MoError> {
        block(self.do_read())
    }

    /// Type bytes.
    pub fn write(&self, data: Vec<u8>) -> Result<(), MoError> {
        block(async { Ok(self.handle.write(&data).await?) })
    }

    /// Type `line` and the line end (`\r` unless `line_end` was given to `open`).
    pub fn send_line(&self, line: String) -> Result<(), MoError> {
        block(async { Ok(self.handle.send_line(&line).await?) })
    }

    /// Wait up to `timeout` seconds (default 30) for any of `patterns` in the output with ANSI
    /// codes removed. Patterns are regular expressions (Rust `regex` syntax) unless `literal`;
    /// the earliest match wins. `Timeout` names the patterns and the last output.
    #[uniffi::method(default(timeout = 30.0, literal = false))]
    pub fn expect(
        &self,
        patterns: Vec<String>,
        timeout: f64,
        literal: bool,
    ) -> Result<ExpectMatch, MoError> {
        block(self.do_expect(patterns, timeout, literal))
    }

    /// The output `expect` has read and no match has consumed yet.
    pub fn buffer(&self) -> Result<String, MoError> {
        block(async { Ok(self.handle.buffer().await) })
    }

    /// Send break sequence `number` (default 0: the console's plain BREAK); gives a description
    /// of what was sent.
    #[uniffi::method(default(number = 0))]
    pub fn send_break(&self, number: u8) -> Result<String, MoError> {
        block(self.do_send_break(number))
    }

    /// Tell the console this viewer's window size.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), MoError> {
        block(async { Ok(self.handle.resize(cols, rows).await?) })
    }

    /// Change role: `attach`, `spy`, `force` or `join`; gives mo's message.
    pub fn set_mode(&self, mode: String) -> Result<String, MoError> {
        block(self.do_set_mode(mode))
    }

    /// Write a note into the console's record log.
    pub fn note(&self, text: String) -> Result<(), MoError> {
        block(async { Ok(self.handle.note(&text).await?) })
    }

    /// Everyone on the console, the write-lock holder first.
    pub fn who(&self) -> Result<Vec<Viewer>, MoError> {
        block(self.do_who())
    }

    /// Leave the console (an embedded console stops). Later reads give none.
    pub fn close(&self) -> Result<(), MoError> {
        block(async { Ok(self.handle.close().await?) })
    }
}

/// The async twins (Kotlin `suspend`, Swift `async`, Ruby waiting with the GVL released).
#[uniffi::export]
impl Console {
    /// [`Console::read`], async.
    pub async fn read_async(self: Arc<Self>) -> Result<Option<Vec<u8>>, MoError> {
        spawn(async move { self.do_read().await }).await
    }

    /// [`Console::write`], async.
    pub async fn write_async(self: Arc<Self>, data: Vec<u8>) -> Result<(), MoError> {
        spawn(async move { Ok(self.handle.write(&data).await?) }).await
    }

    /// [`Console::send_line`], async.
    pub async fn send_line_async(self: Arc<Self>, line: String) -> Result<(), MoError> {
        spawn(async move { Ok(self.handle.send_line(&line).await?) }).await
    }

    /// [`Console::expect`], async (the same default timeout, 30 s).
    #[uniffi::method(default(timeout = 30.0, literal = false))]
    pub async fn expect_async(
        self: Arc<Self>,
        patterns: Vec<String>,
        timeout: f64,
        literal: bool,
    ) -> Result<ExpectMatch, MoError> {
        spawn(async move { self.do_expect(patterns, timeout, literal).await }).await
    }

    /// [`Console::send_break`], async.
    #[uniffi::method(default(number = 0))]
    pub async fn send_break_async(self: Arc<Self>, number: u8) -> Result<String, MoError> {
        spawn(async move { self.do_send_break(number).await }).await
    }

    /// [`Console::resize`], async.
    pub async fn resize_async(self: Arc<Self>, cols: u16, rows: u16) -> Result<(), MoError> {
        spawn(async move { Ok(self.handle.resize(cols, rows).await?) }).await
    }

    /// [`Console::set_mode`], async.
    pub async fn set_mode_async(self: Arc<Self>, mode: String) -> Result<String, MoError> {
        spawn(async move { self.do_set_mode(mode).await }).await
    }

    /// [`Console::note`], async.
    pub async fn note_async(self: Arc<Self>, text: String) -> Result<(), MoError> {
        spawn(async move { Ok(self.handle.note(&text).await?) }).await
    }

    /// [`Console::who`], async.
    pub async fn who_async(self: Arc<Self>) -> Result<Vec<Viewer>, MoError> {
        spawn(async move { self.do_who().await }).await
    }

    /// [`Console::close`], async.
    pub async fn close_async(self: Arc<Self>) -> Result<(), MoError> {
        spawn(async move { Ok(self.handle.close().await?) }).await
    }
}

/// Open the console of the device at `url` in this process (no daemon): `sim://web01`,
/// `serial:///dev/ttyUSB0?baud=115200`, `ssh://user@host`, `telnet://…`, `ipmi://…`, … Waits
/// until the link is up (`Connect` if it fails, `Timeout` after `wait_up`). A bad URL is an
/// `InvalidArgument` naming it.
#[uniffi::export(default(options = None))]
pub fn open(url: String, options: Option<OpenOptions>) -> Result<Arc<Console>, MoError> {
    block(open_embedded(url, options.unwrap_or_default()))
}

/// [`open`], async.
#[uniffi::export(default(options = None))]
pub async fn open_async(
    url: String,
    options: Option<OpenOptions>,
) -> Result<Arc<Console>, MoError> {
    spawn(open_embedded(url, options.unwrap_or_default())).await
}

async fn open_embedded(url: String, options: OpenOptions) -> Result<Arc<Console>, MoError> {
    let name = options.name.clone().unwrap_or_else(|| name_from_url(&url));
    let driver = options.driver_options()?;
    let connector = mo_drivers::connector_for(&url, &driver)?;
    let local = options.local_options()?;
    let mut handle = mo_core::facade::open_local(&name, connector, local).await?;
    if let Some(path) = &options.logfile {
        let sent = options.logfile_sent.unwrap_or(false);
        let file = FileTranscript::append(std::path::Path::new(path), sent)?;
        handle.set_transcript(Some(Arc::new(file)));
    }
    if let Some(end) = &options.line_end {
        handle = handle.with_line_end(end.as_bytes());
    }
    Ok(Console::wrap(handle))
}

/// A mode name (`attach`, `spy`, `force`, `join`).
pub(crate) fn parse_mode(mode: &str) -> Result<Mode, MoError> {
    Ok(mode.parse::<Mode>()?)
}

/// Seconds as a duration; negative, NaN and huge values are refused.
fn seconds(secs: f64, what: &str) -> Result<Duration, MoError> {
    if !(0.0..=1e9).contains(&secs) {
        return Err(invalid(format!(
            "{what} must be a number of seconds from 0 to 1e9, not {secs}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The device name a URL implies: the host of `sim://NAME`; else the last path segment; else
/// the host; else `console`.
fn name_from_url(url: &str) -> String {
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => r.split_once('/').unwrap_or((r, "")),
        None => ("", rest),
    };
    // user@host:port → host
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if scheme == "sim" && !host.is_empty() {
        return host.to_string();
    }
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .or(Some(host).filter(|h| !h.is_empty()))
        .unwrap_or("console")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::name_from_url;

    #[test]
    fn names_from_urls() {
        assert_eq!(name_from_url("sim://web01?boot=fast"), "web01");
        assert_eq!(name_from_url("serial:///dev/ttyUSB0?baud=9600"), "ttyUSB0");
        assert_eq!(name_from_url("ssh://admin@10.0.0.5:22"), "10.0.0.5");
        assert_eq!(name_from_url("exec:"), "console");
    }
}
