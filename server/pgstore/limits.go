package pgstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/account"
)

// limitHorizon is how long an attempt is kept at most: longer than any
// limit's window.
const limitHorizon = 24 * time.Hour

// limitName is what limit_attempts keeps of a name counted under l.
func limitName(l account.Limit, name string) []byte {
	h := sha256.Sum256([]byte(l.Scope + "\x00" + name))
	return h[:]
}

// Attempts returns the times of name's attempts under l within l.Window
// before now, oldest first.
func (s *Store) Attempts(ctx context.Context, l account.Limit, name string, now time.Time) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT at FROM limit_attempts WHERE name_hash = $1 AND at > $2 ORDER BY at`,
		limitName(l, name), ms(now).Add(-l.Window))
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	return out, nil
}

// Attempt counts an attempt of name under l at now, and forgets the
// attempts of every name older than a day.
func (s *Store) Attempt(ctx context.Context, l account.Limit, name string, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM limit_attempts WHERE at <= $1`, ms(now).Add(-limitHorizon)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO limit_attempts (name_hash, at) VALUES ($1, $2)`, limitName(l, name), ms(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("attempt: %w", err)
	}
	return nil
}

// ResetAttempts forgets name's attempts under l.
func (s *Store) ResetAttempts(ctx context.Context, l account.Limit, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM limit_attempts WHERE name_hash = $1`, limitName(l, name)); err != nil {
		return fmt.Errorf("reset attempts: %w", err)
	}
	return nil
}
