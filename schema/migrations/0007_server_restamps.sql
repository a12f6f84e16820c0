-- The versions the server applied mutations at when it re-stamped them (the
-- device's clock was out of bounds), by mutation number, so that a retry
-- is told the same as the first answer: the device then pulls the records
-- again instead of keeping its own versions of them.
ALTER TABLE device_pushes ADD COLUMN restamps TEXT;
