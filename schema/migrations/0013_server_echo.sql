-- Echoes: a pull does not send a device back the state of a record that
-- its own push made, which it already holds.
--
-- echo is, for a record whose state is exactly what a push of its own
-- device (device_id) made and that device holds (a create, or its change of
-- a state it made itself, applied at the device's version), the number of
-- that mutation on the device; 0 for any other state: merged with another
-- device's write, re-stamped, written on the server or sent again after a
-- restore. A pull by that device skips the record while its echo is at
-- most the highest mutation number the device says it has had answered.
ALTER TABLE clients ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE syringe_exchanges ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE naloxone_handouts ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reversals ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE referrals ADD COLUMN echo INTEGER NOT NULL DEFAULT 0;
-- A device restored from a copy of its replica lacks what it pushed after
-- the copy; the server learns so when the device reuses a number
-- (seq_reused). Echoes numbered at or below echo_after are then sent to it
-- like any other change.
ALTER TABLE devices ADD COLUMN echo_after INTEGER NOT NULL DEFAULT 0;
