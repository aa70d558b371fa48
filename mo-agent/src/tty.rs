//! Local access (`mo-agent tty PORT`): a terminal on the console server itself attached to one
//! of the agent's ports, for when the network to the daemon is what is broken (docs/agent.md,
//! "Local access").
//!
//! The running agent listens on a unix socket (`--tty-socket`, mode 0660). `mo-agent tty PORT`
//! connects, sends `PORT\n`, reads `ok\n` (or `error: …\n`) and then relays its raw terminal both
//! ways. The agent names the user by the socket's peer credentials (`local:USER@AGENT`), shows
//! the port's output, writes the keystrokes to the port itself (the daemon is not needed) and
//! spools them, with the user, to be logged by the daemon as that user's input — at once while
//! the link is up, on reconnect otherwise. The daemon lists the user in `who` of the port's
//! devices. The escape prefix is mo's (`^Ec`); `.` leaves, `w` asks the daemon who is on the
//! port, `i` tells about the port, `l1` sends a BREAK, `?` lists these.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mo_core::console::terminal_notice;
use mo_core::escape::{Command, EscapeConfig, EscapeParser, Input};
use mo_drivers::agent::codec::PortOp;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, oneshot};

use crate::port::{Port, PortCmd, now_ns};

/// The longest user name kept in a spooled input record.
const MAX_USER: usize = 255;

/// How long `^Ec w` waits for the daemon.
const WHO_WAIT: Duration = Duration::from_secs(3);

/// A spooled local input record: `user_len:u8 user bytes`.
pub fn encode_input(user: &str, bytes: &[u8]) -> Vec<u8> {
    let mut end = user.len().min(MAX_USER);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(1 + end + bytes.len());
    out.push(end as u8);
    out.extend_from_slice(&user.as_bytes()[..end]);
    out.extend_from_slice(bytes);
    out
}

/// The user and the bytes of a spooled local input record; `None` if it is not one.
pub fn decode_input(record: &[u8]) -> Option<(String, Vec<u8>)> {
    let (&len, rest) = record.split_first()?;
    let user = rest.get(..usize::from(len))?;
    let bytes = rest.get(usize::from(len)..)?;
    Some((String::from_utf8(user.to_vec()).ok()?, bytes.to_vec()))
}

/// The local access socket: `--tty-socket`, or `tty.sock` in the spool directory.
pub fn default_socket(spool_dir: &Path) -> PathBuf {
    spool_dir.join("tty.sock")
}

/// Listen on `path` (an old socket there is replaced) and serve local terminals on `ports`
/// for as long as the agent runs.
pub fn listen(path: &Path, agent: &str, ports: Arc<Vec<Port>>) -> anyhow::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "--tty-socket {}: something else than a socket is there",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the old socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot listen on --tty-socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    tracing::info!("local access on {}", path.display());
    let agent = agent.to_owned();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (agent, ports) = (agent.clone(), ports.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, &agent, &ports).await {
                            tracing::debug!("local terminal ended: {e:#}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("local access socket: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

/// The login name of `uid` (its number if it has none).
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// Takes the user off the port's list of local users when the terminal goes.
struct Present<'a> {
    port: &'a Port,
    user: String,
}

impl<'a> Present<'a> {
    fn enter(port: &'a Port, user: &str) -> Self {
        port.locals.send_modify(|l| l.push(user.to_owned()));
        Present {
            port,
            user: user.to_owned(),
        }
    }
}

impl Drop for Present<'_> {
    fn drop(&mut self) {
        self.port.locals.send_modify(|l| {
            if let Some(i) = l.iter().position(|u| *u == self.user) {
                l.remove(i);
            }
        });
    }
}

/// One local terminal.
async fn serve(stream: UnixStream, agent: &str, ports: &[Port]) -> anyhow::Result<()> {
    let uid = stream.peer_cred().context("no peer credentials")?.uid();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    (&mut rd).take(256).read_line(&mut line).await?;
    let name = line.trim();
    let Some(port) = ports.iter().find(|p| p.name == name) else {
        let offered: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        let text = format!(
            "error: agent {agent} holds no port `{name}` (it holds: {})\n",
            offered.join(", ")
        );
        wr.write_all(text.as_bytes()).await?;
        return Ok(());
    };
    wr.write_all(b"ok\n").await?;
    let user = format!("local:{}@{agent}", user_name(uid));
    tracing::info!(port = %port.name, "{user} attached on a local terminal");
    let mut output = port.output.subscribe();
    let _present = Present::enter(port, &user);
    let escape = EscapeConfig::default();
    let mut parser = EscapeParser::new(escape);
    wr.write_all(&terminal_notice(&format!(
        "{} on {agent}: local access as {user}; your input is logged; {escape}? for help, \
         {escape}. to leave",
        port.name
    )))
    .await?;
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            read = rd.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    break;
                }
                for item in parser.feed(&buf[..n]) {
                    let reply = match item {
                        Input::Data(bytes) => {
                            // Logged first: what reaches the port is in the spool.
                            port.typed.push(&encode_input(&user, &bytes), now_ns());
                            let _ = port.cmds.send(PortCmd::Input(bytes)).await;
                            continue;
                        }
                        Input::Echo(bytes) => {
                            wr.write_all(&bytes).await?;
                            continue;
                        }
                        Input::Error(text) => terminal_notice(&text).to_vec(),
                        Input::Command(Command::Disconnect) => {
                            wr.write_all(&terminal_notice(&format!("left {}", port.name))).await?;
                            tracing::info!(port = %port.name, "{user} left the local terminal");
                            return Ok(());
                        }
                        Input::Command(cmd) => command(port, agent, &user, &escape, cmd).await,
                        _ => continue,
                    };
                    wr.write_all(&reply).await?;
                }
            }
            out = output.recv() => match out {
                Ok(bytes) => wr.write_all(&bytes).await?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let text = format!("this terminal fell behind: {n} chunk(s) of output not shown (the log has them)");
                    wr.write_all(&terminal_notice(&text)).await?;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    tracing::info!(port = %port.name, "{user} left the local terminal");
    Ok(())
}

/// What an escape command does on a local terminal: the bytes to show.
async fn command(
    port: &Port,
    agent: &str,
    user: &str,
    escape: &EscapeConfig,
    cmd: Command,
) -> Vec<u8> {
    let text = match cmd {
        Command::Who => {
            let (tx, rx) = oneshot::channel();
            let answer = match port.who.try_send(tx) {
                Ok(()) => tokio::time::timeout(WHO_WAIT, rx)
                    .await
                    .ok()
                    .and_then(|r| r.ok()),
                Err(_) => None,
            };
            let lines = answer.unwrap_or_else(|| {
                let locals = port.locals.borrow().join(", ");
                format!(
                    "the daemon did not answer (is the link down?); local users of {}: {locals}",
                    port.name
                )
            });
            return crlf(&format!("\n{lines}\n"));
        }
        Command::Help => {
            return crlf(&format!(
                "\nlocal terminal escapes ({escape} then):\n  .   leave\n  w   who is on the \
                 port (asks the daemon)\n  i   about this port\n  l1  send a BREAK\n  ?   \
                 this help\n"
            ));
        }
        Command::Info => format!(
            "port {} of agent {agent} ({}); you are {user}; input is logged by the daemon",
            port.name, port.url
        ),
        Command::Break(1) => {
            let _ = port.cmds.send(PortCmd::Control(PortOp::Break(250))).await;
            "BREAK sent".to_string()
        }
        _ => format!("not available on a local terminal ({escape}? lists what is)"),
    };
    terminal_notice(&text).to_vec()
}

/// `text` with LF line ends as CR LF (the terminal is raw).
fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// `mo-agent tty PORT`: connect to the agent's socket, put the terminal in raw mode and relay it
/// until the agent ends the session (`^Ec.`) or standard input closes.
pub fn attach(socket: &Path, port: &str) -> anyhow::Result<()> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the agent's local access socket {} (is mo-agent running, and may you \
             use the socket?)",
            socket.display()
        )
    })?;
    stream.write_all(format!("{port}\n").as_bytes())?;
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while answer.len() < 4096 {
        if stream.read(&mut byte)? == 0 {
            bail!("the agent closed the connection");
        }
        if byte[0] == b'\n' {
            break;
        }
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if answer != "ok" {
        bail!("{}", answer.trim_start_matches("error: "));
    }
    let _raw = mo_drivers::terminal::RawTerminal::enter();
    let mut to_agent = stream.try_clone()?;
    // Keystrokes on a thread of their own; the session ends when the agent closes the socket.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_agent.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_agent.shutdown(std::net::Shutdown::Write);
    });
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn input_records_carry_the_user() {
        let rec = encode_input("local:root@cs1", b"reboot\r");
        assert_eq!(
            decode_input(&rec),
            Some(("local:root@cs1".to_string(), b"reboot\r".to_vec()))
        );
        assert_eq!(
            decode_input(&encode_input("", b"")),
            Some((String::new(), Vec::new()))
        );
        let long = "é".repeat(200);
        let (user, bytes) = decode_input(&encode_input(&long, b"x")).unwrap();
        assert!(user.len() <= MAX_USER && long.starts_with(&user));
        assert_eq!(bytes, b"x");
        assert_eq!(decode_input(&[]), None);
        assert_eq!(decode_input(&[5, b'a']), None);
        assert_eq!(decode_input(&[1, 0xff]), None);
    }
}
