-- Field records, the same on the server and on a device.
--
-- Every table carries the record's columns and three for sync:
--   v    the version key every column has unless cv says otherwise
--   cv   a JSON object of column name to version key, for columns written
--        later than v, or NULL
--   seq  the server's change sequence number of the row's latest change
--        (on a device: as last pulled; 0 for a row not yet on the server)
-- Times are Unix milliseconds in UTC. Ids are UUIDv7 text, generated on
-- devices in time order, so primary keys grow at the end.
--
-- Indexes stay append-friendly: (unit_id, seq) grows at the end of each
-- unit's range because seq only increases. Statistics do not get indexes on
-- occurred_at here; they are served from rollups.

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    code        TEXT NOT NULL,
    gender      TEXT NOT NULL,
    birth_year  INTEGER,
    age_band    TEXT,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX clients_unit_seq ON clients (unit_id, seq);
CREATE INDEX clients_code ON clients (code);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    client_code TEXT,
    gender      TEXT NOT NULL,
    age_band    TEXT NOT NULL,
    setting     TEXT NOT NULL,
    area_code   TEXT NOT NULL,
    substance   TEXT,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX contacts_unit_seq ON contacts (unit_id, seq);

CREATE TABLE syringe_exchanges (
    id                TEXT PRIMARY KEY,
    unit_id           TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    staff_id          TEXT NOT NULL,
    occurred_at       INTEGER NOT NULL,
    voided            INTEGER NOT NULL DEFAULT 0,
    contact_id        TEXT NOT NULL,
    syringes_out      INTEGER NOT NULL DEFAULT 0,
    needles_out       INTEGER NOT NULL DEFAULT 0,
    syringes_returned INTEGER NOT NULL DEFAULT 0,
    supplies          TEXT,
    v                 TEXT NOT NULL,
    cv                TEXT,
    seq               INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX syringe_exchanges_unit_seq ON syringe_exchanges (unit_id, seq);

CREATE TABLE naloxone_handouts (
    id             TEXT PRIMARY KEY,
    unit_id        TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    staff_id       TEXT NOT NULL,
    occurred_at    INTEGER NOT NULL,
    voided         INTEGER NOT NULL DEFAULT 0,
    contact_id     TEXT NOT NULL,
    doses          INTEGER NOT NULL,
    training_given INTEGER NOT NULL DEFAULT 0,
    reason         TEXT NOT NULL,
    v              TEXT NOT NULL,
    cv             TEXT,
    seq            INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX naloxone_handouts_unit_seq ON naloxone_handouts (unit_id, seq);

CREATE TABLE reversals (
    id            TEXT PRIMARY KEY,
    unit_id       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    staff_id      TEXT NOT NULL,
    occurred_at   INTEGER NOT NULL,
    voided        INTEGER NOT NULL DEFAULT 0,
    contact_id    TEXT,
    naloxone_used INTEGER NOT NULL DEFAULT 0,
    doses_used    INTEGER NOT NULL DEFAULT 0,
    ems_called    INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL,
    v             TEXT NOT NULL,
    cv            TEXT,
    seq           INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX reversals_unit_seq ON reversals (unit_id, seq);

CREATE TABLE referrals (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    contact_id  TEXT,
    client_code TEXT,
    service     TEXT NOT NULL,
    to_unit_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    reopened    INTEGER NOT NULL DEFAULT 0,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX referrals_unit_seq ON referrals (unit_id, seq);
CREATE INDEX referrals_to_unit_seq ON referrals (to_unit_id, seq);
