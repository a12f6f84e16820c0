-- The statistics' tables (server/stats), as the SQLite migrations 0006,
-- 0010, 0014, 0015 and 0020 make them, in PostgreSQL's types: the ids of
-- records and units are UUID like the record tables' (so that they join
-- without casts), integers BIGINT, flags 0 or 1. See those migrations for
-- what each table holds.

-- How far the rollups are up to date, in which zone, with which layout.
CREATE TABLE stats_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     BIGINT NOT NULL,   -- the change_seq the rollups include
    zone    TEXT NOT NULL,
    version INTEGER NOT NULL
);

-- Each field record's contribution as the rollups hold it.
CREATE TABLE stats_facts (
    kind              TEXT NOT NULL,
    id                UUID NOT NULL,
    contact_id        UUID,
    live              BIGINT NOT NULL CHECK (live IN (0, 1)),
    at                BIGINT NOT NULL,
    unit_id           UUID NOT NULL,
    gender            TEXT NOT NULL,
    age_band          TEXT NOT NULL,
    setting           TEXT NOT NULL DEFAULT 'none',
    client_code       TEXT,
    syringes_out      BIGINT NOT NULL DEFAULT 0,
    needles_out       BIGINT NOT NULL DEFAULT 0,
    syringes_returned BIGINT NOT NULL DEFAULT 0,
    doses             BIGINT NOT NULL DEFAULT 0,
    service           TEXT,
    attended          BIGINT NOT NULL DEFAULT 0 CHECK (attended IN (0, 1)),
    PRIMARY KEY (kind, id)
);
CREATE INDEX stats_facts_at ON stats_facts (at) WHERE live = 1;
CREATE INDEX stats_facts_contact ON stats_facts (contact_id) WHERE contact_id IS NOT NULL;

-- The additive indicators per bucket, unit, gender, age band and setting.
CREATE TABLE stats_cells (
    grain             TEXT NOT NULL,
    bucket            BIGINT NOT NULL,
    unit_id           UUID NOT NULL,
    gender            TEXT NOT NULL,
    age_band          TEXT NOT NULL,
    setting           TEXT NOT NULL,
    contacts          BIGINT NOT NULL CHECK (contacts >= 0),
    exchanges         BIGINT NOT NULL CHECK (exchanges >= 0),
    syringes_out      BIGINT NOT NULL CHECK (syringes_out >= 0),
    needles_out       BIGINT NOT NULL CHECK (needles_out >= 0),
    syringes_returned BIGINT NOT NULL CHECK (syringes_returned >= 0),
    handouts          BIGINT NOT NULL CHECK (handouts >= 0),
    naloxone_doses    BIGINT NOT NULL CHECK (naloxone_doses >= 0),
    reversals         BIGINT NOT NULL CHECK (reversals >= 0),
    referrals         BIGINT NOT NULL CHECK (referrals >= 0),
    attended          BIGINT NOT NULL CHECK (attended >= 0),
    PRIMARY KEY (grain, bucket, unit_id, gender, age_band, setting)
);

-- Referrals by service category.
CREATE TABLE stats_services (
    grain     TEXT NOT NULL,
    bucket    BIGINT NOT NULL,
    unit_id   UUID NOT NULL,
    service   TEXT NOT NULL,
    gender    TEXT NOT NULL,
    age_band  TEXT NOT NULL,
    setting   TEXT NOT NULL,
    referrals BIGINT NOT NULL CHECK (referrals >= 0),
    PRIMARY KEY (grain, bucket, unit_id, service, gender, age_band, setting)
);

-- The client codes met.
CREATE TABLE stats_clients (
    grain       TEXT NOT NULL,
    bucket      BIGINT NOT NULL,
    unit_id     UUID NOT NULL,
    client_code TEXT NOT NULL,
    gender      TEXT NOT NULL,
    age_band    TEXT NOT NULL,
    setting     TEXT NOT NULL,
    contacts    BIGINT NOT NULL CHECK (contacts >= 0),
    PRIMARY KEY (grain, bucket, unit_id, client_code, gender, age_band, setting)
);

-- Record keys for the cell-key perturbation of the authority's reports
-- (docs/REPORTS.md): a permanent random key from 0 to 2^32-1 for every
-- field record the reports count, given when the server first stores it,
-- and for every client code, given when the first contact or death with
-- it is stored. Never published, never sent to devices, never changed.
-- The triggers that give them are made with the record tables (see
-- records.go), which the numbered migrations do not make.
CREATE TABLE record_keys (
    kind TEXT NOT NULL,
    id   UUID NOT NULL,
    key  BIGINT NOT NULL CHECK (key >= 0 AND key < 4294967296),
    PRIMARY KEY (kind, id)
);

CREATE TABLE client_keys (
    client_code TEXT PRIMARY KEY,
    key         BIGINT NOT NULL CHECK (key >= 0 AND key < 4294967296)
);

-- A random key: the first 32 bits of a version 4 UUID, which are random;
-- gen_random_uuid draws them from a cryptographically strong source.
CREATE FUNCTION stats_random_key() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT ('x' || substr(gen_random_uuid()::text, 1, 8))::bit(32)::bigint
$$;

-- The key of a record stored for the first time: the trigger's table is
-- the record's kind.
CREATE FUNCTION stats_record_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_keys (kind, id, key) VALUES (TG_TABLE_NAME, NEW.id, stats_random_key())
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- The key of a client code stored for the first time.
CREATE FUNCTION stats_client_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.client_code IS NOT NULL THEN
        INSERT INTO client_keys (client_code, key) VALUES (NEW.client_code, stats_random_key())
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

-- The value of every cell of a period when the period was first published
-- final; NULL for a withheld cell.
CREATE TABLE report_finals (
    cell  TEXT PRIMARY KEY,
    value BIGINT
);

-- The perturbation of each cell, fixed when it is first published with
-- records.
CREATE TABLE report_keys (
    cell TEXT PRIMARY KEY,
    key  BIGINT NOT NULL CHECK (key >= 0 AND key < 4294967296),
    top  BIGINT
);

-- The count cells an audit has withheld.
CREATE TABLE report_withheld (
    cell TEXT PRIMARY KEY
);
