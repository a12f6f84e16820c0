// Package account holds the value types of who may act on a Brygga server
// and what they did: staff accounts and their roles, enrolment codes, the
// devices' keys, the server's signing keys and the audit log's entries,
// with the errors its stores return. It imports no storage engine: the
// server declares the stores it needs over these types, and each engine's
// adapter implements them.
package account

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Errors the stores return.
var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUserExists means the username is taken.
	ErrUserExists = errors.New("username is taken")
	// ErrEnrolCode means an enrolment code is unknown, expired, or used
	// with another key.
	ErrEnrolCode = errors.New("enrolment code unknown, used or expired")
	// ErrKeyRegistered means a device key is registered for another
	// enrolment.
	ErrKeyRegistered = errors.New("key registered for another enrolment")
)

// Role is what a staff user may do.
type Role string

// Roles.
const (
	// RoleOutreach is outreach staff: they work through enrolled devices.
	RoleOutreach Role = "outreach"
	// RoleManager manages the units and devices of one organisation and
	// sees its statistics.
	RoleManager Role = "manager"
	// RoleAuthority is the regional health authority: aggregates only.
	RoleAuthority Role = "authority"
	// RoleAdmin administers the whole server.
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a role.
func (r Role) Valid() bool {
	switch r {
	case RoleOutreach, RoleManager, RoleAuthority, RoleAdmin:
		return true
	}
	return false
}

// User is a staff account.
type User struct {
	ID       uuid.UUID `json:"id"`
	Username string    `json:"username"`
	Role     Role      `json:"role"`
	OrgID    uuid.UUID `json:"org_id"`
	UnitID   uuid.UUID `json:"unit_id"`
}

// SigningKey is one of the server's Ed25519 signing keys: Seed is its
// private seed; RetiredAt is zero for the key that signs.
type SigningKey struct {
	KID       string
	Seed      []byte
	CreatedAt time.Time
	RetiredAt time.Time
}

// EnrolCode is an enrolment code as a store keeps it: the hash of the
// code, never the code itself. PublicKey is the key it enrolled, nil until
// used.
type EnrolCode struct {
	Hash      []byte
	UnitID    uuid.UUID
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	PublicKey []byte
}

// EnrolRequest asks a store to use an enrolment code for a device key, at
// Now: to register a new device for the code's unit with the key and its
// token audience, or, for the same code and key again, to name the device
// it enrolled then.
type EnrolRequest struct {
	CodeHash []byte
	Key      []byte
	Audience string
	Now      time.Time
	// NewID is the id a new device gets.
	NewID uuid.UUID
}

// Enrolled is what a store's enrolment did: the device, its unit, and
// whether the same code and key enrolled it before.
type Enrolled struct {
	DeviceID uuid.UUID
	UnitID   uuid.UUID
	Repeated bool
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Target    string    `json:"target,omitempty"`
	Outcome   string    `json:"outcome"`
	Rows      int64     `json:"rows,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

// Limit is a rate limit: at most Max attempts under one name in any
// Window. Scope tells limits apart (failed logins per username, logins
// per address, ...).
type Limit struct {
	Scope  string
	Max    int
	Window time.Duration
}
