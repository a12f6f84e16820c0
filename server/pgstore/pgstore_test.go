package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// TestPostgresAnswers says whether the PostgreSQL tests run: it passes,
// naming the server, where one answers, and is skipped, saying why,
// where none does (make test runs it verbosely).
func TestPostgresAnswers(t *testing.T) {
	url := pgtest.URL(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(context.Background(), `SHOW server_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s answers at %s: the PostgreSQL tests run", version, pgtest.Redacted(pgtest.Server()))
}

// TestServersStartTogether: servers that start at once on a new database
// migrate it once, each migration applied by one of them.
func TestServersStartTogether(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stores := make([]*pgstore.Store, 3)
	errs := make([]error, 3)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = pgstore.Open(ctx, url, pgstore.Config{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("server %d: %v", i+1, err)
			continue
		}
		stores[i].Close()
	}
	applied, err := pgstore.Migrate(ctx, url)
	if err != nil || len(applied) != 0 {
		t.Errorf("migrate after the servers started: applied %v, %v; want nothing", applied, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != distinct || n == 0 {
		t.Errorf("%d migrations recorded, %d distinct", n, distinct)
	}
}
