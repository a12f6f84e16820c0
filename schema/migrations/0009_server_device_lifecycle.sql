-- How a device leaves service, and what the server has received from it.
-- A retired device (taken out of service) may still push what it holds
-- but pulls nothing; a revoked one (lost or stolen, revoked_at) is refused
-- everything. Revocation overrides retirement.
ALTER TABLE devices ADD COLUMN retired_at INTEGER;
-- The mutations of the device the server applied (not rejected), and the
-- records it sent again after a restore of the server or a re-enrolment.
ALTER TABLE devices ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN healed INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET applied = max(last_seq - rejected, 0);
