-- The rollups keep the setting of a contact (where it took place: street,
-- fixed site, mobile unit, ...) beside gender and age band, so that a
-- manager's statistics can be broken down by it. The records that take
-- gender and age band from a contact take its setting too; a reversal or
-- referral without a contact has the setting 'none'.
--
-- The rollup tables get setting in their keys, which SQLite cannot alter:
-- they are made anew, empty, and the row of stats_state is deleted, so that
-- the next refresh rebuilds them from the records, old ones included.

ALTER TABLE stats_facts ADD COLUMN setting TEXT NOT NULL DEFAULT 'none';

DROP TABLE stats_cells;
CREATE TABLE stats_cells (
    grain             TEXT NOT NULL,      -- day, week, month
    bucket            INTEGER NOT NULL,
    unit_id           TEXT NOT NULL,
    gender            TEXT NOT NULL,
    age_band          TEXT NOT NULL,
    setting           TEXT NOT NULL,
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
    PRIMARY KEY (grain, bucket, unit_id, gender, age_band, setting)
) WITHOUT ROWID;

DROP TABLE stats_services;
CREATE TABLE stats_services (
    grain     TEXT NOT NULL,
    bucket    INTEGER NOT NULL,
    unit_id   TEXT NOT NULL,
    service   TEXT NOT NULL,
    gender    TEXT NOT NULL,
    age_band  TEXT NOT NULL,
    setting   TEXT NOT NULL,
    referrals INTEGER NOT NULL CHECK (referrals >= 0),
    PRIMARY KEY (grain, bucket, unit_id, service, gender, age_band, setting)
) WITHOUT ROWID;

DROP TABLE stats_clients;
CREATE TABLE stats_clients (
    grain       TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    unit_id     TEXT NOT NULL,
    client_code TEXT NOT NULL,
    gender      TEXT NOT NULL,
    age_band    TEXT NOT NULL,
    setting     TEXT NOT NULL,
    contacts    INTEGER NOT NULL CHECK (contacts >= 0),
    PRIMARY KEY (grain, bucket, unit_id, client_code, gender, age_band, setting)
) WITHOUT ROWID;

DELETE FROM stats_state;
