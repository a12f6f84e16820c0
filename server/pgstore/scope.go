package pgstore

import (
	"cmp"
	"context"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// ScopeRows returns every row in unit's scope, ordered by seq, for checks
// and tests, as replica.ServerStore.ScopeRows does on SQLite: the unit's
// field records, the referrals to it, and the reference data, in one
// snapshot.
func (s *Store) ScopeRows(ctx context.Context, unit uuid.UUID) ([]*replica.Row, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	var all []*replica.Row
	add := func(k schema.Kind, where string, args ...any) error {
		rows, err := loadRows(ctx, tx, k, where, args...)
		all = append(all, rows...)
		return err
	}
	for _, k := range schema.ReferenceKinds {
		if err := add(k, ``); err != nil {
			return nil, err
		}
	}
	for _, k := range schema.FieldKinds {
		if err := add(k, `WHERE unit_id = $1`, unit); err != nil {
			return nil, err
		}
	}
	if err := add(schema.KindReferral, `WHERE to_unit_id = $1`, unit); err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *replica.Row) int { return cmp.Compare(a.Seq, b.Seq) })
	return all, nil
}
