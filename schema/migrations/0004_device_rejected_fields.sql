-- The fields a rejected mutation wrote, as it sent them (codes, counts,
-- flags, times and ids only: records hold nothing else), so that a worker
-- can see what was refused and record it again, corrected.
ALTER TABLE rejections ADD COLUMN fields TEXT;
