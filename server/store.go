package server

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/server/stats"
)

// The stores below are what the server keeps besides the records: each is
// declared here, where it is used, and implemented once per engine by an
// adapter package that holds all of that engine's SQL (server/sqlitestore,
// server/pgstore). Every method is one transaction; every method is safe
// for concurrent use, also by several server processes on one database.
// See docs/deployment.md.

// AccountStore keeps the staff accounts.
type AccountStore interface {
	// AddUser stores u with its password hash, created at now.
	// account.ErrUserExists if the username is taken.
	AddUser(ctx context.Context, u *account.User, passwordHash string, now time.Time) error
	// Users returns every account, by username.
	Users(ctx context.Context) ([]*account.User, error)
	// UserByName returns the account named username that is not disabled,
	// and its password hash; account.ErrNotFound if there is none.
	UserByName(ctx context.Context, username string) (*account.User, string, error)
}

// CredentialStore keeps what devices and the server authenticate with:
// the server's signing keys and settings, enrolment codes, the devices'
// keys and the assertions they presented, and the devices' names.
type CredentialStore interface {
	// SigningKeys returns every signing key, oldest first.
	SigningKeys(ctx context.Context) ([]account.SigningKey, error)
	// RotateKey retires every signing key at k.CreatedAt and adds k,
	// which signs from then on.
	RotateKey(ctx context.Context, k account.SigningKey) error
	// Setting returns the server setting named key; account.ErrNotFound
	// if it is not set.
	Setting(ctx context.Context, key string) (string, error)
	// PutSetting sets the server setting named key to value.
	PutSetting(ctx context.Context, key, value string) error
	// InitSetting sets the setting named key to value unless it is set,
	// and returns the value it has: of all the callers that race, one
	// value wins and every caller gets it.
	InitSetting(ctx context.Context, key, value string) (string, error)
	// NoteAssertion records that subject presented the assertion whose
	// jti hashes to jtiHash and which expires at exp, forgetting those
	// expired by now, and reports whether it is the first time. Of two
	// callers with the same jti only one is told it is.
	NoteAssertion(ctx context.Context, subject string, jtiHash []byte, exp, now time.Time) (bool, error)
	// AddEnrolCode stores a new enrolment code.
	AddEnrolCode(ctx context.Context, c *account.EnrolCode) error
	// EnrolCode returns the enrolment code whose hash is hash, used or
	// not, expired or not; account.ErrNotFound if there is none.
	EnrolCode(ctx context.Context, hash []byte) (*account.EnrolCode, error)
	// Enrol uses an enrolment code for a device key and registers the
	// device for the code's unit with its key, all in one transaction: a
	// new device gets r.NewID; the same code and key again give the device
	// enrolled then, Repeated set, and change nothing. Errors:
	// account.ErrEnrolCode for a code unknown, expired or used with
	// another key; account.ErrKeyRegistered for a key of another
	// enrolment.
	Enrol(ctx context.Context, r account.EnrolRequest) (*account.Enrolled, error)
	// DeviceKey returns the public key and token audience of the device
	// id; account.ErrNotFound if it has none.
	DeviceKey(ctx context.Context, id uuid.UUID) (key []byte, audience string, err error)
	// SetDeviceName names the device id at now; an empty name removes
	// the name.
	SetDeviceName(ctx context.Context, id uuid.UUID, name string, now time.Time) error
	// DeviceNames returns the names of the devices that have one.
	DeviceNames(ctx context.Context) (map[uuid.UUID]string, error)
}

// AuditLog is the append-only audit log.
type AuditLog interface {
	// AppendAudit appends e; its ID is given by the store.
	AppendAudit(ctx context.Context, e *account.AuditEntry) error
	// AuditBefore returns up to limit entries with ids below before,
	// newest first.
	AuditBefore(ctx context.Context, before int64, limit int) ([]account.AuditEntry, error)
}

// RecordIndex lists records the administration and the dashboard page
// through, by id; the records themselves come from the SyncStore.
type RecordIndex interface {
	// OrganisationIDs returns every organisation's id, by name.
	OrganisationIDs(ctx context.Context) ([]uuid.UUID, error)
	// UnitIDs returns the ids of the units of org, of every unit for the
	// nil org, by name.
	UnitIDs(ctx context.Context, org uuid.UUID) ([]uuid.UUID, error)
	// ReferralIDs returns the ids of the newest limit live referrals sent
	// by unit, or, with to set, sent to it, newest first.
	ReferralIDs(ctx context.Context, unit uuid.UUID, to bool, limit int) ([]uuid.UUID, error)
	// RegionCodes returns the county codes of the active organisations,
	// each once, in order.
	RegionCodes(ctx context.Context) ([]string, error)
}

// StatsStore computes the statistics over the records. The rollups'
// and the publication's SQL is server/stats' own, one text for both
// engines; an adapter gives it its database and dialect: sqlitestore its
// writer connection and read pool in stats.SQLite, pgstore a *sql.DB on
// its pgx pool in stats.Postgres, where advisory locks keep the refreshes
// and publications of several server processes from counting twice or
// publishing differently.
type StatsStore interface {
	// RefreshStats brings the rollups up to date.
	RefreshStats(ctx context.Context) error
	// ComputeStats answers q.
	ComputeStats(ctx context.Context, q stats.Query) (*stats.Result, error)
	// Publication returns the authority's publication at now with
	// threshold k, kept by p between calls.
	Publication(ctx context.Context, p *stats.Publisher, now time.Time, k int64) (*stats.Publication, error)
	// KickPublication has p build the publication in the background
	// after records changed (see stats.Publisher.Kick).
	KickPublication(p *stats.Publisher, now func() time.Time, k int64)
}

// Health reports on the database, for readiness and metrics.
type Health interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// OpenConnections is how many database connections are open.
	OpenConnections() int
	// SizeBytes is how many bytes the database takes, -1 if unknown.
	SizeBytes() int64
}

// Store is everything a Server keeps: one engine's adapter implements it.
type Store interface {
	SyncStore
	AccountStore
	CredentialStore
	AuditLog
	RecordIndex
	StatsStore
	Health
}

// Limiter counts attempts under a name in a sliding window and refuses
// them past its limit. It is safe for concurrent use.
type Limiter interface {
	// Allowed reports whether name may try at now.
	Allowed(ctx context.Context, name string, now time.Time) (bool, error)
	// Fail counts an attempt of name at now.
	Fail(ctx context.Context, name string, now time.Time) error
	// RetryAfter returns how long name waits at now until it may try
	// again; 0 if it may now.
	RetryAfter(ctx context.Context, name string, now time.Time) (time.Duration, error)
	// Reset forgets name's attempts.
	Reset(ctx context.Context, name string) error
}

// LimitStore counts attempts in a database that several servers share,
// so that a limit holds across them. A Store that implements it keeps the
// server's rate limits and login lockouts; the server of a Store that does
// not counts them in its own memory.
type LimitStore interface {
	// Attempts returns the times of name's attempts under l within
	// l.Window before now, oldest first.
	Attempts(ctx context.Context, l account.Limit, name string, now time.Time) ([]time.Time, error)
	// Attempt counts an attempt of name under l at now.
	Attempt(ctx context.Context, l account.Limit, name string, now time.Time) error
	// ResetAttempts forgets name's attempts under l.
	ResetAttempts(ctx context.Context, l account.Limit, name string) error
}

// newLimiter returns the limiter of l: in store if it is a LimitStore,
// else in this process's memory.
func newLimiter(store any, l account.Limit) Limiter {
	if ls, ok := store.(LimitStore); ok {
		return &sharedLimiter{store: ls, limit: l}
	}
	return localLimiter{newLoginLimiter(l.Max, l.Window)}
}

// localLimiter is a Limiter in this process's memory.
type localLimiter struct{ l *loginLimiter }

func (l localLimiter) Allowed(_ context.Context, name string, now time.Time) (bool, error) {
	return l.l.allowed(name, now), nil
}

func (l localLimiter) Fail(_ context.Context, name string, now time.Time) error {
	l.l.fail(name, now)
	return nil
}

func (l localLimiter) RetryAfter(_ context.Context, name string, now time.Time) (time.Duration, error) {
	return l.l.retryAfter(name, now), nil
}

func (l localLimiter) Reset(_ context.Context, name string) error {
	l.l.reset(name)
	return nil
}

// sharedLimiter is a Limiter in a LimitStore.
type sharedLimiter struct {
	store LimitStore
	limit account.Limit
}

func (l *sharedLimiter) Allowed(ctx context.Context, name string, now time.Time) (bool, error) {
	ts, err := l.store.Attempts(ctx, l.limit, name, now)
	return len(ts) < l.limit.Max, err
}

func (l *sharedLimiter) Fail(ctx context.Context, name string, now time.Time) error {
	return l.store.Attempt(ctx, l.limit, name, now)
}

func (l *sharedLimiter) RetryAfter(ctx context.Context, name string, now time.Time) (time.Duration, error) {
	ts, err := l.store.Attempts(ctx, l.limit, name, now)
	if err != nil || len(ts) < l.limit.Max {
		return 0, err
	}
	// The attempts are in time order: once the oldest over the limit has
	// left the window, fewer than Max remain.
	return max(0, ts[len(ts)-l.limit.Max].Add(l.limit.Window).Sub(now)), nil
}

func (l *sharedLimiter) Reset(ctx context.Context, name string) error {
	return l.store.ResetAttempts(ctx, l.limit, name)
}
