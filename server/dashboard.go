package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/wire"
)

//go:embed templates/*.html
var templateFiles embed.FS

// StaleAfter is how long a device may go without syncing before the
// dashboard flags it: its unit's numbers may be missing its records.
const StaleAfter = 3 * 24 * time.Hour

const sessionCookie = "brygga_session"

// texts are the dashboard's words, in Swedish and English.
var texts = map[string][2]string{
	"overview":           {"Översikt", "Overview"},
	"devices":            {"Enheter", "Devices"},
	"enrol":              {"Registrera surfplatta", "Enrol a tablet"},
	"referrals":          {"Remisser", "Referrals"},
	"logout":             {"Logga ut", "Log out"},
	"login":              {"Logga in", "Log in"},
	"username":           {"Användarnamn", "Username"},
	"password":           {"Lösenord", "Password"},
	"bad_login":          {"Fel användarnamn eller lösenord.", "Wrong username or password."},
	"locked":             {"För många misslyckade försök. Vänta en stund.", "Too many failed attempts. Wait a while."},
	"no_access":          {"Instrumentpanelen är för enhetschefer och administratörer.", "The dashboard is for managers and admins."},
	"period":             {"Period", "Period"},
	"stale_devices":      {"surfplattor har inte synkat på över tre dygn: siffrorna kan sakna deras poster.", "tablets have not synced for over three days: the numbers may lack their records."},
	"contacts_per_month": {"Kontakter per månad", "Contacts per month"},
	"syringes_per_month": {"Sprutor ut och tillbaka per månad", "Syringes out and returned per month"},
	"by_month":           {"Per månad", "By month"},
	"month":              {"Månad", "Month"},
	"by_gender":          {"Per kön", "By gender"},
	"by_age":             {"Per åldersgrupp", "By age group"},
	"by_unit":            {"Per enhet", "By unit"},
	"device":             {"Surfplatta", "Tablet"},
	"unit":               {"Enhet", "Unit"},
	"last_sync":          {"Senast synkad", "Last sync"},
	"rejected":           {"Avvisade poster", "Rejected records"},
	"state":              {"Status", "State"},
	"stale":              {"inaktuell", "stale"},
	"never":              {"aldrig", "never"},
	"revoked":            {"spärrad", "revoked"},
	"active":             {"aktiv", "active"},
	"revoke":             {"Spärra", "Revoke"},
	"no_devices":         {"Inga surfplattor ännu.", "No tablets yet."},
	"make_code":          {"Skapa engångskod", "Make a one-time code"},
	"code_for":           {"Engångskod för", "One-time code for"},
	"valid_until":        {"giltig till", "valid until"},
	"swedish_time":       {"svensk tid", "Swedish time"},
	"referrals_to_us":    {"Remisser till våra enheter", "Referrals to our units"},
	"date":               {"Datum", "Date"},
	"to_unit":            {"Till enhet", "To unit"},
	"service":            {"Verksamhet", "Service"},
	"status":             {"Status", "Status"},
	"update":             {"Uppdatera", "Update"},
	"no_referrals":       {"Inga remisser.", "No referrals."},
	"contacts":           {"Kontakter", "Contacts"},
	"unique_clients":     {"Unika klienter", "Unique clients"},
	"syringes_out":       {"Sprutor ut", "Syringes out"},
	"needles_out":        {"Kanyler ut", "Needles out"},
	"syringes_returned":  {"Sprutor tillbaka", "Syringes returned"},
	"return_rate":        {"Återlämning", "Return rate"},
	"naloxone_doses":     {"Naloxondoser", "Naloxone doses"},
	"reversals":          {"Reverserade överdoser", "Overdose reversals"},
	"referrals_made":     {"Remisser gjorda", "Referrals made"},
	"attended_share":     {"Andel påbörjade", "Share attended"},
}

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

func (s *Server) render(c *fiber.Ctx, name string, lang schema.Lang, data map[string]any) error {
	t, err := template.New("").Funcs(template.FuncMap{"t": func(k string) string { return text(k, lang) }}).
		ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
	if err != nil {
		return err
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Lang"] = lang
	data["Page"] = name
	if _, ok := data["Title"]; !ok {
		data["Title"] = text(name, lang)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name+".html", data); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	c.Set("X-Frame-Options", "DENY")
	return c.Send(buf.Bytes())
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

func (s *Server) dashboardRoutes(app *fiber.App) {
	d := app.Group("/dashboard")
	d.Get("/login", func(c *fiber.Ctx) error {
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
	s.dashLifecycleRoutes(d)
	d.Get("/enrol", s.dashEnrol)
	d.Post("/enrol", s.dashEnrol)
	d.Get("/referrals", s.dashReferrals)
	d.Post("/referrals/:id/status", s.dashReferralStatus)
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
				return nil, &wire.Error{Code: wire.CodeMalformed, Field: "org", Message: "org must be an organisation id"}
			}
			id = q
		} else {
			orgs, err := s.Organisations(c.UserContext())
			if err != nil || len(orgs) == 0 {
				return nil, fmt.Errorf("dashboard: no organisation: %w", ErrNotFound)
			}
			id = orgs[0].ID
		}
	}
	return s.organisation(c.UserContext(), id)
}

type kpi struct{ Key, Label, Value string }
type tableRow struct {
	Label string
	Cells []string
}
type breakdown struct {
	Title string
	Chart template.HTML
	Rows  []tableRow
}

var dashIndicators = []struct {
	ind stats.Indicator
	key string
}{
	{stats.Contacts, "contacts"}, {stats.UniqueClients, "unique_clients"}, {stats.SyringesOut, "syringes_out"},
	{stats.SyringesReturned, "syringes_returned"}, {stats.NaloxoneDoses, "naloxone_doses"}, {stats.Reversals, "reversals"},
	{stats.Referrals, "referrals_made"}, {stats.ReferralsAttended, "attended_share"},
}

func (s *Server) dashOverview(c *fiber.Ctx) error {
	l := lang(c)
	ctx := c.UserContext()
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	now := s.now().In(stockholm)
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, stockholm).AddDate(0, -11, 0)
	q := stats.Query{From: first, To: now.AddDate(0, 0, 1), Period: stats.Month, Location: stockholm}
	byMonth, err := s.OrgStats(ctx, org.ID, q)
	if err != nil {
		return err
	}
	s.audit(ctx, dashPrincipal(c).Actor(), "stats", "org:"+org.ID.String(), "ok", int64(len(byMonth.Rows)), requestID(c))
	var columns []string
	for _, d := range dashIndicators {
		columns = append(columns, text(d.key, l))
	}
	columns = append(columns, text("return_rate", l))
	format := func(r StatsRow) []string {
		var cells []string
		for _, d := range dashIndicators {
			v := r.Indicators[d.ind]
			if d.ind == stats.ReferralsAttended {
				if n := r.Indicators[stats.Referrals]; n > 0 {
					cells = append(cells, fmt.Sprintf("%d (%.0f %%)", v, 100*float64(v)/float64(n)))
					continue
				}
			}
			cells = append(cells, strconv.FormatInt(v, 10))
		}
		if r.ReturnRate != nil {
			cells = append(cells, fmt.Sprintf("%.0f %%", 100**r.ReturnRate))
		} else {
			cells = append(cells, "–")
		}
		return cells
	}
	totals := map[stats.Indicator]int64{}
	var months []tableRow
	perMonth := map[string]int64{}
	syringesOut, syringesBack := map[string]int64{}, map[string]int64{}
	for _, r := range byMonth.Rows {
		if r.Group != stats.TotalGroup {
			continue
		}
		months = append(months, tableRow{Label: r.Period, Cells: format(r)})
		perMonth[r.Period] = r.Indicators[stats.Contacts]
		syringesOut[r.Period] = r.Indicators[stats.SyringesOut]
		syringesBack[r.Period] = r.Indicators[stats.SyringesReturned]
		for k, v := range r.Indicators {
			if k != stats.UniqueClients {
				totals[k] += v
			}
		}
	}
	// Unique clients over the whole year are not the sum of the months.
	year, err := stats.Compute(ctx, s.db.Writer(), s.db.Reader(), stats.Query{From: q.From, To: q.To, Period: stats.Year, Orgs: []uuid.UUID{org.ID}, Location: stockholm})
	if err != nil {
		return err
	}
	for _, p := range year.Periods {
		totals[stats.UniqueClients] += year.Value(p, "", stats.UniqueClients)
	}
	var kpis []kpi
	for _, d := range dashIndicators {
		kpis = append(kpis, kpi{Key: string(d.ind), Label: text(d.key, l), Value: strconv.FormatInt(totals[d.ind], 10)})
	}
	var breakdowns []breakdown
	for _, b := range []struct {
		by  stats.Dim
		key string
	}{{stats.ByUnit, "by_unit"}, {stats.ByGender, "by_gender"}, {stats.ByAgeBand, "by_age"}} {
		bq := q
		bq.Period, bq.By = stats.Year, b.by
		st, err := s.OrgStats(ctx, org.ID, bq)
		if err != nil {
			return err
		}
		merged := map[string]StatsRow{}
		var order []string
		for _, r := range st.Rows {
			if r.Group == stats.TotalGroup {
				continue
			}
			label := r.Label
			switch b.by {
			case stats.ByGender:
				label = schema.GenderEnum.Label(r.Group, l)
			case stats.ByAgeBand:
				label = schema.AgeBandEnum.Label(r.Group, l)
			}
			m, ok := merged[label]
			if !ok {
				m = StatsRow{Indicators: map[stats.Indicator]int64{}}
				order = append(order, label)
			}
			for k, v := range r.Indicators {
				m.Indicators[k] += v
			}
			merged[label] = m
		}
		bd := breakdown{Title: text(b.key, l)}
		var bars []bar
		for _, label := range order {
			bars = append(bars, bar{label, merged[label].Indicators[stats.Contacts]})
		}
		bd.Chart = barsChart("chart-"+b.key, text("contacts", l), bars)
		for _, label := range order {
			r := merged[label]
			if out := r.Indicators[stats.SyringesOut]; out > 0 {
				rate := float64(r.Indicators[stats.SyringesReturned]) / float64(out)
				r.ReturnRate = &rate
			}
			bd.Rows = append(bd.Rows, tableRow{Label: label, Cells: format(r)})
		}
		breakdowns = append(breakdowns, bd)
	}
	devs, err := s.DevicesOf(ctx, org.ID)
	if err != nil {
		return err
	}
	stale := 0
	for _, d := range devs {
		if d.RevokedAt == nil && isStale(d, s.now()) {
			stale++
		}
	}
	return s.render(c, "overview", l, map[string]any{
		"Signed": true, "OrgName": org.Name, "From": q.From.Format("2006-01-02"), "To": now.Format("2006-01-02"),
		"KPIs": kpis, "Columns": columns, "Months": months, "Breakdowns": breakdowns, "Stale": stale,
		"Chart":         barChart(first, perMonth),
		"SyringesChart": pairChart(first, syringesOut, syringesBack, text("syringes_out", l), text("syringes_returned", l)),
	})
}

// bar is one group's count in a breakdown chart.
type bar struct {
	label string
	v     int64
}

// barsChart draws a breakdown's counts (of what) as horizontal bars in an
// inline SVG with the id id. Labels are escaped: unit names are an
// administrator's text.
func barsChart(id, what string, bars []bar) template.HTML {
	var max int64 = 1
	for _, b := range bars {
		max = maxInt(max, b.v)
	}
	h := 22*len(bars) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="bars" width="600" height="%d" viewBox="0 0 600 %d" role="img" aria-label="%s">`, id, h, h, template.HTMLEscapeString(what))
	for i, g := range bars {
		y := 5 + i*22
		w := int(380 * g.v / max)
		label := template.HTMLEscapeString(g.label)
		fmt.Fprintf(&b, `<text x="0" y="%d">%s</text><rect x="200" y="%d" width="%d" height="16" fill="#2f7f95"><title>%s: %d</title></rect><text x="%d" y="%d">%d</text>`,
			y+12, label, y, w, label, g.v, 205+w, y+12, g.v)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// pairChart draws twelve months of two counts side by side (syringes out
// and returned) as an inline SVG.
func pairChart(first time.Time, a, b map[string]int64, aLabel, bLabel string) template.HTML {
	var max int64 = 1
	for _, v := range a {
		max = maxInt(max, v)
	}
	for _, v := range b {
		max = maxInt(max, v)
	}
	var s strings.Builder
	s.WriteString(`<svg id="chart-syringes" width="600" height="195" viewBox="0 0 600 195" role="img">`)
	for i := range 12 {
		m := first.AddDate(0, i, 0).Format("2006-01")
		x := 10 + i*48
		for j, v := range []int64{a[m], b[m]} {
			h := int(140 * v / max)
			fill, label := "#2f7f95", aLabel
			if j == 1 {
				fill, label = "#9cc7d2", bLabel
			}
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="17" height="%d" fill="%s"><title>%s %s: %d</title></rect>`,
				x+j*18, 150-h, h, fill, m, template.HTMLEscapeString(label), v)
		}
		fmt.Fprintf(&s, `<text x="%d" y="165">%s</text>`, x, m[2:])
	}
	fmt.Fprintf(&s, `<rect x="10" y="178" width="10" height="10" fill="#2f7f95"/><text x="24" y="187">%s</text><rect x="200" y="178" width="10" height="10" fill="#9cc7d2"/><text x="214" y="187">%s</text>`,
		template.HTMLEscapeString(aLabel), template.HTMLEscapeString(bLabel))
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

func isStale(d DeviceInfo, now time.Time) bool {
	last := d.EnrolledAt
	if d.LastSyncAt != nil {
		last = *d.LastSyncAt
	}
	return now.Sub(last) > StaleAfter
}

// barChart draws twelve months of counts as an inline SVG.
func barChart(first time.Time, perMonth map[string]int64) template.HTML {
	var max int64 = 1
	for _, v := range perMonth {
		max = maxInt(max, v)
	}
	var b strings.Builder
	b.WriteString(`<svg id="chart" width="600" height="180" viewBox="0 0 600 180" role="img">`)
	for i := range 12 {
		m := first.AddDate(0, i, 0).Format("2006-01")
		v := perMonth[m]
		h := int(130 * v / max) // room above the highest bar for its count
		x := 10 + i*48
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="36" height="%d" fill="#2f7f95"><title>%s: %d</title></rect>`, x, 150-h, h, m, v)
		fmt.Fprintf(&b, `<text x="%d" y="165">%s</text><text x="%d" y="%d">%d</text>`, x, m[2:], x+4, 146-h, v)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

type deviceRow struct {
	ID, Short, Unit, LastSync string
	Stale, Revoked            bool
	Rejected                  int
	lifecycleRow
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

func (s *Server) dashDevices(c *fiber.Ctx) error {
	l := lang(c)
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	devs, err := s.DevicesOf(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	names, _, err := s.unitNames(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	var rows []deviceRow
	for _, d := range devs {
		r := deviceRow{ID: d.ID.String(), Short: d.ID.String()[24:], Unit: names[d.UnitID], Rejected: d.Rejected,
			Revoked: d.RevokedAt != nil, LastSync: text("never", l), lifecycleRow: lifecycleRowOf(d, l)}
		if d.LastSyncAt != nil {
			r.LastSync = d.LastSyncAt.In(stockholm).Format("2006-01-02 15:04")
		}
		r.Stale = d.State == StateActive && isStale(d, s.now())
		rows = append(rows, r)
	}
	return s.render(c, "devices", l, map[string]any{"Signed": true, "Devices": rows})
}

func (s *Server) dashEnrol(c *fiber.Ctx) error {
	l := lang(c)
	p := dashPrincipal(c)
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	names, units, err := s.unitNames(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	data := map[string]any{"Signed": true, "Units": units}
	if c.Method() == fiber.MethodPost {
		unit, err := uuid.Parse(c.FormValue("unit_id"))
		if err != nil || names[unit] == "" {
			return c.Redirect("/dashboard/enrol", fiber.StatusSeeOther)
		}
		code, err := s.NewEnrolCode(c.UserContext(), unit, p.Actor())
		if err != nil {
			return err
		}
		png, err := qrcode.Encode(code.QRPayload, qrcode.Medium, 240)
		if err != nil {
			return err
		}
		data["UnitName"] = names[unit]
		data["Code"] = map[string]string{"Code": code.Code, "Until": code.ExpiresAt.In(stockholm).Format("15:04"),
			"PNG": base64.StdEncoding.EncodeToString(png)}
	}
	return s.render(c, "enrol", l, data)
}

type referralRow struct {
	ID, Date, Unit, Service, Status string
	Next                            []choice
}

type choice struct{ Code, Label string }

func (s *Server) dashReferrals(c *fiber.Ctx) error {
	l := lang(c)
	ctx := c.UserContext()
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	names, units, err := s.unitNames(ctx, org.ID)
	if err != nil {
		return err
	}
	var rows []referralRow
	for _, u := range units {
		recs, err := s.referralsTo(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, r := range recs {
			row := referralRow{ID: r.ID.String(), Date: r.OccurredAt.In(stockholm).Format("2006-01-02"), Unit: names[r.ToUnitID],
				Service: schema.ServiceCategoryEnum.Label(string(r.Service), l), Status: schema.ReferralStatusEnum.Label(string(r.Status), l)}
			for _, o := range schema.ReferralStatusEnum.Options {
				if next := schema.ReferralStatus(o.Code); next.Rank() > r.Status.Rank() && (next != schema.StatusClosed || r.Status.Closes()) {
					row.Next = append(row.Next, choice{Code: o.Code, Label: o.Label(l)})
				}
			}
			rows = append(rows, row)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Date > rows[j].Date })
	return s.render(c, "referrals", l, map[string]any{"Signed": true, "Referrals": rows})
}

// referralsTo returns the live referrals addressed to a unit.
func (s *Server) referralsTo(ctx context.Context, unit uuid.UUID) ([]*schema.Referral, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id FROM referrals WHERE to_unit_id = ? AND voided = 0 ORDER BY occurred_at DESC LIMIT 500`, unit.String())
	if err != nil {
		return nil, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, err
	}
	var out []*schema.Referral
	for _, id := range ids {
		rec, err := s.Record(ctx, schema.KindReferral, id)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.(*schema.Referral))
	}
	return out, nil
}

// dashReferralStatus moves a referral addressed to one of the manager's
// units along its lifecycle; devices receive the change like any other.
func (s *Server) dashReferralStatus(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p := dashPrincipal(c)
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return c.Redirect("/dashboard/referrals", fiber.StatusSeeOther)
	}
	status := schema.ReferralStatus(c.FormValue("status"))
	if !schema.ReferralStatusEnum.Has(string(status)) {
		return &wire.Error{Code: wire.CodeMalformed, Field: "status", Message: "status must be one of " + strings.Join(schema.ReferralStatusEnum.Codes(), ", ")}
	}
	rec, err := s.Record(ctx, schema.KindReferral, id)
	if err != nil {
		return err
	}
	ref := rec.(*schema.Referral)
	if err := s.unitInScope(ctx, p, ref.ToUnitID); err != nil {
		return err
	}
	fields, _ := json.Marshal(map[string]any{"status": status, "reopened": ref.Reopened})
	if err := s.store.Write(ctx, schema.KindReferral, id, fields); err != nil {
		return err
	}
	s.audit(ctx, p.Actor(), "referral_status", "referral:"+id.String(), "ok", 1, requestID(c))
	return c.Redirect("/dashboard/referrals", fiber.StatusSeeOther)
}
