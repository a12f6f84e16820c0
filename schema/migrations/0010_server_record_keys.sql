-- Record keys for the cell-key perturbation of the authority's reports
-- (docs/REPORTS.md). Every field record the reports count gets a permanent
-- random key, an integer from 0 to 2^32-1, when the server first stores it;
-- every client code gets one when the first contact with it is stored. A
-- cell's key is the sum of its records' keys modulo 2^32. The keys are
-- never published, never sent to devices and never changed.

CREATE TABLE record_keys (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    key  INTEGER NOT NULL CHECK (key >= 0 AND key < 4294967296),
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

CREATE TABLE client_keys (
    client_code TEXT PRIMARY KEY,
    key         INTEGER NOT NULL CHECK (key >= 0 AND key < 4294967296)
) WITHOUT ROWID;

-- The triggers look before they insert: the conflict policy of the
-- statement that fires a trigger overrides the trigger's own OR IGNORE.
-- SQLite's random() draws from its own generator, seeded from the
-- operating system's randomness; its low 32 bits are the key.
CREATE TRIGGER record_keys_contacts AFTER INSERT ON contacts BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'contacts', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'contacts' AND id = NEW.id);
    INSERT OR IGNORE INTO client_keys (client_code, key)
        SELECT NEW.client_code, random() & 4294967295 WHERE NEW.client_code IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM client_keys WHERE client_code = NEW.client_code);
END;
CREATE TRIGGER client_keys_contacts AFTER UPDATE OF client_code ON contacts WHEN NEW.client_code IS NOT NULL BEGIN
    INSERT OR IGNORE INTO client_keys (client_code, key)
        SELECT NEW.client_code, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM client_keys WHERE client_code = NEW.client_code);
END;
CREATE TRIGGER record_keys_syringe_exchanges AFTER INSERT ON syringe_exchanges BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'syringe_exchanges', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'syringe_exchanges' AND id = NEW.id);
END;
CREATE TRIGGER record_keys_naloxone_handouts AFTER INSERT ON naloxone_handouts BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'naloxone_handouts', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'naloxone_handouts' AND id = NEW.id);
END;
CREATE TRIGGER record_keys_reversals AFTER INSERT ON reversals BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'reversals', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'reversals' AND id = NEW.id);
END;
CREATE TRIGGER record_keys_referrals AFTER INSERT ON referrals BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'referrals', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'referrals' AND id = NEW.id);
END;

-- The records stored before the keys were.
INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'contacts', id, random() & 4294967295 FROM contacts;
INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'syringe_exchanges', id, random() & 4294967295 FROM syringe_exchanges;
INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'naloxone_handouts', id, random() & 4294967295 FROM naloxone_handouts;
INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'reversals', id, random() & 4294967295 FROM reversals;
INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'referrals', id, random() & 4294967295 FROM referrals;
INSERT OR IGNORE INTO client_keys (client_code, key)
    SELECT DISTINCT client_code, random() & 4294967295 FROM contacts WHERE client_code IS NOT NULL;

-- The value of every cell of a period when the period was first published
-- final, so that a later change shows as revised and a cell once seen is
-- never withheld afterwards. value is NULL for a withheld cell. cell is
-- the cell's address: period key, breakdown, group, indicator.
CREATE TABLE report_finals (
    cell  TEXT PRIMARY KEY,
    value INTEGER
) WITHOUT ROWID;
