-- Infection testing, hepatitis vaccination and deaths (schema/infection.go).
-- Columns as in 0001: ids as TEXT, times as Unix milliseconds, v and cv the
-- versions of the record's fields, seq the server's change number.

-- A test offered at a contact: declined, or performed (a rapid test or a
-- sample sent) with its result, pending until known. result is NULL for a
-- declined test; cv always holds its version (<settled>.<hlc>@<node>).
CREATE TABLE infection_tests (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    contact_id  TEXT NOT NULL,
    client_code TEXT,
    test        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    result      TEXT,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One dose of a hepatitis vaccine given at a contact.
CREATE TABLE vaccinations (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    contact_id  TEXT NOT NULL,
    client_code TEXT,
    vaccine     TEXT NOT NULL,
    dose        INTEGER NOT NULL,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- A client reported deceased: occurred_at is the date of death as the
-- service knows it, source how it learnt it. Nothing else.
CREATE TABLE deaths (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    client_code TEXT NOT NULL,
    source      TEXT NOT NULL,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
