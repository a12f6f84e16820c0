// Package brygga is the SDK a tablet app embeds to record outreach work
// offline and sync it with a Brygga server.
//
// A Client owns the device's SQLite replica. Recording works with no
// network at all: each call validates its input, writes the record and its
// queued mutation in one local transaction and returns. Sync pushes the
// queue and pulls what others changed, through the same merge code as the
// server; a background loop (Start) does it soon after writes, periodically
// and when the app calls SyncNow.
package brygga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// Errors an app branches on, with errors.Is. Server errors arrive as
// *APIError, which matches the sentinel of its code.
var (
	ErrNotEnrolled     = errors.New("the device is not enrolled")
	ErrAlreadyEnrolled = errors.New("the device is already enrolled")
	ErrRevoked         = errors.New("the device was revoked and its replica wiped")
	ErrUpdateRequired  = errors.New("the server needs a newer version of the app")
	ErrEnrolCode       = errors.New("the enrolment code is unknown, used or expired")
	ErrLeaseExpired    = errors.New("the device has not synced for too long; sync before reading")
	ErrUnauthorized    = errors.New("not authorised")
	ErrForbidden       = errors.New("forbidden")
	ErrRateLimited     = errors.New("too many requests")
	ErrServer          = errors.New("the server failed")
	ErrStatusBackwards = errors.New("a referral's status cannot move back; reopen it")
	ErrResultSettled   = errors.New("a test's result is known and cannot go back to pending")
	// ErrInvalid is matched by every validation error, a
	// *schema.FieldError naming the field and the rule.
	ErrInvalid = schema.ErrInvalid
	// ErrNotFound means there is no such record on the device.
	ErrNotFound = replica.ErrNotFound
)

// APIError is an error answer of the server: the HTTP status and the coded
// error of docs/errors.md.
type APIError struct {
	Status   int
	Code     wire.Code
	Field    string
	Message  string
	Expected int64 // the next mutation number, for wire.CodeSeqGap
}

// Error returns the server's code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the sentinel of the error's code.
func (e *APIError) Is(target error) bool {
	switch e.Code {
	case wire.CodeDeviceRevoked:
		return target == ErrRevoked
	case wire.CodeUnsupportedVersion:
		return target == ErrUpdateRequired
	case wire.CodeEnrolCodeInvalid:
		return target == ErrEnrolCode
	case wire.CodeUnauthorized, wire.CodeClockSkew, wire.CodeAssertionReplayed:
		return target == ErrUnauthorized
	case wire.CodeForbidden:
		return target == ErrForbidden
	case wire.CodeRateLimited:
		return target == ErrRateLimited
	case wire.CodeInternal:
		return target == ErrServer
	case wire.CodeNotFound:
		return target == ErrNotFound
	case wire.CodeDeviceUnknown:
		return target == ErrUnknownDevice
	}
	return false
}

// Options configures a Client. The zero value is usable.
type Options struct {
	// HTTPClient makes the requests; nil means a client with a 30 second
	// timeout. Never http.DefaultClient, which has none.
	HTTPClient *http.Client
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Location is the time zone of "today"; nil means time.Local.
	Location *time.Location
	// Logger receives the background loop's logs; nil discards them.
	Logger *slog.Logger
	// PushBatch is the most mutations per push (1000, the most a server
	// takes: a push's fixed costs, on the device and the server, are
	// shared by more mutations; a batch of unusually large records is
	// sent in more pushes); PullPage the most changes per pull page
	// (2000, the most a server sends).
	PushBatch, PullPage int
	// OnProgress, if set, is called as a sync advances.
	OnProgress func(Progress)
	// SyncInterval is how often the background loop syncs when nothing
	// happens (5 minutes); SyncDelay how long after a write it syncs (2
	// seconds).
	SyncInterval, SyncDelay time.Duration
}

func (o *Options) defaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PushBatch <= 0 || o.PushBatch > wire.MaxMutations {
		o.PushBatch = wire.MaxMutations
	}
	if o.PullPage <= 0 || o.PullPage > wire.MaxPullLimit {
		o.PullPage = wire.MaxPullLimit
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 5 * time.Minute
	}
	if o.SyncDelay <= 0 {
		o.SyncDelay = 2 * time.Second
	}
}

// Client is a device's handle on its replica and its server. It is safe
// for concurrent use.
type Client struct {
	path    string
	opts    Options
	ownHTTP bool // the HTTP client is the Client's own: Close closes its connections

	mu        sync.Mutex // guards the fields below
	dev       *replica.Device
	access    string
	accessExp time.Time
	staff     uuid.UUID
	lastErr   error
	// seenEpoch is the server's epoch in its latest answer.
	seenEpoch string
	// offset is how far the server's clock was ahead of the device's at
	// the last sync: the device's idea of now is corrected by it.
	offset time.Duration

	// keptMu guards keptDev and keptOffset: the offset as the replica
	// keptDev last stored it, so that the answers of a sync, each of which
	// tells it again, write it only when it changes.
	keptMu     sync.Mutex
	keptDev    *replica.Device
	keptOffset time.Duration

	syncMu sync.Mutex // one sync at a time
	// tokenSem lets one request for an access token run at a time; the
	// others wait for its token, or for their context to end.
	tokenSem chan struct{}
	loop     *loop
}

// Meta keys the SDK keeps in the replica.
const (
	metaServer    = "server_url"
	metaKey       = "device_key"     // the Ed25519 private key's seed, base64url: it never leaves the device
	metaEnrolCode = "enrol_code"     // which server and code the key was made for
	metaAudience  = "token_audience" // what the device's assertions name as their audience
	metaOrg       = "org_id"
	metaLastSync  = "last_sync"
	metaLease     = "lease_seconds"
	metaRetention = "retention_days"
	metaStaff     = "staff_id"
	metaLastError = "last_error"
	metaOffset    = "clock_offset_ms"
	metaLastPurge = "last_purge"
	metaAccess    = "access_token"
	metaAccessExp = "access_expires"
)

// Open opens the device's replica at path. A device that has not been
// enrolled yet has no replica: Open returns a Client on which Enroll is
// the only thing to do.
func Open(ctx context.Context, path string, opts *Options) (*Client, error) {
	c := &Client{path: path, tokenSem: make(chan struct{}, 1)}
	if opts != nil {
		c.opts = *opts
	}
	c.ownHTTP = c.opts.HTTPClient == nil
	c.opts.defaults()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	dev, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{Now: c.opts.Now})
	if errors.Is(err, replica.ErrNoIdentity) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	c.dev = dev
	if s, _ := dev.Meta(ctx, metaStaff); s != "" {
		c.staff, _ = uuid.Parse(s)
	}
	if ms, _ := dev.Meta(ctx, metaOffset); ms != "" {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			c.offset = time.Duration(n) * time.Millisecond
		}
	}
	// An access token from before a restart is used while it lives, so
	// that reopening the app does not cost a token request.
	if tok, _ := dev.Meta(ctx, metaAccess); tok != "" {
		exp, _ := dev.Meta(ctx, metaAccessExp)
		if t, err := time.Parse(time.RFC3339Nano, exp); err == nil {
			c.access, c.accessExp = tok, t
		}
	}
	return c, nil
}

// now is the device's clock corrected by what the server said at the last
// sync: a tablet whose clock is days off still records the right time by
// default and judges its lease correctly.
func (c *Client) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.Now().Add(c.offset)
}

// noteServerClock learns the offset of the device's clock from the
// server's.
func (c *Client) noteServerClock(ctx context.Context, server hlc.Timestamp) {
	if server.IsZero() {
		return
	}
	c.noteServerTime(ctx, server.Wall())
}

// noteServerTime learns the offset of the device's clock from the server's
// time in an answer just received.
func (c *Client) noteServerTime(ctx context.Context, server time.Time) {
	off := server.Sub(c.opts.Now()).Truncate(time.Second)
	c.mu.Lock()
	c.offset = off
	dev := c.dev
	c.mu.Unlock()
	if dev == nil {
		return
	}
	c.keptMu.Lock()
	defer c.keptMu.Unlock()
	if dev == c.keptDev && off == c.keptOffset {
		return
	}
	// Best effort: it is learned again at the next sync.
	if dev.SetMeta(ctx, metaOffset, strconv.FormatInt(off.Milliseconds(), 10)) == nil {
		c.keptDev, c.keptOffset = dev, off
	}
}

// keepAccess stores the access token with its expiry.
func (c *Client) keepAccess(ctx context.Context, token string, exp time.Time) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	if err := dev.SetMeta(ctx, metaAccessExp, exp.UTC().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	return dev.SetMeta(ctx, metaAccess, token)
}

// Close stops the background loop and closes the replica, and the idle
// connections of the HTTP client if the Client made it (one passed in
// Options is the caller's and left alone).
func (c *Client) Close() error {
	c.Stop()
	if c.ownHTTP {
		c.opts.HTTPClient.CloseIdleConnections()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev == nil {
		return nil
	}
	err := c.dev.Close()
	c.dev = nil
	return err
}

// device returns the replica, or ErrNotEnrolled.
func (c *Client) device() (*replica.Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev == nil {
		return nil, ErrNotEnrolled
	}
	return c.dev, nil
}

// Enrolled reports whether the device is enrolled.
func (c *Client) Enrolled() bool {
	_, err := c.device()
	return err == nil
}

// DeviceID returns the device's id, or the nil id before enrolment.
func (c *Client) DeviceID() uuid.UUID {
	if d, err := c.device(); err == nil {
		return d.ID()
	}
	return uuid.Nil
}

// UnitID returns the device's unit, or the nil id before enrolment.
func (c *Client) UnitID() uuid.UUID {
	if d, err := c.device(); err == nil {
		return d.UnitID()
	}
	return uuid.Nil
}

// wipe removes the replica's files: the answer to a revocation.
func (c *Client) wipe() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev != nil {
		c.dev.Close()
		c.dev = nil
	}
	c.access = ""
	var first error
	for _, p := range []string{c.path, c.path + "-wal", c.path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	return first
}
