package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
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

func TestDashboardInBrowser(t *testing.T) {
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{DBPath: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	// Cleanups run last first: the browser closes before the server stops
	// waiting for its connections.
	t.Cleanup(func() { srv.Shutdown(ctx) })
	base := "http://" + ln.Addr().String()

	muni, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Åre kommun", "23")
	region, _ := srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	team, _ := srv.AddUnit(ctx, muni.ID, "Mobila teamet Åre", "2321")
	clinic, _ := srv.AddUnit(ctx, region.ID, "Beroendemottagningen", "2380", schema.ServiceAddictionClinic)
	staff, _ := srv.AddStaff(ctx, team.ID, schema.RoleOutreachWorker)
	clinicStaff, _ := srv.AddStaff(ctx, clinic.ID, schema.RoleNurse)
	if _, err := srv.AddUser(ctx, "chef.are", "ett långt lösenord", server.RoleManager, uuid.Nil, team.ID); err != nil {
		t.Fatal(err)
	}

	// Seven contacts of the team, 7 x 20 syringes, one of them voided.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var contacts []uuid.UUID
	pushRecords(t, srv, base, team.ID, staff.ID, func(dev uuid.UUID) []schema.Record {
		var recs []schema.Record
		for i := range 8 {
			c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-time.Duration(i) * time.Hour), Voided: i == 7},
				Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2321"}
			contacts = append(contacts, c.ID)
			recs = append(recs, c, &schema.SyringeExchange{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: c.OccurredAt},
				ContactID: c.ID, SyringesOut: 20, SyringesReturned: 10})
		}
		return recs
	})
	// A referral from the clinic to the team, for the team to follow up.
	ref := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-time.Hour)},
		Service: schema.ServiceHousing, ToUnitID: team.ID, Status: schema.StatusSent}
	pushRecords(t, srv, base, clinic.ID, clinicStaff.ID, func(uuid.UUID) []schema.Record { return []schema.Record{ref} })

	b := browser(t)
	var kpiContacts, kpiSyringes, code string
	err = chromedp.Run(b,
		chromedp.Navigate(base+"/dashboard/login?lang=en"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.SendKeys(`#username`, "chef.are", chromedp.ByID),
		chromedp.SendKeys(`#password`, "ett långt lösenord", chromedp.ByID),
		chromedp.Click(`#login`, chromedp.ByID),
		chromedp.WaitVisible(`#kpi-contacts`, chromedp.ByID),
		chromedp.Text(`#kpi-contacts b`, &kpiContacts, chromedp.ByQuery),
		chromedp.Text(`#kpi-syringes_out b`, &kpiSyringes, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if kpiContacts != "7" || kpiSyringes != "140" {
		t.Errorf("dashboard shows %s contacts and %s syringes, want 7 and 140", kpiContacts, kpiSyringes)
	}
	// The charts: a bar a group in each breakdown, the count in its title;
	// syringes out and returned side by side for twelve months.
	var genderBars, unitTitle string
	var syringeBars int
	err = chromedp.Run(b,
		chromedp.Evaluate(`Array.from(document.querySelectorAll('#chart-by_gender rect title')).map(t => t.textContent).join('|')`, &genderBars),
		chromedp.Evaluate(`document.querySelector('#chart-by_unit rect title').textContent`, &unitTitle),
		chromedp.Evaluate(`document.querySelectorAll('#chart-syringes rect').length`, &syringeBars),
	)
	if err != nil {
		t.Fatal(err)
	}
	if genderBars != "Woman: 7" || unitTitle != "Mobila teamet Åre: 7" || syringeBars != 12*2+2 {
		t.Errorf("charts: by gender %q, by unit %q, %d syringe bars", genderBars, unitTitle, syringeBars)
	}
	// Looking at the statistics is in the audit log, as a stats request.
	entries, err := srv.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	viewed := false
	for _, e := range entries {
		viewed = viewed || e.Action == "stats" && e.Target == "org:"+muni.ID.String() && strings.HasPrefix(e.Actor, "user:")
	}
	if !viewed {
		t.Errorf("the dashboard's statistics are not in the audit log: %+v", entries)
	}

	// Enrol a tablet from the screen.
	err = chromedp.Run(b,
		chromedp.Click(`#nav-enrol`, chromedp.ByID),
		chromedp.WaitVisible(`#make-code`, chromedp.ByID),
		chromedp.Click(`#make-code`, chromedp.ByID),
		chromedp.WaitVisible(`#qr`, chromedp.ByID),
		chromedp.Text(`#code`, &code, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := enrolIn(ctx, t, srv, strings.TrimSpace(code), newKey(t), time.Now())
	if err != nil {
		t.Fatalf("the code on screen (%q) does not enrol: %v", code, err)
	}
	if enrolled.UnitID != team.ID {
		t.Errorf("enrolled for unit %s", enrolled.UnitID)
	}

	// Retire it from the device list: a page says what that does, with
	// the device's figures, before the button that does it.
	row := fmt.Sprintf(`#device-%s`, enrolled.DeviceID)
	var consequence, state string
	err = chromedp.Run(b,
		chromedp.Click(`#nav-devices`, chromedp.ByID),
		chromedp.WaitVisible(row, chromedp.ByQuery),
		chromedp.Click(row+` a.retire`, chromedp.ByQuery),
		chromedp.WaitVisible(`#confirm`, chromedp.ByID),
		chromedp.Text(`#consequence`, &consequence, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(consequence, "may still send the records it holds") || !strings.Contains(consequence, "Writes received: 0") {
		t.Errorf("the retirement's confirmation says %q", consequence)
	}
	if d, err := srv.Device(ctx, uuid.Nil, enrolled.DeviceID); err != nil || d.State != server.StateActive {
		t.Fatalf("before the confirmation the device is %+v, %v", d, err)
	}
	err = chromedp.Run(b,
		chromedp.Click(`#confirm`, chromedp.ByID),
		chromedp.WaitVisible(row, chromedp.ByQuery),
		chromedp.Text(row+` .state`, &state, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := srv.Device(ctx, uuid.Nil, enrolled.DeviceID); err != nil || d.State != server.StateRetired || state != "retired" {
		t.Errorf("after retiring: %+v, %v; the row says %q", d, err, state)
	}

	// Then it turns out lost: revoking it overrides the retirement.
	err = chromedp.Run(b,
		chromedp.Click(row+` a.revoke`, chromedp.ByQuery),
		chromedp.WaitVisible(`#confirm`, chromedp.ByID),
		chromedp.Text(`#consequence`, &consequence, chromedp.ByID),
		chromedp.Click(`#confirm`, chromedp.ByID),
		chromedp.WaitVisible(row, chromedp.ByQuery),
		chromedp.WaitNotPresent(row+` a.revoke`, chromedp.ByQuery),
		chromedp.Text(row, &state, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(consequence, "accepts nothing more") {
		t.Errorf("the revocation's confirmation says %q", consequence)
	}
	devs, _ := srv.DevicesOf(ctx, uuid.Nil)
	revoked := false
	for _, d := range devs {
		if d.ID == enrolled.DeviceID {
			revoked = d.RevokedAt != nil && d.State == server.StateLost
		}
	}
	if !revoked || !strings.Contains(state, "lost or stolen") {
		t.Errorf("device not revoked (row says %q)", state)
	}

	// Follow up the referral: the change is the server's, devices pull it.
	var status string
	sel := fmt.Sprintf(`#referral-%s`, ref.ID)
	err = chromedp.Run(b,
		chromedp.Click(`#nav-referrals`, chromedp.ByID),
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.SetValue(sel+` select`, "attended", chromedp.ByQuery),
		chromedp.Click(sel+` button`, chromedp.ByQuery),
		chromedp.WaitNotPresent(sel+` option[value="attended"]`, chromedp.ByQuery),
		chromedp.Text(sel+` .status`, &status, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := srv.Record(ctx, schema.KindReferral, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*schema.Referral).Status; got != schema.StatusAttended || status != "Attended" {
		t.Errorf("referral status %s on the server, %q on screen; want attended", got, status)
	}

	// Swedish, and the login page refuses a wrong password.
	var title, loginErr string
	err = chromedp.Run(b,
		chromedp.Navigate(base+"/dashboard/?lang=sv"),
		chromedp.Text(`h1`, &title, chromedp.ByQuery),
		chromedp.Click(`#logout`, chromedp.ByID),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.SendKeys(`#username`, "chef.are", chromedp.ByID),
		chromedp.SendKeys(`#password`, "fel", chromedp.ByID),
		chromedp.Click(`#login`, chromedp.ByID),
		chromedp.WaitVisible(`#error`, chromedp.ByID),
		chromedp.Text(`#error`, &loginErr, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(title, "Översikt") || !strings.Contains(loginErr, "Fel användarnamn") {
		t.Errorf("Swedish pages: title %q, error %q", title, loginErr)
	}
}
