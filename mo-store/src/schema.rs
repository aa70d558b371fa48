//! The database schema, as a list of migration steps.
//!
//! Step `i` (0-based) brings a database from `PRAGMA user_version = i` to `i + 1`. Steps are only
//! ever appended; a released step is never edited. All pending steps run in one transaction.

/// The migration steps, oldest first.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: devices, users and their SSH keys, and the device change counter.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) STRICT;
    INSERT INTO meta (key, value) VALUES ('generation', 0);

    CREATE TABLE devices (
        name            TEXT PRIMARY KEY NOT NULL,
        url             TEXT NOT NULL,
        on_demand       INTEGER NOT NULL DEFAULT 0 CHECK (on_demand IN (0, 1)),
        replay_lines    INTEGER NOT NULL DEFAULT 20 CHECK (replay_lines >= 0),
        allow_join      INTEGER NOT NULL DEFAULT 1 CHECK (allow_join IN (0, 1)),
        escape_seq      TEXT,
        break_sequences TEXT NOT NULL DEFAULT '{}',
        description     TEXT,
        created_ns      INTEGER NOT NULL,
        updated_ns      INTEGER NOT NULL
    ) STRICT;

    CREATE TRIGGER devices_generation_insert AFTER INSERT ON devices BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END;
    CREATE TRIGGER devices_generation_update AFTER UPDATE ON devices BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END;
    CREATE TRIGGER devices_generation_delete AFTER DELETE ON devices BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'generation';
    END;

    CREATE TABLE users (
        name          TEXT PRIMARY KEY NOT NULL,
        password_hash TEXT,
        created_ns    INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE ssh_keys (
        id          INTEGER PRIMARY KEY,
        user        TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        key_type    TEXT NOT NULL,
        blob        TEXT NOT NULL,
        comment     TEXT NOT NULL DEFAULT '',
        fingerprint TEXT NOT NULL,
        created_ns  INTEGER NOT NULL,
        UNIQUE (key_type, blob)
    ) STRICT;
    CREATE INDEX ssh_keys_user ON ssh_keys (user);
    "#,
];

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
