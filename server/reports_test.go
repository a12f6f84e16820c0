package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/wire"
)

// reportRegion is a running server with two organisations, their units
// and records of this year, and an authority user's token.
type reportRegion struct {
	srv       *server.Server
	base      string
	token     string
	units     []*schema.Unit
	staff     []*schema.Staff
	thisYear  int
	recordsAt func(rng *rand.Rand) time.Time
}

func startReportRegion(t *testing.T) *reportRegion { return startReportRegionWith(t, nil) }

// startReportRegionWith is startReportRegion with before called on the
// server before it serves.
func startReportRegionWith(t *testing.T, before func(*server.Server)) *reportRegion {
	t.Helper()
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(ctx); srv.Close() })
	r := &reportRegion{srv: srv, base: "http://" + ln.Addr().String()}
	muni, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Åre kommun", "23")
	region, _ := srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	for _, u := range []struct {
		org  uuid.UUID
		name string
		area string
	}{{muni.ID, "Mobila teamet Åre", "2321"}, {region.ID, "Beroendemottagningen", "2380"}, {region.ID, "Sprututbytet", "2380"}} {
		unit, err := srv.AddUnit(ctx, u.org, u.name, u.area)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := srv.AddStaff(ctx, unit.ID, schema.RoleNurse)
		r.units, r.staff = append(r.units, unit), append(r.staff, st)
	}
	if _, err := srv.AddUser(ctx, "region.statistik", "ett långt lösenord", server.RoleAuthority, region.ID, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := json.Marshal(map[string]string{"username": "region.statistik", "password": "ett långt lösenord"})
	resp, err := http.Post(r.base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	r.token = login.AccessToken
	// Records of this year before the current month, in Swedish time.
	now := time.Now().In(stockholmZone)
	r.thisYear = now.Year()
	start := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, stockholmZone)
	span := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, stockholmZone).Sub(start)
	if span < 24*time.Hour {
		span = now.Sub(start)
	}
	r.recordsAt = func(rng *rand.Rand) time.Time {
		return start.Add(time.Duration(rng.Int64N(int64(span)))).UTC().Truncate(time.Millisecond)
	}
	return r
}

var stockholmZone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err)
	}
	return loc
}()

// push records n contacts of unit i at times the generator gives, with an
// exchange and a referral to some.
func (r *reportRegion) push(t *testing.T, rng *rand.Rand, i, n int, at func(*rand.Rand) time.Time) {
	t.Helper()
	genders, ages := schema.GenderEnum.Codes(), schema.AgeBandEnum.Codes()
	services := schema.ServiceCategoryEnum.Codes()
	pushRecords(t, r.srv, r.base, r.units[i].ID, r.staff[i].ID, func(uuid.UUID) []schema.Record {
		var recs []schema.Record
		for range n {
			when := at(rng)
			c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: when},
				Gender: schema.Gender(genders[rng.IntN(len(genders))]), AgeBand: schema.AgeBand(ages[rng.IntN(len(ages))]),
				Setting: schema.SettingStreet, AreaCode: r.units[i].AreaCode}
			recs = append(recs, c)
			if rng.IntN(2) == 0 {
				recs = append(recs, &schema.SyringeExchange{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: when},
					ContactID: c.ID, SyringesOut: 1 + rng.IntN(30), SyringesReturned: rng.IntN(20)})
			}
			if rng.IntN(4) == 0 {
				recs = append(recs, &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: when}, ContactID: c.ID,
					Service: schema.ServiceCategory(services[rng.IntN(len(services))]), ToUnitID: r.units[(i+1)%len(r.units)].ID, Status: schema.StatusSent})
			}
		}
		return recs
	})
}

// get asks for path as the authority and returns the status and body.
func (r *reportRegion) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestReportWhileBuilding: a report request waits for the build of the
// current publication at most the publisher's wait. Here the wait is a
// nanosecond and no background build is due: before the first
// publication is built the answer is 503 report_building with
// Retry-After; after records arrive it is the last publication, marked
// stale in JSON and by the header in both formats; with a wait long
// enough, the current one, unmarked.
func TestReportWhileBuilding(t *testing.T) {
	r := startReportRegionWith(t, func(s *server.Server) { server.SetReportTiming(s, time.Nanosecond, time.Hour) })
	path := "/v1/reports/indicators?period=month&year=" + strconv.Itoa(r.thisYear)
	req, _ := http.NewRequest("GET", r.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct{ Error *wire.Error }
	json.Unmarshal(body, &e)
	if resp.StatusCode != 503 || e.Error == nil || e.Error.Code != wire.CodeReportBuilding || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the first publication: %d %s (Retry-After %q), want 503 report_building", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	server.SetReportTiming(r.srv, time.Minute, time.Hour)
	read := func(format string) (stale bool, header string) {
		t.Helper()
		req, _ := http.NewRequest("GET", r.base+path+"&format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep struct {
			Stale bool `json:"stale"`
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", format, resp.StatusCode, body)
		}
		if format == "json" {
			json.Unmarshal(body, &rep)
		}
		return rep.Stale, resp.Header.Get("X-Brygga-Report-Stale")
	}
	if stale, h := read("json"); stale || h != "" {
		t.Errorf("the first publication, waited for: stale %v, header %q", stale, h)
	}
	r.push(t, rand.New(rand.NewPCG(4, 4)), 0, 20, r.recordsAt)
	server.SetReportTiming(r.srv, time.Nanosecond, time.Hour)
	if stale, h := read("json"); !stale || h != "true" {
		t.Errorf("after records arrived, without a wait: stale %v, header %q, want the last publication marked stale", stale, h)
	}
	server.SetReportTiming(r.srv, time.Minute, time.Hour)
	if stale, h := read("json"); stale || h != "" {
		t.Errorf("waited for: stale %v, header %q", stale, h)
	}
	r.push(t, rand.New(rand.NewPCG(5, 5)), 1, 20, r.recordsAt)
	server.SetReportTiming(r.srv, time.Nanosecond, time.Hour)
	if _, h := read("csv"); h != "true" {
		t.Errorf("CSV after records arrived, without a wait: header %q", h)
	}
}

// TestReportGridRefusesRanges checks that a report cannot be asked for by
// dates or days, nor for a year to come.
func TestReportGridRefusesRanges(t *testing.T) {
	r := startReportRegion(t)
	for _, c := range []struct{ query, field string }{
		{"from=2026-01-01", "from"},
		{"to=2026-03-31", "to"},
		{"from=2026-01-01&to=2026-01-01&period=month", "from"},
		{"day=2026-03-03", "day"},
		{"date=2026-03-03", "date"},
		{"period=day", "period"},
		{"period=fortnight", "period"},
		{"year=" + strconv.Itoa(r.thisYear+1), "year"},
		{"year=1999", "year"},
		{"year=twenty", "year"},
		{"by=client_code", "by"},
		{"format=xml", "format"},
	} {
		st, body := r.get(t, "/v1/reports/indicators?"+c.query)
		var e struct{ Error *wire.Error }
		json.Unmarshal(body, &e)
		if st != 400 || e.Error == nil || e.Error.Code != wire.CodeMalformed || e.Error.Field != c.field {
			t.Errorf("%s: %d %s, want 400 malformed_request on %s", c.query, st, body, c.field)
		}
	}
}

// TestReportCellsReadTheSame checks, over HTTP, every table of the year:
// every group listed in every period; no count published from 1 to k-1;
// a period's total the same in every breakdown and format; the same
// answer to the same request, and after records of another period
// arrived, the same cells of the periods they did not touch.
func TestReportCellsReadTheSame(t *testing.T) {
	r := startReportRegion(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range r.units {
		r.push(t, rng, i, 60+40*i, r.recordsAt)
	}
	groups := map[string]int{"total": 0, "gender": 4, "age_band": 8, "unit": 3, "municipality": 2, "organisation": 2}
	type cellAt struct{ period, by, group, ind string }
	seen := map[cellAt]stats.Cell{}
	final := map[string]bool{}
	pull := func(check bool) map[cellAt]stats.Cell {
		cells := map[cellAt]stats.Cell{}
		for _, period := range []string{"week", "month", "quarter", "year"} {
			for by, n := range groups {
				path := fmt.Sprintf("/v1/reports/indicators?period=%s&year=%d&by=%s", period, r.thisYear, by)
				st, body := r.get(t, path)
				if st != 200 {
					t.Fatalf("%s: %d %s", path, st, body)
				}
				if st2, again := r.get(t, path); st2 != 200 || !bytes.Equal(body, again) {
					t.Errorf("%s: a second request answers differently", path)
				}
				var rep stats.Report
				if err := json.Unmarshal(body, &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep.Groups) != n || len(rep.Rows) != len(rep.Periods)*(n+1) || len(rep.Periods) == 0 {
					t.Fatalf("%s: %d groups, %d periods, %d rows", path, len(rep.Groups), len(rep.Periods), len(rep.Rows))
				}
				_, csvBody := r.get(t, path+"&format=csv")
				lines, err := csv.NewReader(bytes.NewReader(csvBody)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				fromCSV := map[cellAt]string{}
				for _, l := range lines[1:] {
					d := l[2]
					if l[3] == "total" {
						d = "total"
					}
					fromCSV[cellAt{l[0], d, l[3], l[5]}] = l[6]
				}
				for _, row := range rep.Rows {
					if !check && row.Status == stats.Final {
						final[row.Period] = true
					}
					for ind, c := range row.Indicators {
						d := by
						if row.Group == "total" {
							d = "total"
						}
						at := cellAt{row.Period, d, row.Group, string(ind)}
						want := ""
						if c.Value != nil {
							want = strconv.FormatInt(*c.Value, 10)
							if v := *c.Value; v >= 1 && v < rep.K && ind != stats.SyringesOut && ind != stats.NeedlesOut &&
								ind != stats.SyringesReturned && ind != stats.NaloxoneDoses {
								t.Errorf("%s: %v published as %d", path, at, v)
							}
						}
						if fromCSV[at] != want {
							t.Errorf("%s: %v is %q in CSV, %q in JSON", path, at, fromCSV[at], want)
						}
						if prev, ok := cells[at]; ok && !sameCell(prev, c) {
							t.Errorf("%v reads %+v and %+v", at, prev, c)
						}
						cells[at] = c
						if check {
							if was, ok := seen[at]; ok && !sameCell(was, c) {
								t.Errorf("%v read %+v, now %+v", at, was, c)
							}
						}
					}
				}
			}
		}
		return cells
	}
	first := pull(false)
	// Records of one day of the first week only, pushed later.
	jan := time.Date(r.thisYear, 1, 7, 12, 0, 0, 0, stockholmZone)
	r.push(t, rng, 0, 12, func(*rand.Rand) time.Time { return jan.UTC() })
	y, w := jan.ISOWeek()
	touched := map[string]bool{strconv.Itoa(r.thisYear): true, fmt.Sprintf("%d-01", r.thisYear): true, fmt.Sprintf("%d-Q1", r.thisYear): true,
		fmt.Sprintf("%d-W%02d", y, w): true}
	for at, c := range first {
		if final[at.period] && !touched[at.period] {
			seen[at] = c
		}
	}
	if len(seen) == 0 {
		t.Fatal("no final period to compare")
	}
	later := pull(true)
	revised := 0
	for at, c := range later {
		if c.Revised {
			revised++
			if !touched[at.period] {
				t.Errorf("%v revised", at)
			}
		}
	}
	t.Logf("%d cells of final periods compared, %d revised", len(seen), revised)
}

func sameCell(a, b stats.Cell) bool {
	return a.Withheld == b.Withheld && (a.Value == nil) == (b.Value == nil) && (a.Value == nil || *a.Value == *b.Value)
}
