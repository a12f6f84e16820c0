// Package server is Brygga's sync server: a Fiber app that enrols devices,
// authenticates staff and devices with short-lived EdDSA-signed tokens,
// serves sync push and pull for each device's scope, keeps an append-only
// audit log and exposes health and metrics.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/sqlitestore"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// SyncStore is the storage the server syncs through: the records, their
// change sequence and the devices. replica.ServerStore is the SQLite
// implementation, which server/sqlitestore carries.
type SyncStore interface {
	Push(ctx context.Context, deviceID uuid.UUID, req *wire.PushRequest) (*wire.PushResponse, error)
	// AppendPull appends the encoded answer to a pull to dst.
	AppendPull(ctx context.Context, deviceID uuid.UUID, req *wire.PullRequest, dst []byte) ([]byte, replica.PullAnswer, error)
	PutReference(ctx context.Context, recs ...schema.Record) error
	Write(ctx context.Context, k schema.Kind, id uuid.UUID, fields json.RawMessage) error
	Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error)
	Clock() hlc.Timestamp
	Close() error
	DeviceStore
	LifecycleStore
}

// DeviceStore keeps the enrolled devices' state: the sync's counters of
// each, and whether it is revoked or retired. Devices are added by
// CredentialStore.Enrol.
type DeviceStore interface {
	// LookupDevice returns the device id; replica.ErrUnknownDevice if
	// there is none.
	LookupDevice(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error)
	// Devices returns every device, most recently enrolled first.
	Devices(ctx context.Context) ([]*replica.EnrolledDevice, error)
	// RevokeDevice revokes a device: it may neither push nor pull again.
	// replica.ErrUnknownDevice for a device unknown or revoked before.
	RevokeDevice(ctx context.Context, id uuid.UUID) error
	// RetireDevice retires a device: it may push, not pull. Retiring a
	// retired device changes nothing. Errors: replica.ErrUnknownDevice,
	// replica.ErrDeviceRevoked.
	RetireDevice(ctx context.Context, id uuid.UUID) error
	// NotePull notes that the device pulled, now.
	NotePull(ctx context.Context, deviceID uuid.UUID) error
}

var (
	_ Store      = (*sqlitestore.Store)(nil)
	_ Store      = (*pgstore.Store)(nil)
	_ LimitStore = (*pgstore.Store)(nil)
)

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	// DBPath is the SQLite database file, created and migrated if
	// needed, or the postgres:// URL of a PostgreSQL database, migrated
	// if needed, which several servers may share (docs/deployment.md).
	DBPath string
	// Store, if set, is the store the server keeps its state in, and
	// DBPath is not used; Close closes it.
	Store Store
	// PublicURL is the URL devices reach the server at, put into
	// enrolment QR codes. Empty means the URL the database's server last
	// served at (Serve keeps it), so that an admin command's QR codes point
	// where tablets reach the server; on a database never served,
	// http://127.0.0.1:8080.
	PublicURL string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// AccessTTL is the lifetime of access tokens (15 minutes).
	AccessTTL time.Duration
	// EnrolTTL is the lifetime of enrolment codes (15 minutes).
	EnrolTTL time.Duration
	// RequestTimeout bounds every request (30 seconds).
	RequestTimeout time.Duration
	// LoginFailures is how many failed logins of one username within
	// LoginWindow lock it out until the window has passed (5, 15 minutes).
	LoginFailures int
	LoginWindow   time.Duration
	// DeviceLease is how long a device may go without syncing before it
	// refuses reads (14 days); RetentionDays how long synced records stay
	// on a device (90).
	DeviceLease   time.Duration
	RetentionDays int
	// K is the disclosure threshold of aggregate reports: counts from 1
	// to K-1 are suppressed (5).
	K int64
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.EnrolTTL == 0 {
		c.EnrolTTL = 15 * time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = 5
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.K < 2 {
		c.K = stats.DefaultK
	}
	if c.DeviceLease == 0 {
		c.DeviceLease = 14 * 24 * time.Hour
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = 90
	}
}

// Server is the sync server. Open starts it, Serve serves HTTP on a
// listener, Shutdown stops serving after in-flight requests, and Close
// closes the database. It is safe for concurrent use.
type Server struct {
	cfg    Config
	store  Store
	keys   *keyring
	logins Limiter
	// loginAddrs and enrolAddrs count the logins and enrolments tried
	// from each client address in the last minute.
	loginAddrs, enrolAddrs Limiter
	log                    *slog.Logger
	app                    *fiber.App
	metrics                *metrics
	now                    func() time.Time
	dummyHash              string
	// usernameKey keys the names failed logins are kept under.
	usernameKey []byte
	// reports keeps the authority's publication between requests.
	reports stats.Publisher
	// conns are the connections Serve accepted.
	conns conns
	// stopping is done once Shutdown is called.
	stopping context.Context
	stop     context.CancelFunc
}

// Open opens the database at cfg.DBPath, creating and migrating it (or
// takes cfg.Store), loads
// or creates the signing keys and builds the HTTP app.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	cfg.defaults()
	store := cfg.Store
	if store == nil && pgstore.IsURL(cfg.DBPath) {
		st, err := pgstore.Open(ctx, cfg.DBPath, pgstore.Config{Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		store = st
	}
	if store == nil {
		st, err := sqlitestore.Open(ctx, cfg.DBPath, sqlitestore.Config{Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		store = st
	}
	s := &Server{cfg: cfg, store: store, log: cfg.Logger, now: cfg.Now,
		logins:     newLimiter(store, account.Limit{Scope: "login.username", Max: cfg.LoginFailures, Window: cfg.LoginWindow}),
		loginAddrs: newLimiter(store, account.Limit{Scope: "login.address", Max: loginsPerAddress, Window: time.Minute}),
		enrolAddrs: newLimiter(store, account.Limit{Scope: "enrol.address", Max: enrolsPerAddress, Window: time.Minute})}
	s.stopping, s.stop = context.WithCancel(context.Background())
	var err error
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL, err = store.Setting(ctx, publicURLSetting)
		if errors.Is(err, account.ErrNotFound) {
			s.cfg.PublicURL, err = "http://127.0.0.1:8080", nil
		}
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("open: public URL: %w", err)
		}
	}
	if s.keys, err = loadKeys(ctx, store, cfg.Now(), cfg.AccessTTL); err != nil {
		store.Close()
		return nil, err
	}
	if s.usernameKey, err = loadUsernameKey(ctx, store); err != nil {
		store.Close()
		return nil, err
	}
	if s.dummyHash, err = HashPassword("not a password of anyone"); err != nil {
		store.Close()
		return nil, err
	}
	s.metrics = newMetrics(s)
	s.app = s.newApp()
	return s, nil
}

// publicURLSetting is the setting that keeps the URL the server last
// served at.
const publicURLSetting = "server.public_url"

// App returns the Fiber app, for tests that drive it without a listener.
func (s *Server) App() *fiber.App { return s.app }

// Serve brings the statistics' rollups up to date, so that the first
// request for them does not build them while pushes wait (on a database of
// a million records that are behind, some seconds), then serves HTTP on ln
// until Shutdown. A Shutdown while the rollups are brought up to date
// stops that, and Serve returns nil without serving.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.store.PutSetting(s.stopping, publicURLSetting, s.cfg.PublicURL); err != nil && s.stopping.Err() == nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}
	err := s.store.RefreshStats(s.stopping)
	if s.stopping.Err() != nil {
		ln.Close()
		return nil
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: statistics: %w", err)
	}
	return s.app.Listener(s.conns.listener(ln))
}

// Shutdown stops accepting requests and waits for in-flight ones, up to
// ctx's deadline; after a second it closes the connections on which no
// request is being answered (see conns). A push either commits or rolls
// back as a whole.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	return s.conns.shutdown(ctx, s.app.ShutdownWithContext)
}

// Close stops the background builds of the authority's publication and
// closes the database.
func (s *Server) Close() error {
	s.reports.Close()
	return s.store.Close()
}

// RotateKey creates a new signing key; tokens signed by the old ones stay
// valid until they expire.
func (s *Server) RotateKey(ctx context.Context) (string, error) {
	kid, err := rotateKey(ctx, s.store, s.now())
	if err != nil {
		return "", err
	}
	return kid, s.keys.reload(ctx, s.now())
}

func registered(now time.Time, ttl time.Duration, subject string) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer: issuer, Audience: jwt.ClaimStrings{audience}, Subject: subject,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: uuid.Must(uuid.NewV7()).String(),
	}
}

// statusOf maps error codes to HTTP statuses: the one place it is done.
var statusOf = map[wire.Code]int{
	wire.CodeMalformed:          fiber.StatusBadRequest,
	wire.CodeUnsupportedVersion: fiber.StatusUpgradeRequired,
	wire.CodeBatchTooLarge:      fiber.StatusRequestEntityTooLarge,
	wire.CodeBodyTooLarge:       fiber.StatusRequestEntityTooLarge,
	wire.CodeSeqGap:             fiber.StatusConflict,
	wire.CodeCursorInvalid:      fiber.StatusGone,
	wire.CodeUnauthorized:       fiber.StatusUnauthorized,
	wire.CodeAssertionReplayed:  fiber.StatusUnauthorized,
	wire.CodeClockSkew:          fiber.StatusUnauthorized,
	wire.CodeEnrolCodeInvalid:   fiber.StatusUnauthorized,
	wire.CodeForbidden:          fiber.StatusForbidden,
	wire.CodeDeviceRevoked:      fiber.StatusForbidden,
	wire.CodeRateLimited:        fiber.StatusTooManyRequests,
	wire.CodeNotFound:           fiber.StatusNotFound,
	wire.CodeInvalidRecord:      fiber.StatusUnprocessableEntity,
	wire.CodeMethodNotAllowed:   fiber.StatusMethodNotAllowed,
	wire.CodeUnsupportedMedia:   fiber.StatusUnsupportedMediaType,
	wire.CodeInternal:           fiber.StatusInternalServerError,

	// A device's lifecycle and restores.
	wire.CodeDeviceRetired:        fiber.StatusForbidden,
	wire.CodeServerRestored:       fiber.StatusConflict,
	wire.CodeDeviceUnknown:        fiber.StatusForbidden,
	wire.CodeConfirmationRequired: fiber.StatusConflict,

	// The authority's reports.
	wire.CodeReportBuilding: fiber.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status of an error code.
func StatusOf(code wire.Code) int {
	if st, ok := statusOf[code]; ok {
		return st
	}
	return fiber.StatusBadRequest
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error *wire.Error `json:"error"`
}

// handleError turns any error into the one error model. Unknown errors are
// a 500 with a generic message; the detail goes to the log with the
// request id.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	if requestID(c) == "" {
		// An error answered before the middleware ran (a Content-Length
		// over the limit, a connection that sent no request in time) gets
		// an id of the server's all the same.
		id := uuid.NewString()
		c.Set(fiber.HeaderXRequestID, id)
		c.Locals(requestIDKey, id)
	}
	var we *wire.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &we):
	case errors.Is(err, ErrNotFound), errors.Is(err, replica.ErrUnknownDevice), errors.Is(err, replica.ErrNotFound):
		we = &wire.Error{Code: wire.CodeNotFound, Message: err.Error()}
	case errors.Is(err, ErrBadArgument), errors.Is(err, schema.ErrInvalid):
		we = &wire.Error{Code: wire.CodeMalformed, Message: err.Error()}
	case errors.As(err, &fe):
		we = fromFiber(fe)
	default:
		s.log.ErrorContext(c.UserContext(), "request failed", "request_id", requestID(c), "method", c.Method(), "route", route(c), "err", err)
		we = &wire.Error{Code: wire.CodeInternal, Message: "the server failed; the request id is " + requestID(c)}
	}
	return c.Status(StatusOf(we.Code)).JSON(errorBody{Error: we})
}

func fromFiber(fe *fiber.Error) *wire.Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return &wire.Error{Code: wire.CodeNotFound, Message: "no such endpoint"}
	case fiber.StatusMethodNotAllowed:
		return &wire.Error{Code: wire.CodeMethodNotAllowed, Message: "method not allowed"}
	case fiber.StatusRequestEntityTooLarge:
		return &wire.Error{Code: wire.CodeBodyTooLarge, Message: fmt.Sprintf("body exceeds %d bytes", wire.MaxBodyBytes)}
	case fiber.StatusUnsupportedMediaType:
		return &wire.Error{Code: wire.CodeUnsupportedMedia, Message: fe.Message}
	case fiber.StatusTooManyRequests:
		return &wire.Error{Code: wire.CodeRateLimited, Message: "too many requests: wait and retry"}
	case fiber.StatusUnauthorized:
		return &wire.Error{Code: wire.CodeUnauthorized, Message: fe.Message}
	}
	if fe.Code >= 500 {
		return &wire.Error{Code: wire.CodeInternal, Message: "the server failed"}
	}
	return &wire.Error{Code: wire.CodeMalformed, Message: fe.Message}
}

// decodeJSON reads a small JSON request body into v strictly: the right
// content type, no unknown fields, nothing after it.
func decodeJSON(c *fiber.Ctx, v any) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	r, err := wire.Body(bytes.NewReader(c.Request().Body()), c.Get(fiber.HeaderContentEncoding))
	if err != nil {
		return err
	}
	return wire.DecodeJSON(r, v)
}

func requireJSON(c *fiber.Ctx) error {
	ct := string(c.Request().Header.ContentType())
	if i := bytes.IndexByte([]byte(ct), ';'); i >= 0 {
		ct = ct[:i]
	}
	if ct != fiber.MIMEApplicationJSON {
		return &wire.Error{Code: wire.CodeUnsupportedMedia, Message: "send application/json"}
	}
	return nil
}
