package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/sync/wire"
)

// Errors of account administration.
var (
	ErrUserExists  = account.ErrUserExists
	ErrNotFound    = account.ErrNotFound
	ErrBadArgument = errors.New("invalid argument")
)

// User is a staff account.
type User = account.User

// AddOrganisation creates an organisation.
func (s *Server) AddOrganisation(ctx context.Context, kind schema.OrgKind, name, regionCode string) (*schema.Organisation, error) {
	o := &schema.Organisation{ID: uuid.Must(uuid.NewV7()), OrgKind: kind, Name: name, RegionCode: regionCode, Active: true}
	if err := s.store.PutReference(ctx, o); err != nil {
		return nil, fmt.Errorf("add organisation: %w", err)
	}
	return o, nil
}

// AddUnit creates a unit of an organisation, and the services it offers.
func (s *Server) AddUnit(ctx context.Context, orgID uuid.UUID, name, areaCode string, services ...schema.ServiceCategory) (*schema.Unit, error) {
	if _, err := s.organisation(ctx, orgID); err != nil {
		return nil, fmt.Errorf("add unit: %w", err)
	}
	u := &schema.Unit{ID: uuid.Must(uuid.NewV7()), OrgID: orgID, Name: name, AreaCode: areaCode, Active: true}
	recs := []schema.Record{u}
	for _, c := range services {
		recs = append(recs, &schema.Service{ID: uuid.Must(uuid.NewV7()), UnitID: u.ID, Category: c, Active: true})
	}
	if err := s.store.PutReference(ctx, recs...); err != nil {
		return nil, fmt.Errorf("add unit: %w", err)
	}
	return u, nil
}

// AddStaff creates a staff record of a unit without an account: someone
// who records on the unit's devices.
func (s *Server) AddStaff(ctx context.Context, unitID uuid.UUID, role schema.StaffRole) (*schema.Staff, error) {
	if _, err := s.unit(ctx, unitID); err != nil {
		return nil, fmt.Errorf("add staff: %w", err)
	}
	st := &schema.Staff{ID: uuid.Must(uuid.NewV7()), UnitID: unitID, Role: role, Active: true}
	if err := s.store.PutReference(ctx, st); err != nil {
		return nil, fmt.Errorf("add staff: %w", err)
	}
	return st, nil
}

func (s *Server) organisation(ctx context.Context, id uuid.UUID) (*schema.Organisation, error) {
	row, err := s.store.Get(ctx, schema.KindOrganisation, id)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, fmt.Errorf("organisation %s: %w", id, ErrNotFound)
	}
	return row.Record.(*schema.Organisation), nil
}

func (s *Server) unit(ctx context.Context, id uuid.UUID) (*schema.Unit, error) {
	row, err := s.store.Get(ctx, schema.KindUnit, id)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, fmt.Errorf("unit %s: %w", id, ErrNotFound)
	}
	return row.Record.(*schema.Unit), nil
}

// Record returns the record of kind k with id as the server holds it;
// ErrNotFound if there is none. It is for administration and tests: row
// level data leaves the server only through a device's pull of its scope.
func (s *Server) Record(ctx context.Context, k schema.Kind, id uuid.UUID) (schema.Record, error) {
	row, err := s.store.Get(ctx, k, id)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, fmt.Errorf("%s %s: %w", k, id, ErrNotFound)
	}
	return row.Record, nil
}

// Organisations returns every organisation, by name.
func (s *Server) Organisations(ctx context.Context) ([]*schema.Organisation, error) {
	ids, err := s.store.OrganisationIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*schema.Organisation, 0, len(ids))
	for _, id := range ids {
		o, err := s.organisation(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Units returns the units of an organisation, or all if orgID is nil, by
// name.
func (s *Server) Units(ctx context.Context, orgID uuid.UUID) ([]*schema.Unit, error) {
	ids, err := s.store.UnitIDs(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]*schema.Unit, 0, len(ids))
	for _, id := range ids {
		u, err := s.unit(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// AddUser creates a staff account. Outreach staff and managers belong to a
// unit (and so its organisation); an authority user to an organisation,
// normally the region; an admin to none. An outreach user is also a staff
// record of the unit, with the same id.
func (s *Server) AddUser(ctx context.Context, username, password string, role Role, orgID, unitID uuid.UUID) (*User, error) {
	username = strings.TrimSpace(username)
	switch {
	case !role.Valid():
		return nil, fmt.Errorf("add user: %w: role %q is not one of outreach, manager, authority, admin", ErrBadArgument, role)
	case !utf8.ValidString(username) || utf8.RuneCountInString(username) < 2 || utf8.RuneCountInString(username) > maxUsername ||
		strings.ContainsAny(username, " \t\r\n"):
		return nil, fmt.Errorf("add user: %w: a username has 2 to %d characters and no spaces", ErrBadArgument, maxUsername)
	case len(password) < MinPasswordLength:
		return nil, fmt.Errorf("add user: %w: a password has at least %d characters", ErrBadArgument, MinPasswordLength)
	}
	if unitID != uuid.Nil {
		u, err := s.unit(ctx, unitID)
		if err != nil {
			return nil, fmt.Errorf("add user: %w", err)
		}
		if orgID != uuid.Nil && orgID != u.OrgID {
			return nil, fmt.Errorf("add user: %w: unit %s is not of organisation %s", ErrBadArgument, unitID, orgID)
		}
		orgID = u.OrgID
	} else if orgID != uuid.Nil {
		if _, err := s.organisation(ctx, orgID); err != nil {
			return nil, fmt.Errorf("add user: %w", err)
		}
	}
	switch role {
	case RoleOutreach:
		if unitID == uuid.Nil {
			return nil, fmt.Errorf("add user: %w: outreach staff belong to a unit (--unit)", ErrBadArgument)
		}
	case RoleManager, RoleAuthority:
		if orgID == uuid.Nil {
			return nil, fmt.Errorf("add user: %w: a %s belongs to an organisation (--org or --unit)", ErrBadArgument, role)
		}
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &User{ID: uuid.Must(uuid.NewV7()), Username: username, Role: role, OrgID: orgID, UnitID: unitID}
	if err := s.store.AddUser(ctx, u, hash, s.now()); err != nil {
		if errors.Is(err, ErrUserExists) {
			return nil, fmt.Errorf("add user %s: %w", username, ErrUserExists)
		}
		return nil, err
	}
	if role == RoleOutreach || (role == RoleManager && unitID != uuid.Nil) {
		staffRole := schema.RoleOutreachWorker
		if role == RoleManager {
			staffRole = schema.RoleManager
		}
		if err := s.store.PutReference(ctx, &schema.Staff{ID: u.ID, UnitID: unitID, Role: staffRole, Active: true}); err != nil {
			return nil, fmt.Errorf("add user: %w", err)
		}
	}
	return u, nil
}

// Users returns every account, by username.
func (s *Server) Users(ctx context.Context) ([]*User, error) { return s.store.Users(ctx) }

// maxUsername is the most characters a username has.
const maxUsername = 64

// usernameKeyRow is the meta row that keeps the secret key of failed
// logins' usernames: 32 random bytes, hex, made on the server's first
// start.
const usernameKeyRow = "audit.username_key"

// loadUsernameKey reads the key of failed logins' usernames, making it
// first if the database has none.
func loadUsernameKey(ctx context.Context, store CredentialStore) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	v, err := store.InitSetting(ctx, usernameKeyRow, hex.EncodeToString(b))
	if err != nil {
		return nil, fmt.Errorf("username key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 16 {
		return nil, errors.New("username key: malformed")
	}
	return key, nil
}

// loginName is username as the login limiter and the audit log keep it:
// its HMAC-SHA256 under the server's secret key, cut to 128 bits, in hex.
// The same username always gives the same name, so failures of one
// username are counted and can be followed in the audit log, but the
// log holds nothing a caller typed, and a long username costs nothing.
func (s *Server) loginName(username string) string {
	m := hmac.New(sha256.New, s.usernameKey)
	m.Write([]byte(username))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// staffLogin checks a staff member's username and password and issues an
// access token, for the API and the dashboard alike (target names which in
// the audit log). Failed logins are limited per username; every attempt is
// audited. The errors are *wire.Error with code rate_limited, unauthorized,
// or forbidden for a role that allowed refuses.
func (s *Server) staffLogin(ctx context.Context, username, password, target, requestID string, allowed func(Role) bool) (*User, string, error) {
	now := s.now()
	name := s.loginName(username)
	ok, err := s.logins.Allowed(ctx, name, now)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		s.audit(ctx, "anonymous", "login_failed", "username_hmac:"+name, string(wire.CodeRateLimited), 0, requestID)
		return nil, "", &wire.Error{Code: wire.CodeRateLimited, Message: "too many failed logins for this user: wait 15 minutes"}
	}
	u, ok, err := s.authenticate(ctx, username, password)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		if err := s.logins.Fail(ctx, name, now); err != nil {
			return nil, "", err
		}
		s.audit(ctx, "anonymous", "login_failed", "username_hmac:"+name, string(wire.CodeUnauthorized), 0, requestID)
		return nil, "", unauthorized("wrong username or password")
	}
	if err := s.logins.Reset(ctx, name); err != nil {
		return nil, "", err
	}
	if !allowed(u.Role) {
		s.audit(ctx, "user:"+u.ID.String(), "login", target, string(wire.CodeForbidden), 0, requestID)
		return nil, "", forbidden("this role may not log in here")
	}
	token, err := s.keys.sign(ctx, &Claims{RegisteredClaims: registered(now, s.cfg.AccessTTL, "user:"+u.ID.String()),
		Role: u.Role, OrgID: idString(u.OrgID), UnitID: idString(u.UnitID)})
	if err != nil {
		return nil, "", err
	}
	s.audit(ctx, "user:"+u.ID.String(), "login", target, "ok", 0, requestID)
	return u, token, nil
}

// authenticate checks a username and password.
func (s *Server) authenticate(ctx context.Context, username, password string) (*User, bool, error) {
	u, hash, err := s.store.UserByName(ctx, username)
	if errors.Is(err, ErrNotFound) {
		// Spend the same time as a real check, so timing does not tell
		// which usernames exist.
		checkPassword(s.dummyHash, password)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !checkPassword(hash, password) {
		return nil, false, nil
	}
	return u, true, nil
}

// Enrolment codes: 12 Crockford base32 symbols (60 bits), shown as
// XXXX-XXXX-XXXX and as a QR code.
const enrolAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// EnrolCode is a one-time code that enrols a device for a unit.
type EnrolCode struct {
	Code      string    `json:"code"`
	UnitID    uuid.UUID `json:"unit_id"`
	ExpiresAt time.Time `json:"expires_at"`
	// QRPayload is what the QR code holds: the code and the server's URL.
	QRPayload string `json:"qr_payload"`
}

// NewEnrolCode creates a one-time enrolment code for unitID on behalf of
// actor, valid for the configured time.
func (s *Server) NewEnrolCode(ctx context.Context, unitID uuid.UUID, actor string) (*EnrolCode, error) {
	if _, err := s.unit(ctx, unitID); err != nil {
		return nil, fmt.Errorf("enrolment code: %w", err)
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	var sb strings.Builder
	for i, v := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(enrolAlphabet[v&31])
	}
	now := s.now()
	code := &EnrolCode{Code: sb.String(), UnitID: unitID, ExpiresAt: now.Add(s.cfg.EnrolTTL).UTC().Truncate(time.Second)}
	code.QRPayload = "BRYGGA:E1:" + strings.ReplaceAll(code.Code, "-", "") + ":" + s.cfg.PublicURL
	if err := s.store.AddEnrolCode(ctx, &account.EnrolCode{Hash: hashToken(normaliseEnrolCode(code.Code)), UnitID: unitID,
		CreatedBy: actor, CreatedAt: now, ExpiresAt: code.ExpiresAt}); err != nil {
		return nil, fmt.Errorf("enrolment code: %w", err)
	}
	s.audit(ctx, actor, "enrol_code", "unit:"+unitID.String(), "ok", 0, "")
	return code, nil
}

// normaliseEnrolCode reads a typed code forgivingly: case, hyphens and
// spaces do not matter; I and L read as 1, O as 0.
func normaliseEnrolCode(s string) string { return wire.NormaliseEnrolCode(s) }

// RevokeDevice revokes a device: its next request, and its next
// assertion for an access token, is answered device_revoked.
func (s *Server) RevokeDevice(ctx context.Context, id uuid.UUID, actor string) error {
	if err := s.store.RevokeDevice(ctx, id); err != nil {
		return err
	}
	s.audit(ctx, actor, "revoke", "device:"+id.String(), "ok", 0, "")
	return nil
}

// AuditEntry is one line of the audit log.
type AuditEntry = account.AuditEntry

// audit appends to the audit log. A failure to write it is logged: the
// action it records has already happened.
func (s *Server) audit(ctx context.Context, actor, action, target, outcome string, rows int64, requestID string) {
	err := s.store.AppendAudit(ctx, &AuditEntry{At: s.now(), Actor: actor, Action: action, Target: target,
		Outcome: outcome, Rows: rows, RequestID: requestID})
	if err != nil {
		s.log.ErrorContext(ctx, "audit write failed", "action", action, "actor", actor, "err", err)
	}
}

// Audit returns up to limit audit entries before id (0: the newest),
// newest first.
func (s *Server) Audit(ctx context.Context, before int64, limit int) ([]AuditEntry, error) {
	if before <= 0 {
		before = 1 << 62
	}
	return s.store.AuditBefore(ctx, before, limit)
}
