-- Rollups of the standard indicators, kept by server/stats and by nothing
-- else. The record tables have no indexes on occurred_at (they would slow
-- every push); the indicators are counted here instead, by day, ISO week
-- and month, in the time zone reports are cut in. A refresh brings them up
-- to date from the records whose seq is past stats_state.seq.
--
-- Days are numbered from 1970-01-01 in the zone: a bucket is its first
-- day's number (the day; the Monday of an ISO week; the first of a month).
-- Deleting the row of stats_state makes the next refresh rebuild the
-- rollups from the records.

-- How far the rollups are up to date, in which zone, with which layout of
-- their contents.
CREATE TABLE stats_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,  -- the change_seq the rollups include
    zone    TEXT NOT NULL,     -- the time zone days are cut in
    version INTEGER NOT NULL   -- the rollups' layout, see server/stats
);

-- Each field record's contribution as the rollups hold it, so that a
-- changed record's old contribution can be taken out again. Every record
-- has a row; live is 0 for one that counts nowhere (voided, or its contact
-- is). gender and age_band are the contact's for the records that take
-- them from a contact, 'not_stated' without one.
CREATE TABLE stats_facts (
    kind              TEXT NOT NULL,
    id                TEXT NOT NULL,
    contact_id        TEXT,               -- the contact the record depends on
    live              INTEGER NOT NULL,
    at                INTEGER NOT NULL,   -- occurred_at
    unit_id           TEXT NOT NULL,
    gender            TEXT NOT NULL,
    age_band          TEXT NOT NULL,
    client_code       TEXT,               -- contacts
    syringes_out      INTEGER NOT NULL DEFAULT 0,
    needles_out       INTEGER NOT NULL DEFAULT 0,
    syringes_returned INTEGER NOT NULL DEFAULT 0,
    doses             INTEGER NOT NULL DEFAULT 0,
    service           TEXT,               -- referrals
    attended          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
-- Parts of a day at the ends of a query are counted from here.
CREATE INDEX stats_facts_at ON stats_facts (at) WHERE live = 1;
-- A changed contact changes the records that take gender and age from it.
CREATE INDEX stats_facts_contact ON stats_facts (contact_id) WHERE contact_id IS NOT NULL;

-- The additive indicators per bucket, unit, gender and age band, with the
-- number of records of each kind behind them. A row exists while some
-- record counts in it.
CREATE TABLE stats_cells (
    grain             TEXT NOT NULL,      -- day, week, month
    bucket            INTEGER NOT NULL,
    unit_id           TEXT NOT NULL,
    gender            TEXT NOT NULL,
    age_band          TEXT NOT NULL,
    contacts          INTEGER NOT NULL CHECK (contacts >= 0),
    exchanges         INTEGER NOT NULL CHECK (exchanges >= 0),
    syringes_out      INTEGER NOT NULL CHECK (syringes_out >= 0),
    needles_out       INTEGER NOT NULL CHECK (needles_out >= 0),
    syringes_returned INTEGER NOT NULL CHECK (syringes_returned >= 0),
    handouts          INTEGER NOT NULL CHECK (handouts >= 0),
    naloxone_doses    INTEGER NOT NULL CHECK (naloxone_doses >= 0),
    reversals         INTEGER NOT NULL CHECK (reversals >= 0),
    referrals         INTEGER NOT NULL CHECK (referrals >= 0),
    attended          INTEGER NOT NULL CHECK (attended >= 0),
    PRIMARY KEY (grain, bucket, unit_id, gender, age_band)
) WITHOUT ROWID;

-- Referrals by service category, keyed like stats_cells and by service,
-- the service before gender and age band so that a query of a region or
-- by unit reads them grouped in key order.
CREATE TABLE stats_services (
    grain     TEXT NOT NULL,
    bucket    INTEGER NOT NULL,
    unit_id   TEXT NOT NULL,
    service   TEXT NOT NULL,
    gender    TEXT NOT NULL,
    age_band  TEXT NOT NULL,
    referrals INTEGER NOT NULL CHECK (referrals >= 0),
    PRIMARY KEY (grain, bucket, unit_id, service, gender, age_band)
) WITHOUT ROWID;

-- The client codes met, keyed like stats_services, with the number of
-- contacts behind each: unique clients are the distinct codes over the
-- buckets a figure spans, which do not add up.
CREATE TABLE stats_clients (
    grain       TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    unit_id     TEXT NOT NULL,
    client_code TEXT NOT NULL,
    gender      TEXT NOT NULL,
    age_band    TEXT NOT NULL,
    contacts    INTEGER NOT NULL CHECK (contacts >= 0),
    PRIMARY KEY (grain, bucket, unit_id, client_code, gender, age_band)
) WITHOUT ROWID;
