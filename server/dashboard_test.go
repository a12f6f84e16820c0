package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// browser returns a headless Chromium context, or fails the test with how
// to install it.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("the dashboard test needs Chromium: apt-get install chromium (Debian), or put chromium on PATH")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel3)
	checkBrowser(t, ctx)
	return ctx
}

// pushRecords enrols a device of unit and pushes records through the
// sync endpoint.
func pushRecords(t *testing.T, srv *server.Server, base string, unit, staff uuid.UUID, recs func(dev uuid.UUID) []schema.Record) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	code, err := srv.NewEnrolCode(ctx, unit, "test")
	if err != nil {
		t.Fatal(err)
	}
	e, err := enrolIn(ctx, t, srv, code.Code, newKey(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clock := hlc.NewClock(nil, 0)
	req := wire.PushRequest{Versions: wire.Current(), Clock: clock.Now()}
	for i, rec := range recs(e.DeviceID) {
		h := schema.HeaderOf(rec)
		h.UnitID, h.DeviceID, h.StaffID = unit, e.DeviceID, staff
		obj := map[string]json.RawMessage{}
		for _, f := range rec.Fields() {
			obj[f.Name], _ = f.MarshalJSON()
		}
		fields, _ := json.Marshal(obj)
		req.Mutations = append(req.Mutations, wire.Mutation{Seq: int64(i + 1), Kind: rec.Kind(), ID: rec.RecordID(), Version: clock.Now(), Fields: fields})
	}
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequest("POST", base+"/v1/sync/push", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+e.AccessToken)
	resp, err := http.DefaultTransport.RoundTrip(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr wire.PushResponse
	json.NewDecoder(resp.Body).Decode(&pr)
	for _, r := range pr.Results {
		if r.Status != wire.Applied {
			t.Fatalf("push: %+v %v", r, r.Error)
		}
	}
	return e.DeviceID
}

// screenshots is the folder the browser tests save each view in:
// $BRYGGA_SCREENSHOTS, or testdata/screenshots (not committed).
func screenshots(t *testing.T) string {
	dir := os.Getenv("BRYGGA_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// axeSource is axe-core, vendored with its licence header.
func axeSource(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type axeViolation struct {
	ID    string   `json:"id"`
	Help  string   `json:"help"`
	Nodes []string `json:"nodes"`
}

// checkView runs axe-core (WCAG 2.1 A and AA) on the page the browser
// shows, fails the test for every violation, and saves a full-page
// screenshot as name.png.
func checkView(t *testing.T, b context.Context, axe, dir, name string) {
	t.Helper()
	var loaded bool
	if err := chromedp.Run(b, chromedp.Evaluate(`typeof axe !== 'undefined'`, &loaded)); err != nil {
		t.Fatal(err)
	}
	if !loaded {
		if err := chromedp.Run(b, chromedp.Evaluate(axe, nil)); err != nil {
			t.Fatalf("%s: loading axe: %v", name, err)
		}
	}
	var out []axeViolation
	err := chromedp.Run(b, chromedp.Evaluate(`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
		.then(r => r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))`, &out,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err != nil {
		t.Fatalf("%s: axe: %v", name, err)
	}
	for _, v := range out {
		t.Errorf("%s: axe %s: %s at %v", name, v.ID, v.Help, v.Nodes)
	}
	t.Logf("axe %s: %d violations", name, len(out))
	axeResults[name] = len(out)
	var png []byte
	if err := chromedp.Run(b, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

var axeResults = map[string]int{}

func TestDashboardInBrowser(t *testing.T) {
	ctx := context.Background()
	// The server's clock can be moved on, to see tablets go stale; the
	// session lives long enough for that.
	var ahead atomic.Int64
	srv, err := server.Open(ctx, server.Config{DBPath: testDB(t), AccessTTL: 7 * 24 * time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(ctx) })
	base := "http://" + ln.Addr().String()
	dir, axe := screenshots(t), axeSource(t)

	muni, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Åre kommun", "23")
	region, _ := srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	team, _ := srv.AddUnit(ctx, muni.ID, "Mobila teamet Åre", "2321")
	site, _ := srv.AddUnit(ctx, muni.ID, "Sprututbytet Åre", "2321")
	clinic, _ := srv.AddUnit(ctx, region.ID, "Beroendemottagningen", "2380", schema.ServiceAddictionClinic)
	staff, _ := srv.AddStaff(ctx, team.ID, schema.RoleOutreachWorker)
	siteStaff, _ := srv.AddStaff(ctx, site.ID, schema.RoleNurse)
	clinicStaff, _ := srv.AddStaff(ctx, clinic.ID, schema.RoleNurse)
	for _, u := range []struct {
		name string
		role server.Role
		unit uuid.UUID
	}{{"chef.are", server.RoleManager, team.ID}, {"admin", server.RoleAdmin, uuid.Nil}} {
		if _, err := srv.AddUser(ctx, u.name, "ett långt lösenord", u.role, uuid.Nil, u.unit); err != nil {
			t.Fatal(err)
		}
	}

	// The team: seven contacts (one more voided) of women 25-29, 20
	// syringes out and 10 back each; a man, someone under 18 and someone
	// not stated; 356 contacts at the site, so that the longest bar's
	// value must fit. Two naloxone handouts of two doses.
	now := time.Now().UTC().Truncate(time.Millisecond)
	pushRecords(t, srv, base, team.ID, staff.ID, func(dev uuid.UUID) []schema.Record {
		var recs []schema.Record
		for i := range 8 {
			c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-time.Duration(i) * time.Hour), Voided: i == 7},
				Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2321"}
			recs = append(recs, c, &schema.SyringeExchange{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: c.OccurredAt},
				ContactID: c.ID, SyringesOut: 20, SyringesReturned: 10})
			if i < 2 {
				recs = append(recs, &schema.NaloxoneHandout{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: c.OccurredAt},
					ContactID: c.ID, Doses: 2, Reason: schema.NaloxoneFirstKit})
			}
		}
		for _, g := range []struct {
			g schema.Gender
			a schema.AgeBand
		}{{schema.GenderNotStated, schema.AgeNotStated}, {schema.GenderMan, schema.AgeUnder18}, {schema.GenderOther, schema.Age40to49}} {
			recs = append(recs, &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-2 * time.Hour)},
				Gender: g.g, AgeBand: g.a, Setting: schema.SettingStreet, AreaCode: "2321"})
		}
		return recs
	})
	pushRecords(t, srv, base, site.ID, siteStaff.ID, func(uuid.UUID) []schema.Record {
		var recs []schema.Record
		for range 356 {
			recs = append(recs, &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-3 * time.Hour)},
				Gender: schema.GenderMan, AgeBand: schema.Age30to39, Setting: schema.SettingFixedSite, AreaCode: "2321"})
		}
		return recs
	})
	// Referrals: from the clinic to the team (for the team to follow up;
	// one is closed), and two from the team to the clinic, one attended,
	// one sent 20 days ago and not answered.
	in := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-time.Hour)},
		Service: schema.ServiceHousing, ToUnitID: team.ID, Status: schema.StatusSent}
	closed := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-48 * time.Hour)},
		Service: schema.ServiceSocialServices, ToUnitID: team.ID, Status: schema.StatusAttended}
	pushRecords(t, srv, base, clinic.ID, clinicStaff.ID, func(uuid.UUID) []schema.Record { return []schema.Record{in, closed} })
	old := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-20 * 24 * time.Hour)},
		Service: schema.ServiceAddictionClinic, ToUnitID: clinic.ID, Status: schema.StatusSent}
	attended := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-time.Hour)},
		Service: schema.ServiceOpioidSubstitution, ToUnitID: clinic.ID, Status: schema.StatusAttended}
	pushRecords(t, srv, base, team.ID, staff.ID, func(uuid.UUID) []schema.Record { return []schema.Record{old, attended} })

	b := browser(t)
	if err := chromedp.Run(b, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		if err := chromedp.Run(b, chromedp.Text(sel, &s, chromedp.ByQuery)); err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string, out any) {
		t.Helper()
		if err := chromedp.Run(b, chromedp.Evaluate(js, out)); err != nil {
			t.Fatalf("%s: %v", js, err)
		}
	}
	run := func(actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(b, actions...); err != nil {
			t.Fatal(err)
		}
	}

	// The login page, then the statistics of the last twelve months.
	run(chromedp.Navigate(base+"/dashboard/login?lang=en"), chromedp.WaitVisible(`#username`, chromedp.ByID))
	checkView(t, b, axe, dir, "login-en")
	run(chromedp.SendKeys(`#username`, "chef.are", chromedp.ByID),
		chromedp.SendKeys(`#password`, "ett långt lösenord", chromedp.ByID),
		chromedp.Click(`#login`, chromedp.ByID),
		chromedp.WaitVisible(`#kpi-contacts`, chromedp.ByID))
	checkView(t, b, axe, dir, "statistics-en")
	// The keyboard: the first Tab reaches the skip link, which moves the
	// focus to the page's content; the focus is visible.
	var focused, outline string
	run(chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.className`, &focused),
		chromedp.Evaluate(`getComputedStyle(document.activeElement).outlineStyle`, &outline))
	if focused != "skip" || outline != "solid" {
		t.Errorf("the first Tab focuses %q with outline %q", focused, outline)
	}
	run(chromedp.KeyEvent("\r"), chromedp.Evaluate(`document.activeElement.id`, &focused))
	if focused != "main" {
		t.Errorf("the skip link moves the focus to %q", focused)
	}
	for sel, want := range map[string]string{
		"#kpi-contacts b": "366", "#kpi-syringes_out b": "140", "#kpi-naloxone_doses b": "4", "#kpi-naloxone_handouts b": "2",
		"#kpi-referrals_made b": "2", "#kpi-referrals_attended b": "1", "#kpi-attended_share b": "50%", "#kpi-return_rate b": "50%",
	} {
		if got := text(sel); got != want {
			t.Errorf("%s reads %q, want %q", sel, got, want)
		}
	}
	// Every chart has an accessible name and the by-unit chart's longest
	// bar keeps its value inside the drawing.
	var names []string
	eval(`Array.from(document.querySelectorAll('svg.chart')).map(s => s.getAttribute('role') + ':' + document.getElementById(s.getAttribute('aria-labelledby').split(' ')[0]).textContent)`, &names)
	if len(names) != 4 {
		t.Errorf("charts: %q", names)
	}
	var fits bool
	eval(`(() => { const s = document.querySelector('#chart-by-group'); const w = s.viewBox.baseVal.width;
		return Array.from(s.querySelectorAll('text.value')).every(t => t.getBBox().x + t.getBBox().width <= w) && Array.from(s.querySelectorAll('text.value')).some(t => t.textContent === '356') })()`, &fits)
	if !fits {
		t.Error("a bar's value is cut off, or 356 is not shown")
	}
	var svc string
	eval(`document.querySelector('#by-service tr[data-key="opioid_substitution"]').textContent`, &svc)
	if !strings.Contains(svc, "1") || !strings.Contains(svc, "50%") {
		t.Errorf("referrals by service: %q", svc)
	}

	// By gender, in the enumeration's order, "Not stated" last.
	run(chromedp.SetValue(`#by`, "gender", chromedp.ByID), chromedp.Click(`#apply`, chromedp.ByID),
		chromedp.WaitVisible(`#by-group tr[data-key="woman"]`, chromedp.ByQuery))
	var order string
	eval(`Array.from(document.querySelectorAll('#by-group tbody th')).map(t => t.textContent).join('|')`, &order)
	if order != "Woman|Man|Other|Not stated|Total" {
		t.Errorf("genders in the order %q", order)
	}
	var loc string
	eval(`location.search`, &loc)
	if !strings.Contains(loc, "by=gender") {
		t.Errorf("the view is not in the URL: %q", loc)
	}
	// pageCSV downloads the CSV the page links to, in the browser's
	// session.
	pageCSV := func() [][]string {
		t.Helper()
		var href string
		var cookies []*network.Cookie
		run(chromedp.AttributeValue(`#csv`, "href", &href, nil, chromedp.ByID),
			chromedp.ActionFunc(func(ctx context.Context) error {
				var err error
				cookies, err = network.GetCookies().Do(ctx)
				return err
			}))
		req, _ := http.NewRequest("GET", base+"/dashboard/"+href, nil)
		for _, c := range cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Fatalf("csv: %v, %s", err, resp.Header.Get("Content-Type"))
		}
		return rows
	}

	// By setting, chosen with the keyboard alone (from "By gender", two
	// steps down the picker, then Tab to the button and Enter): where the
	// contacts took place, in the enumeration's order, the referrals sent
	// without a contact last; the figures of each setting, in English and
	// in Swedish.
	run(chromedp.Focus(`#by`, chromedp.ByID), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.id`, &focused))
	if focused != "apply" {
		t.Errorf("two Tabs from the breakdown reach %q, not the button", focused)
	}
	run(chromedp.KeyEvent("\r"), chromedp.WaitVisible(`#by-group tr[data-key="street"]`, chromedp.ByQuery))
	eval(`Array.from(document.querySelectorAll('#by-group tbody th')).map(t => t.textContent).join('|')`, &order)
	if order != "Street outreach|Fixed site|Not linked to a contact|Total" {
		t.Errorf("settings in the order %q", order)
	}
	cell := func(table, row, col string) string {
		t.Helper()
		var s string
		eval(fmt.Sprintf(`(() => { const cols = Array.from(document.querySelectorAll('#%[1]s thead th')).map(h => h.dataset.key || '');
			const r = document.querySelector('#%[1]s tr[data-key="%[2]s"]'); return r ? r.children[cols.indexOf('%[3]s')].textContent : 'no row' })()`, table, row, col), &s)
		return s
	}
	for _, c := range []struct{ row, col, want string }{
		{"street", "contacts", "10"}, {"street", "syringes_out", "140"}, {"street", "naloxone_doses", "4"},
		{"fixed_site", "contacts", "356"}, {"fixed_site", "syringes_out", "0"},
		{"none", "contacts", "0"}, {"none", "referrals_made", "2"}, {"none", "referrals_attended", "1"}, {"total", "contacts", "366"},
	} {
		if got := cell("by-group", c.row, c.col); got != c.want {
			t.Errorf("by setting, %s %s reads %q, want %q", c.row, c.col, got, c.want)
		}
	}
	if got := text("#by-group caption"); got != "By setting" {
		t.Errorf("by-setting caption %q", got)
	}
	eval(`location.search`, &loc)
	if !strings.Contains(loc, "by=setting") {
		t.Errorf("the breakdown by setting is not in the URL: %q", loc)
	}
	checkView(t, b, axe, dir, "statistics-by-setting-en")
	// The CSV has the figures of each setting, with the labels the page
	// shows.
	settingCSV := map[string]string{}
	for _, r := range pageCSV() {
		if r[5] == "by-group" && r[9] == "setting" {
			settingCSV[r[6]+" "+r[7]] = r[8]
			settingCSV[r[6]+" label"] = r[10]
		}
	}
	for k, want := range map[string]string{"street contacts": "10", "fixed_site contacts": "356", "none referrals_made": "2", "total contacts": "366",
		"street label": "Street outreach", "none label": "Not linked to a contact"} {
		if settingCSV[k] != want {
			t.Errorf("the CSV by setting has %s = %q, want %q", k, settingCSV[k], want)
		}
	}
	run(chromedp.Click(`#lang-sv`, chromedp.ByID), chromedp.WaitVisible(`#by-group tr[data-key="street"]`, chromedp.ByQuery))
	eval(`Array.from(document.querySelectorAll('#by-group tbody th')).map(t => t.textContent).join('|')`, &order)
	if order != "Uppsökande på gatan|Fast mottagning|Ej kopplad till en kontakt|Totalt" {
		t.Errorf("settings in Swedish in the order %q", order)
	}
	var picked string
	eval(`document.querySelector('#by').selectedOptions[0].textContent`, &picked)
	if picked != "Per plats för kontakten" {
		t.Errorf("the Swedish breakdown picker shows %q", picked)
	}
	checkView(t, b, axe, dir, "statistics-by-setting-sv")
	run(chromedp.Click(`#lang-en`, chromedp.ByID), chromedp.WaitVisible(`#by-group tr[data-key="street"]`, chromedp.ByQuery))

	// By age group, this year by week, and drill into a unit.
	run(chromedp.Navigate(base+"/dashboard/?by=age_band&period=week"), chromedp.WaitVisible(`#by-group`, chromedp.ByID))
	eval(`Array.from(document.querySelectorAll('#by-group tbody th')).map(t => t.textContent).join('|')`, &order)
	if order != "Under 18|25-29|30-39|40-49|Not stated|Total" {
		t.Errorf("age groups in the order %q", order)
	}
	if got := text("#by-period caption"); got != "By week" {
		t.Errorf("by-period caption %q", got)
	}
	checkView(t, b, axe, dir, "statistics-by-week-en")
	run(chromedp.Click(`#pick-last-year`, chromedp.ByID), chromedp.WaitVisible(`#range`, chromedp.ByID))
	if got := text("#kpi-contacts b"); got != "0" {
		t.Errorf("last year: %s contacts", got)
	}
	run(chromedp.Evaluate(`document.body.dataset.before = "pick"`, nil),
		chromedp.Click(`#pick-last-12-months`, chromedp.ByID), chromedp.WaitVisible(`body:not([data-before]) #range`, chromedp.ByQuery),
		chromedp.SetValue(`#by`, "unit", chromedp.ByID), chromedp.Click(`#apply`, chromedp.ByID), chromedp.WaitVisible(`#drill`, chromedp.ByID),
		chromedp.Click(`#drill li:first-child a`, chromedp.ByQuery), chromedp.WaitVisible(`#unit-note`, chromedp.ByID))
	if got := text("#kpi-contacts b"); got != "10" || !strings.Contains(text("#unit-note"), "Mobila teamet Åre") {
		t.Errorf("drilled into %q: %s contacts, want 10", text("#unit-note"), got)
	}
	checkView(t, b, axe, dir, "statistics-unit-en")

	// The CSV is what the page shows.
	rows := pageCSV()
	found := false
	for _, r := range rows {
		found = found || r[5] == "summary" && r[6] == "contacts" && r[7] == "current" && r[8] == "10" && r[1] == team.ID.String()
	}
	if !found {
		t.Errorf("the CSV lacks the unit's contacts: %q", rows[:3])
	}

	// Bad parameters are an HTML page that says what is wrong; an unknown
	// page is one too.
	run(chromedp.Navigate(base+"/dashboard/?period=fortnight"), chromedp.WaitVisible(`#error-message`, chromedp.ByID))
	if got := text("#error-message"); !strings.Contains(got, "week, month, quarter or year") || !strings.Contains(got, "“Period” (period)") {
		t.Errorf("bad period: %q", got)
	}
	checkView(t, b, axe, dir, "error-400-en")
	run(chromedp.Navigate(base+"/dashboard/nowhere"), chromedp.WaitVisible(`#error-title`, chromedp.ByID))
	if got := text("#error-title"); !strings.Contains(got, "404") {
		t.Errorf("unknown page: %q", got)
	}
	checkView(t, b, axe, dir, "error-404-en")

	// Enrol a tablet from the screen, name it, then retire it.
	var code string
	run(chromedp.Navigate(base+"/dashboard/enrol"), chromedp.Click(`#make-code`, chromedp.ByID),
		chromedp.WaitVisible(`#qr`, chromedp.ByID), chromedp.Text(`#code`, &code, chromedp.ByID))
	checkView(t, b, axe, dir, "enrol-en")
	enrolled, err := enrolIn(ctx, t, srv, strings.TrimSpace(code), newKey(t), time.Now())
	if err != nil {
		t.Fatalf("the code on screen (%q) does not enrol: %v", code, err)
	}
	row := fmt.Sprintf(`#device-%s`, enrolled.DeviceID)
	run(chromedp.Click(`#nav-devices`, chromedp.ByID), chromedp.WaitVisible(row, chromedp.ByQuery))
	if got := text(row + " .enrolled"); got != now.In(time.Local).Format("2006-01-02") && len(got) != 10 {
		t.Errorf("enrolled on %q", got)
	}
	run(chromedp.Click(row+` a.rename`, chromedp.ByQuery), chromedp.WaitVisible(`#name`, chromedp.ByID),
		chromedp.SendKeys(`#name`, "Anna; ring 070", chromedp.ByID), chromedp.Evaluate(`document.querySelector('#name').removeAttribute('pattern')`, nil),
		chromedp.Click(`#save-name`, chromedp.ByID), chromedp.WaitVisible(`#name-error`, chromedp.ByID))
	checkView(t, b, axe, dir, "device-name-error-en")
	run(chromedp.Evaluate(`document.querySelector("#name").value = ""`, nil), chromedp.SendKeys(`#name`, "Van 1", chromedp.ByID),
		chromedp.Click(`#save-name`, chromedp.ByID), chromedp.WaitVisible(`#named`, chromedp.ByID))
	if got := text(row + " .name"); !strings.HasPrefix(got, "Van 1") {
		t.Errorf("the tablet's name reads %q", got)
	}
	if d, err := srv.Device(ctx, uuid.Nil, enrolled.DeviceID); err != nil || d.Name != "Van 1" {
		t.Errorf("device after naming: %+v %v", d, err)
	}
	checkView(t, b, axe, dir, "tablets-en")
	var consequence, state string
	run(chromedp.Click(row+` a.retire`, chromedp.ByQuery), chromedp.WaitVisible(`#confirm`, chromedp.ByID),
		chromedp.Text(`#consequence`, &consequence, chromedp.ByID))
	checkView(t, b, axe, dir, "tablet-retire-en")
	if !strings.Contains(consequence, "may still send the records it holds") {
		t.Errorf("the retirement's confirmation says %q", consequence)
	}
	run(chromedp.Click(`#confirm`, chromedp.ByID), chromedp.WaitVisible(row, chromedp.ByQuery), chromedp.Text(row+` .state`, &state, chromedp.ByQuery))
	if d, _ := srv.Device(ctx, uuid.Nil, enrolled.DeviceID); d.State != server.StateRetired || !strings.HasPrefix(state, "retired") {
		t.Errorf("after retiring: %+v; the row says %q", d, state)
	}

	// Referrals: the one sent to us moves on after a confirmation; the
	// closed one offers nothing; ours waiting 20 days is flagged.
	sel := fmt.Sprintf(`#referral-%s`, in.ID)
	run(chromedp.Click(`#nav-referrals`, chromedp.ByID), chromedp.WaitVisible(sel, chromedp.ByQuery))
	checkView(t, b, axe, dir, "referrals-en")
	csel := fmt.Sprintf(`#referral-%s`, closed.ID)
	var copts string
	eval(fmt.Sprintf(`Array.from(document.querySelectorAll('%s select option')).map(o => o.value).join(',')`, csel), &copts)
	if copts != "closed" {
		t.Errorf("an attended referral offers %q", copts)
	}
	run(chromedp.Click(csel+` button`, chromedp.ByQuery), chromedp.WaitVisible(`#confirm`, chromedp.ByID),
		chromedp.Click(`#confirm`, chromedp.ByID), chromedp.WaitVisible(`#changed`, chromedp.ByID))
	if got := text(fmt.Sprintf(`#referral-%s`, closed.ID)); !strings.Contains(got, "no further change") {
		t.Errorf("the closed referral offers: %q", got)
	}
	var nOpts int
	eval(fmt.Sprintf(`document.querySelectorAll('#referral-%s select option').length`, closed.ID), &nOpts)
	if nOpts != 0 {
		t.Errorf("the closed referral has %d options", nOpts)
	}
	if got := text(fmt.Sprintf(`#sent-%s`, old.ID)); !strings.Contains(got, "waiting long") || !strings.Contains(got, "Beroendemottagningen") {
		t.Errorf("the old referral we sent reads %q", got)
	}
	if got := text("#waiting-out b"); got != "1" {
		t.Errorf("%s of ours waiting", got)
	}
	// Only those waiting longer than 14 days, then than 30: none.
	var sent []string
	// The box is checked on the page before the filter applies too: the
	// wait is for a page without that page's mark.
	run(chromedp.Evaluate(`document.body.dataset.before = "waiting"`, nil),
		chromedp.Click(`#only-waiting`, chromedp.ByID), chromedp.Click(`#apply-days`, chromedp.ByID),
		chromedp.WaitVisible(`body:not([data-before]) #only-waiting:checked`, chromedp.ByQuery))
	eval(`Array.from(document.querySelectorAll('#sent tbody tr')).map(r => r.id)`, &sent)
	if len(sent) != 1 || sent[0] != "sent-"+old.ID.String() {
		t.Errorf("only those waiting: %q", sent)
	}
	checkView(t, b, axe, dir, "referrals-waiting-en")
	run(chromedp.Evaluate(`document.querySelector('#days').value = '30'`, nil), chromedp.Click(`#apply-days`, chromedp.ByID),
		chromedp.WaitVisible(`#no-outgoing`, chromedp.ByID))
	if got := text("#no-outgoing"); got != "No referral has waited that long." {
		t.Errorf("none waiting 30 days: %q", got)
	}
	eval(`location.search`, &loc)
	if !strings.Contains(loc, "days=30") || !strings.Contains(loc, "waiting=1") {
		t.Errorf("the follow-up's view is not in the URL: %q", loc)
	}
	run(chromedp.Click(`#nav-referrals`, chromedp.ByID), chromedp.WaitVisible(sel, chromedp.ByQuery))
	run(chromedp.SetValue(sel+` select`, "attended", chromedp.ByQuery), chromedp.Click(sel+` button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#confirm`, chromedp.ByID))
	if rec, _ := srv.Record(ctx, schema.KindReferral, in.ID); rec.(*schema.Referral).Status != schema.StatusSent {
		t.Error("the status changed before the confirmation")
	}
	if got := text("#consequence"); !strings.Contains(got, "Sent") || !strings.Contains(got, "Attended") {
		t.Errorf("confirmation: %q", got)
	}
	checkView(t, b, axe, dir, "referral-confirm-en")
	run(chromedp.Click(`#confirm`, chromedp.ByID), chromedp.WaitVisible(`#changed`, chromedp.ByID))
	if got := text(sel + " .status"); got != "Attended" {
		t.Errorf("status on screen %q", got)
	}
	var opts string
	eval(fmt.Sprintf(`Array.from(document.querySelectorAll('%s select option')).map(o => o.value).join(',')`, sel), &opts)
	if opts != "closed" {
		t.Errorf("after attended the choices are %q", opts)
	}
	if rec, _ := srv.Record(ctx, schema.KindReferral, in.ID); rec.(*schema.Referral).Status != schema.StatusAttended {
		t.Errorf("referral status on the server: %v", rec.(*schema.Referral).Status)
	}

	// Client cards to print.
	var cards int
	run(chromedp.Click(`#nav-cards`, chromedp.ByID), chromedp.WaitVisible(`#sheet`, chromedp.ByID))
	eval(`document.querySelectorAll('#sheet .client-card').length`, &cards)
	if cards != 12 {
		t.Errorf("%d cards", cards)
	}
	checkView(t, b, axe, dir, "cards-en")

	// Every view in Swedish.
	for _, v := range []struct{ name, path, h1 string }{
		{"statistics-sv", "/dashboard/?lang=sv", "Statistik"}, {"referrals-sv", "/dashboard/referrals?lang=sv", "Remisser"},
		{"tablets-sv", "/dashboard/devices?lang=sv", "Surfplattor"}, {"enrol-sv", "/dashboard/enrol?lang=sv", "Registrera surfplatta"},
		{"cards-sv", "/dashboard/cards?lang=sv&count=3", "Klientkort"}, {"error-400-sv", "/dashboard/?lang=sv&from=2026-13-01", "Felaktig begäran (400)"},
		{"referral-confirm-sv", fmt.Sprintf("/dashboard/referrals/%s/status?lang=sv&status=closed", in.ID), "Ändra remissens status?"},
		{"device-name-sv", fmt.Sprintf("/dashboard/devices/%s/name?lang=sv", enrolled.DeviceID), "Namnge surfplatta"},
		{"tablet-revoke-sv", fmt.Sprintf("/dashboard/devices/%s/revoke?lang=sv", enrolled.DeviceID), "Spärra surfplattan som förlorad eller stulen?"},
		{"tablet-revoke-en", fmt.Sprintf("/dashboard/devices/%s/revoke?lang=en", enrolled.DeviceID), "Revoke the tablet as lost or stolen?"},
		{"error-404-sv", "/dashboard/nowhere?lang=sv", "Sidan finns inte"},
		{"statistics-by-setting-quarter-sv", "/dashboard/?lang=sv&by=setting&period=quarter", "Statistik"},
	} {
		run(chromedp.Navigate(base+v.path), chromedp.WaitVisible(`h1`, chromedp.ByQuery))
		if got := text("h1"); !strings.HasPrefix(got, v.h1) {
			t.Errorf("%s: h1 %q, want %q", v.name, got, v.h1)
		}
		checkView(t, b, axe, dir, v.name)
	}
	var menu string
	eval(`document.querySelector('#nav-devices').textContent`, &menu)
	if menu != "Surfplattor" {
		t.Errorf("the Swedish menu says %q for tablets", menu)
	}

	// The login page in Swedish; the admin picks an organisation. The page
	// before the pick has its figures too: the wait is for those of a page
	// without its mark.
	run(chromedp.Click(`#logout`, chromedp.ByID), chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.Navigate(base+"/dashboard/login?lang=sv"), chromedp.WaitVisible(`#username`, chromedp.ByID))
	if got := text("h1"); !strings.Contains(got, "Logga in") {
		t.Errorf("the Swedish login page says %q", got)
	}
	checkView(t, b, axe, dir, "login-sv")
	run(
		chromedp.SendKeys(`#username`, "admin", chromedp.ByID), chromedp.SendKeys(`#password`, "ett långt lösenord", chromedp.ByID),
		chromedp.Click(`#login`, chromedp.ByID), chromedp.WaitVisible(`#org`, chromedp.ByID),
		chromedp.Evaluate(`document.body.dataset.before = "pick"`, nil),
		chromedp.SetValue(`#org`, muni.ID.String(), chromedp.ByID), chromedp.Click(`#pick-org`, chromedp.ByID),
		chromedp.WaitVisible(`body:not([data-before]) #kpi-contacts`, chromedp.ByQuery))
	if got := text("h1"); !strings.Contains(got, "Åre kommun") || text("#kpi-contacts b") != "366" {
		t.Errorf("the admin's pick shows %q with %s contacts", got, text("#kpi-contacts b"))
	}
	run(chromedp.Click(`#nav-devices`, chromedp.ByID), chromedp.WaitVisible(row, chromedp.ByQuery))
	checkView(t, b, axe, dir, "admin-tablets-sv")

	// Four days later, with no sync: the active tablets are flagged, the
	// retired one is not, and the statistics say their numbers may lack
	// records.
	ahead.Store(int64(4 * 24 * time.Hour))
	run(chromedp.Navigate(base+"/dashboard/devices?lang=en&org="+muni.ID.String()), chromedp.WaitVisible(row, chromedp.ByQuery))
	var stale int
	eval(`document.querySelectorAll('#devices .stale').length`, &stale)
	if stale != 3 {
		t.Errorf("%d tablets flagged stale, want 3", stale)
	}
	if got := text(row); strings.Contains(got, "not synced") {
		t.Errorf("the retired tablet is flagged: %q", got)
	}
	checkView(t, b, axe, dir, "tablets-stale-en")
	run(chromedp.Navigate(base+"/dashboard/?org="+muni.ID.String()), chromedp.WaitVisible(`#stale-warning`, chromedp.ByID))
	if got := text("#stale-warning"); !strings.Contains(got, "3 tablets have not synced") {
		t.Errorf("stale warning: %q", got)
	}
	t.Logf("axe violations by view: %v; screenshots in %s", axeResults, dir)
}
