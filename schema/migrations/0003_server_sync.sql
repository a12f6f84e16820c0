-- Server side of sync: the devices and the mutations they have pushed.

CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    unit_id      TEXT NOT NULL,
    enrolled_at  INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_seq     INTEGER NOT NULL DEFAULT 0, -- last mutation number applied
    last_push_at INTEGER,
    last_pull_at INTEGER
);

-- One row per processed mutation: its number and a hash of its content,
-- so that a device restored from a backup that reuses numbers for other
-- content is refused instead of being told "duplicate" and losing records;
-- and for a rejected one the error, so that a retry gets the same answer.
CREATE TABLE device_mutations (
    device_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    code      TEXT,    -- NULL if applied
    field     TEXT,
    rule      TEXT,
    message   TEXT,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
