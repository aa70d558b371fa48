//! Agents (`mo-agent` on console servers): enrollment tokens, their SSH keys, what they offer.
//!
//! `mo agent add NAME` creates an agent with a one-time enrollment secret (the store keeps only
//! its SHA-256, like API tokens: a 256-bit random secret needs no slow hash). The agent presents
//! the secret once, with its public key; [`Store::enroll_agent`] consumes the secret and records
//! the key in one statement, so a second use is refused. From then on the agent logs in with its
//! key under its own name only. Removing an agent revokes it (the daemon cuts its connection).
//! The daemon records the ports an agent offers and when it connected, for `mo agent ports|list`.

use std::fmt::Write as _;
use std::time::Duration;

use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::device::now_ns;
use crate::error::{Error, Result};
use crate::names::validate_device_name;
use crate::sshkey::SshPublicKey;
use crate::store::Store;

/// How long an enrollment secret stays valid.
pub const ENROLL_VALID: Duration = Duration::from_secs(24 * 3600);

/// An agent as listed (never its enrollment secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's name (its SSH login name).
    pub name: String,
    /// The SHA-256 fingerprint of its key, once enrolled.
    pub fingerprint: Option<String>,
    /// When it was added (ns since the Unix epoch).
    pub created_ns: i64,
    /// When it enrolled.
    pub enrolled_ns: Option<i64>,
    /// When its current connection began (`None`: not connected).
    pub connected_ns: Option<i64>,
    /// When it was last connected or disconnected.
    pub seen_ns: Option<i64>,
    /// Where it connected from, last time.
    pub peer: Option<String>,
    /// The agent software's version, last time.
    pub software: Option<String>,
    /// When an unused enrollment secret expires.
    pub token_expires_ns: Option<i64>,
}

/// A port an agent offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPort {
    /// The port's name on the agent.
    pub name: String,
    /// How the agent opens it.
    pub url: String,
    /// Capability bits (bit 0 BREAK, 1 line settings, 2 modem lines).
    pub caps: u8,
}

fn hash_secret(secret: &str) -> String {
    let mut s = String::with_capacity(64);
    for b in Sha256::digest(secret.as_bytes()) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const COLUMNS: &str = "name, fingerprint, created_ns, enrolled_ns, connected_ns, seen_ns, peer, \
                       software, token_expires_ns";

fn row_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentInfo> {
    Ok(AgentInfo {
        name: r.get(0)?,
        fingerprint: r.get(1)?,
        created_ns: r.get(2)?,
        enrolled_ns: r.get(3)?,
        connected_ns: r.get(4)?,
        seen_ns: r.get(5)?,
        peer: r.get(6)?,
        software: r.get(7)?,
        token_expires_ns: r.get(8)?,
    })
}

/// The name no agent may take: host info (`mo host show`, `/api/v1/hosts/mod/…`) means the
/// daemon's own host by it.
pub const RESERVED_AGENT_NAME: &str = "mod";

impl Store {
    /// Add agent `name` and return its one-time enrollment secret (64 hex digits), valid for
    /// [`ENROLL_VALID`]. Agent names follow device-name rules; `mod` is refused, since it names
    /// the daemon's own host (`mo host show mod`).
    pub fn add_agent(&self, name: &str) -> Result<String> {
        validate_device_name(name)?;
        if name == RESERVED_AGENT_NAME {
            return Err(Error::BadName {
                what: "agent",
                name: name.to_owned(),
                reason: "`mod` names the daemon's own host (mo host show mod); give the agent \
                         another name"
                    .into(),
            });
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let mut secret = String::with_capacity(64);
        for b in bytes {
            let _ = write!(secret, "{b:02x}");
        }
        let now = now_ns();
        let expires = now.saturating_add(ENROLL_VALID.as_nanos() as i64);
        let result = self.conn().execute(
            "INSERT INTO agents (name, token_hash, token_expires_ns, created_ns) \
             VALUES (?1, ?2, ?3, ?4)",
            params![name, hash_secret(&secret), expires, now],
        );
        match result {
            Ok(_) => Ok(secret),
            Err(e) if crate::store::is_unique_violation(&e) => Err(Error::NameExists {
                what: "agent",
                name: name.into(),
            }),
            Err(e) => Err(self.sql_error("add an agent", e)),
        }
    }

    /// Every agent, by name.
    pub fn agents(&self) -> Result<Vec<AgentInfo>> {
        self.read("list agents", |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM agents ORDER BY name"))?;
            stmt.query_map([], row_info)?.collect()
        })
    }

    /// Agent `name`, or [`Error::UnknownName`].
    pub fn agent(&self, name: &str) -> Result<AgentInfo> {
        self.read("read an agent", |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM agents WHERE name = ?1"),
                [name],
                row_info,
            )
            .optional()
        })?
        .ok_or_else(|| Error::UnknownName {
            what: "agent",
            name: name.into(),
        })
    }

    /// Remove (revoke) agent `name`, with its key and ports.
    pub fn remove_agent(&self, name: &str) -> Result<()> {
        let n = self.read("remove an agent", |c| {
            c.execute("DELETE FROM agents WHERE name = ?1", [name])
        })?;
        if n == 0 {
            return Err(Error::UnknownName {
                what: "agent",
                name: name.into(),
            });
        }
        Ok(())
    }

    /// Whether `secret` is agent `name`'s unused, unexpired enrollment secret.
    pub fn check_agent_enrollment(&self, name: &str, secret: &str) -> Result<bool> {
        let row: Option<(Option<String>, Option<i64>)> = self.read("check an enrollment", |c| {
            c.query_row(
                "SELECT token_hash, token_expires_ns FROM agents WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        let Some((Some(hash), Some(expires))) = row else {
            return Ok(false);
        };
        Ok(expires > now_ns() && constant_time_eq(hash.as_bytes(), hash_secret(secret).as_bytes()))
    }

    /// Enroll agent `name` with `key`, consuming its enrollment `secret`: refused
    /// ([`Error::TokenRefused`]) if the secret is wrong, used or expired, or if the key belongs
    /// to another agent.
    pub fn enroll_agent(&self, name: &str, secret: &str, key: &SshPublicKey) -> Result<()> {
        if !self.check_agent_enrollment(name, secret)? {
            return Err(Error::TokenRefused {
                reason: format!("no unused enrollment token of agent `{name}` matches"),
            });
        }
        let result = self.conn().execute(
            "UPDATE agents SET key_type = ?2, blob = ?3, fingerprint = ?4, enrolled_ns = ?5, \
             token_hash = NULL, token_expires_ns = NULL \
             WHERE name = ?1 AND token_hash = ?6",
            params![
                name,
                key.key_type(),
                key.blob_base64(),
                key.fingerprint(),
                now_ns(),
                hash_secret(secret)
            ],
        );
        match result {
            Ok(1) => Ok(()),
            Ok(_) => Err(Error::TokenRefused {
                reason: format!("the enrollment token of agent `{name}` was used meanwhile"),
            }),
            Err(e) if crate::store::is_unique_violation(&e) => Err(Error::TokenRefused {
                reason: "this key is already another agent's".into(),
            }),
            Err(e) => Err(self.sql_error("enroll an agent", e)),
        }
    }

    /// The agent whose enrolled key is `key_type`/`blob` (base64), if any.
    pub fn agent_by_key(&self, key_type: &str, blob: &str) -> Result<Option<String>> {
        self.read("find an agent by key", |c| {
            c.query_row(
                "SELECT name FROM agents WHERE key_type = ?1 AND blob = ?2",
                [key_type, blob],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Record that agent `name` connected (`Some(peer)`) or disconnected (`None`).
    pub fn set_agent_connected(
        &self,
        name: &str,
        peer: Option<&str>,
        software: Option<&str>,
    ) -> Result<()> {
        let now = now_ns();
        self.read("record an agent's connection", |c| match peer {
            Some(peer) => c.execute(
                "UPDATE agents SET connected_ns = ?2, seen_ns = ?2, peer = ?3, \
                 software = COALESCE(?4, software) WHERE name = ?1",
                params![name, now, peer, software],
            ),
            None => c.execute(
                "UPDATE agents SET connected_ns = NULL, seen_ns = ?2 WHERE name = ?1",
                params![name, now],
            ),
        })?;
        Ok(())
    }

    /// Replace the list of ports agent `name` offers.
    pub fn set_agent_ports(&self, name: &str, ports: &[AgentPort]) -> Result<()> {
        self.atomically("record an agent's ports", |s| {
            s.read("record an agent's ports", |c| {
                c.execute("DELETE FROM agent_ports WHERE agent = ?1", [name])?;
                let mut stmt = c.prepare(
                    "INSERT OR REPLACE INTO agent_ports (agent, name, url, caps) \
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM agents WHERE name = ?1)",
                )?;
                for port in ports {
                    stmt.execute(params![name, port.name, port.url, i64::from(port.caps)])?;
                }
                Ok(())
            })
        })
    }

    /// The ports agent `name` offered when last connected.
    pub fn agent_ports(&self, name: &str) -> Result<Vec<AgentPort>> {
        self.agent(name)?;
        self.read("list an agent's ports", |c| {
            let mut stmt = c.prepare(
                "SELECT name, url, caps FROM agent_ports WHERE agent = ?1 ORDER BY name",
            )?;
            stmt.query_map([name], |r| {
                Ok(AgentPort {
                    name: r.get(0)?,
                    url: r.get(1)?,
                    caps: u8::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })?
            .collect()
        })
    }

    /// Record, in one transaction, where each agent port resumes: `(agent, port, epoch, seq)`,
    /// the agent's spool epoch and the last sequence number the daemon passed on. Ports of
    /// agents that no longer exist are skipped.
    pub fn set_agent_resumes(&self, points: &[ResumePoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.read("record agent resume points", |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare(
                    "INSERT OR REPLACE INTO agent_resume (agent, port, epoch, seq) \
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM agents WHERE name = ?1)",
                )?;
                for p in points {
                    // u64 kept bit for bit in SQLite's i64.
                    stmt.execute(params![p.agent, p.port, p.epoch as i64, p.seq as i64])?;
                }
            }
            tx.commit()
        })
    }

    /// Where port `port` of agent `agent` resumes: its spool epoch and the last sequence number
    /// passed on, if recorded.
    pub fn agent_resume(&self, agent: &str, port: &str) -> Result<Option<(u64, u64)>> {
        self.read("read an agent resume point", |c| {
            c.query_row(
                "SELECT epoch, seq FROM agent_resume WHERE agent = ?1 AND port = ?2",
                [agent, port],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
        })
    }
}

/// Where an agent port resumes (see [`Store::set_agent_resumes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The agent's name.
    pub agent: String,
    /// The port's name on the agent.
    pub port: String,
    /// The agent's spool epoch for the port.
    pub epoch: u64,
    /// The last sequence number passed on.
    pub seq: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("mo.db")).unwrap();
        (tmp, store)
    }

    const KEY1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBWRTDM79zGEgM25c35+Wp14zcxSZMQA4WPKdWhCV2Lg a";
    const KEY2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKim9X+kpBn2IntBxLJctEXuAseYMcn11GONNWvKLaAd b";

    #[test]
    fn enrollment_works_once_and_keys_stay_apart() {
        let (_tmp, s) = store();
        let secret = s.add_agent("cs1").unwrap();
        assert_eq!(secret.len(), 64);
        assert!(matches!(s.add_agent("cs1"), Err(Error::NameExists { .. })));
        let reserved = s.add_agent("mod").unwrap_err();
        assert!(
            matches!(&reserved, Error::BadName { what: "agent", .. })
                && reserved.to_string().contains("daemon's own host"),
            "{reserved}"
        );
        assert!(s.add_agent("bad name").is_err());
        assert!(s.check_agent_enrollment("cs1", &secret).unwrap());
        assert!(!s.check_agent_enrollment("cs1", "00").unwrap());
        assert!(!s.check_agent_enrollment("cs2", &secret).unwrap());
        let k1 = SshPublicKey::parse(KEY1).unwrap();
        let k2 = SshPublicKey::parse(KEY2).unwrap();
        assert!(s.enroll_agent("cs1", "wrong", &k1).is_err());
        s.enroll_agent("cs1", &secret, &k1).unwrap();
        let again = s.enroll_agent("cs1", &secret, &k2).unwrap_err();
        assert!(
            again.to_string().contains("no unused enrollment token"),
            "{again}"
        );
        assert_eq!(
            s.agent_by_key(k1.key_type(), k1.blob_base64())
                .unwrap()
                .as_deref(),
            Some("cs1")
        );
        assert_eq!(
            s.agent_by_key(k2.key_type(), k2.blob_base64()).unwrap(),
            None
        );
        // The same key cannot enroll a second agent.
        let secret2 = s.add_agent("cs2").unwrap();
        let e = s.enroll_agent("cs2", &secret2, &k1).unwrap_err();
        assert!(e.to_string().contains("another agent"), "{e}");
        let info = s.agent("cs1").unwrap();
        assert_eq!(info.fingerprint.as_deref(), Some(k1.fingerprint()));
        assert!(info.enrolled_ns.is_some() && info.token_expires_ns.is_none());
    }

    #[test]
    fn ports_and_connections_are_recorded_and_removed_with_the_agent() {
        let (_tmp, s) = store();
        s.add_agent("cs1").unwrap();
        let ports = vec![
            AgentPort {
                name: "ttyS0".into(),
                url: "serial:///dev/ttyS0".into(),
                caps: 7,
            },
            AgentPort {
                name: "a".into(),
                url: "exec:///bin/cat".into(),
                caps: 0,
            },
        ];
        s.set_agent_ports("cs1", &ports).unwrap();
        let got = s.agent_ports("cs1").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "a");
        s.set_agent_connected("cs1", Some("127.0.0.1:5000"), Some("0.1.0"))
            .unwrap();
        assert!(s.agent("cs1").unwrap().connected_ns.is_some());
        s.set_agent_connected("cs1", None, None).unwrap();
        let info = s.agent("cs1").unwrap();
        assert!(info.connected_ns.is_none());
        assert_eq!(info.software.as_deref(), Some("0.1.0"));
        let point = |port: &str, epoch: u64, seq: u64| ResumePoint {
            agent: "cs1".into(),
            port: port.into(),
            epoch,
            seq,
        };
        s.set_agent_resumes(&[point("a", u64::MAX, 7), point("ttyS0", 1, 2)])
            .unwrap();
        s.set_agent_resumes(&[point("a", u64::MAX, 9)]).unwrap();
        assert_eq!(s.agent_resume("cs1", "a").unwrap(), Some((u64::MAX, 9)));
        assert_eq!(s.agent_resume("cs1", "ttyS0").unwrap(), Some((1, 2)));
        assert_eq!(s.agent_resume("cs1", "zz").unwrap(), None);
        s.remove_agent("cs1").unwrap();
        assert_eq!(s.agent_resume("cs1", "a").unwrap(), None);
        assert!(s.agent_ports("cs1").is_err());
        assert!(s.remove_agent("cs1").is_err());
        assert_eq!(s.agents().unwrap(), Vec::new());
    }
}
