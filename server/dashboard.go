package server

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

//go:embed templates/*.html
var templateFiles embed.FS

// StaleAfter is how long a device may go without syncing before the
// dashboard flags it: its unit's numbers may be missing its records.
const StaleAfter = 3 * 24 * time.Hour

const sessionCookie = "brygga_session"

func text(key string, lang schema.Lang) string {
	t, ok := texts[key]
	if !ok {
		return key
	}
	if lang == schema.English {
		return t[1]
	}
	return t[0]
}

// dashPages are the dashboard's templates, parsed once at start, one set
// per language, each with its own words.
var dashPages = func() map[schema.Lang]*template.Template {
	out := map[schema.Lang]*template.Template{}
	for _, l := range []schema.Lang{schema.Swedish, schema.English} {
		out[l] = template.Must(template.New("").Funcs(template.FuncMap{
			"t":   func(k string) string { return text(k, l) },
			"num": func(v int64) string { return formatInt(v, l) },
		}).ParseFS(templateFiles, "templates/*.html"))
	}
	return out
}()

func (s *Server) render(c *fiber.Ctx, name string, lang schema.Lang, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	data["Lang"] = lang
	data["Page"] = name
	if _, ok := data["Title"]; !ok {
		data["Title"] = text(name, lang)
	}
	q := c.Request().URI().QueryArgs()
	for _, l := range []string{"sv", "en"} {
		v, _ := url.ParseQuery(string(q.QueryString()))
		v.Set("lang", l)
		data["Lang_"+l] = c.Path() + "?" + v.Encode()
	}
	if p := dashPrincipal(c); p != nil {
		data["Signed"] = true
		data["Admin"] = p.Role == RoleAdmin
		if p.Role == RoleAdmin {
			orgs, err := s.Organisations(c.UserContext())
			if err != nil {
				return err
			}
			data["Orgs"] = orgs
			if o, ok := c.Locals("dashOrg").(*schema.Organisation); ok {
				data["OrgID"] = o.ID.String()
				data["OrgQ"] = "?org=" + o.ID.String()
				data["OrgA"] = "&org=" + o.ID.String()
			}
		}
	}
	var buf bytes.Buffer
	if err := dashPages[lang].ExecuteTemplate(&buf, name+".html", data); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	c.Set("X-Frame-Options", "DENY")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// pageError is an error the dashboard answers with an HTML page: its
// status and a message in the reader's language.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func badParam(l schema.Lang, name, key string, args ...any) error {
	what := fmt.Sprintf(text("bad_param", l), name)
	if k, ok := fieldLabels[name]; ok { // the field as the page labels it, and its name in the address
		what = fmt.Sprintf(text("bad_field", l), text(k, l), name)
	}
	return &pageError{status: fiber.StatusBadRequest, msg: what + " " + fmt.Sprintf(text(key, l), args...)}
}

// fieldLabels are the words of texts that label the fields of the
// dashboard's forms, by parameter, so that an error names the field a
// manager sees.
var fieldLabels = map[string]string{
	"period": "period", "from": "from", "to": "to", "unit": "unit", "by": "breakdown", "compare": "compare",
	"days": "wait_days", "waiting": "only_waiting", "count": "cards_count", "status": "new_status", "lang": "language", "org": "organisation",
}

// dashErrors answers every error under /dashboard with an HTML page (400,
// 403, 404, 405, 500), never the API's JSON.
func (s *Server) dashErrors(c *fiber.Ctx) error {
	err := c.Next()
	if err == nil {
		return nil
	}
	l := lang(c)
	status, msg := fiber.StatusInternalServerError, ""
	var pe *pageError
	var we *wire.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &pe):
		status, msg = pe.status, pe.msg
	case errors.Is(err, ErrNotFound):
		status, msg = fiber.StatusNotFound, text("err_404", l)
	case errors.As(err, &we):
		status = StatusOf(we.Code)
		msg = we.Message
		if status == fiber.StatusNotFound {
			msg = text("err_404", l)
		}
		if status == fiber.StatusForbidden {
			msg = text("err_403", l)
		}
	case errors.As(err, &fe) && fe.Code < 500:
		status, msg = fe.Code, fe.Message
		if fe.Code == fiber.StatusNotFound {
			msg = text("err_404", l)
		}
	}
	if status >= 500 {
		s.log.ErrorContext(c.UserContext(), "request failed", "request_id", requestID(c), "method", c.Method(), "route", route(c), "err", err)
		msg = text("err_500", l) + " " + requestID(c)
	}
	title := fmt.Sprintf("%s (%d)", text(fmt.Sprintf("err_title_%d", status), l), status)
	if strings.HasPrefix(title, "err_title") {
		title = fmt.Sprintf("%s (%d)", text("err_title_400", l), status)
	}
	c.Status(status)
	if rerr := s.render(c, "error", l, map[string]any{"Title": title, "Message": msg, "Status": status}); rerr != nil {
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.SendString(msg)
	}
	return nil
}

// lang picks the dashboard's language: ?lang= (remembered in a cookie),
// then the cookie, then Swedish.
func lang(c *fiber.Ctx) schema.Lang {
	l := c.Query("lang")
	if l == "sv" || l == "en" {
		c.Cookie(&fiber.Cookie{Name: "lang", Value: l, Path: "/dashboard", SameSite: "Strict", MaxAge: 365 * 24 * 3600})
		return schema.Lang(l)
	}
	if c.Cookies("lang") == "en" {
		return schema.English
	}
	return schema.Swedish
}

// checkLang refuses a ?lang= that is neither sv nor en.
func checkLang(c *fiber.Ctx) error {
	if v := c.Query("lang"); v != "" && v != "sv" && v != "en" {
		return badParam(lang(c), "lang", "want_lang")
	}
	return nil
}

// onlyParams refuses query parameters other than names (and lang).
func onlyParams(c *fiber.Ctx, names ...string) error {
	var bad string
	c.Request().URI().QueryArgs().VisitAll(func(k, _ []byte) {
		n := string(k)
		if n == "lang" || bad != "" {
			return
		}
		for _, ok := range names {
			if n == ok {
				return
			}
		}
		bad = n
	})
	if bad != "" {
		l := lang(c)
		return &pageError{status: fiber.StatusBadRequest, msg: fmt.Sprintf(text("unknown_param", l), bad, strings.Join(append(names, "lang"), ", "))}
	}
	return checkLang(c)
}

func (s *Server) dashboardRoutes(app *fiber.App) {
	d := app.Group("/dashboard", s.dashErrors)
	d.Get("/login", func(c *fiber.Ctx) error {
		if err := onlyParams(c); err != nil {
			return err
		}
		return s.render(c, "login", lang(c), map[string]any{"Title": text("login", lang(c))})
	})
	d.Post("/login", limiter.New(limiter.Config{
		Max: loginsPerAddress, Expiration: time.Minute,
		LimitReached: func(c *fiber.Ctx) error {
			l := lang(c)
			return s.render(c.Status(fiber.StatusTooManyRequests), "login", l, map[string]any{"Error": text("locked", l), "Title": text("login", l)})
		},
	}), s.dashLogin)
	d.Post("/logout", func(c *fiber.Ctx) error {
		c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: "", Path: "/dashboard", MaxAge: -1, HTTPOnly: true, SameSite: "Strict"})
		return c.Redirect("/dashboard/login", fiber.StatusSeeOther)
	})
	d.Use(s.dashSession)
	d.Get("/", s.dashOverview)
	d.Get("/devices", s.dashDevices)
	d.Get("/devices/:id/name", s.dashDeviceName)
	d.Post("/devices/:id/name", s.dashDeviceName)
	s.dashLifecycleRoutes(d)
	d.Get("/enrol", s.dashEnrol)
	d.Post("/enrol", s.dashEnrol)
	d.Get("/cards", s.dashCards)
	d.Get("/referrals", s.dashReferrals)
	d.Get("/referrals/:id/status", s.dashReferralStatus)
	d.Post("/referrals/:id/status", s.dashReferralStatus)
	d.Use(func(c *fiber.Ctx) error {
		return &pageError{status: fiber.StatusNotFound, msg: text("err_404", lang(c))}
	})
}

func (s *Server) dashLogin(c *fiber.Ctx) error {
	l := lang(c)
	username, password := c.FormValue("username"), c.FormValue("password")
	fail := func(key string) error {
		return s.render(c.Status(fiber.StatusUnauthorized), "login", l, map[string]any{"Error": text(key, l), "Title": text("login", l)})
	}
	_, token, err := s.staffLogin(c.UserContext(), username, password, "dashboard", requestID(c), func(r Role) bool {
		return r == RoleManager || r == RoleAdmin
	})
	var werr *wire.Error
	switch {
	case errors.As(err, &werr) && werr.Code == wire.CodeRateLimited:
		return fail("locked")
	case errors.As(err, &werr) && werr.Code == wire.CodeUnauthorized:
		return fail("bad_login")
	case errors.As(err, &werr) && werr.Code == wire.CodeForbidden:
		return fail("no_access")
	case err != nil:
		return err
	}
	now := s.now()
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: token, Path: "/dashboard", HTTPOnly: true, SameSite: "Strict",
		Expires: now.Add(s.cfg.AccessTTL), Secure: strings.HasPrefix(s.cfg.PublicURL, "https://")})
	return c.Redirect("/dashboard/", fiber.StatusSeeOther)
}

// dashSession admits requests with a valid session cookie of a manager or
// admin; others go to the login page.
func (s *Server) dashSession(c *fiber.Ctx) error {
	claims, err := s.keys.parse(c.UserContext(), c.Cookies(sessionCookie), s.now())
	if err != nil || (claims.Role != RoleManager && claims.Role != RoleAdmin) {
		return c.Redirect("/dashboard/login", fiber.StatusSeeOther)
	}
	_, id, _ := strings.Cut(claims.Subject, ":")
	p := &Principal{Kind: "user", Role: claims.Role}
	p.ID, _ = uuid.Parse(id)
	p.OrgID, _ = uuid.Parse(claims.OrgID)
	p.UnitID, _ = uuid.Parse(claims.UnitID)
	c.Locals(principalKey, p)
	return c.Next()
}

func dashPrincipal(c *fiber.Ctx) *Principal {
	p, _ := c.Locals(principalKey).(*Principal)
	return p
}

// dashOrg is the organisation the dashboard shows: the manager's, or for
// an admin the one chosen with ?org= (the first one otherwise).
func (s *Server) dashOrg(c *fiber.Ctx) (*schema.Organisation, error) {
	p := dashPrincipal(c)
	id := p.OrgID
	if p.Role == RoleAdmin {
		if v := c.Query("org"); v != "" {
			q, err := uuid.Parse(v)
			if err != nil {
				return nil, badParam(lang(c), "org", "want_org")
			}
			id = q
		} else {
			orgs, err := s.Organisations(c.UserContext())
			if err != nil {
				return nil, err
			}
			if len(orgs) == 0 {
				return nil, &pageError{status: fiber.StatusNotFound, msg: text("no_orgs", lang(c))}
			}
			id = orgs[0].ID
		}
	}
	o, err := s.organisation(c.UserContext(), id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, &pageError{status: fiber.StatusNotFound, msg: text("no_such_org", lang(c))}
		}
		return nil, err
	}
	c.Locals("dashOrg", o)
	return o, nil
}

// dashURL is path with the admin's organisation kept.
func dashURL(c *fiber.Ctx, path string) string {
	if p := dashPrincipal(c); p != nil && p.Role == RoleAdmin {
		if o, ok := c.Locals("dashOrg").(*schema.Organisation); ok {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			return path + sep + "org=" + o.ID.String()
		}
	}
	return path
}

func (s *Server) unitNames(ctx context.Context, org uuid.UUID) (map[uuid.UUID]string, []*schema.Unit, error) {
	units, err := s.Units(ctx, org)
	if err != nil {
		return nil, nil, err
	}
	names := map[uuid.UUID]string{}
	for _, u := range units {
		names[u.ID] = u.Name
	}
	return names, units, nil
}

func isStale(d DeviceInfo, now time.Time) bool {
	last := d.EnrolledAt
	if d.LastSyncAt != nil {
		last = *d.LastSyncAt
	}
	return now.Sub(last) > StaleAfter
}

// formatInt writes v with the language's thousands separator: a
// no-break space in Swedish, a comma in English.
func formatInt(v int64, l schema.Lang) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sep := ","
	if l == schema.Swedish {
		sep = "\u00a0"
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(r)
	}
	if neg {
		return "−" + b.String()
	}
	return b.String()
}

// formatPercent writes a share as a whole percentage.
func formatPercent(share float64, l schema.Lang) string {
	if l == schema.Swedish {
		return fmt.Sprintf("%.0f\u00a0%%", 100*share)
	}
	return fmt.Sprintf("%.0f%%", 100*share)
}

func formatDay(t time.Time) string { return t.In(stockholm).Format("2006-01-02") }
func formatTime(t time.Time) string {
	return t.In(stockholm).Format("2006-01-02 15:04")
}
