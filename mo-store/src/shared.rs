//! The directory a site shares (`mod --cluster … --share-directory`): users with their SSH keys,
//! user groups, device groups, roles, grants, API tokens and sealed device secrets, each read and
//! written as whole entries of one [`SharedKind`], generically from the tables that hold them.
//!
//! An entry is one row of the kind's main table, named by its key columns (all text), with the
//! rows of its child tables that point at it. Its value is a JSON object: every other column of
//! the main row (text as strings, integers as numbers, blobs as `{"base64": "…"}`), and for each
//! child table an array of its rows (without the column that names the parent), sorted. Columns
//! that are local to a store — row ids, a token's last use — are not part of it and are left
//! as they are when an entry is written. Writing an entry makes the store hold exactly it (the
//! child rows replaced), in one transaction; [`Store::directory_generation`] moves with every
//! change of these tables, in any process.

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, params_from_iter};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::store::Store;

/// A check of an entry's key and value before it is written.
type Check = fn(&Store, &[String], &Map<String, Value>) -> Result<()>;

/// One kind of shared directory entry and the tables that hold it.
#[derive(Debug)]
pub struct SharedKind {
    /// The kind's name (`user`, `grant`), as logs and keys call it.
    pub name: &'static str,
    /// The main table: one row per entry.
    table: &'static str,
    /// The main table's key columns (text), naming the entry.
    key: &'static [&'static str],
    /// Columns of any of the kind's tables that stay local (never shared, never overwritten).
    local: &'static [&'static str],
    /// Child tables, each with the column that holds the parent's (one-column) key.
    children: &'static [(&'static str, &'static str)],
    /// Checks an entry's key and value before it is written.
    check: Check,
}

impl SharedKind {
    /// How many parts the kind's keys have.
    pub fn key_len(&self) -> usize {
        self.key.len()
    }
}

fn user_name(_: &Store, key: &[String], _: &Map<String, Value>) -> Result<()> {
    key.iter().try_for_each(|k| crate::validate_user_name(k))
}

fn user_group_name(_: &Store, key: &[String], _: &Map<String, Value>) -> Result<()> {
    check_names("user group", key)
}

fn device_group_name(_: &Store, key: &[String], _: &Map<String, Value>) -> Result<()> {
    check_names("device group", key)
}

fn role_name(_: &Store, key: &[String], _: &Map<String, Value>) -> Result<()> {
    check_names("role", key)
}

fn check_names(what: &'static str, key: &[String]) -> Result<()> {
    key.iter()
        .try_for_each(|k| crate::validate_access_name(what, k))
}

fn any_key(_: &Store, key: &[String], _: &Map<String, Value>) -> Result<()> {
    if key.iter().any(String::is_empty) {
        return Err(bad_entry("an empty key"));
    }
    Ok(())
}

/// A sealed secret must open with this store's secret key (`secret.key` beside the database):
/// one sealed with another node's key is refused, not stored.
fn sealed_opens(store: &Store, key: &[String], value: &Map<String, Value>) -> Result<()> {
    let [device, kind] = key else {
        return Err(bad_entry("a secret's key is its device and kind"));
    };
    let kind: crate::SecretKind = kind.parse()?;
    let Some(SqlValue::Blob(sealed)) = value.get("sealed").map(to_sql).transpose()? else {
        return Err(bad_entry("a secret without its sealed value"));
    };
    let path = store.path().with_file_name(crate::SECRET_KEY_FILE);
    crate::SecretKey::load_or_create(&path)?
        .open(device, kind, &sealed)
        .map(|_| ())
        .map_err(|e| Error::Secret {
            what: format!("the site's {kind} of device `{device}`"),
            reason: format!(
                "{e}: it was sealed with another key than {} (every node of a site needs the \
                 same secret key file)",
                path.display()
            ),
        })
}

/// Every shared kind, parents before the kinds that refer to them.
pub const SHARED_KINDS: &[SharedKind] = &[
    SharedKind {
        name: "user",
        table: "users",
        key: &["name"],
        local: &["id"],
        children: &[("ssh_keys", "user")],
        check: user_name,
    },
    SharedKind {
        name: "user-group",
        table: "user_groups",
        key: &["name"],
        local: &[],
        children: &[("user_group_members", "grp")],
        check: user_group_name,
    },
    SharedKind {
        name: "device-group",
        table: "device_groups",
        key: &["name"],
        local: &[],
        children: &[
            ("device_group_members", "grp"),
            ("device_group_patterns", "grp"),
        ],
        check: device_group_name,
    },
    SharedKind {
        name: "role",
        table: "roles",
        key: &["name"],
        local: &[],
        children: &[],
        check: role_name,
    },
    SharedKind {
        name: "grant",
        table: "grants",
        key: &["subject_kind", "subject", "role", "device_group"],
        local: &["id"],
        children: &[],
        check: any_key,
    },
    SharedKind {
        name: "token",
        table: "api_tokens",
        key: &["id"],
        local: &["last_used_ns"],
        children: &[],
        check: any_key,
    },
    SharedKind {
        name: "secret",
        table: "device_secrets",
        key: &["device", "kind"],
        local: &[],
        children: &[],
        check: sealed_opens,
    },
];

fn bad_entry(reason: &str) -> Error {
    Error::BadValue {
        what: "shared directory entry".into(),
        value: String::new(),
        reason: reason.into(),
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of `table` that travel: all but `skip`.
fn columns(conn: &Connection, table: &str, skip: &[&str]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    let mut out = Vec::new();
    for name in names {
        let name = name?;
        if !skip.contains(&name.as_str()) {
            out.push(name);
        }
    }
    Ok(out)
}

fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => serde_json::json!({ "base64": Base64::encode_string(b) }),
    }
}

fn to_sql(value: &Value) -> Result<SqlValue> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or_else(|| bad_entry("a bad number"))?),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) => match o.get("base64").and_then(Value::as_str) {
            Some(b) if o.len() == 1 => SqlValue::Blob(
                Base64::decode_vec(b).map_err(|_| bad_entry("a blob that is not base64"))?,
            ),
            _ => return Err(bad_entry("an object where a column value belongs")),
        },
        Value::Array(_) => return Err(bad_entry("an array where a column value belongs")),
    })
}

/// The entries of `kind`, or only the one named `only`.
fn read_entries(
    conn: &Connection,
    kind: &SharedKind,
    only: Option<&[String]>,
) -> rusqlite::Result<BTreeMap<Vec<String>, Value>> {
    let mut skip: Vec<&str> = kind.local.to_vec();
    skip.extend_from_slice(kind.key);
    let cols = columns(conn, kind.table, &skip)?;
    let keys: Vec<String> = kind.key.iter().map(|k| quote(k)).collect();
    let mut select: Vec<String> = keys.clone();
    select.extend(cols.iter().map(|c| quote(c)));
    let filter = |keys: &[String]| match only {
        Some(_) => format!(
            " WHERE {}",
            keys.iter()
                .enumerate()
                .map(|(i, k)| format!("{k} = ?{}", i + 1))
                .collect::<Vec<_>>()
                .join(" AND ")
        ),
        None => String::new(),
    };
    let args: Vec<String> = only.map(<[String]>::to_vec).unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM {}{} ORDER BY {}",
        select.join(", "),
        quote(kind.table),
        filter(&keys),
        keys.join(", ")
    );
    let mut out = BTreeMap::new();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(row) = rows.next()? {
        let mut key = Vec::with_capacity(kind.key.len());
        for i in 0..kind.key.len() {
            key.push(row.get::<_, String>(i)?);
        }
        let mut value = Map::new();
        for (i, col) in cols.iter().enumerate() {
            value.insert(col.clone(), to_json(row.get_ref(kind.key.len() + i)?));
        }
        for (child, _) in kind.children {
            value.insert((*child).to_string(), Value::Array(Vec::new()));
        }
        out.insert(key, Value::Object(value));
    }
    for (child, parent) in kind.children {
        let mut skip: Vec<&str> = kind.local.to_vec();
        skip.push(parent);
        let cols = columns(conn, child, &skip)?;
        let order: Vec<String> = std::iter::once(quote(parent))
            .chain(cols.iter().map(|c| quote(c)))
            .collect();
        let sql = format!(
            "SELECT {} FROM {}{} ORDER BY {}",
            order.join(", "),
            quote(child),
            filter(&[quote(parent)]),
            order.join(", ")
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter().take(1)))?;
        while let Some(row) = rows.next()? {
            let parent: String = row.get(0)?;
            let mut item = Map::new();
            for (i, col) in cols.iter().enumerate() {
                item.insert(col.clone(), to_json(row.get_ref(1 + i)?));
            }
            if let Some(Value::Array(items)) = out
                .get_mut(std::slice::from_ref(&parent))
                .and_then(|v| v.get_mut(*child))
            {
                items.push(Value::Object(item));
            }
        }
    }
    Ok(out)
}

/// Insert `values` (column → value, only columns the table has) into `table`, with `fixed`
/// first.
fn insert(
    conn: &Connection,
    table: &str,
    fixed: &[(&str, &str)],
    values: &[(String, SqlValue)],
) -> rusqlite::Result<()> {
    let mut names: Vec<String> = fixed.iter().map(|(c, _)| quote(c)).collect();
    names.extend(values.iter().map(|(c, _)| quote(c)));
    let mut args: Vec<SqlValue> = fixed
        .iter()
        .map(|(_, v)| SqlValue::Text((*v).to_string()))
        .collect();
    args.extend(values.iter().map(|(_, v)| v.clone()));
    let marks: Vec<String> = (1..=args.len()).map(|i| format!("?{i}")).collect();
    conn.execute(
        &format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(table),
            names.join(", "),
            marks.join(", ")
        ),
        params_from_iter(args.iter()),
    )?;
    Ok(())
}

/// The columns of `table` (less `skip`) that `value` gives, as SQL values.
fn given(
    conn: &Connection,
    table: &str,
    skip: &[&str],
    value: &Map<String, Value>,
) -> Result<Vec<(String, SqlValue)>> {
    let cols = columns(conn, table, skip).map_err(|e| Error::sqlite(format!("read {table}"), e))?;
    cols.into_iter()
        .filter_map(|c| value.get(&c).map(|v| to_sql(v).map(|v| (c, v))))
        .collect()
}

impl Store {
    /// The directory change counter: it moves with every change of a [`SHARED_KINDS`] table
    /// (a token's last use aside), in any process.
    pub fn directory_generation(&self) -> Result<u64> {
        let value: i64 = self.read("read the directory generation", |c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'directory_generation'",
                [],
                |r| r.get(0),
            )
        })?;
        u64::try_from(value)
            .map_err(|_| self.corrupt("meta.directory_generation", format!("negative {value}")))
    }

    /// Every entry of `kind`, by key.
    pub fn shared_entries(&self, kind: &SharedKind) -> Result<BTreeMap<Vec<String>, Value>> {
        self.read(&format!("read the {}s", kind.name), |c| {
            read_entries(c, kind, None)
        })
    }

    /// The entry of `kind` named `key`, if there.
    pub fn shared_entry(&self, kind: &SharedKind, key: &[String]) -> Result<Option<Value>> {
        if key.len() != kind.key.len() {
            return Ok(None);
        }
        self.read(&format!("read a {}", kind.name), |c| {
            read_entries(c, kind, Some(key)).map(|mut m| m.remove(key))
        })
    }

    /// Make the store hold `value` as the entry of `kind` named `key` (added or replaced, its
    /// child rows replaced), in one transaction. The key and value are checked first.
    pub fn put_shared(&self, kind: &SharedKind, key: &[String], value: &Value) -> Result<()> {
        if key.len() != kind.key.len() {
            return Err(bad_entry("a key with the wrong number of parts"));
        }
        let Value::Object(value) = value else {
            return Err(bad_entry("a value that is not an object"));
        };
        (kind.check)(self, key, value)?;
        let what = format!("write the {} `{}`", kind.name, key.join(" "));
        self.atomically(&what, |s| {
            let conn = s.conn();
            let sql = |e| s.sql_error(&what, e);
            let mut skip: Vec<&str> = kind.local.to_vec();
            skip.extend_from_slice(kind.key);
            let row = given(&conn, kind.table, &skip, value)?;
            let fixed: Vec<(&str, &str)> = kind
                .key
                .iter()
                .zip(key)
                .map(|(c, v)| (*c, v.as_str()))
                .collect();
            let filter: Vec<String> = (1..=key.len())
                .map(|i| format!("{} = ?{i}", quote(kind.key[i - 1])))
                .collect();
            let exists = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM {} WHERE {}",
                        quote(kind.table),
                        filter.join(" AND ")
                    ),
                    params_from_iter(key.iter()),
                    |r| r.get::<_, i64>(0),
                )
                .map_err(sql)?
                > 0;
            if !exists {
                insert(&conn, kind.table, &fixed, &row).map_err(sql)?;
            } else if !row.is_empty() {
                // An update, not a replace: a replaced row would take its dependants with it.
                let sets: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(i, (c, _))| format!("{} = ?{}", quote(c), key.len() + i + 1))
                    .collect();
                let args: Vec<SqlValue> = key
                    .iter()
                    .map(|k| SqlValue::Text(k.clone()))
                    .chain(row.iter().map(|(_, v)| v.clone()))
                    .collect();
                conn.execute(
                    &format!(
                        "UPDATE {} SET {} WHERE {}",
                        quote(kind.table),
                        sets.join(", "),
                        filter.join(" AND ")
                    ),
                    params_from_iter(args.iter()),
                )
                .map_err(sql)?;
            }
            for (child, parent) in kind.children {
                let parent_key = key.first().map(String::as_str).unwrap_or_default();
                conn.execute(
                    &format!("DELETE FROM {} WHERE {} = ?1", quote(child), quote(parent)),
                    [parent_key],
                )
                .map_err(sql)?;
                let items = match value.get(*child) {
                    None => &Vec::new(),
                    Some(Value::Array(items)) => items,
                    Some(_) => return Err(bad_entry("child rows that are not an array")),
                };
                let mut skip: Vec<&str> = kind.local.to_vec();
                skip.push(parent);
                for item in items {
                    let Value::Object(item) = item else {
                        return Err(bad_entry("a child row that is not an object"));
                    };
                    let cols = given(&conn, child, &skip, item)?;
                    insert(&conn, child, &[(parent, parent_key)], &cols).map_err(sql)?;
                }
            }
            Ok(())
        })
    }

    /// Remove the entry of `kind` named `key` (and what depends on it), if there.
    pub fn remove_shared(&self, kind: &SharedKind, key: &[String]) -> Result<()> {
        if key.len() != kind.key.len() {
            return Ok(());
        }
        let filter: Vec<String> = (1..=key.len())
            .map(|i| format!("{} = ?{i}", quote(kind.key[i - 1])))
            .collect();
        self.read(
            &format!("remove the {} `{}`", kind.name, key.join(" ")),
            |c| {
                c.execute(
                    &format!(
                        "DELETE FROM {} WHERE {}",
                        quote(kind.table),
                        filter.join(" AND ")
                    ),
                    params_from_iter(key.iter()),
                )
                .map(|_| ())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mo_core::policy::Grant;

    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti a@b";

    fn kind(name: &str) -> &'static SharedKind {
        SHARED_KINDS.iter().find(|k| k.name == name).unwrap()
    }

    /// Copy every entry of every kind from `from` to `to`, as a site's replica would.
    fn copy_all(from: &Store, to: &Store) {
        for kind in SHARED_KINDS {
            for (key, value) in from.shared_entries(kind).unwrap() {
                to.put_shared(kind, &key, &value).unwrap();
            }
        }
    }

    #[test]
    fn entries_travel_whole_and_local_columns_stay() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path().join("a.db")).unwrap();
        let b = Store::open(dir.path().join("b.db")).unwrap();
        let g0 = a.directory_generation().unwrap();
        a.add_user("alice", Some("pw-alice")).unwrap();
        a.add_ssh_key("alice", KEY).unwrap();
        a.add_user_group("ops", &["alice".to_string()]).unwrap();
        a.add_grant(&Grant::to_user("alice", "operator", "all"))
            .unwrap();
        let token = a
            .add_token("alice", crate::TokenScope::parse("all").unwrap(), None)
            .unwrap();
        assert!(a.directory_generation().unwrap() > g0);

        copy_all(&a, &b);
        for kind in SHARED_KINDS {
            assert_eq!(
                a.shared_entries(kind).unwrap(),
                b.shared_entries(kind).unwrap(),
                "{}",
                kind.name
            );
        }
        // What travelled works there: the password, the key, the token, the grant.
        assert!(b.verify_password("alice", "pw-alice").unwrap());
        assert_eq!(b.user("alice").unwrap().ssh_keys, 1);
        assert_eq!(b.verify_token(token.token.expose()).unwrap().user, "alice");
        assert_eq!(b.list_grants().unwrap().len(), 1);

        // A token's last use stays local and does not move the counter.
        let g1 = b.directory_generation().unwrap();
        b.verify_token(token.token.expose()).unwrap();
        assert_eq!(b.directory_generation().unwrap(), g1);

        // Changing an entry replaces its child rows; the user's grants and groups stay.
        let user = kind("user");
        let key = vec!["alice".to_string()];
        let mut value = a.shared_entry(user, &key).unwrap().unwrap();
        value["ssh_keys"] = Value::Array(Vec::new());
        b.put_shared(user, &key, &value).unwrap();
        assert_eq!(b.user("alice").unwrap().ssh_keys, 0);
        assert_eq!(b.list_grants().unwrap().len(), 1);
        assert_eq!(b.user_group("ops").unwrap().members.len(), 1);

        // Removing the grant entry removes the grant.
        let grant = kind("grant");
        let gkey: Vec<String> = ["user", "alice", "operator", "all"]
            .map(String::from)
            .into();
        assert!(b.shared_entry(grant, &gkey).unwrap().is_some());
        b.remove_shared(grant, &gkey).unwrap();
        assert!(b.list_grants().unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("s.db")).unwrap();
        let user = kind("user");
        let bad_name = vec!["../x".to_string()];
        let ok = serde_json::json!({"password_hash": null, "created_ns": 1, "ssh_keys": []});
        assert!(s.put_shared(user, &bad_name, &ok).is_err());
        let key = vec!["bob".to_string()];
        assert!(s.put_shared(user, &key, &serde_json::json!([1])).is_err());
        let blob_in_text = serde_json::json!({"created_ns": "x", "ssh_keys": []});
        assert!(s.put_shared(user, &key, &blob_in_text).is_err());
        assert!(s.list_users().unwrap().is_empty());
        s.put_shared(user, &key, &ok).unwrap();
        assert_eq!(s.list_users().unwrap().len(), 1);

        // A secret sealed with another key does not open here, so it is not stored.
        s.add_device(&crate::Device::new("web01", "sim://web01"))
            .unwrap();
        let other = crate::SecretKey::from_bytes([9; 32]);
        let sealed = other
            .seal_for_export(
                "web01",
                crate::SecretKind::Password,
                &mo_core::secret::Secret::new("pw".to_string()),
            )
            .unwrap();
        let secret = kind("secret");
        let skey: Vec<String> = ["web01", "password"].map(String::from).into();
        let err = s
            .put_shared(
                secret,
                &skey,
                &serde_json::json!({"sealed": {"base64": sealed}, "updated_ns": 1}),
            )
            .unwrap_err();
        assert!(err.to_string().contains("same secret key file"), "{err}");
        assert!(s.shared_entries(secret).unwrap().is_empty());
    }
}
