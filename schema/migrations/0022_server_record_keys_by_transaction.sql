-- Record keys drawn once a write transaction, not by a trigger a row.
--
-- The triggers of 0010, 0018 and 0021 drew a record's key as each row was
-- inserted, and a contact's client code's as each contact was: a trigger
-- program a row cost a push 40 % of its insert on the server's one writer
-- (measured in the sqlite3 shell: 100k contacts in 1000-row transactions,
-- 4.5 µs a row of CPU with the triggers, 2.7 µs without). The server's
-- write transaction now draws the keys of the records it wrote just
-- before it commits, a statement a kind and unit over the (unit_id, seq)
-- index and one for the client codes (sync/replica/server_sqlite.go),
-- with the same upsert: a key drawn before, by the triggers or by an
-- earlier transaction, stays as it is. Every record stored until now has
-- its key, drawn by the triggers; nothing is drawn again here.
DROP TRIGGER record_keys_contacts;
DROP TRIGGER client_keys_contacts_insert;
DROP TRIGGER client_keys_contacts;
DROP TRIGGER record_keys_syringe_exchanges;
DROP TRIGGER record_keys_naloxone_handouts;
DROP TRIGGER record_keys_reversals;
DROP TRIGGER record_keys_referrals;
DROP TRIGGER record_keys_infection_tests;
DROP TRIGGER record_keys_vaccinations;
DROP TRIGGER record_keys_deaths;
