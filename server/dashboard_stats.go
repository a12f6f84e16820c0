package server

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
)

// statsView is what the statistics page shows, as its query string holds
// it, so that a view can be bookmarked and shared.
type statsView struct {
	Period   stats.Period
	From, To time.Time // days in Swedish time; To is included
	Unit     uuid.UUID // uuid.Nil: the whole organisation
	By       stats.Dim // the breakdown: unit, gender, age_band or setting
	Compare  bool      // the same days a year earlier beside
	Org      string    // an admin's ?org=
}

// maxBuckets is how many periods one view shows: two years of weeks.
const maxBuckets = 106

// query returns the view's query string.
func (v statsView) query(change func(*statsView)) string {
	if change != nil {
		change(&v)
	}
	q := url.Values{}
	q.Set("period", string(v.Period))
	q.Set("from", v.From.Format("2006-01-02"))
	q.Set("to", v.To.Format("2006-01-02"))
	if v.Unit != uuid.Nil {
		q.Set("unit", v.Unit.String())
	}
	q.Set("by", string(v.By))
	if !v.Compare {
		q.Set("compare", "0")
	}
	if v.Org != "" {
		q.Set("org", v.Org)
	}
	return "?" + q.Encode()
}

func day(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, stockholm)
}

// yearEarlier is the same day a year earlier; 29 February becomes the 28th.
func yearEarlier(t time.Time) time.Time {
	d := t.Day()
	if t.Month() == time.February && d == 29 {
		d = 28
	}
	return time.Date(t.Year()-1, t.Month(), d, 0, 0, 0, 0, stockholm)
}

// parseStatsView reads and checks the statistics page's query string.
func (s *Server) parseStatsView(c *fiber.Ctx, units map[uuid.UUID]string) (statsView, error) {
	l := lang(c)
	if err := onlyParams(c, "period", "from", "to", "unit", "by", "compare", "org", "format"); err != nil {
		return statsView{}, err
	}
	today := day(s.now().In(stockholm))
	v := statsView{Period: stats.Month, By: stats.ByUnit, Compare: true, Org: c.Query("org"),
		From: time.Date(today.Year(), today.Month()-11, 1, 0, 0, 0, 0, stockholm), To: today}
	if p := c.Query("period"); p != "" {
		v.Period = stats.Period(p)
		if !v.Period.Valid() {
			return v, badParam(l, "period", "want_period")
		}
	}
	date := func(name string, into *time.Time) error {
		val := c.Query(name)
		if val == "" {
			return nil
		}
		t, err := time.ParseInLocation("2006-01-02", val, stockholm)
		if err != nil || t.Year() < 2000 || t.Year() > 2999 {
			return badParam(l, name, "want_date")
		}
		*into = t
		return nil
	}
	if err := date("from", &v.From); err != nil {
		return v, err
	}
	if err := date("to", &v.To); err != nil {
		return v, err
	}
	if v.To.Before(v.From) {
		return v, badParam(l, "to", "want_to_after")
	}
	if n := len(buckets(v.Period, v.From, v.To)); n > maxBuckets {
		return v, badParam(l, "period", "want_fewer", n, maxBuckets)
	}
	if u := c.Query("unit"); u != "" {
		id, err := uuid.Parse(u)
		if err != nil || units[id] == "" {
			return v, badParam(l, "unit", "want_unit")
		}
		v.Unit = id
	}
	if b := c.Query("by"); b != "" {
		v.By = stats.Dim(b)
		if v.By != stats.ByUnit && v.By != stats.ByGender && v.By != stats.ByAgeBand && v.By != stats.BySetting {
			return v, badParam(l, "by", "want_by")
		}
	}
	switch c.Query("compare") {
	case "", "1":
	case "0":
		v.Compare = false
	default:
		return v, badParam(l, "compare", "want_compare")
	}
	if f := c.Query("format"); f != "" && f != "csv" {
		return v, badParam(l, "format", "want_format")
	}
	return v, nil
}

// bucket is one period of a view: its key as stats counts it and its label.
type bucket struct{ Key, Label string }

// buckets lists the periods of p that the days [from, to] touch, in order.
func buckets(p stats.Period, from, to time.Time) []bucket {
	var out []bucket
	for t := from; !t.After(to) && len(out) <= maxBuckets; {
		var next time.Time
		var key string
		switch p {
		case stats.Week:
			y, w := t.ISOWeek()
			key = fmt.Sprintf("%d-W%02d", y, w)
			next = t.AddDate(0, 0, 7-(int(t.Weekday())+6)%7)
		case stats.Quarter:
			q := (int(t.Month()) - 1) / 3
			key = fmt.Sprintf("%d-Q%d", t.Year(), q+1)
			next = time.Date(t.Year(), time.Month(3*q+4), 1, 0, 0, 0, 0, stockholm)
		case stats.Year:
			key = strconv.Itoa(t.Year())
			next = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, stockholm)
		default:
			key = t.Format("2006-01")
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, stockholm)
		}
		out = append(out, bucket{Key: key})
		t = next
	}
	return out
}

// periodLabel is how a period key reads: "mars 2026", "v. 11 2026",
// "kv. 1 2026", "2026".
func periodLabel(key string, l schema.Lang) string {
	switch {
	case strings.Contains(key, "-W"):
		y, w, _ := strings.Cut(key, "-W")
		w = strings.TrimPrefix(w, "0")
		if l == schema.Swedish {
			return "v. " + w + " " + y
		}
		return "Week " + w + " " + y
	case strings.Contains(key, "-Q"):
		y, q, _ := strings.Cut(key, "-Q")
		if l == schema.Swedish {
			return "kv. " + q + " " + y
		}
		return "Q" + q + " " + y
	case len(key) == 7:
		t, err := time.Parse("2006-01", key)
		if err != nil {
			return key
		}
		if l == schema.Swedish {
			return svMonths[t.Month()-1] + " " + key[:4]
		}
		return t.Format("Jan 2006")
	}
	return key
}

var svMonths = []string{"jan.", "feb.", "mars", "apr.", "maj", "juni", "juli", "aug.", "sep.", "okt.", "nov.", "dec."}

// indicatorDef is one column of the statistics: an indicator, or a share
// of two.
type indicatorDef struct {
	Key       string
	ind       stats.Indicator
	num, den  stats.Indicator // a share: num / den
	additive  bool
	isPercent bool
}

var dashColumns = []indicatorDef{
	{Key: "contacts", ind: stats.Contacts, additive: true},
	{Key: "unique_clients", ind: stats.UniqueClients},
	{Key: "syringes_out", ind: stats.SyringesOut, additive: true},
	{Key: "needles_out", ind: stats.NeedlesOut, additive: true},
	{Key: "syringes_returned", ind: stats.SyringesReturned, additive: true},
	{Key: "return_rate", num: stats.SyringesReturned, den: stats.SyringesOut, isPercent: true},
	{Key: "naloxone_doses", ind: stats.NaloxoneDoses, additive: true},
	{Key: "naloxone_handouts", ind: stats.NaloxoneHandouts, additive: true},
	{Key: "reversals", ind: stats.Reversals, additive: true},
	{Key: "referrals_made", ind: stats.Referrals, additive: true},
	{Key: "referrals_attended", ind: stats.ReferralsAttended, additive: true},
	{Key: "attended_share", num: stats.ReferralsAttended, den: stats.Referrals, isPercent: true},
}

// figures are one row's values, by indicator.
type figures map[stats.Indicator]int64

// cell is how one figure reads, and its raw value for the CSV ("" where
// there is none).
func (d indicatorDef) cell(f figures, l schema.Lang) (shown, raw string) {
	if f == nil {
		return "–", ""
	}
	if d.isPercent {
		den := f[d.den]
		if den == 0 {
			return "–", ""
		}
		share := float64(f[d.num]) / float64(den)
		return formatPercent(share, l), strconv.FormatFloat(100*share, 'f', 1, 64)
	}
	v := f[d.ind]
	return formatInt(v, l), strconv.FormatInt(v, 10)
}

func valuesOf(r *stats.Result, period, group string) figures {
	f := figures{}
	for _, ind := range stats.Indicators {
		f[ind] = r.Value(period, group, ind)
	}
	return f
}

// shownTable is a table of the page, kept for the CSV as it is shown.
type shownTable struct {
	ID, Caption string
	Head        []string // the first column's heading
	Columns     []column
	Rows        []shownRow
}

type column struct{ Key, Label, Def string }

type shownRow struct {
	Label, Raw string // Raw: the row's key in the CSV
	Cells      []string
	raws       []string
	Total      bool
}

func (s *Server) dashOverview(c *fiber.Ctx) error {
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
	v, err := s.parseStatsView(c, names)
	if err != nil {
		return err
	}
	base := stats.Query{Period: v.Period, Orgs: []uuid.UUID{org.ID}, Location: stockholm}
	if v.Unit != uuid.Nil {
		base.Units = []uuid.UUID{v.Unit}
	}
	compute := func(from, to time.Time, p stats.Period, by stats.Dim) (*stats.Result, error) {
		q := base
		q.From, q.To, q.Period, q.By = from, to.AddDate(0, 0, 1), p, by
		return s.store.ComputeStats(ctx, q)
	}
	pFrom, pTo := yearEarlier(v.From), yearEarlier(v.To)
	perPeriod, err := compute(v.From, v.To, v.Period, stats.ByTotal)
	if err != nil {
		return err
	}
	whole, err := compute(v.From, v.To, stats.Whole, v.By)
	if err != nil {
		return err
	}
	var prevPeriod, prevWhole *stats.Result
	if v.Compare {
		if prevPeriod, err = compute(pFrom, pTo, v.Period, stats.ByTotal); err != nil {
			return err
		}
		if prevWhole, err = compute(pFrom, pTo, stats.Whole, stats.ByTotal); err != nil {
			return err
		}
	}
	s.audit(ctx, dashPrincipal(c).Actor(), "stats", "org:"+org.ID.String(), "ok", int64(len(perPeriod.Periods)), requestID(c))

	var cols []column
	for _, d := range dashColumns {
		cols = append(cols, column{Key: d.Key, Label: text(d.Key, l), Def: text("def_"+d.Key, l)})
	}
	row := func(label, raw string, f figures, total bool) shownRow {
		r := shownRow{Label: label, Raw: raw, Total: total}
		for _, d := range dashColumns {
			shown, rv := d.cell(f, l)
			r.Cells = append(r.Cells, shown)
			r.raws = append(r.raws, rv)
		}
		return r
	}
	wholeKey := string(stats.Whole)
	cur := valuesOf(whole, wholeKey, "")
	rangeLabel := formatDay(v.From) + " – " + formatDay(v.To)
	prevLabel := formatDay(pFrom) + " – " + formatDay(pTo)

	// The summary: each indicator over the range, and a year earlier.
	summary := shownTable{ID: "summary", Caption: text("summary", l), Head: []string{text("indicator", l)},
		Columns: []column{{Key: "current", Label: rangeLabel}}}
	if v.Compare {
		summary.Columns = append(summary.Columns, column{Key: "year_earlier", Label: text("year_earlier", l) + " (" + prevLabel + ")"}, column{Key: "change", Label: text("change", l)})
	}
	var prev figures
	if v.Compare {
		prev = valuesOf(prevWhole, wholeKey, "")
	}
	var kpis []kpi
	for _, d := range dashColumns {
		shown, raw := d.cell(cur, l)
		r := shownRow{Label: text(d.Key, l), Raw: d.Key, Cells: []string{shown}, raws: []string{raw}}
		k := kpi{Key: d.Key, Label: text(d.Key, l), Def: text("def_"+d.Key, l), Value: shown}
		if v.Compare {
			ps, pr := d.cell(prev, l)
			change, craw := "–", ""
			if !d.isPercent && prev[d.ind] > 0 {
				ch := float64(cur[d.ind]-prev[d.ind]) / float64(prev[d.ind])
				change = formatPercent(ch, l)
				if ch > 0 {
					change = "+" + change
				}
				craw = strconv.FormatFloat(100*ch, 'f', 1, 64)
			}
			r.Cells = append(r.Cells, ps, change)
			r.raws = append(r.raws, pr, craw)
			k.Prev = ps
		}
		summary.Rows = append(summary.Rows, r)
		kpis = append(kpis, k)
	}

	// Per period, with the same periods a year earlier.
	bs := buckets(v.Period, v.From, v.To)
	var pbs []bucket
	if v.Compare {
		pbs = buckets(v.Period, pFrom, pTo)
	}
	byPeriod := shownTable{ID: "by-period", Caption: text("by_period_"+string(v.Period), l), Head: []string{text("period", l)}, Columns: cols}
	var prevTable shownTable
	if v.Compare {
		prevTable = shownTable{ID: "by-period-previous", Caption: text("by_period_"+string(v.Period), l) + ", " + strings.ToLower(text("year_earlier", l)), Head: []string{text("period", l)}, Columns: cols}
	}
	labels := make([]string, len(bs))
	contacts := make([]int64, len(bs))
	prevContacts := make([]int64, len(bs))
	out, back := make([]int64, len(bs)), make([]int64, len(bs))
	for i, b := range bs {
		labels[i] = periodLabel(b.Key, l)
		f := valuesOf(perPeriod, b.Key, "")
		byPeriod.Rows = append(byPeriod.Rows, row(labels[i], b.Key, f, false))
		contacts[i], out[i], back[i] = f[stats.Contacts], f[stats.SyringesOut], f[stats.SyringesReturned]
		if v.Compare && i < len(pbs) {
			pf := valuesOf(prevPeriod, pbs[i].Key, "")
			prevContacts[i] = pf[stats.Contacts]
			prevTable.Rows = append(prevTable.Rows, row(periodLabel(pbs[i].Key, l), pbs[i].Key, pf, false))
		}
	}
	byPeriod.Rows = append(byPeriod.Rows, row(text("total", l), "total", cur, true))
	if v.Compare {
		prevTable.Rows = append(prevTable.Rows, row(text("total", l), "total", prev, true))
	}
	contactSeries := []series{{Name: rangeLabel, Values: contacts}}
	if v.Compare {
		contactSeries = append(contactSeries, series{Name: text("year_earlier", l) + " (" + prevLabel + ")", Values: prevContacts})
	}
	contactsChart := columnChart("chart-contacts", text("contacts_per_period", l)+", "+strings.ToLower(text("period_"+string(v.Period), l)), text("chart_desc", l), labels, contactSeries, l)
	syringesChart := columnChart("chart-syringes", text("syringes_per_period", l), text("chart_desc", l), labels,
		[]series{{Name: text("syringes_out", l), Values: out}, {Name: text("syringes_returned", l), Values: back}}, l)

	// The breakdown, in the enumerations' order, "not stated" last.
	by := shownTable{ID: "by-group", Caption: text("by_"+string(v.By), l), Head: []string{text("group_"+string(v.By), l)}, Columns: cols}
	var groupBars []bar
	for _, g := range orderedGroups(whole.Groups, v.By, names, l) {
		f := valuesOf(whole, wholeKey, g.Key)
		by.Rows = append(by.Rows, row(g.Label, g.Key, f, false))
		groupBars = append(groupBars, bar{g.Label, f[stats.Contacts]})
	}
	by.Rows = append(by.Rows, row(text("total", l), "total", cur, true))
	groupChart := barsChart("chart-by-group", text("contacts", l)+" "+strings.ToLower(text("by_"+string(v.By), l)), groupBars, l)

	// Referrals by service, with the share of all referrals.
	services := shownTable{ID: "by-service", Caption: text("by_service", l), Head: []string{text("service", l)},
		Columns: []column{{Key: "referrals", Label: text("referrals_made", l) + ", " + rangeLabel, Def: text("def_referrals_made", l)}, {Key: "share", Label: text("share_of_referrals", l)}}}
	if v.Compare {
		services.Columns = append(services.Columns, column{Key: "year_earlier", Label: text("year_earlier", l) + " (" + prevLabel + ")"})
	}
	var serviceBars []bar
	for _, o := range schema.ServiceCategoryEnum.Options {
		n := cur[stats.ReferralsTo(schema.ServiceCategory(o.Code))]
		share, sraw := "–", ""
		if t := cur[stats.Referrals]; t > 0 {
			share, sraw = formatPercent(float64(n)/float64(t), l), strconv.FormatFloat(100*float64(n)/float64(t), 'f', 1, 64)
		}
		r := shownRow{Label: o.Label(l), Raw: o.Code, Cells: []string{formatInt(n, l), share}, raws: []string{strconv.FormatInt(n, 10), sraw}}
		if v.Compare {
			pn := prev[stats.ReferralsTo(schema.ServiceCategory(o.Code))]
			r.Cells, r.raws = append(r.Cells, formatInt(pn, l)), append(r.raws, strconv.FormatInt(pn, 10))
		}
		services.Rows = append(services.Rows, r)
		serviceBars = append(serviceBars, bar{o.Label(l), n})
	}
	serviceChart := barsChart("chart-by-service", text("by_service", l), serviceBars, l)

	testsTable, careTable := healthTables(cur, prev, rangeLabel, prevLabel, l)

	tables := []shownTable{summary, byPeriod}
	if v.Compare {
		tables = append(tables, prevTable)
	}
	tables = append(tables, by, services, testsTable, careTable)
	if c.Query("format") == "csv" {
		return sendCSV(c, org, v, tables)
	}

	devs, err := s.DevicesOf(ctx, org.ID)
	if err != nil {
		return err
	}
	stale := 0
	for _, d := range devs {
		if d.State == StateActive && isStale(d, s.now()) && (v.Unit == uuid.Nil || d.UnitID == v.Unit) {
			stale++
		}
	}
	// Controls: quick picks, previous and next, and the form.
	today := day(s.now().In(stockholm))
	monthStart := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, stockholm)
	type link struct{ Label, Href, ID string }
	pick := func(id string, from, to time.Time, p stats.Period) link {
		return link{Label: text("pick_"+id, l), ID: "pick-" + strings.ReplaceAll(id, "_", "-"), Href: v.query(func(w *statsView) { w.From, w.To, w.Period = from, to, p })}
	}
	picks := []link{
		pick("this_month", monthStart, today, stats.Week),
		pick("last_month", monthStart.AddDate(0, -1, 0), monthStart.AddDate(0, 0, -1), stats.Week),
		pick("this_year", time.Date(today.Year(), 1, 1, 0, 0, 0, 0, stockholm), today, stats.Month),
		pick("last_year", time.Date(today.Year()-1, 1, 1, 0, 0, 0, 0, stockholm), time.Date(today.Year()-1, 12, 31, 0, 0, 0, 0, stockholm), stats.Month),
		pick("last_12_months", time.Date(today.Year(), today.Month()-11, 1, 0, 0, 0, 0, stockholm), today, stats.Month),
	}
	pf, pt := shift(v.From, v.To, -1)
	nf, nt := shift(v.From, v.To, 1)
	var unitOptions []choice
	for _, u := range units {
		unitOptions = append(unitOptions, choice{Code: u.ID.String(), Label: u.Name})
	}
	title := text("statistics", l) + ": " + org.Name
	if v.Unit != uuid.Nil {
		title += " – " + names[v.Unit]
	}
	var drill []link
	if v.By == stats.ByUnit && v.Unit == uuid.Nil {
		for _, g := range by.Rows {
			if !g.Total {
				drill = append(drill, link{Label: g.Label, Href: v.query(func(w *statsView) { w.Unit = uuid.MustParse(g.Raw); w.By = stats.ByGender })})
			}
		}
	}
	return s.render(c, "overview", l, map[string]any{
		"Title": title, "OrgName": org.Name, "View": v, "Range": rangeLabel, "PrevRange": prevLabel,
		"From": v.From.Format("2006-01-02"), "To": v.To.Format("2006-01-02"), "Unit": v.Unit.String(), "UnitName": names[v.Unit],
		"Units": unitOptions, "Periods": []string{"week", "month", "quarter", "year"}, "Bys": []string{"unit", "gender", "age_band", "setting"},
		"Picks": picks, "Prev": v.query(func(w *statsView) { w.From, w.To = pf, pt }), "Next": v.query(func(w *statsView) { w.From, w.To = nf, nt }),
		"AllUnits": v.query(func(w *statsView) { w.Unit = uuid.Nil; w.By = stats.ByUnit }), "Drill": drill,
		"CSV": v.query(nil) + "&format=csv", "KPIs": kpis, "Stale": stale,
		"Summary": summary, "ByPeriod": byPeriod, "PrevTable": prevTable, "ByGroup": by, "Services": services,
		"Tests": testsTable, "Care": careTable,
		"ContactsChart": contactsChart, "SyringesChart": syringesChart, "GroupChart": groupChart, "ServiceChart": serviceChart,
		"Columns": cols,
	})
}

type kpi struct{ Key, Label, Def, Value, Prev string }

// shift moves the days [from, to] back (-1) or on (1). A range that
// starts on the first of a month moves by the calendar months it touches
// and becomes whole months (this month so far: back to the whole of last
// month); any other range moves by its number of days.
func shift(from, to time.Time, dir int) (time.Time, time.Time) {
	if from.Day() == 1 {
		months := (to.Year()-from.Year())*12 + int(to.Month()-from.Month()) + 1
		nf := from.AddDate(0, dir*months, 0)
		return nf, nf.AddDate(0, months, -1)
	}
	days := int(to.Sub(from).Hours()/24+0.5) + 1
	return from.AddDate(0, 0, dir*days), to.AddDate(0, 0, dir*days)
}

// orderedGroups puts the groups of a breakdown in their natural order:
// genders, age bands and settings as their enumerations list them ("not
// stated" last; by setting, the records without a contact after "other"),
// units by name; labels in the reader's language.
func orderedGroups(groups []stats.Group, by stats.Dim, units map[uuid.UUID]string, l schema.Lang) []stats.Group {
	have := map[string]bool{}
	for _, g := range groups {
		have[g.Key] = true
	}
	var e *schema.Enumeration
	switch by {
	case stats.ByGender:
		e = schema.GenderEnum
	case stats.ByAgeBand:
		e = schema.AgeBandEnum
	case stats.BySetting:
		e = schema.SettingEnum
	}
	var out []stats.Group
	if e != nil {
		for _, o := range e.Options {
			if have[o.Code] {
				out = append(out, stats.Group{Key: o.Code, Label: o.Label(l)})
			}
		}
		if by == stats.BySetting && have[stats.NoSetting] {
			out = append(out, stats.Group{Key: stats.NoSetting, Label: stats.SettingLabel(stats.NoSetting, l)})
		}
		return out
	}
	for _, g := range groups { // stats orders by label: the units' names
		if id, err := uuid.Parse(g.Key); err == nil && units[id] != "" {
			g.Label = units[id]
		}
		out = append(out, g)
	}
	return out
}

// sendCSV answers with the tables of the page as they are shown: one line
// a figure, with the view's days, unit and breakdown, and the row's and
// column's labels as the page shows them, in its language.
func sendCSV(c *fiber.Ctx, org *schema.Organisation, v statsView, tables []shownTable) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"organisation", "unit", "from", "to", "period", "table", "row", "column", "value", "by", "row_label", "column_label"})
	unit := ""
	if v.Unit != uuid.Nil {
		unit = v.Unit.String()
	}
	for _, t := range tables {
		for _, r := range t.Rows {
			for i, col := range t.Columns {
				w.Write([]string{org.ID.String(), unit, v.From.Format("2006-01-02"), v.To.Format("2006-01-02"), string(v.Period),
					t.ID, csvSafe(r.Raw), col.Key, r.raws[i], string(v.By), csvSafe(r.Label), csvSafe(col.Label)})
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="brygga-%s-%s.csv"`, v.From.Format("2006-01-02"), v.To.Format("2006-01-02")))
	return c.Send(buf.Bytes())
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
