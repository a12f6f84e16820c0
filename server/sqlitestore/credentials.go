package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server/account"
)

// SigningKeys returns every signing key, oldest first. They are read from
// the read pool, never the writer, so that signing inside a write
// transaction cannot wait on it.
func (s *Store) SigningKeys(ctx context.Context) ([]account.SigningKey, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT kid, private_key, created_at, retired_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	defer rows.Close()
	var out []account.SigningKey
	for rows.Next() {
		var k account.SigningKey
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.KID, &k.Seed, &created, &retired); err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		k.CreatedAt = time.UnixMilli(created).UTC()
		if retired.Valid {
			k.RetiredAt = time.UnixMilli(retired.Int64).UTC()
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RotateKey retires every signing key at k.CreatedAt and adds k.
func (s *Store) RotateKey(ctx context.Context, k account.SigningKey) error {
	tx, err := s.db.Writer().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`, k.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, private_key, created_at) VALUES (?, ?, ?)`,
		k.KID, k.Seed, k.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	return tx.Commit()
}

// NoteAssertion records that subject presented the assertion whose jti
// hashes to jtiHash, expiring at exp, and reports whether it is the first
// time; assertions expired by now are forgotten. The check and the record
// are one statement.
func (s *Store) NoteAssertion(ctx context.Context, subject string, jtiHash []byte, exp, now time.Time) (bool, error) {
	tx, err := s.db.Writer().BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("note assertion: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_assertions WHERE expires_at <= ?`, now.UnixMilli()); err != nil {
		return false, fmt.Errorf("note assertion: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO device_assertions (device_id, jti_hash, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		subject, jtiHash, exp.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("note assertion: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("note assertion: %w", err)
	}
	return n == 1, tx.Commit()
}

// AddEnrolCode stores a new enrolment code.
func (s *Store) AddEnrolCode(ctx context.Context, c *account.EnrolCode) error {
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO enrol_codes (code_hash, unit_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		c.Hash, c.UnitID.String(), c.CreatedBy, c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli()); err != nil {
		return fmt.Errorf("enrolment code: %w", err)
	}
	return nil
}

// EnrolCode returns the enrolment code whose hash is hash; account.ErrNotFound
// if there is none. It reads from the read pool: an anonymous caller trying
// codes does not take the writer.
func (s *Store) EnrolCode(ctx context.Context, hash []byte) (*account.EnrolCode, error) {
	var unit, by string
	var created, expires int64
	c := &account.EnrolCode{Hash: hash}
	err := s.db.Reader().QueryRowContext(ctx, `SELECT unit_id, created_by, created_at, expires_at, public_key FROM enrol_codes WHERE code_hash = ?`,
		hash).Scan(&unit, &by, &created, &expires, &c.PublicKey)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("enrolment code: %w", account.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("enrolment code: %w", err)
	}
	c.UnitID, _ = uuid.Parse(unit)
	c.CreatedBy = by
	c.CreatedAt, c.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	return c, nil
}

// Enrol uses an enrolment code for a device key and registers the device,
// in one write transaction of the sync store (replica.ServerStore.EnrolDevice).
func (s *Store) Enrol(ctx context.Context, r account.EnrolRequest) (*account.Enrolled, error) {
	var out account.Enrolled
	_, err := s.EnrolDevice(ctx, func(ctx context.Context, tx *sql.Tx) (uuid.UUID, uuid.UUID, error) {
		e, err := useEnrolCode(ctx, tx, r)
		if err != nil {
			return uuid.Nil, uuid.Nil, err
		}
		out = *e
		if e.Repeated {
			return uuid.Nil, uuid.Nil, nil // registered before
		}
		return e.DeviceID, e.UnitID, nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// useEnrolCode uses the code of r for r.Key in tx: a new device with
// r.NewID, or for the same code and key again the device it enrolled then.
func useEnrolCode(ctx context.Context, tx *sql.Tx, r account.EnrolRequest) (*account.Enrolled, error) {
	var unit string
	var expires int64
	var used sql.NullInt64
	var device sql.NullString
	var usedKey []byte
	err := tx.QueryRowContext(ctx, `SELECT unit_id, expires_at, used_at, device_id, public_key FROM enrol_codes WHERE code_hash = ?`,
		r.CodeHash).Scan(&unit, &expires, &used, &device, &usedKey)
	if errors.Is(err, sql.ErrNoRows) || err == nil && expires <= r.Now.UnixMilli() {
		return nil, account.ErrEnrolCode
	}
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	unitID, err := uuid.Parse(unit)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	if used.Valid {
		if usedKey == nil || !bytes.Equal(usedKey, r.Key) || !device.Valid {
			return nil, account.ErrEnrolCode
		}
		id, err := uuid.Parse(device.String)
		if err != nil {
			return nil, fmt.Errorf("enrol: %w", err)
		}
		return &account.Enrolled{DeviceID: id, UnitID: unitID, Repeated: true}, nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM device_keys WHERE public_key = ?`, r.Key).Scan(&n); err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	if n > 0 {
		return nil, account.ErrKeyRegistered
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enrol_codes SET used_at = ?, device_id = ?, public_key = ? WHERE code_hash = ?`,
		r.Now.UnixMilli(), r.NewID.String(), r.Key, r.CodeHash); err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_keys (device_id, public_key, audience, created_at) VALUES (?, ?, ?, ?)`,
		r.NewID.String(), r.Key, r.Audience, r.Now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	return &account.Enrolled{DeviceID: r.NewID, UnitID: unitID}, nil
}

// DeviceKey returns the public key and token audience of the device id;
// account.ErrNotFound if it has none.
func (s *Store) DeviceKey(ctx context.Context, id uuid.UUID) ([]byte, string, error) {
	var key []byte
	var audience string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT public_key, audience FROM device_keys WHERE device_id = ?`, id.String()).Scan(&key, &audience)
	if errors.Is(err, sql.ErrNoRows) {
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
		_, err = s.db.Writer().ExecContext(ctx, `DELETE FROM device_names WHERE device_id = ?`, id.String())
	} else {
		_, err = s.db.Writer().ExecContext(ctx, `INSERT INTO device_names (device_id, name, named_at) VALUES (?, ?, ?)
			ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, named_at = excluded.named_at`, id.String(), name, now.UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("name device %s: %w", id, err)
	}
	return nil
}

// DeviceNames returns the names of the devices that have one.
func (s *Store) DeviceNames(ctx context.Context) (map[uuid.UUID]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT device_id, name FROM device_names`)
	if err != nil {
		return nil, fmt.Errorf("device names: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("device names: %w", err)
		}
		if u, err := uuid.Parse(id); err == nil {
			out[u] = name
		}
	}
	return out, rows.Err()
}
