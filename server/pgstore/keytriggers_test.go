package pgstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// TestKeyTriggersByStatement: a database whose records were keyed a row
// at a time (the triggers of migration 0006) gets the triggers that key
// what a statement inserted, at once, when a server opens it, and keeps
// no row trigger on inserts beside them; a change of a client code is
// still keyed a row at a time.
func TestKeyTriggersByStatement(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := pgstore.Open(ctx, url, pgstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// As 0006 left a database: row triggers, no statement ones.
	for _, q := range []string{
		`DROP TRIGGER contacts_record_keys ON contacts`,
		`DROP TRIGGER contacts_client_keys ON contacts`,
		`DROP TRIGGER contacts_client_key_changed ON contacts`,
		`CREATE TRIGGER contacts_record_key AFTER INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION stats_record_key()`,
		`CREATE TRIGGER contacts_client_key AFTER INSERT OR UPDATE OF client_code ON contacts FOR EACH ROW EXECUTE FUNCTION stats_client_key()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if st, err = pgstore.Open(ctx, url, pgstore.Config{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	rows, err := conn.Query(ctx, `SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = 'contacts'::regclass AND NOT t.tgisinternal ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"contacts_client_key_changed", "contacts_client_keys", "contacts_record_keys"}
	if !equal(names, want) {
		t.Errorf("the contacts' triggers are %q, want %q", names, want)
	}
}
