//! Per-console TCP ports (`mo device add|set NAME --listen ADDR:PORT[/MODE]`,
//! docs/listen-ports.md): each port of a device is a listener the daemon opens when the device's
//! console starts and closes when it stops (the registry calls [`open`] and [`Ports::close`]), so
//! adding, changing or removing a device opens and closes its ports.
//!
//! In a site sharing its directory every node opens the ports of every device, also of one
//! another node holds: a connection there is attached through the holder (`crate::viewer`).
//!
//! A connection is a viewer of the console ([`conn`]): it takes the write lock when it is free,
//! else spies (`,spy` on the port makes it read-only always). Without a login it is named
//! `tcp:ADDR:PORT` after the client's address in `who` and as the writer of its input in the
//! record log. A connection from outside the device's `--listen-allow` networks is refused and
//! audited (`listen.refused`).

mod conn;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mo_core::door::listen::{Cidr, ListenSpec};
use mo_store::Device;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Ctx;
use crate::connlimit::ConnLimits;

/// How the ports run (the daemon's connection caps and login grace).
pub struct Options {
    /// Caps on open connections, every per-console port together.
    pub conns: Arc<ConnLimits>,
    /// Time a `/telnet+login` client has to log in.
    pub login_grace: Duration,
    /// The address every port is opened on instead of the one its device names (the port
    /// number kept): `mod --listen-address`.
    pub address: Option<std::net::IpAddr>,
}

/// The open ports of one device.
pub struct Ports {
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Each port and the address it is bound to.
    pub bound: Vec<(ListenSpec, SocketAddr)>,
}

impl Ports {
    /// Stop listening: every listener is closed when this returns (connections already open
    /// end with the console).
    pub async fn close(&self) {
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// What one listener serves.
struct Port {
    device: String,
    spec: ListenSpec,
    allow: Vec<Cidr>,
}

/// Open the ports of `device`. Ports that cannot be bound are left out; the error names each.
pub fn open(
    ctx: &Weak<Ctx>,
    options: &Arc<Options>,
    device: &Device,
) -> (Option<Arc<Ports>>, Option<String>) {
    let s = &device.settings;
    if s.listen.is_empty() {
        return (None, None);
    }
    let (specs, allow) = match mo_core::door::listen::validate(&s.listen, &s.listen_allow) {
        Ok(parsed) => parsed,
        Err(e) => return (None, Some(format!("--listen: {e}"))),
    };
    let mut errors = Vec::new();
    let mut tasks = Vec::new();
    let mut bound = Vec::new();
    for mut spec in specs {
        if let Some(ip) = options.address {
            spec.addr = SocketAddr::new(ip, spec.addr.port());
        }
        let listener = match std::net::TcpListener::bind(spec.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
        {
            Ok(listener) => listener,
            Err(e) => {
                errors.push(format!("cannot listen on {spec}: {e}"));
                continue;
            }
        };
        let at = listener.local_addr().unwrap_or(spec.addr);
        tracing::info!(device = %device.name, "listening on {spec} (console port)");
        bound.push((spec, at));
        let port = Arc::new(Port {
            device: device.name.clone(),
            spec,
            allow: allow.clone(),
        });
        tasks.push(tokio::spawn(accept(
            listener,
            ctx.clone(),
            options.clone(),
            port,
        )));
    }
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    if let Some(e) = &error {
        tracing::error!(device = %device.name, "{e}");
    }
    let ports = Arc::new(Ports {
        tasks: Mutex::new(tasks),
        bound,
    });
    (Some(ports), error)
}

async fn accept(listener: TcpListener, ctx: Weak<Ctx>, options: Arc<Options>, port: Arc<Port>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(device = %port.device, "console port {}: accept failed: {e}", port.spec);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(ctx) = ctx.upgrade() else {
            return;
        };
        let permit = match options.conns.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                tracing::warn!("{why}");
                let _ = stream.try_write(format!("{why}\r\n").as_bytes());
                continue;
            }
        };
        let (port, options) = (port.clone(), options.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn::serve(ctx, port, options, stream, peer).await {
                tracing::debug!(%peer, "console port connection ended: {e}");
            }
        });
    }
}
