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

-- One row per push: the range of mutation numbers it processed, a hash of
-- each mutation's content, so that a device restored from a backup that
-- reuses numbers for other content is refused instead of being told
-- "duplicate" and losing records; and the rejections, so that a retry gets
-- the same answer.
CREATE TABLE device_pushes (
    device_id  TEXT NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    hashes     BLOB NOT NULL,   -- 16 bytes per mutation, first_seq's first
    rejections TEXT,            -- JSON object of seq to error, or NULL
    PRIMARY KEY (device_id, first_seq)
) WITHOUT ROWID;
