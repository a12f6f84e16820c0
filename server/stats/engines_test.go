package stats_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx"

	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/replica"
)

// backend is a server on one engine, as the statistics see it: its sync,
// which the dataset pushes to, and its database.
type backend struct {
	name  string
	sync  *replica.ServerSync
	db    stats.DB
	enrol func(t testing.TB, device, unit uuid.UUID)
	// url and pg are a PostgreSQL backend's database and store.
	url string
	pg  *pgstore.Store
}

// engine opens a backend of one engine.
type engine struct {
	name string
	open func(t testing.TB) *backend
}

var (
	sqliteEngine   = engine{"sqlite", openSQLite}
	postgresEngine = engine{"postgres", openPostgres}
	// engines are both; tests on PostgreSQL skip where none answers (see
	// pgtest).
	engines = []engine{sqliteEngine, postgresEngine}
)

// openSQLite opens a SQLite server database in the test's directory.
func openSQLite(t testing.TB) *backend {
	s, err := replica.OpenServer(context.Background(), filepath.Join(t.TempDir(), "s.db"), replica.ServerConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &backend{name: "sqlite", sync: s.ServerSync, db: stats.DB{Writer: s.DB().Writer(), Reader: s.DB().Reader(), Dialect: stats.SQLite},
		enrol: func(t testing.TB, device, unit uuid.UUID) {
			if _, err := s.RegisterDevice(context.Background(), device, unit); err != nil {
				t.Fatal(err)
			}
		}}
}

// openPostgres opens a PostgreSQL server database of the test's own.
func openPostgres(t testing.TB) *backend {
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := pgstore.Open(ctx, url, pgstore.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := replica.NewServerSync(ctx, st.SyncEngine(), replica.ServerConfig{Now: func() time.Time { return now }})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		s.Close()
	})
	return &backend{name: "postgres", sync: s, db: stats.DB{Writer: db, Reader: db, Dialect: stats.Postgres}, url: url, pg: st,
		enrol: func(t testing.TB, device, unit uuid.UUID) {
			if _, err := db.Exec(`INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, device, unit, now); err != nil {
				t.Fatal(err)
			}
		}}
}
