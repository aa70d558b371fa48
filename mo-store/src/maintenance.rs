//! Maintenance windows started at run time (`maintenance start` in the SSH shell,
//! `mo maintenance start`, the REST API): kept here so they outlive a daemon restart; the daemon
//! reads them every second and applies them to its event manager (events of the devices they
//! cover are stored, marked suppressed, and run no action).

use rusqlite::params;

use crate::error::Result;
use crate::store::Store;

/// A maintenance window started at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceEntry {
    /// The window's name (unique; by default the target as given).
    pub name: String,
    /// What it covers: a device name, a glob (`web*`) or `@GROUP`.
    pub target: String,
    /// Why, as the operator said.
    pub reason: String,
    /// Who started it.
    pub by: String,
    /// When it started, in ns since the Unix epoch.
    pub start_ns: i64,
    /// When it ends (excluded), in ns since the Unix epoch.
    pub end_ns: i64,
}

impl MaintenanceEntry {
    /// A window on `target` (a device name, a glob or `@GROUP`) from `now_ns` for `length`,
    /// named `name` (default: the target). Refuses an empty target or a zero length.
    pub fn new(
        target: &str,
        name: Option<&str>,
        length: std::time::Duration,
        reason: &str,
        by: &str,
        now_ns: i64,
    ) -> std::result::Result<MaintenanceEntry, String> {
        let target = target.trim();
        if target.is_empty() || target == "@" {
            return Err("name a device, a glob (web*) or @GROUP".into());
        }
        if length.is_zero() {
            return Err("--for must be longer than zero".into());
        }
        let name = name.map_or(target, str::trim);
        if name.is_empty() {
            return Err("the window's name is empty".into());
        }
        Ok(MaintenanceEntry {
            name: name.to_owned(),
            target: target.to_owned(),
            reason: reason.trim().to_owned(),
            by: by.to_owned(),
            start_ns: now_ns,
            end_ns: now_ns.saturating_add(i64::try_from(length.as_nanos()).unwrap_or(i64::MAX)),
        })
    }
}

impl Store {
    /// Start (or replace, by name) a maintenance window.
    pub fn start_maintenance(&self, entry: &MaintenanceEntry) -> Result<()> {
        self.read(&format!("start maintenance window {}", entry.name), |c| {
            c.execute(
                "INSERT OR REPLACE INTO maintenance (name, target, reason, started_by, start_ns, end_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    entry.name,
                    entry.target,
                    entry.reason,
                    entry.by,
                    entry.start_ns,
                    entry.end_ns
                ],
            )
        })?;
        Ok(())
    }

    /// End maintenance window `name`: false if there is none.
    pub fn stop_maintenance(&self, name: &str) -> Result<bool> {
        let n = self.read(&format!("stop maintenance window {name}"), |c| {
            c.execute("DELETE FROM maintenance WHERE name = ?1", [name])
        })?;
        Ok(n > 0)
    }

    /// Forget the windows that ended at or before `now_ns`; how many.
    pub fn prune_maintenance(&self, now_ns: i64) -> Result<usize> {
        self.read("forget ended maintenance windows", |c| {
            c.execute("DELETE FROM maintenance WHERE end_ns <= ?1", [now_ns])
        })
    }

    /// Every window started at run time (ended ones included until pruned), by name.
    pub fn list_maintenance(&self) -> Result<Vec<MaintenanceEntry>> {
        self.read("list maintenance windows", |c| {
            let mut stmt = c.prepare(
                "SELECT name, target, reason, started_by, start_ns, end_ns FROM maintenance \
                 ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(MaintenanceEntry {
                    name: r.get(0)?,
                    target: r.get(1)?,
                    reason: r.get(2)?,
                    by: r.get(3)?,
                    start_ns: r.get(4)?,
                    end_ns: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn start_replace_list_stop_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mo.db")).unwrap();
        let entry = MaintenanceEntry {
            name: "db1".into(),
            target: "db1".into(),
            reason: "kernel upgrade".into(),
            by: "alice".into(),
            start_ns: 10,
            end_ns: 100,
        };
        store.start_maintenance(&entry).unwrap();
        let longer = MaintenanceEntry {
            end_ns: 200,
            ..entry.clone()
        };
        store.start_maintenance(&longer).unwrap();
        let web = MaintenanceEntry {
            name: "web".into(),
            target: "web*".into(),
            end_ns: 50,
            ..entry
        };
        store.start_maintenance(&web).unwrap();
        assert_eq!(store.list_maintenance().unwrap(), [longer.clone(), web]);
        assert_eq!(store.prune_maintenance(60).unwrap(), 1);
        assert_eq!(store.list_maintenance().unwrap(), [longer]);
        assert!(store.stop_maintenance("db1").unwrap());
        assert!(!store.stop_maintenance("db1").unwrap());
        assert!(store.list_maintenance().unwrap().is_empty());
    }
}
