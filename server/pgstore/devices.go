package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/sync/replica"
)

const deviceColumns = `id, unit_id, enrolled_at, revoked_at, last_seq, last_push_at, last_pull_at, COALESCE(protocol, 0), rejected, retired_at, applied, healed, echo_after`

func scanDevice(row pgx.Row) (*replica.EnrolledDevice, error) {
	d := &replica.EnrolledDevice{}
	var revoked, push, pull, retired *time.Time
	if err := row.Scan(&d.ID, &d.UnitID, &d.EnrolledAt, &revoked, &d.LastSeq, &push, &pull, &d.Protocol, &d.Rejected, &retired,
		&d.Applied, &d.Healed, &d.EchoAfter); err != nil {
		return nil, err
	}
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return t.UTC()
	}
	d.EnrolledAt = d.EnrolledAt.UTC()
	d.RevokedAt, d.LastPushAt, d.LastPullAt, d.RetiredAt = at(revoked), at(push), at(pull), at(retired)
	return d, nil
}

func lookupDevice(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id uuid.UUID, lock string) (*replica.EnrolledDevice, error) {
	d, err := scanDevice(q.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("device %s: %w", id, replica.ErrUnknownDevice)
	}
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	return d, nil
}

// LookupDevice returns the device id; replica.ErrUnknownDevice if there is
// none.
func (s *Store) LookupDevice(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error) {
	return lookupDevice(ctx, s.pool, id, "")
}

// Devices returns every device, most recently enrolled first.
func (s *Store) Devices(ctx context.Context) ([]*replica.EnrolledDevice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY enrolled_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*replica.EnrolledDevice, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return out, nil
}

// RevokeDevice revokes a device: it may neither push nor pull again.
// replica.ErrUnknownDevice for a device unknown or revoked before.
func (s *Store) RevokeDevice(ctx context.Context, id uuid.UUID) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoke device %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke device %s: %w", id, replica.ErrUnknownDevice)
	}
	return nil
}

// RetireDevice retires a device: it may push, not pull. Retiring a retired
// device changes nothing. Errors: replica.ErrUnknownDevice,
// replica.ErrDeviceRevoked. The device's row is locked while it is
// decided, so a revocation on another server waits or wins.
func (s *Store) RetireDevice(ctx context.Context, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := lookupDevice(ctx, tx, id, " FOR UPDATE")
		if err != nil {
			return fmt.Errorf("retire device: %w", err)
		}
		if !d.RevokedAt.IsZero() {
			return fmt.Errorf("retire device %s: %w", id, replica.ErrDeviceRevoked)
		}
		if d.RetiredAt.IsZero() {
			if _, err := tx.Exec(ctx, `UPDATE devices SET retired_at = $1 WHERE id = $2`, ms(s.now()), id); err != nil {
				return fmt.Errorf("retire device %s: %w", id, err)
			}
		}
		return nil
	})
}

// NotePull notes that the device pulled, now.
func (s *Store) NotePull(ctx context.Context, deviceID uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, `UPDATE devices SET last_pull_at = $1 WHERE id = $2`, ms(s.now()), deviceID); err != nil {
		return fmt.Errorf("note pull: %w", err)
	}
	return nil
}
