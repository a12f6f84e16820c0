-- The server's side of infection tests, vaccinations and deaths: what
-- 0001, 0010 and 0013 give the other field records.

-- A device pulls its unit's records by (unit, seq), as in 0001.
CREATE INDEX infection_tests_unit_seq ON infection_tests (unit_id, seq);
CREATE INDEX vaccinations_unit_seq ON vaccinations (unit_id, seq);
CREATE INDEX deaths_unit_seq ON deaths (unit_id, seq);

-- Echoes, as in 0013.
ALTER TABLE infection_tests ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vaccinations ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deaths ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;

-- Statistics count these records from the tables themselves (they are
-- few beside contacts), by when they happened; the drug-death follow-up
-- finds a client code's deaths by the code.
CREATE INDEX infection_tests_at ON infection_tests (occurred_at);
CREATE INDEX vaccinations_at ON vaccinations (occurred_at);
CREATE INDEX deaths_at ON deaths (occurred_at);
CREATE INDEX deaths_code ON deaths (client_code);

-- Record keys for the cell-key perturbation of the authority's reports,
-- as in 0010.
CREATE TRIGGER record_keys_infection_tests AFTER INSERT ON infection_tests BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'infection_tests', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'infection_tests' AND id = NEW.id);
END;
CREATE TRIGGER record_keys_vaccinations AFTER INSERT ON vaccinations BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'vaccinations', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'vaccinations' AND id = NEW.id);
END;
CREATE TRIGGER record_keys_deaths AFTER INSERT ON deaths BEGIN
    INSERT OR IGNORE INTO record_keys (kind, id, key) SELECT 'deaths', NEW.id, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM record_keys WHERE kind = 'deaths' AND id = NEW.id);
    INSERT OR IGNORE INTO client_keys (client_code, key)
        SELECT NEW.client_code, random() & 4294967295
        WHERE NOT EXISTS (SELECT 1 FROM client_keys WHERE client_code = NEW.client_code);
END;
