package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"

	"github.com/brygga/brygga/server/account"
)

// AddUser stores u with its password hash, created at now.
// account.ErrUserExists if the username is taken.
func (s *Store) AddUser(ctx context.Context, u *account.User, passwordHash string, now time.Time) error {
	_, err := s.db.Writer().ExecContext(ctx, `INSERT INTO users (id, username, password_hash, role, org_id, unit_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID.String(), u.Username, passwordHash, string(u.Role), nullID(u.OrgID), nullID(u.UnitID), now.UnixMilli())
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
		return fmt.Errorf("add user: %w", account.ErrUserExists)
	}
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// Users returns every account, by username.
func (s *Store) Users(ctx context.Context) ([]*account.User, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, username, role, COALESCE(org_id, ''), COALESCE(unit_id, '') FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var out []*account.User
	for rows.Next() {
		var u account.User
		var id, org, unit string
		if err := rows.Scan(&id, &u.Username, &u.Role, &org, &unit); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		u.ID, _ = uuid.Parse(id)
		u.OrgID, _ = uuid.Parse(org)
		u.UnitID, _ = uuid.Parse(unit)
		out = append(out, &u)
	}
	return out, rows.Err()
}

// UserByName returns the account named username that is not disabled, and
// its password hash; account.ErrNotFound if there is none.
func (s *Store) UserByName(ctx context.Context, username string) (*account.User, string, error) {
	var u account.User
	var id, hash, org, unit string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT id, password_hash, role, COALESCE(org_id, ''), COALESCE(unit_id, '')
		FROM users WHERE username = ? AND disabled_at IS NULL`, username).Scan(&id, &hash, &u.Role, &org, &unit)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("user: %w", account.ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("user: %w", err)
	}
	u.ID, _ = uuid.Parse(id)
	u.OrgID, _ = uuid.Parse(org)
	u.UnitID, _ = uuid.Parse(unit)
	u.Username = username
	return &u, hash, nil
}

// AppendAudit appends e to the audit log; e.ID is given by the log.
func (s *Store) AppendAudit(ctx context.Context, e *account.AuditEntry) error {
	res, err := s.db.Writer().ExecContext(ctx, `INSERT INTO audit (at, actor, action, target, outcome, rows, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), e.Actor, e.Action, nullString(e.Target), e.Outcome, e.Rows, nullString(e.RequestID))
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	e.ID, err = res.LastInsertId()
	return err
}

// AuditBefore returns up to limit entries with ids below before, newest
// first.
func (s *Store) AuditBefore(ctx context.Context, before int64, limit int) ([]account.AuditEntry, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, at, actor, action, COALESCE(target, ''), outcome, COALESCE(rows, 0), COALESCE(request_id, '')
		FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	out := []account.AuditEntry{}
	for rows.Next() {
		var e account.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Rows, &e.RequestID); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
