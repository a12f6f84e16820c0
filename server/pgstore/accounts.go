package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/account"
)

// AddUser stores u with its password hash, created at now.
// account.ErrUserExists if the username is taken.
func (s *Store) AddUser(ctx context.Context, u *account.User, passwordHash string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, password_hash, role, org_id, unit_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Username, passwordHash, string(u.Role), nullID(u.OrgID), nullID(u.UnitID), ms(now))
	if isUnique(err) {
		return fmt.Errorf("add user: %w", account.ErrUserExists)
	}
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// Users returns every account, by username.
func (s *Store) Users(ctx context.Context) ([]*account.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, username, role, org_id, unit_id FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*account.User, error) {
		var u account.User
		var org, unit *uuid.UUID
		if err := r.Scan(&u.ID, &u.Username, &u.Role, &org, &unit); err != nil {
			return nil, err
		}
		u.OrgID, u.UnitID = idOf(org), idOf(unit)
		return &u, nil
	})
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

// UserByName returns the account named username that is not disabled, and
// its password hash; account.ErrNotFound if there is none.
func (s *Store) UserByName(ctx context.Context, username string) (*account.User, string, error) {
	var u account.User
	var hash string
	var org, unit *uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT id, password_hash, role, org_id, unit_id FROM users WHERE username = $1 AND disabled_at IS NULL`,
		username).Scan(&u.ID, &hash, &u.Role, &org, &unit)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("user: %w", account.ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("user: %w", err)
	}
	u.OrgID, u.UnitID, u.Username = idOf(org), idOf(unit), username
	return &u, hash, nil
}

// AppendAudit appends e to the audit log; e.ID is given by the log.
func (s *Store) AppendAudit(ctx context.Context, e *account.AuditEntry) error {
	err := s.pool.QueryRow(ctx, `INSERT INTO audit (at, actor, action, target, outcome, rows, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		ms(e.At), e.Actor, e.Action, nullString(e.Target), e.Outcome, e.Rows, nullString(e.RequestID)).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditBefore returns up to limit entries with ids below before, newest
// first.
func (s *Store) AuditBefore(ctx context.Context, before int64, limit int) ([]account.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, COALESCE(target, ''), outcome, COALESCE(rows, 0), COALESCE(request_id, '')
		FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.AuditEntry, error) {
		var e account.AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Rows, &e.RequestID)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if out == nil {
		out = []account.AuditEntry{}
	}
	return out, nil
}

// Setting returns the server setting named key; account.ErrNotFound if it
// is not set.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("setting %s: %w", key, account.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// PutSetting sets the server setting named key to value.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}

// InitSetting sets the setting named key to value unless it is set, and
// returns the value it has. One statement: of servers that start together,
// one value wins and every server reads it.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, error) {
	var v string
	// The no-op update makes RETURNING give the row that won the race.
	err := s.pool.QueryRow(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value`, key, value).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

func idOf(id *uuid.UUID) uuid.UUID {
	if id == nil {
		return uuid.Nil
	}
	return *id
}
