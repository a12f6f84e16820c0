-- The refresh token that replaced each one. A device whose refresh answer
-- was lost on the way presents the old token again: while its successor
-- has never been used, that is a lost answer, not a stolen token.
ALTER TABLE refresh_tokens ADD COLUMN successor BLOB;
