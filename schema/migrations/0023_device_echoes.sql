-- A device's own writes, answered, without a write to their rows.
--
-- A field record's seq on a device is the change number of the server's
-- state the row holds: its own pushes' answers give it (wire.Result.Change)
-- and pulls compare it. Giving it row by row cost a push's answer an
-- UPDATE of every record pushed, a tenth of the CPU time of a device's
-- sync of records it made. Instead a row names the latest
-- of the device's own writes on it (echo, its mutation number; 0 for
-- none), an answer notes the change number of each mutation it gives one
-- (echoes, a short row each, appended in order), and the row's change
-- number is the greater of seq and its echo's, wherever it is read.
ALTER TABLE clients ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE syringe_exchanges ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE naloxone_handouts ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reversals ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE referrals ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE infection_tests ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vaccinations ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deaths ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;

CREATE TABLE echoes (
    mutation INTEGER PRIMARY KEY, -- the device's mutation number
    change   INTEGER NOT NULL     -- the change number its answer gave
);

-- A queued write that a later write of the same record follows: the row
-- names the later one, so the earlier one's answer gives its change number
-- to the row's seq itself, as before.
ALTER TABLE outbox ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_superseded ON outbox (seq) WHERE superseded = 1;

-- Writes queued before this migration: each row names its latest, and the
-- ones before it are superseded.
UPDATE clients SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'clients' AND outbox.id = clients.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'clients');
UPDATE contacts SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'contacts' AND outbox.id = contacts.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'contacts');
UPDATE syringe_exchanges SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'syringe_exchanges' AND outbox.id = syringe_exchanges.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'syringe_exchanges');
UPDATE naloxone_handouts SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'naloxone_handouts' AND outbox.id = naloxone_handouts.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'naloxone_handouts');
UPDATE reversals SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'reversals' AND outbox.id = reversals.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'reversals');
UPDATE referrals SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'referrals' AND outbox.id = referrals.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'referrals');
UPDATE infection_tests SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'infection_tests' AND outbox.id = infection_tests.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'infection_tests');
UPDATE vaccinations SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'vaccinations' AND outbox.id = vaccinations.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'vaccinations');
UPDATE deaths SET echo = (SELECT max(seq) FROM outbox WHERE outbox.kind = 'deaths' AND outbox.id = deaths.id)
    WHERE id IN (SELECT id FROM outbox WHERE kind = 'deaths');
UPDATE outbox SET superseded = 1
    WHERE seq < (SELECT max(later.seq) FROM outbox AS later WHERE later.kind = outbox.kind AND later.id = outbox.id);
