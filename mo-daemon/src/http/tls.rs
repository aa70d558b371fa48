//! HTTPS and WSS on the HTTP front door (`mod --http ADDR --tls-cert FILE --tls-key FILE`, or
//! `--tls-self-signed`): rustls behind a listener that hands axum finished TLS streams.
//!
//! - The certificate and key are PEM files. `SIGHUP` reads them again ([`Tls::reload`]): new
//!   handshakes use the new pair, connections already open keep theirs; a pair that does not
//!   load leaves the old one in place (and says why).
//! - `--tls-self-signed` makes a pair once (rcgen, ECDSA P-256) in `DATA_DIR/tls/` and reuses it on
//!   every start, so a client's pin (`mo --pin`) stays valid; the daemon prints its SHA-256.
//! - Handshakes run beside the accept loop, each bounded in time, and only so many at once, in
//!   total and per source address: a client that opens sockets and says nothing holds no one
//!   else up. Finished connections then meet the HTTP door's own caps and timeouts.
//! - ALPN offers HTTP/1.1 only (WebSocket upgrades are HTTP/1.1 requests).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many handshakes may be under way at once; connections beyond are closed at once.
const MAX_HANDSHAKES: usize = 256;
/// How many of them may come from one source address.
const MAX_HANDSHAKES_PER_ADDRESS: usize = 16;
/// Finished handshakes waiting for the HTTP server to take them.
const READY_QUEUE: usize = 64;

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The server's TLS state: the acceptor and the pair it presents, replaceable while serving.
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

/// The pair new handshakes get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl Tls {
    /// Load the pair of `files` and build the acceptor.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let pair = load_pair(&files)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(pair))));
        let mut config = rustls::ServerConfig::builder_with_provider(mo_core::tls::provider())
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            files,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Read the files again; on success new handshakes present the new pair. Returns its
    /// fingerprint. On failure the old pair stays.
    pub fn reload(&self) -> anyhow::Result<[u8; 32]> {
        let pair = Arc::new(load_pair(&self.files)?);
        let fingerprint = leaf_fingerprint(&pair);
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = pair;
        Ok(fingerprint)
    }

    /// The SHA-256 fingerprint of the certificate new handshakes get.
    pub fn fingerprint(&self) -> [u8; 32] {
        leaf_fingerprint(
            &self
                .current
                .0
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Reload the pair on every SIGHUP, for as long as the process runs.
    pub fn reload_on_hangup(self: &Arc<Self>) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups =
            signal(SignalKind::hangup()).context("cannot listen for SIGHUP (TLS reload)")?;
        let tls = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(fp) => {
                        let fp = mo_core::tls::format_fingerprint(&fp);
                        tracing::info!("SIGHUP: TLS certificate reloaded, SHA-256 {fp}");
                        eprintln!("mod: SIGHUP: TLS certificate reloaded, SHA-256 {fp}");
                    }
                    Err(e) => {
                        tracing::error!(
                            "SIGHUP: TLS certificate not reloaded, old one kept: {e:#}"
                        );
                        eprintln!("mod: SIGHUP: TLS certificate not reloaded, old one kept: {e:#}");
                    }
                }
            }
        });
        Ok(())
    }

    /// A listener that accepts on `tcp` and yields connections whose handshake finished.
    pub fn listener(self: &Arc<Self>, tcp: TcpListener) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (ready, rx) = mpsc::channel(READY_QUEUE);
        let acceptor = self.acceptor.clone();
        let task = tokio::spawn(accept_loop(tcp, acceptor, ready));
        Ok(TlsListener { rx, local, task })
    }
}

fn leaf_fingerprint(pair: &CertifiedKey) -> [u8; 32] {
    pair.cert
        .first()
        .map(|c| mo_core::tls::certificate_fingerprint(c.as_ref()))
        .unwrap_or_default()
}

/// Read and check a pair: certificates, a key, and the key belongs to the first certificate.
fn load_pair(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let cert_pem = std::fs::read(&files.cert)
        .with_context(|| format!("cannot read TLS certificate {}", files.cert.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("TLS certificate {}: not PEM", files.cert.display()))?;
    if certs.is_empty() {
        bail!(
            "TLS certificate {}: no `BEGIN CERTIFICATE` block in it",
            files.cert.display()
        );
    }
    let key_pem = std::fs::read(&files.key)
        .with_context(|| format!("cannot read TLS key {}", files.key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow::anyhow!(
            "TLS key {}: no PEM private key in it: {e}",
            files.key.display()
        )
    })?;
    let signing = mo_core::tls::provider()
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("TLS key {}: unusable", files.key.display()))?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().with_context(|| {
        format!(
            "TLS key {} does not belong to the certificate {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(pair)
}

/// The pair `--tls-self-signed` uses: made in `data_dir/tls/` on first use for the names
/// `names` (host names and IP addresses), reused afterwards.
pub fn self_signed(data_dir: &Path, names: &[String]) -> anyhow::Result<(TlsFiles, bool)> {
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        cert: dir.join("self-signed.crt"),
        key: dir.join("self-signed.key"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok((files, false));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    set_mode(&dir, 0o700)?;
    let key = rcgen::KeyPair::generate().context("cannot generate a TLS key")?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("bad name for the self-signed certificate")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mo daemon (self-signed)");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params
        .self_signed(&key)
        .context("cannot sign the self-signed certificate")?;
    write_new(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&files.cert, cert.pem().as_bytes(), 0o644)?;
    Ok((files, true))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

/// Write `path` through a temporary file (created with `mode`) and a rename.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))
}

/// Accept TCP connections and shake hands beside the loop; finished streams go to `ready`.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let per_address = Arc::new(PerAddress::default());
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::debug!("HTTPS accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!("{MAX_HANDSHAKES} TLS handshakes under way; closing {peer}");
            continue;
        };
        let Some(mine) = per_address.enter(peer.ip()) else {
            tracing::warn!(
                "{MAX_HANDSHAKES_PER_ADDRESS} TLS handshakes from {} under way; closing {peer}",
                peer.ip()
            );
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on an HTTPS connection: {e}");
        }
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop((permit, mine));
            match shake {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

/// Handshakes under way per source address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One handshake of an address; leaving (dropping) counts it out.
struct Entered {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Entered> {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = table.entry(ip).or_insert(0);
        if *n >= MAX_HANDSHAKES_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(Entered {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = table.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

/// The HTTPS listener for `axum::serve`: connections whose TLS handshake finished.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The TLS options of `mod` (flattened into its arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve the HTTP API as HTTPS (and WebSockets as WSS) with this PEM certificate chain
    /// (with --tls-key). SIGHUP reloads the pair; open connections keep theirs.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made once and kept in DATA_DIR/tls/ (reused
    /// on restart); its SHA-256 fingerprint is printed at start, for `mo --pin`.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Allow plain HTTP on a non-loopback --http address (tokens and passwords then cross the
    /// network in clear: only behind something that adds TLS).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_self_signed"])]
    pub insecure_http: bool,
}

impl TlsArgs {
    /// Check the options against the HTTP address actually served (`http`, `None` when the API
    /// is off), make or load the pair, print its fingerprint and reload it on SIGHUP. `None`:
    /// plain HTTP.
    pub fn setup(
        &self,
        data_dir: &Path,
        http: Option<SocketAddr>,
    ) -> anyhow::Result<Option<Arc<Tls>>> {
        let wants_tls = self.tls_cert.is_some() || self.tls_self_signed;
        let Some(addr) = http else {
            if wants_tls {
                bail!(
                    "--tls-cert and --tls-self-signed are for the HTTP API: give --http ADDR too"
                );
            }
            return Ok(None);
        };
        if !wants_tls {
            if !addr.ip().is_loopback() && !self.insecure_http {
                bail!(
                    "--http {addr} would serve plain HTTP beyond this machine: API tokens and \
                     passwords would cross the network in clear. Serve HTTPS with \
                     --tls-cert FILE --tls-key FILE (or --tls-self-signed), listen on a loopback \
                     address, or add --insecure-http if a proxy in front adds TLS"
                );
            }
            return Ok(None);
        }
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => {
                let (files, made) = self_signed(data_dir, &self_signed_names(addr))?;
                eprintln!(
                    "mod: {} self-signed TLS certificate {}",
                    if made { "made a" } else { "using the" },
                    files.cert.display()
                );
                files
            }
        };
        let tls = Arc::new(Tls::load(files)?);
        let fp = mo_core::tls::format_fingerprint(&tls.fingerprint());
        tracing::info!("TLS certificate SHA-256 {fp}");
        eprintln!("mod: TLS certificate SHA-256 fingerprint {fp}\n     (clients: mo --pin {fp})");
        tls.reload_on_hangup()?;
        Ok(Some(tls))
    }
}

/// The names a self-signed certificate carries: loopback, the listening address unless it is
/// the wildcard, and the host's name.
fn self_signed_names(addr: SocketAddr) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            names.push(host.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}
