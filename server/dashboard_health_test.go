package server_test

import (
	"context"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestDashboardHealthTables opens the statistics in a browser and reads
// the tables of tests, vaccinations and deaths, which axe-core checks.
func TestDashboardHealthTables(t *testing.T) {
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{DBPath: testDB(t)})
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
	site, _ := srv.AddUnit(ctx, muni.ID, "Sprututbytet Åre", "2321")
	clinic, _ := srv.AddUnit(ctx, region.ID, "Infektionsmottagningen", "2380", schema.ServiceInfectionClinic)
	staff, _ := srv.AddStaff(ctx, site.ID, schema.RoleNurse)
	if _, err := srv.AddUser(ctx, "chef.are", "ett långt lösenord", server.RoleManager, uuid.Nil, site.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond).Add(-2 * time.Hour)
	hdr := func() schema.Header { return schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now} }
	code, err := schema.NewClientCode(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pushRecords(t, srv, base, site.ID, staff.ID, func(uuid.UUID) []schema.Record {
		c := &schema.Contact{Header: hdr(), ClientCode: code, Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingFixedSite, AreaCode: "2321"}
		return []schema.Record{c,
			&schema.InfectionTest{Header: hdr(), ContactID: c.ID, Test: schema.TestHIV, Outcome: schema.TestRapid, Result: schema.ResultNonReactive},
			&schema.InfectionTest{Header: hdr(), ContactID: c.ID, Test: schema.TestHCVAntibody, Outcome: schema.TestRapid, Result: schema.ResultReactive},
			&schema.InfectionTest{Header: hdr(), ContactID: c.ID, Test: schema.TestHBsAg, Outcome: schema.TestDeclined},
			&schema.Referral{Header: hdr(), ContactID: c.ID, Service: schema.ServiceInfectionClinic, ToUnitID: clinic.ID, Status: schema.StatusAttended},
			&schema.Vaccination{Header: hdr(), ContactID: c.ID, Vaccine: schema.VaccineHepB, Dose: 3},
			&schema.Death{Header: hdr(), ClientCode: code, Source: schema.DeathStaffTold},
		}
	})
	b := browser(t)
	var got map[string]string
	var caption, heading string
	if err := chromedp.Run(b, chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/dashboard/login?lang=sv"), chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.SendKeys(`#username`, "chef.are", chromedp.ByID),
		chromedp.SendKeys(`#password`, "ett långt lösenord", chromedp.ByID),
		chromedp.Click(`#login`, chromedp.ByID),
		chromedp.WaitVisible(`#tests`, chromedp.ByID),
		chromedp.Evaluate(`Object.fromEntries(Array.from(document.querySelectorAll('#tests tbody tr, #vaccinations-deaths tbody tr')).map(
			r => [r.closest('table').id + ':' + r.dataset.key, Array.from(r.querySelectorAll('td')).map(d => d.textContent).join(' ')]))`, &got),
		chromedp.Evaluate(`document.querySelector('#tests caption').textContent`, &caption),
		chromedp.Evaluate(`document.querySelector('#tests-heading').textContent`, &heading),
	); err != nil {
		t.Fatal(err)
	}
	checkView(t, b, axe, dir, "statistics-health-sv")
	if !strings.HasPrefix(caption, "Tester per infektion") || heading != "Infektionstester" {
		t.Errorf("the tests' heading %q and caption %q", heading, caption)
	}
	for key, want := range map[string]string{
		"tests:hiv":          "1 0 1 0 0",
		"tests:hcv_antibody": "1 0 1 1 1",
		"tests:hbsag":        "1 1 0 0 0",
		"tests:total":        "3 1 2 1 1",
		"vaccinations-deaths:vaccine_doses.hepatitis_b":    "1",
		"vaccinations-deaths:hepatitis_b_series_completed": "1",
		"vaccinations-deaths:deaths_known":                 "1",
	} {
		if g := got[key]; !strings.HasPrefix(g, want) {
			t.Errorf("%s reads %q, want %q", key, g, want)
		}
	}
}
