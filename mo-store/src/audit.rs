//! The audit log: who did (or tried) what, from where, to which device, and how it went.
//!
//! Append-only at the database level: triggers abort every `UPDATE` and `DELETE` on the table,
//! whoever issues them. Actions are free text: policy actions (`attach`, `power.control`),
//! `login`, and configuration changes (`device.add`, `grant.rm`, …).

use std::fmt;
use std::str::FromStr;

use mo_core::policy::Decision;
use rusqlite::params;
use rusqlite::types::Value;

use crate::device::now_ns;
use crate::error::{Error, Result};
use crate::store::Store;

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The policy allowed it (recorded at the decision).
    Allowed,
    /// The policy denied it.
    Denied,
    /// It was allowed but did not work.
    Failed,
    /// It was done.
    Ok,
}

impl Outcome {
    /// The outcome's name as stored (`allowed`, `denied`, `failed`, `ok`).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Ok => "ok",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Outcome {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [
            Outcome::Allowed,
            Outcome::Denied,
            Outcome::Failed,
            Outcome::Ok,
        ]
        .into_iter()
        .find(|o| o.name() == s)
        .ok_or_else(|| Error::BadValue {
            what: "audit outcome".into(),
            value: s.to_string(),
            reason: "expected allowed, denied, failed or ok".into(),
        })
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log (assigned when appended; 0 before).
    pub id: i64,
    /// When, ns since the Unix epoch.
    pub time_ns: i64,
    /// Who (a mo user, or `os:NAME` for the local admin CLI), if known.
    pub user: Option<String>,
    /// From where: an address (`127.0.0.1:50122`), `cli`, …
    pub source: Option<String>,
    /// What: a policy action, `login`, or a configuration change such as `grant.add`.
    pub action: String,
    /// On which device, if any.
    pub device: Option<String>,
    /// How it went.
    pub outcome: Outcome,
    /// More: the decision's reason, the error, what changed. Never a secret.
    pub detail: String,
    /// The node of the site (`mod --cluster --share-directory`) where the entry was made, for a
    /// copy of another node's entry; `None` for an entry made here.
    pub node: Option<String>,
}

impl AuditEntry {
    /// An entry stamped now, with no source, device or detail.
    pub fn new(user: Option<&str>, action: impl Into<String>, outcome: Outcome) -> Self {
        AuditEntry {
            id: 0,
            time_ns: now_ns(),
            user: user.map(str::to_string),
            source: None,
            action: action.into(),
            device: None,
            outcome,
            detail: String::new(),
            node: None,
        }
    }

    /// The entry for a policy decision: user, action and device from it, `allowed` or
    /// `denied`, and its reason as detail.
    pub fn from_decision(decision: &Decision<'_>, source: Option<&str>) -> Self {
        let outcome = if decision.allowed() {
            Outcome::Allowed
        } else {
            Outcome::Denied
        };
        AuditEntry::new(Some(decision.user()), decision.action().name(), outcome)
            .source(source)
            .device(Some(decision.device()))
            .detail(decision.reason())
    }

    /// With a source.
    #[must_use]
    pub fn source(mut self, source: Option<&str>) -> Self {
        self.source = source.map(str::to_string);
        self
    }

    /// With a device.
    #[must_use]
    pub fn device(mut self, device: Option<&str>) -> Self {
        self.device = device.map(str::to_string);
        self
    }

    /// With detail text.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Which audit entries to read. Empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this user.
    pub user: Option<String>,
    /// Only this device.
    pub device: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Only entries at or after this time (ns since the Unix epoch).
    pub since_ns: Option<i64>,
    /// Only entries before this time.
    pub until_ns: Option<i64>,
    /// Only the newest this many (still returned oldest first).
    pub limit: Option<usize>,
    /// Only entries made on this node (not copies of other site nodes' entries) with an id
    /// greater than this.
    pub own_after_id: Option<i64>,
}

impl Store {
    /// Append an entry to the audit log; returns its id. The entry is durable when this
    /// returns: the commit is synced to disk (`PRAGMA synchronous = FULL`), together with every
    /// change committed before it.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        self.read("append to the audit log", |c| {
            // Inside a transaction (`atomically`, which commits with FULL itself) the safety
            // level cannot change; outside one this insert is its own transaction.
            if !c.is_autocommit() {
                return Self::insert_audit(c, entry);
            }
            c.pragma_update(None, "synchronous", "FULL")?;
            let id = Self::insert_audit(c, entry);
            c.pragma_update(None, "synchronous", "NORMAL")?;
            id
        })
    }

    /// Append several entries in one transaction, in order: one sync to disk for all of them;
    /// returns their ids. Durable when this returns, as with [`Store::append_audit`]; on an error
    /// none of them is written.
    pub fn append_audits(&self, entries: &[AuditEntry]) -> Result<Vec<i64>> {
        self.read("append to the audit log", |c| {
            let insert_all = |c: &rusqlite::Connection| {
                entries
                    .iter()
                    .map(|e| Self::insert_audit(c, e))
                    .collect::<rusqlite::Result<Vec<_>>>()
            };
            if !c.is_autocommit() {
                return insert_all(c);
            }
            c.pragma_update(None, "synchronous", "FULL")?;
            let written = c.unchecked_transaction().and_then(|tx| {
                let ids = insert_all(&tx)?;
                tx.commit()?;
                Ok(ids)
            });
            c.pragma_update(None, "synchronous", "NORMAL")?;
            written
        })
    }

    /// Keep a copy of entry `entry` (its `id` as on that node) of site node `node`, once:
    /// false when it is kept already.
    pub fn keep_site_audit(&self, node: &str, entry: &AuditEntry) -> Result<bool> {
        let changed = self.read("keep a site audit entry", |c| {
            Self::insert_audit_row(c, entry, Some((node, entry.id)))
        })?;
        Ok(changed > 0)
    }

    fn insert_audit(c: &rusqlite::Connection, entry: &AuditEntry) -> rusqlite::Result<i64> {
        Self::insert_audit_row(c, entry, None)?;
        Ok(c.last_insert_rowid())
    }

    /// Insert `entry`, made here or (`origin`: node and id there) a copy of a site node's
    /// entry, skipped when kept already. Answers how many rows were inserted.
    fn insert_audit_row(
        c: &rusqlite::Connection,
        entry: &AuditEntry,
        origin: Option<(&str, i64)>,
    ) -> rusqlite::Result<usize> {
        let sql = if origin.is_some() {
            "INSERT INTO audit (time_ns, user, source, action, device, outcome, detail, node, \
             origin_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (node, origin_id) WHERE node IS NOT NULL DO NOTHING"
        } else {
            "INSERT INTO audit (time_ns, user, source, action, device, outcome, detail, node, \
             origin_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        };
        c.prepare_cached(sql)?.execute(params![
            entry.time_ns,
            entry.user,
            entry.source,
            entry.action,
            entry.device,
            entry.outcome.name(),
            entry.detail,
            origin.map(|o| o.0),
            origin.map(|o| o.1),
        ])
    }

    /// Record a policy decision (see [`AuditEntry::from_decision`]).
    pub fn audit_decision(&self, decision: &Decision<'_>, source: Option<&str>) -> Result<i64> {
        self.append_audit(&AuditEntry::from_decision(decision, source))
    }

    /// The entries matching `filter`, oldest first.
    pub fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from(
            "SELECT id, time_ns, user, source, action, device, outcome, detail, node FROM audit \
             WHERE 1",
        );
        let mut args: Vec<Value> = Vec::new();
        let mut add = |clause: &str, value: Value| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(u) = &filter.user {
            add("user =", Value::Text(u.clone()));
        }
        if let Some(d) = &filter.device {
            add("device =", Value::Text(d.clone()));
        }
        if let Some(a) = &filter.action {
            add("action =", Value::Text(a.clone()));
        }
        if let Some(o) = filter.outcome {
            add("outcome =", Value::Text(o.name().to_string()));
        }
        if let Some(t) = filter.since_ns {
            add("time_ns >=", Value::Integer(t));
        }
        if let Some(t) = filter.until_ns {
            add("time_ns <", Value::Integer(t));
        }
        if let Some(id) = filter.own_after_id {
            add("node IS NULL AND id >", Value::Integer(id));
        }
        sql.push_str(" ORDER BY id DESC");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(
                " LIMIT {}",
                i64::try_from(limit).unwrap_or(i64::MAX)
            ));
        }
        type Row = (
            i64,
            i64,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = self.read("read the audit log", |c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?;
            rows.collect()
        })?;
        let mut entries = rows
            .into_iter()
            .map(
                |(id, time_ns, user, source, action, device, outcome, detail, node)| {
                    let outcome = outcome.parse().map_err(|e: Error| {
                        self.corrupt(format!("audit entry {id}"), e.to_string())
                    })?;
                    Ok(AuditEntry {
                        id,
                        time_ns,
                        user,
                        source,
                        action,
                        device,
                        outcome,
                        detail,
                        node,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()?;
        entries.reverse();
        Ok(entries)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod site_tests {
    use super::*;

    #[test]
    fn a_site_entry_is_kept_once_naming_its_node_and_is_not_this_nodes_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mo.db")).unwrap();
        let own = store
            .append_audit(&AuditEntry::new(Some("ann"), "group.add", Outcome::Ok))
            .unwrap();
        let mut theirs = AuditEntry::new(Some("bob"), "role.add", Outcome::Ok).detail("r1");
        theirs.id = 41;
        assert!(store.keep_site_audit("beta", &theirs).unwrap());
        assert!(
            !store.keep_site_audit("beta", &theirs).unwrap(),
            "kept once"
        );
        let all = store.query_audit(&AuditFilter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].node.as_deref(), Some("beta"));
        assert_eq!(all[1].detail, "r1");
        let mine = store
            .query_audit(&AuditFilter {
                own_after_id: Some(0),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(mine.iter().map(|e| e.id).collect::<Vec<_>>(), [own]);
    }
}
