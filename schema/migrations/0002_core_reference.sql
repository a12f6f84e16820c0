-- Reference data: written on the server, received by every device. Same
-- sync columns as the field records.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY,
    org_kind    TEXT NOT NULL,
    name        TEXT NOT NULL,
    region_code TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX organisations_seq ON organisations (seq);

CREATE TABLE units (
    id        TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL,
    name      TEXT NOT NULL,
    area_code TEXT NOT NULL,
    active    INTEGER NOT NULL DEFAULT 1,
    v         TEXT NOT NULL,
    cv        TEXT,
    seq       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX units_seq ON units (seq);

CREATE TABLE staff (
    id      TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL,
    role    TEXT NOT NULL,
    active  INTEGER NOT NULL DEFAULT 1,
    v       TEXT NOT NULL,
    cv      TEXT,
    seq     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX staff_seq ON staff (seq);

CREATE TABLE services (
    id       TEXT PRIMARY KEY,
    unit_id  TEXT NOT NULL,
    category TEXT NOT NULL,
    active   INTEGER NOT NULL DEFAULT 1,
    v        TEXT NOT NULL,
    cv       TEXT,
    seq      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX services_seq ON services (seq);

-- Small named values of the sync engine: the change sequence, the last
-- hybrid logical clock reading, cursors.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID;
