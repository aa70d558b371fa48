//! One port held by the agent: opened with mo-drivers' links, read into its spool whether or not
//! the daemon is connected, reopened with backoff when it drops (a USB adapter unplugged, a pty
//! closed), written to and controlled on the daemon's behalf.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mo_core::link::{Connector, ControlOp};
use mo_drivers::agent::WaterMarks;
use mo_drivers::agent::codec::{PortInfo, PortOp};
use mo_drivers::{DriverOptions, connector_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::backoff::Backoff;
use crate::spool::Spool;

/// What the daemon asks of a port.
#[derive(Debug)]
pub enum PortCmd {
    /// Write these bytes.
    Input(Vec<u8>),
    /// BREAK, DTR, RTS.
    Control(PortOp),
    /// Apply line settings (`baud=9600&parity=even`): the port is reopened with them.
    Settings(String),
}

/// A port and the handles the uplink needs.
pub struct Port {
    /// The port's name.
    pub name: String,
    /// Its address as declared.
    pub url: String,
    /// Its capability bits.
    pub caps: u8,
    /// Everything it printed.
    pub spool: Arc<Spool>,
    /// Commands to the port.
    pub cmds: mpsc::Sender<PortCmd>,
    /// The modem status register (16550 layout) when the link reports modem lines.
    pub modem: watch::Receiver<Option<u8>>,
    /// Notices about the port (opened, lost, settings applied) for the daemon, in order; up to
    /// [`NOTICES`] wait while the link is down, later ones are dropped.
    pub notices: Arc<tokio::sync::Mutex<mpsc::Receiver<String>>>,
    /// The water marks the agent sets for the port (`--high-mark`, `--low-mark`, the
    /// `[[port]]` table's `high`/`low`), sent to the daemon; `None`: the daemon's built-in ones.
    pub marks: Option<WaterMarks>,
    /// Everything the port prints, as it is read, for local terminals (`mo-agent tty`); a
    /// terminal that falls behind is told how much it missed, the port never waits.
    pub output: broadcast::Sender<Bytes>,
    /// What local users typed (`user` and bytes, [`crate::tty::encode_input`]), kept on disk
    /// until it is sent to the daemon to be logged.
    pub typed: Arc<Spool>,
    /// The local users on the port now (`local:USER@AGENT`, once per terminal).
    pub locals: watch::Sender<Vec<String>>,
    /// `who` questions of local terminals, answered through the daemon while the link is up.
    pub who: mpsc::Sender<oneshot::Sender<String>>,
    /// Where the uplink takes `who` questions from.
    pub who_asked: Arc<tokio::sync::Mutex<mpsc::Receiver<oneshot::Sender<String>>>>,
}

impl Port {
    /// What the port looks like in the agent's port list.
    pub fn info(&self) -> PortInfo {
        PortInfo {
            name: self.name.clone(),
            url: self.url.clone(),
            caps: self.caps,
        }
    }
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Output chunks kept for local terminals that are behind.
const OUTPUT_CHUNKS: usize = 1024;

/// Notices a port keeps for the daemon while the link is down.
pub const NOTICES: usize = 64;

/// Read the address, open the port's spool in `spool_dir` (`port-NAME`, what an earlier run left
/// there included) and start holding the port. Errors name the port and the address or spool.
pub fn start(
    name: &str,
    url: &str,
    spool_dir: &std::path::Path,
    spool_bytes: usize,
) -> anyhow::Result<Port> {
    let connector = connector_for(url, &DriverOptions::default())
        .map_err(|e| anyhow::anyhow!("port {name}: {e}"))?;
    let caps = mo_drivers::agent::caps_bits(connector.capabilities());
    let spool = Arc::new(
        Spool::open(&spool_dir.join(format!("port-{name}")), spool_bytes)
            .map_err(|e| anyhow::anyhow!("port {name}: {e:#}"))?,
    );
    let typed = Arc::new(
        Spool::open(&spool_dir.join(format!("typed-{name}")), spool_bytes)
            .map_err(|e| anyhow::anyhow!("port {name}: {e:#}"))?,
    );
    let (output, _) = broadcast::channel(OUTPUT_CHUNKS);
    let (who, who_asked) = mpsc::channel(16);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (modem_tx, modem_rx) = watch::channel(None);
    let (notice_tx, notice_rx) = mpsc::channel(NOTICES);
    let holder = Holder {
        name: name.to_owned(),
        url: url.to_owned(),
        connector,
        spool: spool.clone(),
        modem: modem_tx,
        notices: notice_tx,
        output: output.clone(),
    };
    tokio::spawn(holder.run(cmd_rx));
    Ok(Port {
        name: name.to_owned(),
        url: url.to_owned(),
        caps,
        spool,
        cmds: cmd_tx,
        modem: modem_rx,
        notices: Arc::new(tokio::sync::Mutex::new(notice_rx)),
        marks: None,
        output,
        typed,
        locals: watch::channel(Vec::new()).0,
        who,
        who_asked: Arc::new(tokio::sync::Mutex::new(who_asked)),
    })
}

struct Holder {
    name: String,
    url: String,
    connector: Arc<dyn Connector>,
    spool: Arc<Spool>,
    modem: watch::Sender<Option<u8>>,
    notices: mpsc::Sender<String>,
    output: broadcast::Sender<Bytes>,
}

/// The 16550 MSR high bits for a modem state.
fn msr(state: mo_core::link::ModemState) -> u8 {
    (u8::from(state.dcd) << 7)
        | (u8::from(state.ri) << 6)
        | (u8::from(state.dsr) << 5)
        | (u8::from(state.cts) << 4)
}

impl Holder {
    fn notice(&self, text: String) {
        tracing::info!(port = %self.name, "{text}");
        let _ = self.notices.try_send(text);
    }

    /// Apply `settings` to the port's address: same scheme, the given query keys replaced.
    fn apply_settings(&mut self, settings: &str) {
        let Ok(mut url) = url::Url::parse(&self.url) else {
            return;
        };
        if !matches!(url.scheme(), "serial" | "rfc2217") {
            self.notice(format!(
                "line settings `{settings}` not applied: a {} port has none",
                url.scheme()
            ));
            return;
        }
        let new: Vec<(String, String)> = url::form_urlencoded::parse(settings.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !new.iter().any(|(n, _)| n == k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.extend(new);
        url.query_pairs_mut().clear().extend_pairs(pairs);
        let text = url.to_string();
        match connector_for(&text, &DriverOptions::default()) {
            Ok(connector) => {
                self.connector = connector;
                self.url = text;
                self.notice(format!("line settings applied: {settings}"));
            }
            Err(e) => self.notice(format!("line settings `{settings}` refused: {e}")),
        }
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<PortCmd>) {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
        loop {
            let link = match self.connector.connect().await {
                Ok(link) => link,
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::debug!(port = %self.name, "cannot open: {e}; again in {wait:?}");
                    // Commands that arrive meanwhile: settings still count, input is lost.
                    let sleep = tokio::time::sleep(wait);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            cmd = cmds.recv() => match cmd {
                                None => return,
                                Some(PortCmd::Settings(s)) => self.apply_settings(&s),
                                Some(_) => {}
                            },
                        }
                    }
                    continue;
                }
            };
            backoff.reset();
            self.notice(format!(
                "port {} open ({})",
                self.name,
                self.connector.address()
            ));
            let mo_core::link::Link {
                mut reader,
                mut writer,
                control,
            } = link;
            let mut status = control.status();
            let mut buf = vec![0u8; 16 * 1024];
            let why = loop {
                tokio::select! {
                    read = reader.read(&mut buf) => match read {
                        Ok(0) => break "end of file".to_string(),
                        Ok(n) => {
                            let _ = self.spool.push(&buf[..n], now_ns());
                            // Nobody on a local terminal: nothing to do.
                            let _ = self.output.send(Bytes::copy_from_slice(&buf[..n]));
                        }
                        Err(e) => break e.to_string(),
                    },
                    cmd = cmds.recv() => match cmd {
                        None => return,
                        Some(PortCmd::Input(bytes)) => {
                            if let Err(e) = writer.write_all(&bytes).await {
                                break format!("write failed: {e}");
                            }
                            let _ = writer.flush().await;
                        }
                        Some(PortCmd::Control(op)) => {
                            let op = match op {
                                PortOp::Break(ms) => ControlOp::Break { duration: Duration::from_millis(u64::from(ms)) },
                                PortOp::Dtr(on) => ControlOp::SetDtr(on),
                                PortOp::Rts(on) => ControlOp::SetRts(on),
                            };
                            let name = op.name();
                            let control = control.clone();
                            let notices = self.notices.clone();
                            tokio::spawn(async move {
                                if let Err(e) = control.control(op).await {
                                    let _ = notices.try_send(format!("{name} failed: {e}"));
                                }
                            });
                        }
                        Some(PortCmd::Settings(s)) => {
                            let before = self.url.clone();
                            self.apply_settings(&s);
                            if self.url != before {
                                break "reopening with new line settings".to_string();
                            }
                        }
                    },
                    changed = async {
                        match status.as_mut() {
                            Some(rx) => rx.changed().await.map(|()| rx.borrow_and_update().modem),
                            None => std::future::pending().await,
                        }
                    } => match changed {
                        Ok(Some(state)) => {
                            self.modem.send_replace(Some(msr(state)));
                        }
                        Ok(None) => {}
                        Err(_) => status = None,
                    },
                }
            };
            self.notice(format!("port {} closed: {why}", self.name));
        }
    }
}
