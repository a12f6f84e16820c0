package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/wire"
)

// stockholm is the time zone periods are cut in.
var stockholm = func() *time.Location {
	if loc, err := time.LoadLocation("Europe/Stockholm"); err == nil {
		return loc
	}
	return time.UTC
}()

// statsQuery reads from, to, period and by from the query string. from and
// to are dates (YYYY-MM-DD); to is inclusive. The default is the last
// twelve months by month.
func (s *Server) statsQuery(c *fiber.Ctx) (stats.Query, error) {
	now := s.now().In(stockholm)
	q := stats.Query{Period: stats.Period(c.Query("period", string(stats.Month))), By: stats.Dim(c.Query("by")), Location: stockholm}
	if q.By == "total" {
		q.By = stats.ByTotal
	}
	day := func(name string, def time.Time) (time.Time, error) {
		v := c.Query(name)
		if v == "" {
			return def, nil
		}
		t, err := time.ParseInLocation("2006-01-02", v, stockholm)
		if err != nil {
			return t, &wire.Error{Code: wire.CodeMalformed, Field: name, Message: name + " must be a date YYYY-MM-DD"}
		}
		if t.Year() < 2000 || t.Year() > 2999 {
			return t, &wire.Error{Code: wire.CodeMalformed, Field: name, Message: name + " must be a date from 2000 to 2999"}
		}
		return t, nil
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, stockholm)
	var err error
	if q.From, err = day("from", today.AddDate(-1, 0, 1)); err != nil {
		return q, err
	}
	to, err := day("to", today)
	if err != nil {
		return q, err
	}
	q.To = to.AddDate(0, 0, 1)
	switch {
	case !q.Period.Valid():
		return q, &wire.Error{Code: wire.CodeMalformed, Field: "period", Message: "period must be week, month, quarter or year"}
	case !q.By.Valid():
		return q, &wire.Error{Code: wire.CodeMalformed, Field: "by", Message: "by must be unit, municipality, organisation, gender, age_band or setting"}
	case !q.To.After(q.From):
		return q, &wire.Error{Code: wire.CodeMalformed, Field: "to", Message: "to must not be before from"}
	case q.To.After(q.From.AddDate(10, 0, 0)):
		return q, &wire.Error{Code: wire.CodeMalformed, Field: "from", Message: "at most ten years at a time"}
	}
	return q, nil
}

// StatsRow is one group of a manager's statistics in one period.
type StatsRow struct {
	Period     string                    `json:"period"`
	Group      string                    `json:"group"`
	Label      string                    `json:"label"`
	Indicators map[stats.Indicator]int64 `json:"indicators"`
	// ReturnRate is used syringes returned per syringe handed out.
	ReturnRate *float64 `json:"return_rate"`
	// AttendedShare is the share of the referrals made that reached
	// attended ("percent referred who initiate care").
	AttendedShare *float64 `json:"attended_share"`
}

// Stats is the answer of GET /v1/stats.
type Stats struct {
	OrgID  uuid.UUID    `json:"org_id"`
	From   time.Time    `json:"from"`
	To     time.Time    `json:"to"`
	Period stats.Period `json:"period"`
	By     stats.Dim    `json:"by"`
	Rows   []StatsRow   `json:"rows"`
}

// OrgStats computes an organisation's statistics. They stay inside the
// organisation, so nothing is suppressed.
func (s *Server) OrgStats(ctx context.Context, org uuid.UUID, q stats.Query) (*Stats, error) {
	q.Orgs = []uuid.UUID{org}
	r, err := s.store.ComputeStats(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &Stats{OrgID: org, From: q.From, To: q.To, Period: q.Period, By: q.By, Rows: []StatsRow{}}
	row := func(p, g, label string) StatsRow {
		sr := StatsRow{Period: p, Group: g, Label: label, Indicators: map[stats.Indicator]int64{}}
		key := g
		if g == stats.TotalGroup {
			key = ""
		}
		for _, ind := range stats.Indicators {
			sr.Indicators[ind] = r.Value(p, key, ind)
		}
		if out := sr.Indicators[stats.SyringesOut]; out > 0 {
			rate := float64(sr.Indicators[stats.SyringesReturned]) / float64(out)
			sr.ReturnRate = &rate
		}
		if n := sr.Indicators[stats.Referrals]; n > 0 {
			share := float64(sr.Indicators[stats.ReferralsAttended]) / float64(n)
			sr.AttendedShare = &share
		}
		return sr
	}
	for _, p := range r.Periods {
		for _, g := range r.Groups {
			out.Rows = append(out.Rows, row(p, g.Key, g.Label))
		}
		out.Rows = append(out.Rows, row(p, stats.TotalGroup, "Total"))
	}
	return out, nil
}

func (s *Server) getStats(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	org := p.OrgID
	if p.Role == RoleAdmin {
		id, err := uuid.Parse(c.Query("org"))
		if err != nil {
			return &wire.Error{Code: wire.CodeMalformed, Field: "org", Message: "an admin names the organisation: org=ID"}
		}
		org = id
	}
	q, err := s.statsQuery(c)
	if err != nil {
		return err
	}
	st, err := s.OrgStats(c.UserContext(), org, q)
	if err != nil {
		return err
	}
	s.audit(c.UserContext(), p.Actor(), "stats", "org:"+org.String(), "ok", int64(len(st.Rows)), requestID(c))
	return c.JSON(st)
}

// reportQuery reads period, year and by of an authority report: every
// period of a kind in a year, no dates. from, to, day and date are refused.
func (s *Server) reportQuery(c *fiber.Ctx) (stats.Period, int, stats.Dim, error) {
	for _, name := range []string{"from", "to", "day", "date"} {
		if c.Query(name) != "" {
			return "", 0, "", &wire.Error{Code: wire.CodeMalformed, Field: name,
				Message: "reports cover whole calendar periods: " + name + " is not accepted; ask for period and year"}
		}
	}
	now := s.now().In(stockholm)
	period := stats.Period(c.Query("period", string(stats.Month)))
	if !period.Valid() {
		return "", 0, "", &wire.Error{Code: wire.CodeMalformed, Field: "period", Message: "period must be week, month, quarter or year"}
	}
	by := stats.Dim(c.Query("by"))
	if by == "total" {
		by = stats.ByTotal
	}
	if !by.Published() {
		return "", 0, "", &wire.Error{Code: wire.CodeMalformed, Field: "by", Message: "by must be total, unit, municipality, organisation, gender or age_band"}
	}
	current := now.Year()
	if period == stats.Week {
		current, _ = now.ISOWeek()
	}
	year, err := queryInt(c, "year", current)
	if err != nil {
		return "", 0, "", err
	}
	if year < 2000 || year > current {
		return "", 0, "", &wire.Error{Code: wire.CodeMalformed, Field: "year", Message: "year must be from 2000 to the current one, " + strconv.Itoa(current)}
	}
	return period, year, by, nil
}

// byName names a breakdown in the audit log.
func byName(by stats.Dim) string {
	if by == stats.ByTotal {
		return "total"
	}
	return string(by)
}

// getReport serves the authority one table of the region's publication:
// aggregates only, perturbed, audited, every pull audited.
func (s *Server) getReport(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	period, year, by, err := s.reportQuery(c)
	if err != nil {
		return err
	}
	format, err := reportFormat(c)
	if err != nil {
		return err
	}
	pub, err := s.store.Publication(c.UserContext(), &s.reports, s.now(), s.cfg.K)
	if errors.Is(err, stats.ErrBuilding) {
		c.Set(fiber.HeaderRetryAfter, "10")
		return &wire.Error{Code: wire.CodeReportBuilding, Message: "the reports are being built after a restart: retry in a few seconds"}
	}
	if err != nil {
		return err
	}
	if pub.Stale {
		c.Set("X-Brygga-Report-Stale", "true")
	}
	if pub.Audit.Unresolved > 0 || pub.Audit.Unconverged > 0 {
		s.log.Warn("report audit incomplete", "unresolved", pub.Audit.Unresolved, "unconverged", pub.Audit.Unconverged, "request_id", requestID(c))
	}
	rep := pub.Report(period, year, by)
	s.audit(c.UserContext(), p.Actor(), "report", "indicators "+string(period)+" "+strconv.Itoa(year)+" by "+byName(by), "ok", int64(len(rep.Rows)), requestID(c))
	if format == "csv" {
		var buf bytes.Buffer
		if err := rep.WriteCSV(&buf); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="brygga-indicators.csv"`)
		return c.Send(buf.Bytes())
	}
	return c.JSON(rep)
}

// ClientCard is a fresh client code with its QR image.
type ClientCard struct {
	Code      schema.ClientCode
	QRPayload string
	PNG       []byte
}

// NewClientCards makes n fresh client codes with their QR codes, for cards
// a unit hands out before any device is in the field. Codes are random;
// nothing is stored until a device records a client with one.
func NewClientCards(n int) ([]ClientCard, error) {
	cards := make([]ClientCard, n)
	for i := range cards {
		code, err := schema.NewClientCode(rand.Reader)
		if err != nil {
			return nil, err
		}
		png, err := qrcode.Encode(code.QRPayload(), qrcode.Medium, 256)
		if err != nil {
			return nil, err
		}
		cards[i] = ClientCard{Code: code, QRPayload: code.QRPayload(), PNG: png}
	}
	return cards, nil
}

var cardsPage = template.Must(template.New("cards").Funcs(template.FuncMap{
	"png": func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
}).Parse(`<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>Brygga – klientkort</title>
<style>
@page { size: A4; margin: 10mm }
body { font-family: sans-serif; margin: 0 }
.sheet { display: grid; grid-template-columns: repeat(3, 60mm); gap: 4mm }
.card { border: 1px dashed #999; width: 60mm; height: 85mm; box-sizing: border-box; padding: 4mm; text-align: center; page-break-inside: avoid }
.card img { width: 48mm; height: 48mm }
.code { font: bold 16pt monospace; letter-spacing: 1px; margin-top: 2mm }
.note { font-size: 8pt; color: #444 }
</style></head><body><div class="sheet">
{{range .}}<div class="card"><img alt="QR {{.Code}}" src="data:image/png;base64,{{png .PNG}}"><div class="code">{{.Code}}</div><div class="note">Din kod · Your code</div></div>
{{end}}</div></body></html>`))

func (s *Server) getClientCards(c *fiber.Ctx) error {
	n, err := queryInt(c, "count", 12)
	if err != nil {
		return err
	}
	if n < 1 || n > 300 {
		return &wire.Error{Code: wire.CodeMalformed, Field: "count", Message: "count must be between 1 and 300"}
	}
	cards, err := NewClientCards(n)
	if err != nil {
		return err
	}
	if c.Query("format") == "png" {
		if n != 1 {
			return &wire.Error{Code: wire.CodeMalformed, Field: "count", Message: "format=png makes one card: count=1"}
		}
		c.Set("X-Brygga-Client-Code", string(cards[0].Code))
		c.Set(fiber.HeaderContentType, "image/png")
		return c.Send(cards[0].PNG)
	}
	var buf bytes.Buffer
	if err := cardsPage.Execute(&buf, cards); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}
