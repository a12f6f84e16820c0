-- The record keys of the statistics (0006) are drawn once a statement,
-- over the rows it inserted (a transition table), rather than once a row:
-- a push puts its new records in by COPY, hundreds to a statement, and a
-- PL/pgSQL call a row cost more than the insert itself. The triggers are
-- made beside the record tables (records.go), which replaces the row
-- triggers of 0006 with these; a change of a contact's or death's client
-- code keys the new code with the row trigger of 0006, since a trigger
-- with a transition table cannot name the columns it watches.

-- The keys of the records a statement inserted into the trigger's table.
CREATE FUNCTION stats_record_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO record_keys (kind, id, key) SELECT %L, id, stats_random_key() FROM added ON CONFLICT DO NOTHING',
        TG_TABLE_NAME);
    RETURN NULL;
END
$$;

-- The keys of the client codes a statement inserted for the first time.
CREATE FUNCTION stats_client_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO client_keys (client_code, key)
        SELECT client_code, stats_random_key() FROM (SELECT DISTINCT client_code FROM added WHERE client_code IS NOT NULL) c
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
