// Package sqlitestore is the SQLite adapter of the Brygga server: it holds
// every SQL statement the server runs on a SQLite database besides the
// sync's, which sync/replica's server store holds, and the statistics',
// which server/stats holds and this package hands its database to. A
// Store is one database file; it is safe for concurrent use, and writes
// are serialised by SQLite's one writer connection.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/replica"
)

// Config configures a Store.
type Config struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Store is the server's state in one SQLite file: the records and their
// sync (replica.ServerStore, embedded), and everything else the server keeps.
type Store struct {
	*replica.ServerStore
	db *replica.DB
}

// Open opens or creates the server database at path and migrates it.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	srv, err := replica.OpenServer(ctx, path, replica.ServerConfig{Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return &Store{ServerStore: srv, db: srv.DB()}, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.Reader().PingContext(ctx) }

// OpenConnections is how many connections the writer and the read pool
// hold open.
func (s *Store) OpenConnections() int {
	return s.db.Writer().Stats().OpenConnections + s.db.Reader().Stats().OpenConnections
}

// SizeBytes is the size of the database file and its write-ahead log.
func (s *Store) SizeBytes() int64 {
	var n int64
	for _, p := range []string{s.db.Path(), s.db.Path() + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// statsDB returns the database the statistics run on: the writer
// connection and the read pool, in SQLite's dialect.
func (s *Store) statsDB() stats.DB {
	return stats.DB{Writer: s.db.Writer(), Reader: s.db.Reader(), Dialect: stats.SQLite}
}

// RefreshStats brings the statistics' rollups up to date.
func (s *Store) RefreshStats(ctx context.Context) error { return stats.Refresh(ctx, s.statsDB()) }

// ComputeStats answers q.
func (s *Store) ComputeStats(ctx context.Context, q stats.Query) (*stats.Result, error) {
	return stats.Compute(ctx, s.statsDB(), q)
}

// Publication returns the authority's publication at now with threshold
// k, kept by p between calls.
func (s *Store) Publication(ctx context.Context, p *stats.Publisher, now time.Time, k int64) (*stats.Publication, error) {
	return p.Publication(ctx, s.statsDB(), now, k)
}

// KickPublication has p build the publication in the background after
// records changed.
func (s *Store) KickPublication(p *stats.Publisher, now func() time.Time, k int64) {
	p.Kick(s.statsDB(), now, k)
}

// OrganisationIDs returns every organisation's id, by name.
func (s *Store) OrganisationIDs(ctx context.Context) ([]uuid.UUID, error) {
	return queryIDs(ctx, s.db.Reader(), `SELECT id FROM organisations ORDER BY name, id`)
}

// UnitIDs returns the ids of the units of org, of every unit for the nil
// org, by name.
func (s *Store) UnitIDs(ctx context.Context, org uuid.UUID) ([]uuid.UUID, error) {
	if org == uuid.Nil {
		return queryIDs(ctx, s.db.Reader(), `SELECT id FROM units ORDER BY name, id`)
	}
	return queryIDs(ctx, s.db.Reader(), `SELECT id FROM units WHERE org_id = ? ORDER BY name, id`, org.String())
}

// ReferralIDs returns the ids of the newest limit live referrals sent by
// unit, or, with to set, sent to it, newest first.
func (s *Store) ReferralIDs(ctx context.Context, unit uuid.UUID, to bool, limit int) ([]uuid.UUID, error) {
	column := "unit_id"
	if to {
		column = "to_unit_id"
	}
	return queryIDs(ctx, s.db.Reader(), `SELECT id FROM referrals WHERE `+column+` = ? AND voided = 0 ORDER BY occurred_at DESC, id LIMIT ?`, unit.String(), limit)
}

// RegionCodes returns the county codes of the active organisations, each
// once, in order.
func (s *Store) RegionCodes(ctx context.Context) ([]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT DISTINCT region_code FROM organisations WHERE active = 1 ORDER BY region_code`)
	if err != nil {
		return nil, fmt.Errorf("region codes: %w", err)
	}
	defer rows.Close()
	var codes []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("region codes: %w", err)
		}
		codes = append(codes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("region codes: %w", err)
	}
	return codes, nil
}

func queryIDs(ctx context.Context, db *sql.DB, q string, args ...any) ([]uuid.UUID, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Setting returns the server setting named key; account.ErrNotFound if it
// is not set.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %s: %w", key, account.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// PutSetting sets the server setting named key to value.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}

// InitSetting sets the setting named key to value unless it is set, and
// returns the value it has.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, error) {
	tx, err := s.db.Writer().BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	var v string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, tx.Commit()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id.String()
}
