//! Audit retention: old audit rows leave the database only after they were written to a
//! verifiable archive file; old events are simply deleted.
//!
//! An archive is JSON Lines (`audit-FROM-TO-LASTID.jsonl`, times in UTC):
//!
//! ```text
//! {"mo_audit_archive":1,"created_ns":…,"first_id":1,"last_id":812,"from_ns":…,"to_ns":…,"rows":812}
//! {"id":1,"time_ns":…,"user":"alice","source":"127.0.0.1:50122","action":"attach","device":"web01","outcome":"allowed","detail":"…"}
//! …
//! {"rows":812,"sha256":"…"}
//! ```
//!
//! The last line holds the SHA-256 of every byte before it (header and rows, newlines
//! included). The prune that wrote the file also appends an `audit.prune` row to the audit log
//! naming the file and that digest, in the same transaction that deletes the rows — so a file
//! changed later fails [`verify_audit_archive`], and a file replaced whole no longer matches
//! the digest the audit log holds ([`Store::audit_archive_digest`]). That `audit.prune` row is
//! archived by a later prune in turn, so the archives form a chain.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::Outcome;
use crate::error::{Error, Result};
use crate::store::Store;

/// The archive format's version, in the header line.
pub const AUDIT_ARCHIVE_VERSION: u32 = 1;
/// The most rows one archive file holds; a larger prune writes several files.
const ROWS_PER_ARCHIVE: i64 = 100_000;

/// One archive file: what it holds and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditArchive {
    /// The file.
    pub path: PathBuf,
    /// Audit rows in it.
    pub rows: u64,
    /// Id of the first row.
    pub first_id: i64,
    /// Id of the last row.
    pub last_id: i64,
    /// Time of the oldest row (ns since the Unix epoch).
    pub from_ns: i64,
    /// Time of the newest row.
    pub to_ns: i64,
    /// SHA-256 of the file up to its last line, in hex.
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    mo_audit_archive: u32,
    created_ns: i64,
    first_id: i64,
    last_id: i64,
    from_ns: i64,
    to_ns: i64,
    rows: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: i64,
    time_ns: i64,
    user: Option<String>,
    source: Option<String>,
    action: String,
    device: Option<String>,
    outcome: String,
    detail: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    rows: u64,
    sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `20261122T100000Z` for a time in ns since the Unix epoch.
fn compact_time(ns: i64) -> String {
    mo_core::log::format_timestamp(u64::try_from(ns).unwrap_or(0))
        .split('.')
        .next()
        .unwrap_or_default()
        .replace(['-', ':'], "")
        + "Z"
}

fn io(what: String, e: std::io::Error) -> Error {
    Error::io(what, e)
}

/// Write `body` to `path` durably: a temporary file, fsynced, renamed, directory fsynced.
fn write_durably(path: &Path, body: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("jsonl.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(format!("cannot create audit archive {}", tmp.display()), e))?;
    file.write_all(body)
        .and_then(|()| file.sync_all())
        .map_err(|e| io(format!("cannot write audit archive {}", tmp.display()), e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| {
        io(
            format!("cannot rename audit archive to {}", path.display()),
            e,
        )
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(format!("cannot sync directory {}", dir.display()), e))
}

/// The archive text for `rows` (oldest first, at least one) and its digest.
fn archive_text(rows: &[Row], created_ns: i64) -> Result<(Vec<u8>, String)> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Err(Error::BadValue {
            what: "audit archive".into(),
            value: String::new(),
            reason: "no rows to archive".into(),
        });
    };
    let header = Header {
        mo_audit_archive: AUDIT_ARCHIVE_VERSION,
        created_ns,
        first_id: first.id,
        last_id: last.id,
        from_ns: rows
            .iter()
            .map(|r| r.time_ns)
            .min()
            .unwrap_or(first.time_ns),
        to_ns: rows.iter().map(|r| r.time_ns).max().unwrap_or(last.time_ns),
        rows: rows.len() as u64,
    };
    let json_err = |e: serde_json::Error| Error::BadValue {
        what: "audit row".into(),
        value: String::new(),
        reason: e.to_string(),
    };
    let mut body = serde_json::to_vec(&header).map_err(json_err)?;
    body.push(b'\n');
    for row in rows {
        serde_json::to_writer(&mut body, row).map_err(json_err)?;
        body.push(b'\n');
    }
    let digest = hex(&Sha256::digest(&body));
    let trailer = Trailer {
        rows: header.rows,
        sha256: digest.clone(),
    };
    serde_json::to_writer(&mut body, &trailer).map_err(json_err)?;
    body.push(b'\n');
    Ok((body, digest))
}

/// Check an audit archive file: its header, every row, the row count and the SHA-256 of the
/// trailer line. Errors say what is wrong and on which line.
pub fn verify_audit_archive(path: &Path) -> Result<AuditArchive> {
    let text = std::fs::read(path)
        .map_err(|e| io(format!("cannot read audit archive {}", path.display()), e))?;
    let bad = |line: usize, reason: String| Error::BadValue {
        what: format!("audit archive {} line {line}", path.display()),
        value: String::new(),
        reason,
    };
    if !text.ends_with(b"\n") {
        return Err(bad(
            0,
            "the file does not end with a complete line (cut short?)".into(),
        ));
    }
    let body = text.get(..text.len() - 1).unwrap_or_default();
    let trailer_start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let n_lines = lines.len();
    if n_lines < 3 {
        return Err(bad(
            n_lines,
            "too short: an archive has a header, rows and a digest line".into(),
        ));
    }
    let header: Header = serde_json::from_slice(lines.first().copied().unwrap_or_default())
        .map_err(|e| bad(1, format!("not an audit archive header: {e}")))?;
    if header.mo_audit_archive != AUDIT_ARCHIVE_VERSION {
        return Err(bad(
            1,
            format!("unknown archive version {}", header.mo_audit_archive),
        ));
    }
    let trailer: Trailer = serde_json::from_slice(lines.last().copied().unwrap_or_default())
        .map_err(|e| bad(n_lines, format!("not a digest line: {e}")))?;
    let digest = hex(&Sha256::digest(
        text.get(..trailer_start).unwrap_or_default(),
    ));
    if digest != trailer.sha256 {
        return Err(bad(
            n_lines,
            format!(
                "SHA-256 mismatch: the file was changed (digest line says {}, content hashes to {digest})",
                trailer.sha256
            ),
        ));
    }
    let rows = lines.get(1..n_lines - 1).unwrap_or_default();
    if rows.len() as u64 != header.rows || trailer.rows != header.rows {
        return Err(bad(
            n_lines,
            format!(
                "{} rows, but the header says {} and the digest line {}",
                rows.len(),
                header.rows,
                trailer.rows
            ),
        ));
    }
    let mut prev: Option<i64> = None;
    for (i, line) in rows.iter().enumerate() {
        let row: Row = serde_json::from_slice(line)
            .map_err(|e| bad(i + 2, format!("not an audit row: {e}")))?;
        row.outcome
            .parse::<Outcome>()
            .map_err(|e| bad(i + 2, e.to_string()))?;
        if let Some(p) = prev
            && row.id <= p
        {
            return Err(bad(
                i + 2,
                format!("row id {} does not follow id {p}", row.id),
            ));
        }
        let first_or_last = (i == 0 && row.id != header.first_id)
            || (i + 1 == rows.len() && row.id != header.last_id);
        if first_or_last {
            return Err(bad(
                i + 2,
                format!(
                    "row id {} but the header says ids {}–{}",
                    row.id, header.first_id, header.last_id
                ),
            ));
        }
        prev = Some(row.id);
    }
    Ok(AuditArchive {
        path: path.to_path_buf(),
        rows: header.rows,
        first_id: header.first_id,
        last_id: header.last_id,
        from_ns: header.from_ns,
        to_ns: header.to_ns,
        sha256: trailer.sha256,
    })
}

/// The action of the audit row a prune leaves behind.
pub const AUDIT_PRUNE_ACTION: &str = "audit.prune";

impl Store {
    /// Move audit rows older than `before_ns` out of the database: write them (oldest first) to
    /// archive files in `archive_dir` (created if needed), fsync each, and only then delete
    /// them, in one transaction that also appends an `audit.prune` row naming the file and its
    /// digest. Returns the archives written (none when nothing is old enough).
    ///
    /// A crash after a file was written but before the delete committed leaves the rows in the
    /// database; the next prune archives them again. Rows are never deleted unarchived.
    pub fn prune_audit(&self, before_ns: i64, archive_dir: &Path) -> Result<Vec<AuditArchive>> {
        std::fs::create_dir_all(archive_dir).map_err(|e| {
            io(
                format!(
                    "cannot create audit archive directory {}",
                    archive_dir.display()
                ),
                e,
            )
        })?;
        let mut written = Vec::new();
        while let Some(archive) = self.prune_audit_batch(before_ns, archive_dir)? {
            written.push(archive);
        }
        Ok(written)
    }

    fn prune_audit_batch(
        &self,
        before_ns: i64,
        archive_dir: &Path,
    ) -> Result<Option<AuditArchive>> {
        let mut conn = self.conn();
        // The delete must be durable when this returns (set before the transaction: the safety
        // level cannot change inside one), then back to the usual setting whatever happened.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.sql_error("prune the audit log", e))?;
        let result = self.prune_audit_in(&mut conn, before_ns, archive_dir);
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        result
    }

    fn prune_audit_in(
        &self,
        conn: &mut rusqlite::Connection,
        before_ns: i64,
        archive_dir: &Path,
    ) -> Result<Option<AuditArchive>> {
        let what = "prune the audit log";
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql_error(what, e))?;
        let rows: Vec<Row> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, time_ns, user, source, action, device, outcome, detail \
                     FROM audit WHERE time_ns < ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(|e| self.sql_error(what, e))?;
            let mapped = stmt
                .query_map(params![before_ns, ROWS_PER_ARCHIVE], |r| {
                    Ok(Row {
                        id: r.get(0)?,
                        time_ns: r.get(1)?,
                        user: r.get(2)?,
                        source: r.get(3)?,
                        action: r.get(4)?,
                        device: r.get(5)?,
                        outcome: r.get(6)?,
                        detail: r.get(7)?,
                    })
                })
                .map_err(|e| self.sql_error(what, e))?;
            mapped
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| self.sql_error(what, e))?
        };
        // Nothing but earlier prunes' own rows: they wait for the next real batch (archiving
        // them alone would write one file per run forever).
        if rows.iter().all(|r| r.action == AUDIT_PRUNE_ACTION) {
            return Ok(None);
        }
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(None);
        };
        let (first_id, last_id) = (first.id, last.id);
        let now = crate::device::now_ns();
        let (body, sha256) = archive_text(&rows, now)?;
        let from_ns = rows.iter().map(|r| r.time_ns).min().unwrap_or(0);
        let to_ns = rows.iter().map(|r| r.time_ns).max().unwrap_or(0);
        let name = format!(
            "audit-{}-{}-{last_id}.jsonl",
            compact_time(from_ns),
            compact_time(to_ns)
        );
        let path = archive_dir.join(&name);
        write_durably(&path, &body)?;
        let detail = format!(
            "archived {} rows (ids {first_id}–{last_id}) to {name}, sha256 {sha256}",
            rows.len()
        );
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        (|| -> rusqlite::Result<()> {
            // The prune's own row first: it takes the next id while the newest rows are still
            // there, so ids never go back even if every row goes.
            tx.execute(
                "INSERT INTO audit (time_ns, user, source, action, device, outcome, detail) \
                 VALUES (?1, NULL, 'mod', ?2, NULL, 'ok', ?3)",
                params![now, AUDIT_PRUNE_ACTION, detail],
            )?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'audit_prune_through'",
                [last_id],
            )?;
            let mut delete = tx.prepare("DELETE FROM audit WHERE id = ?1")?;
            for id in &ids {
                delete.execute([id])?;
            }
            drop(delete);
            tx.execute(
                "UPDATE meta SET value = 0 WHERE key = 'audit_prune_through'",
                [],
            )?;
            Ok(())
        })()
        .map_err(|e| self.sql_error(what, e))?;
        tx.commit().map_err(|e| self.sql_error(what, e))?;
        Ok(Some(AuditArchive {
            path,
            rows: ids.len() as u64,
            first_id,
            last_id,
            from_ns,
            to_ns,
            sha256,
        }))
    }

    /// The digest the audit log recorded for the archive file named `file_name` when it was
    /// written (from its `audit.prune` row), if that row is still in the log.
    pub fn audit_archive_digest(&self, file_name: &str) -> Result<Option<String>> {
        let pattern = format!("% to {file_name}, sha256 %");
        let detail: Option<String> = self.read("read the audit log", |c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                "SELECT detail FROM audit WHERE action = ?1 AND detail LIKE ?2 \
                 ORDER BY id DESC LIMIT 1",
                params![AUDIT_PRUNE_ACTION, pattern],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(detail.and_then(|d| d.rsplit("sha256 ").next().map(str::to_string)))
    }

    /// Delete events whose last occurrence is older than `before_ns`. The newest event always
    /// stays, so event ids keep growing. Returns how many were deleted.
    pub fn prune_events(&self, before_ns: i64) -> Result<u64> {
        let n = self.read("prune old events", |c| {
            c.execute(
                "DELETE FROM events WHERE last_ns < ?1 AND id < (SELECT MAX(id) FROM events)",
                [before_ns],
            )
        })?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::{AuditEntry, AuditFilter};

    fn entry(time_ns: i64, user: &str) -> AuditEntry {
        let mut e = AuditEntry::new(Some(user), "attach", Outcome::Allowed).detail("role admin");
        e.time_ns = time_ns;
        e
    }

    #[test]
    fn old_audit_rows_are_archived_then_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("mo.db")).unwrap();
        for (t, user) in [(100, "alice"), (200, "bob"), (300, "carol"), (400, "dave")] {
            store.append_audit(&entry(t, user)).unwrap();
        }
        let dir = tmp.path().join("audit-archive");
        assert!(store.prune_audit(50, &dir).unwrap().is_empty());
        let written = store.prune_audit(250, &dir).unwrap();
        assert_eq!(written.len(), 1);
        let archive = &written[0];
        assert_eq!((archive.rows, archive.first_id, archive.last_id), (2, 1, 2));
        assert_eq!((archive.from_ns, archive.to_ns), (100, 200));
        assert_eq!(verify_audit_archive(&archive.path).unwrap(), *archive);
        let text = std::fs::read_to_string(&archive.path).unwrap();
        assert!(
            text.contains("\"alice\"") && text.contains("\"bob\""),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive.path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        let left = store.query_audit(&AuditFilter::default()).unwrap();
        let users: Vec<_> = left.iter().map(|e| e.user.clone()).collect();
        assert_eq!(
            users,
            vec![Some("carol".into()), Some("dave".into()), None],
            "the prune leaves its own row"
        );
        let prune_row = left.last().unwrap();
        assert_eq!(prune_row.action, AUDIT_PRUNE_ACTION);
        assert!(prune_row.id > 4, "ids keep growing: {}", prune_row.id);
        let name = archive.path.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            store.audit_archive_digest(name).unwrap().as_deref(),
            Some(archive.sha256.as_str())
        );

        // Any change to the file is detected.
        for (from, to) in [("alice", "mallory"), ("\"allowed\"", "\"denied\"")] {
            let changed = tmp.path().join("changed.jsonl");
            std::fs::write(&changed, text.replacen(from, to, 1)).unwrap();
            let err = verify_audit_archive(&changed).unwrap_err().to_string();
            assert!(err.contains("SHA-256 mismatch"), "{err}");
        }
        let cut = tmp.path().join("cut.jsonl");
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&cut, format!("{}\n{}\n", lines[0], lines[3])).unwrap();
        assert!(verify_audit_archive(&cut).is_err());
        std::fs::write(&cut, &text[..text.len() - 5]).unwrap();
        assert!(verify_audit_archive(&cut).is_err());

        // Everything old goes, the prune rows included (they chain the archives).
        let second = store.prune_audit(i64::MAX, &dir).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].rows, 3);
        let text = std::fs::read_to_string(&second[0].path).unwrap();
        assert!(
            text.contains(&archive.sha256),
            "the next archive holds the previous digest"
        );
        let left = store.query_audit(&AuditFilter::default()).unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].id > prune_row.id);

        // A prune's own row alone is not archived (that would make a file per run forever)…
        assert!(store.prune_audit(i64::MAX, &dir).unwrap().is_empty());
        assert_eq!(store.query_audit(&AuditFilter::default()).unwrap(), left);
        // … but goes with the next real batch.
        store.append_audit(&entry(500, "erin")).unwrap();
        let third = store.prune_audit(i64::MAX, &dir).unwrap();
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].rows, 2);
        let text = std::fs::read_to_string(&third[0].path).unwrap();
        assert!(
            text.contains(&second[0].sha256) && text.contains("erin"),
            "{text}"
        );
    }

    #[test]
    fn old_events_are_deleted_but_the_newest_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("mo.db")).unwrap();
        let insert = |t: i64| {
            store
                .read("x", |c| {
                    c.execute(
                        "INSERT INTO events (time_ns, last_ns, device, source, severity, message) \
                         VALUES (?1, ?1, 'web01', 'scan', 2, 'm')",
                        [t],
                    )
                })
                .unwrap();
        };
        for t in [10, 20, 30] {
            insert(t);
        }
        assert_eq!(store.prune_events(25).unwrap(), 2);
        assert_eq!(store.next_event_id().unwrap(), 4);
        assert_eq!(store.prune_events(i64::MAX).unwrap(), 0, "the newest stays");
        assert_eq!(store.next_event_id().unwrap(), 4);
    }
}
