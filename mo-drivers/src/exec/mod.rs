//! The `exec` driver: a program on a pseudo-terminal is the device.
//!
//! # Address
//!
//! ```text
//! exec:///usr/bin/ipmitool?arg=-I&arg=lanplus&arg=sol&arg=activate
//! exec:///bin/sh?arg=-c&arg=exec%20ssh%20-t%20cs1      a shell, only when asked for
//! exec:conserver-helper?arg=web01                        a bare name is looked up in PATH
//! exec:bin/console.sh                                    relative to DriverOptions::base_dir
//! ```
//!
//! The path names the program; it runs with exactly the given arguments (argv, no shell). A shell
//! runs only when the address names one, with `arg=-c` and the command line as the next `arg`.
//! There is deliberately no `cmd=` shorthand: a shell's quoting rules are a second language inside
//! the address, and an argv cannot be misquoted.
//!
//! | parameter | meaning | default |
//! |-----------|---------|---------|
//! | `arg=A`   | the next argument (repeatable, in order) | none |
//! | `env=N=V` | set environment variable `N` to `V` (repeatable) | inherited environment |
//! | `cwd=DIR` | working directory (relative: against the base directory) | inherited |
//! | `term=T`  | the `TERM` variable | `xterm-256color` |
//!
//! Query values are form-encoded: `+` or `%20` is a space, `%2B` a plus, `%26` an ampersand.
//!
//! An `arg` or `env` value may refer to a device secret as `${secret:password}` (any name of
//! [`secret_ref::NAMES`]): `exec:///usr/bin/ipmitool?arg=-P&arg=${secret:password}&…`. The secret
//! is put in only when the program starts, so the address — in listings, the API, audit details
//! and logs — never holds it.
//!
//! # Behaviour
//!
//! Each [`Connector::connect`] starts the program afresh on a new pty (80×24), as the leader of a
//! new session with the pty as its controlling terminal. The pty keeps the kernel's default cooked
//! settings (echo, line editing), as a login on a real terminal would; programs switch modes as
//! they need. When the program ends, whatever it left running in its session gets SIGHUP (then
//! SIGKILL after a second), and the link's reader sees end of file once the output is drained.
//! When every part of the link is dropped, the whole process tree gets SIGHUP and SIGCONT, then
//! SIGKILL after a second, and the program is reaped: no process and no zombie remains.
//!
//! Capabilities: window size (the program gets SIGWINCH). A pty carries no BREAK, so
//! [`ControlOp::Break`] answers [`Error::Unsupported`].
//!
//! ```
//! use mo_drivers::{DriverOptions, connector_for};
//!
//! let exec = connector_for("exec:///bin/cat", &DriverOptions::default()).unwrap();
//! assert!(exec.capabilities().window_size);
//! assert!(!exec.capabilities().send_break);
//! ```

mod pty;
pub mod secret_ref;
mod tree;

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mo_core::link::{Capabilities, Connector, ControlOp, Link, LinkControl};
use mo_core::{Error, Result};
use rustix::process::Signal;
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::time::Instant;
use url::Url;

use crate::Credentials;
use crate::address::{self, DriverOptions, Query};
use pty::{Master, MasterReader, MasterWriter, PtyPair};
pub use secret_ref::{SecretRefError, references, substitute};

/// The `TERM` given to programs unless the address says otherwise.
pub const DEFAULT_TERM: &str = "xterm-256color";
/// Columns of a new pty, until a viewer sends its window size.
pub const DEFAULT_COLS: u16 = 80;
/// Rows of a new pty, until a viewer sends its window size.
pub const DEFAULT_ROWS: u16 = 24;
/// How long the process tree has between SIGHUP and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// Query parameters the `exec` scheme knows.
const PARAMETERS: &[&str] = &["arg", "env", "cwd", "term"];

/// What to run: program, arguments, environment. Build it in code or read it from an address.
///
/// ```
/// use mo_drivers::exec::ExecSpec;
/// let spec = ExecSpec::new("/bin/sh").arg("-c").arg("echo hi").env("LANG", "C.UTF-8");
/// assert_eq!(spec.args, ["-c", "echo hi"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecSpec {
    /// The program: an absolute path, or a bare name looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments (not including the program name).
    pub args: Vec<String>,
    /// Variables set on top of the inherited environment (after `TERM`, so they may override it).
    pub env: Vec<(String, String)>,
    /// The working directory, if not the caller's.
    pub cwd: Option<PathBuf>,
    /// The `TERM` variable.
    pub term: String,
}

impl ExecSpec {
    /// Run `program` with no arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            term: DEFAULT_TERM.to_owned(),
        }
    }

    /// Add an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Set the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Set the `TERM` variable.
    pub fn term(mut self, term: impl Into<String>) -> Self {
        self.term = term.into();
        self
    }

    /// Read an `exec:` address (see the [module docs](self)). `address` is the text `url` came
    /// from, for error messages.
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_local(url, address)?;
        let raw = address::raw_path(url, address)?;
        let program = if address::is_bare_name(&raw) {
            raw
        } else {
            address::resolve(raw, address, opts)?
        };
        let query = Query::parse(url, address, PARAMETERS)?;
        let mut spec = ExecSpec::new(program);
        for arg in query.all("arg") {
            if arg.contains('\0') {
                return Err(address::bad(address, "an `arg` contains a NUL byte"));
            }
            references(arg).map_err(|e| address::bad(address, format!("`arg={arg}`: {e}")))?;
            spec.args.push(arg.to_owned());
        }
        for pair in query.all("env") {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| address::bad(address, format!("`env={pair}` must be NAME=VALUE")))?;
            if name.is_empty() || pair.contains('\0') {
                return Err(address::bad(
                    address,
                    format!("`env={pair}` needs a non-empty NAME and no NUL byte"),
                ));
            }
            references(value).map_err(|e| address::bad(address, format!("`env={name}=…`: {e}")))?;
            spec.env.push((name.to_owned(), value.to_owned()));
        }
        if let Some(cwd) = query.single("cwd")? {
            if cwd.is_empty() || cwd.contains('\0') {
                return Err(address::bad(address, "`cwd` must be a directory path"));
            }
            spec.cwd = Some(address::resolve(PathBuf::from(cwd), address, opts)?);
        }
        if let Some(term) = query.single("term")? {
            if term.is_empty() || term.contains('\0') {
                return Err(address::bad(address, "`term` must be a terminal type name"));
            }
            spec.term = term.to_owned();
        }
        Ok(spec)
    }

    /// This spec written as an `exec:` address.
    pub fn to_address(&self) -> String {
        let path = self.program.to_string_lossy();
        let encoded: String =
            percent_encoding::utf8_percent_encode(&path, PATH_ESCAPES).to_string();
        let mut text = if self.program.is_absolute() {
            format!("exec://{encoded}")
        } else {
            format!("exec:{encoded}")
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for arg in &self.args {
            query.append_pair("arg", arg);
        }
        for (name, value) in &self.env {
            query.append_pair("env", &format!("{name}={value}"));
        }
        if let Some(cwd) = &self.cwd {
            query.append_pair("cwd", &cwd.to_string_lossy());
        }
        if self.term != DEFAULT_TERM {
            query.append_pair("term", &self.term);
        }
        let query = query.finish();
        if !query.is_empty() {
            text.push('?');
            text.push_str(&query);
        }
        text
    }
}

/// Characters escaped in the path of an address written by [`ExecSpec::to_address`].
const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Opens `exec` links: starts the program on a new pty at every connect.
#[derive(Debug, Clone)]
pub struct ExecConnector {
    spec: ExecSpec,
    address: String,
    /// The secrets `${secret:NAME}` references in the spec stand for.
    credentials: Credentials,
}

impl ExecConnector {
    /// A connector that runs `spec`.
    pub fn new(spec: ExecSpec) -> Self {
        let address = spec.to_address();
        Self {
            spec,
            address,
            credentials: Credentials::default(),
        }
    }

    /// The secrets that `${secret:NAME}` references in the spec stand for.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// A connector for an `exec:` address.
    pub fn from_url(url: &Url, address: &str, opts: &DriverOptions) -> Result<Self> {
        let spec = ExecSpec::from_url(url, address, opts)?;
        Ok(Self {
            spec,
            address: address::display(url),
            credentials: opts.credentials.clone(),
        })
    }

    /// What this connector runs.
    pub fn spec(&self) -> &ExecSpec {
        &self.spec
    }

    fn connect_error(&self, what: &str, e: io::Error) -> Error {
        Error::Connect {
            address: self.address.clone(),
            reason: format!("{what}: {e}"),
        }
    }
}

#[async_trait]
impl Connector for ExecConnector {
    async fn connect(&self) -> Result<Link> {
        let pair = PtyPair::open(DEFAULT_COLS, DEFAULT_ROWS)
            .map_err(|e| self.connect_error("cannot open a pseudo-terminal", e))?;
        let (closed_tx, closed_rx) = oneshot::channel();
        let ended = Arc::new(AtomicBool::new(false));
        let master = Arc::new(
            Master::new(pair.master, closed_tx, Arc::clone(&ended))
                .map_err(|e| self.connect_error("cannot watch the pseudo-terminal", e))?,
        );
        let child = spawn_on_pty(&self.spec, &self.credentials, pair.slave).map_err(|e| {
            self.connect_error(
                &format!("cannot start `{}`", self.spec.program.display()),
                e,
            )
        })?;
        let leader = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| Error::Connect {
                address: self.address.clone(),
                reason: "the program ended before it could be watched".to_owned(),
            })?;
        tracing::debug!(address = %self.address, pid = leader, "started program on a pty");
        tokio::spawn(supervise(
            child,
            leader,
            closed_rx,
            ended,
            self.address.clone(),
        ));
        Ok(Link {
            reader: Box::pin(MasterReader(Arc::clone(&master))),
            writer: Box::pin(MasterWriter(Arc::clone(&master))),
            control: Arc::new(ExecControl {
                master,
                address: self.address.clone(),
            }),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_window_size(true)
    }

    fn address(&self) -> String {
        self.address.clone()
    }
}

/// Start `spec` with `slave` as its standard input, output and error, in a new session whose
/// controlling terminal is `slave`. The parent's copies of `slave` are closed on return.
/// `${secret:NAME}` references are replaced here, and only here.
fn spawn_on_pty(spec: &ExecSpec, creds: &Credentials, slave: OwnedFd) -> io::Result<Child> {
    let put = |text: &str| substitute(text, creds).map_err(io::Error::other);
    let mut command = tokio::process::Command::new(&spec.program);
    command.env("TERM", &spec.term);
    for arg in &spec.args {
        command.arg(put(arg)?.expose());
    }
    for (name, value) in &spec.env {
        command.env(name, put(value)?.expose());
    }
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true);
    new_session_on_stdin(&mut command);
    command.spawn()
    // `command` drops here, closing the parent's copies of the slave side; from now on only the
    // program's tree holds it, so the master reads EIO (end of file) once that tree is gone.
}

/// Make the child a session leader whose controlling terminal is its standard input.
#[allow(unsafe_code)]
fn new_session_on_stdin(command: &mut tokio::process::Command) {
    // SAFETY: `pre_exec` closures run in the forked child before `exec`, where only
    // async-signal-safe work is allowed. This one makes raw system calls only: `signal` (listed
    // async-signal-safe by POSIX) for every catchable signal, then through rustix setsid and
    // ioctl TIOCSCTTY on fd 0, which std has already pointed at the pty slave; it neither
    // allocates nor takes locks, and shares no memory with the parent.
    unsafe {
        command.pre_exec(|| {
            // Signals the daemon inherited as ignored (started under `nohup`, or by an init that
            // ignores SIGHUP) would stay ignored in the program: it would then survive the
            // hangup of its terminal when the daemon dies, an orphan writing into a closed pty.
            // Handlers are reset by exec anyway; ignored dispositions are not.
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            Ok(())
        });
    }
}

/// Kills the tree if the supervisor task is dropped before it finished (runtime shutdown).
struct KillOnDrop {
    leader: i32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            tree::signal(self.leader, Signal::KILL);
        }
    }
}

/// Watch the program until it ends or the link is dropped, then end its whole tree and reap it.
async fn supervise(
    mut child: Child,
    leader: i32,
    closed: oneshot::Receiver<()>,
    ended: Arc<AtomicBool>,
    address: String,
) {
    let mut guard = KillOnDrop {
        leader,
        armed: true,
    };
    let mut reaped = tokio::select! {
        status = child.wait() => {
            tracing::debug!(%address, ?status, "program ended");
            true
        }
        _ = closed => {
            tracing::debug!(%address, pid = leader, "link closed; ending the program");
            false
        }
    };
    // One scan of /proc finds the tree for both signals; waiting looks at what it found.
    let members = tree::signal_all(leader, &[Signal::HUP, Signal::CONT]);
    let deadline = Instant::now() + KILL_GRACE;
    if !reaped {
        reaped = tokio::time::timeout_at(deadline, child.wait())
            .await
            .is_ok();
    }
    if reaped {
        while tree::any_alive(leader, &members) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A tree that was only its reaped leader is gone for good (no process was left to start
    // another): no second scan. Otherwise whatever is left, found afresh, is killed.
    if !reaped || !members.is_empty() || tree::any_alive(leader, &[]) {
        tree::signal(leader, Signal::KILL);
    }
    if !reaped && let Err(e) = child.wait().await {
        tracing::warn!(%address, pid = leader, error = %e, "cannot reap the program");
    }
    ended.store(true, Ordering::Release);
    guard.armed = false;
}

/// Control of an exec link: window size only.
struct ExecControl {
    master: Arc<Master>,
    address: String,
}

#[async_trait]
impl LinkControl for ExecControl {
    async fn control(&self, op: ControlOp) -> Result<()> {
        match op {
            ControlOp::WindowSize { cols, rows } => self.master.set_size(cols, rows).map_err(|e| {
                Error::io(
                    format!("{}: setting the window size to {cols}x{rows}", self.address),
                    e,
                )
            }),
            _ => Err(Error::Unsupported {
                operation: op.name(),
                what: format!("{} (a pseudo-terminal)", self.address),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn spec(address: &str) -> Result<ExecSpec> {
        let url = address::parse(address)?;
        ExecSpec::from_url(
            &url,
            address,
            &DriverOptions::new().with_base_dir("/srv/mo"),
        )
    }

    #[test]
    fn reads_addresses() {
        let s = spec("exec:///bin/sh?arg=-c&arg=echo+hi%26%26true&env=A=b%3Dc&term=vt100").unwrap();
        assert_eq!(s.program, PathBuf::from("/bin/sh"));
        assert_eq!(s.args, ["-c", "echo hi&&true"]);
        assert_eq!(s.env, [("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(s.term, "vt100");
        assert_eq!(spec("exec:cat").unwrap().program, PathBuf::from("cat"));
        assert_eq!(
            spec("exec:bin/x.sh?cwd=run").unwrap(),
            ExecSpec::new("/srv/mo/bin/x.sh").cwd("/srv/mo/run")
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        for (address, needle) in [
            ("exec://host/bin/sh", "not a host"),
            ("exec:///bin/sh?cmd=ls", "unknown parameter `cmd`"),
            ("exec:///bin/sh?env=NOVALUE", "must be NAME=VALUE"),
            ("exec:///bin/sh?env==x", "non-empty NAME"),
            ("exec:///bin/sh?term=a&term=b", "more than once"),
            ("exec:///bin/sh?arg=a%00b", "NUL"),
            ("exec:///bin/sh#x", "fragment"),
            ("exec://", "no path"),
        ] {
            let err = spec(address).unwrap_err().to_string();
            assert!(err.contains(needle), "{address}: {err}");
            assert!(err.contains(address), "{address}: {err}");
        }
    }

    #[test]
    fn spec_round_trips_through_its_address() {
        let original = ExecSpec::new("/opt/my tools/run")
            .arg("-c")
            .arg("a b&c+d=e#f")
            .env("X", "1=2")
            .cwd("/tmp")
            .term("vt220");
        let text = original.to_address();
        assert_eq!(spec(&text).unwrap(), original, "{text}");
        let bare = ExecSpec::new("cat");
        assert_eq!(bare.to_address(), "exec:cat");
        assert_eq!(spec(&bare.to_address()).unwrap(), bare);
    }
}
