//! SNMP PDU outlets (async-snmp): v2c, or v3 with authentication (and privacy).
//!
//! Address: `snmp://[USER@]PDU[:PORT]/PROFILE/OUTLET[,OUTLET…][?PARAMS]`
//! - `PROFILE`: one of [`super::snmp_profiles::PROFILE_NAMES`]; `auto` reads sysObjectID (and
//!   sysDescr) once and probes the MIB generation.
//! - `OUTLET`: a number from 1 (or a dotted index such as `1.2.7`); several outlets separated by
//!   commas switch together in one SET (a device with two supplies on one PDU).
//! - No `USER`: v2c; the community is `credentials.snmp_auth`. With `USER`: v3 as that user, the
//!   authentication passphrase from `credentials.snmp_auth` and the privacy passphrase from
//!   `credentials.snmp_privacy` (authPriv; without it authNoPriv).
//! - `PARAMS`: `auth=sha|sha224|sha256|sha384|sha512|md5` (default sha), `priv=aes|des`
//!   (default aes), `timeout=2s` per try, `retries=1`, `cycle-delay=5s` (when the PDU has no reboot
//!   command), and for `generic`: `control-oid`, `status-oid`, `on`, `off`, `reboot`,
//!   `status-on`, `status-off`.
//!
//! Status of many outlets of one PDU goes in one GET ([`SnmpPdu::status_many`]). Addresses on
//! the same PDU (same host, port, security, profile and parameters) share one [`SnmpPdu`] in the
//! process, and status reads started together on it are answered by one GET for all their
//! outlets ([`SnmpOutlets::status`]): `mo power status @rack` asks each PDU once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_snmp::{
    Auth, AuthProtocol, Client, ErrorKind, Oid, PrivProtocol, Retry, UsmConfig, Value,
};
use async_trait::async_trait;
use mo_core::power::{PowerAction, PowerCapabilities, PowerController, PowerState};
use mo_core::{Error, Result};
use tokio::sync::OnceCell;
use url::Url;

use super::snmp_profiles::{self, OutletCommand, PROFILE_NAMES, PduProfile};
use crate::address::{self, DriverOptions, Query};

const PARAMETERS: &[&str] = &[
    "auth",
    "priv",
    "timeout",
    "retries",
    "cycle-delay",
    "control-oid",
    "status-oid",
    "on",
    "off",
    "reboot",
    "status-on",
    "status-off",
];

/// At most this many varbinds go in one GET.
pub const MAX_VARBINDS: usize = 48;

/// How long a status read waits for others on the same PDU to join its GET.
const GATHER: Duration = Duration::from_millis(1);

/// The PDU sessions of this process, by everything that makes two addresses one session.
static PDUS: LazyLock<Mutex<HashMap<String, Weak<SnmpPdu>>>> = LazyLock::new(Default::default);

/// A status read waiting for the PDU's next batched GET: its outlets and where to answer.
type Waiter = (
    Vec<String>,
    tokio::sync::oneshot::Sender<Option<HashMap<String, std::result::Result<PowerState, String>>>>,
);

/// Status reads queued on a PDU, and whether a batch task is serving them.
#[derive(Default)]
struct Pending {
    running: bool,
    waiters: Vec<Waiter>,
}

const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];

/// How to authenticate to a PDU.
#[derive(Clone)]
enum Security {
    Community(String),
    Usm(UsmConfig, String),
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::Community(_) => f.write_str("v2c community ***"),
            Security::Usm(_, user) => write!(f, "v3 user {user}"),
        }
    }
}

/// One PDU: its SNMP session (opened on first use) and its profile. Share one `Arc<SnmpPdu>`
/// between the outlets of a PDU so status reads can be batched.
pub struct SnmpPdu {
    label: String,
    host: String,
    port: u16,
    security: Security,
    timeout: Duration,
    retries: u32,
    profile_name: String,
    fixed_profile: Option<PduProfile>,
    profile: OnceCell<PduProfile>,
    client: OnceCell<Client>,
    requests: AtomicU64,
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for SnmpPdu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpPdu")
            .field("label", &self.label)
            .field("security", &self.security)
            .field("profile", &self.profile_name)
            .field("requests", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

impl SnmpPdu {
    /// The PDU as `snmp://[user@]host:port`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// How many SNMP requests this PDU has been sent (GET and SET PDUs; retries not counted).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn who(&self) -> &'static str {
        match self.security {
            Security::Community(_) => "community",
            Security::Usm(..) => "user",
        }
    }

    async fn client(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| async {
                let auth: Auth = match &self.security {
                    Security::Community(c) => Auth::v2c(c.as_str()),
                    Security::Usm(config, _) => config.clone().into(),
                };
                let retry =
                    Retry::fixed(self.retries, Duration::ZERO).map_err(|e| Error::Protocol {
                        peer: self.label.clone(),
                        reason: format!("bad retry setting: {e}"),
                    })?;
                let limit = self.timeout * (self.retries + 1) + Duration::from_secs(1);
                let connect = Client::builder((self.host.clone(), self.port), auth)
                    .request_timeout(self.timeout)
                    .retry(retry)
                    .max_oids_per_request(MAX_VARBINDS)
                    .construction_timeout(limit)
                    .connect();
                match tokio::time::timeout(limit, connect).await {
                    Err(_) => Err(self.timed_out("connecting")),
                    Ok(Err(e)) => Err(self.map_error(&e, "connecting", None)),
                    Ok(Ok(client)) => Ok(client),
                }
            })
            .await
    }

    fn timed_out(&self, what: &str) -> Error {
        let hint = match self.security {
            Security::Community(_) => " (unreachable, or the community is wrong)",
            Security::Usm(..) => "",
        };
        Error::Timeout {
            what: format!("SNMP {what} {}{hint}", self.label),
            after: self.timeout * (self.retries + 1),
        }
    }

    fn map_error(&self, e: &async_snmp::Error, what: &str, set: Option<&Oid>) -> Error {
        let source = e.exchange_source();
        match (e.kind(), source) {
            (ErrorKind::Timeout | ErrorKind::ConstructionTimeout, _) => self.timed_out(what),
            (_, async_snmp::Error::Snmp { status, oid, .. }) => {
                let name = status.to_string();
                let refused = matches!(
                    name.as_str(),
                    "noAccess" | "notWritable" | "readOnly" | "authorizationError" | "noCreation"
                );
                let oid = oid
                    .as_deref()
                    .or(set)
                    .map(|o| o.to_string())
                    .unwrap_or_default();
                if refused && set.is_some() {
                    Error::Auth {
                        target: self.label.clone(),
                        reason: format!("{} refused to set {oid} ({name})", self.who()),
                    }
                } else {
                    Error::Protocol {
                        peer: self.label.clone(),
                        reason: format!("{what}: the PDU answered {name} for {oid}"),
                    }
                }
            }
            (ErrorKind::Auth | ErrorKind::Report, _) => Error::Auth {
                target: self.label.clone(),
                reason: format!("{} rejected: {source}", self.who()),
            },
            (ErrorKind::Network, _) => Error::Connect {
                address: self.label.clone(),
                reason: source.to_string(),
            },
            _ => Error::Protocol {
                peer: self.label.clone(),
                reason: format!("{what}: {source}"),
            },
        }
    }

    /// GET `oids` in as few requests as possible; the values in the order asked.
    async fn get(&self, oids: &[Oid], what: &str) -> Result<Vec<Value>> {
        let client = self.client().await?;
        let mut values = Vec::with_capacity(oids.len());
        for chunk in oids.chunks(MAX_VARBINDS) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let limit = self.timeout * (self.retries + 1) + Duration::from_secs(1);
            let response = match tokio::time::timeout(limit, client.get_many(chunk)).await {
                Err(_) => return Err(self.timed_out(what)),
                Ok(Err(e)) => return Err(self.map_error(&e, what, None)),
                Ok(Ok(r)) => r,
            };
            for oid in chunk {
                let value = response
                    .varbinds
                    .iter()
                    .find(|vb| &vb.oid == oid)
                    .map(|vb| vb.value.clone())
                    .ok_or_else(|| Error::Protocol {
                        peer: self.label.clone(),
                        reason: format!("{what}: the answer lacks {oid}"),
                    })?;
                values.push(value);
            }
        }
        Ok(values)
    }

    async fn set(&self, varbinds: &[(Oid, Value)], what: &str) -> Result<()> {
        let client = self.client().await?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let limit = self.timeout * (self.retries + 1) + Duration::from_secs(1);
        match tokio::time::timeout(limit, client.set_many(varbinds)).await {
            Err(_) => Err(self.timed_out(what)),
            Ok(Err(e)) => Err(self.map_error(&e, what, varbinds.first().map(|(o, _)| o))),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// The profile, resolving `auto` on first use (probing with `outlet`).
    pub async fn profile(&self, outlet: &str) -> Result<&PduProfile> {
        if let Some(p) = &self.fixed_profile {
            return Ok(p);
        }
        self.profile
            .get_or_try_init(|| async {
                let system = [Oid::from_slice(&SYS_DESCR), Oid::from_slice(&SYS_OBJECT_ID)];
                let values = self.get(&system, "reading sysObjectID of").await?;
                let descr = values
                    .first()
                    .and_then(|v| v.as_bytes())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let object_id = values
                    .get(1)
                    .and_then(|v| v.as_oid())
                    .map(|o| o.arcs().to_vec())
                    .unwrap_or_default();
                let names = snmp_profiles::candidates(&object_id, &descr);
                for name in &names {
                    let Some(profile) = PduProfile::builtin(name) else {
                        continue;
                    };
                    let Some(index) = profile.index(outlet) else {
                        continue;
                    };
                    let probe = self.get(&[profile.status_oid(&index)], "probing").await?;
                    if probe.first().and_then(Value::as_i32).is_some() {
                        return Ok(profile);
                    }
                }
                Err(Error::Protocol {
                    peer: self.label.clone(),
                    reason: format!(
                        "profile `auto`: no known PDU MIB answers (sysObjectID {}, sysDescr {:?}); \
                         name the profile in the address",
                        object_id
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join("."),
                        descr.chars().take(60).collect::<String>()
                    ),
                })
            })
            .await
    }

    fn indexes(&self, profile: &PduProfile, outlets: &[String]) -> Result<Vec<Vec<u32>>> {
        outlets
            .iter()
            .map(|o| {
                profile.index(o).ok_or_else(|| Error::Protocol {
                    peer: self.label.clone(),
                    reason: format!("bad outlet `{o}` for profile {}", profile.name),
                })
            })
            .collect()
    }

    /// The state of every outlet in `outlets`, read with one GET (per [`MAX_VARBINDS`]).
    pub async fn status_many(&self, outlets: &[String]) -> Result<Vec<PowerState>> {
        self.status_each(outlets).await?.into_iter().collect()
    }

    /// Like [`SnmpPdu::status_many`], with an answer per outlet: an outlet the PDU does not have
    /// fails alone; the whole read fails only when the GET does.
    async fn status_each(&self, outlets: &[String]) -> Result<Vec<Result<PowerState>>> {
        let Some(first) = outlets.first() else {
            return Ok(Vec::new());
        };
        let profile = self.profile(first).await?;
        let indexes = self.indexes(profile, outlets)?;
        let oids: Vec<Oid> = indexes.iter().map(|i| profile.status_oid(i)).collect();
        let values = self.get(&oids, "reading outlet status of").await?;
        Ok(outlets
            .iter()
            .zip(values)
            .map(|(outlet, value)| match value.as_i32() {
                Some(v) => Ok(profile.state_of(v)),
                None => Err(Error::Protocol {
                    peer: self.label.clone(),
                    reason: format!(
                        "outlet {outlet} does not exist (profile {}: {value:?})",
                        profile.name
                    ),
                }),
            })
            .collect())
    }

    /// The state of `outlets`, read together with every other read queued on this PDU at about
    /// the same time: the first one starts a task that waits a millisecond, then answers all that
    /// queued with one GET (per [`MAX_VARBINDS`]) of their distinct outlets, and again for those
    /// that queued meanwhile. If that GET fails, each read retries alone so that its error is
    /// its own.
    pub async fn status_batched(self: &Arc<Self>, outlets: &[String]) -> Result<Vec<PowerState>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let start = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.waiters.push((outlets.to_vec(), answer));
            !std::mem::replace(&mut pending.running, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).serve_batches());
        }
        match answered.await.ok().flatten() {
            Some(states) => outlets
                .iter()
                .map(|o| match states.get(o) {
                    Some(Ok(state)) => Ok(*state),
                    Some(Err(reason)) => Err(Error::Protocol {
                        peer: self.label.clone(),
                        reason: reason.clone(),
                    }),
                    None => Err(Error::Protocol {
                        peer: self.label.clone(),
                        reason: format!("outlet {o} missing from the batched read"),
                    }),
                })
                .collect(),
            None => self.status_many(outlets).await,
        }
    }

    /// Answer queued status reads, one GET per gathering, until none is left.
    async fn serve_batches(self: Arc<Self>) {
        loop {
            tokio::time::sleep(GATHER).await;
            let waiters = {
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if pending.waiters.is_empty() {
                    pending.running = false;
                    return;
                }
                std::mem::take(&mut pending.waiters)
            };
            let mut distinct: Vec<String> = waiters.iter().flat_map(|(o, _)| o.clone()).collect();
            distinct.sort();
            distinct.dedup();
            let states = self.status_each(&distinct).await.ok().map(|states| {
                distinct
                    .into_iter()
                    .zip(states)
                    .map(|(o, s)| (o, s.map_err(|e| protocol_reason(&e))))
                    .collect::<HashMap<_, _>>()
            });
            for (_, answer) in waiters {
                let _ = answer.send(states.clone());
            }
        }
    }

    /// Send `pick(profile)` to every outlet in one SET.
    pub async fn command(
        &self,
        outlets: &[String],
        what: &str,
        pick: impl Fn(&PduProfile) -> Option<&OutletCommand>,
    ) -> Result<()> {
        let Some(first) = outlets.first() else {
            return Ok(());
        };
        let profile = self.profile(first).await?;
        let command = pick(profile).ok_or_else(|| Error::Unsupported {
            operation: "reboot",
            what: format!("{} (profile {})", self.label, profile.name),
        })?;
        let varbinds: Vec<(Oid, Value)> = self
            .indexes(profile, outlets)?
            .iter()
            .map(|i| {
                (
                    PduProfile::oid(&command.column, i),
                    Value::Integer(command.value),
                )
            })
            .collect();
        self.set(&varbinds, what).await
    }
}

/// One or more outlets of one PDU, switched together.
#[derive(Debug, Clone)]
pub struct SnmpOutlets {
    address: String,
    pdu: Arc<SnmpPdu>,
    outlets: Vec<String>,
    cycle_delay: Duration,
}

impl SnmpOutlets {
    /// Read an `snmp:` power address (see the module docs); secrets from `opts.credentials`.
    pub fn from_url(url: &Url, text: &str, opts: &DriverOptions) -> Result<Self> {
        address::expect_no_fragment(url, text)?;
        let query = Query::parse(url, text, PARAMETERS)?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| address::bad(text, "no PDU host; write snmp://PDU/PROFILE/OUTLET"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(161);
        if url.password().is_some() {
            return Err(address::bad(
                text,
                "no passwords in addresses; secrets go in the credentials",
            ));
        }
        let segments: Vec<&str> = url.path().trim_matches('/').split('/').collect();
        let [profile_name, outlets] = segments.as_slice() else {
            return Err(address::bad(
                text,
                "write snmp://PDU/PROFILE/OUTLET[,OUTLET…]",
            ));
        };
        let profile_name = profile_name.to_ascii_lowercase();
        let fixed_profile = match profile_name.as_str() {
            "auto" => None,
            "generic" => Some(
                PduProfile::generic(|k| query.single(k).ok().flatten().map(str::to_owned))
                    .map_err(|e| address::bad(text, e.reason))?,
            ),
            name => Some(PduProfile::builtin(name).ok_or_else(|| {
                address::bad(
                    text,
                    format!(
                        "unknown PDU profile `{name}` (known: {})",
                        PROFILE_NAMES.join(", ")
                    ),
                )
            })?),
        };
        let mut list = Vec::new();
        for outlet in outlets.split(',') {
            let parsed = snmp_profiles::parse_oid(outlet);
            match parsed.as_deref() {
                Some(arcs) if !arcs.contains(&0) || arcs.len() > 1 => list.push(outlet.to_owned()),
                Some(_) => return Err(address::bad(text, "outlet numbers start at 1")),
                None => {
                    return Err(address::bad(
                        text,
                        format!(
                            "bad outlet `{outlet}`: write a number such as 3 (or an index such as 1.1.3)"
                        ),
                    ));
                }
            }
        }
        let parse_auth = |v: &str| -> std::result::Result<AuthProtocol, String> {
            Ok(match v.to_ascii_lowercase().as_str() {
                "md5" => AuthProtocol::Md5,
                "sha" | "sha1" => AuthProtocol::Sha1,
                "sha224" => AuthProtocol::Sha224,
                "sha256" => AuthProtocol::Sha256,
                "sha384" => AuthProtocol::Sha384,
                "sha512" => AuthProtocol::Sha512,
                _ => return Err("md5, sha, sha224, sha256, sha384 or sha512".into()),
            })
        };
        let parse_priv = |v: &str| -> std::result::Result<PrivProtocol, String> {
            Ok(match v.to_ascii_lowercase().as_str() {
                "des" => PrivProtocol::Des,
                "aes" | "aes128" => PrivProtocol::Aes128,
                _ => return Err("aes or des".into()),
            })
        };
        let auth_protocol = query
            .parsed("auth", parse_auth)?
            .unwrap_or(AuthProtocol::Sha1);
        let priv_protocol = query
            .parsed("priv", parse_priv)?
            .unwrap_or(PrivProtocol::Aes128);
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        let creds = &opts.credentials;
        let security = if user.is_empty() {
            let community = creds.snmp_auth.as_ref().ok_or_else(|| {
                address::bad(
                    text,
                    "no SNMP community: set the device's snmp_auth credential",
                )
            })?;
            Security::Community(community.expose().to_owned())
        } else {
            let auth = creds.snmp_auth.as_ref().ok_or_else(|| {
                address::bad(
                    text,
                    format!("no SNMPv3 authentication passphrase for user {user}"),
                )
            })?;
            let config = UsmConfig::new(user.clone().into_bytes());
            let config = match &creds.snmp_privacy {
                Some(privacy) => config.auth_priv(
                    auth_protocol,
                    auth.expose(),
                    priv_protocol,
                    privacy.expose(),
                ),
                None => config.auth(auth_protocol, auth.expose()),
            }
            .map_err(|e| address::bad(text, format!("SNMPv3 settings for user {user}: {e}")))?;
            Security::Usm(config, user.clone())
        };
        let timeout = query
            .parsed("timeout", super::parse_duration)?
            .unwrap_or(Duration::from_secs(2));
        let retries = query
            .parsed("retries", |v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|r| *r <= 10)
                    .ok_or_else(|| "0 to 10".to_owned())
            })?
            .unwrap_or(1);
        let cycle_delay = query
            .parsed("cycle-delay", super::parse_duration)?
            .unwrap_or(Duration::from_secs(5));
        let user_part = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        let pdu = SnmpPdu {
            label: format!("snmp://{user_part}{}", host_port(&host, port)),
            host,
            port,
            security,
            timeout: timeout.max(Duration::from_millis(10)),
            retries,
            profile_name,
            fixed_profile,
            profile: OnceCell::new(),
            client: OnceCell::new(),
            requests: AtomicU64::new(0),
            pending: Mutex::new(Pending::default()),
        };
        // Everything that makes two addresses one session: the PDU, its parameters (the query,
        // which holds the timeout, the retries and a generic profile's OIDs) and the secrets.
        let key = format!(
            "{}\n{}\n{}\n{}",
            pdu.label,
            pdu.profile_name,
            url.query().unwrap_or(""),
            match &pdu.security {
                Security::Community(c) => format!("c:{c}"),
                Security::Usm(..) => format!(
                    "u:{}:{}",
                    creds.snmp_auth.as_ref().map_or("", |a| a.expose()),
                    creds.snmp_privacy.as_ref().map_or("", |p| p.expose())
                ),
            }
        );
        Ok(Self {
            address: address::display(url),
            pdu: shared(key, pdu),
            outlets: list,
            cycle_delay,
        })
    }

    /// The same outlets' controller on a shared PDU session (for batching many outlets).
    pub fn on_pdu(mut self, pdu: Arc<SnmpPdu>) -> Self {
        self.pdu = pdu;
        self
    }

    /// The PDU session.
    pub fn pdu(&self) -> &Arc<SnmpPdu> {
        &self.pdu
    }

    /// The outlets, as written.
    pub fn outlets(&self) -> &[String] {
        &self.outlets
    }

    /// The profile as written in the address (`auto` included).
    pub fn profile_name(&self) -> &str {
        &self.pdu.profile_name
    }

    fn named(&self, e: Error) -> Error {
        match e {
            Error::Protocol { reason, .. } => Error::Protocol {
                peer: self.address.clone(),
                reason,
            },
            Error::Auth { reason, .. } => Error::Auth {
                target: self.address.clone(),
                reason,
            },
            Error::Connect { reason, .. } => Error::Connect {
                address: self.address.clone(),
                reason,
            },
            other => other,
        }
    }
}

/// The process's session for `key`, or `pdu` as that session from now on.
fn shared(key: String, pdu: SnmpPdu) -> Arc<SnmpPdu> {
    let mut pdus = PDUS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = pdus.get(&key).and_then(Weak::upgrade) {
        return existing;
    }
    pdus.retain(|_, pdu| pdu.strong_count() > 0);
    let pdu = Arc::new(pdu);
    pdus.insert(key, Arc::downgrade(&pdu));
    pdu
}

/// The reason of a per-outlet error (always [`Error::Protocol`]) or the error's text.
fn protocol_reason(e: &Error) -> String {
    match e {
        Error::Protocol { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[async_trait]
impl PowerController for SnmpOutlets {
    fn address(&self) -> &str {
        &self.address
    }

    fn capabilities(&self) -> PowerCapabilities {
        let reboot = self
            .pdu
            .fixed_profile
            .as_ref()
            .is_none_or(|p| p.reboot.is_some());
        PowerCapabilities::ALL
            .with_reset(false)
            .with_soft_off(false)
            .with_cycle(reboot || self.cycle_delay > Duration::ZERO)
    }

    async fn status(&self) -> Result<PowerState> {
        let states = self
            .pdu
            .status_batched(&self.outlets)
            .await
            .map_err(|e| self.named(e))?;
        Ok(mo_core::power::binding::combine_states(states))
    }

    async fn perform(&self, action: PowerAction) -> Result<()> {
        let result = match action {
            PowerAction::On => {
                self.pdu
                    .command(&self.outlets, "switching on", |p| Some(&p.on))
                    .await
            }
            PowerAction::Off => {
                self.pdu
                    .command(&self.outlets, "switching off", |p| Some(&p.off))
                    .await
            }
            PowerAction::Cycle => {
                let profile = self
                    .pdu
                    .profile(&self.outlets[0])
                    .await
                    .map_err(|e| self.named(e))?;
                if profile.reboot.is_some() {
                    self.pdu
                        .command(&self.outlets, "rebooting", |p| p.reboot.as_ref())
                        .await
                } else {
                    self.pdu
                        .command(&self.outlets, "switching off", |p| Some(&p.off))
                        .await?;
                    tokio::time::sleep(self.cycle_delay).await;
                    self.pdu
                        .command(&self.outlets, "switching on", |p| Some(&p.on))
                        .await
                }
            }
            PowerAction::Reset | PowerAction::SoftOff => {
                return Err(Error::Unsupported {
                    operation: action.name(),
                    what: format!("{} (a PDU outlet)", self.address),
                });
            }
        };
        result.map_err(|e| self.named(e))
    }
}
