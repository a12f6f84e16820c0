package pgstore

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// OrganisationIDs returns every organisation's id, by name.
func (s *Store) OrganisationIDs(ctx context.Context) ([]uuid.UUID, error) {
	return s.queryIDs(ctx, "organisations", `SELECT id FROM organisations ORDER BY name, id`)
}

// UnitIDs returns the ids of the units of org, of every unit for the nil
// org, by name.
func (s *Store) UnitIDs(ctx context.Context, org uuid.UUID) ([]uuid.UUID, error) {
	if org == uuid.Nil {
		return s.queryIDs(ctx, "units", `SELECT id FROM units ORDER BY name, id`)
	}
	return s.queryIDs(ctx, "units", `SELECT id FROM units WHERE org_id = $1 ORDER BY name, id`, org)
}

// ReferralIDs returns the ids of the newest limit live referrals sent by
// unit, or, with to set, sent to it, newest first.
func (s *Store) ReferralIDs(ctx context.Context, unit uuid.UUID, to bool, limit int) ([]uuid.UUID, error) {
	column := "unit_id"
	if to {
		column = "to_unit_id"
	}
	return s.queryIDs(ctx, "referrals", `SELECT id FROM referrals WHERE `+column+` = $1 AND voided = 0
		ORDER BY occurred_at DESC, id LIMIT $2`, unit, limit)
}

// RegionCodes returns the county codes of the active organisations, each
// once, in order.
func (s *Store) RegionCodes(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT region_code FROM organisations WHERE active = 1 ORDER BY region_code`)
	if err != nil {
		return nil, fmt.Errorf("region codes: %w", err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("region codes: %w", err)
	}
	return codes, nil
}

func (s *Store) queryIDs(ctx context.Context, what, q string, args ...any) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ids, nil
}
