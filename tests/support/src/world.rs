//! One end-to-end test's world: a temp dir, a data dir, a port, the daemon, the users and the
//! terminals — and, when the test fails, everything needed to see why (the daemon log and every
//! pane), with the directory kept on disk.

use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::Cli;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::ports::{free_port, temp_dir};
use crate::process::{CmdOutput, read_lossy};
use crate::ssh::{Login, SshClient, SshKey, Tty};
use crate::tmux::Tmux;

/// conserver's stock client, from the Debian package `conserver-client` (scripts/setup.sh).
const CONSOLE: &str = "/usr/bin/console";

/// Everything one test works with. Peers it starts are stopped when it is dropped.
#[derive(Debug)]
pub struct World {
    name: String,
    path: PathBuf,
    data_dir: PathBuf,
    port: u16,
    panes: Vec<Arc<Tmux>>,
    daemon: Option<Daemon>,
    dir: Option<tempfile::TempDir>,
}

impl World {
    /// A fresh world: temp dir `/tmp/mo-NAME-*`, data dir `<dir>/data` (not created: mo does),
    /// and a free port for the SSH front door.
    pub fn new(name: &str) -> Result<World> {
        let dir = temp_dir(name)?;
        let path = dir.path().to_path_buf();
        Ok(World {
            name: name.to_string(),
            data_dir: path.join("data"),
            path,
            port: free_port()?,
            panes: Vec::new(),
            daemon: None,
            dir: Some(dir),
        })
    }

    /// The test's temp dir.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The daemon's data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The SSH front door's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Start `mod` on the data dir and port with `extra_args` (e.g. `["--demo"]`).
    pub fn start_daemon(&mut self, extra_args: &[&str]) -> Result<&mut Daemon> {
        if let Some(mut old) = self.daemon.take() {
            old.stop()?;
        }
        let daemon = Daemon::start(&self.data_dir, self.port, extra_args)?;
        Ok(self.daemon.insert(daemon))
    }

    /// The running daemon.
    pub fn daemon(&mut self) -> Result<&mut Daemon> {
        self.daemon
            .as_mut()
            .ok_or_else(|| Error::Check("the test has not started the daemon".into()))
    }

    /// Run `mo --data-dir DATA ARGS...` (any exit status).
    pub fn mo(&self, args: &[&str], stdin: Option<&str>) -> Result<CmdOutput> {
        Cli::run(&self.data_dir, args, stdin)
    }

    /// Run `mo --data-dir DATA ARGS...`; a non-zero exit is an error.
    pub fn mo_ok(&self, args: &[&str], stdin: Option<&str>) -> Result<CmdOutput> {
        Cli::run_ok(&self.data_dir, args, stdin)
    }

    /// `mo user add NAME --password-stdin`, `mo grant add NAME admin all`, and a password
    /// client for that user.
    pub fn add_user(&self, name: &str, password: &str) -> Result<SshClient> {
        self.add_user_with_role(name, password, Some(("admin", "all")))
    }

    /// `mo user add NAME --password-stdin` and, when given, `mo grant add NAME ROLE GROUP`;
    /// returns a password client for that user. Without a grant the user may do nothing.
    pub fn add_user_with_role(
        &self,
        name: &str,
        password: &str,
        grant: Option<(&str, &str)>,
    ) -> Result<SshClient> {
        self.mo_ok(
            &["user", "add", name, "--password-stdin"],
            Some(&format!("{password}\n")),
        )?;
        if let Some((role, group)) = grant {
            self.mo_ok(&["grant", "add", name, role, group], None)?;
        }
        self.client(name, password)
    }

    /// Generate a key `DIR/key-NAME` and `mo user add NAME --password-stdin --ssh-key KEY.pub`;
    /// returns a key-only client.
    pub fn add_user_with_key(&self, name: &str, password: &str) -> Result<(SshClient, SshKey)> {
        let key = SshKey::generate(&self.path, &format!("key-{name}"))?;
        let public = key.public.display().to_string();
        self.mo_ok(
            &[
                "user",
                "add",
                name,
                "--password-stdin",
                "--ssh-key",
                &public,
            ],
            Some(&format!("{password}\n")),
        )?;
        self.mo_ok(&["grant", "add", name, "admin", "all"], None)?;
        Ok((SshClient::with_key(self.port, name, &key), key))
    }

    /// A password client for `user` (whether or not that user exists).
    pub fn client(&self, user: &str, password: &str) -> Result<SshClient> {
        SshClient::with_password(&self.path, self.port, user, password)
    }

    /// `mo device add NAME URL EXTRA...`.
    pub fn add_device(&self, name: &str, url: &str, extra: &[&str]) -> Result<CmdOutput> {
        let mut args = vec!["device", "add", name, url];
        args.extend_from_slice(extra);
        self.mo_ok(&args, None)
    }

    /// Write an executable script `DIR/NAME` (for `exec://` devices).
    pub fn write_script(&self, name: &str, body: &str) -> Result<PathBuf> {
        let path = self.path.join(name);
        std::fs::write(&path, body)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| Error::io(format!("write script {}", path.display()), e))?;
        Ok(path)
    }

    /// Write the [`ECHO_CONSOLE`](crate::ECHO_CONSOLE) program as `DIR/console-NAME.sh` and add
    /// it as device `name` (`exec://...`) with `extra` options; returns the script's path.
    pub fn add_echo_device(&self, name: &str, extra: &[&str]) -> Result<PathBuf> {
        let script = self.write_script(&format!("console-{name}.sh"), crate::ECHO_CONSOLE)?;
        self.add_device(name, &format!("exec://{}", script.display()), extra)?;
        Ok(script)
    }

    /// A tmux pane named `label` running `ssh -t` as `client` to `login` with `remote` args.
    /// The pane is kept for the failure report.
    pub fn terminal(
        &mut self,
        label: &str,
        client: &SshClient,
        login: Login<'_>,
        remote: &[&str],
    ) -> Result<Arc<Tmux>> {
        let argv = client.argv(login, Tty::Yes, remote);
        self.tmux(label, &argv, &client.env())
    }

    /// A tmux pane named `label` running `argv` with `env`; kept for the failure report.
    pub fn tmux(
        &mut self,
        label: &str,
        argv: &[String],
        env: &[(String, String)],
    ) -> Result<Arc<Tmux>> {
        let pane = Arc::new(Tmux::start(&self.path, label, argv, env)?);
        self.panes.push(Arc::clone(&pane));
        Ok(pane)
    }

    /// A pane named `label` running conserver's stock client (Debian `conserver-client`,
    /// `/usr/bin/console`) as `console -n -U -M 127.0.0.1 -p PORT -l USER ARGS...`, given `password` at
    /// its prompt. `-U`: mo offers no TLS; `-n`: no site-wide console.cf. Fails when the client
    /// is not installed.
    pub fn conserver_client(
        &mut self,
        label: &str,
        port: u16,
        user: &str,
        password: &str,
        args: &[&str],
    ) -> Result<Arc<Tmux>> {
        if !Path::new(CONSOLE).exists() {
            return Err(Error::Check(format!(
                "{CONSOLE} is missing: install the Debian package conserver-client (scripts/setup.sh)"
            )));
        }
        let mut argv: Vec<String> = [CONSOLE, "-n", "-U", "-M", "127.0.0.1", "-p"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.push(port.to_string());
        argv.push("-l".into());
        argv.push(user.into());
        argv.extend(args.iter().map(|s| s.to_string()));
        let home = self.path.join(format!("home-{label}"));
        std::fs::create_dir_all(&home).map_err(|e| Error::io("mkdir home", e))?;
        let env = vec![
            ("HOME".to_string(), home.display().to_string()),
            ("TERM".to_string(), "xterm".to_string()),
        ];
        let pane = self.tmux(label, &argv, &env)?;
        pane.wait_for("password:", Duration::from_secs(60))?;
        pane.send_line(password)?;
        Ok(pane)
    }

    /// Poll `ssh -T USER@ list` until the output does (or, with `present == false`, does not)
    /// mention `device`; returns the last output.
    pub fn wait_listed(
        &self,
        client: &SshClient,
        device: &str,
        present: bool,
        limit: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let out = client.run(Login::Shell, &["list"], None)?;
            let text = out.combined();
            let listed = text.split_whitespace().any(|w| w == device);
            if out.success() && listed == present {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "`list` to {} {device}",
                        if present { "show" } else { "no longer show" }
                    ),
                    waited: limit,
                    context_name: format!("last `list` output ({})", out.status),
                    context: text,
                });
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// The daemon log, every pane, and where the files are: what a failure report needs.
    pub fn diagnostics(&self) -> String {
        let mut s = format!(
            "===== diagnostics for test {} (dir {}) =====\n",
            self.name,
            self.path.display()
        );
        for pane in &self.panes {
            let text = pane
                .capture()
                .unwrap_or_else(|e| format!("(cannot capture: {e})"));
            s.push_str(&format!("----- pane {} -----\n{text}\n", pane.name()));
        }
        let log = PathBuf::from(format!("{}.mod.log", self.data_dir.display()));
        if log.exists() {
            let text = read_lossy(&log);
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(300);
            s.push_str(&format!(
                "----- mod log {} (last {} lines) -----\n{}\n",
                log.display(),
                lines.len() - from,
                lines[from..].join("\n")
            ));
        } else {
            s.push_str("----- no mod log (daemon never started) -----\n");
        }
        s.push_str("===== end of diagnostics =====");
        s
    }

    /// Keep the temp dir on disk (after a failure); returns its path.
    fn keep_dir(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            return dir.keep();
        }
        self.path.clone()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Terminals (and their ssh clients) first, then the daemon; the temp dir goes last.
        self.panes.clear();
        self.daemon = None;
    }
}

/// Run an end-to-end test body in a fresh [`World`]. If the body returns an error or panics, the
/// daemon log and every pane are printed, the temp dir is kept, and the test fails. With
/// `MO_TEST_SHOW=1` in the environment the same report is printed for passing tests too.
pub fn run_test(name: &str, body: impl FnOnce(&mut World) -> Result<()>) {
    let mut world = match World::new(name) {
        Ok(w) => w,
        Err(e) => fail(name, &format!("could not set up the test world: {e}")),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut world)));
    match outcome {
        Ok(Ok(())) => {
            if std::env::var_os("MO_TEST_SHOW").is_some() {
                eprintln!("{}", world.diagnostics());
            }
        }
        Ok(Err(e)) => {
            eprintln!("{}", world.diagnostics());
            let kept = world.keep_dir();
            fail(
                name,
                &format!("{e}\n(test files kept in {})", kept.display()),
            );
        }
        Err(panic) => {
            eprintln!("{}", world.diagnostics());
            let kept = world.keep_dir();
            eprintln!("test {name} panicked; files kept in {}", kept.display());
            resume_unwind(panic);
        }
    }
}

#[allow(clippy::panic)]
fn fail(name: &str, message: &str) -> ! {
    panic!("test {name} failed: {message}")
}
