// Package pgstore is the PostgreSQL adapter of the Brygga server, on
// github.com/jackc/pgx/v5: it holds every SQL statement the server runs on
// PostgreSQL besides the statistics', which server/stats holds and this
// package hands a *sql.DB on its pool to (stats.go), and the numbered
// migrations of its schema (migrations/). A
// Store is a pool of connections to one database; it is safe for
// concurrent use, and several server processes may share the database:
// every method is one transaction, and what must be counted across them
// (rate limits, assertions seen) is counted in the database.
package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brygga/brygga/sync/replica"
)

//go:embed migrations/*.sql
var migrations embed.FS

// IsURL reports whether db names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Config configures a Store.
type Config struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far ahead of the server's clock a device's stamp may
	// be (replica.ServerConfig.MaxSkew); 0 means the default.
	MaxSkew time.Duration
}

// Store is the server's state in one PostgreSQL database: the records and
// their sync (replica.ServerSync on the store's SyncEngine, embedded), and
// everything else the server keeps.
type Store struct {
	*replica.ServerSync
	pool *pgxpool.Pool
	now  func() time.Time
	// sqlDB is the pool as a *sql.DB, for the statistics (stats.go),
	// opened once when first used.
	statsOnce sync.Once
	sqlDB     *sql.DB
}

// Open connects to the database at url, migrates it and opens its sync.
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ServerSync, err = replica.NewServerSync(ctx, s.SyncEngine(), replica.ServerConfig{Now: s.now, MaxSkew: cfg.MaxSkew}); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// ErrBackup is Backup's answer: a PostgreSQL database is copied with
// PostgreSQL's own tools.
var ErrBackup = errors.New("bryggad backup and restore copy a SQLite database; back PostgreSQL up and restore it with its own tools " +
	"(a standby, WAL archiving and pg_basebackup, or pg_dump): see docs/deployment.md")

// Backup refuses with ErrBackup. A database put back by PostgreSQL's own
// tools (a point-in-time recovery, a standby promoted) is noticed by its
// new timeline (see lineage.go), and the devices send again what it lacks.
func (s *Store) Backup(context.Context, string) (uuid.UUID, error) { return uuid.Nil, ErrBackup }

// Migrate brings the schema of the database at url up to date, and
// returns the numbers of the migrations it applied.
func Migrate(ctx context.Context, url string) ([]int, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	applied := []int{}
	err = migrateFn(ctx, pool, func(n int) { applied = append(applied, n) })
	return applied, err
}

// Close closes the pool.
func (s *Store) Close() error {
	err := s.closeStats()
	s.pool.Close()
	return err
}

// migrationLock is the advisory lock that serialises migrations of one
// database: servers that start together migrate one after another.
const migrationLock = 0x62727967 // "bryg"

func migrate(ctx context.Context, pool *pgxpool.Pool) error { return migrateFn(ctx, pool, nil) }

// migrateFn applies, in order, each migration the database lacks, each in
// a transaction of its own that records it.
func migrateFn(ctx context.Context, pool *pgxpool.Pool, applied func(int)) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	type migration struct {
		n    int
		name string
	}
	var ms []migration
	for _, p := range names {
		base := strings.TrimPrefix(p, "migrations/")
		n, err := strconv.Atoi(base[:4])
		if err != nil {
			return fmt.Errorf("migration %s: not numbered", base)
		}
		ms = append(ms, migration{n, base})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].n < ms[j].n })
	// Under the lock: two servers creating the table at once would
	// otherwise race in the catalogue (a unique violation, or the
	// table's type already existing).
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.n).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			body, err := migrations.ReadFile("migrations/" + m.name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.n, m.name); err != nil {
				return err
			}
			if applied != nil {
				applied(m.n)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		return ensureRecordTables(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// OpenConnections is how many connections the pool holds open.
func (s *Store) OpenConnections() int { return int(s.pool.Stat().TotalConns()) }

// SizeBytes is the size of the database, as pg_database_size gives it;
// -1 if it cannot be read.
func (s *Store) SizeBytes() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// ms is t as the store keeps times: to the millisecond, as the SQLite
// store does.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
