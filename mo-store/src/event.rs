//! Stored events: inserted as the event manager decides, counted up as duplicates arrive,
//! acknowledged by operators, queried and followed (`mo events [--follow]`).
//!
//! Following is polling: remember the last id seen and ask for [`EventFilter::after_id`] — ids
//! only increase, so nothing is missed and nothing is shown twice. (Count updates and
//! acknowledgements change existing rows; re-read an event by id to see them.)

use mo_core::event::{Event, EventSource};
use mo_core::scan::Severity;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use crate::error::{Error, Result};
use crate::store::Store;

/// Which events to read. Empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this device.
    pub device: Option<String>,
    /// Only this severity or worse.
    pub min_severity: Option<Severity>,
    /// Only events that first happened at or after this time (ns since the Unix epoch).
    pub since_ns: Option<i64>,
    /// Only events that first happened before this time.
    pub until_ns: Option<i64>,
    /// Only events with an id greater than this (for following). With it, `limit` keeps the
    /// *oldest* matching events, so a follower pages forward without gaps.
    pub after_id: Option<u64>,
    /// Only unacknowledged events.
    pub unacked: bool,
    /// At most this many: the newest ones, or the oldest after `after_id`. Always returned
    /// oldest first.
    pub limit: Option<usize>,
}

const EVENT_COLUMNS: &str = "id, time_ns, last_ns, device, source, severity, message, context, \
     count, suppressed, acked_by, acked_ns, node";

/// An event row as read, before its text columns are checked.
struct Raw {
    id: i64,
    time_ns: i64,
    last_ns: i64,
    device: String,
    source: String,
    severity: i64,
    message: String,
    context: String,
    count: i64,
    suppressed: bool,
    acked_by: Option<String>,
    acked_ns: Option<i64>,
    node: Option<String>,
}

fn raw_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        time_ns: r.get(1)?,
        last_ns: r.get(2)?,
        device: r.get(3)?,
        source: r.get(4)?,
        severity: r.get(5)?,
        message: r.get(6)?,
        context: r.get(7)?,
        count: r.get(8)?,
        suppressed: r.get(9)?,
        acked_by: r.get(10)?,
        acked_ns: r.get(11)?,
        node: r.get(12)?,
    })
}

/// The severity as stored: its rank from 0 (info) to 4 (critical).
fn severity_rank(severity: Severity) -> i64 {
    Severity::ALL
        .iter()
        .position(|s| *s == severity)
        .and_then(|p| i64::try_from(p).ok())
        .unwrap_or(0)
}

/// A count or id as SQLite stores it; values past `i64::MAX` are refused.
fn to_i64(what: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::BadSetting {
        device: String::new(),
        setting: what.to_owned(),
        value: value.to_string(),
        reason: "too large to store".to_owned(),
    })
}

impl Store {
    /// Store a new event. With `event.id` 0 the database picks the id; otherwise the event's
    /// own id is used (the event manager numbers events) and must be free. Returns the id.
    pub fn insert_event(&self, event: &Event) -> Result<u64> {
        self.insert_event_from(event, None)
    }

    /// [`Store::insert_event`], with the event's id on the node that raised it (for a copy).
    fn insert_event_from(&self, event: &Event, origin_id: Option<i64>) -> Result<u64> {
        let id = (event.id != 0)
            .then(|| to_i64("event id", event.id))
            .transpose()?;
        let context = serde_json::to_string(&event.context)
            .map_err(|e| self.corrupt(format!("context of event {}", event.id), e.to_string()))?;
        let count = to_i64("event count", event.count.max(1))?;
        let new_id = self.read(&format!("insert event {}", event.id), |c| {
            c.execute(
                "INSERT INTO events (id, time_ns, last_ns, device, source, severity, message, \
                 context, count, suppressed, acked_by, acked_ns, node, origin_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    id,
                    event.time_ns,
                    event.last_ns.max(event.time_ns),
                    event.device,
                    event.source.as_str(),
                    severity_rank(event.severity),
                    event.message,
                    context,
                    count,
                    event.suppressed,
                    event.acked_by,
                    event.acked_ns,
                    event.node,
                    origin_id,
                ],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        u64::try_from(new_id)
            .map_err(|_| self.corrupt("events.id", format!("negative id {new_id}")))
    }

    /// Keep (or bring up to date) this store's copy of event `origin_id` of site node `node`
    /// (`mod --cluster`): inserted under `new_id()` the first time, then its count and last
    /// occurrence only rise and its first acknowledgement is kept. Answers the local id.
    pub fn keep_site_event(
        &self,
        node: &str,
        origin_id: u64,
        event: &Event,
        new_id: impl FnOnce() -> u64,
    ) -> Result<u64> {
        let origin = to_i64("event id", origin_id)?;
        let local: Option<i64> = self.read(&format!("read event {node}/{origin_id}"), |c| {
            c.query_row(
                "SELECT id FROM events WHERE node = ?1 AND origin_id = ?2",
                params![node, origin],
                |r| r.get(0),
            )
            .optional()
        })?;
        let id = match local {
            Some(id) => u64::try_from(id).map_err(|_| self.corrupt("events.id", "negative"))?,
            None => {
                let id = new_id();
                let copy = Event {
                    id,
                    node: Some(node.to_owned()),
                    ..event.clone()
                };
                return self.insert_event_from(&copy, Some(origin));
            }
        };
        self.update_event_count(id, event.count, event.last_ns)?;
        if let (Some(by), Some(at)) = (&event.acked_by, event.acked_ns) {
            self.ack_event(id, by, at)?;
        }
        Ok(id)
    }

    /// Where event `id` was raised: `(node, its id there)` for a copy of another site node's
    /// event, `None` for one raised here (or no such event).
    pub fn event_origin(&self, id: u64) -> Result<Option<(String, u64)>> {
        let id_sql = to_i64("event id", id)?;
        let row: Option<(Option<String>, Option<i64>)> =
            self.read(&format!("read the origin of event {id}"), |c| {
                c.query_row(
                    "SELECT node, origin_id FROM events WHERE id = ?1",
                    [id_sql],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })?;
        Ok(match row {
            Some((Some(node), Some(origin))) => u64::try_from(origin).ok().map(|o| (node, o)),
            _ => None,
        })
    }

    /// Raise the count of event `id` to `count` and its last occurrence to `last_ns` (never
    /// lowering either, so coalesced or reordered updates are harmless). False if there is no
    /// such event.
    pub fn update_event_count(&self, id: u64, count: u64, last_ns: i64) -> Result<bool> {
        let (id_sql, count_sql) = (to_i64("event id", id)?, to_i64("event count", count)?);
        let changed = self.read(&format!("update the count of event {id}"), |c| {
            c.execute(
                "UPDATE events SET count = MAX(count, ?2), last_ns = MAX(last_ns, ?3) \
                 WHERE id = ?1",
                params![id_sql, count_sql, last_ns],
            )
        })?;
        Ok(changed > 0)
    }

    /// Record that `user` acknowledged event `id` at `at_ns`. True if this call acknowledged
    /// it; false if there is no such event or it was already acknowledged (the first
    /// acknowledgement is kept).
    pub fn ack_event(&self, id: u64, user: &str, at_ns: i64) -> Result<bool> {
        let id_sql = to_i64("event id", id)?;
        let changed = self.read(&format!("acknowledge event {id}"), |c| {
            c.execute(
                "UPDATE events SET acked_by = ?2, acked_ns = ?3 WHERE id = ?1 AND acked_by IS NULL",
                params![id_sql, user, at_ns],
            )
        })?;
        Ok(changed > 0)
    }

    /// Add `line` at the end of event `id`'s context (what its actions did, e.g. a macro's
    /// progress and result). False if there is no such event.
    pub fn append_event_context(&self, id: u64, line: &str) -> Result<bool> {
        let id_sql = to_i64("event id", id)?;
        let changed = self.read(&format!("add to the context of event {id}"), |c| {
            c.execute(
                "UPDATE events SET context = json_insert(context, '$[#]', ?2) WHERE id = ?1",
                params![id_sql, line],
            )
        })?;
        Ok(changed > 0)
    }

    /// One event by id.
    pub fn event(&self, id: u64) -> Result<Option<Event>> {
        let id_sql = to_i64("event id", id)?;
        let raw = self.read(&format!("read event {id}"), |c| {
            c.query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
                [id_sql],
                raw_from_row,
            )
            .optional()
        })?;
        raw.map(|r| self.finish_event(r)).transpose()
    }

    /// The id the next event should get: one more than the largest stored (1 when empty).
    /// Seed `EventManager::with_next_id` with it.
    pub fn next_event_id(&self) -> Result<u64> {
        let max: i64 = self.read("read the largest event id", |c| {
            c.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
        })?;
        Ok(u64::try_from(max).unwrap_or(0) + 1)
    }

    /// The events matching `filter`, oldest first.
    pub fn query_events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1");
        let mut args: Vec<Value> = Vec::new();
        let mut add = |clause: &str, value: Value| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(d) = &filter.device {
            add("device =", Value::Text(d.clone()));
        }
        if let Some(s) = filter.min_severity {
            add("severity >=", Value::Integer(severity_rank(s)));
        }
        if let Some(t) = filter.since_ns {
            add("time_ns >=", Value::Integer(t));
        }
        if let Some(t) = filter.until_ns {
            add("time_ns <", Value::Integer(t));
        }
        if let Some(id) = filter.after_id {
            add(
                "id >",
                Value::Integer(i64::try_from(id).unwrap_or(i64::MAX)),
            );
        }
        if filter.unacked {
            sql.push_str(" AND acked_by IS NULL");
        }
        let newest_first = filter.after_id.is_none() && filter.limit.is_some();
        sql.push_str(if newest_first {
            " ORDER BY id DESC"
        } else {
            " ORDER BY id"
        });
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(
                " LIMIT {}",
                i64::try_from(limit).unwrap_or(i64::MAX)
            ));
        }
        let rows: Vec<Raw> = self.read("read events", |c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), raw_from_row)?;
            rows.collect()
        })?;
        let mut events = rows
            .into_iter()
            .map(|r| self.finish_event(r))
            .collect::<Result<Vec<_>>>()?;
        if newest_first {
            events.reverse();
        }
        Ok(events)
    }

    /// Up to `limit` events with an id greater than `after_id`, oldest first: one poll of a
    /// follower (`mo events --follow`).
    pub fn events_after(&self, after_id: u64, limit: usize) -> Result<Vec<Event>> {
        self.query_events(&EventFilter {
            after_id: Some(after_id),
            limit: Some(limit),
            ..EventFilter::default()
        })
    }

    fn finish_event(&self, raw: Raw) -> Result<Event> {
        let what = |column: &str| format!("event {} column {column}", raw.id);
        let source = raw
            .source
            .parse::<EventSource>()
            .map_err(|e| self.corrupt(what("source"), e.to_string()))?;
        let severity = usize::try_from(raw.severity)
            .ok()
            .and_then(|i| Severity::ALL.get(i).copied())
            .ok_or_else(|| self.corrupt(what("severity"), format!("rank {}", raw.severity)))?;
        let context: Vec<String> = serde_json::from_str(&raw.context)
            .map_err(|e| self.corrupt(what("context"), e.to_string()))?;
        let id = u64::try_from(raw.id).map_err(|_| self.corrupt(what("id"), "negative"))?;
        let count =
            u64::try_from(raw.count).map_err(|_| self.corrupt(what("count"), "negative"))?;
        Ok(Event {
            id,
            time_ns: raw.time_ns,
            last_ns: raw.last_ns,
            device: raw.device,
            source,
            severity,
            message: raw.message,
            context,
            count,
            suppressed: raw.suppressed,
            acked_by: raw.acked_by,
            acked_ns: raw.acked_ns,
            node: raw.node,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mo.db")).unwrap();
        (dir, store)
    }

    fn event(id: u64, device: &str, severity: Severity, time_ns: i64) -> Event {
        Event {
            id,
            time_ns,
            last_ns: time_ns,
            device: device.into(),
            source: EventSource::Pattern,
            severity,
            message: format!("m{id}"),
            context: vec!["line one".into(), "ligne «deux»".into()],
            count: 1,
            suppressed: false,
            acked_by: None,
            acked_ns: None,
            node: None,
        }
    }

    #[test]
    fn a_site_event_is_kept_once_and_only_rises() {
        let (_dir, store) = store();
        let local = store
            .insert_event(&event(1, "web", Severity::Error, 10))
            .unwrap();
        let mut theirs = event(1, "db", Severity::Critical, 20);
        let id = store.keep_site_event("alpha", 1, &theirs, || 7).unwrap();
        assert_eq!(id, 7);
        assert_eq!(store.event_origin(id).unwrap(), Some(("alpha".into(), 1)));
        assert_eq!(store.event_origin(local).unwrap(), None);
        theirs.count = 3;
        theirs.acked_by = Some("carol".into());
        theirs.acked_ns = Some(30);
        let again = store.keep_site_event("alpha", 1, &theirs, || 99).unwrap();
        assert_eq!(again, 7, "the second sight updates the same copy");
        theirs.count = 2;
        theirs.acked_by = Some("dave".into());
        store.keep_site_event("alpha", 1, &theirs, || 99).unwrap();
        let kept = store.event(7).unwrap().unwrap();
        assert_eq!(kept.node.as_deref(), Some("alpha"));
        assert_eq!(kept.count, 3, "counts never go down");
        assert_eq!(
            kept.acked_by.as_deref(),
            Some("carol"),
            "the first ack is kept"
        );
        assert_eq!(store.event(local).unwrap().unwrap().node, None);
    }

    #[test]
    fn insert_read_count_and_ack() {
        let (_dir, store) = store();
        assert_eq!(store.next_event_id().unwrap(), 1);
        let e = Event {
            suppressed: true,
            ..event(5, "web1", Severity::Critical, 1_000)
        };
        assert_eq!(store.insert_event(&e).unwrap(), 5);
        assert_eq!(store.event(5).unwrap().unwrap(), e);
        assert_eq!(store.next_event_id().unwrap(), 6);
        // An id is never reused.
        assert!(store.insert_event(&e).is_err());
        // The database picks an id when asked to.
        assert_eq!(
            store
                .insert_event(&event(0, "db1", Severity::Info, 2_000))
                .unwrap(),
            6
        );

        assert!(store.update_event_count(5, 10_000, 9_000).unwrap());
        // An older, smaller update arriving late changes nothing.
        assert!(store.update_event_count(5, 7, 8_000).unwrap());
        let got = store.event(5).unwrap().unwrap();
        assert_eq!((got.count, got.last_ns), (10_000, 9_000));
        assert!(!store.update_event_count(99, 2, 0).unwrap());

        assert!(store.ack_event(5, "alice", 10_000).unwrap());
        assert!(!store.ack_event(5, "bob", 11_000).unwrap());
        assert!(!store.ack_event(99, "bob", 11_000).unwrap());
        let got = store.event(5).unwrap().unwrap();
        assert_eq!(got.acked_by.as_deref(), Some("alice"));
        assert_eq!(got.acked_ns, Some(10_000));
        assert!(store.event(77).unwrap().is_none());

        assert!(store.append_event_context(5, "macro diag: done").unwrap());
        let got = store.event(5).unwrap().unwrap();
        assert_eq!(
            got.context.last().map(String::as_str),
            Some("macro diag: done")
        );
        assert_eq!(got.context.len(), 3);
        assert!(!store.append_event_context(99, "x").unwrap());
    }

    #[test]
    fn query_by_device_severity_time_and_follow() {
        let (_dir, store) = store();
        let severities = [Severity::Info, Severity::Warning, Severity::Critical];
        for i in 1..=30u64 {
            let device = if i % 2 == 0 { "even" } else { "odd" };
            let severity = severities[(i % 3) as usize];
            store
                .insert_event(&event(i, device, severity, i as i64 * 100))
                .unwrap();
        }
        let ids = |f: EventFilter| -> Vec<u64> {
            store
                .query_events(&f)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids(EventFilter::default()).len(), 30);
        let even = ids(EventFilter {
            device: Some("even".into()),
            ..Default::default()
        });
        assert_eq!(even.len(), 15);
        assert!(even.iter().all(|i| i % 2 == 0));
        let critical = ids(EventFilter {
            min_severity: Some(Severity::Error),
            ..Default::default()
        });
        assert_eq!(
            critical,
            (1..=30).filter(|i| i % 3 == 2).collect::<Vec<_>>()
        );
        let window = ids(EventFilter {
            since_ns: Some(1_000),
            until_ns: Some(1_500),
            ..Default::default()
        });
        assert_eq!(window, [10, 11, 12, 13, 14]);
        // The newest few, oldest first.
        let newest = ids(EventFilter {
            limit: Some(3),
            ..Default::default()
        });
        assert_eq!(newest, [28, 29, 30]);

        // Following: page forward from 0 in pages of 7, never missing or repeating one.
        let mut seen = Vec::new();
        let mut last = 0;
        loop {
            let page = store.events_after(last, 7).unwrap();
            let Some(tail) = page.last() else { break };
            last = tail.id;
            seen.extend(page.iter().map(|e| e.id));
        }
        assert_eq!(seen, (1..=30).collect::<Vec<_>>());
        store
            .insert_event(&event(31, "odd", Severity::Info, 3_100))
            .unwrap();
        let new: Vec<u64> = store
            .events_after(last, 7)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(new, [31]);

        store.ack_event(31, "alice", 1).unwrap();
        let unacked = ids(EventFilter {
            unacked: true,
            after_id: Some(29),
            ..Default::default()
        });
        assert_eq!(unacked, [30]);
    }

    #[test]
    fn a_corrupt_row_is_reported_not_trusted() {
        let (_dir, store) = store();
        store
            .insert_event(&event(1, "a", Severity::Info, 1))
            .unwrap();
        store
            .read("damage", |c| {
                c.execute("UPDATE events SET source = 'gremlin' WHERE id = 1", [])
            })
            .unwrap();
        let err = store.event(1).unwrap_err().to_string();
        assert!(err.contains("event 1 column source"), "{err}");
    }
}
