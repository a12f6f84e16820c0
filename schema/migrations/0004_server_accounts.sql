-- Server side of identity and access: staff accounts, signing keys,
-- enrolment codes, device sessions and the audit log.

-- Staff accounts. A user of an outreach unit is also its staff record
-- (same id), so records attribute work to them; the username is what the
-- person logs in with.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,  -- argon2id, PHC string format
    role          TEXT NOT NULL,  -- outreach, manager, authority, admin
    org_id        TEXT,
    unit_id       TEXT,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

-- Ed25519 keys that sign access tokens. The newest unretired key signs;
-- retired keys still verify until their tokens have expired.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

-- One-time device enrolment codes, kept hashed.
CREATE TABLE enrol_codes (
    code_hash  BLOB PRIMARY KEY,
    unit_id    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device_id  TEXT
) WITHOUT ROWID;

-- Device refresh tokens, kept hashed. Each use replaces the token; using a
-- replaced one again ends the device's session.
CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY,
    device_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    replaced_at INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_device ON refresh_tokens (device_id);

-- What the server knows of a device beyond sync: who enrolled it, the
-- protocol it last spoke, how many of its mutations were rejected.
ALTER TABLE devices ADD COLUMN enrolled_by TEXT;
ALTER TABLE devices ADD COLUMN protocol INTEGER;
ALTER TABLE devices ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;

-- The audit log: append-only. The server never updates or deletes a row.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,   -- user:<id>, device:<id>, or anonymous
    action     TEXT NOT NULL,   -- login, login_failed, enrol, revoke, pull, push, report, ...
    target     TEXT,            -- what the action was on: a unit, device, user
    outcome    TEXT NOT NULL,   -- ok or an error code
    rows       INTEGER,         -- rows read or written, where it applies
    request_id TEXT
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
