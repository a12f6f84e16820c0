package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/account"
)

// SigningKeys returns every signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]account.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT kid, private_key, created_at, retired_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.SigningKey, error) {
		var k account.SigningKey
		var retired *time.Time
		err := r.Scan(&k.KID, &k.Seed, &k.CreatedAt, &retired)
		k.CreatedAt = k.CreatedAt.UTC()
		if retired != nil {
			k.RetiredAt = retired.UTC()
		}
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return out, nil
}

// RotateKey retires every signing key at k.CreatedAt and adds k. Two
// servers rotating at once are serialised by the lock of the keys' table:
// one signing key remains.
func (s *Store) RotateKey(ctx context.Context, k account.SigningKey) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL`, ms(k.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3)`, k.KID, k.Seed, ms(k.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	return nil
}

// NoteAssertion records that subject presented the assertion whose jti
// hashes to jtiHash, expiring at exp, and reports whether it is the first
// time; assertions expired by now are forgotten. The insert decides: of
// two servers given the same assertion at once, one inserts it.
func (s *Store) NoteAssertion(ctx context.Context, subject string, jtiHash []byte, exp, now time.Time) (bool, error) {
	var fresh bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM device_assertions WHERE expires_at <= $1`, ms(now)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO device_assertions (device_id, jti_hash, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			subject, jtiHash, ms(exp))
		fresh = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("note assertion: %w", err)
	}
	return fresh, nil
}

// AddEnrolCode stores a new enrolment code.
func (s *Store) AddEnrolCode(ctx context.Context, c *account.EnrolCode) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO enrol_codes (code_hash, unit_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		c.Hash, c.UnitID, c.CreatedBy, ms(c.CreatedAt), ms(c.ExpiresAt)); err != nil {
		return fmt.Errorf("enrolment code: %w", err)
	}
	return nil
}

// EnrolCode returns the enrolment code whose hash is hash;
// account.ErrNotFound if there is none.
func (s *Store) EnrolCode(ctx context.Context, hash []byte) (*account.EnrolCode, error) {
	c := &account.EnrolCode{Hash: hash}
	err := s.pool.QueryRow(ctx, `SELECT unit_id, created_by, created_at, expires_at, public_key FROM enrol_codes WHERE code_hash = $1`,
		hash).Scan(&c.UnitID, &c.CreatedBy, &c.CreatedAt, &c.ExpiresAt, &c.PublicKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("enrolment code: %w", account.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("enrolment code: %w", err)
	}
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	return c, nil
}

// Enrol uses an enrolment code for a device key and registers the device,
// in one transaction. The code's row is locked first, so that two servers
// given the same code at once enrol one device: the second sees the code
// used.
func (s *Store) Enrol(ctx context.Context, r account.EnrolRequest) (*account.Enrolled, error) {
	var out *account.Enrolled
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var unit uuid.UUID
		var expires time.Time
		var used *time.Time
		var device *uuid.UUID
		var usedKey []byte
		err := tx.QueryRow(ctx, `SELECT unit_id, expires_at, used_at, device_id, public_key FROM enrol_codes WHERE code_hash = $1 FOR UPDATE`,
			r.CodeHash).Scan(&unit, &expires, &used, &device, &usedKey)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !expires.After(r.Now) {
			return account.ErrEnrolCode
		}
		if err != nil {
			return err
		}
		if used != nil {
			if usedKey == nil || !bytes.Equal(usedKey, r.Key) || device == nil {
				return account.ErrEnrolCode
			}
			out = &account.Enrolled{DeviceID: *device, UnitID: unit, Repeated: true}
			return nil
		}
		now := ms(r.Now)
		if _, err := tx.Exec(ctx, `UPDATE enrol_codes SET used_at = $1, device_id = $2, public_key = $3 WHERE code_hash = $4`,
			now, r.NewID, r.Key, r.CodeHash); err != nil {
			return err
		}
		// The key's uniqueness decides a race of two codes with one key.
		if _, err := tx.Exec(ctx, `INSERT INTO device_keys (device_id, public_key, audience, created_at) VALUES ($1, $2, $3, $4)`,
			r.NewID, r.Key, r.Audience, now); err != nil {
			if isUnique(err) {
				return account.ErrKeyRegistered
			}
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, r.NewID, unit, now); err != nil {
			return err
		}
		out = &account.Enrolled{DeviceID: r.NewID, UnitID: unit}
		return nil
	})
	if errors.Is(err, account.ErrEnrolCode) || errors.Is(err, account.ErrKeyRegistered) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	return out, nil
}

// DeviceKey returns the public key and token audience of the device id;
// account.ErrNotFound if it has none.
func (s *Store) DeviceKey(ctx context.Context, id uuid.UUID) ([]byte, string, error) {
	var key []byte
	var audience string
	err := s.pool.QueryRow(ctx, `SELECT public_key, audience FROM device_keys WHERE device_id = $1`, id).Scan(&key, &audience)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("device key %s: %w", id, account.ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("device key %s: %w", id, err)
	}
	return key, audience, nil
}

// SetDeviceName names the device id at now; an empty name removes it.
func (s *Store) SetDeviceName(ctx context.Context, id uuid.UUID, name string, now time.Time) error {
	var err error
	if name == "" {
		_, err = s.pool.Exec(ctx, `DELETE FROM device_names WHERE device_id = $1`, id)
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO device_names (device_id, name, named_at) VALUES ($1, $2, $3)
			ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, named_at = excluded.named_at`, id, name, ms(now))
	}
	if err != nil {
		return fmt.Errorf("name device %s: %w", id, err)
	}
	return nil
}

// DeviceNames returns the names of the devices that have one.
func (s *Store) DeviceNames(ctx context.Context) (map[uuid.UUID]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT device_id, name FROM device_names`)
	if err != nil {
		return nil, fmt.Errorf("device names: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]string{}
	for rows.Next() {
		var id uuid.UUID
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("device names: %w", err)
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("device names: %w", err)
	}
	return out, nil
}
