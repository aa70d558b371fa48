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
    // 2: device auto-login, host-key trust and power bindings.
    r#"
    ALTER TABLE devices ADD COLUMN login TEXT;
    ALTER TABLE devices ADD COLUMN login_user TEXT;
    ALTER TABLE devices ADD COLUMN trust_host_key INTEGER NOT NULL DEFAULT 0
        CHECK (trust_host_key IN (0, 1));
    ALTER TABLE devices ADD COLUMN power TEXT NOT NULL DEFAULT '[]';
    "#,
    // 3: access control (user groups, device groups, roles, grants), API tokens, device
    // secrets, the append-only audit log, and the policy change counter.
    r#"
    INSERT INTO meta (key, value) VALUES ('policy_generation', 0);

    CREATE TABLE user_groups (
        name       TEXT PRIMARY KEY NOT NULL,
        created_ns INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE user_group_members (
        grp  TEXT NOT NULL REFERENCES user_groups (name) ON DELETE CASCADE,
        user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        PRIMARY KEY (grp, user)
    ) STRICT;
    CREATE INDEX user_group_members_user ON user_group_members (user);

    CREATE TABLE device_groups (
        name       TEXT PRIMARY KEY NOT NULL,
        created_ns INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE device_group_members (
        grp    TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
        device TEXT NOT NULL,
        PRIMARY KEY (grp, device)
    ) STRICT;
    CREATE TABLE device_group_patterns (
        grp     TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
        pattern TEXT NOT NULL,
        PRIMARY KEY (grp, pattern)
    ) STRICT;

    CREATE TABLE roles (
        name       TEXT PRIMARY KEY NOT NULL,
        actions    TEXT NOT NULL,
        created_ns INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE grants (
        id           INTEGER PRIMARY KEY,
        subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'group')),
        subject      TEXT NOT NULL,
        role         TEXT NOT NULL,
        device_group TEXT NOT NULL,
        created_ns   INTEGER NOT NULL,
        UNIQUE (subject_kind, subject, role, device_group)
    ) STRICT;

    CREATE TRIGGER users_delete_grants AFTER DELETE ON users BEGIN
        DELETE FROM grants WHERE subject_kind = 'user' AND subject = OLD.name;
    END;

    CREATE TABLE api_tokens (
        id           TEXT PRIMARY KEY NOT NULL,
        user         TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        secret_hash  TEXT NOT NULL,
        scope        TEXT NOT NULL,
        created_ns   INTEGER NOT NULL,
        expires_ns   INTEGER,
        revoked_ns   INTEGER,
        last_used_ns INTEGER
    ) STRICT;
    CREATE INDEX api_tokens_user ON api_tokens (user);

    CREATE TABLE device_secrets (
        device     TEXT NOT NULL REFERENCES devices (name) ON DELETE CASCADE,
        kind       TEXT NOT NULL,
        sealed     BLOB NOT NULL,
        updated_ns INTEGER NOT NULL,
        PRIMARY KEY (device, kind)
    ) STRICT;

    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        time_ns INTEGER NOT NULL,
        user    TEXT,
        source  TEXT,
        action  TEXT NOT NULL,
        device  TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed', 'ok')),
        detail  TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX audit_time ON audit (time_ns);
    CREATE INDEX audit_user ON audit (user, time_ns);
    CREATE INDEX audit_device ON audit (device, time_ns);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TRIGGER user_groups_policy_insert AFTER INSERT ON user_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER user_groups_policy_update AFTER UPDATE ON user_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER user_groups_policy_delete AFTER DELETE ON user_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER user_group_members_policy_insert AFTER INSERT ON user_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER user_group_members_policy_update AFTER UPDATE ON user_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER user_group_members_policy_delete AFTER DELETE ON user_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_groups_policy_insert AFTER INSERT ON device_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_groups_policy_update AFTER UPDATE ON device_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_groups_policy_delete AFTER DELETE ON device_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_group_members_policy_insert AFTER INSERT ON device_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_group_members_policy_update AFTER UPDATE ON device_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_group_members_policy_delete AFTER DELETE ON device_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_group_patterns_policy_insert AFTER INSERT ON device_group_patterns BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_group_patterns_policy_update AFTER UPDATE ON device_group_patterns BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER device_group_patterns_policy_delete AFTER DELETE ON device_group_patterns BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER roles_policy_insert AFTER INSERT ON roles BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER roles_policy_update AFTER UPDATE ON roles BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER roles_policy_delete AFTER DELETE ON roles BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER grants_policy_insert AFTER INSERT ON grants BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER grants_policy_update AFTER UPDATE ON grants BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    CREATE TRIGGER grants_policy_delete AFTER DELETE ON grants BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'policy_generation';
    END;
    "#,
    // 4: events (scanner matches, connection, power and file changes) with their counts and
    // acknowledgements.
    r#"
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        time_ns    INTEGER NOT NULL,
        last_ns    INTEGER NOT NULL,
        device     TEXT NOT NULL,
        source     TEXT NOT NULL,
        severity   INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
        message    TEXT NOT NULL,
        context    TEXT NOT NULL DEFAULT '[]',
        count      INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
        suppressed INTEGER NOT NULL DEFAULT 0 CHECK (suppressed IN (0, 1)),
        acked_by   TEXT,
        acked_ns   INTEGER
    ) STRICT;
    CREATE INDEX events_time ON events (time_ns);
    CREATE INDEX events_device_time ON events (device, time_ns);
    CREATE INDEX events_severity_time ON events (severity, time_ns);
    "#,
    // 5: per-device record-log settings (log policy, retention), and audit pruning: rows leave
    // the audit log only up to the id that the archiving prune sets (and resets) in its own
    // transaction, after it has written them to a verifiable archive file.
    r#"
    ALTER TABLE devices ADD COLUMN log_policy TEXT CHECK (log_policy IN ('degrade', 'strict'));
    ALTER TABLE devices ADD COLUMN retain_days INTEGER CHECK (retain_days >= 1);
    ALTER TABLE devices ADD COLUMN retain_mib INTEGER CHECK (retain_mib >= 1);

    INSERT INTO meta (key, value) VALUES ('audit_prune_through', 0);
    DROP TRIGGER audit_no_delete;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    WHEN OLD.id > (SELECT value FROM meta WHERE key = 'audit_prune_through') BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only (rows leave it only by archived pruning)');
    END;
    "#,
    // 6: whether input typed at password prompts is logged as typed (default: redacted).
    r#"
    ALTER TABLE devices ADD COLUMN log_secrets INTEGER NOT NULL DEFAULT 0 CHECK (log_secrets IN (0, 1));
    "#,
    // 7: agents (mo-agent on console servers): enrollment secret (hashed), enrolled key, last
    // connection, and the ports each offers.
    r#"
    CREATE TABLE agents (
        name             TEXT PRIMARY KEY NOT NULL,
        token_hash       TEXT,
        token_expires_ns INTEGER,
        key_type         TEXT,
        blob             TEXT,
        fingerprint      TEXT,
        created_ns       INTEGER NOT NULL,
        enrolled_ns      INTEGER,
        connected_ns     INTEGER,
        seen_ns          INTEGER,
        peer             TEXT,
        software         TEXT
    ) STRICT;
    CREATE UNIQUE INDEX agents_key ON agents (key_type, blob);
    CREATE TABLE agent_ports (
        agent TEXT NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
        name  TEXT NOT NULL,
        url   TEXT NOT NULL,
        caps  INTEGER NOT NULL,
        PRIMARY KEY (agent, name)
    ) STRICT;
    "#,
    // 8: per agent port, the agent's spool epoch and the last sequence number the daemon passed
    // on to the port's consoles: where the agent resumes after a daemon restart.
    r#"
    CREATE TABLE agent_resume (
        agent TEXT NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
        port  TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        seq   INTEGER NOT NULL,
        PRIMARY KEY (agent, port)
    ) STRICT;
    "#,
    // maintenance windows started at run time (`maintenance start`, `mo maintenance start`,
    // the REST API): what they cover, why, who started them, and when they start and end.
    r#"
    CREATE TABLE maintenance (
        name       TEXT PRIMARY KEY NOT NULL,
        target     TEXT NOT NULL,
        reason     TEXT NOT NULL DEFAULT '',
        started_by TEXT NOT NULL,
        start_ns   INTEGER NOT NULL,
        end_ns     INTEGER NOT NULL CHECK (end_ns > start_ns)
    ) STRICT;
    "#,
    // per-console TCP ports (`--listen`, `--listen-allow`): JSON {"ports": [...], "allow": [...]}.
    r#"
    ALTER TABLE devices ADD COLUMN listen TEXT NOT NULL DEFAULT '{}';
    "#,
    // the node of a site (`mod --cluster`) that must hold the device's console (`--node`).
    r#"
    ALTER TABLE devices ADD COLUMN node TEXT;
    "#,
    // the directory change counter (`mod --cluster … --share-directory`): moves with every change
    // of users, their SSH keys, groups, roles, grants, API tokens (not their last use) and device
    // secrets, so a daemon sharing them with its site polls one number.
    r#"
    INSERT INTO meta (key, value) VALUES ('directory_generation', 0);
    CREATE TRIGGER users_directory_insert AFTER INSERT ON users BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER users_directory_update AFTER UPDATE ON users BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER users_directory_delete AFTER DELETE ON users BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER ssh_keys_directory_insert AFTER INSERT ON ssh_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER ssh_keys_directory_update AFTER UPDATE ON ssh_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER ssh_keys_directory_delete AFTER DELETE ON ssh_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER user_groups_directory_insert AFTER INSERT ON user_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER user_groups_directory_update AFTER UPDATE ON user_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER user_groups_directory_delete AFTER DELETE ON user_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER user_group_members_directory_insert AFTER INSERT ON user_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER user_group_members_directory_update AFTER UPDATE ON user_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER user_group_members_directory_delete AFTER DELETE ON user_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_groups_directory_insert AFTER INSERT ON device_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_groups_directory_update AFTER UPDATE ON device_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_groups_directory_delete AFTER DELETE ON device_groups BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_group_members_directory_insert AFTER INSERT ON device_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_group_members_directory_update AFTER UPDATE ON device_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_group_members_directory_delete AFTER DELETE ON device_group_members BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_group_patterns_directory_insert AFTER INSERT ON device_group_patterns BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_group_patterns_directory_update AFTER UPDATE ON device_group_patterns BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_group_patterns_directory_delete AFTER DELETE ON device_group_patterns BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER roles_directory_insert AFTER INSERT ON roles BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER roles_directory_update AFTER UPDATE ON roles BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER roles_directory_delete AFTER DELETE ON roles BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER grants_directory_insert AFTER INSERT ON grants BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER grants_directory_update AFTER UPDATE ON grants BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER grants_directory_delete AFTER DELETE ON grants BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_secrets_directory_insert AFTER INSERT ON device_secrets BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_secrets_directory_update AFTER UPDATE ON device_secrets BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER device_secrets_directory_delete AFTER DELETE ON device_secrets BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER api_tokens_directory_insert AFTER INSERT ON api_tokens BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER api_tokens_directory_update
    AFTER UPDATE OF user, secret_hash, scope, created_ns, expires_ns, revoked_ns ON api_tokens BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    CREATE TRIGGER api_tokens_directory_delete AFTER DELETE ON api_tokens BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'directory_generation';
    END;
    "#,
    // events of a site (`mod --cluster … --share-directory`): a copy of another node's event
    // names that node and the event's id there.
    r#"
    ALTER TABLE events ADD COLUMN node TEXT;
    ALTER TABLE events ADD COLUMN origin_id INTEGER;
    CREATE UNIQUE INDEX events_origin ON events (node, origin_id) WHERE node IS NOT NULL;
    "#,
    // audit entries of a site (`mod --cluster … --share-directory`): a copy of another node's
    // entry names that node and the entry's id there.
    r#"
    ALTER TABLE audit ADD COLUMN node TEXT;
    ALTER TABLE audit ADD COLUMN origin_id INTEGER;
    CREATE UNIQUE INDEX audit_origin ON audit (node, origin_id) WHERE node IS NOT NULL;
    "#,
];

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
