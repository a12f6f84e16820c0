-- Device side of sync: the outbox of mutations not yet acknowledged and the
-- rejections the server sent back, kept so the worker can see them.

CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY, -- the mutation's number, 1, 2, 3, ...
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    TEXT NOT NULL,
    fields     TEXT NOT NULL,       -- JSON object of the columns written
    created_at INTEGER NOT NULL
);

CREATE TABLE rejections (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    code        TEXT NOT NULL,
    field       TEXT,
    message     TEXT NOT NULL,
    rejected_at INTEGER NOT NULL
);
CREATE INDEX outbox_id ON outbox (id);
