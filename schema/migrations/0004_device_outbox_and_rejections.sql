-- The fields a rejected mutation wrote, as it sent them (codes, counts,
-- flags, times and ids only: records hold nothing else), so that a worker
-- can see what was refused and record it again, corrected.
ALTER TABLE rejections ADD COLUMN fields TEXT;

-- The server sequence number the record's row had when a queued write was
-- made: if a pull has changed it by the time the server answers that it
-- re-stamped the write, the row holds the write at the device's version on
-- top of the server's, and the device pulls it again.
ALTER TABLE outbox ADD COLUMN base_seq INTEGER NOT NULL DEFAULT 0;
