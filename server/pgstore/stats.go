package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/brygga/brygga/server/stats"
)

// The statistics run server/stats' own SQL, over database/sql: the store
// hands it a *sql.DB on its pool (the tables are migration 0006's, the
// records' keys given by the triggers records.go makes), with
// stats.Postgres as the dialect. Refreshes of the rollups and the
// recording of a publication are serialised across every server process
// on the database by advisory locks.

// statsDB returns the database the statistics run on: the pool, as a
// *sql.DB, for writing and reading.
func (s *Store) statsDB() stats.DB {
	s.statsOnce.Do(func() { s.sqlDB = stdlib.OpenDBFromPool(s.pool) })
	return stats.DB{Writer: s.sqlDB, Reader: s.sqlDB, Dialect: stats.Postgres}
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

// closeStats closes the *sql.DB of the statistics, if it was opened; the
// pool it is on stays open.
func (s *Store) closeStats() error {
	s.statsOnce.Do(func() {}) // none is opened after this
	if s.sqlDB == nil {
		return nil
	}
	return s.sqlDB.Close()
}
