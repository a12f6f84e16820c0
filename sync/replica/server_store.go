package replica

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// ServerStore is the server's store in a SQLite database every device
// syncs with: ServerSync on the SQLite engine, and the devices' state. It
// is safe for concurrent use; writes are serialised.
type ServerStore struct {
	*ServerSync
	db *DB
}

// OpenServer opens or creates the server database at path.
func OpenServer(ctx context.Context, path string, cfg ServerConfig) (*ServerStore, error) {
	db, err := OpenDB(ctx, path, schema.ServerDB)
	if err != nil {
		return nil, err
	}
	page, err := db.read.PrepareContext(ctx, pageQuery())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open server store: %w", err)
	}
	ss, err := NewServerSync(ctx, &sqliteServer{db: db, page: page}, cfg)
	if err != nil {
		page.Close()
		db.Close()
		return nil, err
	}
	return &ServerStore{ServerSync: ss, db: db}, nil
}

// DB returns the underlying database.
func (s *ServerStore) DB() *DB { return s.db }

// RegisterDevice enrols a device for unitID, at the current time. Enrolling
// an enrolled device again is an error.
func (s *ServerStore) RegisterDevice(ctx context.Context, id, unitID uuid.UUID) (*EnrolledDevice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC().Truncate(time.Millisecond)
	if _, err := s.db.write.ExecContext(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES (?, ?, ?)`,
		id.String(), unitID.String(), now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("register device %s: %w", id, err)
	}
	return &EnrolledDevice{ID: id, UnitID: unitID, EnrolledAt: now}, nil
}

// EnrolDevice runs decide in a write transaction and registers the device
// it names for its unit in the same transaction, so that what decide
// writes (an enrolment code's use, the device's key) and the registration
// commit together or not at all. decide returns nil ids to register no
// device (its own writes still commit), and a nil EnrolledDevice comes back;
// an error from decide rolls everything back and is returned as it is.
func (s *ServerStore) EnrolDevice(ctx context.Context, decide func(ctx context.Context, tx *sql.Tx) (id, unitID uuid.UUID, err error)) (*EnrolledDevice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("enrol device: %w", err)
	}
	defer tx.Rollback()
	id, unitID, err := decide(ctx, tx)
	if err != nil {
		return nil, err
	}
	var e *EnrolledDevice
	if id != uuid.Nil {
		now := s.now().UTC().Truncate(time.Millisecond)
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES (?, ?, ?)`,
			id.String(), unitID.String(), now.UnixMilli()); err != nil {
			return nil, fmt.Errorf("register device %s: %w", id, err)
		}
		e = &EnrolledDevice{ID: id, UnitID: unitID, EnrolledAt: now}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enrol device: %w", err)
	}
	return e, nil
}

// RevokeDevice revokes a device: it can neither push nor pull again.
func (s *ServerStore) RevokeDevice(ctx context.Context, id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.db.write.ExecContext(ctx, `UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		s.now().UnixMilli(), id.String())
	if err != nil {
		return fmt.Errorf("revoke device %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke device %s: %w", id, ErrUnknownDevice)
	}
	return nil
}

// LookupDevice returns the device with id; ErrUnknownDevice if there is none.
func (s *ServerStore) LookupDevice(ctx context.Context, id uuid.UUID) (*EnrolledDevice, error) {
	return lookupDevice(ctx, s.db.read, id)
}

// Devices returns every device, most recently enrolled first.
func (s *ServerStore) Devices(ctx context.Context) ([]*EnrolledDevice, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY enrolled_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	defer rows.Close()
	var out []*EnrolledDevice
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

const deviceColumns = `id, unit_id, enrolled_at, revoked_at, last_seq, last_push_at, last_pull_at, COALESCE(protocol, 0), rejected, retired_at, applied, healed, echo_after,
	echo_span_from, echo_span_to, echo_span_first, echo_span_last`

type scanner interface{ Scan(...any) error }

func scanDevice(row scanner) (*EnrolledDevice, error) {
	var id, unit string
	var enrolled int64
	var revoked, push, pull, retired sql.NullInt64
	d := &EnrolledDevice{}
	if err := row.Scan(&id, &unit, &enrolled, &revoked, &d.LastSeq, &push, &pull, &d.Protocol, &d.Rejected, &retired, &d.Applied, &d.Healed, &d.EchoAfter,
		&d.EchoSpan.From, &d.EchoSpan.To, &d.EchoSpan.First, &d.EchoSpan.Last); err != nil {
		return nil, err
	}
	d.ID, _ = uuid.Parse(id)
	d.UnitID, _ = uuid.Parse(unit)
	d.EnrolledAt = time.UnixMilli(enrolled).UTC()
	ms := func(n sql.NullInt64) time.Time {
		if !n.Valid {
			return time.Time{}
		}
		return time.UnixMilli(n.Int64).UTC()
	}
	d.RevokedAt, d.LastPushAt, d.LastPullAt, d.RetiredAt = ms(revoked), ms(push), ms(pull), ms(retired)
	return d, nil
}

func lookupDevice(ctx context.Context, q queryer, id uuid.UUID) (*EnrolledDevice, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ?`, id.String()))
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("device %s: %w", id, ErrUnknownDevice)
	}
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	return d, nil
}

// NotePull records that a device pulled, for managers to see when each
// device last synced.
func (s *ServerStore) NotePull(ctx context.Context, deviceID uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.db.write.ExecContext(ctx, `UPDATE devices SET last_pull_at = ? WHERE id = ?`, s.now().UnixMilli(), deviceID.String())
	return err
}
