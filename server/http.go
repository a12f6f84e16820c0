package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

const principalKey = "principal"

const requestIDKey = "request_id"

// requestID returns the request's id, which assignRequestID set.
func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey).(string)
	return id
}

// maxRequestID is the longest request id taken from a caller.
const maxRequestID = 64

// validRequestID reports whether id is 1 to maxRequestID ASCII letters,
// digits and hyphens: the only caller's id the server keeps.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}

// assignRequestID gives every request an id, echoed in X-Request-ID: the
// caller's X-Request-ID if validRequestID accepts it, else a random one of
// the server's. Anything else a caller sends there reaches neither the
// audit log nor the server's log.
func assignRequestID(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Set(fiber.HeaderXRequestID, id)
	c.Locals(requestIDKey, id)
	return c.Next()
}

// loginsPerAddress is how many logins one address may try a minute, at
// the API and at the dashboard each; enrolsPerAddress how many enrolments.
const (
	loginsPerAddress = 30
	enrolsPerAddress = 30
)

// perAddress limits an unauthenticated endpoint to the attempts l allows
// from one client address (every attempt counts, whatever its outcome);
// past that it answers 429 rate_limited with Retry-After, the seconds
// until the address's oldest counted attempt leaves the window.
func (s *Server) perAddress(l Limiter, what string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, now, addr := c.UserContext(), s.now(), c.IP()
		ok, err := l.Allowed(ctx, addr, now)
		if err != nil {
			return err
		}
		if !ok {
			wait, err := l.RetryAfter(ctx, addr, now)
			if err != nil {
				return err
			}
			c.Set(fiber.HeaderRetryAfter, retrySeconds(wait))
			return &wire.Error{Code: wire.CodeRateLimited, Message: "too many " + what + " attempts from this address: wait and retry"}
		}
		if err := l.Fail(ctx, addr, now); err != nil {
			return err
		}
		return c.Next()
	}
}

// retrySeconds writes a wait as Retry-After does: whole seconds, at
// least 1.
func retrySeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// route names the request's route for the server's log: its pattern
// (/v1/devices/:id/revoke), never the path a caller sent.
func route(c *fiber.Ctx) string {
	if r := c.Route(); r != nil && r.Path != "/" {
		return r.Path
	}
	return "unmatched"
}

func (s *Server) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:   "bryggad",
		BodyLimit: wire.MaxBodyBytes,
		// Strings from the context are copies: the metrics' labels and the
		// login limiter keep them past the request, and fasthttp reuses
		// its buffers.
		Immutable:             true,
		ReadTimeout:           time.Minute,
		WriteTimeout:          time.Minute,
		IdleTimeout:           2 * time.Minute,
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
		// A multipart body is not parsed before the handler sees it: the
		// API takes JSON and answers anything else unsupported_media_type,
		// which a failed parse would hide behind a 400.
		DisablePreParseMultipartForm: true,
	})
	app.Use(s.conns.middleware)
	app.Use(assignRequestID)
	// Metrics come first: they count each request with the status its
	// error was answered with, which withContext writes.
	app.Use(s.metrics.middleware)
	app.Use(s.withContext)
	// Pull pages are the bulk of what the server sends: the fastest level
	// keeps their compression cheap and still shrinks them several times.
	app.Use(compress.New(compress.Config{Level: compress.LevelBestSpeed}))

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metrics.handler)
	app.Get("/.well-known/jwks.json", func(c *fiber.Ctx) error { return c.JSON(s.keys.jwks()) })

	app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/dashboard/", fiber.StatusSeeOther) })
	s.dashboardRoutes(app)

	v1 := app.Group("/v1")
	v1.Post("/auth/login", s.perAddress(s.loginAddrs, "login"), s.login)
	v1.Post("/auth/token", s.token)
	v1.Post("/auth/refresh", s.refreshGone)
	v1.Post("/devices/enroll", s.perAddress(s.enrolAddrs, "enrolment"), s.enroll)

	v1.Post("/sync/push", s.requireDevice, s.withEpoch, s.push)
	v1.Get("/sync/pull", s.requireDevice, s.withEpoch, s.pull)
	v1.Post("/sync/heal", s.requireDevice, s.withEpoch, s.heal)

	v1.Get("/units", s.requireUser(RoleManager, RoleAuthority, RoleAdmin), s.listUnits)
	v1.Post("/devices/enroll-codes", s.requireUser(RoleManager, RoleAdmin), s.createEnrolCode)
	v1.Get("/devices", s.requireUser(RoleManager, RoleAdmin), s.listDevices)
	v1.Post("/devices/:id/retire", s.requireUser(RoleManager, RoleAdmin), s.retireDevice)
	v1.Post("/devices/:id/revoke", s.requireUser(RoleManager, RoleAdmin), s.revokeDevice)
	v1.Put("/devices/:id/name", s.requireUser(RoleManager, RoleAdmin), s.putDeviceName)
	v1.Get("/audit", s.requireUser(RoleAdmin), s.listAudit)
	v1.Get("/stats", s.requireUser(RoleManager, RoleAdmin), s.getStats)
	v1.Get("/reports/indicators", s.requireUser(RoleAuthority, RoleAdmin), s.getReport)
	v1.Get("/reports/ivo", s.requireUser(RoleAuthority, RoleAdmin), s.getIVOReport)
	v1.Get("/reports/deaths", s.requireUser(RoleAuthority, RoleAdmin), s.getDeathFollowUp)
	v1.Get("/client-cards", s.requireUser(RoleOutreach, RoleManager, RoleAdmin), s.getClientCards)
	return app
}

// withContext gives every request a context with a deadline and a logger
// line at its end.
func (s *Server) withContext(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	s.log.InfoContext(ctx, "request", "request_id", requestID(c), "method", c.Method(), "route", route(c),
		"status", c.Response().StatusCode(), "duration_ms", time.Since(start).Milliseconds())
	return nil
}

func (s *Server) healthz(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) }

func (s *Server) readyz(c *fiber.Ctx) error {
	if err := s.store.Ping(c.UserContext()); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(errorBody{Error: &wire.Error{Code: wire.CodeInternal, Message: "database not ready"}})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// authenticate reads the bearer token into the request's principal.
func (s *Server) principal(c *fiber.Ctx) (*Principal, error) {
	if p, ok := c.Locals(principalKey).(*Principal); ok {
		return p, nil
	}
	h := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return nil, unauthorized("send an access token: Authorization: Bearer <token>")
	}
	claims, err := s.keys.parse(c.UserContext(), token, s.now())
	if err != nil {
		return nil, unauthorized("the access token is invalid or expired: get a new one or log in")
	}
	kind, id, ok := strings.Cut(claims.Subject, ":")
	uid, perr := uuid.Parse(id)
	if !ok || perr != nil || (kind != "user" && kind != "device") {
		return nil, unauthorized("the access token has no valid subject")
	}
	p := &Principal{Kind: kind, ID: uid, Role: claims.Role}
	p.OrgID, _ = uuid.Parse(claims.OrgID)
	p.UnitID, _ = uuid.Parse(claims.UnitID)
	c.Locals(principalKey, p)
	return p, nil
}

func (s *Server) requireDevice(c *fiber.Ctx) error {
	p, err := s.principal(c)
	if err != nil {
		return err
	}
	if p.Kind != "device" {
		return forbidden("only enrolled devices sync")
	}
	return c.Next()
}

func (s *Server) requireUser(roles ...Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := s.principal(c)
		if err != nil {
			return err
		}
		if p.Kind != "user" {
			return forbidden("this endpoint is for staff accounts")
		}
		for _, r := range roles {
			if p.Role == r {
				return c.Next()
			}
		}
		return forbidden("your role may not do this")
	}
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse answers a successful login.
type LoginResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int       `json:"expires_in"`
	Role        Role      `json:"role"`
	OrgID       uuid.UUID `json:"org_id"`
	UnitID      uuid.UUID `json:"unit_id"`
}

func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return &wire.Error{Code: wire.CodeMalformed, Field: "username", Message: "username and password are required"}
	}
	u, token, err := s.staffLogin(c.UserContext(), req.Username, req.Password, "", requestID(c), func(Role) bool { return true })
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeRateLimited {
		if wait, err := s.logins.RetryAfter(c.UserContext(), s.loginName(req.Username), s.now()); err == nil {
			c.Set(fiber.HeaderRetryAfter, retrySeconds(wait))
		}
	}
	if err != nil {
		return err
	}
	return c.JSON(LoginResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessTTL.Seconds()), Role: u.Role, OrgID: u.OrgID, UnitID: u.UnitID})
}

func idString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func (s *Server) push(c *fiber.Ctx) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	p, _ := s.principal(c)
	body, err := wire.Body(bytes.NewReader(c.Request().Body()), c.Get(fiber.HeaderContentEncoding))
	if err != nil {
		return err
	}
	req, err := wire.DecodePushRequest(body)
	if err != nil {
		return err
	}
	resp, err := s.store.Push(c.UserContext(), p.ID, req)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			s.audit(c.UserContext(), p.Actor(), "push", "unit:"+p.UnitID.String(), string(we.Code), 0, requestID(c))
		}
		return err
	}
	s.metrics.observePush(resp)
	if len(req.Mutations) > 0 {
		s.store.KickPublication(&s.reports, s.now, s.cfg.K)
	}
	// What c.JSON would write, without encoding/json's reflection.
	answer, err := wire.AppendPushResponse(nil, resp)
	if err != nil {
		return err
	}
	c.Response().SetBodyRaw(answer)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

func (s *Server) pull(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	req := &wire.PullRequest{Cursor: c.Query("cursor")}
	var err error
	if req.Protocol, err = queryInt(c, "protocol", -1); err != nil {
		return err
	}
	if req.Schema, err = queryInt(c, "schema", -1); err != nil {
		return err
	}
	if err := req.Versions.Check(); err != nil {
		return err
	}
	if req.Limit, err = queryInt(c, "limit", wire.DefaultPullLimit); err != nil {
		return err
	}
	if req.Limit < 1 || req.Limit > wire.MaxPullLimit {
		return &wire.Error{Code: wire.CodeMalformed, Field: "limit", Message: "limit must be between 1 and 2000"}
	}
	if acked := c.Query("acked"); acked != "" {
		n, err := strconv.ParseInt(acked, 10, 64)
		if err != nil || n < 0 {
			return &wire.Error{Code: wire.CodeMalformed, Field: "acked", Message: "acked must be an integer, 0 or more"}
		}
		req.Acked = n
	}
	ctx := c.UserContext()
	bp := pullBodies.Get().(*[]byte)
	defer pullBodies.Put(bp)
	body, page, err := s.store.AppendPull(ctx, p.ID, req, (*bp)[:0])
	*bp = body
	outcome := "ok"
	var we *wire.Error
	if errors.As(err, &we) {
		outcome = string(we.Code)
	}
	rows := page.Changes
	s.audit(ctx, p.Actor(), "pull", "unit:"+p.UnitID.String(), outcome, int64(rows), requestID(c))
	if err != nil {
		return err
	}
	if !page.HasMore {
		if err := s.store.NotePull(ctx, p.ID); err != nil {
			return err
		}
	}
	s.metrics.pulled.Add(float64(rows))
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(wire.HeaderCursor, page.Cursor)
	c.Set(wire.HeaderHasMore, strconv.FormatBool(page.HasMore))
	// The response keeps a copy, in a buffer of its own that the server
	// reuses too, so that the page's array serves the pulls to come.
	c.Response().SetBody(body)
	return nil
}

// pullBodies keep the arrays pull pages are encoded into.
var pullBodies = sync.Pool{New: func() any { return new([]byte) }}

func queryInt(c *fiber.Ctx, name string, def int) (int, error) {
	v := c.Query(name)
	if v == "" {
		if def < 0 {
			return 0, &wire.Error{Code: wire.CodeUnsupportedVersion, Field: name,
				Message: name + " is required: this server speaks protocol " + strconv.Itoa(wire.Protocol) + ", schema " + strconv.Itoa(schema.Version) + "; update the app"}
		}
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &wire.Error{Code: wire.CodeMalformed, Field: name, Message: name + " must be an integer"}
	}
	return n, nil
}

// scopeOrg returns the organisation a user's requests are limited to, or
// nil for an admin.
func scopeOrg(p *Principal) uuid.UUID {
	if p.Role == RoleAdmin {
		return uuid.Nil
	}
	return p.OrgID
}

func (s *Server) listUnits(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	org := scopeOrg(p)
	if p.Role == RoleAuthority {
		org = uuid.Nil // the authority sees the region's units, not their records
	}
	units, err := s.Units(c.UserContext(), org)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"units": units})
}

// unitInScope checks that a user may manage unitID.
func (s *Server) unitInScope(ctx context.Context, p *Principal, unitID uuid.UUID) error {
	u, err := s.unit(ctx, unitID)
	if err != nil {
		return err
	}
	if org := scopeOrg(p); org != uuid.Nil && u.OrgID != org {
		return &wire.Error{Code: wire.CodeNotFound, Field: "unit_id", Message: "no such unit in your organisation"}
	}
	return nil
}

func (s *Server) createEnrolCode(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	var req struct {
		UnitID uuid.UUID `json:"unit_id"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.UnitID == uuid.Nil {
		return &wire.Error{Code: wire.CodeMalformed, Field: "unit_id", Message: "unit_id is required"}
	}
	if err := s.unitInScope(c.UserContext(), p, req.UnitID); err != nil {
		return err
	}
	code, err := s.NewEnrolCode(c.UserContext(), req.UnitID, p.Actor())
	if err != nil {
		return err
	}
	png, err := qrcode.Encode(code.QRPayload, qrcode.Medium, 320)
	if err != nil {
		return err
	}
	if c.Accepts(fiber.MIMEApplicationJSON, "image/png") == "image/png" {
		c.Set("X-Brygga-Enrol-Code", code.Code)
		c.Set(fiber.HeaderContentType, "image/png")
		return c.Status(fiber.StatusCreated).Send(png)
	}
	return c.Status(fiber.StatusCreated).JSON(struct {
		*EnrolCode
		QRPNG string `json:"qr_png"`
	}{code, base64.StdEncoding.EncodeToString(png)})
}

// DeviceInfo is a device as managers see it.
type DeviceInfo struct {
	ID     uuid.UUID `json:"id"`
	UnitID uuid.UUID `json:"unit_id"`
	// Name is the label a manager gave the tablet ("Van 1"), empty if none.
	Name       string     `json:"name"`
	EnrolledAt time.Time  `json:"enrolled_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastSyncAt *time.Time `json:"last_sync_at,omitempty"`
	Protocol   int        `json:"protocol,omitempty"`
	LastSeq    int64      `json:"last_seq"`
	Rejected   int        `json:"rejected"`
	DeviceLifecycle
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// DevicesOf returns the devices of an organisation's units, or all if org
// is nil.
func (s *Server) DevicesOf(ctx context.Context, org uuid.UUID) ([]DeviceInfo, error) {
	devs, err := s.store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	inOrg := map[uuid.UUID]bool{}
	if org != uuid.Nil {
		units, err := s.Units(ctx, org)
		if err != nil {
			return nil, err
		}
		for _, u := range units {
			inOrg[u.ID] = true
		}
	}
	names, err := s.deviceNames(ctx)
	if err != nil {
		return nil, err
	}
	out := []DeviceInfo{}
	for _, d := range devs {
		if org != uuid.Nil && !inOrg[d.UnitID] {
			continue
		}
		last := d.LastPushAt
		if d.LastPullAt.After(last) {
			last = d.LastPullAt
		}
		out = append(out, DeviceInfo{ID: d.ID, UnitID: d.UnitID, Name: names[d.ID], EnrolledAt: d.EnrolledAt, RevokedAt: timePtr(d.RevokedAt),
			LastSyncAt: timePtr(last), Protocol: d.Protocol, LastSeq: d.LastSeq, Rejected: d.Rejected, DeviceLifecycle: lifecycleOf(d)})
	}
	return out, nil
}

func (s *Server) listDevices(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	devs, err := s.DevicesOf(c.UserContext(), scopeOrg(p))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"devices": devs})
}

func (s *Server) listAudit(c *fiber.Ctx) error {
	before, err := queryInt(c, "before", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > 1000 {
		return &wire.Error{Code: wire.CodeMalformed, Field: "limit", Message: "limit must be between 1 and 1000"}
	}
	entries, err := s.Audit(c.UserContext(), int64(before), limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"entries": entries})
}
