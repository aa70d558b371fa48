//! The `snmp_trap` action: an SNMPv2c or SNMPv3 (USM) trap sent with `async-snmp`.
//!
//! The varbinds (MO-EVENTS-MIB, shipped as `docs/MO-EVENTS-MIB.txt`) are `sysUpTime.0` (this
//! process's uptime in hundredths of a second), `snmpTrapOID.0` = [`MO_EVENT_TRAP_OID`]
//! (`moEventTrap`), then under [`MO_ENTERPRISE_OID`]`.1.1` (`moEventObjects`): `.1` moEventDevice,
//! `.2` moEventSeverity (INTEGER: 1 info, 2 notice, 3 warning, 4 error, 5 critical), `.3`
//! moEventMessage, `.4` moEventSource, `.5` moEventId (decimal text), `.6` moEventCount (Gauge32),
//! `.7` moEventPattern (the name of the pattern that matched; empty for other events). mo has no
//! private enterprise number of its own: it uses 32473, the number RFC 5612 reserves for
//! documentation; sites can map it in their trap receiver.
//!
//! SNMPv3 traps are sent by mo as the authoritative engine (RFC 3412 §6.4): the engine ID is the
//! action's `engine_id` (hex), by default [`default_engine_id`]; its boots counter is the number
//! of minutes since the Unix epoch at start, so it grows across restarts without a file to keep.
//! Passwords and communities never appear in `Debug` output or in errors.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_snmp::v3::{AuthoritativeEngine, PersistedAuthoritativeEngine};
use async_snmp::{Auth, AuthProtocol, Client, Oid, PrivProtocol, UsmConfig, Value, VarBind};
use mo_core::event::Event;
use mo_core::scan::Severity;
use mo_core::secret::Secret;
use mo_core::{Error, Result};

use super::ActionOutcome;

/// mo's enterprise subtree: `1.3.6.1.4.1.32473.1` (RFC 5612 documentation number, `.1` = mo).
pub const MO_ENTERPRISE_OID: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 1];
/// The trap identifier sent in `snmpTrapOID.0`: `1.3.6.1.4.1.32473.1.0.1` (moEventTrap).
pub const MO_EVENT_TRAP_OID: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 1, 0, 1];
/// How long sending may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How the trap is secured.
#[derive(Clone)]
pub enum TrapSecurity {
    /// SNMPv2c with a community.
    Community(Secret),
    /// SNMPv3 with a USM user (noAuthNoPriv, authNoPriv or authPriv), sent from this engine.
    Usm {
        /// The user's configuration (keys derived from the passwords).
        config: UsmConfig,
        /// The user name, for messages.
        user: String,
        /// mo's authoritative engine (ID and boots).
        engine: AuthoritativeEngine,
    },
}

impl fmt::Debug for TrapSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapSecurity::Community(_) => f.write_str("Community(***)"),
            TrapSecurity::Usm { user, engine, .. } => f
                .debug_struct("Usm")
                .field("user", user)
                .field("engine_id", &hex(engine.engine_id()))
                .finish_non_exhaustive(),
        }
    }
}

/// A trap receiver to send events to.
#[derive(Debug, Clone)]
pub struct TrapAction {
    /// `host:port` of the receiver.
    pub address: String,
    /// v2c community or v3 user.
    pub security: TrapSecurity,
}

/// The SNMPv3 settings of an `snmp_trap` action as written.
#[derive(Default)]
pub struct UsmSettings<'a> {
    /// The USM user name.
    pub user: &'a str,
    /// `md5`, `sha` (SHA-1, default), `sha224`, `sha256`, `sha384` or `sha512`.
    pub auth: Option<&'a str>,
    /// The authentication password (none: noAuthNoPriv).
    pub auth_password: Option<&'a str>,
    /// `aes` (AES-128, default) or `des`.
    pub privacy: Option<&'a str>,
    /// The privacy password (none: no privacy).
    pub priv_password: Option<&'a str>,
    /// The engine ID in hex (default [`default_engine_id`]).
    pub engine_id: Option<&'a str>,
}

/// The default SNMPv3 engine ID of this machine: RFC 3411 text format under enterprise 32473
/// (`80007ed904`), then `mo@` and the host name (cut to 32 octets in all).
pub fn default_engine_id() -> Vec<u8> {
    let mut id = vec![0x80, 0x00, 0x7e, 0xd9, 0x04];
    id.extend_from_slice(b"mo@");
    id.extend_from_slice(super::syslog::local_hostname().as_bytes());
    id.truncate(32);
    id
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl TrapAction {
    /// An SNMPv2c trap action.
    pub fn v2c(address: &str, community: &str) -> TrapAction {
        TrapAction {
            address: address.to_owned(),
            security: TrapSecurity::Community(Secret::new(community)),
        }
    }

    /// An SNMPv3 trap action; errors answer `(field, reason)` and never carry a password.
    pub fn v3(
        address: &str,
        settings: &UsmSettings<'_>,
    ) -> std::result::Result<TrapAction, (&'static str, String)> {
        let user = settings.user.trim();
        if user.is_empty() {
            return Err(("user", "SNMPv3 needs a `user`".into()));
        }
        let auth = match settings.auth.unwrap_or("sha").to_ascii_lowercase().as_str() {
            "md5" => AuthProtocol::Md5,
            "sha" | "sha1" => AuthProtocol::Sha1,
            "sha224" => AuthProtocol::Sha224,
            "sha256" => AuthProtocol::Sha256,
            "sha384" => AuthProtocol::Sha384,
            "sha512" => AuthProtocol::Sha512,
            other => {
                return Err((
                    "auth",
                    format!("`{other}`: expected md5, sha, sha224, sha256, sha384 or sha512"),
                ));
            }
        };
        let privacy = match settings
            .privacy
            .unwrap_or("aes")
            .to_ascii_lowercase()
            .as_str()
        {
            "aes" | "aes128" => PrivProtocol::Aes128,
            "des" => PrivProtocol::Des,
            other => return Err(("privacy", format!("`{other}`: expected aes or des"))),
        };
        let base = UsmConfig::new(user.as_bytes().to_vec());
        let config = match (settings.auth_password, settings.priv_password) {
            (None, None) => Ok(base),
            (Some(a), None) => base.auth(auth, a),
            (Some(a), Some(p)) => base.auth_priv(auth, a, privacy, p),
            (None, Some(_)) => {
                return Err((
                    "priv_password",
                    "privacy needs authentication: give `auth_password` too".into(),
                ));
            }
        }
        .map_err(|e| ("auth_password", format!("user {user}: {e}")))?;
        let engine_id = match settings.engine_id {
            None => default_engine_id(),
            Some(text) => parse_hex(text)
                .filter(|id| (5..=32).contains(&id.len()))
                .ok_or((
                    "engine_id",
                    format!("`{text}`: expected 5 to 32 octets in hex, e.g. 80007ed9046d6f"),
                ))?,
        };
        let minutes = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 60)
            .unwrap_or(0);
        let boots = u32::try_from(minutes)
            .unwrap_or(u32::MAX)
            .clamp(1, 0x7fff_fffe);
        let engine = PersistedAuthoritativeEngine::new(engine_id, boots)
            .and_then(|p| {
                AuthoritativeEngine::restart(p, |_| Ok::<(), std::convert::Infallible>(()))
            })
            .map_err(|e| ("engine_id", e.to_string()))?;
        Ok(TrapAction {
            address: address.to_owned(),
            security: TrapSecurity::Usm {
                config,
                user: user.to_owned(),
                engine,
            },
        })
    }

    /// The varbinds after sysUpTime.0 and snmpTrapOID.0 for an event.
    pub fn varbinds(event: &Event, pattern: Option<&str>) -> Vec<VarBind> {
        let field = |n: u32| {
            let mut oid = MO_ENTERPRISE_OID.to_vec();
            oid.extend_from_slice(&[1, 1, n]);
            Oid::from(oid)
        };
        let text = |s: &str| Value::OctetString(s.as_bytes().to_vec().into());
        vec![
            VarBind::new(field(1), text(&event.device)),
            VarBind::new(field(2), Value::Integer(severity_value(event.severity))),
            VarBind::new(field(3), text(&event.message)),
            VarBind::new(field(4), text(event.source.as_str())),
            VarBind::new(field(5), text(&event.id.to_string())),
            VarBind::new(
                field(6),
                Value::Gauge32(u32::try_from(event.count).unwrap_or(u32::MAX)),
            ),
            VarBind::new(field(7), text(pattern.unwrap_or(""))),
        ]
    }

    /// Send the trap (one UDP datagram; traps are not acknowledged). `pattern` is the name of
    /// the pattern that raised the event, when known.
    pub async fn send(&self, event: &Event, pattern: Option<&str>) -> Result<ActionOutcome> {
        let peer = format!("SNMP trap receiver {}", self.address);
        let fail = |what: &str, e: &async_snmp::Error| Error::Protocol {
            peer: peer.clone(),
            reason: format!("{what}: {e}"),
        };
        let work = async {
            let auth: Auth = match &self.security {
                TrapSecurity::Community(c) => Auth::v2c(c.expose()),
                TrapSecurity::Usm { config, .. } => config.clone().into(),
            };
            let mut builder = Client::builder(self.address.as_str(), auth)
                .send_timeout(SEND_TIMEOUT)
                .construction_timeout(SEND_TIMEOUT);
            if let TrapSecurity::Usm { engine, .. } = &self.security {
                builder = builder.local_authoritative_engine(engine.clone());
            }
            let client = builder
                .connect()
                .await
                .map_err(|e| fail("cannot open the trap socket", &e))?;
            client
                .send_trap(
                    &Oid::from_slice(MO_EVENT_TRAP_OID),
                    uptime_cs(),
                    Self::varbinds(event, pattern),
                )
                .await
                .map_err(|e| fail("cannot send the trap", &e))?;
            Ok(ActionOutcome::Delivered { attempts: 1 })
        };
        tokio::time::timeout(SEND_TIMEOUT, work)
            .await
            .map_err(|_| Error::Timeout {
                what: peer.clone(),
                after: SEND_TIMEOUT,
            })?
    }
}

/// The trap's severity value (1 info … 5 critical).
fn severity_value(severity: Severity) -> i32 {
    match severity {
        Severity::Info => 1,
        Severity::Notice => 2,
        Severity::Warning => 3,
        Severity::Error => 4,
        Severity::Critical => 5,
    }
}

/// This process's uptime in hundredths of a second, counted from the first trap sent (close
/// enough to start-up for a receiver that only orders traps by it).
fn uptime_cs() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    u32::try_from(elapsed.as_millis() / 10).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        assert_eq!(parse_hex("80007ed904"), Some(vec![0x80, 0, 0x7e, 0xd9, 4]));
        assert_eq!(parse_hex("0x0102"), Some(vec![1, 2]));
        assert_eq!(parse_hex("012"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("é1"), None);
        assert_eq!(parse_hex(""), None);
        assert_eq!(hex(&[0x80, 0x0a]), "800a");
    }

    #[test]
    fn default_engine_id_is_text_format_under_32473() {
        let id = default_engine_id();
        assert_eq!(&id[..8], b"\x80\x00\x7e\xd9\x04mo@");
        assert!(id.len() <= 32);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let a = TrapAction::v2c("127.0.0.1:162", "s3cret-community");
        assert!(!format!("{a:?}").contains("s3cret"));
        let settings = UsmSettings {
            user: "trapper",
            auth_password: Some("auth-s3cret"),
            priv_password: Some("priv-s3cret"),
            engine_id: Some("80007ed9046d6f"),
            ..UsmSettings::default()
        };
        let a = TrapAction::v3("127.0.0.1:162", &settings).expect("valid settings");
        let text = format!("{a:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("80007ed9046d6f"), "{text}");
    }

    #[test]
    fn bad_v3_settings_name_the_field() {
        let bad = |s: UsmSettings<'_>| TrapAction::v3("127.0.0.1:162", &s).err().map(|e| e.0);
        let base = || UsmSettings {
            user: "u",
            auth_password: Some("longenough"),
            ..UsmSettings::default()
        };
        assert_eq!(
            bad(UsmSettings {
                user: " ",
                ..base()
            }),
            Some("user")
        );
        assert_eq!(
            bad(UsmSettings {
                auth: Some("sha3"),
                ..base()
            }),
            Some("auth")
        );
        assert_eq!(
            bad(UsmSettings {
                privacy: Some("rc4"),
                ..base()
            }),
            Some("privacy")
        );
        assert_eq!(
            bad(UsmSettings {
                engine_id: Some("80"),
                ..base()
            }),
            Some("engine_id")
        );
        assert_eq!(
            bad(UsmSettings {
                auth_password: None,
                priv_password: Some("x12345678"),
                ..base()
            }),
            Some("priv_password")
        );
    }
}
