//! The daemon's HTTP API in tests: start `mod` with `--http` on a free loopback port, and make
//! API tokens with `mo token add`.

use crate::error::{Error, Result};
use crate::ports::free_port;
use crate::world::World;

/// Where a test's daemon serves its HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpApi {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl HttpApi {
    /// `http://127.0.0.1:PORT/PATH` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `ws://127.0.0.1:PORT/PATH`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }
}

/// Start the world's daemon with `--http 127.0.0.1:FREE_PORT` and `extra` arguments; returns
/// once it listens (it prints the HTTP line before the SSH one the harness waits for).
pub fn start_daemon_with_http(w: &mut World, extra: &[&str]) -> Result<HttpApi> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--http", addr.as_str()];
    args.extend_from_slice(extra);
    let daemon = w.start_daemon(&args)?;
    let needle = format!("listening on {addr} (HTTP");
    daemon.wait_log(&needle, crate::WAIT)?;
    Ok(HttpApi {
        port,
        base: format!("http://{addr}"),
    })
}

/// `mo token add USER --scope SCOPE`: the new token's text.
pub fn add_token(w: &World, user: &str, scope: &str) -> Result<String> {
    let out = w.mo_ok(&["token", "add", user, "--scope", scope], None)?;
    out.stdout
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|t| t.starts_with("mo_"))
        .ok_or_else(|| {
            Error::Check(format!(
                "`mo token add {user}` printed no token:\n{}",
                out.combined()
            ))
        })
}
